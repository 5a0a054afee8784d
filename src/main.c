/*
 * bookd's command line: serve, import, migrate, config, version. Exit codes:
 * 0 success, 1 failure at run time, 2 bad usage or configuration.
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
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
#include "core/utf8.h"
#include "http/server.h"
#include "services/chat.h"
#include "services/jobs.h"
#include "services/ratelimit.h"
#include "services/search.h"
#include "services/users.h"
#include "services/books.h"
#include "services/ingest.h"
#include "store/copy.h"
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
		"  worker                    run background jobs only (no HTTP), until SIGTERM\n"
		"  search QUESTION [--book ID] [--limit N] [--mode keyword|vector|hybrid]\n"
		"  reindex [--book ID]       rebuild the search index (chunks, and vectors with a provider)\n"
		"  migrate                   apply database migrations and print the schema version\n"
		"  copy-data --from URL --to URL   copy everything into an empty database\n"
		"                            (e.g. --from sqlite:bookd-data/bookd.db --to postgres://…)\n"
		"  user add --email E [--role reader|editor|admin]   password from the terminal or stdin\n"
		"  user list | user set-role --email E --role R\n"
		"  apikey create --user E [--scope read|write|admin] [--name N]   prints the key once\n"
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

/* The HS256 secret: BOOKD_JWT_SECRET, or one generated once into the data
 * directory (mode 0600). Several nodes must share BOOKD_JWT_SECRET. */
static int read_secret_file(const char *path, char *out, size_t cap)
{
	/* O_NOFOLLOW: a symlink planted in the data dir is refused, not followed. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 1 : -1;
	ssize_t n = read(fd, out, cap - 1);
	close(fd);
	if (n < 0)
		return -1;
	out[n] = '\0';
	out[strcspn(out, "\r\n")] = '\0';
	return strlen(out) >= 32 ? 0 : -1;
}

static int jwt_secret(const struct config *cfg, char *out, size_t cap)
{
	if (cfg->jwt_secret[0]) {
		snprintf(out, cap, "%s", cfg->jwt_secret);
		return 0;
	}
	char path[4096];
	if (snprintf(path, sizeof(path), "%s/jwt.secret", cfg->data_dir) >= (int)sizeof(path) || mkdir_p(cfg->data_dir))
		return -1;
	int rc = read_secret_file(path, out, cap);
	if (rc <= 0)
		return rc;
	unsigned char raw[48];
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2base64(out, cap, raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) /* another process made it first: use theirs, once */
		return errno == EEXIST && read_secret_file(path, out, cap) == 0 ? 0 : -1;
	size_t len = strlen(out);
	int ok = write(fd, out, len) == (ssize_t)len && fsync(fd) == 0;
	close(fd);
	if (!ok)
		return -1;
	log_warn("BOOKD_JWT_SECRET is not set: generated one into %s (set BOOKD_JWT_SECRET when running several nodes)",
		 path);
	return 0;
}

static int open_users(const struct config *cfg, db *d, char *secret, size_t cap, struct users **out)
{
	if (jwt_secret(cfg, secret, cap)) {
		fprintf(stderr, "bookd: cannot read or create %s/jwt.secret\n", cfg->data_dir);
		return -1;
	}
	struct users_config uc = {
		.master_key = cfg->api_key,
		.secret = (const unsigned char *)secret,
		.secret_len = strlen(secret),
		.previous = cfg->jwt_secret_previous[0] ? (const unsigned char *)cfg->jwt_secret_previous : NULL,
		.previous_len = strlen(cfg->jwt_secret_previous),
		.access_ttl = cfg->jwt_ttl,
		.refresh_ttl = cfg->refresh_ttl,
		.jwks_url = cfg->jwks_url,
		.issuer = cfg->jwt_issuer,
		.audience = cfg->jwt_audience,
		.login_burst = cfg->login_burst,
		.login_per_minute = cfg->login_per_minute,
	};
	struct err e = { 0 };
	if (users_new(out, d, &uc, &e)) {
		fprintf(stderr, "bookd: %s\n", e.msg);
		return -1;
	}
	return 0;
}

