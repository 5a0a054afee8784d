/*
 * CORS.
 */
#include <string.h>

#include "../core/mem.h"
#include "server_int.h"

const char *srv_cors_allowed(struct http_server *s, const char *origin)
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

void srv_cors_parse(struct http_server *s, const char *list)
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

void srv_cors_preflight(http_req *r)
{
	http_respond_empty(r, 204);
	MHD_add_response_header(r->resp, "Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
	MHD_add_response_header(r->resp, "Access-Control-Allow-Headers",
				"Authorization, Content-Type, X-API-Key, X-Request-ID, Idempotency-Key, "
				"If-None-Match, Accept, Last-Event-ID");
	MHD_add_response_header(r->resp, "Access-Control-Max-Age", "600");
}

void srv_cors_headers(http_req *r)
{
	if (r->origin) {
		MHD_add_response_header(r->resp, "Access-Control-Allow-Origin", r->origin);
		MHD_add_response_header(r->resp, "Access-Control-Expose-Headers",
					"X-Request-ID, ETag, Location, Retry-After");
	}
	if (r->srv->ncors || r->srv->cors_any)
		MHD_add_response_header(r->resp, "Vary", "Origin");
}
