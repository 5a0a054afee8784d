#include <signal.h>
#include <string.h>

#include "../core/log.h"
#include "cli.h"

static void log_listening(const struct app_runtime *rt)
{
	const struct config *cfg = rt->cfg;
	if (!strcmp(cfg->auth_mode, "api_key"))
		log_warn("BOOKD_AUTH_MODE=api_key: BOOKD_API_KEY stands in for a user (local development)");
	struct log_line l;
	if (log_begin(&l, LOG_INFO, "listening")) {
		char url[300];
		app_url(rt, url, sizeof(url));
		log_str(&l, "url", url);
		log_str(&l, "version", BOOKD_VERSION);
		log_str(&l, "database", cfg->database_url[0] ? "external" : "sqlite");
		log_int(&l, "schema_version", rt->schema_version);
		log_int(&l, "threads", cfg->threads);
		log_end(&l);
	}
}

/* Runs `parts` until SIGTERM or SIGINT, then the staged shutdown. */
static int run_until_signal(struct config *cfg, unsigned parts, const char *draining)
{
	/* Signals go to this thread only: block them before any thread starts. */
	sigset_t sigs;
	cli_block_signals(&sigs);
	struct app_runtime rt;
	int rc = 1;
	if (cli_open(&rt, cfg, parts))
		goto out;
	if (parts & APP_HTTP)
		log_listening(&rt);
	int sig = 0;
	sigwait(&sigs, &sig);
	log_info("%s received: %s (up to %d s)", sig == SIGINT ? "SIGINT" : "SIGTERM", draining, cfg->shutdown_timeout);
	app_shutdown(&rt);
	rc = 0;
out:
	app_close(&rt);
	if (rc == 0)
		log_info("stopped");
	return rc;
}

/* bookd serve: the API (and, unless BOOKD_WORKERS=0, background jobs). */
int cli_serve(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	struct config cfg;
	cli_load_config(&cfg);
	int rc = run_until_signal(&cfg, APP_HTTP | (cfg.workers ? APP_WORKERS : 0), "finishing requests in flight");
	config_free(&cfg);
	return rc;
}

/* bookd worker: background jobs only. */
int cli_worker(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	struct config cfg;
	cli_load_config(&cfg);
	int rc = run_until_signal(&cfg, APP_WORKERS, "letting running steps finish");
	config_free(&cfg);
	return rc;
}
