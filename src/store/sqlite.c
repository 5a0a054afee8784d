/*
 * The SQLite backend. Each connection runs in WAL mode (readers never block the
 * writer), with foreign keys on and a busy timeout, and keeps its prepared
 * statements in an array indexed by the DB_STMT handle's slot (db.h).
 * Placeholders are written $1..$n; the mapping from SQLite's parameter indexes
 * to those numbers is computed once per prepared statement.
 *
 * SQLite has one writer at a time. Left to itself, a second writer gets
 * SQLITE_BUSY and its busy handler sleeps 1, 2, 5, 10... ms before retrying, so
 * under concurrent writes latency is set by those sleeps, not by the work.
 * Writers of one process therefore queue for a writer slot of their own (struct
 * sqlite_db) and wake as soon as the previous transaction ends: a connection
 * takes it at BEGIN IMMEDIATE or before an autocommit statement that writes,
 * and gives it back when SQLite is in autocommit mode again. The busy timeout
 * remains for writers in other processes (`bookd import` beside a server).
 *
 * Checkpoints, too, are kept off the requests' path: by default the commit
 * that takes the WAL past 1,000 pages copies them into the database file
 * itself, some milliseconds that land on whichever request committed. Here
 * connections never checkpoint; a thread of the backend's own runs a passive
 * checkpoint (which waits for no one) CHECKPOINT_MS after a write, taking in
 * the writes of that interval too, and sleeps while nothing is written.
 */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/log.h"
#include "../core/mem.h"
#include "../core/normalize.h"
#include "../core/timeutil.h"
#include "db_int.h"
#include "sqlite_rank.h"

#include <errno.h>
#include <sys/stat.h>
#include <time.h>

#define WRITER_WAIT_S 5      /* as long as the busy timeout */
#define CHECKPOINT_MS 200
#define MAX_PARAMS 32

struct stmt_entry {
	sqlite3_stmt *stmt;
	int nmap;
	unsigned char map[MAX_PARAMS]; /* sqlite index-1 -> $k (1-based) */
};

struct sqlite_db {
	/* The writer slot: held from a write's start to autocommit, by a
	 * connection rather than a thread (a mutex must be unlocked by its
	 * locker; a connection may be closed by another thread). Guarded by
	 * lock; writer_free signals its release. */
	int writer_held;
	pthread_cond_t writer_free;
	char *path;
	pthread_t checkpointer;
	int checkpointing;
	pthread_mutex_t lock; /* guards the writer slot, and with wake the checkpointer's dirty, sleep and stop */
	pthread_cond_t wake;
	int stop;
	int dirty; /* written since the last checkpoint began */
};

struct sqlite_conn {
	struct db_conn base;
	sqlite3 *h;
	int writing; /* holds the db's writer slot */
	struct stmt_entry stmts[DB_MAX_STMTS];
};

static void writer_release(struct sqlite_db *sd)
{
	pthread_mutex_lock(&sd->lock);
	sd->writer_held = 0;
	pthread_cond_signal(&sd->writer_free);
	if (!sd->dirty) { /* the WAL may have grown: the checkpointer's turn */
		sd->dirty = 1;
		pthread_cond_signal(&sd->wake);
	}
	pthread_mutex_unlock(&sd->lock);
}

static int map_rc(sqlite3 *h, int rc, const char *what, struct err *e)
{
	int ext = sqlite3_extended_errcode(h);
	if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
		return err_set(e, ERR_CONFLICT, "already exists");
	if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
		return err_set(e, ERR_UNAVAILABLE, "database is busy");
	if (rc == SQLITE_CONSTRAINT)
		return err_set(e, ERR_CONFLICT, "constraint violated: %s", sqlite3_errmsg(h));
	return err_set(e, ERR_INTERNAL, "%s: %s", what, sqlite3_errmsg(h));
}

static int exec_simple(sqlite3 *h, const char *sql, struct err *e)
{
	char *msg = NULL;
	int rc = sqlite3_exec(h, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		err_set(e, ERR_UNAVAILABLE, "sqlite: %s", msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return ERR_UNAVAILABLE;
	}
	return 0;
}

/* The database holds password and key hashes and chats: the owner's alone.
 * SQLite gives the WAL and shared-memory files the database file's mode, so
 * it is enough to tighten the database file before they are created (and
 * any left by an older bookd). Returns whether a file had to be tightened. */
static int tighten(const char *path)
{
	struct stat st;
	if (stat(path, &st) || !S_ISREG(st.st_mode) || !(st.st_mode & 077))
		return 0;
	if (chmod(path, st.st_mode & 0700) == 0)
		return 1;
	log_warn("sqlite: cannot make %s private: %s", path, strerror(errno));
	return 0;
}

static void tighten_all(const char *path, int warn)
{
	static const char *const suffixes[] = { "", "-wal", "-shm" };
	char name[4096];
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++)
		if (snprintf(name, sizeof(name), "%s%s", path, suffixes[i]) < (int)sizeof(name) && tighten(name) &&
		    warn)
			log_warn("sqlite: %s was readable by others; it is now 0600", name);
}

