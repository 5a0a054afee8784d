/*
 * Splits a chapter's Markdown into retrieval chunks, exactly and
 * deterministically: the same Markdown always gives the same chunks.
 *
 * Sections are delimited by headings (a chunk never spans two); within a
 * section, top-level blocks (paragraphs, lists, code, tables, quotes) are
 * packed into chunks of at most max_tokens; a block larger than that is cut
 * at sentence boundaries (prose) or line boundaries (code, tables) — code and
 * tables that fit stay whole. Each chunk knows its byte range in the
 * Markdown (char_start..char_end, byte offsets into the UTF-8 text), its
 * heading, heading path and anchor, and a content hash of what is indexed.
 *
 * Tokens are estimated as ceil(bytes / 4), the usual rule of thumb for
 * English with BPE tokenizers; it only sizes chunks, nothing is billed by it.
 */
#ifndef BOOKD_CHUNKER_H
#define BOOKD_CHUNKER_H

#include <stddef.h>

#include "../core/arena.h"
#include "../core/err.h"

struct chunk {
	int ordinal;
	char *heading;	   /* the nearest heading, or the chapter title */
	char *heading_path; /* "Chapter > Section > Subsection" */
	char *anchor;	   /* of the nearest heading; NULL before the first */
	size_t char_start, char_end;
	char *text; /* the Markdown slice */
	int token_count;
	char content_hash[65]; /* SHA-256 of heading_path + "\n" + text, hex */
};

#define CHUNK_DEFAULT_TOKENS 256

int chunk_tokens(size_t bytes);
int chunk_markdown(const char *chapter_title, const char *md, size_t n, int max_tokens, struct arena *a,
		   struct chunk **out, int *nout, struct err *e) WUR;

#endif
