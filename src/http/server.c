#include "server.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>

#include "../core/buf.h"
#include "../core/log.h"
#include "../core/mem.h"
#include "../core/timeutil.h"
#include "../core/utf8.h"
#include "../core/uuid.h"
#include "conns.h"
#include "listener.h"
#include "proxy.h"

#define MAX_CORS_ORIGINS 16
#define REQUEST_ID_MAX 128
#define STREAM_TICK_MS 100 /* how often parked streams are checked for being due */
#define MAX_FORM_FIELDS 8
#define MAX_FORM_VALUE 1024
/* libmicrohttpd answers a request head that does not fit its per-connection
 * memory itself, with an HTML page. Its memory is twice the largest head we
 * take, so a head up to twice too large still gets our JSON 431. That memory
 * is zeroed after every request of a keep-alive connection: 32 KiB, not more,
 * or the zeroing alone costs a tenth of a small request. */
#define MAX_HEAD (16 * 1024)
#define CONN_MEMORY (2 * MAX_HEAD)
#define ABANDON_WAIT_MS 1000 /* for the 503s of deferred requests at stop */

/* One libmicrohttpd daemon with one thread of its own; the listener hands
 * each new connection to the least loaded (see pick_worker). */
struct http_worker {
	struct http_server *s;
	struct MHD_Daemon *d;
	atomic_int busy;   /* inside a libmicrohttpd callback of ours: a handler runs */
	atomic_long conns; /* connections it holds */
};

#define MAX_WORKERS 256

struct http_server {
	struct http_worker workers[MAX_WORKERS];
	int nworkers;
	unsigned next_worker; /* where the search for the least loaded starts (accepting thread only) */
	struct listener listen;
	struct http_server_opts o;
	atomic_ulong next_id;
	unsigned id_prefix;
	int cors_any;
	int ncors;
	char *cors[MAX_CORS_ORIGINS];
	char *cors_copy;
	int port;
	struct proxies trusted;
	struct conns conns;
	long hard_limit; /* connections refused at accept past this */
	/* requests in flight, deferred requests, for drain and stop */
	pthread_mutex_t lock;
	pthread_cond_t changed; /* inflight, resuming or abandoned went down */
	atomic_long inflight;	/* counted requests (not watches) */
	http_req *pending;	/* deferred requests whose work runs (under lock) */
	int resuming;		/* deferred work done, resume under way (under lock) */
	int abandoned;		/* answered 503 at stop, not yet complete (under lock) */
	/* streams waiting for their next event */
	pthread_mutex_t park_lock;
	struct http_stream *parked;
	pthread_t ticker;
	int ticker_started;
	atomic_int quiesced; /* not accepting: responses close, watches end */
	atomic_int ending;   /* every stream gets its final call */
	atomic_int stopping; /* streams end at once, the ticker exits */
};

struct http_stream {
	struct http_server *srv;
	struct MHD_Connection *conn;
	http_req *req; /* only while the handler runs (http_stream_watch) */
	http_stream_fn fn;
	void (*free_fn)(void *);
	void *ctx;
	struct http_stream *next, **pprev; /* in srv->parked (under park_lock) */
	int64_t poll_us;  /* a parked stream's fn is asked again after this long */
	int64_t due_us;	  /* ... that is, at this time (monotonic; under park_lock) */
	int parked;	  /* in srv->parked, connection suspended (under park_lock) */
	int wake_pending; /* woken while not parked: ask fn again before parking */
	atomic_int watch;
};

struct resp_header {
	struct resp_header *next;
	const char *name, *value;
};

/* A deferred request's work: running, done (the connection is resumed by the
 * executor thread), or abandoned (the server stopped first and answered). */
enum { DEFER_NONE, DEFER_PENDING, DEFER_DONE, DEFER_ABANDONED };

struct http_req {
	struct MHD_Connection *conn;
	struct http_server *srv;
	struct conn *c; /* the connection's accounting, or NULL */
	atomic_int refs; /* the connection, and deferred work while it runs */
	int counted;	 /* in srv->inflight */
	struct arena arena;
	int method;
	const char *method_str;
	char *path;
	size_t path_len;
	int nparams;
	char *params[ROUTER_MAX_PARAMS];
	struct buf body;
	size_t discarded;
	/* set while reading the body: answer this instead of routing */
	int fail_status;
	const char *fail_code, *fail_msg, *fail_field;
	const char *origin; /* an allowed Origin, or NULL */
	char client_ip[64];
	void *auth;
	struct route_match match;
	int matched;
	/* ROUTE_UPLOAD */
	int upload_fd; /* -1: none */
	char *upload_path;
	struct http_upload upload;
	int has_upload, upload_kept;
	size_t upload_max;
	struct MHD_PostProcessor *pp;
	int nform;
	const char *form_keys[MAX_FORM_FIELDS];
	char *form_vals[MAX_FORM_FIELDS];
	/* deferred work (http_defer) */
	int deferred;		/* suspended, waiting for the executor */
	atomic_int defer_state; /* DEFER_* */
	http_req *pnext, **pprev; /* in srv->pending (under srv->lock) */
	http_handler defer_fn;
	executor_fn defer_work;
	void *defer_ctx;
	char request_id[REQUEST_ID_MAX + 1];
	int64_t start_us;
	/* the response */
	struct MHD_Response *resp;
	int status;
	size_t resp_bytes;
	int close; /* answered before the body was read: close the connection */
	struct resp_header *headers, **headers_tail;
};

/* ---- the handler-facing API ------------------------------------------------ */

int http_method(const http_req *r) { return r->method; }
const char *http_path(const http_req *r) { return r->path; }
struct arena *http_arena(http_req *r) { return &r->arena; }
const char *http_request_id(const http_req *r) { return r->request_id; }
void http_set_auth(http_req *r, void *auth) { r->auth = auth; }
void *http_auth(const http_req *r) { return r->auth; }

const char *http_param(const http_req *r, int i)
{
	return i >= 0 && i < r->nparams ? r->params[i] : NULL;
}

