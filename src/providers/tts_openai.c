/*
 * Speech from an OpenAI-compatible POST {url}/audio/speech
 * ({model, input, voice, response_format: "mp3"}), through the provider HTTP
 * client: retried, behind a circuit breaker, cancelled by the owner's stop.
 *
 * Such services take a bounded input (OpenAI: 4096 characters), so a long
 * text is sent in pieces of at most PIECE_MAX bytes cut after a sentence (or
 * else a space), one request each, and the MP3 streams are concatenated (MP3
 * frames are independent; a leading ID3 tag of a later piece is dropped).
 * The audio goes to the sink as it arrives; a piece is retried only while
 * none of it has been handed on.
 *
 * Timings are estimates: the provider reports none, so each piece's words
 * share its duration — read from the MP3 frame headers received — by their
 * length in characters.
 */
#include "tts_int.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "../core/mem.h"
#include "../core/timeutil.h"
#include "http_client.h"

#define PIECE_MAX 4000
#define RESPONSE_MAX ((size_t)64 << 20) /* one piece's MP3: hours at 64 kbit/s */
#define HEADER_MAX 2048

static const char *const names[] = { "alloy", "ash", "ballad", "coral", "echo", "fable",
				     "nova", "onyx", "sage", "shimmer", "verse" };
#define NNAMES ((int)(sizeof(names) / sizeof(names[0])))

struct openai {
	char *url, *model, *key;
	int timeout_s;
	struct phttp *http;
	struct tts_voice voices[NNAMES];
};

/* One request for one piece. */
struct piece {
	tts_sink sink;
	void *ctx;
	struct mp3_scan scan;
	size_t delivered;
	int sink_failed;
};

static int piece_deliver(struct piece *p, const char *data, size_t n)
{
	mp3_scan_feed(&p->scan, data, n);
	if (n && p->sink(p->ctx, data, n)) {
		p->sink_failed = 1;
		return -1;
	}
	p->delivered += n;
	return 0;
}

static void piece_begin(void *ctx)
{
	struct piece *p = ctx;
	mp3_scan_init(&p->scan);
}

static int piece_data(void *ctx, const char *d, size_t n)
{
	return piece_deliver(ctx, d, n);
}

static int piece_end(void *ctx, int transfer_ok, struct err *e)
{
	struct piece *p = ctx;
	if (p->sink_failed) {
		err_set(e, ERR_UNAVAILABLE, "speech: the audio could not be written");
		return PHTTP_REFUSE;
	}
	if (transfer_ok && p->scan.frames == 0) {
		err_set(e, ERR_UNAVAILABLE, "speech: the provider's answer holds no MP3 audio");
		return PHTTP_BAD_ANSWER;
	}
	return PHTTP_ACCEPT;
}

static int piece_committed(void *ctx)
{
	struct piece *p = ctx;
	return p->delivered > 0;
}

static int piece_check(void *ctx, const char *body, size_t n, struct err *e)
{
	struct mp3_scan s;
	mp3_scan_init(&s);
	mp3_scan_feed(&s, body, n);
	if (s.frames == 0) {
		err_set(e, ERR_UNAVAILABLE, "speech: the provider's answer holds no MP3 audio");
		return PHTTP_BAD_ANSWER;
	}
	return PHTTP_ACCEPT;
}

/* Where the piece starting at `off` ends: at most PIECE_MAX bytes, after the
 * last sentence end, else the last space, else (one long "word") the longest
 * prefix that does not cut a character. */
static size_t piece_end_at(const char *text, size_t n, size_t off)
{
	if (n - off <= PIECE_MAX)
		return n;
	size_t lim = off + PIECE_MAX, space = 0;
	for (size_t i = lim; i > off + PIECE_MAX / 4; i--) {
		unsigned char c = (unsigned char)text[i - 1];
		if ((c == '.' || c == '!' || c == '?' || c == '\n') && (text[i] == ' ' || text[i] == '\n'))
			return i;
		if (!space && (c == ' ' || c == '\n'))
			space = i;
	}
	if (space)
		return space;
	size_t k = lim;
	while (k > off + 1 && ((unsigned char)text[k] & 0xC0) == 0x80)
		k--;
	return k;
}

