/*
 * A book by its ISBN, with metadata from the sources (providers/metadata.h),
 * and its editions.
 *
 * Who owns a field: an editor (POST/PATCH set its bit in `edited`), metadata
 * (its bit in `meta_fields`), or an import (neither bit, a value). Metadata
 * writes a field only when no editor set it and it is empty or metadata's
 * own; a value that metadata lacks is kept, never cleared. The language is
 * the one exception to "empty": a book's language is never NULL (the default
 * is "en"), so "en" that nobody set on purpose counts as empty.
 *
 * Editions: books share an `edition_group` — the Open Library work when a
 * source named it, else normalised title + first author. Within a group and
 * a language, editions with a publish date are ordered by it and each is
 * superseded by the next; an edition without a known date is linked to
 * none (it cannot be placed). The links are redone whenever a member joins,
 * leaves or changes its language or date: a group is a handful of rows.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "../core/timeutil.h"
#include "../providers/metadata.h"
#include "../store/changes.h"
#include "books_int.h"
#include "isbn.h"

#define GROUP_MAX 300

/* ---- editions ------------------------------------------------------------------ */

/* yyyymmdd of an ISO-8601 prefix ("2008", "2008-03", "2008-03-01"), or -1. */
static long date_key(const char *s)
{
	if (!s || !isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) || !isdigit((unsigned char)s[2]) ||
	    !isdigit((unsigned char)s[3]))
		return -1;
	long y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0'), m = 0, d = 0;
	if (s[4] == '-' && isdigit((unsigned char)s[5]) && isdigit((unsigned char)s[6])) {
		m = (s[5] - '0') * 10 + (s[6] - '0');
		if (s[7] == '-' && isdigit((unsigned char)s[8]) && isdigit((unsigned char)s[9]))
			d = (s[8] - '0') * 10 + (s[9] - '0');
	}
	return y * 10000 + m * 100 + d;
}

struct placed {
	struct book_edition *ed;
	long key;
};

static int placed_cmp(const void *x, const void *y)
{
	const struct placed *a = x, *b = y;
	int c = strcasecmp(a->ed->language ? a->ed->language : "", b->ed->language ? b->ed->language : "");
	if (c)
		return c;
	if (a->key != b->key)
		return a->key < b->key ? -1 : 1;
	return strcmp(a->ed->id, b->ed->id);
}

int books_relink_editions(db_conn *c, struct arena *a, const char *group, struct err *e)
{
	if (!group)
		return 0;
	struct book_edition *eds;
	int n;
	int rc = store_book_group(c, a, group, &eds, &n, e);
	if (rc || n == 0)
		return rc;
	struct placed *p = arena_alloc(a, sizeof(*p) * (size_t)n);
	if (!p)
		return err_set(e, ERR_INTERNAL, "out of memory");
	for (int i = 0; i < n; i++)
		p[i] = (struct placed){ &eds[i], date_key(eds[i].publish_date) };
	qsort(p, (size_t)n, sizeof(*p), placed_cmp);
	for (int i = 0; i < n && !rc; i++) {
		const char *next = NULL;
		if (p[i].key >= 0 && i + 1 < n && p[i + 1].key >= 0 &&
		    strcasecmp(p[i].ed->language ? p[i].ed->language : "", p[i + 1].ed->language ? p[i + 1].ed->language
												  : "") == 0)
			next = p[i + 1].ed->id;
		const char *cur = p[i].ed->superseded_by;
		if ((cur == NULL) != (next == NULL) || (cur && strcmp(cur, next) != 0))
			rc = store_book_link(c, p[i].ed->id, next, e);
	}
	return rc;
}

/* "t:" + title and first author, lowercased, letters and digits of each
 * word kept, words single-spaced (ASCII only is folded). */