const char *http_header(http_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *http_query(http_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_body(const http_req *r, size_t *len)
{
	*len = r->body.n;
	return r->body.p ? r->body.p : "";
}

#define MAX_FORWARD_LINES 8

struct forward_lines {
	const char *xff[MAX_FORWARD_LINES], *fwd[MAX_FORWARD_LINES];
	int nxff, nfwd;
};

static enum MHD_Result collect_forward(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct forward_lines *f = cls;
	(void)kind;
	if (!value)
		return MHD_YES;
	if (strcasecmp(key, "X-Forwarded-For") == 0 && f->nxff < MAX_FORWARD_LINES)
		f->xff[f->nxff++] = value;
	else if (strcasecmp(key, "Forwarded") == 0 && f->nfwd < MAX_FORWARD_LINES)
		f->fwd[f->nfwd++] = value;
	return MHD_YES;
}

const char *http_client_ip(http_req *r)
{
	if (r->client_ip[0])
		return r->client_ip;
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	struct ipaddr peer, client;
	if (ipaddr_from_sockaddr(ci ? ci->client_addr : NULL, &peer)) {
		snprintf(r->client_ip, sizeof(r->client_ip), "unknown");
		return r->client_ip;
	}
	client = peer;
	if (r->srv->trusted.n && proxies_contains(&r->srv->trusted, &peer)) {
		struct forward_lines f = { 0 };
		MHD_get_connection_values(r->conn, MHD_HEADER_KIND, collect_forward, &f);
		proxies_client(&r->srv->trusted, &peer, f.xff, f.nxff, f.fwd, f.nfwd, &client);
	}
	ipaddr_format(&client, r->client_ip, sizeof(r->client_ip));
	return r->client_ip;
}

static void set_response(http_req *r, int status, const char *ctype, struct MHD_Response *resp, size_t len);

const struct http_upload *http_upload(http_req *r)
{
	return r->has_upload ? &r->upload : NULL;
}

const char *http_form(http_req *r, const char *name)
{
	for (int i = 0; i < r->nform; i++)
		if (strcmp(r->form_keys[i], name) == 0)
			return r->form_vals[i];
	return NULL;
}

int http_upload_keep(http_req *r, const char *path)
{
	if (!r->has_upload || rename(r->upload_path, path))
		return -1;
	r->upload_kept = 1;
	return 0;
}

/* ---- streams ---------------------------------------------------------------- */

/* Whether the stream's next call is its final one. */
static int stream_final(const struct http_stream *st)
{
	return atomic_load(&st->srv->ending) || (atomic_load(&st->watch) && atomic_load(&st->srv->quiesced));
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct http_stream *st = cls;
	(void)pos;
	for (;;) {
		if (atomic_load(&st->srv->stopping))
			return MHD_CONTENT_READER_END_OF_STREAM;
		int final = stream_final(st);
		long n = st->fn(st->ctx, buf, max, final);
		if (n > 0)
			return n;
		if (n < 0 || final)
			return MHD_CONTENT_READER_END_OF_STREAM;
		/* Nothing yet: sleep until woken (returning 0 without suspending
		 * would spin). A wake that came while we were asking fn is not
		 * lost: it left wake_pending, and we ask again. */
		pthread_mutex_lock(&st->srv->park_lock);
		if (st->wake_pending) {
			st->wake_pending = 0;
			pthread_mutex_unlock(&st->srv->park_lock);
			continue;
		}
		if (stream_final(st) || atomic_load(&st->srv->stopping)) {
			/* The flags are set before the parked are woken under this
			 * lock: parking now would sleep through the shutdown. */
			pthread_mutex_unlock(&st->srv->park_lock);
			continue;
		}
		MHD_suspend_connection(st->conn);
		st->parked = 1;
		st->due_us = time_mono_us() + st->poll_us;
		st->next = st->srv->parked;
		st->pprev = &st->srv->parked;
		if (st->next)
			st->next->pprev = &st->next;
		st->srv->parked = st;
		pthread_mutex_unlock(&st->srv->park_lock);
		return 0;
	}
}

static void unpark(struct http_stream *st)
{
	*st->pprev = st->next;
	if (st->next)
		st->next->pprev = st->pprev;
	st->parked = 0;
}

void http_stream_wake(struct http_stream *st)
{
	pthread_mutex_lock(&st->srv->park_lock);
	if (st->parked) {
		unpark(st);
		MHD_resume_connection(st->conn);
	} else {
		st->wake_pending = 1;
	}
	pthread_mutex_unlock(&st->srv->park_lock);
}

static void stream_free(void *cls)
{
	struct http_stream *st = cls;
	/* It may still be parked if the connection died: unlink it. */
	pthread_mutex_lock(&st->srv->park_lock);
	if (st->parked)
		unpark(st);
	pthread_mutex_unlock(&st->srv->park_lock);
	if (st->free_fn)
		st->free_fn(st->ctx);
	xfree(st);
}

/* Resumes the parked streams that are due (all of them when `all`): a stream
 * woken by its producer never waits for this, so a busy stream costs the
 * ticker nothing, and an idle one is asked once per poll interval. */
static void wake_parked(struct http_server *s, int all)
{
	int64_t now = time_mono_us();
	pthread_mutex_lock(&s->park_lock);
	for (struct http_stream *st = s->parked, *next; st; st = next) {
		next = st->next;
		if (all || st->due_us <= now) {
			unpark(st);
			MHD_resume_connection(st->conn);
		}
	}
	pthread_mutex_unlock(&s->park_lock);
}

/* Every 100 ms: parked streams that are due, and requests past their deadline. */
static void *ticker(void *arg)
{
	struct http_server *s = arg;
	while (!atomic_load(&s->stopping)) {
		struct timespec ts = { 0, STREAM_TICK_MS * 1000 * 1000 };
		nanosleep(&ts, NULL);
		wake_parked(s, 0);
		int late = conns_expire(&s->conns, time_mono_us());
		if (late)
			log_info("closed %d connection(s) whose request took longer than %d s", late,
				 s->o.request_timeout);
	}
	return NULL;
}

struct http_stream *http_respond_stream(http_req *r, const char *ctype, int poll_ms, http_stream_fn fn,
					void (*free_fn)(void *), void *ctx)
{
	if (r->resp) {
		log_error("request %s: a stream after an answer; the stream is dropped", r->request_id);
		if (free_fn)
			free_fn(ctx);
		return NULL;
	}
	struct http_stream *st = xcalloc(1, sizeof(*st));
	if (!st) {
		if (free_fn)
			free_fn(ctx);
		http_respond_error(r, 500, "internal", "out of memory", NULL);
		return NULL;
	}
	*st = (struct http_stream){ .srv = r->srv,
				    .conn = r->conn,
				    .req = r,
				    .fn = fn,
				    .free_fn = free_fn,
				    .ctx = ctx,
				    .poll_us = (int64_t)(poll_ms > STREAM_TICK_MS ? poll_ms : STREAM_TICK_MS) * 1000 };
	struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_read, st,
								       stream_free);
	if (!resp) {
		stream_free(st);
		http_respond_error(r, 500, "internal", "out of memory", NULL);
		return NULL;
	}
	MHD_add_response_header(resp, "Cache-Control", "no-cache");
	MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	set_response(r, 200, ctype, resp, 0);
	return st;
}

void http_stream_watch(struct http_stream *st)
{
	if (!st || atomic_exchange(&st->watch, 1))
		return;
	http_req *r = st->req;
	struct http_server *s = st->srv;
	if (r && r->counted) {
		r->counted = 0;
		if (atomic_fetch_sub(&s->inflight, 1) == 1) {
			pthread_mutex_lock(&s->lock);
			pthread_cond_broadcast(&s->changed);
			pthread_mutex_unlock(&s->lock);
		}
	}
}

/* ---- deferred work ---------------------------------------------------------- */

static void req_unref(http_req *r);

static void pending_unlink(http_req *r)
{
	*r->pprev = r->pnext;
	if (r->pnext)
		r->pnext->pprev = r->pprev;
	r->pprev = NULL;
}

static void defer_trampoline(void *arg)
{
	http_req *r = arg;
	r->defer_work(r->defer_ctx);
	int expect = DEFER_PENDING;
	if (atomic_compare_exchange_strong(&r->defer_state, &expect, DEFER_DONE)) {
		struct http_server *s = r->srv;
		struct MHD_Connection *conn = r->conn;
		pthread_mutex_lock(&s->lock);
		pending_unlink(r);
		s->resuming++;
		pthread_mutex_unlock(&s->lock);
		MHD_resume_connection(conn);
		pthread_mutex_lock(&s->lock);
		s->resuming--;
		pthread_cond_broadcast(&s->changed);
		pthread_mutex_unlock(&s->lock);
	}
	/* Abandoned: the server answered and may be gone; only r is ours. */
	req_unref(r);
}

int http_defer(http_req *r, struct executor *ex, executor_fn work, http_handler done, void *ctx)
{
	struct http_server *s = r->srv;
	r->defer_work = work;
	r->defer_fn = done;
	r->defer_ctx = ctx;
	/* Suspend first: the work may finish, and resume, before we return. */
	MHD_suspend_connection(r->conn);
	r->deferred = 1;
	atomic_store(&r->defer_state, DEFER_PENDING);
	atomic_fetch_add(&r->refs, 1);
	pthread_mutex_lock(&s->lock);
	r->pnext = s->pending;
	r->pprev = &s->pending;
	if (r->pnext)
		r->pnext->pprev = &r->pnext;
	s->pending = r;
	pthread_mutex_unlock(&s->lock);
	if (executor_submit(ex, defer_trampoline, r)) {
		pthread_mutex_lock(&s->lock);
		pending_unlink(r);
		pthread_mutex_unlock(&s->lock);
		atomic_store(&r->defer_state, DEFER_NONE);
		atomic_fetch_sub(&r->refs, 1);
		r->deferred = 0;
		MHD_resume_connection(r->conn);
		return -1;
	}
	return 0;
}

void *http_defer_ctx(http_req *r)
{
	return r->defer_ctx;
}

/* ---- responses ---------------------------------------------------------------- */

void http_set_header(http_req *r, const char *name, const char *value)
{
	struct resp_header *h = arena_alloc(&r->arena, sizeof(*h));
	char *n = arena_strdup(&r->arena, name), *v = arena_strdup(&r->arena, value);
	if (!h || !n || !v) {
		log_error("request %s: out of memory for the response header %s", r->request_id, name);
		return;
	}
	*h = (struct resp_header){ NULL, n, v };
	*r->headers_tail = h;
	r->headers_tail = &h->next;
}

static void set_response(http_req *r, int status, const char *ctype, struct MHD_Response *resp, size_t len)
{
	if (r->resp) {
		/* Answered twice, a handler bug: the first answer stands. It is the
		 * one the handler's checks reached first (a 401 before the data a
		 * missing `return` would go on to send). */
		log_error("request %s %s %s: answered %d, then again %d; the second answer is dropped",
			  r->request_id, r->method_str, r->path, r->status, status);
		if (resp)
			MHD_destroy_response(resp);
		return;
	}
	r->resp = resp;
	r->status = resp ? status : 500;
	r->resp_bytes = len;
	if (resp && ctype)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
}

void http_respond(http_req *r, int status, const char *ctype, const char *body, size_t len)
{
	set_response(r, status, ctype,
		     MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY), len);
}

