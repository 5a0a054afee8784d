/*
 * The HTTP server: libmicrohttpd with epoll and a thread pool, plus the
 * middleware every request goes through — request id, body limits and
 * request-smuggling checks, CORS, routing, the JSON error format for what
 * never reaches a handler, and one access-log line per request.
 */
#ifndef BOOKD_SERVER_H
#define BOOKD_SERVER_H

#include "../core/err.h"
#include "router.h"

struct http_server_opts {
	const char *host;
	int port;
	int threads;
	int conn_timeout;
	int max_connections;
	size_t max_body;
	const char *cors_origins; /* comma-separated, or "*" */
	const char *upload_dir;	  /* where ROUTE_UPLOAD bodies are written */
	size_t max_upload;
	const struct route *routes;
	size_t nroutes;
	void *app; /* passed to handlers */
};

struct http_server;

int http_server_start(struct http_server **out, const struct http_server_opts *o, struct err *e) WUR;
/* The port actually bound (useful with port 0). */
int http_server_port(const struct http_server *s);
/* Stops accepting new connections; requests in flight go on. */
void http_server_quiesce(struct http_server *s);
/* Waits until no request is in flight or `timeout_ms` passes; returns the
 * number still in flight. */
long http_server_drain(struct http_server *s, long timeout_ms);
void http_server_stop(struct http_server *s);

/* The error object of API.md, for the api layer and the server itself. `e`
 * (may be NULL) supplies details. */
void http_respond_error(http_req *req, int status, const char *code, const char *message,
			const struct err *e);

#endif
