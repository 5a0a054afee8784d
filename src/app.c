#include "app.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cache.h"
#include "core/executor.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "http/server.h"
#include "http/site.h"
#include "providers/blob.h"
#include "providers/metadata.h"
#include "providers/tts.h"
#include "services/chat.h"
#include "services/jobs.h"
#include "services/ratelimit.h"
#include "services/search.h"
#include "services/transform.h"
#include "services/users.h"

/* After the cancel signal, how long cancelled work has to be answered. */
#define ANSWER_GRACE_MS 5000
#define SECRET_MAX 4096

/* A formatted string on the heap (xfree it), NULL when out of memory. */
static char *strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *strf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	char *s = n >= 0 ? xmalloc((size_t)n + 1) : NULL;
	if (s) {
		va_start(ap, fmt);
		vsnprintf(s, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	return s;
}

int app_mkdir_private(const char *path)
{
	char tmp[4096];
	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (char *p = tmp + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			if (mkdir(tmp, 0700) && errno != EEXIST)
				return -1;
			*p = '/';
		}
	if (mkdir(tmp, 0700) == 0)
		return 0;
	if (errno != EEXIST)
		return -1;
	/* An existing directory of ours (an older install) is made private too;
	 * one of another owner is left as it is. */
	struct stat st;
	if (stat(tmp, &st) == 0 && st.st_uid == geteuid() && (st.st_mode & 077) && chmod(tmp, st.st_mode & 07700))
		log_warn("cannot make %s private: %s", tmp, strerror(errno));
	return 0;
}

/* ---- the parts, in the order they are built ---------------------------------- */

static int open_db(struct app_runtime *rt, struct err *e)
{
	const struct config *cfg = rt->cfg;
	char *url;
	if (cfg->database_url[0]) {
		url = xstrdup(cfg->database_url);
	} else {
		if (app_mkdir_private(cfg->data_dir))
			return err_set(e, ERR_IO, "cannot create data directory %s: %s", cfg->data_dir, strerror(errno));
		struct stat st;
		if (stat(cfg->data_dir, &st) == 0 && (st.st_mode & 077))
			log_warn("data directory %s is open to other users (mode %03o) and not ours to change",
				 cfg->data_dir, (unsigned)(st.st_mode & 0777));
		url = strf("sqlite:%s/bookd.db", cfg->data_dir);
	}
	if (!url)
		return err_set(e, ERR_INTERNAL, "out of memory");
	int rc = db_open(&rt->db, url, cfg->db_pool, e);
	if (rc == 0)
		rc = db_migrate(rt->db, &rt->schema_version, e);
	xfree(url);
	return rc;
}

/* BOOKD_JWT_SECRET, or one generated once into the data directory (0600).
 * Several nodes must share BOOKD_JWT_SECRET. */
static int read_secret_file(const char *path, char **out)
{
	/* O_NOFOLLOW: a symlink planted in the data dir is refused, not followed. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 1 : -1;
	char *buf = xmalloc(SECRET_MAX + 1);
	ssize_t n = buf ? read(fd, buf, SECRET_MAX + 1) : -1;
	close(fd);
	if (n < 0 || n > SECRET_MAX) { /* too long is refused, never cut */
		xfree(buf);
		return -1;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (strlen(buf) < 32) {
		xfree(buf);
		return -1;
	}
	*out = buf;
	return 0;
}

static int jwt_secret(struct app_runtime *rt, struct err *e)
{
	const struct config *cfg = rt->cfg;
	if (cfg->jwt_secret[0]) {
		rt->jwt_secret = xstrdup(cfg->jwt_secret);
		return rt->jwt_secret ? 0 : err_set(e, ERR_INTERNAL, "out of memory");
	}
	char *path = strf("%s/jwt.secret", cfg->data_dir);
	int rc = -1;
	if (!path || app_mkdir_private(cfg->data_dir))
		goto out;
	rc = read_secret_file(path, &rt->jwt_secret);
	if (rc <= 0)
		goto out;
	unsigned char raw[48];
	char text[80];
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2base64(text, sizeof(text), raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof(raw));
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) { /* another process made it first: use theirs, once */
		rc = errno == EEXIST ? read_secret_file(path, &rt->jwt_secret) : -1;
		goto out;
	}
	size_t len = strlen(text);
	int ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
	close(fd);
	rc = ok && (rt->jwt_secret = xstrdup(text)) ? 0 : -1;
	sodium_memzero(text, sizeof(text));
	if (rc == 0)
		log_warn("BOOKD_JWT_SECRET is not set: generated one into %s (set BOOKD_JWT_SECRET when running "
			 "several nodes)", path);
out:
	if (rc)
		err_set(e, ERR_IO, "cannot read or create %s/jwt.secret (at least 32 characters, at most %d)",
			cfg->data_dir, SECRET_MAX);
	xfree(path);
	return rc ? e->code : 0;
}