void http_respond_owned(http_req *r, int status, const char *ctype, char *body, size_t len)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!resp)
		free(body);
	set_response(r, status, ctype, resp, len);
}

static void unref_cb(void *cls)
{
	rcbuf_unref(cls);
}

void http_respond_rcbuf(http_req *r, int status, const char *ctype, struct rcbuf *b)
{
	rcbuf_ref(b);
	struct MHD_Response *resp =
		MHD_create_response_from_buffer_with_free_callback_cls(b->n, b->data, unref_cb, b);
	if (!resp)
		rcbuf_unref(b);
	set_response(r, status, ctype, resp, b->n);
}

void http_respond_empty(http_req *r, int status)
{
	set_response(r, status, NULL, MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT), 0);
}

void http_respond_error(http_req *r, int status, const char *code, const char *message, const struct err *e)
{
	json_t *details = json_array();
	for (int i = 0; e && i < e->ndetails; i++)
		json_array_append_new(details, json_pack("{s:s, s:s}", "field", e->details[i].field, "message",
							 e->details[i].message));
	json_t *o = json_pack("{s:{s:s, s:s, s:s, s:o}}", "error", "code", code, "message", message,
			      "request_id", r->request_id, "details", details);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!s) {
		static const char oom[] = "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
		set_response(r, 500, "application/json",
			     MHD_create_response_from_buffer(sizeof(oom) - 1, (void *)oom, MHD_RESPMEM_PERSISTENT),
			     sizeof(oom) - 1);
		return;
	}
	http_respond_owned(r, status, "application/json", s, strlen(s));
}

/* An answer given before the body is read: the connection closes after it,
 * since what follows on it cannot be trusted to be the next request. */
static void reject(http_req *r, int status, const char *code, const char *message, const struct err *e)
{
	http_respond_error(r, status, code, message, e);
	r->close = 1;
}

/* A field (header, query argument, form field) the request cannot have:
 * 400 when it is malformed, 422 when it breaks a limit. */
static void fail_field(struct err *e, int status, const char *field, const char *problem)
{
	err_bad_field(e, field, problem);
	if (status == 422)
		e->code = ERR_INVALID;
}

