/*
 * A fixed pool of threads running submitted tasks from a bounded FIFO queue.
 * Slow work (password hashing now, provider calls later) runs here so that
 * HTTP threads never block on it. A full queue refuses work at once: the
 * caller answers 503 rather than letting latency grow without bound.
 */
#ifndef BOOKD_EXECUTOR_H
#define BOOKD_EXECUTOR_H

#include <stddef.h>

#include "common.h"

struct executor;

typedef void (*executor_fn)(void *ctx);

struct executor *executor_new(int threads, size_t queue_cap, const char *name);
/* 0 when queued; -1 when the queue is full or the executor is stopping. */
int executor_submit(struct executor *ex, executor_fn fn, void *ctx) WUR;
/* Refuses new work, runs what is queued, then joins the threads. The
 * executor stays valid (submits fail) until executor_free. */
void executor_stop(struct executor *ex);
/* executor_stop, then frees. */
void executor_free(struct executor *ex);

#endif