static int open_search(const struct config *cfg, db *d, struct search **out)
{
	struct embed_config ec = {
		.url = cfg->embed_url,
		.model = cfg->embed_model,
		.key = cfg->embed_key,
		.dim = cfg->embed_dim,
		.batch = cfg->embed_batch,
		.concurrency = cfg->embed_concurrency,
		.timeout_s = cfg->embed_timeout,
		.max_retries = 3,
	};
	struct search_config sc = { .chunk_tokens = cfg->chunk_tokens, .embed = &ec, .sync_ms = 1000 };
	struct err e = { 0 };
	if (search_new(out, d, &sc, &e)) {
		fprintf(stderr, "bookd: search: %s\n", e.msg);
		return -1;
	}
	return 0;
}

static int open_jobs(const struct config *cfg, db *d, int workers, struct search *search, struct jobs **out)
{
	char dir[4096];
	if (snprintf(dir, sizeof(dir), "%s/uploads", cfg->data_dir) >= (int)sizeof(dir) || mkdir_p(dir)) {
		fprintf(stderr, "bookd: cannot create %s/uploads\n", cfg->data_dir);
		return -1;
	}
	struct jobs_config jc = {
		.workers = workers,
		.lease_ms = cfg->job_lease * 1000,
		.backoff_ms = cfg->job_backoff_ms,
		.poll_ms = 500,
		.data_dir = cfg->data_dir,
		.test_handlers = cfg->test_jobs,
		.search = search,
	};
	struct err e = { 0 };
	if (jobs_new(out, d, &jc, &e) || jobs_start(*out, &e)) {
		fprintf(stderr, "bookd: jobs: %s\n", e.msg);
		return -1;
	}
	return 0;
}

