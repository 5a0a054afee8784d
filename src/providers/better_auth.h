/*
 * Better-Auth session tokens, verified by the Better-Auth server that issued
 * them: `GET {url}/api/auth/get-session` with the token as that server reads
 * it — the session cookie (`better-auth.session_token`, or with the
 * `__Secure-` prefix; its value is `token.signature`, URL-encoded) and, for a
 * token given as `Authorization: Bearer`, that header too (Better-Auth's
 * bearer plugin). The answer is `{"session":{…,"expiresAt"},"user":{"id",
 * "email","name",…}}` or `null`.
 *
 * Answers are cached for a short time, keyed by SHA-256 of the token (never
 * the token itself): a session for `cache_seconds` (or until it expires, if
 * sooner), an unknown or expired token for min(cache_seconds, 10) s. The
 * cache has a fixed number of entries (4-way sets; the one closest to expiry
 * goes). A server that cannot be reached, times out, answers 5xx or something
 * that is not its answer is ERR_UNAVAILABLE and is not cached: the caller
 * fails closed. Each call is bounded by `timeout_ms` and one attempt, and the
 * circuit breaker of the provider HTTP client stops calling a server that
 * keeps failing.
 */
#ifndef BOOKD_BETTER_AUTH_H
#define BOOKD_BETTER_AUTH_H

#include <stdint.h>

#include "../core/err.h"
#include "../core/stop.h"

#define BETTER_AUTH_TOKEN_MAX 1024
#define BETTER_AUTH_ID_MAX 128

struct better_auth_config {
	const char *url;   /* the server's base URL (its /api/auth lives below) */
	int cache_seconds; /* > 0 */
	long timeout_ms;   /* one call; 0 = 2500 */
	int breaker_failures, breaker_seconds;
};

/* The user behind a session. */
struct better_auth_user {
	char id[BETTER_AUTH_ID_MAX + 1];
	char email[321];
	char name[257];
};

enum better_auth_form { BETTER_AUTH_BEARER, BETTER_AUTH_COOKIE };

struct better_auth;

int better_auth_new(struct better_auth **out, const struct better_auth_config *cfg, struct stop *stop,
		    struct err *e) WUR;
void better_auth_free(struct better_auth *b);

/* The session token of a Cookie header (as sent, still URL-encoded) into
 * out: 1 when there is one, 0 when there is none; a value too long for out
 * counts as one that cannot be valid (1, out ""). */
int better_auth_cookie_token(const char *cookie, char *out, size_t cap);

/* 1 when a Bearer token looks like a JWT (three base64url parts, a JSON
 * header) rather than a Better-Auth session token. */
int better_auth_is_jwt(const char *token);

/* 0 and the user; ERR_UNAUTHORIZED for a token the server does not know, an
 * expired session, or a token that cannot be one; ERR_UNAVAILABLE when the
 * server could not say. */
int better_auth_verify(struct better_auth *b, const char *token, enum better_auth_form form,
		       struct better_auth_user *out, struct err *e) WUR;

#endif
