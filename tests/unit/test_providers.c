/* The provider layer's pure parts and the HTTP client's breaker bookkeeping:
 * Retry-After values, both stream parsers fed in pieces, the extractive
 * answerer, and what does (a timeout) and does not (a cancellation, a spent
 * deadline) count against a circuit breaker. */
#include "unit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/stop.h"
#include "core/timeutil.h"
#include "providers/http_client.h"
#include "providers/llm.h"
#include "providers/llm_sse.h"

static void test_retry_after_values(void **state)
{
	(void)state;
	int64_t now = 1700000000; /* Tue, 14 Nov 2023 22:13:20 GMT */
	assert_int_equal(phttp_retry_after_ms(" 3\r\n", now), 3000);
	assert_int_equal(phttp_retry_after_ms("0", now), 0);
	assert_int_equal(phttp_retry_after_ms(" Tue, 14 Nov 2023 22:13:25 GMT\r\n", now), 5000);
	assert_int_equal(phttp_retry_after_ms("Tue, 14 Nov 2023 22:13:00 GMT", now), 0); /* past */
	assert_int_equal(phttp_retry_after_ms("soon", now), -1);
	assert_int_equal(phttp_retry_after_ms("", now), -1);
	assert_true(phttp_retry_after_ms("99999999999999999999", now) > 1000L * 86400);
}

static int collect(void *ctx, const char *t, size_t n)
{
	return buf_append(ctx, t, n) ? 1 : 0;
}

/* Feeds `s` to a parser in pieces of `step` bytes; returns finish()'s verdict. */
static int parse(enum llm_wire wire, const char *s, size_t step, struct buf *text, int *pt, int *ct)
{
	struct llm_sse p;
	buf_init(text, 1 << 16);
	llm_sse_init(&p, wire, 4096, collect, text);
	int rc = 0;
	for (size_t at = 0, n = strlen(s); at < n && !rc; at += step)
		rc = llm_sse_feed(&p, s + at, MIN(step, n - at));
	rc = rc ? -1 : llm_sse_finish(&p);
	*pt = p.prompt_tokens;
	*ct = p.completion_tokens;
	llm_sse_free(&p);
	return rc;
}

static void test_sse_openai_any_split(void **state)
{
	(void)state;
	const char *s = "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n"
			": a comment\r\n"
			"data: {\"choices\":[{\"delta\":{\"content\":\"lo \\u00e9 [1]\"}}]}\r\n\r\n"
			"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\n"
			"data: [DONE]\n\n";
	for (size_t step = 1; step < 40; step++) {
		struct buf t;
		int pt, ct;
		assert_int_equal(parse(LLM_WIRE_OPENAI, s, step, &t, &pt, &ct), 0);
		assert_string_equal(t.p, "Hello \xc3\xa9 [1]");
		assert_int_equal(pt, 3);
		assert_int_equal(ct, 2);
		buf_free(&t);
	}
}

static void test_sse_anthropic_and_broken_streams(void **state)
{
	(void)state;
	const char *s = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":5}}}\n\n"
			"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"Hi\"}}\n\n"
			"event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":4}}\n\n"
			"event: message_stop\ndata: {\"type\":\"message_stop\"}";
	struct buf t;
	int pt, ct;
	assert_int_equal(parse(LLM_WIRE_ANTHROPIC, s, 7, &t, &pt, &ct), 0); /* a last line without newline */
	assert_string_equal(t.p, "Hi");
	assert_int_equal(pt, 5);
	assert_int_equal(ct, 4);
	buf_free(&t);
	/* no end: broken off */
	assert_int_equal(parse(LLM_WIRE_OPENAI, "data: {\"choices\":[]}\n\n", 3, &t, &pt, &ct), -1);
	buf_free(&t);
	/* not JSON, an error event */
	assert_int_equal(parse(LLM_WIRE_OPENAI, "data: {nope\n\ndata: [DONE]\n\n", 5, &t, &pt, &ct), -1);
	buf_free(&t);
	assert_int_equal(parse(LLM_WIRE_ANTHROPIC, "event: error\ndata: {\"type\":\"error\"}\n\n", 5, &t, &pt, &ct),
			 -1);
	buf_free(&t);
}

