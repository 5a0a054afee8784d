#include "llm_sse.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

void llm_sse_init(struct llm_sse *s, enum llm_wire wire, size_t max_line,
		  int (*on_text)(void *ctx, const char *text, size_t n), void *ctx)
{
	memset(s, 0, sizeof(*s));
	s->wire = wire;
	buf_init(&s->line, max_line);
	s->on_text = on_text;
	s->ctx = ctx;
}

void llm_sse_reset(struct llm_sse *s)
{
	buf_reset(&s->line);
	s->event[0] = '\0';
	s->ended = 0;
	s->state = LLM_SSE_OK;
	s->prompt_tokens = s->completion_tokens = 0;
}

void llm_sse_free(struct llm_sse *s)
{
	buf_free(&s->line);
}

static int int_of(json_t *o, const char *key, int *out)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_integer(v))
		return 0;
	json_int_t n = json_integer_value(v);
	*out = n < 0 ? 0 : n > 1000000000 ? 1000000000 : (int)n;
	return 1;
}

static int emit(struct llm_sse *s, const char *t)
{
	size_t n = t ? strlen(t) : 0;
	if (!n || !s->on_text)
		return 0;
	if (s->on_text(s->ctx, t, n)) {
		s->state = LLM_SSE_STOPPED;
		return -1;
	}
	return 0;
}

/* 1 = end of stream, 0 = go on, -1 = malformed */
static int openai_event(struct llm_sse *s, json_t *data)
{
	if (!json_is_object(data))
		return -1;
	if (json_object_get(data, "error"))
		return -1;
	json_t *choice = json_array_get(json_object_get(data, "choices"), 0);
	const char *text = json_string_value(json_object_get(json_object_get(choice, "delta"), "content"));
	json_t *u = json_object_get(data, "usage");
	int_of(u, "prompt_tokens", &s->prompt_tokens);
	int_of(u, "completion_tokens", &s->completion_tokens);
	return emit(s, text) ? -2 : 0;
}

static int anthropic_event(struct llm_sse *s, json_t *data)
{
	const char *type = json_string_value(json_object_get(data, "type"));
	if (!type)
		type = s->event[0] ? s->event : NULL;
	if (!type || !json_is_object(data) || !strcmp(type, "error"))
		return -1;
	if (!strcmp(type, "message_stop"))
		return 1;
	if (!strcmp(type, "message_start")) {
		int_of(json_object_get(json_object_get(data, "message"), "usage"), "input_tokens", &s->prompt_tokens);
	} else if (!strcmp(type, "content_block_delta")) {
		const char *t = json_string_value(json_object_get(json_object_get(data, "delta"), "text"));
		if (emit(s, t))
			return -2;
	} else if (!strcmp(type, "message_delta")) {
		int_of(json_object_get(data, "usage"), "output_tokens", &s->completion_tokens);
	}
	return 0;
}

static int on_line(struct llm_sse *s, const char *line, size_t n)
{
	if (n && line[n - 1] == '\r')
		n--;
	if (n == 0) {
		s->event[0] = '\0';
		return 0;
	}
	if (s->ended)
		return 0; /* whatever follows the end is not part of the answer */
	if (n >= 6 && !strncmp(line, "event:", 6)) {
		size_t k = 6;
		while (k < n && line[k] == ' ')
			k++;
		snprintf(s->event, sizeof(s->event), "%.*s", (int)(n - k), line + k);
		return 0;
	}
	if (n < 5 || strncmp(line, "data:", 5))
		return 0; /* comments, ids, retry: */
	size_t k = 5;
	while (k < n && line[k] == ' ')
		k++;
	if (s->wire == LLM_WIRE_OPENAI && n - k == 6 && !strncmp(line + k, "[DONE]", 6)) {
		s->ended = 1;
		return 0;
	}
	json_t *data = json_loadb(line + k, n - k, 0, NULL);
	int r = s->wire == LLM_WIRE_OPENAI ? openai_event(s, data) : anthropic_event(s, data);
	json_decref(data);
	if (r == -1)
		s->state = LLM_SSE_MALFORMED;
	if (r < 0)
		return -1;
	if (r > 0)
		s->ended = 1;
	return 0;
}

int llm_sse_feed(struct llm_sse *s, const char *p, size_t n)
{
	if (s->state != LLM_SSE_OK)
		return -1;
	while (n) {
		const char *nl = memchr(p, '\n', n);
		size_t k = nl ? (size_t)(nl - p) : n;
		if (buf_append(&s->line, p, k)) {
			s->state = LLM_SSE_MALFORMED; /* a line past the cap, or no memory */
			return -1;
		}
		if (!nl)
			break;
		int rc = on_line(s, s->line.p ? s->line.p : "", s->line.n);
		buf_reset(&s->line);
		if (rc)
			return -1;
		p += k + 1;
		n -= k + 1;
	}
	return 0;
}

int llm_sse_finish(struct llm_sse *s)
{
	if (s->state == LLM_SSE_OK && s->line.n) {
		int rc = on_line(s, s->line.p, s->line.n);
		buf_reset(&s->line);
		if (rc)
			return -1;
	}
	return s->state == LLM_SSE_OK && s->ended ? 0 : -1;
}
