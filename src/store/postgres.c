/*
 * The PostgreSQL backend, on libpq. Each connection prepares the statements
 * it runs (keyed, as in sqlite.c, by the SQL string's address) and sends
 * parameters as text with their types left to the server, which infers them
 * from the columns they meet — so the same SQL serves both backends. A
 * connection that failed (server restarted, network gone) is marked broken
 * and replaced on its next use; while the server is down, db.c fails fast
 * with backoff instead of queueing requests behind connect attempts.
 *
 * Every session gets a statement_timeout, so no query outlives its request.
 */
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/log.h"
#include "../core/mem.h"
#include "db_int.h"

#define STMT_SLOTS 256
#define MAX_PARAMS 32

struct pg_stmt {
	const char *sql;
	char name[16];
};

struct pg_conn {
	struct db_conn base;
	PGconn *pg;
	int nstmts;
	struct pg_stmt stmts[STMT_SLOTS];
};

struct pg_row {
	PGresult *res;
};

static void on_notice(void *arg, const char *msg)
{
	(void)arg;
	(void)msg; /* NOTICEs ("already exists, skipping") are not worth a log line */
}

static PGconn *pg_connect(const char *url, struct err *e)
{
	/* Our settings go after the URL's, and the URL wins where both speak. */
	/* TCP keepalives: a server that vanished without closing (a failover, a
	 * NAT timeout) is noticed within ~25 s even by an idle connection, such
	 * as the change listener, whose silence would otherwise look like
	 * "nothing changed" for the kernel's default two hours. */
	const char *keys[] = { "dbname", "connect_timeout", "application_name", "options", "keepalives_idle",
			       "keepalives_interval", "keepalives_count", "tcp_user_timeout", NULL };
	const char *vals[] = { url, "3", "bookd", "-c statement_timeout=10000 -c idle_in_transaction_session_timeout=60000",
			       "10", "5", "3", "15000", NULL };
	PGconn *pg = PQconnectdbParams(keys, vals, 1);
	if (!pg || PQstatus(pg) != CONNECTION_OK) {
		const char *msg = pg ? PQerrorMessage(pg) : "out of memory";
		char clean[200];
		snprintf(clean, sizeof(clean), "%s", msg);
		clean[strcspn(clean, "\n")] = '\0';
		err_set(e, ERR_UNAVAILABLE, "database unavailable: %s", clean);
		PQfinish(pg);
		return NULL;
	}
	PQsetNoticeProcessor(pg, on_notice, NULL);
	return pg;
}

static int pg_conn_open(db *d, db_conn **out, struct err *e)
{
	struct pg_conn *c = xcalloc(1, sizeof(*c));
	if (!c)
		return err_set(e, ERR_INTERNAL, "out of memory");
	if (!(c->pg = pg_connect(d->target, e))) {
		xfree(c);
		return ERR_UNAVAILABLE;
	}
	*out = &c->base;
	return 0;
}

static void pg_conn_close(db_conn *base)
{
	struct pg_conn *c = (struct pg_conn *)base;
	PQfinish(c->pg);
	xfree(c);
}

static int pg_open(db *d, const char *target, struct err *e)
{
	UNUSED(target);
	db_conn *c;
	int rc = db_acquire(d, &c, e);
	if (rc)
		return rc;
	db_release(c);
	return 0;
}

/* Maps a failed result to an ERR_* and marks the connection broken if the
 * connection itself is gone. */
static int fail(struct pg_conn *c, PGresult *res, struct err *e)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	if (!msg)
		msg = PQerrorMessage(c->pg);
	if (PQstatus(c->pg) != CONNECTION_OK) {
		c->base.broken = 1;
		return err_set(e, ERR_UNAVAILABLE, "database connection lost");
	}
	if (state && !strcmp(state, "23505"))
		return err_set(e, ERR_CONFLICT, "already exists");
	if (state && (!strncmp(state, "23", 2)))
		return err_set(e, ERR_CONFLICT, "constraint violated: %s", msg);
	if (state && (!strcmp(state, "57014") || !strcmp(state, "40001") || !strcmp(state, "40P01") ||
		      !strncmp(state, "08", 2) || !strncmp(state, "57P", 3) || !strcmp(state, "55P03"))) {
		if (!strncmp(state, "57P", 3) || !strncmp(state, "08", 2))
			c->base.broken = 1;
		return err_set(e, ERR_UNAVAILABLE, "database busy or unavailable: %s", msg);
	}
	return err_set(e, ERR_INTERNAL, "postgres: %s%s%s", state ? state : "", state ? ": " : "", msg);
}