static int open_users(struct app_runtime *rt, struct err *e)
{
	const struct config *cfg = rt->cfg;
	int rc = jwt_secret(rt, e);
	if (rc)
		return rc;
	struct users_config uc = {
		.master_key = cfg->api_key,
		.secret = (const unsigned char *)rt->jwt_secret,
		.secret_len = strlen(rt->jwt_secret),
		.previous = cfg->jwt_secret_previous[0] ? (const unsigned char *)cfg->jwt_secret_previous : NULL,
		.previous_len = strlen(cfg->jwt_secret_previous),
		.access_ttl = cfg->jwt_ttl,
		.refresh_ttl = cfg->refresh_ttl,
		.jwks_url = cfg->jwks_url,
		.issuer = cfg->jwt_issuer,
		.audience = cfg->jwt_audience,
		.better_auth_url = cfg->better_auth_url,
		.better_auth_cache_seconds = cfg->better_auth_cache_seconds,
		.better_auth_timeout_ms = cfg->better_auth_timeout_ms,
		.trust_user_header = cfg->trust_user_header,
		.login_burst = cfg->login_burst,
		.login_per_minute = cfg->login_per_minute,
		.register_burst = cfg->register_burst,
		.register_per_minute = cfg->register_per_minute,
		.register_concurrency = cfg->register_concurrency,
		.stop = &rt->cancel,
	};
	return users_new(&rt->users, rt->db, &uc, e);
}

static int open_search(struct app_runtime *rt, struct err *e)
{
	const struct config *cfg = rt->cfg;
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
	struct search_config sc = { .chunk_tokens = cfg->chunk_tokens, .embed = &ec, .sync_ms = 1000, .stop = &rt->cancel };
	return search_new(&rt->search, rt->db, &sc, e);
}

static int open_chat(struct app_runtime *rt, struct err *e)
{
	const struct config *cfg = rt->cfg;
	int rc = llm_chain_new(&rt->llm, cfg, &rt->cancel, e);
	if (rc)
		return rc;
	struct chat_config cc = { .history_messages = 10,
				  .history_tokens = 2000,
				  .top_k = cfg->chat_top_k,
				  .deadline_s = cfg->chat_deadline,
				  .max_tokens = cfg->chat_max_tokens,
				  .daily_tokens = cfg->chat_daily_tokens,
				  .anon_daily_tokens = cfg->chat_anon_daily_tokens };
	return chat_new(&rt->chat, rt->db, rt->search, rt->llm, &cc, e);
}

/* Storage, speech and metadata, for the pipeline's job and the audio
 * routes; the pipeline also asks the language models, built here when the
 * chat did not build them. */
static int open_media(struct app_runtime *rt, struct err *e)
{
	const struct config *cfg = rt->cfg;
	int rc = 0;
	char *dir = strf("%s/files", cfg->data_dir);
	if (!dir)
		return err_set(e, ERR_INTERNAL, "out of memory");
	struct blob_config bc = { .kind = cfg->storage,
				  .dir = dir,
				  .endpoint = cfg->s3_endpoint,
				  .bucket = cfg->s3_bucket,
				  .region = cfg->s3_region,
				  .access_key = cfg->s3_access_key,
				  .secret_key = cfg->s3_secret_key,
				  .path_style = cfg->s3_path_style,
				  .timeout_s = 60 };
	struct tts_config tc = { .kind = cfg->tts,
				 .url = cfg->tts_url,
				 .key = cfg->tts_key,
				 .model = cfg->tts_model,
				 .bitrate_kbps = cfg->tts_bitrate,
				 .timeout_s = 120 };
	struct metadata_config mc = { .openlibrary_url = cfg->openlibrary_url,
				      .googlebooks_url = cfg->google_books_url,
				      .googlebooks_key = cfg->google_books_key,
				      .timeout_s = cfg->metadata_timeout,
				      .tries = cfg->metadata_tries };
	if (!strcmp(cfg->storage, "local") && app_mkdir_private(dir))
		rc = err_set(e, ERR_IO, "cannot create %s: %s", dir, strerror(errno));
	if (rc == 0)
		rc = blob_open(&rt->blob, &bc, &rt->cancel, e);
	if (rc == 0)
		rc = tts_open(&rt->tts, &tc, &rt->cancel, e);
	if (rc == 0)
		rc = metadata_open(&rt->metadata, &mc, &rt->cancel, e);
	if (rc == 0 && !rt->llm)
		rc = llm_chain_new(&rt->llm, cfg, &rt->cancel, e);
	xfree(dir);
	return rc;
}

