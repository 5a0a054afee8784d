/* FNV-1a over a NUL-terminated string: for hash tables and change detection,
 * never for anything an attacker must not predict; SHA-256 for those. */
#ifndef BOOKD_HASH_H
#define BOOKD_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_FNV1A_SEED 1469598103934665603ULL

/* Continues hash h (HASH_FNV1A_SEED to start) over n bytes. */
static inline uint64_t hash_fnv1a_bytes(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ULL;
	return h;
}

static inline uint64_t hash_fnv1a(const char *s)
{
	uint64_t h = HASH_FNV1A_SEED;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* SHA-256 of n bytes as 64 lowercase hex digits (content addressing, keys
 * that must not be guessable from their input, SigV4 payload hashes). */
void hash_sha256_hex(const void *p, size_t n, char out[65]);

#endif
