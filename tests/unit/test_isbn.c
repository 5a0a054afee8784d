/* Unit tests for services/isbn: parsing, normalisation, ISBN-13 derivation and
 * the error messages that name the failed check. */
#include "unit.h"

#include "services/isbn.h"

/* Parses `s`, asserting success; returns the result. */
static struct isbn parse_ok(const char *s)
{
	struct isbn out;
	struct err e = { 0 };
	int rc = isbn_parse(s, &out, &e);
	if (rc != 0)
		print_error("isbn_parse(\"%s\") failed: %s\n", s, e.msg);
	assert_int_equal(rc, 0);
	return out;
}

/* Parses `s`, asserting ERR_INVALID with a message containing `word`. */
static void parse_fails(const char *s, const char *word)
{
	struct isbn out;
	struct err e = { 0 };
	int rc = isbn_parse(s, &out, &e);
	assert_int_equal(rc, ERR_INVALID);
	assert_int_equal(e.code, ERR_INVALID);
	assert_contains(e.msg, word);
}

/* ---- valid ISBN-13 -------------------------------------------------------- */

static void test_isbn13_plain(void **state)
{
	struct isbn i = parse_ok("9780306406157");
	assert_int_equal(i.type, ISBN_13);
	assert_string_equal(i.digits, "9780306406157");
	assert_string_equal(i.isbn13, "9780306406157");
}

static void test_isbn13_hyphens(void **state)
{
	struct isbn i = parse_ok("978-0-306-40615-7");
	assert_int_equal(i.type, ISBN_13);
	assert_string_equal(i.digits, "9780306406157");
	assert_string_equal(i.isbn13, "9780306406157");
}

static void test_isbn13_spaces(void **state)
{
	struct isbn i = parse_ok("978 0 306 40615 7");
	assert_int_equal(i.type, ISBN_13);
	assert_string_equal(i.digits, "9780306406157");
}

static void test_isbn13_mixed_separators(void **state)
{
	struct isbn i = parse_ok(" 978-0 306-40615 7 ");
	assert_string_equal(i.digits, "9780306406157");
	assert_string_equal(i.isbn13, "9780306406157");
}

static void test_isbn13_prefix_979(void **state)
{
	struct isbn i = parse_ok("979-10-90636-07-1");
	assert_int_equal(i.type, ISBN_13);
	assert_string_equal(i.isbn13, "9791090636071");
}

/* ---- valid ISBN-10 -------------------------------------------------------- */

static void test_isbn10_plain(void **state)
{
	struct isbn i = parse_ok("0306406152");
	assert_int_equal(i.type, ISBN_10);
	assert_string_equal(i.digits, "0306406152");
}

static void test_isbn10_hyphens_derives_isbn13(void **state)
{
	struct isbn i = parse_ok("0-306-40615-2");
	assert_int_equal(i.type, ISBN_10);
	assert_string_equal(i.digits, "0306406152");
	assert_string_equal(i.isbn13, "9780306406157");
}

static void test_isbn10_spaces(void **state)
{
	struct isbn i = parse_ok("0 306 40615 2");
	assert_string_equal(i.digits, "0306406152");
	assert_string_equal(i.isbn13, "9780306406157");
}

static void test_isbn10_x_check_digit(void **state)
{
	struct isbn i = parse_ok("0-8044-2957-X");
	assert_int_equal(i.type, ISBN_10);
	assert_string_equal(i.digits, "080442957X");
	/* The ISBN-13 form recomputes the check digit (no X in an ISBN-13). */
	assert_string_equal(i.isbn13, "9780804429573");
}

static void test_isbn10_lowercase_x_is_uppercased(void **state)
{
	struct isbn i = parse_ok("0-8044-2957-x");
	assert_int_equal(i.type, ISBN_10);
	assert_string_equal(i.digits, "080442957X");
	assert_string_equal(i.isbn13, "9780804429573");
}

static void test_isbn10_and_isbn13_share_key(void **state)
{
	struct isbn a = parse_ok("0-306-40615-2");
	struct isbn b = parse_ok("978-0-306-40615-7");
	assert_string_equal(a.isbn13, b.isbn13);
	assert_int_not_equal(a.type, b.type);
}

static void test_isbn_type_name(void **state)
{
	assert_string_equal(isbn_type_name(ISBN_10), "isbn10");
	assert_string_equal(isbn_type_name(ISBN_13), "isbn13");
}

