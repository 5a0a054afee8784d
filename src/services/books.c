#include "books.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/timeutil.h"
#include "../store/changes.h"
#include "books_int.h"
#include "isbn.h"
#include "markdown.h"

int books_language_valid(const char *tag)
{
	/* primary subtag of 2-3 letters, then subtags of 1-8 alphanumerics */
	size_t i = 0, part = 0, len = 0;
	for (;; i++) {
		char c = tag[i];
		if (c == '-' || c == '\0') {
			if (part == 0 && (len < 2 || len > 3))
				return 0;
			if (part > 0 && (len < 1 || len > 8))
				return 0;
			if (c == '\0')
				return i <= 35;
			part++;
			len = 0;
		} else if (part == 0 ? isalpha((unsigned char)c) : isalnum((unsigned char)c)) {
			len++;
		} else {
			return 0;
		}
	}
}

int books_set_isbns(struct book *b, const char *const *isbns, int n, struct err *e)
{
	b->nisbns = 0;
	int bad = 0;
	for (int i = 0; i < n; i++) {
		struct isbn is;
		struct err ie = { 0 };
		char field[32];
		snprintf(field, sizeof(field), "isbns[%d]", i);
		if (isbn_parse(isbns[i], &is, &ie)) {
			err_field(e, field, "%s", ie.msg);
			bad = 1;
			continue;
		}
		int dup = 0;
		for (int k = 0; k < b->nisbns; k++)
			dup |= strcmp(b->isbns[k].isbn13, is.isbn13) == 0 &&
			       strcmp(b->isbns[k].type, isbn_type_name(is.type)) == 0;
		if (dup)
			continue; /* the same ISBN twice: keep one (its 10/13 twin is a row of its own) */
		struct book_isbn *d = &b->isbns[b->nisbns++];
		memcpy(d->isbn, is.digits, sizeof(d->isbn));
		memcpy(d->isbn13, is.isbn13, sizeof(d->isbn13));
		snprintf(d->type, sizeof(d->type), "%s", isbn_type_name(is.type));
	}
	return bad ? ERR_INVALID : 0;
}

static int validate_book(const struct book *b, struct err *e)
{
	if (!b->title || !*b->title)
		err_field(e, "title", "is required");
	if (b->language && !books_language_valid(b->language))
		err_field(e, "language", "must be a language tag such as en, ur or pt-BR");
	return e->code ? e->code : 0;
}

static void apply_input(struct book *b, const struct book_input *in)
{
	if (in->set & BF_TITLE)
		b->title = (char *)in->title;
	if (in->set & BF_AUTHOR)
		b->author = (char *)in->author;
	if (in->set & BF_LANGUAGE)
		b->language = (char *)(in->language ? in->language : "en");
	if (in->set & BF_EDITION)
		b->edition = (char *)in->edition;
	if (in->set & BF_PUBLISHER)
		b->publisher = (char *)in->publisher;
	if (in->set & BF_PAGES)
		b->pages = in->pages;
	if (in->set & BF_PUBLISH_DATE)
		b->publish_date = (char *)in->publish_date;
	if (in->set & BF_COVER_URL)
		b->cover_url = (char *)in->cover_url;
	if (in->set & BF_SUBTITLE)
		b->subtitle = (char *)in->subtitle;
	if (in->set & BF_DESCRIPTION)
		b->description = (char *)in->description;
	/* what an editor sets, metadata leaves alone from now on */
	b->edited |= in->set & BF_METADATA_MASK;
	b->meta_fields &= ~(in->set & BF_METADATA_MASK);
}

/* Runs fn inside a transaction on a pooled connection; once it committed,
 * caches of book_id's data are stale. */
typedef int (*tx_fn)(db_conn *c, void *ctx, struct err *e);

static int with_tx(db *d, const char *book_id, tx_fn fn, void *ctx, struct err *e)
{
	db_conn *c;
	int rc = db_acquire(d, &c, e);
	if (rc)
		return rc;
	if ((rc = db_begin(c, e)) == 0) {
		rc = fn(c, ctx, e);
		if (rc == 0)
			rc = db_commit(c, e);
		if (rc)
			db_rollback(c);
	}
	db_release(c);
	if (rc == 0)
		changes_touch2(db_changes(d), "book:", book_id);
	return rc;
}

