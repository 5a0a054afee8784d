#include "../services/chat.h"
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
	struct err e = { 0 };
	int db_ok = db_ping(app->db, &e) == 0;
	json_t *checks = json_pack("{s:s}", "database", db_ok ? "ok" : "unavailable");
	if (!db_ok)
		json_object_set_new(checks, "database_error", json_string("database is not usable"));
	/* Language models are optional: without them answers are extractive. */
	char llm[512];
	chat_describe_models(app->chat, llm, sizeof(llm));
	json_object_set_new(checks, "llm", json_string(llm[0] ? llm : "none (extractive answers)"));
	api_json(req, db_ok ? 200 : 503,
		 json_pack("{s:s, s:o}", "status", db_ok ? "ready" : "unavailable", "checks", checks));
}
