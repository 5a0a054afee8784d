/*
 * Book metadata by ISBN (struct metadata_ops): Open Library first
 * (/isbn/{isbn}.json, then the work and its authors), Google Books as the
 * fallback (/books/v1/volumes?q=isbn:{isbn}). Base URLs are configurable;
 * each call goes through the provider HTTP client (30 s, 3 tries, backoff),
 * one client (and circuit breaker) per source.
 *
 * The chain asks the sources in order and takes the first that knows the
 * ISBN. Not found anywhere is ERR_NOT_FOUND only when every source answered
 * "not found"; when one could not be asked and none knew the book the
 * answer is ERR_UNAVAILABLE (the ISBN may well exist): the caller decides.
 */
#ifndef BOOKD_METADATA_H
#define BOOKD_METADATA_H

#include <stdint.h>

#include "../core/arena.h"
#include "../core/err.h"
#include "../core/stop.h"

#define METADATA_MAX_AUTHORS 16
#define METADATA_MAX_SUBJECTS 32

struct book_metadata {
	const char *title, *subtitle;
	const char *authors[METADATA_MAX_AUTHORS];
	int nauthors;
	const char *language; /* BCP 47 ("en"; Open Library's "eng" mapped) or NULL */
	const char *publisher, *publish_date, *cover_url, *description;
	const char *edition;  /* "2nd ed." (Open Library's edition_name) or NULL */
	int pages;	      /* 0: unknown */
	const char *subjects[METADATA_MAX_SUBJECTS];
	int nsubjects;
	const char *isbn10, *isbn13;
	const char *work_key; /* Open Library's work ("/works/OL45804W"): groups editions */
	const char *source;   /* "openlibrary" or "googlebooks" */
};

struct metadata;

struct metadata_config {
	const char *openlibrary_url; /* default https://openlibrary.org */
	const char *googlebooks_url; /* default https://www.googleapis.com */
	const char *googlebooks_key; /* optional */
	int timeout_s;		     /* per attempt (30) */
	int tries;		     /* (3) */
};

/* One source: the shape of embed_ops and llm_ops. `lookup` answers 0,
 * ERR_NOT_FOUND (the source does not know the ISBN) or ERR_UNAVAILABLE (it
 * could not be asked, or answered garbage). No attempt passes deadline_ms. */
struct metadata_ops {
	const char *name; /* "openlibrary", "googlebooks" */
	int (*open)(void **self, const struct metadata_config *cfg, struct stop *stop, struct err *e);
	void (*close)(void *self);
	int (*lookup)(void *self, struct arena *a, const char *isbn13, int64_t deadline_ms, struct book_metadata *out,
		      struct err *e);
};

extern const struct metadata_ops metadata_openlibrary_ops;
extern const struct metadata_ops metadata_googlebooks_ops;

int metadata_open(struct metadata **out, const struct metadata_config *cfg, struct stop *stop, struct err *e) WUR;
void metadata_close(struct metadata *m);
/* `isbn13` is a validated ISBN-13. ERR_NOT_FOUND when no source knows it;
 * ERR_UNAVAILABLE when the sources could not be asked. Strings live in `a`. */
int metadata_lookup(struct metadata *m, struct arena *a, const char *isbn13, struct book_metadata *out,
		    struct err *e) WUR;

#endif
