#include "cache.h"

#include <pthread.h>
#include <string.h>

#include "hash.h"
#include "mem.h"

#define KEY_MAX 112

struct entry {
	char key[KEY_MAX];
	uint64_t hash;
	int64_t version;
	struct rcbuf *body;
	struct entry *hnext;	     /* bucket chain */
	struct entry *prev, *next; /* LRU list, most recent first */
};

_Static_assert(sizeof(struct entry) <= CACHE_ENTRY_BYTES, "CACHE_ENTRY_BYTES too small");

struct cache {
	pthread_mutex_t lock;
	size_t max_bytes, bytes;
	size_t nbuckets, count;
	struct entry **buckets;
	struct entry *head, *tail;
};

#define hash_key hash_fnv1a

struct cache *cache_new(size_t max_bytes)
{
	struct cache *c = xcalloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->nbuckets = 1024;
	c->buckets = xcalloc(c->nbuckets, sizeof(*c->buckets));
	if (!c->buckets) {
		xfree(c);
		return NULL;
	}
	c->max_bytes = max_bytes;
	pthread_mutex_init(&c->lock, NULL);
	return c;
}

static void lru_unlink(struct cache *c, struct entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push(struct cache *c, struct entry *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head)
		c->head->prev = e;
	c->head = e;
	if (!c->tail)
		c->tail = e;
}

static struct entry **find_slot(struct cache *c, const char *key, uint64_t h)
{
	struct entry **p = &c->buckets[h & (c->nbuckets - 1)];
	while (*p && !((*p)->hash == h && strcmp((*p)->key, key) == 0))
		p = &(*p)->hnext;
	return p;
}

static void remove_entry(struct cache *c, struct entry **slot)
{
	struct entry *e = *slot;
	*slot = e->hnext;
	lru_unlink(c, e);
	c->bytes -= e->body->n + CACHE_ENTRY_BYTES;
	c->count--;
	rcbuf_unref(e->body);
	xfree(e);
}

static void grow(struct cache *c)
{
	size_t nb = c->nbuckets * 2;
	struct entry **b = xcalloc(nb, sizeof(*b));
	if (!b)
		return; /* keep the old table: longer chains, still correct */
	for (size_t i = 0; i < c->nbuckets; i++) {
		struct entry *e = c->buckets[i];
		while (e) {
			struct entry *next = e->hnext;
			e->hnext = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
			e = next;
		}
	}
	xfree(c->buckets);
	c->buckets = b;
	c->nbuckets = nb;
}

struct rcbuf *cache_get(struct cache *c, const char *key, int64_t version)
{
	if (!c->max_bytes)
		return NULL;
	uint64_t h = hash_key(key);
	struct rcbuf *r = NULL;
	pthread_mutex_lock(&c->lock);
	struct entry *e = *find_slot(c, key, h);
	if (e && e->version == version) {
		lru_unlink(c, e);
		lru_push(c, e);
		r = rcbuf_ref(e->body);
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

void cache_put(struct cache *c, const char *key, int64_t version, struct rcbuf *body)
{
	if (!c->max_bytes || strlen(key) >= KEY_MAX || body->n > c->max_bytes / 4)
		return;
	uint64_t h = hash_key(key);
	struct entry *e = xcalloc(1, CACHE_ENTRY_BYTES);
	if (!e)
		return;
	memcpy(e->key, key, strlen(key) + 1);
	e->hash = h;
	e->version = version;
	e->body = rcbuf_ref(body);
	pthread_mutex_lock(&c->lock);
	struct entry **slot = find_slot(c, key, h);
	if (*slot)
		remove_entry(c, slot);
	while (c->tail && c->bytes + body->n + CACHE_ENTRY_BYTES > c->max_bytes)
		remove_entry(c, find_slot(c, c->tail->key, c->tail->hash));
	e->hnext = c->buckets[h & (c->nbuckets - 1)];
	c->buckets[h & (c->nbuckets - 1)] = e;
	lru_push(c, e);
	c->bytes += body->n + CACHE_ENTRY_BYTES; /* small entries must count too */
	if (++c->count > c->nbuckets)
		grow(c);
	pthread_mutex_unlock(&c->lock);
}

void cache_drop(struct cache *c, const char *key)
{
	uint64_t h = hash_key(key);
	pthread_mutex_lock(&c->lock);
	struct entry **slot = find_slot(c, key, h);
	if (*slot)
		remove_entry(c, slot);
	pthread_mutex_unlock(&c->lock);
}

size_t cache_bytes(struct cache *c)
{
	pthread_mutex_lock(&c->lock);
	size_t n = c->bytes;
	pthread_mutex_unlock(&c->lock);
	return n;
}

void cache_free(struct cache *c)
{
	if (!c)
		return;
	while (c->head)
		remove_entry(c, find_slot(c, c->head->key, c->head->hash));
	pthread_mutex_destroy(&c->lock);
	xfree(c->buckets);
	xfree(c);
}
