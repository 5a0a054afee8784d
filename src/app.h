/*
 * The runtime: the one owner of every long-lived object. A command asks for
 * the parts it needs; app_open builds them in one order (database, users,
 * search, language models and chat, storage/speech/metadata, jobs, executors
 * and caches, HTTP server)
 * and app_close frees them in the reverse order, whatever was reached.
 *
 * A process that serves or works stops through app_shutdown, in stages that
 * each end by a deadline:
 *   1. quiesce  — stop accepting connections and claiming jobs;
 *   2. drain    — let requests, streamed answers and job steps finish, until
 *                 BOOKD_SHUTDOWN_TIMEOUT;
 *   3. cancel   — hand back the leases of unfinished jobs, then fire the
 *                 cancel signal: provider calls, chat answers and job steps
 *                 give up at their next check;
 *   4. answer   — the executors finish what they hold (each deferred request
 *                 is resumed and answered, 503 when it was cancelled), the
 *                 last streams get a final event, nothing stays suspended;
 *   5. join     — the HTTP daemon stops, job threads are joined (never
 *                 detached), then app_close frees.
 * docs/DESIGN.md draws the ownership graph.
 */
#ifndef BOOKD_APP_H
#define BOOKD_APP_H

#include "api/api.h"
#include "core/config.h"
#include "core/err.h"
#include "core/stop.h"

enum app_part {
	APP_DB = 1 << 0,      /* the database, migrated */
	APP_USERS = 1 << 1,   /* accounts, tokens, keys */
	APP_SEARCH = 1 << 2,  /* chunks, keyword and vector search */
	APP_SYNC = 1 << 3,    /* the vector index follows the database; change notifications */
	APP_CHAT = 1 << 4,    /* language models and the chatbot */
	APP_JOBS = 1 << 5,    /* the job queue (submitting) */
	APP_WORKERS = 1 << 6, /* job worker threads in this process */
	APP_HTTP = 1 << 7,    /* the API server */
	APP_MEDIA = 1 << 8,   /* file storage, speech, book metadata (and the models the pipeline asks) */
};

struct app_runtime {
	const struct config *cfg; /* the caller's; outlives the runtime */
	unsigned parts;
	struct stop cancel; /* fired once shutdown can wait no longer */
	db *db;
	int schema_version;
	char *jwt_secret; /* zeroed before it is freed */
	struct users *users;
	struct search *search;
	struct llm_chain *llm;
	struct chat *chat;
	struct blob_store *blob;
	struct tts *tts;
	struct metadata *metadata;
	struct jobs *jobs;
	char *upload_dir;
	struct app api; /* what HTTP handlers share */
	struct http_server *http;
	struct site *site; /* the static site served beside the API, or NULL */
	int open; /* app_open ran (app_close is a no-op otherwise) */
};

/* Builds `parts` (and what they need). On failure the message says what
 * could not be built; call app_close either way. */
int app_open(struct app_runtime *rt, const struct config *cfg, unsigned parts, struct err *e) WUR;
/* The staged shutdown above; returns 0 when everything finished by the
 * deadline, else the number of requests and job steps that were cut. */
long app_shutdown(struct app_runtime *rt);
/* Frees everything app_open built, in reverse order. */
void app_close(struct app_runtime *rt);

/* The address the server listens on, e.g. "http://127.0.0.1:8000". */
void app_url(const struct app_runtime *rt, char *out, size_t cap);

/* mkdir -p with mode 0700. */
int app_mkdir_private(const char *path) WUR;

#endif
