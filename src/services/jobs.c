#include "jobs.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../core/log.h"
#include "../core/mem.h"
#include "../core/timeutil.h"

#define MAX_WORKERS 64

struct jobs {
	db *db;
	struct jobs_config cfg;
	char *data_dir;
	char owner[96]; /* this process's lease owner id */
	pthread_mutex_t lock;
	pthread_cond_t wake;
	atomic_int stopping;
	int nthreads;
	pthread_t threads[MAX_WORKERS];
	pthread_t heartbeat;
	int heartbeat_started;
	atomic_int running; /* workers inside a job */
	atomic_int exited;
};

struct job_ctx {
	struct jobs *jobs;
	struct job *job;
	const struct job_handler *h;
	int step;
	json_t *payload, *state, *result;
	int64_t step_started_us, base_active_ms, last_progress_us, last_cancel_check_us;
	int cancelled;
};

/* ---- handler API ----------------------------------------------------------- */

int job_step(const struct job_ctx *jc) { return jc->step; }
const char *job_id(const struct job_ctx *jc) { return jc->job->id; }
json_t *job_payload(const struct job_ctx *jc) { return jc->payload; }
json_t *job_state(struct job_ctx *jc) { return jc->state; }
db *job_db(const struct job_ctx *jc) { return jc->jobs->db; }
struct search *job_search(const struct job_ctx *jc) { return jc->jobs->cfg.search; }
struct blob_store *job_blob(const struct job_ctx *jc) { return jc->jobs->cfg.blob; }
struct tts *job_tts(const struct job_ctx *jc) { return jc->jobs->cfg.tts; }
struct metadata *job_metadata(const struct job_ctx *jc) { return jc->jobs->cfg.metadata; }
struct llm_chain *job_llm(const struct job_ctx *jc) { return jc->jobs->cfg.llm; }
const char *job_default_voice(const struct job_ctx *jc)
{
	return jc->jobs->cfg.default_voice ? jc->jobs->cfg.default_voice : "";
}
struct jobs *job_jobs(const struct job_ctx *jc) { return jc->jobs; }
struct stop *job_cancel_signal(const struct job_ctx *jc) { return jc->jobs->cfg.cancel; }
const char *jobs_data_dir(const struct jobs *j) { return j->data_dir; }

void job_set_result(struct job_ctx *jc, json_t *result)
{
	json_decref(jc->result);
	jc->result = result;
}

static int64_t active_now(const struct job_ctx *jc)
{
	return jc->base_active_ms + (time_mono_us() - jc->step_started_us) / 1000;
}

void job_progress(struct job_ctx *jc, double f)
{
	int64_t now = time_mono_us();
	if (now - jc->last_progress_us < 200000)
		return;
	jc->last_progress_us = now;
	f = f < 0 ? 0 : f > 1 ? 1 : f;
	int64_t progress = (int64_t)((jc->step + f) * 100.0 / jc->h->nsteps);
	struct err e = { 0 };
	db_conn *c;
	if (db_acquire(jc->jobs->db, &c, &e) == 0) {
		if (store_job_progress(c, jc->job->id, jc->jobs->owner, progress, active_now(jc), time_now_ms(), &e))
			log_warn("job %s: progress not saved: %s", jc->job->id, e.msg);
		db_release(c);
	}
}

int job_should_stop(struct job_ctx *jc)
{
	/* Not `stopping`: a step may finish during the drain; only the cancel
	 * signal (the drain's deadline) or the job's own cancel ends it. */
	if (jc->cancelled || stop_fired(jc->jobs->cfg.cancel))
		return 1;
	int64_t now = time_mono_us();
	if (now - jc->last_cancel_check_us < 250000)
		return 0;
	jc->last_cancel_check_us = now;
	struct err e = { 0 };
	db_conn *c;
	int requested = 0;
	if (db_acquire(jc->jobs->db, &c, &e) == 0) {
		if (store_job_cancel_requested(c, jc->job->id, &requested, &e))
			requested = 0;
		db_release(c);
	}
	jc->cancelled = requested;
	return requested;
}

/* ---- queue operations ------------------------------------------------------ */

static int with_conn(struct jobs *j, db_conn **c, struct err *e)
{
	return db_acquire(j->db, c, e);
}

