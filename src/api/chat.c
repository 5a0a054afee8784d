/*
 * The chatbot's routes. An answer is produced on the chat executor (it waits
 * on language models), never on an HTTP thread. A streamed answer is a
 * chat_stream shared by the producing thread and the HTTP response: the
 * producer appends Server-Sent Events and wakes the connection at once, so a
 * token leaves bookd as soon as it arrives; when the client goes away the
 * response is freed, the stream is marked gone, and the model call is
 * cancelled at its next read.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/buf.h"
#include "../core/json.h"
#include "../core/log.h"
#include "../core/mem.h"
#include "../core/timeutil.h"
#include "../services/books.h"
#include "../services/preferences.h"
#include "chat_int.h"

#define QUESTION_MAX CHAT_QUESTION_MAX
#define SELECTION_MAX CHAT_SELECTION_MAX
/* A silent stream sends a comment line this often while the model thinks. */
#define KEEPALIVE_MS 1000

struct ask {
	struct app *app;
	struct arena arena; /* the question's strings: outlives the request when streaming */
	char user_id[UUID_STR_LEN], subject[80];
	struct chat_query q;
	const struct chat_dialect *d;
	/* the outcome (non-streamed) */
	struct chat_answer ans;
	struct err e;
	int rc;
	/* streaming */
	pthread_mutex_t lock;
	int refs;
	struct http_stream *hs; /* NULL once the response is gone */
	struct buf out;
	size_t sent;
	int finished, gone;
	int64_t last_write_us;
};

static void ask_unref(struct ask *a)
{
	pthread_mutex_lock(&a->lock);
	int last = --a->refs == 0;
	pthread_mutex_unlock(&a->lock);
	if (!last)
		return;
	chat_answer_free(&a->ans);
	buf_free(&a->out);
	arena_free(&a->arena);
	pthread_mutex_destroy(&a->lock);
	xfree(a);
}

/* ---- parsing ------------------------------------------------------------------ */

int api_chat_caller(http_req *req, struct app *app, enum chat_callers who, char user_id[UUID_STR_LEN],
		    char subject[80])
{
	struct principal p;
	if (api_principal(req, app, &p))
		return -1;
	struct err e = { 0 };
	user_id[0] = '\0';
	if (p.kind == P_ANON) {
		if (who == CHAT_USERS || !app->cfg->chat_anonymous) {
			err_set(&e, ERR_UNAUTHORIZED, "authentication required");
			api_fail(req, &e);
			return -1;
		}
		int retry;
		if (who == CHAT_ASKS && ratelimit_hit(app->chat_limit, http_client_limit_key(req), 1, time_now_ms(), &retry)) {
			err_set(&e, ERR_RATE_LIMITED, "too many questions from this address; try again later");
			api_rate_limited(req, &e, retry);
			return -1;
		}
		snprintf(subject, 80, "ip:%s", http_client_ip(req));
		return 0;
	}
	struct user u;
	if (api_user_of(req, app, &p, &u))
		return -1;
	snprintf(user_id, UUID_STR_LEN, "%s", u.id);
	snprintf(subject, 80, "user:%s", u.id);
	return 0;
}

static int caller(http_req *req, struct app *app, struct ask *a, int need_user)
{
	if (api_chat_caller(req, app, need_user ? CHAT_USERS : CHAT_ASKS, a->user_id, a->subject))
		return -1;
	a->q.user_id = a->user_id[0] ? a->user_id : NULL;
	return 0;
}

const char *api_chat_opt_str(struct arena *a, json_t *o, const char *key, size_t max, struct err *e)
{
	const char *v = NULL;
	if (jget_str(o, key, J_OPTIONAL, 0, max, &v, e) <= 0 || !v || !*v)
		return NULL;
	return arena_strdup(a, v);
}

static const char *opt_str(struct ask *a, json_t *o, const char *key, size_t max, struct err *e)
{
	return api_chat_opt_str(&a->arena, o, key, max, e);
}

