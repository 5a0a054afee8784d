/*
 * What the metadata sources share (metadata.c) and the JSON mappings each
 * source exposes to its unit tests. Everything a mapping returns lives in
 * the caller's arena; a missing or ill-typed field is simply unknown.
 */
#ifndef BOOKD_METADATA_INT_H
#define BOOKD_METADATA_INT_H

#include <jansson.h>

#include "http_client.h"
#include "metadata.h"

#define METADATA_RESPONSE_MAX ((size_t)4 << 20)
#define METADATA_TEXT_MAX 500	       /* titles, names, publishers */
#define METADATA_DESCRIPTION_MAX 20000 /* bytes of a description */
#define METADATA_URL_MAX 2048

/* A client for one source (its own breaker). */
int metadata_http_new(struct phttp **out, const char *name, const struct metadata_config *cfg, struct stop *stop,
		      struct err *e) WUR;
/* GET `url` and parse it as a JSON object. 0 with *doc (json_decref it);
 * ERR_NOT_FOUND on 404 or 410; else ERR_UNAVAILABLE naming `what`. */
int metadata_get_json(struct phttp *h, const char *url, int64_t deadline_ms, long attempt_ms, const char *what,
		      json_t **doc, struct err *e) WUR;
/* An end-to-end deadline for one source's lookup. */
int64_t metadata_deadline(const struct metadata_config *cfg);

/* BCP 47 for a MARC / ISO 639-2 code ("eng" → "en", "urd" → "ur", "fre" →
 * "fr"); a two-letter code as it is; an unknown three-letter code as it is
 * (BCP 47 takes ISO 639-2/3 codes that have no two-letter form); NULL for
 * anything else. Case-insensitive; the result is lowercase. */
const char *metadata_language(struct arena *a, const char *code);
/* A publish date as ISO 8601 as far as it is known ("2008", "2008-03",
 * "2008-08-01") from "March 2008", "Aug 01, 2008", "2008-08-01", "1 March
 * 2008"; the text as given when no year is found. NULL for NULL/empty. */
const char *metadata_date(struct arena *a, const char *s);
/* A string of a JSON value, trimmed, cut to `max` bytes on a character
 * boundary; NULL unless a non-empty string. */
const char *metadata_str(struct arena *a, json_t *v, size_t max);
/* Adds a string to a bounded list unless already there. */
void metadata_add(const char **list, int *n, int cap, const char *s);

/* Open Library: the edition (/isbn/{isbn}.json), the work, an author. Keys
 * to fetch next are returned: the work's, and the authors' when the edition
 * names them (as [{key}]). A description is a string or {type, value}. */
int metadata_ol_edition(struct arena *a, json_t *doc, struct book_metadata *out, const char **work_key,
			const char **author_keys, int *nauthor_keys, struct err *e) WUR;
/* The work adds what the edition lacks: description, subjects, covers, and
 * the authors (as [{author: {key}}]) when the edition named none. */
void metadata_ol_work(struct arena *a, json_t *doc, struct book_metadata *out, const char **author_keys,
		      int *nauthor_keys);
const char *metadata_ol_author(struct arena *a, json_t *doc);

/* Google Books: ERR_NOT_FOUND when `items` is absent or empty. The item whose
 * industryIdentifiers name `isbn13` (or its ISBN-10) wins, else the first. */
int metadata_gb_volumes(struct arena *a, json_t *doc, const char *isbn13, struct book_metadata *out,
			struct err *e) WUR;

#endif
