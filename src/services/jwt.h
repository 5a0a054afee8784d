/*
 * JSON Web Tokens, verified strictly. bookd signs its own access tokens with
 * HS256; tokens of an external identity provider (Better-Auth and others) are
 * EdDSA (Ed25519), RS256 or ES256, checked against the provider's JWKS.
 *
 * The algorithm is never taken on the token's word alone: HS256 is verified
 * only with bookd's own secrets, and an asymmetric algorithm only with a JWKS
 * key of the matching type (OKP/Ed25519, RSA, EC/P-256). "none", unknown
 * algorithms and an HS256 token "signed" with a public key all fail, with one
 * message that says nothing of why.
 */
#ifndef BOOKD_JWT_H
#define BOOKD_JWT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"

enum jwk_type { JWK_ED25519 = 1, JWK_RSA, JWK_EC_P256 };

struct jwk {
	char kid[128];
	enum jwk_type type;
	unsigned char ed25519[32];
	void *pkey; /* OpenSSL EVP_PKEY for RSA and EC */
};

struct jwks {
	int n;
	struct jwk keys[16];
};

/* Parses a JWKS document; keys of unsupported types are skipped. */
int jwks_parse(const char *json, size_t len, struct jwks *out, struct err *e) WUR;
void jwks_clear(struct jwks *k);

/* Returns the key for `kid` (NULL kid: the only key, if there is one), or
 * NULL. May fetch the JWKS again (bounded rate). */
typedef const struct jwk *(*jwt_key_lookup)(void *ctx, const char *kid);

struct jwt_verify_opts {
	const unsigned char *secret; /* HS256: current secret */
	size_t secret_len;
	const unsigned char *previous; /* HS256: previous secret, may be NULL */
	size_t previous_len;
	jwt_key_lookup lookup; /* NULL: external tokens are refused */
	void *lookup_ctx;
	const char *issuer;   /* external tokens: required `iss`, NULL = any */
	const char *audience; /* external tokens: required in `aud`, NULL = any */
	int64_t now;	      /* seconds */
	int leeway;	      /* seconds of clock skew tolerated */
};

/* On success *claims holds the payload (json_decref it) and *external says
 * whether it was a provider's token. Any failure is ERR_UNAUTHORIZED. */
int jwt_verify(const char *token, const struct jwt_verify_opts *o, json_t **claims, int *external,
	       struct err *e) WUR;

/* HS256-signs `claims` (not stolen). *out is malloc'ed. */
int jwt_sign_hs256(const unsigned char *key, size_t keylen, json_t *claims, char **out, struct err *e) WUR;

/* base64url without padding, as JWT uses. out must hold b64url_len(n). */
size_t b64url_len(size_t n);
void b64url_encode(const unsigned char *in, size_t n, char *out);
/* Returns the decoded length, or -1. */
long b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap);

#endif
