/*
 * What bookd needs to know about a chapter's Markdown, computed with cmark-gfm
 * (tables, strikethrough, autolinks, task lists): its sections (headings with
 * stable anchors), its plain text and its word count; plus MDX clean-up for
 * Docusaurus sources.
 *
 * Anchors follow GitHub's and Docusaurus' slugger so that links made by bookd
 * land on the same section of the published book: lowercased, punctuation
 * dropped, spaces to '-', a repeated slug gets -1, -2, ...; an explicit
 * Docusaurus id (`## Title {#my-id}`) wins.
 */
#ifndef BOOKD_MARKDOWN_H
#define BOOKD_MARKDOWN_H

#include <stddef.h>

#include "../core/arena.h"
#include "../core/buf.h"
#include "../core/err.h"
#include "../core/mdx.h"

struct md_section {
	char *anchor;
	char *heading;
	int level;
};

struct md_info {
	struct md_section *sections;
	int nsections;
	char *first_h1;  /* text of the first level-1 heading, or NULL */
	long word_count;
	char *plain;     /* plain text, blocks separated by newlines */
	size_t plain_len;
};

/* A cmark-gfm parser with the GFM extensions bookd reads (tables,
 * strikethrough, autolinks, task lists); NULL when out of memory. */
struct cmark_parser;
struct cmark_parser *md_parser_new(void);

/* Parses `md`; everything in `out` is allocated from `a`. */
int md_analyze(const char *md, size_t n, struct arena *a, struct md_info *out, struct err *e) WUR;

/* Sections as a JSON array [{"anchor","heading","level"}], arena-allocated. */
char *md_sections_json(const struct md_info *info, struct arena *a);

/* The slug of one heading text (no de-duplication), written into `out`. */
int md_slug(const char *text, size_t n, struct buf *out) WUR;

/* md_strip_mdx: core/mdx.h. */

#endif
