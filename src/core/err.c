#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int err_set(struct err *e, int code, const char *fmt, ...)
{
	if (e) {
		va_list ap;
		e->code = code;
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
		va_end(ap);
	}
	return code;
}

void err_field(struct err *e, const char *field, const char *fmt, ...)
{
	if (!e)
		return;
	if (e->code == ERR_OK) {
		e->code = ERR_INVALID;
		snprintf(e->msg, sizeof(e->msg), "validation failed");
	}
	if (e->ndetails >= ERR_MAX_DETAILS)
		return;
	struct err_detail *d = &e->details[e->ndetails++];
	va_list ap;
	snprintf(d->field, sizeof(d->field), "%s", field);
	va_start(ap, fmt);
	vsnprintf(d->message, sizeof(d->message), fmt, ap);
	va_end(ap);
}

void err_bad_field(struct err *e, const char *field, const char *problem)
{
	if (!e)
		return;
	if (e->code == ERR_OK || e->code == ERR_INVALID) {
		e->code = ERR_BAD_REQUEST;
		snprintf(e->msg, sizeof(e->msg), "%s %s", field, problem);
	}
	if (e->ndetails >= ERR_MAX_DETAILS)
		return;
	struct err_detail *d = &e->details[e->ndetails++];
	snprintf(d->field, sizeof(d->field), "%s", field);
	snprintf(d->message, sizeof(d->message), "%s", problem);
}

void err_clear(struct err *e)
{
	e->code = ERR_OK;
	e->msg[0] = '\0';
	e->ndetails = 0;
}

const char *err_code_name(int code)
{
	switch (code) {
	case ERR_OK: return "ok";
	case ERR_BAD_REQUEST: return "bad_request";
	case ERR_UNAUTHORIZED: return "unauthorized";
	case ERR_FORBIDDEN: return "forbidden";
	case ERR_NOT_FOUND: return "not_found";
	case ERR_CONFLICT: return "conflict";
	case ERR_TOO_LARGE: return "payload_too_large";
	case ERR_UNSUPPORTED: return "unsupported_media_type";
	case ERR_INVALID: return "validation_failed";
	case ERR_UNAVAILABLE: return "unavailable";
	case ERR_IO: return "io_error";
	case ERR_RATE_LIMITED: return "rate_limited";
	default: return "internal";
	}
}
