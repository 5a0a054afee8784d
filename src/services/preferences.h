/*
 * A reader's preferences: one JSON document per user, validated against the
 * field table in preferences.c (types, enums, lengths, array sizes). Unknown
 * fields are ignored. PUT replaces the document, PATCH merges into it (null
 * clears a field).
 */
#ifndef BOOKD_PREFERENCES_H
#define BOOKD_PREFERENCES_H

#include <jansson.h>

#include "../store/db.h"

/* Every known field, null where unset, plus updated_at (ms; 0 = never). */
int prefs_get(db *d, const char *user_id, json_t **out, int64_t *updated_at, struct err *e) WUR;
int prefs_write(db *d, const char *user_id, json_t *in, int merge, json_t **out, int64_t *updated_at,
		struct err *e) WUR;

#endif
