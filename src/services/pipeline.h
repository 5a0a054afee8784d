/*
 * The BookBytes pipeline: from an ISBN to chapters read aloud, as the
 * durable job `book.process` (steps metadata, chapters, summaries, audio).
 *
 * Checkpoints are per chapter and live on the chapter rows themselves
 * (store_media.h): a summary records the revision it summarises, an audio
 * file the signature of the text and voice it speaks. A step that is run
 * again — after a retry, a restart or a kill -9 — skips every chapter whose
 * record matches, so it resumes at the next unfinished chapter and never
 * synthesises a finished one twice; a cancelled job leaves the chapters it
 * finished playable. Each committed synthesis counts on its chapter
 * (`syntheses`), which the job's result reports.
 */
#ifndef BOOKD_PIPELINE_H
#define BOOKD_PIPELINE_H

#include <jansson.h>

#include "../store/store_jobs.h"
#include "../store/store_media.h"
#include "jobs.h"

struct blob_store;

struct pipeline_request {
	const char *isbn13; /* validated */
	const char *isbn;   /* as given (digits) */
	const char *voice;  /* NULL: the default, else the book's language */
	int narrate;	    /* also narrate whole chapters */
};

/* Queues book.process, or gives back the job already pending or running for
 * the same ISBN (or the same idempotency key): *existing is then 1. */
int pipeline_submit(struct jobs *j, db *d, struct arena *a, const char *owner, const struct pipeline_request *r,
		    const char *idempotency_key, struct job *out, int *existing, struct err *e) WUR;

/* The job handler's step function and step names. */
int pipeline_run(struct job_ctx *jc, struct err *e);
extern const char *const pipeline_steps[4];

/* The voice tts_speak takes for `want` ("en" -> "en-gb" when espeak-ng has
 * no plain "en"), or NULL when there is none. */
struct tts;
const char *pipeline_resolve_voice(struct tts *t, const char *want);

/* Storage keys of a chapter's audio and of its word timings. */
void pipeline_audio_key(char *out, size_t cap, const char *book_id, int64_t number, enum media_kind kind);
void pipeline_timings_key(char *out, size_t cap, const char *book_id, int64_t number, enum media_kind kind);
/* A chapter's pipeline columns (`ref`: id or number). */
int pipeline_chapter_media(db *d, struct arena *a, const char *book_id, const char *ref, struct chapter_media *out,
			   struct err *e) WUR;
/* Removes every stored file of a book. */
int pipeline_delete_files(struct blob_store *b, const char *book_id, struct err *e) WUR;

/* The voices there are, as [{name, language, label}]; ERR_UNAVAILABLE
 * without speech. */
int pipeline_voices_json(struct tts *t, json_t **out, struct err *e) WUR;

/* A chapter's stored audio: an open fd (local storage; the caller closes it)
 * with its size and ETag, or, where storage cannot give one (S3), a
 * presigned URL valid for `presign_s` in `url` (from `a`) and fd -1. */
struct pipeline_audio {
	int fd;
	int64_t size;
	char etag[80];
	char *url;
};
int pipeline_audio_open(struct blob_store *b, struct arena *a, const char *book_id, const struct chapter_media *m,
			enum media_kind kind, int presign_s, struct pipeline_audio *out, struct err *e) WUR;

/* The word timings stored beside a chapter's audio (JSON text, malloc'ed,
 * at most PIPELINE_TIMINGS_MAX bytes) and their ETag. */
#define PIPELINE_TIMINGS_MAX (16 << 20)
int pipeline_timings_read(struct blob_store *b, const char *book_id, const struct chapter_media *m,
			  enum media_kind kind, char **data, size_t *n, char etag[80], struct err *e) WUR;

#endif
