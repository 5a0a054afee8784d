#include "config.h"

#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "mem.h"
#include "uuid.h"

enum cfg_type { CFG_STR, CFG_INT, CFG_BYTES, CFG_BOOL, CFG_LONG };

/* For CFG_INT, CFG_BYTES and CFG_LONG: min..max. For CFG_STR: max is the
 * longest value in bytes (0 = STR_MAX); a longer one is refused. */
struct cfg_def {
	const char *name;
	enum cfg_type type;
	const char *def;
	long long min, max;
	int secret;
	size_t offset;
	const char *help;
};

#define STR_MAX 4096
#define SECRET_MAX 255
/* A .env line (name, value, quotes) may be this long; a longer one is an
 * error naming its line, never split into two. */
#define ENV_LINE_MAX 65536

#define OFF(f) offsetof(struct config, f)

static const struct cfg_def defs[] = {
	{ "BOOKD_HOST", CFG_STR, "127.0.0.1", 0, 0, 0, OFF(host), "address to listen on" },
	{ "BOOKD_PORT", CFG_INT, "8000", 1, 65535, 0, OFF(port), "TCP port to listen on" },
	{ "BOOKD_DATA_DIR", CFG_STR, "./bookd-data", 0, 0, 0, OFF(data_dir),
	  "data directory (SQLite database and files)" },
	{ "DATABASE_URL", CFG_STR, "", 0, 0, 1, OFF(database_url),
	  "database; empty = SQLite in the data directory, or sqlite:PATH" },
	{ "BOOKD_API_KEY", CFG_STR, "", 0, SECRET_MAX, 1, OFF(api_key),
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
	{ "BOOKD_MAX_CONNECTIONS_PER_IP", CFG_INT, "256", 1, 100000, 0, OFF(max_connections_per_ip),
	  "concurrent connections from one address (trusted proxies exempt); more get 503" },
	{ "BOOKD_REQUEST_TIMEOUT", CFG_INT, "60", 1, 3600, 0, OFF(request_timeout),
	  "seconds a request's head and body may take to arrive, however slowly they trickle" },
	{ "BOOKD_TRUSTED_PROXIES", CFG_STR, "", 0, 0, 0, OFF(trusted_proxies),
	  "reverse proxies (CIDR list) whose BOOKD_FORWARDED_HEADER names the client" },
	{ "BOOKD_FORWARDED_HEADER", CFG_STR, "x-forwarded-for", 0, 0, 0, OFF(forwarded_header),
	  "x-forwarded-for, forwarded or x-real-ip: the one header the trusted proxies set or append" },
	{ "BOOKD_LOG_LEVEL", CFG_STR, "info", 0, 0, 0, OFF(log_level),
	  "debug, info, warn or error" },
	{ "BOOKD_SITE_DIR", CFG_STR, "", 0, 0, 0, OFF(site_dir),
	  "a built static site (a Docusaurus build/ folder) served beside the API; empty = none (serve --site DIR)" },
	{ "BOOKD_SITE_BASE_URL", CFG_STR, "/", 0, 1024, 0, OFF(site_base_url),
	  "the path the site is served under, its Docusaurus baseUrl (e.g. /my-book/)" },
	{ "BOOKD_CACHE_SIZE", CFG_BYTES, "64M", 0, 1LL << 40, 0, OFF(cache_bytes),
	  "memory for rendered chapter responses; 0 disables the cache" },
	{ "BOOKD_CACHE_NOTIFIED", CFG_BOOL, "true", 0, 1, 0, OFF(cache_notified),
	  "PostgreSQL: trust caches until a change notification (another node's write "
	  "is seen once its notification arrives); false = ask the database on every read" },
	{ "BOOKD_DB_POOL", CFG_INT, "16", 1, 1024, 0, OFF(db_pool),
	  "database connections per process" },
	{ "BOOKD_AUTH_MODE", CFG_STR, "jwt", 0, 0, 0, OFF(auth_mode),
	  "jwt (users sign in) or api_key (BOOKD_API_KEY stands in for a user)" },
	{ "BOOKD_JWT_SECRET", CFG_STR, "", 0, SECRET_MAX, 1, OFF(jwt_secret),
	  "HS256 secret for access tokens; empty = generated into the data directory" },
	{ "BOOKD_JWT_SECRET_PREVIOUS", CFG_STR, "", 0, SECRET_MAX, 1, OFF(jwt_secret_previous),
	  "the secret before a rotation, still accepted for verification" },
	{ "BOOKD_JWT_TTL", CFG_INT, "900", 30, 86400, 0, OFF(jwt_ttl), "access token lifetime (seconds)" },
	{ "BOOKD_REFRESH_TTL", CFG_INT, "2592000", 60, 31536000, 0, OFF(refresh_ttl),
	  "refresh token lifetime (seconds)" },
	{ "BOOKD_JWKS_URL", CFG_STR, "", 0, 0, 0, OFF(jwks_url),
	  "JWKS of an external identity provider whose JWTs are accepted (EdDSA, RS256, ES256)" },
	{ "BOOKD_JWT_ISSUER", CFG_STR, "", 0, 0, 0, OFF(jwt_issuer), "required iss of external tokens" },
	{ "BOOKD_JWT_AUDIENCE", CFG_STR, "", 0, 0, 0, OFF(jwt_audience), "required aud of external tokens" },
	{ "BOOKD_BETTER_AUTH_URL", CFG_STR, "", 0, 0, 0, OFF(better_auth_url),
	  "a Better-Auth server (base URL) whose session tokens (Bearer or cookie) are accepted, "
	  "checked by its /api/auth/get-session" },
	{ "BOOKD_BETTER_AUTH_CACHE_SECONDS", CFG_INT, "60", 1, 3600, 0, OFF(better_auth_cache_seconds),
	  "seconds a Better-Auth session check is reused (a refused token: at most 10)" },
	{ "BOOKD_BETTER_AUTH_TIMEOUT_MS", CFG_INT, "2500", 100, 30000, 0, OFF(better_auth_timeout_ms),
	  "longest wait for the Better-Auth server; past it the request gets 503" },
	{ "BOOKD_TRUST_USER_HEADER", CFG_BOOL, "false", 0, 1, 0, OFF(trust_user_header),
	  "true = X-User-ID names the user, from peers in BOOKD_TRUSTED_PROXIES only" },
	{ "BOOKD_HASH_THREADS", CFG_INT, "1", 1, 64, 0, OFF(hash_threads),
	  "threads hashing passwords (argon2id), apart from the HTTP threads" },
	{ "BOOKD_LOGIN_BURST", CFG_INT, "10", 1, 100000, 0, OFF(login_burst),
	  "failed logins allowed per account before limiting (twice that per IP)" },
	{ "BOOKD_REGISTER_BURST", CFG_INT, "20", 1, 100000, 0, OFF(register_burst),
	  "accounts one IP may register at once before limiting" },
	{ "BOOKD_REGISTER_PER_MINUTE", CFG_INT, "5", 1, 100000, 0, OFF(register_per_minute),
	  "registrations regained per minute, per IP" },
	{ "BOOKD_REGISTER_CONCURRENCY", CFG_INT, "8", 1, 1024, 0, OFF(register_concurrency),
	  "registrations hashing or queued at once; more get 503, so sign-ups never crowd out logins" },
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
	{ "BOOKD_EMBED_KEY", CFG_STR, "", 0, 1024, 1, OFF(embed_key), "API key of the embedding provider" },
	{ "BOOKD_EMBED_DIM", CFG_INT, "0", 0, 8192, 0, OFF(embed_dim),
	  "embedding dimensions to ask for; 0 = the model's own" },
	{ "BOOKD_EMBED_BATCH", CFG_INT, "64", 1, 2048, 0, OFF(embed_batch), "texts per embedding request" },
	{ "BOOKD_EMBED_CONCURRENCY", CFG_INT, "4", 1, 32, 0, OFF(embed_concurrency),
	  "embedding requests in flight at once" },
	{ "BOOKD_EMBED_TIMEOUT", CFG_INT, "30", 1, 600, 0, OFF(embed_timeout), "seconds per embedding request" },
	{ "BOOKD_CHUNK_TOKENS", CFG_INT, "256", 32, 8192, 0, OFF(chunk_tokens),
	  "largest chunk, in estimated tokens (bytes / 4)" },
	{ "BOOKD_CHAT_ANONYMOUS", CFG_BOOL, "true", 0, 1, 0, OFF(chat_anonymous),
	  "true = anyone may ask the chatbot (public book sites), limited per IP; false = signed-in users only" },
	{ "BOOKD_CHAT_ANON_DAILY_TOKENS", CFG_LONG, "200000", 0, 1LL << 40, 0, OFF(chat_anon_daily_tokens),
	  "language-model tokens anonymous questions from one IP may use per day; 0 = unlimited" },
	{ "BOOKD_DEFAULT_BOOK", CFG_STR, "", 0, 36, 0, OFF(default_book),
	  "book id the chat widgets' routes (/chat, /api/chat, …) ask when a request names none; empty = every book" },
	{ "BOOKD_CHAT_ANON_PER_MINUTE", CFG_INT, "10", 1, 100000, 0, OFF(chat_anon_per_minute),
	  "anonymous questions per minute per IP (twice that in a burst)" },
	{ "BOOKD_TRANSFORM_TEXT_PER_MINUTE", CFG_INT, "30", 1, 100000, 0, OFF(transform_text_per_minute),
	  "texts per minute per caller (user, else IP) that POST /api/translate and /api/personalize transform "
	  "when they are not a chapter's (as many in a burst)" },
	{ "BOOKD_CHAT_THREADS", CFG_INT, "32", 1, 1024, 0, OFF(chat_threads),
	  "answers being produced at once (each waits on a language model)" },
	{ "BOOKD_CHAT_DEADLINE", CFG_INT, "60", 1, 600, 0, OFF(chat_deadline), "seconds an answer may take in all" },
	{ "BOOKD_CHAT_TOP_K", CFG_INT, "5", 1, 20, 0, OFF(chat_top_k), "passages retrieved per question" },
	{ "BOOKD_CHAT_MAX_TOKENS", CFG_INT, "800", 16, 32000, 0, OFF(chat_max_tokens), "longest answer, in tokens" },
	{ "BOOKD_CHAT_DAILY_TOKENS", CFG_LONG, "0", 0, 1LL << 40, 0, OFF(chat_daily_tokens),
	  "language-model tokens a signed-in user may use per day; 0 = unlimited" },
	{ "BOOKD_LOGIN_PER_MINUTE", CFG_INT, "5", 1, 100000, 0, OFF(login_per_minute),
	  "login attempts regained per minute, per account (twice that per IP)" },
	{ "BOOKD_LLM_PROVIDERS", CFG_STR, "", 0, 0, 0, OFF(llm_providers),
	  "language models in order, NAME:MODEL,… (e.g. openai:gpt-4o-mini,anthropic:claude-3-5-haiku-latest); "
	  "empty = extractive answers only" },
	{ "BOOKD_LLM_TRIES", CFG_INT, "3", 1, 3600, 0, OFF(llm_tries), "attempts per language model and question" },
	{ "BOOKD_LLM_BREAKER_FAILURES", CFG_INT, "3", 1, 3600, 0, OFF(llm_breaker_failures),
	  "failed calls in a row that open a language model's circuit" },
	{ "BOOKD_LLM_BREAKER_SECONDS", CFG_INT, "30", 1, 3600, 0, OFF(llm_breaker_seconds),
	  "seconds a circuit stays open before one probe call" },
	/* Files, speech and book metadata (the BookBytes pipeline). */
	{ "BOOKD_STORAGE", CFG_STR, "local", 0, 16, 0, OFF(storage),
	  "where audio files are kept: local (under the data directory) or s3" },
	{ "BOOKD_S3_ENDPOINT", CFG_STR, "", 0, 0, 0, OFF(s3_endpoint),
	  "S3-compatible endpoint, e.g. https://s3.eu-west-1.amazonaws.com or http://127.0.0.1:9000" },
	{ "BOOKD_S3_BUCKET", CFG_STR, "", 0, 255, 0, OFF(s3_bucket), "S3 bucket" },
	{ "BOOKD_S3_REGION", CFG_STR, "us-east-1", 0, 64, 0, OFF(s3_region), "S3 region (SigV4)" },
	{ "BOOKD_S3_ACCESS_KEY", CFG_STR, "", 0, 1024, 1, OFF(s3_access_key), "S3 access key id" },
	{ "BOOKD_S3_SECRET_KEY", CFG_STR, "", 0, 1024, 1, OFF(s3_secret_key), "S3 secret access key" },
	{ "BOOKD_S3_PATH_STYLE", CFG_BOOL, "true", 0, 1, 0, OFF(s3_path_style),
	  "true = endpoint/bucket/key; false = virtual-hosted bucket.endpoint/key" },
	{ "BOOKD_S3_PRESIGN_SECONDS", CFG_INT, "900", 1, 604800, 0, OFF(s3_presign_seconds),
	  "how long the presigned audio URLs handed to readers are valid" },
	{ "BOOKD_TTS", CFG_STR, "espeak", 0, 16, 0, OFF(tts),
	  "speech: espeak (in process) or openai (an OpenAI-compatible /audio/speech)" },
	{ "BOOKD_TTS_URL", CFG_STR, "", 0, 0, 0, OFF(tts_url), "speech provider API base (…/v1), for BOOKD_TTS=openai" },
	{ "BOOKD_TTS_KEY", CFG_STR, "", 0, 1024, 1, OFF(tts_key), "speech provider API key" },
	{ "BOOKD_TTS_MODEL", CFG_STR, "tts-1", 0, 128, 0, OFF(tts_model), "speech provider model" },
	{ "BOOKD_TTS_BITRATE", CFG_INT, "56", 48, 64, 0, OFF(tts_bitrate), "MP3 bit rate, kbit/s" },
	{ "BOOKD_TTS_VOICE", CFG_STR, "", 0, 64, 0, OFF(tts_voice),
	  "voice used when a request names none; empty = the book's language" },
	{ "BOOKD_OPENLIBRARY_URL", CFG_STR, "https://openlibrary.org", 0, 0, 0, OFF(openlibrary_url),
	  "Open Library base URL (book metadata by ISBN)" },
	{ "BOOKD_GOOGLE_BOOKS_URL", CFG_STR, "https://www.googleapis.com", 0, 0, 0, OFF(google_books_url),
	  "Google Books base URL (metadata fallback)" },
	{ "BOOKD_GOOGLE_BOOKS_KEY", CFG_STR, "", 0, 1024, 1, OFF(google_books_key), "Google Books API key (optional)" },
	{ "BOOKD_METADATA_TIMEOUT", CFG_INT, "30", 1, 600, 0, OFF(metadata_timeout),
	  "seconds per metadata request" },
	{ "BOOKD_METADATA_TRIES", CFG_INT, "3", 1, 10, 0, OFF(metadata_tries), "attempts per metadata request" },
};

/* The patterned rows: one set per language model NAME of BOOKD_LLM_PROVIDERS.
 * A default of NULL: the known provider's, else required. */
#define LOFF(f) offsetof(struct config_llm, f)

static const struct cfg_def llm_defs[] = {
	{ "URL", CFG_STR, NULL, 0, 0, 0, LOFF(url),
	  "API base of the model NAME (…/v1); known names (openai, gemini, anthropic, ollama, openrouter) have one" },
	{ "KEY", CFG_STR, "", 0, 1024, 1, LOFF(key), "API key of the model NAME" },
	{ "API", CFG_STR, NULL, 0, 64, 0, LOFF(api), "wire format of NAME: openai or anthropic" },
	{ "TIMEOUT", CFG_INT, "30", 1, 3600, 0, LOFF(timeout), "seconds per attempt at NAME" },
};

static const struct {
	const char *name, *url, *api;
} known_llm[] = {
	{ "openai", "https://api.openai.com/v1", "openai" },
	{ "gemini", "https://generativelanguage.googleapis.com/v1beta/openai", "openai" },
	{ "anthropic", "https://api.anthropic.com/v1", "anthropic" },
	{ "ollama", "http://127.0.0.1:11434/v1", "openai" },
	{ "openrouter", "https://openrouter.ai/api/v1", "openai" },
};

/* ---- where values come from --------------------------------------------------- */

/* Every BOOKD_* (and DATABASE_URL) name seen in .env or the environment, in
 * order; a later value of a name replaces the earlier one. */
struct kv {
	char *name, *val;
	int from_file;
	int used;
};

struct source {
	struct kv *v;
	int n, cap;
	int oom;
};

static void source_set(struct source *s, const char *name, size_t nn, const char *val, int from_file)
{
	for (int i = 0; i < s->n; i++)
		if (strlen(s->v[i].name) == nn && !memcmp(s->v[i].name, name, nn)) {
			char *v = xstrdup(val);
			if (!v) {
				s->oom = 1;
				return;
			}
			xfree(s->v[i].val);
			s->v[i].val = v;
			s->v[i].from_file = from_file;
			return;
		}
	if (s->n == s->cap) {
		int cap = s->cap ? s->cap * 2 : 32;
		struct kv *nv = xrealloc(s->v, sizeof(*nv) * (size_t)cap);
		if (!nv) {
			s->oom = 1;
			return;
		}
		s->v = nv;
		s->cap = cap;
	}
	struct kv *k = &s->v[s->n];
	k->name = xstrndup(name, nn);
	k->val = xstrdup(val);
	k->from_file = from_file;
	k->used = 0;
	if (!k->name || !k->val) {
		xfree(k->name);
		xfree(k->val);
		s->oom = 1;
		return;
	}
	s->n++;
}

static struct kv *source_get(struct source *s, const char *name)
{
	for (int i = 0; i < s->n; i++)
		if (!strcmp(s->v[i].name, name)) {
			s->v[i].used = 1;
			return &s->v[i];
		}
	return NULL;
}

static void source_free(struct source *s)
{
	for (int i = 0; i < s->n; i++) {
		xfree(s->v[i].name);
		if (s->v[i].val)
			memset(s->v[i].val, 0, strlen(s->v[i].val));
		xfree(s->v[i].val);
	}
	xfree(s->v);
}

static int wanted_name(const char *name, size_t n)
{
	return (n > 6 && !strncmp(name, "BOOKD_", 6)) || (n == 12 && !strncmp(name, "DATABASE_URL", 12));
}

struct msg {
	char *p;
	size_t len, at;
	int bad;
};

static void msg_add(struct msg *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void msg_add(struct msg *m, const char *fmt, ...)
{
	if (m->at + 1 >= m->len)
		return;
	if (m->at == 0) {
		int k = snprintf(m->p, m->len, "invalid configuration: ");
		m->at = k > 0 ? MIN((size_t)k, m->len - 1) : 0;
	} else {
		int k = snprintf(m->p + m->at, m->len - m->at, "; ");
		m->at = k > 0 ? MIN(m->at + (size_t)k, m->len - 1) : m->at;
	}
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(m->p + m->at, m->len - m->at, fmt, ap);
	va_end(ap);
	m->at = k > 0 ? MIN(m->at + (size_t)k, m->len - 1) : m->at;
	m->bad++;
}

/* .env parsing: KEY=VALUE lines, optional `export `, # comments, optional
 * single or double quotes around the value. BOOKD_* names and DATABASE_URL
 * are taken; other names are left to other programs. */
static void env_line(struct source *src, char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	if (*s == '#' || *s == '\0')
		return;
	if (strncmp(s, "export ", 7) == 0)
		s += 7;
	char *eq = strchr(s, '=');
	if (!eq)
		return;
	char *k_end = eq;
	while (k_end > s && isspace((unsigned char)k_end[-1]))
		k_end--;
	if (!wanted_name(s, (size_t)(k_end - s)))
		return;
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
	source_set(src, s, (size_t)(k_end - s), v, 1);
}

static void load_env_stream(FILE *f, const char *path, struct source *src, struct msg *m)
{
	struct buf line;
	buf_init(&line, ENV_LINE_MAX);
	char chunk[4096];
	long lineno = 0;
	int too_long = 0, eof = 0;
	while (!eof) {
		if (!fgets(chunk, sizeof(chunk), f)) {
			eof = 1;
			if (!line.n && !too_long)
				break;
		} else {
			size_t n = strlen(chunk);
			if (!too_long && buf_append(&line, chunk, n))
				too_long = 1;
			if (n == 0 || chunk[n - 1] != '\n')
				continue; /* the rest of this line is still to come */
		}
		lineno++;
		if (too_long)
			msg_add(m, "%s line %ld is longer than %d bytes", path, lineno, ENV_LINE_MAX);
		else if (memchr(line.p ? line.p : "", '\0', line.n))
			msg_add(m, "%s line %ld holds a NUL byte", path, lineno);
		else if (line.n)
			env_line(src, line.p);
		buf_reset(&line);
		too_long = 0;
	}
	buf_free(&line);
}

static void load_env_file(const char *path, struct source *src, struct msg *m)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	load_env_stream(f, path, src, m);
	fclose(f);
}

static void load_environ(struct source *src)
{
	for (char **ep = environ; *ep; ep++) {
		const char *eq = strchr(*ep, '=');
		if (eq && wanted_name(*ep, (size_t)(eq - *ep)))
			source_set(src, *ep, (size_t)(eq - *ep), eq + 1, 0);
	}
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

/* ---- one value ------------------------------------------------------------------ */

/* Sets `field` from `v` per `d`; on a bad value adds to `m` under `name`. */
static void set_value(const struct cfg_def *d, const char *name, const char *v, char *field, struct msg *m)
{
	long long n = 0;
	const char *shown = d->secret ? "********" : v;
	switch (d->type) {
	case CFG_STR: {
		size_t max = d->max ? (size_t)d->max : STR_MAX;
		size_t len = strlen(v);
		if (len > max) {
			msg_add(m, "%s is %zu bytes long; at most %zu are accepted", name, len, max);
			return;
		}
		char *copy = xstrdup(v);
		if (!copy) {
			msg_add(m, "%s: out of memory", name);
			return;
		}
		xfree(*(char **)field);
		*(char **)field = copy;
		return;
	}
	case CFG_INT:
	case CFG_LONG:
		if (parse_int(v, &n) || n < d->min || n > d->max)
			break;
		if (d->type == CFG_INT)
			*(int *)field = (int)n;
		else
			*(long *)field = (long)n;
		return;
	case CFG_BYTES:
		if (parse_bytes(v, &n) || n < d->min || n > d->max)
			break;
		*(size_t *)field = (size_t)n;
		return;
	case CFG_BOOL:
		if (parse_bool(v, &n))
			break;
		*(int *)field = (int)n;
		return;
	}
	if (strlen(shown) > 64)
		shown = "(a long value)";
	if (d->type == CFG_BOOL)
		msg_add(m, "%s=\"%s\" must be true or false", name, shown);
	else
		msg_add(m, "%s=\"%s\" must be %s %lld..%lld", name, shown,
			d->type == CFG_BYTES ? "a size in bytes (K/M/G suffixes) in" : "an integer in", d->min, d->max);
}

/* ---- the language models ------------------------------------------------------------ */

static void llm_var(char *out, size_t cap, const char *name, const char *what)
{
	size_t k = (size_t)snprintf(out, cap, "BOOKD_LLM_");
	for (const char *s = name; *s && k + 1 < cap; s++)
		out[k++] = (char)toupper((unsigned char)*s);
	snprintf(out + k, cap - k, "_%s", what);
}

static void load_llm(struct config *c, struct source *src, struct msg *m)
{
	char *copy = xstrdup(c->llm_providers ? c->llm_providers : "");
	if (!copy) {
		msg_add(m, "BOOKD_LLM_PROVIDERS: out of memory");
		return;
	}
	char *save = NULL;
	for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		while (*item == ' ')
			item++;
		size_t il = strlen(item);
		while (il && item[il - 1] == ' ')
			item[--il] = '\0';
		if (!*item)
			continue;
		char *colon = strchr(item, ':');
		if (!colon || colon == item || !colon[1]) {
			msg_add(m, "BOOKD_LLM_PROVIDERS: \"%.64s\" is not NAME:MODEL", item);
			continue;
		}
		*colon = '\0';
		const char *name = item, *model = colon + 1;
		size_t nl = strlen(name);
		int ok = nl < 32 && strlen(model) < 128;
		for (const char *s = name; ok && *s; s++)
			ok = isalnum((unsigned char)*s) || *s == '_';
		if (!ok) {
			msg_add(m, "BOOKD_LLM_PROVIDERS: provider name \"%.32s\" must be up to 31 letters, digits or _ "
				   "(and a model name under 128 bytes)", name);
			continue;
		}
		int dup = 0;
		for (int i = 0; i < c->nllm; i++)
			dup |= !strcasecmp(c->llm[i].name, name);
		if (dup) {
			msg_add(m, "BOOKD_LLM_PROVIDERS: %s is listed twice", name);
			continue;
		}
		if (c->nllm == CONFIG_LLM_MAX) {
			msg_add(m, "BOOKD_LLM_PROVIDERS: at most %d providers", CONFIG_LLM_MAX);
			break;
		}
		struct config_llm *p = &c->llm[c->nllm++];
		p->name = xstrdup(name);
		p->model = xstrdup(model);
		if (!p->name || !p->model) {
			msg_add(m, "BOOKD_LLM_PROVIDERS: out of memory");
			continue;
		}
		const char *def_url = NULL, *def_api = "openai";
		for (size_t k = 0; k < ARRAY_LEN(known_llm); k++)
			if (!strcasecmp(known_llm[k].name, name)) {
				def_url = known_llm[k].url;
				def_api = known_llm[k].api;
			}
		for (size_t k = 0; k < ARRAY_LEN(llm_defs); k++) {
			const struct cfg_def *d = &llm_defs[k];
			char var[96];
			llm_var(var, sizeof(var), name, d->name);
			struct kv *kv = source_get(src, var);
			const char *v = kv && (kv->val[0] || d->type != CFG_STR) ? kv->val : NULL;
			if (!v && d->offset == LOFF(url))
				v = def_url;
			if (!v && d->offset == LOFF(api))
				v = def_api;
			if (!v)
				v = d->def;
			if (!v) {
				msg_add(m, "%s is required for the provider %s", var, name);
				continue;
			}
			if (d->type == CFG_INT && !*v)
				v = d->def;
			set_value(d, var, v, (char *)p + d->offset, m);
		}
		if (p->api && strcmp(p->api, "openai") && strcmp(p->api, "anthropic")) {
			char var[96];
			llm_var(var, sizeof(var), name, "API");
			msg_add(m, "%s=\"%s\" must be openai or anthropic", var, p->api);
		}
	}
	xfree(copy);
}

/* ---- names nobody reads ---------------------------------------------------------------- */

static int distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 63 || lb > 63)
		return 99;
	int row[64];
	for (size_t j = 0; j <= lb; j++)
		row[j] = (int)j;
	for (size_t i = 1; i <= la; i++) {
		int prev = row[0];
		row[0] = (int)i;
		for (size_t j = 1; j <= lb; j++) {
			int cur = row[j];
			int sub = prev + (a[i - 1] != b[j - 1]);
			int del = row[j] + 1, ins = row[j - 1] + 1;
			row[j] = MIN(sub, MIN(del, ins));
			prev = cur;
		}
	}
	return row[lb];
}