static void reject_field(http_req *r, int status, const char *field, const char *problem)
{
	struct err e = { 0 };
	fail_field(&e, status, field, problem);
	reject(r, status, err_code_name(e.code), e.msg, &e);
}

/* ---- request id, CORS ------------------------------------------------------ */

static int request_id_sane(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++) {
		char c = s[n];
		if (n >= REQUEST_ID_MAX ||
		    !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return 0;
	}
	return n > 0;
}

static void assign_request_id(http_req *r)
{
	const char *given = http_header(r, "X-Request-ID");
	if (given && request_id_sane(given)) {
		snprintf(r->request_id, sizeof(r->request_id), "%s", given);
		return;
	}
	unsigned long n = atomic_fetch_add_explicit(&r->srv->next_id, 1, memory_order_relaxed);
	snprintf(r->request_id, sizeof(r->request_id), "%08x%012lx", r->srv->id_prefix, n & 0xffffffffffffUL);
}

static const char *cors_allowed(struct http_server *s, const char *origin)
{
	if (!origin)
		return NULL;
	if (s->cors_any)
		return origin;
	for (int i = 0; i < s->ncors; i++)
		if (strcmp(s->cors[i], origin) == 0)
			return s->cors[i];
	return NULL;
}

static void parse_cors(struct http_server *s, const char *list)
{
	s->cors_copy = xstrdup(list ? list : "");
	if (!s->cors_copy)
		return;
	char *save = NULL;
	for (char *t = strtok_r(s->cors_copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		while (*t == ' ')
			t++;
		size_t n = strlen(t);
		while (n && t[n - 1] == ' ')
			t[--n] = '\0';
		while (n && t[n - 1] == '/') /* "https://x.org/" means the origin https://x.org */
			t[--n] = '\0';
		if (strcmp(t, "*") == 0)
			s->cors_any = 1;
		else if (n && s->ncors < MAX_CORS_ORIGINS)
			s->cors[s->ncors++] = t;
	}
}

static void preflight(http_req *r)
{
	http_respond_empty(r, 204);
	MHD_add_response_header(r->resp, "Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
	MHD_add_response_header(r->resp, "Access-Control-Allow-Headers",
				"Authorization, Content-Type, X-API-Key, X-Request-ID, Idempotency-Key, "
				"If-None-Match, Accept, Last-Event-ID");
	MHD_add_response_header(r->resp, "Access-Control-Max-Age", "600");
}


/* ---- the MHD callbacks ----------------------------------------------------- */

static http_req *req_new(struct http_server *s, struct MHD_Connection *conn, const char *url,
			 const char *method)
{
	http_req *r = xcalloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->conn = conn;
	r->srv = s;
	r->start_us = time_mono_us();
	r->upload_fd = -1;
	r->headers_tail = &r->headers;
	atomic_init(&r->refs, 1);
	arena_init(&r->arena, 4096);
	buf_init(&r->body, s->o.max_body);
	r->method = http_method_parse(method);
	r->path_len = strlen(url);
	r->path = arena_strndup(&r->arena, url, r->path_len);
	r->method_str = arena_strdup(&r->arena, method);
	if (!r->path || !r->method_str) {
		arena_free(&r->arena);
		xfree(r);
		return NULL;
	}
	const union MHD_ConnectionInfo *sc = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	r->c = sc ? sc->socket_context : NULL;
	assign_request_id(r);
	r->origin = cors_allowed(s, http_header(r, "Origin"));
	r->counted = 1;
	atomic_fetch_add(&s->inflight, 1);
	return r;
}

static void req_free(http_req *r)
{
	if (r->upload_fd >= 0)
		close(r->upload_fd);
	if (r->upload_path && !r->upload_kept)
		unlink(r->upload_path);
	buf_free(&r->body);
	arena_free(&r->arena);
	xfree(r);
}

static void req_unref(http_req *r)
{
	if (atomic_fetch_sub(&r->refs, 1) == 1)
		req_free(r);
}

/* What check_headers learns from one pass over the header lines. */
struct head_scan {
	int ncl, nte, nhost;
	const char *cl, *te;
	int bad_name;
	const char *bad_utf8; /* a header whose value must be UTF-8 and is not */
};

/* The header values that reach handlers as text (stored, or shown back). */
static const char *const text_headers[] = { "X-Filename", "Idempotency-Key", "Last-Event-ID" };

static int is_tchar(unsigned char c)
{
	return c > 32 && c < 127 && !strchr("\"(),/:;<=>?@[\\]{}", c);
}

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct head_scan *h = cls;
	(void)kind;
	if (!*key)
		h->bad_name = 1;
	for (const char *p = key; *p; p++)
		if (!is_tchar((unsigned char)*p))
			h->bad_name = 1;
	if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
		h->ncl++;
		h->cl = value;
	} else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
		h->nte++;
		h->te = value;
	} else if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0) {
		h->nhost++;
	}
	for (size_t i = 0; value && !h->bad_utf8 && i < ARRAY_LEN(text_headers); i++)
		if (strcasecmp(key, text_headers[i]) == 0 && !utf8_valid(value, strlen(value)))
			h->bad_utf8 = text_headers[i];
	return MHD_YES;
}

struct query_scan {
	const char *bad;	/* the argument's name, when that is valid */
	int bad_name;
};

static enum MHD_Result scan_query(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct query_scan *q = cls;
	(void)kind;
	if (!utf8_valid(key, strlen(key))) {
		q->bad_name = 1;
		return MHD_NO;
	}
	if (value && !utf8_valid(value, strlen(value))) {
		q->bad = key;
		return MHD_NO;
	}
	return MHD_YES;
}

/* Content-Length: decimal digits only, and a number that fits. */
static int parse_length(const char *s, unsigned long long *out)
{
	unsigned long long n = 0;
	if (!s || !*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || n > (~0ULL - 9) / 10)
			return -1;
		n = n * 10 + (unsigned)(*s - '0');
	}
	*out = n;
	return 0;
}

/* Request framing: the checks that keep this request from being read
 * differently by a proxy in front (request smuggling). */
