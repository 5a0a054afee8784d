/* Internals shared by users.c, auth.c and apikeys.c. */
#ifndef BOOKD_USERS_INT_H
#define BOOKD_USERS_INT_H

#include <sodium.h>
#include <stdatomic.h>

#include "users.h"

struct users {
	db *db;
	struct users_config cfg;
	char dummy_hash[crypto_pwhash_STRBYTES]; /* verified against for unknown emails */
	struct ratelimit *per_ip, *per_account, *per_ip_register;
	atomic_int registering; /* registrations admitted and not yet released */
	struct jwks_source *jwks;
	struct better_auth *better_auth; /* NULL unless configured */
	char local_admin[UUID_STR_LEN]; /* the master key's user, made on first need */
	atomic_int local_admin_state;	 /* 0 unknown, 1 being written, 2 written (once) */
};

unsigned users_role_scopes(enum role r);
void users_sha256_hex(const char *s, char out[65]);
void users_audit(const char *event, const char *user_id, const char *ip, const char *detail);
/* password and sub may be NULL. */
int users_create_user(struct users *u, struct arena *a, const char *email, const char *password,
		      const char *display_name, enum role role, const char *sub, struct user *out,
		      struct err *e) WUR;
/* The account of an address, by its lookup form; exact is the stored form
 * that picks among colliding old accounts (NULL: none can be picked,
 * ERR_CONFLICT). ERR_NOT_FOUND. */
int users_find_by_email(db_conn *c, struct arena *a, const char *email, const char *exact, struct user *out,
			struct err *e) WUR;
/* Start-up: stores the lookup form of accounts made before it existed and
 * reports (logs) the accounts whose forms collide. */
int users_email_backfill(struct users *u, struct err *e) WUR;

#endif
