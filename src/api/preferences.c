/* /api/v1/users/me/preferences: the caller's own, never anyone else's. */
#include "../services/preferences.h"
#include "api.h"

static int me(http_req *req, struct app *app, struct user *u, int writing)
{
	struct principal p;
	if (api_principal(req, app, &p))
		return -1;
	if (writing && p.kind == P_KEY && !(p.scopes & SCOPE_WRITE)) {
		struct err e = { 0 };
		err_set(&e, ERR_FORBIDDEN, "a read-only API key cannot change preferences");
		api_fail(req, &e);
		return -1;
	}
	return api_user_of(req, app, &p, u);
}

static void respond(http_req *req, json_t *prefs, int64_t updated_at)
{
	json_object_set_new(prefs, "updated_at", updated_at ? api_time(updated_at) : json_null());
	api_json(req, 200, prefs);
}

void api_prefs_get(http_req *req, void *app_)
{
	struct app *app = app_;
	struct user u;
	if (me(req, app, &u, 0))
		return;
	json_t *prefs;
	int64_t at;
	struct err e = { 0 };
	if (prefs_get(app->db, u.id, &prefs, &at, &e))
		api_fail(req, &e);
	else
		respond(req, prefs, at);
}

static void write_prefs(http_req *req, struct app *app, int merge)
{
	struct user u;
	if (me(req, app, &u, 1))
		return;
	json_t *in;
	if (api_read_object(req, &in))
		return;
	json_t *prefs;
	int64_t at;
	struct err e = { 0 };
	if (prefs_write(app->db, u.id, in, merge, &prefs, &at, &e))
		api_fail(req, &e);
	else
		respond(req, prefs, at);
	json_decref(in);
}

void api_prefs_put(http_req *req, void *app)
{
	write_prefs(req, app, 0);
}

void api_prefs_patch(http_req *req, void *app)
{
	write_prefs(req, app, 1);
}
