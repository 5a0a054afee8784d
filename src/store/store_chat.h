/* Chat sessions, their messages and selected-text contexts, and daily token use. */
#ifndef BOOKD_STORE_CHAT_H
#define BOOKD_STORE_CHAT_H

#include "../core/arena.h"
#include "../core/uuid.h"
#include "db.h"

struct chat_session {
	char id[UUID_STR_LEN];
	char *user_id, *book_id, *title;
	char *client_key; /* the id the client minted, or NULL */
	int64_t created_at, updated_at, messages;
};

struct chat_message {
	char id[UUID_STR_LEN], session_id[UUID_STR_LEN];
	char *role, *content, *citations, *selected_text, *provider, *model;
	int64_t prompt_tokens, completion_tokens, latency_ms, created_at;
};

/* *inserted (may be NULL) 0 when a session with the same owner and client
 * key exists already: nothing is written then. */
int store_chat_session_insert(db_conn *c, const struct chat_session *s, int *inserted, struct err *e) WUR;
/* The session `key` names for this owner (NULL: the anonymous callers). */
int store_chat_session_by_key(db_conn *c, struct arena *a, const char *user_id, const char *key,
			      struct chat_session *out, struct err *e) WUR;
int store_chat_session_get(db_conn *c, struct arena *a, const char *id, struct chat_session *out, struct err *e) WUR;
int store_chat_session_list(db_conn *c, struct arena *a, const char *user_id, const char *before, int limit,
			    struct chat_session **items, int *n, struct err *e) WUR;
int store_chat_session_delete(db_conn *c, const char *id, struct err *e) WUR;
int store_chat_session_touch(db_conn *c, const char *id, const char *title, int64_t now, struct err *e) WUR;

int store_chat_message_insert(db_conn *c, const struct chat_message *m, struct err *e) WUR;
/* The newest `limit` messages, oldest first. */
int store_chat_recent(db_conn *c, struct arena *a, const char *session_id, int limit, struct chat_message **items,
		      int *n, struct err *e) WUR;
/* Messages with id > after, oldest first. */
int store_chat_messages(db_conn *c, struct arena *a, const char *session_id, const char *after, int limit,
			struct chat_message **items, int *n, struct err *e) WUR;

int store_chat_context_insert(db_conn *c, const char *id, const char *session_id, const char *text,
			      const char *book_id, const char *chapter_id, int64_t now, struct err *e) WUR;
/* The newest `limit` contexts' texts, newest first (chapter_id in *chapters). */
int store_chat_contexts(db_conn *c, struct arena *a, const char *session_id, int limit, char ***texts,
			char ***chapters, int *n, struct err *e) WUR;

int store_chat_usage_add(db_conn *c, const char *subject, const char *day, int64_t tokens, struct err *e) WUR;
/* Adds `tokens` to the day's count only if the count stays within `limit`:
 * *granted 1 when added, 0 when the budget would be passed. One statement, so
 * concurrent reservations cannot pass the limit together. */
int store_chat_usage_reserve(db_conn *c, const char *subject, const char *day, int64_t tokens, int64_t limit,
			     int *granted, struct err *e) WUR;
/* A message, its session and the session's owner. */
struct chat_answer_ref {
	struct arena *arena;
	char session_id[UUID_STR_LEN];
	char *role, *user_id;
	int found;
};
int store_chat_message_ref(db_conn *c, struct arena *a, const char *message_id, struct chat_answer_ref *out,
			   struct err *e) WUR;

/* A reader's rating of an answer: one per answer and rater (a repeat replaces it). */
struct chat_feedback {
	char id[UUID_STR_LEN], message_id[UUID_STR_LEN], session_id[UUID_STR_LEN];
	char *user_id, *comment, *answer, *book_id;
	int rating;
	int64_t created_at;
};
int store_chat_feedback_put(db_conn *c, const struct chat_feedback *f, const char *rater, struct err *e) WUR;
/* Newest first, ids below `before` (NULL: from the newest). */
int store_chat_feedback_list(db_conn *c, struct arena *a, const char *before, int limit, struct chat_feedback **items,
			     int *n, struct err *e) WUR;

int store_chat_usage_get(db_conn *c, const char *subject, const char *day, int64_t *tokens, struct err *e) WUR;

#endif
