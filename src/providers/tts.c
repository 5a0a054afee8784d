/*
 * Speech: the backend chosen by name, the word list every backend times, and
 * the alignment of a synthesiser's word events onto it.
 *
 * Alignment (tts_align). A synthesiser reports words its own way: espeak-ng
 * skips some ("a", the tails of "well-known"), speaks "1984" or "$3.50" as
 * several words with events at the same or nearby offsets, and sends zero-
 * length events that point backwards. Only events with a length count; each
 * gives a start to the first of bookd's words its span overlaps, if that
 * word comes after the last word given a start and the time is not earlier
 * than the last event seen for that word (repeats — a numeral read as several
 * words — only say the word is still being spoken; stragglers are dropped;
 * starts are monotonic by construction). The words between two starts — and between the
 * last start and the end of the audio — share the time by their length in
 * characters: a word that was skipped is given the share of the speech its
 * length suggests. A word ends where the next begins; the last ends with the
 * audio. Every word therefore has a start and an end, nothing overlaps, and
 * the last end is the duration.
 */
#include "tts_int.h"

#include <string.h>
#include <utf8proc.h>

#include "../core/mem.h"
#include "../core/utf8.h"

struct tts {
	const struct tts_ops *ops;
	void *self;
};

static const struct tts_ops *const backends[] = { &tts_espeak_ops, &tts_openai_ops };

int tts_open(struct tts **out, const struct tts_config *cfg, struct stop *stop, struct err *e)
{
	*out = NULL;
	const char *kind = cfg->kind && *cfg->kind ? cfg->kind : "espeak";
	const struct tts_ops *ops = NULL;
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (!strcmp(backends[i]->kind, kind))
			ops = backends[i];
	if (!ops)
		return err_set(e, ERR_INVALID, "unknown speech provider \"%.32s\" (espeak or openai)", kind);
	struct tts *t = xcalloc(1, sizeof(*t));
	if (!t)
		return err_set(e, ERR_INTERNAL, "out of memory");
	t->ops = ops;
	int rc = ops->open(&t->self, cfg, stop, e);
	if (rc) {
		xfree(t);
		return rc;
	}
	*out = t;
	return 0;
}

void tts_close(struct tts *t)
{
	if (!t)
		return;
	t->ops->close(t->self);
	xfree(t);
}

const char *tts_kind(const struct tts *t) { return t->ops->kind; }

int tts_voices(struct tts *t, const struct tts_voice **list, int *n) { return t->ops->voices(t->self, list, n); }

int tts_voice_exists(struct tts *t, const char *voice)
{
	const struct tts_voice *v;
	int n;
	if (!voice || tts_voices(t, &v, &n))
		return 0;
	for (int i = 0; i < n; i++)
		if (!strcmp(v[i].name, voice))
			return 1;
	return 0;
}

const char *tts_voice_for_language(struct tts *t, const char *lang)
{
	const struct tts_voice *v;
	int n;
	if (tts_voices(t, &v, &n) || n == 0)
		return NULL;
	if (strcmp(t->ops->kind, "espeak"))
		return v[0].name;
	if (!lang || !*lang)
		lang = "en";
	size_t primary = strcspn(lang, "-_");
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < n; i++) {
			const char *name = v[i].name;
			if (pass == 0 ? !strcasecmp(name, lang)
				      : strlen(name) == primary && !strncasecmp(name, lang, primary))
				return name;
		}
	return NULL;
}

int tts_speak(struct tts *t, const char *voice, const char *text, tts_sink sink, void *ctx, struct tts_word **words,
	      int *nwords, int64_t *duration_ms, struct err *e)
{
	*words = NULL;
	*nwords = 0;
	*duration_ms = 0;
	size_t n = strlen(text);
	if (n > TTS_TEXT_MAX)
		return err_set(e, ERR_TOO_LARGE, "the text to speak is longer than %zu bytes", TTS_TEXT_MAX);
	if (!utf8_valid(text, n))
		return err_set(e, ERR_INVALID, "the text to speak is not valid UTF-8");
	if (!tts_voice_exists(t, voice))
		return err_set(e, ERR_INVALID, "no voice \"%.64s\" (GET /api/v1/voices lists the voices)",
			       voice ? voice : "");
	struct tts_word *w = NULL;
	int nw = 0;
	if (tts_words(text, n, &w, &nw))
		return err_set(e, ERR_INTERNAL, "out of memory");
	if (nw == 0)
		return err_set(e, ERR_INVALID, "the text has no words to speak");
	int rc = t->ops->speak(t->self, voice, text, n, sink, ctx, w, nw, duration_ms, e);
	if (rc) {
		xfree(w);
		*duration_ms = 0;
		return rc;
	}
	*words = w;
	*nwords = nw;
	return 0;
}

/* ---- bookd's words -------------------------------------------------------------------- */

static size_t next_cp(const char *s, size_t n, size_t off, utf8proc_int32_t *cp)
{
	utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + off, (utf8proc_ssize_t)(n - off), cp);
	if (k <= 0) { /* not valid UTF-8: one byte, no word */
		*cp = -1;
		return 1;
	}
	return (size_t)k;
}

