#include "chunker.h"

#include <cmark-gfm-core-extensions.h>
#include <cmark-gfm.h>
#include <sodium.h>
#include <string.h>

#include "../core/buf.h"
#include "../core/mem.h"
#include "markdown.h"

int chunk_tokens(size_t bytes)
{
	return (int)((bytes + 3) / 4);
}

struct chunker {
	const char *md;
	size_t n;
	int max_tokens;
	struct arena *a;
	struct chunk *out;
	int nout, cap;
	/* the section being filled */
	const char *heading, *anchor;
	char *path;
	size_t pending_start, pending_end; /* byte range of blocks not yet emitted */
	int has_pending;
	size_t cursor; /* end of everything taken so far: ranges never overlap */
	struct err *e;
};

static int emit(struct chunker *k, size_t start, size_t end)
{
	while (start < end && (k->md[start] == '\n' || k->md[start] == ' ' || k->md[start] == '\r'))
		start++;
	while (end > start && (k->md[end - 1] == '\n' || k->md[end - 1] == ' ' || k->md[end - 1] == '\r'))
		end--;
	if (start >= end)
		return 0;
	if (!(k->out = arena_grow(k->a, k->out, k->nout, &k->cap, sizeof(*k->out))))
		return err_set(k->e, ERR_INTERNAL, "out of memory");
	struct chunk *c = &k->out[k->nout];
	c->ordinal = k->nout;
	c->heading = (char *)k->heading;
	c->heading_path = k->path;
	c->anchor = (char *)k->anchor;
	c->char_start = start;
	c->char_end = end;
	c->text = arena_strndup(k->a, k->md + start, end - start);
	c->token_count = chunk_tokens(end - start);
	if (!c->text)
		return err_set(k->e, ERR_INTERNAL, "out of memory");
	unsigned char h[crypto_hash_sha256_BYTES];
	crypto_hash_sha256_state st;
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const unsigned char *)k->path, strlen(k->path));
	crypto_hash_sha256_update(&st, (const unsigned char *)"\n", 1);
	crypto_hash_sha256_update(&st, (const unsigned char *)c->text, end - start);
	crypto_hash_sha256_final(&st, h);
	sodium_bin2hex(c->content_hash, sizeof(c->content_hash), h, sizeof(h));
	k->nout++;
	return 0;
}

static int flush(struct chunker *k)
{
	int rc = 0;
	if (k->has_pending)
		rc = emit(k, k->pending_start, k->pending_end);
	k->has_pending = 0;
	return rc;
}

/* Cuts an oversized block into pieces of at most max_tokens, at sentence ends
 * (prose) or line ends (code, tables). */
static int split_block(struct chunker *k, size_t start, size_t end, int by_lines)
{
	size_t max_bytes = (size_t)k->max_tokens * 4;
	while (start < end) {
		if (end - start <= max_bytes)
			return emit(k, start, end);
		size_t limit = start + max_bytes, cut = 0;
		for (size_t i = start + max_bytes / 4; i < limit; i++) {
			char c = k->md[i];
			if (c == '\n' || (!by_lines && (c == '.' || c == '?' || c == '!') && i + 1 < end &&
					  (k->md[i + 1] == ' ' || k->md[i + 1] == '\n')))
				cut = i + 1;
		}
		if (!cut) /* no boundary at all: cut at a UTF-8 character start */ {
			cut = limit;
			while (cut > start && ((unsigned char)k->md[cut] & 0xc0) == 0x80)
				cut--;
		}
		int rc = emit(k, start, cut);
		if (rc)
			return rc;
		start = cut;
	}
	return 0;
}

static int add_block(struct chunker *k, size_t start, size_t end, int by_lines)
{
	/* cmark's end positions can reach past the next block's start in
	 * malformed documents (found by fuzzing): keep ranges in order and
	 * disjoint whatever the tree says. */
	if (start < k->cursor)
		start = k->cursor;
	if (end <= start)
		return 0;
	k->cursor = end;
	if (chunk_tokens(end - start) > k->max_tokens) {
		int rc = flush(k);
		return rc ? rc : split_block(k, start, end, by_lines);
	}
	if (k->has_pending && chunk_tokens(end - k->pending_start) > k->max_tokens) {
		int rc = flush(k);
		if (rc)
			return rc;
	}
	if (!k->has_pending)
		k->pending_start = start;
	k->pending_end = end;
	k->has_pending = 1;
	return 0;
}

/* Byte offset of a 1-based (line, column). */
static size_t offset_of(const size_t *lines, int nlines, size_t n, int line, int col)
{
	if (line < 1)
		return 0;
	if (line > nlines)
		return n;
	size_t off = lines[line - 1] + (size_t)(col > 0 ? col - 1 : 0);
	return off > n ? n : off;
}

