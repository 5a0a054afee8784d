/*
 * The reading routes existing book sites call, over the transformation
 * service (services/transform.c) and its section cache:
 *
 *   POST /api/translate            {text | content, chapter_id?, target_lang | target_language}
 *                                  → {translated_text, translated_content, success, metadata}
 *   POST /api/personalize,         {content, chapter_id?, title?, context?}
 *        /api/content/personalize  → {personalized_content, success, metadata}
 *   GET  /api/content/chapters/{doc id}
 *                                  the chapter a Docusaurus doc id names ("module-1/chapter-1",
 *                                  up to four segments; ?book= when several books have it):
 *                                  its Markdown with Accept: text/markdown, else
 *                                  {id, title, content, content_markdown, book_id, number}
 *
 * When chapter_id names a chapter (its id or doc id, or its number in the
 * book chosen as the chat routes choose it: book_id, ?book=, then
 * BOOKD_DEFAULT_BOOK) and the text is that chapter's Markdown or one of its
 * sections (white space around ignored), it is served by
 * transform_chapter_text: the same section cache, human translations and
 * single-flight as GET …/translated/{lang} and …/personalized, so what one
 * route computed the other serves without a model call. Any other text is
 * one section's worth for the service, cached by its hash, and counts
 * against BOOKD_TRANSFORM_TEXT_PER_MINUTE per caller (the user, else the
 * address; the master key is not limited). Text over COMPAT_TEXT_MAX bytes
 * is 413; anonymous callers are also held to the chat's limit per address.
 * Failures keep the clients' shape: `success: false` and an error object
 * (429 with Retry-After); without a model, translation answers 503
 * `translation_unavailable` and personalisation keeps the author's audience
 * blocks for the reader. The work runs on the chat executor (it waits on
 * models).
 */
#include <stdio.h>
#include <string.h>

#include "../core/buf.h"
#include "../core/json.h"
#include "../core/mem.h"
#include "../core/timeutil.h"
#include "../core/uuid.h"
#include "../http/server.h"
#include "../services/books.h"
#include "../services/preferences.h"
#include "../services/ratelimit.h"
#include "../services/sections.h"
#include "../services/transform.h"
#include "api.h"

#define COMPAT_TEXT_MAX (32 * 1024)

struct xform {
	struct app *app;
	struct arena arena;
	enum transform_kind kind;
	char lang[40];
	json_t *profile;
	char *text, *chapter_id;
	size_t len;
	char ref[256];		     /* the chapter asked for ("" for none) */
	char book[UUID_STR_LEN];     /* the book the request names ("" for none) */
	char limit_key[200];	     /* the caller for the text limit ("" for none) */
	char *out;
	size_t outn;
	int fallback, cached, retry, rc;
	struct err e;
};

static void xform_free(struct xform *x)
{
	json_decref(x->profile);
	arena_free(&x->arena);
	xfree(x);
}

static void fail_shape(http_req *req, int status, const char *code, const char *message)
{
	json_t *o = json_pack("{s:b, s:{s:s, s:s}}", "success", 0, "error", "code", code, "message", message);
	api_json(req, status, o);
}

static void fail_err(http_req *req, const struct err *e)
{
	switch (e->code) {
	case ERR_TOO_LARGE: fail_shape(req, 413, "payload_too_large", e->msg); break;
	case ERR_INVALID: fail_shape(req, 422, "validation_error", e->msg); break;
	case ERR_NOT_FOUND: fail_shape(req, 404, "not_found", e->msg); break;
	case ERR_UNAVAILABLE: fail_shape(req, 503, "unavailable", e->msg); break;
	case ERR_RATE_LIMITED: fail_shape(req, 429, "rate_limited", e->msg); break;
	default: fail_shape(req, 500, "internal", e->msg); break;
	}
}

