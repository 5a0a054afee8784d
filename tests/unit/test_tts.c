/* Speech: bookd's words, the alignment of word events onto them, the MP3
 * frame-header scanner, real syntheses through espeak-ng + LAME decoded back
 * with mpg123 (English and Urdu), bad voices, the stop signal, and the
 * OpenAI-compatible provider against a fake server on loopback. */
#include "unit.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/mem.h"
#include "core/stop.h"
#include "providers/http_client.h"
#include "providers/tts_int.h"

static const char *EN = "It's a well-known fact: in 1984 a loaf cost $3.50, and rock-and-roll was 100% loud. "
			"A dog sat on a mat.";
static const char *UR = "اردو ایک خوبصورت زبان ہے۔ یہ کتاب ۱۹۸۴ میں لکھی گئی۔ آج موسم اچھا ہے۔";

/* ---- words --------------------------------------------------------------------------- */

static void expect_words(const char *text, const char *const *want, int nwant)
{
	struct tts_word *w;
	int n;
	assert_int_equal(tts_words(text, strlen(text), &w, &n), 0);
	if (n != nwant)
		for (int i = 0; i < n; i++)
			print_error("word %d: %.*s\n", i, (int)(w[i].char_end - w[i].char_start), text + w[i].char_start);
	assert_int_equal(n, nwant);
	for (int i = 0; i < n; i++) {
		size_t len = w[i].char_end - w[i].char_start;
		if (len != strlen(want[i]) || memcmp(text + w[i].char_start, want[i], len))
			print_error("word %d: %.*s, want %s\n", i, (int)len, text + w[i].char_start, want[i]);
		assert_int_equal(len, strlen(want[i]));
		assert_memory_equal(text + w[i].char_start, want[i], len);
	}
	xfree(w);
}

static void test_words(void **state)
{
	(void)state;
	static const char *const en[] = { "It's", "a", "well-known", "fact", "in", "1984", "a", "loaf", "cost", "$3.50",
					  "and", "rock-and-roll", "was", "100%", "loud", "A", "dog", "sat", "on", "a",
					  "mat" };
	expect_words(EN, en, (int)(sizeof(en) / sizeof(en[0])));
	static const char *const odd[] = { "pre", "war", "1,984", "don’t", "naïve", "x", "y" };
	expect_words("  pre- -war, 1,984... don’t 😀 naïve -- x—y '", odd, 7);
	static const char *const ur[] = { "اردو", "ایک", "خوبصورت", "زبان", "ہے", "یہ", "کتاب", "۱۹۸۴", "میں",
					  "لکھی", "گئی", "آج", "موسم", "اچھا", "ہے" };
	expect_words(UR, ur, 15);
	struct tts_word *w = (void *)1;
	int n = -1;
	assert_int_equal(tts_words(" .,!? — ", 10, &w, &n), 0);
	assert_int_equal(n, 0);
	assert_null(w);
}

/* ---- alignment ----------------------------------------------------------------------- */

static void check_timings(const struct tts_word *w, int n, int64_t duration)
{
	assert_true(n > 0);
	assert_true(w[0].start_ms >= 0);
	for (int i = 0; i < n; i++) {
		assert_true(w[i].start_ms <= w[i].end_ms);
		if (i)
			assert_true(w[i].start_ms >= w[i - 1].end_ms);
	}
	int64_t gap = w[n - 1].end_ms - duration;
	assert_true(llabs(gap) * 100 <= duration);
}

