#include "ratelimit.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "../core/hash.h"
#include "../core/mem.h"

#define KEY_MAX 160

struct bucket {
	char key[KEY_MAX];
	double tokens;
	int64_t at; /* ms of the last update */
	int used;
};

struct ratelimit {
	pthread_mutex_t lock;
	double burst, per_ms;
	int n;
	struct bucket *b;
};

struct ratelimit *ratelimit_new(double burst, double per_minute, int max_keys)
{
	struct ratelimit *rl = xcalloc(1, sizeof(*rl));
	if (!rl)
		return NULL;
	rl->b = xcalloc((size_t)max_keys, sizeof(*rl->b));
	if (!rl->b) {
		xfree(rl);
		return NULL;
	}
	rl->n = max_keys;
	rl->burst = burst;
	rl->per_ms = per_minute / 60000.0;
	pthread_mutex_init(&rl->lock, NULL);
	return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
	if (!rl)
		return;
	pthread_mutex_destroy(&rl->lock);
	xfree(rl->b);
	xfree(rl);
}

int ratelimit_hit(struct ratelimit *rl, const char *key, int take, int64_t now, int *retry_after)
{
	uint64_t h = hash_fnv1a(key);
	pthread_mutex_lock(&rl->lock);
	/* Open addressing over a small window; a full window evicts its oldest. */
	struct bucket *found = NULL, *oldest = NULL, *fresh = NULL;
	for (int i = 0; i < 8; i++) {
		struct bucket *b = &rl->b[(h + (uint64_t)i) % (uint64_t)rl->n];
		if (b->used) {
			b->tokens = fmin(rl->burst, b->tokens + (double)(now - b->at) * rl->per_ms);
			b->at = now;
			if (b->tokens >= rl->burst) /* full again: forget */
				b->used = 0;
		}
		if (b->used && strncmp(b->key, key, KEY_MAX - 1) == 0) {
			found = b;
			break;
		}
		if (!b->used && !fresh)
			fresh = b;
		if (b->used && (!oldest || b->tokens > oldest->tokens))
			oldest = b;
	}
	if (!found) {
		found = fresh ? fresh : oldest;
		snprintf(found->key, sizeof(found->key), "%s", key);
		found->tokens = rl->burst;
		found->at = now;
		found->used = 1;
	}
	int rc = 0;
	if (found->tokens < 1.0) {
		*retry_after = (int)ceil((1.0 - found->tokens) / rl->per_ms / 1000.0);
		if (*retry_after < 1)
			*retry_after = 1;
		rc = -1;
	} else if (take) {
		found->tokens -= 1.0;
	}
	pthread_mutex_unlock(&rl->lock);
	return rc;
}

void ratelimit_refund(struct ratelimit *rl, const char *key)
{
	uint64_t h = hash_fnv1a(key);
	pthread_mutex_lock(&rl->lock);
	for (int i = 0; i < 8; i++) {
		struct bucket *b = &rl->b[(h + (uint64_t)i) % (uint64_t)rl->n];
		if (b->used && strncmp(b->key, key, KEY_MAX - 1) == 0) {
			b->tokens = fmin(rl->burst, b->tokens + 1.0);
			break;
		}
	}
	pthread_mutex_unlock(&rl->lock);
}
