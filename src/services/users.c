#include "users.h"

#include <ctype.h>
#include <stdatomic.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/log.h"
#include "../core/mem.h"
#include "../core/timeutil.h"
#include "../providers/jwks_source.h"
#include "../store/changes.h"
#include "jwt.h"
#include "ratelimit.h"

/* argon2id at OWASP's recommended minimum (m = 19 MiB, t = 2, p = 1). */
#define PW_OPSLIMIT 2
#define PW_MEMLIMIT (19u * 1024 * 1024)
#define PW_MIN 8
#define PW_MAX 1024
/* The master key's user: found by this reserved subject, never by email, so
 * nobody can become it by registering or presenting its address first. */
#define LOCAL_ADMIN_SUB "bookd:master-key"
#define LOCAL_ADMIN_EMAIL "master-key@bookd.invalid"

struct users {
	db *db;
	struct users_config cfg;
	char dummy_hash[crypto_pwhash_STRBYTES]; /* verified against for unknown emails */
	struct ratelimit *per_ip, *per_account;
	struct jwks_source *jwks;
	char local_admin[UUID_STR_LEN]; /* the master key's user, made on first need */
	atomic_int local_admin_state;	 /* 0 unknown, 1 being written, 2 written (once) */
};

/* ---- small helpers --------------------------------------------------------- */

static const char *role_names[] = { "none", "reader", "editor", "admin" };

const char *role_name(enum role r)
{
	return r >= ROLE_NONE && r <= ROLE_ADMIN ? role_names[r] : "none";
}

enum role role_parse(const char *s)
{
	for (int i = ROLE_READER; i <= ROLE_ADMIN; i++)
		if (s && strcmp(s, role_names[i]) == 0)
			return (enum role)i;
	return ROLE_NONE;
}

static unsigned role_scopes(enum role r)
{
	return r == ROLE_ADMIN ? SCOPE_READ | SCOPE_WRITE | SCOPE_ADMIN
	       : r == ROLE_EDITOR ? SCOPE_READ | SCOPE_WRITE
	       : r == ROLE_READER ? SCOPE_READ
				  : 0;
}

unsigned scopes_parse_list(const char *const *names, int n)
{
	unsigned m = 0;
	for (int i = 0; i < n; i++) {
		if (!strcmp(names[i], "read"))
			m |= SCOPE_READ;
		else if (!strcmp(names[i], "write"))
			m |= SCOPE_WRITE;
		else if (!strcmp(names[i], "admin"))
			m |= SCOPE_ADMIN;
		else
			return 0;
	}
	return m;
}

void scopes_format(unsigned s, char *out, size_t cap)
{
	snprintf(out, cap, "%s%s%s%s%s", s & SCOPE_READ ? "read" : "", (s & SCOPE_READ) && (s & ~1u) ? " " : "",
		 s & SCOPE_WRITE ? "write" : "", (s & SCOPE_WRITE) && (s & SCOPE_ADMIN) ? " " : "",
		 s & SCOPE_ADMIN ? "admin" : "");
}

static unsigned scopes_from_text(const char *t)
{
	unsigned m = 0;
	if (t && strstr(t, "read"))
		m |= SCOPE_READ;
	if (t && strstr(t, "write"))
		m |= SCOPE_WRITE;
	if (t && strstr(t, "admin"))
		m |= SCOPE_ADMIN;
	return m;
}

static void sha256_hex(const char *s, char out[65])
{
	unsigned char h[crypto_hash_sha256_BYTES];
	crypto_hash_sha256(h, (const unsigned char *)s, strlen(s));
	sodium_bin2hex(out, 65, h, sizeof(h));
}

static void audit(const char *event, const char *user_id, const char *ip, const char *detail)
{
	struct log_line l;
	if (log_begin(&l, LOG_INFO, "audit")) {
		log_str(&l, "event", event);
		log_str(&l, "user_id", user_id);
		if (ip)
			log_str(&l, "ip", ip);
		if (detail)
			log_str(&l, "detail", detail);
		log_end(&l);
	}
}

