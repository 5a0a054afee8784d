/*
 * CORS, as browsers check it (the Fetch standard).
 *
 * BOOKD_CORS_ORIGINS lists origins ("https://book.example.org"; a trailing
 * slash and case in the scheme and host do not matter) or is "*". A request
 * whose Origin is listed gets, on every answer (errors and early rejections
 * included), Access-Control-Allow-Origin with that origin and
 * Access-Control-Allow-Credentials: true, so pages that send cookies or
 * Authorization with `credentials: "include"` can read the answer. With "*",
 * any origin is echoed but without Allow-Credentials: the standard forbids
 * `*` with credentials, and echoing every origin with credentials would let
 * any site act with a visitor's cookies. A site that needs credentials is
 * listed by name. When CORS is configured at all, every answer carries
 * `Vary: Origin`, since each depends on it.
 *
 * A preflight (OPTIONS with Access-Control-Request-Method from an allowed
 * origin) is answered here for any path, whatever the routes: 204 with the
 * methods, the request headers allowed (explicitly: `*` means nothing to a
 * credentialed request), Max-Age, and Allow-Private-Network when Chrome asks
 * for it (a public page calling a bookd on a private address).
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "../core/mem.h"
#include "server_int.h"

#define ALLOW_METHODS "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
#define ALLOW_HEADERS                                                                                     \
	"Authorization, Content-Type, Accept, Accept-Language, Cache-Control, X-API-Key, X-User-ID, "     \
	"X-Anonymous-Session-ID, X-Requested-With, X-Request-ID, Idempotency-Key, If-None-Match, "        \
	"If-Modified-Since, Last-Event-ID, Range"
#define EXPOSE_HEADERS "X-Request-ID, ETag, Location, Retry-After, Content-Disposition"

void srv_cors_request(http_req *r)
{
	struct http_server *s = r->srv;
	const char *origin = http_header(r, "Origin");
	r->origin = NULL;
	r->cors_credentials = 0;
	if (!origin)
		return;
	for (int i = 0; i < s->ncors; i++)
		if (strcmp(s->cors[i], origin) == 0) {
			r->origin = s->cors[i];
			r->cors_credentials = 1;
			return;
		}
	if (s->cors_any)
		r->origin = origin;
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
		for (size_t i = 0; i < n; i++) /* browsers send scheme and host in lower case */
			t[i] = (char)tolower((unsigned char)t[i]);
		if (strcmp(t, "*") == 0)
			s->cors_any = 1;
		else if (n && s->ncors < MAX_CORS_ORIGINS)
			s->cors[s->ncors++] = t;
	}
}

int srv_cors_preflight(http_req *r)
{
	if (!r->origin || !http_header(r, "Access-Control-Request-Method"))
		return 0;
	http_respond_empty(r, 204);
	http_set_header(r, "Access-Control-Allow-Methods", ALLOW_METHODS);
	http_set_header(r, "Access-Control-Allow-Headers", ALLOW_HEADERS);
	http_set_header(r, "Access-Control-Max-Age", "600");
	const char *pna = http_header(r, "Access-Control-Request-Private-Network");
	if (pna && strcasecmp(pna, "true") == 0)
		http_set_header(r, "Access-Control-Allow-Private-Network", "true");
	return 1;
}

void srv_cors_headers(http_req *r)
{
	if (r->origin) {
		MHD_add_response_header(r->resp, "Access-Control-Allow-Origin", r->origin);
		if (r->cors_credentials)
			MHD_add_response_header(r->resp, "Access-Control-Allow-Credentials", "true");
		MHD_add_response_header(r->resp, "Access-Control-Expose-Headers", EXPOSE_HEADERS);
	}
	if (r->srv->ncors || r->srv->cors_any)
		MHD_add_response_header(r->resp, "Vary", "Origin");
}

/* "https://host:port" names `host` ("host:port"), case aside. */
static int origin_names(const char *origin, const char *host)
{
	const char *p = strstr(origin, "://");
	return p && host && *host && strcasecmp(p + 3, host) == 0;
}

int http_origin_trusted(http_req *r)
{
	const char *origin = http_header(r, "Origin");
	if (!origin || r->cors_credentials)
		return 1;
	if (origin_names(origin, http_header(r, "Host")))
		return 1;
	/* behind a proxy that rewrites Host */
	return http_peer_trusted(r) && origin_names(origin, http_header(r, "X-Forwarded-Host"));
}
