#include "embed.h"

#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../core/buf.h"
#include "../core/log.h"
#include "../core/mem.h"
#include "../core/common.h"
#include "../core/uuid.h"

#define RESPONSE_MAX ((size_t)256 << 20)
#define DIM_MAX 8192

struct embedder {
	struct embed_config cfg;
	char *url, *model, *key;
	char key_name[160]; /* how vectors are labelled: model, or model@dim */
	atomic_int dim;
};

struct embedder *embedder_new(const struct embed_config *cfg)
{
	struct embedder *em = xcalloc(1, sizeof(*em));
	if (!em)
		return NULL;
	em->cfg = *cfg;
	size_t n = strlen(cfg->url);
	while (n && cfg->url[n - 1] == '/')
		n--;
	em->url = xmalloc(n + sizeof("/embeddings"));
	em->model = xstrdup(cfg->model);
	em->key = xstrdup(cfg->key ? cfg->key : "");
	if (!em->url || !em->model || !em->key) {
		embedder_free(em);
		return NULL;
	}
	memcpy(em->url, cfg->url, n);
	memcpy(em->url + n, "/embeddings", sizeof("/embeddings"));
	atomic_init(&em->dim, cfg->dim);
	if (cfg->dim > 0)
		snprintf(em->key_name, sizeof(em->key_name), "%s@%d", cfg->model, cfg->dim);
	else
		snprintf(em->key_name, sizeof(em->key_name), "%s", cfg->model);
	if (em->cfg.batch <= 0)
		em->cfg.batch = 64;
	if (em->cfg.concurrency <= 0)
		em->cfg.concurrency = 4;
	if (em->cfg.timeout_s <= 0)
		em->cfg.timeout_s = 30;
	if (em->cfg.max_retries < 0)
		em->cfg.max_retries = 0;
	return em;
}

void embedder_free(struct embedder *em)
{
	if (!em)
		return;
	xfree(em->url);
	xfree(em->model);
	if (em->key)
		memset(em->key, 0, strlen(em->key));
	xfree(em->key);
	xfree(em);
}

const char *embedder_model(const struct embedder *em) { return em->model; }
int embedder_dim(const struct embedder *em) { return atomic_load(&((struct embedder *)em)->dim); }

struct call {
	struct buf body;
	long retry_after; /* seconds, from the header */
};

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
	struct call *c = ud;
	return buf_append(&c->body, p, size * n) ? 0 : size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	struct call *c = ud;
	size_t len = size * n;
	if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0) {
		char *end;
		long v = strtol(p + 12, &end, 10);
		if (end != p + 12 && v >= 0)
			c->retry_after = v > 300 ? 300 : v;
	}
	return len;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* One request for texts[0..n): fills out (n * dim). */
static int embed_request(struct embedder *em, const char *const *texts, int n, float *out, int retries,
			 int timeout_s, struct err *e)
{
	json_t *input = json_array();
	for (int i = 0; i < n; i++)
		json_array_append_new(input, json_string(texts[i]));
	json_t *req = json_pack("{s:s, s:o}", "model", em->model, "input", input);
	if (em->cfg.dim)
		json_object_set_new(req, "dimensions", json_integer(em->cfg.dim));
	char *payload = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (!payload)
		return err_set(e, ERR_INTERNAL, "out of memory");
	int rc = ERR_UNAVAILABLE;
	char auth[600];
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", em->key);
	for (int attempt = 0; attempt <= retries; attempt++) {
		struct call c = { .retry_after = -1 };
		buf_init(&c.body, RESPONSE_MAX);
		CURL *h = curl_easy_init();
		struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
		if (em->key[0])
			hdrs = curl_slist_append(hdrs, auth);
		long status = 0;
		CURLcode cc = CURLE_FAILED_INIT;
		if (h && hdrs) {
			curl_easy_setopt(h, CURLOPT_URL, em->url);
			curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
			curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
			curl_easy_setopt(h, CURLOPT_WRITEDATA, &c);
			curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
			curl_easy_setopt(h, CURLOPT_HEADERDATA, &c);
			curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)timeout_s);
			curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 5L);
			curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
			curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
			cc = curl_easy_perform(h);
			curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		}
		curl_slist_free_all(hdrs);
		curl_easy_cleanup(h);
		int retry = 0;
		if (cc != CURLE_OK) {
			rc = err_set(e, ERR_UNAVAILABLE, "embedding provider unreachable: %s", curl_easy_strerror(cc));
			retry = 1;
		} else if (status == 429 || status >= 500) {
			rc = err_set(e, ERR_UNAVAILABLE, "embedding provider answered %ld", status);
			retry = 1;
		} else if (status != 200) {
			rc = err_set(e, ERR_INVALID, "embedding provider answered %ld", status);
		} else {
			rc = 0;
			json_t *doc = json_loadb(c.body.p ? c.body.p : "", c.body.n, 0, NULL);
			json_t *data = json_object_get(doc, "data");
			if (!json_is_array(data) || (int)json_array_size(data) != n) {
				rc = err_set(e, ERR_UNAVAILABLE, "embedding provider sent a malformed answer");
				retry = 1;
			}
			int dim = atomic_load(&em->dim);
			for (int i = 0; !rc && i < n; i++) {
				json_t *item = json_array_get(data, (size_t)i);
				json_t *idx = json_object_get(item, "index");
				int at = json_is_integer(idx) ? (int)json_integer_value(idx) : i;
				json_t *vec = json_object_get(item, "embedding");
				int got = json_is_array(vec) ? (int)json_array_size(vec) : 0;
				if (got > DIM_MAX) {
					rc = err_set(e, ERR_INVALID, "embedding has %d dimensions; at most %d are supported",
						     got, DIM_MAX);
					break;
				}
				if (!dim && got > 0) {
					int zero = 0;
					atomic_compare_exchange_strong(&em->dim, &zero, got);
					dim = atomic_load(&em->dim);
				}
				if (at < 0 || at >= n || got != dim || got == 0) {
					rc = err_set(e, ERR_INVALID, "embedding has %d dimensions, expected %d", got, dim);
					break;
				}
				double norm = 0;
				for (int k = 0; k < dim; k++) {
					double v = json_number_value(json_array_get(vec, (size_t)k));
					out[(size_t)at * (size_t)dim + (size_t)k] = (float)v;
					norm += v * v;
				}
				norm = sqrt(norm);
				for (int k = 0; norm > 0 && k < dim; k++)
					out[(size_t)at * (size_t)dim + (size_t)k] /= (float)norm;
			}
			json_decref(doc);
		}
		buf_free(&c.body);
		if (!retry || attempt == retries)
			break;
		/* Backoff: Retry-After when given, else 200 ms doubling, ±25 %. */
		unsigned r;
		random_bytes(&r, sizeof(r));
		long wait = c.retry_after >= 0 ? c.retry_after * 1000 : 200L << attempt;
		wait = (long)((double)wait * (0.75 + 0.5 * (double)(r % 1000) / 1000.0));
		log_warn("embedding request failed (%s); retry %d in %ld ms", e->msg, attempt + 1, wait);
		sleep_ms(wait);
	}
	free(payload);
	return rc;
}

