/*
 * A chapter's Markdown cut into sections at its ATX headings (`#` … `######`
 * outside code fences), the unit that is translated, personalised and
 * cached. The cut is lossless: the sections' texts, concatenated, are the
 * chapter byte for byte. Text before the first heading is a section of its
 * own, anchored SECTION_INTRO, when it holds more than white space (else it
 * goes with the first heading). Anchors follow the chapter's `sections`
 * (GitHub/Docusaurus slugs, `{#id}` wins, repeats get -1, -2, …).
 *
 * Audience blocks, for personalisation without a model, in the style of
 * Docusaurus admonitions:
 *
 *     :::audience{level="beginner"}
 *     Text for beginners only.
 *     :::
 *
 * Attributes: `level` (one or more of beginner, intermediate, advanced,
 * separated by spaces or commas), `software` and `hardware` (terms, any of
 * which found — case-insensitively — in the reader's software_background /
 * hardware_background selects the block). A block is kept when each
 * attribute it names matches the reader; its marker lines go, its content
 * stays. Other blocks are removed whole. Admonitions and code fences may nest
 * inside. A reader without an experience_level counts as intermediate.
 */
#ifndef BOOKD_SECTIONS_H
#define BOOKD_SECTIONS_H

#include <stddef.h>

#include "../core/arena.h"
#include "../core/err.h"

#define SECTION_INTRO "_intro"

struct md_part {
	char *anchor;
	char *heading; /* "" for the intro */
	int level;     /* 0 for the intro */
	const char *text; /* into the chapter's Markdown */
	size_t len;
};

/* Cuts `md` (NUL-terminated at md[n]); parts in `a`, texts point into md. */
int sections_split(struct arena *a, const char *md, size_t n, struct md_part **parts, int *nparts,
		   struct err *e) WUR;

struct audience {
	const char *level;    /* "beginner" | "intermediate" | "advanced" | NULL */
	const char *software; /* free text or NULL */
	const char *hardware;
};

/* `md` with the audience blocks for `who` kept and the others removed, in
 * `a`; *blocks counts the audience blocks seen. */
int audience_select(struct arena *a, const char *md, size_t n, const struct audience *who, char **out,
		    size_t *outn, int *blocks, struct err *e) WUR;

#endif
