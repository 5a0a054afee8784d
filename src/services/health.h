/*
 * Readiness: whether the dependencies a request needs are usable now, for
 * /health/ready. The database must answer; language models are optional
 * (without them answers are extractive), so they are described, not checked.
 */
#ifndef BOOKD_HEALTH_H
#define BOOKD_HEALTH_H

struct db;
struct chat;

struct health {
	int database_ok;
	char llm[512]; /* the configured models, "" when none */
};

void health_check(struct db *d, const struct chat *chat, struct health *out);

#endif
