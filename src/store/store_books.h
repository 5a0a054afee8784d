/*
 * Books, their ISBNs and their chapters: the rows and the SQL. Strings in the
 * result structs are allocated from the caller's arena.
 */
#ifndef BOOKD_STORE_BOOKS_H
#define BOOKD_STORE_BOOKS_H

#include "../core/arena.h"
#include "../core/uuid.h"
#include "db.h"

#define BOOK_MAX_ISBNS 16

struct book_isbn {
	char isbn[14];
	char isbn13[14];
	char type[8]; /* "isbn10" / "isbn13" */
};

/* Another edition of the same book (same Open Library work, or same title
 * and author), as listed with a book. */
struct book_edition {
	char id[UUID_STR_LEN];
	char *title, *edition, *language, *publish_date, *superseded_by;
};

struct book {
	char id[UUID_STR_LEN];
	char *title, *author, *language, *edition, *publisher, *publish_date, *cover_url;
	int64_t pages; /* 0 = unknown */
	int64_t created_at, updated_at; /* ms since the epoch */
	int64_t chapter_count;
	int nisbns;
	struct book_isbn isbns[BOOK_MAX_ISBNS];
	/* Metadata (store_book_set_meta writes these; insert and update leave
	 * them alone, so a re-import keeps them). */
	char *subtitle, *description;
	char *subjects_json;   /* a JSON array of strings, or NULL */
	char *metadata_source; /* "openlibrary", "googlebooks" or NULL */
	unsigned edited;       /* enum book_field bits an editor set */
	unsigned meta_fields;  /* enum book_field bits metadata set */
	char *edition_group;   /* editions of one book share it; NULL = none */
	/* Read only: the newer edition in the same language that replaces this
	 * one, the older one this replaces, and every edition of the group. */
	char *superseded_by, *supersedes;
	int neditions;
	struct book_edition *editions;
};

/* A chapter reference is a number when it is all digits (and short), else an
 * id: 1 and *num set for a number. */
int store_chapter_ref_number(const char *ref, int64_t *num);

struct chapter {
	char id[UUID_STR_LEN];
	char book_id[UUID_STR_LEN];
	int64_t number;
	char *title;
	char *content_markdown;
	size_t content_len;
	char *summary, *audio_url;
	char *summary_source; /* "llm", "extractive" or NULL (read only: the pipeline writes it) */
	int64_t word_count;
	char *sections_json;
	char *source_key; /* where an import took it from, for re-imports */
	int64_t rev;
	int64_t created_at, updated_at;
};

/* Books */
int store_book_get(db_conn *c, struct arena *a, const char *id, struct book *out, struct err *e) WUR;
int store_book_by_isbn13(db_conn *c, struct arena *a, const char *isbn13, struct book *out, struct err *e) WUR;
/* Books with id > after (NULL = from the start), in id (= creation) order. */
int store_book_list(db_conn *c, struct arena *a, const char *after, int limit, struct book **items,
		    int *n, struct err *e) WUR;
/* Whether any book exists at all. */
int store_book_any(db_conn *c, int *any, struct err *e) WUR;
/* Every book's id, in id order, in the arena. */
int store_book_ids(db_conn *c, struct arena *a, char ***ids, int *n, struct err *e) WUR;
/* The newest book with this title and author (author may be NULL); ERR_NOT_FOUND. */
int store_book_find(db_conn *c, const char *title, const char *author, char id[UUID_STR_LEN], struct err *e) WUR;
/* Insert or update all fields, and replace the ISBNs. ERR_CONFLICT when an ISBN
 * belongs to another book. */
int store_book_insert(db_conn *c, const struct book *b, struct err *e) WUR;
int store_book_update(db_conn *c, const struct book *b, struct err *e) WUR;
/* Writes the metadata columns: subtitle, description, subjects, source,
 * edited and meta_fields bits, edition group. */
int store_book_set_meta(db_conn *c, const struct book *b, struct err *e) WUR;
/* The editions of a group, by language, then publish date, then id. */
int store_book_group(db_conn *c, struct arena *a, const char *group, struct book_edition **items, int *n,
		     struct err *e) WUR;
/* Sets (or clears, NULL) the newer edition that supersedes book `id`. */
int store_book_link(db_conn *c, const char *id, const char *superseded_by, struct err *e) WUR;
int store_book_delete(db_conn *c, const char *id, struct err *e) WUR;
int store_book_touch(db_conn *c, const char *id, int64_t now, struct err *e) WUR;

/* Chapters. `ref` is a chapter id or a decimal chapter number. */
int store_chapter_get(db_conn *c, struct arena *a, const char *book_id, const char *ref,
		      struct chapter *out, struct err *e) WUR;
/* Just the id and revision, for validating a cached rendering. */
int store_chapter_rev(db_conn *c, const char *book_id, const char *ref, char id[UUID_STR_LEN],
		      int64_t *rev, struct err *e) WUR;
/* Chapters with number > after, by number; content_markdown is not loaded. */
int store_chapter_list(db_conn *c, struct arena *a, const char *book_id, int64_t after, int limit,
		       struct chapter **items, int *n, struct err *e) WUR;
/* Every chapter of a book with its source_key, content and title (for imports). */
int store_chapter_all(db_conn *c, struct arena *a, const char *book_id, struct chapter **items,
		      int *n, struct err *e) WUR;
/* Chapters whose source_key is one of keys[0..nkeys) (at most
 * STORE_SOURCE_KEYS) or whose id is `id` (may be NULL), of book_id when not
 * NULL; (id, book_id, number, source_key) only, at most `limit`. */
#define STORE_SOURCE_KEYS 12
struct chapter_key {
	char id[UUID_STR_LEN], book_id[UUID_STR_LEN];
	int64_t number;
	char *source_key;
};
int store_chapters_by_source_key(db_conn *c, struct arena *a, const char *const *keys, int nkeys,
				 const char *id, const char *book_id, int limit, struct chapter_key **items, int *n,
				 struct err *e) WUR;
int store_chapter_insert(db_conn *c, const struct chapter *ch, struct err *e) WUR;
/* Updates every field and bumps rev. */
int store_chapter_update(db_conn *c, const struct chapter *ch, struct err *e) WUR;
int store_chapter_delete(db_conn *c, const char *book_id, const char *id, struct err *e) WUR;
/* Sets the number only: no new revision (the content is the same). */
int store_chapter_renumber(db_conn *c, const char *book_id, const char *id, int64_t number,
			   struct err *e) WUR;
/* Holds a book's row until the transaction ends (PostgreSQL FOR UPDATE;
 * SQLite's BEGIN IMMEDIATE already holds everything). Every transaction that
 * writes a book's chapters or chunks takes this first: one lock order (book,
 * then chapters), so deleting a book cannot deadlock with indexing it.
 * ERR_NOT_FOUND when there is no such book. */
int store_book_lock(db_conn *c, const char *book_id, struct err *e) WUR;
int store_chapter_next_number(db_conn *c, const char *book_id, int64_t *next, struct err *e) WUR;
/* Moves every chapter number of a book out of the way (negative), so that a
 * re-import can renumber without tripping UNIQUE(book_id, number). */
int store_chapter_park_numbers(db_conn *c, const char *book_id, struct err *e) WUR;

#endif
