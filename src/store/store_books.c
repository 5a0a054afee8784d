#include "store_books.h"

#include <stdlib.h>
#include <string.h>

#include "../core/mem.h"

/* ---- row readers ----------------------------------------------------------- */

#define BOOK_COLS                                                                          \
	"b.id, b.title, b.author, b.language, b.edition, b.publisher, b.pages, "           \
	"b.publish_date, b.cover_url, b.created_at, b.updated_at, "                        \
	"(SELECT count(*) FROM chapters c WHERE c.book_id = b.id), "                       \
	"b.subtitle, b.description, b.subjects, b.metadata_source, b.edited, "             \
	"b.meta_fields, b.edition_group, b.superseded_by, "                                \
	"(SELECT min(o.id) FROM books o WHERE o.superseded_by = b.id)"

static void read_book(const db_row *r, struct arena *a, struct book *b)
{
	memset(b, 0, sizeof(*b));
	db_row_copy(r, 0, b->id, sizeof(b->id));
	b->title = db_row_dup(r, 1, a);
	b->author = db_row_dup(r, 2, a);
	b->language = db_row_dup(r, 3, a);
	b->edition = db_row_dup(r, 4, a);
	b->publisher = db_row_dup(r, 5, a);
	b->pages = db_row_is_null(r, 6) ? 0 : db_row_int(r, 6);
	b->publish_date = db_row_dup(r, 7, a);
	b->cover_url = db_row_dup(r, 8, a);
	b->created_at = db_row_int(r, 9);
	b->updated_at = db_row_int(r, 10);
	b->chapter_count = db_row_int(r, 11);
	b->subtitle = db_row_dup(r, 12, a);
	b->description = db_row_dup(r, 13, a);
	b->subjects_json = db_row_dup(r, 14, a);
	b->metadata_source = db_row_dup(r, 15, a);
	b->edited = (unsigned)db_row_int(r, 16);
	b->meta_fields = (unsigned)db_row_int(r, 17);
	b->edition_group = db_row_dup(r, 18, a);
	b->superseded_by = db_row_dup(r, 19, a);
	b->supersedes = db_row_dup(r, 20, a);
}

struct book_one {
	struct arena *a;
	struct book *out;
	int found;
};

static int book_one_cb(void *ctx, const db_row *r)
{
	struct book_one *o = ctx;
	read_book(r, o->a, o->out);
	o->found = 1;
	return 1; /* one row is all we want */
}

static int isbn_cb(void *ctx, const db_row *r)
{
	struct book *b = ctx;
	if (b->nisbns >= BOOK_MAX_ISBNS)
		return 1;
	struct book_isbn *i = &b->isbns[b->nisbns++];
	db_row_copy(r, 0, i->isbn, sizeof(i->isbn));
	db_row_copy(r, 1, i->isbn13, sizeof(i->isbn13));
	db_row_copy(r, 2, i->type, sizeof(i->type));
	return 0;
}

DB_STMT(isbns_of_book, "SELECT isbn, isbn13, isbn_type FROM book_isbns WHERE book_id = $1 ORDER BY position");

static int load_isbns(db_conn *c, struct book *b, struct err *e)
{
	struct db_val p[] = { dbv_text(b->id) };
	int rc = db_run(c, &isbns_of_book, p, 1, isbn_cb, b, NULL, e);
	return rc > 0 ? 0 : rc;
}

/* A book's ISBNs and, when it has a group, its editions. */
static int load_more(db_conn *c, struct arena *a, struct book *b, struct err *e)
{
	int rc = load_isbns(c, b, e);
	if (rc || !b->edition_group)
		return rc;
	return store_book_group(c, a, b->edition_group, &b->editions, &b->neditions, e);
}

static int book_get_by(db_conn *c, struct arena *a, struct db_stmt *s, const char *key, struct book *out,
		       struct err *e)
{
	struct book_one o = { a, out, 0 };
	struct db_val p[] = { dbv_text(key) };
	int rc = db_run(c, s, p, 1, book_one_cb, &o, NULL, e);
	if (rc < 0)
		return rc;
	if (!o.found)
		return err_set(e, ERR_NOT_FOUND, "book not found");
	return load_more(c, a, out, e);
}

