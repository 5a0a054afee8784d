/*
 * Imports a book from disk into the store: the importer reads and checks the
 * whole source first, then one transaction creates or updates the book and
 * its chapters. A re-import finds the book by --book-id or by title + author,
 * keeps the ids of chapters whose source file is the same, bumps the revision
 * only of chapters that changed, and deletes the chapters whose source is
 * gone. Any error rolls everything back.
 */
#ifndef BOOKD_INGEST_H
#define BOOKD_INGEST_H

#include <jansson.h>

#include "../store/db.h"
#include "../store/store_books.h"

struct ingest_opts {
	const char *book_id; /* update this book */
	const char *title, *author, *language; /* override the source's */
	const char *name; /* the source's name as its user knows it (an upload's
			   * file name), for a title when the content gives none */
	/* Called after each chapter is written: done of total. */
	void (*progress)(void *ctx, int done, int total);
	void *progress_ctx;
};

/* A source file skipped or cleaned (see providers/importer.h). */
struct ingest_warning {
	char file[512]; /* relative to the source's root, never a path on this machine */
	char action[16]; /* "skipped" or "cleaned" */
	char message[160];
};

struct ingest_result {
	char book_id[UUID_STR_LEN];
	char title[512];
	int chapters;
	int created;			       /* 1 = new book, 0 = updated */
	int added, updated, unchanged, removed; /* chapters */
	struct ingest_warning *warnings;       /* owned: ingest_result_free */
	int nwarnings, warnings_omitted;
};

/* On success `r` owns memory (its warnings): ingest_result_free. */
int ingest_path(db *d, const char *path, const struct ingest_opts *o, struct ingest_result *r,
		struct err *e) WUR;
void ingest_result_free(struct ingest_result *r);

/* {book_id, chapters, title, created, added, updated, unchanged, removed,
 * warnings:[{file, action, message}], warnings_omitted}: what `bookd import`
 * prints and a book.import job's result. NULL when out of memory. */
json_t *ingest_result_json(const struct ingest_result *r);

#endif
