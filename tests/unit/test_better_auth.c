/* Better-Auth tokens as requests carry them: the session cookie among
 * others (plain and __Secure- prefixed, quoted, too long), and what a Bearer
 * token that is a JWT looks like. */
#include "unit.h"

#include "providers/better_auth.h"

static void test_cookie_token(void **state)
{
	(void)state;
	char t[64];
	assert_int_equal(better_auth_cookie_token(NULL, t, sizeof(t)), 0);
	assert_int_equal(better_auth_cookie_token("theme=dark; lang=en", t, sizeof(t)), 0);
	assert_int_equal(better_auth_cookie_token("better-auth.session_token=abc.def%3D", t, sizeof(t)), 1);
	assert_string_equal(t, "abc.def%3D");
	assert_int_equal(better_auth_cookie_token("a=1; better-auth.session_token = \"q.v\" ; b=2", t, sizeof(t)), 1);
	assert_string_equal(t, "q.v");
	/* the __Secure- one wins, in either order */
	assert_int_equal(better_auth_cookie_token("__Secure-better-auth.session_token=s; better-auth.session_token=p",
						  t, sizeof(t)),
			 1);
	assert_string_equal(t, "s");
	assert_int_equal(better_auth_cookie_token("better-auth.session_token=p; __Secure-better-auth.session_token=s",
						  t, sizeof(t)),
			 1);
	assert_string_equal(t, "s");
	/* names that merely contain it are other cookies */
	assert_int_equal(better_auth_cookie_token("x-better-auth.session_token=p; better-auth.session_token_x=q", t,
						  sizeof(t)),
			 0);
	/* a value too long is one that cannot be valid */
	char big[200] = "better-auth.session_token=";
	memset(big + strlen(big), 'a', 150);
	assert_int_equal(better_auth_cookie_token(big, t, sizeof(t)), 1);
	assert_string_equal(t, "");
	assert_int_equal(better_auth_cookie_token("better-auth.session_token", t, sizeof(t)), 0);
	assert_int_equal(better_auth_cookie_token(";;; ;", t, sizeof(t)), 0);
}

static void test_jwt_shape(void **state)
{
	(void)state;
	assert_true(better_auth_is_jwt("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"));
	assert_false(better_auth_is_jwt("0123456789abcdef0123456789abcdef"));
	assert_false(better_auth_is_jwt("abc.ZGVm+Zw=="));
	assert_false(better_auth_is_jwt("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0"));
	assert_false(better_auth_is_jwt("eyJ.a.b.c"));
	assert_false(better_auth_is_jwt("eyJ.a+b.c"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cookie_token),
		cmocka_unit_test(test_jwt_shape),
	};
	return cmocka_run_group_tests_name("better_auth", tests, NULL, NULL);
}
