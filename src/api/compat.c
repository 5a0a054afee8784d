/*
 * The chat contracts of existing book sites, over the one chat service.
 * Their widgets were written against small backends of their own; each
 * dialect here is a request reader and a reply writer (chat_int.h) for the
 * producer in api/chat.c, so an alias costs a table entry, not a handler:
 *
 *   route                                    reader   reply / stream
 *   POST /chat, /api/chat, /api/ask,         widget   union JSON
 *        /api/query, /chat/run,
 *        /api/ask-selection
 *   POST /api/v1/chat                        widget   union JSON, or named SSE
 *                                                     (token, done, error) when
 *                                                     asked (Accept, "stream")
 *   POST /v1/chat/ask/stream                 widget   unnamed SSE data lines
 *                                                     {"type": delta|done|error}
 *
 * The widget reader takes the question from the first present of message,
 * query, question, query_text, question_text; the selection from
 * selected_text, selection, selected_context, context.selectedText; the book
 * from book_id, ?book=, or BOOKD_DEFAULT_BOOK (a value that is no book id,
 * such as a site's slug, is passed over); k or top_k (clamped to 1..20).
 * Other fields (user_id, mode, history, user_context) are accepted and
 * ignored: identity comes from the credentials, memory from the session.
 * The union reply carries every name these clients read: answer, response,
 * response_text, message, session_id, message_id, citations (always an
 * array), sources and timestamp, beside the native answer's fields.
 *
 * A session id a client minted is a key (services/chat.c): created on first
 * use, kept, never replaced. The session-first routes mint one without
 * writing anything; history and feedback routes read and rate what the
 * caller's own conversations hold.
 */
#include <stdio.h>
#include <string.h>

#include "../core/json.h"
#include "../core/timeutil.h"
#include "../services/books.h"
#include "chat_int.h"

#define COMMENT_MAX 2000
#define HISTORY_MAX 100

/* ---- the widget reader ------------------------------------------------------------- */

static const char *const question_keys[] = {"message", "query", "question", "query_text", "question_text"};
static const char *const selection_keys[] = {"selected_text", "selection", "selected_context"};

/* The first of `keys` present (and not null) in o, or NULL. */
static const char *first_key(json_t *o, const char *const *keys, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		json_t *v = json_object_get(o, keys[i]);
		if (v && !json_is_null(v))
			return keys[i];
	}
	return NULL;
}

static const char *uuid_or_null(const char *s)
{
	return s && uuid_valid(s, strlen(s)) ? s : NULL;
}

static void read_widget(http_req *req, struct app *app, json_t *o, struct arena *a, struct chat_query *q,
                        struct err *e)
{
	const char *key = first_key(o, question_keys, ARRAY_LEN(question_keys));
	const char *question = NULL;
	(void)jget_str(o, key ? key : "message", J_REQUIRED, 1, CHAT_QUESTION_MAX, &question, e);
	q->question = question ? arena_strdup(a, question) : NULL;
	key = first_key(o, selection_keys, ARRAY_LEN(selection_keys));
	if (key) {
		q->selected_text = api_chat_opt_str(a, o, key, CHAT_SELECTION_MAX, e);
	} else {
		json_t *ctx = json_object_get(o, "context");
		if (json_is_object(ctx) && json_is_string(json_object_get(ctx, "selectedText"))) {
			const char *v = NULL;
			if (jget_str(ctx, "selectedText", J_OPTIONAL, 0, CHAT_SELECTION_MAX, &v, e) > 0 &&
			    v && *v)
				q->selected_text = arena_strdup(a, v);
		}
	}
	q->session_id = api_chat_session_key(a, o, e);
	json_t *book = json_object_get(o, "book_id");
	const char *b = uuid_or_null(json_is_string(book) ? json_string_value(book) : NULL);
	b = b ? b : uuid_or_null(http_query(req, "book"));
	b = b ? b : uuid_or_null(app->cfg->default_book);
	q->book_id = b ? arena_strdup(a, b) : NULL;
	json_t *chapter = json_object_get(o, "chapter_id");
	b = uuid_or_null(json_is_string(chapter) ? json_string_value(chapter) : NULL);
	q->chapter_id = b ? arena_strdup(a, b) : NULL;
	json_t *lang = json_object_get(o, "language");
	lang = json_is_string(lang) ? lang : json_object_get(o, "lang");
	if (json_is_string(lang) && books_language_valid(json_string_value(lang)))
		q->language = arena_strdup(a, json_string_value(lang));
	json_t *k = json_object_get(o, "top_k");
	k = json_is_integer(k) ? k : json_object_get(o, "k");
	if (json_is_integer(k)) {
		json_int_t v = json_integer_value(k);
		q->top_k = v < 1 ? 1 : v > 20 ? 20 : (int)v;
	}
}

