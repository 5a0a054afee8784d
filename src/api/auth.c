/*
 * /api/v1/auth: register, login, refresh, logout, me, and API keys. Register
 * and login hash or verify a password (argon2id, tens of milliseconds): they
 * run on the hashing executor with the connection suspended, and answer from
 * the `done` callback back on an HTTP thread.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "../core/json.h"
#include "api.h"

struct pw_job {
	struct app *app;
	struct arena *arena;
	int is_register;
	char email[300], exact[300];
	char *password, *display_name;
	char ip[64], limit_key[64];
	struct user user;
	struct tokens tokens;
	struct err e;
	int rc;
};

static json_t *user_json(const struct user *u)
{
	return json_pack("{s:s, s:s, s:o, s:s, s:o}", "id", u->id, "email", u->email, "display_name",
			 jstr_or_null(u->display_name), "role", u->role, "created_at", api_time(u->created_at));
}

static json_t *tokens_json(const struct tokens *t)
{
	return json_pack("{s:s, s:s, s:i, s:s}", "access_token", t->access, "token_type", "bearer", "expires_in",
			 t->expires_in, "refresh_token", t->refresh);
}

static void pw_work(void *ctx)
{
	struct pw_job *j = ctx;
	/* Queued when shutdown stopped waiting: answer at once, hash nothing. */
	if (stop_fired(j->app->cancel))
		j->rc = err_set(&j->e, ERR_UNAVAILABLE, "the server is shutting down; try again shortly");
	else if (j->is_register)
		j->rc = users_register(j->app->users, j->arena, j->email, j->password, j->display_name, j->ip,
				       &j->user, &j->tokens, &j->e);
	else
		j->rc = users_login(j->app->users, j->arena, j->email, j->exact, j->password, j->ip, j->limit_key,
				    &j->user, &j->tokens, &j->e);
	sodium_memzero(j->password, strlen(j->password));
	if (j->is_register)
		users_register_release(j->app->users);
}

static void pw_done(http_req *req, void *app)
{
	struct pw_job *j = http_defer_ctx(req);
	if (j->rc) {
		api_fail(req, &j->e);
	} else {
		json_t *o = tokens_json(&j->tokens);
		json_object_set_new(o, "user", user_json(&j->user));
		api_json(req, j->is_register ? 201 : 200, o);
	}
	tokens_free(&j->tokens);
}

static void password_request(http_req *req, struct app *app, int is_register)
{
	json_t *o;
	if (api_read_object(req, &o))
		return;
	struct pw_job *j = arena_alloc(http_arena(req), sizeof(*j));
	struct err e = { 0 };
	const char *email = NULL, *password = NULL, *name = NULL;
	if (!j) {
		err_set(&e, ERR_INTERNAL, "out of memory");
		goto fail;
	}
	memset(j, 0, sizeof(*j));
	(void)jget_str(o, "email", J_REQUIRED, 1, 254, &email, &e);
	(void)jget_str(o, "password", J_REQUIRED, 1, 1024, &password, &e);
	if (is_register)
		(void)jget_str(o, "display_name", J_OPTIONAL, 0, 200, &name, &e);
	if (e.code)
		goto fail;
	snprintf(j->email, sizeof(j->email), "%s", email);
	users_email_stored_form(email, j->exact, sizeof(j->exact));
	if (users_normalize_email(j->email, sizeof(j->email), &e)) {
		struct err v = { 0 };
		err_field(&v, "email", "%s", e.msg);
		e = v;
		goto fail;
	}
	snprintf(j->ip, sizeof(j->ip), "%s", http_client_ip(req));
	snprintf(j->limit_key, sizeof(j->limit_key), "%s", http_client_limit_key(req));
	int retry = 1;
	if (is_register ? users_register_admit(app->users, j->limit_key, &retry, &e)
			: users_login_allowed(app->users, j->limit_key, j->email, &retry, &e)) {
		sodium_memzero((char *)password, strlen(password));
		api_rate_limited(req, &e, retry);
		json_decref(o);
		return;
	}
	j->app = app;
	j->arena = http_arena(req);
	j->is_register = is_register;
	j->password = arena_strdup(http_arena(req), password);
	j->display_name = name ? arena_strdup(http_arena(req), name) : NULL;
	/* Keep the password out of the parsed body as soon as it is copied. */
	sodium_memzero((char *)password, strlen(password));
	json_decref(o);
	if (!j->password) {
		if (is_register)
			users_register_release(app->users);
		err_set(&e, ERR_INTERNAL, "out of memory");
		api_fail(req, &e);
		return;
	}
	if (http_defer(req, app->hasher, pw_work, pw_done, j)) {
		if (is_register)
			users_register_release(app->users);
		sodium_memzero(j->password, strlen(j->password));
		err_set(&e, ERR_UNAVAILABLE, "too many sign-ins in progress; try again shortly");
		api_fail(req, &e);
	}
	return;
fail:
	json_decref(o);
	api_fail(req, &e);
}

void api_auth_register(http_req *req, void *app)
{
	password_request(req, app, 1);
}

void api_auth_login(http_req *req, void *app)
{
	password_request(req, app, 0);
}

static int refresh_token_arg(http_req *req, json_t **o, const char **token)
{
	if (api_read_object(req, o))
		return -1;
	struct err e = { 0 };
	if (jget_str(*o, "refresh_token", J_REQUIRED, 1, 200, token, &e) < 0) {
		api_fail(req, &e);
		json_decref(*o);
		return -1;
	}
	return 0;
}

