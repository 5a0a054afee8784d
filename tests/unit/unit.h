/* Shared includes and helpers for bookd's cmocka unit tests. */
#ifndef BOOKD_UNIT_H
#define BOOKD_UNIT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fails (printing both strings) unless `hay` contains `needle`. */
#define assert_contains(hay, needle)                                                       \
	do {                                                                               \
		const char *hay_ = (hay), *needle_ = (needle);                             \
		if (!hay_ || !strstr(hay_, needle_)) {                                     \
			print_error("expected \"%s\" to contain \"%s\"\n",                 \
				    hay_ ? hay_ : "(null)", needle_);                      \
			fail();                                                            \
		}                                                                          \
	} while (0)

/* Fails unless `hay` does not contain `needle`. */
#define assert_not_contains(hay, needle)                                                   \
	do {                                                                               \
		const char *hay_ = (hay), *needle_ = (needle);                             \
		if (hay_ && strstr(hay_, needle_)) {                                       \
			print_error("expected \"%s\" not to contain \"%s\"\n", hay_, needle_); \
			fail();                                                            \
		}                                                                          \
	} while (0)

#endif
