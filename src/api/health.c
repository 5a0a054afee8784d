#include "../services/health.h"
#include "api.h"

void api_health(http_req *req, void *app)
{
	api_json(req, 200, json_pack("{s:s}", "status", "healthy"));
}

void api_health_live(http_req *req, void *app)
{
	api_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

void api_health_ready(http_req *req, void *app_)
{
	struct app *app = app_;
	struct health h;
	health_check(app->db, app->chat, app->blob, &h);
	int db_ok = h.database_ok;
	json_t *checks = json_pack("{s:s}", "database", db_ok ? "ok" : "unavailable");
	if (!db_ok)
		json_object_set_new(checks, "database_error", json_string("database is not usable"));
	json_object_set_new(checks, "llm", json_string(h.llm[0] ? h.llm : "none (extractive answers)"));
	if (h.storage_ok >= 0) {
		json_object_set_new(checks, "storage", json_string(h.storage_ok ? "ok" : "unavailable"));
		if (!h.storage_ok)
			json_object_set_new(checks, "storage_error", json_string(h.storage));
	}
	/* Storage down: audio cannot be read or made, the rest works. */
	const char *status = !db_ok ? "unavailable" : h.storage_ok == 0 ? "degraded" : "ready";
	api_json(req, db_ok ? 200 : 503, json_pack("{s:s, s:o}", "status", status, "checks", checks));
}
