/*
 * A language model's table of contents, parsed. The prompt asks for a
 * numbered list, but models answer in more than one shape, so any of these
 * is read: numbered lines ("1. Title", "2) Title", "3: Title", "Chapter 4 -
 * Title", "**5. Title**", bullets and headings around them), or JSON (an
 * array of titles, an array of {number?, title}, or an object whose
 * "chapters" is either), each possibly inside a Markdown code fence. Lines
 * without a number are prose around the list and are dropped; "UNKNOWN"
 * gives no titles.
 */
#ifndef BOOKD_OUTLINE_H
#define BOOKD_OUTLINE_H

#include "../core/arena.h"
#include "../core/err.h"

#define OUTLINE_TITLE_MAX 400

/* The titles in order (at most `max`), each trimmed, 1..OUTLINE_TITLE_MAX
 * bytes, allocated from `a`. *n is 0 when the answer names no chapter. */
int outline_parse(const char *text, size_t len, int max, struct arena *a, char ***titles, int *n,
		  struct err *e) WUR;

#endif
