/*
 * Embedding providers. One implementation today: any OpenAI-compatible
 * /embeddings endpoint (OpenAI, Gemini's OpenAI-compatible API, Ollama, vLLM,
 * text-embeddings-inference), as the one entry of `struct embed_ops` today.
 * Texts go in batches, several batches at once (bounded), each request made
 * through the provider HTTP client (http_client.h): retried on 429, 5xx,
 * timeouts and malformed answers with jittered backoff honouring
 * Retry-After, behind a circuit breaker, cancelled by the owner's stop.
 *
 * An answer is checked before a byte of it is used: one vector per text, the
 * `index` values 0..n-1 each exactly once, every vector of the same (expected)
 * dimension and made of numbers. Vectors come back L2-normalised.
 */
#ifndef BOOKD_EMBED_H
#define BOOKD_EMBED_H

#include "../core/err.h"
#include "../core/stop.h"

struct embedder;

struct embed_config {
	const char *url; /* API base with its version path, e.g. https://api.openai.com/v1 */
	const char *model;
	const char *key;   /* may be empty */
	int dim;	   /* expected dimension; 0 = whatever the model returns (fixed on first call) */
	int batch;	   /* texts per request */
	int concurrency;   /* requests in flight */
	int timeout_s;	   /* per request */
	int max_retries;
};

#define EMBED_DIM_MAX 8192

/* One backend: the shape tts_ops, blob_ops and metadata_ops follow too. */
struct embed_ops {
	const char *api; /* "openai" */
	int (*open)(void **self, const struct embed_config *cfg, struct stop *stop, struct err *e);
	void (*close)(void *self);
	/* One request for texts[0..n): fills out (n * *dim floats). *dim is the
	 * dimension expected, or 0 when not yet known (then out holds n *
	 * EMBED_DIM_MAX floats and *dim is set to the one answered). */
	int (*request)(void *self, const char *const *texts, int n, float *out, int *dim, int tries, long timeout_ms,
		       struct err *e);
};

extern const struct embed_ops embed_openai_ops;

/* `stop` (may be NULL) cancels requests and backoff sleeps when fired.
 * NULL when out of memory. */
struct embedder *embedder_new(const struct embed_config *cfg, struct stop *stop);
void embedder_free(struct embedder *em);
const char *embedder_model(const struct embedder *em);
int embedder_dim(const struct embedder *em); /* 0 until known */
/* Embeds n texts into out (n * dim floats, allocated with xmalloc). */
int embedder_embed(struct embedder *em, const char *const *texts, int n, float **out, int *dim, struct err *e) WUR;

/* The same for a search query: one try, at most 5 s — a reader is waiting. */
int embedder_embed_query(struct embedder *em, const char *text, float **out, int *dim, struct err *e) WUR;
/* What vectors are stored under: the model, plus "@dim" when a dimension is
 * asked for (a new dimension of the same model is a new set of vectors). */
const char *embedder_key(const struct embedder *em);

#endif