DB_STMT(book_by_id, "SELECT " BOOK_COLS " FROM books b WHERE b.id = $1");
DB_STMT(book_by_isbn13, "SELECT " BOOK_COLS " FROM books b JOIN book_isbns i ON i.book_id = b.id WHERE i.isbn13 = $1");

int store_book_get(db_conn *c, struct arena *a, const char *id, struct book *out, struct err *e)
{
	return book_get_by(c, a, &book_by_id, id, out, e);
}

int store_book_by_isbn13(db_conn *c, struct arena *a, const char *isbn13, struct book *out, struct err *e)
{
	return book_get_by(c, a, &book_by_isbn13, isbn13, out, e);
}

struct book_many {
	struct arena *a;
	struct book *items;
	int n, cap;
};

static int book_many_cb(void *ctx, const db_row *r)
{
	struct book_many *m = ctx;
	if (m->n >= m->cap)
		return 1;
	read_book(r, m->a, &m->items[m->n++]);
	return 0;
}

DB_STMT(book_list, "SELECT " BOOK_COLS " FROM books b WHERE b.id > $1 ORDER BY b.id LIMIT $2");

int store_book_list(db_conn *c, struct arena *a, const char *after, int limit, struct book **items,
		    int *n, struct err *e)
{
	struct book_many m = { a, arena_alloc(a, sizeof(struct book) * (size_t)(limit ? limit : 1)), 0, limit };
	if (!m.items)
		return err_set(e, ERR_INTERNAL, "out of memory");
	struct db_val p[] = { dbv_text(after ? after : ""), dbv_int(limit) };
	int rc = db_run(c, &book_list, p, 2, book_many_cb, &m, NULL, e);
	if (rc < 0)
		return rc;
	for (int i = 0; i < m.n; i++)
		if ((rc = load_more(c, a, &m.items[i], e)) != 0)
			return rc;
	*items = m.items;
	*n = m.n;
	return 0;
}

static int id_cb(void *ctx, const db_row *r)
{
	db_row_copy(r, 0, ctx, UUID_STR_LEN);
	return 1;
}

static int any_cb(void *ctx, const db_row *r)
{
	UNUSED(r);
	*(int *)ctx = 1;
	return 1;
}

DB_STMT(book_ids, "SELECT id FROM books ORDER BY id");

struct id_list {
	struct arena *a;
	char **ids;
	int n, cap;
	int oom;
};

static int ids_cb(void *ctx, const db_row *r)
{
	struct id_list *m = ctx;
	if (!(m->ids = arena_grow(m->a, m->ids, m->n, &m->cap, sizeof(*m->ids))) ||
	    !(m->ids[m->n] = db_row_dup(r, 0, m->a))) {
		m->oom = 1;
		return 1;
	}
	m->n++;
	return 0;
}

int store_book_ids(db_conn *c, struct arena *a, char ***ids, int *n, struct err *e)
{
	struct id_list m = { a, NULL, 0, 0, 0 };
	int rc = db_run(c, &book_ids, NULL, 0, ids_cb, &m, NULL, e);
	if (rc < 0)
		return rc;
	if (m.oom)
		return err_set(e, ERR_INTERNAL, "out of memory");
	*ids = m.ids;
	*n = m.n;
	return 0;
}

DB_STMT(book_any, "SELECT 1 FROM books LIMIT 1");

int store_book_any(db_conn *c, int *any, struct err *e)
{
	*any = 0;
	int rc = db_run(c, &book_any, NULL, 0, any_cb, any, NULL, e);
	return rc < 0 ? rc : 0;
}

/* IS is SQLite's null-safe equality; PostgreSQL spells it IS NOT DISTINCT FROM. */
DB_STMT_DIALECTS(book_find, "SELECT id FROM books WHERE title = $1 AND author IS $2 ORDER BY id DESC LIMIT 1",
		 "SELECT id FROM books WHERE title = $1 AND author IS NOT DISTINCT FROM $2 ORDER BY id DESC LIMIT 1");

int store_book_find(db_conn *c, const char *title, const char *author, char id[UUID_STR_LEN], struct err *e)
{
	struct db_val p[] = { dbv_text(title), dbv_text(author) };
	id[0] = '\0';
	int rc = db_run(c, &book_find, p, 2, id_cb, id, NULL, e);
	if (rc < 0)
		return rc;
	if (!id[0])
		return err_set(e, ERR_NOT_FOUND, "book not found");
	return 0;
}

