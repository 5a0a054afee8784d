/*
 * The BookBytes pipeline's routes: queue a book for processing, list the
 * voices, and read a chapter's audio (Range requests on local storage, a
 * redirect to a presigned URL on S3) and its word timings (JSON, or WebVTT
 * for a browser's <track>).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/buf.h"
#include "../core/json.h"
#include "../core/log.h"
#include "../http/server.h"
#include "../http/site.h"
#include "../services/books.h"
#include "../services/isbn.h"
#include "../services/jobs.h"
#include "../services/pipeline.h"
#include "api.h"


void api_books_process(http_req *req, void *app_)
{
	struct app *app = app_;
	struct principal p;
	struct user u;
	struct err e = { 0 };
	json_t *body = NULL;
	const char *isbn = NULL, *voice = NULL, *idem;
	int narrate = 0;
	struct isbn parsed;
	if (api_require_book_write(req, app, NULL, &p) || api_user_of(req, app, &p, &u) ||
	    api_idempotency_key(req, &idem) || api_read_object(req, &body))
		goto out;
	int has_isbn = jget_str(body, "isbn", J_REQUIRED, 1, 64, &isbn, &e);
	jget_str(body, "voice", J_OPTIONAL, 1, 64, &voice, &e);
	jget_bool(body, "narrate", J_OPTIONAL, &narrate, &e);
	char why[sizeof(e.msg)] = "";
	if (has_isbn == 1) {
		struct err ie = { 0 };
		if (isbn_parse(isbn, &parsed, &ie)) {
			err_field(&e, "isbn", "%s", ie.msg);
			snprintf(why, sizeof(why), "isbn: %.200s", ie.msg);
		}
	}
	if (voice && !pipeline_resolve_voice(app->tts, voice)) {
		err_field(&e, "voice", "unknown voice \"%s\": GET /api/v1/voices lists the voices there are", voice);
		if (!why[0])
			snprintf(why, sizeof(why), "unknown voice \"%s\": GET /api/v1/voices lists the voices there are",
				 voice);
	}
	if (e.code) {
		if (why[0])
			snprintf(e.msg, sizeof(e.msg), "%s", why);
		api_fail(req, &e);
		goto out;
	}
	struct pipeline_request r = { .isbn13 = parsed.isbn13,
				      .isbn = parsed.digits,
				      .voice = voice ? pipeline_resolve_voice(app->tts, voice) : NULL,
				      .narrate = narrate };
	struct job j;
	int existing;
	if (pipeline_submit(app->jobs, app->db, http_arena(req), u.id, &r, idem, &j, &existing, &e))
		api_fail(req, &e);
	else
		api_job_accepted(req, &j, existing);
out:
	json_decref(body);
}

void api_voices(http_req *req, void *app_)
{
	struct app *app = app_;
	json_t *arr;
	struct err e = { 0 };
	if (pipeline_voices_json(app->tts, &arr, &e)) {
		api_fail(req, &e);
		return;
	}
	api_json(req, 200, json_pack("{s:o}", "voices", arr));
}

/* The chapter (param 1) of the book (param 0) and which audio (?kind=). */
static int audio_target(http_req *req, struct app *app, struct chapter_media *m, enum media_kind *kind)
{
	const char *book_id = http_param(req, 0), *k = http_query(req, "kind");
	struct err e = { 0 };
	*kind = MEDIA_SUMMARY;
	if (k && !strcmp(k, "chapter"))
		*kind = MEDIA_CHAPTER;
	else if (k && strcmp(k, "summary"))
		err_field(&e, "kind", "must be summary or chapter");
	if (!e.code && !uuid_valid(book_id, strlen(book_id)))
		err_set(&e, ERR_NOT_FOUND, "book not found");
	if (!e.code)
		(void)!pipeline_chapter_media(app->db, http_arena(req), book_id, http_param(req, 1), m, &e);
	if (!e.code && !m->audio_key[*kind])
		err_set(&e, ERR_NOT_FOUND,
			"chapter %" PRId64 " has no %s audio yet: POST /api/v1/books/process makes it%s", m->number,
			*kind == MEDIA_SUMMARY ? "summary" : "chapter",
			*kind == MEDIA_CHAPTER ? " (with \"narrate\": true)" : "");
	if (e.code)
		api_fail(req, &e);
	return e.code ? -1 : 0;
}

static int etag_listed(const char *inm, const char *etag)
{
	return inm && (strstr(inm, etag) != NULL || !strcmp(inm, "*"));
}

