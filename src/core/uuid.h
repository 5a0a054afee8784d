#ifndef BOOKD_UUID_H
#define BOOKD_UUID_H

#include <stddef.h>

#define UUID_STR_LEN 37 /* 36 characters + NUL */

/* A time-ordered UUID (RFC 9562 version 7): 48-bit ms timestamp, then random
 * bits; ids made later in the same process always sort after earlier ones. */
int uuid_v7(char out[UUID_STR_LEN]);
/* 1 when s[0..n) is a canonical lowercase or uppercase UUID string. */
int uuid_valid(const char *s, size_t n);
/* n random bytes from the kernel; 0 on success. */
int random_bytes(void *p, size_t n);

#endif
