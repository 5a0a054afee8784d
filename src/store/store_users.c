#include "store_users.h"

#include <string.h>

/* Copies a text column into a fixed buffer (ids). */
/* ---- users ----------------------------------------------------------------- */

#define USER_COLS "id, email, password_hash, display_name, role, external_sub, created_at, updated_at, email_dup"

struct user_rows {
	struct arena *a;
	struct user *items;
	int n, cap;
};

static int user_cb(void *ctx, const db_row *r)
{
	struct user_rows *m = ctx;
	if (!(m->items = arena_grow(m->a, m->items, m->n, &m->cap, sizeof(*m->items))))
		return ERR_INTERNAL;
	struct user *u = &m->items[m->n++];
	db_row_copy(r, 0, u->id, sizeof(u->id));
	u->email = db_row_dup(r, 1, m->a);
	u->password_hash = db_row_dup(r, 2, m->a);
	u->display_name = db_row_dup(r, 3, m->a);
	u->role = db_row_dup(r, 4, m->a);
	u->external_sub = db_row_dup(r, 5, m->a);
	u->created_at = db_row_int(r, 6);
	u->updated_at = db_row_int(r, 7);
	u->email_dup = (int)db_row_int_or0(r, 8);
	u->email_key = NULL;
	return 0;
}

DB_STMT(user_insert, "INSERT INTO users (id, email, password_hash, display_name, role, external_sub, created_at, "
	"updated_at, email_norm, email_dup) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0)");

int store_user_insert(db_conn *c, const struct user *u, struct err *e)
{
	struct db_val p[] = { dbv_text(u->id),	 dbv_text(u->email),	    dbv_text(u->password_hash),
			      dbv_text(u->display_name), dbv_text(u->role),	    dbv_text(u->external_sub),
			      dbv_int(u->created_at),	 dbv_int(u->updated_at),    dbv_text(u->email_key) };
	return db_run(c, &user_insert, p, 9, NULL, NULL, NULL, e);
}

DB_STMT(user_by_email, "SELECT " USER_COLS " FROM users WHERE email_norm = $1 ORDER BY created_at, id LIMIT 16");

int store_user_by_email(db_conn *c, struct arena *a, const char *norm, struct user **items, int *n,
			struct err *e)
{
	struct user_rows m = { a, NULL, 0, 0 };
	struct db_val p[] = { dbv_text(norm) };
	int rc = db_run(c, &user_by_email, p, 1, user_cb, &m, NULL, e);
	if (rc < 0)
		return rc;
	*items = m.items;
	*n = m.n;
	return 0;
}

struct unnormed {
	struct arena *a;
	struct user_email *items;
	int n, cap;
};

static int unnormed_cb(void *ctx, const db_row *r)
{
	struct unnormed *m = ctx;
	if (!(m->items = arena_grow(m->a, m->items, m->n, &m->cap, sizeof(*m->items))))
		return ERR_INTERNAL;
	struct user_email *u = &m->items[m->n++];
	db_row_copy(r, 0, u->id, sizeof(u->id));
	u->email = db_row_dup(r, 1, m->a);
	u->email_norm = db_row_dup(r, 2, m->a);
	return 0;
}

DB_STMT(user_emails_unnormed, "SELECT id, email, email_norm FROM users WHERE email_norm IS NULL ORDER BY created_at, id "
	"LIMIT $1");

int store_user_emails_unnormed(db_conn *c, struct arena *a, int limit, struct user_email **items, int *n,
			       struct err *e)
{
	struct unnormed m = { a, NULL, 0, 0 };
	struct db_val p[] = { dbv_int(limit) };
	int rc = db_run(c, &user_emails_unnormed, p, 1, unnormed_cb, &m, NULL, e);
	if (rc < 0)
		return rc;
	*items = m.items;
	*n = m.n;
	return 0;
}

