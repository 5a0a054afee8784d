#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "mem.h"

enum cfg_type { CFG_STR, CFG_INT, CFG_BYTES, CFG_BOOL, CFG_LONG };

struct cfg_def {
	const char *name;
	enum cfg_type type;
	const char *def;
	long long min, max; /* for CFG_INT and CFG_BYTES */
	int secret;
	size_t offset;
	const char *help;
};

#define OFF(f) offsetof(struct config, f)

static const struct cfg_def defs[] = {
	{ "BOOKD_HOST", CFG_STR, "127.0.0.1", 0, 0, 0, OFF(host), "address to listen on" },
	{ "BOOKD_PORT", CFG_INT, "8000", 1, 65535, 0, OFF(port), "TCP port to listen on" },
	{ "BOOKD_DATA_DIR", CFG_STR, "./bookd-data", 0, 0, 0, OFF(data_dir),
	  "data directory (SQLite database and files)" },
	{ "DATABASE_URL", CFG_STR, "", 0, 0, 1, OFF(database_url),
	  "database; empty = SQLite in the data directory, or sqlite:PATH" },
	{ "BOOKD_API_KEY", CFG_STR, "", 0, 0, 1, OFF(api_key),
	  "master key for API writes (X-API-Key); empty = API writes refused" },
	{ "BOOKD_CORS_ORIGINS", CFG_STR, "http://localhost:3000", 0, 0, 0, OFF(cors_origins),
	  "comma-separated allowed browser origins, or *" },
	{ "BOOKD_MAX_BODY", CFG_BYTES, "1M", 1, 1LL << 30, 0, OFF(max_body),
	  "largest request body accepted (bytes; K/M/G suffixes)" },
	{ "BOOKD_SHUTDOWN_TIMEOUT", CFG_INT, "30", 0, 3600, 0, OFF(shutdown_timeout),
	  "seconds to let in-flight requests finish on SIGTERM" },
	{ "BOOKD_THREADS", CFG_INT, "0", 0, 256, 0, OFF(threads),
	  "HTTP worker threads; 0 = number of cores (at least 2)" },
	{ "BOOKD_CONN_TIMEOUT", CFG_INT, "30", 1, 3600, 0, OFF(conn_timeout),
	  "seconds an idle or slow connection is kept" },
	{ "BOOKD_MAX_CONNECTIONS", CFG_INT, "1024", 1, 100000, 0, OFF(max_connections),
	  "concurrent connections accepted" },
	{ "BOOKD_LOG_LEVEL", CFG_STR, "info", 0, 0, 0, OFF(log_level),
	  "debug, info, warn or error" },
	{ "BOOKD_CACHE_SIZE", CFG_BYTES, "64M", 0, 1LL << 40, 0, OFF(cache_bytes),
	  "memory for rendered chapter responses; 0 disables the cache" },
	{ "BOOKD_CACHE_NOTIFIED", CFG_BOOL, "true", 0, 1, 0, OFF(cache_notified),
	  "PostgreSQL: trust caches until a change notification (another node's write "
	  "is seen once its notification arrives); false = ask the database on every read" },
	{ "BOOKD_DB_POOL", CFG_INT, "16", 1, 1024, 0, OFF(db_pool),
	  "database connections per process" },
	{ "BOOKD_AUTH_MODE", CFG_STR, "jwt", 0, 0, 0, OFF(auth_mode),
	  "jwt (users sign in) or api_key (BOOKD_API_KEY stands in for a user)" },
	{ "BOOKD_JWT_SECRET", CFG_STR, "", 0, 0, 1, OFF(jwt_secret),
	  "HS256 secret for access tokens; empty = generated into the data directory" },
	{ "BOOKD_JWT_SECRET_PREVIOUS", CFG_STR, "", 0, 0, 1, OFF(jwt_secret_previous),
	  "the secret before a rotation, still accepted for verification" },
	{ "BOOKD_JWT_TTL", CFG_INT, "900", 30, 86400, 0, OFF(jwt_ttl), "access token lifetime (seconds)" },
	{ "BOOKD_REFRESH_TTL", CFG_INT, "2592000", 60, 31536000, 0, OFF(refresh_ttl),
	  "refresh token lifetime (seconds)" },
	{ "BOOKD_JWKS_URL", CFG_STR, "", 0, 0, 0, OFF(jwks_url),
	  "JWKS of an external identity provider whose JWTs are accepted (EdDSA, RS256, ES256)" },
	{ "BOOKD_JWT_ISSUER", CFG_STR, "", 0, 0, 0, OFF(jwt_issuer), "required iss of external tokens" },
	{ "BOOKD_JWT_AUDIENCE", CFG_STR, "", 0, 0, 0, OFF(jwt_audience), "required aud of external tokens" },
	{ "BOOKD_HASH_THREADS", CFG_INT, "1", 1, 64, 0, OFF(hash_threads),
	  "threads hashing passwords (argon2id), apart from the HTTP threads" },
	{ "BOOKD_LOGIN_BURST", CFG_INT, "10", 1, 100000, 0, OFF(login_burst),
	  "failed logins allowed per account before limiting (twice that per IP)" },
	{ "BOOKD_WORKERS", CFG_INT, "1", 0, 1, 0, OFF(workers),
	  "1 = `bookd serve` also runs background jobs; 0 = leave them to `bookd worker`" },
	{ "BOOKD_WORKER_MAX_JOBS", CFG_INT, "5", 1, 64, 0, OFF(worker_max_jobs), "jobs run at once per process" },
	{ "BOOKD_JOB_LEASE", CFG_INT, "30", 1, 3600, 0, OFF(job_lease),
	  "seconds a job stays claimed without a heartbeat before another worker takes it" },
	{ "BOOKD_JOB_BACKOFF_MS", CFG_INT, "1000", 1, 3600000, 0, OFF(job_backoff_ms),
	  "first retry delay of a failed job; doubles per attempt, with jitter" },
	{ "BOOKD_TEST_JOBS", CFG_INT, "0", 0, 1, 0, OFF(test_jobs), "1 = also accept the test.* job types" },
	{ "BOOKD_MAX_UPLOAD", CFG_BYTES, "100M", 1, 1LL << 40, 0, OFF(max_upload),
	  "largest upload accepted by POST /api/v1/books/import" },
	{ "BOOKD_EMBED_URL", CFG_STR, "", 0, 0, 0, OFF(embed_url),
	  "OpenAI-compatible embeddings API base (…/v1); empty = keyword search only" },
	{ "BOOKD_EMBED_MODEL", CFG_STR, "text-embedding-3-small", 0, 0, 0, OFF(embed_model), "embedding model" },
	{ "BOOKD_EMBED_KEY", CFG_STR, "", 0, 0, 1, OFF(embed_key), "API key of the embedding provider" },
	{ "BOOKD_EMBED_DIM", CFG_INT, "0", 0, 8192, 0, OFF(embed_dim),
	  "embedding dimensions to ask for; 0 = the model's own" },
	{ "BOOKD_EMBED_BATCH", CFG_INT, "64", 1, 2048, 0, OFF(embed_batch), "texts per embedding request" },
	{ "BOOKD_EMBED_CONCURRENCY", CFG_INT, "4", 1, 32, 0, OFF(embed_concurrency),
	  "embedding requests in flight at once" },
	{ "BOOKD_EMBED_TIMEOUT", CFG_INT, "30", 1, 600, 0, OFF(embed_timeout), "seconds per embedding request" },
	{ "BOOKD_CHUNK_TOKENS", CFG_INT, "256", 32, 8192, 0, OFF(chunk_tokens),
	  "largest chunk, in estimated tokens (bytes / 4)" },
	{ "BOOKD_CHAT_ANONYMOUS", CFG_BOOL, "false", 0, 1, 0, OFF(chat_anonymous),
	  "true = anyone may ask the chatbot (public book sites), limited per IP" },
	{ "BOOKD_CHAT_ANON_PER_MINUTE", CFG_INT, "10", 1, 100000, 0, OFF(chat_anon_per_minute),
	  "anonymous questions per minute per IP (twice that in a burst)" },
	{ "BOOKD_CHAT_THREADS", CFG_INT, "32", 1, 1024, 0, OFF(chat_threads),
	  "answers being produced at once (each waits on a language model)" },
	{ "BOOKD_CHAT_DEADLINE", CFG_INT, "60", 1, 600, 0, OFF(chat_deadline), "seconds an answer may take in all" },
	{ "BOOKD_CHAT_TOP_K", CFG_INT, "5", 1, 20, 0, OFF(chat_top_k), "passages retrieved per question" },
	{ "BOOKD_CHAT_MAX_TOKENS", CFG_INT, "800", 16, 32000, 0, OFF(chat_max_tokens), "longest answer, in tokens" },
	{ "BOOKD_CHAT_DAILY_TOKENS", CFG_LONG, "0", 0, 1LL << 40, 0, OFF(chat_daily_tokens),
	  "tokens a user (or IP) may use per day; 0 = unlimited" },
	{ "BOOKD_LOGIN_PER_MINUTE", CFG_INT, "5", 1, 100000, 0, OFF(login_per_minute),
	  "login attempts regained per minute, per account (twice that per IP)" },
};

