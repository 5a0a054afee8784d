/*
 * Section transformations (translations, personalised rewrites) and what
 * editors give them: the machine cache keyed by (source hash, target, model,
 * prompt version), human translations per (chapter, language, anchor), and
 * each book's glossary. Strings in results are allocated from the caller's
 * arena.
 */
#ifndef BOOKD_STORE_TRANSFORM_H
#define BOOKD_STORE_TRANSFORM_H

#include "../core/arena.h"
#include "../core/uuid.h"
#include "db.h"

struct section_row {
	const char *source_hash; /* sha-256 hex of the section's source Markdown */
	const char *target;	 /* "ur", "profile:<hex>" (+ "+g<hex>" for a glossary) */
	const char *model;	 /* the chain's first model, "name:model" */
	int prompt_version;
	const char *source_text, *output, *origin; /* origin: "machine" */
	const char *answered_by;		   /* the link that answered */
	int64_t created_at;
};

/* The cached output, or ERR_NOT_FOUND. */
int store_section_get(db_conn *c, struct arena *a, const char *source_hash, const char *target, const char *model,
		      int prompt_version, char **output, size_t *n, struct err *e) WUR;
/* Inserts; a row already there (another node was first) is left as it is. */
int store_section_put(db_conn *c, const struct section_row *r, struct err *e) WUR;
/* Removes the cached output of one section (every model and version). */
int store_section_drop(db_conn *c, const char *source_hash, const char *target, struct err *e) WUR;
/* How many rows target holds (tests, metrics). */
int store_section_count(db_conn *c, const char *target, int64_t *n, struct err *e) WUR;

struct human_section {
	char *anchor, *source_hash, *content;
	size_t content_len;
	int64_t updated_at;
};

/* A chapter's human translation in `lang`, in position order. */
int store_human_list(db_conn *c, struct arena *a, const char *chapter_id, const char *lang,
		     struct human_section **items, int *n, struct err *e) WUR;
/* Replaces or adds one section. */
int store_human_put(db_conn *c, const char *chapter_id, const char *lang, const char *anchor, int position,
		    const char *source_hash, const char *content, size_t n, const char *editor, int64_t now,
		    struct err *e) WUR;

/* A book's glossary as a JSON array text ("[]" when none) and its time. */
int store_glossary_get(db_conn *c, struct arena *a, const char *book_id, char **terms_json, int64_t *updated_at,
		       struct err *e) WUR;
int store_glossary_put(db_conn *c, const char *book_id, const char *terms_json, int64_t now, struct err *e) WUR;

#endif
