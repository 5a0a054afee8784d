#include "better_auth.h"

#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../core/log.h"
#include "../core/mem.h"
#include "../core/timeutil.h"
#include "http_client.h"

#define CACHE_SETS 256
#define CACHE_WAYS 4
#define NEGATIVE_MAX_S 10
#define ANSWER_MAX (64 * 1024)
#define COOKIE_NAME "better-auth.session_token"
#define SECURE_PREFIX "__Secure-"

struct entry {
	unsigned char key[crypto_hash_sha256_BYTES];
	int64_t until_ms; /* 0: empty */
	int ok;		  /* a session (user valid), or a token known to be bad */
	struct better_auth_user user;
};

struct better_auth {
	char *url; /* …/api/auth/get-session */
	int cache_seconds;
	long timeout_ms;
	struct phttp *http;
	pthread_mutex_t lock; /* the cache; never held across the network */
	struct entry cache[CACHE_SETS][CACHE_WAYS];
};

int better_auth_new(struct better_auth **out, const struct better_auth_config *cfg, struct stop *stop,
		    struct err *e)
{
	*out = NULL;
	struct better_auth *b = xcalloc(1, sizeof(*b));
	if (!b)
		return err_set(e, ERR_INTERNAL, "out of memory");
	size_t n = strlen(cfg->url);
	while (n && cfg->url[n - 1] == '/')
		n--;
	b->url = xmalloc(n + sizeof("/api/auth/get-session"));
	if (!b->url) {
		xfree(b);
		return err_set(e, ERR_INTERNAL, "out of memory");
	}
	memcpy(b->url, cfg->url, n);
	memcpy(b->url + n, "/api/auth/get-session", sizeof("/api/auth/get-session"));
	b->cache_seconds = cfg->cache_seconds > 0 ? cfg->cache_seconds : 60;
	b->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 2500;
	struct phttp_config hc = {
		.name = "Better-Auth",
		.tries = 1, /* a reader waits for this: no retries */
		.breaker_failures = cfg->breaker_failures,
		.breaker_seconds = cfg->breaker_seconds,
		.max_response = ANSWER_MAX,
		.connect_timeout_ms = b->timeout_ms,
	};
	int rc = phttp_new(&b->http, &hc, stop, e);
	if (rc) {
		xfree(b->url);
		xfree(b);
		return rc;
	}
	pthread_mutex_init(&b->lock, NULL);
	*out = b;
	return 0;
}

void better_auth_free(struct better_auth *b)
{
	if (!b)
		return;
	phttp_free(b->http);
	pthread_mutex_destroy(&b->lock);
	sodium_memzero(b->cache, sizeof(b->cache));
	xfree(b->url);
	xfree(b);
}

/* ---- tokens -------------------------------------------------------------------- */

/* What a token may be made of: no separator a header or cookie would split
 * on, no space or control character. */
static int token_sane(const char *t)
{
	size_t n = 0;
	for (; t[n]; n++) {
		unsigned char c = (unsigned char)t[n];
		if (n >= BETTER_AUTH_TOKEN_MAX || c <= ' ' || c >= 127 || c == ';' || c == ',' || c == '"' ||
		    c == '\\')
			return 0;
	}
	return n > 0;
}

int better_auth_cookie_token(const char *cookie, char *out, size_t cap)
{
	out[0] = '\0';
	if (!cookie)
		return 0;
	int found = 0;
	for (const char *p = cookie; *p;) {
		while (*p == ' ' || *p == ';')
			p++;
		const char *name = p;
		while (*p && *p != '=' && *p != ';')
			p++;
		size_t nn = (size_t)(p - name);
		while (nn && name[nn - 1] == ' ')
			nn--;
		if (*p != '=')
			continue;
		const char *v = ++p;
		while (*v == ' ')
			v++;
		while (*p && *p != ';')
			p++;
		size_t vn = (size_t)(p - v);
		while (vn && v[vn - 1] == ' ')
			vn--;
		if (vn >= 2 && v[0] == '"' && v[vn - 1] == '"') {
			v++;
			vn -= 2;
		}
		int plain = nn == sizeof(COOKIE_NAME) - 1 && memcmp(name, COOKIE_NAME, nn) == 0;
		int secure = nn == sizeof(SECURE_PREFIX COOKIE_NAME) - 1 &&
			     memcmp(name, SECURE_PREFIX COOKIE_NAME, nn) == 0;
		if (!plain && !secure)
			continue;
		/* The __Secure- cookie wins: only a secure origin can set it. */
		if (found && !secure)
			continue;
		found = 1;
		if (vn < cap) {
			memcpy(out, v, vn);
			out[vn] = '\0';
		} else {
			out[0] = '\0';
		}
	}
	return found;
}

int better_auth_is_jwt(const char *t)
{
	/* base64url of '{"' starts every JWT's header */
	if (strncmp(t, "eyJ", 3) != 0)
		return 0;
	int dots = 0;
	for (; *t; t++) {
		char c = *t;
		if (c == '.')
			dots++;
		else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
			   c == '_' || c == '='))
			return 0;
	}
	return dots == 2;
}