int jobs_submit(struct jobs *j, struct arena *a, const char *owner, const char *type, json_t *payload,
		const char *idempotency_key, struct job *out, int *existing, struct err *e)
{
	const struct job_handler *h = job_handler_find(type, j->cfg.test_handlers);
	*existing = 0;
	if (!h)
		return err_set(e, ERR_INVALID, "unknown job type \"%s\"", type);
	db_conn *c;
	int rc = with_conn(j, &c, e);
	if (rc)
		return rc;
	if (idempotency_key) {
		rc = store_job_by_idempotency(c, a, owner, idempotency_key, out, e);
		if (rc == 0) {
			*existing = 1;
			goto out;
		}
		if (rc != ERR_NOT_FOUND)
			goto out;
		err_clear(e);
	}
	memset(out, 0, sizeof(*out));
	char *text = json_dumps(payload, JSON_COMPACT);
	if (!text || uuid_v7(out->id)) {
		free(text);
		rc = err_set(e, ERR_INTERNAL, "out of memory");
		goto out;
	}
	out->type = (char *)h->type;
	out->payload = arena_strdup(a, text);
	free(text);
	out->status = "pending";
	out->run_at = out->created_at = out->updated_at = time_now_ms();
	out->max_attempts = h->max_attempts;
	out->steps_total = h->nsteps;
	out->idempotency_key = (char *)idempotency_key;
	snprintf(out->owner_user_id, sizeof(out->owner_user_id), "%s", owner ? owner : "");
	rc = store_job_insert(c, out, e);
	if (rc == 0) {
		struct err ne = { 0 };
		if (store_job_notify(c, &ne)) /* others poll anyway: a lost wake-up only delays */
			log_warn("job notify failed: %s", ne.msg);
	}
	if (rc == ERR_CONFLICT && idempotency_key) {
		/* Another request with the same key won the race: return its job. */
		err_clear(e);
		if ((rc = store_job_by_idempotency(c, a, owner, idempotency_key, out, e)) == 0)
			*existing = 1;
	}
out:
	db_release(c);
	if (rc == 0 && !*existing) {
		/* Broadcast: the heartbeat thread waits on the same condition. */
		pthread_mutex_lock(&j->lock);
		pthread_cond_broadcast(&j->wake);
		pthread_mutex_unlock(&j->lock);
	}
	return rc;
}

int jobs_get(struct jobs *j, struct arena *a, const char *owner, const char *id, struct job *out, struct err *e)
{
	if (!uuid_valid(id, strlen(id)))
		return err_set(e, ERR_NOT_FOUND, "job not found");
	db_conn *c;
	int rc = with_conn(j, &c, e);
	if (rc)
		return rc;
	rc = store_job_get(c, a, id, out, e);
	db_release(c);
	if (rc == 0 && owner && strcmp(owner, out->owner_user_id) != 0)
		rc = err_set(e, ERR_NOT_FOUND, "job not found"); /* not yours: not there */
	return rc;
}

int jobs_list(struct jobs *j, struct arena *a, const char *owner, const char *status, const char *cursor,
	      int limit, struct job **items, int *n, char **next, struct err *e)
{
	*next = NULL;
	static const char *const statuses[] = { "pending", "processing", "completed", "failed", "cancelled" };
	int ok = !status;
	for (size_t i = 0; status && i < ARRAY_LEN(statuses); i++)
		ok |= strcmp(status, statuses[i]) == 0;
	if (!ok) {
		err_field(e, "status", "must be pending, processing, completed, failed or cancelled");
		return e->code;
	}
	if (cursor && !uuid_valid(cursor, strlen(cursor)))
		return err_set(e, ERR_INVALID, "cursor is not valid");
	db_conn *c;
	int rc = with_conn(j, &c, e);
	if (rc)
		return rc;
	rc = store_job_list(c, a, owner, status, cursor, limit + 1, items, n, e);
	db_release(c);
	if (rc == 0 && *n > limit) {
		*n = limit;
		*next = arena_strdup(a, (*items)[limit - 1].id);
	}
	return rc;
}

int jobs_cancel(struct jobs *j, struct arena *a, const char *owner, const char *id, struct job *out, struct err *e)
{
	int rc = jobs_get(j, a, owner, id, out, e);
	if (rc)
		return rc;
	db_conn *c;
	if ((rc = with_conn(j, &c, e)) != 0)
		return rc;
	char *status;
	rc = store_job_cancel(c, a, id, time_now_ms(), &status, e);
	if (rc == 0)
		rc = store_job_get(c, a, id, out, e);
	db_release(c);
	return rc;
}