static void test_extractive_link(void **state)
{
	(void)state;
	struct llm_passage p[2] = {
		{ "Robots balance with a zero moment point. Unrelated filler sentence here." },
		{ "The zero moment point keeps balance on flat ground." },
	};
	struct llm_result res = { 0 };
	struct err e = { 0 };
	assert_int_equal(llm_extractive_answer("zero moment point balance", p, 2, &res, &e), 0);
	assert_true(res.extractive);
	assert_contains(res.text, "[1]");
	assert_contains(res.text, "[2]");
	assert_int_equal(res.ncites, 2);
	for (int i = 0; i < res.ncites; i++)
		assert_non_null(strstr(p[res.cites[i].n - 1].text, "zero moment point"));
	llm_result_free(&res);
}

/* A server that accepts connections (the kernel's backlog does) and never
 * answers. */
static int hanging_server(int *port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t n = sizeof(a);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &n), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

struct firer {
	struct stop *stop;
	long after_ms;
};

static void *fire_later(void *arg)
{
	struct firer *f = arg;
	struct timespec ts = { 0, f->after_ms * 1000000L };
	nanosleep(&ts, NULL);
	stop_fire(f->stop);
	return NULL;
}

static void test_breaker_counts_provider_failures_only(void **state)
{
	(void)state;
	int port;
	int fd = hanging_server(&port);
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/x", port);
	struct stop stop;
	stop_init(&stop);
	struct phttp *c;
	struct err e = { 0 };
	struct phttp_config cfg = { .name = "hang", .tries = 3, .breaker_failures = 1, .breaker_seconds = 60 };
	assert_int_equal(phttp_new(&c, &cfg, &stop, &e), 0);
	struct phttp_request req = { .url = url, .body = "{}", .body_len = 2 };
	struct phttp_response resp;

	/* our deadline already spent: nothing sent, nothing counted */
	req.deadline_ms = time_now_ms() - 1;
	assert_int_not_equal(phttp_call(c, &req, &resp, &e), 0);
	assert_int_equal(resp.outcome, PHTTP_LOCAL);
	assert_false(phttp_circuit_open(c));

	/* cancelled mid-request by the owner's stop: not counted, and quick */
	struct firer f = { &stop, 200 };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, fire_later, &f), 0);
	req.deadline_ms = time_now_ms() + 10000;
	int64_t t0 = time_now_ms();
	assert_int_not_equal(phttp_call(c, &req, &resp, &e), 0);
	pthread_join(t, NULL);
	assert_int_equal(resp.outcome, PHTTP_CANCELLED);
	assert_true(time_now_ms() - t0 < 3000);
	assert_false(phttp_circuit_open(c));
	phttp_free(c);
	stop_destroy(&stop);

	/* a timeout is the provider's: one failed call opens the circuit */
	assert_int_equal(phttp_new(&c, &cfg, NULL, &e), 0);
	req.tries = 1;
	req.deadline_ms = time_now_ms() + 300;
	assert_int_not_equal(phttp_call(c, &req, &resp, &e), 0);
	assert_int_equal(resp.outcome, PHTTP_PROVIDER);
	assert_true(phttp_circuit_open(c));
	req.deadline_ms = time_now_ms() + 300;
	assert_int_not_equal(phttp_call(c, &req, &resp, &e), 0);
	assert_int_equal(resp.outcome, PHTTP_OPEN);
	assert_contains(e.msg, "circuit open");
	phttp_free(c);
	close(fd);
}

/* A server that takes one request and answers 200 after `delay_ms`. */
struct slow_server {
	int fd;
	long delay_ms;
};