DB_STMT(isbns_delete, "DELETE FROM book_isbns WHERE book_id = $1");
DB_STMT(isbn_insert, "INSERT INTO book_isbns (isbn13, book_id, isbn, isbn_type, position) VALUES ($1, $2, $3, $4, $5)");
DB_STMT(isbn_holder, "SELECT b.id, b.title FROM book_isbns i JOIN books b ON b.id = i.book_id "
		     "WHERE i.isbn13 = $1 AND i.book_id <> $2");

struct holder {
	char id[UUID_STR_LEN];
	char title[96];
};

static int holder_cb(void *ctx, const db_row *r)
{
	struct holder *h = ctx;
	db_row_copy(r, 0, h->id, sizeof(h->id));
	db_row_copy(r, 1, h->title, sizeof(h->title));
	return 1;
}

/* An ISBN held by another book is a conflict that names that book. Asked
 * before the INSERT: on PostgreSQL a unique violation ends the transaction,
 * so nothing could be read after it. */
static int isbn_free(db_conn *c, const struct book *b, const struct book_isbn *s, struct err *e)
{
	struct holder h = { "", "" };
	struct db_val p[] = { dbv_text(s->isbn13), dbv_text(b->id) };
	int rc = db_run(c, &isbn_holder, p, 2, holder_cb, &h, NULL, e);
	if (rc < 0)
		return rc;
	if (h.id[0])
		return err_set(e, ERR_CONFLICT, "ISBN %s already belongs to another book: %s (\"%s\")", s->isbn, h.id,
			       h.title);
	return 0;
}

static int put_isbns(db_conn *c, const struct book *b, struct err *e)
{
	struct db_val del[] = { dbv_text(b->id) };
	int rc = db_run(c, &isbns_delete, del, 1, NULL, NULL, NULL, e);
	for (int i = 0; !rc && i < b->nisbns; i++) {
		const struct book_isbn *s = &b->isbns[i];
		struct db_val p[] = { dbv_text(s->isbn13), dbv_text(b->id), dbv_text(s->isbn),
				      dbv_text(s->type), dbv_int(i) };
		if ((rc = isbn_free(c, b, s, e)) != 0)
			break;
		rc = db_run(c, &isbn_insert, p, 5, NULL, NULL, NULL, e);
		if (rc == ERR_CONFLICT) /* taken meanwhile, or twice in this book */
			err_set(e, ERR_CONFLICT, "ISBN %s already belongs to another book", s->isbn);
	}
	return rc;
}

static void book_params(const struct book *b, struct db_val p[11])
{
	p[0] = dbv_text(b->id);
	p[1] = dbv_text(b->title);
	p[2] = dbv_text(b->author);
	p[3] = dbv_text(b->language ? b->language : "en");
	p[4] = dbv_text(b->edition);
	p[5] = dbv_text(b->publisher);
	p[6] = b->pages ? dbv_int(b->pages) : dbv_null();
	p[7] = dbv_text(b->publish_date);
	p[8] = dbv_text(b->cover_url);
	p[9] = dbv_int(b->updated_at);
	p[10] = dbv_int(b->created_at); /* last: UPDATE binds only the first ten */
}

DB_STMT(book_insert, "INSERT INTO books (id, title, author, language, edition, publisher, pages, "
		     "publish_date, cover_url, updated_at, created_at) "
		     "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)");
DB_STMT(book_update, "UPDATE books SET title = $2, author = $3, language = $4, edition = $5, "
		     "publisher = $6, pages = $7, publish_date = $8, cover_url = $9, "
		     "updated_at = $10 WHERE id = $1");
DB_STMT(book_delete, "DELETE FROM books WHERE id = $1");
DB_STMT(book_touch, "UPDATE books SET updated_at = $2 WHERE id = $1");

int store_book_insert(db_conn *c, const struct book *b, struct err *e)
{
	struct db_val p[11];
	book_params(b, p);
	int rc = db_run(c, &book_insert, p, 11, NULL, NULL, NULL, e);
	return rc ? rc : put_isbns(c, b, e);
}

