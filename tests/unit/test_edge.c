/* Unit tests for the HTTP edge's pure parts: trusted-proxy lists and the
 * client address they yield (http/proxy), and connection accounting
 * (http/conns). */
#include "unit.h"

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/conns.h"
#include "http/proxy.h"
#include "core/timeutil.h"

static struct ipaddr ip(const char *s)
{
	struct ipaddr a;
	assert_int_equal(ipaddr_parse(s, strlen(s), &a), 0);
	return a;
}

/* The client as the header p->header names it (NULL: none sent). */
static const char *client_by(const struct proxies *p, const char *peer, const char *line)
{
	static char out[64];
	struct ipaddr pa = ip(peer), c;
	const char *l[1] = { line };
	proxies_client(p, &pa, l, line ? 1 : 0, &c);
	ipaddr_format(&c, out, sizeof(out));
	return out;
}

/* X-Forwarded-For, or Forwarded when only that is given. */
static const char *client(struct proxies *p, const char *peer, const char *xff, const char *fwd)
{
	struct err e = { 0 };
	assert_int_equal(proxies_set_header(p, xff || !fwd ? "x-forwarded-for" : "forwarded", &e), 0);
	const char *r = client_by(p, peer, xff ? xff : fwd);
	p->header = PROXY_XFF;
	return r;
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
	assert_string_equal(client(&p, "127.0.0.1", "1.2.3.4", NULL), "1.2.3.4");
	assert_string_equal(client(&p, "127.0.0.1", NULL, "for=unknown"), "127.0.0.1");
}

/* Only the configured header names the client: the others are whatever the
 * client sent through the proxy. */
static void test_forwarded_header_is_a_setting(void **state)
{
	(void)state;
	struct proxies p;
	struct err e = { 0 };
	assert_int_equal(proxies_parse(&p, "127.0.0.1", &e), 0);
	assert_string_equal(proxies_header_name(&p), "X-Forwarded-For");
	assert_int_equal(proxies_set_header(&p, "Forwarded", &e), 0);
	assert_string_equal(proxies_header_name(&p), "Forwarded");
	assert_string_equal(client_by(&p, "127.0.0.1", "for=5.5.5.5"), "5.5.5.5");
	assert_string_equal(client_by(&p, "127.0.0.1", "1.2.3.4"), "127.0.0.1"); /* not a for= element */
	assert_int_equal(proxies_set_header(&p, "x-real-ip", &e), 0);
	assert_string_equal(proxies_header_name(&p), "X-Real-IP");
	assert_string_equal(client_by(&p, "127.0.0.1", "2001:db8::7"), "2001:db8::7");
	assert_int_equal(proxies_set_header(&p, "", &e), 0);
	assert_string_equal(proxies_header_name(&p), "X-Forwarded-For");
	assert_int_not_equal(proxies_set_header(&p, "via", &e), 0);
	assert_contains(e.msg, "BOOKD_FORWARDED_HEADER");
}

static const char *limit_key(const char *s)
{
	static char out[64];
	struct ipaddr a = ip(s);
	ipaddr_format_limit_key(&a, out, sizeof(out));
	return out;
}

static void test_ipv6_limited_per_64(void **state)
{
	(void)state;
	assert_string_equal(limit_key("192.0.2.1"), "192.0.2.1");
	assert_string_equal(limit_key("::ffff:192.0.2.1"), "192.0.2.1");
	assert_string_equal(limit_key("2001:db8:1:2:a:b:c:d"), "2001:db8:1:2::/64");
	assert_string_equal(limit_key("2001:db8:1:2::1"), "2001:db8:1:2::/64");
	assert_string_equal(limit_key("2001:db8:1:3::1"), "2001:db8:1:3::/64");

	/* one /64 shares the per-address connection limit; another does not */
	struct conns cs;
	conns_init(&cs, 100, 2, 60, NULL);
	char s[64];
	struct conn *c[6];
	for (int i = 0; i < 6; i++) {
		snprintf(s, sizeof(s), "2001:db8:1:2::%x", i + 1);
		struct ipaddr a = ip(s);
		assert_int_equal(conns_admit(&cs, &a), 0);
		c[i] = conns_open(&cs, -1, &a);
		assert_int_equal(c[i]->over, i >= 2);
	}
	struct ipaddr next = ip("2001:db8:1:2:ffff::1"), other = ip("2001:db8:1:3::1");
	assert_int_equal(conns_admit(&cs, &next), -1); /* hard: 2 + 4 */
	assert_int_equal(conns_admit(&cs, &other), 0);
	/* IPv4 addresses stay apart */
	struct ipaddr v4a = ip("192.0.2.1"), v4b = ip("192.0.2.2");
	struct conn *x = conns_open(&cs, -1, &v4a), *y = conns_open(&cs, -1, &v4b);
	assert_int_equal(x->over, 0);
	assert_int_equal(y->over, 0);
	conns_close(&cs, x);
	conns_close(&cs, y);
	for (int i = 0; i < 6; i++)
		conns_close(&cs, c[i]);
	assert_int_equal(conns_admit(&cs, &next), 0);
	assert_int_equal(cs.total, 0);
	conns_destroy(&cs);
}

/* A connection libmicrohttpd never started (it failed to set it up on its
 * thread and closed it, telling nobody): its descriptor is never shut down,
 * as the number may be another socket's by then, and after the grace it
 * leaves the counts; what remains is freed with the rest. */
static void test_conns_unstarted_never_shut_down_and_dropped(void **state)
{
	(void)state;
	struct conns cs;
	conns_init(&cs, 100, 1, 1, NULL);
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct ipaddr a = ip("192.0.2.1");
	atomic_long load = 1;
	struct conn *c = conns_open(&cs, sv[0], &a);
	c->load = &load;
	int64_t now = time_mono_us();
	/* past the request deadline, within the grace: counted, untouched */
	assert_int_equal(conns_expire(&cs, now + 2000000), 0);
	char b;
	assert_int_equal(recv(sv[1], &b, 1, MSG_DONTWAIT), -1); /* no EOF: not shut down */
	assert_int_equal(cs.total, 1);
	assert_int_equal(conns_admit(&cs, &a), 0);
	/* past the grace: out of the counts (the address is free again), fd untouched */
	assert_int_equal(conns_expire(&cs, now + (CONNS_START_GRACE_S + 1) * 1000000LL), 0);
	assert_int_equal(recv(sv[1], &b, 1, MSG_DONTWAIT), -1);
	assert_int_equal(cs.total, 0);
	assert_int_equal(load, 0);
	assert_null(cs.head);
	struct conn *d = conns_open(&cs, sv[0], &a);
	assert_int_equal(d->over, 0);
	conns_refused(&cs, d); /* refused at once by libmicrohttpd */
	assert_int_equal(cs.total, 0);
	d = conns_open(&cs, sv[0], &a);
	/* left open at the end: conns_destroy frees it */
	conns_destroy(&cs);
	close(sv[0]);
	close(sv[1]);
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
	assert_ptr_equal(conns_take(&cs, -1), c);
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
		cmocka_unit_test(test_forwarded_header_is_a_setting),
		cmocka_unit_test(test_ipv6_limited_per_64),
		cmocka_unit_test(test_conns_unstarted_never_shut_down_and_dropped),
	};
	return cmocka_run_group_tests_name("edge", tests, NULL, NULL);
}