int users_normalize_email(char *email, size_t cap, struct err *e)
{
	char *s = email;
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	memmove(email, s, n);
	email[n] = '\0';
	char *at = strrchr(email, '@');
	if (n < 3 || n > 254 || n >= cap || !at || at == email || !at[1] || strchr(email, '@') != at ||
	    !strchr(at + 1, '.') || strpbrk(email, " \t\r\n<>()[],;:\"\\"))
		return err_set(e, ERR_INVALID, "not a valid email address");
	for (char *p = at + 1; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	size_t dl = strlen(at + 1);
	if ((dl >= 8 && !strcmp(at + 1 + dl - 8, ".invalid")) || (dl >= 6 && !strcmp(at + 1 + dl - 6, ".local")))
		return err_set(e, ERR_INVALID, "not a valid email address (reserved domain)");
	return 0;
}

/* ---- lifecycle ------------------------------------------------------------- */

int users_new(struct users **out, db *d, const struct users_config *cfg, struct err *e)
{
	struct users *u = xcalloc(1, sizeof(*u));
	if (!u)
		return err_set(e, ERR_INTERNAL, "out of memory");
	u->db = d;
	u->cfg = *cfg;
	u->per_ip = ratelimit_new(cfg->login_burst * 2, cfg->login_per_minute * 2, 4096);
	u->per_account = ratelimit_new(cfg->login_burst, cfg->login_per_minute, 4096);
	unsigned char junk[32];
	randombytes_buf(junk, sizeof(junk));
	if (!u->per_ip || !u->per_account ||
	    crypto_pwhash_str(u->dummy_hash, (const char *)junk, sizeof(junk), PW_OPSLIMIT, PW_MEMLIMIT)) {
		users_free(u);
		return err_set(e, ERR_INTERNAL, "out of memory");
	}
	if (cfg->jwks_url && *cfg->jwks_url && !(u->jwks = jwks_source_new(cfg->jwks_url, 5, 10))) {
		users_free(u);
		return err_set(e, ERR_INTERNAL, "out of memory");
	}
	*out = u;
	return 0;
}

void users_free(struct users *u)
{
	if (!u)
		return;
	ratelimit_free(u->per_ip);
	ratelimit_free(u->per_account);
	jwks_source_free(u->jwks);
	xfree(u);
}

/* ---- tokens ---------------------------------------------------------------- */

void tokens_free(struct tokens *t)
{
	xfree(t->access);
	t->access = NULL;
}

static int issue_access(struct users *u, const struct user *usr, struct tokens *t, struct err *e)
{
	char jti[UUID_STR_LEN], scope[32];
	if (uuid_v7(jti))
		return err_set(e, ERR_INTERNAL, "no randomness");
	int64_t now = time_now_ms() / 1000;
	enum role r = role_parse(usr->role);
	scopes_format(role_scopes(r), scope, sizeof(scope));
	json_t *claims = json_pack("{s:s, s:s, s:I, s:I, s:s, s:s, s:s}", "iss", "bookd", "sub", usr->id, "iat",
				   (json_int_t)now, "exp", (json_int_t)(now + u->cfg.access_ttl), "jti", jti,
				   "scope", scope, "role", role_name(r));
	if (!claims)
		return err_set(e, ERR_INTERNAL, "out of memory");
	int rc = jwt_sign_hs256(u->cfg.secret, u->cfg.secret_len, claims, &t->access, e);
	json_decref(claims);
	t->expires_in = u->cfg.access_ttl;
	return rc;
}

/* A new refresh token of `family` (NULL: a new family). */
static int issue_refresh(struct users *u, db_conn *c, const char *user_id, const char *family, struct tokens *t,
			 struct err *e)
{
	unsigned char raw[32];
	randombytes_buf(raw, sizeof(raw));
	b64url_encode(raw, sizeof(raw), t->refresh);
	struct refresh_token rt = { 0 };
	if (uuid_v7(rt.id) || (!family && uuid_v7(rt.family_id)))
		return err_set(e, ERR_INTERNAL, "no randomness");
	if (family)
		snprintf(rt.family_id, sizeof(rt.family_id), "%s", family);
	snprintf(rt.user_id, sizeof(rt.user_id), "%s", user_id);
	rt.created_at = time_now_ms();
	rt.expires_at = rt.created_at + (int64_t)u->cfg.refresh_ttl * 1000;
	char hash[65];
	sha256_hex(t->refresh, hash);
	return store_refresh_insert(c, &rt, hash, e);
}

static int issue_both(struct users *u, db_conn *c, const struct user *usr, const char *family, struct tokens *t,
		      struct err *e)
{
	int rc = issue_refresh(u, c, usr->id, family, t, e);
	return rc ? rc : issue_access(u, usr, t, e);
}

/* ---- register, login, refresh, logout -------------------------------------- */

static int check_password(const char *pw, struct err *e)
{
	size_t n = strlen(pw);
	if (n < PW_MIN || n > PW_MAX)
		err_field(e, "password", "must be %d to %d bytes long", PW_MIN, PW_MAX);
	return e->code ? e->code : 0;
}

static int create_user(struct users *u, struct arena *a, const char *email, const char *password,
		       const char *display_name, enum role role, const char *sub, struct user *out, struct err *e)
{
	memset(out, 0, sizeof(*out));
	char hash[crypto_pwhash_STRBYTES];
	if (password && crypto_pwhash_str(hash, password, strlen(password), PW_OPSLIMIT, PW_MEMLIMIT))
		return err_set(e, ERR_INTERNAL, "out of memory while hashing");
	if (uuid_v7(out->id))
		return err_set(e, ERR_INTERNAL, "no randomness");
	out->email = arena_strdup(a, email);
	out->password_hash = password ? arena_strdup(a, hash) : NULL;
	out->display_name = display_name ? arena_strdup(a, display_name) : NULL;
	out->role = (char *)role_name(role);
	out->external_sub = sub ? arena_strdup(a, sub) : NULL;
	out->created_at = out->updated_at = time_now_ms();
	db_conn *c;
	int rc = db_acquire(u->db, &c, e);
	if (rc)
		return rc;
	rc = store_user_insert(c, out, e);
	db_release(c);
	if (rc == ERR_CONFLICT)
		err_set(e, ERR_CONFLICT, "an account with this email already exists");
	return rc;
}

int users_register(struct users *u, struct arena *a, const char *email, const char *password,
		   const char *display_name, const char *ip, struct user *out, struct tokens *t, struct err *e)
{
	int rc = check_password(password, e);
	if (!rc)
		rc = create_user(u, a, email, password, display_name, ROLE_READER, NULL, out, e);
	if (rc)
		return rc;
	audit("register", out->id, ip, NULL);
	db_conn *c;
	if ((rc = db_acquire(u->db, &c, e)) != 0)
		return rc;
	rc = issue_both(u, c, out, NULL, t, e);
	db_release(c);
	return rc;
}

int users_login_allowed(struct users *u, const char *ip, const char *email, int *retry_after, struct err *e)
{
	int64_t now = time_now_ms();
	char key[200];
	snprintf(key, sizeof(key), "acct:%s", email);
	/* Every attempt takes a token from the IP and from the account, before
	 * the (slow) password check, so concurrent guesses cannot overrun the
	 * limit; a successful login gives the account's token back. */
	if (ratelimit_hit(u->per_ip, ip, 1, now, retry_after) ||
	    ratelimit_hit(u->per_account, key, 1, now, retry_after)) {
		audit("login_rate_limited", NULL, ip, NULL);
		return err_set(e, ERR_RATE_LIMITED, "too many login attempts; try again later");
	}
	return 0;
}

int users_login(struct users *u, struct arena *a, const char *email, const char *password, const char *ip,
		struct user *out, struct tokens *t, struct err *e)
{
	db_conn *c;
	int rc = db_acquire(u->db, &c, e);
	if (rc)
		return rc;
	rc = store_user_get(c, a, "email", email, out, e);
	if (rc && rc != ERR_NOT_FOUND)
		goto out;
	/* Unknown email or no password: verify against a dummy hash anyway, so
	 * both failures take the same time and say the same. */
	int found = rc == 0 && out->password_hash;
	const char *hash = found ? out->password_hash : u->dummy_hash;
	int ok = crypto_pwhash_str_verify(hash, password, strlen(password)) == 0 && found;
	char key[200];
	snprintf(key, sizeof(key), "acct:%s", email);
	if (!ok) {
		audit("login_failed", rc == 0 ? out->id : NULL, ip, NULL);
		rc = err_set(e, ERR_UNAUTHORIZED, "invalid email or password");
		goto out;
	}
	ratelimit_refund(u->per_account, key);
	audit("login", out->id, ip, NULL);
	rc = issue_both(u, c, out, NULL, t, e);
out:
	db_release(c);
	return rc;
}

int users_refresh(struct users *u, struct arena *a, const char *refresh, const char *ip, struct tokens *t,
		  struct err *e)
{
	char hash[65];
	sha256_hex(refresh, hash);
	struct refresh_token rt;
	struct user usr;
	db_conn *c;
	int rc = db_acquire(u->db, &c, e);
	if (rc)
		return rc;
	if ((rc = db_begin(c, e)) != 0)
		goto out;
	rc = store_refresh_by_hash(c, hash, &rt, e);
	int64_t now = time_now_ms(), changed = 0;
	if (rc == 0 && (rt.used_at || rt.revoked_at)) {
		/* Reuse of a spent token: whoever holds the family is suspect. */
		if (!rt.revoked_at || rt.used_at) {
			rc = store_refresh_revoke_family(c, rt.family_id, now, e);
			if (!rc && (rc = db_commit(c, e)) == 0)
				audit("refresh_reuse", rt.user_id, ip, "token family revoked");
		}
		rc = rc ? rc : ERR_UNAUTHORIZED;
	} else if (rc == 0 && rt.expires_at <= now) {
		rc = ERR_UNAUTHORIZED;
	} else if (rc == 0 && (rc = store_refresh_use(c, rt.id, now, &changed, e)) == 0 && !changed) {
		rc = ERR_UNAUTHORIZED; /* a concurrent refresh won */
	}
	if (rc == 0 && (rc = store_user_get(c, a, "id", rt.user_id, &usr, e)) == 0 &&
	    (rc = issue_both(u, c, &usr, rt.family_id, t, e)) == 0)
		rc = db_commit(c, e);
	if (rc)
		db_rollback(c);
out:
	db_release(c);
	if (rc == ERR_NOT_FOUND || rc == ERR_UNAUTHORIZED)
		rc = err_set(e, ERR_UNAUTHORIZED, "invalid or expired refresh token");
	return rc;
}

int users_logout(struct users *u, const char *refresh, struct err *e)
{
	char hash[65];
	sha256_hex(refresh, hash);
	struct refresh_token rt;
	db_conn *c;
	int rc = db_acquire(u->db, &c, e);
	if (rc)
		return rc;
	rc = store_refresh_by_hash(c, hash, &rt, e);
	if (rc == 0)
		rc = store_refresh_revoke_family(c, rt.family_id, time_now_ms(), e);
	db_release(c);
	if (rc == 0)
		audit("logout", rt.user_id, NULL, NULL);
	/* Logging out an unknown token is not an error worth telling apart. */
	return rc == ERR_NOT_FOUND ? 0 : rc;
}

/* ---- authentication -------------------------------------------------------- */

static int principal_from_user(struct principal *p, struct arena *a, const struct user *usr)
{
	struct user *copy = arena_alloc(a, sizeof(*copy));
	if (copy)
		*copy = *usr; /* its strings already live in the same arena */
	p->user = copy;
	p->kind = P_USER;
	snprintf(p->user_id, sizeof(p->user_id), "%s", usr->id);
	p->role = role_parse(usr->role);
	p->scopes = role_scopes(p->role);
	return 0;
}

/* An external provider's subject maps to a local user made on first sight. */
static int external_user(struct users *u, struct arena *a, db_conn *c, json_t *claims, struct user *out,
			 struct err *e)
{
	const char *sub = json_string_value(json_object_get(claims, "sub"));
	if (!strncmp(sub, "bookd:", 6))
		return err_set(e, ERR_UNAUTHORIZED, "invalid or expired token"); /* our namespace */
	int rc = store_user_get(c, a, "sub", sub, out, e);
	if (rc != ERR_NOT_FOUND)
		return rc;
	err_clear(e);
	char email[300];
	const char *claimed = json_string_value(json_object_get(claims, "email"));
	struct err ee = { 0 };
	snprintf(email, sizeof(email), "%s", claimed ? claimed : "");
	if (!claimed || users_normalize_email(email, sizeof(email), &ee)) {
		/* No usable address: a synthetic one that no one can register. */
		char h[65];
		sha256_hex(sub, h);
		snprintf(email, sizeof(email), "%.32s@external.invalid", h);
	}
	const char *name = json_string_value(json_object_get(claims, "name"));
	memset(out, 0, sizeof(*out));
	if (uuid_v7(out->id))
		return err_set(e, ERR_INTERNAL, "no randomness");
	out->email = arena_strdup(a, email);
	out->display_name = name ? arena_strdup(a, name) : NULL;
	out->role = (char *)role_name(ROLE_READER);
	out->external_sub = arena_strdup(a, sub);
	out->created_at = out->updated_at = time_now_ms();
	for (int attempt = 0;; attempt++) {
		rc = store_user_insert(c, out, e);
		if (rc != ERR_CONFLICT)
			break;
		/* Another request saw this subject first (its token's first use
		 * came in twice at once): theirs is the user. */
		err_clear(e);
		struct user mine = *out;
		if ((rc = store_user_get(c, a, "sub", sub, out, e)) != ERR_NOT_FOUND)
			return rc;
		err_clear(e);
		*out = mine;
		if (attempt == 1)
			return err_set(e, ERR_CONFLICT, "cannot create the user of this token");
		/* The email is a local user's: link by a synthetic address. */
		char h[65];
		sha256_hex(sub, h);
		out->email = arena_printf(a, "%.32s@external.invalid", h);
	}
	if (rc == 0)
		audit("external_user_created", out->id, NULL, NULL);
	return rc;
}

/*
 * Users and API keys behind authentication, cached where the database tells
 * of changes (changes.h): a user under "user:<id>", a key under "keys". A
 * request that hits both asks the database nothing.
 */
static char *jdup(struct arena *a, json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? arena_strdup(a, s) : NULL;
}

static int64_t jint(json_t *o, const char *k)
{
	return (int64_t)json_integer_value(json_object_get(o, k));
}

static json_t *cached_json(struct users *u, const char *key, uint64_t stamp)
{
	struct rcbuf *b = changes_get(db_changes(u->db), key, stamp);
	json_t *o = b ? json_loads(b->data, 0, NULL) : NULL;
	rcbuf_unref(b);
	return o;
}

static void cache_json(struct users *u, const char *key, uint64_t stamp, json_t *o)
{
	char *s = stamp && o ? json_dumps(o, JSON_COMPACT) : NULL;
	changes_put(db_changes(u->db), key, stamp, s);
	free(s);
	json_decref(o);
}

/* The user `id`, from the cache (without its password hash: authentication
 * never needs it) or the database. */
static int user_by_id(struct users *u, struct arena *a, const char *id, struct user *out, struct err *e)
{
	char key[UUID_STR_LEN + 8];
	snprintf(key, sizeof(key), "user/%s", id ? id : "");
	/* only ids of our own shape: a longer `sub` would be cut and could share a key */
	uint64_t stamp = id && uuid_valid(id, strlen(id)) ? changes_stamp2(db_changes(u->db), "user:", id) : 0;
	json_t *o = cached_json(u, key, stamp);
	if (o) {
		memset(out, 0, sizeof(*out));
		snprintf(out->id, sizeof(out->id), "%s", id);
		out->email = jdup(a, o, "email");
		out->display_name = jdup(a, o, "display_name");
		out->role = jdup(a, o, "role");
		out->external_sub = jdup(a, o, "external_sub");
		out->created_at = jint(o, "created_at");
		out->updated_at = jint(o, "updated_at");
		json_decref(o);
		if (out->email && out->role)
			return 0;
	}
	db_conn *c;
	int rc = db_acquire(u->db, &c, e);
	if (rc)
		return rc;
	rc = store_user_get(c, a, "id", id, out, e);
	db_release(c);
	if (rc == 0)
		cache_json(u, key, stamp,
			   json_pack("{s:s, s:s?, s:s?, s:s?, s:I, s:I}", "email", out->email,
				     "display_name", out->display_name, "role", out->role,
				     "external_sub", out->external_sub, "created_at", (json_int_t)out->created_at,
				     "updated_at", (json_int_t)out->updated_at));
	return rc;
}

static void key_cache(struct users *u, const char *hash, uint64_t stamp, const struct api_key *k)
{
	char key[80];
	snprintf(key, sizeof(key), "key/%s", hash);
	cache_json(u, key, stamp,
		   json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:I, s:I}", "id", k->id, "user_id", k->user_id,
			     "name", k->name, "prefix", k->prefix, "scopes", k->scopes, "book_ids", k->book_ids,
			     "created_at", (json_int_t)k->created_at, "last_used_at", (json_int_t)k->last_used_at));
}

