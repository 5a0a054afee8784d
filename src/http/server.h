/*
 * The HTTP server: libmicrohttpd with epoll and a thread pool, plus the
 * middleware every request goes through — connection limits and request
 * deadlines, request id, framing checks against request smuggling, body
 * limits, authorization on the headers, CORS, routing, the JSON error format
 * for what never reaches a handler, and one access-log line per request.
 *
 * Stopping, as the runtime drives it:
 *   http_server_quiesce     stop accepting; requests and streamed answers in
 *                           flight go on (every response now closes its
 *                           connection); watch streams get their final call.
 *   http_server_drain       wait (a condition variable) until no request is in
 *                           flight, or the timeout; returns how many are left.
 *   http_server_end_streams every stream gets its final call now (`final` = 1
 *                           in its http_stream_fn): its producer writes its
 *                           last event, and the stream ends.
 *   http_server_stop        the caller has stopped (joined) the executors that
 *                           deferred work runs on, so every http_defer has
 *                           resumed its connection; one that has not is logged
 *                           and answered 503 (its request lives on until the
 *                           work returns). Parked streams are ended. No
 *                           connection is suspended when MHD_stop_daemon runs.
 */
#ifndef BOOKD_SERVER_H
#define BOOKD_SERVER_H

#include "../core/err.h"
#include "router.h"

struct http_server_opts {
	const char *host;
	int port;
	int threads;
	int conn_timeout;    /* idle seconds */
	int request_timeout; /* seconds for a request's head and body; 0: 60 */
	int max_connections;
	int max_connections_per_ip; /* 0: max_connections */
	const char *trusted_proxies; /* CIDR list, or NULL */
	const char *forwarded_header; /* the one naming the client; NULL: X-Forwarded-For */
	size_t max_body;
	const char *cors_origins; /* comma-separated, or "*" */
	const char *upload_dir;	  /* where ROUTE_UPLOAD bodies are written */
	size_t max_upload;
	const struct route *routes;
	size_t nroutes;
	void *app; /* passed to handlers */
	/* For a GET or HEAD whose path no route knows (before the 404): 0 when
	 * it answered, -1 to leave the 404 to the server. NULL: none. */
	int (*fallback)(http_req *req, void *ctx);
	void *fallback_ctx;
};

struct http_server;

int http_server_start(struct http_server **out, const struct http_server_opts *o, struct err *e) WUR;
/* The port actually bound (useful with port 0). */
int http_server_port(const struct http_server *s);
/* Stops accepting new connections; requests in flight go on. */
void http_server_quiesce(struct http_server *s);
/* Waits until no request is in flight or `timeout_ms` passes; returns the
 * number still in flight (watch streams are not counted). */
long http_server_drain(struct http_server *s, long timeout_ms);
/* Tells every stream the server is stopping (see above). */
void http_server_end_streams(struct http_server *s);
/* Stops and frees (NULL is fine). */
void http_server_stop(struct http_server *s);

/* The error object of API.md, for the api layer and the server itself. `e`
 * (may be NULL) supplies details. */
void http_respond_error(http_req *req, int status, const char *code, const char *message,
			const struct err *e);

#endif
