#include "summary.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/hash.h"
#include "../core/mem.h"
#include "../core/text.h"

#define MAX_SENTENCES 4096
#define TERM_SLOTS 4096 /* open addressing; distinct words past this are not counted */

static const char *const stopwords[] = {
	"about", "after", "again", "also", "because", "been", "before", "being", "between", "both", "could",
	"does", "doing", "down", "during", "each", "even", "every", "from", "further", "have", "having", "here",
	"into", "just", "like", "made", "make", "many", "more", "most", "much", "must", "only", "other", "over",
	"same", "should", "since", "some", "such", "than", "that", "their", "them", "then", "there", "these",
	"they", "this", "those", "through", "under", "until", "upon", "very", "were", "what", "when", "where",
	"which", "while", "will", "with", "would", "your", "shall", "said", "says", "still", "well", "within",
};

static int is_stopword(const char *w)
{
	for (size_t i = 0; i < sizeof(stopwords) / sizeof(stopwords[0]); i++)
		if (!strcmp(stopwords[i], w))
			return 1;
	return 0;
}

/* Word bytes: ASCII letters and digits, and every byte of a multi-byte
 * character (letters of other scripts; punctuation there is rare enough). */
static int word_byte(unsigned char c)
{
	return isalnum(c) || c >= 0x80;
}

struct term {
	char *w;
	int count, first;
};

int summary_key_terms(const char *plain, struct arena *a, const char ***terms)
{
	struct term *slots = xcalloc(TERM_SLOTS, sizeof(*slots));
	const char **out = arena_alloc(a, sizeof(char *) * SUMMARY_KEY_TERMS);
	int n = 0, order = 0;
	*terms = out;
	if (!slots || !out)
		goto out;
	for (const char *p = plain; *p;) {
		if (!word_byte((unsigned char)*p)) {
			p++;
			continue;
		}
		const char *s = p;
		while (*p && word_byte((unsigned char)*p))
			p++;
		size_t len = (size_t)(p - s);
		if (len < 4 || len > 64)
			continue;
		char w[65];
		for (size_t i = 0; i < len; i++)
			w[i] = (char)tolower((unsigned char)s[i]);
		w[len] = '\0';
		if (isdigit((unsigned char)w[0]) || is_stopword(w))
			continue;
		uint64_t h = hash_fnv1a(w);
		for (size_t probe = 0; probe < TERM_SLOTS; probe++) {
			struct term *t = &slots[(h + probe) % TERM_SLOTS];
			if (!t->w) {
				t->w = arena_strdup(a, w);
				t->count = 1;
				t->first = order++;
				break;
			}
			if (!strcmp(t->w, w)) {
				t->count++;
				break;
			}
		}
	}
	/* The most frequent, earliest first among equals; a word seen once is
	 * no key term. */
	for (; n < SUMMARY_KEY_TERMS; n++) {
		struct term *best = NULL;
		for (size_t i = 0; i < TERM_SLOTS; i++) {
			struct term *t = &slots[i];
			if (t->w && t->count > 1 &&
			    (!best || t->count > best->count || (t->count == best->count && t->first < best->first)))
				best = t;
		}
		if (!best)
			break;
		out[n] = best->w;
		best->count = 0;
	}
out:
	xfree(slots);
	return n;
}

static int words_in(const char *s, size_t n)
{
	int w = 0, in = 0;
	for (size_t i = 0; i < n; i++) {
		int sp = isspace((unsigned char)s[i]);
		w += !sp && !in;
		in = !sp;
	}
	return w;
}

struct scored {
	int idx, words;
	double score;
};

static int by_score(const void *x, const void *y)
{
	const struct scored *a = x, *b = y;
	if (a->score != b->score)
		return a->score < b->score ? 1 : -1;
	return a->idx - b->idx;
}

int summary_extractive(const char *plain, int target_words, struct arena *a, char **out, struct err *e)
{
	int rc = 0;
	struct text_sentence *ss = xmalloc(sizeof(*ss) * MAX_SENTENCES);
	struct scored *sc = xmalloc(sizeof(*sc) * MAX_SENTENCES);
	char *keep = xcalloc(MAX_SENTENCES, 1);
	const char **terms;
	*out = NULL;
	if (!ss || !sc || !keep) {
		rc = err_set(e, ERR_INTERNAL, "out of memory");
		goto out;
	}
	int nt = summary_key_terms(plain, a, &terms);
	int n = text_sentences(plain, ss, MAX_SENTENCES);
	for (int i = 0; i < n; i++) {
		int w = words_in(ss[i].p, ss[i].n);
		double hits = nt ? text_overlap(ss[i].p, ss[i].n, terms, nt) : 0;
		/* Density, softened: long sentences are not punished linearly. */
		double s = (hits + 0.5) / sqrt((double)(w > 3 ? w : 3));
		int opens = i == 0 || (ss[i].p > plain && ss[i].p[-1] == '\n');
		if (opens)
			s *= 1.25;
		if (w < 5 || w > 80)
			s *= 0.3; /* fragments and run-ons read badly aloud */
		sc[i] = (struct scored){ i, w, s };
	}
	qsort(sc, (size_t)n, sizeof(*sc), by_score);
	int words = 0;
	for (int i = 0; i < n && words < target_words; i++) {
		if (words && words + sc[i].words > target_words + target_words / 5)
			continue; /* would overshoot: a shorter one may fit */
		keep[sc[i].idx] = 1;
		words += sc[i].words;
	}
	size_t total = 1;
	for (int i = 0; i < n; i++)
		total += keep[i] ? ss[i].n + 1 : 0;
	char *s = arena_alloc(a, total), *p = s;
	if (!s) {
		rc = err_set(e, ERR_INTERNAL, "out of memory");
		goto out;
	}
	for (int i = 0; i < n; i++) {
		if (!keep[i])
			continue;
		if (p > s)
			*p++ = ' ';
		/* Newlines inside a sentence (wrapped lines) become spaces. */
		for (size_t k = 0; k < ss[i].n; k++)
			*p++ = ss[i].p[k] == '\n' ? ' ' : ss[i].p[k];
	}
	*p = '\0';
	*out = s;
out:
	xfree(keep);
	xfree(sc);
	xfree(ss);
	return rc;
}
