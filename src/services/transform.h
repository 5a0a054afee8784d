/*
 * Chapters for each reader: translated into a language, or rewritten for a
 * reader's profile, section by section (sections.h), cached, never broken.
 *
 * Each section goes to the model on its own, its structure protected by
 * md_protect (code, links, tags, admonitions, math, anchors, glossary terms
 * become placeholders) and checked by md_restore; a result that fails is
 * asked for again (TRANSFORM_TRIES in all), then the section is served in
 * its source text with `fallback` set and a reason, and nothing is cached.
 * Good results are cached by (sha-256 of the section's source, target, the
 * chain's first model, prompt version), so an edited chapter re-does only its
 * changed sections, and a second reader costs no model call.
 *
 * Single-flight: concurrent requests for the same missing key in this process
 * make one model call; the others wait (bounded by the request's deadline)
 * and share its outcome, failure included. Across nodes each node
 * single-flights on its own and the table's primary key makes the second
 * writer's insert a no-op: at most one call per node.
 *
 * Human translations (an editor's, per section anchor) always win over
 * machine output and are never overwritten by it; a human section whose
 * source has since changed is still served, marked `stale`.
 */
#ifndef BOOKD_TRANSFORM_H
#define BOOKD_TRANSFORM_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/arena.h"
#include "../core/err.h"
#include "../core/rcbuf.h"
#include "../core/stop.h"
#include "../store/db.h"

#define TRANSFORM_PROMPT_VERSION 1
#define TRANSFORM_TRIES 2 /* model calls per section when the output fails validation */
#define TRANSFORM_RENDERED_TTL_S 2 /* longest life of a rendered response (other nodes' editors) */

struct transform;
struct llm_chain;

struct transform_config {
	struct llm_chain *llm; /* NULL or no remote link: no machine output */
	int deadline_s;	       /* per model call (default 60) */
	struct stop *stop;     /* fired at shutdown: waits and calls end */
	size_t rendered_bytes; /* rendered responses kept in memory (0: none) */
};

int transform_new(struct transform **out, db *d, const struct transform_config *cfg, struct err *e) WUR;
void transform_free(struct transform *t);
/* 1 when a language model is configured (a remote link). */
int transform_has_model(const struct transform *t);
/* Provider calls made by this process (tests, bench, metrics). */
long transform_calls(const struct transform *t);

enum transform_kind { TRANSFORM_TRANSLATE, TRANSFORM_PERSONALIZE };

struct transform_target {
	enum transform_kind kind;
	const char *lang;      /* TRANSLATE: a BCP 47 tag (books_language_valid) */
	const json_t *profile; /* PERSONALIZE: the reader's preferences object (prefs_get) */
};

struct transform_section {
	const char *anchor, *heading;
	int level;
	const char *source; /* the section's Markdown in the chapter */
	size_t source_len;
	const char *text; /* what the reader gets */
	size_t text_len;
	const char *origin; /* "machine", "human", "source" (fallback or untransformed), "audience_blocks" */
	int cached;	    /* served from the cache (or a human translation) */
	int fallback;	    /* the source text, because the model's output failed */
	const char *reason; /* why, when fallback */
	int stale;	    /* human: the source changed since it was written */
};

/* Called as each section is ready: the ones ready at once (human, cached,
 * audience blocks) first, in chapter order, then the computed ones in
 * chapter order as each is done; `index` is the section's place (0..n-1).
 * Return non-zero to stop. Runs on the calling thread. */
typedef int (*transform_section_fn)(void *ctx, int index, const struct transform_section *s);

enum transform_flags {
	TRANSFORM_CACHED_ONLY = 1 << 0, /* never call the model: missing sections come back as source, fallback */
	TRANSFORM_NO_HUMAN = 1 << 1,	/* ignore human translations */
};

struct transform_request {
	const char *book_id;
	const char *chapter; /* id or number */
	struct transform_target target;
	unsigned flags;
	const char *anchor; /* NULL, or the one section to compute (the others come back as ready or as source) */
	transform_section_fn on_section; /* may be NULL */
	void *ctx;
	int (*cancelled)(void *ctx); /* may be NULL; polled, ends waits and model calls */
};

struct transform_result {
	char chapter_id[40];
	int64_t number;
	const char *title;
	const char *lang;      /* TRANSLATE */
	const char *direction; /* "ltr" | "rtl" */
	const char *method;    /* "llm", "human", "audience_blocks", "none" */
	struct transform_section *sections;
	int nsections;
	char *content; /* the sections' texts, concatenated */
	size_t content_len;
	long word_count;
	int misses;	 /* sections computed by a model call for this request */
	int unavailable; /* ERR_NOT_FOUND because nothing can translate: no model, no human translation */
};