static int open_jobs(struct app_runtime *rt, int workers, struct err *e)
{
	const struct config *cfg = rt->cfg;
	rt->upload_dir = strf("%s/uploads", cfg->data_dir);
	if (!rt->upload_dir)
		return err_set(e, ERR_INTERNAL, "out of memory");
	if (app_mkdir_private(rt->upload_dir))
		return err_set(e, ERR_IO, "cannot create %s: %s", rt->upload_dir, strerror(errno));
	struct jobs_config jc = {
		.workers = workers,
		.lease_ms = cfg->job_lease * 1000,
		.backoff_ms = cfg->job_backoff_ms,
		.poll_ms = 500,
		.data_dir = cfg->data_dir,
		.test_handlers = cfg->test_jobs,
		.search = rt->search,
		.blob = rt->blob,
		.tts = rt->tts,
		.metadata = rt->metadata,
		.llm = rt->llm,
		.default_voice = cfg->tts_voice,
		.cancel = &rt->cancel,
	};
	int rc = jobs_new(&rt->jobs, rt->db, &jc, e);
	if (rc == 0)
		rc = jobs_start(rt->jobs, e);
	return rc;
}

static int open_http(struct app_runtime *rt, struct err *e)
{
	const struct config *cfg = rt->cfg;
	struct app *a = &rt->api;
	*a = (struct app){ .cfg = cfg,
			   .db = rt->db,
			   .users = rt->users,
			   .search = rt->search,
			   .jobs = rt->jobs,
			   .chat = rt->chat,
			   .blob = rt->blob,
			   .tts = rt->tts,
			   .cancel = &rt->cancel,
			   .started_ms = time_now_ms() };
	a->chapters = cache_new(cfg->cache_bytes);
	a->hasher = executor_new(cfg->hash_threads, 256, "bookd-hash");
	a->io = executor_new(4, 256, "bookd-io");
	a->chat_exec = executor_new(cfg->chat_threads, 1024, "bookd-chat");
	a->chat_limit = ratelimit_new(cfg->chat_anon_per_minute * 2.0, cfg->chat_anon_per_minute, 8192);
	a->text_limit =
	    ratelimit_new(cfg->transform_text_per_minute, cfg->transform_text_per_minute, 8192);
	if (!a->chapters || !a->hasher || !a->io || !a->chat_exec || !a->chat_limit || !a->text_limit)
		return err_set(e, ERR_INTERNAL, "out of memory");
	struct transform_config tc = { .llm = rt->llm, .deadline_s = cfg->chat_deadline, .stop = &rt->cancel,
				       .rendered_bytes = cfg->cache_bytes };
	int rc = transform_new(&a->transform, rt->db, &tc, e);
	if (rc)
		return rc;
	rc = cfg->site_dir[0] ? site_open(&rt->site, cfg->site_dir, cfg->site_base_url, e) : 0;
	if (rc)
		return rc;
	struct http_server_opts o = {
		.host = cfg->host,
		.port = cfg->port,
		.threads = cfg->threads,
		.conn_timeout = cfg->conn_timeout,
		.max_connections = cfg->max_connections,
		.max_connections_per_ip = cfg->max_connections_per_ip,
		.request_timeout = cfg->request_timeout,
		.trusted_proxies = cfg->trusted_proxies,
		.forwarded_header = cfg->forwarded_header,
		.max_body = cfg->max_body,
		.cors_origins = cfg->cors_origins,
		.upload_dir = rt->upload_dir,
		.max_upload = cfg->max_upload,
		.routes = api_routes,
		.nroutes = api_nroutes,
		.app = a,
		.fallback = rt->site ? site_serve : NULL,
		.fallback_ctx = rt->site,
	};
	return http_server_start(&rt->http, &o, e);
}

int app_open(struct app_runtime *rt, const struct config *cfg, unsigned parts, struct err *e)
{
	memset(rt, 0, sizeof(*rt));
	rt->cfg = cfg;
	stop_init(&rt->cancel);
	rt->open = 1;
	/* What a part needs is built too, and always before it. */
	if (parts & APP_HTTP)
		parts |= APP_USERS | APP_CHAT | APP_JOBS | APP_SYNC;
	if (parts & APP_WORKERS)
		parts |= APP_JOBS;
	if (parts & APP_CHAT)
		parts |= APP_SEARCH;
	if (parts & (APP_JOBS | APP_SYNC))
		parts |= APP_SEARCH;
	if (parts & APP_JOBS)
		parts |= APP_MEDIA;
	if (parts)
		parts |= APP_DB;
	rt->parts = parts;

	int rc = 0;
	if ((parts & APP_DB) && (rc = open_db(rt, e)))
		return rc;
	if ((parts & APP_USERS) && (rc = open_users(rt, e)))
		return rc;
	if ((parts & APP_SEARCH) && (rc = open_search(rt, e)))
		return rc;
	if (parts & APP_SYNC) {
		if (cfg->cache_notified && (rc = db_watch_changes(rt->db, e)))
			return rc;
		if ((rc = search_start_sync(rt->search, e)))
			return rc;
	}
	if ((parts & APP_CHAT) && (rc = open_chat(rt, e)))
		return rc;
	if ((parts & APP_MEDIA) && (rc = open_media(rt, e)))
		return rc;
	if (parts & APP_JOBS) {
		int workers = (parts & APP_WORKERS) ? cfg->worker_max_jobs : 0;
		if ((rc = open_jobs(rt, workers, e)))
			return rc;
	}
	if ((parts & APP_HTTP) && (rc = open_http(rt, e)))
		return rc;
	return 0;
}