static void block_signals(sigset_t *sigs)
{
	sigemptyset(sigs);
	sigaddset(sigs, SIGTERM);
	sigaddset(sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static int cmd_worker(void)
{
	struct config cfg;
	load_config(&cfg);
	sigset_t sigs;
	block_signals(&sigs);
	db *d = NULL;
	struct jobs *jobs = NULL;
	struct search *search = NULL;
	if (open_db(&cfg, &d, NULL) || open_search(&cfg, d, &search) ||
	    open_jobs(&cfg, d, cfg.worker_max_jobs, search, &jobs)) {
		jobs_free(jobs);
		search_free(search);
		db_close(d);
		config_free(&cfg);
		return 1;
	}
	int sig = 0;
	sigwait(&sigs, &sig);
	log_info("%s received: letting running steps finish (up to %d s)", sig == SIGINT ? "SIGINT" : "SIGTERM",
		 cfg.shutdown_timeout);
	jobs_stop(jobs, cfg.shutdown_timeout * 1000);
	jobs_free(jobs);
	search_free(search);
	db_close(d);
	log_info("stopped");
	config_free(&cfg);
	return 0;
}

static int cmd_serve(void)
{
	struct config cfg;
	load_config(&cfg);
	/* The model chain is configuration too: refuse it before anything starts. */
	struct llm_chain *llm = NULL;
	struct err e = { 0 };
	if (llm_chain_from_env(&llm, &e)) {
		fprintf(stderr, "bookd: invalid configuration: %s\n", e.msg);
		config_free(&cfg);
		return 2;
	}
	/* Signals go to the main thread only: block them before any thread starts. */
	sigset_t sigs;
	block_signals(&sigs);

	int rc = 1, version = 0;
	char secret[256] = "", upload_dir[4200];
	db *d = NULL;
	struct users *users = NULL;
	struct search *search = NULL;
	struct jobs *jobs = NULL;
	struct chat *chat = NULL;
	struct http_server *srv = NULL;
	struct app app = { .cfg = &cfg, .started_ms = time_now_ms() };
	struct chat_config ccfg = { .history_messages = 10,
				    .history_tokens = 2000,
				    .top_k = cfg.chat_top_k,
				    .deadline_s = cfg.chat_deadline,
				    .max_tokens = cfg.chat_max_tokens,
				    .daily_tokens = cfg.chat_daily_tokens };
	if (open_db(&cfg, &d, &version) || open_users(&cfg, d, secret, sizeof(secret), &users) ||
	    open_search(&cfg, d, &search))
		goto out;
	if ((cfg.cache_notified && db_watch_changes(d, &e)) || search_start_sync(search, &e) || chat_new(&chat, d, search, llm, &ccfg, &e)) {
		fprintf(stderr, "bookd: %s\n", e.msg);
		goto out;
	}
	if (open_jobs(&cfg, d, cfg.workers ? cfg.worker_max_jobs : 0, search, &jobs))
		goto out;
	app.db = d;
	app.users = users;
	app.search = search;
	app.jobs = jobs;
	app.chat = chat;
	app.chapters = cache_new(cfg.cache_bytes);
	app.hasher = executor_new(cfg.hash_threads, 256, "bookd-hash");
	app.io = executor_new(4, 256, "bookd-io");
	app.chat_exec = executor_new(cfg.chat_threads, 1024, "bookd-chat");
	app.chat_limit = ratelimit_new(cfg.chat_anon_per_minute * 2.0, cfg.chat_anon_per_minute, 8192);
	if (!app.chapters || !app.hasher || !app.io || !app.chat_exec || !app.chat_limit) {
		fprintf(stderr, "bookd: out of memory\n");
		goto out;
	}
	snprintf(upload_dir, sizeof(upload_dir), "%s/uploads", cfg.data_dir);
	struct http_server_opts o = {
		.host = cfg.host,
		.port = cfg.port,
		.threads = cfg.threads,
		.conn_timeout = cfg.conn_timeout,
		.max_connections = cfg.max_connections,
		.max_body = cfg.max_body,
		.cors_origins = cfg.cors_origins,
		.upload_dir = upload_dir,
		.max_upload = cfg.max_upload,
		.routes = api_routes,
		.nroutes = api_nroutes,
		.app = &app,
	};
	if (http_server_start(&srv, &o, &e)) {
		fprintf(stderr, "bookd: %s\n", e.msg);
		goto out;
	}
	if (!strcmp(cfg.auth_mode, "api_key"))
		log_warn("BOOKD_AUTH_MODE=api_key: BOOKD_API_KEY stands in for a user (local development)");
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
	int64_t t0 = time_mono_us();
	jobs_stop(jobs, cfg.shutdown_timeout * 1000);
	long spent_ms = (long)((time_mono_us() - t0) / 1000);
	long left = http_server_drain(srv, MAX(0L, (long)cfg.shutdown_timeout * 1000 - spent_ms));
	if (left)
		log_warn("shutdown timeout: %ld requests still in flight are cut", left);
	rc = 0;
out:
	/* In reverse order of creation; every one of these takes NULL. */
	http_server_stop(srv);
	jobs_stop(jobs, cfg.shutdown_timeout * 1000); /* a no-op when already stopped */
	ratelimit_free(app.chat_limit);
	executor_free(app.chat_exec);
	executor_free(app.io);
	executor_free(app.hasher);
	cache_free(app.chapters);
	jobs_free(jobs);
	chat_free(chat);
	search_free(search);
	users_free(users);
	sodium_memzero(secret, sizeof(secret));
	db_close(d);
	llm_chain_free(llm);
	if (rc == 0)
		log_info("stopped");
	config_free(&cfg);
	return rc;
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
		if (books_any(d, &any, &e)) {
			fprintf(stderr, "bookd: database: %s\n", e.msg);
			db_close(d);
			config_free(&cfg);
			return 1;
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
		/* Searchable once a worker (bookd serve or bookd worker) has indexed it. */
		struct jobs *jobs = NULL;
		struct arena ja;
		arena_init(&ja, 4096);
		json_t *payload = json_pack("{s:s}", "book_id", r.book_id);
		struct job jb;
		int existing;
		struct err je = { 0 };
		if (open_jobs(&cfg, d, 0, NULL, &jobs) ||
		    jobs_submit(jobs, &ja, NULL, "book.index", payload, NULL, &jb, &existing, &je))
			fprintf(stderr, "bookd: imported, but not queued for indexing: %s\n", je.msg);
		json_decref(payload);
		jobs_free(jobs);
		arena_free(&ja);
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

/* A password from the terminal (no echo) or the first line of stdin. */
static int read_password(char *out, size_t cap)
{
	if (isatty(STDIN_FILENO)) {
		char *p = getpass("Password: ");
		if (!p)
			return -1;
		snprintf(out, cap, "%s", p);
		sodium_memzero(p, strlen(p));
		return 0;
	}
	if (!fgets(out, (int)cap, stdin))
		return -1;
	out[strcspn(out, "\r\n")] = '\0';
	return 0;
}

static int cmd_user_or_key(int argc, char **argv, int is_key)
{
	static const struct option opts[] = {
		{ "email", required_argument, NULL, 'e' }, { "user", required_argument, NULL, 'e' },
		{ "role", required_argument, NULL, 'r' },  { "scope", required_argument, NULL, 's' },
		{ "name", required_argument, NULL, 'n' },  { NULL, 0, NULL, 0 },
	};
	const char *sub = argc > 1 ? argv[1] : "";
	const char *email_arg = NULL, *role_arg = NULL, *name = "cli";
	const char *scope_names[4];
	int nscopes = 0, c;
	optind = 2;
	while ((c = getopt_long(argc, argv, "e:r:s:n:", opts, NULL)) != -1) {
		switch (c) {
		case 'e': email_arg = optarg; break;
		case 'r': role_arg = optarg; break;
		case 's': if (nscopes < 4) scope_names[nscopes++] = optarg; break;
		case 'n': name = optarg; break;
		default: return 2;
		}
	}
	int want_email = strcmp(sub, "list") != 0;
	if (is_key ? strcmp(sub, "create") : (strcmp(sub, "add") && strcmp(sub, "list") && strcmp(sub, "set-role"))) {
		fprintf(stderr, "bookd: unknown %s command \"%s\" (see bookd --help)\n", is_key ? "apikey" : "user", sub);
		return 2;
	}
	char email[300] = "";
	struct err e = { 0 };
	if (want_email) {
		if (!email_arg) {
			fprintf(stderr, "bookd: --%s is required\n", is_key ? "user" : "email");
			return 2;
		}
		snprintf(email, sizeof(email), "%s", email_arg);
		if (users_normalize_email(email, sizeof(email), &e)) {
			fprintf(stderr, "bookd: %s: %s\n", email_arg, e.msg);
			return 2;
		}
	}
	enum role role = role_arg ? role_parse(role_arg) : ROLE_READER;
	if (!role) {
		fprintf(stderr, "bookd: --role must be reader, editor or admin\n");
		return 2;
	}
	unsigned scopes = nscopes ? scopes_parse_list(scope_names, nscopes) : SCOPE_READ;
	if (!scopes) {
		fprintf(stderr, "bookd: --scope must be read, write or admin\n");
		return 2;
	}
	struct config cfg;
	load_config(&cfg);
	db *d = NULL;
	char secret[256];
	struct users *u = NULL;
	int rc = 1;
	struct arena a;
	arena_init(&a, 4096);
	if (open_db(&cfg, &d, NULL) || open_users(&cfg, d, secret, sizeof(secret), &u))
		goto out;
	if (is_key) {
		/* write and admin imply read */
		struct api_key k;
		char key[80];
		if (users_key_create_for(u, &a, email, name, scopes | SCOPE_READ, &k, key, &e) == 0) {
			printf("%s\n", key);
			fprintf(stderr, "API key %s (%s) for %s: shown once, store it now\n", k.prefix, k.scopes, email);
			rc = 0;
		}
	} else if (!strcmp(sub, "add")) {
		char pw[1100];
		struct user usr;
		if (read_password(pw, sizeof(pw))) {
			err_set(&e, ERR_INVALID, "no password given");
		} else if (users_add(u, &a, email, pw, role, &usr, &e) == 0) {
			printf("{\"id\":\"%s\",\"email\":\"%s\",\"role\":\"%s\"}\n", usr.id, usr.email, usr.role);
			rc = 0;
		}
		sodium_memzero(pw, sizeof(pw));
	} else if (!strcmp(sub, "list")) {
		struct user *items;
		int n;
		if (users_list(u, &a, &items, &n, &e) == 0) {
			for (int i = 0; i < n; i++)
				printf("%s  %-8s  %s\n", items[i].id, items[i].role, items[i].email);
			rc = 0;
		}
	} else if (!role_arg) {
		err_set(&e, ERR_INVALID, "--role is required");
	} else if (users_set_role(u, email, role, &e) == 0) {
		printf("%s is now %s\n", email, role_name(role));
		rc = 0;
	}
	if (rc && e.msg[0])
		fprintf(stderr, "bookd: %s\n", e.msg);
out:
	arena_free(&a);
	users_free(u);
	db_close(d);
	config_free(&cfg);
	return rc;
}

static int cmd_copy_data(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "from", required_argument, NULL, 'f' }, { "to", required_argument, NULL, 't' }, { NULL, 0, NULL, 0 },
	};
	const char *from = NULL, *to = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "f:t:", opts, NULL)) != -1) {
		if (c == 'f')
			from = optarg;
		else if (c == 't')
			to = optarg;
		else
			return 2;
	}
	if (!from || !to || optind != argc) {
		fprintf(stderr, "bookd: copy-data needs --from URL and --to URL\n");
		return 2;
	}
	struct config cfg;
	load_config(&cfg);
	db *src = NULL, *dst = NULL;
	struct err e = { 0 };
	int v, rc = 1;
	struct copy_table_count counts[COPY_MAX_TABLES];
	int n = 0;
	if (strncmp(from, "sqlite:", 7) == 0 && access(from + 7, R_OK) != 0) {
		fprintf(stderr, "bookd: %s: %s\n", from + 7, strerror(errno));
		goto out;
	}
	if (db_open(&src, from, 2, &e) || db_migrate(src, &v, &e)) {
		fprintf(stderr, "bookd: --from %s: %s\n", strncmp(from, "sqlite:", 7) ? "database" : from, e.msg);
		goto out;
	}
	if (db_open(&dst, to, 2, &e) || db_migrate(dst, &v, &e)) {
		fprintf(stderr, "bookd: --to database: %s\n", e.msg);
		goto out;
	}
	if (db_copy(src, dst, counts, &n, &e)) {
		fprintf(stderr, "bookd: copy-data: %s\n", e.msg);
		goto out;
	}
	printf("{\"copied\":{");
	for (int i = 0; i < n; i++)
		printf("%s\"%s\":%lld", i ? "," : "", counts[i].table, counts[i].rows);
	printf("},\"schema_version\":%d}\n", v);
	rc = 0;
