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
	health_check(app->db, app->chat, &h);
	int db_ok = h.database_ok;
	json_t *checks = json_pack("{s:s}", "database", db_ok ? "ok" : "unavailable");
	if (!db_ok)
		json_object_set_new(checks, "database_error", json_string("database is not usable"));
	json_object_set_new(checks, "llm", json_string(h.llm[0] ? h.llm : "none (extractive answers)"));
	api_json(req, db_ok ? 200 : 503,
		 json_pack("{s:s, s:o}", "status", db_ok ? "ready" : "unavailable", "checks", checks));
}
