/*
 * Speech (struct tts_ops, tts_int.h): libespeak-ng in process (default) or an
 * OpenAI-compatible /audio/speech provider. A synthesis streams MP3 (LAME,
 * mono, 48-64 kbit/s) to a callback as it is produced — no whole-chapter
 * buffers — and returns word timings for every word of the text.
 *
 * Timings: espeak-ng's word events carry a character offset and a time but
 * skip some words, give several events for one numeral and sometimes zero-
 * length ones; they are mapped onto bookd's own word list (tts_words) and
 * the gaps interpolated, so every word has a start and an end, monotonic,
 * the last ending within 1% of the audio's duration. The OpenAI provider
 * gives no timings: they are estimated (character length over the decoded
 * duration of each request's audio).
 *
 * Threads: a struct tts may be shared; libespeak-ng is not thread-safe, so
 * its syntheses are serialised (one at a time per process).
 */
#ifndef BOOKD_TTS_H
#define BOOKD_TTS_H

#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"
#include "../core/stop.h"

struct tts;

struct tts_word {
	size_t char_start, char_end; /* byte offsets into the text given to tts_speak */
	int64_t start_ms, end_ms;
};

struct tts_voice {
	char name[64];	   /* as accepted by tts_speak: "en", "ur", "en-us", ... */
	char language[32]; /* BCP 47 */
	char label[96];	   /* human-readable */
};

struct tts_config {
	const char *kind;  /* "espeak" (default) or "openai" */
	const char *url;   /* openai: API base (…/v1) */
	const char *key;   /* openai: API key */
	const char *model; /* openai: e.g. "tts-1" */
	int bitrate_kbps;  /* espeak: 48..64, LAME takes the nearest MP3 rate (0 = 56) */
	int timeout_s;	   /* openai: per request (0 = 120) */
};

/* Longest text tts_speak takes (bytes): ERR_TOO_LARGE past it. */
#define TTS_TEXT_MAX ((size_t)4 << 20)

/* Writes MP3 bytes as they are produced; non-zero aborts the synthesis (the
 * caller's own cancellation: a cancelled job, a full disk). */
typedef int (*tts_sink)(void *ctx, const void *data, size_t n);

/* `stop` (may be NULL) aborts a synthesis or request under way when fired. */
int tts_open(struct tts **out, const struct tts_config *cfg, struct stop *stop, struct err *e) WUR;
void tts_close(struct tts *t);
/* "espeak" or "openai". */
const char *tts_kind(const struct tts *t);
/* The voices there are (espeak-ng's list, or the provider's fixed names);
 * the list lives as long as `t`. */
int tts_voices(struct tts *t, const struct tts_voice **list, int *n);
/* 1 when `voice` is one of tts_voices. */
int tts_voice_exists(struct tts *t, const char *voice);
/* The voice to read a text in language `lang` (BCP 47, any case: "en",
 * "en-GB", "ur"): the voice of that name, else of its primary language;
 * the provider's first voice for openai; NULL when espeak-ng has none. */
const char *tts_voice_for_language(struct tts *t, const char *lang);
/* Speaks `text` (UTF-8 plain text, not Markdown) in `voice`; MP3 to `sink`;
 * *words (xmalloc'ed, *nwords entries) cover every word of the text;
 * *duration_ms is the audio's length. ERR_INVALID for an unknown voice, text
 * that is not UTF-8 or has no word; ERR_TOO_LARGE past TTS_TEXT_MAX;
 * ERR_UNAVAILABLE when stopped, refused by the sink or the provider failed.
 * On error the sink may have had part of the audio: discard it. */
int tts_speak(struct tts *t, const char *voice, const char *text, tts_sink sink, void *ctx, struct tts_word **words,
	      int *nwords, int64_t *duration_ms, struct err *e) WUR;

/* bookd's words of text[0..n): maximal runs of letters, combining marks and
 * digits, joined across one apostrophe (' ’), hyphen (- ‐ ‑) or zero-width
 * (non-)joiner between two such characters, and across '.' or ',' between
 * two digits ("3.50", "1,984"); a currency sign right before a digit starts
 * the word ("$3.50") and a '%' right after a digit ends it. Everything else
 * (spaces, punctuation, symbols, emoji) separates words. Timings zeroed;
 * *out NULL when there is none. `text` must be valid UTF-8. */
int tts_words(const char *text, size_t n, struct tts_word **out, int *nout) WUR;

#endif
