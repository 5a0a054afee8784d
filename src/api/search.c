/*
 * GET /api/v1/search and POST /api/v1/books/{id}/reindex. Keyword search is
 * answered on the HTTP thread (a few hundred microseconds); anything that
 * needs the embedding provider runs on the I/O executor with the connection
 * suspended.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/json.h"
#include "../core/utf8.h"
#include "../services/books.h"
#include "../services/jobs.h"
#include "../services/search.h"
#include "api.h"

#define QUERY_MAX 1000

struct search_job {
	struct app *app;
	struct arena *a;
	const char *q, *book_id, *chapter_id, *language;
	int limit;
	enum search_mode mode;
	struct search_hit *hits;
	int n, rc;
	struct err e;
};

static void respond(http_req *req, struct search_job *j)
{
	if (j->rc) {
		api_fail(req, &j->e);
		return;
	}
	json_t *arr = json_array();
	for (int i = 0; i < j->n; i++) {
		const struct chunk_row *r = &j->hits[i].row;
		json_array_append_new(
			arr, json_pack("{s:s, s:s, s:s, s:I, s:o, s:o, s:o, s:o, s:o, s:f, s:I, s:I, s:I, s:o}", "chunk_id",
				       r->id, "book_id", r->book_id, "chapter_id", r->chapter_id, "chapter_number",
				       (json_int_t)r->chapter_number, "chapter_title", jstr_or_null(r->chapter_title),
				       "heading", jstr_or_null(r->heading), "heading_path", jstr_or_null(r->heading_path),
				       "anchor", jstr_or_null(r->anchor), "text", jstr_or_null(r->text), "score",
				       j->hits[i].score, "char_start", (json_int_t)r->char_start, "char_end",
				       (json_int_t)r->char_end, "token_count", (json_int_t)r->token_count, "language",
				       jstr_or_null(r->language)));
	}
	const char *mode = j->mode == SEARCH_VECTOR ? "vector" : j->mode == SEARCH_HYBRID ? "hybrid" : "keyword";
	api_json(req, 200, json_pack("{s:o, s:s}", "results", arr, "mode", mode));
}

static void run(void *ctx)
{
	struct search_job *j = ctx;
	j->rc = search_query_lang(j->app->search, j->a, j->q, j->book_id, j->chapter_id, j->language, j->limit,
				  j->mode, &j->hits, &j->n, &j->e);
}

static void done(http_req *req, void *app)
{
	respond(req, http_defer_ctx(req));
}

void api_search(http_req *req, void *app_)
{
	struct app *app = app_;
	struct err e = { 0 };
	struct search_job *j = arena_alloc(http_arena(req), sizeof(*j));
	if (!j) {
		err_set(&e, ERR_INTERNAL, "out of memory");
		api_fail(req, &e);
		return;
	}
	memset(j, 0, sizeof(*j));
	j->app = app;
	j->a = http_arena(req);
	j->q = http_query(req, "q");
	j->book_id = http_query(req, "book_id");
	j->chapter_id = http_query(req, "chapter_id");
	j->language = http_query(req, "language");
	const char *limit = http_query(req, "limit"), *mode = http_query(req, "mode");
	j->limit = 10;
	if (!j->q || !*j->q)
		err_field(&e, "q", "is required");
	else if (!utf8_valid(j->q, strlen(j->q)))
		err_bad_field(&e, "q", "is not valid UTF-8");
	else if (utf8_chars(j->q) > QUERY_MAX)
		err_field(&e, "q", "must be at most %d characters", QUERY_MAX);
	if (limit) {
		char *end;
		long v = strtol(limit, &end, 10);
		if (!*limit || *end || v < 1 || v > 50)
			err_field(&e, "limit", "must be an integer from 1 to 50");
		else
			j->limit = (int)v;
	}
	if (j->book_id && !uuid_valid(j->book_id, strlen(j->book_id)))
		err_field(&e, "book_id", "must be a book id");
	if (j->chapter_id && !uuid_valid(j->chapter_id, strlen(j->chapter_id)))
		err_field(&e, "chapter_id", "must be a chapter id");
	if (j->language && !*j->language)
		j->language = NULL;
	if (j->language && !books_language_valid(j->language))
		err_field(&e, "language", "must be a BCP 47 language tag, e.g. ur");
	if (!mode || !*mode)
		j->mode = SEARCH_DEFAULT;
	else if (!strcmp(mode, "keyword"))
		j->mode = SEARCH_KEYWORD;
	else if (!strcmp(mode, "vector"))
		j->mode = SEARCH_VECTOR;
	else if (!strcmp(mode, "hybrid"))
		j->mode = SEARCH_HYBRID;
	else
		err_field(&e, "mode", "must be hybrid, keyword or vector");
	if (e.code) {
		api_fail(req, &e);
		return;
	}
	if (j->mode == SEARCH_DEFAULT)
		j->mode = search_has_embedder(app->search) ? SEARCH_HYBRID : SEARCH_KEYWORD;
	if (j->mode == SEARCH_KEYWORD || !search_has_embedder(app->search)) {
		run(j); /* no network involved: answer here */
		respond(req, j);
		return;
	}
	if (http_defer(req, app->io, run, done, j)) {
		err_set(&e, ERR_UNAVAILABLE, "too many searches in progress; try again shortly");
		api_fail(req, &e);
	}
}

void api_books_reindex(http_req *req, void *app_)
{
	struct app *app = app_;
	const char *book_id = http_param(req, 0);
	struct principal p;
	struct user u;
	struct err e = { 0 };
	struct book b;
	if (api_require_book_write(req, app, book_id, &p) || api_user_of(req, app, &p, &u))
		return;
	if (books_get(app->db, http_arena(req), book_id, &b, &e)) {
		api_fail(req, &e);
		return;
	}
	const char *idem;
	if (api_idempotency_key(req, &idem))
		return;
	json_t *payload = json_pack("{s:s}", "book_id", book_id);
	struct job j;
	int existing;
	int rc = jobs_submit(app->jobs, http_arena(req), u.id, "book.index", payload, idem, &j, &existing, &e);
	json_decref(payload);
	if (rc)
		api_fail(req, &e);
	else
		api_job_accepted(req, &j, existing);
}
