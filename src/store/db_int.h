/* Internals shared by db.c and the backends. */
#ifndef BOOKD_DB_INT_H
#define BOOKD_DB_INT_H

#include <pthread.h>
#include <stdint.h>

#include "db.h"

/* What a transaction-control statement does, for the backends. */
enum db_tx { DB_TX_NONE, DB_TX_BEGIN, DB_TX_BEGIN_READ, DB_TX_COMMIT, DB_TX_ROLLBACK };

/* One statement to run: the dialect's SQL and, for a DB_STMT handle, its
 * slot in the connection's statement array (-1: prepare for this call only). */
struct db_call {
	const char *sql;
	const char *name; /* the handle's, or NULL */
	int slot;
	enum db_tx tx;
	const struct db_val *params;
	int nparams;
	db_row_fn fn;
	void *ctx;
	int64_t *changes;
};

struct db_ops {
	const char *name;
	enum db_dialect dialect;
	int (*open)(db *d, const char *target, struct err *e);
	void (*close)(db *d);
	int (*conn_open)(db *d, db_conn **out, struct err *e);
	void (*conn_close)(db_conn *c);
	/* Runs one statement (struct db_call); returns as db_run. */
	int (*run)(db_conn *c, const struct db_call *q, struct err *e);
	/* Several statements, no parameters, no rows: migrations only. */
	int (*exec_script)(db_conn *c, const char *sql, struct err *e);
	/* Row accessors. */
	int (*is_null)(const db_row *r, int col);
	int64_t (*col_int)(const db_row *r, int col);
	double (*col_real)(const db_row *r, int col);
	const char *(*col_text)(const db_row *r, int col, size_t *len);
	int (*ncols)(const db_row *r);
	const char *(*col_name)(const db_row *r, int col);
	/* Reports `channel`'s events to cb (NULL: not supported). */
	int (*listen)(db *d, const char *channel, db_listen_fn cb, void *ctx, struct err *e);
	/* Stops and joins every listener (NULL: none to stop). */
	void (*unlisten)(db *d);
	int (*notify)(db_conn *c, const char *channel, struct err *e);
};

struct db_row {
	const struct db_ops *ops;
	void *impl; /* backend's statement or result */
	int row;
	int oom; /* a copy out of it failed: the statement fails (the backends check after each row) */
};

/* The generic part of a connection; backends embed it first. */
struct db_conn {
	db *owner;
	struct db_conn *next_free;
	int in_tx; /* between a successful BEGIN and its COMMIT or ROLLBACK */
	int broken; /* set by a backend when the connection must be reopened */
};

struct db {
	const struct db_ops *ops;
	char *target;
	void *impl;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct db_conn *free_list;
	struct db_conn **all; /* every open connection, for db_close */
	int nopen, max;
	int64_t down_until_us; /* after a failed connect: fail fast until then */
	struct changes *changes; /* db_watch_changes; NULL until then */
	int backoff_ms;
};

extern const struct db_ops db_postgres_ops;

extern const struct db_ops db_sqlite_ops;

#endif
