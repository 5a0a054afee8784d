#include "jwt.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "../core/mem.h"

#define JWT_MAX 8192

size_t b64url_len(size_t n)
{
	return sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

void b64url_encode(const unsigned char *in, size_t n, char *out)
{
	sodium_bin2base64(out, b64url_len(n), in, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

long b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap)
{
	size_t got = 0;
	const char *end = NULL;
	if (sodium_base642bin(out, cap, in, n, NULL, &got, &end, sodium_base64_VARIANT_URLSAFE_NO_PADDING) ||
	    end != in + n)
		return -1;
	return (long)got;
}

/* ---- JWKS ------------------------------------------------------------------ */

static int b64_field(json_t *o, const char *k, unsigned char *out, size_t cap, long *len)
{
	json_t *v = json_object_get(o, k);
	if (!json_is_string(v))
		return -1;
	*len = b64url_decode(json_string_value(v), json_string_length(v), out, cap);
	return *len < 0 ? -1 : 0;
}

static EVP_PKEY *rsa_key(json_t *k)
{
	unsigned char n[1024], e[16];
	long nl, el;
	if (b64_field(k, "n", n, sizeof(n), &nl) || b64_field(k, "e", e, sizeof(e), &el) || nl < 256)
		return NULL; /* RSA keys under 2048 bits are refused */
	EVP_PKEY *pkey = NULL;
	BIGNUM *bn = BN_bin2bn(n, (int)nl, NULL), *be = BN_bin2bn(e, (int)el, NULL);
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	if (bn && be && bld && ctx && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) && (params = OSSL_PARAM_BLD_to_param(bld)) &&
	    EVP_PKEY_fromdata_init(ctx) > 0)
		EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	BN_free(bn);
	BN_free(be);
	return pkey;
}

static EVP_PKEY *ec_key(json_t *k)
{
	json_t *crv = json_object_get(k, "crv");
	if (!json_is_string(crv) || strcmp(json_string_value(crv), "P-256") != 0)
		return NULL;
	unsigned char pt[65], x[40], y[40];
	long xl, yl;
	if (b64_field(k, "x", x, sizeof(x), &xl) || b64_field(k, "y", y, sizeof(y), &yl) || xl != 32 || yl != 32)
		return NULL;
	pt[0] = 0x04; /* uncompressed point */
	memcpy(pt + 1, x, 32);
	memcpy(pt + 33, y, 32);
	EVP_PKEY *pkey = NULL;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"prime256v1", 0),
		OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt)),
		OSSL_PARAM_construct_end(),
	};
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (ctx && EVP_PKEY_fromdata_init(ctx) > 0)
		EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params);
	EVP_PKEY_CTX_free(ctx);
	return pkey;
}

int jwks_parse(const char *json, size_t len, struct jwks *out, struct err *e)
{
	memset(out, 0, sizeof(*out));
	json_t *doc = json_loadb(json, len, 0, NULL);
	json_t *keys = json_object_get(doc, "keys");
	if (!json_is_array(keys)) {
		json_decref(doc);
		return err_set(e, ERR_INVALID, "JWKS has no \"keys\" array");
	}
	size_t i;
	json_t *k;
	json_array_foreach(keys, i, k) {
		if (out->n >= (int)ARRAY_LEN(out->keys))
			break;
		const char *kty = json_string_value(json_object_get(k, "kty"));
		const char *kid = json_string_value(json_object_get(k, "kid"));
		const char *use = json_string_value(json_object_get(k, "use"));
		if (!kty || (use && strcmp(use, "sig") != 0))
			continue;
		struct jwk *dst = &out->keys[out->n];
		memset(dst, 0, sizeof(*dst));
		if (kid && strlen(kid) >= sizeof(dst->kid))
			continue; /* cut, it could match another key's kid */
		snprintf(dst->kid, sizeof(dst->kid), "%s", kid ? kid : "");
		if (strcmp(kty, "OKP") == 0) {
			const char *crv = json_string_value(json_object_get(k, "crv"));
			long xl;
			if (!crv || strcmp(crv, "Ed25519") || b64_field(k, "x", dst->ed25519, 32, &xl) || xl != 32)
				continue;
			dst->type = JWK_ED25519;
		} else if (strcmp(kty, "RSA") == 0) {
			if (!(dst->pkey = rsa_key(k)))
				continue;
			dst->type = JWK_RSA;
		} else if (strcmp(kty, "EC") == 0) {
			if (!(dst->pkey = ec_key(k)))
				continue;
			dst->type = JWK_EC_P256;
		} else {
			continue;
		}
		out->n++;
	}
	json_decref(doc);
	return 0;
}

