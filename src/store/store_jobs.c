#include "store_jobs.h"

#include <stdio.h>
#include <string.h>

#define JOB_COLS                                                                                     \
	"id, type, payload, status, step, checkpoint, result, error, lease_owner, idempotency_key, "   \
	"owner_user_id, priority, run_at, attempts, max_attempts, lease_until, heartbeat_at, progress, " \
	"steps_done, steps_total, cancel_requested, active_ms, created_at, updated_at, started_at, "   \
	"finished_at"

struct job_rows {
	struct arena *a;
	struct job *items;
	int n, cap;
};

static int job_cb(void *ctx, const db_row *r)
{
	struct job_rows *m = ctx;
	if (!(m->items = arena_grow(m->a, m->items, m->n, &m->cap, sizeof(*m->items))))
		return ERR_INTERNAL;
	struct job *j = &m->items[m->n++];
	memset(j, 0, sizeof(*j));
	size_t n;
	const char *t = db_row_text(r, 0, &n);
	snprintf(j->id, sizeof(j->id), "%.*s", (int)(n < 36 ? n : 36), t ? t : "");
	j->type = db_row_dup(r, 1, m->a);
	j->payload = db_row_dup(r, 2, m->a);
	j->status = db_row_dup(r, 3, m->a);
	j->step = db_row_dup(r, 4, m->a);
	j->checkpoint = db_row_dup(r, 5, m->a);
	j->result = db_row_dup(r, 6, m->a);
	j->error = db_row_dup(r, 7, m->a);
	j->lease_owner = db_row_dup(r, 8, m->a);
	j->idempotency_key = db_row_dup(r, 9, m->a);
	t = db_row_text(r, 10, &n);
	snprintf(j->owner_user_id, sizeof(j->owner_user_id), "%.*s", (int)(n < 36 ? n : 36), t ? t : "");
	int64_t *ints[] = { &j->priority,   &j->run_at,	  &j->attempts,	   &j->max_attempts,
			    &j->lease_until, &j->heartbeat_at, &j->progress,   &j->steps_done,
			    &j->steps_total, &j->cancel_requested, &j->active_ms, &j->created_at,
			    &j->updated_at, &j->started_at,	  &j->finished_at };
	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
		*ints[i] = db_row_int_or0(r, 11 + (int)i);
	return 0;
}

static int one(db_conn *c, struct arena *a, struct db_stmt *s, const struct db_val *p, int np, struct job *out,
	       const char *what, struct err *e)
{
	struct job_rows m = { a, out, 0, 1 };
	int rc = db_run(c, s, p, np, job_cb, &m, NULL, e);
	if (rc < 0)
		return rc;
	return m.n ? 0 : err_set(e, ERR_NOT_FOUND, "%s", what);
}

DB_STMT(job_insert, "INSERT INTO jobs (id, type, payload, status, priority, run_at, max_attempts, steps_total, "
		    "idempotency_key, owner_user_id, created_at, updated_at) "
		    "VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $8, $9, $10, $10)");
DB_STMT(job_by_id, "SELECT " JOB_COLS " FROM jobs WHERE id = $1");
DB_STMT(job_by_key_anonymous, "SELECT " JOB_COLS " FROM jobs WHERE owner_user_id IS NULL AND idempotency_key = $1");
DB_STMT(job_by_key, "SELECT " JOB_COLS " FROM jobs WHERE owner_user_id = $1 AND idempotency_key = $2");

int store_job_insert(db_conn *c, const struct job *j, struct err *e)
{
	struct db_val p[] = { dbv_text(j->id),
			      dbv_text(j->type),
			      dbv_text(j->payload),
			      dbv_int(j->priority),
			      dbv_int(j->run_at),
			      dbv_int(j->max_attempts),
			      dbv_int(j->steps_total),
			      dbv_text(j->idempotency_key),
			      dbv_text(j->owner_user_id[0] ? j->owner_user_id : NULL),
			      dbv_int(j->created_at) };
	return db_run(c, &job_insert, p, 10, NULL, NULL, NULL, e);
}

int store_job_get(db_conn *c, struct arena *a, const char *id, struct job *out, struct err *e)
{
	struct db_val p[] = { dbv_text(id) };
	return one(c, a, &job_by_id, p, 1, out, "job not found", e);
}