static char *title_group(struct arena *a, const char *title, const char *author)
{
	size_t tl = title ? strlen(title) : 0, al = author ? strlen(author) : 0;
	char *s = arena_alloc(a, tl + al + 4);
	if (!s)
		return NULL;
	size_t n = 0;
	s[n++] = 't';
	s[n++] = ':';
	const char *parts[2] = { title, author };
	for (int k = 0; k < 2; k++) {
		int space = 0;
		const char *p = parts[k];
		if (k == 1) {
			s[n++] = '|';
			if (p) /* the first author of "A, B" */
				al = strcspn(p, ",;&");
		}
		size_t len = k == 0 ? tl : al;
		for (size_t i = 0; p && i < len; i++) {
			unsigned char ch = (unsigned char)p[i];
			if (isalnum(ch) || ch >= 0x80) {
				if (space && n > 2 && s[n - 1] != '|')
					s[n++] = ' ';
				space = 0;
				s[n++] = (char)tolower(ch);
			} else if (isspace(ch) || ch == '-' || ch == ':') {
				space = 1;
			}
		}
	}
	s[n] = '\0';
	if (n > GROUP_MAX) /* cut on a character boundary */
		for (n = GROUP_MAX; n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80; n--)
			s[n] = '\0';
	s[n] = '\0';
	return s;
}

/* ---- metadata ------------------------------------------------------------------ */

/* Whether metadata may write the field of `bit` whose value is empty or not. */
static int may_write(const struct book *b, unsigned bit, int empty)
{
	return !(b->edited & bit) && (empty || (b->meta_fields & bit));
}

static int blank(const char *s)
{
	return !s || !*s;
}

static void put_str(struct book *b, unsigned bit, char **field, const char *v, struct arena *a)
{
	if (v && *v && may_write(b, bit, blank(*field))) {
		*field = arena_strdup(a, v);
		b->meta_fields |= bit;
	}
}

static char *join_authors(struct arena *a, const struct book_metadata *md)
{
	if (md->nauthors == 0)
		return NULL;
	size_t len = 1;
	for (int i = 0; i < md->nauthors; i++)
		len += strlen(md->authors[i]) + 2;
	char *s = arena_alloc(a, len);
	if (!s)
		return NULL;
	size_t n = 0;
	for (int i = 0; i < md->nauthors; i++) {
		size_t l = strlen(md->authors[i]);
		if (i) {
			memcpy(s + n, ", ", 2);
			n += 2;
		}
		memcpy(s + n, md->authors[i], l);
		n += l;
	}
	s[n] = '\0';
	return s;
}

static char *subjects_json(const struct book_metadata *md, struct arena *a)
{
	if (md->nsubjects == 0)
		return NULL;
	json_t *arr = json_array();
	for (int i = 0; arr && i < md->nsubjects; i++)
		json_array_append_new(arr, json_string(md->subjects[i]));
	char *s = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
	json_decref(arr);
	char *out = s ? arena_strdup(a, s) : NULL;
	free(s);
	return out;
}

static void apply_metadata(struct book *b, const struct book_metadata *md, struct arena *a)
{
	put_str(b, BF_TITLE, &b->title, md->title, a);
	put_str(b, BF_SUBTITLE, &b->subtitle, md->subtitle, a);
	put_str(b, BF_AUTHOR, &b->author, join_authors(a, md), a);
	if (md->language && books_language_valid(md->language) &&
	    may_write(b, BF_LANGUAGE, blank(b->language) || strcmp(b->language, "en") == 0)) {
		b->language = arena_strdup(a, md->language);
		b->meta_fields |= BF_LANGUAGE;
	}
	put_str(b, BF_EDITION, &b->edition, md->edition, a);
	put_str(b, BF_PUBLISHER, &b->publisher, md->publisher, a);
	put_str(b, BF_PUBLISH_DATE, &b->publish_date, md->publish_date, a);
	put_str(b, BF_COVER_URL, &b->cover_url, md->cover_url, a);
	put_str(b, BF_DESCRIPTION, &b->description, md->description, a);
	put_str(b, BF_SUBJECTS, &b->subjects_json, subjects_json(md, a), a);
	if (md->pages > 0 && may_write(b, BF_PAGES, b->pages == 0)) {
		b->pages = md->pages;
		b->meta_fields |= BF_PAGES;
	}
	if (md->source)
		b->metadata_source = arena_strdup(a, md->source);
	if (md->work_key)
		b->edition_group = arena_printf(a, "ol:%s", md->work_key);
	else if (!b->edition_group)
		b->edition_group = title_group(a, b->title, b->author);
}

/* Adds a row for one form of the ISBN unless the book has it. */
static void add_isbn(struct book *b, const char *digits, const char *isbn13, const char *type)
{
	for (int i = 0; i < b->nisbns; i++)
		if (strcmp(b->isbns[i].isbn13, isbn13) == 0 && strcmp(b->isbns[i].type, type) == 0)
			return;
	if (b->nisbns >= BOOK_MAX_ISBNS)
		return;
	struct book_isbn *r = &b->isbns[b->nisbns++];
	snprintf(r->isbn, sizeof(r->isbn), "%s", digits);
	snprintf(r->isbn13, sizeof(r->isbn13), "%s", isbn13);
	snprintf(r->type, sizeof(r->type), "%s", type);
}