static void *slow_answer(void *arg)
{
	struct slow_server *sv = arg;
	int c = accept(sv->fd, NULL, NULL);
	if (c < 0)
		return NULL;
	char buf[4096];
	(void)!recv(c, buf, sizeof(buf), 0);
	struct timespec ts = { sv->delay_ms / 1000, (sv->delay_ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
	static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
	(void)!send(c, answer, sizeof(answer) - 1, MSG_NOSIGNAL);
	close(c);
	return NULL;
}

struct bg_call {
	struct phttp *c;
	struct phttp_request req;
	struct phttp_response resp;
	int rc;
};

static void *bg_call_run(void *arg)
{
	struct bg_call *b = arg;
	struct err e = { 0 };
	b->rc = phttp_call(b->c, &b->req, &b->resp, &e);
	phttp_response_free(&b->resp);
	return NULL;
}

static void sleep_until(int64_t t_ms)
{
	int64_t left = t_ms - time_now_ms();
	if (left > 0) {
		struct timespec ts = { left / 1000, (left % 1000) * 1000000L };
		nanosleep(&ts, NULL);
	}
}

/* A call that started before the circuit opened answers while the probe is
 * in flight: it neither closes the circuit nor frees the probe's slot, so the
 * next call is still refused. */
static void test_breaker_only_the_probe_decides(void **state)
{
	(void)state;
	int hport, sport;
	int hfd = hanging_server(&hport);
	struct slow_server sv = { hanging_server(&sport), 2000 };
	char hang[64], slow[64];
	snprintf(hang, sizeof(hang), "http://127.0.0.1:%d/v1/x", hport);
	snprintf(slow, sizeof(slow), "http://127.0.0.1:%d/v1/x", sport);
	struct phttp *c;
	struct err e = { 0 };
	struct phttp_config cfg = { .name = "probe", .tries = 1, .breaker_failures = 1, .breaker_seconds = 1 };
	assert_int_equal(phttp_new(&c, &cfg, NULL, &e), 0);
	pthread_t ts, told, tprobe;
	assert_int_equal(pthread_create(&ts, NULL, slow_answer, &sv), 0);
	int64_t t0 = time_now_ms();

	/* t0: an old call, answered at t0 + 2 s */
	struct bg_call old = { .c = c,
			       .req = { .url = slow, .body = "{}", .body_len = 2, .tries = 1, .deadline_ms = t0 + 5000 } };
	assert_int_equal(pthread_create(&told, NULL, bg_call_run, &old), 0);
	/* t0 + 0.2 s: a failure opens the circuit for 1 s */
	sleep_until(t0 + 200);
	struct phttp_request req = { .url = hang, .body = "{}", .body_len = 2, .tries = 1 };
	struct phttp_response resp;
	req.deadline_ms = time_now_ms() + 200;
	assert_int_not_equal(phttp_call(c, &req, &resp, &e), 0);
	assert_int_equal(resp.outcome, PHTTP_PROVIDER);
	assert_true(phttp_circuit_open(c));
	/* t0 + 1.6 s: half-open, the probe goes and hangs until t0 + 3.1 s */
	sleep_until(t0 + 1600);
	struct bg_call probe = { .c = c, .req = { .url = hang, .body = "{}", .body_len = 2, .tries = 1,
				      .deadline_ms = time_now_ms() + 1500 } };
	assert_int_equal(pthread_create(&tprobe, NULL, bg_call_run, &probe), 0);
	/* t0 + 2 s: the old call succeeds */
	pthread_join(told, NULL);
	assert_int_equal(old.rc, 0);
	/* t0 + 2.2 s: the probe is still out, so this call is refused */
	sleep_until(t0 + 2200);
	req.deadline_ms = time_now_ms() + 200;
	assert_int_not_equal(phttp_call(c, &req, &resp, &e), 0);
	assert_int_equal(resp.outcome, PHTTP_OPEN);
	/* the probe fails: open again */
	pthread_join(tprobe, NULL);
	assert_int_not_equal(probe.rc, 0);
	assert_true(phttp_circuit_open(c));
	pthread_join(ts, NULL);
	phttp_free(c);
	close(hfd);
	close(sv.fd);
}

int main(void)
{
	if (phttp_global_init())
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_retry_after_values),
		cmocka_unit_test(test_sse_openai_any_split),
		cmocka_unit_test(test_sse_anthropic_and_broken_streams),
		cmocka_unit_test(test_extractive_link),
		cmocka_unit_test(test_breaker_counts_provider_failures_only),
		cmocka_unit_test(test_breaker_only_the_probe_decides),
	};
	int rc = cmocka_run_group_tests_name("providers", tests, NULL, NULL);
	phttp_global_cleanup();
	return rc;
}
