/* FNV-1a over a NUL-terminated string: for hash tables and change detection,
 * never for anything an attacker must not predict. */
#ifndef BOOKD_HASH_H
#define BOOKD_HASH_H

#include <stdint.h>

static inline uint64_t hash_fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

#endif
