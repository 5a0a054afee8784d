/*
 * A stop signal: cancellation passed down, not polled from a global. The
 * runtime owns one per stage of shutdown and hands it (by pointer) to every
 * call that can block — provider requests, backoff sleeps, chat answers, job
 * steps. Firing is one-way and wakes every stop_sleep_ms at once. A NULL
 * `struct stop *` is never fired: callers with no owner to stop them pass NULL.
 */
#ifndef BOOKD_STOP_H
#define BOOKD_STOP_H

#include <pthread.h>
#include <stdatomic.h>

struct stop {
	atomic_int fired;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* monotonic clock */
};

void stop_init(struct stop *s);
void stop_destroy(struct stop *s);
/* Fires the signal (idempotent) and wakes every sleeper. */
void stop_fire(struct stop *s);
/* 1 once fired; 0 for NULL. Cheap: one atomic load. */
int stop_fired(const struct stop *s);
/* Sleeps `ms` milliseconds or until `s` fires; returns 1 when fired. With a
 * NULL `s` it simply sleeps. */
int stop_sleep_ms(struct stop *s, long ms);

#endif
