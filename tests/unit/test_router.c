/* Unit tests for http/router: pattern matching, parameters, 404 vs 405,
 * the Allow header and method parsing. */
#include "unit.h"

#include "http/router.h"

static void h_list(http_req *r, void *a) { (void)r; (void)a; }
static void h_create(http_req *r, void *a) { (void)r; (void)a; }
static void h_get(http_req *r, void *a) { (void)r; (void)a; }
static void h_update(http_req *r, void *a) { (void)r; (void)a; }
static void h_chapters(http_req *r, void *a) { (void)r; (void)a; }
static void h_chapter(http_req *r, void *a) { (void)r; (void)a; }
static void h_health(http_req *r, void *a) { (void)r; (void)a; }
static void h_root(http_req *r, void *a) { (void)r; (void)a; }
static void h_search(http_req *r, void *a) { (void)r; (void)a; }

static const struct route routes[] = {
	{ HTTP_GET, "/", h_root, 0, NULL },
	{ HTTP_GET, "/health", h_health, 0, NULL },
	{ HTTP_GET, "/books", h_list, 0, NULL },
	{ HTTP_POST, "/books", h_create, 0, NULL },
	{ HTTP_GET, "/books/search", h_search, 0, NULL },
	{ HTTP_GET, "/books/{id}", h_get, 0, NULL },
	{ HTTP_PATCH | HTTP_DELETE, "/books/{id}", h_update, 0, NULL },
	{ HTTP_GET, "/books/{id}/chapters", h_chapters, 0, NULL },
	{ HTTP_GET | HTTP_PUT, "/books/{id}/chapters/{n}", h_chapter, 0, NULL },
};

static int match(int method, const char *path, struct route_match *m)
{
	memset(m, 0xAB, sizeof(*m)); /* the router must set everything it reports */
	return router_match(routes, ARRAY_LEN(routes), method, path, strlen(path), m);
}

static void assert_param(const struct route_match *m, int i, const char *want)
{
	assert_true(i < m->nparams);
	assert_int_equal(m->params[i].n, strlen(want));
	assert_memory_equal(m->params[i].p, want, strlen(want));
}

/* ---- static routes -------------------------------------------------------- */

static void test_static_route(void **state)
{
	struct route_match m;
	assert_int_equal(match(HTTP_GET, "/health", &m), 1);
	assert_non_null(m.route);
	assert_ptr_equal(m.route->fn, h_health);
	assert_int_equal(m.nparams, 0);
}

static void test_root_route(void **state)
{
	struct route_match m;
	assert_int_equal(match(HTTP_GET, "/", &m), 1);
	assert_ptr_equal(m.route->fn, h_root);
}

static void test_method_selects_route(void **state)
{
	struct route_match m;
	assert_int_equal(match(HTTP_POST, "/books", &m), 1);
	assert_ptr_equal(m.route->fn, h_create);
	assert_int_equal(match(HTTP_GET, "/books", &m), 1);
	assert_ptr_equal(m.route->fn, h_list);
}

static void test_literal_before_param_first_match_wins(void **state)
{
	struct route_match m;
	assert_int_equal(match(HTTP_GET, "/books/search", &m), 1);
	assert_ptr_equal(m.route->fn, h_search);
	assert_int_equal(m.nparams, 0);
}

/* ---- parameters ----------------------------------------------------------- */

static void test_one_param(void **state)
{
	struct route_match m;
	assert_int_equal(match(HTTP_GET, "/books/abc-123", &m), 1);
	assert_ptr_equal(m.route->fn, h_get);
	assert_int_equal(m.nparams, 1);
	assert_param(&m, 0, "abc-123");
}

static void test_two_params(void **state)
{
	struct route_match m;
	assert_int_equal(match(HTTP_GET, "/books/b1/chapters/42", &m), 1);
	assert_ptr_equal(m.route->fn, h_chapter);
	assert_int_equal(m.nparams, 2);
	assert_param(&m, 0, "b1");
	assert_param(&m, 1, "42");
}