int store_job_by_idempotency(db_conn *c, struct arena *a, const char *owner, const char *key, struct job *out,
			     struct err *e)
{
	struct db_val p[] = { dbv_text(owner), dbv_text(key) };
	if (!owner) {
		struct db_val q[] = { dbv_text(key) };
		return one(c, a, &job_by_key_anonymous, q, 1, out, "job not found", e);
	}
	return one(c, a, &job_by_key, p, 2, out, "job not found", e);
}

/* The filters are optional: CAST gives PostgreSQL a type for "$1 IS NULL". */
DB_STMT(job_list, "SELECT " JOB_COLS " FROM jobs WHERE (CAST($1 AS TEXT) IS NULL OR owner_user_id = $1) "
		  "AND (CAST($2 AS TEXT) IS NULL OR status = $2) AND (CAST($3 AS TEXT) IS NULL OR id < $3) "
		  "ORDER BY id DESC LIMIT $4");

int store_job_list(db_conn *c, struct arena *a, const char *owner, const char *status, const char *before,
		   int limit, struct job **items, int *n, struct err *e)
{
	struct job_rows m = { a, NULL, 0, 0 };
	struct db_val p[] = { dbv_text(owner), dbv_text(status), dbv_text(before), dbv_int(limit) };
	int rc = db_run(c, &job_list, p, 4, job_cb, &m, NULL, e);
	if (rc < 0)
		return rc;
	*items = m.items;
	*n = m.n;
	return 0;
}

/* One statement: the subquery picks, the UPDATE takes. SQLite runs it under
 * its single writer lock; PostgreSQL skips rows another worker has locked, so
 * concurrent claims never wait on each other or collide. */
#define JOB_CLAIM(lock)                                                                                     \
	"UPDATE jobs SET status = 'processing', lease_owner = $1, lease_until = $3, heartbeat_at = $2, "   \
	"attempts = attempts + 1, started_at = coalesce(started_at, $2), updated_at = $2 "                \
	"WHERE id = (SELECT id FROM jobs WHERE (status = 'pending' AND run_at <= $2) "                    \
	"OR (status = 'processing' AND lease_until < $2) ORDER BY priority DESC, run_at, id LIMIT 1" lock \
	") RETURNING " JOB_COLS
DB_STMT_DIALECTS(job_claim, JOB_CLAIM(""), JOB_CLAIM(" FOR UPDATE SKIP LOCKED"));

int store_job_claim(db_conn *c, struct arena *a, const char *owner, int64_t now, int64_t lease_until,
		    struct job *out, struct err *e)
{
	struct db_val p[] = { dbv_text(owner), dbv_int(now), dbv_int(lease_until) };
	return one(c, a, &job_claim, p, 3, out, "no job", e);
}

DB_STMT(job_heartbeat, "UPDATE jobs SET heartbeat_at = $2, lease_until = $3 "
			"WHERE lease_owner = $1 AND status = 'processing'");
DB_STMT(job_checkpoint, "UPDATE jobs SET progress = CASE WHEN progress > $3 THEN progress ELSE $3 END, "
			"step = $4, steps_done = $5, checkpoint = $6, active_ms = $7, updated_at = $8 "
			"WHERE id = $1 AND lease_owner = $2 AND status = 'processing'");
DB_STMT(job_progress, "UPDATE jobs SET progress = $3, active_ms = $5, updated_at = $4 WHERE id = $1 "
		      "AND lease_owner = $2 AND status = 'processing' AND progress <= $3");
DB_STMT(job_finish, "UPDATE jobs SET status = $3, result = coalesce($4, result), error = $5, run_at = $6, "
		    "updated_at = $7, lease_owner = NULL, lease_until = NULL, "
		    "finished_at = CASE WHEN $8 = 1 THEN CAST($7 AS BIGINT) ELSE NULL END, "
		    "progress = CASE WHEN $3 = 'completed' THEN 100 ELSE progress END, "
		    "attempts = attempts - $9 "
		    "WHERE id = $1 AND lease_owner = $2 AND status = 'processing'");
