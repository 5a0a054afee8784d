/*
 * A bump allocator for memory whose lifetime is one request (or one command):
 * many small allocations, one arena_free at the end. Blocks grow geometrically;
 * a large allocation gets a block of its own. Not thread-safe: one owner.
 */
#ifndef BOOKD_ARENA_H
#define BOOKD_ARENA_H

#include <stddef.h>

struct arena_block;

struct arena {
	struct arena_block *head;
	size_t next_size;
	size_t total; /* bytes handed out, for limits and tests */
};

void arena_init(struct arena *a, size_t first_block);
/* 16-byte aligned; NULL on allocation failure. */
void *arena_alloc(struct arena *a, size_t n);
char *arena_strndup(struct arena *a, const char *s, size_t n);
char *arena_strdup(struct arena *a, const char *s);
char *arena_printf(struct arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Room for one more element in an arena-backed array of n `size`-byte
 * elements: `items` itself while n < *cap, else a copy twice as large (16 to
 * begin with) and *cap updated. NULL on allocation failure. */
void *arena_grow(struct arena *a, void *items, int n, int *cap, size_t size);
void arena_free(struct arena *a);

#endif