static void test_param_points_into_path(void **state)
{
	const char *path = "/books/xyz/chapters";
	struct route_match m;
	assert_int_equal(router_match(routes, ARRAY_LEN(routes), HTTP_GET, path, strlen(path), &m), 1);
	assert_ptr_equal(m.params[0].p, path + 7);
	assert_int_equal(m.params[0].n, 3);
}

static void test_path_len_is_respected(void **state)
{
	/* Only the first 6 bytes are the path: "/books", the rest is ignored. */
	const char *buf = "/books/ignored";
	struct route_match m;
	assert_int_equal(router_match(routes, ARRAY_LEN(routes), HTTP_GET, buf, 6, &m), 1);
	assert_ptr_equal(m.route->fn, h_list);
}

static void test_empty_param_segment_does_not_match(void **state)
{
	struct route_match m;
	assert_int_equal(match(HTTP_GET, "/books//chapters", &m), 0);
	assert_int_equal(m.allowed, 0);
	assert_null(m.route);
}

static void test_empty_trailing_param_does_not_match_param_route(void **state)
{
	struct route_match m;
	/* "/books/" is "/books" with a trailing slash, not "/books/{id}" with "". */
	assert_int_equal(match(HTTP_GET, "/books/", &m), 1);
	assert_ptr_equal(m.route->fn, h_list);
	assert_int_equal(m.nparams, 0);
}

static void test_extra_segment_is_404(void **state)
{
	struct route_match m;
	assert_int_equal(match(HTTP_GET, "/books/1/chapters/2/extra", &m), 0);
	assert_int_equal(m.allowed, 0);
}

/* ---- trailing slash ------------------------------------------------------- */

static void test_trailing_slash_tolerated(void **state)
{
	struct route_match m;
	assert_int_equal(match(HTTP_GET, "/health/", &m), 1);
	assert_ptr_equal(m.route->fn, h_health);
}

static void test_trailing_slash_after_param(void **state)
{
	struct route_match m;
	assert_int_equal(match(HTTP_GET, "/books/b1/", &m), 1);
	assert_ptr_equal(m.route->fn, h_get);
	assert_param(&m, 0, "b1");
}

static void test_double_trailing_slash_not_tolerated(void **state)
{
	struct route_match m;
	assert_int_equal(match(HTTP_GET, "/health//", &m), 0);
	assert_int_equal(m.allowed, 0);
}

static void test_prefix_of_segment_does_not_match(void **state)
{
	struct route_match m;
	assert_int_equal(match(HTTP_GET, "/healthz", &m), 0);
	assert_int_equal(match(HTTP_GET, "/heal", &m), 0);
	assert_int_equal(m.allowed, 0);
}

static void test_empty_path_is_404(void **state)
{
	struct route_match m;
	assert_int_equal(router_match(routes, ARRAY_LEN(routes), HTTP_GET, "", 0, &m), 0);
	assert_int_equal(m.allowed, 0);
}

static void test_path_without_leading_slash_is_404(void **state)
{
	struct route_match m;
	assert_int_equal(match(HTTP_GET, "health", &m), 0);
	assert_int_equal(m.allowed, 0);
}

/* ---- HEAD, 404, 405, OPTIONS ---------------------------------------------- */

static void test_head_matches_get(void **state)
{
	struct route_match m;
	assert_int_equal(match(HTTP_HEAD, "/books/b1", &m), 1);
	assert_ptr_equal(m.route->fn, h_get);
	assert_param(&m, 0, "b1");
}

static void test_head_on_post_only_path_is_405(void **state)
{
	static const struct route only_post[] = { { HTTP_POST, "/upload", h_create, 0, NULL } };
	struct route_match m;
	assert_int_equal(router_match(only_post, 1, HTTP_HEAD, "/upload", 7, &m), 0);
	assert_int_equal(m.allowed, HTTP_POST | HTTP_OPTIONS);
}

static void test_unknown_path_is_404(void **state)
{
	struct route_match m;
	assert_int_equal(match(HTTP_GET, "/nope", &m), 0);
	assert_null(m.route);
	assert_int_equal(m.allowed, 0);
}

