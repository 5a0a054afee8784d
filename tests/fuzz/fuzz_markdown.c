/* libFuzzer entry point: everything bookd does with a chapter's Markdown —
 * UTF-8 repair (as the importer cleans a file with a few bad bytes), MDX
 * stripping (multi-line JSX tags, import/export blocks, fences), analysis
 * (sections, anchors, words), chunking — on arbitrary bytes. Invariants
 * checked: repaired text is valid UTF-8; stripping keeps it valid and never
 * grows it (but for a final newline); chunks lie inside the text, in order. */
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
	if (memchr(data, 0, size))
		return 0; /* the importer skips such a file */
	size_t n = utf8_repair((const char *)data, size, NULL, NULL);
	char *md = malloc(n + 1);
	if (!md)
		return 0;
	if (utf8_repair((const char *)data, size, md, NULL) != n || !utf8_valid(md, n))
		abort();
	md[n] = '\0';
	size = n;
	struct buf clean;
	buf_init(&clean, (size_t)1 << 24);
	if (md_strip_mdx(md, size, &clean) == 0) {
		if (clean.n > size + 1 || !utf8_valid(clean.p ? clean.p : "", clean.n))
			abort();
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
	free(md);
	return 0;
}
