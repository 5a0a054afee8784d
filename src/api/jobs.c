/*
 * Jobs: /api/v1/jobs (status, list, cancel, progress as Server-Sent Events,
 * and a generic submit for administrators) and the upload that starts a
 * book import, POST /api/v1/books/import.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <stdlib.h>
#include <unistd.h>

#include "../core/hash.h"
#include "../core/json.h"
#include "../core/mem.h"
#include "../core/timeutil.h"
#include "../services/jobs.h"
#include "api.h"

#define IDEMPOTENCY_MAX 128
/* A job's event stream looks at the job every 50-150 ms (http.h). */
#define JOB_POLL_MS 50

json_t *api_job_json(const struct job *j)
{
	json_t *result = j->result ? json_loads(j->result, 0, NULL) : NULL;
	long eta = jobs_eta_seconds(j);
	return json_pack("{s:s, s:s, s:s, s:I, s:o, s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id",
			 j->id, "type", j->type, "status", j->status, "progress", (json_int_t)j->progress, "step",
			 jstr_or_null(j->step), "steps_done", (json_int_t)j->steps_done, "steps_total",
			 (json_int_t)j->steps_total, "attempts", (json_int_t)j->attempts, "max_attempts",
			 (json_int_t)j->max_attempts, "result", result ? result : json_null(), "error",
			 jstr_or_null(j->error), "eta_seconds", eta >= 0 ? json_integer(eta) : json_null(),
			 "created_at", api_time(j->created_at), "updated_at", api_time(j->updated_at), "started_at",
			 j->started_at ? api_time(j->started_at) : json_null(), "finished_at",
			 j->finished_at ? api_time(j->finished_at) : json_null());
}

/* The caller's user id (the master key is the local admin); *admin says
 * whether it may see every job: a key limited to books never may, whatever
 * its scopes, and sees only its owner's jobs on its books (job_visible). */
static int caller(http_req *req, struct app *app, char owner[UUID_STR_LEN], int *admin, struct principal *p)
{
	struct user u;
	if (api_user(req, app, p, &u))
		return -1;
	snprintf(owner, UUID_STR_LEN, "%s", u.id);
	*admin = (p->scopes & SCOPE_ADMIN) && !p->nbooks;
	return 0;
}

/* The book a job works on, from its payload or else its result (an import
 * learns its book as it runs). */
static int job_visible(const struct principal *p, const struct job *j)
{
	if (!p->nbooks)
		return 1;
	int ok = 0;
	const char *docs[] = { j->payload, j->result };
	for (size_t i = 0; i < ARRAY_LEN(docs) && !ok; i++) {
		json_t *o = docs[i] ? json_loads(docs[i], 0, NULL) : NULL;
		const char *book = json_string_value(json_object_get(o, "book_id"));
		ok = book && users_may_touch_book(p, book);
		json_decref(o);
	}
	return ok;
}

/* jobs_get, and a job beyond the caller's books is not found. */
static int job_for(struct app *app, http_req *req, const struct principal *p, const char *owner, int admin,
		   struct job *j, struct err *e)
{
	int rc = jobs_get(app->jobs, http_arena(req), admin ? NULL : owner, http_param(req, 0), j, e);
	if (rc == 0 && !job_visible(p, j))
		rc = err_set(e, ERR_NOT_FOUND, "job not found");
	return rc;
}

int api_idempotency_key(http_req *req, const char **key)
{
	*key = http_header(req, "Idempotency-Key");
	if (*key && (!**key || strlen(*key) > IDEMPOTENCY_MAX)) {
		struct err e = { 0 };
		err_field(&e, "Idempotency-Key", "must be 1 to %d characters", IDEMPOTENCY_MAX);
		api_fail(req, &e);
		return -1;
	}
	return 0;
}

void api_job_accepted(http_req *req, const struct job *j, int existing)
{
	char loc[96];
	snprintf(loc, sizeof(loc), "/api/v1/jobs/%s", j->id);
	http_set_header(req, "Location", loc);
	if (existing)
		http_set_header(req, "Idempotent-Replayed", "true");
	api_json(req, 202, json_pack("{s:s, s:s}", "job_id", j->id, "status", j->status));
}

/* What kind of upload: by file name, else by Content-Type. */
static const char *upload_kind(const struct http_upload *u, const char **ext)
{
	static const struct {
		const char *suffix, *ctype, *kind;
	} kinds[] = {
		{ ".zip", "application/zip", "zip" },		 { ".zip", "application/x-zip-compressed", "zip" },
		{ ".md", "text/markdown", "markdown" },	 { ".markdown", "text/x-markdown", "markdown" },
		{ ".mdx", "text/mdx", "markdown" },		 { ".txt", "text/plain", "text" },
	};
	const char *dot = u->filename ? strrchr(u->filename, '.') : NULL;
	for (size_t i = 0; dot && i < ARRAY_LEN(kinds); i++)
		if (strcasecmp(dot, kinds[i].suffix) == 0) {
			*ext = kinds[i].suffix;
			return kinds[i].kind;
		}
	if (dot)
		return NULL; /* a name we do not take, whatever the Content-Type says */
	for (size_t i = 0; u->content_type && i < ARRAY_LEN(kinds); i++)
		if (strncasecmp(u->content_type, kinds[i].ctype, strlen(kinds[i].ctype)) == 0) {
			*ext = kinds[i].suffix;
			return kinds[i].kind;
		}
	return NULL;
}

