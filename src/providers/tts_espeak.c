/*
 * Speech with libespeak-ng in process, encoded to MP3 by LAME as it comes.
 *
 * libespeak-ng keeps its state in globals: one initialisation per process
 * (synchronous output, one callback) and one synthesis at a time. Every call
 * into it holds `lock`, so a struct tts may be used from any thread, and
 * syntheses from several threads queue behind one another (one core's worth
 * of speech, whatever the number of jobs). Its data stays loaded until exit.
 *
 * Streaming: espeak-ng hands 16-bit mono PCM at its rate (22050 Hz) to the
 * callback in pieces of BUF_MS; each piece goes to LAME (mono, CBR, the
 * output rate LAME picks for the bitrate) and the MP3 bytes LAME returns go
 * straight to the sink. Memory is the text, its words and events, and one
 * MP3 buffer — never the audio. No Xing/Info frame is written: it would have
 * to be rewritten at the start of the stream once the stream is over.
 *
 * Word events: text_position is 1-based and counts characters (code points)
 * of the UTF-8 text; audio_position is milliseconds from the start of this
 * synthesis. tts_align maps them onto the words.
 */
#include "tts_int.h"

#include <espeak-ng/espeak_ng.h>
#include <lame/lame.h>
#include <pthread.h>
#include <string.h>

#include "../core/mem.h"

#define BUF_MS 100
#define CHUNK 4096			   /* samples per LAME call */
#define MP3BUF (CHUNK * 5 / 4 + 7200)	   /* LAME's worst case for CHUNK */

