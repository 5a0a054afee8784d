/*
 * Language models, as an ordered chain of providers chosen from the config
 * table at start-up (BOOKD_LLM_PROVIDERS). Each link is a `struct llm_ops`
 * entry: OpenAI-compatible chat completions (OpenAI, Gemini's OpenAI
 * endpoint, Ollama, vLLM, llama.cpp, OpenRouter), Anthropic Messages, and —
 * always last — the extractive answerer, which needs no model: it answers
 * from the passages given in the request.
 *
 * The remote links go through the provider HTTP client (http_client.h): each
 * gets up to BOOKD_LLM_TRIES attempts with jittered backoff, Retry-After
 * honoured, never past the request's deadline, unless its circuit breaker is
 * open. A call goes down the chain until a link answers. A streamed call that
 * has already delivered text is not retried elsewhere: the reader has seen
 * the start of that answer. A cancelled call stops the chain.
 *
 * tts_ops, blob_ops and metadata_ops take the same shape: a name the config
 * table chooses by, open/close, and the calls.
 */
#ifndef BOOKD_LLM_H
#define BOOKD_LLM_H

#include <stddef.h>
#include <stdint.h>

#include "../core/config.h"
#include "../core/err.h"
#include "../core/stop.h"

struct llm_message {
	const char *role; /* "user" or "assistant" */
	const char *content;
};

/* A retrieved passage, numbered from 1 in the order given. */
struct llm_passage {
	const char *text;
};

struct llm_request {
	const char *system;
	const struct llm_message *messages;
	int nmessages;
	int max_tokens;
	double temperature;
	int stream;
	/* Streaming: called with each piece of text; return non-zero to cancel. */
	int (*on_delta)(void *ctx, const char *text, size_t n);
	void *ctx;
	/* Polled while waiting; non-zero cancels (the client went away). */
	int (*cancelled)(void *ctx);
	int64_t deadline_ms; /* absolute, time_now_ms() clock */
	/* The passages an answer is drawn from, for the extractive link (which
	 * declines a request without them: NULL, as a rewrite call has). */
	const struct llm_passage *passages;
	int npassages;
	const char *question; /* what the extractive link matches sentences against */
};

#define LLM_MAX_CITES 3

/* A citation the answerer made itself: passage n (1-based) and a quote that
 * is a slice of that passage's text. */
struct llm_cite {
	int n;
	const char *quote;
	size_t quote_len;
};

struct llm_result {
	char *text; /* malloc'ed */
	int prompt_tokens, completion_tokens;
	char provider[64], model[128];
	int delivered; /* bytes given to on_delta */
	int cancelled; /* the call was cancelled: no other link was asked */
	int extractive; /* answered without a model; cites[] holds its citations */
	int ncites;
	struct llm_cite cites[LLM_MAX_CITES];
};

/* One link's settings (from the config table). */
struct llm_link_config {
	const char *name, *model, *url, *key;
	int timeout_s;
	int tries, breaker_failures, breaker_seconds;
};

struct llm_ops {
	const char *api; /* what BOOKD_LLM_<NAME>_API names: "openai", "anthropic", "extractive" */
	int remote;	 /* asks a model over the network */
	int (*open)(void **self, const struct llm_link_config *lc, struct stop *stop, struct err *e);
	void (*close)(void *self);
	/* 0 with res->text set; else an error, res->cancelled when cancelled and
	 * res->delivered when part of the answer reached on_delta. */
	int (*complete)(void *self, const struct llm_request *req, struct llm_result *res, struct err *e);
	int (*circuit_open)(void *self); /* may be NULL */
};

extern const struct llm_ops llm_openai_ops, llm_anthropic_ops, llm_extractive_ops;
/* The entry named by a BOOKD_LLM_<NAME>_API value, or NULL. */
const struct llm_ops *llm_ops_find(const char *api);

struct llm_chain;

/* The chain of cfg->llm (BOOKD_LLM_PROVIDERS in order), then the extractive
 * answerer. `stop` (may be NULL) cancels every call when fired. */
int llm_chain_new(struct llm_chain **out, const struct config *cfg, struct stop *stop, struct err *e) WUR;
void llm_chain_free(struct llm_chain *c);
/* Links that ask a model (the extractive one is not counted). */
int llm_chain_size(const struct llm_chain *c);
/* "gemini:gemini-2.0-flash (circuit open)" etc., for /health/ready and logs;
 * the remote links only. */
void llm_chain_describe(const struct llm_chain *c, char *out, size_t cap);
int llm_complete(struct llm_chain *c, const struct llm_request *req, struct llm_result *res, struct err *e) WUR;
void llm_result_free(struct llm_result *r);

/* The extractive answerer itself: the passages' (at most three) sentences
 * that share the most words with the question, in order of score, each
 * followed by its [n]; res->cites holds the passages cited (once each, first
 * sentence as the quote). */
int llm_extractive_answer(const char *question, const struct llm_passage *passages, int npassages,
			  struct llm_result *res, struct err *e) WUR;

#endif