static void test_align(void **state)
{
	(void)state;
	/* "a" and the tail of "well-known" skipped; three events for 1984; a
	 * zero-length one pointing back; one out of order in time. */
	const char *text = "I a well-known 1984 cat é";
	struct tts_word *w;
	int n;
	assert_int_equal(tts_words(text, strlen(text), &w, &n), 0);
	assert_int_equal(n, 6); /* I a well-known 1984 cat é */
	struct tts_mark marks[] = {
		{ 0, 1, 0 },	 /* I */
		{ 4, 4, 300 },	 /* well (a skipped) */
		{ 15, 4, 900 },	 /* 1984 */
		{ 16, 4, 1200 }, /* 1984 again */
		{ 16, 4, 1500 }, /* and again */
		{ 3, 0, 1600 },	 /* zero length, backwards */
		{ 20, 3, 1000 }, /* cat, earlier than the last start: dropped */
		{ 24, 1, 2000 }, /* é: characters, not bytes */
	};
	assert_int_equal(tts_align(text, w, n, marks, 8, 0, 2400), 0);
	assert_int_equal(w[0].start_ms, 0);
	/* I (1 char) and a (1 char) share 0..300 */
	assert_int_equal(w[1].start_ms, 150);
	assert_int_equal(w[2].start_ms, 300);
	assert_int_equal(w[3].start_ms, 900);
	/* 1984 (4) and cat (3) share 900..2000 */
	assert_int_equal(w[4].start_ms, 900 + 1100 * 4 / 7);
	assert_int_equal(w[5].start_ms, 2000);
	assert_int_equal(w[5].end_ms, 2400);
	check_timings(w, n, 2400);
	/* No marks at all: by length over [t0, t1]. */
	assert_int_equal(tts_align(text, w, n, NULL, 0, 1000, 2000), 0);
	assert_int_equal(w[0].start_ms, 1000);
	assert_int_equal(w[n - 1].end_ms, 2000);
	check_timings(w, n, 2000);
	xfree(w);
}

/* ---- MP3 frame headers ---------------------------------------------------------------- */

static void test_mp3_header(void **state)
{
	(void)state;
	struct mp3_header h;
	static const unsigned char m2[4] = { 0xFF, 0xF3, 0x70, 0xC0 }; /* MPEG-2 L3 56k 22050 mono */
	assert_int_equal(mp3_header_parse(m2, &h), 0);
	assert_int_equal(h.version, 2);
	assert_int_equal(h.layer, 3);
	assert_int_equal(h.bitrate, 56);
	assert_int_equal(h.sample_rate, 22050);
	assert_int_equal(h.channels, 1);
	assert_int_equal(h.samples, 576);
	assert_int_equal(h.length, 182);
	static const unsigned char m1[4] = { 0xFF, 0xFB, 0x92, 0x44 }; /* MPEG-1 L3 128k 44100 padded, joint */
	assert_int_equal(mp3_header_parse(m1, &h), 0);
	assert_int_equal(h.version, 1);
	assert_int_equal(h.bitrate, 128);
	assert_int_equal(h.sample_rate, 44100);
	assert_int_equal(h.channels, 2);
	assert_int_equal(h.samples, 1152);
	assert_int_equal(h.length, 418);
	static const unsigned char m25[4] = { 0xFF, 0xE3, 0x18, 0xC0 }; /* MPEG-2.5 L3 8k 8000 */
	assert_int_equal(mp3_header_parse(m25, &h), 0);
	assert_int_equal(h.version, 25);
	assert_int_equal(h.sample_rate, 8000);
	assert_int_equal(h.length, 72);
	static const unsigned char l2[4] = { 0xFF, 0xFD, 0x14, 0x00 }; /* MPEG-1 L2 32k 48000 */
	assert_int_equal(mp3_header_parse(l2, &h), 0);
	assert_int_equal(h.layer, 2);
	assert_int_equal(h.length, 96);
	static const unsigned char bad[][4] = {
		{ 0xFF, 0xEB, 0x70, 0xC0 }, /* reserved version */
		{ 0xFF, 0xF1, 0x70, 0xC0 }, /* reserved layer */
		{ 0xFF, 0xF3, 0x00, 0xC0 }, /* free format */
		{ 0xFF, 0xF3, 0xF0, 0xC0 }, /* bad bitrate */
		{ 0xFF, 0xF3, 0x7C, 0xC0 }, /* reserved sample rate */
		{ 0xFE, 0xF3, 0x70, 0xC0 }, /* no sync */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_not_equal(mp3_header_parse(bad[i], &h), 0);
}

/* An ID3 tag, a Xing frame, 10 frames, junk, 5 frames: fed in any pieces. */
static void test_mp3_scan(void **state)
{
	(void)state;
	unsigned char s[8192];
	size_t n = 0;
	memcpy(s, "ID3\x03\x00\x00\x00\x00\x00\x14", 10); /* 20 bytes of tag body */
	n = 10;
	memset(s + n, 0xFF, 20); /* a tag body that looks like sync bytes */
	n += 20;
	for (int f = 0; f < 16; f++) {
		if (f == 11) { /* junk between frames */
			memcpy(s + n, "junk\xFF\xF3garbage", 14);
			n += 14;
		}
		static const unsigned char h[4] = { 0xFF, 0xF3, 0x70, 0xC0 };
		memcpy(s + n, h, 4);
		memset(s + n + 4, 0x55, 178);
		if (f == 0)
			memcpy(s + n + 4 + 9, "Info", 4);
		n += 182;
	}
	for (size_t step = 1; step <= 200; step += step < 8 ? 1 : 37) {
		struct mp3_scan sc;
		mp3_scan_init(&sc);
		for (size_t off = 0; off < n; off += step)
			mp3_scan_feed(&sc, s + off, off + step <= n ? step : n - off);
		assert_int_equal(sc.frames, 15);
		assert_int_equal(sc.sample_rate, 22050);
		assert_int_equal(mp3_scan_ms(&sc), 15 * 576 * 1000 / 22050);
	}
}

/* ---- real syntheses ----------------------------------------------------------------------- */

struct out {
	struct buf b;
	struct stop *fire; /* fired once this many bytes have come */
	size_t fire_after;
	int refuse;
};

static int out_sink(void *ctx, const void *data, size_t n)
{
	struct out *o = ctx;
	if (o->refuse)
		return 1;
	if (buf_append(&o->b, data, n))
		return 1;
	if (o->fire && o->b.n >= o->fire_after)
		stop_fire(o->fire);
	return 0;
}

/* Decodes the MP3 with mpg123: seconds of audio and the RMS of its samples. */
static void decode(const struct buf *mp3, double *seconds, double *rms)
{
	char in[] = "/tmp/bookd-tts-XXXXXX";
	int fd = mkstemp(in);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, mp3->p, mp3->n), (ssize_t)mp3->n);
	close(fd);
	struct mp3_scan sc;
	mp3_scan_init(&sc);
	mp3_scan_feed(&sc, mp3->p, mp3->n);
	assert_true(sc.frames > 0);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "mpg123 -q -m -s '%s' 2>/dev/null", in);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	short pcm[4096];
	size_t k, samples = 0;
	double sq = 0;
	while ((k = fread(pcm, sizeof(short), 4096, p)) > 0) {
		for (size_t i = 0; i < k; i++)
			sq += (double)pcm[i] * pcm[i];
		samples += k;
	}
	assert_int_equal(pclose(p), 0);
	unlink(in);
	assert_true(samples > 0);
	*seconds = (double)samples / sc.sample_rate;
	*rms = sqrt(sq / (double)samples);
}

