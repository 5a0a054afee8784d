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
#include "../core/uuid.h"

#define MAX_CORS_ORIGINS 16
#define MAX_RESP_HEADERS 12
#define REQUEST_ID_MAX 128
#define STREAM_TICK_MS 100 /* how often parked streams are checked for being due */

struct http_server {
	struct MHD_Daemon *d;
	struct http_server_opts o;
	atomic_long inflight;
	atomic_ulong next_id;
	unsigned id_prefix;
	int cors_any;
	int ncors;
	char *cors[MAX_CORS_ORIGINS];
	char *cors_copy;
	int port;
	/* streams waiting for their next event */
	pthread_mutex_t park_lock;
	struct http_stream *parked;
	pthread_t ticker;
	int ticker_started;
	atomic_int stopping;
};

struct http_stream {
	struct http_server *srv;
	struct MHD_Connection *conn;
	http_stream_fn fn;
	void (*free_fn)(void *);
	void *ctx;
	struct http_stream *next, **pprev; /* in srv->parked (under park_lock) */
	int64_t poll_us;  /* a parked stream's fn is asked again after this long */
	int64_t due_us;	  /* ... that is, at this time (monotonic; under park_lock) */
	int parked;	  /* in srv->parked, connection suspended (under park_lock) */
	int wake_pending; /* woken while not parked: ask fn again before parking */
};

#define MAX_FORM_FIELDS 8

struct resp_header {
	const char *name, *value;
};

struct http_req {
	struct MHD_Connection *conn;
	struct http_server *srv;
	struct arena arena;
	int method;
	const char *method_str;
	char *path;
	size_t path_len;
	int nparams;
	char *params[ROUTER_MAX_PARAMS];
	struct buf body;
	size_t discarded;
	int fail_status; /* set while reading: answer this instead of routing */
	const char *origin; /* an allowed Origin, or NULL */
	char client_ip[64];
	struct route_match match;
	int matched;
	/* ROUTE_UPLOAD */
	int upload_fd;
	char *upload_path;
	struct http_upload upload;
	int has_upload, upload_kept;
	size_t upload_max;
	struct MHD_PostProcessor *pp;
	int nform;
	const char *form_keys[MAX_FORM_FIELDS];
	char *form_vals[MAX_FORM_FIELDS];
	/* deferred work (http_defer) */
	int deferred;		 /* suspended, waiting for the executor */
	atomic_int defer_done; /* work finished: answer with defer_fn */
	http_handler defer_fn;
	executor_fn defer_work;
	void *defer_ctx;
	char request_id[REQUEST_ID_MAX + 1];
	int64_t start_us;
	/* the response */
	struct MHD_Response *resp;
	int status;
	size_t resp_bytes;
	int nheaders;
	struct resp_header headers[MAX_RESP_HEADERS];
};

/* ---- the handler-facing API ------------------------------------------------ */

int http_method(const http_req *r) { return r->method; }
const char *http_path(const http_req *r) { return r->path; }
struct arena *http_arena(http_req *r) { return &r->arena; }
const char *http_request_id(const http_req *r) { return r->request_id; }

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

