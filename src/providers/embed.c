#include "embed.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/common.h"
#include "../core/mem.h"
#include "../core/timeutil.h"
#include "http_client.h"

#define RESPONSE_MAX ((size_t)256 << 20)

/* ---- OpenAI-compatible /embeddings -------------------------------------------------- */

struct openai_embed {
	char *url, *model, *auth;
	int dim_asked;
	struct phttp *http;
};

static void openai_close(void *self)
{
	struct openai_embed *o = self;
	if (!o)
		return;
	phttp_free(o->http);
	xfree(o->url);
	xfree(o->model);
	if (o->auth)
		memset(o->auth, 0, strlen(o->auth));
	xfree(o->auth);
	xfree(o);
}

static int openai_open(void **self, const struct embed_config *cfg, struct stop *stop, struct err *e)
{
	*self = NULL;
	struct openai_embed *o = xcalloc(1, sizeof(*o));
	if (!o)
		return err_set(e, ERR_INTERNAL, "out of memory");
	size_t n = strlen(cfg->url);
	while (n && cfg->url[n - 1] == '/')
		n--;
	o->url = xmalloc(n + sizeof("/embeddings"));
	o->model = xstrdup(cfg->model);
	size_t kl = cfg->key ? strlen(cfg->key) : 0;
	o->auth = xmalloc(kl + sizeof("Authorization: Bearer "));
	if (o->auth)
		snprintf(o->auth, kl + sizeof("Authorization: Bearer "), "%s%s", kl ? "Authorization: Bearer " : "",
			 kl ? cfg->key : "");
	o->dim_asked = cfg->dim;
	if (!o->url || !o->model || !o->auth) {
		openai_close(o);
		return err_set(e, ERR_INTERNAL, "out of memory");
	}
	memcpy(o->url, cfg->url, n);
	memcpy(o->url + n, "/embeddings", sizeof("/embeddings"));
	struct phttp_config hc = {
		.name = "embedding provider",
		.tries = 1, /* per call */
		.breaker_failures = 10,
		.breaker_seconds = 30,
		.max_response = RESPONSE_MAX,
		.backoff_ms = 200,
		.retry_after_max_ms = 300000,
	};
	int rc = phttp_new(&o->http, &hc, stop, e);
	if (rc) {
		openai_close(o);
		return rc;
	}
	*self = o;
	return 0;
}

struct answer {
	int n;
	float *out;
	int dim; /* expected; 0 = learn it */
	int got; /* the answer's */
};

/*
 * Reads an answer into a->out, or says why it is not one: a vector per text,
 * each `index` 0..n-1 exactly once (an item without one stands at its
 * position), one dimension for all, numbers only. Anything else is the
 * provider's malformed answer (retried); a dimension other than the one
 * expected is a setting to fix (not retried).
 */
static int check_answer(void *ctx, const char *body, size_t len, struct err *e)
{
	struct answer *a = ctx;
	int verdict = PHTTP_BAD_ANSWER;
	unsigned char *seen = xcalloc((size_t)a->n, 1);
	json_t *doc = json_loadb(body, len, 0, NULL);
	json_t *data = json_object_get(doc, "data");
	if (!seen) {
		err_set(e, ERR_INTERNAL, "out of memory");
		verdict = PHTTP_REFUSE;
		goto out;
	}
	if (!json_is_array(data) || (int)json_array_size(data) != a->n) {
		err_set(e, ERR_UNAVAILABLE, "embedding provider sent a malformed answer (%d vectors for %d texts)",
			json_is_array(data) ? (int)json_array_size(data) : -1, a->n);
		goto out;
	}
	int dim = a->dim;
	for (int i = 0; i < a->n; i++) {
		json_t *item = json_array_get(data, (size_t)i);
		json_t *idx = json_object_get(item, "index");
		json_int_t at = idx ? (json_is_integer(idx) ? json_integer_value(idx) : -1) : i;
		if (at < 0 || at >= a->n || seen[at]) {
			err_set(e, ERR_UNAVAILABLE, "embedding provider sent a malformed answer (index %lld %s)",
				(long long)at, at >= 0 && at < a->n ? "repeated" : "out of range");
			goto out;
		}
		seen[at] = 1;
		json_t *vec = json_object_get(item, "embedding");
		int got = json_is_array(vec) ? (int)MIN(json_array_size(vec), (size_t)INT32_MAX) : 0;
		if (got == 0 || got > EMBED_DIM_MAX) {
			err_set(e, ERR_UNAVAILABLE, "embedding provider sent a vector of %d dimensions (1..%d supported)",
				got, EMBED_DIM_MAX);
			goto out;
		}
		if (!dim)
			dim = got;
		if (got != dim) {
			if (a->dim && i == 0) {
				err_set(e, ERR_INVALID, "embedding has %d dimensions, expected %d", got, dim);
				verdict = PHTTP_REFUSE;
			} else {
				err_set(e, ERR_UNAVAILABLE,
					"embedding provider sent vectors of %d and %d dimensions in one answer", dim, got);
			}
			goto out;
		}
		float *row = a->out + (size_t)at * (size_t)dim;
		double norm = 0;
		for (int k = 0; k < dim; k++) {
			json_t *x = json_array_get(vec, (size_t)k);
			if (!json_is_number(x)) {
				err_set(e, ERR_UNAVAILABLE, "embedding provider sent a vector with a non-number");
				goto out;
			}
			double v = json_number_value(x);
			row[k] = (float)v;
			norm += v * v;
		}
		norm = sqrt(norm);
		for (int k = 0; norm > 0 && k < dim; k++)
			row[k] /= (float)norm;
	}
	a->got = dim;
	verdict = PHTTP_ACCEPT;
out:
	json_decref(doc);
	xfree(seen);
	return verdict;
}

