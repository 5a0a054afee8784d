#include "jwks_source.h"

#include <pthread.h>
#include <string.h>

#include "../core/log.h"
#include "../core/mem.h"
#include "../core/timeutil.h"
#include "http_client.h"

#define RING 4
#define JWKS_MAX_BYTES (256 * 1024)
#define KID_MAX 128

struct jwks_source {
	const struct jwks_source_ops *ops;
	char *url;
	int timeout_s, min_refetch_s;
	struct phttp *http;
	pthread_mutex_t lock; /* everything below; never held across the network */
	pthread_cond_t fetched;
	int64_t last_fetch_ms;
	int fetching;	  /* a refetch is under way (single flight) */
	unsigned long generation; /* refetches finished */
	void *ring[RING];
	int cur; /* index of the current set (NULL before the first fetch) */
};

struct jwks_source *jwks_source_new(const char *url, const struct jwks_source_ops *ops, int timeout_s,
				    int min_refetch_s, struct stop *stop)
{
	struct jwks_source *s = xcalloc(1, sizeof(*s));
	if (!s || !(s->url = xstrdup(url))) {
		xfree(s);
		return NULL;
	}
	struct phttp_config hc = {
		.name = "JWKS",
		.tries = 1,
		.breaker_failures = 0, /* min_refetch_s already spaces the calls */
		.max_response = JWKS_MAX_BYTES,
	};
	struct err e = { 0 };
	if (phttp_new(&s->http, &hc, stop, &e)) {
		xfree(s->url);
		xfree(s);
		return NULL;
	}
	s->ops = ops;
	s->timeout_s = timeout_s;
	s->min_refetch_s = min_refetch_s;
	s->cur = RING - 1;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->fetched, NULL);
	return s;
}

void jwks_source_free(struct jwks_source *s)
{
	if (!s)
		return;
	for (int i = 0; i < RING; i++)
		if (s->ring[i])
			s->ops->free(s->ring[i]);
	pthread_cond_destroy(&s->fetched);
	pthread_mutex_destroy(&s->lock);
	phttp_free(s->http);
	xfree(s->url);
	xfree(s);
}

/* The network part of a refetch: called without the lock. A new key set, or
 * NULL (logged). */
static void *fetch(struct jwks_source *s)
{
	const char *headers[1] = { "Accept: application/json" };
	struct phttp_request hr = {
		.url = s->url,
		.headers = headers,
		.nheaders = 1,
		.deadline_ms = time_now_ms() + (int64_t)s->timeout_s * 1000,
	};
	struct phttp_response resp;
	struct err e = { 0 };
	if (phttp_call(s->http, &hr, &resp, &e)) {
		log_warn("JWKS fetch failed: %s", e.msg);
		return NULL;
	}
	void *set = s->ops->parse(resp.body, resp.n, &e);
	phttp_response_free(&resp);
	if (!set)
		log_warn("JWKS rejected: %s", e.msg);
	return set;
}

const struct jwk *jwks_source_lookup(void *source, const char *kid)
{
	struct jwks_source *s = source;
	if (kid && strlen(kid) >= KID_MAX)
		return NULL;
	pthread_mutex_lock(&s->lock);
	const struct jwk *k = s->ring[s->cur] ? s->ops->find(s->ring[s->cur], kid) : NULL;
	if (k)
		goto out;
	if (s->fetching) {
		/* Someone is asking already: wait for that answer (bounded by its
		 * timeout), never for a second request. */
		unsigned long gen = s->generation;
		while (s->fetching && s->generation == gen)
			pthread_cond_wait(&s->fetched, &s->lock);
		k = s->ring[s->cur] ? s->ops->find(s->ring[s->cur], kid) : NULL;
		goto out;
	}
	int64_t now = time_now_ms();
	if (s->last_fetch_ms && now - s->last_fetch_ms < (int64_t)s->min_refetch_s * 1000)
		goto out;
	s->last_fetch_ms = now;
	s->fetching = 1;
	pthread_mutex_unlock(&s->lock);

	void *fresh = fetch(s);

	pthread_mutex_lock(&s->lock);
	if (fresh) {
		int next = (s->cur + 1) % RING;
		if (s->ring[next])
			s->ops->free(s->ring[next]); /* the oldest set */
		s->ring[next] = fresh;
		s->cur = next;
		log_info("JWKS loaded: %d signing keys", s->ops->count ? s->ops->count(fresh) : -1);
	}
	s->fetching = 0;
	s->generation++;
	pthread_cond_broadcast(&s->fetched);
	k = s->ring[s->cur] ? s->ops->find(s->ring[s->cur], kid) : NULL;
out:
	pthread_mutex_unlock(&s->lock);
	return k;
}
