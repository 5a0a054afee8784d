/*
 * Reading routes: a chapter translated or personalised (services/transform.c),
 * editors' translations, section refreshes, whole-book translation jobs and
 * the glossary. A GET first asks for what is ready without a model (human,
 * cached) on the HTTP thread — a cached chapter never leaves it; anything
 * missing is computed on the chat executor (it waits on models). With
 * `Accept: text/event-stream` the sections are streamed from that executor
 * as they are ready: `section` events (ready ones first, then computed ones,
 * each with its index and anchor), then `done`, or `error`. A chapter that
 * was ready whole is kept rendered (transform_rendered_get): a second reader
 * of it costs a revision lookup, as the plain chapter does.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/buf.h"
#include "../core/executor.h"
#include "../core/json.h"
#include "../core/mem.h"
#include "../core/rcbuf.h"
#include "../core/timeutil.h"
#include "../http/server.h"
#include "../services/books.h"
#include "../services/jobs.h"
#include "../services/preferences.h"
#include "../services/transform.h"
#include "api.h"

#define KEEPALIVE_MS 1000
#define WORDS_PER_MINUTE 200
#define HUMAN_MAX_SECTIONS 1000

struct read {
	struct app *app;
	struct arena arena;
	char book_id[UUID_STR_LEN];
	char *chapter;
	char *lang;
	json_t *profile; /* personalise */
	struct transform_request rq;
	struct transform_result res;
	struct err e;
	int rc;
	/* streaming */
	pthread_mutex_t lock;
	int refs;
	struct http_stream *hs;
	struct buf out;
	size_t sent;
	int finished, gone;
	int64_t last_write_us;
};

static struct read *read_new(struct app *app)
{
	struct read *r = xcalloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->app = app;
	r->refs = 1;
	arena_init(&r->arena, 16384);
	buf_init(&r->out, (size_t)64 << 20);
	pthread_mutex_init(&r->lock, NULL);
	return r;
}

static void read_unref(struct read *r)
{
	pthread_mutex_lock(&r->lock);
	int last = --r->refs == 0;
	pthread_mutex_unlock(&r->lock);
	if (!last)
		return;
	json_decref(r->profile);
	buf_free(&r->out);
	arena_free(&r->arena);
	pthread_mutex_destroy(&r->lock);
	xfree(r);
}

/* ---- JSON ------------------------------------------------------------------------- */

static json_t *section_json(int index, const struct transform_section *s)
{
	json_t *o = json_pack("{s:i, s:s, s:s, s:i, s:s%, s:b, s:s, s:b}", "index", index, "anchor", s->anchor,
			      "heading", s->heading ? s->heading : "", "level", s->level, "content_markdown", s->text,
			      s->text_len, "cached", s->cached, "origin", s->origin ? s->origin : "source", "fallback",
			      s->fallback);
	if (o && s->reason)
		json_object_set_new(o, "reason", json_string(s->reason));
	if (o && s->stale)
		json_object_set_new(o, "stale", json_true());
	return o;
}

static json_t *persona_json(const json_t *profile)
{
	static const char *const keys[] = { "experience_level", "software_background", "hardware_background",
					    "learning_goals",	"example_style",       "explanation_depth",
					    NULL };
	json_t *o = json_object();
	for (int i = 0; o && keys[i]; i++) {
		json_t *v = json_object_get(profile, keys[i]);
		if (v && !json_is_null(v))
			json_object_set(o, keys[i], v);
	}
	return o;
}