/* The key whose hash is `hash`; *stamp receives what to store it under again. */
static int key_by_hash(struct users *u, struct arena *a, const char *hash, struct api_key *k, uint64_t *stamp,
		       struct err *e)
{
	char key[80];
	snprintf(key, sizeof(key), "key/%s", hash);
	*stamp = changes_stamp(db_changes(u->db), "keys");
	json_t *o = cached_json(u, key, *stamp);
	if (o) {
		memset(k, 0, sizeof(*k));
		const char *id = json_string_value(json_object_get(o, "id"));
		const char *uid = json_string_value(json_object_get(o, "user_id"));
		snprintf(k->id, sizeof(k->id), "%s", id ? id : "");
		snprintf(k->user_id, sizeof(k->user_id), "%s", uid ? uid : "");
		k->name = jdup(a, o, "name");
		k->prefix = jdup(a, o, "prefix");
		k->scopes = jdup(a, o, "scopes");
		k->book_ids = jdup(a, o, "book_ids");
		k->created_at = jint(o, "created_at");
		k->last_used_at = jint(o, "last_used_at");
		json_decref(o);
		if (id && uid && k->scopes)
			return 0;
	}
	db_conn *c;
	int rc = db_acquire(u->db, &c, e);
	if (rc)
		return rc;
	rc = store_apikey_by_hash(c, a, hash, k, e);
	db_release(c);
	if (rc == 0)
		key_cache(u, hash, *stamp, k);
	return rc;
}

