/*
 * bookd's command line: serve, import, migrate, config, version. Exit codes:
 * 0 success, 1 failure at run time, 2 bad usage or configuration.
 */
#include <errno.h>
#include <pthread.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "api/api.h"
#include "core/cache.h"
#include "core/config.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "http/server.h"
#include "services/auth.h"
#include "services/books.h"
#include "services/ingest.h"
#include "store/db.h"

#define BOOKD_VERSION "0.1.0"

static void usage(FILE *f)
{
	fprintf(f,
		"bookd %s — a server for AI-powered books\n\n"
		"Usage: bookd <command> [options]\n\n"
		"Commands:\n"
		"  serve                     run the HTTP API (default: http://127.0.0.1:8000)\n"
		"  import PATH [options]     import a book from a Markdown/MDX folder (Docusaurus docs/),\n"
		"                            a .md/.mdx file or a .txt file; re-importing updates in place\n"
		"      --title T  --author A  --language L  --book-id ID  --if-empty\n"
		"  migrate                   apply database migrations and print the schema version\n"
		"  config                    print the effective configuration (secrets hidden)\n"
		"  version                   print the version\n"
		"  help                      this text\n\n"
		"Configuration (environment variables, or a .env file in the working directory):\n",
		BOOKD_VERSION);
	config_print_help(f);
}

/* Loads the configuration or exits 2 naming every bad value. */
static void load_config(struct config *cfg)
{
	char msg[2048];
	if (config_load(cfg, NULL, msg, sizeof(msg))) {
		fprintf(stderr, "bookd: %s\n", msg);
		exit(2);
	}
	log_min_level = log_level_parse(cfg->log_level);
}

static int mkdir_p(const char *path)
{
	char tmp[4096];
	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return -1;
	for (char *p = tmp + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			if (mkdir(tmp, 0700) && errno != EEXIST)
				return -1;
			*p = '/';
		}
	return mkdir(tmp, 0700) && errno != EEXIST ? -1 : 0;
}

/* Opens and migrates the database named by the configuration. */
static int open_db(const struct config *cfg, db **out, int *version)
{
	char url[4096];
	struct err e = { 0 };
	if (cfg->database_url[0]) {
		snprintf(url, sizeof(url), "%s", cfg->database_url);
	} else {
		if (mkdir_p(cfg->data_dir)) {
			fprintf(stderr, "bookd: cannot create data directory %s: %s\n", cfg->data_dir, strerror(errno));
			return -1;
		}
		if (snprintf(url, sizeof(url), "sqlite:%s/bookd.db", cfg->data_dir) >= (int)sizeof(url)) {
			fprintf(stderr, "bookd: BOOKD_DATA_DIR is too long\n");
			return -1;
		}
	}
	int v = 0;
	if (db_open(out, url, cfg->db_pool, &e) || db_migrate(*out, &v, &e)) {
		fprintf(stderr, "bookd: database: %s\n", e.msg);
		db_close(*out);
		*out = NULL;
		return -1;
	}
	if (version)
		*version = v;
	return 0;
}

