/*
 * Language models, as an ordered chain of providers. Each provider speaks one
 * wire format (struct llm_ops): OpenAI-compatible chat completions (OpenAI,
 * Gemini's OpenAI endpoint, Ollama, vLLM, llama.cpp, OpenRouter) or Anthropic
 * Messages, streamed or not. A call goes down the chain: each provider gets
 * up to `tries` attempts with exponential backoff and jitter on 429, 5xx and
 * timeouts (Retry-After honoured, never past the deadline), unless its
 * circuit breaker is open (after `breaker_failures` failed calls in a row;
 * after `breaker_seconds` one probe call is let through, half-open). When
 * every provider fails, the caller answers without a model (extractive).
 *
 * A streamed call that has already delivered text is not retried elsewhere:
 * the reader has seen the start of that answer.
 */
#ifndef BOOKD_LLM_H
#define BOOKD_LLM_H

#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"

struct llm_message {
	const char *role; /* "user" or "assistant" */
	const char *content;
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
};

struct llm_result {
	char *text; /* malloc'ed */
	int prompt_tokens, completion_tokens;
	char provider[64], model[128];
	int delivered; /* bytes given to on_delta */
};

struct llm_chain;

/* Parses BOOKD_LLM_PROVIDERS ("name:model,name:model") and each provider's
 * BOOKD_LLM_<NAME>_URL / _KEY / _API / _TIMEOUT from the environment. An
 * empty list gives an empty chain. ERR_INVALID names what is wrong. */
int llm_chain_from_env(struct llm_chain **out, struct err *e) WUR;
void llm_chain_free(struct llm_chain *c);
int llm_chain_size(const struct llm_chain *c);
/* "gemini:gemini-2.0-flash (open)" etc., for /health/ready and logs. */
void llm_chain_describe(const struct llm_chain *c, char *out, size_t cap);
int llm_complete(struct llm_chain *c, const struct llm_request *req, struct llm_result *res, struct err *e) WUR;
void llm_result_free(struct llm_result *r);

#endif
