/*
 * A built static site (a Docusaurus `build/` folder) served beside the API on
 * the same origin: the server's fallback for a GET or HEAD whose path no
 * route knows. site.c opens with the rules (paths, fallbacks, caching,
 * confinement to the directory).
 */
#ifndef BOOKD_SITE_H
#define BOOKD_SITE_H

#include "../core/err.h"
#include "http.h"

typedef struct site site;

/* Opens `dir` (it must be a directory) to serve under `base_url` ("/", or a
 * prefix such as "/my-book/"; a missing trailing slash is added). */
int site_open(site **out, const char *dir, const char *base_url, struct err *e) WUR;
/* NULL is fine. */
void site_close(site *s);

/* Answers a GET or HEAD from the site and returns 0; returns -1, having
 * answered nothing, when the path lies outside the site's prefix or names no
 * file and the site has no 404.html (the caller answers its own 404).
 * `ctx` is the site. */
int site_serve(http_req *req, void *ctx);

/* Range: one "bytes=" range of a `size`-byte file. Returns 1 and the range
 * (inclusive), 0 to send the whole file (absent, malformed or several
 * ranges), -1 when it cannot be satisfied (416). Also used for audio. */
int site_parse_range(const char *h, uint64_t size, uint64_t *first, uint64_t *last);

#endif
