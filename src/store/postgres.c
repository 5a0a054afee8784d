/*
 * The PostgreSQL backend, on libpq. Each connection prepares the statements
 * it runs once, named after their DB_STMT handle and kept by its slot (db.h),
 * and sends parameters as text with their types left to the server, which
 * infers them from the columns they meet — so the same SQL serves both
 * backends. While the server is down, db.c fails fast with backoff instead of
 * queueing requests behind connect attempts.
 *
 * A statement is never sent twice. Before a statement is sent, the connection
 * is checked: one that died while idle in the pool (the server restarted and
 * closed it) is reconnected then, outside a transaction, since nothing was
 * lost; so is one that breaks while a statement is being prepared, which
 * changes nothing. Once a statement has been sent, a broken connection means
 * its outcome is unknown (an autocommit INSERT may have committed): the
 * connection is dropped and the caller gets ERR_UNAVAILABLE, never a re-run
 * that could report a conflict with its own first run.
 *
 * Every session gets a statement_timeout, so no query outlives its request,
 * unless the operator's URL sets its own (the URL wins).
 */
#include <fcntl.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/log.h"
#include "../core/mem.h"
#include "../core/stop.h"
#include "db_int.h"

#define MAX_PARAMS 32
#define OUR_OPTIONS "-c statement_timeout=10000 -c idle_in_transaction_session_timeout=60000"

struct pg_conn {
	struct db_conn base;
	PGconn *pg;
	int doomed; /* the server said FATAL while the connection was idle */
	unsigned char prepared[DB_MAX_STMTS];
};

struct pg_row {
	PGresult *res;
};

/* NOTICEs ("already exists, skipping") are not worth a log line. But a
 * message on an idle connection may be the server's farewell (FATAL: it was
 * shut down, or the backend terminated): the connection is then doomed even
 * before libpq has seen its socket close. */
static void on_notice(void *arg, const PGresult *res)
{
	struct pg_conn *c = arg;
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	if (c && sev && (!strcmp(sev, "FATAL") || !strcmp(sev, "PANIC")))
		c->doomed = 1;
}

/* The URL's (or PGOPTIONS') options after ours, so that a -c of the
 * operator's overrides ours; NULL when out of memory. */
static char *merged_options(const char *url)
{
	PQconninfoOption *info = PQconninfoParse(url, NULL);
	const char *theirs = NULL;
	for (PQconninfoOption *o = info; o && o->keyword; o++)
		if (!strcmp(o->keyword, "options") && o->val && o->val[0])
			theirs = o->val;
	if (!theirs && info)
		theirs = getenv("PGOPTIONS");
	size_t n = sizeof(OUR_OPTIONS) + (theirs ? strlen(theirs) + 1 : 0);
	char *out = xmalloc(n);
	if (out)
		snprintf(out, n, "%s%s%s", OUR_OPTIONS, theirs ? " " : "", theirs ? theirs : "");
	PQconninfoFree(info);
	return out;
}

