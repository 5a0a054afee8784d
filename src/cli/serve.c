#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "../core/log.h"
#include "../core/mem.h"
#include "cli.h"

static void log_listening(const struct app_runtime *rt)
{
	const struct config *cfg = rt->cfg;
	if (!strcmp(cfg->auth_mode, "api_key"))
		log_warn("BOOKD_AUTH_MODE=api_key: BOOKD_API_KEY stands in for a user (local development)");
	struct log_line l;
	if (cfg->chat_anonymous && log_begin(&l, LOG_INFO, "anonymous chat is on (BOOKD_CHAT_ANONYMOUS=false turns it off)")) {
		log_int(&l, "questions_per_minute_per_ip", cfg->chat_anon_per_minute);
		log_int(&l, "daily_tokens_per_ip", cfg->chat_anon_daily_tokens);
		log_end(&l);
	}
	if (log_begin(&l, LOG_INFO, "listening")) {
		char url[300];
		app_url(rt, url, sizeof(url));
		log_str(&l, "url", url);
		log_str(&l, "version", BOOKD_VERSION);
		log_str(&l, "database", cfg->database_url[0] ? "external" : "sqlite");
		log_int(&l, "schema_version", rt->schema_version);
		log_int(&l, "threads", cfg->threads);
		if (cfg->site_dir[0]) {
			log_str(&l, "site", cfg->site_dir);
			log_str(&l, "site_base_url", cfg->site_base_url);
		}
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

/* Replaces a string setting with a command-line value; -1 when out of memory. */
static int set_option(char **field, const char *value)
{
	char *v = xstrdup(value);
	if (!v)
		return -1;
	xfree(*field);
	*field = v;
	return 0;
}

/* bookd serve [--site DIR] [--site-base-url PATH]: the API, the site (when
 * given) and, unless BOOKD_WORKERS=0, background jobs. */
int cli_serve(int argc, char **argv)
{
	static const struct option opts[] = { { "site", required_argument, NULL, 's' },
					      { "site-base-url", required_argument, NULL, 'u' },
					      { NULL, 0, NULL, 0 } };
	const char *site = NULL, *base = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 's')
			site = optarg;
		else if (c == 'u')
			base = optarg;
		else
			return 2;
	}
	if (optind != argc || (site && !*site)) {
		fprintf(stderr, "bookd: serve takes only --site DIR and --site-base-url PATH (see bookd --help)\n");
		return 2;
	}
	struct config cfg;
	cli_load_config(&cfg);
	if ((site && set_option(&cfg.site_dir, site)) || (base && set_option(&cfg.site_base_url, base))) {
		fprintf(stderr, "bookd: out of memory\n");
		config_free(&cfg);
		return 1;
	}
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
