/*
 * The server: libmicrohttpd daemons, one thread each, fed by one accepting
 * thread (listener.h); the callbacks that take a request from its head to its
 * answer (request.c checks the head, upload.c takes upload bodies, route()
 * runs the handler, send_response adds the common headers); deferred work;
 * start and the staged stop of server.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../core/log.h"
#include "../core/mem.h"
#include "../core/timeutil.h"
#include "../core/uuid.h"
#include "server_int.h"

/* Every 100 ms: parked streams that are due, and requests past their deadline. */
static void *ticker(void *arg)
{
	struct http_server *s = arg;
	while (!atomic_load(&s->stopping)) {
		struct timespec ts = { 0, STREAM_TICK_MS * 1000 * 1000 };
		nanosleep(&ts, NULL);
		srv_wake_parked(s, 0);
		int late = conns_expire(&s->conns, time_mono_us());
		if (late)
			log_info("closed %d connection(s) whose request took longer than %d s", late,
				 s->o.request_timeout);
	}
	return NULL;
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

void srv_set_response(http_req *r, int status, const char *ctype, struct MHD_Response *resp, size_t len)
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
	srv_set_response(r, status, ctype,
		     MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY), len);
}

void http_respond_owned(http_req *r, int status, const char *ctype, char *body, size_t len)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!resp)
		free(body);
	srv_set_response(r, status, ctype, resp, len);
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
	srv_set_response(r, status, ctype, resp, b->n);
}

void http_respond_fd(http_req *r, int status, const char *ctype, int fd, uint64_t offset, uint64_t len)
{
	struct MHD_Response *resp = MHD_create_response_from_fd_at_offset64(len, fd, offset);
	if (!resp)
		close(fd);
	srv_set_response(r, status, ctype, resp, (size_t)len);
}

void http_respond_empty(http_req *r, int status)
{
	srv_set_response(r, status, NULL, MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT), 0);
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
		srv_set_response(r, 500, "application/json",
			     MHD_create_response_from_buffer(sizeof(oom) - 1, (void *)oom, MHD_RESPMEM_PERSISTENT),
			     sizeof(oom) - 1);
		return;
	}
	http_respond_owned(r, status, "application/json", s, strlen(s));
}

/* An answer given before the body is read: the connection closes after it,
 * since what follows on it cannot be trusted to be the next request. */
void srv_reject(http_req *r, int status, const char *code, const char *message, const struct err *e)
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

void srv_reject_field(http_req *r, int status, const char *field, const char *problem)
{
	struct err e = { 0 };
	fail_field(&e, status, field, problem);
	srv_reject(r, status, err_code_name(e.code), e.msg, &e);
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
	srv_assign_request_id(r);
	srv_cors_request(r);
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

/* ---- routing --------------------------------------------------------------- */

/* Runs the matched route's handler, or answers a preflight, OPTIONS, 405 or
 * 404 itself. */
static void route(http_req *r)
{
	struct http_server *s = r->srv;
	struct route_match m = r->match;
	int ok = r->matched;
	if (r->method == HTTP_OPTIONS && !ok) {
		if (srv_cors_preflight(r))
			return;
		if (m.allowed) {
			char allow[128];
			router_allow_header(m.allowed, allow, sizeof(allow));
			http_respond_empty(r, 204);
			http_set_header(r, "Allow", allow);
			return;
		}
	}
	if (!ok && !m.allowed && (r->method & (HTTP_GET | HTTP_HEAD)) && s->o.fallback &&
	    s->o.fallback(r, s->o.fallback_ctx) == 0)
		return;
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
	srv_cors_headers(r);
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
		if (srv_check_headers(r, version) ||
		    (r->matched && (r->match.route->flags & ROUTE_UPLOAD) && srv_upload_begin(r))) {
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
				srv_fail(r, 400, NULL, NULL, NULL);
		} else if (r->upload_path) {
			(void)srv_upload_write(r, upload_data, n);
		} else {
			int rc = buf_append(&r->body, upload_data, n);
			if (rc == BUF_TOOBIG)
				srv_fail(r, 413, NULL, NULL, NULL);
			else if (rc)
				srv_fail(r, 500, NULL, NULL, NULL);
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
		srv_fail(r, 400, NULL, NULL, NULL);
	if (r->pp)
		srv_check_form(r);
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
		conns_close(&w->s->conns, *socket_context); /* and w->conns */
		*socket_context = NULL;
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
	c->load = &w->conns;
	*d = w->d;
	return c;
}

/* libmicrohttpd refused a connection it was given (it closed it). */
static void on_refused(void *cls, void *token)
{
	struct http_server *s = cls;
	conns_refused(&s->conns, token);
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
	if (!rc)
		rc = proxies_set_header(&s->trusted, o->forwarded_header, e);
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
	srv_cors_parse(s, o->cors_origins);
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
	 * connections over, enforcing it (conns_admit); each daemon's own limit
	 * sits well above it, or a daemon could drop a queued connection
	 * silently while it still counts one that has just closed. */
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
					MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->hard_limit * 2 + 64,
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
	srv_wake_parked(s, 1);	   /* watches get their final call */
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
	srv_wake_parked(s, 1);
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
	/* Every stream has been told to end (its final call writes its last
	 * event): let those events go out before streams are cut. */
	atomic_store(&s->ending, 1);
	srv_wake_parked(s, 1);
	struct timespec until = time_after_ms(CLOCK_MONOTONIC, STREAMS_END_MS);
	pthread_mutex_lock(&s->lock);
	while (atomic_load(&s->streams) > 0)
		if (pthread_cond_timedwait(&s->changed, &s->lock, &until) == ETIMEDOUT)
			break;
	long left = atomic_load(&s->streams);
	pthread_mutex_unlock(&s->lock);
	if (left)
		log_warn("shutdown: %ld stream(s) did not end in time and are cut", left);
	atomic_store(&s->stopping, 1); /* streams end at their next read */
	srv_wake_parked(s, 1);
	if (s->ticker_started)
		pthread_join(s->ticker, NULL);
	srv_wake_parked(s, 1); /* every suspended connection must be resumed before the stop */
	listener_stop(&s->listen); /* a no-op after quiesce */
	for (int i = 0; i < s->nworkers; i++)
		MHD_stop_daemon(s->workers[i].d);
	server_free(s);
}

