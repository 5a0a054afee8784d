#include "isbn.h"

#include <ctype.h>
#include <string.h>

static char isbn13_check(const char *d12)
{
	int sum = 0;
	for (int i = 0; i < 12; i++)
		sum += (d12[i] - '0') * (i % 2 ? 3 : 1);
	return (char)('0' + (10 - sum % 10) % 10);
}

static char isbn10_check(const char *d9)
{
	int sum = 0;
	for (int i = 0; i < 9; i++)
		sum += (d9[i] - '0') * (10 - i);
	int c = (11 - sum % 11) % 11;
	return c == 10 ? 'X' : (char)('0' + c);
}

const char *isbn_type_name(enum isbn_type t)
{
	return t == ISBN_10 ? "isbn10" : "isbn13";
}

int isbn_parse(const char *s, struct isbn *out, struct err *e)
{
	char d[14];
	size_t n = 0, total = 0;
	memset(out, 0, sizeof(*out));
	for (const char *p = s; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '-' || c == ' ')
			continue;
		total++;
		if (!isdigit(c) && c != 'X' && c != 'x')
			return err_set(e, ERR_INVALID,
				       "invalid ISBN: character '%c' is not allowed (digits, hyphens and spaces only)",
				       isprint(c) ? c : '?');
		if (n < 13)
			d[n] = (char)toupper(c);
		n++;
	}
	if (n != 10 && n != 13)
		return err_set(e, ERR_INVALID, "invalid ISBN: wrong length, %zu digits (an ISBN has 10 or 13)", total);
	d[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (d[i] == 'X' && !(n == 10 && i == 9))
			return err_set(e, ERR_INVALID,
				       "invalid ISBN: character 'X' is allowed only as the last character of an ISBN-10");
	if (n == 13) {
		if (strncmp(d, "978", 3) != 0 && strncmp(d, "979", 3) != 0)
			return err_set(e, ERR_INVALID, "invalid ISBN: an ISBN-13 must start with the prefix 978 or 979");
		char c = isbn13_check(d);
		if (c != d[12])
			return err_set(e, ERR_INVALID, "invalid ISBN: checksum digit is %c, expected %c", d[12], c);
		out->type = ISBN_13;
		memcpy(out->digits, d, 14);
		memcpy(out->isbn13, d, 14);
		return 0;
	}
	char c = isbn10_check(d);
	if (c != d[9])
		return err_set(e, ERR_INVALID, "invalid ISBN: checksum digit is %c, expected %c", d[9], c);
	out->type = ISBN_10;
	memcpy(out->digits, d, 11);
	memcpy(out->isbn13, "978", 3);
	memcpy(out->isbn13 + 3, d, 9);
	out->isbn13[12] = isbn13_check(out->isbn13);
	out->isbn13[13] = '\0';
	return 0;
}