static int check_framing(http_req *r, const char *version)
{
	struct head_scan h = { 0 };
	MHD_get_connection_values(r->conn, MHD_HEADER_KIND, scan_header, &h);
	const char *why = NULL;
	if (h.bad_name)
		why = "a header name has a space or a character a header name may not have";
	else if (h.nte > 1)
		why = "more than one Transfer-Encoding header";
	else if (h.te && strcasecmp(h.te, "chunked") != 0)
		why = "Transfer-Encoding must be exactly chunked";
	else if (h.ncl > 1)
		why = "more than one Content-Length header";
	else if (h.cl && h.te)
		why = "both Content-Length and Transfer-Encoding given";
	else if (h.nhost > 1)
		why = "more than one Host header";
	else if (!h.nhost && strcmp(version, MHD_HTTP_VERSION_1_1) == 0)
		why = "an HTTP/1.1 request needs a Host header";
	if (why) {
		reject(r, 400, "bad_request", why, NULL);
		return -1;
	}
	unsigned long long n;
	if (h.cl && parse_length(h.cl, &n)) {
		reject(r, 400, "bad_request", "Content-Length is not a number of bytes", NULL);
		return -1;
	}
	if (h.bad_utf8) {
		reject_field(r, 400, h.bad_utf8, "is not valid UTF-8");
		return -1;
	}
	return 0;
}

/* Checks made once the headers are in, before any body is read. */
static int check_headers(http_req *r, const char *version)
{
	struct http_server *s = r->srv;
	if (r->c && r->c->over) {
		reject(r, 503, "unavailable", "too many connections; try again shortly", NULL);
		http_set_header(r, "Retry-After", "1");
		return -1;
	}
	if (check_framing(r, version))
		return -1;
	const union MHD_ConnectionInfo *hs = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
	if (hs && hs->header_size > MAX_HEAD) {
		char msg[96];
		snprintf(msg, sizeof(msg), "the request head is larger than %d bytes", MAX_HEAD);
		reject(r, 431, "headers_too_large", msg, NULL);
		return -1;
	}
	if (!r->method) {
		reject(r, 405, "method_not_allowed", "method not supported", NULL);
		return -1;
	}
	if (!utf8_valid(r->path, r->path_len)) {
		reject_field(r, 400, "path", "is not valid UTF-8");
		return -1;
	}
	struct query_scan q = { 0 };
	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, scan_query, &q);
	if (q.bad || q.bad_name) {
		reject_field(r, 400, q.bad ? q.bad : "query string", "is not valid UTF-8");
		return -1;
	}
	r->matched = router_match(s->o.routes, s->o.nroutes, r->method, r->path, r->path_len, &r->match);
	if (!r->matched)
		return 0; /* 404, 405, OPTIONS: answered by route() */
	r->nparams = r->match.nparams;
	for (int i = 0; i < r->match.nparams; i++) {
		r->params[i] = arena_strndup(&r->arena, r->match.params[i].p, r->match.params[i].n);
		if (!r->params[i]) {
			reject(r, 500, "internal", "out of memory", NULL);
			return -1;
		}
	}
	size_t cap = (r->match.route->flags & ROUTE_UPLOAD) ? s->o.max_upload : s->o.max_body;
	unsigned long long n;
	const char *cl = http_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl && parse_length(cl, &n) == 0 && n > cap) {
		char msg[96];
		snprintf(msg, sizeof(msg), "request body is larger than %zu bytes", cap);
		reject(r, 413, "payload_too_large", msg, NULL);
		return -1;
	}
	if (r->match.route->authorize && r->match.route->authorize(r, s->o.app)) {
		if (!r->resp)
			reject(r, 500, "internal", "internal error", NULL);
		r->close = 1;
		return -1;
	}
	return 0;
}

/* ---- uploads ----------------------------------------------------------------- */

/* Fails the request once its body has been read (the first failure stands). */
static void fail(http_req *r, int status, const char *code, const char *msg, const char *field)
{
	if (r->fail_status)
		return;
	r->fail_status = status;
	r->fail_code = code;
	r->fail_msg = msg;
	r->fail_field = field;
}

static int upload_write(http_req *r, const char *data, size_t n)
{
	if (r->upload.size + n > r->upload_max) {
		fail(r, 413, "payload_too_large", NULL, NULL);
		return -1;
	}
	while (n) {
		ssize_t w = write(r->upload_fd, data, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			log_error("request %s: cannot write the upload: %s", r->request_id, strerror(errno));
			fail(r, 500, "internal", "cannot store the upload", NULL);
			return -1;
		}
		data += w;
		n -= (size_t)w;
		r->upload.size += (size_t)w;
	}
	return 0;
}

static enum MHD_Result on_form_part(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
				    const char *ctype, const char *te, const char *data, uint64_t off, size_t size)
{
	http_req *r = cls;
	(void)kind;
	(void)te;
	if (!key || !utf8_valid(key, strlen(key))) {
		fail(r, 400, "bad_request", "a form field name is not valid UTF-8", "form");
		return MHD_NO;
	}
	if (filename) {
		/* The first file part is the upload; later ones are ignored. */
		if (!r->upload.filename) {
			if (!utf8_valid(filename, strlen(filename))) {
				fail(r, 400, "bad_request", "filename is not valid UTF-8", "filename");
				return MHD_NO;
			}
			r->upload.filename = arena_strdup(&r->arena, filename);
			r->upload.content_type = ctype ? arena_strdup(&r->arena, ctype) : NULL;
			if (!r->upload.filename) {
				fail(r, 500, "internal", "out of memory", NULL);
				return MHD_NO;
			}
		} else if (strcmp(r->upload.filename, filename) != 0) {
			return MHD_YES;
		}
		return upload_write(r, data, size) ? MHD_NO : MHD_YES;
	}
	/* A small text field: at most MAX_FORM_FIELDS, up to 1 KiB each. */
	int i = 0;
	while (i < r->nform && strcmp(r->form_keys[i], key) != 0)
		i++;
	if (i == r->nform) {
		if (r->nform >= MAX_FORM_FIELDS) {
			fail(r, 422, "validation_failed", "the form has more than 8 text fields", "form");
			return MHD_NO;
		}
		r->form_keys[i] = arena_strdup(&r->arena, key);
		r->form_vals[i] = arena_strdup(&r->arena, "");
		if (!r->form_keys[i] || !r->form_vals[i]) {
			fail(r, 500, "internal", "out of memory", NULL);
			return MHD_NO;
		}
		r->nform++;
	}
	size_t have = strlen(r->form_vals[i]);
	if (off != have) {
		fail(r, 422, "validation_failed", arena_printf(&r->arena, "form field %s is given more than once", r->form_keys[i]),
		     r->form_keys[i]);
		return MHD_NO;
	}
	if (have + size > MAX_FORM_VALUE) {
		fail(r, 422, "validation_failed",
		     arena_printf(&r->arena, "form field %s is longer than %d bytes", r->form_keys[i], MAX_FORM_VALUE),
		     r->form_keys[i]);
		return MHD_NO;
	}
	char *v = arena_alloc(&r->arena, have + size + 1);
	if (!v) {
		fail(r, 500, "internal", "out of memory", NULL);
		return MHD_NO;
	}
	memcpy(v, r->form_vals[i], have);
	memcpy(v + have, data, size);
	v[have + size] = '\0';
	r->form_vals[i] = v;
	return MHD_YES;
}