static int all_digits(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

/* The chapter's text served from its sections: 0 with *matched, or an error
 * to answer. A chapter that cannot be found is no match. */
static int from_chapter(struct xform *x, const struct transform_target *tg, int *matched)
{
	struct app *app = x->app;
	const char *dflt = app->cfg->default_book;
	dflt = dflt && uuid_valid(dflt, strlen(dflt)) ? dflt : NULL;
	char book_id[UUID_STR_LEN], chapter_id[UUID_STR_LEN];
	struct transform_request rq = { .book_id = book_id, .chapter = chapter_id, .target = *tg };
	int rc = 0;
	*matched = 0;
	if (!x->ref[0])
		return 0;
	if (all_digits(x->ref)) {
		rq.book_id = x->book[0] ? x->book : dflt;
		rq.chapter = x->ref;
		if (!rq.book_id)
			return 0;
	} else {
		rc = chapters_by_doc_id(app->db, &x->arena, x->ref, x->book[0] ? x->book : NULL, dflt, book_id,
					chapter_id, &x->e);
	}
	if (rc == 0)
		rc = transform_chapter_text(app->transform, &x->arena, &rq, x->text, x->len, &x->out, &x->outn,
					    &x->fallback, &x->cached, matched, &x->e);
	if (rc == ERR_NOT_FOUND || rc == ERR_CONFLICT || rc == ERR_INVALID) {
		err_clear(&x->e);
		*matched = 0;
		return 0;
	}
	return rc;
}

static void run(void *ctx)
{
	struct xform *x = ctx;
	struct transform_target tg = { .kind = x->kind, .lang = x->lang, .profile = x->profile };
	int matched;
	x->rc = from_chapter(x, &tg, &matched);
	if (x->rc || matched)
		return;
	if (x->limit_key[0] &&
	    ratelimit_hit(x->app->text_limit, x->limit_key, 1, time_now_ms(), &x->retry)) {
		x->rc = err_set(&x->e, ERR_RATE_LIMITED, "too many texts to transform; try again in %d s", x->retry);
		return;
	}
	if (x->kind == TRANSFORM_PERSONALIZE && !transform_has_model(x->app->transform)) {
		/* No model: the author's audience blocks for the reader's profile. */
		struct audience who = {
			json_string_value(json_object_get(x->profile, "experience_level")),
			json_string_value(json_object_get(x->profile, "software_background")),
			json_string_value(json_object_get(x->profile, "hardware_background")),
		};
		int blocks;
		x->rc = audience_select(&x->arena, x->text, x->len, &who, &x->out, &x->outn, &blocks, &x->e);
		return;
	}
	x->rc = transform_text(x->app->transform, &x->arena, NULL, x->text, x->len, &tg, &x->out, &x->outn,
			       &x->fallback, &x->cached, &x->e);
}

static void rate_limited(http_req *req, int retry, const char *message)
{
	char ra[16];
	snprintf(ra, sizeof(ra), "%d", retry);
	http_set_header(req, "Retry-After", ra);
	fail_shape(req, 429, "rate_limited", message);
}

static void done(http_req *req, void *app)
{
	struct xform *x = http_defer_ctx(req);
	if (x->rc == ERR_RATE_LIMITED) {
		rate_limited(req, x->retry, x->e.msg);
		xform_free(x);
		return;
	}
	if (x->rc) {
		fail_err(req, &x->e);
		xform_free(x);
		return;
	}
	json_t *text = json_stringn(x->out ? x->out : "", x->out ? x->outn : 0);
	json_t *meta = json_pack("{s:b, s:b, s:i, s:s?}", "cached", x->cached, "fallback", x->fallback,
				 "source_length", (json_int_t)x->len, "chapter_id", x->chapter_id);
	json_t *o;
	if (x->kind == TRANSFORM_TRANSLATE) {
		json_object_set_new(meta, "target_language", json_string(x->lang));
		json_object_set_new(meta, "direction", json_string(transform_direction(x->lang)));
		o = json_pack("{s:O, s:o, s:b, s:o}", "translated_text", text, "translated_content", text, "success", 1,
			      "metadata", meta);
	} else {
		json_object_set_new(meta, "method",
				    json_string(transform_has_model(x->app->transform) ? "llm" : "audience_blocks"));
		o = json_pack("{s:o, s:b, s:o}", "personalized_content", text, "success", 1, "metadata", meta);
	}
	api_json(req, 200, o);
	xform_free(x);
}

/* The caller, with anonymous ones limited per address; -1 when answered. */
static int admit(http_req *req, struct app *app, struct principal *p)
{
	if (api_principal(req, app, p))
		return -1;
	int retry;
	if (p->kind == P_ANON && ratelimit_hit(app->chat_limit, http_client_limit_key(req), 1, time_now_ms(), &retry)) {
		rate_limited(req, retry, "too many requests from this address; try again later");
		return -1;
	}
	return 0;
}

/* Whom the text limit counts: the user, the key, or the address. */
static void limit_key(http_req *req, const struct principal *p, char *out, size_t n)
{
	if (p->user_id[0])
		snprintf(out, n, "user:%s", p->user_id);
	else if (p->kind == P_KEY)
		snprintf(out, n, "key:%s", p->key_id);
	else if (p->kind == P_ANON)
		snprintf(out, n, "addr:%s", http_client_limit_key(req));
	else
		out[0] = 0;
}

static const char *first_str(json_t *o, const char *a, const char *b)
{
	const char *s = json_string_value(json_object_get(o, a));
	return s ? s : (b ? json_string_value(json_object_get(o, b)) : NULL);
}

static void start(http_req *req, struct app *app, struct xform *x, const struct principal *p, json_t *body,
		  const char *text)
{
	struct err e = { 0 };
	if (!text || !*text) {
		fail_shape(req, 422, "validation_error", x->kind == TRANSFORM_TRANSLATE ? "text is required"
										 : "content is required");
		goto drop;
	}
	x->len = strlen(text);
	if (x->len > COMPAT_TEXT_MAX) {
		err_set(&e, ERR_TOO_LARGE, "the text is over %d KiB", COMPAT_TEXT_MAX / 1024);
		fail_err(req, &e);
		goto drop;
	}
	x->text = arena_strndup(&x->arena, text, x->len);
	json_t *chv = json_object_get(body, "chapter_id");
	const char *ch = json_string_value(chv);
	x->chapter_id = ch ? arena_strdup(&x->arena, ch) : NULL;
	if (ch && strlen(ch) < sizeof(x->ref))
		snprintf(x->ref, sizeof(x->ref), "%s", ch);
	else if (json_is_integer(chv) && json_integer_value(chv) >= 0)
		snprintf(x->ref, sizeof(x->ref), "%" JSON_INTEGER_FORMAT, json_integer_value(chv));
	const char *bk = json_string_value(json_object_get(body, "book_id"));
	bk = bk && uuid_valid(bk, strlen(bk)) ? bk : http_query(req, "book");
	if (bk && uuid_valid(bk, strlen(bk)))
		snprintf(x->book, sizeof(x->book), "%s", bk);
	limit_key(req, p, x->limit_key, sizeof(x->limit_key));
	json_decref(body);
	if (!x->text || (ch && !x->chapter_id)) {
		fail_shape(req, 500, "internal", "out of memory");
		xform_free(x);
		return;
	}
	if (http_defer(req, app->chat_exec, run, done, x)) {
		fail_shape(req, 503, "unavailable", "too many requests in progress; try again shortly");
		xform_free(x);
	}
	return;
drop:
	json_decref(body);
	xform_free(x);
}

static struct xform *xform_new(http_req *req, struct app *app, enum transform_kind kind)
{
	struct xform *x = xcalloc(1, sizeof(*x));
	if (!x) {
		fail_shape(req, 500, "internal", "out of memory");
		return NULL;
	}
	x->app = app;
	x->kind = kind;
	arena_init(&x->arena, 16384);
	return x;
}

void api_compat_translate(http_req *req, void *app_)
{
	struct app *app = app_;
	struct principal p;
	json_t *body;
	if (admit(req, app, &p) || api_read_object(req, &body))
		return;
	const char *lang = first_str(body, "target_lang", "target_language");
	if (!lang)
		lang = "ur";
	if (!books_language_valid(lang)) {
		json_decref(body);
		fail_shape(req, 422, "validation_error", "target_lang must be a BCP 47 language tag such as ur");
		return;
	}
	if (!transform_has_model(app->transform)) {
		json_decref(body);
		fail_shape(req, 503, "translation_unavailable", "no language model is configured to translate");
		return;
	}
	struct xform *x = xform_new(req, app, TRANSFORM_TRANSLATE);
	if (!x) {
		json_decref(body);
		return;
	}
	snprintf(x->lang, sizeof(x->lang), "%s", lang);
	start(req, app, x, &p, body, first_str(body, "text", "content"));
}

void api_compat_personalize(http_req *req, void *app_)
{
	struct app *app = app_;
	struct principal p;
	json_t *body;
	struct err e = { 0 };
	int64_t at;
	if (admit(req, app, &p) || api_read_object(req, &body))
		return;
	struct xform *x = xform_new(req, app, TRANSFORM_PERSONALIZE);
	if (!x) {
		json_decref(body);
		return;
	}
	if (p.user_id[0] && prefs_get(app->db, p.user_id, &x->profile, &at, &e)) {
		json_decref(body);
		xform_free(x);
		fail_err(req, &e);
		return;
	}
	if (!x->profile)
		x->profile = json_object();
	start(req, app, x, &p, body, first_str(body, "content", "text"));
}

/* ---- chapters by doc id ---------------------------------------------------------- */

void api_compat_content_chapter(http_req *req, void *app_)
{
	struct app *app = app_;
	struct arena *a = http_arena(req);
	struct err e = { 0 };
	struct buf id;
	buf_init(&id, 4096);
	int rc = 0;
	for (int i = 0; !rc && http_param(req, i); i++)
		rc = buf_printf(&id, "%s%s", i ? "/" : "", http_param(req, i));
	char *doc = rc ? NULL : arena_strndup(a, id.p ? id.p : "", id.n);
	buf_free(&id);
	if (!doc) {
		err_set(&e, ERR_INTERNAL, "out of memory");
		api_fail(req, &e);
		return;
	}
	const char *book = http_query(req, "book");
	char book_id[UUID_STR_LEN], chapter_id[UUID_STR_LEN];
	struct chapter ch;
	if (chapters_by_doc_id(app->db, a, doc, book && *book ? book : NULL, app->cfg->default_book, book_id,
			       chapter_id, &e) ||
	    chapters_get(app->db, a, book_id, chapter_id, &ch, &e)) {
		api_fail(req, &e);
		return;
	}
	const char *md = ch.content_markdown ? ch.content_markdown : "";
	size_t mdn = ch.content_markdown ? ch.content_len : 0;
	const char *accept = http_header(req, "Accept");
	http_set_header(req, "Vary", "Accept");
	if (accept && strstr(accept, "text/markdown")) {
		http_respond(req, 200, "text/markdown; charset=utf-8", md, mdn);
		return;
	}
	json_t *o = json_pack("{s:s, s:s, s:s%, s:s%, s:s, s:I}", "id", ch.id, "title", ch.title ? ch.title : "",
			      "content", md, mdn, "content_markdown", md, mdn, "book_id", ch.book_id, "number",
			      (json_int_t)ch.number);
	if (!o) {
		err_set(&e, ERR_INTERNAL, "out of memory");
		api_fail(req, &e);
		return;
	}
	api_json(req, 200, o);
}