struct batch_job {
	struct embedder *em;
	int retries, timeout_s;
	const char *const *texts;
	int n, batches;
	float *out;
	atomic_int next;
	atomic_int failed;
	pthread_mutex_t lock;
	struct err err;
};

static void *batch_worker(void *arg)
{
	struct batch_job *j = arg;
	int bs = j->em->cfg.batch;
	for (;;) {
		int b = atomic_fetch_add(&j->next, 1);
		if (b >= j->batches || atomic_load(&j->failed))
			return NULL;
		int start = b * bs, count = MIN(bs, j->n - start);
		int dim = embedder_dim(j->em);
		struct err e = { 0 };
		/* The dimension is known after the first batch (run alone, below). */
		if (embed_request(j->em, j->texts + start, count, j->out + (size_t)start * (size_t)dim, j->retries,
				  j->timeout_s, &e)) {
			pthread_mutex_lock(&j->lock);
			if (!atomic_exchange(&j->failed, 1))
				j->err = e;
			pthread_mutex_unlock(&j->lock);
			return NULL;
		}
	}
}

static int embed_all(struct embedder *em, const char *const *texts, int n, float **out, int *dim, int retries,
		     int timeout_s, struct err *e)
{
	*out = NULL;
	if (n <= 0)
		return 0;
	int rc;
	if (!embedder_dim(em)) {
		/* Learn the dimension with one text first (the answer's size is
		 * checked against DIM_MAX before anything is written). */
		float *probe = xmalloc(sizeof(float) * DIM_MAX);
		if (!probe)
			return err_set(e, ERR_INTERNAL, "out of memory");
		rc = embed_request(em, texts, 1, probe, retries, timeout_s, e);
		xfree(probe);
		if (rc)
			return rc;
	}
	int d = embedder_dim(em);
	if (d <= 0 || d > DIM_MAX)
		return err_set(e, ERR_INVALID, "embedding dimension %d is not supported", d);
	float *v = xmalloc(sizeof(float) * (size_t)n * (size_t)d);
	if (!v)
		return err_set(e, ERR_INTERNAL, "out of memory");
	struct batch_job j = { .em = em, .retries = retries, .timeout_s = timeout_s, .texts = texts, .n = n, .out = v };
	j.batches = (n + em->cfg.batch - 1) / em->cfg.batch;
	pthread_mutex_init(&j.lock, NULL);
	int threads = MIN(em->cfg.concurrency, j.batches);
	pthread_t t[32];
	int started = 0;
	for (int i = 0; i < threads && i < 32; i++)
		if (pthread_create(&t[i], NULL, batch_worker, &j) == 0)
			started++;
	if (!started)
		batch_worker(&j);
	for (int i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	pthread_mutex_destroy(&j.lock);
	if (atomic_load(&j.failed)) {
		*e = j.err;
		xfree(v);
		return e->code ? e->code : ERR_UNAVAILABLE;
	}
	*out = v;
	*dim = d;
	return 0;
}

int embedder_embed(struct embedder *em, const char *const *texts, int n, float **out, int *dim, struct err *e)
{
	return embed_all(em, texts, n, out, dim, em->cfg.max_retries, em->cfg.timeout_s, e);
}

int embedder_embed_query(struct embedder *em, const char *text, float **out, int *dim, struct err *e)
{
	/* A reader is waiting: one try, and not longer than 5 s. */
	return embed_all(em, &text, 1, out, dim, 0, MIN(em->cfg.timeout_s, 5), e);
}

const char *embedder_key(const struct embedder *em)
{
	return em->key_name;
}