int store_book_update(db_conn *c, const struct book *b, struct err *e)
{
	struct db_val p[11];
	book_params(b, p);
	int64_t changed = 0;
	int rc = db_run(c, &book_update, p, 10, NULL, NULL, &changed, e);
	if (rc)
		return rc;
	if (!changed)
		return err_set(e, ERR_NOT_FOUND, "book not found");
	return put_isbns(c, b, e);
}

DB_STMT(book_set_meta, "UPDATE books SET subtitle = $2, description = $3, subjects = $4, metadata_source = $5, "
		       "edited = $6, meta_fields = $7, edition_group = $8 WHERE id = $1");

int store_book_set_meta(db_conn *c, const struct book *b, struct err *e)
{
	struct db_val p[] = { dbv_text(b->id),		   dbv_text(b->subtitle),	 dbv_text(b->description),
			      dbv_text(b->subjects_json),  dbv_text(b->metadata_source), dbv_int(b->edited),
			      dbv_int(b->meta_fields),	   dbv_text(b->edition_group) };
	int64_t changed = 0;
	int rc = db_run(c, &book_set_meta, p, 8, NULL, NULL, &changed, e);
	if (!rc && !changed)
		rc = err_set(e, ERR_NOT_FOUND, "book not found");
	return rc;
}

DB_STMT(book_group, "SELECT id, title, edition, language, publish_date, superseded_by FROM books "
		    "WHERE edition_group = $1 ORDER BY language, publish_date, id");

struct edition_list {
	struct arena *a;
	struct book_edition *items;
	int n, cap;
	int oom;
};

static int edition_cb(void *ctx, const db_row *r)
{
	struct edition_list *l = ctx;
	if (!(l->items = arena_grow(l->a, l->items, l->n, &l->cap, sizeof(*l->items)))) {
		l->oom = 1;
		return 1;
	}
	struct book_edition *ed = &l->items[l->n++];
	memset(ed, 0, sizeof(*ed));
	db_row_copy(r, 0, ed->id, sizeof(ed->id));
	ed->title = db_row_dup(r, 1, l->a);
	ed->edition = db_row_dup(r, 2, l->a);
	ed->language = db_row_dup(r, 3, l->a);
	ed->publish_date = db_row_dup(r, 4, l->a);
	ed->superseded_by = db_row_dup(r, 5, l->a);
	return 0;
}

int store_book_group(db_conn *c, struct arena *a, const char *group, struct book_edition **items, int *n,
		     struct err *e)
{
	struct edition_list l = { a, NULL, 0, 0, 0 };
	struct db_val p[] = { dbv_text(group) };
	int rc = db_run(c, &book_group, p, 1, edition_cb, &l, NULL, e);
	if (rc < 0)
		return rc;
	if (l.oom)
		return err_set(e, ERR_INTERNAL, "out of memory");
	*items = l.items;
	*n = l.n;
	return 0;
}

DB_STMT(book_link, "UPDATE books SET superseded_by = $2 WHERE id = $1");

int store_book_link(db_conn *c, const char *id, const char *superseded_by, struct err *e)
{
	struct db_val p[] = { dbv_text(id), dbv_text(superseded_by) };
	return db_run(c, &book_link, p, 2, NULL, NULL, NULL, e);
}

int store_book_delete(db_conn *c, const char *id, struct err *e)
{
	struct db_val p[] = { dbv_text(id) };
	int64_t changed = 0;
	int rc = db_run(c, &book_delete, p, 1, NULL, NULL, &changed, e);
	if (!rc && !changed)
		rc = err_set(e, ERR_NOT_FOUND, "book not found");
	return rc;
}

int store_book_touch(db_conn *c, const char *id, int64_t now, struct err *e)
{
	struct db_val p[] = { dbv_text(id), dbv_int(now) };
	return db_run(c, &book_touch, p, 2, NULL, NULL, NULL, e);
}

/* ---- chapters -------------------------------------------------------------- */

#define CHAPTER_COLS                                                                       \
	"id, book_id, number, title, summary, audio_url, word_count, sections, source_key, " \
	"rev, created_at, updated_at, summary_source"