/* The response body; with_sections 0 for the SSE `done` event. */
static json_t *result_json(const struct read *r, int with_sections)
{
	const struct transform_result *x = &r->res;
	long minutes = (x->word_count + WORDS_PER_MINUTE - 1) / WORDS_PER_MINUTE;
	int fallbacks = 0;
	for (int i = 0; i < x->nsections; i++)
		fallbacks += x->sections[i].fallback;
	json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:s, s:I, s:I, s:i, s:i}", "book_id", r->book_id, "chapter_id",
			      x->chapter_id, "number", (json_int_t)x->number, "title", x->title ? x->title : "",
			      "method", x->method ? x->method : "none", "word_count", (json_int_t)x->word_count,
			      "reading_time_minutes", (json_int_t)(minutes ? minutes : 1), "sections_computed",
			      x->misses, "fallback_sections", fallbacks);
	if (!o)
		return NULL;
	if (r->lang) {
		json_object_set_new(o, "language", json_string(r->lang));
		json_object_set_new(o, "direction", json_string(x->direction));
	} else {
		json_object_set_new(o, "persona_applied", persona_json(r->profile));
		json_object_set_new(o, "direction", json_string("ltr"));
	}
	if (with_sections) {
		json_t *arr = json_array();
		for (int i = 0; arr && i < x->nsections; i++)
			json_array_append_new(arr, section_json(i, &x->sections[i]));
		json_object_set_new(o, "sections", arr ? arr : json_array());
		json_object_set_new(o, "content_markdown", json_stringn(x->content ? x->content : "", x->content_len));
	}
	return o;
}

static void fail_read(http_req *req, const struct read *r)
{
	if (r->res.unavailable)
		http_respond_error(req, 404, "translation_unavailable", r->e.msg, NULL);
	else
		api_fail(req, &r->e);
}

/* ---- whole answers ------------------------------------------------------------------ */

static int cancelled(void *ctx)
{
	struct read *r = ctx;
	if (stop_fired(r->app->cancel))
		return 1;
	pthread_mutex_lock(&r->lock);
	int gone = r->gone;
	pthread_mutex_unlock(&r->lock);
	return gone;
}

static void read_run(void *ctx)
{
	struct read *r = ctx;
	r->rq.flags = 0;
	r->rc = transform_chapter(r->app->transform, &r->arena, &r->rq, &r->res, &r->e);
	if (r->rc && stop_fired(r->app->cancel))
		r->rc = err_set(&r->e, ERR_UNAVAILABLE, "the server is shutting down; please ask again");
}

static void read_done(http_req *req, void *app)
{
	struct read *r = http_defer_ctx(req);
	if (r->rc)
		fail_read(req, r);
	else
		api_json(req, 200, result_json(r, 1));
	read_unref(r);
}

/* ---- streamed ---------------------------------------------------------------------------- */

static int push(struct read *r, const char *event, json_t *data, int last)
{
	char *text = data ? json_dumps(data, JSON_COMPACT) : NULL;
	json_decref(data);
	pthread_mutex_lock(&r->lock);
	int gone = r->gone;
	int queued = !gone && text && buf_printf(&r->out, "event: %s\ndata: %s\n\n", event, text) == 0;
	if (last)
		r->finished = 1;
	if ((queued || last) && r->hs)
		http_stream_wake(r->hs);
	pthread_mutex_unlock(&r->lock);
	free(text);
	return gone;
}

static int on_section(void *ctx, int index, const struct transform_section *s)
{
	struct read *r = ctx;
	return push(r, "section", section_json(index, s), 0);
}

static json_t *error_json(const char *code, const char *message)
{
	return json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", message);
}

static void stream_run(void *ctx)
{
	struct read *r = ctx;
	r->rq.on_section = on_section;
	read_run(r);
	if (r->rc == 0) {
		push(r, "done", result_json(r, 0), 1);
	} else {
		const char *code = r->res.unavailable ? "translation_unavailable" : err_code_name(r->rc);
		push(r, "error", error_json(code, r->rc == ERR_INTERNAL ? "internal error" : r->e.msg), 1);
	}
	read_unref(r);
}

static long stream_next(void *ctx, char *buf, size_t max, int final)
{
	struct read *r = ctx;
	long n = 0;
	pthread_mutex_lock(&r->lock);
	size_t avail = r->out.n - r->sent;
	if (avail) {
		n = (long)(avail < max ? avail : max);
		memcpy(buf, r->out.p + r->sent, (size_t)n);
		r->sent += (size_t)n;
		if (r->sent == r->out.n) {
			buf_reset(&r->out);
			r->sent = 0;
		}
	} else if (r->finished) {
		n = -1;
	} else if (final) {
		static const char bye[] = "event: error\ndata: {\"error\":{\"code\":\"unavailable\",\"message\":"
					  "\"server is shutting down\"}}\n\n";
		n = sizeof(bye) - 1 <= max ? (long)(sizeof(bye) - 1) : -1;
		if (n > 0)
			memcpy(buf, bye, (size_t)n);
		r->finished = 1;
		r->gone = 1;
	} else if (time_mono_us() - r->last_write_us >= KEEPALIVE_MS * 1000 && max > 16) {
		memcpy(buf, ": waiting\n\n", 11);
		n = 11;
	}
	if (n > 0)
		r->last_write_us = time_mono_us();
	pthread_mutex_unlock(&r->lock);
	return n;
}

