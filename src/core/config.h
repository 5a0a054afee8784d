/*
 * bookd's settings, all in one table (config.c): name, type, default, bounds
 * (a longest length for strings), whether it is a secret, and help text.
 * Values come from the environment, optionally preloaded from a .env file
 * (the environment wins). config_load validates every entry and reports all
 * bad values in one message; a value too long is refused, never cut.
 *
 * Settings of each language model are patterned rows: BOOKD_LLM_<NAME>_URL,
 * _KEY, _API and _TIMEOUT for every NAME listed in BOOKD_LLM_PROVIDERS, read
 * from the same .env and environment as every other row. A BOOKD_* name that
 * no row matches is warned about (with the likely intended name), not fatal.
 */
#ifndef BOOKD_CONFIG_H
#define BOOKD_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "common.h"

#define CONFIG_LLM_MAX 8

/* One language model of BOOKD_LLM_PROVIDERS ("name:model,…"). */
struct config_llm {
	char *name, *model;
	char *url;  /* BOOKD_LLM_<NAME>_URL, or the known provider's */
	char *key;  /* BOOKD_LLM_<NAME>_KEY (secret) */
	char *api;  /* BOOKD_LLM_<NAME>_API: "openai" or "anthropic" */
	int timeout; /* BOOKD_LLM_<NAME>_TIMEOUT, seconds per attempt */
};

struct config {
	char *host;
	int port;
	char *data_dir;
	char *database_url;
	char *api_key; /* secret */
	char *cors_origins;
	size_t max_body;
	int shutdown_timeout;
	int threads;
	int conn_timeout;
	int max_connections;
	int max_connections_per_ip, request_timeout;
	char *trusted_proxies;
	char *forwarded_header;
	char *site_dir, *site_base_url;
	char *log_level;
	size_t cache_bytes;
	int cache_notified;
	int db_pool;
	char *auth_mode; /* "jwt" or "api_key" */
	char *jwt_secret, *jwt_secret_previous; /* secrets */
	int jwt_ttl, refresh_ttl;
	char *jwks_url, *jwt_issuer, *jwt_audience;
	char *better_auth_url;
	int better_auth_cache_seconds, better_auth_timeout_ms, trust_user_header;
	int hash_threads;
	int login_burst, login_per_minute;
	int register_burst, register_per_minute, register_concurrency;
	int workers, worker_max_jobs, job_lease, job_backoff_ms, test_jobs;
	size_t max_upload;
	char *embed_url, *embed_model, *embed_key; /* embed_key: secret */
	int embed_dim, embed_batch, embed_concurrency, embed_timeout, chunk_tokens;
	int chat_anonymous, chat_threads, chat_deadline, chat_top_k, chat_max_tokens, chat_anon_per_minute;
	int transform_text_per_minute;
	long chat_daily_tokens, chat_anon_daily_tokens;
	char *default_book;
	char *llm_providers;
	int llm_tries, llm_breaker_failures, llm_breaker_seconds;
	int nllm;
	struct config_llm llm[CONFIG_LLM_MAX];
	/* storage, speech, metadata */
	char *storage, *s3_endpoint, *s3_bucket, *s3_region, *s3_access_key, *s3_secret_key; /* keys: secret */
	int s3_path_style, s3_presign_seconds;
	char *tts, *tts_url, *tts_key, *tts_model, *tts_voice; /* tts_key: secret */
	int tts_bitrate;
	char *openlibrary_url, *google_books_url, *google_books_key; /* google_books_key: secret */
	int metadata_timeout, metadata_tries;
};

/* Loads defaults, then `env_file` (if it exists; NULL = ".env"), then the
 * environment. On error returns -1 and writes one message naming every bad
 * variable (and every bad .env line) into `msg`. */
int config_load(struct config *c, const char *env_file, char *msg, size_t msglen) WUR;
void config_free(struct config *c);
/* NAME=value lines, secrets shown as ******** (or empty when unset). */
void config_print(const struct config *c, FILE *f);
/* One line per variable with its default and help, for --help. */
void config_print_help(FILE *f);
/* Exposed for fuzzing: parses .env text as config_load would, into a
 * throw-away config. Returns what config_load would. */
int config_parse_env_text(const char *text, size_t n, char *msg, size_t msglen);

#endif