const char *api_chat_session_key(struct arena *a, json_t *o, struct err *e)
{
	json_t *v = json_object_get(o, "session_id");
	const char *sid = json_is_integer(v) ? arena_printf(a, "%" JSON_INTEGER_FORMAT, json_integer_value(v))
					     : api_chat_opt_str(a, o, "session_id", CHAT_KEY_MAX, e);
	if (sid && !chat_session_key_valid(sid)) {
		err_field(e, "session_id", "must be 1 to 128 printable ASCII characters");
		sid = NULL;
	}
	return sid;
}

/* POST /api/v1/chatbot/query */
static void read_native(http_req *req, struct app *app, json_t *o, struct arena *a, struct chat_query *q,
			int *stream, struct err *e)
{
	(void)app;
	const char *question = NULL;
	(void)jget_str(o, "question", J_REQUIRED, 1, QUESTION_MAX, &question, e);
	q->question = question ? arena_strdup(a, question) : NULL;
	q->session_id = api_chat_session_key(a, o, e);
	q->selected_text = api_chat_opt_str(a, o, "selected_text", SELECTION_MAX, e);
	q->book_id = api_chat_opt_str(a, o, "book_id", 36, e);
	q->chapter_id = api_chat_opt_str(a, o, "chapter_id", 36, e);
	q->language = api_chat_opt_str(a, o, "language", 35, e);
	if (q->language && !books_language_valid(q->language))
		err_field(e, "language", "must be a BCP 47 language tag, e.g. ur");
	if (q->book_id && !uuid_valid(q->book_id, strlen(q->book_id)))
		err_field(e, "book_id", "must be a book id");
	if (q->chapter_id && !uuid_valid(q->chapter_id, strlen(q->chapter_id)))
		err_field(e, "chapter_id", "must be a chapter id");
	long long top_k = 0;
	if (jget_int(o, "top_k", J_OPTIONAL, 1, 20, &top_k, e) > 0)
		q->top_k = (int)top_k;
	int s = 0;
	(void)jget_bool(o, "stream", J_OPTIONAL, &s, e);
	const char *accept = http_header(req, "Accept");
	*stream = s || (accept && strstr(accept, "text/event-stream"));
}

static int parse(http_req *req, struct ask *a, json_t *o, int *stream)
{
	struct err e = { 0 };
	*stream = 0;
	a->d->read(req, a->app, o, &a->arena, &a->q, stream, &e);
	if (!a->d->sse)
		*stream = 0;
	if (e.code) {
		api_fail(req, &e);
		return -1;
	}
	/* No language given: the signed-in reader's preferred one. */
	json_t *prefs = NULL;
	int64_t at;
	struct err pe = { 0 };
	if (!a->q.language && a->q.user_id && prefs_get(a->app->db, a->q.user_id, &prefs, &at, &pe) == 0) {
		json_t *l = json_object_get(prefs, "preferred_language");
		if (json_is_string(l) && books_language_valid(json_string_value(l)))
			a->q.language = arena_strdup(&a->arena, json_string_value(l));
	}
	json_decref(prefs);
	return 0;
}

static struct ask *ask_new(struct app *app)
{
	struct ask *a = xcalloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->app = app;
	arena_init(&a->arena, 8192);
	buf_init(&a->out, (size_t)16 << 20);
	pthread_mutex_init(&a->lock, NULL);
	a->refs = 1;
	a->q.subject = a->subject;
	a->last_write_us = time_mono_us(); /* the first ": waiting" a second from now */
	return a;
}

/* ---- non-streamed ------------------------------------------------------------- */

/* An answer that shutdown cancelled says so (503), not "cancelled". */
static void shutdown_error(struct ask *a)
{
	if (a->rc && stop_fired(a->app->cancel))
		a->rc = err_set(&a->e, ERR_UNAVAILABLE, "the server is shutting down; please ask again");
}

static void ask_run(void *ctx)
{
	struct ask *a = ctx;
	a->rc = chat_ask(a->app->chat, &a->arena, &a->q, &a->ans, &a->e);
	shutdown_error(a);
}

static void ask_done(http_req *req, void *app)
{
	struct ask *a = http_defer_ctx(req);
	if (a->rc) {
		if (a->rc == ERR_RATE_LIMITED)
			http_set_header(req, "Retry-After", "3600");
		api_fail(req, &a->e);
	} else {
		api_json(req, 200, a->d->reply(&a->ans));
	}
	ask_unref(a);
}

