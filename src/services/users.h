/*
 * Users and authentication: accounts with argon2id passwords, HS256 access
 * tokens with rotating refresh tokens, API keys, roles, external identity
 * provider tokens, and the login rate limits. Audit events are JSON log
 * lines with an "event" field; no secret ever reaches a log.
 *
 * Refresh tokens are opaque random strings stored as SHA-256 hashes. Each
 * login starts a family; every refresh uses up its token and issues the next
 * one of the family. Presenting a token that was already used means it was
 * stolen (or replayed): the whole family is revoked.
 *
 * The slow calls (users_register, users_login, users_add) hash or verify
 * passwords: run them off the HTTP threads.
 */
#ifndef BOOKD_USERS_H
#define BOOKD_USERS_H

#include "../store/db.h"
#include "../store/store_users.h"
#include "../core/stop.h"

enum role { ROLE_NONE = 0, ROLE_READER = 1, ROLE_EDITOR = 2, ROLE_ADMIN = 3 };
enum scope { SCOPE_READ = 1, SCOPE_WRITE = 2, SCOPE_ADMIN = 4 };
enum principal_kind { P_ANON = 0, P_USER, P_KEY, P_MASTER };

#define PRINCIPAL_MAX_BOOKS 16

struct principal {
	enum principal_kind kind;
	char user_id[UUID_STR_LEN];
	enum role role;
	unsigned scopes;
	int nbooks; /* 0 = every book */
	char books[PRINCIPAL_MAX_BOOKS][UUID_STR_LEN];
	char key_id[UUID_STR_LEN];
	/* The user as authentication read it (allocated from the request's
	 * arena), so that users_get need not read it again; NULL for P_ANON and
	 * P_MASTER. */
	const struct user *user;
};

struct users_config {
	const char *master_key; /* BOOKD_API_KEY, may be empty */
	const unsigned char *secret;
	size_t secret_len;
	const unsigned char *previous; /* may be NULL */
	size_t previous_len;
	int access_ttl, refresh_ttl; /* seconds */
	const char *jwks_url, *issuer, *audience; /* external provider, may be empty */
	const char *better_auth_url; /* a Better-Auth server whose session tokens are accepted, may be empty */
	int better_auth_cache_seconds;
	long better_auth_timeout_ms;
	int trust_user_header; /* X-User-ID from a trusted proxy names the user */
	double login_burst, login_per_minute;
	double register_burst, register_per_minute; /* per IP */
	int register_concurrency; /* registrations hashing or queued at once */
	struct stop *stop;	  /* cancels a JWKS fetch at shutdown (may be NULL) */
};

struct tokens {
	char *access; /* malloc'ed */
	int expires_in;
	char refresh[64];
};

struct users;

int users_new(struct users **out, db *d, const struct users_config *cfg, struct err *e) WUR;
void users_free(struct users *u);

const char *role_name(enum role r);
enum role role_parse(const char *s);
/* "read write" etc. into a mask; 0 on an unknown scope. */
unsigned scopes_parse_list(const char *const *names, int n);
void scopes_format(unsigned scopes, char *out, size_t cap);

/* Checks an address (users_email.c: malformed, invisible characters, mixed
 * scripts and reserved domains refused; ERR_INVALID) and rewrites it in
 * place as shown: trimmed of Unicode white space, NFC, domain lowercased. */
int users_normalize_email(char *email, size_t cap, struct err *e) WUR;
/* The lookup form into out (the shown form case-folded whole), checked as
 * above but for the reserved-domain rule. */
int users_email_lookup_form(const char *in, char *out, size_t cap, struct err *e) WUR;
/* The lookup form, never failing: an address the rules refuse (an old one,
 * a provider's claim) is still composed and case-folded. */
void users_email_key(const char *in, char *out, size_t cap);
/* The address as accounts made before the lookup form stored it (ASCII
 * trim, domain lowercased): what tells colliding old accounts apart. */
void users_email_stored_form(const char *in, char *out, size_t cap);

/* Login limits: check (and count) before a login attempt. ERR_RATE_LIMITED
 * with *retry_after set. Failures count per (account, IP) and attempts per
 * IP: guesses from one address never lock the owner out at another. `ip`
 * here and `limit_key` of users_login are the client's address group
 * (http_client_limit_key: an IPv6 /64 counts as one address). */
