/* libFuzzer entry point for both language-model stream parsers (llm_sse.c):
 * the first byte chooses the wire (OpenAI or Anthropic) and seeds where the
 * stream is cut into pieces, the rest is the raw byte stream. Fed whole or
 * cut anywhere, the parser must say the same thing and pass on the same
 * text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "providers/llm_sse.h"

static int collect(void *ctx, const char *t, size_t n)
{
	return buf_append(ctx, t, n) ? 1 : 0;
}

struct outcome {
	int feed, finish, state, ended;
	struct buf text;
};

static void run(enum llm_wire wire, const uint8_t *p, size_t n, unsigned seed, struct outcome *o)
{
	struct llm_sse s;
	buf_init(&o->text, 1 << 20);
	llm_sse_init(&s, wire, 1 << 16, collect, &o->text);
	o->feed = 0;
	size_t at = 0;
	while (at < n && !o->feed) {
		size_t k = n - at;
		if (seed) {
			seed = seed * 1103515245u + 12345u;
			k = 1 + (seed >> 16) % (k < 64 ? k : 64);
		}
		o->feed = llm_sse_feed(&s, (const char *)p + at, k);
		at += k;
	}
	o->finish = o->feed ? -1 : llm_sse_finish(&s);
	o->state = s.state;
	o->ended = s.ended;
	llm_sse_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 1 << 20)
		return 0;
	enum llm_wire wire = data[0] & 1 ? LLM_WIRE_ANTHROPIC : LLM_WIRE_OPENAI;
	unsigned seed = data[0] | 1u;
	struct outcome whole, cut;
	run(wire, data + 1, size - 1, 0, &whole);
	run(wire, data + 1, size - 1, seed, &cut);
	if (whole.state != cut.state || whole.finish != cut.finish || whole.ended != cut.ended)
		abort();
	if (whole.text.n != cut.text.n || (whole.text.n && memcmp(whole.text.p, cut.text.p, whole.text.n)))
		abort();
	buf_free(&whole.text);
	buf_free(&cut.text);
	return 0;
}
