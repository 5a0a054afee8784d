/*
 * Routes: a method and a path pattern whose "{name}" segments capture one path
 * segment each. Matching is a linear scan over a small static table, segment
 * by segment, with no allocation; the first match wins. When the path matches
 * but the method does not, the caller gets the allowed methods for `Allow`.
 */
#ifndef BOOKD_ROUTER_H
#define BOOKD_ROUTER_H

#include "../core/common.h"
#include "http.h"

#define ROUTER_MAX_PARAMS 8

enum route_flags {
	ROUTE_UPLOAD = 1, /* the body is streamed to a file (http_upload), capped by max_upload */
};

struct route {
	int methods; /* HTTP_* mask */
	const char *pattern;
	http_handler fn;
	int flags; /* ROUTE_* */
	http_authorizer authorize; /* NULL, or run on the headers before the body is read */
};

struct route_match {
	const struct route *route;
	int nparams;
	struct str params[ROUTER_MAX_PARAMS];
	int allowed; /* methods of every route whose pattern matched */
};

/* 1 when a route matched path and method; 0 otherwise (m->allowed tells 404
 * (0) from 405). HEAD matches GET routes. */
int router_match(const struct route *routes, size_t n, int method, const char *path, size_t path_len,
		 struct route_match *m);
/* "GET, HEAD, POST" for an Allow header, into out. */
void router_allow_header(int methods, char *out, size_t cap);
/* Parses "GET" etc.; 0 when unknown. */
int http_method_parse(const char *s);

#endif
