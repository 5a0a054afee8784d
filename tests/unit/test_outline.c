/* The model's table of contents (services/outline.c): numbered lists in the
 * shapes models write, JSON in the shapes they write, fences, prose around
 * the list, UNKNOWN, caps. */
#include "unit.h"

#include "services/outline.h"

static struct arena A;

static void parse(const char *text, int max, const char **want, int nwant)
{
	char **t;
	int n = -1;
	struct err e = { 0 };
	assert_int_equal(outline_parse(text, strlen(text), max, &A, &t, &n, &e), 0);
	assert_int_equal(n, nwant);
	for (int i = 0; i < nwant; i++)
		assert_string_equal(t[i], want[i]);
}

static void test_numbered_shapes(void **state)
{
	(void)state;
	const char *want[] = { "The Farmers", "Mr. Fox", "The Shooting", "The Terrible Shovels", "Dig for Your Lives",
			       "Chapter 6" };
	parse("Here is the table of contents:\n\n"
	      "1. The Farmers\n"
	      "2) Mr. Fox\n"
	      "  - 3: **The Shooting**\n"
	      "**Chapter 4 \xe2\x80\x93 The Terrible Shovels**\n"
	      "### Chapter 5: \"Dig for Your Lives\"\r\n"
	      "Chapter 6\n"
	      "1984 was not a chapter.\n"
	      "7.\n"
	      "I hope this helps!\n",
	      50, want, 6);
}

static void test_json_shapes(void **state)
{
	(void)state;
	const char *want[] = { "The Farmers", "Mr. Fox", "The Shooting" };
	parse("[\"The Farmers\", \"Chapter 2: Mr. Fox\", \"3. The Shooting\"]", 50, want, 3);
	parse("```json\n{\"chapters\": [{\"number\": 1, \"title\": \"The Farmers\"}, {\"name\": \"Mr. Fox\"},"
	      " {\"title\": \"The Shooting\"}, {\"title\": 7}, {\"title\": \"\"}]}\n```\n",
	      50, want, 3);
	parse("```\n1. The Farmers\n2. Mr. Fox\n3. The Shooting\n```", 50, want, 3);
	/* Not JSON after all: read as lines. */
	parse("{The chapters}\n1. The Farmers\n2. Mr. Fox\n3. The Shooting", 50, want, 3);
}

static void test_unknown_and_caps(void **state)
{
	(void)state;
	const char *want[] = { "A", "B" };
	parse("UNKNOWN", 50, NULL, 0);
	parse("", 50, NULL, 0);
	parse("{\"chapters\": \"none\"}", 50, NULL, 0);
	parse("1. A\n2. B\n3. C\n", 2, want, 2);
	char big[600];
	memset(big, 'x', sizeof(big));
	memcpy(big, "1. ", 3);
	big[sizeof(big) - 1] = '\0';
	parse(big, 50, NULL, 0); /* a title over OUTLINE_TITLE_MAX is dropped */
}

int main(void)
{
	arena_init(&A, 4096);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_numbered_shapes),
		cmocka_unit_test(test_json_shapes),
		cmocka_unit_test(test_unknown_and_caps),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	arena_free(&A);
	return rc;
}