out:
	db_close(src);
	db_close(dst);
	config_free(&cfg);
	return rc;
}

static void index_bar(void *ctx, int done, int total)
{
	progress_bar(ctx, done, total);
}

/* bookd reindex [--book ID]: chunks (and embeds) here, with progress. */
static int cmd_reindex(int argc, char **argv)
{
	static const struct option opts[] = { { "book", required_argument, NULL, 'b' }, { NULL, 0, NULL, 0 } };
	const char *book = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "b:", opts, NULL)) != -1) {
		if (c != 'b')
			return 2;
		book = optarg;
	}
	struct config cfg;
	load_config(&cfg);
	db *d = NULL;
	struct search *s = NULL;
	struct index_stats st = { 0 };
	struct err e = { 0 };
	int rc = 1;
	int tty = isatty(STDERR_FILENO);
	if (open_db(&cfg, &d, NULL) || open_search(&cfg, d, &s))
		goto out;
	if (search_index_book(s, book, tty ? index_bar : NULL, (void *)"chunking", &st, &e) ||
	    search_embed_pending(s, book, tty ? index_bar : NULL, (void *)"embedding", NULL, &st, &e)) {
		fprintf(stderr, "bookd: reindex: %s\n", e.msg);
		goto out;
	}
	printf("{\"chapters\":%d,\"chunks\":%d,\"added\":%d,\"moved\":%d,\"removed\":%d,\"unchanged\":%d,"
	       "\"embedded\":%d}\n",
	       st.chapters, st.chunks, st.added, st.moved, st.removed, st.unchanged, st.embedded);
	rc = 0;