/* A name that no row read: in .env always worth a word (the file is bookd's);
 * from the environment only when it looks like a typo of a real name. */
static void warn_unknown(const struct config *c, const struct source *src)
{
	for (int i = 0; i < src->n; i++) {
		const struct kv *kv = &src->v[i];
		if (kv->used)
			continue;
		if (!strncmp(kv->name, "BOOKD_LLM_", 10)) {
			const char *rest = kv->name + 10, *us = strrchr(rest, '_');
			int patterned = 0;
			for (size_t k = 0; us && k < ARRAY_LEN(llm_defs); k++)
				patterned |= !strcmp(us + 1, llm_defs[k].name);
			if (patterned) {
				log_warn("configuration: %s is set, but %.*s is not in BOOKD_LLM_PROVIDERS (%s)", kv->name,
					 (int)(us - rest), rest, c->llm_providers ? c->llm_providers : "");
				continue;
			}
		}
		const char *best = NULL;
		int bd = 99;
		for (size_t k = 0; k < ARRAY_LEN(defs); k++) {
			int d = distance(kv->name, defs[k].name);
			if (d < bd) {
				bd = d;
				best = defs[k].name;
			}
		}
		if (bd <= 2)
			log_warn("configuration: unknown setting %s%s (did you mean %s?)", kv->name,
				 kv->from_file ? " in .env" : "", best);
		else if (kv->from_file)
			log_warn("configuration: unknown setting %s in .env (see bookd --help)", kv->name);
	}
}