static int auth_bearer(struct users *u, struct arena *a, const char *token, struct principal *p, struct err *e)
{
	struct jwt_verify_opts o = {
		.secret = u->cfg.secret,
		.secret_len = u->cfg.secret_len,
		.previous = u->cfg.previous,
		.previous_len = u->cfg.previous_len,
		.lookup = u->jwks ? jwks_source_lookup : NULL,
		.lookup_ctx = u->jwks,
		.issuer = u->cfg.issuer && *u->cfg.issuer ? u->cfg.issuer : NULL,
		.audience = u->cfg.audience && *u->cfg.audience ? u->cfg.audience : NULL,
		.now = time_now_ms() / 1000,
		.leeway = 30,
	};
	json_t *claims;
	int external;
	int rc = jwt_verify(token, &o, &claims, &external, e);
	if (rc)
		return rc;
	struct user usr;
	db_conn *c;
	if (!external) {
		rc = user_by_id(u, a, json_string_value(json_object_get(claims, "sub")), &usr, e);
	} else if ((rc = db_acquire(u->db, &c, e)) == 0) {
		rc = external_user(u, a, c, claims, &usr, e);
		db_release(c);
	}
	json_decref(claims);
	if (rc == ERR_NOT_FOUND) /* the account was deleted */
		return err_set(e, ERR_UNAUTHORIZED, "invalid or expired token");
	return rc ? rc : principal_from_user(p, a, &usr);
}