out:
	search_free(s);
	db_close(d);
	config_free(&cfg);
	return rc;
}

/* bookd search "question" [--book ID] [--limit N] [--mode M]: one JSON line per hit. */
static int cmd_search(int argc, char **argv)
{
	static const struct option opts[] = { { "book", required_argument, NULL, 'b' },
					      { "limit", required_argument, NULL, 'l' },
					      { "mode", required_argument, NULL, 'm' },
					      { NULL, 0, NULL, 0 } };
	const char *book = NULL, *mode_arg = NULL;
	long limit = 5;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "b:l:m:", opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'b': book = optarg; break;
		case 'm': mode_arg = optarg; break;
		case 'l':
			limit = strtol(optarg, &end, 10);
			if (*end || limit < 1 || limit > 50) {
				fprintf(stderr, "bookd: --limit must be 1 to 50\n");
				return 2;
			}
			break;
		default: return 2;
		}
	}
	if (optind != argc - 1 || !*argv[optind]) {
		fprintf(stderr, "bookd: search takes one question (see bookd --help)\n");
		return 2;
	}
	enum search_mode mode = !mode_arg ? SEARCH_DEFAULT
				: !strcmp(mode_arg, "keyword") ? SEARCH_KEYWORD
				: !strcmp(mode_arg, "vector") ? SEARCH_VECTOR
				: !strcmp(mode_arg, "hybrid") ? SEARCH_HYBRID
							       : -1;
	if ((int)mode < 0) {
		fprintf(stderr, "bookd: --mode must be keyword, vector or hybrid\n");
		return 2;
	}
	struct config cfg;
	load_config(&cfg);
	db *d = NULL;
	struct search *s = NULL;
	struct err e = { 0 };
	struct arena a;
	arena_init(&a, 64 * 1024);
	int rc = 1;
	struct search_hit *hits;
	int n;
	if (open_db(&cfg, &d, NULL) || open_search(&cfg, d, &s) || search_start_sync(s, &e))
		goto out;
	if (search_query(s, &a, argv[optind], book, NULL, (int)limit, mode, &hits, &n, &e)) {
		fprintf(stderr, "bookd: search: %s\n", e.msg);
		goto out;
	}
	for (int i = 0; i < n; i++) {
		const struct chunk_row *r = &hits[i].row;
		json_t *o = json_pack("{s:f, s:s, s:I, s:s, s:o, s:o, s:s, s:s}", "score", hits[i].score, "chapter_title",
				      r->chapter_title ? r->chapter_title : "", "chapter_number",
				      (json_int_t)r->chapter_number, "heading", r->heading ? r->heading : "", "anchor",
				      r->anchor ? json_string(r->anchor) : json_null(), "text",
				      json_stringn(r->text, utf8_prefix(r->text, strlen(r->text), 300)), "chunk_id", r->id,
				      "chapter_id", r->chapter_id);
		char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
		if (line)
			printf("%s\n", line);
		free(line);
		json_decref(o);
	}
	rc = 0;
out:
	search_free(s);
	db_close(d);
	arena_free(&a);
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
	if (sodium_init() < 0) {
		fprintf(stderr, "bookd: libsodium failed to initialise\n");
		return 1;
	}
	if (!strcmp(cmd, "serve"))
		return cmd_serve();
	if (!strcmp(cmd, "import"))
		return cmd_import(argc - 1, argv + 1);
	if (!strcmp(cmd, "user"))
		return cmd_user_or_key(argc - 1, argv + 1, 0);
	if (!strcmp(cmd, "apikey"))
		return cmd_user_or_key(argc - 1, argv + 1, 1);
	if (!strcmp(cmd, "worker"))
		return cmd_worker();
	if (!strcmp(cmd, "search"))
		return cmd_search(argc - 1, argv + 1);
	if (!strcmp(cmd, "reindex"))
		return cmd_reindex(argc - 1, argv + 1);
	if (!strcmp(cmd, "copy-data"))
		return cmd_copy_data(argc - 1, argv + 1);
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
