/*
 * The generic half of the store: the connection pool and the dispatch to a
 * backend's ops table. The pool opens connections lazily up to `max`, hands
 * them out LIFO (the most recently used connection has the warmest caches),
 * and reopens one that a backend marked broken.
 */
#include "db_int.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "../core/mem.h"
#include "../core/timeutil.h"
#include "changes.h"

struct db_val dbv_text(const char *s)
{
	return dbv_textn(s, s ? strlen(s) : 0);
}

int db_open(db **out, const char *url, int pool, struct err *e)
{
	const struct db_ops *ops = &db_sqlite_ops;
	const char *target = url;
	*out = NULL;
	if (strncmp(url, "sqlite:", 7) == 0) {
		target = url + 7;
	} else if (strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0) {
		ops = &db_postgres_ops;
	}
	db *d = xcalloc(1, sizeof(*d));
	if (!d)
		return err_set(e, ERR_INTERNAL, "out of memory");
	d->ops = ops;
	d->max = pool > 0 ? pool : 1;
	d->target = xstrdup(target);
	d->all = xcalloc((size_t)d->max, sizeof(*d->all));
	if (!d->target || !d->all) {
		xfree(d->target);
		xfree(d->all);
		xfree(d);
		return err_set(e, ERR_INTERNAL, "out of memory");
	}
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cond, NULL);
	int rc = ops->open(d, d->target, e);
	if (rc) {
		db_close(d);
		return rc;
	}
	*out = d;
	return 0;
}

void db_unlisten(db *d)
{
	if (d && d->ops->unlisten)
		d->ops->unlisten(d);
}

void db_close(db *d)
{
	if (!d)
		return;
	db_unlisten(d);
	for (int i = 0; i < d->nopen; i++)
		if (d->all[i])
			d->ops->conn_close(d->all[i]);
	if (d->ops->close)
		d->ops->close(d);
	changes_free(d->changes);
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->cond);
	xfree(d->all);
	xfree(d->target);
	xfree(d);
}

enum db_dialect db_dialect(const db *d)
{
	return d->ops->dialect;
}

static void forget_conn(db *d, db_conn *c)
{
	for (int i = 0; i < d->nopen; i++)
		if (d->all[i] == c) {
			d->all[i] = d->all[--d->nopen];
			d->all[d->nopen] = NULL;
			return;
		}
}

int db_acquire(db *d, db_conn **out, struct err *e)
{
	struct timespec deadline = time_after_ms(CLOCK_REALTIME, 5000);

	pthread_mutex_lock(&d->lock);
	for (;;) {
		if (d->free_list) {
			db_conn *c = d->free_list;
			d->free_list = c->next_free;
			pthread_mutex_unlock(&d->lock);
			c->next_free = NULL;
			*out = c;
			return 0;
		}
		if (d->nopen < d->max) {
			if (d->down_until_us && time_mono_us() < d->down_until_us) {
				pthread_mutex_unlock(&d->lock);
				return err_set(e, ERR_UNAVAILABLE, "database unavailable (reconnecting)");
			}
			d->all[d->nopen++] = NULL; /* reserve a slot: a NULL in all */
			pthread_mutex_unlock(&d->lock);
			db_conn *c = NULL;
			int rc = d->ops->conn_open(d, &c, e);
			pthread_mutex_lock(&d->lock);
			if (rc) {
				/* Give back a reservation, not `slot`: a connection
				 * opened meanwhile may have taken that one (it fills
				 * the first NULL). */
				for (int i = 0; i < d->nopen; i++)
					if (!d->all[i]) {
						d->all[i] = d->all[--d->nopen];
						d->all[d->nopen] = NULL;
						break;
					}
				/* Back off before the next attempt: 100 ms doubling to 2 s. */
				d->backoff_ms = d->backoff_ms ? MIN(d->backoff_ms * 2, 2000) : 100;
				d->down_until_us = time_mono_us() + (int64_t)d->backoff_ms * 1000;
				pthread_cond_signal(&d->cond);
				pthread_mutex_unlock(&d->lock);
				return rc;
			}
			/* The slot may have moved if another conn was forgotten. */
			for (int i = 0; i < d->nopen; i++)
				if (!d->all[i]) {
					d->all[i] = c;
					break;
				}
			d->down_until_us = 0;
			d->backoff_ms = 0;
			pthread_mutex_unlock(&d->lock);
			c->owner = d;
			*out = c;
			return 0;
		}
		if (pthread_cond_timedwait(&d->cond, &d->lock, &deadline) == ETIMEDOUT) {
			pthread_mutex_unlock(&d->lock);
			return err_set(e, ERR_UNAVAILABLE, "no database connection available");
		}
	}
}

