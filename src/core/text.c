#include "text.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>
#include <utf8proc.h>

/* A word character: a letter, digit or mark in any script. */
static size_t word_char(const char *p, size_t n, int *is_word)
{
	utf8proc_int32_t cp;
	utf8proc_ssize_t len = utf8proc_iterate((const utf8proc_uint8_t *)p, (utf8proc_ssize_t)n, &cp);
	if (len <= 0) {
		*is_word = 0;
		return 1; /* invalid byte: a separator */
	}
	utf8proc_category_t c = utf8proc_category(cp);
	*is_word = (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_NO);
	return (size_t)len;
}

int text_terms(const char *q, struct arena *a, const char ***terms)
{
	const char **t = arena_alloc(a, sizeof(char *) * TEXT_MAX_TERMS);
	int n = 0;
	*terms = t;
	if (!t)
		return 0;
	size_t len = strlen(q);
	for (size_t i = 0; i < len && n < TEXT_MAX_TERMS;) {
		int w;
		size_t k = word_char(q + i, len - i, &w);
		if (!w) {
			i += k;
			continue;
		}
		size_t start = i;
		while (i < len) {
			k = word_char(q + i, len - i, &w);
			if (!w)
				break;
			i += k;
		}
		char *word = arena_strndup(a, q + start, i - start);
		if (!word)
			break;
		for (char *c = word; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		int dup = 0;
		for (int j = 0; j < n; j++)
			dup |= !strcmp(t[j], word);
		if (!dup)
			t[n++] = word;
	}
	return n;
}

int text_sentences(const char *text, struct text_sentence *out, int max)
{
	int n = 0;
	const char *start = text;
	for (const char *p = text;; p++) {
		int end = !*p || (*p == '\n' && (p[1] == '\n' || p[1] == '-' || p[1] == '*' || p[1] == '|')) ||
			  ((*p == '.' || *p == '?' || *p == '!') && (p[1] == ' ' || p[1] == '\n' || !p[1]));
		if (!end)
			continue;
		const char *stop = *p && *p != '\n' ? p + 1 : p;
		while (start < stop && isspace((unsigned char)*start))
			start++;
		/* list bullets and table pipes are not part of the sentence */
		while (start < stop && (*start == '-' || *start == '*' || *start == '|' || *start == '#' || *start == ' '))
			start++;
		size_t len = (size_t)(stop - start);
		if (len >= 12 && n < max)
			out[n++] = (struct text_sentence){ start, len };
		if (!*p)
			break;
		start = p + 1;
	}
	return n;
}

int text_overlap(const char *s, size_t n, const char *const *terms, int nt)
{
	int score = 0;
	for (int t = 0; t < nt; t++) {
		size_t tl = strlen(terms[t]);
		if (tl < 3)
			continue; /* "a", "is", "of": no signal */
		size_t want = tl < 5 ? tl : 5;
		for (size_t i = 0; i + want <= n; i++) {
			if ((i == 0 || !isalnum((unsigned char)s[i - 1])) && !strncasecmp(s + i, terms[t], want)) {
				score++;
				break;
			}
		}
	}
	return score;
}