static int ct_equal(const char *a, const char *b)
{
	unsigned char ha[32], hb[32];
	crypto_generichash(ha, sizeof(ha), (const unsigned char *)a, strlen(a), NULL, 0);
	crypto_generichash(hb, sizeof(hb), (const unsigned char *)b, strlen(b), NULL, 0);
	return sodium_memcmp(ha, hb, sizeof(ha)) == 0;
}

static int auth_key(struct users *u, struct arena *a, const char *key, struct principal *p, struct err *e)
{
	if (u->cfg.master_key && *u->cfg.master_key && ct_equal(key, u->cfg.master_key)) {
		p->kind = P_MASTER;
		p->role = ROLE_ADMIN;
		p->scopes = SCOPE_READ | SCOPE_WRITE | SCOPE_ADMIN;
		return 0;
	}
	if (strncmp(key, "bk_", 3) != 0 || strlen(key) > 200)
		return err_set(e, ERR_UNAUTHORIZED, "invalid API key");
	char hash[65];
	sha256_hex(key, hash);
	struct api_key k;
	struct user usr;
	uint64_t stamp;
	int rc = key_by_hash(u, a, hash, &k, &stamp, e);
	if (rc == 0)
		rc = user_by_id(u, a, k.user_id, &usr, e);
	int64_t now = time_now_ms();
	if (rc == 0 && now - k.last_used_at > 60000) { /* at most one write a minute per key */
		db_conn *c;
		if (db_acquire(u->db, &c, e) == 0) {
			if (store_apikey_touch(c, k.id, now, e) == 0)
				k.last_used_at = now;
			db_release(c);
		}
		err_clear(e); /* bookkeeping only: never fail the request */
		key_cache(u, hash, stamp, &k);
	}
	if (rc == ERR_NOT_FOUND)
		return err_set(e, ERR_UNAUTHORIZED, "invalid API key");
	if (rc)
		return rc;
	principal_from_user(p, a, &usr);
	p->kind = P_KEY;
	p->scopes &= scopes_from_text(k.scopes); /* never more than the owner's role */
	snprintf(p->key_id, sizeof(p->key_id), "%s", k.id);
	json_t *books = k.book_ids ? json_loads(k.book_ids, 0, NULL) : NULL;
	size_t i;
	json_t *v;
	json_array_foreach(books, i, v) {
		if (p->nbooks < PRINCIPAL_MAX_BOOKS && json_is_string(v))
			snprintf(p->books[p->nbooks++], UUID_STR_LEN, "%s", json_string_value(v));
	}
	json_decref(books);
	return 0;
}