/* The JSON-only aliases: "stream" is accepted and ignored. */
static void read_json(http_req *req, struct app *app, json_t *o, struct arena *a, struct chat_query *q,
                      int *stream, struct err *e)
{
	read_widget(req, app, o, a, q, e);
	*stream = 0;
}

/* POST /api/v1/chat: streamed when asked for. */
static void read_v1(http_req *req, struct app *app, json_t *o, struct arena *a, struct chat_query *q,
                    int *stream, struct err *e)
{
	read_widget(req, app, o, a, q, e);
	const char *accept = http_header(req, "Accept");
	*stream =
	    json_is_true(json_object_get(o, "stream")) || (accept && strstr(accept, "text/event-stream"));
}

/* POST /v1/chat/ask/stream: always streamed. */
static void read_stream(http_req *req, struct app *app, json_t *o, struct arena *a, struct chat_query *q,
                        int *stream, struct err *e)
{
	read_widget(req, app, o, a, q, e);
	*stream = 1;
}

/* ---- the union reply ---------------------------------------------------------------- */

static json_t *sources_of(json_t *citations)
{
	json_t *arr = json_array();
	size_t i;
	json_t *c;
	json_array_foreach(citations, i, c)
	{
		const char *anchor = json_string_value(json_object_get(c, "anchor"));
		json_t *title = json_object_get(c, "chapter_title");
		json_t *s =
		    json_pack("{s:O, s:O, s:s, s:O, s:O, s:O}", "title", title, "section",
		              json_object_get(c, "heading"), "url", "", "chapter", title, "chunk_text",
		              json_object_get(c, "quote"), "score", json_object_get(c, "score"));
		if (s && anchor)
			json_object_set_new(s, "url", json_sprintf("#%s", anchor));
		if (!s || json_array_append_new(arr, s)) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

static json_t *union_reply(const struct chat_answer *ans)
{
	json_t *o = chat_answer_json(ans);
	json_t *sources = o ? sources_of(ans->citations) : NULL;
	if (!sources || json_object_set_new(o, "sources", sources) ||
	    json_object_set_new(o, "response", json_string(ans->answer)) ||
	    json_object_set_new(o, "response_text", json_string(ans->answer)) ||
	    json_object_set_new(o, "message", json_string(ans->answer))) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

/* ---- streamed dialects ---------------------------------------------------------------- */

/* Named events: token {content}, done {session_id, message_id, citations},
 * error {code, message}. */
static json_t *named_delta(const char *text, size_t n)
{
	return json_pack("{s:s%}", "content", text, n);
}

static json_t *named_done(const struct chat_answer *a)
{
	return json_pack("{s:s, s:s, s:O}", "session_id", a->session_id, "message_id", a->message_id,
	                 "citations", a->citations);
}

static json_t *named_error(const char *code, const char *message)
{
	return json_pack("{s:s, s:s}", "code", code, "message", message);
}

static const struct chat_sse named_sse = {NULL, "token",     "done",     "error",
                                          NULL, named_delta, named_done, named_error};

/* Unnamed data lines: {"type":"delta","data":text}, {"type":"done",…},
 * {"type":"error","data":message}. */
static json_t *typed_delta(const char *text, size_t n)
{
	return json_pack("{s:s, s:s%}", "type", "delta", "data", text, n);
}

static json_t *typed_done(const struct chat_answer *a)
{
	return json_pack("{s:s, s:s, s:s}", "type", "done", "session_id", a->session_id, "message_id",
	                 a->message_id);
}

static json_t *typed_error(const char *code, const char *message)
{
	return json_pack("{s:s, s:s, s:s}", "type", "error", "data", message, "code", code);
}

static const struct chat_sse typed_sse = {NULL, NULL, NULL, NULL, NULL, typed_delta, typed_done, typed_error};

/* ---- the dialects --------------------------------------------------------------------- */

enum { D_JSON, D_V1, D_STREAM };

static const struct chat_dialect dialects[] = {
    [D_JSON] = {read_json, union_reply, NULL},
    [D_V1] = {read_v1, union_reply, &named_sse},
    [D_STREAM] = {read_stream, union_reply, &typed_sse},
};

void api_compat_chat(http_req *req, void *app)
{
	api_chat_ask(req, app, &dialects[D_JSON]);
}

void api_compat_v1_chat(http_req *req, void *app)
{
	api_chat_ask(req, app, &dialects[D_V1]);
}

void api_compat_ask_stream(http_req *req, void *app)
{
	api_chat_ask(req, app, &dialects[D_STREAM]);
}

/* ---- sessions, history, feedback ------------------------------------------------------ */

/* POST /api/v1/sessions, /api/v1/chat/session: a new key, nothing written
 * (the conversation is stored with its first exchange). A body's user_id is
 * ignored: whose session it is comes from the credentials. */
void api_compat_session_new(http_req *req, void *app)
{
	char uid[UUID_STR_LEN], subject[80], sid[UUID_STR_LEN];
	struct err e = {0};
	if (api_chat_caller(req, app, CHAT_READS, uid, subject))
		return;
	if (uuid_v7(sid)) {
		err_set(&e, ERR_INTERNAL, "no randomness");
		api_fail(req, &e);
		return;
	}
	api_json(req, 201, json_pack("{s:s}", "session_id", sid));
}

/* GET /api/v1/sessions/{id}, /chat/history/{id}, /api/history/{id}: the
 * newest messages, oldest first; none for a key not used yet. */
void api_compat_history(http_req *req, void *app_)
{
	struct app *app = app_;
	char uid[UUID_STR_LEN], subject[80];
	if (api_chat_caller(req, app, CHAT_READS, uid, subject))
		return;
	const char *sid = http_param(req, 0);
	struct chat_message *items = NULL;
	int n = 0;
	struct err e = {0};
	if (!chat_session_key_valid(sid)) {
		err_set(&e, ERR_NOT_FOUND, "chat session not found");
		api_fail(req, &e);
		return;
	}
	if (chat_history(app->chat, http_arena(req), uid[0] ? uid : NULL, sid, HISTORY_MAX, &items, &n, &e)) {
		api_fail(req, &e);
		return;
	}
	json_t *arr = json_array();
	for (int i = 0; arr && i < n; i++) {
		const struct chat_message *m = &items[i];
		int bot = strcmp(m->role, "user") != 0;
		if (json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:o}", "id", m->id, "role",
		                                         m->role, "sender", bot ? "bot" : "user", "content",
		                                         m->content, "timestamp", api_time(m->created_at)))) {
			json_decref(arr);
			arr = NULL;
		}
	}
	api_json(req, 200, arr ? json_pack("{s:s, s:o}", "session_id", sid, "messages", arr) : NULL);
}