static void stream_gone(void *ctx)
{
	struct read *r = ctx;
	pthread_mutex_lock(&r->lock);
	r->hs = NULL;
	r->gone = 1;
	pthread_mutex_unlock(&r->lock);
	read_unref(r);
}

static int wants_stream(http_req *req)
{
	const char *acc = http_header(req, "Accept");
	return acc && strstr(acc, "text/event-stream") != NULL;
}

static void start_stream(http_req *req, struct read *r)
{
	struct err e = { 0 };
	r->refs = 2;
	if (executor_submit(r->app->chat_exec, stream_run, r)) {
		r->refs = 1;
		read_unref(r);
		err_set(&e, ERR_UNAVAILABLE, "too many requests in progress; try again shortly");
		api_fail(req, &e);
		return;
	}
	struct http_stream *hs = http_respond_stream(req, "text/event-stream", KEEPALIVE_MS, stream_next, stream_gone, r);
	if (hs) {
		pthread_mutex_lock(&r->lock);
		r->hs = hs;
		pthread_mutex_unlock(&r->lock);
	}
}

/* The rendered-response cache's target: the language, or the profile's hash
 * (which covers every field of persona_applied). */
static int render_target(const struct read *r, char *out, size_t n)
{
	char hash[65];
	if (r->lang) {
		snprintf(out, n, "t:%s", r->lang);
		return 0;
	}
	if (transform_profile_hash(r->profile, hash))
		return -1;
	snprintf(out, n, "p:%s", hash);
	return 0;
}

/* Answers with the result, kept rendered when every section was ready and
 * none fell back to the source. */
static void respond_ready(http_req *req, struct read *r, int keyed, const char *id, int64_t rev, const char *target,
			  uint64_t stamp)
{
	int whole = keyed && !strcmp(r->res.chapter_id, id);
	for (int i = 0; whole && i < r->res.nsections; i++)
		whole = !r->res.sections[i].fallback;
	if (!whole) {
		api_json(req, 200, result_json(r, 1));
		return;
	}
	json_t *o = result_json(r, 1);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	struct rcbuf *body = s ? rcbuf_new(s, strlen(s)) : NULL;
	free(s);
	if (!body) {
		http_respond_error(req, 500, "internal", "out of memory", NULL);
		return;
	}
	transform_rendered_put(r->app->transform, id, rev, target, stamp, body);
	http_respond_rcbuf(req, 200, "application/json", body);
	rcbuf_unref(body);
}

/* Ready sections on this thread; the rest on the executor. */
static void serve(http_req *req, struct read *r)
{
	struct err e = { 0 };
	struct transform *t = r->app->transform;
	r->rq.book_id = r->book_id;
	r->rq.chapter = r->chapter;
	r->rq.cancelled = cancelled;
	r->rq.ctx = r;
	if (wants_stream(req)) {
		start_stream(req, r);
		return;
	}
	/* The stamp before anything the response is made of is read. */
	uint64_t stamp = transform_rendered_stamp(t);
	char id[UUID_STR_LEN], target[96];
	int64_t rev = 0;
	int keyed = render_target(r, target, sizeof(target)) == 0 &&
		    chapters_rev(r->app->db, r->book_id, r->chapter, id, &rev, &e) == 0;
	err_clear(&e);
	if (keyed) {
		struct rcbuf *body = transform_rendered_get(t, id, rev, target);
		if (body) {
			http_respond_rcbuf(req, 200, "application/json", body);
			rcbuf_unref(body);
			read_unref(r);
			return;
		}
	}
	r->rq.flags = TRANSFORM_CACHED_ONLY;
	r->rc = transform_chapter(t, &r->arena, &r->rq, &r->res, &r->e);
	int missing = 0;
	for (int i = 0; r->rc == 0 && i < r->res.nsections; i++)
		missing += r->res.sections[i].fallback && r->res.sections[i].reason &&
			   !strcmp(r->res.sections[i].reason, "not translated yet");
	if (r->rc || !missing) {
		if (r->rc)
			fail_read(req, r);
		else
			respond_ready(req, r, keyed, id, rev, target, stamp);
		read_unref(r);
		return;
	}
	if (http_defer(req, r->app->chat_exec, read_run, read_done, r)) {
		read_unref(r);
		err_set(&e, ERR_UNAVAILABLE, "too many requests in progress; try again shortly");
		api_fail(req, &e);
	}
}

