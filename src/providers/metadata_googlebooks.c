/*
 * Google Books: GET {base}/books/v1/volumes?q=isbn:{isbn}[&key=…]. An
 * unknown ISBN is a 200 whose `items` is absent (totalItems 0). The search
 * may return more than the one volume: the one whose industryIdentifiers
 * name the ISBN wins. The key is a secret: it goes in the URL (as Google
 * asks), which the HTTP client never logs.
 */
#include <stdio.h>
#include <string.h>

#include "../core/mem.h"
#include "metadata_int.h"

struct googlebooks {
	char *base, *key;
	long attempt_ms;
	struct phttp *http;
};

static void gb_close(void *self)
{
	struct googlebooks *g = self;
	if (!g)
		return;
	phttp_free(g->http);
	xfree(g->base);
	if (g->key)
		memset(g->key, 0, strlen(g->key));
	xfree(g->key);
	xfree(g);
}

static int key_ok(const char *k)
{
	for (; *k; k++)
		if (!((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z') || (*k >= '0' && *k <= '9') || *k == '-' ||
		      *k == '_'))
			return 0;
	return 1;
}

static int gb_open(void **self, const struct metadata_config *cfg, struct stop *stop, struct err *e)
{
	*self = NULL;
	const char *url = cfg->googlebooks_url ? cfg->googlebooks_url : "https://www.googleapis.com";
	if (cfg->googlebooks_key && *cfg->googlebooks_key && !key_ok(cfg->googlebooks_key))
		return err_set(e, ERR_INVALID, "BOOKD_GOOGLE_BOOKS_KEY: only letters, digits, '-' and '_' are allowed");
	struct googlebooks *g = xcalloc(1, sizeof(*g));
	size_t n = strlen(url);
	while (n && url[n - 1] == '/')
		n--;
	if (!g || !(g->base = xmalloc(n + 1)) ||
	    (cfg->googlebooks_key && *cfg->googlebooks_key && !(g->key = xstrdup(cfg->googlebooks_key)))) {
		gb_close(g);
		return err_set(e, ERR_INTERNAL, "out of memory");
	}
	memcpy(g->base, url, n);
	g->base[n] = '\0';
	g->attempt_ms = (long)(cfg->timeout_s > 0 ? cfg->timeout_s : 30) * 1000;
	int rc = metadata_http_new(&g->http, "Google Books", cfg, stop, e);
	if (rc) {
		gb_close(g);
		return rc;
	}
	*self = g;
	return 0;
}

/* Whether an industryIdentifier is this ISBN (its ISBN-10 shares digits
 * 4-12 of a 978 ISBN-13; the check digits differ). */
static int names_isbn(json_t *ids, const char *isbn13)
{
	size_t i;
	json_t *v;
	json_array_foreach(ids, i, v) {
		const char *type = json_string_value(json_object_get(v, "type"));
		const char *id = json_string_value(json_object_get(v, "identifier"));
		if (!type || !id)
			continue;
		if (strcmp(type, "ISBN_13") == 0 && strcmp(id, isbn13) == 0)
			return 1;
		if (strcmp(type, "ISBN_10") == 0 && strlen(id) == 10 && strncmp(isbn13, "978", 3) == 0 &&
		    strncmp(id, isbn13 + 3, 9) == 0)
			return 1;
	}
	return 0;
}

static const char *identifier(struct arena *a, json_t *ids, const char *type)
{
	size_t i;
	json_t *v;
	json_array_foreach(ids, i, v) {
		const char *t = json_string_value(json_object_get(v, "type"));
		if (t && strcmp(t, type) == 0)
			return metadata_str(a, json_object_get(v, "identifier"), 20);
	}
	return NULL;
}

/* Google hands out http:// thumbnails that browsers then block as mixed
 * content; the same URL is served over https. */
static const char *thumbnail(struct arena *a, json_t *links)
{
	const char *u = metadata_str(a, json_object_get(links, "thumbnail"), METADATA_URL_MAX);
	if (!u)
		u = metadata_str(a, json_object_get(links, "smallThumbnail"), METADATA_URL_MAX);
	if (u && strncmp(u, "http://", 7) == 0)
		u = arena_printf(a, "https://%s", u + 7);
	return u;
}

int metadata_gb_volumes(struct arena *a, json_t *doc, const char *isbn13, struct book_metadata *out,
			struct err *e)
{
	json_t *items = json_object_get(doc, "items");
	if (!json_is_array(items) || json_array_size(items) == 0)
		return err_set(e, ERR_NOT_FOUND, "Google Books: not found");
	json_t *info = NULL;
	size_t i;
	json_t *item;
	json_array_foreach(items, i, item) {
		json_t *vi = json_object_get(item, "volumeInfo");
		if (!json_is_object(vi))
			continue;
		if (!info)
			info = vi;
		if (names_isbn(json_object_get(vi, "industryIdentifiers"), isbn13)) {
			info = vi;
			break;
		}
	}
	if (!info || !(out->title = metadata_str(a, json_object_get(info, "title"), METADATA_TEXT_MAX)))
		return err_set(e, ERR_UNAVAILABLE, "Google Books sent a volume without a title");
	out->subtitle = metadata_str(a, json_object_get(info, "subtitle"), METADATA_TEXT_MAX);
	json_t *v;
	json_array_foreach(json_object_get(info, "authors"), i, v) {
		metadata_add(out->authors, &out->nauthors, METADATA_MAX_AUTHORS, metadata_str(a, v, METADATA_TEXT_MAX));
	}
	out->publisher = metadata_str(a, json_object_get(info, "publisher"), METADATA_TEXT_MAX);
	out->publish_date = metadata_date(a, metadata_str(a, json_object_get(info, "publishedDate"), 64));
	json_t *pages = json_object_get(info, "pageCount");
	if (json_is_integer(pages) && json_integer_value(pages) > 0 && json_integer_value(pages) <= 1000000)
		out->pages = (int)json_integer_value(pages);
	out->description = metadata_str(a, json_object_get(info, "description"), METADATA_DESCRIPTION_MAX);
	json_array_foreach(json_object_get(info, "categories"), i, v) {
		metadata_add(out->subjects, &out->nsubjects, METADATA_MAX_SUBJECTS,
			     metadata_str(a, v, METADATA_TEXT_MAX));
	}
	const char *lang = metadata_str(a, json_object_get(info, "language"), 35);
	if (lang) {
		/* "en", "zh-CN": the primary subtag through the table, the rest kept */
		const char *dash = strchr(lang, '-');
		char primary[8];
		size_t pn = dash ? (size_t)(dash - lang) : strlen(lang);
		if (pn < sizeof(primary)) {
			memcpy(primary, lang, pn);
			primary[pn] = '\0';
			const char *p = metadata_language(a, primary);
			out->language = p && dash ? arena_printf(a, "%s%s", p, dash) : p;
		}
	}
	out->cover_url = thumbnail(a, json_object_get(info, "imageLinks"));
	json_t *ids = json_object_get(info, "industryIdentifiers");
	out->isbn10 = identifier(a, ids, "ISBN_10");
	out->isbn13 = identifier(a, ids, "ISBN_13");
	return 0;
}

static int gb_lookup(void *self, struct arena *a, const char *isbn13, int64_t deadline_ms,
		     struct book_metadata *out, struct err *e)
{
	struct googlebooks *g = self;
	char *url = arena_printf(a, "%s/books/v1/volumes?q=isbn:%s%s%s", g->base, isbn13, g->key ? "&key=" : "",
				 g->key ? g->key : "");
	if (!url)
		return err_set(e, ERR_INTERNAL, "out of memory");
	json_t *doc;
	int rc = metadata_get_json(g->http, url, deadline_ms, g->attempt_ms, "Google Books", &doc, e);
	memset(url, 0, strlen(url)); /* it holds the key */
	if (rc)
		return rc;
	rc = metadata_gb_volumes(a, doc, isbn13, out, e);
	json_decref(doc);
	return rc;
}

const struct metadata_ops metadata_googlebooks_ops = {
	.name = "googlebooks",
	.open = gb_open,
	.close = gb_close,
	.lookup = gb_lookup,
};
