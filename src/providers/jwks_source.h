/*
 * An identity provider's JWKS, fetched through the provider HTTP client and
 * cached. What a key is and how a JWKS document is read belong to the caller
 * (struct jwks_source_ops; services/jwks_keys.c gives jwt.h's): this module
 * only fetches, keeps and looks up.
 *
 * A token with an unknown `kid` triggers a refetch, at most once per
 * `min_refetch_s`, so a flood of forged kids cannot turn into a flood of
 * requests to the provider. The refetch is single-flight and runs without
 * the lock readers take: a lookup of a cached kid never waits on the network;
 * lookups of unknown kids while a refetch runs wait for its result. Old key
 * sets are kept for a while (a ring) so that a lookup never sees keys freed
 * under it.
 */
#ifndef BOOKD_JWKS_SOURCE_H
#define BOOKD_JWKS_SOURCE_H

#include <stddef.h>

#include "../core/err.h"
#include "../core/stop.h"

struct jwk; /* the caller's key type */

struct jwks_source_ops {
	/* Reads a JWKS document into a new key set (NULL + e on failure). */
	void *(*parse)(const char *doc, size_t n, struct err *e);
	void (*free)(void *set);
	/* The key for `kid` (NULL kid: the only key), or NULL. */
	const struct jwk *(*find)(const void *set, const char *kid);
	int (*count)(const void *set);
};

struct jwks_source;

/* `stop` (may be NULL) cancels a fetch when fired. NULL when out of memory. */
struct jwks_source *jwks_source_new(const char *url, const struct jwks_source_ops *ops, int timeout_s,
				    int min_refetch_s, struct stop *stop);
void jwks_source_free(struct jwks_source *s);
/* Fits jwt_key_lookup. */
const struct jwk *jwks_source_lookup(void *source, const char *kid);

#endif