/* bookd_search_form(text): the keyword index's form of text (normalize.h),
 * NULL when it is the text itself; migrations use it for rows already there. */
static void search_form_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	const char *s = (const char *)sqlite3_value_text(argv[0]);
	char *f = NULL;
	int rc = s ? norm_search_form_dup(s, (size_t)sqlite3_value_bytes(argv[0]), &f) : 0;
	if (rc < 0)
		sqlite3_result_error_nomem(ctx);
	else if (rc == 0)
		sqlite3_result_null(ctx);
	else
		sqlite3_result_text(ctx, f, -1, xfree);
}

static int sq_conn_open(db *d, db_conn **out, struct err *e)
{
	struct sqlite_conn *c = xcalloc(1, sizeof(*c));
	if (!c)
		return err_set(e, ERR_INTERNAL, "out of memory");
	int rc = sqlite3_open_v2(d->target, &c->h,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		err_set(e, ERR_UNAVAILABLE, "cannot open database %s: %s", d->target,
			c->h ? sqlite3_errmsg(c->h) : sqlite3_errstr(rc));
		sqlite3_close(c->h);
		xfree(c);
		return ERR_UNAVAILABLE;
	}
	tighten(d->target); /* created just now under a permissive umask: before the WAL exists */
	sqlite3_busy_timeout(c->h, 5000);
	sqlite3_extended_result_codes(c->h, 1);
	rc = exec_simple(c->h,
			 "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
			 "PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY; "
			 "PRAGMA cache_size=-16384; " /* 16 MiB at most, per connection */
			 "PRAGMA wal_autocheckpoint=0;",
			 e);
	if (rc) {
		sqlite3_close(c->h);
		xfree(c);
		return rc;
	}
	if (sqlite3_create_function(c->h, "bookd_search_form", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
				    search_form_fn, NULL, NULL) != SQLITE_OK ||
	    sqlite_rank_register(c->h)) {
		sqlite3_close(c->h);
		xfree(c);
		return err_set(e, ERR_INTERNAL, "sqlite: cannot register bookd_bm25 (is FTS5 built in?)");
	}
	*out = &c->base;
	return 0;
}

static void sq_conn_close(db_conn *base)
{
	struct sqlite_conn *c = (struct sqlite_conn *)base;
	if (c->writing) /* a transaction that could not be rolled back */
		writer_release(base->owner->impl);
	for (int i = 0; i < DB_MAX_STMTS; i++)
		if (c->stmts[i].stmt)
			sqlite3_finalize(c->stmts[i].stmt);
	sqlite3_close(c->h);
	xfree(c);
}

