/* Small shared macros. Deliberately tiny: no module depends on more than this. */
#ifndef BOOKD_COMMON_H
#define BOOKD_COMMON_H

#include <stddef.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define WUR __attribute__((warn_unused_result))
#define UNUSED(x) ((void)(x))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* A string slice that carries its length. Not necessarily NUL-terminated. */
struct str {
	const char *p;
	size_t n;
};

#define STR_LIT(s) ((struct str){ (s), sizeof(s) - 1 })

#endif