long jobs_eta_seconds(const struct job *jb)
{
	if (strcmp(jb->status, "processing") != 0 || jb->progress <= 0 || jb->progress >= 100 || jb->active_ms <= 0)
		return strcmp(jb->status, "completed") == 0 ? 0 : -1;
	return (long)((double)jb->active_ms / 1000.0 * (double)(100 - jb->progress) / (double)jb->progress + 0.5);
}

/* ---- running a job --------------------------------------------------------- */

static int transient(int code)
{
	return code == ERR_UNAVAILABLE || code == ERR_INTERNAL || code == ERR_IO || code == ERR_RATE_LIMITED;
}

/* Exponential backoff with ±25% jitter, capped at 10 minutes. */
static int64_t backoff_ms(const struct jobs *j, int64_t attempt)
{
	double d = (double)j->cfg.backoff_ms * pow(2.0, (double)(attempt > 1 ? attempt - 1 : 0));
	if (d > 600000)
		d = 600000;
	unsigned r;
	random_bytes(&r, sizeof(r));
	return (int64_t)(d * (0.75 + 0.5 * (double)(r % 10000) / 10000.0));
}

static void finish(struct jobs *j, struct job_ctx *jc, const char *status, const char *error, int64_t run_at,
		   int release)
{
	char *result = jc->result ? json_dumps(jc->result, JSON_COMPACT) : NULL;
	struct err e = { 0 };
	db_conn *c;
	if (db_acquire(j->db, &c, &e) == 0) {
		if (store_job_finish(c, jc->job->id, j->owner, status, result, error, run_at, time_now_ms(), release, &e))
			log_error("job %s: cannot record %s: %s", jc->job->id, status, e.msg);
		db_release(c);
	} else {
		log_error("job %s: cannot record %s: %s", jc->job->id, status, e.msg);
	}
	free(result);
	if (strcmp(status, "pending") != 0 && jc->h && jc->h->finish)
		jc->h->finish(jc, status);
	struct log_line l;
	if (log_begin(&l, strcmp(status, "failed") == 0 ? LOG_WARN : LOG_INFO, "job"))  {
		log_str(&l, "job_id", jc->job->id);
		log_str(&l, "type", jc->job->type);
		log_str(&l, "status", release ? "released" : status);
		log_int(&l, "attempt", jc->job->attempts);
		if (error)
			log_str(&l, "error", error);
		log_end(&l);
	}
}

static int checkpoint(struct jobs *j, struct job_ctx *jc, const char *step_name, int64_t steps_done)
{
	/* The result travels with the state: a job resumed after a crash still
	 * knows what its earlier steps found (an import's book_id). */
	json_t *cp = json_pack("{s:O}", "state", jc->state);
	if (cp && jc->result)
		json_object_set(cp, "result", jc->result);
	char *text = cp ? json_dumps(cp, JSON_COMPACT) : NULL;
	json_decref(cp);
	jc->job->checkpoint = text;
	jc->job->step = (char *)step_name;
	jc->job->steps_done = steps_done;
	jc->job->progress = steps_done * 100 / jc->h->nsteps;
	jc->job->active_ms = active_now(jc);
	struct err e = { 0 };
	int owned = 0;
	db_conn *c;
	if (text && db_acquire(j->db, &c, &e) == 0) {
		if (store_job_checkpoint(c, jc->job, j->owner, time_now_ms(), &owned, &e))
			log_warn("job %s: checkpoint failed: %s", jc->job->id, e.msg);
		db_release(c);
	}
	free(text);
	jc->job->checkpoint = NULL;
	return owned ? 0 : -1;
}

