/*
 * Every heap allocation of bookd goes through these wrappers so that tests can
 * make the N-th allocation fail (mem_fail_after) and check that error paths free
 * what they took. They return NULL on failure like malloc; callers check.
 */
#ifndef BOOKD_MEM_H
#define BOOKD_MEM_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
void xfree(void *p);

/* Testing: the allocation after `n` more successful ones fails (that one
 * only); -1 disables. Inert unless set: the countdown is read, not written,
 * while disabled. Returns the countdown it replaces, so a test counts the
 * allocations of an operation as N - mem_fail_after(-1) after arming N. */
long mem_fail_after(long n);

#endif
