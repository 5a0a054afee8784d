#ifndef BOOKD_ISBN_H
#define BOOKD_ISBN_H

#include "../core/err.h"

enum isbn_type { ISBN_10 = 10, ISBN_13 = 13 };

struct isbn {
	enum isbn_type type;
	char digits[14]; /* as given, hyphens and spaces removed, X uppercase */
	char isbn13[14]; /* the ISBN-13 form, the key books are found by */
};

/* Parses an ISBN-10 or ISBN-13 with optional hyphens/spaces. On failure returns
 * ERR_INVALID with a message naming the check that failed: "character",
 * "length", "prefix" or "checksum". */
int isbn_parse(const char *s, struct isbn *out, struct err *e) WUR;
const char *isbn_type_name(enum isbn_type t); /* "isbn10" / "isbn13" */

#endif