void api_books_import(http_req *req, void *app_)
{
	struct app *app = app_;
	const char *book_id = http_form(req, "book_id") ? http_form(req, "book_id") : http_query(req, "book_id");
	struct principal p;
	struct user me;
	const char *idem;
	if (api_require_book_write(req, app, book_id, &p) || api_user_of(req, app, &p, &me) ||
	    api_idempotency_key(req, &idem))
		return;
	const char *owner = me.id;
	struct err e = { 0 };
	const struct http_upload *u = http_upload(req);
	const char *ext = NULL, *kind = u ? upload_kind(u, &ext) : NULL;
	if (!u || !u->size) {
		err_field(&e, "file", "is required: a .zip of a Markdown folder, a .md, .mdx or .txt file");
		api_fail(req, &e);
		return;
	}
	if (!kind) {
		err_set(&e, ERR_UNSUPPORTED, "upload a .zip of a Markdown folder, a .md, .mdx or .txt file");
		api_fail(req, &e);
		return;
	}
	char name[UUID_STR_LEN], path[4096];
	if (uuid_v7(name) || snprintf(path, sizeof(path), "%s/uploads/%s%s", jobs_data_dir(app->jobs), name, ext) >=
				    (int)sizeof(path) ||
	    http_upload_keep(req, path)) {
		err_set(&e, ERR_INTERNAL, "cannot keep the upload");
		api_fail(req, &e);
		return;
	}
	const char *fields[] = { "title", "author", "language" };
	json_t *payload = json_pack("{s:s, s:s, s:o}", "upload", path, "kind", kind, "filename",
				    jstr_or_null(u->filename));
	/* The server let through only UTF-8 (form fields, query, X-Filename):
	 * a value that does not make a JSON string is out of memory. */
	int bad = !payload;
	for (size_t i = 0; !bad && i < ARRAY_LEN(fields); i++) {
		const char *v = http_form(req, fields[i]) ? http_form(req, fields[i]) : http_query(req, fields[i]);
		if (v && *v)
			bad = json_object_set_new(payload, fields[i], json_string(v)) != 0;
	}
	if (!bad && book_id)
		bad = json_object_set_new(payload, "book_id", json_string(book_id)) != 0;
	if (bad) {
		json_decref(payload);
		unlink(path);
		err_set(&e, ERR_INTERNAL, "out of memory");
		api_fail(req, &e);
		return;
	}
	struct job j;
	int existing;
	int rc = jobs_submit(app->jobs, http_arena(req), owner, "book.import", payload, idem, &j, &existing, &e);
	json_decref(payload);
	if (rc || existing)
		unlink(path); /* not needed: failed, or the first request's job has its own */
	if (rc)
		api_fail(req, &e);
	else
		api_job_accepted(req, &j, existing);
}

void api_jobs_submit(http_req *req, void *app_)
{
	struct app *app = app_;
	char owner[UUID_STR_LEN];
	int admin;
	const char *idem;
	struct principal p;
	if (caller(req, app, owner, &admin, &p) || api_idempotency_key(req, &idem))
		return;
	admin = admin || (p.scopes & SCOPE_ADMIN);
	struct err e = { 0 };
	if (!admin) {
		err_set(&e, ERR_FORBIDDEN, "administrators only");
		api_fail(req, &e);
		return;
	}
	json_t *o;
	if (api_read_object(req, &o))
		return;
	const char *type = NULL;
	(void)jget_str(o, "type", J_REQUIRED, 1, 64, &type, &e);
	json_t *payload = json_object_get(o, "payload");
	if (payload && !json_is_object(payload))
		err_field(&e, "payload", "must be an object");
	/* An import names a file on this server: it comes only from an upload. */
	if (type && !strcmp(type, "book.import"))
		err_field(&e, "type", "book.import jobs start with POST /api/v1/books/import");
	/* A key limited to books queues work on those books only. */
	if (!e.code && p.nbooks &&
	    !users_may_touch_book(&p, json_string_value(json_object_get(payload, "book_id"))))
		err_set(&e, ERR_FORBIDDEN, "this API key is limited to other books");
	struct job j;
	int existing;
	json_t *empty = json_object();
	if (!e.code && jobs_submit(app->jobs, http_arena(req), owner, type, payload ? payload : empty, idem, &j,
				   &existing, &e) == 0)
		api_job_accepted(req, &j, existing);
	else
		api_fail(req, &e);
	json_decref(empty);
	json_decref(o);
}