int users_authenticate(struct users *u, struct arena *a, const char *authorization, const char *api_key,
		       struct principal *p, struct err *e)
{
	memset(p, 0, sizeof(*p));
	if (api_key && *api_key)
		return auth_key(u, a, api_key, p, e);
	if (authorization && *authorization) {
		if (strncasecmp(authorization, "Bearer ", 7) != 0)
			return err_set(e, ERR_UNAUTHORIZED, "invalid or expired token");
		const char *t = authorization + 7;
		while (*t == ' ')
			t++;
		return auth_bearer(u, a, t, p, e);
	}
	return 0;
}

static int local_admin_lookup(struct users *u, struct arena *a, struct user *out, struct err *e);

static int local_admin(struct users *u, struct arena *a, struct user *out, struct err *e)
{
	int rc;
	if (atomic_load_explicit(&u->local_admin_state, memory_order_acquire) == 2) {
		rc = user_by_id(u, a, u->local_admin, out, e);
		if (rc != ERR_NOT_FOUND)
			return rc;
		err_clear(e);
	}
	rc = local_admin_lookup(u, a, out, e);
	int unknown = 0;
	if (rc == 0 && atomic_compare_exchange_strong(&u->local_admin_state, &unknown, 1)) {
		memcpy(u->local_admin, out->id, sizeof(u->local_admin));
		atomic_store_explicit(&u->local_admin_state, 2, memory_order_release);
	}
	return rc;
}