static int book_param(http_req *req, char out[UUID_STR_LEN])
{
	const char *id = http_param(req, 0);
	if (!uuid_valid(id, strlen(id))) {
		struct err e = { 0 };
		err_set(&e, ERR_NOT_FOUND, "book not found");
		api_fail(req, &e);
		return -1;
	}
	snprintf(out, UUID_STR_LEN, "%s", id);
	return 0;
}

static int lang_param(http_req *req, int i, const char **lang)
{
	*lang = http_param(req, i);
	if (!books_language_valid(*lang)) {
		struct err e = { 0 };
		err_field(&e, "language_code", "must be a BCP 47 language tag such as ur or pt-BR");
		api_fail(req, &e);
		return -1;
	}
	return 0;
}

/* ---- routes --------------------------------------------------------------------------- */

void api_reading_translated(http_req *req, void *app_)
{
	struct app *app = app_;
	struct principal p;
	const char *lang;
	if (api_principal(req, app, &p))
		return;
	if (p.kind == P_ANON) {
		http_respond_error(req, 401, "unauthorized", "sign in to read translations", NULL);
		return;
	}
	struct read *r = read_new(app);
	if (!r) {
		http_respond_error(req, 500, "internal", "out of memory", NULL);
		return;
	}
	if (book_param(req, r->book_id) || lang_param(req, 2, &lang)) {
		read_unref(r);
		return;
	}
	r->chapter = arena_strdup(&r->arena, http_param(req, 1));
	r->lang = arena_strdup(&r->arena, lang);
	r->rq.target = (struct transform_target){ .kind = TRANSFORM_TRANSLATE, .lang = r->lang };
	serve(req, r);
}

void api_reading_personalized(http_req *req, void *app_)
{
	struct app *app = app_;
	struct principal p;
	struct err e = { 0 };
	int64_t at;
	if (api_principal(req, app, &p))
		return;
	if (p.kind == P_ANON) {
		http_respond_error(req, 401, "unauthorized", "sign in to read a personalised chapter", NULL);
		return;
	}
	struct read *r = read_new(app);
	if (!r) {
		http_respond_error(req, 500, "internal", "out of memory", NULL);
		return;
	}
	if (book_param(req, r->book_id)) {
		read_unref(r);
		return;
	}
	r->chapter = arena_strdup(&r->arena, http_param(req, 1));
	if (p.user_id[0] && prefs_get(app->db, p.user_id, &r->profile, &at, &e)) {
		read_unref(r);
		api_fail(req, &e);
		return;
	}
	if (!r->profile)
		r->profile = json_object();
	r->rq.target = (struct transform_target){ .kind = TRANSFORM_PERSONALIZE, .profile = r->profile };
	serve(req, r);
}

