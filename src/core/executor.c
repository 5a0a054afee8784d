#include "executor.h"

#include <pthread.h>
#include <string.h>

#include "mem.h"

struct task {
	executor_fn fn;
	void *ctx;
};

struct executor {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct task *queue; /* ring buffer */
	size_t cap, head, count;
	int stopping;
	int nthreads;
	pthread_t *threads;
};

static void *run(void *arg)
{
	struct executor *ex = arg;
	for (;;) {
		pthread_mutex_lock(&ex->lock);
		while (!ex->count && !ex->stopping)
			pthread_cond_wait(&ex->cond, &ex->lock);
		if (!ex->count) {
			pthread_mutex_unlock(&ex->lock);
			return NULL;
		}
		struct task t = ex->queue[ex->head];
		ex->head = (ex->head + 1) % ex->cap;
		ex->count--;
		pthread_mutex_unlock(&ex->lock);
		t.fn(t.ctx);
	}
}

struct executor *executor_new(int threads, size_t queue_cap, const char *name)
{
	struct executor *ex = xcalloc(1, sizeof(*ex));
	if (!ex)
		return NULL;
	ex->cap = queue_cap ? queue_cap : 1;
	ex->queue = xcalloc(ex->cap, sizeof(*ex->queue));
	ex->threads = xcalloc((size_t)(threads > 0 ? threads : 1), sizeof(pthread_t));
	if (!ex->queue || !ex->threads) {
		xfree(ex->queue);
		xfree(ex->threads);
		xfree(ex);
		return NULL;
	}
	pthread_mutex_init(&ex->lock, NULL);
	pthread_cond_init(&ex->cond, NULL);
	for (int i = 0; i < (threads > 0 ? threads : 1); i++) {
		if (pthread_create(&ex->threads[i], NULL, run, ex) != 0)
			break;
		if (name)
			pthread_setname_np(ex->threads[i], name);
		ex->nthreads++;
	}
	if (!ex->nthreads) {
		executor_free(ex);
		return NULL;
	}
	return ex;
}

int executor_submit(struct executor *ex, executor_fn fn, void *ctx)
{
	int rc = -1;
	pthread_mutex_lock(&ex->lock);
	if (!ex->stopping && ex->count < ex->cap) {
		ex->queue[(ex->head + ex->count) % ex->cap] = (struct task){ fn, ctx };
		ex->count++;
		pthread_cond_signal(&ex->cond);
		rc = 0;
	}
	pthread_mutex_unlock(&ex->lock);
	return rc;
}

void executor_stop(struct executor *ex)
{
	if (!ex)
		return;
	pthread_mutex_lock(&ex->lock);
	ex->stopping = 1;
	pthread_cond_broadcast(&ex->cond);
	int n = ex->nthreads;
	ex->nthreads = 0; /* a second stop joins nothing */
	pthread_mutex_unlock(&ex->lock);
	for (int i = 0; i < n; i++)
		pthread_join(ex->threads[i], NULL);
}

void executor_free(struct executor *ex)
{
	if (!ex)
		return;
	executor_stop(ex);
	pthread_mutex_destroy(&ex->lock);
	pthread_cond_destroy(&ex->cond);
	xfree(ex->queue);
	xfree(ex->threads);
	xfree(ex);
}