void db_release(db_conn *c)
{
	if (!c)
		return;
	db *d = c->owner;
	if (c->in_tx)
		db_rollback(c);
	pthread_mutex_lock(&d->lock);
	if (c->broken) {
		forget_conn(d, c);
		pthread_mutex_unlock(&d->lock);
		d->ops->conn_close(c);
		pthread_mutex_lock(&d->lock);
	} else {
		c->next_free = d->free_list;
		d->free_list = c;
	}
	pthread_cond_signal(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

db *db_conn_db(db_conn *c)
{
	return c->owner;
}

/* Slots are handed out once per handle; the lock only serialises first uses. */
static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;
static int slots_used;

static int stmt_slot(struct db_stmt *s, struct err *e)
{
	int slot = atomic_load_explicit(&s->slot, memory_order_acquire);
	if (slot)
		return slot - 1;
	pthread_mutex_lock(&slots_lock);
	slot = atomic_load_explicit(&s->slot, memory_order_relaxed);
	if (!slot && slots_used < DB_MAX_STMTS) {
		slot = ++slots_used;
		atomic_store_explicit(&s->slot, slot, memory_order_release);
	}
	pthread_mutex_unlock(&slots_lock);
	if (!slot)
		return err_set(e, ERR_INTERNAL, "statement %s: more than %d statements", s->name, DB_MAX_STMTS);
	return slot - 1;
}

static const char *stmt_sql(const db_conn *c, const struct db_stmt *s)
{
	return c->owner->ops->dialect == DB_POSTGRES && s->sql_pg ? s->sql_pg : s->sql;
}

static int run_stmt(db_conn *c, struct db_stmt *s, enum db_tx tx, const struct db_val *params, int nparams,
		    db_row_fn fn, void *ctx, int64_t *changes, struct err *e)
{
	int slot = stmt_slot(s, e);
	if (slot < 0)
		return slot;
	struct db_call q = { stmt_sql(c, s), s->name, slot, tx, params, nparams, fn, ctx, changes };
	return c->owner->ops->run(c, &q, e);
}

int db_run(db_conn *c, struct db_stmt *s, const struct db_val *params, int nparams, db_row_fn fn, void *ctx,
	   int64_t *changes, struct err *e)
{
	return run_stmt(c, s, DB_TX_NONE, params, nparams, fn, ctx, changes, e);
}

int db_run_sql(db_conn *c, const char *sql, const struct db_val *params, int nparams, db_row_fn fn, void *ctx,
	       int64_t *changes, struct err *e)
{
	struct db_call q = { sql, NULL, -1, DB_TX_NONE, params, nparams, fn, ctx, changes };
	return c->owner->ops->run(c, &q, e);
}

DB_STMT_DIALECTS(tx_begin, "BEGIN IMMEDIATE", "BEGIN");
DB_STMT_DIALECTS(tx_begin_read, "BEGIN", "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
DB_STMT(tx_commit, "COMMIT");
DB_STMT(tx_rollback, "ROLLBACK");
DB_STMT(ping, "SELECT 1 FROM schema_migrations LIMIT 1");

static int begin(db_conn *c, struct db_stmt *s, enum db_tx tx, struct err *e)
{
	if (c->in_tx)
		return err_set(e, ERR_INTERNAL, "a transaction is already open on this connection");
	int rc = run_stmt(c, s, tx, NULL, 0, NULL, NULL, NULL, e);
	if (rc == 0)
		c->in_tx = 1;
	return rc;
}

int db_begin(db_conn *c, struct err *e)
{
	return begin(c, &tx_begin, DB_TX_BEGIN, e);
}

int db_begin_read(db_conn *c, struct err *e)
{
	return begin(c, &tx_begin_read, DB_TX_BEGIN_READ, e);
}

/* On failure the transaction may still be open (SQLite: busy): the caller
 * rolls back, as after any other failure. */
int db_commit(db_conn *c, struct err *e)
{
	if (!c->in_tx)
		return err_set(e, ERR_INTERNAL, "COMMIT outside a transaction");
	int rc = run_stmt(c, &tx_commit, DB_TX_COMMIT, NULL, 0, NULL, NULL, NULL, e);
	if (rc == 0)
		c->in_tx = 0;
	return rc;
}

void db_rollback(db_conn *c)
{
	if (!c->in_tx)
		return; /* nothing to undo; the connection is fine */
	struct err e = { 0 };
	if (run_stmt(c, &tx_rollback, DB_TX_ROLLBACK, NULL, 0, NULL, NULL, NULL, &e))
		c->broken = 1;
	c->in_tx = 0;
}

int db_in_tx(const db_conn *c)
{
	return c->in_tx;
}

int db_ping(db *d, struct err *e)
{
	db_conn *c;
	int rc = db_acquire(d, &c, e);
	if (rc)
		return rc;
	rc = db_run(c, &ping, NULL, 0, NULL, NULL, NULL, e);
	db_release(c);
	return rc;
}

char *db_row_dup(const db_row *r, int col, struct arena *a)
{
	size_t n;
	const char *t = db_row_text(r, col, &n);
	if (!t)
		return NULL;
	char *copy = arena_strndup(a, t, n);
	if (!copy) /* not a SQL NULL: the row callback cannot tell, the statement fails */
		((db_row *)r)->oom = 1;
	return copy;
}

void db_row_copy(const db_row *r, int col, char *dst, size_t cap)
{
	size_t n;
	const char *t = db_row_text(r, col, &n);
	if (!t)
		n = 0;
	if (n >= cap)
		n = cap - 1;
	if (n)
		memcpy(dst, t, n);
	dst[n] = '\0';
}

int64_t db_row_int_or0(const db_row *r, int col)
{
	return db_row_is_null(r, col) ? 0 : db_row_int(r, col);
}

int db_row_first_int(void *ctx, const db_row *r)
{
	*(int64_t *)ctx = db_row_int_or0(r, 0);
	return 1;
}

int db_row_ncols(const db_row *r)
{
	return r->ops->ncols(r);
}

const char *db_row_name(const db_row *r, int col)
{
	return r->ops->col_name(r, col);
}

int db_watch_changes(db *d, struct err *e)
{
	return d->changes ? 0 : changes_open(d, &d->changes, e);
}

struct changes *db_changes(db *d)
{
	return d ? d->changes : NULL;
}

int db_listen(db *d, const char *channel, db_listen_fn cb, void *ctx, struct err *e)
{
	return d->ops->listen ? d->ops->listen(d, channel, cb, ctx, e) : 0;
}

int db_notify(db_conn *c, const char *channel, struct err *e)
{
	return c->owner->ops->notify ? c->owner->ops->notify(c, channel, e) : 0;
}

int db_row_is_null(const db_row *r, int col)
{
	return r->ops->is_null(r, col);
}

int64_t db_row_int(const db_row *r, int col)
{
	return r->ops->col_int(r, col);
}

double db_row_real(const db_row *r, int col)
{
	return r->ops->col_real(r, col);
}

const char *db_row_text(const db_row *r, int col, size_t *len)
{
	return r->ops->col_text(r, col, len);
}