static int local_admin_lookup(struct users *u, struct arena *a, struct user *out, struct err *e)
{
	db_conn *c;
	int rc = db_acquire(u->db, &c, e);
	if (rc)
		return rc;
	rc = store_user_get(c, a, "sub", LOCAL_ADMIN_SUB, out, e);
	db_release(c);
	if (rc != ERR_NOT_FOUND)
		return rc;
	err_clear(e);
	rc = create_user(u, a, LOCAL_ADMIN_EMAIL, NULL, "Local administrator", ROLE_ADMIN, LOCAL_ADMIN_SUB, out, e);
	if (rc == ERR_CONFLICT) { /* another request made it first */
		err_clear(e);
		if ((rc = db_acquire(u->db, &c, e)) == 0) {
			rc = store_user_get(c, a, "sub", LOCAL_ADMIN_SUB, out, e);
			db_release(c);
		}
	}
	return rc;
}

int users_get(struct users *u, struct arena *a, const struct principal *p, struct user *out, struct err *e)
{
	if (p->kind == P_MASTER)
		return local_admin(u, a, out, e);
	if (p->kind == P_ANON)
		return err_set(e, ERR_UNAUTHORIZED, "authentication required");
	if (p->user) { /* read moments ago by users_authenticate */
		*out = *p->user;
		return 0;
	}
	db_conn *c;
	int rc = db_acquire(u->db, &c, e);
	if (rc)
		return rc;
	rc = store_user_get(c, a, "id", p->user_id, out, e);
	db_release(c);
	return rc;
}

/* ---- authorization --------------------------------------------------------- */

int users_require_user(const struct principal *p, struct err *e)
{
	return p->kind == P_ANON ? err_set(e, ERR_UNAUTHORIZED, "authentication required") : 0;
}

int users_require_admin(const struct principal *p, struct err *e)
{
	if (p->kind == P_ANON)
		return err_set(e, ERR_UNAUTHORIZED, "authentication required");
	return (p->scopes & SCOPE_ADMIN) ? 0 : err_set(e, ERR_FORBIDDEN, "administrators only");
}

int users_can_write_book(const struct principal *p, const char *book_id, struct err *e)
{
	if (p->kind == P_ANON)
		return err_set(e, ERR_UNAUTHORIZED, "authentication required");
	if (!(p->scopes & SCOPE_WRITE) || p->role < ROLE_EDITOR)
		return err_set(e, ERR_FORBIDDEN, "editors and administrators only");
	if (!p->nbooks)
		return 0;
	for (int i = 0; book_id && i < p->nbooks; i++)
		if (strcmp(p->books[i], book_id) == 0)
			return 0;
	return err_set(e, ERR_FORBIDDEN, "this API key is limited to other books");
}

/* ---- API keys -------------------------------------------------------------- */

static int key_create(struct users *u, const char *user_id, const char *name, unsigned scopes,
		      const char *const *book_ids, int nbooks, struct arena *a, struct api_key *out, char *key_out,
		      struct err *e)
{
	memset(out, 0, sizeof(*out));
	unsigned char raw[32], pre[4];
	randombytes_buf(raw, sizeof(raw));
	randombytes_buf(pre, sizeof(pre));
	char prefix[16], secret[64];
	sodium_bin2hex(prefix + 3, sizeof(prefix) - 3, pre, sizeof(pre));
	memcpy(prefix, "bk_", 3);
	b64url_encode(raw, sizeof(raw), secret);
	snprintf(key_out, 80, "%s_%s", prefix, secret);
	char hash[65], scope_text[32];
	sha256_hex(key_out, hash);
	scopes_format(scopes, scope_text, sizeof(scope_text));
	if (uuid_v7(out->id))
		return err_set(e, ERR_INTERNAL, "no randomness");
	snprintf(out->user_id, sizeof(out->user_id), "%s", user_id);
	out->name = arena_strdup(a, name);
	out->prefix = arena_strdup(a, prefix);
	out->scopes = arena_strdup(a, scope_text);
	if (nbooks) {
		json_t *arr = json_array();
		for (int i = 0; i < nbooks; i++)
			json_array_append_new(arr, json_string(book_ids[i]));
		char *s = json_dumps(arr, JSON_COMPACT);
		json_decref(arr);
		out->book_ids = s ? arena_strdup(a, s) : NULL;
		free(s);
	}
	out->created_at = time_now_ms();
	db_conn *c;
	int rc = db_acquire(u->db, &c, e);
	if (rc)
		return rc;
	rc = store_apikey_insert(c, out, hash, e);
	db_release(c);
	if (rc == 0)
		audit("key_created", user_id, NULL, out->prefix);
	return rc;
}