/* .env parsing: KEY=VALUE lines, optional `export `, # comments, optional
 * single or double quotes around the value. Only known names are taken. */
static const struct cfg_def *find_def(const char *name, size_t n)
{
	for (size_t i = 0; i < ARRAY_LEN(defs); i++)
		if (strlen(defs[i].name) == n && memcmp(defs[i].name, name, n) == 0)
			return &defs[i];
	return NULL;
}

static void load_env_file(const char *path, char **vals)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	char line[4096];
	while (fgets(line, sizeof(line), f)) {
		char *s = line;
		while (isspace((unsigned char)*s))
			s++;
		if (*s == '#' || *s == '\0')
			continue;
		if (strncmp(s, "export ", 7) == 0)
			s += 7;
		char *eq = strchr(s, '=');
		if (!eq)
			continue;
		char *k_end = eq;
		while (k_end > s && isspace((unsigned char)k_end[-1]))
			k_end--;
		const struct cfg_def *d = find_def(s, (size_t)(k_end - s));
		if (!d)
			continue;
		char *v = eq + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		size_t vn = strcspn(v, "\r\n");
		v[vn] = '\0';
		char *close = vn >= 2 && (v[0] == '"' || v[0] == '\'') ? strchr(v + 1, v[0]) : NULL;
		if (close) {
			/* A quoted value: anything after the closing quote is a comment. */
			*close = '\0';
			v++;
		} else {
			char *hash = strstr(v, " #");
			if (hash)
				*hash = '\0';
			vn = strlen(v);
			while (vn && isspace((unsigned char)v[vn - 1]))
				v[--vn] = '\0';
		}
		size_t i = (size_t)(d - defs);
		xfree(vals[i]);
		vals[i] = xstrdup(v);
	}
	fclose(f);
}

