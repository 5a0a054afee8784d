/*
 * The streamed answers of language models, as Server-Sent Events: OpenAI's
 * chat-completion chunks (`data: {...}` lines ending with `data: [DONE]`) and
 * Anthropic's Messages events (`event:` + `data:` pairs ending with
 * message_stop). Bytes go in as they arrive, split anywhere; each piece of
 * text comes out through `on_text`. A line longer than `max_line` bytes, an
 * event that is not JSON or says `error`, is a malformed stream.
 */
#ifndef BOOKD_LLM_SSE_H
#define BOOKD_LLM_SSE_H

#include <stddef.h>

#include "../core/buf.h"

enum llm_wire { LLM_WIRE_OPENAI, LLM_WIRE_ANTHROPIC };

enum llm_sse_state {
	LLM_SSE_OK = 0,
	LLM_SSE_MALFORMED, /* the provider's fault */
	LLM_SSE_STOPPED,   /* on_text asked to stop */
};

struct llm_sse {
	enum llm_wire wire;
	struct buf line;
	char event[64];
	int ended;
	enum llm_sse_state state;
	int prompt_tokens, completion_tokens;
	int (*on_text)(void *ctx, const char *text, size_t n); /* non-zero stops */
	void *ctx;
};

void llm_sse_init(struct llm_sse *s, enum llm_wire wire, size_t max_line,
		  int (*on_text)(void *ctx, const char *text, size_t n), void *ctx);
/* Back to the start of a stream (a new attempt). */
void llm_sse_reset(struct llm_sse *s);
/* 0, or -1 once the stream is malformed or stopped (s->state says which). */
int llm_sse_feed(struct llm_sse *s, const char *p, size_t n);
/* The transfer is over: reads a last line left without its newline; 0 when
 * the stream came to its proper end. */
int llm_sse_finish(struct llm_sse *s);
void llm_sse_free(struct llm_sse *s);

#endif