/*
 * The chapter's sections for the target: human (translations), else cached,
 * else computed (unless TRANSFORM_CACHED_ONLY). Personalisation without a
 * model selects audience blocks (sections.h). Errors: ERR_NOT_FOUND (book or
 * chapter; or, translating, no model and no human translation: the message
 * says "translation_unavailable"), ERR_UNAVAILABLE (the model failed: nothing
 * cached; sections already delivered to on_section stand). All in `a`.
 */
int transform_chapter(struct transform *t, struct arena *a, const struct transform_request *rq,
		      struct transform_result *out, struct err *e) WUR;

/*
 * Rendered responses of whole chapters that were ready without a model call
 * (every section human, cached or as it is; no fallback), keyed by (chapter
 * id, revision, target: a language or a profile hash). An entry is good while
 * the chapter's revision holds, no editor's change (human translation,
 * section refresh, glossary) has been made by this process since its stamp
 * was read, and at most TRANSFORM_RENDERED_TTL_S, which bounds how long an
 * editor's change made on another node may go unseen here. Read the stamp
 * before reading what the response is made of, and put with it.
 */
uint64_t transform_rendered_stamp(struct transform *t);
/* A new reference (rcbuf_unref it), or NULL. */
struct rcbuf *transform_rendered_get(struct transform *t, const char *chapter_id, int64_t rev, const char *target);
void transform_rendered_put(struct transform *t, const char *chapter_id, int64_t rev, const char *target,
			    uint64_t stamp, struct rcbuf *body);

/*
 * Text a caller holds that may be the chapter's (rq->book_id, rq->chapter):
 * its whole Markdown or one of its sections, the white space around either
 * ignored. Then it is served by transform_chapter (the section cache, human
 * translations, single-flight; a section alone computes only itself) and
 * *matched is 1: *out the chapter's or the section's text, *fallback when a
 * section of it is its source for a failed output, *cached when no model was
 * called. Else *matched is 0 and nothing is done. rq->anchor is ignored.
 */
int transform_chapter_text(struct transform *t, struct arena *a, const struct transform_request *rq,
			   const char *text, size_t n, char **out, size_t *outn, int *fallback, int *cached,
			   int *matched, struct err *e) WUR;

/* Arbitrary text (compat routes): one section's worth, cached by its hash
 * like a section. *fallback set (and the text returned as given) when the
 * output failed validation. glossary from book_id when not NULL. */
int transform_text(struct transform *t, struct arena *a, const char *book_id, const char *text, size_t n,
		   const struct transform_target *tg, char **out, size_t *outn, int *fallback, int *cached,
		   struct err *e) WUR;

/* Drops the cached output of one section (by anchor) for the target, then
 * computes it again. */
int transform_refresh(struct transform *t, struct arena *a, const char *book_id, const char *chapter,
		      const struct transform_target *tg, const char *anchor, struct transform_section *out,
		      struct err *e) WUR;

/* An editor's translation: whole chapter Markdown (split like the source,
 * matched to the source's anchors by position; ERR_INVALID when the section
 * count differs), or sections by anchor (unknown anchors are ERR_INVALID). */
struct transform_human_section {
	const char *anchor;
	const char *text;
	size_t len;
};
int transform_put_human(struct transform *t, struct arena *a, const char *book_id, const char *chapter,
			const char *lang, const char *whole, size_t whole_len,
			const struct transform_human_section *secs, int nsecs, const char *editor_id, int *stored,
			struct err *e) WUR;

/* Glossary: `{terms:[{term, lang?, translation?}]}`; put validates and
 * replaces. */
int transform_glossary_get(struct transform *t, const char *book_id, json_t **out, struct err *e) WUR;
int transform_glossary_put(struct transform *t, const char *book_id, json_t *terms, json_t **out,
			   struct err *e) WUR;

/* "rtl" for right-to-left scripts (ar, ur, fa, he, ps, sd, ug, yi, dv, ckb,
 * …, or an Arab/Hebr/Thaa/Syrc/Nkoo/Adlm script subtag), else "ltr". */
const char *transform_direction(const char *lang);
/* The profile's cache key (sha-256 hex of the fields that shape a rewrite). */
int transform_profile_hash(const json_t *profile, char out[65]);



/* The book.translate job (payload {book_id, lang}): every chapter, section
 * by section, through the same cache; progress per chapter, resumable from
 * the last finished chapter. */
struct job_ctx;
extern const char *const transform_job_steps[];
int transform_job_run(struct job_ctx *jc, struct err *e) WUR;

#endif