static int openai_request(void *self, const char *const *texts, int n, float *out, int *dim, int tries,
			  long timeout_ms, struct err *e)
{
	struct openai_embed *o = self;
	json_t *input = json_array();
	for (int i = 0; i < n; i++)
		json_array_append_new(input, json_string(texts[i]));
	json_t *req = json_pack("{s:s, s:o}", "model", o->model, "input", input);
	if (req && o->dim_asked)
		json_object_set_new(req, "dimensions", json_integer(o->dim_asked));
	char *payload = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (!payload)
		return err_set(e, ERR_INTERNAL, "out of memory");
	const char *headers[2] = { "Content-Type: application/json", o->auth };
	struct answer a = { .n = n, .out = out, .dim = *dim };
	/* Each attempt may take timeout_ms; backoff waits fit in what is left. */
	int64_t deadline = time_now_ms() + (int64_t)tries * (timeout_ms + 30000);
	struct phttp_request hr = {
		.url = o->url,
		.headers = headers,
		.nheaders = o->auth[0] ? 2 : 1,
		.body = payload,
		.body_len = strlen(payload),
		.deadline_ms = deadline,
		.attempt_timeout_ms = timeout_ms,
		.tries = tries,
		.check = check_answer,
		.ctx = &a,
	};
	struct phttp_response resp;
	int rc = phttp_call(o->http, &hr, &resp, e);
	free(payload);
	if (rc) {
		if (resp.outcome == PHTTP_LOCAL && resp.status >= 400 && resp.status < 500)
			rc = err_set(e, ERR_INVALID, "embedding provider answered %ld", resp.status);
		else if (e->code == ERR_INVALID)
			rc = ERR_INVALID;
		return rc;
	}
	phttp_response_free(&resp);
	*dim = a.got;
	return 0;
}

const struct embed_ops embed_openai_ops = {
	.api = "openai",
	.open = openai_open,
	.close = openai_close,
	.request = openai_request,
};

/* ---- the embedder: batches, concurrency, the learnt dimension ---------------------- */

struct embedder {
	struct embed_config cfg;
	const struct embed_ops *ops;
	void *self;
	char *model;
	char key_name[160]; /* how vectors are labelled: model, or model@dim */
	atomic_int dim;
};

struct embedder *embedder_new(const struct embed_config *cfg, struct stop *stop)
{
	struct embedder *em = xcalloc(1, sizeof(*em));
	if (!em)
		return NULL;
	em->cfg = *cfg;
	em->ops = &embed_openai_ops;
	struct err e = { 0 };
	if (!(em->model = xstrdup(cfg->model)) || em->ops->open(&em->self, cfg, stop, &e)) {
		embedder_free(em);
		return NULL;
	}
	em->cfg.url = em->cfg.model = em->cfg.key = NULL; /* the caller's: not kept */
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
	if (em->self)
		em->ops->close(em->self);
	xfree(em->model);
	xfree(em);
}

const char *embedder_model(const struct embedder *em) { return em->model; }
int embedder_dim(const struct embedder *em) { return atomic_load(&((struct embedder *)em)->dim); }

/* One request for texts[0..n) into out, with the dimension known. */
static int embed_request(struct embedder *em, const char *const *texts, int n, float *out, int tries, long timeout_ms,
			 struct err *e)
{
	int dim = embedder_dim(em);
	return em->ops->request(em->self, texts, n, out, &dim, tries, timeout_ms, e);
}

struct batch_job {
	struct embedder *em;
	int tries;
	long timeout_ms;
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
		if (embed_request(j->em, j->texts + start, count, j->out + (size_t)start * (size_t)dim, j->tries,
				  j->timeout_ms, &e)) {
			pthread_mutex_lock(&j->lock);
			if (!atomic_exchange(&j->failed, 1))
				j->err = e;
			pthread_mutex_unlock(&j->lock);
			return NULL;
		}
	}
}

static int embed_all(struct embedder *em, const char *const *texts, int n, float **out, int *dim, int tries,
		     long timeout_ms, struct err *e)
{
	*out = NULL;
	if (n <= 0)
		return 0;
	if (!embedder_dim(em)) {
		/* Learn the dimension with one text first (the answer's size is
		 * checked against EMBED_DIM_MAX before anything is written). */
		float *probe = xmalloc(sizeof(float) * EMBED_DIM_MAX);
		if (!probe)
			return err_set(e, ERR_INTERNAL, "out of memory");
		int d = 0;
		int rc = em->ops->request(em->self, texts, 1, probe, &d, tries, timeout_ms, e);
		xfree(probe);
		if (rc)
			return rc;
		int zero = 0;
		atomic_compare_exchange_strong(&em->dim, &zero, d);
	}
	int d = embedder_dim(em);
	if (d <= 0 || d > EMBED_DIM_MAX)
		return err_set(e, ERR_INVALID, "embedding dimension %d is not supported", d);
	float *v = xmalloc(sizeof(float) * (size_t)n * (size_t)d);
	if (!v)
		return err_set(e, ERR_INTERNAL, "out of memory");
	struct batch_job j = { .em = em, .tries = tries, .timeout_ms = timeout_ms, .texts = texts, .n = n, .out = v };
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
	return embed_all(em, texts, n, out, dim, em->cfg.max_retries + 1, (long)em->cfg.timeout_s * 1000, e);
}

int embedder_embed_query(struct embedder *em, const char *text, float **out, int *dim, struct err *e)
{
	/* A reader is waiting: one try, and not longer than 5 s. */
	return embed_all(em, &text, 1, out, dim, 1, (long)MIN(em->cfg.timeout_s, 5) * 1000, e);
}

const char *embedder_key(const struct embedder *em)
{
	return em->key_name;
}
