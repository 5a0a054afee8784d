#include "preferences.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/arena.h"
#include "../core/timeutil.h"
#include "../store/changes.h"
#include "../store/store_users.h"
#include "books.h"

enum pref_type { PT_TEXT, PT_ENUM, PT_LANG, PT_BOOL, PT_LIST };

struct pref_field {
	const char *name;
	enum pref_type type;
	size_t max;	       /* characters, or list length */
	size_t item_max;     /* list items: characters */
	const char *const *values; /* PT_ENUM */
};

static const char *const levels[] = { "beginner", "intermediate", "advanced", NULL };
static const char *const complexity[] = { "simple", "standard", "advanced", NULL };
static const char *const depth[] = { "brief", "standard", "detailed", NULL };
static const char *const examples[] = { "conceptual", "practical", "code", "mixed", NULL };

static const struct pref_field fields[] = {
	{ "software_background", PT_TEXT, 2000, 0, NULL },
	{ "hardware_background", PT_TEXT, 2000, 0, NULL },
	{ "experience_level", PT_ENUM, 0, 0, levels },
	{ "preferred_language", PT_LANG, 35, 0, NULL },
	{ "learning_goals", PT_TEXT, 2000, 0, NULL },
	{ "programming_languages", PT_LIST, 20, 50, NULL },
	{ "preferred_topics", PT_LIST, 20, 100, NULL },
	{ "gpu_access", PT_BOOL, 0, 0, NULL },
	{ "robotics_kit_experience", PT_TEXT, 500, 0, NULL },
	{ "content_complexity", PT_ENUM, 0, 0, complexity },
	{ "explanation_depth", PT_ENUM, 0, 0, depth },
	{ "example_style", PT_ENUM, 0, 0, examples },
	{ "personalization_enabled", PT_BOOL, 0, 0, NULL },
};

static size_t chars(const char *s, size_t n)
{
	size_t c = 0;
	for (size_t i = 0; i < n; i++)
		c += ((unsigned char)s[i] & 0xc0) != 0x80;
	return c;
}

static void check_field(const struct pref_field *f, json_t *v, struct err *e)
{
	if (json_is_null(v))
		return;
	switch (f->type) {
	case PT_TEXT:
		if (!json_is_string(v))
			err_field(e, f->name, "must be a string");
		else if (chars(json_string_value(v), json_string_length(v)) > f->max)
			err_field(e, f->name, "must be at most %zu characters", f->max);
		break;
	case PT_LANG:
		if (!json_is_string(v) || !books_language_valid(json_string_value(v)))
			err_field(e, f->name, "must be a BCP 47 language tag such as en or ur");
		break;
	case PT_BOOL:
		if (!json_is_boolean(v))
			err_field(e, f->name, "must be true or false");
		break;
	case PT_ENUM: {
		int ok = 0;
		for (int i = 0; json_is_string(v) && f->values[i]; i++)
			ok |= strcmp(json_string_value(v), f->values[i]) == 0;
		if (!ok) {
			char list[128] = "";
			for (int i = 0; f->values[i]; i++)
				snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
					 f->values[i]);
			err_field(e, f->name, "must be one of %s", list);
		}
		break;
	}
	case PT_LIST: {
		if (!json_is_array(v) || json_array_size(v) > f->max) {
			err_field(e, f->name, "must be a list of at most %zu strings", f->max);
			break;
		}
		size_t i;
		json_t *it;
		json_array_foreach(v, i, it) {
			if (!json_is_string(it) || json_string_length(it) == 0 ||
			    chars(json_string_value(it), json_string_length(it)) > f->item_max) {
				err_field(e, f->name, "items must be non-empty strings of at most %zu characters",
					  f->item_max);
				break;
			}
		}
		break;
	}
	}
}

