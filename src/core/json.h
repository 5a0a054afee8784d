/*
 * jansson helpers for validating request objects field by field. Each getter
 * returns 1 when the field is present and valid, 0 when it is absent (or null
 * where null is allowed), and -1 when it is invalid, after adding a detail
 * naming the field to `e`. Validation continues so that one 422 lists every
 * bad field. String lengths are counted in characters (code points).
 */
#ifndef BOOKD_JSON_H
#define BOOKD_JSON_H

#include <jansson.h>

#include "err.h"

enum { J_OPTIONAL = 0, J_REQUIRED = 1 };

int jget_str(json_t *o, const char *key, int required, size_t minlen, size_t maxlen,
	     const char **out, struct err *e);
int jget_int(json_t *o, const char *key, int required, long long min, long long max,
	     long long *out, struct err *e);
int jget_bool(json_t *o, const char *key, int required, int *out, struct err *e);
/* A present key whose value is JSON null: the way PATCH clears a field. */
int jis_null(json_t *o, const char *key);

/* json_string(s) or json_null() when s is NULL; never NULL unless out of memory. */
json_t *jstr_or_null(const char *s);

/* Parses a request body: 400 for malformed JSON or invalid UTF-8 (message with
 * position), 422 when the value is not an object. */
int json_parse_object(const char *body, size_t len, json_t **out, struct err *e) WUR;

#endif
