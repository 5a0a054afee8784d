/* libFuzzer entry point for the small parsers that see untrusted input:
 * ISBNs, request JSON, plain-text and single-Markdown book imports, slugs. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/utf8.h"
#include "providers/importer.h"
#include "services/isbn.h"
#include "services/markdown.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 20)
		return 0;
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	struct err e = { 0 };
	struct isbn is;
	if (isbn_parse(s, &is, &e) == 0 && strlen(is.isbn13) != 13)
		abort();
	json_t *o = NULL;
	if (json_parse_object(s, size, &o, &e) == 0 && !json_is_object(o))
		abort();
	json_decref(o);
	if (utf8_valid(s, size) && !memchr(s, 0, size)) {
		struct import_book b;
		memset(&b, 0, sizeof(b));
		arena_init(&b.arena, 4096);
		struct err ie = { 0 };
		(void)import_text("fuzz.txt", s, size, &b, &ie);
		import_book_free(&b);
		memset(&b, 0, sizeof(b));
		arena_init(&b.arena, 4096);
		(void)import_markdown_file("fuzz.md", s, size, &b, &ie);
		import_book_free(&b);
		struct buf slug;
		buf_init(&slug, 1 << 20);
		if (md_slug(s, size, &slug))
			abort();
		buf_free(&slug);
	}
	free(s);
	return 0;
}