int users_key_create(struct users *u, struct arena *a, const struct principal *p, const char *name,
		     unsigned scopes, const char *const *book_ids, int nbooks, struct api_key *out, char *key_out,
		     struct err *e)
{
	int rc = users_require_user(p, e);
	if (rc)
		return rc;
	if (p->kind == P_KEY)
		return err_set(e, ERR_FORBIDDEN, "API keys cannot create API keys");
	if (scopes & ~role_scopes(p->role))
		return err_set(e, ERR_FORBIDDEN, "a key cannot have scopes beyond its owner's role (%s)",
			       role_name(p->role));
	struct user usr;
	if ((rc = users_get(u, a, p, &usr, e)) != 0)
		return rc;
	return key_create(u, usr.id, name, scopes, book_ids, nbooks, a, out, key_out, e);
}

int users_key_list(struct users *u, struct arena *a, const struct principal *p, int all, struct api_key **items,
		   int *n, struct err *e)
{
	int rc = users_require_user(p, e);
	if (rc)
		return rc;
	if (all && (rc = users_require_admin(p, e)) != 0)
		return rc;
	struct user usr;
	if (!all && (rc = users_get(u, a, p, &usr, e)) != 0)
		return rc;
	db_conn *c;
	if ((rc = db_acquire(u->db, &c, e)) != 0)
		return rc;
	rc = store_apikey_list(c, a, all ? NULL : usr.id, items, n, e);
	db_release(c);
	return rc;
}

int users_key_delete(struct users *u, const struct principal *p, const char *id, struct err *e)
{
	int rc = users_require_user(p, e);
	if (rc)
		return rc;
	if (p->kind == P_KEY)
		return err_set(e, ERR_FORBIDDEN, "API keys cannot revoke API keys");
	struct arena a;
	arena_init(&a, 1024);
	struct user usr;
	int admin = (p->scopes & SCOPE_ADMIN) != 0;
	if (!admin && (rc = users_get(u, &a, p, &usr, e)) != 0)
		goto out;
	db_conn *c;
	if ((rc = db_acquire(u->db, &c, e)) != 0)
		goto out;
	rc = store_apikey_delete(c, id, admin ? NULL : usr.id, e);
	db_release(c);
	if (rc == 0)
		changes_touch(db_changes(u->db), "keys");
	if (rc == 0)
		audit("key_revoked", admin ? NULL : usr.id, NULL, id);
out:
	arena_free(&a);
	return rc;
}

/* ---- administration -------------------------------------------------------- */

int users_add(struct users *u, struct arena *a, const char *email, const char *password, enum role role,
	      struct user *out, struct err *e)
{
	int rc = check_password(password, e);
	if (!rc)
		rc = create_user(u, a, email, password, NULL, role, NULL, out, e);
	if (!rc)
		audit("user_added", out->id, NULL, role_name(role));
	return rc;
}

int users_list(struct users *u, struct arena *a, struct user **items, int *n, struct err *e)
{
	db_conn *c;
	int rc = db_acquire(u->db, &c, e);
	if (rc)
		return rc;
	rc = store_user_list(c, a, items, n, e);
	db_release(c);
	return rc;
}

int users_set_role(struct users *u, const char *email, enum role role, struct err *e)
{
	struct arena a;
	arena_init(&a, 1024);
	struct user usr;
	db_conn *c;
	int rc = db_acquire(u->db, &c, e);
	if (rc == 0) {
		rc = store_user_get(c, &a, "email", email, &usr, e);
		if (rc == 0)
			rc = store_user_set_role(c, usr.id, role_name(role), time_now_ms(), e);
		db_release(c);
	}
	if (rc == 0)
		changes_touch2(db_changes(u->db), "user:", usr.id);
	if (rc == 0)
		audit("role_changed", usr.id, NULL, role_name(role));
	arena_free(&a);
	return rc;
}

int users_key_create_for(struct users *u, struct arena *a, const char *email, const char *name, unsigned scopes,
			 struct api_key *out, char *key_out, struct err *e)
{
	struct user usr;
	db_conn *c;
	int rc = db_acquire(u->db, &c, e);
	if (rc)
		return rc;
	rc = store_user_get(c, a, "email", email, &usr, e);
	db_release(c);
	if (rc)
		return rc;
	if (scopes & ~role_scopes(role_parse(usr.role)))
		return err_set(e, ERR_FORBIDDEN, "a key cannot have scopes beyond its owner's role (%s)", usr.role);
	return key_create(u, usr.id, name, scopes, NULL, 0, a, out, key_out, e);
}