struct book_op {
	struct arena *a;
	const char *id;
	const struct book_input *in;
	struct book *out;
};

static int create_tx(db_conn *c, void *ctx, struct err *e)
{
	struct book_op *op = ctx;
	int rc = store_book_insert(c, op->out, e);
	if (!rc)
		rc = store_book_set_meta(c, op->out, e);
	return rc ? rc : store_book_get(c, op->a, op->out->id, op->out, e);
}

int books_create(db *d, struct arena *a, const struct book_input *in, struct book *out, struct err *e)
{
	memset(out, 0, sizeof(*out));
	if (uuid_v7(out->id))
		return err_set(e, ERR_INTERNAL, "no randomness");
	out->language = "en";
	apply_input(out, in);
	int bad = (in->set & BF_ISBNS) ? books_set_isbns(out, in->isbns, in->nisbns, e) : 0;
	if (validate_book(out, e) || bad)
		return e->code;
	out->created_at = out->updated_at = time_now_ms();
	struct book_op op = { a, out->id, in, out };
	return with_tx(d, out->id, create_tx, &op, e);
}

static int update_tx(db_conn *c, void *ctx, struct err *e)
{
	struct book_op *op = ctx;
	int rc = store_book_get(c, op->a, op->id, op->out, e);
	if (rc)
		return rc;
	apply_input(op->out, op->in);
	if ((op->in->set & BF_ISBNS) && books_set_isbns(op->out, op->in->isbns, op->in->nisbns, e))
		return e->code;
	if (validate_book(op->out, e))
		return e->code;
	int64_t now = time_now_ms();
	op->out->updated_at = now > op->out->updated_at ? now : op->out->updated_at + 1;
	if ((rc = store_book_update(c, op->out, e)) != 0 || (rc = store_book_set_meta(c, op->out, e)) != 0)
		return rc;
	if ((op->in->set & (BF_LANGUAGE | BF_PUBLISH_DATE)) &&
	    (rc = books_relink_editions(c, op->a, op->out->edition_group, e)) != 0)
		return rc;
	return store_book_get(c, op->a, op->id, op->out, e);
}

int books_update(db *d, struct arena *a, const char *id, const struct book_input *in, struct book *out,
		 struct err *e)
{
	if (!uuid_valid(id, strlen(id)))
		return err_set(e, ERR_NOT_FOUND, "book not found");
	struct book_op op = { a, id, in, out };
	return with_tx(d, id, update_tx, &op, e);
}

struct delete_op {
	struct arena a;
	const char *id;
};

/* The book goes, and the editions it linked are linked again without it. */
static int delete_tx(db_conn *c, void *ctx, struct err *e)
{
	struct delete_op *op = ctx;
	struct book b;
	int rc = store_book_get(c, &op->a, op->id, &b, e);
	if (!rc)
		rc = store_book_delete(c, op->id, e);
	if (!rc)
		rc = books_relink_editions(c, &op->a, b.edition_group, e);
	return rc;
}

int books_delete(db *d, const char *id, struct err *e)
{
	if (!uuid_valid(id, strlen(id)))
		return err_set(e, ERR_NOT_FOUND, "book not found");
	struct delete_op op = { .id = id };
	arena_init(&op.a, 4096);
	int rc = with_tx(d, id, delete_tx, &op, e);
	arena_free(&op.a);
	return rc;
}

int books_any(db *d, int *any, struct err *e)
{
	db_conn *c;
	int rc = db_acquire(d, &c, e);
	if (rc)
		return rc;
	rc = store_book_any(c, any, e);
	db_release(c);
	return rc;
}

int books_get(db *d, struct arena *a, const char *id, struct book *out, struct err *e)
{
	if (!uuid_valid(id, strlen(id)))
		return err_set(e, ERR_NOT_FOUND, "book not found");
	db_conn *c;
	int rc = db_acquire(d, &c, e);
	if (rc)
		return rc;
	rc = store_book_get(c, a, id, out, e);
	db_release(c);
	return rc;
}

int books_get_by_isbn(db *d, struct arena *a, const char *isbn, struct book *out, struct err *e)
{
	struct isbn is;
	int rc = isbn_parse(isbn, &is, e);
	if (rc)
		return rc;
	db_conn *c;
	if ((rc = db_acquire(d, &c, e)) != 0)
		return rc;
	rc = store_book_by_isbn13(c, a, is.isbn13, out, e);
	if (rc == ERR_NOT_FOUND)
		err_set(e, ERR_NOT_FOUND, "no book with ISBN %s", is.digits);
	db_release(c);
	return rc;
}

