/* libFuzzer entry point for services/mdprotect: protect arbitrary text, then
 * restore the protected text itself as the model's answer. Invariants: any
 * UTF-8 text without NUL is protected (or is ERR_TOO_LARGE); with a glossary
 * of kept terms the restore succeeds and gives back the original byte for
 * byte; with a translated term it may only fail validation, never crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"
#include "services/mdprotect.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *md = (const char *)data;
	if (memchr(data, 0, size) || !utf8_valid(md, size))
		return 0;
	static const struct md_glossary_term kept[] = { { "ROS 2", NULL }, { "node", NULL }, { "`", NULL } };
	static const struct md_glossary_term tr[] = { { "Q", "# \xD9\x82" } };
	int translate = size > 0 && (data[0] & 1);
	struct arena a;
	arena_init(&a, 4096);
	struct err e = { 0 };
	struct md_protected p;
	int rc = md_protect(&a, md, size, translate ? tr : kept, translate ? 1 : 3, &p, &e);
	if (rc == ERR_TOO_LARGE)
		goto out;
	if (rc)
		abort();
	char *back;
	if (md_restore(&a, &p, p.text, strlen(p.text), &back, &e)) {
		/* A translation may change the structure it lands in (a term
		 * inside a heading anchor's text, say); kept terms never do. */
		if (!translate)
			abort();
		goto out;
	}
	if (!translate && (strlen(back) != size || memcmp(back, md, size)))
		abort();
out:
	arena_free(&a);
	return 0;
}
