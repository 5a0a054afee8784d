/*
 * The database interface. A `db` is a pool of connections to one database;
 * a `db_conn` is one connection, taken with db_acquire and given back with
 * db_release. Queries are SQL text with $1..$n placeholders (both backends
 * accept them), parameters are always bound, and rows are handed to a callback
 * with typed accessors. Backends implement struct db_ops (db_int.h); the
 * SQL of each table group lives in its own store file (store_books.c, ...).
 *
 * Statements are declared beside the code that runs them with DB_STMT, which
 * makes a static handle: the SQL text, a name, and a slot number assigned at
 * the handle's first use (once per process, under a lock; read atomically
 * after). Each connection keeps its prepared statements in an array indexed
 * by that slot, so a statement is prepared once per connection and found
 * again without hashing or comparing anything; PostgreSQL names it after the
 * handle ("<name>_<slot>"). SQL built at run time (copy-data's per-table
 * statements) goes through db_run_sql, which prepares it for one call only.
 */
#ifndef BOOKD_DB_H
#define BOOKD_DB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/arena.h"
#include "../core/common.h"
#include "../core/err.h"

typedef struct db db;
typedef struct db_conn db_conn;
typedef struct db_row db_row;

enum db_dialect { DB_SQLITE, DB_POSTGRES };

enum db_type { DBV_NULL, DBV_INT, DBV_TEXT, DBV_REAL };

struct changes;

struct db_val {
	enum db_type type;
	int64_t i;
	double d;
	const char *s;
	size_t n;
};

static inline struct db_val dbv_int(int64_t i) { return (struct db_val){ .type = DBV_INT, .i = i }; }
static inline struct db_val dbv_real(double d) { return (struct db_val){ .type = DBV_REAL, .d = d }; }
static inline struct db_val dbv_null(void) { return (struct db_val){ .type = DBV_NULL }; }
struct db_val dbv_text(const char *s); /* NULL -> SQL NULL */
static inline struct db_val dbv_textn(const char *s, size_t n)
{
	return (struct db_val){ .type = s ? DBV_TEXT : DBV_NULL, .s = s, .n = n };
}

/* Return 0 to continue, anything else to stop (returned by db_run). */
typedef int (*db_row_fn)(void *ctx, const db_row *row);

/* At most this many DB_STMT handles in the process (each connection holds an
 * array of this many prepared-statement slots). */
#define DB_MAX_STMTS 256

struct db_stmt {
	const char *name;   /* the handle's name: PostgreSQL's statement name, errors */
	const char *sql;    /* the SQL, or SQLite's where the dialects differ */
	const char *sql_pg; /* PostgreSQL's where the dialects differ, else NULL */
	atomic_int slot;    /* 0 until first use, then the slot + 1 */
};