void jwks_clear(struct jwks *k)
{
	for (int i = 0; i < k->n; i++)
		EVP_PKEY_free(k->keys[i].pkey);
	k->n = 0;
}

/* ---- verification ---------------------------------------------------------- */

static int evp_verify(EVP_PKEY *pkey, const unsigned char *sig, size_t siglen, const char *msg, size_t n)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok = md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) == 1 &&
		 EVP_DigestVerify(md, sig, siglen, (const unsigned char *)msg, n) == 1;
	EVP_MD_CTX_free(md);
	return ok;
}

/* JWS ES256 signatures are r||s; OpenSSL wants DER. */
static int es256_verify(EVP_PKEY *pkey, const unsigned char *sig, size_t siglen, const char *msg, size_t n)
{
	if (siglen != 64)
		return 0;
	ECDSA_SIG *s = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, 32, NULL), *ss = BN_bin2bn(sig + 32, 32, NULL);
	if (!s || !r || !ss || !ECDSA_SIG_set0(s, r, ss)) {
		ECDSA_SIG_free(s);
		BN_free(r);
		BN_free(ss);
		return 0;
	}
	unsigned char *der = NULL;
	int dl = i2d_ECDSA_SIG(s, &der);
	int ok = dl > 0 && evp_verify(pkey, der, (size_t)dl, msg, n);
	OPENSSL_free(der);
	ECDSA_SIG_free(s);
	return ok;
}

static int hs256_ok(const unsigned char *key, size_t keylen, const unsigned char *sig, long siglen,
		    const char *msg, size_t n)
{
	if (!key || siglen != crypto_auth_hmacsha256_BYTES)
		return 0;
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state st;
	crypto_auth_hmacsha256_init(&st, key, keylen);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, n);
	crypto_auth_hmacsha256_final(&st, mac);
	return sodium_memcmp(mac, sig, sizeof(mac)) == 0;
}

static int aud_has(json_t *aud, const char *want)
{
	if (json_is_string(aud))
		return strcmp(json_string_value(aud), want) == 0;
	size_t i;
	json_t *v;
	json_array_foreach(aud, i, v) {
		if (json_is_string(v) && strcmp(json_string_value(v), want) == 0)
			return 1;
	}
	return 0;
}

/*
 * NumericDate claims (RFC 7519: seconds since the epoch, integer or not) are
 * the sender's numbers: compared, never added to, so that no value (2^63-1,
 * -2^63, 1e300) can overflow. DATE_NAN: absent or not a number.
 */
#define DATE_NAN (-2)

static int date_cmp(json_t *v, int64_t bound)
{
	if (json_is_integer(v)) {
		json_int_t x = json_integer_value(v);
		return x < bound ? -1 : x > bound;
	}
	if (json_is_real(v)) {
		double x = json_real_value(v), b = (double)bound;
		if (!isfinite(x))
			return DATE_NAN;
		return x < b ? -1 : x > b;
	}
	return DATE_NAN;
}

static int64_t sat_add(int64_t a, int64_t b)
{
	if (b > 0 && a > INT64_MAX - b)
		return INT64_MAX;
	if (b < 0 && a < INT64_MIN - b)
		return INT64_MIN;
	return a + b;
}

