/*
 * Accounts: registration, login, refresh-token rotation and logout, and the
 * admin's user management. Passwords are argon2id; refresh tokens are stored
 * as SHA-256 and rotate on every use, a reused one revoking its family.
 */
#include "users_int.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "../core/hash.h"
#include "../core/log.h"
#include "../core/mem.h"
#include "../core/timeutil.h"
#include "../providers/better_auth.h"
#include "jwks_keys.h"
#include "../store/changes.h"
#include "jwt.h"
#include "ratelimit.h"

/* argon2id at OWASP's recommended minimum (m = 19 MiB, t = 2, p = 1). */
#define PW_OPSLIMIT 2
#define PW_MEMLIMIT (19u * 1024 * 1024)
#define PW_MIN 8
#define PW_MAX 1024

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

unsigned users_role_scopes(enum role r)
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

void users_sha256_hex(const char *s, char out[65])
{
	hash_sha256_hex(s, strlen(s), out);
}

void users_audit(const char *event, const char *user_id, const char *ip, const char *detail)
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
	u->per_ip_register = ratelimit_new(cfg->register_burst, cfg->register_per_minute, 4096);
	if (u->cfg.register_concurrency < 1)
		u->cfg.register_concurrency = 1;
	unsigned char junk[32];
	randombytes_buf(junk, sizeof(junk));
	if (!u->per_ip || !u->per_account || !u->per_ip_register ||
	    crypto_pwhash_str(u->dummy_hash, (const char *)junk, sizeof(junk), PW_OPSLIMIT, PW_MEMLIMIT)) {
		users_free(u);
		return err_set(e, ERR_INTERNAL, "out of memory");
	}
	if (cfg->jwks_url && *cfg->jwks_url && !(u->jwks = jwks_source_new(cfg->jwks_url, &jwks_keys_ops, 5, 10, cfg->stop))) {
		users_free(u);
		return err_set(e, ERR_INTERNAL, "out of memory");
	}
	int rc;
	if (cfg->better_auth_url && *cfg->better_auth_url) {
		struct better_auth_config bc = {
			.url = cfg->better_auth_url,
			.cache_seconds = cfg->better_auth_cache_seconds,
			.timeout_ms = cfg->better_auth_timeout_ms,
			.breaker_failures = 5,
			.breaker_seconds = 5,
		};
		if ((rc = better_auth_new(&u->better_auth, &bc, cfg->stop, e))) {
			users_free(u);
			return rc;
		}
	}
	rc = users_email_backfill(u, e);
	if (rc) {
		users_free(u);
		return rc;
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
	ratelimit_free(u->per_ip_register);
	jwks_source_free(u->jwks);
	better_auth_free(u->better_auth);
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
	scopes_format(users_role_scopes(r), scope, sizeof(scope));
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
	users_sha256_hex(t->refresh, hash);
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

int users_create_user(struct users *u, struct arena *a, const char *email, const char *password,
		      const char *display_name, enum role role, const char *sub, struct user *out,
		      struct err *e)
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
	char key[1024];
	users_email_key(out->email, key, sizeof(key));
	out->email_key = key;
	rc = store_user_insert(c, out, e);
	out->email_key = NULL;
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
		rc = users_create_user(u, a, email, password, display_name, ROLE_READER, NULL, out, e);
	if (rc)
		return rc;
	users_audit("register", out->id, ip, NULL);
	db_conn *c;
	if ((rc = db_acquire(u->db, &c, e)) != 0)
		return rc;
	rc = issue_both(u, c, out, NULL, t, e);
	db_release(c);
	return rc;
}

/* The failure bucket of an account as seen from one client address: the
 * address's guesses spend it, the owner elsewhere keeps a full one. The
 * address is hashed so that any length fits the bucket's key. */
static void account_key(const char *email, const char *ip, char key[80])
{
	char form[1024], h[65];
	users_email_key(email, form, sizeof(form));
	users_sha256_hex(form, h);
	snprintf(key, 80, "a:%.40s|%.32s", h, ip);
}

int users_login_allowed(struct users *u, const char *ip, const char *email, int *retry_after, struct err *e)
{
	int64_t now = time_now_ms();
	char key[80];
	account_key(email, ip, key);
	/* Every attempt takes a token from the IP and from the account at this
	 * IP, before the (slow) password check, so concurrent guesses cannot
	 * overrun the limit; a successful login gives the account's token back. */
	if (ratelimit_hit(u->per_ip, ip, 1, now, retry_after) ||
	    ratelimit_hit(u->per_account, key, 1, now, retry_after)) {
		users_audit("login_rate_limited", NULL, ip, NULL);
		return err_set(e, ERR_RATE_LIMITED, "too many login attempts; try again later");
	}
	return 0;
}