/* ---- streamed -------------------------------------------------------------------- */

static int cancelled(void *ctx);

/* One event in the dialect's framing. */
static int frame(struct buf *b, const char *event, const char *text)
{
	return event ? buf_printf(b, "event: %s\ndata: %s\n\n", event, text) : buf_printf(b, "data: %s\n\n", text);
}

/* Queues an event for the reader (takes `data`); `last` ends the stream after it. */
static int push(struct ask *a, const char *event, json_t *data, int last)
{
	char *text = data ? json_dumps(data, JSON_COMPACT) : NULL;
	json_decref(data);
	pthread_mutex_lock(&a->lock);
	int gone = a->gone;
	int queued = !gone && text && frame(&a->out, event, text) == 0;
	if (last)
		a->finished = 1;
	if ((queued || last) && a->hs)
		http_stream_wake(a->hs);
	pthread_mutex_unlock(&a->lock);
	free(text);
	return gone;
}

static int on_passages(void *ctx, json_t *passages)
{
	struct ask *a = ctx;
	const struct chat_sse *w = a->d->sse;
	if (!w->passages_json)
		return cancelled(a);
	return push(a, w->passages, w->passages_json(passages), 0);
}

static int on_delta(void *ctx, const char *text, size_t n)
{
	struct ask *a = ctx;
	const struct chat_sse *w = a->d->sse;
	return push(a, w->delta, w->delta_json(text, n), 0);
}

/* The reader left, or shutdown stopped waiting for answers. */
static int cancelled(void *ctx)
{
	struct ask *a = ctx;
	if (stop_fired(a->app->cancel))
		return 1;
	pthread_mutex_lock(&a->lock);
	int gone = a->gone;
	pthread_mutex_unlock(&a->lock);
	return gone;
}

static void stream_run(void *ctx)
{
	struct ask *a = ctx;
	a->rc = chat_ask(a->app->chat, &a->arena, &a->q, &a->ans, &a->e);
	shutdown_error(a);
	const struct chat_sse *w = a->d->sse;
	json_t *d;
	const char *event;
	if (a->rc == 0 && !a->ans.broken) {
		event = w->done;
		d = w->done_json(&a->ans);
	} else {
		int code = a->rc ? a->rc : ERR_UNAVAILABLE;
		const char *msg = a->rc ? (code == ERR_INTERNAL ? "internal error" : a->e.msg)
					: "the answer broke off; please ask again";
		event = w->error;
		d = w->error_json(err_code_name(code), msg);
	}
	/* The last event and the end of the stream go out on one wake. */
	push(a, event, d, 1);
	ask_unref(a);
}

static long stream_next(void *ctx, char *buf, size_t max, int final)
{
	struct ask *a = ctx;
	long n = 0;
	pthread_mutex_lock(&a->lock);
	size_t avail = a->out.n - a->sent;
	if (avail) {
		n = (long)(avail < max ? avail : max);
		memcpy(buf, a->out.p + a->sent, (size_t)n);
		a->sent += (size_t)n;
		if (a->sent == a->out.n) {
			buf_reset(&a->out);
			a->sent = 0;
		}
	} else if (a->finished) {
		n = -1;
	} else if (final) {
		/* The server is stopping before the answer is done: say so, last,
		 * in the dialect's own error shape. */
		const struct chat_sse *w = a->d->sse;
		json_t *d = w->error_json("unavailable", "server is shutting down");
		char *text = d ? json_dumps(d, JSON_COMPACT) : NULL;
		struct buf bye;
		buf_init(&bye, max);
		n = text && frame(&bye, w->error, text) == 0 ? (long)bye.n : -1;
		if (n > 0)
			memcpy(buf, bye.p, (size_t)n);
		buf_free(&bye);
		free(text);
		json_decref(d);
		a->finished = 1;
		a->gone = 1; /* a model call still running stops */
	} else if (time_mono_us() - a->last_write_us >= KEEPALIVE_MS * 1000 && max > 16) {
		/* Waiting on the model: a comment line each second makes a closed
		 * connection show up (only a write can tell), so the model call is
		 * cancelled soon after the reader leaves, even before a token. */
		memcpy(buf, ": waiting\n\n", 11);
		n = 11;
	}
	if (n > 0)
		a->last_write_us = time_mono_us();
	pthread_mutex_unlock(&a->lock);
	return n;
}

