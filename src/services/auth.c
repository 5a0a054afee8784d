/*
 * Who is calling, and what they may do: access tokens (ours, or an external
 * provider's, whose subject becomes a local user on first sight), Better-Auth
 * session tokens (verified by their server; the user id is the subject), the
 * user a trusted proxy names in X-User-ID (the subject too), API keys, the
 * master key's built-in local admin, and the checks on a principal.
 */
#include "users_int.h"

#include <jansson.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/mem.h"
#include "../core/timeutil.h"
#include "../providers/better_auth.h"
#include "../providers/jwks_source.h"
#include "../store/changes.h"
#include "jwt.h"

/* The master key's user: found by this reserved subject, never by email, so
 * nobody can become it by registering or presenting its address first. */
#define LOCAL_ADMIN_SUB "bookd:master-key"
#define LOCAL_ADMIN_EMAIL "master-key@bookd.invalid"

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
	p->scopes = users_role_scopes(p->role);
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
		users_sha256_hex(sub, h);
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
	char key[1024];
	for (int attempt = 0;; attempt++) {
		users_email_key(out->email, key, sizeof(key));
		out->email_key = key;
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
		out->email_key = NULL;
		if (attempt == 1)
			return err_set(e, ERR_CONFLICT, "cannot create the user of this token");
		/* The email is a local user's: link by a synthetic address. */
		char h[65];
		users_sha256_hex(sub, h);
		out->email = arena_printf(a, "%.32s@external.invalid", h);
	}
	out->email_key = NULL;
	if (rc == 0)
		users_audit("external_user_created", out->id, NULL, NULL);
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
	users_sha256_hex(key, hash);
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

/* A subject another system vouches for (a Better-Auth user id, a trusted
 * proxy's X-User-ID): the local user made for it on first sight. */
static int auth_subject(struct users *u, struct arena *a, const char *sub, const char *email, const char *name,
			struct principal *p, struct err *e)
{
	json_t *claims = json_pack("{s:s, s:s?, s:s?}", "sub", sub, "email", email && *email ? email : NULL,
				   "name", name && *name ? name : NULL);
	if (!claims)
		return err_set(e, ERR_INTERNAL, "out of memory");
	struct user usr;
	db_conn *c;
	int rc = db_acquire(u->db, &c, e);
	if (rc == 0) {
		rc = external_user(u, a, c, claims, &usr, e);
		db_release(c);
	}
	json_decref(claims);
	return rc ? rc : principal_from_user(p, a, &usr);
}

static int auth_better_auth(struct users *u, struct arena *a, const char *token, enum better_auth_form form,
			    struct principal *p, struct err *e)
{
	struct better_auth_user bu;
	int rc = better_auth_verify(u->better_auth, token, form, &bu, e);
	return rc ? rc : auth_subject(u, a, bu.id, bu.email, bu.name, p, e);
}

/* X-User-ID: printable ASCII, no space, at most 128 bytes. */
static int user_header_sane(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (n >= 128 || (unsigned char)s[n] <= ' ' || (unsigned char)s[n] >= 127)
			return 0;
	return n > 0;
}

int users_authenticate(struct users *u, struct arena *a, const struct credentials *cr, struct principal *p,
		       struct err *e)
{
	memset(p, 0, sizeof(*p));
	if (cr->api_key && *cr->api_key)
		return auth_key(u, a, cr->api_key, p, e);
	if (cr->authorization && *cr->authorization) {
		if (strncasecmp(cr->authorization, "Bearer ", 7) != 0)
			return err_set(e, ERR_UNAUTHORIZED, "invalid or expired token");
		const char *t = cr->authorization + 7;
		while (*t == ' ')
			t++;
		if (u->better_auth && !better_auth_is_jwt(t))
			return auth_better_auth(u, a, t, BETTER_AUTH_BEARER, p, e);
		return auth_bearer(u, a, t, p, e);
	}
	char token[BETTER_AUTH_TOKEN_MAX + 1];
	if (u->better_auth && better_auth_cookie_token(cr->cookie, token, sizeof(token)))
		return auth_better_auth(u, a, token, BETTER_AUTH_COOKIE, p, e);
	if (u->cfg.trust_user_header && cr->user_header && *cr->user_header) {
		if (!user_header_sane(cr->user_header))
			return err_set(e, ERR_UNAUTHORIZED, "X-User-ID is not a user id");
		return auth_subject(u, a, cr->user_header, NULL, NULL, p, e);
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
	rc = users_create_user(u, a, LOCAL_ADMIN_EMAIL, NULL, "Local administrator", ROLE_ADMIN, LOCAL_ADMIN_SUB,
			       out, e);
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

int users_may_touch_book(const struct principal *p, const char *book_id)
{
	if (!p->nbooks)
		return 1;
	for (int i = 0; book_id && i < p->nbooks; i++)
		if (strcmp(p->books[i], book_id) == 0)
			return 1;
	return 0;
}

int users_can_write_book(const struct principal *p, const char *book_id, struct err *e)
{
	if (p->kind == P_ANON)
		return err_set(e, ERR_UNAUTHORIZED, "authentication required");
	if (!(p->scopes & SCOPE_WRITE) || p->role < ROLE_EDITOR)
		return err_set(e, ERR_FORBIDDEN, "editors and administrators only");
	return users_may_touch_book(p, book_id) ? 0 : err_set(e, ERR_FORBIDDEN, "this API key is limited to other books");
}
