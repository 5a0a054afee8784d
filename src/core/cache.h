/*
 * A bounded, thread-safe LRU of rendered responses keyed by a string id and a
 * version. A reader asks for (key, version); an entry with another version is
 * stale and is not returned. The version comes from the database on every
 * request, so an entry written by another process's update is never served.
 * Bodies are rcbufs: an evicted body stays alive for the connections sending it.
 */
#ifndef BOOKD_CACHE_H
#define BOOKD_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "rcbuf.h"

struct cache;

/* What an entry costs besides its body (its key, version and links): counted
 * against max_bytes, so many small entries are bounded too. */
#define CACHE_ENTRY_BYTES 168

/* max_bytes 0 gives a cache that stores nothing. */
struct cache *cache_new(size_t max_bytes);
void cache_free(struct cache *c);
/* A new reference (rcbuf_unref it), or NULL. */
struct rcbuf *cache_get(struct cache *c, const char *key, int64_t version);
void cache_put(struct cache *c, const char *key, int64_t version, struct rcbuf *body);
void cache_drop(struct cache *c, const char *key);
size_t cache_bytes(struct cache *c);

#endif
