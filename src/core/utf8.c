#include "utf8.h"

#include <stdint.h>
#include <string.h>

size_t utf8_first_invalid(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	while (i < n) {
		/* ASCII fast path, 8 bytes at a time. */
		if (i + 8 <= n) {
			uint64_t w;
			memcpy(&w, s + i, 8);
			if ((w & 0x8080808080808080ULL) == 0) {
				i += 8;
				continue;
			}
		}
		unsigned char c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t len;
		uint32_t cp;
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4;
			cp = c & 0x07;
		} else {
			return i;
		}
		if (i + len > n)
			return i;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return i;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return i;
		i += len;
	}
	return n;
}

/* Length of the maximal ill-formed subsequence at s[0] (invalid there): the
 * lead byte and the continuation bytes that could still have completed it. */
static size_t invalid_run(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
	if (!len)
		return 1;
	unsigned char lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
	unsigned char hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
	size_t k = 1;
	for (; k < len && k < n; k++) {
		if (s[k] < lo || s[k] > hi)
			break;
		lo = 0x80;
		hi = 0xbf;
	}
	return k;
}

size_t utf8_repair(const char *str, size_t n, char *out, size_t *bad)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, o = 0, replaced = 0;
	while (i < n) {
		size_t ok = utf8_first_invalid(str + i, n - i);
		if (out)
			memcpy(out + o, s + i, ok);
		o += ok;
		i += ok;
		if (i == n)
			break;
		size_t run = invalid_run(s + i, n - i);
		if (out)
			memcpy(out + o, "\xEF\xBF\xBD", 3);
		o += 3;
		i += run;
		replaced += run;
	}
	if (bad)
		*bad = replaced;
	return o;
}

int utf8_valid(const char *s, size_t n)
{
	return utf8_first_invalid(s, n) == n;
}

size_t utf8_prefix(const char *s, size_t n, size_t max)
{
	if (n <= max)
		return n;
	size_t k = max;
	while (k > 0 && ((unsigned char)s[k] & 0xc0) == 0x80)
		k--; /* s[k] is a continuation byte: the character starts earlier */
	return k;
}

size_t utf8_chars(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}