static void speak_and_check(struct tts *t, const char *voice, const char *text)
{
	struct out o = { 0 };
	buf_init(&o.b, 16 << 20);
	struct tts_word *w;
	int n;
	int64_t dur;
	struct err e = { 0 };
	int rc = tts_speak(t, voice, text, out_sink, &o, &w, &n, &dur, &e);
	if (rc)
		print_error("%s\n", e.msg);
	assert_int_equal(rc, 0);
	struct tts_word *mine;
	int nmine;
	assert_int_equal(tts_words(text, strlen(text), &mine, &nmine), 0);
	assert_int_equal(n, nmine);
	for (int i = 0; i < n; i++)
		assert_int_equal(w[i].char_start, mine[i].char_start);
	xfree(mine);
	check_timings(w, n, dur);
	/* speech, not one word stretched over it all */
	for (int i = 1; i < n; i++)
		assert_true(w[i].start_ms > w[i - 1].start_ms);
	double secs, rms;
	decode(&o.b, &secs, &rms);
	double end = (double)w[n - 1].end_ms / 1000;
	if (fabs(secs - end) > 0.1 * end)
		print_error("decoded %.3f s, timings end at %.3f s\n", secs, end);
	assert_true(fabs(secs - end) <= 0.1 * end);
	assert_true(rms > 300); /* not silence */
	xfree(w);
	buf_free(&o.b);
}