static int parse_int(const char *s, long long *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

static int parse_bool(const char *s, long long *out)
{
	if (!strcasecmp(s, "true") || !strcmp(s, "1") || !strcasecmp(s, "yes") || !strcasecmp(s, "on"))
		*out = 1;
	else if (!strcasecmp(s, "false") || !strcmp(s, "0") || !strcasecmp(s, "no") || !strcasecmp(s, "off"))
		*out = 0;
	else
		return -1;
	return 0;
}

static int parse_bytes(const char *s, long long *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || v < 0)
		return -1;
	long long mul = 1;
	switch (toupper((unsigned char)*end)) {
	case '\0': break;
	case 'K': mul = 1LL << 10; end++; break;
	case 'M': mul = 1LL << 20; end++; break;
	case 'G': mul = 1LL << 30; end++; break;
	default: return -1;
	}
	if (*end == 'i' || *end == 'B')
		end += (*end == 'i' && end[1] == 'B') ? 2 : 1;
	if (*end != '\0' || v > (1LL << 50) / mul)
		return -1;
	*out = v * mul;
	return 0;
}

static size_t append_msg(char *msg, size_t len, size_t at, const char *fmt, const char *a, const char *b)
{
	if (at >= len)
		return at;
	int n = snprintf(msg + at, len - at, fmt, a, b);
	return n > 0 ? at + (size_t)n : at;
}