int jwt_verify(const char *token, const struct jwt_verify_opts *o, json_t **claims, int *external, struct err *e)
{
	*claims = NULL;
	*external = 0;
	size_t tn = strlen(token);
	const char *d1 = memchr(token, '.', tn);
	const char *d2 = d1 ? memchr(d1 + 1, '.', tn - (size_t)(d1 + 1 - token)) : NULL;
	if (tn > JWT_MAX || !d1 || !d2 || memchr(d2 + 1, '.', tn - (size_t)(d2 + 1 - token)))
		return err_set(e, ERR_UNAUTHORIZED, "invalid or expired token");
	unsigned char *buf = xmalloc(JWT_MAX);
	unsigned char sig[512];
	json_t *hdr = NULL, *payload = NULL;
	int ok = 0;
	if (!buf)
		return err_set(e, ERR_INTERNAL, "out of memory");

	long hl = b64url_decode(token, (size_t)(d1 - token), buf, JWT_MAX);
	if (hl < 0 || !(hdr = json_loadb((const char *)buf, (size_t)hl, 0, NULL)))
		goto out;
	long sl = b64url_decode(d2 + 1, tn - (size_t)(d2 + 1 - token), sig, sizeof(sig));
	if (sl < 0)
		goto out;
	if (!json_is_object(hdr) || json_object_get(hdr, "crit"))
		goto out; /* no extension is understood here, so none may be critical */
	const char *alg = json_string_value(json_object_get(hdr, "alg"));
	const char *kid = json_string_value(json_object_get(hdr, "kid"));
	const char *signed_part = token;
	size_t signed_len = (size_t)(d2 - token);
	if (!alg)
		goto out;
	if (strcmp(alg, "HS256") == 0) {
		ok = hs256_ok(o->secret, o->secret_len, sig, sl, signed_part, signed_len) ||
		     hs256_ok(o->previous, o->previous_len, sig, sl, signed_part, signed_len);
	} else if (o->lookup) {
		const struct jwk *k = o->lookup(o->lookup_ctx, kid);
		if (!k)
			goto out;
		if (strcmp(alg, "EdDSA") == 0 && k->type == JWK_ED25519)
			ok = sl == crypto_sign_BYTES &&
			     crypto_sign_verify_detached(sig, (const unsigned char *)signed_part, signed_len,
							 k->ed25519) == 0;
		else if (strcmp(alg, "RS256") == 0 && k->type == JWK_RSA)
			ok = evp_verify(k->pkey, sig, (size_t)sl, signed_part, signed_len);
		else if (strcmp(alg, "ES256") == 0 && k->type == JWK_EC_P256)
			ok = es256_verify(k->pkey, sig, (size_t)sl, signed_part, signed_len);
		*external = ok;
	}
	if (!ok)
		goto out;
	ok = 0;
	long pl = b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), buf, JWT_MAX);
	if (pl < 0 || !(payload = json_loadb((const char *)buf, (size_t)pl, 0, NULL)) || !json_is_object(payload))
		goto out;
	json_t *exp = json_object_get(payload, "exp"), *nbf = json_object_get(payload, "nbf");
	json_t *iat = json_object_get(payload, "iat"), *sub = json_object_get(payload, "sub");
	int64_t earliest = sat_add(o->now, -(int64_t)o->leeway), latest = sat_add(o->now, o->leeway);
	if (date_cmp(exp, earliest) < 0)
		goto out; /* expired, or no expiry at all */
	if (nbf && (date_cmp(nbf, latest) == DATE_NAN || date_cmp(nbf, latest) > 0))
		goto out; /* not yet valid */
	if (iat && (date_cmp(iat, latest) == DATE_NAN || date_cmp(iat, latest) > 0))
		goto out; /* issued in the future */
	if (!json_is_string(sub) || json_string_length(sub) == 0 || json_string_length(sub) > 255)
		goto out;
	if (*external) {
		const char *iss = json_string_value(json_object_get(payload, "iss"));
		if (o->issuer && (!iss || strcmp(iss, o->issuer) != 0))
			goto out;
		if (o->audience && !aud_has(json_object_get(payload, "aud"), o->audience))
			goto out;
	} else {
		const char *iss = json_string_value(json_object_get(payload, "iss"));
		if (!iss || strcmp(iss, "bookd") != 0)
			goto out;
	}
	ok = 1;
out:
	xfree(buf);
	json_decref(hdr);
	if (!ok) {
		json_decref(payload);
		*external = 0;
		return err_set(e, ERR_UNAUTHORIZED, "invalid or expired token");
	}
	*claims = payload;
	return 0;
}

int jwt_sign_hs256(const unsigned char *key, size_t keylen, json_t *claims, char **out, struct err *e)
{
	static const char hdr[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	char *payload = json_dumps(claims, JSON_COMPACT);
	if (!payload)
		return err_set(e, ERR_INTERNAL, "out of memory");
	size_t pn = strlen(payload);
	size_t hl = b64url_len(sizeof(hdr) - 1), pl = b64url_len(pn);
	size_t cap = hl + pl + b64url_len(crypto_auth_hmacsha256_BYTES) + 2;
	char *t = xmalloc(cap);
	if (!t) {
		free(payload);
		return err_set(e, ERR_INTERNAL, "out of memory");
	}
	b64url_encode((const unsigned char *)hdr, sizeof(hdr) - 1, t);
	size_t at = strlen(t);
	t[at++] = '.';
	b64url_encode((const unsigned char *)payload, pn, t + at);
	free(payload);
	at += strlen(t + at);
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state st;
	crypto_auth_hmacsha256_init(&st, key, keylen);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)t, at);
	crypto_auth_hmacsha256_final(&st, mac);
	t[at++] = '.';
	b64url_encode(mac, sizeof(mac), t + at);
	*out = t;
	return 0;
}