/* A static statement handle `var` for `sql` (file or block scope). */
#define DB_STMT(var, sql) static struct db_stmt var = { #var, sql, NULL, 0 }
/* The same where SQLite and PostgreSQL need different SQL. */
#define DB_STMT_DIALECTS(var, sqlite_sql, postgres_sql) \
	static struct db_stmt var = { #var, sqlite_sql, postgres_sql, 0 }

/* Opens the database named by `url` ("sqlite:PATH" or a path; "postgres://..."
 * later) with at most `pool` connections. */
int db_open(db **out, const char *url, int pool, struct err *e) WUR;
void db_close(db *d);
enum db_dialect db_dialect(const db *d);

/* Waits up to a few seconds for a free connection; ERR_UNAVAILABLE otherwise. */
int db_acquire(db *d, db_conn **out, struct err *e) WUR;
void db_release(db_conn *c);
db *db_conn_db(db_conn *c);

/* Runs one statement. `fn` may be NULL. Returns 0, the callback's non-zero
 * value, or a negative ERR_* (ERR_CONFLICT on a unique violation). *changes,
 * when not NULL, receives the number of rows changed. On PostgreSQL a
 * statement is never sent twice: if the connection breaks once it has been
 * sent, its outcome is unknown and the answer is ERR_UNAVAILABLE. */
int db_run(db_conn *c, struct db_stmt *s, const struct db_val *params, int nparams, db_row_fn fn, void *ctx,
	   int64_t *changes, struct err *e) WUR;
/* The same for SQL built at run time: prepared for this call, then dropped. */
int db_run_sql(db_conn *c, const char *sql, const struct db_val *params, int nparams, db_row_fn fn, void *ctx,
	       int64_t *changes, struct err *e) WUR;

/* A transaction that writes (SQLite: BEGIN IMMEDIATE, taking the writer
 * slot), or one snapshot to read from (SQLite: a deferred BEGIN, waiting for
 * no writer; PostgreSQL: REPEATABLE READ, READ ONLY). The connection knows
 * whether it is in a transaction: db_rollback outside one does nothing. */
int db_begin(db_conn *c, struct err *e) WUR;
int db_begin_read(db_conn *c, struct err *e) WUR;
int db_commit(db_conn *c, struct err *e) WUR;
void db_rollback(db_conn *c);
int db_in_tx(const db_conn *c);

/* Cheap liveness check for /health/ready. */
int db_ping(db *d, struct err *e) WUR;

/* Row accessors; column indexes start at 0. Text is valid until the callback
 * returns; NULL for SQL NULL. */
int db_row_is_null(const db_row *r, int col);
int64_t db_row_int(const db_row *r, int col);
double db_row_real(const db_row *r, int col);
const char *db_row_text(const db_row *r, int col, size_t *len);

/* Conveniences over the accessors, for the store files' row callbacks:
 * a copy in the arena (NULL for SQL NULL; when the arena cannot take it,
 * NULL too, and the statement then fails with "out of memory" however the
 * callback goes on), a copy into a fixed buffer
 * (truncated, "" for NULL), and an integer with NULL read as 0. */
char *db_row_dup(const db_row *r, int col, struct arena *a);
void db_row_copy(const db_row *r, int col, char *dst, size_t cap);
int64_t db_row_int_or0(const db_row *r, int col);
/* A db_row_fn for a query of one value: column 0 of the first row, NULL read
 * as 0, into *(int64_t *)ctx; then it stops. */
int db_row_first_int(void *ctx, const db_row *r);
int db_row_ncols(const db_row *r);
const char *db_row_name(const db_row *r, int col);

/* What a listener hears: its connection came up (notifications sent while it
 * was down are lost, so anything may have changed), went down (from now on
 * nothing is heard until it is up again), or a notification and its payload. */
enum db_event { DB_LISTEN_UP, DB_LISTEN_DOWN, DB_LISTEN_NOTIFY };
typedef void (*db_listen_fn)(void *ctx, enum db_event ev, const char *payload);

/* Calls cb on a thread of its own for the events of `channel` (PostgreSQL
 * LISTEN/NOTIFY, reconnecting with backoff); on SQLite a no-op that returns 0. */
int db_listen(db *d, const char *channel, db_listen_fn cb, void *ctx, struct err *e) WUR;
/* Stops every listener and joins its thread; no callback runs after it
 * returns. db_close does it too, but the callbacks' owners (the job queue,
 * the caches) must call it before they are freed. */
void db_unlisten(db *d);
/* Starts hearing other processes' changes (changes.h), for caches. */
int db_watch_changes(db *d, struct err *e) WUR;
/* The tracker started by db_watch_changes, or NULL (changes.h takes NULL). */
struct changes *db_changes(db *d);
/* NOTIFY channel (PostgreSQL; a no-op on SQLite). */
int db_notify(db_conn *c, const char *channel, struct err *e) WUR;

/* Schema migrations (migrate.c). Applies pending ones; *version receives the
 * schema version reached. */
int db_migrate(db *d, int *version, struct err *e) WUR;

#endif