/* rating: an integer from -1 to 5 (thumbs as -1/1, or stars), "up" / "down"
 * (1 / -1), or true / false (1 / -1). */
static int read_rating(json_t *o, int *rating, struct err *e)
{
	json_t *v = json_object_get(o, "rating");
	const char *s = json_string_value(v);
	int rc = 0;
	if (json_is_integer(v) && json_integer_value(v) >= -1 && json_integer_value(v) <= 5) {
		*rating = (int)json_integer_value(v);
	} else if (json_is_boolean(v)) {
		*rating = json_is_true(v) ? 1 : -1;
	} else if (s && (!strcmp(s, "up") || !strcmp(s, "down"))) {
		*rating = s[0] == 'u' ? 1 : -1;
	} else {
		err_field(e, "rating",
		          v ? "must be an integer from -1 to 5, \"up\" or \"down\"" : "is required");
		rc = -1;
	}
	return rc;
}

/* POST /api/feedback {message_id, rating, comment?} */
void api_compat_feedback(http_req *req, void *app_)
{
	struct app *app = app_;
	char uid[UUID_STR_LEN], subject[80], id[UUID_STR_LEN];
	json_t *o = NULL;
	if (api_chat_caller(req, app, CHAT_READS, uid, subject) || api_read_object(req, &o))
		return;
	struct err e = {0};
	const char *message_id = NULL, *comment = NULL;
	int rating = 0;
	(void)jget_str(o, "message_id", J_REQUIRED, 1, 64, &message_id, &e);
	(void)read_rating(o, &rating, &e);
	(void)jget_str(o, "comment", J_OPTIONAL, 0, COMMENT_MAX, &comment, &e);
	if (comment && !*comment)
		comment = NULL;
	if (!e.code && chat_feedback_put(app->chat, http_arena(req), uid[0] ? uid : NULL, subject, message_id,
	                                 rating, comment, id, &e) == 0)
		api_json(req, 201,
		         json_pack("{s:s, s:s, s:i, s:o}", "id", id, "message_id", message_id, "rating",
		                   rating, "comment", jstr_or_null(comment)));
	else
		api_fail(req, &e);
	json_decref(o);
}

