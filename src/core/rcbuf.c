#include "rcbuf.h"

#include <string.h>

#include "mem.h"

struct rcbuf *rcbuf_new(const void *data, size_t n)
{
	struct rcbuf *b = xmalloc(sizeof(*b) + n + 1);
	if (!b)
		return NULL;
	atomic_init(&b->refs, 1);
	b->n = n;
	memcpy(b->data, data, n);
	b->data[n] = '\0';
	return b;
}

struct rcbuf *rcbuf_ref(struct rcbuf *b)
{
	atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
	return b;
}

void rcbuf_unref(struct rcbuf *b)
{
	if (b && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
		xfree(b);
}
