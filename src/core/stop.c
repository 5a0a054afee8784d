#include "stop.h"

#include <errno.h>
#include <time.h>

#include "timeutil.h"

void stop_init(struct stop *s)
{
	atomic_init(&s->fired, 0);
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &ca);
	pthread_condattr_destroy(&ca);
}

void stop_destroy(struct stop *s)
{
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
}

void stop_fire(struct stop *s)
{
	pthread_mutex_lock(&s->lock);
	atomic_store(&s->fired, 1);
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

int stop_fired(const struct stop *s)
{
	return s && atomic_load(&((struct stop *)s)->fired);
}

int stop_sleep_ms(struct stop *s, long ms)
{
	if (ms <= 0)
		return stop_fired(s);
	if (!s) {
		struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
		return 0;
	}
	struct timespec until = time_after_ms(CLOCK_MONOTONIC, ms);
	pthread_mutex_lock(&s->lock);
	while (!atomic_load(&s->fired))
		if (pthread_cond_timedwait(&s->cond, &s->lock, &until) == ETIMEDOUT)
			break;
	int fired = atomic_load(&s->fired);
	pthread_mutex_unlock(&s->lock);
	return fired;
}
