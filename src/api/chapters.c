/*
 * Chapters. GET of one chapter is the hot path of a book site: its rendered
 * JSON is cached by chapter id and revision, so a hit costs one indexed
 * lookup of (id, rev) and no rendering; the ETag is derived from the same
 * pair, so If-None-Match is answered without touching the content. Where the
 * database tells of other processes' changes (PostgreSQL), chapters_rev
 * caches that lookup too, and a hit costs no round trip at all.
 */
#include <stdio.h>
#include <string.h>

#include "../core/json.h"
#include "../services/books.h"
#include "../services/jobs.h"
#include "../core/log.h"
#include "api.h"

#define TITLE_MAX 500

static json_t *chapter_json(const struct chapter *c, int with_content)
{
	json_t *sections = c->sections_json ? json_loads(c->sections_json, 0, NULL) : NULL;
	json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:o, s:o, s:I, s:o, s:o, s:o, s:o}", "id", c->id, "book_id",
			      c->book_id, "number", (json_int_t)c->number, "title", c->title ? c->title : "",
			      "summary", jstr_or_null(c->summary), "summary_source", jstr_or_null(c->summary_source),
			      "word_count", (json_int_t)c->word_count,
			      "audio_url", jstr_or_null(c->audio_url), "sections",
			      sections ? sections : json_array(), "created_at", api_time(c->created_at),
			      "updated_at", api_time(c->updated_at));
	if (o)
		json_object_set_new(o, "source",
				    json_string(c->source_key && !strcmp(c->source_key, CHAPTER_SOURCE_LLM) ? "llm"
													: "text"));
	if (o && with_content)
		json_object_set_new(o, "content_markdown",
				    json_stringn(c->content_markdown ? c->content_markdown : "", c->content_len));
	return o;
}

static void etag_of(const char *id, int64_t rev, char out[64])
{
	snprintf(out, 64, "\"%s-%lld\"", id, (long long)rev);
}

/* RFC 9110 If-None-Match: "*", or a list of (possibly weak) tags. */
static int etag_matches(const char *inm, const char *etag)
{
	if (!inm)
		return 0;
	size_t elen = strlen(etag);
	const char *p = inm;
	while (*p) {
		while (*p == ' ' || *p == ',')
			p++;
		if (*p == '*')
			return 1;
		if (p[0] == 'W' && p[1] == '/')
			p += 2;
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		while (n && p[n - 1] == ' ')
			n--;
		if (n == elen && memcmp(p, etag, n) == 0)
			return 1;
		p += n;
		if (!end)
			break;
	}
	return 0;
}

static void send_chapter(http_req *req, struct rcbuf *body, const char *etag)
{
	http_set_header(req, "ETag", etag);
	http_set_header(req, "Cache-Control", "no-cache");
	http_respond_rcbuf(req, 200, "application/json", body);
}

void api_chapters_get(http_req *req, void *app_)
{
	struct app *app = app_;
	const char *book_id = http_param(req, 0), *ref = http_param(req, 1);
	char id[UUID_STR_LEN], etag[64];
	int64_t rev;
	struct err e = { 0 };
	if (!uuid_valid(book_id, strlen(book_id))) {
		err_set(&e, ERR_NOT_FOUND, "book not found");
		api_fail(req, &e);
		return;
	}
	if (chapters_rev(app->db, book_id, ref, id, &rev, &e)) {
		api_fail(req, &e);
		return;
	}
	etag_of(id, rev, etag);
	if (etag_matches(http_header(req, "If-None-Match"), etag)) {
		http_set_header(req, "ETag", etag);
		http_respond_empty(req, 304);
		return;
	}
	struct rcbuf *body = cache_get(app->chapters, id, rev);
	if (body) {
		send_chapter(req, body, etag);
		rcbuf_unref(body);
		return;
	}
	struct chapter c;
	if (chapters_get(app->db, http_arena(req), book_id, id, &c, &e)) {
		api_fail(req, &e);
		return;
	}
	json_t *o = chapter_json(&c, 1);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	body = s ? rcbuf_new(s, strlen(s)) : NULL;
	free(s);
	if (!body) {
		err_set(&e, ERR_INTERNAL, "out of memory");
		api_fail(req, &e);
		return;
	}
	etag_of(c.id, c.rev, etag);
	cache_put(app->chapters, c.id, c.rev, body);
	send_chapter(req, body, etag);
	rcbuf_unref(body);
}

