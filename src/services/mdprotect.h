/*
 * Markdown structure protection for model rewrites (translation,
 * personalisation). Before a section goes to a model, everything the model
 * must not touch is replaced by a numbered placeholder: fenced and indented
 * code, inline code, URLs and link targets, HTML/JSX/MDX tags, admonition
 * markers (`:::note`, `:::`), math (`$…$`, `$$…$$`), heading anchors
 * (`{#id}`), and the book's glossary terms that are kept as they are (terms
 * with a given translation are replaced by that translation on the way back).
 * After the model answers, the placeholders are restored and the result
 * validated against the source: the same placeholders each exactly once, the
 * same number of fences, the same headings (levels) with their anchors, and
 * Markdown that parses. A result that fails is never cached.
 */
#ifndef BOOKD_MDPROTECT_H
#define BOOKD_MDPROTECT_H

#include <stddef.h>

#include "../core/arena.h"
#include "../core/err.h"

/* Caps: a larger section is ERR_TOO_LARGE (split it first); so is a section
 * that needs more placeholders or a longer glossary. A model's answer may be
 * at most MD_PROTECT_ANSWER_FACTOR times the protected text (Urdu takes about
 * twice the bytes of English) plus 4 KiB. */
enum {
	MD_PROTECT_MAX_BYTES = 256 * 1024,
	MD_PROTECT_MAX_SLOTS = 8192,
	MD_PROTECT_MAX_TERMS = 4096,
	MD_PROTECT_ANSWER_FACTOR = 4,
};

struct md_glossary_term {
	const char *term;	 /* as it appears in the source (matched case-sensitively, on word boundaries) */
	const char *translation; /* NULL: keep the term as it is */
};

struct md_protected {
	char *text;   /* the section with placeholders, for the model */
	int nslots;   /* placeholders made */
	/* (the rest is private to mdprotect.c) */
	void *priv;
};

/* Protects `src` (UTF-8 Markdown; not UTF-8 or a NUL byte: ERR_BAD_REQUEST).
 * Everything, `*out` included, lives in `a`, which must outlive the
 * md_restore calls (a retry may restore several answers against one `out`).
 * The glossary is copied. */
int md_protect(struct arena *a, const char *src, size_t n, const struct md_glossary_term *glossary, int nterms,
	       struct md_protected *out, struct err *e) WUR;
/* Restores the placeholders in the model's `answer` and validates the
 * result against the source given to md_protect. ERR_INVALID (with a
 * message naming what broke: "placeholder ⟦3⟧ missing", "fence count 2 != 4",
 * "heading 2 lost its anchor", …) when it is not acceptable; the restored
 * text in *restored (from `a`) otherwise. */
int md_restore(struct arena *a, const struct md_protected *p, const char *answer, size_t n, char **restored,
	       struct err *e) WUR;
/* The instruction to put in the system prompt so the model keeps the
 * placeholders (their syntax is the module's business). */
const char *md_protect_instructions(void);

#endif