DB_STMT(email_norm_taken, "SELECT count(*) FROM users WHERE email_norm = $1 AND id <> $2");
DB_STMT(user_set_email_norm_q, "UPDATE users SET email_norm = $2, email_dup = $3 WHERE id = $1");

int store_user_set_email_norm(db_conn *c, const char *id, const char *norm, int *dup, struct err *e)
{
	struct db_val q[] = { dbv_text(norm), dbv_text(id) };
	int64_t taken = 0;
	int rc = db_run(c, &email_norm_taken, q, 2, db_row_first_int, &taken, NULL, e);
	if (rc < 0)
		return rc;
	*dup = taken > 0;
	struct db_val p[] = { dbv_text(id), dbv_text(norm), dbv_int(*dup) };
	return db_run(c, &user_set_email_norm_q, p, 3, NULL, NULL, NULL, e);
}

DB_STMT(user_email_collisions, "SELECT id, email, email_norm FROM users WHERE email_norm IN "
	"(SELECT email_norm FROM users WHERE email_dup = 1) ORDER BY email_norm, created_at, id");

int store_user_email_collisions(db_conn *c, struct arena *a, struct user_email **items, int *n, struct err *e)
{
	struct unnormed m = { a, NULL, 0, 0 };
	int rc = db_run(c, &user_email_collisions, NULL, 0, unnormed_cb, &m, NULL, e);
	if (rc < 0)
		return rc;
	*items = m.items;
	*n = m.n;
	return 0;
}

DB_STMT(user_by_exact_email, "SELECT " USER_COLS " FROM users WHERE email = $1");
DB_STMT(user_by_sub, "SELECT " USER_COLS " FROM users WHERE external_sub = $1");
DB_STMT(user_by_id, "SELECT " USER_COLS " FROM users WHERE id = $1");

int store_user_get(db_conn *c, struct arena *a, const char *by, const char *key, struct user *out,
		   struct err *e)
{
	struct db_stmt *s = strcmp(by, "email") == 0 ? &user_by_exact_email
			     : strcmp(by, "sub") == 0	? &user_by_sub
							: &user_by_id;
	struct user_rows m = { a, out, 0, 1 };
	struct db_val p[] = { dbv_text(key) };
	int rc = db_run(c, s, p, 1, user_cb, &m, NULL, e);
	if (rc < 0)
		return rc;
	return m.n ? 0 : err_set(e, ERR_NOT_FOUND, "user not found");
}

DB_STMT(user_list, "SELECT " USER_COLS " FROM users ORDER BY id");

int store_user_list(db_conn *c, struct arena *a, struct user **items, int *n, struct err *e)
{
	struct user_rows m = { a, NULL, 0, 0 };
	int rc = db_run(c, &user_list, NULL, 0, user_cb, &m, NULL, e);
	if (rc < 0)
		return rc;
	*items = m.items;
	*n = m.n;
	return 0;
}

DB_STMT(user_set_role, "UPDATE users SET role = $2, updated_at = $3 WHERE id = $1");

int store_user_set_role(db_conn *c, const char *id, const char *role, int64_t now, struct err *e)
{
	struct db_val p[] = { dbv_text(id), dbv_text(role), dbv_int(now) };
	int64_t changed = 0;
	int rc = db_run(c, &user_set_role, p, 3, NULL, NULL, &changed, e);
	return rc ? rc : changed ? 0 : err_set(e, ERR_NOT_FOUND, "user not found");
}

DB_STMT(refresh_insert, "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, created_at, expires_at) "
	"VALUES ($1, $2, $3, $4, $5, $6)");

/* ---- refresh tokens -------------------------------------------------------- */

int store_refresh_insert(db_conn *c, const struct refresh_token *t, const char *hash, struct err *e)
{
	struct db_val p[] = { dbv_text(t->id),	    dbv_text(t->user_id),   dbv_text(t->family_id),
			      dbv_text(hash),	    dbv_int(t->created_at), dbv_int(t->expires_at) };
	return db_run(c, &refresh_insert, p, 6, NULL, NULL, NULL, e);
}