int users_register_admit(struct users *u, const char *ip, int *retry_after, struct err *e)
{
	if (ratelimit_hit(u->per_ip_register, ip, 1, time_now_ms(), retry_after)) {
		users_audit("register_rate_limited", NULL, ip, NULL);
		return err_set(e, ERR_RATE_LIMITED, "too many accounts made from this address; try again later");
	}
	if (atomic_fetch_add(&u->registering, 1) >= u->cfg.register_concurrency) {
		atomic_fetch_sub(&u->registering, 1);
		*retry_after = 1;
		return err_set(e, ERR_UNAVAILABLE, "too many sign-ups in progress; try again shortly");
	}
	return 0;
}

void users_register_release(struct users *u)
{
	atomic_fetch_sub(&u->registering, 1);
}

int users_login(struct users *u, struct arena *a, const char *email, const char *exact, const char *password,
		const char *ip, const char *limit_key, struct user *out, struct tokens *t, struct err *e)
{
	db_conn *c;
	int rc = db_acquire(u->db, &c, e);
	if (rc)
		return rc;
	rc = users_find_by_email(c, a, email, exact ? exact : email, out, e);
	if (rc && rc != ERR_NOT_FOUND)
		goto out;
	/* Unknown email or no password: verify against a dummy hash anyway, so
	 * both failures take the same time and say the same. */
	int found = rc == 0 && out->password_hash;
	const char *hash = found ? out->password_hash : u->dummy_hash;
	int ok = crypto_pwhash_str_verify(hash, password, strlen(password)) == 0 && found;
	char key[80];
	account_key(email, limit_key, key);
	if (!ok) {
		users_audit("login_failed", rc == 0 ? out->id : NULL, ip, NULL);
		rc = err_set(e, ERR_UNAUTHORIZED, "invalid email or password");
		goto out;
	}
	ratelimit_refund(u->per_account, key);
	users_audit("login", out->id, ip, NULL);
	rc = issue_both(u, c, out, NULL, t, e);
out:
	db_release(c);
	return rc;
}

int users_refresh(struct users *u, struct arena *a, const char *refresh, const char *ip, struct tokens *t,
		  struct err *e)
{
	char hash[65];
	users_sha256_hex(refresh, hash);
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
	int ended = 0; /* the transaction is over (committed or rolled back) */
	if (rc == 0 && (rt.used_at || rt.revoked_at)) {
		/* Reuse of a spent token: whoever holds the family is suspect. */
		if (!rt.revoked_at || rt.used_at) {
			rc = store_refresh_revoke_family(c, rt.family_id, now, e);
			if (!rc && (rc = db_commit(c, e)) == 0) {
				ended = 1;
				users_audit("refresh_reuse", rt.user_id, ip, "token family revoked");
			}
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
	if (rc && !ended)
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
	users_sha256_hex(refresh, hash);
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
		users_audit("logout", rt.user_id, NULL, NULL);
	/* Logging out an unknown token is not an error worth telling apart. */
	return rc == ERR_NOT_FOUND ? 0 : rc;
}

/* ---- administration -------------------------------------------------------- */

int users_add(struct users *u, struct arena *a, const char *email, const char *password, enum role role,
	      struct user *out, struct err *e)
{
	int rc = check_password(password, e);
	if (!rc)
		rc = users_create_user(u, a, email, password, NULL, role, NULL, out, e);
	if (!rc)
		users_audit("user_added", out->id, NULL, role_name(role));
	return rc;
}

int users_list(struct users *u, struct arena *a, struct user **items, int *n, struct err *e)
{
	db_conn *c;
	int rc = db_acquire(u->db, &c, e);
	if (rc)
		return rc;
	rc = store_user_list(c, a, items, n, e);
	/* email_dup flags all but the oldest of a collision: mark them all. */
	struct user_email *shared;
	int ns = 0;
	if (rc == 0)
		rc = store_user_email_collisions(c, a, &shared, &ns, e);
	for (int i = 0; rc == 0 && i < ns; i++)
		for (int k = 0; k < *n; k++)
			if (strcmp((*items)[k].id, shared[i].id) == 0)
				(*items)[k].email_dup = 1;
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
		rc = users_find_by_email(c, &a, email, NULL, &usr, e);
		if (rc == 0)
			rc = store_user_set_role(c, usr.id, role_name(role), time_now_ms(), e);
		db_release(c);
	}
	if (rc == 0)
		changes_touch2(db_changes(u->db), "user:", usr.id);
	if (rc == 0)
		users_audit("role_changed", usr.id, NULL, role_name(role));
	arena_free(&a);
	return rc;
}
