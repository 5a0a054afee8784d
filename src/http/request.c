/*
 * What a handler reads of a request (headers, query, body, the client's
 * address behind trusted proxies), the request id, and the checks made once
 * the head is in: framing against request smuggling, head size, UTF-8 in the
 * path, query and text headers, body limits, then the route's authorizer.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../core/log.h"
#include "../core/utf8.h"
#include "server_int.h"

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

/* The last MAX_FORWARD_LINES lines of the one forwarding header: the right
 * end is where the trusted proxies wrote. */
struct forward_lines {
	const char *name;
	const char *v[MAX_FORWARD_LINES];
	int n;
};

static enum MHD_Result collect_forward(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct forward_lines *f = cls;
	(void)kind;
	if (!value || strcasecmp(key, f->name) != 0)
		return MHD_YES;
	if (f->n == MAX_FORWARD_LINES) {
		memmove(f->v, f->v + 1, sizeof(f->v[0]) * (MAX_FORWARD_LINES - 1));
		f->n--;
	}
	f->v[f->n++] = value;
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
		struct forward_lines f = { .name = proxies_header_name(&r->srv->trusted) };
		MHD_get_connection_values(r->conn, MHD_HEADER_KIND, collect_forward, &f);
		proxies_client(&r->srv->trusted, &peer, f.v, f.n, &client);
	}
	ipaddr_format(&client, r->client_ip, sizeof(r->client_ip));
	return r->client_ip;
}

const char *http_client_limit_key(http_req *r)
{
	const char *ip = http_client_ip(r);
	struct ipaddr a;
	char *key;
	if (ipaddr_parse(ip, strlen(ip), &a) || !(key = arena_alloc(&r->arena, 64)))
		return ip;
	ipaddr_format_limit_key(&a, key, 64);
	return key;
}

int http_peer_trusted(http_req *r)
{
	if (!r->srv->trusted.n)
		return 0;
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	struct ipaddr peer;
	return ipaddr_from_sockaddr(ci ? ci->client_addr : NULL, &peer) == 0 && proxies_contains(&r->srv->trusted, &peer);
}

/* ---- request id ------------------------------------------------------------ */

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

void srv_assign_request_id(http_req *r)
{
	const char *given = http_header(r, "X-Request-ID");
	if (given && request_id_sane(given)) {
		snprintf(r->request_id, sizeof(r->request_id), "%s", given);
		return;
	}
	unsigned long n = atomic_fetch_add_explicit(&r->srv->next_id, 1, memory_order_relaxed);
	snprintf(r->request_id, sizeof(r->request_id), "%08x%012lx", r->srv->id_prefix, n & 0xffffffffffffUL);
}


/* What srv_check_headers learns from one pass over the header lines. */
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
		srv_reject(r, 400, "bad_request", why, NULL);
		return -1;
	}
	unsigned long long n;
	if (h.cl && parse_length(h.cl, &n)) {
		srv_reject(r, 400, "bad_request", "Content-Length is not a number of bytes", NULL);
		return -1;
	}
	if (h.bad_utf8) {
		srv_reject_field(r, 400, h.bad_utf8, "is not valid UTF-8");
		return -1;
	}
	return 0;
}

/* Checks made once the headers are in, before any body is read. */
int srv_check_headers(http_req *r, const char *version)
{
	struct http_server *s = r->srv;
	if (r->c && r->c->over) {
		srv_reject(r, 503, "unavailable", "too many connections; try again shortly", NULL);
		http_set_header(r, "Retry-After", "1");
		return -1;
	}
	if (check_framing(r, version))
		return -1;
	const union MHD_ConnectionInfo *hs = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
	if (hs && hs->header_size > MAX_HEAD) {
		char msg[96];
		snprintf(msg, sizeof(msg), "the request head is larger than %d bytes", MAX_HEAD);
		srv_reject(r, 431, "headers_too_large", msg, NULL);
		return -1;
	}
	if (!r->method) {
		srv_reject(r, 405, "method_not_allowed", "method not supported", NULL);
		return -1;
	}
	if (!utf8_valid(r->path, r->path_len)) {
		srv_reject_field(r, 400, "path", "is not valid UTF-8");
		return -1;
	}
	struct query_scan q = { 0 };
	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, scan_query, &q);
	if (q.bad || q.bad_name) {
		srv_reject_field(r, 400, q.bad ? q.bad : "query string", "is not valid UTF-8");
		return -1;
	}
	r->matched = router_match(s->o.routes, s->o.nroutes, r->method, r->path, r->path_len, &r->match);
	if (!r->matched)
		return 0; /* 404, 405, OPTIONS: answered by route() */
	r->nparams = r->match.nparams;
	for (int i = 0; i < r->match.nparams; i++) {
		r->params[i] = arena_strndup(&r->arena, r->match.params[i].p, r->match.params[i].n);
		if (!r->params[i]) {
			srv_reject(r, 500, "internal", "out of memory", NULL);
			return -1;
		}
	}
	size_t cap = (r->match.route->flags & ROUTE_UPLOAD) ? s->o.max_upload : s->o.max_body;
	unsigned long long n;
	const char *cl = http_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl && parse_length(cl, &n) == 0 && n > cap) {
		char msg[96];
		snprintf(msg, sizeof(msg), "request body is larger than %zu bytes", cap);
		srv_reject(r, 413, "payload_too_large", msg, NULL);
		return -1;
	}
	if (r->match.route->authorize && r->match.route->authorize(r, s->o.app)) {
		if (!r->resp)
			srv_reject(r, 500, "internal", "internal error", NULL);
		r->close = 1;
		return -1;
	}
	return 0;
}
