/*
 * What the BookBytes pipeline keeps on a chapter row: its summary's source
 * and revision, and per kind of audio (the summary read aloud, the whole
 * chapter narrated) the storage key, length, the signature of the text that
 * was spoken and a count of committed syntheses. The SQL for those columns;
 * strings in results are allocated from the caller's arena.
 */
#ifndef BOOKD_STORE_MEDIA_H
#define BOOKD_STORE_MEDIA_H

#include "../core/arena.h"
#include "../core/uuid.h"
#include "db.h"

enum media_kind { MEDIA_SUMMARY = 0, MEDIA_CHAPTER = 1 };

struct chapter_media {
	char id[UUID_STR_LEN];
	int64_t number, rev;
	char *title;
	char *summary, *summary_source;
	int64_t summary_rev; /* the revision the summary was made for (0: none) */
	char *audio_key[2];  /* by enum media_kind; NULL: none */
	int64_t audio_ms[2];
	char *audio_sig[2];
	char *voice;
	int64_t syntheses;
};

/* `ref` is a chapter id or number; ERR_NOT_FOUND. */
int store_media_get(db_conn *c, struct arena *a, const char *book_id, const char *ref, struct chapter_media *out,
		    struct err *e) WUR;
/* Every chapter of a book, by number. */
int store_media_all(db_conn *c, struct arena *a, const char *book_id, struct chapter_media **items, int *n,
		    struct err *e) WUR;
/* Sets the summary and its source; a new revision, which the summary is for. */
int store_media_set_summary(db_conn *c, const char *chapter_id, const char *summary, const char *source,
			    int64_t now, struct err *e) WUR;
/* Records a committed synthesis of `kind`; a new revision (the summary, if
 * it was current, stays current). audio_url: the chapter's public audio URL. */
int store_media_set_audio(db_conn *c, const char *chapter_id, enum media_kind kind, const char *key, int64_t ms,
			  const char *sig, const char *voice, const char *audio_url, int64_t now,
			  struct err *e) WUR;
/* A book.process job for this ISBN-13 still pending or running, into id;
 * ERR_NOT_FOUND when there is none. */
int store_media_active_job(db_conn *c, const char *isbn13, char id[UUID_STR_LEN], struct err *e) WUR;

#endif
