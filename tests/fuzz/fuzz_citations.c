/* libFuzzer entry point for the citation clean-up of a model's answer
 * (chat_clean_markers): the first byte chooses how many passages there are,
 * the rest is the answer. The result must be valid UTF-8, every cited n in
 * range and listed once, and cleaning it again must change nothing (so no
 * marker that points at no passage is left in the text). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"
#include "services/chat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 1 << 20)
		return 0;
	int np = data[0] % 24; /* MAX_PASSAGES is 20: a few past it too */
	char *s = malloc(size);
	if (!s)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	int cited[32], n = -1;
	char *out = chat_clean_markers(s, np, cited, &n);
	if (!out)
		abort(); /* no allocation fails here: NULL would be a cap hit */
	size_t len = strlen(out);
	if (!utf8_valid(out, len))
		abort();
	if (n < 0 || n > 20)
		abort();
	for (int i = 0; i < n; i++) {
		if (cited[i] < 1 || cited[i] > np)
			abort();
		for (int j = 0; j < i; j++)
			if (cited[j] == cited[i])
				abort();
	}
	int again[32], m;
	char *twice = chat_clean_markers(out, np, again, &m);
	if (!twice || strcmp(twice, out) != 0)
		abort();
	free(twice);
	free(out);
	free(s);
	return 0;
}