/* After the body: every text field must be UTF-8 (a value comes in pieces
 * that may split a character, so it is checked whole). */
static void check_form(http_req *r)
{
	for (int i = 0; i < r->nform && !r->fail_status; i++)
		if (!utf8_valid(r->form_vals[i], strlen(r->form_vals[i])))
			fail(r, 400, "bad_request", arena_printf(&r->arena, "form field %s is not valid UTF-8", r->form_keys[i]),
			     r->form_keys[i]);
}

static int upload_begin(http_req *r)
{
	struct http_server *s = r->srv;
	r->upload_max = s->o.max_upload;
	r->upload_path = arena_printf(&r->arena, "%s/upload-XXXXXX", s->o.upload_dir);
	if (!r->upload_path || (r->upload_fd = mkstemp(r->upload_path)) < 0) {
		r->upload_path = NULL;
		r->upload_fd = -1;
		log_error("cannot create an upload file in %s: %s", s->o.upload_dir, strerror(errno));
		reject(r, 500, "internal", "cannot store the upload", NULL);
		return -1;
	}
	const char *ct = http_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
	if (ct && strncasecmp(ct, "multipart/form-data", 19) == 0) {
		r->pp = MHD_create_post_processor(r->conn, 64 * 1024, on_form_part, r);
		if (!r->pp) {
			reject(r, 400, "bad_request", "malformed multipart/form-data", NULL);
			return -1;
		}
	} else {
		r->upload.content_type = ct ? arena_strdup(&r->arena, ct) : NULL;
		const char *fn = http_header(r, "X-Filename");
		if (!fn)
			fn = http_query(r, "filename");
		r->upload.filename = fn ? arena_strdup(&r->arena, fn) : NULL;
	}
	r->upload.path = r->upload_path;
	return 0;
}

static void route(http_req *r)
{
	struct http_server *s = r->srv;
	struct route_match m = r->match;
	int ok = r->matched;
	if (r->method == HTTP_OPTIONS && !ok) {
		if (r->origin && http_header(r, "Access-Control-Request-Method")) {
			preflight(r);
			return;
		}
		if (m.allowed) {
			char allow[128];
			router_allow_header(m.allowed, allow, sizeof(allow));
			http_respond_empty(r, 204);
			http_set_header(r, "Allow", allow);
			return;
		}
	}
	if (!ok) {
		if (m.allowed) {
			char allow[128];
			router_allow_header(m.allowed, allow, sizeof(allow));
			http_respond_error(r, 405, "method_not_allowed", "method not allowed on this resource", NULL);
			http_set_header(r, "Allow", allow);
		} else {
			http_respond_error(r, 404, "not_found", "no such route", NULL);
		}
		return;
	}
	m.route->fn(r, s->o.app);
	if (r->deferred)
		return; /* answered later, from defer_fn */
	if (!r->resp) {
		log_error("handler for %s %s gave no response", r->method_str, m.route->pattern);
		http_respond_error(r, 500, "internal", "internal error", NULL);
	}
}

static enum MHD_Result send_response(http_req *r)
{
	if (!r->resp) /* allocation failure while answering */
		return MHD_NO;
	MHD_add_response_header(r->resp, "X-Request-ID", r->request_id);
	for (struct resp_header *h = r->headers; h; h = h->next)
		MHD_add_response_header(r->resp, h->name, h->value);
	if (r->origin) {
		MHD_add_response_header(r->resp, "Access-Control-Allow-Origin", r->origin);
		MHD_add_response_header(r->resp, "Access-Control-Expose-Headers",
					"X-Request-ID, ETag, Location, Retry-After");
	}
	if (r->srv->ncors || r->srv->cors_any)
		MHD_add_response_header(r->resp, "Vary", "Origin");
	/* Early answers, and every answer once the server stops accepting. */
	if (r->close || atomic_load(&r->srv->quiesced))
		MHD_add_response_header(r->resp, MHD_HTTP_HEADER_CONNECTION, "close");
	enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)r->status, r->resp);
	MHD_destroy_response(r->resp);
	r->resp = NULL;
	return ret;
}

/* The answer to a request whose body could not be taken. */
static void respond_failed(http_req *r)
{
	struct http_server *s = r->srv;
	if (r->fail_status == 413) {
		char msg[96];
		snprintf(msg, sizeof(msg), "request body is larger than %zu bytes",
			 r->upload_path ? r->upload_max : s->o.max_body);
		http_respond_error(r, 413, "payload_too_large", msg, NULL);
	} else if (r->fail_field) {
		struct err e = { 0 };
		snprintf(e.msg, sizeof(e.msg), "%s", r->fail_msg);
		e.ndetails = 1;
		snprintf(e.details[0].field, sizeof(e.details[0].field), "%s", r->fail_field);
		snprintf(e.details[0].message, sizeof(e.details[0].message), "%s", r->fail_msg);
		http_respond_error(r, r->fail_status, r->fail_code, r->fail_msg, &e);
	} else if (r->fail_code) {
		http_respond_error(r, r->fail_status, r->fail_code, r->fail_msg ? r->fail_msg : "error", NULL);
	} else if (r->fail_status == 400) {
		http_respond_error(r, 400, "bad_request", "malformed multipart/form-data", NULL);
	} else {
		http_respond_error(r, 500, "internal", "out of memory", NULL);
	}
}

/* The answer to a deferred request, once its work is done or abandoned. */
static enum MHD_Result answer_deferred(http_req *r)
{
	struct http_server *s = r->srv;
	int st = atomic_load(&r->defer_state);
	if (st == DEFER_PENDING)
		return MHD_YES; /* a spurious call while suspended */
	r->deferred = 0;
	if (st == DEFER_ABANDONED) {
		http_respond_error(r, 503, "unavailable", "the server is shutting down", NULL);
		http_set_header(r, "Retry-After", "1");
		r->close = 1;
	} else {
		r->defer_fn(r, s->o.app);
		if (!r->resp)
			http_respond_error(r, 500, "internal", "internal error", NULL);
	}
	return send_response(r);
}

