/*
 * The book chatbot. A question is answered from the book: the conversation's
 * recent messages and any text the reader selected frame it, a follow-up is
 * rewritten into a standalone query (when a model is available), retrieval
 * finds passages (focused on the selection's chapter), and the model answers
 * from the numbered passages with [n] markers. bookd then checks the
 * citations: a marker that points at no passage is removed, and each kept
 * citation carries a quote that is verbatim in its passage. With no model
 * reachable the answer is extractive: the passages' sentences that best match
 * the question, each cited.
 */
#ifndef BOOKD_CHAT_H
#define BOOKD_CHAT_H

#include <jansson.h>

#include "../providers/llm.h"
#include "../store/db.h"
#include "../store/store_chat.h"
#include "search.h"

struct chat_config {
	int history_messages; /* messages of memory given to the model (10) */
	int history_tokens;   /* ...trimmed to this many estimated tokens */
	int top_k;	      /* passages retrieved by default */
	int deadline_s;	      /* a whole answer */
	int max_tokens;	      /* of an answer */
	long daily_tokens;    /* per user; 0 = unlimited */
	long anon_daily_tokens; /* per address, for anonymous questions; 0 = unlimited */
};

/* A session id a client may mint: 1 to 128 printable ASCII characters. */
#define CHAT_KEY_MAX 128
int chat_session_key_valid(const char *key);

struct chat;

struct chat_query {
	const char *user_id; /* NULL: anonymous */
	const char *subject; /* whose budget: the user id, or "ip:…" */
	/* session_id: bookd's id of one of the caller's sessions, or a key the
	 * client minted (created on first use, then kept). */
	const char *question, *session_id, *selected_text, *book_id, *chapter_id;
	int top_k;
	/* The reader's language (BCP 47) or NULL: passages come from the
	 * book's translation into it when there is one (else from its own
	 * text), and the model is asked to answer in it. */
	const char *language;
	/* Streaming (all may be NULL): the retrieved passages before the model
	 * starts, then the text as it comes. Non-zero from either cancels. */
	int (*on_passages)(void *ctx, json_t *passages);
	int (*on_delta)(void *ctx, const char *text, size_t n);
	int (*cancelled)(void *ctx);
	void *ctx;
};

struct chat_answer {
	char session_id[CHAT_KEY_MAX + 1]; /* as the client named it, or bookd's new id */
	char message_id[UUID_STR_LEN];
	char *answer;	   /* malloc'ed */
	json_t *citations; /* [{n, chunk_id, book_id, chapter_id, chapter_title, heading, anchor, quote, score}] */
	char provider[64], model[128];
	int prompt_tokens, completion_tokens;
	int64_t latency_ms, timestamp;
	int broken; /* streamed: the model's answer broke off midway */
};

int chat_new(struct chat **out, db *d, struct search *s, struct llm_chain *llm, const struct chat_config *cfg,
	     struct err *e) WUR;
void chat_free(struct chat *c);
/* The language models answers come from, e.g. "openai:gpt-4o-mini"; "" for none. */
void chat_describe_models(const struct chat *c, char *out, size_t cap);
int chat_ask(struct chat *c, struct arena *a, const struct chat_query *q, struct chat_answer *out, struct err *e) WUR;
void chat_answer_free(struct chat_answer *a);
json_t *chat_answer_json(const struct chat_answer *a);

/* Stores selected text for the next questions of a session (made if absent). */
int chat_add_context(struct chat *c, struct arena *a, const char *user_id, const char *session_id, const char *text,
		     const char *book_id, const char *chapter_id, char session_out[CHAT_KEY_MAX + 1],
		     char context_id[UUID_STR_LEN], struct err *e) WUR;

/* Sessions of a user; another user's session is ERR_NOT_FOUND. */
int chat_sessions(struct chat *c, struct arena *a, const char *user_id, const char *cursor, int limit,
		  struct chat_session **items, int *n, char **next, struct err *e) WUR;
int chat_session(struct chat *c, struct arena *a, const char *user_id, const char *id, struct chat_session *out,
		 struct err *e) WUR;
int chat_session_delete(struct chat *c, const char *user_id, const char *id, struct err *e) WUR;
int chat_messages(struct chat *c, struct arena *a, const char *user_id, const char *id, const char *cursor,
		  int limit, struct chat_message **items, int *n, char **next, struct err *e) WUR;

/* The newest `limit` messages of a session, oldest first; none for a key
 * not used yet. */
int chat_history(struct chat *c, struct arena *a, const char *user_id, const char *id, int limit,
		 struct chat_message **items, int *n, struct err *e) WUR;
/* A rating of an answer in one of the caller's conversations (another's, or
 * a message that is no answer, is ERR_NOT_FOUND); `rater` names the caller
 * ("user:…" or "ip:…"): a repeat of the same rater replaces its rating. */
int chat_feedback_put(struct chat *c, struct arena *a, const char *user_id, const char *rater, const char *message_id,
		      int rating, const char *comment, char id_out[UUID_STR_LEN], struct err *e) WUR;
int chat_feedback_list(struct chat *c, struct arena *a, const char *cursor, int limit, struct chat_feedback **items,
		       int *n, char **next, struct err *e) WUR;

/* Exposed for tests: keeps valid [n] markers (1..npassages), drops the others,
 * and lists the cited n in order of first use. Returns the cleaned text. */
char *chat_clean_markers(const char *answer, int npassages, int *cited, int *ncited);

/* Exposed for tests: the answer without a model — the passages' (at most
 * three) sentences that share the most words with the question, in order of
 * score, each cited; the citations are appended to `citations`. malloc'ed. */
char *chat_extractive(struct arena *a, const char *question, const struct search_hit *hits, int nh,
		      json_t *citations);

#endif
