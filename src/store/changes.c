#include "changes.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "../core/cache.h"
#include "../core/hash.h"
#include "../core/mem.h"

#define NCOUNTERS 1024 /* power of two */
#define KEY_MAX 128
#define ROWS_BYTES (8u << 20)

struct changes {
	int enabled;
	/* Even while the listener is up, odd while it is down; bumped by both. */
	atomic_uint_fast32_t epoch;
	atomic_uint_fast32_t counter[NCOUNTERS];
	struct cache *rows;
};

static atomic_uint_fast32_t *counter_of(struct changes *ch, const char *key)
{
	return &ch->counter[hash_fnv1a(key) & (NCOUNTERS - 1)];
}

static void heard(void *ctx, enum db_event ev, const char *payload)
{
	struct changes *ch = ctx;
	switch (ev) {
	case DB_LISTEN_UP: /* what was said while we were deaf is lost */
	case DB_LISTEN_DOWN:
		atomic_fetch_add(&ch->epoch, 1);
		break;
	case DB_LISTEN_NOTIFY:
		if (payload && *payload)
			atomic_fetch_add(counter_of(ch, payload), 1);
		else /* no key: anything may have changed */
			atomic_fetch_add(&ch->epoch, 2);
		break;
	}
}

int changes_open(db *d, struct changes **out, struct err *e)
{
	struct changes *ch = xcalloc(1, sizeof(*ch));
	if (!ch)
		return err_set(e, ERR_INTERNAL, "out of memory");
	atomic_init(&ch->epoch, 1); /* down until the listener says it is up */
	ch->enabled = db_dialect(d) == DB_POSTGRES;
	if (ch->enabled && !(ch->rows = cache_new(ROWS_BYTES))) {
		xfree(ch);
		return err_set(e, ERR_INTERNAL, "out of memory");
	}
	if (ch->enabled && db_listen(d, CHANGES_CHANNEL, heard, ch, e)) {
		cache_free(ch->rows);
		xfree(ch);
		return e->code;
	}
	*out = ch;
	return 0;
}

/* After db_unlisten: no callback of the listener runs any more. */
void changes_free(struct changes *ch)
{
	if (!ch)
		return;
	cache_free(ch->rows);
	xfree(ch);
}

uint64_t changes_stamp(struct changes *ch, const char *key)
{
	if (!ch || !ch->enabled)
		return 0;
	uint32_t epoch = (uint32_t)atomic_load(&ch->epoch);
	if (epoch & 1)
		return 0;
	uint32_t n = (uint32_t)atomic_load(counter_of(ch, key));
	return (uint64_t)epoch << 32 | n;
}

void changes_touch(struct changes *ch, const char *key)
{
	if (ch && ch->enabled)
		atomic_fetch_add(counter_of(ch, key), 1);
}

static const char *join(char buf[KEY_MAX], const char *prefix, const char *id)
{
	snprintf(buf, KEY_MAX, "%s%s", prefix, id ? id : "");
	return buf;
}

void changes_touch2(struct changes *ch, const char *prefix, const char *id)
{
	char k[KEY_MAX];
	changes_touch(ch, join(k, prefix, id));
}

uint64_t changes_stamp2(struct changes *ch, const char *prefix, const char *id)
{
	char k[KEY_MAX];
	return changes_stamp(ch, join(k, prefix, id));
}

struct rcbuf *changes_get(struct changes *ch, const char *key, uint64_t stamp)
{
	return stamp ? cache_get(ch->rows, key, (int64_t)stamp) : NULL;
}

void changes_put(struct changes *ch, const char *key, uint64_t stamp, const char *text)
{
	if (!stamp || !text)
		return;
	struct rcbuf *b = rcbuf_new(text, strlen(text) + 1);
	if (b) {
		cache_put(ch->rows, key, (int64_t)stamp, b);
		rcbuf_unref(b);
	}
}