static int cmd_serve(void)
{
	struct config cfg;
	load_config(&cfg);
	if (auth_init()) {
		fprintf(stderr, "bookd: libsodium failed to initialise\n");
		return 1;
	}
	/* Signals go to the main thread only: block them before any thread starts. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	db *d = NULL;
	int version;
	if (open_db(&cfg, &d, &version)) {
		config_free(&cfg);
		return 1;
	}
	struct app app = { .cfg = &cfg, .db = d, .chapters = cache_new(cfg.cache_bytes), .started_ms = time_now_ms() };
	struct http_server_opts o = {
		.host = cfg.host,
		.port = cfg.port,
		.threads = cfg.threads,
		.conn_timeout = cfg.conn_timeout,
		.max_connections = cfg.max_connections,
		.max_body = cfg.max_body,
		.cors_origins = cfg.cors_origins,
		.routes = api_routes,
		.nroutes = api_nroutes,
		.app = &app,
	};
	struct http_server *srv = NULL;
	struct err e = { 0 };
	if (!app.chapters || http_server_start(&srv, &o, &e)) {
		fprintf(stderr, "bookd: %s\n", app.chapters ? e.msg : "out of memory");
		cache_free(app.chapters);
		db_close(d);
		config_free(&cfg);
		return 1;
	}
	if (!cfg.api_key[0])
		log_info("BOOKD_API_KEY is not set: API writes are refused; use `bookd import` to add books");
	struct log_line l;
	if (log_begin(&l, LOG_INFO, "listening")) {
		char url[300];
		snprintf(url, sizeof(url), "http://%s:%d", strchr(cfg.host, ':') ? "[::1]" : cfg.host, http_server_port(srv));
		log_str(&l, "url", url);
		log_str(&l, "version", BOOKD_VERSION);
		log_str(&l, "database", cfg.database_url[0] ? "external" : "sqlite");
		log_int(&l, "schema_version", version);
		log_int(&l, "threads", cfg.threads);
		log_end(&l);
	}

	int sig = 0;
	sigwait(&sigs, &sig);
	log_info("%s received: finishing requests in flight (up to %d s)", sig == SIGINT ? "SIGINT" : "SIGTERM",
		 cfg.shutdown_timeout);
	http_server_quiesce(srv);
	long left = http_server_drain(srv, (long)cfg.shutdown_timeout * 1000);
	if (left)
		log_warn("shutdown timeout: %ld requests still in flight are cut", left);
	http_server_stop(srv);
	cache_free(app.chapters);
	db_close(d);
	log_info("stopped");
	config_free(&cfg);
	return 0;
}

static void progress_bar(void *ctx, int done, int total)
{
	const char *title = ctx;
	int width = 30, fill = total ? done * width / total : width;
	fprintf(stderr, "\r%.40s [%.*s%*s] %d/%d chapters", title, fill, "##############################",
		width - fill, "", done, total);
	if (done == total)
		fputc('\n', stderr);
}

static int count_books(void *ctx, const db_row *r)
{
	UNUSED(r);
	*(int *)ctx = 1;
	return 1;
}

static int cmd_import(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "title", required_argument, NULL, 't' },   { "author", required_argument, NULL, 'a' },
		{ "language", required_argument, NULL, 'l' }, { "book-id", required_argument, NULL, 'b' },
		{ "if-empty", no_argument, NULL, 'e' },       { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ingest_opts io = { 0 };
	int if_empty = 0, c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "t:a:l:b:eh", opts, NULL)) != -1) {
		switch (c) {
		case 't': io.title = optarg; break;
		case 'a': io.author = optarg; break;
		case 'l': io.language = optarg; break;
		case 'b': io.book_id = optarg; break;
		case 'e': if_empty = 1; break;
		case 'h': usage(stdout); return 0;
		default: return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "bookd: import takes one PATH (see bookd --help)\n");
		return 2;
	}
	const char *path = argv[optind];
	struct config cfg;
	load_config(&cfg);
	db *d = NULL;
	if (open_db(&cfg, &d, NULL)) {
		config_free(&cfg);
		return 1;
	}
	struct err e = { 0 };
	int rc = 0;
	if (if_empty) {
		int any = 0;
		db_conn *conn;
		if (db_acquire(d, &conn, &e) == 0) {
			if (db_query(conn, "SELECT 1 FROM books LIMIT 1", NULL, 0, count_books, &any, NULL, &e) < 0)
				any = 0;
			db_release(conn);
		}
		if (any) {
			db_close(d);
			config_free(&cfg);
			return 0;
		}
	}
	if (isatty(STDERR_FILENO)) {
		io.progress = progress_bar;
		io.progress_ctx = (void *)path;
	}
	struct ingest_result r;
	if (ingest_path(d, path, &io, &r, &e)) {
		fprintf(stderr, "bookd: %s\n", e.msg);
		rc = 1;
	} else {
		json_t *o = json_pack("{s:s, s:i, s:s, s:b, s:i, s:i, s:i, s:i}", "book_id", r.book_id, "chapters",
				      r.chapters, "title", r.title, "created", r.created, "added", r.added,
				      "updated", r.updated, "unchanged", r.unchanged, "removed", r.removed);
		char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
		if (s)
			printf("%s\n", s);
		free(s);
		json_decref(o);
	}
	db_close(d);
	config_free(&cfg);
	return rc;
}

static int cmd_migrate(void)
{
	struct config cfg;
	load_config(&cfg);
	db *d = NULL;
	int version = 0;
	int rc = open_db(&cfg, &d, &version) ? 1 : 0;
	if (!rc)
		printf("schema version %d\n", version);
	db_close(d);
	config_free(&cfg);
	return rc;
}

static int cmd_config(void)
{
	struct config cfg;
	load_config(&cfg);
	config_print(&cfg, stdout);
	config_free(&cfg);
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "help";
	if (!strcmp(cmd, "serve"))
		return cmd_serve();
	if (!strcmp(cmd, "import"))
		return cmd_import(argc - 1, argv + 1);
	if (!strcmp(cmd, "migrate"))
		return cmd_migrate();
	if (!strcmp(cmd, "config"))
		return cmd_config();
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		printf("bookd %s\n", BOOKD_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "bookd: unknown command \"%s\" (see bookd --help)\n", cmd);
	return 2;
}
