#include "store_media.h"
#include "store_books.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MEDIA_COLS                                                                                         \
	"id, number, rev, title, summary, summary_source, summary_rev, summary_audio_key, summary_audio_ms, " \
	"summary_audio_sig, chapter_audio_key, chapter_audio_ms, chapter_audio_sig, audio_voice, syntheses"

struct media_out {
	struct arena *a;
	struct chapter_media *items;
	int n, cap, found;
};

static void media_row(const db_row *r, struct arena *a, struct chapter_media *m)
{
	memset(m, 0, sizeof(*m));
	db_row_copy(r, 0, m->id, sizeof(m->id));
	m->number = db_row_int(r, 1);
	m->rev = db_row_int(r, 2);
	m->title = db_row_dup(r, 3, a);
	m->summary = db_row_dup(r, 4, a);
	m->summary_source = db_row_dup(r, 5, a);
	m->summary_rev = db_row_int_or0(r, 6);
	for (int k = 0; k < 2; k++) {
		m->audio_key[k] = db_row_dup(r, 7 + 3 * k, a);
		m->audio_ms[k] = db_row_int_or0(r, 8 + 3 * k);
		m->audio_sig[k] = db_row_dup(r, 9 + 3 * k, a);
	}
	m->voice = db_row_dup(r, 13, a);
	m->syntheses = db_row_int_or0(r, 14);
}

static int one_cb(void *ctx, const db_row *r)
{
	struct media_out *o = ctx;
	media_row(r, o->a, o->items);
	o->found = 1;
	return 0;
}

static int all_cb(void *ctx, const db_row *r)
{
	struct media_out *o = ctx;
	struct chapter_media *items = arena_grow(o->a, o->items, o->n, &o->cap, sizeof(*items));
	if (!items)
		return ERR_INTERNAL;
	o->items = items;
	media_row(r, o->a, &items[o->n++]);
	return 0;
}

DB_STMT(media_by_number, "SELECT " MEDIA_COLS " FROM chapters WHERE book_id = $1 AND number = $2");
DB_STMT(media_by_id, "SELECT " MEDIA_COLS " FROM chapters WHERE book_id = $1 AND id = $2");
DB_STMT(media_all, "SELECT " MEDIA_COLS " FROM chapters WHERE book_id = $1 ORDER BY number");

int store_media_get(db_conn *c, struct arena *a, const char *book_id, const char *ref, struct chapter_media *out,
		    struct err *e)
{
	struct media_out o = { .a = a, .items = out };
	int64_t num;
	int rc;
	if (store_chapter_ref_number(ref, &num)) {
		struct db_val p[] = { dbv_text(book_id), dbv_int(num) };
		rc = db_run(c, &media_by_number, p, 2, one_cb, &o, NULL, e);
	} else {
		struct db_val p[] = { dbv_text(book_id), dbv_text(ref) };
		rc = db_run(c, &media_by_id, p, 2, one_cb, &o, NULL, e);
	}
	if (rc > 0)
		rc = err_set(e, ERR_INTERNAL, "out of memory");
	if (rc == 0 && !o.found)
		rc = err_set(e, ERR_NOT_FOUND, "chapter not found");
	return rc;
}

int store_media_all(db_conn *c, struct arena *a, const char *book_id, struct chapter_media **items, int *n,
		    struct err *e)
{
	struct media_out o = { .a = a };
	struct db_val p[] = { dbv_text(book_id) };
	int rc = db_run(c, &media_all, p, 1, all_cb, &o, NULL, e);
	if (rc > 0)
		rc = err_set(e, ERR_INTERNAL, "out of memory");
	*items = o.items;
	*n = rc ? 0 : o.n;
	return rc;
}

DB_STMT(media_set_summary, "UPDATE chapters SET summary = $2, summary_source = $3, rev = rev + 1, "
			   "summary_rev = rev + 1, updated_at = $4 WHERE id = $1");

int store_media_set_summary(db_conn *c, const char *chapter_id, const char *summary, const char *source,
			    int64_t now, struct err *e)
{
	struct db_val p[] = { dbv_text(chapter_id), dbv_text(summary), dbv_text(source), dbv_int(now) };
	int64_t changed = 0;
	int rc = db_run(c, &media_set_summary, p, 4, NULL, NULL, &changed, e);
	if (rc == 0 && !changed)
		rc = err_set(e, ERR_NOT_FOUND, "chapter not found");
	return rc;
}

DB_STMT(media_set_summary_audio,
	"UPDATE chapters SET summary_audio_key = $2, summary_audio_ms = $3, summary_audio_sig = $4, "
	"audio_voice = $5, audio_url = $6, syntheses = syntheses + 1, "
	"summary_rev = CASE WHEN summary_rev = rev THEN rev + 1 ELSE summary_rev END, rev = rev + 1, "
	"updated_at = $7 WHERE id = $1");
DB_STMT(media_set_chapter_audio,
	"UPDATE chapters SET chapter_audio_key = $2, chapter_audio_ms = $3, chapter_audio_sig = $4, "
	"audio_voice = $5, audio_url = coalesce(audio_url, $6), syntheses = syntheses + 1, "
	"summary_rev = CASE WHEN summary_rev = rev THEN rev + 1 ELSE summary_rev END, rev = rev + 1, "
	"updated_at = $7 WHERE id = $1");

int store_media_set_audio(db_conn *c, const char *chapter_id, enum media_kind kind, const char *key, int64_t ms,
			  const char *sig, const char *voice, const char *audio_url, int64_t now, struct err *e)
{
	struct db_val p[] = { dbv_text(chapter_id), dbv_text(key),   dbv_int(ms),  dbv_text(sig),
			      dbv_text(voice),	    dbv_text(audio_url), dbv_int(now) };
	int64_t changed = 0;
	int rc = db_run(c, kind == MEDIA_SUMMARY ? &media_set_summary_audio : &media_set_chapter_audio, p, 7, NULL,
			NULL, &changed, e);
	if (rc == 0 && !changed)
		rc = err_set(e, ERR_NOT_FOUND, "chapter not found");
	return rc;
}

struct id_out {
	char *id;
	int found;
};

static int id_cb(void *ctx, const db_row *r)
{
	struct id_out *o = ctx;
	db_row_copy(r, 0, o->id, UUID_STR_LEN);
	o->found = 1;
	return 1;
}

/* The payload is stored as compact JSON, so the ISBN appears as
 * "isbn13":"<13 digits>" exactly; digits hold no LIKE wildcard. */
DB_STMT(media_active_job, "SELECT id FROM jobs WHERE type = 'book.process' AND status IN ('pending', 'processing') "
			  "AND payload LIKE $1 ORDER BY created_at LIMIT 1");

int store_media_active_job(db_conn *c, const char *isbn13, char id[UUID_STR_LEN], struct err *e)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "%%\"isbn13\":\"%s\"%%", isbn13);
	struct id_out o = { id, 0 };
	struct db_val p[] = { dbv_text(pat) };
	int rc = db_run(c, &media_active_job, p, 1, id_cb, &o, NULL, e);
	if (rc > 0)
		rc = 0;
	if (rc == 0 && !o.found)
		rc = err_set(e, ERR_NOT_FOUND, "no job in progress");
	return rc;
}