static void test_espeak_english_and_urdu(void **state)
{
	(void)state;
	struct tts *t;
	struct err e = { 0 };
	struct tts_config cfg = { .kind = "espeak", .bitrate_kbps = 48 };
	assert_int_equal(tts_open(&t, &cfg, NULL, &e), 0);
	assert_string_equal(tts_kind(t), "espeak");
	const struct tts_voice *v;
	int nv;
	assert_int_equal(tts_voices(t, &v, &nv), 0);
	assert_true(nv > 50);
	assert_true(tts_voice_exists(t, "en"));
	assert_true(tts_voice_exists(t, "ur"));
	assert_false(tts_voice_exists(t, "xx-nope"));
	int ur = -1;
	for (int i = 0; i < nv; i++)
		if (!strcmp(v[i].name, "ur"))
			ur = i;
	assert_true(ur >= 0);
	assert_string_equal(v[ur].language, "ur");
	assert_string_equal(v[ur].label, "Urdu");
	assert_string_equal(tts_voice_for_language(t, "UR"), "ur");
	assert_string_equal(tts_voice_for_language(t, "en-GB"), "en-gb");
	assert_string_equal(tts_voice_for_language(t, "ur-PK"), "ur");
	assert_null(tts_voice_for_language(t, "zz"));
	speak_and_check(t, "en", EN);
	speak_and_check(t, "en-us", "Numbers: 1984, $3.50, 12,345 and 7%. A well-read, self-taught man.");
	speak_and_check(t, "ur", UR);
	tts_close(t);
}

static void test_espeak_bad_input(void **state)
{
	(void)state;
	struct tts *t;
	struct err e = { 0 };
	struct tts_config cfg = { 0 };
	assert_int_equal(tts_open(&t, &cfg, NULL, &e), 0);
	struct out o = { 0 };
	buf_init(&o.b, 1 << 20);
	struct tts_word *w = (void *)1;
	int n = 1;
	int64_t dur = 1;
	assert_int_equal(tts_speak(t, "klingon", "Hello.", out_sink, &o, &w, &n, &dur, &e), ERR_INVALID);
	assert_contains(e.msg, "/api/v1/voices");
	assert_null(w);
	assert_int_equal(n, 0);
	assert_int_equal(o.b.n, 0);
	assert_int_equal(tts_speak(t, NULL, "Hello.", out_sink, &o, &w, &n, &dur, &e), ERR_INVALID);
	assert_int_equal(tts_speak(t, "en", "bad \xC3\x28 utf-8", out_sink, &o, &w, &n, &dur, &e), ERR_INVALID);
	assert_int_equal(tts_speak(t, "en", " ... ", out_sink, &o, &w, &n, &dur, &e), ERR_INVALID);
	/* the sink refusing stops the synthesis */
	o.refuse = 1;
	assert_int_equal(tts_speak(t, "en", EN, out_sink, &o, &w, &n, &dur, &e), ERR_UNAVAILABLE);
	assert_null(w);
	tts_close(t);
	buf_free(&o.b);
	cfg.kind = "festival";
	assert_int_equal(tts_open(&t, &cfg, NULL, &e), ERR_INVALID);
	cfg.kind = "espeak";
	cfg.bitrate_kbps = 320;
	assert_int_equal(tts_open(&t, &cfg, NULL, &e), ERR_INVALID);
	cfg.kind = "openai";
	cfg.bitrate_kbps = 0;
	assert_int_equal(tts_open(&t, &cfg, NULL, &e), ERR_INVALID); /* no URL */
}