const char *http_client_ip(http_req *r)
{
	if (!r->client_ip[0]) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		const struct sockaddr *sa = ci ? ci->client_addr : NULL;
		if (sa && sa->sa_family == AF_INET)
			inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, r->client_ip,
				  sizeof(r->client_ip));
		else if (sa && sa->sa_family == AF_INET6)
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, r->client_ip,
				  sizeof(r->client_ip));
		else
			snprintf(r->client_ip, sizeof(r->client_ip), "unknown");
	}
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

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct http_stream *st = cls;
	(void)pos;
	for (;;) {
		if (atomic_load(&st->srv->stopping))
			return MHD_CONTENT_READER_END_OF_STREAM;
		long n = st->fn(st->ctx, buf, max);
		if (n > 0)
			return n;
		if (n < 0)
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
		if (atomic_load(&st->srv->stopping)) {
			/* quiesce set stopping, then woke the parked under this
			 * lock: parking now would sleep through the shutdown */
			pthread_mutex_unlock(&st->srv->park_lock);
			return MHD_CONTENT_READER_END_OF_STREAM;
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

static void *ticker(void *arg)
{
	struct http_server *s = arg;
	while (!atomic_load(&s->stopping)) {
		struct timespec ts = { 0, STREAM_TICK_MS * 1000 * 1000 };
		nanosleep(&ts, NULL);
		wake_parked(s, 0);
	}
	return NULL;
}

struct http_stream *http_respond_stream(http_req *r, const char *ctype, int poll_ms, http_stream_fn fn,
					void (*free_fn)(void *), void *ctx)
{
	struct http_stream *st = xcalloc(1, sizeof(*st));
	if (!st) {
		if (free_fn)
			free_fn(ctx);
		http_respond_error(r, 500, "internal", "out of memory", NULL);
		return NULL;
	}
	*st = (struct http_stream){ .srv = r->srv,
				    .conn = r->conn,
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
	set_response(r, 200, ctype, resp, 0);
	MHD_add_response_header(resp, "Cache-Control", "no-cache");
	MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	return st;
}

static void defer_trampoline(void *arg)
{
	http_req *r = arg;
	r->defer_work(r->defer_ctx);
	atomic_store(&r->defer_done, 1);
	MHD_resume_connection(r->conn);
}

int http_defer(http_req *r, struct executor *ex, executor_fn work, http_handler done, void *ctx)
{
	r->defer_work = work;
	r->defer_fn = done;
	r->defer_ctx = ctx;
	/* Suspend first: the work may finish, and resume, before we return. */
	MHD_suspend_connection(r->conn);
	r->deferred = 1;
	if (executor_submit(ex, defer_trampoline, r)) {
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

void http_set_header(http_req *r, const char *name, const char *value)
{
	if (r->nheaders >= MAX_RESP_HEADERS)
		return;
	char *n = arena_strdup(&r->arena, name), *v = arena_strdup(&r->arena, value);
	if (n && v)
		r->headers[r->nheaders++] = (struct resp_header){ n, v };
}

static void set_response(http_req *r, int status, const char *ctype, struct MHD_Response *resp, size_t len)
{
	if (r->resp) /* answered twice: keep the first, it is a handler bug */
		MHD_destroy_response(r->resp);
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
	assign_request_id(r);
	r->origin = cors_allowed(s, http_header(r, "Origin"));
	atomic_fetch_add(&s->inflight, 1);
	return r;
}

static void req_free(http_req *r)
{
	if (r->resp)
		MHD_destroy_response(r->resp);
	if (r->pp)
		MHD_destroy_post_processor(r->pp);
	if (r->upload_fd > 0)
		close(r->upload_fd);
	if (r->upload_path && !r->upload_kept)
		unlink(r->upload_path);
	buf_free(&r->body);
	arena_free(&r->arena);
	xfree(r);
}

/* Checks made once the headers are in, before any body is read. */
static int check_headers(http_req *r)
{
	const char *cl = http_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
	const char *te = http_header(r, MHD_HTTP_HEADER_TRANSFER_ENCODING);
	if (cl && te) {
		/* Request smuggling: a proxy in front may frame this request differently. */
		http_respond_error(r, 400, "bad_request", "both Content-Length and Transfer-Encoding given", NULL);
		return -1;
	}
	if (!r->method) {
		http_respond_error(r, 405, "method_not_allowed", "method not supported", NULL);
		return -1;
	}
	r->matched = router_match(r->srv->o.routes, r->srv->o.nroutes, r->method, r->path, r->path_len, &r->match);
	size_t cap = r->matched && (r->match.route->flags & ROUTE_UPLOAD) ? r->srv->o.max_upload : r->srv->o.max_body;
	if (cl) {
		char *end;
		unsigned long long n = strtoull(cl, &end, 10);
		if (n > cap) {
			char msg[96];
			snprintf(msg, sizeof(msg), "request body is larger than %zu bytes", cap);
			http_respond_error(r, 413, "payload_too_large", msg, NULL);
			return -1;
		}
	}
	return 0;
}

/* ---- uploads ----------------------------------------------------------------- */

static int upload_write(http_req *r, const char *data, size_t n)
{
	if (r->upload.size + n > r->upload_max) {
		r->fail_status = 413;
		return -1;
	}
	while (n) {
		ssize_t w = write(r->upload_fd, data, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			r->fail_status = 500;
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
	if (filename) {
		/* The first file part is the upload; later ones are ignored. */
		if (!r->upload.filename) {
			r->upload.filename = arena_strdup(&r->arena, filename);
			r->upload.content_type = ctype ? arena_strdup(&r->arena, ctype) : NULL;
		} else if (strcmp(r->upload.filename, filename) != 0) {
			return MHD_YES;
		}
		return upload_write(r, data, size) ? MHD_NO : MHD_YES;
	}
	/* A small text field: keep the first MAX_FORM_FIELDS, up to 1 KiB each. */
	int i = 0;
	while (i < r->nform && strcmp(r->form_keys[i], key) != 0)
		i++;
	if (i == r->nform) {
		if (r->nform >= MAX_FORM_FIELDS)
			return MHD_YES;
		r->form_keys[i] = arena_strdup(&r->arena, key);
		r->form_vals[i] = arena_strdup(&r->arena, "");
		r->nform++;
	}
	size_t have = strlen(r->form_vals[i]);
	if (off != have || have + size > 1024) {
		r->fail_status = 413;
		return MHD_NO;
	}
	char *v = arena_alloc(&r->arena, have + size + 1);
	if (!v)
		return MHD_NO;
	memcpy(v, r->form_vals[i], have);
	memcpy(v + have, data, size);
	v[have + size] = '\0';
	r->form_vals[i] = v;
	return MHD_YES;
}

static int upload_begin(http_req *r)
{
	struct http_server *s = r->srv;
	r->upload_max = s->o.max_upload;
	r->upload_path = arena_printf(&r->arena, "%s/upload-XXXXXX", s->o.upload_dir);
	if (!r->upload_path || (r->upload_fd = mkstemp(r->upload_path)) < 0) {
		r->upload_path = NULL;
		r->upload_fd = 0;
		log_error("cannot create an upload file in %s: %s", s->o.upload_dir, strerror(errno));
		http_respond_error(r, 500, "internal", "cannot store the upload", NULL);
		return -1;
	}
	const char *ct = http_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
	if (ct && strncasecmp(ct, "multipart/form-data", 19) == 0) {
		r->pp = MHD_create_post_processor(r->conn, 64 * 1024, on_form_part, r);
		if (!r->pp) {
			http_respond_error(r, 400, "bad_request", "malformed multipart/form-data", NULL);
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
	r->nparams = m.nparams;
	for (int i = 0; i < m.nparams; i++) {
		r->params[i] = arena_strndup(&r->arena, m.params[i].p, m.params[i].n);
		if (!r->params[i]) {
			http_respond_error(r, 500, "internal", "out of memory", NULL);
			return;
		}
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
	for (int i = 0; i < r->nheaders; i++)
		MHD_add_response_header(r->resp, r->headers[i].name, r->headers[i].value);
	if (r->origin) {
		MHD_add_response_header(r->resp, "Access-Control-Allow-Origin", r->origin);
		MHD_add_response_header(r->resp, "Access-Control-Expose-Headers",
					"X-Request-ID, ETag, Location, Retry-After");
	}
	if (r->srv->ncors || r->srv->cors_any)
		MHD_add_response_header(r->resp, "Vary", "Origin");
	enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)r->status, r->resp);
	MHD_destroy_response(r->resp);
	r->resp = NULL;
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct http_server *s = cls;
	http_req *r = *con_cls;
	if (!r) {
		r = req_new(s, conn, url, method);
		if (!r)
			return MHD_NO;
		*con_cls = r;
		if (check_headers(r))
			return send_response(r); /* answering now closes the connection: wanted */
		if (r->matched && (r->match.route->flags & ROUTE_UPLOAD) && upload_begin(r))
			return send_response(r);
		return MHD_YES;
	}
	if (*upload_data_size && r->upload_path) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (r->fail_status) {
			r->discarded += n;
			return r->discarded > 2 * s->o.max_body ? MHD_NO : MHD_YES;
		}
		if (r->pp) {
			if (MHD_post_process(r->pp, upload_data, n) != MHD_YES && !r->fail_status)
				r->fail_status = 400;
		} else {
			(void)upload_write(r, upload_data, n);
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (r->fail_status) {
			r->discarded += n;
			/* Past twice the limit, stop reading: close the connection. */
			return r->discarded > 2 * s->o.max_body ? MHD_NO : MHD_YES;
		}
		int rc = buf_append(&r->body, upload_data, n);
		if (rc == BUF_TOOBIG)
			r->fail_status = 413;
		else if (rc)
			r->fail_status = 500;
		if (r->fail_status)
			buf_free(&r->body);
		return MHD_YES;
	}
	if (r->deferred) {
		if (!atomic_load(&r->defer_done))
			return MHD_YES; /* a spurious call while suspended */
		r->deferred = 0;
		r->defer_fn(r, s->o.app);
		if (!r->resp)
			http_respond_error(r, 500, "internal", "internal error", NULL);
		return send_response(r);
	}
	if (r->upload_path && !r->fail_status) {
		close(r->upload_fd);
		r->upload_fd = 0;
		r->has_upload = r->upload.size > 0 || r->upload.filename;
	}
	if (r->fail_status == 413) {
		char msg[96];
		snprintf(msg, sizeof(msg), "request body is larger than %zu bytes",
			 r->upload_path ? r->upload_max : s->o.max_body);
		http_respond_error(r, 413, "payload_too_large", msg, NULL);
	} else if (r->fail_status == 400) {
		http_respond_error(r, 400, "bad_request", "malformed multipart/form-data", NULL);
	} else if (r->fail_status) {
		http_respond_error(r, 500, "internal", "out of memory", NULL);
	} else {
		route(r);
		if (r->deferred)
			return MHD_YES;
	}
	return send_response(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct http_server *s = cls;
	http_req *r = *con_cls;
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
	req_free(r);
	atomic_fetch_sub(&s->inflight, 1);
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

int http_server_start(struct http_server **out, const struct http_server_opts *o, struct err *e)
{
	*out = NULL;
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
	struct addrinfo *ai = NULL;
	char port[16];
	snprintf(port, sizeof(port), "%d", o->port);
	int gai = getaddrinfo(o->host, port, &hints, &ai);
	if (gai)
		return err_set(e, ERR_INVALID, "cannot resolve BOOKD_HOST %s: %s", o->host, gai_strerror(gai));

	struct http_server *s = xcalloc(1, sizeof(*s));
	if (!s) {
		freeaddrinfo(ai);
		return err_set(e, ERR_INTERNAL, "out of memory");
	}
	s->o = *o;
	unsigned char rnd[4];
	if (random_bytes(rnd, sizeof(rnd)) == 0)
		s->id_prefix = (unsigned)rnd[0] << 24 | (unsigned)rnd[1] << 16 | (unsigned)rnd[2] << 8 | rnd[3];
	parse_cors(s, o->cors_origins);
	pthread_mutex_init(&s->park_lock, NULL);

	unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* The logger goes first, or MHD's own logger prints the options it parses. */
	s->d = MHD_start_daemon(flags, (uint16_t)o->port, NULL, NULL, on_request, s,
				MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
				MHD_OPTION_SOCK_ADDR, ai->ai_addr,
				MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(o->threads < 2 ? 2 : o->threads),
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)o->conn_timeout,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)o->max_connections,
				MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32 * 1024,
				MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
				MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
				MHD_OPTION_END);
	freeaddrinfo(ai);
	if (!s->d) {
		xfree(s->cors_copy);
		xfree(s);
		return err_set(e, ERR_UNAVAILABLE, "cannot listen on %s:%d (in use, or not permitted)", o->host, o->port);
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	s->port = info ? info->port : o->port;
	if (pthread_create(&s->ticker, NULL, ticker, s) == 0)
		s->ticker_started = 1;
	*out = s;
	return 0;
}

int http_server_port(const struct http_server *s)
{
	return s->port;
}

void http_server_quiesce(struct http_server *s)
{
	atomic_store(&s->stopping, 1); /* streams end at their next read */
	wake_parked(s, 1);
	MHD_socket fd = MHD_quiesce_daemon(s->d);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
}

long http_server_drain(struct http_server *s, long timeout_ms)
{
	int64_t deadline = time_mono_us() + (int64_t)timeout_ms * 1000;
	long n;
	while ((n = atomic_load(&s->inflight)) > 0 && time_mono_us() < deadline) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return n;
}

void http_server_stop(struct http_server *s)
{
	if (!s)
		return;
	atomic_store(&s->stopping, 1);
	if (s->ticker_started)
		pthread_join(s->ticker, NULL);
	wake_parked(s, 1); /* every suspended connection must be resumed before the stop */
	MHD_stop_daemon(s->d);
	pthread_mutex_destroy(&s->park_lock);
	xfree(s->cors_copy);
	xfree(s);
}