DB_STMT(job_cancel, "UPDATE jobs SET status = CASE WHEN status = 'pending' THEN 'cancelled' ELSE status END, "
		    "finished_at = CASE WHEN status = 'pending' THEN $2 ELSE finished_at END, "
		    "cancel_requested = 1, updated_at = $2 "
		    "WHERE id = $1 AND status IN ('pending', 'processing')");
DB_STMT(job_status, "SELECT status FROM jobs WHERE id = $1");
DB_STMT(job_cancel_requested, "SELECT cancel_requested FROM jobs WHERE id = $1");
DB_STMT(job_release_all, "UPDATE jobs SET status = 'pending', lease_owner = NULL, lease_until = NULL, run_at = $2, "
			 "attempts = attempts - 1, updated_at = $2 WHERE lease_owner = $1 AND status = 'processing'");

int store_job_heartbeat(db_conn *c, const char *owner, int64_t now, int64_t lease_until, struct err *e)
{
	struct db_val p[] = { dbv_text(owner), dbv_int(now), dbv_int(lease_until) };
	return db_run(c, &job_heartbeat, p, 3, NULL, NULL, NULL, e);
}

int store_job_checkpoint(db_conn *c, const struct job *j, const char *owner, int64_t now, int *owned,
			 struct err *e)
{
	struct db_val p[] = { dbv_text(j->id),	    dbv_text(owner),	     dbv_int(j->progress),
			      dbv_text(j->step),    dbv_int(j->steps_done),  dbv_text(j->checkpoint),
			      dbv_int(j->active_ms), dbv_int(now) };
	int64_t changed = 0;
	int rc = db_run(c, &job_checkpoint, p, 8, NULL, NULL, &changed, e);
	*owned = changed > 0;
	return rc;
}

int store_job_progress(db_conn *c, const char *id, const char *owner, int64_t progress, int64_t active_ms,
		       int64_t now, struct err *e)
{
	struct db_val p[] = { dbv_text(id), dbv_text(owner), dbv_int(progress), dbv_int(now), dbv_int(active_ms) };
	return db_run(c, &job_progress, p, 5, NULL, NULL, NULL, e);
}

int store_job_finish(db_conn *c, const char *id, const char *owner, const char *status, const char *result,
		     const char *error, int64_t run_at, int64_t now, int release_attempt, struct err *e)
{
	int terminal = strcmp(status, "pending") != 0;
	struct db_val p[] = { dbv_text(id),	dbv_text(owner), dbv_text(status), dbv_text(result),
			      dbv_text(error),	dbv_int(run_at), dbv_int(now),	   dbv_int(terminal),
			      dbv_int(release_attempt) };
	return db_run(c, &job_finish, p, 9, NULL, NULL, NULL, e);
}

static int status_cb(void *ctx, const db_row *r)
{
	struct {
		struct arena *a;
		char **status;
	} *o = ctx;
	*o->status = db_row_dup(r, 0, o->a);
	return 1;
}

int store_job_cancel(db_conn *c, struct arena *a, const char *id, int64_t now, char **status, struct err *e)
{
	struct db_val p[] = { dbv_text(id), dbv_int(now) };
	int rc = db_run(c, &job_cancel, p, 2, NULL, NULL, NULL, e);
	if (rc)
		return rc;
	struct {
		struct arena *a;
		char **status;
	} o = { a, status };
	*status = NULL;
	rc = db_run(c, &job_status, p, 1, status_cb, &o, NULL, e);
	if (rc < 0)
		return rc;
	return *status ? 0 : err_set(e, ERR_NOT_FOUND, "job not found");
}

int store_job_cancel_requested(db_conn *c, const char *id, int *requested, struct err *e)
{
	struct db_val p[] = { dbv_text(id) };
	int64_t v = 0;
	int rc = db_run(c, &job_cancel_requested, p, 1, db_row_first_int, &v, NULL, e);
	*requested = v != 0;
	return rc < 0 ? rc : 0;
}

int store_job_notify(db_conn *c, struct err *e)
{
	return db_notify(c, "bookd_jobs", e);
}

int store_job_release_all(db_conn *c, const char *owner, int64_t now, struct err *e)
{
	struct db_val p[] = { dbv_text(owner), dbv_int(now) };
	return db_run(c, &job_release_all, p, 2, NULL, NULL, NULL, e);
}
