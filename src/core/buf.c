#include "buf.h"

#include <stdio.h>
#include <string.h>

#include "mem.h"

void buf_init(struct buf *b, size_t max)
{
	b->p = NULL;
	b->n = b->cap = 0;
	b->max = max;
}

static int grow(struct buf *b, size_t need)
{
	if (need > b->max)
		return BUF_TOOBIG;
	if (need + 1 <= b->cap)
		return BUF_OK;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need + 1)
		cap *= 2;
	if (cap > b->max + 1)
		cap = b->max + 1;
	char *p = xrealloc(b->p, cap);
	if (!p)
		return BUF_NOMEM;
	b->p = p;
	b->cap = cap;
	return BUF_OK;
}

int buf_append(struct buf *b, const void *data, size_t n)
{
	if (n > b->max - b->n)
		return BUF_TOOBIG;
	int rc = grow(b, b->n + n);
	if (rc)
		return rc;
	if (n)
		memcpy(b->p + b->n, data, n);
	b->n += n;
	b->p[b->n] = '\0';
	return BUF_OK;
}

int buf_puts(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int buf_putc(struct buf *b, char c)
{
	return buf_append(b, &c, 1);
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return BUF_NOMEM;
	if ((size_t)n < sizeof(small))
		return buf_append(b, small, (size_t)n);
	if ((size_t)n > b->max - b->n)
		return BUF_TOOBIG;
	int rc = grow(b, b->n + (size_t)n);
	if (rc)
		return rc;
	va_start(ap, fmt);
	vsnprintf(b->p + b->n, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->n += (size_t)n;
	return BUF_OK;
}

char *buf_steal(struct buf *b)
{
	char *p = b->p;
	if (!p)
		p = xstrdup("");
	b->p = NULL;
	b->n = b->cap = 0;
	return p;
}

void buf_reset(struct buf *b)
{
	b->n = 0;
	if (b->p)
		b->p[0] = '\0';
}

void buf_free(struct buf *b)
{
	xfree(b->p);
	b->p = NULL;
	b->n = b->cap = 0;
}