static void *checkpointer(void *arg)
{
	struct sqlite_db *sd = arg;
	sqlite3 *h = NULL;
	/* A connection learns that the database is in WAL mode (and opens the
	 * WAL) at its first read; until then a checkpoint on it does nothing. */
	if (sqlite3_open_v2(sd->path, &h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
	    sqlite3_busy_timeout(h, WRITER_WAIT_S * 1000) != SQLITE_OK ||
	    sqlite3_exec(h, "PRAGMA schema_version", NULL, NULL, NULL) != SQLITE_OK) {
		log_warn("sqlite: no checkpoints for %s: %s (the WAL grows until bookd stops)", sd->path,
			 h ? sqlite3_errmsg(h) : "out of memory");
		sqlite3_close(h);
		h = NULL; /* nothing to do but wait for the stop */
	}
	pthread_mutex_lock(&sd->lock);
	while (!sd->stop) {
		if (!sd->dirty) {
			pthread_cond_wait(&sd->wake, &sd->lock);
			continue;
		}
		/* The writes of the next CHECKPOINT_MS join this checkpoint. */
		struct timespec until = time_after_ms(CLOCK_MONOTONIC, CHECKPOINT_MS);
		while (!sd->stop && pthread_cond_timedwait(&sd->wake, &sd->lock, &until) == 0)
			;
		if (sd->stop)
			break;
		sd->dirty = 0;
		if (!h)
			continue;
		pthread_mutex_unlock(&sd->lock);
		int nlog = 0, ncopied = 0;
		int rc = sqlite3_wal_checkpoint_v2(h, NULL, SQLITE_CHECKPOINT_PASSIVE, &nlog, &ncopied);
		pthread_mutex_lock(&sd->lock);
		if (rc != SQLITE_OK || ncopied < nlog)
			sd->dirty = 1; /* a reader kept some frames: try again in a while */
	}
	pthread_mutex_unlock(&sd->lock);
	sqlite3_close(h); /* the last connection to close checkpoints what is left */
	return NULL;
}

static int sq_open(db *d, const char *target, struct err *e)
{
	UNUSED(target);
	struct sqlite_db *sd = xcalloc(1, sizeof(*sd));
	if (!sd || !(sd->path = xstrdup(d->target))) {
		xfree(sd);
		return err_set(e, ERR_INTERNAL, "out of memory");
	}
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* waits immune to clock changes */
	pthread_mutex_init(&sd->lock, NULL);
	pthread_cond_init(&sd->wake, &ca);
	pthread_cond_init(&sd->writer_free, &ca);
	pthread_condattr_destroy(&ca);
	d->impl = sd;
	tighten_all(d->target, 1);
	/* Open (and so create) the file once now, to fail fast on a bad path. */
	db_conn *c;
	int rc = db_acquire(d, &c, e);
	if (rc)
		return rc;
	db_release(c);
	if (pthread_create(&sd->checkpointer, NULL, checkpointer, sd) != 0)
		return err_set(e, ERR_INTERNAL, "cannot start the checkpoint thread");
	sd->checkpointing = 1;
	pthread_setname_np(sd->checkpointer, "bookd-ckpt");
	return 0;
}

static void sq_close(db *d)
{
	struct sqlite_db *sd = d->impl;
	if (!sd)
		return;
	if (sd->checkpointing) {
		pthread_mutex_lock(&sd->lock);
		sd->stop = 1;
		pthread_cond_signal(&sd->wake);
		pthread_mutex_unlock(&sd->lock);
		pthread_join(sd->checkpointer, NULL);
	}
	pthread_cond_destroy(&sd->wake);
	pthread_mutex_destroy(&sd->lock);
	pthread_cond_destroy(&sd->writer_free);
	xfree(sd->path);
	xfree(sd);
	d->impl = NULL;
}

static int writer_take(struct sqlite_conn *c, struct err *e)
{
	struct sqlite_db *sd = c->base.owner->impl;
	struct timespec until = time_after_ms(CLOCK_MONOTONIC, WRITER_WAIT_S * 1000);
	int rc = 0;
	pthread_mutex_lock(&sd->lock);
	while (sd->writer_held && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&sd->writer_free, &sd->lock, &until);
	int got = !sd->writer_held;
	if (got)
		sd->writer_held = 1;
	pthread_mutex_unlock(&sd->lock);
	if (!got)
		return err_set(e, ERR_UNAVAILABLE, "database is busy");
	c->writing = 1;
	return 0;
}

static void writer_give(struct sqlite_conn *c)
{
	if (c->writing && sqlite3_get_autocommit(c->h)) {
		c->writing = 0;
		writer_release(c->base.owner->impl);
	}
}

static int stmt_prepare(struct sqlite_conn *c, const struct db_call *q, unsigned flags, struct stmt_entry *s,
			struct err *e)
{
	const char *what = q->name ? q->name : q->sql;
	sqlite3_stmt *st = NULL;
	const char *tail = NULL;
	int rc = sqlite3_prepare_v3(c->h, q->sql, -1, flags, &st, &tail);
	if (rc != SQLITE_OK)
		return map_rc(c->h, rc, "prepare", e);
	if (tail)
		tail += strspn(tail, " \t\n;");
	if (!st || (tail && *tail)) {
		sqlite3_finalize(st);
		return err_set(e, ERR_INTERNAL, "statement %s: not exactly one statement", what);
	}
	int np = sqlite3_bind_parameter_count(st);
	if (np > MAX_PARAMS) {
		sqlite3_finalize(st);
		return err_set(e, ERR_INTERNAL, "statement %s: too many parameters", what);
	}
	for (int k = 1; k <= np; k++) {
		const char *name = sqlite3_bind_parameter_name(st, k);
		long num = name && name[0] == '$' ? strtol(name + 1, NULL, 10) : k;
		s->map[k - 1] = (unsigned char)(num > 0 && num <= MAX_PARAMS ? num : 0);
	}
	s->stmt = st;
	s->nmap = np;
	return 0;
}

static int bind_one(sqlite3_stmt *st, int idx, const struct db_val *v)
{
	switch (v->type) {
	case DBV_NULL: return sqlite3_bind_null(st, idx);
	case DBV_INT: return sqlite3_bind_int64(st, idx, v->i);
	case DBV_REAL: return sqlite3_bind_double(st, idx, v->d);
	case DBV_TEXT: return sqlite3_bind_text64(st, idx, v->s, v->n, SQLITE_STATIC, SQLITE_UTF8);
	}
	return SQLITE_MISUSE;
}

static int stmt_exec(struct sqlite_conn *c, const struct db_call *q, const struct stmt_entry *s, struct err *e)
{
	sqlite3_stmt *st = s->stmt;
	int rc = 0;
	if (!c->writing && (q->tx == DB_TX_BEGIN || !sqlite3_stmt_readonly(st)) && (rc = writer_take(c, e)))
		return rc;
	for (int k = 0; k < s->nmap; k++) {
		int want = s->map[k];
		if (want < 1 || want > q->nparams) {
			rc = err_set(e, ERR_INTERNAL, "statement %s wants parameter $%d, %d given",
				     q->name ? q->name : q->sql, want, q->nparams);
			goto out;
		}
		if (bind_one(st, k + 1, &q->params[want - 1]) != SQLITE_OK) {
			rc = map_rc(c->h, SQLITE_ERROR, "bind", e);
			goto out;
		}
	}
	db_row row = { .ops = &db_sqlite_ops, .impl = st, .row = 0 };
	for (;;) {
		int step = sqlite3_step(st);
		if (step == SQLITE_DONE)
			break;
		if (step != SQLITE_ROW) {
			rc = map_rc(c->h, step, "query", e);
			goto out;
		}
		if (q->fn) {
			rc = q->fn(q->ctx, &row);
			if (!rc && row.oom)
				rc = err_set(e, ERR_INTERNAL, "out of memory");
			if (rc)
				goto out;
		}
		row.row++;
	}
	if (q->changes)
		*q->changes = sqlite3_changes64(c->h);
out:
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	writer_give(c);
	return rc;
}

static int sq_run(db_conn *base, const struct db_call *q, struct err *e)
{
	struct sqlite_conn *c = (struct sqlite_conn *)base;
	/* SQLite may have rolled the transaction back itself (an I/O error,
	 * SQLITE_FULL): then there is nothing left to roll back. */
	if (q->tx == DB_TX_ROLLBACK && sqlite3_get_autocommit(c->h)) {
		writer_give(c);
		return 0;
	}
	struct stmt_entry once = { 0 };
	struct stmt_entry *s = q->slot >= 0 ? &c->stmts[q->slot] : &once;
	int rc = 0;
	if (!s->stmt && (rc = stmt_prepare(c, q, q->slot >= 0 ? SQLITE_PREPARE_PERSISTENT : 0, s, e)) != 0)
		return rc;
	rc = stmt_exec(c, q, s, e);
	if (s == &once)
		sqlite3_finalize(once.stmt);
	return rc;
}

static int sq_exec_script(db_conn *base, const char *sql, struct err *e)
{
	struct sqlite_conn *c = (struct sqlite_conn *)base;
	char *msg = NULL;
	int rc = sqlite3_exec(c->h, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		err_set(e, ERR_INTERNAL, "sqlite: %s", msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return ERR_INTERNAL;
	}
	return 0;
}

static int sq_is_null(const db_row *r, int col)
{
	return sqlite3_column_type(r->impl, col) == SQLITE_NULL;
}

static int64_t sq_col_int(const db_row *r, int col)
{
	return sqlite3_column_int64(r->impl, col);
}

static double sq_col_real(const db_row *r, int col)
{
	return sqlite3_column_double(r->impl, col);
}

static const char *sq_col_text(const db_row *r, int col, size_t *len)
{
	const char *t = (const char *)sqlite3_column_text(r->impl, col);
	if (len)
		*len = t ? (size_t)sqlite3_column_bytes(r->impl, col) : 0;
	return t;
}

static int sq_ncols(const db_row *r)
{
	return sqlite3_column_count(r->impl);
}

static const char *sq_col_name(const db_row *r, int col)
{
	return sqlite3_column_name(r->impl, col);
}

const struct db_ops db_sqlite_ops = {
	.name = "sqlite",
	.dialect = DB_SQLITE,
	.open = sq_open,
	.close = sq_close,
	.conn_open = sq_conn_open,
	.conn_close = sq_conn_close,
	.run = sq_run,
	.exec_script = sq_exec_script,
	.is_null = sq_is_null,
	.col_int = sq_col_int,
	.col_real = sq_col_real,
	.col_text = sq_col_text,
	.ncols = sq_ncols,
	.col_name = sq_col_name,
};