/* ---- loading ------------------------------------------------------------------------ */

static int load(struct config *c, struct source *src, struct msg *m)
{
	for (size_t i = 0; i < ARRAY_LEN(defs); i++) {
		const struct cfg_def *d = &defs[i];
		struct kv *kv = source_get(src, d->name);
		const char *v = kv ? kv->val : d->def;
		char *field = (char *)c + d->offset;
		if (d->type == CFG_STR && !*(char **)field && !(*(char **)field = xstrdup(d->def)))
			msg_add(m, "%s: out of memory", d->name);
		set_value(d, d->name, v, field, m);
	}
	if (src->oom)
		msg_add(m, "out of memory reading the configuration");
	load_llm(c, src, m);

	/* Validation beyond types. */
	if (c->log_level && strcmp(c->log_level, "debug") && strcmp(c->log_level, "info") &&
	    strcmp(c->log_level, "warn") && strcmp(c->log_level, "error"))
		msg_add(m, "BOOKD_LOG_LEVEL=\"%.64s\" must be debug, info, warn or error", c->log_level);
	if (c->forwarded_header && strcasecmp(c->forwarded_header, "x-forwarded-for") &&
	    strcasecmp(c->forwarded_header, "forwarded") && strcasecmp(c->forwarded_header, "x-real-ip"))
		msg_add(m, "BOOKD_FORWARDED_HEADER=\"%.64s\" must be x-forwarded-for, forwarded or x-real-ip",
			c->forwarded_header);
	if (c->auth_mode && strcmp(c->auth_mode, "jwt") && strcmp(c->auth_mode, "api_key"))
		msg_add(m, "BOOKD_AUTH_MODE=\"%.64s\" must be jwt or api_key", c->auth_mode);
	if (c->tts && strcmp(c->tts, "espeak") && strcmp(c->tts, "openai"))
		msg_add(m, "BOOKD_TTS=\"%.64s\" must be espeak or openai", c->tts);
	if (c->tts && !strcmp(c->tts, "openai") && c->tts_url && !c->tts_url[0])
		msg_add(m, "BOOKD_TTS_URL=\"\" must be set when BOOKD_TTS=openai");
	if (c->auth_mode && !strcmp(c->auth_mode, "api_key") && c->api_key && !c->api_key[0])
		msg_add(m, "BOOKD_API_KEY=\"\" must be set when BOOKD_AUTH_MODE=api_key");
	if (c->jwt_secret && c->jwt_secret[0] && strlen(c->jwt_secret) < 32)
		msg_add(m, "BOOKD_JWT_SECRET=\"********\" must be at least 32 characters");
	if (c->jwt_secret_previous && c->jwt_secret_previous[0] && strlen(c->jwt_secret_previous) < 32)
		msg_add(m, "BOOKD_JWT_SECRET_PREVIOUS=\"********\" must be at least 32 characters");
	if (c->storage && strcmp(c->storage, "local") && strcmp(c->storage, "s3"))
		msg_add(m, "BOOKD_STORAGE=\"%.32s\" must be local or s3", c->storage);
	if (c->storage && !strcmp(c->storage, "s3"))
		for (size_t i = 0; i < 4; i++) {
			static const char *const names[] = { "BOOKD_S3_ENDPOINT", "BOOKD_S3_BUCKET",
							     "BOOKD_S3_ACCESS_KEY", "BOOKD_S3_SECRET_KEY" };
			const char *v = i == 0 ? c->s3_endpoint : i == 1 ? c->s3_bucket : i == 2 ? c->s3_access_key
												  : c->s3_secret_key;
			if (!v || !v[0])
				msg_add(m, "%s must be set when BOOKD_STORAGE=s3", names[i]);
		}
	if (c->host && c->host[0] == '\0')
		msg_add(m, "BOOKD_HOST=\"\" must not be empty");
	if (c->data_dir && c->data_dir[0] == '\0')
		msg_add(m, "BOOKD_DATA_DIR=\"\" must not be empty");
	if (c->default_book && c->default_book[0] && !uuid_valid(c->default_book, strlen(c->default_book)))
		msg_add(m, "BOOKD_DEFAULT_BOOK=\"%.64s\" must be a book id", c->default_book);
	if (c->site_base_url && (c->site_base_url[0] != '/' || strstr(c->site_base_url, "//") ||
				 strstr(c->site_base_url, "/.") || strpbrk(c->site_base_url, "\\?#")))
		msg_add(m, "BOOKD_SITE_BASE_URL=\"%.64s\" must be a path such as / or /my-book/", c->site_base_url);
	if (m->bad)
		return -1;
	warn_unknown(c, src);
	if (c->threads == 0) {
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		c->threads = ncpu < 2 ? 2 : (int)ncpu;
	}
	return 0;
}

