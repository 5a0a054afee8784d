/* The chatbot's pure parts: citation markers and the extractive answer. */
#include "unit.h"

#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"
#include "services/chat.h"

static struct search_hit hit(const char *id, const char *text)
{
	struct search_hit h;
	memset(&h, 0, sizeof(h));
	snprintf(h.row.id, sizeof(h.row.id), "%s", id);
	h.row.text = (char *)text;
	h.row.chapter_title = "Chapter";
	h.row.heading = "Heading";
	h.row.anchor = "heading";
	h.score = 1.0;
	return h;
}

/* Four sentences compete for three places: the weakest must lose, and no
 * place may be left uninitialised (a regression: the third candidate used
 * to be compared against an empty slot). */
static void test_extractive_keeps_the_three_best_sentences(void **state)
{
	(void)state;
	struct arena a;
	arena_init(&a, 4096);
	struct search_hit hits[2] = {
		hit("c1", "Robots balance with a zero moment point. Unrelated filler sentence here."),
		hit("c2", "The zero moment point keeps balance on flat ground. A moment of balance matters. "
			  "Robots walk with the zero moment point method."),
	};
	json_t *cit = json_array();
	char *ans = chat_extractive(&a, "zero moment point balance robots", hits, 2, cit);
	assert_non_null(ans);
	assert_null(strstr(ans, "Unrelated filler"));
	int markers = 0;
	for (const char *p = ans; (p = strchr(p, '[')); p++)
		markers++;
	assert_int_equal(markers, 3);
	assert_in_range(json_array_size(cit), 1, 2);
	/* every quote is verbatim in its passage */
	size_t i;
	json_t *c;
	json_array_foreach(cit, i, c) {
		int n = (int)json_integer_value(json_object_get(c, "n"));
		assert_non_null(strstr(hits[n - 1].row.text, json_string_value(json_object_get(c, "quote"))));
	}
	free(ans);
	json_decref(cit);
	arena_free(&a);
}

static void test_extractive_without_matches_says_so(void **state)
{
	(void)state;
	struct arena a;
	arena_init(&a, 4096);
	struct search_hit h = hit("c1", "Nothing here is about the question at all.");
	json_t *cit = json_array();
	char *ans = chat_extractive(&a, "quaternion", &h, 1, cit);
	assert_non_null(strstr(ans, "could not find"));
	assert_int_equal(json_array_size(cit), 0);
	free(ans);
	json_decref(cit);
	arena_free(&a);
}

static void test_markers_out_of_range_are_dropped(void **state)
{
	(void)state;
	int cited[20], n;
	char *s = chat_clean_markers("A [1]. B [7]. C [2, 9]. D [4294967298].", 5, cited, &n);
	assert_string_equal(s, "A [1]. B. C [2]. D.");
	assert_int_equal(n, 2);
	assert_int_equal(cited[0], 1);
	assert_int_equal(cited[1], 2);
	free(s);
}

/* "[1,2,3]" becomes "[1][2][3]": the text grows, and its end used to be cut
 * to the answer's length, mid-character. */
static void test_markers_that_grow_keep_the_whole_text(void **state)
{
	(void)state;
	int cited[20], n;
	const char *in = "Zéro [1,2,3] moment, [1, 2,3,4] point ünïcödé";
	char *s = chat_clean_markers(in, 5, cited, &n);
	assert_non_null(s);
	assert_string_equal(s, "Zéro [1][2][3] moment, [1][2][3][4] point ünïcödé");
	assert_true(utf8_valid(s, strlen(s)));
	assert_int_equal(n, 4);
	free(s);
	/* many markers at the end of a long answer */
	char big[4096] = "";
	size_t off = 0;
	while (off + 16 < sizeof(big))
		off += (size_t)snprintf(big + off, sizeof(big) - off, "é[1,2,3,4,5]");
	s = chat_clean_markers(big, 5, cited, &n);
	assert_non_null(s);
	assert_true(utf8_valid(s, strlen(s)));
	assert_true(strlen(s) > strlen(big));
	assert_int_equal(strlen(s), strlen(big) / 13 * 17);
	free(s);
}

/* Whatever comes in, valid UTF-8 comes out: an invalid byte becomes U+FFFD. */
static void test_markers_output_is_valid_utf8(void **state)
{
	(void)state;
	int cited[20], n;
	char *s = chat_clean_markers("caf\xe9 [2] \xf0\x9f\x98 ok \xc3\xa9", 2, cited, &n);
	assert_non_null(s);
	assert_true(utf8_valid(s, strlen(s)));
	assert_string_equal(s, "caf\xef\xbf\xbd [2] \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd ok \xc3\xa9");
	assert_int_equal(n, 1);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_extractive_keeps_the_three_best_sentences),
		cmocka_unit_test(test_extractive_without_matches_says_so),
		cmocka_unit_test(test_markers_out_of_range_are_dropped),
		cmocka_unit_test(test_markers_that_grow_keep_the_whole_text),
		cmocka_unit_test(test_markers_output_is_valid_utf8),
	};
	return cmocka_run_group_tests_name("chat", tests, NULL, NULL);
}
