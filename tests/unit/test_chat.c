/* The chatbot's pure parts: citation markers and the extractive answer. */
#include "unit.h"

#include <stdlib.h>
#include <string.h>

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_extractive_keeps_the_three_best_sentences),
		cmocka_unit_test(test_extractive_without_matches_says_so),
		cmocka_unit_test(test_markers_out_of_range_are_dropped),
	};
	return cmocka_run_group_tests_name("chat", tests, NULL, NULL);
}
