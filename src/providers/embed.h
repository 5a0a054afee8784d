/*
 * Embedding providers. One implementation today: any OpenAI-compatible
 * /embeddings endpoint (OpenAI, Gemini's OpenAI-compatible API, Ollama, vLLM,
 * text-embeddings-inference). Texts go in batches, several batches at once
 * (bounded), each request retried on 429/5xx/timeouts with exponential
 * backoff and jitter, honouring Retry-After. Vectors come back L2-normalised.
 */
#ifndef BOOKD_EMBED_H
#define BOOKD_EMBED_H

#include "../core/err.h"

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

struct embedder *embedder_new(const struct embed_config *cfg);
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
