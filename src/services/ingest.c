#include "ingest.h"

#include <stdio.h>
#include <string.h>

#include "../core/mem.h"
#include "../core/timeutil.h"
#include "../core/utf8.h"
#include "../store/changes.h"
#include "../providers/importer.h"
#include "books.h"

struct ingest {
	const struct ingest_opts *o;
	struct ingest_result *r;
	struct import_book *src;
	struct arena *a;
	struct book book;
	struct chapter *ch; /* analysed chapters, in order */
};

static int ingest_tx(db_conn *c, void *ctx, struct err *e)
{
	struct ingest *g = ctx;
	struct book *b = &g->book;
	int64_t now = time_now_ms();
	int rc;
	char id[UUID_STR_LEN] = "";

	if (g->o->book_id) {
		struct book old;
		if ((rc = store_book_get(c, g->a, g->o->book_id, &old, e)) != 0)
			return err_set(e, rc, "book %s not found", g->o->book_id);
		snprintf(id, sizeof(id), "%s", g->o->book_id);
	} else if ((rc = store_book_find(c, b->title, b->author, id, e)) != 0 && rc != ERR_NOT_FOUND) {
		return rc;
	}
	g->r->created = !id[0];
	b->updated_at = now;
	if (g->r->created) {
		if (uuid_v7(b->id))
			return err_set(e, ERR_INTERNAL, "no randomness");
		b->created_at = now;
		rc = store_book_insert(c, b, e);
	} else {
		struct book old;
		if ((rc = store_book_get(c, g->a, id, &old, e)) != 0)
			return rc;
		memcpy(b->id, id, sizeof(b->id));
		/* Fields the source does not give keep their stored values. */
		b->created_at = old.created_at;
		b->edition = old.edition;
		b->publisher = old.publisher;
		b->pages = old.pages;
		b->publish_date = old.publish_date;
		b->cover_url = old.cover_url;
		if (!b->nisbns) {
			b->nisbns = old.nisbns;
			memcpy(b->isbns, old.isbns, sizeof(old.isbns));
		}
		rc = store_book_update(c, b, e);
	}
	if (rc)
		return rc;

	struct chapter *old = NULL;
	int nold = 0;
	if (!g->r->created) {
		if ((rc = store_chapter_all(c, g->a, b->id, &old, &nold, e)) != 0)
			return rc;
		if ((rc = store_chapter_park_numbers(c, b->id, e)) != 0)
			return rc;
	}
	int n = g->src->nchapters;
	char *kept = nold ? arena_alloc(g->a, (size_t)nold) : NULL;
	if (nold && !kept)
		return err_set(e, ERR_INTERNAL, "out of memory");
	if (kept)
		memset(kept, 0, (size_t)nold);
	for (int i = 0; i < n; i++) {
		struct chapter *ch = &g->ch[i];
		struct chapter *prev = NULL;
		for (int k = 0; k < nold; k++)
			if (!kept[k] && old[k].source_key && strcmp(old[k].source_key, ch->source_key) == 0) {
				prev = &old[k];
				kept[k] = 1;
				break;
			}
		ch->number = i + 1;
		ch->updated_at = now;
		snprintf(ch->book_id, sizeof(ch->book_id), "%s", b->id);
		if (!prev) {
			if (uuid_v7(ch->id))
				return err_set(e, ERR_INTERNAL, "no randomness");
			ch->created_at = now;
			ch->rev = 1;
			rc = store_chapter_insert(c, ch, e);
			g->r->added++;
		} else if (strcmp(prev->title, ch->title) != 0 || prev->content_len != ch->content_len ||
			   memcmp(prev->content_markdown, ch->content_markdown, ch->content_len) != 0) {
			memcpy(ch->id, prev->id, sizeof(ch->id));
			ch->summary = prev->summary;
			ch->audio_url = prev->audio_url;
			rc = store_chapter_update(c, ch, e);
			g->r->updated++;
		} else {
			rc = store_chapter_renumber(c, b->id, prev->id, ch->number, e);
			g->r->unchanged++;
		}
		if (rc)
			return rc;
		if (g->o->progress)
			g->o->progress(g->o->progress_ctx, i + 1, n);
	}
	for (int k = 0; k < nold; k++)
		if (!kept[k]) {
			if ((rc = store_chapter_delete(c, b->id, old[k].id, e)) != 0)
				return rc;
			g->r->removed++;
		}
	return 0;
}

/* Copies the importer's warnings; a single-file source is named as its user
 * knows it (an upload's file name), not by its name on this machine. */
static int copy_warnings(const struct import_book *src, const struct ingest_opts *o, struct ingest_result *r,
			 struct err *e)
{
	r->warnings_omitted = src->warnings_omitted;
	if (!src->nwarnings)
		return 0;
	r->warnings = xcalloc((size_t)src->nwarnings, sizeof(*r->warnings));
	if (!r->warnings)
		return err_set(e, ERR_INTERNAL, "out of memory");
	for (int i = 0; i < src->nwarnings; i++) {
		const struct import_warning *w = &src->warnings[i];
		struct ingest_warning *to = &r->warnings[i];
		const char *file = src->single_file && o->name && *o->name ? o->name : w->file;
		size_t n = utf8_prefix(file, strlen(file), sizeof(to->file) - 1);
		memcpy(to->file, file, n);
		to->file[n] = '\0';
		snprintf(to->action, sizeof(to->action), "%s", w->action);
		n = utf8_prefix(w->message, strlen(w->message), sizeof(to->message) - 1);
		memcpy(to->message, w->message, n);
		to->message[n] = '\0';
	}
	r->nwarnings = src->nwarnings;
	return 0;
}