int users_login_allowed(struct users *u, const char *ip, const char *email, int *retry_after, struct err *e) WUR;
/* Registration limits, before the password is hashed: per IP
 * (ERR_RATE_LIMITED, *retry_after), and a cap on registrations holding the
 * hashing queue at once (ERR_UNAVAILABLE) so that sign-ups never crowd out
 * logins. Every 0 return is paired with one users_register_release. */
int users_register_admit(struct users *u, const char *ip, int *retry_after, struct err *e) WUR;
void users_register_release(struct users *u);

int users_register(struct users *u, struct arena *a, const char *email, const char *password,
		   const char *display_name, const char *ip, struct user *out, struct tokens *t,
		   struct err *e) WUR;
/* email: as users_normalize_email left it; exact: users_email_stored_form
 * of what was typed (NULL: email), which picks among colliding old accounts. */
int users_login(struct users *u, struct arena *a, const char *email, const char *exact, const char *password,
		const char *ip, const char *limit_key, struct user *out, struct tokens *t, struct err *e) WUR;
int users_refresh(struct users *u, struct arena *a, const char *refresh, const char *ip, struct tokens *t,
		  struct err *e) WUR;
int users_logout(struct users *u, const char *refresh, struct err *e) WUR;
void tokens_free(struct tokens *t);

/* What a request may present to say who is calling (any may be NULL). */
struct credentials {
	const char *api_key;	   /* X-API-Key */
	const char *authorization; /* Authorization: our JWT, an external provider's, or a Better-Auth token */
	const char *cookie;	   /* Cookie: the Better-Auth session cookie */
	const char *user_header;   /* X-User-ID, only as a trusted proxy sent it */
};

/* Who is calling, from the first credential present in the order above
 * (an ignored one — a cookie with no Better-Auth server, X-User-ID with
 * trust_user_header off — counts as absent). None gives P_ANON; a bad
 * credential gives ERR_UNAUTHORIZED; a Better-Auth server that cannot answer
 * gives ERR_UNAVAILABLE (never P_ANON). */
int users_authenticate(struct users *u, struct arena *a, const struct credentials *cr, struct principal *p,
		       struct err *e) WUR;
/* The user behind a principal (the master key is the built-in local admin). */
int users_get(struct users *u, struct arena *a, const struct principal *p, struct user *out, struct err *e) WUR;

/* Authorization. book_id NULL means creating a new book. */
int users_can_write_book(const struct principal *p, const char *book_id, struct err *e) WUR;
int users_require_user(const struct principal *p, struct err *e) WUR;
int users_require_admin(const struct principal *p, struct err *e) WUR;
/* 1 when the principal may touch book_id: every book, or a key limited to
 * books that include it (NULL book_id: only an unlimited principal). Limits
 * apply whatever the scopes, admin included. */
int users_may_touch_book(const struct principal *p, const char *book_id);

/* API keys. The new key's secret is returned once in `key_out` (>= 80 bytes). */
int users_key_create(struct users *u, struct arena *a, const struct principal *p, const char *name,
		     unsigned scopes, const char *const *book_ids, int nbooks, struct api_key *out,
		     char *key_out, struct err *e) WUR;
/* all: an admin asking for every user's keys. */
int users_key_list(struct users *u, struct arena *a, const struct principal *p, int all, struct api_key **items,
		   int *n, struct err *e) WUR;
int users_key_delete(struct users *u, const struct principal *p, const char *id, struct err *e) WUR;

/* Administration (CLI). */
int users_add(struct users *u, struct arena *a, const char *email, const char *password, enum role role,
	      struct user *out, struct err *e) WUR;
int users_list(struct users *u, struct arena *a, struct user **items, int *n, struct err *e) WUR;
int users_set_role(struct users *u, const char *email, enum role role, struct err *e) WUR;
int users_key_create_for(struct users *u, struct arena *a, const char *email, const char *name, unsigned scopes,
			 struct api_key *out, char *key_out, struct err *e) WUR;

#endif