int books_list(db *d, struct arena *a, const char *cursor, int limit, struct book **items, int *n,
	       char **next, struct err *e)
{
	*next = NULL;
	if (cursor && !uuid_valid(cursor, strlen(cursor)))
		return err_set(e, ERR_INVALID, "cursor is not valid");
	db_conn *c;
	int rc = db_acquire(d, &c, e);
	if (rc)
		return rc;
	/* One extra row tells whether another page exists. */
	rc = store_book_list(c, a, cursor, limit + 1, items, n, e);
	db_release(c);
	if (rc)
		return rc;
	if (*n > limit) {
		*n = limit;
		*next = arena_strdup(a, (*items)[limit - 1].id);
	}
	return 0;
}

/* ---- chapters -------------------------------------------------------------- */

int chapters_analyze(struct arena *a, struct chapter *ch, struct err *e)
{
	struct md_info info;
	int rc = md_analyze(ch->content_markdown, ch->content_len, a, &info, e);
	if (rc)
		return rc;
	ch->word_count = info.word_count;
	ch->sections_json = md_sections_json(&info, a);
	return ch->sections_json ? 0 : err_set(e, ERR_INTERNAL, "out of memory");
}

static int validate_chapter(const struct chapter_input *in, struct err *e)
{
	if (!in->title || !*in->title)
		err_field(e, "title", "is required");
	if (!in->content)
		err_field(e, "content_markdown", "is required");
	if (in->number < 0)
		err_field(e, "number", "must be 1 or more");
	return e->code ? e->code : 0;
}

struct chapter_op {
	struct arena *a;
	const char *book_id, *ref;
	const struct chapter_input *in;
	struct chapter *out;
};

static int book_must_exist(db_conn *c, struct arena *a, const char *book_id, struct err *e)
{
	struct book b;
	return store_book_get(c, a, book_id, &b, e);
}

static int chapter_create_tx(db_conn *c, void *ctx, struct err *e)
{
	struct chapter_op *op = ctx;
	struct chapter *ch = op->out;
	int rc = store_book_lock(c, op->book_id, e) /* the book first: one lock order */;
	if (rc)
		return rc;
	if (!ch->number && (rc = store_chapter_next_number(c, op->book_id, &ch->number, e)) != 0)
		return rc;
	if ((rc = store_chapter_insert(c, ch, e)) != 0)
		return rc;
	if ((rc = store_book_touch(c, op->book_id, ch->updated_at, e)) != 0)
		return rc;
	return store_chapter_get(c, op->a, op->book_id, ch->id, ch, e);
}

static int chapter_fill(struct arena *a, const char *book_id, const struct chapter_input *in,
			struct chapter *ch, struct err *e)
{
	snprintf(ch->book_id, sizeof(ch->book_id), "%s", book_id);
	ch->title = (char *)in->title;
	ch->content_markdown = (char *)in->content;
	ch->content_len = in->content_len;
	ch->number = in->number;
	ch->source_key = (char *)in->source_key;
	ch->updated_at = time_now_ms();
	return chapters_analyze(a, ch, e);
}

int chapters_create(db *d, struct arena *a, const char *book_id, const struct chapter_input *in,
		    struct chapter *out, struct err *e)
{
	if (!uuid_valid(book_id, strlen(book_id)))
		return err_set(e, ERR_NOT_FOUND, "book not found");
	if (validate_chapter(in, e))
		return e->code;
	memset(out, 0, sizeof(*out));
	if (uuid_v7(out->id))
		return err_set(e, ERR_INTERNAL, "no randomness");
	int rc = chapter_fill(a, book_id, in, out, e);
	if (rc)
		return rc;
	out->created_at = out->updated_at;
	out->rev = 1;
	struct chapter_op op = { a, book_id, NULL, in, out };
	return with_tx(d, book_id, chapter_create_tx, &op, e);
}

