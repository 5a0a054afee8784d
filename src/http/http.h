/*
 * What a handler sees of an HTTP request, and how it answers. Handlers run on
 * the server's worker threads; everything they allocate from http_arena(req)
 * lives until the response has been sent. A handler answers exactly once with
 * one of the http_respond* calls (the api layer's helpers wrap them).
 */
#ifndef BOOKD_HTTP_H
#define BOOKD_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "../core/arena.h"
#include "../core/executor.h"
#include "../core/rcbuf.h"

typedef struct http_req http_req;

enum http_method {
	HTTP_GET = 1 << 0,
	HTTP_HEAD = 1 << 1,
	HTTP_POST = 1 << 2,
	HTTP_PUT = 1 << 3,
	HTTP_PATCH = 1 << 4,
	HTTP_DELETE = 1 << 5,
	HTTP_OPTIONS = 1 << 6,
};

typedef void (*http_handler)(http_req *req, void *app);
/* A route's check made once the headers are in, before a byte of the body is
 * read (or an upload file created): 0 to go on, or answer (401, 403) and
 * return -1. It may leave what it learnt with http_set_auth. */
typedef int (*http_authorizer)(http_req *req, void *app);

int http_method(const http_req *req);
const char *http_path(const http_req *req);
/* Path parameter i of the matched route ("{id}" segments, in order). */
const char *http_param(const http_req *req, int i);
/* A request header, or NULL. */
const char *http_header(http_req *req, const char *name);
/* A decoded query-string argument, or NULL. */
const char *http_query(http_req *req, const char *name);
/* The request body (NUL-terminated), its length in *len; "" when none. */
const char *http_body(const http_req *req, size_t *len);
struct arena *http_arena(http_req *req);
const char *http_request_id(const http_req *req);

/* The client's IP address as text ("127.0.0.1", "::1"): the peer, or, when
 * the peer is a trusted proxy (BOOKD_TRUSTED_PROXIES), the client its
 * BOOKD_FORWARDED_HEADER (X-Forwarded-For, Forwarded or X-Real-IP) names. */
const char *http_client_ip(http_req *req);
/* What per-address rate limits key on: the client's IPv4 address, or its
 * IPv6 /64 ("2001:db8:1:2::/64"), which one subscriber usually holds whole.
 * Logs keep http_client_ip. */
const char *http_client_limit_key(http_req *req);

/* 1 when the connection's peer is one of BOOKD_TRUSTED_PROXIES (whatever the
 * forwarding headers say): only then may a header speak for the client. */
int http_peer_trusted(http_req *req);
/* 1 when the request comes from no page (no Origin header), from its own
 * origin (Origin names the Host it was sent to), or from an origin listed in
 * BOOKD_CORS_ORIGINS: what cookie credentials are taken from. */
int http_origin_trusted(http_req *req);

/* What the route's authorizer learnt about the caller (arena memory), for the
 * handler; NULL when no authorizer ran. */
void http_set_auth(http_req *req, void *auth);
void *http_auth(const http_req *req);

/* Runs `work(ctx)` on `ex` with the connection suspended, then calls
 * `done(req, app)` back on an HTTP thread to answer; `ctx` must live in the
 * request's arena (or longer). Returns -1 when `ex` refuses the work (queue
 * full): the handler then answers itself, typically 503.
 * Should the server stop before `work` has finished (http_server_stop), the
 * request is answered 503 without calling `done`; the request (and its arena,
 * so an arena ctx) lives on until `work` returns. */
int http_defer(http_req *req, struct executor *ex, executor_fn work, http_handler done, void *ctx) WUR;
/* The ctx given to http_defer, for `done`. */
void *http_defer_ctx(http_req *req);

/* The uploaded file of a ROUTE_UPLOAD route: the file part of a
 * multipart/form-data body, or the whole raw body. */
struct http_upload {
	const char *path;	  /* a temporary file, removed after the response */
	const char *filename;	  /* as the client named it, or NULL */
	const char *content_type; /* of the part, or of the raw body */
	size_t size;
};
const struct http_upload *http_upload(http_req *req); /* NULL when none was sent */
/* A text field of a multipart form (small values only), or NULL. */
const char *http_form(http_req *req, const char *name);
/* Moves the upload to `path` (same file system): it is then the caller's. */
int http_upload_keep(http_req *req, const char *path) WUR;

/* A streamed response (Server-Sent Events): `fn` fills buf and returns the
 * bytes written, 0 when it has nothing yet, or -1 to end the stream. After a
 * 0 the connection sleeps until http_stream_wake, or else for poll_ms to
 * poll_ms + 100 ms (parked streams are looked at every 100 ms; poll_ms below
 * that counts as 100). `free_fn` (may be NULL) releases ctx when the
 * response is gone.
 * `final` is 1 once the server is stopping (http_server_end_streams; for a
 * watch, already at http_server_quiesce): `fn` should then write what it
 * still has and its last event (an SSE `error` event saying the server is
 * shutting down, unless it has just written its own last event). The stream
 * ends at the first call with `final` that returns 0 or -1. */
typedef long (*http_stream_fn)(void *ctx, char *buf, size_t max, int final);
struct http_stream;
/* Returns a handle for http_stream_wake, valid until free_fn(ctx) is called;
 * NULL when the request could not be answered this way (free_fn(ctx) has then
 * been called, and an error answered). */
struct http_stream *http_respond_stream(http_req *req, const char *content_type, int poll_ms, http_stream_fn fn,
					void (*free_fn)(void *), void *ctx);
/* From any thread: there is something to send, ask `fn` now rather than at
 * the next tick. The caller must serialise this against its free_fn. */
void http_stream_wake(struct http_stream *st);
/* Marks a stream as a watch (progress that a client follows as long as it
 * likes, not an answer being produced): shutdown does not wait for it, it is
 * ended as soon as the server stops accepting. Call it from the handler, right
 * after http_respond_stream. */
void http_stream_watch(struct http_stream *st);

/* Adds a response header; name and value are copied. A request answers
 * once: a second http_respond* is a handler bug, logged, and the first answer
 * stands (it is the one the handler's checks reached first). */
void http_set_header(http_req *req, const char *name, const char *value);
/* `body` is copied. */
void http_respond(http_req *req, int status, const char *content_type, const char *body, size_t len);
/* `body` was malloc'ed (e.g. by json_dumps) and is freed after sending. */
void http_respond_owned(http_req *req, int status, const char *content_type, char *body, size_t len);
/* `body` is shared: a reference is taken and dropped after sending. */
void http_respond_rcbuf(http_req *req, int status, const char *content_type, struct rcbuf *body);
void http_respond_empty(http_req *req, int status);
/* `len` bytes of the open file `fd` from `offset`, sent with sendfile; the
 * descriptor is the response's from now on (closed after sending, or at once
 * when the response cannot be made). */
void http_respond_fd(http_req *req, int status, const char *content_type, int fd, uint64_t offset, uint64_t len);

#endif
