#include "copy.h"

#include <string.h>

#include "../core/buf.h"
#include "../core/mem.h"

/* In foreign-key order. A new table must be added here (a test compares this
 * list with the schema). */
static const char *const tables[] = { "books",	     "book_isbns",    "chapters",      "users",
				      "refresh_tokens", "api_keys",	     "preferences",   "jobs",
				      "chunks",	     "embeddings",    "chat_sessions", "chat_messages",
				      "chat_contexts",  "chat_usage",    "chat_feedback", "section_transforms",
				      "human_translations", "book_glossaries" };
_Static_assert(sizeof(tables) / sizeof(tables[0]) <= COPY_MAX_TABLES, "COPY_MAX_TABLES is too small");

#define COPY_MAX_COLS 64

struct copier {
	db_conn *to;
	const char *table;
	char *insert_sql; /* built from the source's column names, once per table */
	long long rows;
	struct err *e;
};

static int count_cb(void *ctx, const db_row *r)
{
	*(long long *)ctx = db_row_int(r, 0);
	return 1;
}

/* The statements of this file are built at run time (db_run_sql): they name
 * tables from the fixed list above, never input, and their columns as the
 * source database reports them. */
static int count_rows(db_conn *c, const char *table, long long *n, struct err *e)
{
	char sql[96];
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	*n = 0;
	int rc = db_run_sql(c, sql, NULL, 0, count_cb, n, NULL, e);
	return rc < 0 ? rc : 0;
}

static int row_cb(void *ctx, const db_row *r)
{
	struct copier *cp = ctx;
	int n = db_row_ncols(r);
	if (n > COPY_MAX_COLS)
		return err_set(cp->e, ERR_INTERNAL, "%s: too many columns", cp->table);
	if (!cp->insert_sql) {
		struct buf b;
		buf_init(&b, 8192);
		int rc = buf_printf(&b, "INSERT INTO %s (", cp->table);
		for (int i = 0; !rc && i < n; i++)
			rc = buf_printf(&b, "%s%s", i ? ", " : "", db_row_name(r, i));
		rc = rc ? rc : buf_puts(&b, ") VALUES (");
		for (int i = 0; !rc && i < n; i++)
			rc = buf_printf(&b, "%s$%d", i ? ", " : "", i + 1);
		rc = rc ? rc : buf_putc(&b, ')');
		if (rc) {
			buf_free(&b);
			return err_set(cp->e, ERR_INTERNAL, "out of memory");
		}
		cp->insert_sql = buf_steal(&b);
	}
	struct db_val p[COPY_MAX_COLS];
	for (int i = 0; i < n; i++) {
		size_t len;
		const char *t = db_row_text(r, i, &len);
		p[i] = db_row_is_null(r, i) ? dbv_null() : dbv_textn(t, len);
	}
	int rc = db_run_sql(cp->to, cp->insert_sql, p, n, NULL, NULL, NULL, cp->e);
	if (rc)
		return rc;
	cp->rows++;
	return 0;
}

static int text_cb(void *ctx, const db_row *r)
{
	size_t n;
	const char *t = db_row_text(r, 0, &n);
	if (t)
		snprintf(ctx, 1024, "%.*s", (int)n, t);
	return 1;
}

DB_STMT(table_columns, "SELECT group_concat(name, ', ') FROM pragma_table_info($1)");
DB_STMT(fts_rebuild, "INSERT INTO chunks_fts (chunks_fts) VALUES ('rebuild')");

/* "SELECT <stored columns> FROM table": on SQLite, table_info leaves out
 * generated columns (chunks.scope), which the target computes itself. */
static char *select_of(db_conn *src, const char *table, struct err *e)
{
	char cols[1024] = "*";
	if (db_dialect(db_conn_db(src)) == DB_SQLITE) {
		struct db_val p[] = { dbv_text(table) };
		if (db_run(src, &table_columns, p, 1, text_cb, cols, NULL, e) < 0)
			return NULL;
		if (strlen(cols) >= sizeof(cols) - 1) {
			err_set(e, ERR_INTERNAL, "%s: too many columns", table);
			return NULL;
		}
	}
	char *sql = xmalloc(strlen(cols) + 64);
	if (!sql)
		err_set(e, ERR_INTERNAL, "out of memory");
	else
		snprintf(sql, strlen(cols) + 64, "SELECT %s FROM %s", cols, table);
	return sql;
}

int db_copy(db *from, db *to, struct copy_table_count counts[COPY_MAX_TABLES], int *ntables, struct err *e)
{
	db_conn *src = NULL, *dst = NULL;
	char *sql[ARRAY_LEN(tables)] = { 0 };
	char *select_sql[ARRAY_LEN(tables)] = { 0 };
	int rc = db_acquire(from, &src, e);
	if (rc || (rc = db_acquire(to, &dst, e)) != 0)
		goto out;
	for (size_t i = 0; i < ARRAY_LEN(tables); i++) {
		long long n;
		if ((rc = count_rows(dst, tables[i], &n, e)) != 0)
			goto out;
		if (n) {
			rc = err_set(e, ERR_CONFLICT, "the target database is not empty (%s has %lld rows)", tables[i], n);
			goto out;
		}
	}
	if ((rc = db_begin(dst, e)) != 0)
		goto out;
	*ntables = 0;
	for (size_t i = 0; i < ARRAY_LEN(tables); i++) {
		struct copier cp = { dst, tables[i], NULL, 0, e };
		if (!(select_sql[i] = select_of(src, tables[i], e))) {
			rc = e->code ? e->code : ERR_INTERNAL;
			break;
		}
		rc = db_run_sql(src, select_sql[i], NULL, 0, row_cb, &cp, NULL, e);
		sql[i] = cp.insert_sql;
		if (rc)
			break;
		long long in_target;
		if ((rc = count_rows(dst, tables[i], &in_target, e)) != 0)
			break;
		if (in_target != cp.rows) {
			rc = err_set(e, ERR_INTERNAL, "%s: copied %lld rows but the target has %lld", tables[i], cp.rows,
				     in_target);
			break;
		}
		counts[*ntables].table = tables[i];
		counts[(*ntables)++].rows = cp.rows;
	}
	/* SQLite's keyword index is written by bookd (store_chunk_insert), not
	 * by a trigger: build it from the copied chunks. */
	if (rc == 0 && db_dialect(to) == DB_SQLITE)
		rc = db_run(dst, &fts_rebuild, NULL, 0, NULL, NULL, NULL, e);
	if (rc == 0)
		rc = db_commit(dst, e);
	if (rc)
		db_rollback(dst);
out:
	db_release(src);
	db_release(dst);
	for (size_t i = 0; i < ARRAY_LEN(tables); i++) {
		xfree(sql[i]);
		xfree(select_sql[i]);
	}
	return rc;
}