static void stream_gone(void *ctx)
{
	struct ask *a = ctx;
	pthread_mutex_lock(&a->lock);
	a->hs = NULL;
	a->gone = 1; /* a model call still running is cancelled at its next read */
	pthread_mutex_unlock(&a->lock);
	ask_unref(a);
}

/* ---- routes --------------------------------------------------------------------- */

void api_chat_ask(http_req *req, struct app *app, const struct chat_dialect *d)
{
	struct ask *a = ask_new(app);
	struct err e = { 0 };
	if (!a) {
		err_set(&e, ERR_INTERNAL, "out of memory");
		api_fail(req, &e);
		return;
	}
	a->d = d;
	json_t *o = NULL;
	int stream = 0;
	if (caller(req, app, a, 0) || api_read_object(req, &o) || parse(req, a, o, &stream)) {
		json_decref(o);
		ask_unref(a);
		return;
	}
	json_decref(o);
	a->q.cancelled = cancelled;
	a->q.ctx = a;
	if (!stream) {
		if (http_defer(req, app->chat_exec, ask_run, ask_done, a)) {
			ask_unref(a);
			err_set(&e, ERR_UNAVAILABLE, "too many questions in progress; try again shortly");
			api_fail(req, &e);
		}
		return;
	}
	a->q.on_passages = on_passages;
	a->q.on_delta = on_delta;
	a->refs = 2; /* the producer and the response */
	if (executor_submit(app->chat_exec, stream_run, a)) {
		a->refs = 1;
		ask_unref(a);
		err_set(&e, ERR_UNAVAILABLE, "too many questions in progress; try again shortly");
		api_fail(req, &e);
		return;
	}
	/* On failure the response is gone (stream_gone ran): `a` is the producer's alone. */
	struct http_stream *hs = http_respond_stream(req, "text/event-stream", KEEPALIVE_MS, stream_next, stream_gone, a);
	if (hs) {
		pthread_mutex_lock(&a->lock);
		a->hs = hs;
		pthread_mutex_unlock(&a->lock);
	}
}

/* ---- the native dialect ------------------------------------------------------------ */

static json_t *native_passages(json_t *passages)
{
	return json_pack("{s:O}", "passages", passages);
}

static json_t *native_delta(const char *text, size_t n)
{
	return json_pack("{s:s%}", "text", text, n);
}

static json_t *native_error(const char *code, const char *message)
{
	return json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", message);
}

static const struct chat_sse native_sse = {
	"citations", "delta", "done", "error", native_passages, native_delta, chat_answer_json, native_error,
};

static const struct chat_dialect native = { read_native, chat_answer_json, &native_sse };

void api_chat_query(http_req *req, void *app)
{
	api_chat_ask(req, app, &native);
}

void api_chat_context(http_req *req, void *app_)
{
	struct app *app = app_;
	struct ask *a = ask_new(app);
	struct err e = { 0 };
	json_t *o = NULL;
	if (!a || caller(req, app, a, 0) || api_read_object(req, &o)) {
		if (!a) {
			err_set(&e, ERR_INTERNAL, "out of memory");
			api_fail(req, &e);
		}
		json_decref(o);
		if (a)
			ask_unref(a);
		return;
	}
	const char *text = NULL;
	(void)jget_str(o, "text", J_REQUIRED, 1, SELECTION_MAX, &text, &e);
	const char *session = api_chat_session_key(&a->arena, o, &e), *book = opt_str(a, o, "book_id", 36, &e),
		   *chapter = opt_str(a, o, "chapter_id", 36, &e);
	if (book && !uuid_valid(book, strlen(book)))
		err_field(&e, "book_id", "must be a book id");
	if (chapter && !uuid_valid(chapter, strlen(chapter)))
		err_field(&e, "chapter_id", "must be a chapter id");
	char sid[CHAT_KEY_MAX + 1], cid[UUID_STR_LEN];
	if (!e.code && chat_add_context(app->chat, http_arena(req), a->q.user_id, session, text, book, chapter, sid, cid,
					&e) == 0)
		api_json(req, 201, json_pack("{s:s, s:s}", "session_id", sid, "context_id", cid));
	else
		api_fail(req, &e);
	json_decref(o);
	ask_unref(a);
}