int config_load(struct config *c, const char *env_file, char *msg, size_t msglen)
{
	struct source src = { 0 };
	struct msg m = { msg, msglen, 0, 0 };
	memset(c, 0, sizeof(*c));
	if (msglen)
		msg[0] = '\0';
	load_env_file(env_file ? env_file : ".env", &src, &m);
	load_environ(&src);
	int rc = load(c, &src, &m);
	source_free(&src);
	if (rc)
		config_free(c);
	return rc;
}

int config_parse_env_text(const char *text, size_t n, char *msg, size_t msglen)
{
	struct source src = { 0 };
	struct msg m = { msg, msglen, 0, 0 };
	struct config c;
	memset(&c, 0, sizeof(c));
	if (msglen)
		msg[0] = '\0';
	FILE *f = n ? fmemopen((void *)text, n, "r") : NULL;
	if (f) {
		load_env_stream(f, "(text)", &src, &m);
		fclose(f);
	}
	int rc = load(&c, &src, &m);
	source_free(&src);
	config_free(&c);
	return rc;
}

void config_free(struct config *c)
{
	for (size_t i = 0; i < ARRAY_LEN(defs); i++)
		if (defs[i].type == CFG_STR) {
			char **p = (char **)((char *)c + defs[i].offset);
			xfree(*p);
			*p = NULL;
		}
	for (int i = 0; i < c->nllm; i++) {
		struct config_llm *p = &c->llm[i];
		if (p->key)
			memset(p->key, 0, strlen(p->key));
		xfree(p->name);
		xfree(p->model);
		xfree(p->url);
		xfree(p->key);
		xfree(p->api);
		memset(p, 0, sizeof(*p));
	}
	c->nllm = 0;
}

