/* libFuzzer entry point for what authentication reads from strangers: JWKS
 * documents, JWTs (header, claims and their numbers, signatures) and email
 * addresses. The input is "<JWKS>\n<token>"; the token is verified with the
 * JWKS's keys and bookd's own HS256 secret at several clocks, the extreme
 * ones included, and the whole input is also read as an email address. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "services/jwt.h"
#include "services/users.h"

static const struct jwk *lookup(void *ctx, const char *kid)
{
	const struct jwks *k = ctx;
	for (int i = 0; i < k->n; i++)
		if (!kid || strcmp(k->keys[i].kid, kid) == 0)
			return &k->keys[i];
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 16)
		return 0;
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	char *nl = memchr(s, '\n', size);
	size_t jn = nl ? (size_t)(nl - s) : size;
	const char *token = nl ? nl + 1 : s;

	struct jwks keys;
	struct err e = { 0 };
	if (jwks_parse(s, jn, &keys, &e))
		keys.n = 0;
	static const int64_t clocks[] = { 0, 1700000000, INT64_MAX, INT64_MIN, -1 };
	static const unsigned char secret[] = "fuzz-secret-0123456789-0123456789";
	for (size_t i = 0; i < sizeof(clocks) / sizeof(clocks[0]); i++) {
		struct jwt_verify_opts o = {
			.secret = secret,
			.secret_len = sizeof(secret) - 1,
			.lookup = keys.n ? lookup : NULL,
			.lookup_ctx = &keys,
			.issuer = i & 1 ? "https://issuer.example" : NULL,
			.audience = i & 1 ? "bookd" : NULL,
			.now = clocks[i],
			.leeway = 30,
		};
		json_t *claims = NULL;
		int external = 0;
		struct err ve = { 0 };
		if (jwt_verify(token, &o, &claims, &external, &ve) == 0) {
			if (!json_is_object(claims) || !json_is_string(json_object_get(claims, "sub")))
				abort();
			json_decref(claims);
		} else if (claims || external || ve.code != ERR_UNAUTHORIZED) {
			abort();
		}
	}
	jwks_clear(&keys);

	/* Email addresses: what is accepted is stable and fits. */
	char email[300], again[300], key[300];
	struct err ee = { 0 };
	if (size < sizeof(email)) {
		memcpy(email, s, size + 1);
		if (users_normalize_email(email, sizeof(email), &ee) == 0) {
			memcpy(again, email, sizeof(again));
			struct err e2 = { 0 };
			if (users_normalize_email(again, sizeof(again), &e2) || strcmp(again, email))
				abort(); /* the shown form is a fixed point */
			if (users_email_lookup_form(email, key, sizeof(key), &e2))
				abort();
		}
	}
	char lenient[1200];
	users_email_key(s, lenient, sizeof(lenient));
	free(s);
	return 0;
}
