/* Users, refresh tokens, API keys and preferences: rows and SQL. Token and
 * key columns hold SHA-256 hashes, never the secrets themselves. */
#ifndef BOOKD_STORE_USERS_H
#define BOOKD_STORE_USERS_H

#include "../core/arena.h"
#include "../core/uuid.h"
#include "db.h"

struct user {
	char id[UUID_STR_LEN];
	char *email, *password_hash, *display_name, *role, *external_sub;
	char *email_key; /* lookup form of email: written by store_user_insert, not read back */
	int64_t created_at, updated_at;
	int email_dup; /* the address's lookup form is shared with another account (never merged) */
};

/* An account's address as stored and its lookup form (users_email.c). */
struct user_email {
	char id[UUID_STR_LEN];
	char *email, *email_norm;
};

struct refresh_token {
	char id[UUID_STR_LEN], user_id[UUID_STR_LEN], family_id[UUID_STR_LEN];
	int64_t created_at, expires_at, used_at, revoked_at; /* 0 = not set */
};

struct api_key {
	char id[UUID_STR_LEN], user_id[UUID_STR_LEN];
	char *name, *prefix, *scopes, *book_ids; /* scopes "read write"; book_ids a JSON array or NULL */
	int64_t created_at, last_used_at;
};

int store_user_insert(db_conn *c, const struct user *u, struct err *e) WUR;
/* by: "id", "email" or "sub" (external subject). ERR_NOT_FOUND. */
int store_user_get(db_conn *c, struct arena *a, const char *by, const char *key, struct user *out,
		   struct err *e) WUR;
/* Every account whose address has the lookup form `norm`: one, or the
 * members of a collision that predates the lookup form (oldest first). */
int store_user_by_email(db_conn *c, struct arena *a, const char *norm, struct user **items, int *n,
			struct err *e) WUR;
/* Accounts made before the lookup form was stored (email_norm NULL). */
int store_user_emails_unnormed(db_conn *c, struct arena *a, int limit, struct user_email **items, int *n,
			       struct err *e) WUR;
/* Stores an account's lookup form; *dup is set (and stored) when another
 * account has it already. */
int store_user_set_email_norm(db_conn *c, const char *id, const char *norm, int *dup, struct err *e) WUR;
/* Every account of a collision, grouped by lookup form. */
int store_user_email_collisions(db_conn *c, struct arena *a, struct user_email **items, int *n,
				struct err *e) WUR;
int store_user_list(db_conn *c, struct arena *a, struct user **items, int *n, struct err *e) WUR;
int store_user_set_role(db_conn *c, const char *id, const char *role, int64_t now, struct err *e) WUR;

int store_refresh_insert(db_conn *c, const struct refresh_token *t, const char *hash, struct err *e) WUR;
int store_refresh_by_hash(db_conn *c, const char *hash, struct refresh_token *out, struct err *e) WUR;
/* Marks a token used; *changed is 0 when it already was (a race lost). */
int store_refresh_use(db_conn *c, const char *id, int64_t now, int64_t *changed, struct err *e) WUR;
int store_refresh_revoke_family(db_conn *c, const char *family_id, int64_t now, struct err *e) WUR;

int store_apikey_insert(db_conn *c, const struct api_key *k, const char *hash, struct err *e) WUR;
int store_apikey_by_hash(db_conn *c, struct arena *a, const char *hash, struct api_key *out, struct err *e) WUR;
/* user_id NULL lists every key (admin). */
int store_apikey_list(db_conn *c, struct arena *a, const char *user_id, struct api_key **items, int *n,
		      struct err *e) WUR;
/* user_id NULL deletes whoever owns it (admin). ERR_NOT_FOUND. */
int store_apikey_delete(db_conn *c, const char *id, const char *user_id, struct err *e) WUR;
int store_apikey_touch(db_conn *c, const char *id, int64_t now, struct err *e) WUR;

/* Preferences as a JSON document; *data NULL when none stored. */
int store_prefs_get(db_conn *c, struct arena *a, const char *user_id, char **data, int64_t *updated_at,
		    struct err *e) WUR;
int store_prefs_put(db_conn *c, const char *user_id, const char *data, int64_t now, struct err *e) WUR;

#endif