static int speak_piece(struct openai *o, const char *voice, const char *text, size_t len, struct piece *p,
		       struct err *e)
{
	char auth[HEADER_MAX];
	const char *headers[2] = { "Content-Type: application/json", auth };
	int nh = 1;
	if (*o->key) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", o->key);
		nh = 2;
	}
	json_t *body = json_pack("{s:s, s:s%, s:s, s:s}", "model", o->model, "input", text, len, "voice", voice,
				 "response_format", "mp3");
	char *payload = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (!payload)
		return err_set(e, ERR_INTERNAL, "out of memory");
	struct phttp_request hr = {
		.url = o->url,
		.headers = headers,
		.nheaders = nh,
		.body = payload,
		.body_len = strlen(payload),
		.deadline_ms = time_now_ms() + (int64_t)o->timeout_s * 1000 * 3,
		.attempt_timeout_ms = (long)o->timeout_s * 1000,
		.stream_type = "audio/",
		.attempt_begin = piece_begin,
		.on_data = piece_data,
		.stream_end = piece_end,
		.committed = piece_committed,
		.check = piece_check,
		.ctx = p,
	};
	struct phttp_response resp;
	int rc = phttp_call(o->http, &hr, &resp, e);
	free(payload);
	if (rc)
		return rc;
	if (!resp.streamed) {
		mp3_scan_init(&p->scan);
		if (piece_deliver(p, resp.body, resp.n))
			rc = err_set(e, ERR_UNAVAILABLE, "speech: the audio could not be written");
	}
	phttp_response_free(&resp);
	return rc;
}

static int openai_speak(void *self, const char *voice, const char *text, size_t n, tts_sink sink, void *ctx,
			struct tts_word *words, int nwords, int64_t *duration_ms, struct err *e)
{
	struct openai *o = self;
	int64_t t = 0;
	int w = 0;
	for (size_t off = 0; off < n && w < nwords;) {
		size_t end = piece_end_at(text, n, off);
		struct piece p = { .sink = sink, .ctx = ctx };
		int rc = speak_piece(o, voice, text + off, end - off, &p, e);
		if (rc)
			return rc;
		int64_t d = mp3_scan_ms(&p.scan);
		int w1 = w;
		while (w1 < nwords && words[w1].char_start < end)
			w1++;
		if (w1 > w && tts_align(text, words + w, w1 - w, NULL, 0, t, t + d))
			return err_set(e, ERR_INTERNAL, "out of memory");
		w = w1;
		t += d;
		off = end;
	}
	*duration_ms = t;
	return 0;
}

static void openai_close(void *self)
{
	struct openai *o = self;
	if (!o)
		return;
	phttp_free(o->http);
	xfree(o->url);
	xfree(o->model);
	if (o->key)
		memset(o->key, 0, strlen(o->key));
	xfree(o->key);
	xfree(o);
}

static int openai_open(void **self, const struct tts_config *cfg, struct stop *stop, struct err *e)
{
	*self = NULL;
	if (!cfg->url || !*cfg->url)
		return err_set(e, ERR_INVALID, "speech provider openai: BOOKD_TTS_URL is not set");
	struct openai *o = xcalloc(1, sizeof(*o));
	if (!o)
		return err_set(e, ERR_INTERNAL, "out of memory");
	static const char path[] = "/audio/speech";
	size_t ul = strlen(cfg->url);
	while (ul && cfg->url[ul - 1] == '/')
		ul--;
	o->timeout_s = cfg->timeout_s > 0 ? cfg->timeout_s : 120;
	o->model = xstrdup(cfg->model && *cfg->model ? cfg->model : "tts-1");
	o->key = xstrdup(cfg->key ? cfg->key : "");
	o->url = xmalloc(ul + sizeof(path));
	if (!o->model || !o->key || !o->url) {
		openai_close(o);
		return err_set(e, ERR_INTERNAL, "out of memory");
	}
	memcpy(o->url, cfg->url, ul);
	memcpy(o->url + ul, path, sizeof(path));
	if (strlen(o->key) > HEADER_MAX - 32) {
		openai_close(o);
		return err_set(e, ERR_INVALID, "BOOKD_TTS_KEY is too long");
	}
	for (int i = 0; i < NNAMES; i++) {
		struct tts_voice *v = &o->voices[i];
		snprintf(v->name, sizeof(v->name), "%s", names[i]);
		snprintf(v->language, sizeof(v->language), "mul");
		snprintf(v->label, sizeof(v->label), "%c%s (%s)", names[i][0] - 'a' + 'A', names[i] + 1, o->model);
	}
	struct phttp_config hc = {
		.name = "speech",
		.tries = 3,
		.breaker_failures = 5,
		.breaker_seconds = 30,
		.max_response = RESPONSE_MAX,
	};
	int rc = phttp_new(&o->http, &hc, stop, e);
	if (rc) {
		openai_close(o);
		return rc;
	}
	*self = o;
	return 0;
}

static int openai_voices(void *self, const struct tts_voice **list, int *n)
{
	struct openai *o = self;
	*list = o->voices;
	*n = NNAMES;
	return 0;
}

const struct tts_ops tts_openai_ops = {
	.kind = "openai",
	.open = openai_open,
	.close = openai_close,
	.voices = openai_voices,
	.speak = openai_speak,
};
