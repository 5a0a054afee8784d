/* Retrieval chunks, their keyword index (FTS5 / tsvector) and embeddings. */
#ifndef BOOKD_STORE_CHUNKS_H
#define BOOKD_STORE_CHUNKS_H

#include "../core/arena.h"
#include "../core/uuid.h"
#include "db.h"

struct chunk_row {
	char id[UUID_STR_LEN], book_id[UUID_STR_LEN], chapter_id[UUID_STR_LEN];
	int64_t ordinal, char_start, char_end, token_count, chapter_number;
	char *heading, *heading_path, *anchor, *text, *content_hash, *chapter_title;
	char *language; /* a translation's language tag; NULL: the chapter's own text */
	double score;
	int64_t created_at, updated_at;
};

/* A chapter's chunks in order (id, hash and position; text included): of
 * its own text (language NULL) or of its translation into `language`. */
int store_chunks_of_chapter(db_conn *c, struct arena *a, const char *chapter_id, const char *language,
			    struct chunk_row **rows, int *n, struct err *e) WUR;
/* Indexes the search form of the heading path and text (core/normalize.h). */
int store_chunk_insert(db_conn *c, const struct chunk_row *r, struct err *e) WUR;
/* Same content, new place: ordinal, offsets, heading, anchor. */
int store_chunk_move(db_conn *c, const struct chunk_row *r, struct err *e) WUR;
int store_chunk_delete(db_conn *c, const char *id, struct err *e) WUR;
/* Deletes the chunks of one section (by anchor) of a chapter's translation. */
int store_chunks_drop_translation(db_conn *c, const char *chapter_id, const char *language, const char *anchor,
				  struct err *e) WUR;
/* Keyword search. `terms` are already safe words (letters and digits only):
 * they are quoted into the backend's query syntax here, never passed raw.
 * `stats` (may be NULL) is the caller's cache, kept across queries, of the
 * counts that let SQLite skip rows that cannot make the answer. On SQLite it
 * runs in a read transaction of its own: call it outside a transaction.
 * `language` NULL searches the chapters' own text, a tag (letters, digits,
 * dashes) the translations into it. */
struct cache;
int store_chunks_keyword(db_conn *c, struct arena *a, struct cache *stats, const char *const *terms, int nterms,
			 const char *book_id, const char *chapter_id, const char *language, int limit,
			 struct chunk_row **rows, int *n, struct err *e) WUR;
int store_chunk_get(db_conn *c, struct arena *a, const char *id, struct chunk_row *out, struct err *e) WUR;
int store_chunk_count(db_conn *c, const char *book_id, int64_t *n, struct err *e) WUR;

/* Chunks of a book (NULL: all) with no embedding for `model`, up to limit. */
int store_chunks_unembedded(db_conn *c, struct arena *a, const char *model, const char *book_id, int limit,
			    struct chunk_row **rows, int *n, struct err *e) WUR;
int store_embedding_put(db_conn *c, const char *chunk_id, const char *model, int dim, const char *vector_b64,
			const char *content_hash, int64_t now, struct err *e) WUR;
/* Calls fn for every embedding of `model` created at or after `since` (rows
 * sharing the boundary time are seen again, harmlessly: upserts) (columns:
 * chunk_id, book_id, chapter_id, dim, vector, created_at). */
int store_embeddings_scan(db_conn *c, const char *model, int64_t since, db_row_fn fn, void *ctx, struct err *e) WUR;
int store_embedding_stats(db_conn *c, const char *model, int64_t *count, int64_t *max_created, struct err *e) WUR;
/* The dimension of the newest embedding of `model`; 0 when there is none. */
int store_embedding_dim(db_conn *c, const char *model, int64_t *dim, struct err *e) WUR;

#endif