int config_load(struct config *c, const char *env_file, char *msg, size_t msglen)
{
	char *vals[ARRAY_LEN(defs)] = { 0 };
	memset(c, 0, sizeof(*c));
	load_env_file(env_file ? env_file : ".env", vals);
	for (size_t i = 0; i < ARRAY_LEN(defs); i++) {
		const char *e = getenv(defs[i].name);
		if (e) {
			xfree(vals[i]);
			vals[i] = xstrdup(e);
		}
	}

	size_t at = 0;
	int bad = 0;
	msg[0] = '\0';
	for (size_t i = 0; i < ARRAY_LEN(defs); i++) {
		const struct cfg_def *d = &defs[i];
		const char *v = vals[i] ? vals[i] : d->def;
		char *field = (char *)c + d->offset;
		long long n = 0;
		switch (d->type) {
		case CFG_STR:
			*(char **)field = xstrdup(v);
			continue;
		case CFG_INT:
			if (parse_int(v, &n) || n < d->min || n > d->max)
				break;
			*(int *)field = (int)n;
			continue;
		case CFG_BYTES:
			if (parse_bytes(v, &n) || n < d->min || n > d->max)
				break;
			*(size_t *)field = (size_t)n;
			continue;
		case CFG_BOOL:
			if (parse_bool(v, &n))
				break;
			*(int *)field = (int)n;
			continue;
		case CFG_LONG:
			if (parse_int(v, &n) || n < d->min || n > d->max)
				break;
			*(long *)field = (long)n;
			continue;
		}
		at = append_msg(msg, msglen, at, bad ? "; %s=\"%s\"" : "invalid configuration: %s=\"%s\"",
				d->name, d->secret ? "********" : v);
		char range[96];
		snprintf(range, sizeof(range), " %lld..%lld", d->min, d->max);
		if (d->type == CFG_BOOL)
			at = append_msg(msg, msglen, at, "%s%s", " must be true or false", "");
		else
			at = append_msg(msg, msglen, at, "%s%s",
					d->type == CFG_BYTES ? " must be a size in bytes (K/M/G suffixes) in"
							     : " must be an integer in",
					range);
		bad++;
	}

	/* Validation beyond types. */
	if (c->log_level && strcmp(c->log_level, "debug") && strcmp(c->log_level, "info") &&
	    strcmp(c->log_level, "warn") && strcmp(c->log_level, "error")) {
		at = append_msg(msg, msglen, at, bad ? "; %s=\"%s\"" : "invalid configuration: %s=\"%s\"",
				"BOOKD_LOG_LEVEL", c->log_level);
		at = append_msg(msg, msglen, at, "%s%s", " must be debug, info, warn or error", "");
		bad++;
	}
	if (c->auth_mode && strcmp(c->auth_mode, "jwt") && strcmp(c->auth_mode, "api_key")) {
		at = append_msg(msg, msglen, at, bad ? "; %s=\"%s\"" : "invalid configuration: %s=\"%s\"",
				"BOOKD_AUTH_MODE", c->auth_mode);
		at = append_msg(msg, msglen, at, "%s%s", " must be jwt or api_key", "");
		bad++;
	}
	if (c->auth_mode && !strcmp(c->auth_mode, "api_key") && c->api_key && !c->api_key[0]) {
		at = append_msg(msg, msglen, at, bad ? "; %s=\"%s\"" : "invalid configuration: %s=\"%s\"",
				"BOOKD_API_KEY", "");
		at = append_msg(msg, msglen, at, "%s%s", " must be set when BOOKD_AUTH_MODE=api_key", "");
		bad++;
	}
	if (c->jwt_secret && c->jwt_secret[0] && strlen(c->jwt_secret) < 32) {
		at = append_msg(msg, msglen, at, bad ? "; %s=\"%s\"" : "invalid configuration: %s=\"%s\"",
				"BOOKD_JWT_SECRET", "********");
		at = append_msg(msg, msglen, at, "%s%s", " must be at least 32 characters", "");
		bad++;
	}
	if (c->jwt_secret_previous && c->jwt_secret_previous[0] && strlen(c->jwt_secret_previous) < 32) {
		at = append_msg(msg, msglen, at, bad ? "; %s=\"%s\"" : "invalid configuration: %s=\"%s\"",
				"BOOKD_JWT_SECRET_PREVIOUS", "********");
		at = append_msg(msg, msglen, at, "%s%s", " must be at least 32 characters", "");
		bad++;
	}
	if (c->host && c->host[0] == '\0') {
		at = append_msg(msg, msglen, at, bad ? "; %s=\"%s\"" : "invalid configuration: %s=\"%s\"",
				"BOOKD_HOST", "");
		at = append_msg(msg, msglen, at, "%s%s", " must not be empty", "");
		bad++;
	}
	if (c->data_dir && c->data_dir[0] == '\0') {
		at = append_msg(msg, msglen, at, bad ? "; %s=\"%s\"" : "invalid configuration: %s=\"%s\"",
				"BOOKD_DATA_DIR", "");
		at = append_msg(msg, msglen, at, "%s%s", " must not be empty", "");
		bad++;
	}

	for (size_t i = 0; i < ARRAY_LEN(defs); i++)
		xfree(vals[i]);
	if (bad) {
		config_free(c);
		return -1;
	}
	if (c->threads == 0) {
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		c->threads = ncpu < 2 ? 2 : (int)ncpu;
	}
	return 0;
}