/* The full document: every field, null when unset. */
static json_t *complete(json_t *stored)
{
	json_t *o = json_object();
	for (size_t i = 0; i < ARRAY_LEN(fields); i++) {
		json_t *v = stored ? json_object_get(stored, fields[i].name) : NULL;
		json_object_set(o, fields[i].name, v ? v : json_null());
	}
	return o;
}

static int load(db_conn *c, const char *user_id, json_t **doc, int64_t *updated_at, struct err *e)
{
	struct arena a;
	arena_init(&a, 1024);
	char *data;
	int rc = store_prefs_get(c, &a, user_id, &data, updated_at, e);
	*doc = rc == 0 && data ? json_loads(data, 0, NULL) : NULL;
	arena_free(&a);
	return rc;
}

/* Cached as "<updated_at> <document or null>" under the user's change stamp. */
static int cached(db *d, const char *key, uint64_t stamp, json_t **doc, int64_t *updated_at)
{
	struct rcbuf *b = changes_get(db_changes(d), key, stamp);
	if (!b)
		return 0;
	char *rest;
	*updated_at = strtoll(b->data, &rest, 10);
	*doc = *rest == ' ' ? json_loads(rest + 1, JSON_DECODE_ANY, NULL) : NULL;
	rcbuf_unref(b);
	if (*doc && json_is_null(*doc)) {
		json_decref(*doc);
		*doc = NULL;
		return 1;
	}
	return *doc != NULL;
}

static void cache(db *d, const char *key, uint64_t stamp, json_t *doc, int64_t updated_at)
{
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	char *s = NULL;
	if ((!doc || text) && asprintf(&s, "%lld %s", (long long)updated_at, text ? text : "null") >= 0)
		changes_put(db_changes(d), key, stamp, s);
	free(s);
	free(text);
}

int prefs_get(db *d, const char *user_id, json_t **out, int64_t *updated_at, struct err *e)
{
	char key[UUID_STR_LEN + 8];
	snprintf(key, sizeof(key), "prefs/%s", user_id);
	uint64_t stamp = changes_stamp2(db_changes(d), "user:", user_id);
	json_t *doc;
	if (!cached(d, key, stamp, &doc, updated_at)) {
		db_conn *c;
		int rc = db_acquire(d, &c, e);
		if (rc)
			return rc;
		rc = load(c, user_id, &doc, updated_at, e);
		db_release(c);
		if (rc)
			return rc;
		cache(d, key, stamp, doc, *updated_at);
	}
	*out = complete(doc);
	json_decref(doc);
	return 0;
}

int prefs_write(db *d, const char *user_id, json_t *in, int merge, json_t **out, int64_t *updated_at,
		struct err *e)
{
	for (size_t i = 0; i < ARRAY_LEN(fields); i++) {
		json_t *v = json_object_get(in, fields[i].name);
		if (v)
			check_field(&fields[i], v, e);
	}
	if (e->code)
		return e->code;
	db_conn *c;
	int rc = db_acquire(d, &c, e);
	if (rc)
		return rc;
	json_t *doc = NULL;
	if ((rc = db_begin(c, e)) != 0)
		goto out;
	if (merge && (rc = load(c, user_id, &doc, updated_at, e)) != 0)
		goto fail;
	if (!doc)
		doc = json_object();
	for (size_t i = 0; i < ARRAY_LEN(fields); i++) {
		json_t *v = json_object_get(in, fields[i].name);
		if (v && !json_is_null(v))
			json_object_set(doc, fields[i].name, v);
		else if (v || !merge)
			json_object_del(doc, fields[i].name);
	}
	char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	int64_t now = time_now_ms();
	rc = text ? store_prefs_put(c, user_id, text, now, e) : err_set(e, ERR_INTERNAL, "out of memory");
	free(text);
	if (rc == 0 && (rc = db_commit(c, e)) == 0) {
		changes_touch2(db_changes(d), "user:", user_id);
		*out = complete(doc);
		*updated_at = now;
		goto out;
	}
fail:
	db_rollback(c);
out:
	json_decref(doc);
	db_release(c);
	return rc;
}