void ingest_result_free(struct ingest_result *r)
{
	xfree(r->warnings);
	r->warnings = NULL;
	r->nwarnings = 0;
}

json_t *ingest_result_json(const struct ingest_result *r)
{
	json_t *ws = json_array();
	for (int i = 0; ws && i < r->nwarnings; i++) {
		const struct ingest_warning *w = &r->warnings[i];
		json_t *o = json_pack("{s:s, s:s, s:s}", "file", w->file, "action", w->action, "message", w->message);
		if (!o || json_array_append_new(ws, o)) {
			json_decref(ws);
			return NULL;
		}
	}
	if (!ws)
		return NULL;
	return json_pack("{s:s, s:i, s:s, s:b, s:i, s:i, s:i, s:i, s:o, s:i}", "book_id", r->book_id, "chapters",
			 r->chapters, "title", r->title, "created", r->created, "added", r->added, "updated",
			 r->updated, "unchanged", r->unchanged, "removed", r->removed, "warnings", ws,
			 "warnings_omitted", r->warnings_omitted);
}

int ingest_path(db *d, const char *path, const struct ingest_opts *o, struct ingest_result *r, struct err *e)
{
	struct import_book src;
	struct arena a;
	arena_init(&a, 64 * 1024);
	memset(r, 0, sizeof(*r));
	int rc = import_load(path, &src, e);
	if (rc || (rc = copy_warnings(&src, o, r, e)) != 0)
		goto out;

	struct ingest g = { .o = o, .r = r, .src = &src, .a = &a };
	struct book *b = &g.book;
	b->title = (char *)(o->title ? o->title : src.title);
	if (!o->title && src.title_from_name && o->name && *o->name) {
		/* "my-book.zip" -> "my-book" */
		char *t = arena_strdup(&a, o->name);
		char *dot = t ? strrchr(t, '.') : NULL;
		if (dot && dot != t)
			*dot = '\0';
		if (t && *t)
			b->title = t;
	}
	b->author = (char *)(o->author ? o->author : src.author);
	b->language = (char *)(o->language ? o->language : src.language ? src.language : "en");
	if (!b->title || !*b->title) {
		rc = err_set(e, ERR_INVALID, "%s: the book has no title (use --title)", path);
		goto out;
	}
	if (!books_language_valid(b->language)) {
		rc = err_set(e, ERR_INVALID, "%s: language \"%s\" is not a language tag such as en or ur", path, b->language);
		goto out;
	}
	if (src.nisbns && books_set_isbns(b, (const char *const *)src.isbns, src.nisbns, e)) {
		rc = err_set(e, ERR_INVALID, "%s: %s: %s", src.isbn_source, e->details[0].field, e->details[0].message);
		goto out;
	}

	/* Analyse every chapter before the transaction: no parsing under the write lock. */
	g.ch = arena_alloc(&a, sizeof(*g.ch) * (size_t)src.nchapters);
	if (!g.ch) {
		rc = err_set(e, ERR_INTERNAL, "out of memory");
		goto out;
	}
	for (int i = 0; i < src.nchapters; i++) {
		struct chapter *ch = &g.ch[i];
		memset(ch, 0, sizeof(*ch));
		ch->title = src.chapters[i].title;
		ch->content_markdown = src.chapters[i].markdown;
		ch->content_len = src.chapters[i].len;
		ch->source_key = src.chapters[i].source_key;
		if ((rc = chapters_analyze(&a, ch, e)) != 0) {
			char why[sizeof(e->msg)]; /* e->msg is also the destination */
			memcpy(why, e->msg, sizeof(why));
			err_set(e, rc, "%s/%s: %s", path, ch->source_key, why);
			goto out;
		}
	}

	db_conn *c;
	if ((rc = db_acquire(d, &c, e)) != 0)
		goto out;
	if ((rc = db_begin(c, e)) == 0) {
		rc = ingest_tx(c, &g, e);
		if (rc == 0)
			rc = db_commit(c, e);
		if (rc)
			db_rollback(c);
	}
	db_release(c);
	if (rc == ERR_CONFLICT) {
		char why[sizeof(e->msg)];
		memcpy(why, e->msg, sizeof(why));
		err_set(e, rc, "%s: %s", path, why);
	}
	if (!rc) {
		changes_touch2(db_changes(d), "book:", b->id);
		memcpy(r->book_id, b->id, sizeof(r->book_id));
		snprintf(r->title, sizeof(r->title), "%s", b->title);
		r->chapters = src.nchapters;
	}
out:
	if (rc)
		ingest_result_free(r);
	import_book_free(&src);
	arena_free(&a);
	return rc;
}
