#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/json.h"
#include "../core/log.h"
#include "../core/timeutil.h"
#include "../http/server.h"
#include "api.h"

static int status_of(int code)
{
	switch (code) {
	case ERR_BAD_REQUEST: return 400;
	case ERR_UNAUTHORIZED: return 401;
	case ERR_FORBIDDEN: return 403;
	case ERR_NOT_FOUND: return 404;
	case ERR_CONFLICT: return 409;
	case ERR_TOO_LARGE: return 413;
	case ERR_UNSUPPORTED: return 415;
	case ERR_INVALID: return 422;
	case ERR_UNAVAILABLE: return 503;
	case ERR_RATE_LIMITED: return 429;
	default: return 500;
	}
}

void api_fail(http_req *req, const struct err *e)
{
	int status = status_of(e->code);
	/* Internal details stay in the log, not in the response. */
	const char *msg = e->msg[0] ? e->msg : "error";
	if (status == 500) {
		log_error("request %s failed: %s", http_request_id(req), msg);
		msg = "internal error";
	} else if (status == 401) {
		http_set_header(req, "WWW-Authenticate", "Bearer");
	} else if (status == 503) {
		log_warn("request %s: unavailable: %s", http_request_id(req), msg);
		http_set_header(req, "Retry-After", "1");
	}
	http_respond_error(req, status, err_code_name(e->code == ERR_IO ? ERR_INTERNAL : e->code), msg, e);
}

void api_json(http_req *req, int status, json_t *v)
{
	char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
	json_decref(v);
	if (!s) {
		http_respond_error(req, 500, "internal", "out of memory", NULL);
		return;
	}
	http_respond_owned(req, status, "application/json", s, strlen(s));
}

int api_read_object(http_req *req, json_t **out)
{
	const char *ct = http_header(req, "Content-Type");
	if (!ct || strncasecmp(ct, "application/json", 16) != 0 || (ct[16] && ct[16] != ';' && ct[16] != ' ')) {
		http_respond_error(req, 415, "unsupported_media_type", "Content-Type must be application/json", NULL);
		return -1;
	}
	size_t n;
	const char *body = http_body(req, &n);
	struct err e = { 0 };
	if (json_parse_object(body, n, out, &e)) {
		api_fail(req, &e);
		return -1;
	}
	return 0;
}

int api_principal(http_req *req, struct app *app, struct principal *p)
{
	const struct principal *known = http_auth(req);
	if (known) { /* the route's authorizer read the credentials already */
		*p = *known;
		return 0;
	}
	struct err e = { 0 };
	struct credentials cr = {
		.api_key = http_header(req, "X-API-Key"),
		.authorization = http_header(req, "Authorization"),
		/* a cookie rides along with any request the browser makes: only
		 * from a page this server trusts (CSRF) */
		.cookie = http_origin_trusted(req) ? http_header(req, "Cookie") : NULL,
		/* only a trusted proxy may say who the user is */
		.user_header = http_peer_trusted(req) ? http_header(req, "X-User-ID") : NULL,
	};
	if (users_authenticate(app->users, http_arena(req), &cr, p, &e) == 0)
		return 0;
	api_fail(req, &e);
	return -1;
}

/* ---- authorizers: run on the headers, before the body is read ---- */

/* Authenticates once and keeps the principal for the handler. */
static struct principal *authorize(http_req *req, struct app *app)
{
	struct principal *p = arena_alloc(http_arena(req), sizeof(*p));
	if (!p) {
		struct err e = { 0 };
		err_set(&e, ERR_INTERNAL, "out of memory");
		api_fail(req, &e);
		return NULL;
	}
	if (api_principal(req, app, p))
		return NULL;
	http_set_auth(req, p);
	return p;
}

int api_authorize_user(http_req *req, void *app)
{
	struct principal *p = authorize(req, app);
	struct err e = { 0 };
	if (!p)
		return -1;
	if (users_require_user(p, &e) == 0)
		return 0;
	api_fail(req, &e);
	return -1;
}

int api_authorize_book_write(http_req *req, void *app)
{
	struct principal *p = authorize(req, app);
	struct err e = { 0 };
	if (!p)
		return -1;
	if (users_can_write_book(p, http_param(req, 0), &e) == 0)
		return 0;
	api_fail(req, &e);
	return -1;
}

int api_authorize_upload(http_req *req, void *app)
{
	struct principal *p = authorize(req, app);
	struct err e = { 0 };
	if (!p)
		return -1;
	/* The book may be named in the form, after the file: here only what the
	 * headers tell is checked (a named book, or the right to write books at
	 * all); the handler checks the book once the form is in. */
	const char *book_id = http_query(req, "book_id");
	if (!book_id && p->nbooks)
		book_id = p->books[0];
	if (users_can_write_book(p, book_id, &e) == 0)
		return 0;
	api_fail(req, &e);
	return -1;
}

int api_require_book_write(http_req *req, struct app *app, const char *book_id, struct principal *out)
{
	struct principal local, *p = out ? out : &local;
	if (api_principal(req, app, p))
		return -1;
	struct err e = { 0 };
	if (users_can_write_book(p, book_id, &e) == 0)
		return 0;
	api_fail(req, &e);
	return -1;
}

int api_user_of(http_req *req, struct app *app, const struct principal *p, struct user *u)
{
	struct err e = { 0 };
	if (users_get(app->users, http_arena(req), p, u, &e) == 0)
		return 0;
	api_fail(req, &e);
	return -1;
}

int api_user(http_req *req, struct app *app, struct principal *p, struct user *u)
{
	return api_principal(req, app, p) ? -1 : api_user_of(req, app, p, u);
}

void api_rate_limited(http_req *req, const struct err *e, int retry_after)
{
	char ra[16];
	snprintf(ra, sizeof(ra), "%d", retry_after);
	http_set_header(req, "Retry-After", ra);
	api_fail(req, e);
}

int api_page_params(http_req *req, int *limit, const char **cursor)
{
	const char *l = http_query(req, "limit");
	*limit = 20;
	*cursor = http_query(req, "cursor");
	if (*cursor && !**cursor)
		*cursor = NULL;
	if (l) {
		char *end;
		long v = strtol(l, &end, 10);
		if (!*l || *end || v < 1 || v > 100) {
			struct err e = { 0 };
			err_field(&e, "limit", "must be an integer from 1 to 100");
			api_fail(req, &e);
			return -1;
		}
		*limit = (int)v;
	}
	return 0;
}

json_t *api_time(int64_t ms)
{
	char ts[32];
	time_format_rfc3339(ms, ts);
	return json_string(ts);
}
