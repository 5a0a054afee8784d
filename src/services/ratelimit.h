/*
 * Token buckets keyed by a string (a client IP, an account): `burst` tokens,
 * refilled at `per_minute`. A bucket that is full again is forgotten, so the
 * table holds only keys that are being limited; when it is full the oldest
 * entries go. Nobody is locked out for longer than the refill takes.
 */
#ifndef BOOKD_RATELIMIT_H
#define BOOKD_RATELIMIT_H

#include <stdint.h>

struct ratelimit;

struct ratelimit *ratelimit_new(double burst, double per_minute, int max_keys);
void ratelimit_free(struct ratelimit *rl);
/* Takes one token: 0, or -1 with *retry_after (seconds) when none is left.
 * With take = 0 it only checks. */
int ratelimit_hit(struct ratelimit *rl, const char *key, int take, int64_t now_ms, int *retry_after);

/* Gives back one token taken by ratelimit_hit (an attempt that succeeded). */
void ratelimit_refund(struct ratelimit *rl, const char *key);

#endif
