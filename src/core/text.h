/*
 * Plain-text pieces shared by retrieval and the extractive answerer: the
 * words of a question, the sentences of a passage, and how many of the words
 * a sentence shares.
 */
#ifndef BOOKD_TEXT_H
#define BOOKD_TEXT_H

#include <stddef.h>

#include "arena.h"

#define TEXT_MAX_TERMS 32

/* The distinct words of `q` (letters, digits and marks of any script),
 * lowercased (ASCII), at most TEXT_MAX_TERMS, allocated from `a`. */
int text_terms(const char *q, struct arena *a, const char ***terms);

struct text_sentence {
	const char *p;
	size_t n;
};

/* Sentences of a passage: ends at . ? ! followed by space/newline, or at a
 * blank line or a list item; returned as slices of the passage (those under
 * 12 bytes are left out). */
int text_sentences(const char *text, struct text_sentence *out, int max);

/* Word overlap of a sentence with a set of terms (prefix match on 5 letters,
 * a cheap stemmer: "walking" meets "walk"). */
int text_overlap(const char *s, size_t n, const char *const *terms, int nt);

#endif