static json_t *session_json(const struct chat_session *s)
{
	return json_pack("{s:s, s:o, s:o, s:I, s:o, s:o}", "id", s->id, "title", jstr_or_null(s->title), "book_id",
			 jstr_or_null(s->book_id), "message_count", (json_int_t)s->messages, "created_at",
			 api_time(s->created_at), "updated_at", api_time(s->updated_at));
}

/* The session routes are for signed-in users; anonymous chats have no list. */
static int user_of(http_req *req, struct app *app, char id[UUID_STR_LEN])
{
	struct ask a = { 0 };
	if (caller(req, app, &a, 1))
		return -1;
	snprintf(id, UUID_STR_LEN, "%s", a.user_id);
	return 0;
}

void api_chat_sessions(http_req *req, void *app_)
{
	struct app *app = app_;
	char uid[UUID_STR_LEN];
	int limit;
	const char *cursor;
	if (user_of(req, app, uid) || api_page_params(req, &limit, &cursor))
		return;
	struct chat_session *items;
	int n;
	char *next;
	struct err e = { 0 };
	if (chat_sessions(app->chat, http_arena(req), uid, cursor, limit, &items, &n, &next, &e)) {
		api_fail(req, &e);
		return;
	}
	json_t *arr = json_array();
	for (int i = 0; i < n; i++)
		json_array_append_new(arr, session_json(&items[i]));
	api_json(req, 200, json_pack("{s:o, s:o}", "items", arr, "next_cursor", jstr_or_null(next)));
}

void api_chat_session_get(http_req *req, void *app_)
{
	struct app *app = app_;
	char uid[UUID_STR_LEN];
	if (user_of(req, app, uid))
		return;
	struct chat_session s;
	struct err e = { 0 };
	if (chat_session(app->chat, http_arena(req), uid, http_param(req, 0), &s, &e))
		api_fail(req, &e);
	else
		api_json(req, 200, session_json(&s));
}

void api_chat_session_delete(http_req *req, void *app_)
{
	struct app *app = app_;
	char uid[UUID_STR_LEN];
	if (user_of(req, app, uid))
		return;
	struct err e = { 0 };
	if (chat_session_delete(app->chat, uid, http_param(req, 0), &e))
		api_fail(req, &e);
	else
		http_respond_empty(req, 204);
}

void api_chat_messages(http_req *req, void *app_)
{
	struct app *app = app_;
	char uid[UUID_STR_LEN];
	int limit;
	const char *cursor;
	if (user_of(req, app, uid) || api_page_params(req, &limit, &cursor))
		return;
	struct chat_message *items;
	int n;
	char *next;
	struct err e = { 0 };
	if (chat_messages(app->chat, http_arena(req), uid, http_param(req, 0), cursor, limit, &items, &n, &next, &e)) {
		api_fail(req, &e);
		return;
	}
	json_t *arr = json_array();
	for (int i = 0; i < n; i++) {
		const struct chat_message *m = &items[i];
		json_t *cit = m->citations ? json_loads(m->citations, 0, NULL) : NULL;
		json_array_append_new(
			arr, json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:{s:I, s:I}, s:I, s:o}", "id", m->id, "role",
				       m->role, "content", m->content, "citations", cit ? cit : json_array(),
				       "selected_text", jstr_or_null(m->selected_text), "provider",
				       jstr_or_null(m->provider), "model", jstr_or_null(m->model), "usage",
				       "prompt_tokens", (json_int_t)m->prompt_tokens, "completion_tokens",
				       (json_int_t)m->completion_tokens, "latency_ms", (json_int_t)m->latency_ms,
				       "created_at", api_time(m->created_at)));
	}
	api_json(req, 200, json_pack("{s:o, s:o}", "items", arr, "next_cursor", jstr_or_null(next)));
}
