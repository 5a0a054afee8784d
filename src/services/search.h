/*
 * Retrieval: indexing chapters into chunks (chunker.c) and searching them by
 * keyword (FTS5 / PostgreSQL full-text), by vector (an embedding provider and
 * the in-memory vindex) or both, fused by reciprocal rank.
 *
 * Indexing is incremental and exact: a chapter's new chunks are matched to
 * its stored ones by content hash, so unchanged chunks keep their ids and
 * embeddings, moved ones are only renumbered, and only new or changed text is
 * (re-)embedded. Deleting a chapter or book deletes its chunks and vectors
 * (foreign keys), and every process's vector index follows the database.
 *
 * Scores: keyword = BM25 (SQLite) or ts_rank (PostgreSQL), higher is better;
 * vector = cosine similarity; hybrid = sum over both lists of 1 / (60 + rank).
 */
#ifndef BOOKD_SEARCH_H
#define BOOKD_SEARCH_H

#include "../providers/embed.h"
#include "../store/db.h"
#include "../store/store_chunks.h"

enum search_mode { SEARCH_DEFAULT = 0, SEARCH_KEYWORD, SEARCH_VECTOR, SEARCH_HYBRID };

struct search_config {
	int chunk_tokens;
	const struct embed_config *embed; /* NULL: no provider, keyword search only */
	int sync_ms;			  /* how often the vector index looks for changes */
	struct stop *stop;		  /* cancels embedding calls; may be NULL */
};

struct index_stats {
	int chapters, chunks, added, moved, removed, unchanged, embedded;
};

struct search;

int search_new(struct search **out, db *d, const struct search_config *cfg, struct err *e) WUR;
void search_free(struct search *s);
/* Loads vectors and follows the database from a background thread. */
int search_start_sync(struct search *s, struct err *e) WUR;
int search_has_embedder(const struct search *s);

typedef void (*search_progress_fn)(void *ctx, int done, int total);

int search_index_chapter(struct search *s, const char *book_id, const char *chapter_id, struct index_stats *st,
			 struct err *e) WUR;
/* book_id NULL: every book. */
int search_index_book(struct search *s, const char *book_id, search_progress_fn progress, void *ctx,
		      struct index_stats *st, struct err *e) WUR;
/* A translated section (its Markdown in `language`, at `position` among the
 * chapter's sections) becomes that language's chunks of the section, which
 * replace the ones stored for (chapter, language, anchor) before; md NULL or
 * empty only removes them. Runs on the caller's connection, inside its
 * transaction if it has one. The chapter re-indexer leaves these alone. */
int search_index_translation(db_conn *c, const char *book_id, const char *chapter_id, const char *chapter_title,
			     const char *language, int position, const char *anchor, const char *md, size_t n,
			     struct err *e) WUR;
/* Embeds the chunks that have no vector for the current model yet. */
int search_embed_pending(struct search *s, const char *book_id, search_progress_fn progress, void *ctx,
			 int (*should_stop)(void *ctx), struct index_stats *st, struct err *e) WUR;

struct search_hit {
	struct chunk_row row;
	double score;
};

/* Splits free text into at most 32 search terms (letters and digits only),
 * in their search form (core/normalize.h). */
int search_terms(const char *q, struct arena *a, const char ***terms);
/* May call the embedding provider: run it off the HTTP threads. */
int search_query(struct search *s, struct arena *a, const char *q, const char *book_id, const char *chapter_id,
		 int limit, enum search_mode mode, struct search_hit **hits, int *n, struct err *e) WUR;
/* The same in one language: NULL or "" the chapters' own text, a tag the
 * chunks of translations into it (search_index_translation). */
int search_query_lang(struct search *s, struct arena *a, const char *q, const char *book_id, const char *chapter_id,
		      const char *language, int limit, enum search_mode mode, struct search_hit **hits, int *n,
		      struct err *e) WUR;

#endif