static void test_espeak_stop(void **state)
{
	(void)state;
	struct stop stop;
	stop_init(&stop);
	struct tts *t;
	struct err e = { 0 };
	struct tts_config cfg = { 0 };
	assert_int_equal(tts_open(&t, &cfg, &stop, &e), 0);
	struct buf text;
	buf_init(&text, 1 << 20);
	for (int i = 0; i < 200; i++)
		assert_int_equal(buf_puts(&text, "The quick brown fox jumps over the lazy dog. "), 0);
	struct out o = { .fire = &stop, .fire_after = 4096 };
	buf_init(&o.b, 16 << 20);
	struct tts_word *w;
	int n;
	int64_t dur;
	assert_int_equal(tts_speak(t, "en", text.p, out_sink, &o, &w, &n, &dur, &e), ERR_UNAVAILABLE);
	assert_contains(e.msg, "stopped");
	assert_true(o.b.n < 64 * 1024); /* minutes of speech would be ~1 MB */
	assert_null(w);
	tts_close(t);
	/* espeak-ng is usable again afterwards */
	struct stop other;
	stop_init(&other);
	assert_int_equal(tts_open(&t, &cfg, &other, &e), 0);
	speak_and_check(t, "en", "Still speaking after a stop.");
	tts_close(t);
	stop_destroy(&other);
	stop_destroy(&stop);
	buf_free(&o.b);
	buf_free(&text);
}

/* ---- the OpenAI-compatible provider against a fake server ------------------------------- */

struct fake {
	int fd, port;
	pthread_t th;
	struct buf mp3;	  /* what a good answer sends */
	int mode;	  /* 0 audio, 1 a 500 first, 2 JSON with status 200 */
	int requests;
	char last_head[2048];
	char last_body[8192];
	size_t max_input; /* longest "input" seen, in bytes of JSON */
};

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	for (;;) {
		int c = accept(f->fd, NULL, NULL);
		if (c < 0)
			return NULL;
		char req[65536];
		size_t got = 0;
		char *body = NULL;
		long clen = 0;
		while (got < sizeof(req) - 1) {
			ssize_t k = read(c, req + got, sizeof(req) - 1 - got);
			if (k <= 0)
				break;
			got += (size_t)k;
			req[got] = '\0';
			if (!body && (body = strstr(req, "\r\n\r\n")) != NULL) {
				body += 4;
				const char *cl = strcasestr(req, "Content-Length:");
				clen = cl ? strtol(cl + 15, NULL, 10) : 0;
			}
			if (body && (long)(got - (size_t)(body - req)) >= clen)
				break;
		}
		if (!body) {
			close(c);
			continue;
		}
		f->requests++;
		snprintf(f->last_head, sizeof(f->last_head), "%.*s", (int)(body - req), req);
		snprintf(f->last_body, sizeof(f->last_body), "%.*s", (int)clen, body);
		if ((size_t)clen > f->max_input)
			f->max_input = (size_t)clen;
		char head[256];
		if (f->mode == 1 && f->requests == 1) {
			const char *r = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
			(void)!write(c, r, strlen(r));
		} else if (f->mode == 2) {
			const char *r = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
					"Connection: close\r\n\r\n{}";
			(void)!write(c, r, strlen(r));
		} else {
			int k = snprintf(head, sizeof(head),
					 "HTTP/1.1 200 OK\r\nContent-Type: audio/mpeg\r\nContent-Length: %zu\r\n"
					 "Connection: close\r\n\r\n",
					 f->mp3.n);
			(void)!write(c, head, (size_t)k);
			(void)!write(c, f->mp3.p, f->mp3.n);
		}
		close(c);
	}
}

