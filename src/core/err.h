/*
 * One error convention for every layer: functions return int, 0 on success and a
 * negative ERR_* on failure, and fill a caller-provided struct err with a message
 * (and, for validation failures, the fields at fault). The api layer alone turns
 * an ERR_* into an HTTP status.
 */
#ifndef BOOKD_ERR_H
#define BOOKD_ERR_H

#include "common.h"

enum err_code {
	ERR_OK = 0,
	ERR_BAD_REQUEST = -1, /* malformed input: bad JSON, bad UTF-8 */
	ERR_UNAUTHORIZED = -2,
	ERR_FORBIDDEN = -3,
	ERR_NOT_FOUND = -4,
	ERR_CONFLICT = -5,
	ERR_TOO_LARGE = -6,
	ERR_UNSUPPORTED = -7, /* unsupported media type or format */
	ERR_INVALID = -8,     /* well-formed but fails validation */
	ERR_UNAVAILABLE = -9, /* a dependency (database) is not usable now */
	ERR_INTERNAL = -10,
	ERR_IO = -11, /* file system */
	ERR_RATE_LIMITED = -12,
};

#define ERR_MAX_DETAILS 8

struct err_detail {
	char field[64];
	char message[160];
};

struct err {
	int code;
	char msg[256];
	int ndetails;
	struct err_detail details[ERR_MAX_DETAILS];
};

/* Sets code and message; returns code so callers can `return err_set(...)`. */
int err_set(struct err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Adds a field detail to a validation error (code becomes ERR_INVALID). */
void err_field(struct err *e, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A field that is malformed rather than invalid (not UTF-8): ERR_BAD_REQUEST
 * naming the field in the message and the details. */
void err_bad_field(struct err *e, const char *field, const char *problem);
void err_clear(struct err *e);
/* Stable machine-readable name of a code: "not_found", "validation_failed", ... */
const char *err_code_name(int code);

#endif
