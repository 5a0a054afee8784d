/*
 * An in-memory exact vector index: every vector is scanned, so results are
 * exact, and the scan is made cheap: vectors are L2-normalised (cosine =
 * dot product), kept as int8 (one scale per vector) for a first pass that
 * reads a quarter of the memory float32 would (an AVX2 kernel when the
 * build targets AVX2: the Makefile compiles this file with -march=native),
 * and the best 4k candidates are rescored with the float32 vectors. Filters (book, chapter) are applied
 * during the scan. Readers share a rwlock; writers (sync from the database)
 * take it briefly.
 *
 * Memory: dim * 5 bytes per vector (int8 + float32), ~3.8 KiB at 768-d.
 */
#ifndef BOOKD_VINDEX_H
#define BOOKD_VINDEX_H

#include <stddef.h>

#include "../core/uuid.h"

struct vindex;

struct vhit {
	char chunk_id[UUID_STR_LEN];
	float score;
};

struct vindex *vindex_new(int dim);
void vindex_free(struct vindex *v);
int vindex_dim(const struct vindex *v);
size_t vindex_count(struct vindex *v);
/* Adds or replaces the vector of chunk_id (normalised here). 0, or -1 on OOM. */
int vindex_upsert(struct vindex *v, const char *chunk_id, const char *book_id, const char *chapter_id,
		  const float *vec);
/* Top k by cosine similarity, filtered by book/chapter (NULL: any). */
int vindex_search(struct vindex *v, const float *query, int k, const char *book_id, const char *chapter_id,
		  struct vhit *out);

#endif