void api_auth_refresh(http_req *req, void *app_)
{
	struct app *app = app_;
	json_t *o;
	const char *token;
	if (refresh_token_arg(req, &o, &token))
		return;
	struct tokens t = { 0 };
	struct err e = { 0 };
	if (users_refresh(app->users, http_arena(req), token, http_client_ip(req), &t, &e))
		api_fail(req, &e);
	else
		api_json(req, 200, tokens_json(&t));
	tokens_free(&t);
	json_decref(o);
}

void api_auth_logout(http_req *req, void *app_)
{
	struct app *app = app_;
	json_t *o;
	const char *token;
	if (refresh_token_arg(req, &o, &token))
		return;
	struct err e = { 0 };
	if (users_logout(app->users, token, &e))
		api_fail(req, &e);
	else
		http_respond_empty(req, 204);
	json_decref(o);
}

void api_auth_me(http_req *req, void *app_)
{
	struct app *app = app_;
	struct principal p;
	struct user u;
	if (api_user(req, app, &p, &u))
		return;
	json_t *o = user_json(&u);
	char scopes[32];
	scopes_format(p.scopes, scopes, sizeof(scopes));
	json_object_set_new(o, "scopes", json_string(scopes));
	json_object_set_new(o, "auth", json_string(p.kind == P_KEY ? "api_key" : p.kind == P_MASTER ? "master_key" : "token"));
	api_json(req, 200, o);
}

/* ---- API keys -------------------------------------------------------------- */

static json_t *key_json(const struct api_key *k, const char *secret)
{
	json_t *books = k->book_ids ? json_loads(k->book_ids, 0, NULL) : NULL;
	json_t *scopes = json_array();
	char tmp[32];
	snprintf(tmp, sizeof(tmp), "%s", k->scopes ? k->scopes : "");
	char *save = NULL;
	for (char *t = strtok_r(tmp, " ", &save); t; t = strtok_r(NULL, " ", &save))
		json_array_append_new(scopes, json_string(t));
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o}", "id", k->id, "user_id", k->user_id,
			      "name", k->name ? k->name : "", "prefix", k->prefix ? k->prefix : "", "scopes", scopes,
			      "book_ids", books ? books : json_null(), "created_at", api_time(k->created_at),
			      "last_used_at", k->last_used_at ? api_time(k->last_used_at) : json_null());
	if (o && secret)
		json_object_set_new(o, "key", json_string(secret));
	return o;
}

void api_keys_create(http_req *req, void *app_)
{
	struct app *app = app_;
	struct principal p;
	if (api_principal(req, app, &p))
		return;
	json_t *o;
	if (api_read_object(req, &o))
		return;
	struct err e = { 0 };
	const char *name = NULL;
	const char *scope_names[8], *books[PRINCIPAL_MAX_BOOKS];
	int nscopes = 0, nbooks = 0;
	(void)jget_str(o, "name", J_REQUIRED, 1, 100, &name, &e);
	json_t *sc = json_object_get(o, "scopes");
	if (sc && !json_is_null(sc)) {
		size_t i;
		json_t *v;
		if (!json_is_array(sc) || json_array_size(sc) > ARRAY_LEN(scope_names))
			err_field(&e, "scopes", "must be a list of read, write, admin");
		else
			json_array_foreach(sc, i, v) {
				if (json_is_string(v))
					scope_names[nscopes++] = json_string_value(v);
				else
					err_field(&e, "scopes", "must be a list of read, write, admin");
			}
	}
	json_t *bk = json_object_get(o, "book_ids");
	if (bk && !json_is_null(bk)) {
		size_t i;
		json_t *v;
		if (!json_is_array(bk) || json_array_size(bk) > PRINCIPAL_MAX_BOOKS || json_array_size(bk) == 0)
			err_field(&e, "book_ids", "must be a list of 1 to %d book ids (omit it for every book)",
				  PRINCIPAL_MAX_BOOKS);
		else
			json_array_foreach(bk, i, v) {
				if (json_is_string(v) && uuid_valid(json_string_value(v), json_string_length(v)))
					books[nbooks++] = json_string_value(v);
				else
					err_field(&e, "book_ids", "must be a list of book ids");
			}
	}
	unsigned scopes = nscopes ? scopes_parse_list(scope_names, nscopes) : SCOPE_READ;
	if (!scopes)
		err_field(&e, "scopes", "must be a list of read, write, admin");
	struct api_key k;
	char secret[80];
	if (!e.code && users_key_create(app->users, http_arena(req), &p, name, scopes, books, nbooks, &k, secret, &e) == 0) {
		api_json(req, 201, key_json(&k, secret));
		sodium_memzero(secret, sizeof(secret));
	} else {
		api_fail(req, &e);
	}
	json_decref(o);
}

void api_keys_list(http_req *req, void *app_)
{
	struct app *app = app_;
	struct principal p;
	if (api_principal(req, app, &p))
		return;
	const char *all = http_query(req, "all");
	struct api_key *items;
	int n;
	struct err e = { 0 };
	if (users_key_list(app->users, http_arena(req), &p, all && !strcmp(all, "true"), &items, &n, &e)) {
		api_fail(req, &e);
		return;
	}
	json_t *arr = json_array();
	for (int i = 0; i < n; i++)
		json_array_append_new(arr, key_json(&items[i], NULL));
	api_json(req, 200, json_pack("{s:o, s:n}", "items", arr, "next_cursor"));
}

void api_keys_delete(http_req *req, void *app_)
{
	struct app *app = app_;
	struct principal p;
	if (api_principal(req, app, &p))
		return;
	struct err e = { 0 };
	if (users_key_delete(app->users, &p, http_param(req, 0), &e))
		api_fail(req, &e);
	else
		http_respond_empty(req, 204);
}
