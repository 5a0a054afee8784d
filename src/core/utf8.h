#ifndef BOOKD_UTF8_H
#define BOOKD_UTF8_H

#include <stddef.h>

/* 1 when s[0..n) is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
int utf8_valid(const char *s, size_t n);
/* Offset of the first invalid byte, or n when all is valid. */
size_t utf8_first_invalid(const char *s, size_t n);

/* Copies s[0..n) to out (room for utf8_repair(s, n, NULL, NULL) bytes),
 * replacing each maximal ill-formed subsequence with U+FFFD as Unicode
 * recommends ("ca\xE2\x82x" -> "ca\uFFFDx"); out NULL only measures.
 * Returns the output length; *bad (when not NULL) gets the bytes replaced. */
size_t utf8_repair(const char *s, size_t n, char *out, size_t *bad);

/* Characters (code points) in a NUL-terminated valid UTF-8 string. */
size_t utf8_chars(const char *s);
/* The longest prefix of s[0..n) of at most max bytes that does not split a
 * character (s must be valid UTF-8). */
size_t utf8_prefix(const char *s, size_t n, size_t max);

#endif