static int refresh_cb(void *ctx, const db_row *r)
{
	struct refresh_token *t = ctx;
	db_row_copy(r, 0, t->id, sizeof(t->id));
	db_row_copy(r, 1, t->user_id, sizeof(t->user_id));
	db_row_copy(r, 2, t->family_id, sizeof(t->family_id));
	t->created_at = db_row_int(r, 3);
	t->expires_at = db_row_int(r, 4);
	t->used_at = db_row_int_or0(r, 5);
	t->revoked_at = db_row_int_or0(r, 6);
	return 1;
}

DB_STMT(refresh_by_hash, "SELECT id, user_id, family_id, created_at, expires_at, used_at, revoked_at "
	"FROM refresh_tokens WHERE token_hash = $1");

int store_refresh_by_hash(db_conn *c, const char *hash, struct refresh_token *out, struct err *e)
{
	struct db_val p[] = { dbv_text(hash) };
	out->id[0] = '\0';
	int rc = db_run(c, &refresh_by_hash, p, 1, refresh_cb, out, NULL, e);
	if (rc < 0)
		return rc;
	return out->id[0] ? 0 : err_set(e, ERR_NOT_FOUND, "unknown refresh token");
}

DB_STMT(refresh_use, "UPDATE refresh_tokens SET used_at = $2 WHERE id = $1 AND used_at IS NULL "
	"AND revoked_at IS NULL");

int store_refresh_use(db_conn *c, const char *id, int64_t now, int64_t *changed, struct err *e)
{
	struct db_val p[] = { dbv_text(id), dbv_int(now) };
	return db_run(c, &refresh_use, p, 2, NULL, NULL, changed, e);
}

DB_STMT(refresh_revoke_family, "UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL");

int store_refresh_revoke_family(db_conn *c, const char *family_id, int64_t now, struct err *e)
{
	struct db_val p[] = { dbv_text(family_id), dbv_int(now) };
	return db_run(c, &refresh_revoke_family, p, 2, NULL, NULL, NULL, e);
}

/* ---- api keys -------------------------------------------------------------- */

#define KEY_COLS "id, user_id, name, prefix, scopes, book_ids, created_at, last_used_at"

struct key_rows {
	struct arena *a;
	struct api_key *items;
	int n, cap;
};

static int key_cb(void *ctx, const db_row *r)
{
	struct key_rows *m = ctx;
	if (!(m->items = arena_grow(m->a, m->items, m->n, &m->cap, sizeof(*m->items))))
		return ERR_INTERNAL;
	struct api_key *k = &m->items[m->n++];
	db_row_copy(r, 0, k->id, sizeof(k->id));
	db_row_copy(r, 1, k->user_id, sizeof(k->user_id));
	k->name = db_row_dup(r, 2, m->a);
	k->prefix = db_row_dup(r, 3, m->a);
	k->scopes = db_row_dup(r, 4, m->a);
	k->book_ids = db_row_dup(r, 5, m->a);
	k->created_at = db_row_int(r, 6);
	k->last_used_at = db_row_int_or0(r, 7);
	return 0;
}

DB_STMT(apikey_insert, "INSERT INTO api_keys (id, user_id, name, prefix, scopes, book_ids, created_at, key_hash) "
	"VALUES ($1, $2, $3, $4, $5, $6, $7, $8)");

int store_apikey_insert(db_conn *c, const struct api_key *k, const char *hash, struct err *e)
{
	struct db_val p[] = { dbv_text(k->id),	   dbv_text(k->user_id),  dbv_text(k->name),
			      dbv_text(k->prefix), dbv_text(k->scopes),	  dbv_text(k->book_ids),
			      dbv_int(k->created_at), dbv_text(hash) };
	return db_run(c, &apikey_insert, p, 8, NULL, NULL, NULL, e);
}

DB_STMT(apikey_by_hash, "SELECT " KEY_COLS " FROM api_keys WHERE key_hash = $1");