void api_jobs_list(http_req *req, void *app_)
{
	struct app *app = app_;
	char owner[UUID_STR_LEN];
	int admin, limit;
	const char *cursor;
	struct principal p;
	if (caller(req, app, owner, &admin, &p) || api_page_params(req, &limit, &cursor))
		return;
	struct job *items;
	int n;
	char *next;
	struct err e = { 0 };
	if (jobs_list(app->jobs, http_arena(req), admin ? NULL : owner, http_query(req, "status"), cursor, limit,
		      &items, &n, &next, &e)) {
		api_fail(req, &e);
		return;
	}
	json_t *arr = json_array();
	for (int i = 0; i < n; i++)
		if (job_visible(&p, &items[i]))
			json_array_append_new(arr, api_job_json(&items[i]));
	api_json(req, 200, json_pack("{s:o, s:o}", "items", arr, "next_cursor", jstr_or_null(next)));
}

void api_jobs_get(http_req *req, void *app_)
{
	struct app *app = app_;
	char owner[UUID_STR_LEN];
	int admin;
	struct principal p;
	if (caller(req, app, owner, &admin, &p))
		return;
	struct job j;
	struct err e = { 0 };
	if (job_for(app, req, &p, owner, admin, &j, &e))
		api_fail(req, &e);
	else
		api_json(req, 200, api_job_json(&j));
}

void api_jobs_cancel(http_req *req, void *app_)
{
	struct app *app = app_;
	char owner[UUID_STR_LEN];
	int admin;
	struct principal p;
	if (caller(req, app, owner, &admin, &p))
		return;
	struct job j;
	struct err e = { 0 };
	if (job_for(app, req, &p, owner, admin, &j, &e) ||
	    jobs_cancel(app->jobs, http_arena(req), admin ? NULL : owner, http_param(req, 0), &j, &e))
		api_fail(req, &e);
	else
		api_json(req, 202, api_job_json(&j));
}

/* ---- progress as Server-Sent Events ----------------------------------------- */

struct job_stream {
	struct app *app;
	char id[UUID_STR_LEN];
	uint64_t last_hash; /* of the last event's JSON: a change is a different text */
	int64_t last_sent_us;
	int sent, done;
};


static int terminal(const char *status)
{
	return !strcmp(status, "completed") || !strcmp(status, "failed") || !strcmp(status, "cancelled");
}

static long job_stream_next(void *ctx, char *buf, size_t max, int final)
{
	struct job_stream *s = ctx;
	if (s->done)
		return -1;
	if (final) {
		s->done = 1;
		return snprintf(buf, max, "event: error\ndata: {\"error\":{\"code\":\"unavailable\","
					  "\"message\":\"server is shutting down\"}}\n\n");
	}
	struct arena a;
	arena_init(&a, 4096);
	struct job j;
	struct err e = { 0 };
	long n = 0;
	if (jobs_get(s->app->jobs, &a, NULL, s->id, &j, &e)) {
		n = snprintf(buf, max, "event: error\ndata: {\"message\":\"job unavailable\"}\n\n");
		s->done = 1;
	} else {
		/* Timestamps have millisecond resolution: two changes can share one.
		 * What the reader would see is what decides. */
		json_t *o = api_job_json(&j);
		char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
		json_decref(o);
		uint64_t h = text ? hash_fnv1a(text) : 0;
		if (text && (!s->sent || h != s->last_hash)) {
			int end = terminal(j.status);
			n = snprintf(buf, max, "event: %s\ndata: %s\n\n", end ? "done" : "progress", text);
			if (n <= 0 || (size_t)n >= max) /* too large for one write: say so and stop */
				n = snprintf(buf, max, "event: error\ndata: {\"message\":\"event too large\"}\n\n");
			s->sent = 1;
			s->last_hash = h;
			s->done = end;
		} else if (time_mono_us() - s->last_sent_us > 15 * 1000000) {
			n = snprintf(buf, max, ": keep-alive\n\n");
		}
		free(text);
	}
	if (n > 0)
		s->last_sent_us = time_mono_us();
	arena_free(&a);
	return n;
}

void api_jobs_events(http_req *req, void *app_)
{
	struct app *app = app_;
	char owner[UUID_STR_LEN];
	int admin;
	struct principal p;
	if (caller(req, app, owner, &admin, &p))
		return;
	struct job j;
	struct err e = { 0 };
	if (job_for(app, req, &p, owner, admin, &j, &e)) {
		api_fail(req, &e);
		return;
	}
	struct job_stream *s = xcalloc(1, sizeof(*s));
	if (!s) {
		err_set(&e, ERR_INTERNAL, "out of memory");
		api_fail(req, &e);
		return;
	}
	s->app = app;
	snprintf(s->id, sizeof(s->id), "%s", j.id);
	http_stream_watch(http_respond_stream(req, "text/event-stream", JOB_POLL_MS, job_stream_next, xfree, s));
}
