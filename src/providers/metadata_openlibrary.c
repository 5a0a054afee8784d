/*
 * Open Library: GET {base}/isbn/{isbn}.json (the edition; the real server
 * redirects to /books/OL…M.json), then the edition's work {base}{work}.json
 * for what an edition seldom carries (description, subjects), then each
 * author {base}{author}.json for the name. Only the edition decides whether
 * the ISBN is known; the work and the authors are best-effort (a failure
 * there leaves those fields unknown, it does not lose the edition).
 *
 * Shapes: an edition names authors as [{key}], a work as [{author: {key},
 * type}]; a description is a string or {type: "/type/text", value}.
 */
#include <stdio.h>
#include <string.h>

#include "../core/mem.h"
#include "../core/timeutil.h"
#include "metadata_int.h"

#define COVER_URL "https://covers.openlibrary.org/b/id/%lld-L.jpg"
#define KEY_MAX 128

struct openlibrary {
	char *base;
	long attempt_ms;
	struct phttp *http;
};

static void ol_close(void *self)
{
	struct openlibrary *o = self;
	if (!o)
		return;
	phttp_free(o->http);
	xfree(o->base);
	xfree(o);
}

static char *base_url(const char *url)
{
	size_t n = strlen(url);
	while (n && url[n - 1] == '/')
		n--;
	char *s = xmalloc(n + 1);
	if (s) {
		memcpy(s, url, n);
		s[n] = '\0';
	}
	return s;
}

static int ol_open(void **self, const struct metadata_config *cfg, struct stop *stop, struct err *e)
{
	*self = NULL;
	struct openlibrary *o = xcalloc(1, sizeof(*o));
	if (!o || !(o->base = base_url(cfg->openlibrary_url ? cfg->openlibrary_url : "https://openlibrary.org"))) {
		ol_close(o);
		return err_set(e, ERR_INTERNAL, "out of memory");
	}
	o->attempt_ms = (long)(cfg->timeout_s > 0 ? cfg->timeout_s : 30) * 1000;
	int rc = metadata_http_new(&o->http, "Open Library", cfg, stop, e);
	if (rc) {
		ol_close(o);
		return rc;
	}
	*self = o;
	return 0;
}

/* A key ("/works/OL45804W") safe to put in a URL path: "/", letters, digits. */
static const char *ol_key(struct arena *a, json_t *v, const char *prefix)
{
	if (!json_is_string(v))
		return NULL;
	const char *s = json_string_value(v);
	size_t n = strlen(s), pl = strlen(prefix);
	if (n <= pl || n > KEY_MAX || strncmp(s, prefix, pl) != 0)
		return NULL;
	for (size_t i = pl; i < n; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
			return NULL;
	}
	return arena_strdup(a, s);
}

static const char *ol_description(struct arena *a, json_t *v)
{
	if (json_is_object(v))
		v = json_object_get(v, "value");
	return metadata_str(a, v, METADATA_DESCRIPTION_MAX);
}

static const char *ol_cover(struct arena *a, json_t *covers)
{
	size_t i;
	json_t *c;
	json_array_foreach(covers, i, c) {
		if (json_is_integer(c) && json_integer_value(c) > 0) /* -1 marks a removed cover */
			return arena_printf(a, COVER_URL, (long long)json_integer_value(c));
	}
	return NULL;
}

static void ol_subjects(struct arena *a, json_t *subjects, struct book_metadata *out)
{
	size_t i;
	json_t *s;
	json_array_foreach(subjects, i, s) {
		metadata_add(out->subjects, &out->nsubjects, METADATA_MAX_SUBJECTS,
			     metadata_str(a, s, METADATA_TEXT_MAX));
	}
}

static const char *first_str(struct arena *a, json_t *arr, size_t max)
{
	size_t i;
	json_t *s;
	json_array_foreach(arr, i, s) {
		const char *v = metadata_str(a, s, max);
		if (v)
			return v;
	}
	return NULL;
}