static enum MHD_Result handle(struct http_server *s, struct MHD_Connection *conn, const char *url,
			       const char *method, const char *version, const char *upload_data,
			       size_t *upload_data_size, void **con_cls)
{
	http_req *r = *con_cls;
	if (!r) {
		r = req_new(s, conn, url, method);
		if (!r)
			return MHD_NO;
		*con_cls = r;
		if (check_headers(r, version) ||
		    (r->matched && (r->match.route->flags & ROUTE_UPLOAD) && upload_begin(r))) {
			conns_request_in(&s->conns, r->c);
			return send_response(r);
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (conns_late(r->c, time_mono_us())) {
			log_info("request %s: the body took longer than %d s: closing", r->request_id,
				 s->o.request_timeout);
			return MHD_NO;
		}
		if (r->fail_status) {
			/* Past twice the limit, stop reading: close the connection. */
			r->discarded += n;
			return r->discarded > 2 * (r->upload_path ? r->upload_max : s->o.max_body) ? MHD_NO : MHD_YES;
		}
		if (r->pp) {
			if (MHD_post_process(r->pp, upload_data, n) != MHD_YES)
				fail(r, 400, NULL, NULL, NULL);
		} else if (r->upload_path) {
			(void)upload_write(r, upload_data, n);
		} else {
			int rc = buf_append(&r->body, upload_data, n);
			if (rc == BUF_TOOBIG)
				fail(r, 413, NULL, NULL, NULL);
			else if (rc)
				fail(r, 500, NULL, NULL, NULL);
			if (r->fail_status)
				buf_free(&r->body);
		}
		return MHD_YES;
	}
	if (r->deferred)
		return answer_deferred(r);
	/* The request is in: its deadline no longer applies. */
	conns_request_in(&s->conns, r->c);
	if (r->pp && !r->fail_status && MHD_post_process(r->pp, NULL, 0) != MHD_YES)
		fail(r, 400, NULL, NULL, NULL);
	if (r->pp)
		check_form(r);
	if (r->upload_path && !r->fail_status) {
		close(r->upload_fd);
		r->upload_fd = -1;
		r->has_upload = r->upload.size > 0 || r->upload.filename;
	}
	if (r->fail_status) {
		respond_failed(r);
	} else {
		route(r);
		if (r->deferred)
			return MHD_YES;
	}
	return send_response(r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct http_worker *w = cls;
	atomic_fetch_add(&w->busy, 1);
	enum MHD_Result ret = handle(w->s, conn, url, method, version, upload_data, upload_data_size, con_cls);
	atomic_fetch_sub(&w->busy, 1);
	return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct http_server *s = ((struct http_worker *)cls)->s;
	http_req *r = *con_cls;
	(void)conn;
	if (!r)
		return;
	*con_cls = NULL;
	struct log_line l;
	int level = r->status >= 500 || toe != MHD_REQUEST_TERMINATED_COMPLETED_OK ? LOG_WARN : LOG_INFO;
	if (log_begin(&l, level, "request")) {
		log_str(&l, "request_id", r->request_id);
		log_str(&l, "method", r->method_str);
		log_strn(&l, "path", r->path, MIN(r->path_len, 512));
		log_int(&l, "status", r->status);
		log_int(&l, "bytes", (int64_t)r->resp_bytes);
		log_double(&l, "duration_ms", (double)(time_mono_us() - r->start_us) / 1000.0);
		if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
			log_str(&l, "termination", toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? "timeout"
						   : toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT ? "client_abort"
						   : toe == MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN ? "shutdown"
												  : "error");
		log_end(&l);
	}
	/* The next request on this connection starts its own deadline. */
	conns_request_next(&s->conns, r->c);
	r->c = NULL;
	if (r->resp)
		MHD_destroy_response(r->resp);
	if (r->pp)
		MHD_destroy_post_processor(r->pp);
	r->resp = NULL;
	r->pp = NULL;
	int abandoned = atomic_load(&r->defer_state) == DEFER_ABANDONED;
	if (r->counted && atomic_fetch_sub(&s->inflight, 1) == 1) {
		pthread_mutex_lock(&s->lock);
		pthread_cond_broadcast(&s->changed);
		pthread_mutex_unlock(&s->lock);
	}
	if (abandoned) {
		pthread_mutex_lock(&s->lock);
		s->abandoned--;
		pthread_cond_broadcast(&s->changed);
		pthread_mutex_unlock(&s->lock);
	}
	req_unref(r);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	struct http_worker *w = cls;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *fd = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		*socket_context = fd ? conns_take(&w->s->conns, fd->connect_fd) : NULL;
	} else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
		conns_close(&w->s->conns, *socket_context);
		*socket_context = NULL;
		atomic_fetch_sub(&w->conns, 1);
	}
}

/* The worker for a new connection: the one with the fewest connections
 * among those not inside a handler (a handler that blocks — a slow query, a
 * provider's key fetch — must not get new clients), searching from a moving
 * start so that ties spread. */
static struct http_worker *pick_worker(struct http_server *s)
{
	struct http_worker *best = NULL;
	long best_load = 0;
	for (int i = 0; i < s->nworkers; i++) {
		struct http_worker *w = &s->workers[(s->next_worker + (unsigned)i) % (unsigned)s->nworkers];
		long load = atomic_load(&w->conns) + (atomic_load(&w->busy) ? 1L << 20 : 0);
		if (!best || load < best_load) {
			best = w;
			best_load = load;
		}
	}
	s->next_worker++;
	return best;
}

/* On the accepting thread: counted before the next accept, refused over the
 * hard limits, then given to a worker. */
static void *on_accept(void *cls, int fd, const struct sockaddr *addr, socklen_t len, struct MHD_Daemon **d)
{
	struct http_server *s = cls;
	struct ipaddr ip;
	(void)len;
	if (ipaddr_from_sockaddr(addr, &ip))
		memset(&ip, 0, sizeof(ip));
	if (conns_admit(&s->conns, &ip))
		return NULL;
	struct conn *c = conns_open(&s->conns, fd, &ip);
	if (!c)
		return NULL;
	struct http_worker *w = pick_worker(s);
	atomic_fetch_add(&w->conns, 1);
	c->worker = w;
	*d = w->d;
	return c;
}

/* libmicrohttpd refused a connection it was given (it closed it). */
static void on_refused(void *cls, void *token)
{
	struct http_server *s = cls;
	struct conn *c = token;
	atomic_fetch_sub(&((struct http_worker *)c->worker)->conns, 1);
	conns_close(&s->conns, c);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	size_t n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	log_warn("libmicrohttpd: %s", msg);
}