static void read_chapter(const db_row *r, struct arena *a, struct chapter *ch)
{
	memset(ch, 0, sizeof(*ch));
	db_row_copy(r, 0, ch->id, sizeof(ch->id));
	db_row_copy(r, 1, ch->book_id, sizeof(ch->book_id));
	ch->number = db_row_int(r, 2);
	ch->title = db_row_dup(r, 3, a);
	ch->summary = db_row_dup(r, 4, a);
	ch->audio_url = db_row_dup(r, 5, a);
	ch->word_count = db_row_int(r, 6);
	ch->sections_json = db_row_dup(r, 7, a);
	ch->source_key = db_row_dup(r, 8, a);
	ch->rev = db_row_int(r, 9);
	ch->created_at = db_row_int(r, 10);
	ch->updated_at = db_row_int(r, 11);
	ch->summary_source = db_row_dup(r, 12, a);
	if (db_row_ncols(r) > 13 && !db_row_is_null(r, 13)) {
		size_t n;
		const char *t = db_row_text(r, 13, &n);
		ch->content_markdown = arena_strndup(a, t ? t : "", n);
		ch->content_len = n;
	}
}

struct chapter_many {
	struct arena *a;
	struct chapter *items;
	int n, cap;
	int grow;
};

static int chapter_many_cb(void *ctx, const db_row *r)
{
	struct chapter_many *m = ctx;
	if (m->n >= m->cap && !m->grow)
		return 1;
	if (!(m->items = arena_grow(m->a, m->items, m->n, &m->cap, sizeof(*m->items))))
		return ERR_INTERNAL;
	read_chapter(r, m->a, &m->items[m->n++]);
	return 0;
}

int store_chapter_ref_number(const char *ref, int64_t *num)
{
	size_t n = strlen(ref);
	if (n == 0 || n > 9)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (ref[i] < '0' || ref[i] > '9')
			return 0;
	*num = strtoll(ref, NULL, 10);
	return 1;
}

DB_STMT(chapter_by_number, "SELECT " CHAPTER_COLS ", content_markdown FROM chapters WHERE book_id = $1 AND number = $2");
DB_STMT(chapter_by_id, "SELECT " CHAPTER_COLS ", content_markdown FROM chapters WHERE book_id = $1 AND id = $2");

int store_chapter_get(db_conn *c, struct arena *a, const char *book_id, const char *ref,
		      struct chapter *out, struct err *e)
{
	struct chapter_many m = { a, out, 0, 1, 0 };
	int64_t num;
	int rc;
	if (store_chapter_ref_number(ref, &num)) {
		struct db_val p[] = { dbv_text(book_id), dbv_int(num) };
		rc = db_run(c, &chapter_by_number, p, 2, chapter_many_cb, &m, NULL, e);
	} else {
		struct db_val p[] = { dbv_text(book_id), dbv_text(ref) };
		rc = db_run(c, &chapter_by_id, p, 2, chapter_many_cb, &m, NULL, e);
	}
	if (rc < 0)
		return rc;
	if (!m.n)
		return err_set(e, ERR_NOT_FOUND, "chapter not found");
	return 0;
}

struct rev_out {
	char *id;
	int64_t *rev;
	int found;
};

static int rev_cb(void *ctx, const db_row *r)
{
	struct rev_out *o = ctx;
	db_row_copy(r, 0, o->id, UUID_STR_LEN);
	*o->rev = db_row_int(r, 1);
	o->found = 1;
	return 1;
}

DB_STMT(chapter_rev_by_number, "SELECT id, rev FROM chapters WHERE book_id = $1 AND number = $2");
DB_STMT(chapter_rev_by_id, "SELECT id, rev FROM chapters WHERE book_id = $1 AND id = $2");

int store_chapter_rev(db_conn *c, const char *book_id, const char *ref, char id[UUID_STR_LEN],
		      int64_t *rev, struct err *e)
{
	struct rev_out o = { id, rev, 0 };
	int64_t num;
	int rc;
	if (store_chapter_ref_number(ref, &num)) {
		struct db_val p[] = { dbv_text(book_id), dbv_int(num) };
		rc = db_run(c, &chapter_rev_by_number, p, 2, rev_cb, &o, NULL, e);
	} else {
		struct db_val p[] = { dbv_text(book_id), dbv_text(ref) };
		rc = db_run(c, &chapter_rev_by_id, p, 2, rev_cb, &o, NULL, e);
	}
	if (rc < 0)
		return rc;
	return o.found ? 0 : err_set(e, ERR_NOT_FOUND, "chapter not found");
}

