/*
 * Speech throughput and memory: seconds of audio per CPU second for
 * espeak-ng + LAME (tts_speak, MP3 to a counting sink), espeak-ng alone
 * (PCM thrown away) and LAME alone (re-encoding captured PCM), and peak RSS
 * while narrating one long chapter. Run on one core by bench/tts.sh.
 *
 *   tts_bench speed FILE   JSON line with the three rates
 *   tts_bench rss FILE     JSON line with the chapter's audio length and peak RSS
 */
#include <espeak-ng/speak_lib.h>
#include <lame/lame.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core/mem.h"
#include "providers/http_client.h"
#include "providers/tts.h"

static double cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *p = malloc((size_t)n + 1);
	if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
		free(p);
		p = NULL;
	}
	if (p)
		p[n] = '\0';
	fclose(f);
	return p;
}

static size_t mp3_bytes;
static int count_sink(void *ctx, const void *data, size_t n)
{
	(void)ctx, (void)data;
	mp3_bytes += n;
	return 0;
}

static int speak(struct tts *t, const char *text, int64_t *ms, int *nwords)
{
	struct tts_word *w;
	struct err e = { 0 };
	if (tts_speak(t, "en", text, count_sink, NULL, &w, nwords, ms, &e)) {
		fprintf(stderr, "tts_speak: %s\n", e.msg);
		return -1;
	}
	xfree(w);
	return 0;
}

/* espeak-ng alone: PCM captured (up to a cap) for the LAME run. */
static short *pcm;
static size_t npcm, cappcm;
static long samples;
static int pcm_cb(short *wav, int n, espeak_EVENT *ev)
{
	(void)ev;
	samples += n;
	if (wav && npcm + (size_t)n <= cappcm) {
		memcpy(pcm + npcm, wav, (size_t)n * sizeof(short));
		npcm += (size_t)n;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 3 || (strcmp(argv[1], "speed") && strcmp(argv[1], "rss"))) {
		fprintf(stderr, "usage: tts_bench speed|rss FILE\n");
		return 2;
	}
	char *text = slurp(argv[2]);
	if (!text || phttp_global_init()) {
		fprintf(stderr, "tts_bench: cannot read %s\n", argv[2]);
		return 1;
	}
	struct tts *t;
	struct err e = { 0 };
	struct tts_config cfg = { .kind = "espeak", .bitrate_kbps = 56 };
	if (tts_open(&t, &cfg, NULL, &e)) {
		fprintf(stderr, "tts_open: %s\n", e.msg);
		return 1;
	}
	int64_t ms;
	int nwords;
	if (!strcmp(argv[1], "rss")) {
		double c0 = cpu_s();
		if (speak(t, text, &ms, &nwords))
			return 1;
		double c = cpu_s() - c0;
		struct rusage ru;
		getrusage(RUSAGE_SELF, &ru);
		printf("{\"text_bytes\": %zu, \"words\": %d, \"audio_s\": %.1f, \"mp3_bytes\": %zu, \"cpu_s\": %.2f, "
		       "\"peak_rss_mb\": %.1f}\n",
		       strlen(text), nwords, ms / 1000.0, mp3_bytes, c, ru.ru_maxrss / 1024.0);
		tts_close(t);
		free(text);
		return 0;
	}
	/* espeak-ng + LAME */
	double c0 = cpu_s();
	if (speak(t, text, &ms, &nwords))
		return 1;
	double both = cpu_s() - c0, audio = ms / 1000.0;
	/* espeak-ng alone (the same library state tts_open set up) */
	cappcm = (size_t)22050 * 600;
	pcm = malloc(cappcm * sizeof(short));
	espeak_SetSynthCallback(pcm_cb);
	espeak_SetVoiceByName("gmw/en");
	c0 = cpu_s();
	espeak_Synth(text, strlen(text) + 1, 0, POS_CHARACTER, 0, espeakCHARS_UTF8, NULL, NULL);
	double es = cpu_s() - c0, es_audio = samples / 22050.0;
	/* LAME alone on what espeak-ng produced */
	lame_global_flags *g = lame_init();
	lame_set_in_samplerate(g, 22050);
	lame_set_num_channels(g, 1);
	lame_set_mode(g, MONO);
	lame_set_VBR(g, vbr_off);
	lame_set_brate(g, 56);
	lame_set_quality(g, 7);
	lame_set_bWriteVbrTag(g, 0);
	lame_init_params(g);
	static unsigned char out[4096 * 5 / 4 + 7200];
	c0 = cpu_s();
	for (size_t off = 0; off < npcm; off += 4096) {
		int k = npcm - off < 4096 ? (int)(npcm - off) : 4096;
		lame_encode_buffer(g, pcm + off, pcm + off, k, out, sizeof(out));
	}
	lame_encode_flush(g, out, sizeof(out));
	double la = cpu_s() - c0, la_audio = npcm / 22050.0;
	printf("{\"audio_s\": %.1f, \"words\": %d, \"espeak_lame_x\": %.0f, \"espeak_x\": %.0f, \"lame_x\": %.0f, "
	       "\"lame_out_rate\": %d}\n",
	       audio, nwords, audio / both, es_audio / es, la_audio / la, lame_get_out_samplerate(g));
	lame_close(g);
	free(pcm);
	tts_close(t);
	free(text);
	phttp_global_cleanup();
	return 0;
}