static int count_headings(cmark_node *node)
{
	int n = 0;
	cmark_iter *it = cmark_iter_new(node);
	cmark_event_type ev;
	while ((ev = cmark_iter_next(it)) != CMARK_EVENT_DONE)
		if (ev == CMARK_EVENT_ENTER && cmark_node_get_type(cmark_iter_get_node(it)) == CMARK_NODE_HEADING)
			n++;
	cmark_iter_free(it);
	return n;
}

int chunk_markdown(const char *chapter_title, const char *md, size_t n, int max_tokens, struct arena *a,
		   struct chunk **out, int *nout, struct err *e)
{
	struct md_info info;
	int rc = md_analyze(md, n, a, &info, e);
	if (rc)
		return rc;
	/* Line starts, for cmark's (line, column) positions. */
	/* Lines end at \n, \r\n or a lone \r, as cmark counts them. */
	int nlines = 1;
	for (size_t i = 0; i < n; i++)
		nlines += md[i] == '\n' || (md[i] == '\r' && (i + 1 == n || md[i + 1] != '\n'));
	size_t *lines = xmalloc(sizeof(size_t) * (size_t)nlines);
	if (!lines)
		return err_set(e, ERR_INTERNAL, "out of memory");
	lines[0] = 0;
	for (size_t i = 0, l = 1; i < n; i++)
		if (md[i] == '\n' || (md[i] == '\r' && (i + 1 == n || md[i + 1] != '\n')))
			lines[l++] = i + 1;

	struct chunker k = { .md = md, .n = n, .max_tokens = max_tokens > 16 ? max_tokens : 16, .a = a, .e = e };
	const char *title = chapter_title && *chapter_title ? chapter_title : "Untitled";
	const char *levels[7] = { 0 }; /* heading text per level */
	k.heading = title;
	k.path = arena_strdup(a, title);

	cmark_parser *p = md_parser_new();
	cmark_node *doc = NULL;
	if (!p || (cmark_parser_feed(p, md, n), !(doc = cmark_parser_finish(p)))) {
		rc = err_set(e, ERR_INTERNAL, "out of memory");
		goto out;
	}
	int section = 0; /* index into info.sections, in document order */
	for (cmark_node *b = cmark_node_first_child(doc); b && !rc; b = cmark_node_next(b)) {
		cmark_node_type t = cmark_node_get_type(b);
		if (t == CMARK_NODE_HEADING) {
			if ((rc = flush(&k)) != 0)
				break;
			int level = cmark_node_get_heading_level(b);
			const struct md_section *s = section < info.nsections ? &info.sections[section] : NULL;
			section++;
			if (!s)
				continue;
			levels[level] = s->heading;
			for (int l = level + 1; l <= 6; l++)
				levels[l] = NULL;
			k.heading = s->heading;
			k.anchor = s->anchor;
			/* The path: the chapter title, then the headings above this one
			 * (an H1 equal to the title is not repeated). */
			struct buf path;
			buf_init(&path, 4096);
			int brc = buf_puts(&path, title);
			for (int l = 1; !brc && l <= level; l++) {
				if (!levels[l] || (l == 1 && !strcmp(levels[l], title)))
					continue;
				brc = buf_puts(&path, " > ");
				brc = brc ? brc : buf_puts(&path, levels[l]);
			}
			k.path = arena_strdup(a, path.p ? path.p : title);
			buf_free(&path);
			if (!k.path)
				rc = err_set(e, ERR_INTERNAL, "out of memory");
			continue;
		}
		section += count_headings(b); /* headings nested in quotes or lists */
		size_t start = offset_of(lines, nlines, n, cmark_node_get_start_line(b), cmark_node_get_start_column(b));
		int el = cmark_node_get_end_line(b), ec = cmark_node_get_end_column(b);
		size_t end = ec > 0 ? offset_of(lines, nlines, n, el, ec) + 1
				    : offset_of(lines, nlines, n, el + 1, 1);
		if (end > n)
			end = n;
		if (t == CMARK_NODE_HTML_BLOCK && end > start && md[start] == '<' && end - start < 200)
			continue; /* stray HTML: nothing to retrieve */
		int by_lines = t == CMARK_NODE_CODE_BLOCK || !strcmp(cmark_node_get_type_string(b), "table");
		rc = add_block(&k, start, end, by_lines);
	}
	if (!rc)
		rc = flush(&k);
out:
	if (doc)
		cmark_node_free(doc);
	if (p)
		cmark_parser_free(p);
	xfree(lines);
	if (rc)
		return rc;
	*out = k.out;
	*nout = k.nout;
	return 0;
}