DB_STMT(chapter_list, "SELECT " CHAPTER_COLS ", NULL FROM chapters WHERE book_id = $1 AND number > $2 "
		      "ORDER BY number LIMIT $3");
DB_STMT(chapter_all, "SELECT " CHAPTER_COLS ", content_markdown FROM chapters WHERE book_id = $1 ORDER BY number");

int store_chapter_list(db_conn *c, struct arena *a, const char *book_id, int64_t after, int limit,
		       struct chapter **items, int *n, struct err *e)
{
	struct chapter_many m = { a, arena_alloc(a, sizeof(struct chapter) * (size_t)(limit ? limit : 1)), 0, limit, 0 };
	if (!m.items)
		return err_set(e, ERR_INTERNAL, "out of memory");
	struct db_val p[] = { dbv_text(book_id), dbv_int(after), dbv_int(limit) };
	int rc = db_run(c, &chapter_list, p, 3, chapter_many_cb, &m, NULL, e);
	if (rc < 0)
		return rc;
	*items = m.items;
	*n = m.n;
	return 0;
}

DB_STMT(chapters_by_source_key, "SELECT id, book_id, number, source_key FROM chapters "
				"WHERE (source_key IN ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) OR id = $15) "
				"AND (CAST($13 AS TEXT) IS NULL OR book_id = $13) ORDER BY book_id, number LIMIT $14");

struct key_many {
	struct arena *a;
	struct chapter_key *items;
	int n, cap;
};

static int key_many_cb(void *ctx, const db_row *r)
{
	struct key_many *m = ctx;
	if (!(m->items = arena_grow(m->a, m->items, m->n, &m->cap, sizeof(*m->items))))
		return ERR_INTERNAL;
	struct chapter_key *k = &m->items[m->n++];
	db_row_copy(r, 0, k->id, sizeof(k->id));
	db_row_copy(r, 1, k->book_id, sizeof(k->book_id));
	k->number = db_row_int(r, 2);
	k->source_key = db_row_dup(r, 3, m->a);
	return 0;
}

int store_chapters_by_source_key(db_conn *c, struct arena *a, const char *const *keys, int nkeys,
				 const char *id, const char *book_id, int limit, struct chapter_key **items, int *n,
				 struct err *e)
{
	struct db_val p[STORE_SOURCE_KEYS + 3];
	if (nkeys < 1 || nkeys > STORE_SOURCE_KEYS)
		return err_set(e, ERR_INTERNAL, "store_chapters_by_source_key: %d keys", nkeys);
	for (int i = 0; i < STORE_SOURCE_KEYS; i++)
		p[i] = dbv_text(keys[i < nkeys ? i : 0]);
	p[STORE_SOURCE_KEYS] = dbv_text(book_id);
	p[STORE_SOURCE_KEYS + 1] = dbv_int(limit);
	p[STORE_SOURCE_KEYS + 2] = dbv_text(id);
	struct key_many m = { a, NULL, 0, 0 };
	int rc = db_run(c, &chapters_by_source_key, p, STORE_SOURCE_KEYS + 3, key_many_cb, &m, NULL, e);
	if (rc < 0)
		return rc;
	*items = m.items;
	*n = m.n;
	return 0;
}

int store_chapter_all(db_conn *c, struct arena *a, const char *book_id, struct chapter **items,
		      int *n, struct err *e)
{
	struct chapter_many m = { a, NULL, 0, 0, 1 };
	struct db_val p[] = { dbv_text(book_id) };
	int rc = db_run(c, &chapter_all, p, 1, chapter_many_cb, &m, NULL, e);
	if (rc < 0)
		return rc;
	*items = m.items;
	*n = m.n;
	return 0;
}

static void chapter_params(const struct chapter *ch, struct db_val p[13])
{
	p[0] = dbv_text(ch->id);
	p[1] = dbv_text(ch->book_id);
	p[2] = dbv_int(ch->number);
	p[3] = dbv_text(ch->title);
	p[4] = dbv_textn(ch->content_markdown, ch->content_len);
	p[5] = dbv_text(ch->summary);
	p[6] = dbv_text(ch->audio_url);
	p[7] = dbv_int(ch->word_count);
	p[8] = dbv_text(ch->sections_json);
	p[9] = dbv_text(ch->source_key);
	p[10] = dbv_int(ch->updated_at);
	/* Last: UPDATE binds only the first eleven. */
	p[11] = dbv_int(ch->created_at);
	p[12] = dbv_int(ch->rev);
}