void api_chapters_list(http_req *req, void *app_)
{
	struct app *app = app_;
	int limit;
	const char *cursor;
	if (api_page_params(req, &limit, &cursor))
		return;
	const char *book_id = http_param(req, 0);
	struct err e = { 0 };
	if (!uuid_valid(book_id, strlen(book_id))) {
		err_set(&e, ERR_NOT_FOUND, "book not found");
		api_fail(req, &e);
		return;
	}
	struct chapter *items;
	int n;
	char *next;
	if (chapters_list(app->db, http_arena(req), book_id, cursor, limit, &items, &n, &next, &e)) {
		api_fail(req, &e);
		return;
	}
	json_t *arr = json_array();
	for (int i = 0; i < n; i++)
		json_array_append_new(arr, chapter_json(&items[i], 0));
	api_json(req, 200, json_pack("{s:o, s:o}", "items", arr, "next_cursor", jstr_or_null(next)));
}

static int parse_chapter(json_t *o, struct chapter_input *in, struct err *e)
{
	memset(in, 0, sizeof(*in));
	(void)jget_str(o, "title", J_REQUIRED, 1, TITLE_MAX, &in->title, e);
	json_t *content = json_object_get(o, "content_markdown");
	if (!content || json_is_null(content)) {
		err_field(e, "content_markdown", "is required");
	} else if (!json_is_string(content)) {
		err_field(e, "content_markdown", "must be a string");
	} else {
		in->content = json_string_value(content);
		in->content_len = json_string_length(content);
		if (memchr(in->content, '\0', in->content_len))
			err_field(e, "content_markdown", "must not contain NUL characters");
	}
	long long number = 0;
	if (jget_int(o, "number", J_OPTIONAL, 1, 1000000, &number, e) > 0)
		in->number = number;
	return e->code ? -1 : 0;
}

static void write_chapter(http_req *req, struct app *app, int create)
{
	if (api_require_book_write(req, app, http_param(req, 0), NULL))
		return;
	json_t *o;
	if (api_read_object(req, &o))
		return;
	struct chapter_input in;
	struct chapter c;
	struct err e = { 0 };
	const char *book_id = http_param(req, 0);
	int rc = parse_chapter(o, &in, &e);
	if (!rc)
		rc = create ? chapters_create(app->db, http_arena(req), book_id, &in, &c, &e)
			    : chapters_replace(app->db, http_arena(req), book_id, http_param(req, 1), &in, &c, &e);
	if (rc) {
		api_fail(req, &e);
	} else {
		/* Re-chunk (and re-embed) just this chapter, in the background. */
		json_t *payload = json_pack("{s:s, s:s}", "book_id", c.book_id, "chapter_id", c.id);
		struct job j;
		int existing;
		struct err je = { 0 };
		if (!payload || jobs_submit(app->jobs, http_arena(req), NULL, "book.index", payload, NULL, &j, &existing, &je))
			log_warn("chapter %s saved but not queued for indexing: %s", c.id, je.msg);
		json_decref(payload);
		char etag[64];
		etag_of(c.id, c.rev, etag);
		http_set_header(req, "ETag", etag);
		if (create) {
			char loc[160];
			snprintf(loc, sizeof(loc), "/api/v1/books/%s/chapters/%s", c.book_id, c.id);
			http_set_header(req, "Location", loc);
		}
		api_json(req, create ? 201 : 200, chapter_json(&c, 1));
	}
	json_decref(o);
}

void api_chapters_create(http_req *req, void *app)
{
	write_chapter(req, app, 1);
}

void api_chapters_replace(http_req *req, void *app)
{
	write_chapter(req, app, 0);
}

void api_chapters_delete(http_req *req, void *app_)
{
	struct app *app = app_;
	if (api_require_book_write(req, app, http_param(req, 0), NULL))
		return;
	struct err e = { 0 };
	const char *book_id = http_param(req, 0);
	if (!uuid_valid(book_id, strlen(book_id))) {
		err_set(&e, ERR_NOT_FOUND, "book not found");
		api_fail(req, &e);
		return;
	}
	if (chapters_delete(app->db, book_id, http_param(req, 1), &e))
		api_fail(req, &e);
	else
		http_respond_empty(req, 204);
}
