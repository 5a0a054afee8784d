/*
 * What the JWKS cache (providers/jwks_source.h) needs to know about keys:
 * jwt.h's struct jwks, read with jwks_parse.
 */
#ifndef BOOKD_JWKS_KEYS_H
#define BOOKD_JWKS_KEYS_H

#include "../providers/jwks_source.h"

extern const struct jwks_source_ops jwks_keys_ops;

#endif