/* Both forms: the ISBN-13, and the ISBN-10 when there is one (978 only). */
static void add_both_forms(struct book *b, const struct isbn *is)
{
	add_isbn(b, is->isbn13, is->isbn13, "isbn13");
	if (strncmp(is->isbn13, "978", 3) != 0)
		return;
	char d9[10], ten[16];
	memcpy(d9, is->isbn13 + 3, 9);
	d9[9] = '\0';
	int sum = 0;
	for (int i = 0; i < 9; i++)
		sum += (d9[i] - '0') * (10 - i);
	int ck = (11 - sum % 11) % 11;
	snprintf(ten, sizeof(ten), "%s%c", d9, ck == 10 ? 'X' : (char)('0' + ck));
	struct isbn check;
	struct err ignored = { 0 };
	if (isbn_parse(ten, &check, &ignored) == 0)
		add_isbn(b, check.digits, check.isbn13, "isbn10");
}

struct from_isbn {
	struct arena *a;
	struct isbn is;
	const struct book_metadata *md;
	struct book *out;
	int created;
};

static int from_isbn_tx(db_conn *c, void *ctx, struct err *e)
{
	struct from_isbn *op = ctx;
	struct book *b = op->out;
	int rc = store_book_by_isbn13(c, op->a, op->is.isbn13, b, e);
	op->created = 0;
	if (rc == ERR_NOT_FOUND) {
		if (!op->md)
			return err_set(e, ERR_NOT_FOUND, "no book with ISBN %s", op->is.digits);
		if (blank(op->md->title))
			return err_set(e, ERR_INVALID, "the metadata of ISBN %s has no title", op->is.digits);
		err_clear(e);
		memset(b, 0, sizeof(*b));
		if (uuid_v7(b->id))
			return err_set(e, ERR_INTERNAL, "no randomness");
		b->language = "en";
		b->created_at = b->updated_at = time_now_ms();
		op->created = 1;
	} else if (rc) {
		return rc;
	} else if (!op->md) {
		return 0;
	}
	const char *old_group = b->edition_group;
	apply_metadata(b, op->md, op->a);
	add_both_forms(b, &op->is);
	if (!op->created) {
		int64_t now = time_now_ms();
		b->updated_at = now > b->updated_at ? now : b->updated_at + 1;
	}
	if (!b->title || !b->language)
		return err_set(e, ERR_INTERNAL, "out of memory");
	if ((rc = op->created ? store_book_insert(c, b, e) : store_book_update(c, b, e)) != 0 ||
	    (rc = store_book_set_meta(c, b, e)) != 0)
		return rc;
	if (old_group && (!b->edition_group || strcmp(old_group, b->edition_group) != 0) &&
	    (rc = books_relink_editions(c, op->a, old_group, e)) != 0)
		return rc;
	if ((rc = books_relink_editions(c, op->a, b->edition_group, e)) != 0)
		return rc;
	return store_book_get(c, op->a, b->id, b, e);
}

int books_from_isbn(db *d, struct arena *a, const char *isbn, const struct book_metadata *md, struct book *out,
		    int *created, struct err *e)
{
	struct from_isbn op = { .a = a, .md = md, .out = out };
	*created = 0;
	int rc = isbn_parse(isbn, &op.is, e);
	if (rc)
		return rc;
	/* Twice at most: a concurrent creator of the same ISBN (PostgreSQL)
	 * makes the first attempt a conflict, and the second finds its book. */
	for (int attempt = 0; attempt < 2; attempt++) {
		db_conn *c;
		err_clear(e);
		if ((rc = db_acquire(d, &c, e)) != 0)
			return rc;
		if ((rc = db_begin(c, e)) == 0) {
			rc = from_isbn_tx(c, &op, e);
			if (rc == 0)
				rc = db_commit(c, e);
			if (rc)
				db_rollback(c);
		}
		db_release(c);
		if (rc != ERR_CONFLICT || !op.created)
			break;
	}
	if (rc == 0) {
		*created = op.created;
		changes_touch2(db_changes(d), "book:", out->id);
	}
	return rc;
}