static int chapter_replace_tx(db_conn *c, void *ctx, struct err *e)
{
	struct chapter_op *op = ctx;
	struct chapter old;
	int rc = store_book_lock(c, op->book_id, e);
	if (rc == 0)
		rc = store_chapter_get(c, op->a, op->book_id, op->ref, &old, e);
	if (rc)
		return rc;
	struct chapter *ch = op->out;
	memcpy(ch->id, old.id, sizeof(ch->id));
	ch->created_at = old.created_at;
	ch->summary = old.summary;
	ch->audio_url = old.audio_url;
	/* An editor's text makes a model-named chapter the editor's. */
	ch->source_key = old.source_key && strcmp(old.source_key, CHAPTER_SOURCE_LLM) ? old.source_key : NULL;
	if (!ch->number)
		ch->number = old.number;
	if ((rc = store_chapter_update(c, ch, e)) != 0)
		return rc;
	if ((rc = store_book_touch(c, op->book_id, ch->updated_at, e)) != 0)
		return rc;
	return store_chapter_get(c, op->a, op->book_id, ch->id, ch, e);
}

int chapters_replace(db *d, struct arena *a, const char *book_id, const char *ref,
		     const struct chapter_input *in, struct chapter *out, struct err *e)
{
	if (!uuid_valid(book_id, strlen(book_id)))
		return err_set(e, ERR_NOT_FOUND, "book not found");
	if (validate_chapter(in, e))
		return e->code;
	memset(out, 0, sizeof(*out));
	int rc = chapter_fill(a, book_id, in, out, e);
	if (rc)
		return rc;
	struct chapter_op op = { a, book_id, ref, in, out };
	return with_tx(d, book_id, chapter_replace_tx, &op, e);
}

struct chapter_del {
	const char *book_id, *ref;
};

static int chapter_delete_tx(db_conn *c, void *ctx, struct err *e)
{
	struct chapter_del *op = ctx;
	char id[UUID_STR_LEN];
	int64_t rev;
	int rc = store_book_lock(c, op->book_id, e);
	if (rc == 0)
		rc = store_chapter_rev(c, op->book_id, op->ref, id, &rev, e);
	if (rc)
		return rc;
	if ((rc = store_chapter_delete(c, op->book_id, id, e)) != 0)
		return rc;
	return store_book_touch(c, op->book_id, time_now_ms(), e);
}

int chapters_delete(db *d, const char *book_id, const char *ref, struct err *e)
{
	struct chapter_del op = { book_id, ref };
	return with_tx(d, book_id, chapter_delete_tx, &op, e);
}

int chapters_get(db *d, struct arena *a, const char *book_id, const char *ref, struct chapter *out,
		 struct err *e)
{
	db_conn *c;
	int rc = db_acquire(d, &c, e);
	if (rc)
		return rc;
	rc = store_chapter_get(c, a, book_id, ref, out, e);
	db_release(c);
	return rc;
}

#define DOC_ID_MAX 512