void api_reading_put_translation(http_req *req, void *app_)
{
	struct app *app = app_;
	const char *book_id = http_param(req, 0), *chapter = http_param(req, 1), *lang;
	struct principal p;
	struct err e = { 0 };
	json_t *o = NULL;
	struct transform_human_section *secs = NULL;
	int nsecs = 0, stored = 0;
	if (api_require_book_write(req, app, book_id, &p) || lang_param(req, 2, &lang) || api_read_object(req, &o))
		goto out;
	json_t *whole = json_object_get(o, "content_markdown"), *arr = json_object_get(o, "sections");
	if (whole && !json_is_string(whole))
		err_field(&e, "content_markdown", "must be a string");
	else if (!whole && !json_is_array(arr))
		err_field(&e, "content_markdown", "give content_markdown or sections");
	else if (!whole && (json_array_size(arr) == 0 || json_array_size(arr) > HUMAN_MAX_SECTIONS))
		err_field(&e, "sections", "must hold 1 to %d sections", HUMAN_MAX_SECTIONS);
	if (!e.ndetails && !whole) {
		secs = arena_alloc(http_arena(req), sizeof(*secs) * json_array_size(arr));
		for (size_t i = 0; secs && i < json_array_size(arr); i++) {
			json_t *s = json_array_get(arr, i);
			const char *anchor = json_string_value(json_object_get(s, "anchor"));
			json_t *c = json_object_get(s, "content_markdown");
			if (!anchor || !json_is_string(c)) {
				err_field(&e, "sections", "each needs anchor and content_markdown strings");
				break;
			}
			secs[nsecs++] = (struct transform_human_section){ anchor, json_string_value(c),
									  json_string_length(c) };
		}
	}
	if (e.ndetails) {
		api_fail(req, &e);
		goto out;
	}
	if (transform_put_human(app->transform, http_arena(req), book_id, chapter, lang,
				whole ? json_string_value(whole) : NULL, whole ? json_string_length(whole) : 0, secs,
				nsecs, p.user_id[0] ? p.user_id : NULL, &stored, &e)) {
		api_fail(req, &e);
		goto out;
	}
	api_json(req, 200, json_pack("{s:s, s:s, s:s, s:i, s:s}", "book_id", book_id, "chapter", chapter, "language",
				     lang, "sections_stored", stored, "origin", "human"));
out:
	json_decref(o);
}

void api_reading_refresh(http_req *req, void *app_)
{
	struct app *app = app_;
	const char *book_id = http_param(req, 0), *chapter = http_param(req, 1), *lang, *anchor = http_param(req, 3);
	struct principal p;
	struct err e = { 0 };
	struct transform_section s;
	if (api_require_book_write(req, app, book_id, &p) || lang_param(req, 2, &lang))
		return;
	struct transform_target tg = { .kind = TRANSFORM_TRANSLATE, .lang = lang };
	if (transform_refresh(app->transform, http_arena(req), book_id, chapter, &tg, anchor, &s, &e)) {
		api_fail(req, &e);
		return;
	}
	api_json(req, 200, section_json(0, &s));
}

void api_reading_translate_book(http_req *req, void *app_)
{
	struct app *app = app_;
	const char *book_id = http_param(req, 0), *lang;
	struct principal p;
	struct user u;
	struct err e = { 0 };
	struct book b;
	const char *idem;
	if (api_require_book_write(req, app, book_id, &p) || api_user_of(req, app, &p, &u) ||
	    lang_param(req, 1, &lang) || api_idempotency_key(req, &idem))
		return;
	if (books_get(app->db, http_arena(req), book_id, &b, &e)) {
		api_fail(req, &e);
		return;
	}
	if (!transform_has_model(app->transform)) {
		http_respond_error(req, 404, "translation_unavailable",
				   "no language model is configured to translate the book", NULL);
		return;
	}
	json_t *payload = json_pack("{s:s, s:s}", "book_id", book_id, "lang", lang);
	struct job j;
	int existing;
	int rc = jobs_submit(app->jobs, http_arena(req), u.id, "book.translate", payload, idem, &j, &existing, &e);
	json_decref(payload);
	if (rc)
		api_fail(req, &e);
	else
		api_job_accepted(req, &j, existing);
}

void api_reading_glossary_get(http_req *req, void *app_)
{
	struct app *app = app_;
	struct principal p;
	struct err e = { 0 };
	json_t *out;
	char book_id[UUID_STR_LEN];
	if (api_principal(req, app, &p) || book_param(req, book_id))
		return;
	if (transform_glossary_get(app->transform, book_id, &out, &e))
		api_fail(req, &e);
	else
		api_json(req, 200, out);
}

void api_reading_glossary_put(http_req *req, void *app_)
{
	struct app *app = app_;
	const char *book_id = http_param(req, 0);
	struct principal p;
	struct err e = { 0 };
	json_t *o = NULL, *out;
	if (api_require_book_write(req, app, book_id, &p) || api_read_object(req, &o))
		goto done;
	if (transform_glossary_put(app->transform, book_id, json_object_get(o, "terms"), &out, &e))
		api_fail(req, &e);
	else
		api_json(req, 200, out);
done:
	json_decref(o);
}