static void test_wrong_method_is_405_with_allowed(void **state)
{
	struct route_match m;
	assert_int_equal(match(HTTP_DELETE, "/health", &m), 0);
	assert_null(m.route);
	assert_int_equal(m.allowed, HTTP_GET | HTTP_HEAD | HTTP_OPTIONS);
}

static void test_allowed_unions_all_matching_routes(void **state)
{
	struct route_match m;
	assert_int_equal(match(HTTP_PUT, "/books/b1", &m), 0);
	assert_int_equal(m.allowed,
			 HTTP_GET | HTTP_HEAD | HTTP_PATCH | HTTP_DELETE | HTTP_OPTIONS);
}

static void test_allowed_reported_on_success_too(void **state)
{
	struct route_match m;
	assert_int_equal(match(HTTP_POST, "/books", &m), 1);
	assert_int_equal(m.allowed, HTTP_GET | HTTP_HEAD | HTTP_POST | HTTP_OPTIONS);
}

static void test_options_added_to_allowed(void **state)
{
	struct route_match m;
	/* No route declares OPTIONS, so an OPTIONS request is a 405 that lists it. */
	assert_int_equal(match(HTTP_OPTIONS, "/books/b1/chapters/1", &m), 0);
	assert_true(m.allowed & HTTP_OPTIONS);
	assert_int_equal(m.allowed, HTTP_GET | HTTP_HEAD | HTTP_PUT | HTTP_OPTIONS);
}

static void test_second_route_for_same_pattern(void **state)
{
	struct route_match m;
	assert_int_equal(match(HTTP_DELETE, "/books/b7", &m), 1);
	assert_ptr_equal(m.route->fn, h_update);
	assert_param(&m, 0, "b7");
}

static void test_match_result_reset_between_calls(void **state)
{
	struct route_match m;
	assert_int_equal(match(HTTP_GET, "/books/b1", &m), 1);
	assert_int_equal(router_match(routes, ARRAY_LEN(routes), HTTP_GET, "/x", 2, &m), 0);
	assert_null(m.route);
	assert_int_equal(m.allowed, 0);
}

static void test_too_many_params_does_not_match(void **state)
{
	static const struct route deep[] = {
		{ HTTP_GET, "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}", h_get, 0, NULL },
		{ HTTP_GET, "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}", h_list, 0, NULL },
	};
	struct route_match m;
	const char *p9 = "/1/2/3/4/5/6/7/8/9";
	assert_int_equal(router_match(deep, 2, HTTP_GET, p9, strlen(p9), &m), 0);
	const char *p8 = "/1/2/3/4/5/6/7/8";
	assert_int_equal(router_match(deep, 2, HTTP_GET, p8, strlen(p8), &m), 1);
	assert_ptr_equal(m.route->fn, h_list);
	assert_int_equal(m.nparams, 8);
	assert_param(&m, 7, "8");
}

/* ---- Allow header --------------------------------------------------------- */

static void test_allow_header_order_and_format(void **state)
{
	char out[128];
	router_allow_header(HTTP_POST | HTTP_GET | HTTP_HEAD, out, sizeof(out));
	assert_string_equal(out, "GET, HEAD, POST");
}

