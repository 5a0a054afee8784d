/*
 * What the speech backends share: the ops table, the timing alignment and the
 * MP3 frame-header scanner. Only tts*.c and tests include this.
 */
#ifndef BOOKD_TTS_INT_H
#define BOOKD_TTS_INT_H

#include "tts.h"

/* One backend. `speak` gets the text's words (tts_words, char offsets set)
 * and fills their start_ms/end_ms. */
struct tts_ops {
	const char *kind;
	int (*open)(void **self, const struct tts_config *cfg, struct stop *stop, struct err *e);
	void (*close)(void *self);
	int (*voices)(void *self, const struct tts_voice **list, int *n);
	int (*speak)(void *self, const char *voice, const char *text, size_t n, tts_sink sink, void *ctx,
		     struct tts_word *words, int nwords, int64_t *duration_ms, struct err *e);
};

extern const struct tts_ops tts_espeak_ops;
extern const struct tts_ops tts_openai_ops;

/* A synthesiser's word event: a span of the text in characters (code points,
 * 0-based) and when its speech starts. */
struct tts_mark {
	size_t pos, len;
	int64_t ms;
};

/* Times words[0..nw) (offsets into `text`, in order) over [t0, t1]: each
 * mark with a length that overlaps a word not yet timed, later than the last
 * timed one and not earlier in time, gives that word its start; the words in
 * between share the time between two such starts by their length in
 * characters; every word ends where the next starts, the last at t1.
 * -1 when out of memory. */
int tts_align(const char *text, struct tts_word *words, int nw, const struct tts_mark *marks, int nmarks,
	      int64_t t0, int64_t t1) WUR;

/* MPEG audio frame headers, fed in pieces as they arrive: counts frames and
 * the samples they hold, skipping an ID3v2 tag at the start, a Xing/Info
 * frame (no audio) and bytes that are not a frame (resynchronising). */
struct mp3_scan {
	int started;	       /* the ID3v2 check at the start is done */
	int first_done;	       /* the first frame (maybe Xing/Info) has been seen */
	unsigned char ref[2];  /* its version and layer bits, its sample-rate bits */
	unsigned char hdr[48]; /* the start of a frame (or tag) being read */
	size_t nhdr;
	size_t skip;	       /* bytes left of the current frame or tag */
	long frames;	       /* audio frames */
	int64_t samples_us;    /* their length in microseconds, summed per frame */
	int sample_rate;       /* of the last frame */
};

struct mp3_header {
	int version;	 /* 1, 2 or 25 (MPEG-2.5) */
	int layer;	 /* 1..3 */
	int bitrate;	 /* kbit/s */
	int sample_rate; /* Hz */
	int channels;
	int samples;	 /* per frame */
	size_t length;	 /* bytes of the frame, header included */
};

/* 0 and *h when p[0..4) is a valid frame header (free-format refused). */
int mp3_header_parse(const unsigned char *p, struct mp3_header *h);
void mp3_scan_init(struct mp3_scan *s);
void mp3_scan_feed(struct mp3_scan *s, const void *data, size_t n);
/* The audio's length so far, in milliseconds. */
int64_t mp3_scan_ms(const struct mp3_scan *s);

#endif