static void run_job(struct jobs *j, struct job *jb)
{
	struct job_ctx jc = { .jobs = j, .job = jb };
	jc.h = job_handler_find(jb->type, j->cfg.test_handlers);
	if (!jc.h) {
		finish(j, &jc, "failed", "unknown job type", 0, 0);
		return;
	}
	jc.payload = json_loads(jb->payload ? jb->payload : "{}", 0, NULL);
	json_t *cp = jb->checkpoint ? json_loads(jb->checkpoint, 0, NULL) : NULL;
	jc.state = json_incref(json_object_get(cp, "state"));
	jc.result = json_incref(json_object_get(cp, "result"));
	json_decref(cp);
	if (!jc.state)
		jc.state = json_object();
	if (!jc.payload)
		jc.payload = json_object();
	jc.base_active_ms = jb->active_ms;

	for (jc.step = (int)jb->steps_done; jc.step < jc.h->nsteps; jc.step++) {
		jc.step_started_us = time_mono_us();
		if (atomic_load(&j->stopping)) {
			finish(j, &jc, "pending", NULL, time_now_ms(), 1);
			goto out;
		}
		if (job_should_stop(&jc)) {
			finish(j, &jc, "cancelled", "cancelled", 0, 0);
			goto out;
		}
		/* Show the step now; steps_done moves only when it is done. */
		if (checkpoint(j, &jc, jc.h->steps[jc.step], jc.step)) {
			log_warn("job %s: lease lost; leaving it to its new owner", jb->id);
			goto out;
		}
		struct err e = { 0 };
		int rc = jc.h->run(&jc, &e);
		if (rc == 0) {
			jc.base_active_ms = active_now(&jc);
			if (checkpoint(j, &jc, jc.h->steps[jc.step], jc.step + 1)) {
				log_warn("job %s: lease lost after step %d", jb->id, jc.step);
				goto out;
			}
			continue;
		}
		if (jc.cancelled) {
			finish(j, &jc, "cancelled", "cancelled", 0, 0);
		} else if ((atomic_load(&j->stopping) || stop_fired(j->cfg.cancel)) && rc == ERR_UNAVAILABLE) {
			finish(j, &jc, "pending", NULL, time_now_ms(), 1);
		} else if (transient(rc) && jb->attempts < jb->max_attempts) {
			finish(j, &jc, "pending", e.msg[0] ? e.msg : err_code_name(rc),
			       time_now_ms() + backoff_ms(j, jb->attempts), 0);
		} else {
			finish(j, &jc, "failed", e.msg[0] ? e.msg : err_code_name(rc), 0, 0);
		}
		goto out;
	}
	finish(j, &jc, "completed", NULL, 0, 0);
out:
	json_decref(jc.payload);
	json_decref(jc.state);
	json_decref(jc.result);
}

static void *worker(void *arg)
{
	struct jobs *j = arg;
	while (!atomic_load(&j->stopping)) {
		struct arena a;
		arena_init(&a, 8192);
		struct job jb;
		struct err e = { 0 };
		db_conn *c;
		int rc = db_acquire(j->db, &c, &e);
		if (rc == 0) {
			int64_t now = time_now_ms();
			rc = store_job_claim(c, &a, j->owner, now, now + j->cfg.lease_ms, &jb, &e);
			db_release(c);
		}
		if (rc == 0) {
			atomic_fetch_add(&j->running, 1);
			run_job(j, &jb);
			atomic_fetch_sub(&j->running, 1);
		} else {
			if (rc != ERR_NOT_FOUND && rc != ERR_UNAVAILABLE)
				log_warn("job claim failed: %s", e.msg);
			struct timespec ts = time_after_ms(CLOCK_REALTIME, j->cfg.poll_ms);
			pthread_mutex_lock(&j->lock);
			if (!atomic_load(&j->stopping))
				pthread_cond_timedwait(&j->wake, &j->lock, &ts);
			pthread_mutex_unlock(&j->lock);
		}
		arena_free(&a);
	}
	pthread_mutex_lock(&j->lock);
	atomic_fetch_add(&j->exited, 1);
	pthread_cond_broadcast(&j->wake);
	pthread_mutex_unlock(&j->lock);
	return NULL;
}

static void *heartbeat(void *arg)
{
	struct jobs *j = arg;
	int every = j->cfg.lease_ms / 3;
	while (!atomic_load(&j->stopping) || atomic_load(&j->running)) {
		struct timespec ts = time_after_ms(CLOCK_REALTIME, every);
		pthread_mutex_lock(&j->lock);
		pthread_cond_timedwait(&j->wake, &j->lock, &ts);
		pthread_mutex_unlock(&j->lock);
		if (!atomic_load(&j->running))
			continue;
		struct err e = { 0 };
		db_conn *c;
		if (db_acquire(j->db, &c, &e) == 0) {
			int64_t now = time_now_ms();
			if (store_job_heartbeat(c, j->owner, now, now + j->cfg.lease_ms, &e))
				log_warn("job heartbeat failed: %s", e.msg);
			db_release(c);
		}
	}
	return NULL;
}

/* ---- lifecycle ------------------------------------------------------------- */