static void test_allow_header_all_methods(void **state)
{
	char out[128];
	router_allow_header(HTTP_GET | HTTP_HEAD | HTTP_POST | HTTP_PUT | HTTP_PATCH | HTTP_DELETE |
				    HTTP_OPTIONS,
			    out, sizeof(out));
	assert_string_equal(out, "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
}

static void test_allow_header_single(void **state)
{
	char out[32];
	router_allow_header(HTTP_DELETE, out, sizeof(out));
	assert_string_equal(out, "DELETE");
}

static void test_allow_header_empty_mask(void **state)
{
	char out[32] = "garbage";
	router_allow_header(0, out, sizeof(out));
	assert_string_equal(out, "");
}

static void test_allow_header_from_405(void **state)
{
	struct route_match m;
	char out[128];
	assert_int_equal(match(HTTP_POST, "/books/b1/chapters", &m), 0);
	router_allow_header(m.allowed, out, sizeof(out));
	assert_string_equal(out, "GET, HEAD, OPTIONS");
}

static void test_allow_header_small_buffer_stays_terminated(void **state)
{
	char out[8];
	memset(out, 'Z', sizeof(out));
	router_allow_header(HTTP_GET | HTTP_HEAD | HTTP_POST, out, sizeof(out));
	assert_true(memchr(out, '\0', sizeof(out)) != NULL);
	assert_int_equal(strncmp(out, "GET", 3), 0);
}

/* ---- http_method_parse ---------------------------------------------------- */

static void test_method_parse_known(void **state)
{
	assert_int_equal(http_method_parse("GET"), HTTP_GET);
	assert_int_equal(http_method_parse("HEAD"), HTTP_HEAD);
	assert_int_equal(http_method_parse("POST"), HTTP_POST);
	assert_int_equal(http_method_parse("PUT"), HTTP_PUT);
	assert_int_equal(http_method_parse("PATCH"), HTTP_PATCH);
	assert_int_equal(http_method_parse("DELETE"), HTTP_DELETE);
	assert_int_equal(http_method_parse("OPTIONS"), HTTP_OPTIONS);
}

static void test_method_parse_unknown(void **state)
{
	assert_int_equal(http_method_parse("CONNECT"), 0);
	assert_int_equal(http_method_parse("TRACE"), 0);
	assert_int_equal(http_method_parse(""), 0);
	assert_int_equal(http_method_parse("GETX"), 0);
	assert_int_equal(http_method_parse("GE"), 0);
}

static void test_method_parse_case_sensitive(void **state)
{
	/* RFC 9110: method names are case-sensitive. */
	assert_int_equal(http_method_parse("get"), 0);
	assert_int_equal(http_method_parse("Post"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_static_route),
		cmocka_unit_test(test_root_route),
		cmocka_unit_test(test_method_selects_route),
		cmocka_unit_test(test_literal_before_param_first_match_wins),
		cmocka_unit_test(test_one_param),
		cmocka_unit_test(test_two_params),
		cmocka_unit_test(test_param_points_into_path),
		cmocka_unit_test(test_path_len_is_respected),
		cmocka_unit_test(test_empty_param_segment_does_not_match),
		cmocka_unit_test(test_empty_trailing_param_does_not_match_param_route),
		cmocka_unit_test(test_extra_segment_is_404),
		cmocka_unit_test(test_trailing_slash_tolerated),
		cmocka_unit_test(test_trailing_slash_after_param),
		cmocka_unit_test(test_double_trailing_slash_not_tolerated),
		cmocka_unit_test(test_prefix_of_segment_does_not_match),
		cmocka_unit_test(test_empty_path_is_404),
		cmocka_unit_test(test_path_without_leading_slash_is_404),
		cmocka_unit_test(test_head_matches_get),
		cmocka_unit_test(test_head_on_post_only_path_is_405),
		cmocka_unit_test(test_unknown_path_is_404),
		cmocka_unit_test(test_wrong_method_is_405_with_allowed),
		cmocka_unit_test(test_allowed_unions_all_matching_routes),
		cmocka_unit_test(test_allowed_reported_on_success_too),
		cmocka_unit_test(test_options_added_to_allowed),
		cmocka_unit_test(test_second_route_for_same_pattern),
		cmocka_unit_test(test_match_result_reset_between_calls),
		cmocka_unit_test(test_too_many_params_does_not_match),
		cmocka_unit_test(test_allow_header_order_and_format),
		cmocka_unit_test(test_allow_header_all_methods),
		cmocka_unit_test(test_allow_header_single),
		cmocka_unit_test(test_allow_header_empty_mask),
		cmocka_unit_test(test_allow_header_from_405),
		cmocka_unit_test(test_allow_header_small_buffer_stays_terminated),
		cmocka_unit_test(test_method_parse_known),
		cmocka_unit_test(test_method_parse_unknown),
		cmocka_unit_test(test_method_parse_case_sensitive),
	};
	return cmocka_run_group_tests_name("router", tests, NULL, NULL);
}
