/*
 * Who may write. For now one rule: API writes need the master key
 * (BOOKD_API_KEY) in X-API-Key; with no key configured they are refused and
 * the CLI is the way to write. Keys are compared in constant time.
 */
#ifndef BOOKD_AUTH_H
#define BOOKD_AUTH_H

#include "../core/err.h"

int auth_init(void) WUR;
/* 0 when `given` is the configured master key; ERR_FORBIDDEN when no key is
 * configured; ERR_UNAUTHORIZED when it is missing or wrong. */
int auth_check_master_key(const char *configured, const char *given, struct err *e) WUR;

#endif
