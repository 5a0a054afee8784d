/*
 * A growable byte buffer with a hard cap. Every buffer fed by untrusted input
 * is a buf with a max: appending past it fails with BUF_TOOBIG (and the buffer
 * stays as it was), which callers turn into a 413 or a clear error.
 */
#ifndef BOOKD_BUF_H
#define BOOKD_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "common.h"

enum { BUF_OK = 0, BUF_NOMEM = -1, BUF_TOOBIG = -2 };

struct buf {
	char *p;    /* always NUL-terminated when non-NULL */
	size_t n;   /* bytes used, excluding the NUL */
	size_t cap; /* bytes allocated */
	size_t max; /* hard limit on n */
};

void buf_init(struct buf *b, size_t max);
int buf_append(struct buf *b, const void *data, size_t n) WUR;
int buf_puts(struct buf *b, const char *s) WUR;
int buf_putc(struct buf *b, char c) WUR;
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3))) WUR;
/* Hands the bytes over to the caller (free with xfree); the buf is reset. */
char *buf_steal(struct buf *b);
void buf_reset(struct buf *b);
void buf_free(struct buf *b);

#endif