int chapters_by_doc_id(db *d, struct arena *a, const char *doc_id, const char *book_id, const char *prefer_book,
		       char book_out[UUID_STR_LEN], char chapter_out[UUID_STR_LEN], struct err *e)
{
	static const char *const forms[] = { "%s",	     "%s.md",	       "%s.mdx",	 "docs/%s.md",
					     "docs/%s.mdx",  "%s/index.md",    "%s/index.mdx",	 "%s/README.md",
					     "docs/%s/index.md", "docs/%s/index.mdx", "%s.markdown", "docs/%s.markdown" };
	size_t n = strlen(doc_id);
	while (n && *doc_id == '/')
		doc_id++, n--;
	while (n && doc_id[n - 1] == '/')
		n--;
	if (n > 4 && !memcmp(doc_id + n - 4, ".mdx", 4))
		n -= 4;
	else if (n > 3 && !memcmp(doc_id + n - 3, ".md", 3))
		n -= 3;
	char *id = n && n <= DOC_ID_MAX ? arena_strndup(a, doc_id, n) : NULL;
	if (!id || strstr(id, "//") || !strcmp(id, "..") || !strncmp(id, "../", 3) || strstr(id, "/../"))
		return err_set(e, ERR_NOT_FOUND, "no chapter with the doc id %.80s", doc_id);
	if (book_id && !uuid_valid(book_id, strlen(book_id)))
		return err_set(e, ERR_NOT_FOUND, "book not found");
	const char *keys[ARRAY_LEN(forms)];
	for (size_t i = 0; i < ARRAY_LEN(forms); i++)
		if (!(keys[i] = arena_printf(a, forms[i], id)))
			return err_set(e, ERR_INTERNAL, "out of memory");
	db_conn *c;
	struct chapter_key *rows = NULL;
	int nrows = 0;
	int rc = db_acquire(d, &c, e);
	if (rc)
		return rc;
	rc = store_chapters_by_source_key(c, a, keys, (int)ARRAY_LEN(forms), uuid_valid(id, strlen(id)) ? id : NULL,
					  book_id, 64, &rows, &nrows, e);
	db_release(c);
	if (rc)
		return rc;
	/* The best form per row; then one book, or the preferred one. */
	int best = -1, rank = (int)ARRAY_LEN(forms) + 1, several = 0, preferred = 0; /* the id itself ranks last */
	for (int i = 0; i < nrows; i++)
		if (strcmp(rows[i].book_id, rows[0].book_id))
			several = 1;
	for (int i = 0; i < nrows; i++)
		preferred |= prefer_book && !strcmp(rows[i].book_id, prefer_book);
	for (int i = 0; i < nrows; i++) {
		if (several && preferred && strcmp(rows[i].book_id, prefer_book))
			continue;
		int r = 0;
		while (r < (int)ARRAY_LEN(forms) && strcmp(keys[r], rows[i].source_key ? rows[i].source_key : ""))
			r++;
		if (r < rank) {
			rank = r;
			best = i;
		}
	}
	if (best < 0)
		return err_set(e, ERR_NOT_FOUND, "no chapter with the doc id %.80s", id);
	if (several && !preferred)
		return err_set(e, ERR_CONFLICT, "several books have a chapter with the doc id %.80s: name one with ?book=",
			       id);
	memcpy(book_out, rows[best].book_id, UUID_STR_LEN);
	memcpy(chapter_out, rows[best].id, UUID_STR_LEN);
	return 0;
}

#define REF_MAX 64 /* longer refs are not chapter ids or numbers: not cached */

/* (book, ref) -> (chapter id, revision): from the cache while the book's
 * change stamp holds (changes.h; PostgreSQL only), else from the database. */
int chapters_rev(db *d, const char *book_id, const char *ref, char id[UUID_STR_LEN], int64_t *rev,
		 struct err *e)
{
	char key[UUID_STR_LEN + REF_MAX + 8];
	uint64_t stamp = strlen(ref) <= REF_MAX ? changes_stamp2(db_changes(d), "book:", book_id) : 0;
	if (stamp) {
		snprintf(key, sizeof(key), "rev/%s/%s", book_id, ref);
		struct rcbuf *b = changes_get(db_changes(d), key, stamp);
		if (b) {
			int ok = sscanf(b->data, "%36s %" SCNd64, id, rev) == 2;
			rcbuf_unref(b);
			if (ok)
				return 0;
		}
	}
	db_conn *c;
	int rc = db_acquire(d, &c, e);
	if (rc)
		return rc;
	rc = store_chapter_rev(c, book_id, ref, id, rev, e);
	db_release(c);
	if (rc == 0 && stamp) {
		char v[UUID_STR_LEN + 24];
		snprintf(v, sizeof(v), "%s %" PRId64, id, *rev);
		changes_put(db_changes(d), key, stamp, v);
	}
	return rc;
}

int chapters_list(db *d, struct arena *a, const char *book_id, const char *cursor, int limit,
		  struct chapter **items, int *n, char **next, struct err *e)
{
	*next = NULL;
	int64_t after = 0;
	if (cursor) {
		char *end;
		after = strtoll(cursor, &end, 10);
		if (*cursor == '\0' || *end != '\0' || after < 0)
			return err_set(e, ERR_INVALID, "cursor is not valid");
	}
	db_conn *c;
	int rc = db_acquire(d, &c, e);
	if (rc)
		return rc;
	rc = book_must_exist(c, a, book_id, e);
	if (!rc)
		rc = store_chapter_list(c, a, book_id, after, limit + 1, items, n, e);
	db_release(c);
	if (rc)
		return rc;
	if (*n > limit) {
		*n = limit;
		*next = arena_printf(a, "%lld", (long long)(*items)[limit - 1].number);
	}
	return 0;
}
