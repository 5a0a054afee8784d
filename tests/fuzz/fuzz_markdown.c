/* libFuzzer entry point: everything bookd does with a chapter's Markdown —
 * MDX stripping, analysis (sections, anchors, words), chunking — on
 * arbitrary bytes. Invariants checked: chunks lie inside the text, in order. */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/utf8.h"
#include "services/chunker.h"
#include "services/markdown.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	if (!init)
		init = sodium_init() >= 0;
	const char *md = (const char *)data;
	if (!utf8_valid(md, size) || memchr(md, 0, size))
		return 0; /* bookd rejects such text before these functions see it */
	struct buf clean;
	buf_init(&clean, (size_t)1 << 24);
	if (md_strip_mdx(md, size, &clean) == 0) {
		struct arena a;
		arena_init(&a, 4096);
		struct md_info info;
		struct err e = { 0 };
		if (md_analyze(clean.p ? clean.p : "", clean.n, &a, &info, &e) == 0 && !md_sections_json(&info, &a))
			abort();
		struct chunk *c;
		int n;
		if (chunk_markdown("T", clean.p ? clean.p : "", clean.n, 32, &a, &c, &n, &e) == 0) {
			for (int i = 0; i < n; i++) {
				if (c[i].char_start >= c[i].char_end || c[i].char_end > clean.n)
					abort();
				if (i && c[i].char_start < c[i - 1].char_start)
					abort();
				if (memcmp(c[i].text, clean.p + c[i].char_start, c[i].char_end - c[i].char_start))
					abort();
			}
		}
		arena_free(&a);
	}
	buf_free(&clean);
	return 0;
}