int metadata_ol_edition(struct arena *a, json_t *doc, struct book_metadata *out, const char **work_key,
			const char **author_keys, int *nauthor_keys, struct err *e)
{
	*work_key = NULL;
	*nauthor_keys = 0;
	out->title = metadata_str(a, json_object_get(doc, "title"), METADATA_TEXT_MAX);
	if (!out->title)
		return err_set(e, ERR_UNAVAILABLE, "Open Library sent an edition without a title");
	out->subtitle = metadata_str(a, json_object_get(doc, "subtitle"), METADATA_TEXT_MAX);
	out->publisher = first_str(a, json_object_get(doc, "publishers"), METADATA_TEXT_MAX);
	out->publish_date = metadata_date(a, metadata_str(a, json_object_get(doc, "publish_date"), 64));
	out->edition = metadata_str(a, json_object_get(doc, "edition_name"), METADATA_TEXT_MAX);
	json_t *pages = json_object_get(doc, "number_of_pages");
	if (json_is_integer(pages) && json_integer_value(pages) > 0 && json_integer_value(pages) <= 1000000)
		out->pages = (int)json_integer_value(pages);
	out->cover_url = ol_cover(a, json_object_get(doc, "covers"));
	out->description = ol_description(a, json_object_get(doc, "description"));
	ol_subjects(a, json_object_get(doc, "subjects"), out);
	out->isbn10 = first_str(a, json_object_get(doc, "isbn_10"), 16);
	out->isbn13 = first_str(a, json_object_get(doc, "isbn_13"), 20);

	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(doc, "languages"), i, v) {
		const char *key = ol_key(a, json_object_get(v, "key"), "/languages/");
		if (key && (out->language = metadata_language(a, key + strlen("/languages/"))) != NULL)
			break;
	}
	json_array_foreach(json_object_get(doc, "works"), i, v) {
		if ((*work_key = ol_key(a, json_object_get(v, "key"), "/works/")) != NULL)
			break;
	}
	json_array_foreach(json_object_get(doc, "authors"), i, v) {
		metadata_add(author_keys, nauthor_keys, METADATA_MAX_AUTHORS,
			     ol_key(a, json_object_get(v, "key"), "/authors/"));
	}
	return 0;
}

void metadata_ol_work(struct arena *a, json_t *doc, struct book_metadata *out, const char **author_keys,
		      int *nauthor_keys)
{
	if (!out->description)
		out->description = ol_description(a, json_object_get(doc, "description"));
	if (!out->cover_url)
		out->cover_url = ol_cover(a, json_object_get(doc, "covers"));
	ol_subjects(a, json_object_get(doc, "subjects"), out);
	if (*nauthor_keys)
		return;
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(doc, "authors"), i, v) {
		json_t *author = json_object_get(v, "author");
		/* [{author: {key}}]; a bare {key} is accepted too */
		json_t *key = json_is_object(author) ? json_object_get(author, "key") : json_object_get(v, "key");
		metadata_add(author_keys, nauthor_keys, METADATA_MAX_AUTHORS, ol_key(a, key, "/authors/"));
	}
}

const char *metadata_ol_author(struct arena *a, json_t *doc)
{
	const char *name = metadata_str(a, json_object_get(doc, "name"), METADATA_TEXT_MAX);
	return name ? name : metadata_str(a, json_object_get(doc, "personal_name"), METADATA_TEXT_MAX);
}

static int ol_lookup(void *self, struct arena *a, const char *isbn13, int64_t deadline_ms,
		     struct book_metadata *out, struct err *e)
{
	struct openlibrary *o = self;
	char url[METADATA_URL_MAX];
	const char *work_key = NULL, *author_keys[METADATA_MAX_AUTHORS];
	int nauthor_keys = 0;
	json_t *doc;
	snprintf(url, sizeof(url), "%s/isbn/%s.json", o->base, isbn13);
	int rc = metadata_get_json(o->http, url, deadline_ms, o->attempt_ms, "Open Library", &doc, e);
	if (rc)
		return rc;
	rc = metadata_ol_edition(a, doc, out, &work_key, author_keys, &nauthor_keys, e);
	json_decref(doc);
	if (rc)
		return rc;
	out->work_key = work_key;
	/* The rest is best-effort, within what is left of the deadline. */
	struct err ignored = { 0 };
	if (work_key) {
		snprintf(url, sizeof(url), "%s%s.json", o->base, work_key);
		if (metadata_get_json(o->http, url, deadline_ms, o->attempt_ms, "Open Library (work)", &doc,
				      &ignored) == 0) {
			metadata_ol_work(a, doc, out, author_keys, &nauthor_keys);
			json_decref(doc);
		}
	}
	for (int i = 0; i < nauthor_keys; i++) {
		err_clear(&ignored);
		snprintf(url, sizeof(url), "%s%s.json", o->base, author_keys[i]);
		if (metadata_get_json(o->http, url, deadline_ms, o->attempt_ms, "Open Library (author)", &doc,
				      &ignored) == 0) {
			metadata_add(out->authors, &out->nauthors, METADATA_MAX_AUTHORS, metadata_ol_author(a, doc));
			json_decref(doc);
		}
	}
	return 0;
}

const struct metadata_ops metadata_openlibrary_ops = {
	.name = "openlibrary",
	.open = ol_open,
	.close = ol_close,
	.lookup = ol_lookup,
};
