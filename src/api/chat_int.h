/*
 * The chatbot's routes share one producer (api/chat.c): a question is read,
 * answered on the chat executor by chat_ask, and written back. What differs
 * between the native API and the dialects of existing book sites
 * (api/compat.c) is only how the request is read and how the answer is
 * written — whole, or as Server-Sent Events — so a dialect is a table of
 * those functions, never a copy of the handler.
 */
#ifndef BOOKD_API_CHAT_INT_H
#define BOOKD_API_CHAT_INT_H

#include "../services/chat.h"
#include "api.h"

#define CHAT_QUESTION_MAX  2000
#define CHAT_SELECTION_MAX 5000

/* How a streamed answer is written: each builder returns the data of one
 * event (a new reference; NULL when out of memory), framed as
 * "event: NAME\ndata: JSON\n\n", or "data: JSON\n\n" when the name is NULL.
 * The error builder also writes the last event of a stream cut by shutdown. */
struct chat_sse {
	const char *passages, *delta, *done, *error;
	json_t *(*passages_json)(json_t *passages); /* NULL: the passages are not sent */
	json_t *(*delta_json)(const char *text, size_t n);
	json_t *(*done_json)(const struct chat_answer *a);
	json_t *(*error_json)(const char *code, const char *message);
};

struct chat_dialect {
	/* Reads the request object into q (strings copied into `a`) and says
	 * whether the answer is streamed; adds a detail per bad field to e. */
	void (*read)(http_req *req, struct app *app, json_t *o, struct arena *a, struct chat_query *q,
	             int *stream, struct err *e);
	json_t *(*reply)(const struct chat_answer *ans); /* the whole answer */
	const struct chat_sse *sse;                      /* NULL: never streamed */
};

/* Answers one question in dialect d (the caller, then the body, then the
 * answer: deferred, or streamed). */
void api_chat_ask(http_req *req, struct app *app, const struct chat_dialect *d);

/* Who may call a chat route: CHAT_ASKS a signed-in user, or (when anonymous
 * chat is on) an anonymous caller within the per-address rate of questions;
 * CHAT_READS the same without spending that rate; CHAT_USERS signed-in
 * users only. */
enum chat_callers { CHAT_ASKS, CHAT_READS, CHAT_USERS };
/* Fills user_id ("" when anonymous) and subject ("user:…" or "ip:…");
 * answers 401/429 and returns -1 when the caller may not. */
int api_chat_caller(http_req *req, struct app *app, enum chat_callers who, char user_id[UUID_STR_LEN],
                    char subject[80]);

/* The optional "session_id" field: bookd's id or a key the client minted
 * (chat_session_key_valid; a whole number is taken as its digits). */
const char *api_chat_session_key(struct arena *a, json_t *o, struct err *e);

/* An optional string field copied into the arena; NULL when absent or "". */
const char *api_chat_opt_str(struct arena *a, json_t *o, const char *key, size_t max, struct err *e);

#endif
