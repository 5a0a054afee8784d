#include "arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "mem.h"

struct arena_block {
	struct arena_block *next;
	size_t size, used;
	_Alignas(16) unsigned char data[];
};

#define ALIGN16(n) (((n) + 15u) & ~(size_t)15u)

void arena_init(struct arena *a, size_t first_block)
{
	a->head = NULL;
	a->next_size = first_block ? first_block : 4096;
	a->total = 0;
}

static struct arena_block *block_new(size_t size)
{
	struct arena_block *b = xmalloc(sizeof(*b) + size);
	if (!b)
		return NULL;
	b->next = NULL;
	b->size = size;
	b->used = 0;
	return b;
}

void *arena_alloc(struct arena *a, size_t n)
{
	n = ALIGN16(n ? n : 1);
	struct arena_block *b = a->head;
	if (!b || b->size - b->used < n) {
		if (n > a->next_size / 2) {
			/* Large: own block, linked behind the current one so that the
			 * current block keeps serving small allocations. */
			struct arena_block *big = block_new(n);
			if (!big)
				return NULL;
			big->used = n;
			if (b) {
				big->next = b->next;
				b->next = big;
			} else {
				a->head = big;
			}
			a->total += n;
			return big->data;
		}
		b = block_new(a->next_size);
		if (!b)
			return NULL;
		if (a->next_size < (1u << 20))
			a->next_size *= 2;
		b->next = a->head;
		a->head = b;
	}
	void *p = b->data + b->used;
	b->used += n;
	a->total += n;
	return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *d = arena_alloc(a, n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

char *arena_strdup(struct arena *a, const char *s)
{
	return arena_strndup(a, s, strlen(s));
}

char *arena_printf(struct arena *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	char *d = arena_alloc(a, (size_t)n + 1);
	if (!d)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(d, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return d;
}

void *arena_grow(struct arena *a, void *items, int n, int *cap, size_t size)
{
	if (n < *cap)
		return items;
	int ncap = *cap ? *cap * 2 : 16;
	void *ni = arena_alloc(a, size * (size_t)ncap);
	if (!ni)
		return NULL;
	if (n)
		memcpy(ni, items, size * (size_t)n);
	*cap = ncap;
	return ni;
}

void arena_free(struct arena *a)
{
	struct arena_block *b = a->head;
	while (b) {
		struct arena_block *next = b->next;
		xfree(b);
		b = next;
	}
	a->head = NULL;
	a->total = 0;
}