/* GET /api/v1/feedback: editors and admins. */
void api_feedback_list(http_req *req, void *app_)
{
	struct app *app = app_;
	struct principal p;
	int limit;
	const char *cursor;
	struct err e = {0};
	if (api_principal(req, app, &p) || api_page_params(req, &limit, &cursor))
		return;
	if (p.kind == P_ANON) {
		err_set(&e, ERR_UNAUTHORIZED, "authentication required");
		api_fail(req, &e);
		return;
	}
	if (p.kind != P_MASTER && p.role < ROLE_EDITOR) {
		err_set(&e, ERR_FORBIDDEN, "feedback is for editors and admins");
		api_fail(req, &e);
		return;
	}
	struct chat_feedback *items;
	int n;
	char *next;
	if (chat_feedback_list(app->chat, http_arena(req), cursor, limit, &items, &n, &next, &e)) {
		api_fail(req, &e);
		return;
	}
	json_t *arr = json_array();
	for (int i = 0; arr && i < n; i++) {
		const struct chat_feedback *f = &items[i];
		if (json_array_append_new(
		        arr, json_pack("{s:s, s:s, s:s, s:o, s:o, s:i, s:o, s:o, s:o}", "id", f->id,
		                       "message_id", f->message_id, "session_id", f->session_id, "user_id",
		                       jstr_or_null(f->user_id), "book_id", jstr_or_null(f->book_id),
		                       "rating", f->rating, "comment", jstr_or_null(f->comment), "answer",
		                       jstr_or_null(f->answer), "created_at", api_time(f->created_at)))) {
			json_decref(arr);
			arr = NULL;
		}
	}
	api_json(req, 200,
	         arr ? json_pack("{s:o, s:o}", "items", arr, "next_cursor", jstr_or_null(next)) : NULL);
}
