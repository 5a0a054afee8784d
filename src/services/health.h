/*
 * Readiness: whether the dependencies a request needs are usable now, for
 * /health/ready. The database must answer; language models are optional
 * (without them answers are extractive), so they are described, not checked.
 * File storage is pinged: when it is down the pipeline's audio step waits
 * (it retries) and audio reads fail, so the server is degraded, not down.
 */
#ifndef BOOKD_HEALTH_H
#define BOOKD_HEALTH_H

struct db;
struct chat;
struct blob_store;

struct health {
	int database_ok;
	char llm[512]; /* the configured models, "" when none */
	int storage_ok; /* -1: no storage in this process */
	char storage[256]; /* "local", "s3", or what failed */
};

void health_check(struct db *d, const struct chat *chat, struct blob_store *blob, struct health *out);

#endif