void config_free(struct config *c)
{
	for (size_t i = 0; i < ARRAY_LEN(defs); i++)
		if (defs[i].type == CFG_STR) {
			char **p = (char **)((char *)c + defs[i].offset);
			xfree(*p);
			*p = NULL;
		}
}

void config_print(const struct config *c, FILE *f)
{
	for (size_t i = 0; i < ARRAY_LEN(defs); i++) {
		const struct cfg_def *d = &defs[i];
		const char *field = (const char *)c + d->offset;
		switch (d->type) {
		case CFG_STR: {
			const char *v = *(char *const *)field;
			fprintf(f, "%s=%s\n", d->name, d->secret && v && *v ? "********" : (v ? v : ""));
			break;
		}
		case CFG_INT:
			fprintf(f, "%s=%d\n", d->name, *(const int *)field);
			break;
		case CFG_BYTES:
			fprintf(f, "%s=%zu\n", d->name, *(const size_t *)field);
			break;
		case CFG_BOOL:
			fprintf(f, "%s=%s\n", d->name, *(const int *)field ? "true" : "false");
			break;
		case CFG_LONG:
			fprintf(f, "%s=%ld\n", d->name, *(const long *)field);
			break;
		}
	}
}

void config_print_help(FILE *f)
{
	for (size_t i = 0; i < ARRAY_LEN(defs); i++)
		fprintf(f, "  %-24s %s (default: %s)\n", defs[i].name, defs[i].help,
			defs[i].def[0] ? defs[i].def : "unset");
}