DB_STMT(chapter_insert, "INSERT INTO chapters (id, book_id, number, title, content_markdown, summary, "
			"audio_url, word_count, sections, source_key, updated_at, created_at, rev) "
			"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)");
DB_STMT(chapter_update, "UPDATE chapters SET number = $3, title = $4, content_markdown = $5, summary = $6, "
			"audio_url = $7, word_count = $8, sections = $9, source_key = $10, "
			"updated_at = $11, rev = rev + 1 WHERE id = $1 AND book_id = $2");
DB_STMT(chapter_delete, "DELETE FROM chapters WHERE book_id = $1 AND id = $2");
DB_STMT(chapter_max_number, "SELECT max(number) FROM chapters WHERE book_id = $1");
DB_STMT(chapter_park_numbers, "UPDATE chapters SET number = -number WHERE book_id = $1 AND number > 0");
DB_STMT(chapter_renumber, "UPDATE chapters SET number = $3 WHERE book_id = $1 AND id = $2");

int store_chapter_insert(db_conn *c, const struct chapter *ch, struct err *e)
{
	struct db_val p[13];
	chapter_params(ch, p);
	int rc = db_run(c, &chapter_insert, p, 13, NULL, NULL, NULL, e);
	if (rc == ERR_CONFLICT)
		err_set(e, ERR_CONFLICT, "chapter number %lld already exists in this book", (long long)ch->number);
	return rc;
}

int store_chapter_update(db_conn *c, const struct chapter *ch, struct err *e)
{
	struct db_val p[13];
	chapter_params(ch, p);
	int64_t changed = 0;
	int rc = db_run(c, &chapter_update, p, 11, NULL, NULL, &changed, e);
	if (rc == ERR_CONFLICT)
		return err_set(e, ERR_CONFLICT, "chapter number %lld already exists in this book", (long long)ch->number);
	if (!rc && !changed)
		rc = err_set(e, ERR_NOT_FOUND, "chapter not found");
	return rc;
}

int store_chapter_delete(db_conn *c, const char *book_id, const char *id, struct err *e)
{
	struct db_val p[] = { dbv_text(book_id), dbv_text(id) };
	int64_t changed = 0;
	int rc = db_run(c, &chapter_delete, p, 2, NULL, NULL, &changed, e);
	if (!rc && !changed)
		rc = err_set(e, ERR_NOT_FOUND, "chapter not found");
	return rc;
}

int store_chapter_next_number(db_conn *c, const char *book_id, int64_t *next, struct err *e)
{
	struct db_val p[] = { dbv_text(book_id) };
	int64_t max = 0;
	int rc = db_run(c, &chapter_max_number, p, 1, db_row_first_int, &max, NULL, e);
	if (rc < 0)
		return rc;
	*next = max + 1;
	return 0;
}

int store_chapter_park_numbers(db_conn *c, const char *book_id, struct err *e)
{
	struct db_val p[] = { dbv_text(book_id) };
	return db_run(c, &chapter_park_numbers, p, 1, NULL, NULL, NULL, e);
}

int store_chapter_renumber(db_conn *c, const char *book_id, const char *id, int64_t number, struct err *e)
{
	struct db_val p[] = { dbv_text(book_id), dbv_text(id), dbv_int(number) };
	return db_run(c, &chapter_renumber, p, 3, NULL, NULL, NULL, e);
}

static int found_cb(void *ctx, const db_row *r)
{
	UNUSED(r);
	*(int *)ctx = 1;
	return 1;
}

DB_STMT_DIALECTS(book_lock, "SELECT id FROM books WHERE id = $1", "SELECT id FROM books WHERE id = $1 FOR UPDATE");

int store_book_lock(db_conn *c, const char *book_id, struct err *e)
{
	struct db_val p[] = { dbv_text(book_id) };
	int found = 0;
	int rc = db_run(c, &book_lock, p, 1, found_cb, &found, NULL, e);
	if (rc < 0)
		return rc;
	return found ? 0 : err_set(e, ERR_NOT_FOUND, "book not found");
}