static void send_audio_fd(http_req *req, int fd, const struct pipeline_audio *bi)
{
	uint64_t size = (uint64_t)bi->size, first = 0, last = size ? size - 1 : 0;
	char crange[96];
	int status = 200, ranged = 0;
	http_set_header(req, "Accept-Ranges", "bytes");
	http_set_header(req, "ETag", bi->etag);
	http_set_header(req, "Cache-Control", "no-cache");
	if (etag_listed(http_header(req, "If-None-Match"), bi->etag)) {
		close(fd);
		http_respond_empty(req, 304);
		return;
	}
	const char *range = http_header(req, "Range"), *ir = http_header(req, "If-Range");
	if (range && (!ir || !strcmp(ir, bi->etag)))
		ranged = site_parse_range(range, size, &first, &last);
	if (ranged < 0) {
		close(fd);
		snprintf(crange, sizeof(crange), "bytes */%" PRIu64, size);
		http_respond_error(req, 416, "range_not_satisfiable", "the range is outside the audio file", NULL);
		http_set_header(req, "Content-Range", crange);
		return;
	}
	if (ranged) {
		status = 206;
		snprintf(crange, sizeof(crange), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, first, last, size);
	}
	if (size == 0) {
		close(fd);
		http_respond(req, status, "audio/mpeg", "", 0);
	} else {
		http_respond_fd(req, status, "audio/mpeg", fd, first, last - first + 1);
	}
	if (ranged)
		http_set_header(req, "Content-Range", crange);
}

void api_chapter_audio(http_req *req, void *app_)
{
	struct app *app = app_;
	struct chapter_media m;
	enum media_kind kind;
	struct pipeline_audio au;
	struct err e = { 0 };
	if (audio_target(req, app, &m, &kind))
		return;
	if (pipeline_audio_open(app->blob, http_arena(req), http_param(req, 0), &m, kind, app->cfg->s3_presign_seconds,
				&au, &e)) {
		api_fail(req, &e);
		return;
	}
	if (au.fd >= 0) {
		send_audio_fd(req, au.fd, &au);
		return;
	}
	http_set_header(req, "Location", au.url);
	http_set_header(req, "Cache-Control", "no-store");
	http_respond_empty(req, 302);
}

static void vtt_time(struct buf *b, int64_t ms, int *ok)
{
	if (ms < 0)
		ms = 0;
	*ok &= buf_printf(b, "%02" PRId64 ":%02" PRId64 ":%02" PRId64 ".%03" PRId64, ms / 3600000,
			  (ms / 60000) % 60, (ms / 1000) % 60, ms % 1000) == 0;
}

/* One cue per word, so a player can highlight the word being spoken. */
static char *timings_vtt(json_t *arr, size_t *len)
{
	struct buf b;
	int ok = 1;
	buf_init(&b, (size_t)PIPELINE_TIMINGS_MAX * 2);
	ok &= buf_puts(&b, "WEBVTT\n\n") == 0;
	size_t i;
	json_t *w;
	json_array_foreach(arr, i, w)
	{
		const char *word = json_string_value(json_object_get(w, "word"));
		ok &= buf_printf(&b, "%zu\n", i + 1) == 0;
		vtt_time(&b, json_integer_value(json_object_get(w, "start_ms")), &ok);
		ok &= buf_puts(&b, " --> ") == 0;
		vtt_time(&b, json_integer_value(json_object_get(w, "end_ms")), &ok);
		ok &= buf_printf(&b, "\n%s\n\n", word ? word : "") == 0;
	}
	*len = b.n;
	if (!ok) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b);
}

void api_chapter_timings(http_req *req, void *app_)
{
	struct app *app = app_;
	struct chapter_media m;
	enum media_kind kind;
	struct err e = { 0 };
	char etag[80], *data = NULL;
	size_t got = 0;
	if (audio_target(req, app, &m, &kind))
		return;
	if (pipeline_timings_read(app->blob, http_param(req, 0), &m, kind, &data, &got, etag, &e)) {
		api_fail(req, &e);
		return;
	}
	const char *accept = http_header(req, "Accept");
	http_set_header(req, "ETag", etag);
	http_set_header(req, "Cache-Control", "no-cache");
	if (accept && strstr(accept, "text/vtt")) {
		json_t *arr = json_loadb(data, got, 0, NULL);
		size_t len = 0;
		char *vtt = json_is_array(arr) ? timings_vtt(arr, &len) : NULL;
		json_decref(arr);
		free(data);
		if (!vtt) {
			err_set(&e, ERR_INTERNAL, "cannot read the timings");
			api_fail(req, &e);
			return;
		}
		http_respond_owned(req, 200, "text/vtt; charset=utf-8", vtt, len);
		return;
	}
	http_respond_owned(req, 200, "application/json", data, got);
}

void api_books_delete_all(http_req *req, void *app_)
{
	struct app *app = app_;
	const char *book_id = http_param(req, 0);
	struct book b;
	struct err e = { 0 };
	char id[UUID_STR_LEN] = "";
	if (uuid_valid(book_id, strlen(book_id)) && books_get(app->db, http_arena(req), book_id, &b, &e) == 0)
		snprintf(id, sizeof(id), "%s", b.id);
	api_books_delete(req, app_);
	err_clear(&e);
	if (!id[0] || books_get(app->db, http_arena(req), id, &b, &e) != ERR_NOT_FOUND)
		return;
	struct err de = { 0 };
	if (pipeline_delete_files(app->blob, id, &de))
		log_warn("book %s deleted, but not all of its files: %s", book_id, de.msg);
}