/* ---- start and stop -------------------------------------------------------- */

static void server_free(struct http_server *s)
{
	conns_destroy(&s->conns);
	pthread_cond_destroy(&s->changed);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->park_lock);
	xfree(s->cors_copy);
	xfree(s);
}

int http_server_start(struct http_server **out, const struct http_server_opts *o, struct err *e)
{
	*out = NULL;
	struct http_server *s = xcalloc(1, sizeof(*s));
	if (!s)
		return err_set(e, ERR_INTERNAL, "out of memory");
	s->o = *o;
	if (s->o.request_timeout <= 0)
		s->o.request_timeout = 60;
	if (s->o.max_connections_per_ip <= 0)
		s->o.max_connections_per_ip = s->o.max_connections;
	int rc = proxies_parse(&s->trusted, o->trusted_proxies, e);
	if (rc) {
		xfree(s);
		return rc;
	}
	if ((rc = listener_open(&s->listen, o->host, o->port, 1024, e))) {
		xfree(s);
		return rc;
	}
	s->port = s->listen.port;
	unsigned char rnd[4];
	if (random_bytes(rnd, sizeof(rnd)) == 0)
		s->id_prefix = (unsigned)rnd[0] << 24 | (unsigned)rnd[1] << 16 | (unsigned)rnd[2] << 8 | rnd[3];
	parse_cors(s, o->cors_origins);
	pthread_mutex_init(&s->park_lock, NULL);
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->changed, &ca);
	pthread_condattr_destroy(&ca);
	conns_init(&s->conns, s->o.max_connections, s->o.max_connections_per_ip, s->o.request_timeout, &s->trusted);

	/* Our connection limit is the hard one, a little above the soft one:
	 * between the two a connection is taken only to be told 503. The
	 * daemons listen on nothing: the listener (listener.h) accepts and hands
	 * connections over. */
	s->hard_limit = s->o.max_connections + (s->o.max_connections / 8 > 16 ? s->o.max_connections / 8 : 16);
	s->conns.max_hard = s->hard_limit;
	unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
			 MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC;
	if (s->listen.family == AF_INET6)
		flags |= MHD_USE_IPv6;
	int n = o->threads < 2 ? 2 : o->threads > MAX_WORKERS ? MAX_WORKERS : o->threads;
	for (; s->nworkers < n; s->nworkers++) {
		struct http_worker *w = &s->workers[s->nworkers];
		w->s = s;
		/* The logger goes first, or MHD's own logger prints the options it parses. */
		w->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, w,
					MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
					MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)o->conn_timeout,
					MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->hard_limit,
					MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
					MHD_OPTION_NOTIFY_COMPLETED, on_completed, w,
					MHD_OPTION_NOTIFY_CONNECTION, on_connection, w,
					MHD_OPTION_END);
		if (!w->d)
			break;
	}
	if (s->nworkers < n || listener_start(&s->listen, on_accept, on_refused, s, e)) {
		for (int i = 0; i < s->nworkers; i++)
			MHD_stop_daemon(s->workers[i].d);
		listener_stop(&s->listen);
		server_free(s);
		return e->code ? e->code : err_set(e, ERR_UNAVAILABLE, "cannot start the HTTP server on %s:%d",
						   o->host, o->port);
	}
	if (pthread_create(&s->ticker, NULL, ticker, s) == 0)
		s->ticker_started = 1;
	else
		log_warn("no ticker thread: parked streams wait for their producer, request deadlines are not enforced");
	*out = s;
	return 0;
}

int http_server_port(const struct http_server *s)
{
	return s->port;
}

void http_server_quiesce(struct http_server *s)
{
	if (!s || atomic_exchange(&s->quiesced, 1))
		return;
	listener_stop(&s->listen); /* new connections are refused from here on */
	wake_parked(s, 1);	   /* watches get their final call */
}

long http_server_drain(struct http_server *s, long timeout_ms)
{
	if (!s)
		return 0;
	struct timespec until = time_after_ms(CLOCK_MONOTONIC, timeout_ms > 0 ? timeout_ms : 0);
	pthread_mutex_lock(&s->lock);
	while (atomic_load(&s->inflight) > 0)
		if (pthread_cond_timedwait(&s->changed, &s->lock, &until) == ETIMEDOUT)
			break;
	long n = atomic_load(&s->inflight);
	pthread_mutex_unlock(&s->lock);
	return n;
}

void http_server_end_streams(struct http_server *s)
{
	if (!s)
		return;
	atomic_store(&s->ending, 1);
	wake_parked(s, 1);
}

/* Deferred requests whose work has not finished are answered 503 (the
 * runtime stops the executors first, so this is a fault being contained):
 * each is resumed, and its request lives on until the work returns. */
static void abandon_deferred(struct http_server *s)
{
	pthread_mutex_lock(&s->lock);
	for (http_req *r = s->pending; r;) {
		int expect = DEFER_PENDING;
		if (!atomic_compare_exchange_strong(&r->defer_state, &expect, DEFER_ABANDONED)) {
			r = r->pnext; /* done: its executor thread resumes it */
			continue;
		}
		pending_unlink(r);
		s->abandoned++;
		struct MHD_Connection *conn = r->conn;
		log_error("request %s %s %s: its deferred work is still running at shutdown: answering 503",
			  r->request_id, r->method_str, r->path);
		pthread_mutex_unlock(&s->lock);
		MHD_resume_connection(conn);
		pthread_mutex_lock(&s->lock);
		r = s->pending;
	}
	struct timespec until = time_after_ms(CLOCK_MONOTONIC, ABANDON_WAIT_MS);
	while (s->pending || s->resuming || s->abandoned)
		if (pthread_cond_timedwait(&s->changed, &s->lock, &until) == ETIMEDOUT)
			break;
	if (s->pending || s->resuming)
		log_error("deferred requests still suspended at shutdown");
	pthread_mutex_unlock(&s->lock);
}

void http_server_stop(struct http_server *s)
{
	if (!s)
		return;
	abandon_deferred(s);
	atomic_store(&s->stopping, 1); /* streams end at their next read */
	wake_parked(s, 1);
	if (s->ticker_started)
		pthread_join(s->ticker, NULL);
	wake_parked(s, 1); /* every suspended connection must be resumed before the stop */
	listener_stop(&s->listen); /* a no-op after quiesce */
	for (int i = 0; i < s->nworkers; i++)
		MHD_stop_daemon(s->workers[i].d);
	server_free(s);
}
