/* An immutable, reference-counted byte buffer: a rendered response shared by
 * the cache and by every connection that is sending it. */
#ifndef BOOKD_RCBUF_H
#define BOOKD_RCBUF_H

#include <stdatomic.h>
#include <stddef.h>

struct rcbuf {
	atomic_int refs;
	size_t n;
	char data[];
};

/* A copy of data[0..n) with one reference; NULL when out of memory. */
struct rcbuf *rcbuf_new(const void *data, size_t n);
struct rcbuf *rcbuf_ref(struct rcbuf *b);
void rcbuf_unref(struct rcbuf *b);

#endif
