/*
 * The server's insides, shared by its files: server.c (the libmicrohttpd
 * callbacks, routing, responses, deferred work, start and stop), request.c
 * (what a handler reads of a request, the request id, the checks made on the
 * head), stream.c (streamed responses and their parking), upload.c (uploads
 * and multipart forms) and cors.c (origins, preflight, CORS response
 * headers). Nothing outside src/http includes it.
 */
#ifndef BOOKD_SERVER_INT_H
#define BOOKD_SERVER_INT_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "../core/arena.h"
#include "../core/buf.h"
#include "conns.h"
#include "listener.h"
#include "proxy.h"
#include "server.h"

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
#define STREAMS_END_MS 2000  /* at stop, for the streams' last events */

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
	atomic_long streams;	/* stream responses not yet freed (watches too) */
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
	const char *origin;   /* an allowed Origin, or NULL */
	int cors_credentials; /* the Origin is listed: credentials allowed */
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

/* Responses (server.c). */
void srv_set_response(http_req *r, int status, const char *ctype, struct MHD_Response *resp, size_t len);
/* An answer given before the body is read: the connection closes after it. */
void srv_reject(http_req *r, int status, const char *code, const char *message, const struct err *e);
/* A field (header, query argument) the request cannot have: 400 when it is
 * malformed, 422 when it breaks a limit. */
void srv_reject_field(http_req *r, int status, const char *field, const char *problem);

/* The request (request.c). */
void srv_assign_request_id(http_req *r);
/* Checks made once the headers are in, before any body is read; matches the
 * route and runs its authorizer. -1 when the request has been answered. */
int srv_check_headers(http_req *r, const char *version);

/* Streams (stream.c): resumes the parked streams that are due, or all. */
void srv_wake_parked(struct http_server *s, int all);

/* Uploads (upload.c). */
void srv_fail(http_req *r, int status, const char *code, const char *msg, const char *field);
int srv_upload_begin(http_req *r);
int srv_upload_write(http_req *r, const char *data, size_t n);
void srv_check_form(http_req *r);

/* CORS (cors.c). */
void srv_cors_parse(struct http_server *s, const char *list);
/* Sets r->origin and r->cors_credentials from the request's Origin. */
void srv_cors_request(http_req *r);
/* Answers a CORS preflight (1), or leaves the request alone (0). */
int srv_cors_preflight(http_req *r);
/* The CORS headers of a response about to be sent. */
void srv_cors_headers(http_req *r);

#endif