struct synth {
	lame_global_flags *lame;
	tts_sink sink;
	void *ctx;
	struct stop *stop;
	struct tts_mark *marks;
	int nmarks, capmarks, maxmarks;
	int64_t samples;
	int failed; /* 1 stopped, 2 the sink refused, 3 LAME failed, 4 out of memory */
	unsigned char mp3[MP3BUF];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int ready;		/* 1 initialised, -1 failed for good */
static int rate;		/* espeak-ng's output rate */
static struct synth *current;	/* the synthesis under way (under lock) */
static struct tts_voice *voices;
static char (*idents)[64];	/* espeak-ng's identifier of voices[i] */
static int nvoices;

struct espeak {
	int bitrate;
	struct stop *stop;
};

static int put(struct synth *s, int k)
{
	if (k < 0) {
		s->failed = 3;
		return -1;
	}
	if (k > 0 && s->sink(s->ctx, s->mp3, (size_t)k)) {
		s->failed = 2;
		return -1;
	}
	return 0;
}

static int on_audio(short *wav, int n, espeak_EVENT *ev)
{
	struct synth *s = current;
	if (!s || s->failed)
		return 1;
	for (; ev && ev->type != espeakEVENT_LIST_TERMINATED; ev++) {
		if (ev->type != espeakEVENT_WORD || ev->length <= 0 || ev->text_position <= 0)
			continue;
		if (s->nmarks == s->capmarks) {
			if (s->capmarks >= s->maxmarks)
				continue;
			int ncap = s->capmarks ? s->capmarks * 2 : 256;
			struct tts_mark *m = xrealloc(s->marks, (size_t)ncap * sizeof(*m));
			if (!m) {
				s->failed = 4;
				return 1;
			}
			s->marks = m;
			s->capmarks = ncap;
		}
		s->marks[s->nmarks++] = (struct tts_mark){ .pos = (size_t)ev->text_position - 1,
							   .len = (size_t)ev->length,
							   .ms = ev->audio_position };
	}
	for (int off = 0; wav && off < n; off += CHUNK) {
		int k = n - off < CHUNK ? n - off : CHUNK;
		if (put(s, lame_encode_buffer(s->lame, wav + off, wav + off, k, s->mp3, MP3BUF)))
			return 1;
		s->samples += k;
	}
	if (stop_fired(s->stop)) {
		s->failed = 1;
		return 1;
	}
	return 0;
}

/* Under lock. */
static int load(struct err *e)
{
	if (ready)
		return ready > 0 ? 0 : err_set(e, ERR_UNAVAILABLE, "espeak-ng could not be initialised");
	ready = -1;
	espeak_ng_ERROR_CONTEXT ctx = NULL;
	char msg[160];
	espeak_ng_InitializePath(NULL);
	espeak_ng_STATUS st = espeak_ng_Initialize(&ctx);
	if (st == ENS_OK)
		st = espeak_ng_InitializeOutput(ENOUTPUT_MODE_SYNCHRONOUS, BUF_MS, NULL);
	if (st != ENS_OK) {
		espeak_ng_GetStatusCodeMessage(st, msg, sizeof(msg));
		espeak_ng_ClearErrorContext(&ctx);
		return err_set(e, ERR_UNAVAILABLE, "espeak-ng: %s (is espeak-ng-data installed?)", msg);
	}
	rate = espeak_ng_GetSampleRate();
	espeak_SetSynthCallback(on_audio);
	const espeak_VOICE **list = espeak_ListVoices(NULL);
	int n = 0;
	while (list && list[n])
		n++;
	/* A voice speaks one or more languages (each with a priority, lower
	 * is better): every language is a name, given to its best voice. */
	int *prio = xcalloc((size_t)n * 8 + 1, sizeof(*prio));
	voices = xcalloc((size_t)n * 8 + 1, sizeof(*voices));
	idents = xcalloc((size_t)n * 8 + 1, sizeof(*idents));
	if (!prio || !voices || !idents) {
		xfree(prio);
		xfree(voices);
		xfree(idents);
		voices = NULL;
		idents = NULL;
		return err_set(e, ERR_INTERNAL, "out of memory");
	}
	for (int i = 0; i < n; i++) {
		const espeak_VOICE *v = list[i];
		if (!v->languages || !v->identifier || !strncmp(v->identifier, "mb/", 3) ||
		    strlen(v->identifier) >= sizeof(*idents))
			continue;
		for (const char *l = v->languages; *l && nvoices < n * 8; l += strlen(l + 1) + 2) {
			const char *lang = l + 1;
			int p = (unsigned char)*l, j = 0;
			while (j < nvoices && strcmp(voices[j].name, lang))
				j++;
			if (!*lang || strlen(lang) >= sizeof(voices->name) || (j < nvoices && prio[j] <= p))
				continue;
			struct tts_voice *tv = &voices[j];
			snprintf(tv->name, sizeof(tv->name), "%s", lang);
			snprintf(tv->language, sizeof(tv->language), "%s", lang);
			snprintf(tv->label, sizeof(tv->label), "%s", v->name ? v->name : lang);
			snprintf(idents[j], sizeof(*idents), "%s", v->identifier);
			prio[j] = p;
			if (j == nvoices)
				nvoices++;
		}
	}
	xfree(prio);
	ready = 1;
	return 0;
}

static int espeak_open(void **self, const struct tts_config *cfg, struct stop *stop, struct err *e)
{
	*self = NULL;
	pthread_mutex_lock(&lock);
	int rc = load(e);
	pthread_mutex_unlock(&lock);
	if (rc)
		return rc;
	struct espeak *es = xcalloc(1, sizeof(*es));
	if (!es)
		return err_set(e, ERR_INTERNAL, "out of memory");
	es->bitrate = cfg->bitrate_kbps ? cfg->bitrate_kbps : 56;
	if (es->bitrate < 48 || es->bitrate > 64) {
		xfree(es);
		return err_set(e, ERR_INVALID, "MP3 bit rate %d kbit/s: 48 to 64", cfg->bitrate_kbps);
	}
	es->stop = stop;
	*self = es;
	return 0;
}

static void espeak_close(void *self) { xfree(self); }

static int espeak_voices(void *self, const struct tts_voice **list, int *n)
{
	*list = voices;
	*n = nvoices;
	return 0;
}

static lame_global_flags *lame_open(int bitrate)
{
	lame_global_flags *g = lame_init();
	if (!g)
		return NULL;
	lame_set_in_samplerate(g, rate);
	lame_set_num_channels(g, 1);
	lame_set_mode(g, MONO);
	lame_set_VBR(g, vbr_off);
	lame_set_brate(g, bitrate);
	lame_set_quality(g, 7);
	lame_set_bWriteVbrTag(g, 0);
	lame_set_write_id3tag_automatic(g, 0);
	if (lame_init_params(g) < 0) {
		lame_close(g);
		return NULL;
	}
	return g;
}

static int espeak_speak(void *self, const char *voice, const char *text, size_t n, tts_sink sink, void *ctx,
			struct tts_word *words, int nwords, int64_t *duration_ms, struct err *e)
{
	struct espeak *es = self;
	int rc = ERR_INTERNAL;
	struct synth *s = xcalloc(1, sizeof(*s));
	if (!s)
		return err_set(e, ERR_INTERNAL, "out of memory");
	s->sink = sink;
	s->ctx = ctx;
	s->stop = es->stop;
	s->maxmarks = nwords * 8 + 1024;
	pthread_mutex_lock(&lock);
	const char *ident = NULL;
	for (int i = 0; i < nvoices && !ident; i++)
		if (!strcmp(voices[i].name, voice))
			ident = idents[i];
	if (!ident || espeak_SetVoiceByName(ident) != EE_OK) {
		rc = err_set(e, ERR_INVALID, "no voice \"%.64s\" (GET /api/v1/voices lists the voices)", voice);
		goto out;
	}
	if (!(s->lame = lame_open(es->bitrate))) {
		rc = err_set(e, ERR_INTERNAL, "LAME could not be set up");
		goto out;
	}
	current = s;
	espeak_ng_STATUS st = espeak_ng_Synthesize(text, n + 1, 0, POS_CHARACTER, 0, espeakCHARS_UTF8, NULL, NULL);
	current = NULL;
	if (!s->failed && st != ENS_OK)
		s->failed = 5;
	if (!s->failed)
		put(s, lame_encode_flush(s->lame, s->mp3, MP3BUF));
	switch (s->failed) {
	case 0:
		break;
	case 1:
		rc = err_set(e, ERR_UNAVAILABLE, "speech synthesis stopped");
		goto out;
	case 2:
		rc = err_set(e, ERR_UNAVAILABLE, "speech synthesis stopped: the audio could not be written");
		goto out;
	case 3:
		rc = err_set(e, ERR_INTERNAL, "MP3 encoding failed");
		goto out;
	case 4:
		rc = err_set(e, ERR_INTERNAL, "out of memory");
		goto out;
	default: {
		char msg[160];
		espeak_ng_GetStatusCodeMessage(st, msg, sizeof(msg));
		rc = err_set(e, ERR_INTERNAL, "espeak-ng: %s", msg);
		goto out;
	}
	}
	*duration_ms = s->samples * 1000 / rate;
	rc = 0;
out:
	pthread_mutex_unlock(&lock);
	if (rc == 0 && tts_align(text, words, nwords, s->marks, s->nmarks, 0, *duration_ms))
		rc = err_set(e, ERR_INTERNAL, "out of memory");
	if (s->lame)
		lame_close(s->lame);
	xfree(s->marks);
	xfree(s);
	return rc;
}

const struct tts_ops tts_espeak_ops = {
	.kind = "espeak",
	.open = espeak_open,
	.close = espeak_close,
	.voices = espeak_voices,
	.speak = espeak_speak,
};
