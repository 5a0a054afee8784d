/*
 * The job queue's SQL. One table is the queue; a worker owns a job while its
 * lease is in the future, and every write a worker makes is conditional on
 * still owning it (lease_owner = me), so a worker whose lease expired and was
 * taken over cannot overwrite its successor.
 */
#ifndef BOOKD_STORE_JOBS_H
#define BOOKD_STORE_JOBS_H

#include "../core/arena.h"
#include "../core/uuid.h"
#include "db.h"

struct job {
	char id[UUID_STR_LEN];
	char *type, *payload, *status, *step, *checkpoint, *result, *error, *lease_owner, *idempotency_key;
	char owner_user_id[UUID_STR_LEN];
	int64_t priority, run_at, attempts, max_attempts, lease_until, heartbeat_at, progress, steps_done,
		steps_total, cancel_requested, active_ms, created_at, updated_at, started_at, finished_at;
};

int store_job_insert(db_conn *c, const struct job *j, struct err *e) WUR;
int store_job_get(db_conn *c, struct arena *a, const char *id, struct job *out, struct err *e) WUR;
int store_job_by_idempotency(db_conn *c, struct arena *a, const char *owner, const char *key, struct job *out,
			     struct err *e) WUR;
/* owner NULL: everyone's; status NULL: any. Newest first, id < before. */
int store_job_list(db_conn *c, struct arena *a, const char *owner, const char *status, const char *before,
		   int limit, struct job **items, int *n, struct err *e) WUR;
/* Claims the next runnable job (pending and due, or processing with an
 * expired lease) for `owner` until `lease_until`. ERR_NOT_FOUND when none. */
int store_job_claim(db_conn *c, struct arena *a, const char *owner, int64_t now, int64_t lease_until,
		    struct job *out, struct err *e) WUR;
/* Extends the leases of every job `owner` holds. */
int store_job_heartbeat(db_conn *c, const char *owner, int64_t now, int64_t lease_until, struct err *e) WUR;
/* After a step: progress, step name, steps_done, checkpoint and active_ms.
 * *owned is 0 when the lease was lost. */
int store_job_checkpoint(db_conn *c, const struct job *j, const char *owner, int64_t now, int *owned,
			 struct err *e) WUR;
/* Progress within a step (no checkpoint). */
int store_job_progress(db_conn *c, const char *id, const char *owner, int64_t progress, int64_t active_ms,
		       int64_t now, struct err *e) WUR;
/* Terminal or retry transitions, all conditional on the lease. status is
 * "completed", "failed", "cancelled" or "pending" (retry at run_at / release). */
int store_job_finish(db_conn *c, const char *id, const char *owner, const char *status, const char *result,
		     const char *error, int64_t run_at, int64_t now, int release_attempt, struct err *e) WUR;
/* Cancels a pending job at once, or flags a running one. *status receives
 * the status after the call (arena-allocated). */
int store_job_cancel(db_conn *c, struct arena *a, const char *id, int64_t now, char **status, struct err *e) WUR;
int store_job_cancel_requested(db_conn *c, const char *id, int *requested, struct err *e) WUR;
/* Wakes idle workers of other processes (PostgreSQL NOTIFY; no-op on SQLite). */
int store_job_notify(db_conn *c, struct err *e) WUR;
#define STORE_JOBS_CHANNEL "bookd_jobs"
/* Gives back every lease `owner` holds (shutdown): status pending, the
 * attempt not counted. */
int store_job_release_all(db_conn *c, const char *owner, int64_t now, struct err *e) WUR;

#endif
