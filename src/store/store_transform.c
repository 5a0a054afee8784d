#include "store_transform.h"

#include <string.h>

struct text_out {
	struct arena *a;
	char *s;
	size_t n;
	int found;
};

static int text_cb(void *ctx, const db_row *r)
{
	struct text_out *o = ctx;
	const char *s = db_row_text(r, 0, &o->n);
	o->s = arena_strndup(o->a, s ? s : "", s ? o->n : 0);
	o->found = 1;
	return o->s ? 0 : ERR_INTERNAL;
}

DB_STMT(section_get, "SELECT output FROM section_transforms WHERE source_hash = $1 AND target = $2 "
		     "AND model = $3 AND prompt_version = $4");

int store_section_get(db_conn *c, struct arena *a, const char *source_hash, const char *target, const char *model,
		      int prompt_version, char **output, size_t *n, struct err *e)
{
	struct text_out o = { .a = a };
	struct db_val p[] = { dbv_text(source_hash), dbv_text(target), dbv_text(model), dbv_int(prompt_version) };
	int rc = db_run(c, &section_get, p, 4, text_cb, &o, NULL, e);
	if (rc > 0)
		rc = err_set(e, ERR_INTERNAL, "out of memory");
	if (rc == 0 && !o.found)
		rc = err_set(e, ERR_NOT_FOUND, "not cached");
	if (rc == 0) {
		*output = o.s;
		*n = o.n;
	}
	return rc;
}

DB_STMT(section_put, "INSERT INTO section_transforms (source_hash, target, model, prompt_version, source_text, "
		     "output, origin, answered_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
		     "ON CONFLICT (source_hash, target, model, prompt_version) DO NOTHING");

int store_section_put(db_conn *c, const struct section_row *r, struct err *e)
{
	struct db_val p[] = { dbv_text(r->source_hash), dbv_text(r->target),	  dbv_text(r->model),
			      dbv_int(r->prompt_version), dbv_text(r->source_text), dbv_text(r->output),
			      dbv_text(r->origin),	  dbv_text(r->answered_by), dbv_int(r->created_at) };
	return db_run(c, &section_put, p, 9, NULL, NULL, NULL, e);
}

DB_STMT(section_drop, "DELETE FROM section_transforms WHERE source_hash = $1 AND target = $2");

int store_section_drop(db_conn *c, const char *source_hash, const char *target, struct err *e)
{
	struct db_val p[] = { dbv_text(source_hash), dbv_text(target) };
	return db_run(c, &section_drop, p, 2, NULL, NULL, NULL, e);
}

DB_STMT(section_count, "SELECT count(*) FROM section_transforms WHERE target = $1");

int store_section_count(db_conn *c, const char *target, int64_t *n, struct err *e)
{
	struct db_val p[] = { dbv_text(target) };
	*n = 0;
	return db_run(c, &section_count, p, 1, db_row_first_int, n, NULL, e);
}

struct human_out {
	struct arena *a;
	struct human_section *items;
	int n, cap;
};

static int human_cb(void *ctx, const db_row *r)
{
	struct human_out *o = ctx;
	struct human_section *items = arena_grow(o->a, o->items, o->n, &o->cap, sizeof(*items));
	if (!items)
		return ERR_INTERNAL;
	o->items = items;
	struct human_section *h = &items[o->n++];
	h->anchor = db_row_dup(r, 0, o->a);
	h->source_hash = db_row_dup(r, 1, o->a);
	const char *s = db_row_text(r, 2, &h->content_len);
	h->content = arena_strndup(o->a, s ? s : "", s ? h->content_len : 0);
	h->updated_at = db_row_int(r, 3);
	return h->anchor && h->content ? 0 : ERR_INTERNAL;
}

DB_STMT(human_list, "SELECT anchor, source_hash, content, updated_at FROM human_translations "
		    "WHERE chapter_id = $1 AND lang = $2 ORDER BY position, anchor");

int store_human_list(db_conn *c, struct arena *a, const char *chapter_id, const char *lang,
		     struct human_section **items, int *n, struct err *e)
{
	struct human_out o = { .a = a };
	struct db_val p[] = { dbv_text(chapter_id), dbv_text(lang) };
	int rc = db_run(c, &human_list, p, 2, human_cb, &o, NULL, e);
	if (rc > 0)
		rc = err_set(e, ERR_INTERNAL, "out of memory");
	*items = o.items;
	*n = rc ? 0 : o.n;
	return rc;
}

DB_STMT(human_put, "INSERT INTO human_translations (chapter_id, lang, anchor, position, source_hash, content, "
		   "editor_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) "
		   "ON CONFLICT (chapter_id, lang, anchor) DO UPDATE SET position = excluded.position, "
		   "source_hash = excluded.source_hash, content = excluded.content, "
		   "editor_id = excluded.editor_id, updated_at = excluded.updated_at");

int store_human_put(db_conn *c, const char *chapter_id, const char *lang, const char *anchor, int position,
		    const char *source_hash, const char *content, size_t n, const char *editor, int64_t now,
		    struct err *e)
{
	struct db_val p[] = { dbv_text(chapter_id), dbv_text(lang),	     dbv_text(anchor),
			      dbv_int(position),    dbv_text(source_hash), dbv_textn(content, n),
			      dbv_text(editor),	    dbv_int(now) };
	return db_run(c, &human_put, p, 8, NULL, NULL, NULL, e);
}

struct gloss_out {
	struct arena *a;
	char *terms;
	int64_t at;
};

static int gloss_cb(void *ctx, const db_row *r)
{
	struct gloss_out *o = ctx;
	o->terms = db_row_dup(r, 0, o->a);
	o->at = db_row_int(r, 1);
	return o->terms ? 0 : ERR_INTERNAL;
}

DB_STMT(gloss_get, "SELECT terms, updated_at FROM book_glossaries WHERE book_id = $1");

int store_glossary_get(db_conn *c, struct arena *a, const char *book_id, char **terms_json, int64_t *updated_at,
		       struct err *e)
{
	struct gloss_out o = { .a = a };
	struct db_val p[] = { dbv_text(book_id) };
	int rc = db_run(c, &gloss_get, p, 1, gloss_cb, &o, NULL, e);
	if (rc > 0)
		rc = err_set(e, ERR_INTERNAL, "out of memory");
	*terms_json = o.terms ? o.terms : "[]";
	*updated_at = o.at;
	return rc;
}

DB_STMT(gloss_put, "INSERT INTO book_glossaries (book_id, terms, updated_at) VALUES ($1, $2, $3) "
		   "ON CONFLICT (book_id) DO UPDATE SET terms = excluded.terms, updated_at = excluded.updated_at");

int store_glossary_put(db_conn *c, const char *book_id, const char *terms_json, int64_t now, struct err *e)
{
	struct db_val p[] = { dbv_text(book_id), dbv_text(terms_json), dbv_int(now) };
	return db_run(c, &gloss_put, p, 3, NULL, NULL, NULL, e);
}
