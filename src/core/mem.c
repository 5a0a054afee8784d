#include "mem.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_long fail_countdown = -1;

static int should_fail(void)
{
	long v = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
	if (v < 0)
		return 0;
	return atomic_fetch_sub(&fail_countdown, 1) == 0;
}

long mem_fail_after(long n)
{
	return atomic_exchange(&fail_countdown, n);
}

void *xmalloc(size_t n)
{
	return should_fail() ? NULL : malloc(n ? n : 1);
}

void *xcalloc(size_t nmemb, size_t size)
{
	return should_fail() ? NULL : calloc(nmemb ? nmemb : 1, size ? size : 1);
}

void *xrealloc(void *p, size_t n)
{
	return should_fail() ? NULL : realloc(p, n ? n : 1);
}

char *xstrndup(const char *s, size_t n)
{
	char *d = xmalloc(n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

void xfree(void *p)
{
	free(p);
}