/* ---- errors --------------------------------------------------------------- */

static void test_isbn13_bad_checksum(void **state)
{
	parse_fails("978-0-306-40615-8", "checksum");
}

static void test_isbn10_bad_checksum(void **state)
{
	parse_fails("0-306-40615-3", "checksum");
}

static void test_isbn10_x_where_digit_expected_checksum(void **state)
{
	/* X is allowed in last place but is the wrong check digit here. */
	parse_fails("0-306-40615-X", "checksum");
}

static void test_isbn_too_short(void **state)
{
	parse_fails("123456789", "length");
}

static void test_isbn_eleven_digits(void **state)
{
	parse_fails("03064061521", "length");
}

static void test_isbn_too_long(void **state)
{
	parse_fails("97803064061570", "length");
}

static void test_isbn_empty_string(void **state)
{
	parse_fails("", "length");
}

static void test_isbn_only_separators(void **state)
{
	parse_fails("- - -", "length");
}

static void test_isbn_letter_is_character_error(void **state)
{
	parse_fails("978-0-306-4061a-7", "character");
}

static void test_isbn_dot_is_character_error(void **state)
{
	parse_fails("978.0.306.40615.7", "character");
}

static void test_isbn_tab_is_character_error(void **state)
{
	parse_fails("978\t0306406157", "character");
}

static void test_isbn13_prefix_977(void **state)
{
	/* 9770306406158 has a correct EAN-13 checksum but is an ISSN-style prefix. */
	parse_fails("977-0-306-40615-8", "prefix");
}

static void test_isbn13_prefix_000(void **state)
{
	/* 0000000000000: valid checksum (0), but no 978/979 prefix. */
	parse_fails("0000000000000", "prefix");
}

static void test_isbn10_x_in_middle(void **state)
{
	parse_fails("08044X9573", "character");
}

static void test_isbn10_x_first(void **state)
{
	parse_fails("X804429573", "character");
}

static void test_isbn13_x_last(void **state)
{
	parse_fails("978030640615X", "character");
}

static void test_isbn_error_resets_output(void **state)
{
	struct isbn out;
	struct err e = { 0 };
	memset(&out, 'Z', sizeof(out));
	assert_int_equal(isbn_parse("bogus", &out, &e), ERR_INVALID);
	assert_string_equal(out.isbn13, "");
	assert_string_equal(out.digits, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_isbn13_plain),
		cmocka_unit_test(test_isbn13_hyphens),
		cmocka_unit_test(test_isbn13_spaces),
		cmocka_unit_test(test_isbn13_mixed_separators),
		cmocka_unit_test(test_isbn13_prefix_979),
		cmocka_unit_test(test_isbn10_plain),
		cmocka_unit_test(test_isbn10_hyphens_derives_isbn13),
		cmocka_unit_test(test_isbn10_spaces),
		cmocka_unit_test(test_isbn10_x_check_digit),
		cmocka_unit_test(test_isbn10_lowercase_x_is_uppercased),
		cmocka_unit_test(test_isbn10_and_isbn13_share_key),
		cmocka_unit_test(test_isbn_type_name),
		cmocka_unit_test(test_isbn13_bad_checksum),
		cmocka_unit_test(test_isbn10_bad_checksum),
		cmocka_unit_test(test_isbn10_x_where_digit_expected_checksum),
		cmocka_unit_test(test_isbn_too_short),
		cmocka_unit_test(test_isbn_eleven_digits),
		cmocka_unit_test(test_isbn_too_long),
		cmocka_unit_test(test_isbn_empty_string),
		cmocka_unit_test(test_isbn_only_separators),
		cmocka_unit_test(test_isbn_letter_is_character_error),
		cmocka_unit_test(test_isbn_dot_is_character_error),
		cmocka_unit_test(test_isbn_tab_is_character_error),
		cmocka_unit_test(test_isbn13_prefix_977),
		cmocka_unit_test(test_isbn13_prefix_000),
		cmocka_unit_test(test_isbn10_x_in_middle),
		cmocka_unit_test(test_isbn10_x_first),
		cmocka_unit_test(test_isbn13_x_last),
		cmocka_unit_test(test_isbn_error_resets_output),
	};
	return cmocka_run_group_tests_name("isbn", tests, NULL, NULL);
}