/* A Bearer token as a cookie value: URL-encoded, as Better-Auth writes its
 * cookies (a token already encoded is left as it is). */
static int cookie_value(const char *t, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	int encoded = strchr(t, '%') != NULL;
	size_t o = 0;
	for (; *t; t++) {
		unsigned char c = (unsigned char)*t;
		int plain = encoded || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			    c == '-' || c == '_' || c == '.' || c == '~';
		if (o + (plain ? 1 : 3) >= cap)
			return -1;
		if (plain) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
	return 0;
}

/* ---- the cache ----------------------------------------------------------------- */

static void cache_key(const char *token, enum better_auth_form form, unsigned char key[crypto_hash_sha256_BYTES])
{
	crypto_hash_sha256_state st;
	unsigned char f = (unsigned char)form;
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, &f, 1);
	crypto_hash_sha256_update(&st, (const unsigned char *)token, strlen(token));
	crypto_hash_sha256_final(&st, key);
}

static struct entry *cache_set(struct better_auth *b, const unsigned char *key)
{
	unsigned i = ((unsigned)key[0] | (unsigned)key[1] << 8) % CACHE_SETS;
	return b->cache[i];
}

/* 1 with a cached answer (*ok, *user), 0 when there is none. */
static int cache_get(struct better_auth *b, const unsigned char *key, int *ok, struct better_auth_user *user)
{
	int64_t now = time_now_ms();
	int hit = 0;
	pthread_mutex_lock(&b->lock);
	struct entry *set = cache_set(b, key);
	for (int i = 0; i < CACHE_WAYS; i++) {
		struct entry *en = &set[i];
		if (en->until_ms > now && memcmp(en->key, key, sizeof(en->key)) == 0) {
			*ok = en->ok;
			if (en->ok)
				*user = en->user;
			hit = 1;
			break;
		}
	}
	pthread_mutex_unlock(&b->lock);
	return hit;
}

static void cache_put(struct better_auth *b, const unsigned char *key, int ok, const struct better_auth_user *user,
		      int64_t until_ms)
{
	pthread_mutex_lock(&b->lock);
	struct entry *set = cache_set(b, key), *victim = &set[0];
	for (int i = 0; i < CACHE_WAYS; i++) {
		if (memcmp(set[i].key, key, sizeof(set[i].key)) == 0) {
			victim = &set[i];
			break;
		}
		if (set[i].until_ms < victim->until_ms)
			victim = &set[i];
	}
	memcpy(victim->key, key, sizeof(victim->key));
	victim->until_ms = until_ms;
	victim->ok = ok;
	if (ok)
		victim->user = *user;
	else
		memset(&victim->user, 0, sizeof(victim->user));
	pthread_mutex_unlock(&b->lock);
}

/* ---- the answer ------------------------------------------------------------------ */

/* "2026-01-02T03:04:05.678Z" (or with an offset) or milliseconds since the
 * epoch; -1 when it is neither. */
static int64_t parse_time(json_t *v)
{
	if (json_is_integer(v))
		return (int64_t)json_integer_value(v);
	if (json_is_real(v))
		return (int64_t)json_real_value(v);
	const char *s = json_string_value(v);
	if (!s)
		return -1;
	struct tm tm = { 0 };
	int ms = 0, used = 0;
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
		   &tm.tm_sec, &used) != 6)
		return -1;
	const char *p = s + used;
	if (*p == '.') {
		int digits = 0;
		for (p++; *p >= '0' && *p <= '9'; p++)
			if (digits++ < 3)
				ms = ms * 10 + (*p - '0');
		for (; digits > 0 && digits < 3; digits++)
			ms *= 10;
	}
	long offset = 0;
	if ((*p == '+' || *p == '-') && strlen(p) >= 6) {
		int oh = 0, om = 0;
		if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2)
			return -1;
		offset = (oh * 60 + om) * 60L * (*p == '-' ? -1 : 1);
	} else if (*p != 'Z' && *p != '\0') {
		return -1;
	}
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return -1;
	return ((int64_t)t - offset) * 1000 + ms;
}

static void copy_str(char *out, size_t cap, json_t *v)
{
	const char *s = json_string_value(v);
	snprintf(out, cap, "%s", s ? s : "");
}

/* The server's answer: 1 a session (user, *expires_ms: -1 when it gave
 * none), 0 none (null, or an expired session), -1 not its answer. */
