#ifndef BOOKD_UTF8_H
#define BOOKD_UTF8_H

#include <stddef.h>

/* 1 when s[0..n) is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
int utf8_valid(const char *s, size_t n);
/* Offset of the first invalid byte, or n when all is valid. */
size_t utf8_first_invalid(const char *s, size_t n);

#endif
