/*
 * An identity provider's JWKS, fetched over HTTPS with libcurl and cached.
 * A token with an unknown `kid` triggers a refetch, at most once per
 * `min_refetch_s`, so a flood of forged kids cannot turn into a flood of
 * requests to the provider. Old key sets are kept for a while (a ring) so
 * that a lookup never sees keys freed under it.
 */
#ifndef BOOKD_JWKS_SOURCE_H
#define BOOKD_JWKS_SOURCE_H

#include "../services/jwt.h"

struct jwks_source;

struct jwks_source *jwks_source_new(const char *url, int timeout_s, int min_refetch_s);
void jwks_source_free(struct jwks_source *s);
/* Fits jwt_key_lookup. */
const struct jwk *jwks_source_lookup(void *source, const char *kid);

#endif