int store_apikey_by_hash(db_conn *c, struct arena *a, const char *hash, struct api_key *out, struct err *e)
{
	struct key_rows m = { a, out, 0, 1 };
	struct db_val p[] = { dbv_text(hash) };
	int rc = db_run(c, &apikey_by_hash, p, 1, key_cb, &m, NULL, e);
	if (rc < 0)
		return rc;
	return m.n ? 0 : err_set(e, ERR_NOT_FOUND, "unknown API key");
}

DB_STMT(apikeys_of_user, "SELECT " KEY_COLS " FROM api_keys WHERE user_id = $1 ORDER BY id");
DB_STMT(apikeys_all, "SELECT " KEY_COLS " FROM api_keys ORDER BY id");

int store_apikey_list(db_conn *c, struct arena *a, const char *user_id, struct api_key **items, int *n,
		      struct err *e)
{
	struct key_rows m = { a, NULL, 0, 0 };
	int rc;
	if (user_id) {
		struct db_val p[] = { dbv_text(user_id) };
		rc = db_run(c, &apikeys_of_user, p, 1, key_cb, &m, NULL, e);
	} else {
		rc = db_run(c, &apikeys_all, NULL, 0, key_cb, &m, NULL, e);
	}
	if (rc < 0)
		return rc;
	*items = m.items;
	*n = m.n;
	return 0;
}

DB_STMT(apikey_delete_own, "DELETE FROM api_keys WHERE id = $1 AND user_id = $2");
DB_STMT(apikey_delete_any, "DELETE FROM api_keys WHERE id = $1");

int store_apikey_delete(db_conn *c, const char *id, const char *user_id, struct err *e)
{
	int64_t changed = 0;
	int rc;
	if (user_id) {
		struct db_val p[] = { dbv_text(id), dbv_text(user_id) };
		rc = db_run(c, &apikey_delete_own, p, 2, NULL, NULL, &changed, e);
	} else {
		struct db_val p[] = { dbv_text(id) };
		rc = db_run(c, &apikey_delete_any, p, 1, NULL, NULL, &changed, e);
	}
	return rc ? rc : changed ? 0 : err_set(e, ERR_NOT_FOUND, "API key not found");
}

DB_STMT(apikey_touch, "UPDATE api_keys SET last_used_at = $2 WHERE id = $1");

int store_apikey_touch(db_conn *c, const char *id, int64_t now, struct err *e)
{
	struct db_val p[] = { dbv_text(id), dbv_int(now) };
	return db_run(c, &apikey_touch, p, 2, NULL, NULL, NULL, e);
}

/* ---- preferences ----------------------------------------------------------- */

struct prefs_out {
	struct arena *a;
	char **data;
	int64_t *updated_at;
};

static int prefs_cb(void *ctx, const db_row *r)
{
	struct prefs_out *o = ctx;
	*o->data = db_row_dup(r, 0, o->a);
	*o->updated_at = db_row_int(r, 1);
	return 1;
}

DB_STMT(prefs_get, "SELECT data, updated_at FROM preferences WHERE user_id = $1");

int store_prefs_get(db_conn *c, struct arena *a, const char *user_id, char **data, int64_t *updated_at,
		    struct err *e)
{
	struct prefs_out o = { a, data, updated_at };
	struct db_val p[] = { dbv_text(user_id) };
	*data = NULL;
	*updated_at = 0;
	int rc = db_run(c, &prefs_get, p, 1, prefs_cb, &o, NULL, e);
	return rc < 0 ? rc : 0;
}

DB_STMT(prefs_put, "INSERT INTO preferences (user_id, data, updated_at) VALUES ($1, $2, $3) "
	"ON CONFLICT (user_id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at");

int store_prefs_put(db_conn *c, const char *user_id, const char *data, int64_t now, struct err *e)
{
	struct db_val p[] = { dbv_text(user_id), dbv_text(data), dbv_int(now) };
	return db_run(c, &prefs_put, p, 3, NULL, NULL, NULL, e);
}