static int is_digit(utf8proc_int32_t cp)
{
	if (cp < 0)
		return 0;
	utf8proc_category_t c = utf8proc_category(cp);
	return c == UTF8PROC_CATEGORY_ND || c == UTF8PROC_CATEGORY_NL || c == UTF8PROC_CATEGORY_NO;
}

static int is_word(utf8proc_int32_t cp)
{
	if (cp < 0)
		return 0;
	switch (utf8proc_category(cp)) {
	case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
	case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
	case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
	case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
		return 1;
	default:
		return 0;
	}
}

static int is_joiner(utf8proc_int32_t cp)
{
	return cp == '\'' || cp == 0x2019 || cp == '-' || cp == 0x2010 || cp == 0x2011 || cp == 0x200C ||
	       cp == 0x200D;
}

static int push_word(struct tts_word **w, int *nw, int *cap, size_t start, size_t end)
{
	if (*nw == *cap) {
		int ncap = *cap ? *cap * 2 : 64;
		struct tts_word *p = xrealloc(*w, (size_t)ncap * sizeof(**w));
		if (!p)
			return -1;
		*w = p;
		*cap = ncap;
	}
	(*w)[(*nw)++] = (struct tts_word){ .char_start = start, .char_end = end };
	return 0;
}

int tts_words(const char *text, size_t n, struct tts_word **out, int *nout)
{
	struct tts_word *w = NULL;
	int nw = 0, cap = 0, in_word = 0, prev_digit = 0;
	size_t start = 0, end = 0, off = 0;
	while (off < n) {
		utf8proc_int32_t cp, next = -1;
		size_t len = next_cp(text, n, off, &cp);
		if (is_word(cp)) {
			if (!in_word)
				start = off;
			in_word = 1;
			prev_digit = is_digit(cp);
			end = off += len;
			continue;
		}
		if (off + len < n)
			next_cp(text, n, off + len, &next);
		if (in_word) {
			if ((is_joiner(cp) && is_word(next)) || ((cp == '.' || cp == ',') && prev_digit && is_digit(next))) {
				off += len;
				continue;
			}
			if (cp == '%' && prev_digit)
				end = off + len;
			if (push_word(&w, &nw, &cap, start, end))
				goto oom;
			in_word = 0;
			if (cp == '%' && prev_digit) {
				off += len;
				continue;
			}
		}
		if (cp >= 0 && utf8proc_category(cp) == UTF8PROC_CATEGORY_SC && is_digit(next)) {
			start = off;
			in_word = 1;
			prev_digit = 0;
		}
		off += len;
	}
	if (in_word && push_word(&w, &nw, &cap, start, end))
		goto oom;
	*out = w;
	*nout = nw;
	return 0;
oom:
	xfree(w);
	*out = NULL;
	*nout = 0;
	return -1;
}

/* ---- alignment ------------------------------------------------------------------------ */

struct span {
	size_t cp0, cp1; /* the word in characters */
	int64_t start;	 /* its start from a mark, or -1 */
};

/* The first word whose span ends after character `pos`. */
static int word_at(const struct span *sp, int nw, size_t pos)
{
	int lo = 0, hi = nw;
	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		if (sp[mid].cp1 <= pos)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int tts_align(const char *text, struct tts_word *words, int nw, const struct tts_mark *marks, int nmarks,
	      int64_t t0, int64_t t1)
{
	if (nw <= 0)
		return 0;
	if (t1 < t0)
		t1 = t0;
	struct span *sp = xmalloc((size_t)nw * sizeof(*sp));
	if (!sp)
		return -1;
	size_t off = 0, cps = 0, n = words[nw - 1].char_end;
	for (int i = 0; i < nw; i++) {
		utf8proc_int32_t cp;
		while (off < words[i].char_start)
			off += next_cp(text, n, off, &cp), cps++;
		sp[i].cp0 = cps;
		while (off < words[i].char_end)
			off += next_cp(text, n, off, &cp), cps++;
		sp[i].cp1 = cps;
		sp[i].start = -1;
	}
	int last = -1;
	int64_t last_t = t0;
	for (int m = 0; m < nmarks; m++) {
		if (marks[m].len == 0 || marks[m].ms < last_t || marks[m].ms > t1)
			continue;
		int k = word_at(sp, nw, marks[m].pos);
		if (k == nw || k < last || sp[k].cp0 >= marks[m].pos + marks[m].len)
			continue;
		if (k == last) { /* the same word again: still being spoken */
			last_t = marks[m].ms;
			continue;
		}
		sp[k].start = marks[m].ms;
		last = k;
		last_t = marks[m].ms;
	}
	int a = 0;
	int64_t ta = sp[0].start >= 0 ? sp[0].start : t0;
	for (int b = 1; b <= nw; b++) {
		if (b < nw && sp[b].start < 0)
			continue;
		int64_t tb = b < nw ? sp[b].start : t1;
		size_t weight = 0, acc = 0;
		for (int k = a; k < b; k++)
			weight += sp[k].cp1 - sp[k].cp0;
		for (int k = a; k < b; k++) {
			words[k].start_ms = ta + (int64_t)((double)(tb - ta) * (double)acc / (double)weight);
			acc += sp[k].cp1 - sp[k].cp0;
			words[k].end_ms = k == b - 1 ? tb : ta + (int64_t)((double)(tb - ta) * (double)acc / (double)weight);
		}
		a = b;
		ta = tb;
	}
	xfree(sp);
	return 0;
}