static void print_value(FILE *f, const char *name, const struct cfg_def *d, const char *field)
{
	switch (d->type) {
	case CFG_STR: {
		const char *v = *(char *const *)field;
		fprintf(f, "%s=%s\n", name, d->secret && v && *v ? "********" : (v ? v : ""));
		break;
	}
	case CFG_INT:
		fprintf(f, "%s=%d\n", name, *(const int *)field);
		break;
	case CFG_BYTES:
		fprintf(f, "%s=%zu\n", name, *(const size_t *)field);
		break;
	case CFG_BOOL:
		fprintf(f, "%s=%s\n", name, *(const int *)field ? "true" : "false");
		break;
	case CFG_LONG:
		fprintf(f, "%s=%ld\n", name, *(const long *)field);
		break;
	}
}

void config_print(const struct config *c, FILE *f)
{
	for (size_t i = 0; i < ARRAY_LEN(defs); i++)
		print_value(f, defs[i].name, &defs[i], (const char *)c + defs[i].offset);
	for (int i = 0; i < c->nllm; i++)
		for (size_t k = 0; k < ARRAY_LEN(llm_defs); k++) {
			char var[96];
			llm_var(var, sizeof(var), c->llm[i].name, llm_defs[k].name);
			print_value(f, var, &llm_defs[k], (const char *)&c->llm[i] + llm_defs[k].offset);
		}
}

void config_print_help(FILE *f)
{
	for (size_t i = 0; i < ARRAY_LEN(defs); i++)
		fprintf(f, "  %-24s %s (default: %s)\n", defs[i].name, defs[i].help,
			defs[i].def[0] ? defs[i].def : "unset");
	for (size_t i = 0; i < ARRAY_LEN(llm_defs); i++) {
		char var[64];
		snprintf(var, sizeof(var), "BOOKD_LLM_<NAME>_%s", llm_defs[i].name);
		fprintf(f, "  %-24s %s (default: %s)\n", var, llm_defs[i].help,
			llm_defs[i].def && llm_defs[i].def[0] ? llm_defs[i].def : "unset");
	}
}
