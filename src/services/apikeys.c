/*
 * API keys: made for a user with at most the scopes of the owner's role,
 * optionally limited to some books. Only the key's SHA-256 is stored; its
 * secret is shown once, when it is made.
 */
#include "users_int.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/mem.h"
#include "../core/timeutil.h"
#include "../store/changes.h"
#include "jwt.h"

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
	users_sha256_hex(key_out, hash);
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
		users_audit("key_created", user_id, NULL, out->prefix);
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
	if (scopes & ~users_role_scopes(p->role))
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
	/* A key limited to books sees itself only, whatever its scopes: its
	 * owner's other keys (and everyone's) are beyond its books. */
	if (p->kind == P_KEY && p->nbooks && all)
		return err_set(e, ERR_FORBIDDEN, "this API key is limited to some books");
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
	if (rc == 0 && p->kind == P_KEY && p->nbooks) {
		int kept = 0;
		for (int i = 0; i < *n; i++)
			if (strcmp((*items)[i].id, p->key_id) == 0)
				(*items)[kept++] = (*items)[i];
		*n = kept;
	}
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
		users_audit("key_revoked", admin ? NULL : usr.id, NULL, id);
out:
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
	rc = users_find_by_email(c, a, email, NULL, &usr, e);
	db_release(c);
	if (rc)
		return rc;
	if (scopes & ~users_role_scopes(role_parse(usr.role)))
		return err_set(e, ERR_FORBIDDEN, "a key cannot have scopes beyond its owner's role (%s)", usr.role);
	return key_create(u, usr.id, name, scopes, NULL, 0, a, out, key_out, e);
}
