#include "router.h"

#include <stdio.h>
#include <string.h>

static const struct {
	int m;
	const char *name;
} methods[] = {
	{ HTTP_GET, "GET" },	   { HTTP_HEAD, "HEAD" },     { HTTP_POST, "POST" },
	{ HTTP_PUT, "PUT" },	   { HTTP_PATCH, "PATCH" },   { HTTP_DELETE, "DELETE" },
	{ HTTP_OPTIONS, "OPTIONS" },
};

int http_method_parse(const char *s)
{
	for (size_t i = 0; i < ARRAY_LEN(methods); i++)
		if (strcmp(s, methods[i].name) == 0)
			return methods[i].m;
	return 0;
}

void router_allow_header(int mask, char *out, size_t cap)
{
	size_t at = 0;
	out[0] = '\0';
	for (size_t i = 0; i < ARRAY_LEN(methods); i++) {
		if (!(mask & methods[i].m))
			continue;
		int n = snprintf(out + at, cap - at, "%s%s", at ? ", " : "", methods[i].name);
		if (n < 0 || (size_t)n >= cap - at) {
			out[at] = '\0'; /* never a cut-off method name */
			return;
		}
		at += (size_t)n;
	}
}

/* Matches one pattern against a path; fills params. */
static int match_pattern(const char *pat, const char *path, size_t plen, struct route_match *m)
{
	const char *p = path, *end = path + plen;
	int np = 0;
	while (*pat) {
		if (p >= end || *p != '/' || *pat != '/')
			return 0;
		pat++;
		p++;
		const char *seg_end = memchr(p, '/', (size_t)(end - p));
		if (!seg_end)
			seg_end = end;
		const char *pat_end = strchr(pat, '/');
		if (!pat_end)
			pat_end = pat + strlen(pat);
		if (*pat == '{') {
			if (seg_end == p || np >= ROUTER_MAX_PARAMS)
				return 0; /* empty segment */
			m->params[np].p = p;
			m->params[np].n = (size_t)(seg_end - p);
			np++;
		} else if ((size_t)(pat_end - pat) != (size_t)(seg_end - p) ||
			   memcmp(pat, p, (size_t)(seg_end - p)) != 0) {
			return 0;
		}
		pat = pat_end;
		p = seg_end;
	}
	/* A single trailing slash is tolerated. */
	if (p < end && !(p + 1 == end && *p == '/'))
		return 0;
	m->nparams = np;
	return 1;
}

int router_match(const struct route *routes, size_t n, int method, const char *path, size_t path_len,
		 struct route_match *m)
{
	int want = method == HTTP_HEAD ? (HTTP_HEAD | HTTP_GET) : method;
	m->route = NULL;
	m->allowed = 0;
	for (size_t i = 0; i < n; i++) {
		struct route_match tmp;
		if (!match_pattern(routes[i].pattern, path, path_len, &tmp))
			continue;
		m->allowed |= routes[i].methods;
		if (!m->route && (routes[i].methods & want)) {
			tmp.route = &routes[i];
			tmp.allowed = 0;
			int allowed = m->allowed;
			*m = tmp;
			m->allowed = allowed;
		}
	}
	if (m->allowed & HTTP_GET)
		m->allowed |= HTTP_HEAD;
	if (m->allowed)
		m->allowed |= HTTP_OPTIONS;
	return m->route != NULL;
}
