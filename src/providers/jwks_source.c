#include "jwks_source.h"

#include <curl/curl.h>
#include <pthread.h>
#include <string.h>

#include "../core/buf.h"
#include "../core/log.h"
#include "../core/mem.h"
#include "../core/timeutil.h"

#define RING 4
#define JWKS_MAX_BYTES (256 * 1024)

struct jwks_source {
	pthread_mutex_t lock;
	char *url;
	int timeout_s, min_refetch_s;
	int64_t last_fetch_ms;
	struct jwks ring[RING];
	int cur; /* index of the current set, -1 before the first fetch */
};

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
	struct buf *b = ud;
	return buf_append(b, p, size * n) ? 0 : size * n; /* 0 aborts past the cap */
}

/* Called with the lock held. */
static void refetch(struct jwks_source *s)
{
	int64_t now = time_now_ms();
	if (s->last_fetch_ms && now - s->last_fetch_ms < (int64_t)s->min_refetch_s * 1000)
		return;
	s->last_fetch_ms = now;
	struct buf body;
	buf_init(&body, JWKS_MAX_BYTES);
	CURL *c = curl_easy_init();
	long status = 0;
	CURLcode rc = CURLE_FAILED_INIT;
	if (c) {
		curl_easy_setopt(c, CURLOPT_URL, s->url);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
		curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)s->timeout_s);
		curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
		rc = curl_easy_perform(c);
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_cleanup(c);
	}
	if (rc != CURLE_OK || status != 200) {
		log_warn("JWKS fetch failed: %s (HTTP %ld)", curl_easy_strerror(rc), status);
		buf_free(&body);
		return;
	}
	int next = (s->cur + 1) % RING;
	struct jwks fresh;
	struct err e = { 0 };
	if (jwks_parse(body.p ? body.p : "", body.n, &fresh, &e)) {
		log_warn("JWKS rejected: %s", e.msg);
	} else {
		jwks_clear(&s->ring[next]); /* the oldest set */
		s->ring[next] = fresh;
		s->cur = next;
		log_info("JWKS loaded: %d signing keys", fresh.n);
	}
	buf_free(&body);
}

struct jwks_source *jwks_source_new(const char *url, int timeout_s, int min_refetch_s)
{
	struct jwks_source *s = xcalloc(1, sizeof(*s));
	if (!s || !(s->url = xstrdup(url))) {
		xfree(s);
		return NULL;
	}
	s->timeout_s = timeout_s;
	s->min_refetch_s = min_refetch_s;
	s->cur = RING - 1;
	pthread_mutex_init(&s->lock, NULL);
	return s;
}

void jwks_source_free(struct jwks_source *s)
{
	if (!s)
		return;
	for (int i = 0; i < RING; i++)
		jwks_clear(&s->ring[i]);
	pthread_mutex_destroy(&s->lock);
	xfree(s->url);
	xfree(s);
}

static const struct jwk *find(const struct jwks *k, const char *kid)
{
	if (!kid)
		return k->n == 1 ? &k->keys[0] : NULL;
	for (int i = 0; i < k->n; i++)
		if (strcmp(k->keys[i].kid, kid) == 0)
			return &k->keys[i];
	return NULL;
}

const struct jwk *jwks_source_lookup(void *source, const char *kid)
{
	struct jwks_source *s = source;
	if (kid && strlen(kid) >= sizeof(((struct jwk *)0)->kid))
		return NULL;
	pthread_mutex_lock(&s->lock);
	const struct jwk *k = find(&s->ring[s->cur], kid);
	if (!k) {
		refetch(s);
		k = find(&s->ring[s->cur], kid);
	}
	pthread_mutex_unlock(&s->lock);
	return k;
}
