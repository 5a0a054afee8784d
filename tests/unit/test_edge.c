/* Unit tests for the HTTP edge's pure parts: trusted-proxy lists and the
 * client address they yield (http/proxy), and connection accounting
 * (http/conns). */
#include "unit.h"

#include <string.h>

#include "http/conns.h"
#include "http/proxy.h"
#include "core/timeutil.h"

static struct ipaddr ip(const char *s)
{
	struct ipaddr a;
	assert_int_equal(ipaddr_parse(s, strlen(s), &a), 0);
	return a;
}

static const char *client(const struct proxies *p, const char *peer, const char *xff, const char *fwd)
{
	static char out[64];
	struct ipaddr pa = ip(peer), c;
	const char *x[1] = { xff }, *f[1] = { fwd };
	proxies_client(p, &pa, x, xff ? 1 : 0, f, fwd ? 1 : 0, &c);
	ipaddr_format(&c, out, sizeof(out));
	return out;
}

static void test_parse_list(void **state)
{
	(void)state;
	struct proxies p;
	struct err e = { 0 };
	assert_int_equal(proxies_parse(&p, "10.0.0.0/8, 192.168.1.7 ,fd00::/8", &e), 0);
	assert_int_equal(p.n, 3);
	struct ipaddr a = ip("10.200.3.4"), b = ip("11.0.0.1"), c = ip("fd12::1"), d = ip("192.168.1.8");
	assert_true(proxies_contains(&p, &a));
	assert_false(proxies_contains(&p, &b));
	assert_true(proxies_contains(&p, &c));
	assert_false(proxies_contains(&p, &d));
	assert_int_equal(proxies_parse(&p, "", &e), 0);
	assert_int_equal(p.n, 0);
	assert_true(proxies_parse(&p, "10.0.0.0/33", &e) < 0);
	assert_contains(e.msg, "10.0.0.0/33");
	assert_true(proxies_parse(&p, "10.0.0.0/8, example.org", &e) < 0);
	assert_contains(e.msg, "example.org");
	assert_true(proxies_parse(&p, "::1/129", &e) < 0);
}

static void test_mapped_peer_matches_v4_block(void **state)
{
	(void)state;
	struct proxies p;
	struct err e = { 0 };
	assert_int_equal(proxies_parse(&p, "127.0.0.0/8", &e), 0);
	struct ipaddr m = ip("::ffff:127.0.0.1");
	assert_true(proxies_contains(&p, &m));
	char out[64];
	ipaddr_format(&m, out, sizeof(out));
	assert_string_equal(out, "127.0.0.1");
}

static void test_client_rightmost_untrusted(void **state)
{
	(void)state;
	struct proxies p;
	struct err e = { 0 };
	assert_int_equal(proxies_parse(&p, "127.0.0.1, 10.0.0.0/8", &e), 0);
	/* an untrusted peer is the client whatever it says */
	assert_string_equal(client(&p, "203.0.113.9", "1.2.3.4", NULL), "203.0.113.9");
	/* a trusted peer: its header names the client */
	assert_string_equal(client(&p, "127.0.0.1", "1.2.3.4", NULL), "1.2.3.4");
	/* what the client prepended is not believed */
	assert_string_equal(client(&p, "127.0.0.1", "6.6.6.6, 1.2.3.4", NULL), "1.2.3.4");
	/* trusted hops are skipped */
	assert_string_equal(client(&p, "127.0.0.1", "6.6.6.6, 1.2.3.4, 10.1.1.1", NULL), "1.2.3.4");
	/* all trusted: the left-most */
	assert_string_equal(client(&p, "127.0.0.1", "10.2.2.2, 10.1.1.1", NULL), "10.2.2.2");
	/* garbage stops the walk at the last address known good */
	assert_string_equal(client(&p, "127.0.0.1", "1.2.3.4, nonsense", NULL), "127.0.0.1");
	/* ports and brackets */
	assert_string_equal(client(&p, "127.0.0.1", "1.2.3.4:5555", NULL), "1.2.3.4");
	assert_string_equal(client(&p, "127.0.0.1", "[2001:db8::1]:443", NULL), "2001:db8::1");
	/* Forwarded, used only without X-Forwarded-For */
	assert_string_equal(client(&p, "127.0.0.1", NULL, "for=6.6.6.6, for=\"[2001:db8::2]:80\";proto=https"),
			    "2001:db8::2");
	assert_string_equal(client(&p, "127.0.0.1", "1.2.3.4", "for=5.5.5.5"), "1.2.3.4");
	assert_string_equal(client(&p, "127.0.0.1", NULL, "for=unknown"), "127.0.0.1");
}

static void test_conns_limits(void **state)
{
	(void)state;
	struct conns cs;
	struct proxies p;
	struct err e = { 0 };
	assert_int_equal(proxies_parse(&p, "10.0.0.1", &e), 0);
	conns_init(&cs, 100, 2, 60, &p);
	struct ipaddr a = ip("192.0.2.1"), px = ip("10.0.0.1");
	struct conn *c[8];
	for (int i = 0; i < 7; i++) {
		assert_int_equal(conns_admit(&cs, &a), i < 6 ? 0 : -1); /* hard: 2 + 4 */
		if (i < 6) {
			c[i] = conns_open(&cs, -1, &a);
			assert_int_equal(c[i]->over, i >= 2);
		}
	}
	/* a trusted proxy has no per-address limit */
	for (int i = 0; i < 10; i++) {
		struct conn *t = conns_open(&cs, -1, &px);
		assert_int_equal(t->over, 0);
		conns_close(&cs, t);
	}
	for (int i = 0; i < 6; i++)
		conns_close(&cs, c[i]);
	assert_int_equal(conns_admit(&cs, &a), 0);
	assert_int_equal(cs.total, 0);
	conns_destroy(&cs);
}

static void test_conns_deadline(void **state)
{
	(void)state;
	struct conns cs;
	conns_init(&cs, 100, 10, 1, NULL);
	struct ipaddr a = ip("192.0.2.1");
	struct conn *c = conns_open(&cs, -1, &a);
	int64_t now = time_mono_us();
	assert_false(conns_late(c, now));
	assert_true(conns_late(c, now + 2000000));
	conns_request_in(&cs, c);
	assert_false(conns_late(c, now + 2000000));
	conns_request_next(&cs, c);
	assert_int_equal(conns_expire(&cs, now + 3000000), 1);
	assert_int_equal(conns_expire(&cs, now + 4000000), 0); /* once */
	conns_close(&cs, c);
	conns_destroy(&cs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_list),
		cmocka_unit_test(test_mapped_peer_matches_v4_block),
		cmocka_unit_test(test_client_rightmost_untrusted),
		cmocka_unit_test(test_conns_limits),
		cmocka_unit_test(test_conns_deadline),
	};
	return cmocka_run_group_tests_name("edge", tests, NULL, NULL);
}