static struct pg_stmt *stmt_get(struct pg_conn *c, const char *sql, int nparams, struct err *e)
{
	for (int i = 0; i < c->nstmts; i++)
		if (c->stmts[i].sql == sql)
			return &c->stmts[i];
	if (c->nstmts >= STMT_SLOTS) {
		err_set(e, ERR_INTERNAL, "statement cache full");
		return NULL;
	}
	struct pg_stmt *s = &c->stmts[c->nstmts];
	snprintf(s->name, sizeof(s->name), "b%d", c->nstmts);
	PGresult *res = PQprepare(c->pg, s->name, sql, nparams, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		fail(c, res, e);
		PQclear(res);
		return NULL;
	}
	PQclear(res);
	s->sql = sql;
	c->nstmts++;
	return s;
}

static int pg_query(db_conn *base, const char *sql, const struct db_val *params, int nparams, db_row_fn fn,
		    void *ctx, int64_t *changes, struct err *e)
{
	struct pg_conn *c = (struct pg_conn *)base;
	if (nparams > MAX_PARAMS)
		return err_set(e, ERR_INTERNAL, "too many parameters");
	char nums[MAX_PARAMS][32];
	const char *vals[MAX_PARAMS];
	int lens[MAX_PARAMS], fmts[MAX_PARAMS];
	for (int i = 0; i < nparams; i++) {
		const struct db_val *v = &params[i];
		fmts[i] = 0;
		lens[i] = 0;
		switch (v->type) {
		case DBV_NULL: vals[i] = NULL; break;
		case DBV_INT:
			snprintf(nums[i], sizeof(nums[i]), "%" PRId64, v->i);
			vals[i] = nums[i];
			break;
		case DBV_REAL:
			snprintf(nums[i], sizeof(nums[i]), "%.17g", v->d);
			vals[i] = nums[i];
			break;
		case DBV_TEXT:
			/* Text format needs NUL termination: our strings have it
			 * (json, arena and literals all do). */
			vals[i] = v->s;
			break;
		}
	}
	PGresult *res;
	for (int attempt = 0;; attempt++) {
		if (nparams == 0 && (!strcmp(sql, "BEGIN") || !strcmp(sql, "COMMIT") || !strcmp(sql, "ROLLBACK"))) {
			res = PQexec(c->pg, sql);
		} else {
			struct pg_stmt *s = stmt_get(c, sql, nparams, e);
			res = s ? PQexecPrepared(c->pg, s->name, nparams, vals, lens, fmts, 0) : NULL;
		}
		/* A pooled connection that died while idle (the server restarted):
		 * outside a transaction nothing is lost by reconnecting and trying
		 * once more, and the request need not fail. */
		if (attempt == 0 && !c->base.in_tx && PQstatus(c->pg) != CONNECTION_OK &&
		    strcmp(sql, "COMMIT") != 0 && strcmp(sql, "ROLLBACK") != 0) {
			PQclear(res);
			PQreset(c->pg);
			c->nstmts = 0; /* prepared statements died with the session */
			if (PQstatus(c->pg) == CONNECTION_OK) {
				PQsetNoticeProcessor(c->pg, on_notice, NULL);
				err_clear(e);
				continue;
			}
			c->base.broken = 1;
			return err_set(e, ERR_UNAVAILABLE, "database connection lost");
		}
		break;
	}
	if (!res)
		return e->code ? e->code : err_set(e, ERR_UNAVAILABLE, "database connection lost");
	ExecStatusType st = PQresultStatus(res);
	int rc = 0;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		rc = fail(c, res, e);
	} else {
		int n = PQntuples(res);
		db_row row = { .ops = &db_postgres_ops, .impl = res, .row = 0 };
		for (int i = 0; fn && i < n; i++) {
			row.row = i;
			if ((rc = fn(ctx, &row)) != 0)
				break;
		}
		if (changes) {
			const char *t = PQcmdTuples(res);
			*changes = t && *t ? strtoll(t, NULL, 10) : 0;
		}
	}
	PQclear(res);
	return rc;
}

static int pg_exec_script(db_conn *base, const char *sql, struct err *e)
{
	struct pg_conn *c = (struct pg_conn *)base;
	PGresult *res = PQexec(c->pg, sql);
	int rc = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK ? 0
													  : fail(c, res, e);
	PQclear(res);
	return rc;
}