int jobs_new(struct jobs **out, db *d, const struct jobs_config *cfg, struct err *e)
{
	struct jobs *j = xcalloc(1, sizeof(*j));
	if (!j || !(j->data_dir = xstrdup(cfg->data_dir))) {
		xfree(j);
		return err_set(e, ERR_INTERNAL, "out of memory");
	}
	j->db = d;
	j->cfg = *cfg;
	if (j->cfg.workers > MAX_WORKERS)
		j->cfg.workers = MAX_WORKERS;
	if (j->cfg.lease_ms < 300)
		j->cfg.lease_ms = 300;
	if (j->cfg.poll_ms <= 0)
		j->cfg.poll_ms = 500;
	char host[64] = "host", rnd[UUID_STR_LEN];
	gethostname(host, sizeof(host) - 1);
	if (uuid_v7(rnd)) {
		jobs_free(j);
		return err_set(e, ERR_INTERNAL, "no randomness");
	}
	snprintf(j->owner, sizeof(j->owner), "%.40s:%d:%.8s", host, (int)getpid(), rnd + 28);
	pthread_mutex_init(&j->lock, NULL);
	pthread_cond_init(&j->wake, NULL);
	*out = j;
	return 0;
}

static void wake_workers(void *arg, enum db_event ev, const char *payload)
{
	struct jobs *j = arg;
	(void)payload;
	if (ev == DB_LISTEN_DOWN)
		return;
	/* up: look for work submitted while we could not hear of it */
	pthread_mutex_lock(&j->lock);
	pthread_cond_broadcast(&j->wake);
	pthread_mutex_unlock(&j->lock);
}

int jobs_start(struct jobs *j, struct err *e)
{
	if (j->cfg.workers <= 0)
		return 0;
	/* Other processes' submissions wake us at once where the database can tell us. */
	if (db_listen(j->db, STORE_JOBS_CHANNEL, wake_workers, j, e))
		return e->code;
	if (pthread_create(&j->heartbeat, NULL, heartbeat, j))
		return err_set(e, ERR_INTERNAL, "cannot start the heartbeat thread");
	j->heartbeat_started = 1;
	pthread_setname_np(j->heartbeat, "bookd-beat");
	for (int i = 0; i < j->cfg.workers; i++) {
		if (pthread_create(&j->threads[i], NULL, worker, j))
			return err_set(e, ERR_INTERNAL, "cannot start worker threads");
		pthread_setname_np(j->threads[i], "bookd-job");
		j->nthreads++;
	}
	log_info("job workers started: %d (lease owner %s)", j->nthreads, j->owner);
	return 0;
}

void jobs_quiesce(struct jobs *j)
{
	if (!j)
		return;
	atomic_store(&j->stopping, 1);
	pthread_mutex_lock(&j->lock);
	pthread_cond_broadcast(&j->wake);
	pthread_mutex_unlock(&j->lock);
}

int jobs_drain(struct jobs *j, int timeout_ms)
{
	if (!j || !j->nthreads)
		return 0;
	jobs_quiesce(j);
	struct timespec until = time_after_ms(CLOCK_REALTIME, timeout_ms);
	pthread_mutex_lock(&j->lock);
	while (atomic_load(&j->exited) < j->nthreads)
		if (pthread_cond_timedwait(&j->wake, &j->lock, &until) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&j->lock);
	return j->nthreads - atomic_load(&j->exited);
}

void jobs_release(struct jobs *j)
{
	if (!j || !j->nthreads || atomic_load(&j->exited) == j->nthreads)
		return;
	/* Steps still running: hand their jobs back so another worker resumes
	 * them; these threads' late writes are refused (the lease is gone). */
	struct err e = { 0 };
	db_conn *c;
	if (db_acquire(j->db, &c, &e) == 0) {
		if (store_job_release_all(c, j->owner, time_now_ms(), &e))
			log_error("cannot release job leases: %s", e.msg);
		db_release(c);
	} else {
		log_error("cannot release job leases: %s", e.msg);
	}
	log_warn("shutdown timeout: %d job(s) still running were handed back", atomic_load(&j->running));
}

void jobs_join(struct jobs *j)
{
	if (!j)
		return;
	jobs_quiesce(j);
	for (int i = 0; i < j->nthreads; i++)
		pthread_join(j->threads[i], NULL);
	/* The heartbeat thread may be asleep for lease/3 since the last job
	 * ended: wake it now that nothing runs, or shutdown waits for it. */
	pthread_mutex_lock(&j->lock);
	pthread_cond_broadcast(&j->wake);
	pthread_mutex_unlock(&j->lock);
	if (j->heartbeat_started)
		pthread_join(j->heartbeat, NULL);
	j->nthreads = 0;
	j->heartbeat_started = 0;
}

void jobs_free(struct jobs *j)
{
	if (!j)
		return;
	xfree(j->data_dir);
	xfree(j);
}
