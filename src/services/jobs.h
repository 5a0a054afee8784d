/*
 * Durable background jobs. One table is the queue (store_jobs.c); worker
 * threads — inside `bookd serve` or alone in `bookd worker` — claim a job with
 * a lease, heartbeat while it runs, and checkpoint after every step, so a job
 * whose worker died is claimed again when its lease expires and resumes at
 * the step it had reached. A step may run more than once (it was interrupted)
 * and must be idempotent; a completed step never runs again.
 *
 * Failures retry with exponential backoff and jitter up to max_attempts when
 * they are transient (ERR_UNAVAILABLE, ERR_INTERNAL, ERR_IO); anything else
 * (bad input) fails the job at once. Cancel is honoured between steps and by
 * steps that poll job_should_stop().
 *
 * A job type is a table entry {type, steps, step function}: adding a pipeline
 * is adding a file (job_handlers.c lists them).
 */
#ifndef BOOKD_JOBS_H
#define BOOKD_JOBS_H

#include <jansson.h>

#include "../core/stop.h"
#include "../store/db.h"
#include "../store/store_jobs.h"

struct jobs;
struct job_ctx;
struct blob_store;
struct tts;
struct metadata;
struct llm_chain;

struct job_handler {
	const char *type;
	int nsteps;
	const char *const *steps; /* step names, shown as the job's `step` */
	int max_attempts;
	/* Runs step number job_step(jc); 0 or a negative ERR_*. */
	int (*run)(struct job_ctx *jc, struct err *e);
	/* Called once the job is completed, failed or cancelled (may be NULL). */
	void (*finish)(struct job_ctx *jc, const char *status);
};

struct jobs_config {
	int workers;	     /* threads; 0 = this process runs no jobs */
	int lease_ms;	     /* how long a claim lasts without a heartbeat */
	int backoff_ms;	     /* first retry delay; doubles per attempt */
	int poll_ms;	     /* idle workers look for work this often */
	const char *data_dir; /* uploads and scratch files */
	int test_handlers;   /* also register the test.* job types */
	struct search *search; /* indexing, for the handlers that need it */
	/* The BookBytes pipeline's providers (book.process); any may be NULL. */
	struct blob_store *blob;
	struct tts *tts;
	struct metadata *metadata;
	struct llm_chain *llm;
	const char *default_voice; /* "" = the book's language */
	struct stop *cancel;   /* fired by the owner when running steps must give up */
};

int jobs_new(struct jobs **out, db *d, const struct jobs_config *cfg, struct err *e) WUR;
int jobs_start(struct jobs *j, struct err *e) WUR;
/* Shutdown, in the owner's order: jobs_quiesce stops claiming (steps that
 * poll job_should_stop hand their job back at once); jobs_drain waits up to
 * timeout_ms for the workers to leave and returns how many are still in a
 * step; jobs_release gives those jobs' leases back so another worker resumes
 * them (their late writes are refused); the owner then fires the cancel
 * signal, and jobs_join joins every thread. Threads are never detached. */
void jobs_quiesce(struct jobs *j);
int jobs_drain(struct jobs *j, int timeout_ms);
void jobs_release(struct jobs *j);
void jobs_join(struct jobs *j);
void jobs_free(struct jobs *j);
const char *jobs_data_dir(const struct jobs *j);

/* Queues a job. With an idempotency key already used by this owner, returns
 * the first job and sets *existing. Unknown types are ERR_INVALID. */
int jobs_submit(struct jobs *j, struct arena *a, const char *owner, const char *type, json_t *payload,
		const char *idempotency_key, struct job *out, int *existing, struct err *e) WUR;
/* owner NULL: any owner (admin). Another owner's job is ERR_NOT_FOUND. */
int jobs_get(struct jobs *j, struct arena *a, const char *owner, const char *id, struct job *out, struct err *e) WUR;
int jobs_list(struct jobs *j, struct arena *a, const char *owner, const char *status, const char *cursor,
	      int limit, struct job **items, int *n, char **next, struct err *e) WUR;
int jobs_cancel(struct jobs *j, struct arena *a, const char *owner, const char *id, struct job *out,
		struct err *e) WUR;
/* Seconds left, from the job's measured throughput; -1 when unknown. */
long jobs_eta_seconds(const struct job *jb);

/* ---- for handlers ---- */
int job_step(const struct job_ctx *jc);
const char *job_id(const struct job_ctx *jc);
json_t *job_payload(const struct job_ctx *jc);
/* State carried from step to step (saved with each checkpoint); edit in place. */
json_t *job_state(struct job_ctx *jc);
/* The job's result (stolen), saved when it completes. */
void job_set_result(struct job_ctx *jc, json_t *result);
/* Progress within the current step, 0..1; saved a few times a second at most. */
void job_progress(struct job_ctx *jc, double fraction);
/* 1 when the job was cancelled or shutdown stopped waiting (the drain's
 * deadline passed): a long step should return ERR_UNAVAILABLE (it will be
 * resumed) or finish quickly. During the drain itself a step goes on. */
int job_should_stop(struct job_ctx *jc);
/* The signal a blocking call in a step must honour (provider requests,
 * sleeps): fired when shutdown can wait no longer. May be NULL. */
struct stop *job_cancel_signal(const struct job_ctx *jc);

db *job_db(const struct job_ctx *jc);
struct search *job_search(const struct job_ctx *jc);
struct blob_store *job_blob(const struct job_ctx *jc);
struct tts *job_tts(const struct job_ctx *jc);
struct metadata *job_metadata(const struct job_ctx *jc);
struct llm_chain *job_llm(const struct job_ctx *jc);
const char *job_default_voice(const struct job_ctx *jc);
struct jobs *job_jobs(const struct job_ctx *jc);

/* job_handlers.c */
const struct job_handler *job_handler_find(const char *type, int test_handlers);

#endif