static int parse_answer(const char *body, size_t n, struct better_auth_user *user, int64_t *expires_ms)
{
	json_t *o = json_loadb(body, n, JSON_DECODE_ANY, NULL);
	int rc = -1;
	if (!o)
		return -1;
	if (json_is_null(o)) {
		rc = 0;
		goto out;
	}
	json_t *session = json_object_get(o, "session"), *u = json_object_get(o, "user");
	if (!json_is_object(o) || (json_is_null(session) && json_is_null(u))) {
		rc = json_is_object(o) ? 0 : -1;
		goto out;
	}
	if (!json_is_object(session) || !json_is_object(u))
		goto out;
	const char *id = json_string_value(json_object_get(u, "id"));
	if (!id || !*id || strlen(id) > BETTER_AUTH_ID_MAX || !token_sane(id))
		goto out;
	memset(user, 0, sizeof(*user));
	snprintf(user->id, sizeof(user->id), "%s", id);
	copy_str(user->email, sizeof(user->email), json_object_get(u, "email"));
	copy_str(user->name, sizeof(user->name), json_object_get(u, "name"));
	json_t *exp = json_object_get(session, "expiresAt");
	*expires_ms = exp ? parse_time(exp) : -1;
	if (exp && *expires_ms < 0)
		goto out;
	rc = *expires_ms >= 0 && *expires_ms <= time_now_ms() ? 0 : 1;
out:
	json_decref(o);
	return rc;
}

static int check_answer(void *ctx, const char *body, size_t n, struct err *e)
{
	struct better_auth_user scratch;
	int64_t exp;
	(void)ctx;
	if (parse_answer(body, n, &scratch, &exp) < 0) {
		err_set(e, ERR_UNAVAILABLE, "Better-Auth sent something that is not a get-session answer");
		return PHTTP_BAD_ANSWER;
	}
	return PHTTP_ACCEPT;
}

int better_auth_verify(struct better_auth *b, const char *token, enum better_auth_form form,
		       struct better_auth_user *out, struct err *e)
{
	if (!token || !token_sane(token))
		return err_set(e, ERR_UNAUTHORIZED, "invalid or expired session");
	unsigned char key[crypto_hash_sha256_BYTES];
	cache_key(token, form, key);
	int ok;
	if (cache_get(b, key, &ok, out))
		return ok ? 0 : err_set(e, ERR_UNAUTHORIZED, "invalid or expired session");

	/* The cookie under both names: the server reads the one its own
	 * configuration (secure cookies or not) names. */
	char value[BETTER_AUTH_TOKEN_MAX * 3 + 1];
	char cookie[sizeof(value) * 2 + 96], bearer[BETTER_AUTH_TOKEN_MAX + 32];
	const char *headers[3] = { "Accept: application/json" };
	int nh = 1;
	if (form == BETTER_AUTH_BEARER) {
		snprintf(bearer, sizeof(bearer), "Authorization: Bearer %s", token);
		headers[nh++] = bearer;
	}
	/* A bare Bearer token has no signature: only the bearer plugin (which
	 * signs it) can take it; a signed one also goes as the cookie. */
	if ((form == BETTER_AUTH_COOKIE || strchr(token, '.')) && cookie_value(token, value, sizeof(value)) == 0) {
		snprintf(cookie, sizeof(cookie), "Cookie: " COOKIE_NAME "=%s; " SECURE_PREFIX COOKIE_NAME "=%s",
			 value, value);
		headers[nh++] = cookie;
	}
	struct phttp_request hr = {
		.url = b->url,
		.headers = headers,
		.nheaders = nh,
		.deadline_ms = time_now_ms() + b->timeout_ms,
		.attempt_timeout_ms = b->timeout_ms,
		.check = check_answer,
	};
	struct phttp_response resp;
	struct err he = { 0 };
	int rc = phttp_call(b->http, &hr, &resp, &he);
	int64_t now = time_now_ms();
	int64_t negative_until = now + 1000LL * (b->cache_seconds < NEGATIVE_MAX_S ? b->cache_seconds : NEGATIVE_MAX_S);
	if (rc) {
		sodium_memzero(bearer, sizeof(bearer));
		sodium_memzero(cookie, sizeof(cookie));
		if (resp.outcome == PHTTP_LOCAL && (resp.status == 401 || resp.status == 403)) {
			/* the server's word that the token is not a session */
			cache_put(b, key, 0, NULL, negative_until);
			return err_set(e, ERR_UNAUTHORIZED, "invalid or expired session");
		}
		log_warn("Better-Auth session check failed: %s", he.msg);
		return err_set(e, ERR_UNAVAILABLE, "the authentication server cannot be reached; try again shortly");
	}
	sodium_memzero(bearer, sizeof(bearer));
	sodium_memzero(cookie, sizeof(cookie));
	int64_t expires = -1;
	int found = parse_answer(resp.body, resp.n, out, &expires);
	phttp_response_free(&resp);
	if (found <= 0) {
		cache_put(b, key, 0, NULL, negative_until);
		return err_set(e, ERR_UNAUTHORIZED, "invalid or expired session");
	}
	int64_t until = now + 1000LL * b->cache_seconds;
	if (expires >= 0 && expires < until)
		until = expires;
	cache_put(b, key, 1, out, until);
	return 0;
}
