/*
 * The books and chapters domain: validation beyond JSON types (ISBN checks,
 * language tags, numbering), timestamps and ids, Markdown analysis of chapter
 * text, and transactions around the store calls. Knows nothing of HTTP.
 */
#ifndef BOOKD_BOOKS_H
#define BOOKD_BOOKS_H

#include "../store/store_books.h"

enum book_field {
	BF_TITLE = 1 << 0,
	BF_AUTHOR = 1 << 1,
	BF_LANGUAGE = 1 << 2,
	BF_EDITION = 1 << 3,
	BF_PUBLISHER = 1 << 4,
	BF_PAGES = 1 << 5,
	BF_PUBLISH_DATE = 1 << 6,
	BF_COVER_URL = 1 << 7,
	BF_ISBNS = 1 << 8,
	BF_SUBTITLE = 1 << 9,
	BF_DESCRIPTION = 1 << 10,
	BF_SUBJECTS = 1 << 11,
};
/* The bits are stored (books.edited, books.meta_fields): never renumber. */
#define BF_METADATA_MASK                                                                   \
	(BF_TITLE | BF_AUTHOR | BF_LANGUAGE | BF_EDITION | BF_PUBLISHER | BF_PAGES | BF_PUBLISH_DATE | \
	 BF_COVER_URL | BF_SUBTITLE | BF_DESCRIPTION | BF_SUBJECTS)

struct book_metadata;

/* A create or a partial update: `set` says which fields the caller gave (a
 * given field may be NULL, which clears it). */
struct book_input {
	unsigned set;
	const char *title, *author, *language, *edition, *publisher, *publish_date, *cover_url;
	const char *subtitle, *description;
	long long pages;
	int nisbns;
	const char *isbns[BOOK_MAX_ISBNS];
};

struct chapter_input {
	const char *title;
	const char *content; /* Markdown */
	size_t content_len;
	long long number; /* 0 = next free number (create) / keep (replace) */
	const char *source_key; /* where it came from (create only); NULL: an editor */
};

/* The source_key of a chapter a language model named (its text is empty
 * until an editor or an import gives it one). */
#define CHAPTER_SOURCE_LLM "llm:outline"


#define BOOKS_MAX_LIMIT 100

/* Checks a BCP 47-shaped language tag ("en", "ur", "pt-BR", "zh-Hant"). */
int books_language_valid(const char *tag);

int books_create(db *d, struct arena *a, const struct book_input *in, struct book *out, struct err *e) WUR;
int books_update(db *d, struct arena *a, const char *id, const struct book_input *in, struct book *out,
		 struct err *e) WUR;
int books_delete(db *d, const char *id, struct err *e) WUR;
/* Whether the database holds any book (`bookd import --if-empty`). */
int books_any(db *d, int *any, struct err *e) WUR;
int books_get(db *d, struct arena *a, const char *id, struct book *out, struct err *e) WUR;
/* `isbn` in any accepted form; ERR_INVALID names the failed check. */
int books_get_by_isbn(db *d, struct arena *a, const char *isbn, struct book *out, struct err *e) WUR;
/* `cursor` as returned in *next (NULL for the first page); *next is NULL on
 * the last page. */
int books_list(db *d, struct arena *a, const char *cursor, int limit, struct book **items, int *n,
	       char **next, struct err *e) WUR;

int chapters_create(db *d, struct arena *a, const char *book_id, const struct chapter_input *in,
		    struct chapter *out, struct err *e) WUR;
int chapters_replace(db *d, struct arena *a, const char *book_id, const char *ref,
		     const struct chapter_input *in, struct chapter *out, struct err *e) WUR;
int chapters_delete(db *d, const char *book_id, const char *ref, struct err *e) WUR;
int chapters_get(db *d, struct arena *a, const char *book_id, const char *ref, struct chapter *out,
		 struct err *e) WUR;
int chapters_rev(db *d, const char *book_id, const char *ref, char id[UUID_STR_LEN], int64_t *rev,
		 struct err *e) WUR;
/*
 * The chapter a Docusaurus doc id names ("module-1/chapter-1"): the one an
 * import took from that path under the source or its docs/ folder (.md,
 * .mdx, or the folder's index.md / README.md), or whose source_key is the id
 * itself ("chapter-3"), or whose id it is. book_id (may be NULL) limits it to one book; when
 * several books have it, prefer_book (may be NULL) wins if among them, else
 * ERR_CONFLICT. ERR_NOT_FOUND when none has it.
 */
int chapters_by_doc_id(db *d, struct arena *a, const char *doc_id, const char *book_id, const char *prefer_book,
		       char book_out[UUID_STR_LEN], char chapter_out[UUID_STR_LEN], struct err *e) WUR;
int chapters_list(db *d, struct arena *a, const char *book_id, const char *cursor, int limit,
		  struct chapter **items, int *n, char **next, struct err *e) WUR;

/* Fills word_count and sections_json of `ch` from its Markdown. */
int chapters_analyze(struct arena *a, struct chapter *ch, struct err *e) WUR;

/*
 * Finds the book that holds `isbn` (any accepted form; ERR_INVALID names the
 * failed check) or, given metadata, creates it; then applies `md` (may be
 * NULL: find only, ERR_NOT_FOUND when no book holds the ISBN). Metadata
 * never overwrites a field an editor set (POST/PATCH), nor a value that
 * neither an editor nor metadata set (an import's); it fills empty fields
 * and refreshes the ones metadata set before. The book gets rows for both
 * the ISBN-10 and ISBN-13 form of `isbn`, joins its edition group (the Open
 * Library work, else title + author) and the group's links are redone: in
 * each language, an edition with a later publish date supersedes the one
 * before it. *created says whether the book is new. `out` lives in `a`.
 */
int books_from_isbn(db *d, struct arena *a, const char *isbn, const struct book_metadata *md, struct book *out,
		    int *created, struct err *e) WUR;

/* Sets b->isbns from strings, validating each (details name isbns[i]). */
int books_set_isbns(struct book *b, const char *const *isbns, int n, struct err *e) WUR;

#endif