/* ---- stopping ---------------------------------------------------------------------- */

static long ms_left(int64_t deadline_us)
{
	int64_t left = deadline_us - time_mono_us();
	return left > 0 ? (long)(left / 1000) : 0;
}

long app_shutdown(struct app_runtime *rt)
{
	const struct config *cfg = rt->cfg;
	int64_t deadline = time_mono_us() + (int64_t)cfg->shutdown_timeout * 1000000;
	struct app *a = &rt->api;

	/* 1. quiesce: no new connections, no new jobs. */
	if (rt->http)
		http_server_quiesce(rt->http);
	jobs_quiesce(rt->jobs);

	/* 2. drain: requests, streamed answers and job steps may finish. */
	int steps = jobs_drain(rt->jobs, (int)ms_left(deadline));
	long requests = rt->http ? http_server_drain(rt->http, ms_left(deadline)) : 0;

	/* 3. cancel what the deadline cut: leases first, so another worker can
	 * take the jobs over while these threads wind down. */
	if (steps)
		jobs_release(rt->jobs);
	if (steps || requests)
		log_warn("shutdown timeout: cancelling %ld request(s) and %d job step(s) still running", requests,
			 steps);
	stop_fire(&rt->cancel);

	/* 4. answer: the executors finish what they hold (cancelled work ends at
	 * once and resumes its connection with an answer), then the streams
	 * left get their final event. Nothing may stay suspended past this. */
	executor_stop(a->chat_exec);
	executor_stop(a->io);
	executor_stop(a->hasher);
	if (rt->http) {
		int64_t grace = time_mono_us() + ANSWER_GRACE_MS * 1000;
		http_server_end_streams(rt->http);
		long cut = http_server_drain(rt->http, ms_left(grace));
		if (cut)
			log_warn("shutdown: %ld connection(s) still busy are closed", cut);
	}

	/* 5. join: the daemon stops with nothing suspended; job threads end. */
	http_server_stop(rt->http);
	rt->http = NULL;
	jobs_join(rt->jobs);
	return (long)steps + requests;
}

void app_close(struct app_runtime *rt)
{
	if (!rt->open)
		return;
	struct app *a = &rt->api;
	/* The reverse of app_open; each of these takes NULL. A runtime that
	 * never went through app_shutdown (a failed start, a one-shot command)
	 * still stops its threads first. */
	stop_fire(&rt->cancel);
	executor_stop(a->chat_exec);
	executor_stop(a->io);
	executor_stop(a->hasher);
	http_server_stop(rt->http);
	site_close(rt->site);
	jobs_quiesce(rt->jobs);
	jobs_join(rt->jobs);
	db_unlisten(rt->db); /* its callbacks wake the job queue and the caches */
	ratelimit_free(a->chat_limit);
	ratelimit_free(a->text_limit);
	executor_free(a->chat_exec);
	executor_free(a->io);
	executor_free(a->hasher);
	cache_free(a->chapters);
	transform_free(a->transform);
	jobs_free(rt->jobs);
	xfree(rt->upload_dir);
	if (rt->metadata)
		metadata_close(rt->metadata);
	if (rt->tts)
		tts_close(rt->tts);
	if (rt->blob)
		blob_close(rt->blob);
	chat_free(rt->chat);
	llm_chain_free(rt->llm);
	search_free(rt->search);
	users_free(rt->users);
	if (rt->jwt_secret) {
		sodium_memzero(rt->jwt_secret, strlen(rt->jwt_secret));
		xfree(rt->jwt_secret);
	}
	db_close(rt->db);
	stop_destroy(&rt->cancel);
	memset(rt, 0, sizeof(*rt));
}

void app_url(const struct app_runtime *rt, char *out, size_t cap)
{
	const char *host = rt->cfg->host;
	int port = rt->http ? http_server_port(rt->http) : rt->cfg->port;
	if (strchr(host, ':'))
		snprintf(out, cap, "http://[%s]:%d", host, port);
	else
		snprintf(out, cap, "http://%s:%d", host, port);
}