static int pg_ping(db_conn *base, struct err *e)
{
	return pg_query(base, "SELECT 1 FROM schema_migrations LIMIT 1", NULL, 0, NULL, NULL, NULL, e);
}

static int pg_is_null(const db_row *r, int col) { return PQgetisnull(r->impl, r->row, col); }

static int64_t pg_col_int(const db_row *r, int col)
{
	const char *v = PQgetvalue(r->impl, r->row, col);
	if (v[0] == 't' && !v[1])
		return 1; /* boolean */
	return strtoll(v, NULL, 10);
}

static double pg_col_real(const db_row *r, int col) { return strtod(PQgetvalue(r->impl, r->row, col), NULL); }

static const char *pg_col_text(const db_row *r, int col, size_t *len)
{
	if (PQgetisnull(r->impl, r->row, col)) {
		if (len)
			*len = 0;
		return NULL;
	}
	if (len)
		*len = (size_t)PQgetlength(r->impl, r->row, col);
	return PQgetvalue(r->impl, r->row, col);
}

static int pg_ncols(const db_row *r) { return PQnfields(r->impl); }
static const char *pg_col_name(const db_row *r, int col) { return PQfname(r->impl, col); }

/* ---- LISTEN / NOTIFY -------------------------------------------------------- */

struct listener {
	char *url, *channel;
	db_listen_fn cb;
	void *ctx;
};

static void *listen_loop(void *arg)
{
	struct listener *l = arg;
	int backoff = 200;
	for (;;) {
		struct err e = { 0 };
		PGconn *pg = pg_connect(l->url, &e);
		if (pg) {
			char sql[128];
			snprintf(sql, sizeof(sql), "LISTEN %s", l->channel);
			PGresult *res = PQexec(pg, sql);
			int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
			PQclear(res);
			if (ok) {
				backoff = 200;
				l->cb(l->ctx, DB_LISTEN_UP, NULL);
			}
			while (ok && PQstatus(pg) == CONNECTION_OK) {
				struct pollfd p = { .fd = PQsocket(pg), .events = POLLIN };
				if (poll(&p, 1, 5000) < 0 || !PQconsumeInput(pg))
					break;
				PGnotify *n;
				while ((n = PQnotifies(pg))) {
					l->cb(l->ctx, DB_LISTEN_NOTIFY, n->extra);
					PQfreemem(n);
				}
			}
			if (ok)
				l->cb(l->ctx, DB_LISTEN_DOWN, NULL);
			PQfinish(pg);
		}
		struct timespec ts = { backoff / 1000, (backoff % 1000) * 1000000L };
		nanosleep(&ts, NULL);
		backoff = backoff < 5000 ? backoff * 2 : 5000;
	}
	return NULL;
}

static int pg_listen(db *d, const char *channel, db_listen_fn cb, void *ctx, struct err *e)
{
	struct listener *l = xcalloc(1, sizeof(*l));
	if (!l || !(l->url = xstrdup(d->target)) || !(l->channel = xstrdup(channel))) {
		if (l)
			xfree(l->url);
		xfree(l);
		return err_set(e, ERR_INTERNAL, "out of memory");
	}
	l->cb = cb;
	l->ctx = ctx;
	pthread_t t;
	if (pthread_create(&t, NULL, listen_loop, l)) {
		xfree(l->url);
		xfree(l->channel);
		xfree(l);
		return err_set(e, ERR_INTERNAL, "cannot start the listener");
	}
	/* It lives as long as the process; it holds no state worth a join. */
	pthread_detach(t);
	return 0;
}

static int pg_notify(db_conn *c, const char *channel, struct err *e)
{
	struct db_val p[] = { dbv_text(channel) };
	return pg_query(c, "SELECT pg_notify($1, '')", p, 1, NULL, NULL, NULL, e);
}

const struct db_ops db_postgres_ops = {
	.name = "postgres",
	.dialect = DB_POSTGRES,
	.open = pg_open,
	.close = NULL,
	.conn_open = pg_conn_open,
	.conn_close = pg_conn_close,
	.query = pg_query,
	.ping = pg_ping,
	.exec_script = pg_exec_script,
	.begin_sql = "BEGIN",
	.is_null = pg_is_null,
	.col_int = pg_col_int,
	.col_real = pg_col_real,
	.col_text = pg_col_text,
	.ncols = pg_ncols,
	.col_name = pg_col_name,
	.listen = pg_listen,
	.notify = pg_notify,
};