static PGconn *pg_connect(const char *url, struct err *e)
{
	/* libpq keeps the last value of a key, and the URL's settings count
	 * where "dbname" stands: our defaults go before it, so the operator's
	 * URL wins where both speak; the options after it are the merged ones.
	 * TCP keepalives: a server that vanished without closing (a failover, a
	 * NAT timeout) is noticed within ~25 s even by an idle connection, such
	 * as the change listener, whose silence would otherwise look like
	 * "nothing changed" for the kernel's default two hours. */
	PGconn *pg = NULL;
	char *options = merged_options(url);
	if (!options) {
		err_set(e, ERR_INTERNAL, "out of memory");
		return NULL;
	}
	const char *keys[] = { "connect_timeout",  "fallback_application_name", "keepalives_idle",
			       "keepalives_interval", "keepalives_count",	   "tcp_user_timeout",
			       "dbname",	   "options",			   NULL };
	const char *vals[] = { "3", "bookd", "10", "5", "3", "15000", url, options, NULL };
	pg = PQconnectdbParams(keys, vals, 1);
	xfree(options);
	if (!pg || PQstatus(pg) != CONNECTION_OK) {
		const char *msg = pg ? PQerrorMessage(pg) : "out of memory";
		char clean[200];
		snprintf(clean, sizeof(clean), "%s", msg);
		clean[strcspn(clean, "\n")] = '\0';
		err_set(e, ERR_UNAVAILABLE, "database unavailable: %s", clean);
		PQfinish(pg);
		return NULL;
	}
	PQsetNoticeReceiver(pg, on_notice, NULL);
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
	PQsetNoticeReceiver(c->pg, on_notice, c);
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

/* Is the idle connection dead? Reads what the server sent meanwhile (a FATAL
 * farewell, then end of file) without waiting. */
static int conn_dead(struct pg_conn *c)
{
	for (int i = 0; i < 4 && PQstatus(c->pg) == CONNECTION_OK && !c->doomed; i++) {
		struct pollfd p = { .fd = PQsocket(c->pg), .events = POLLIN };
		if (poll(&p, 1, 0) <= 0)
			break;
		if (!PQconsumeInput(c->pg))
			return 1;
	}
	return PQstatus(c->pg) != CONNECTION_OK || c->doomed;
}

/* Before anything is sent: a connection found dead is replaced if no
 * transaction was open on it (else the transaction is lost: unavailable). */
static int conn_ready(struct pg_conn *c, struct err *e)
{
	if (!conn_dead(c))
		return 0;
	if (!c->base.in_tx) {
		PQreset(c->pg);
		memset(c->prepared, 0, sizeof(c->prepared)); /* they died with the session */
		c->doomed = 0;
		if (PQstatus(c->pg) == CONNECTION_OK) {
			c->base.broken = 0;
			return 0;
		}
	}
	c->base.broken = 1;
	return err_set(e, ERR_UNAVAILABLE, "database connection lost");
}

static int stmt_prepare(struct pg_conn *c, const struct db_call *q, struct err *e)
{
	char name[64];
	snprintf(name, sizeof(name), "%.40s_%d", q->name, q->slot);
	PGresult *res = PQprepare(c->pg, name, q->sql, q->nparams, NULL);
	int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : fail(c, res, e);
	PQclear(res);
	if (rc == 0)
		c->prepared[q->slot] = 1;
	return rc;
}

static int pg_run(db_conn *base, const struct db_call *q, struct err *e)
{
	struct pg_conn *c = (struct pg_conn *)base;
	int nparams = q->nparams;
	if (nparams > MAX_PARAMS)
		return err_set(e, ERR_INTERNAL, "too many parameters");
	char nums[MAX_PARAMS][32];
	const char *vals[MAX_PARAMS];
	int lens[MAX_PARAMS], fmts[MAX_PARAMS];
	for (int i = 0; i < nparams; i++) {
		const struct db_val *v = &q->params[i];
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
	int rc = 0;
	/* Preparing changes nothing: a connection lost meanwhile is replaced
	 * and the statement prepared again, once. */
	for (int attempt = 0;; attempt++) {
		if ((rc = conn_ready(c, e)) != 0)
			return rc;
		if (q->tx || q->slot < 0 || c->prepared[q->slot])
			break;
		if ((rc = stmt_prepare(c, q, e)) == 0)
			break;
		if (attempt > 0 || c->base.in_tx || PQstatus(c->pg) == CONNECTION_OK)
			return rc;
		c->doomed = 1;
		err_clear(e);
	}
	PGresult *res;
	if (q->tx)
		res = PQexec(c->pg, q->sql);
	else if (q->slot < 0)
		res = PQexecParams(c->pg, q->sql, nparams, NULL, vals, lens, fmts, 0);
	else {
		char name[64];
		snprintf(name, sizeof(name), "%.40s_%d", q->name, q->slot);
		res = PQexecPrepared(c->pg, name, nparams, vals, lens, fmts, 0);
	}
	ExecStatusType st = PQresultStatus(res);
	if (PQstatus(c->pg) != CONNECTION_OK) {
		/* Sent: whether it took effect is unknown. Never sent again. */
		c->base.broken = 1;
		rc = err_set(e, ERR_UNAVAILABLE, "database connection lost (the outcome of the last statement is unknown)");
	} else if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		rc = fail(c, res, e);
	} else if (q->tx == DB_TX_COMMIT && !strcmp(PQcmdStatus(res), "ROLLBACK")) {
		/* A failed transaction "commits" by rolling back. */
		rc = err_set(e, ERR_INTERNAL, "the transaction failed and was rolled back");
	} else {
		int n = PQntuples(res);
		db_row row = { .ops = &db_postgres_ops, .impl = res, .row = 0 };
		for (int i = 0; q->fn && i < n; i++) {
			row.row = i;
			rc = q->fn(q->ctx, &row);
			if (!rc && row.oom)
				rc = err_set(e, ERR_INTERNAL, "out of memory");
			if (rc)
				break;
		}
		if (q->changes) {
			const char *t = PQcmdTuples(res);
			*q->changes = t && *t ? strtoll(t, NULL, 10) : 0;
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

/* A listener is a thread of the db's, with a connection of its own. The db
 * owns it: db_close stops it (a pipe wakes its poll, the stop signal ends
 * its backoff sleep) and joins it. */
struct listener {
	char *url, *channel;
	db_listen_fn cb;
	void *ctx;
	struct stop stop;
	int wake[2]; /* written once by close: ends the poll at once */
	pthread_t thread;
	struct listener *next;
};

static void *listen_loop(void *arg)
{
	struct listener *l = arg;
	int backoff = 200;
	while (!stop_fired(&l->stop)) {
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
			while (ok && PQstatus(pg) == CONNECTION_OK && !stop_fired(&l->stop)) {
				struct pollfd p[2] = { { .fd = PQsocket(pg), .events = POLLIN },
						       { .fd = l->wake[0], .events = POLLIN } };
				if (poll(p, 2, 5000) < 0 || p[1].revents || !PQconsumeInput(pg))
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
		stop_sleep_ms(&l->stop, backoff);
		backoff = backoff < 5000 ? backoff * 2 : 5000;
	}
	return NULL;
}

static void listener_free(struct listener *l)
{
	if (l->wake[0] >= 0)
		close(l->wake[0]);
	if (l->wake[1] >= 0)
		close(l->wake[1]);
	stop_destroy(&l->stop);
	xfree(l->url);
	xfree(l->channel);
	xfree(l);
}

static int pg_listen(db *d, const char *channel, db_listen_fn cb, void *ctx, struct err *e)
{
	struct listener *l = xcalloc(1, sizeof(*l));
	if (!l)
		return err_set(e, ERR_INTERNAL, "out of memory");
	l->wake[0] = l->wake[1] = -1;
	stop_init(&l->stop);
	l->cb = cb;
	l->ctx = ctx;
	if (!(l->url = xstrdup(d->target)) || !(l->channel = xstrdup(channel)) || pipe2(l->wake, O_CLOEXEC)) {
		listener_free(l);
		return err_set(e, ERR_INTERNAL, "cannot set up the listener");
	}
	if (pthread_create(&l->thread, NULL, listen_loop, l)) {
		listener_free(l);
		return err_set(e, ERR_INTERNAL, "cannot start the listener");
	}
	pthread_setname_np(l->thread, "bookd-listen");
	pthread_mutex_lock(&d->lock);
	l->next = d->impl;
	d->impl = l;
	pthread_mutex_unlock(&d->lock);
	return 0;
}

/* Stops and joins the listeners (before the callbacks' owners go). */
static void pg_unlisten(db *d)
{
	for (struct listener *l = d->impl, *next; l; l = next) {
		next = l->next;
		stop_fire(&l->stop);
		if (write(l->wake[1], "x", 1) < 0)
			log_warn("postgres: cannot wake the listener");
		pthread_join(l->thread, NULL);
		listener_free(l);
	}
	d->impl = NULL;
}

DB_STMT(notify, "SELECT pg_notify($1, '')");

static int pg_notify(db_conn *c, const char *channel, struct err *e)
{
	struct db_val p[] = { dbv_text(channel) };
	return db_run(c, &notify, p, 1, NULL, NULL, NULL, e);
}

const struct db_ops db_postgres_ops = {
	.name = "postgres",
	.dialect = DB_POSTGRES,
	.open = pg_open,
	.close = pg_unlisten,
	.unlisten = pg_unlisten,
	.conn_open = pg_conn_open,
	.conn_close = pg_conn_close,
	.run = pg_run,
	.exec_script = pg_exec_script,
	.is_null = pg_is_null,
	.col_int = pg_col_int,
	.col_real = pg_col_real,
	.col_text = pg_col_text,
	.ncols = pg_ncols,
	.col_name = pg_col_name,
	.listen = pg_listen,
	.notify = pg_notify,
};