static void fake_start(struct fake *f)
{
	f->fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	assert_int_equal(bind(f->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(f->fd, 8), 0);
	socklen_t al = sizeof(a);
	getsockname(f->fd, (struct sockaddr *)&a, &al);
	f->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake *f)
{
	shutdown(f->fd, SHUT_RDWR);
	close(f->fd);
	pthread_join(f->th, NULL);
}

static void test_openai_provider(void **state)
{
	(void)state;
	struct fake f = { 0 };
	buf_init(&f.mp3, 4 << 20);
	/* the answer: an MP3 made by espeak-ng + LAME */
	struct tts *t;
	struct err e = { 0 };
	struct tts_config ecfg = { 0 };
	assert_int_equal(tts_open(&t, &ecfg, NULL, &e), 0);
	struct out o = { 0 };
	buf_init(&o.b, 4 << 20);
	struct tts_word *w;
	int n;
	int64_t dur;
	assert_int_equal(tts_speak(t, "en", "Hello from the fake speech server.", out_sink, &o, &w, &n, &dur, &e), 0);
	xfree(w);
	tts_close(t);
	assert_int_equal(buf_append(&f.mp3, o.b.p, o.b.n), 0);
	struct mp3_scan sc;
	mp3_scan_init(&sc);
	mp3_scan_feed(&sc, f.mp3.p, f.mp3.n);
	int64_t one = mp3_scan_ms(&sc);
	assert_true(one > 1000);
	fake_start(&f);

	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/", f.port);
	struct tts_config cfg = { .kind = "openai", .url = url, .key = "sk-test", .model = "tts-1", .timeout_s = 10 };
	assert_int_equal(tts_open(&t, &cfg, NULL, &e), 0);
	assert_string_equal(tts_kind(t), "openai");
	assert_true(tts_voice_exists(t, "alloy"));
	assert_false(tts_voice_exists(t, "en"));
	assert_string_equal(tts_voice_for_language(t, "ur"), "alloy");
	assert_int_equal(tts_speak(t, "en", EN, out_sink, &o, &w, &n, &dur, &e), ERR_INVALID);

	buf_reset(&o.b);
	assert_int_equal(tts_speak(t, "nova", EN, out_sink, &o, &w, &n, &dur, &e), 0);
	assert_int_equal(f.requests, 1);
	assert_contains(f.last_head, "POST /v1/audio/speech ");
	assert_contains(f.last_head, "Authorization: Bearer sk-test");
	assert_contains(f.last_body, "\"model\":\"tts-1\"");
	assert_contains(f.last_body, "\"voice\":\"nova\"");
	assert_contains(f.last_body, "\"response_format\":\"mp3\"");
	assert_contains(f.last_body, "rock-and-roll was 100% loud");
	assert_int_equal(o.b.n, f.mp3.n);
	assert_memory_equal(o.b.p, f.mp3.p, f.mp3.n);
	assert_int_equal(dur, one);
	check_timings(w, n, dur);
	assert_int_equal(w[n - 1].end_ms, dur);
	xfree(w);

	/* a long text goes in pieces of at most 4000 bytes, durations summed */
	struct buf text;
	buf_init(&text, 1 << 20);
	for (int i = 0; i < 300; i++)
		assert_int_equal(buf_puts(&text, "The quick brown fox jumps over the lazy dog. "), 0);
	f.requests = 0;
	f.max_input = 0;
	buf_reset(&o.b);
	assert_int_equal(tts_speak(t, "alloy", text.p, out_sink, &o, &w, &n, &dur, &e), 0);
	assert_int_equal(f.requests, 4); /* 13,500 bytes */
	assert_true(f.max_input < 4200);
	assert_int_equal(dur, 4 * one);
	assert_int_equal(n, 300 * 9);
	check_timings(w, n, dur);
	/* a piece's words end with its audio */
	assert_int_equal(w[88 * 9 - 1].end_ms == one || w[89 * 9 - 1].end_ms == one, 1);
	xfree(w);

	/* a 500 is retried */
	f.mode = 1;
	f.requests = 0;
	buf_reset(&o.b);
	assert_int_equal(tts_speak(t, "alloy", "Retry me.", out_sink, &o, &w, &n, &dur, &e), 0);
	assert_int_equal(f.requests, 2);
	xfree(w);
	/* a 200 that is not audio is an error */
	f.mode = 2;
	assert_int_equal(tts_speak(t, "alloy", "Not audio.", out_sink, &o, &w, &n, &dur, &e), ERR_UNAVAILABLE);
	assert_contains(e.msg, "no MP3");

	tts_close(t);
	fake_stop(&f);
	buf_free(&text);
	buf_free(&o.b);
	buf_free(&f.mp3);
}

int main(void)
{
	if (phttp_global_init())
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_words),
		cmocka_unit_test(test_align),
		cmocka_unit_test(test_mp3_header),
		cmocka_unit_test(test_mp3_scan),
		cmocka_unit_test(test_espeak_english_and_urdu),
		cmocka_unit_test(test_espeak_bad_input),
		cmocka_unit_test(test_espeak_stop),
		cmocka_unit_test(test_openai_provider),
	};
	int rc = cmocka_run_group_tests_name("tts", tests, NULL, NULL);
	phttp_global_cleanup();
	return rc;
}
