/*
 * Summaries of a chapter without a language model: extractive. The chapter's
 * key terms are its most frequent words (four bytes or more, common function
 * words left out); each sentence scores by how many key terms it holds,
 * weighed against its length, with a small bonus for a section's opening
 * sentence. The best sentences are kept until about `target_words` words,
 * then given back in the chapter's order, so the summary reads as the
 * chapter does and keeps its vocabulary.
 */
#ifndef BOOKD_SUMMARY_H
#define BOOKD_SUMMARY_H

#include "../core/arena.h"
#include "../core/err.h"

#define SUMMARY_KEY_TERMS 24

/* `plain` is the chapter's plain text. *out is allocated from `a`; an empty
 * string when the text has no sentence. */
int summary_extractive(const char *plain, int target_words, struct arena *a, char **out, struct err *e) WUR;
/* The key terms summary_extractive keeps (at most SUMMARY_KEY_TERMS), most
 * frequent first; exposed for tests. */
int summary_key_terms(const char *plain, struct arena *a, const char ***terms);

#endif
