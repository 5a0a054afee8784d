/*
 * What other processes changed, for caches in front of the database.
 *
 * On PostgreSQL, triggers (migration 6) NOTIFY `bookd_changes` with a key
 * naming what a committed transaction touched: "book:<id>" (a book or any of
 * its chapters), "user:<id>" (a user or their preferences) or "keys" (an API
 * key). Each process listens; a key's stamp changes whenever such a
 * notification arrives, whenever this process says it wrote (changes_touch),
 * and whenever the listener's connection goes up or down. A cache entry is
 * stored with the stamp read *before* the database was read and is good while
 * the stamp is unchanged, so a change that races with the read is never
 * hidden. While the listener is down (or on SQLite, where other processes
 * have no way to tell) the stamp is 0: trust no cache, ask the database.
 *
 * Consistency: this process's own writes are seen at once; another node's
 * as soon as PostgreSQL's notification reaches this one (well under a
 * millisecond on a LAN, sent at that node's commit).
 *
 * Keys hash into a fixed set of counters, so a change may also invalidate
 * unrelated entries that share a counter: only ever a miss, never a stale hit.
 */
#ifndef BOOKD_CHANGES_H
#define BOOKD_CHANGES_H

#include <stdint.h>

#include "../core/err.h"
#include "../core/rcbuf.h"
#include "db.h"

#define CHANGES_CHANNEL "bookd_changes"

struct changes;

/* Starts listening on PostgreSQL; on SQLite *out is a tracker whose stamps
 * are always 0. */
int changes_open(db *d, struct changes **out, struct err *e) WUR;
/* On PostgreSQL the listener lives as long as the process, and so does ch. */
void changes_free(struct changes *ch);
/* 0: do not trust a cache now. NULL ch is allowed (always 0). */
uint64_t changes_stamp(struct changes *ch, const char *key);
/* This process changed `key`: entries stamped before now are stale. */
void changes_touch(struct changes *ch, const char *key);
/* The same, for a key made of a prefix and an id ("book:", id). */
void changes_touch2(struct changes *ch, const char *prefix, const char *id);
uint64_t changes_stamp2(struct changes *ch, const char *prefix, const char *id);

/* A bounded cache of small records (rows as text), each good while the stamp
 * it was stored under holds: get with the stamp read now, put with the stamp
 * read before the database was. A stamp of 0 gets nothing and puts nothing. */
struct rcbuf *changes_get(struct changes *ch, const char *key, uint64_t stamp);
void changes_put(struct changes *ch, const char *key, uint64_t stamp, const char *text);

#endif
