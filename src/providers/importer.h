/*
 * Importers turn a source on disk into a book in memory: a Docusaurus-style
 * folder of Markdown/MDX files, a single Markdown file, or a plain-text file.
 * They read and check everything first (UTF-8, sizes, at least one chapter),
 * so that the caller writes either the whole book or nothing. Errors name the
 * file at fault. Nothing here touches the database.
 *
 * Folder rules (Docusaurus): .md/.mdx files, recursively; hidden entries,
 * node_modules and `_`-prefixed partials are skipped; order is
 * `sidebar_position` (files) or `_category_.json` "position" (folders), then
 * name; a chapter's title is front matter `title`, else its first `#` heading,
 * else its file name; `draft: true` files are skipped; MDX import/export
 * lines and JSX tags are stripped. An optional `book.json` gives title,
 * author, language and isbns.
 *
 * Text that is not clean UTF-8 does not refuse the book: a file with a NUL
 * byte (binary, or UTF-16) or with more than one invalid byte in ten is
 * skipped; fewer invalid bytes are each replaced, per maximal ill-formed
 * sequence, by U+FFFD. Either way the file is named in `warnings` (the first
 * IMPORT_MAX_WARNINGS, then a count). A single-file source that would be
 * skipped is an error, as nothing would be left of the book.
 */
#ifndef BOOKD_IMPORTER_H
#define BOOKD_IMPORTER_H

#include "../core/arena.h"
#include "../core/err.h"

#define IMPORT_MAX_FILE ((size_t)16 << 20)
#define IMPORT_MAX_CHAPTERS 5000
#define IMPORT_MAX_DEPTH 16
#define IMPORT_MAX_ISBNS 16
#define IMPORT_MAX_WARNINGS 100
/* More invalid bytes than 1 in IMPORT_INVALID_RATIO: the file is not text. */
#define IMPORT_INVALID_RATIO 10

struct import_chapter {
	char *title;
	char *markdown;
	size_t len;
	char *source_key; /* path relative to the source, or "chapter-N" */
};

/* A file skipped or cleaned. */
struct import_warning {
	char *file;	    /* relative to the source's root; valid UTF-8 */
	const char *action; /* "skipped" or "cleaned" */
	char *message;	    /* why, or what was changed */
};

struct import_book {
	struct arena arena; /* owns every string below */
	char *title, *author, *language;
	int title_from_name; /* the title is only the file or folder name */
	int nisbns;
	char *isbns[IMPORT_MAX_ISBNS];
	char *isbn_source; /* the file the ISBNs came from, for error messages */
	struct import_chapter *chapters;
	int nchapters, cap;
	int single_file; /* the source is one file, not a folder */
	struct import_warning *warnings;
	int nwarnings, wcap;
	int warnings_omitted; /* beyond IMPORT_MAX_WARNINGS */
};

/* Loads `path` (a folder, .md, .mdx, .markdown or .txt). */
int import_load(const char *path, struct import_book *out, struct err *e) WUR;
void import_book_free(struct import_book *b);

/* Exposed for tests: split a plain-text book / a single Markdown file. */
int import_text(const char *name, const char *text, size_t n, struct import_book *b, struct err *e) WUR;
int import_markdown_file(const char *name, const char *text, size_t n, struct import_book *b,
			 struct err *e) WUR;

#endif
