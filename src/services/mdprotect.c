/*
 * Markdown structure protection: one forward pass over the section's bytes
 * finds the spans a model must not touch, each replaced by ⟦N⟧ (N from 1, in
 * source order).
 *
 * Where the spans come from:
 * - cmark-gfm's tree gives the code blocks (fenced and indented; by lines, so
 *   the fences and the indentation go with them) and the raw-text HTML blocks
 *   (<pre>, <script>, <style>, <textarea>): those are the constructs where a
 *   hand-made scanner and CommonMark disagree most.
 * - A scanner does the rest, between those blocks, because cmark gives no
 *   source positions for inlines and knows nothing of MDX: code spans
 *   (backtick runs matched by length, as CommonMark), autolinks, HTML
 *   comments and HTML/JSX tags (across lines: quoted values, {…} expressions
 *   with nesting and strings), link and image targets `](url "title")`,
 *   reference labels `][id]`, `[^note]` and `[id]` when `id` is defined, bare
 *   http(s):// and www. URLs (GFM's trailing-punctuation rule), math, `{#id}`
 *   anchors, glossary terms; at a line start also admonition markers
 *   (`:::name{attrs}`; a title after it stays translatable), reference
 *   definitions (the whole line) and MDX import/export (to the blank line).
 * - Math follows Pandoc's rule, a little stricter, so prices are prose:
 *   `$$…$$` always; `$…$` only when the opening `$` has a non-space on its
 *   right and the next unescaped `$` (which must close it, or nothing does)
 *   has a non-space on its left and neither a digit nor `$` on its right.
 *   "$3.50 and $4": a space precedes the second `$`, so no math; "$5-$10":
 *   a digit follows it; "costs $3.50, and $x$" makes `$x$` the math; `\$`
 *   never counts.
 * - A source ⟦ is itself protected, so every ⟦ in the protected text is a
 *   placeholder and protect/restore is the identity on any input.
 * Inline constructs never run past a blank line or into a protected block;
 * failed searches are remembered for the rest of the paragraph (backticks
 * by run length, `$`, tags, comments), so hostile input stays linear.
 *
 * ⟦N⟧ (U+27E6/U+27E7): not Markdown, MDX or LaTeX syntax, so no renderer or
 * model reads it as markup; absent from ordinary prose in any script; a
 * bracketed number that models copy as one unit. Restoring accepts spaces
 * inside the brackets and Arabic-Indic digits, which models writing Urdu or
 * Arabic sometimes produce.
 *
 * Validation of a restored answer against the source (ERR_INVALID naming the
 * first problem): every placeholder exactly once, no stray ⟦; a placeholder
 * that stood on a line of its own (code block, $$ block, definition, import)
 * still does, and an admonition marker still starts its line; the result is
 * UTF-8 and cmark parses it into the same number of fenced and of all code
 * blocks with the same contents, the same number of links and images, and the
 * same headings (count, levels) with the same {#anchors}.
 */
#include "mdprotect.h"

#include <cmark-gfm.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/buf.h"
#include "../core/utf8.h"
#include "markdown.h"

#define OPEN "\xE2\x9F\xA6"  /* ⟦ */
#define CLOSE "\xE2\x9F\xA7" /* ⟧ */
#define MAX_TICKS 64
#define MAX_LINK 4096
#define MAX_LABEL 999

enum kind { K_LITERAL, K_CODE_BLOCK, K_HTML_BLOCK, K_CODE, K_URL, K_LINK, K_HTML, K_ADMON, K_MATH, K_ANCHOR,
	    K_REFDEF, K_ESM, K_TERM };

static const char *const kind_names[] = { "literal", "code block", "HTML block", "inline code", "URL", "link target",
					  "tag", "admonition marker", "math", "anchor", "definition", "import/export",
					  "glossary term" };

struct slot {
	size_t start, end;   /* in the source */
	const char *restore; /* what goes back: the source bytes or a translation */
	size_t rn;
	unsigned char kind;
	/* In the protected text: nothing but container markers before the
	 * placeholder on its line; nothing but blanks after it. */
	unsigned char own_line, line_end;
};

struct heading {
	int level;
	const char *anchor; /* NULL: none */
	size_t anchor_n;
};

/* What validation compares between the source and a restored answer. */
struct shape {
	int nfenced, ncode, nlinks, nheadings;
	const char **code; /* code block literals, in order */
	struct heading *headings;
};

struct priv {
	const char *src;
	size_t n;
	struct slot *slots;
	struct shape shape;
};

struct span {
	size_t start, end;
	unsigned char kind;
};

struct term {
	const char *t, *tr;
	size_t n, trn;
};

struct scan {
	const char *s;
	size_t n;
	struct arena *a;
	struct err *e;
	struct slot *slots;
	int nslots, cap;
	struct span *blocks;
	int nblocks, bcap;
	size_t limit; /* end of the current paragraph or the next block */
	size_t tick_fail[MAX_TICKS + 1], math_fail, math2_fail, tag_fail, comment_fail;
	char **labels; /* defined reference labels, lowercased */
	int nlabels, lcap;
	struct term *terms;
	int nterms;
	int bucket[257];
};

/* ---- bytes and lines ---- */

static int is_nl(char c)
{
	return c == '\n' || c == '\r';
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static int is_ws(char c)
{
	return is_blank(c) || is_nl(c);
}

static int is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int is_word(char c)
{
	return is_alnum(c) || c == '_';
}

static int is_punct(char c)
{
	return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') || (c >= '{' && c <= '~');
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static int line_start(const char *s, size_t i)
{
	return i == 0 || s[i - 1] == '\n' || (s[i - 1] == '\r' && s[i] != '\n');
}

static size_t eol(const char *s, size_t n, size_t i)
{
	while (i < n && !is_nl(s[i]))
		i++;
	return i;
}

static size_t next_line(const char *s, size_t n, size_t i)
{
	i = eol(s, n, i);
	if (i < n && s[i] == '\r') {
		if (++i < n && s[i] == '\n')
			i++;
	} else if (i < n) {
		i++;
	}
	return i;
}

static int blank_line(const char *s, size_t n, size_t i)
{
	while (i < n && is_blank(s[i]))
		i++;
	return i >= n || is_nl(s[i]);
}

/* Start of the first blank line after the line holding i. */
static size_t para_end(const char *s, size_t n, size_t i)
{
	for (i = next_line(s, n, i); i < n; i = next_line(s, n, i))
		if (blank_line(s, n, i))
			return i;
	return n;
}

static int container_char(char c)
{
	return is_blank(c) || c == '>' || c == '-' || c == '*' || c == '+' || c == '.' || c == ')' ||
	       (c >= '0' && c <= '9');
}

static int starts_own_line(const char *s, size_t i)
{
	while (i > 0 && !is_nl(s[i - 1]))
		if (!container_char(s[--i]))
			return 0;
	return 1;
}

static int ends_line(const char *s, size_t n, size_t i)
{
	while (i < n && is_blank(s[i]))
		i++;
	return i >= n || is_nl(s[i]);
}

/* ---- slots ---- */

static int oom(struct scan *sc)
{
	return err_set(sc->e, ERR_INTERNAL, "out of memory");
}

/* 1 when added, 0 when it would reach into the next protected block (not a
 * match then), negative on error. */
static int add(struct scan *sc, size_t start, size_t end, int kind, const char *restore, size_t rn)
{
	if (end > sc->limit || end <= start)
		return 0;
	if (sc->nslots >= MD_PROTECT_MAX_SLOTS)
		return err_set(sc->e, ERR_TOO_LARGE, "more than %d protected spans", MD_PROTECT_MAX_SLOTS);
	struct slot *s = arena_grow(sc->a, sc->slots, sc->nslots, &sc->cap, sizeof(*s));
	if (!s)
		return oom(sc);
	sc->slots = s;
	s += sc->nslots++;
	s->start = start;
	s->end = end;
	s->kind = (unsigned char)kind;
	s->restore = restore ? restore : sc->s + start;
	s->rn = restore ? rn : end - start;
	return 1;
}

/* ---- blocks from cmark ---- */

static int add_block(struct scan *sc, size_t start, size_t end, int kind)
{
	if (sc->nblocks && start < sc->blocks[sc->nblocks - 1].end)
		start = sc->blocks[sc->nblocks - 1].end; /* keep them ordered and disjoint */
	if (end <= start)
		return 0;
	struct span *b = arena_grow(sc->a, sc->blocks, sc->nblocks, &sc->bcap, sizeof(*b));
	if (!b)
		return oom(sc);
	sc->blocks = b;
	b[sc->nblocks++] = (struct span){ start, end, (unsigned char)kind };
	return 0;
}

static int raw_html_block(const char *lit)
{
	static const char *const tags[] = { "<pre", "<script", "<style", "<textarea" };
	while (is_blank(*lit))
		lit++;
	for (size_t t = 0; t < ARRAY_LEN(tags); t++) {
		size_t k = strlen(tags[t]);
		if (strncasecmp(lit, tags[t], k) == 0 && (is_ws(lit[k]) || lit[k] == '>' || !lit[k]))
			return 1;
	}
	return 0;
}

/* The byte span of a code or HTML block: whole lines, from the line start
 * when only blanks precede it (its indentation goes with it), to the end of
 * its last line that is not blank. */
static int block_span(struct scan *sc, const size_t *lines, int nlines, cmark_node *b, int kind)
{
	int sl = cmark_node_get_start_line(b), sc_ = cmark_node_get_start_column(b);
	int el = cmark_node_get_end_line(b), ec = cmark_node_get_end_column(b);
	if (ec == 0)
		el--;
	if (sl < 1 || sl > nlines || el < sl)
		return 0;
	if (el > nlines)
		el = nlines;
	size_t ls = lines[sl - 1], start = ls + (size_t)(sc_ > 0 ? sc_ - 1 : 0);
	if (start > sc->n)
		return 0;
	size_t k = ls;
	while (k < start && is_blank(sc->s[k]))
		k++;
	if (k == start)
		start = ls;
	while (el > sl && blank_line(sc->s, sc->n, lines[el - 1]))
		el--;
	size_t end = eol(sc->s, sc->n, lines[el - 1]);
	return add_block(sc, start, end, kind);
}

static const char *dup_lit(struct arena *a, const char *lit)
{
	return arena_strdup(a, lit ? lit : "");
}

/* Explicit {#id} at the end of a heading's text. */
static void heading_anchor(const char *t, size_t n, struct heading *h)
{
	while (n && is_blank(t[n - 1]))
		n--;
	h->anchor = NULL;
	if (n < 4 || t[n - 1] != '}')
		return;
	for (size_t i = n - 1; i-- > 0;)
		if (t[i] == '{') {
			if (t[i + 1] == '#') {
				h->anchor = t + i + 2;
				h->anchor_n = n - 1 - (i + 2);
			}
			return;
		}
}

static int heading_text(struct arena *a, cmark_node *node, struct heading *h)
{
	struct buf b;
	buf_init(&b, MD_PROTECT_MAX_BYTES * (size_t)MD_PROTECT_ANSWER_FACTOR);
	cmark_iter *it = cmark_iter_new(node);
	int rc = it ? 0 : -1;
	cmark_event_type ev;
	while (!rc && (ev = cmark_iter_next(it)) != CMARK_EVENT_DONE) {
		cmark_node *c = cmark_iter_get_node(it);
		cmark_node_type t = cmark_node_get_type(c);
		if (ev == CMARK_EVENT_ENTER && (t == CMARK_NODE_TEXT || t == CMARK_NODE_CODE)) {
			const char *lit = cmark_node_get_literal(c);
			rc = buf_puts(&b, lit ? lit : "");
		}
	}
	if (it)
		cmark_iter_free(it);
	const char *text = rc ? NULL : arena_strndup(a, b.p ? b.p : "", b.n);
	size_t n = b.n;
	buf_free(&b);
	if (!text)
		return -1;
	heading_anchor(text, n, h);
	return 0;
}

/* Parses md into its shape; with sc, also collects the protected blocks. */
static int shape_of(struct arena *a, const char *md, size_t n, struct shape *sh, struct scan *sc, struct err *e)
{
	int rc = err_set(e, ERR_INTERNAL, "out of memory");
	size_t *lines = NULL;
	int nlines = 1, hcap = 0, ccap = 0;
	cmark_parser *p = md_parser_new();
	cmark_node *doc = NULL;
	cmark_iter *it = NULL;
	memset(sh, 0, sizeof(*sh));
	if (!p)
		goto out;
	cmark_parser_feed(p, md, n);
	if (!(doc = cmark_parser_finish(p))) {
		rc = err_set(e, ERR_INVALID, "the Markdown does not parse");
		goto out;
	}
	if (sc) {
		for (size_t i = 0; i < n; i++)
			nlines += md[i] == '\n' || (md[i] == '\r' && (i + 1 == n || md[i + 1] != '\n'));
		if (!(lines = arena_alloc(a, sizeof(size_t) * (size_t)nlines)))
			goto out;
		lines[0] = 0;
		for (size_t i = 0, l = 1; i < n; i++)
			if (md[i] == '\n' || (md[i] == '\r' && (i + 1 == n || md[i + 1] != '\n')))
				lines[l++] = i + 1;
	}
	if (!(it = cmark_iter_new(doc)))
		goto out;
	cmark_event_type ev;
	while ((ev = cmark_iter_next(it)) != CMARK_EVENT_DONE) {
		cmark_node *c = cmark_iter_get_node(it);
		if (ev != CMARK_EVENT_ENTER)
			continue;
		switch (cmark_node_get_type(c)) {
		case CMARK_NODE_CODE_BLOCK: {
			int len, off;
			char ch;
			const char **code = arena_grow(a, sh->code, sh->ncode, &ccap, sizeof(*code));
			if (!code || !(code[sh->ncode] = dup_lit(a, cmark_node_get_literal(c))))
				goto out;
			sh->code = code;
			sh->ncode++;
			sh->nfenced += cmark_node_get_fenced(c, &len, &off, &ch) != 0;
			if (sc && block_span(sc, lines, nlines, c, K_CODE_BLOCK))
				goto fail;
			break;
		}
		case CMARK_NODE_HTML_BLOCK:
			if (sc && raw_html_block(cmark_node_get_literal(c) ? cmark_node_get_literal(c) : "") &&
			    block_span(sc, lines, nlines, c, K_HTML_BLOCK))
				goto fail;
			break;
		case CMARK_NODE_LINK:
		case CMARK_NODE_IMAGE:
			sh->nlinks++;
			break;
		case CMARK_NODE_HEADING: {
			struct heading *h = arena_grow(a, sh->headings, sh->nheadings, &hcap, sizeof(*h));
			if (!h)
				goto out;
			sh->headings = h;
			h += sh->nheadings++;
			h->level = cmark_node_get_heading_level(c);
			if (heading_text(a, c, h))
				goto out;
			break;
		}
		default:
			break;
		}
	}
	rc = 0;
	err_clear(e);
	goto out;
fail:
	rc = e->code ? e->code : ERR_INTERNAL;
out:
	if (it)
		cmark_iter_free(it);
	if (doc)
		cmark_node_free(doc);
	if (p)
		cmark_parser_free(p);
	return rc;
}

/* ---- line constructs ---- */

static int add_label(struct scan *sc, const char *l, size_t n)
{
	char **ls = arena_grow(sc->a, sc->labels, sc->nlabels, &sc->lcap, sizeof(*ls));
	char *c = arena_strndup(sc->a, l, n);
	if (!ls || !c)
		return oom(sc);
	for (size_t i = 0; i < n; i++)
		c[i] = lower(c[i]);
	sc->labels = ls;
	ls[sc->nlabels++] = c;
	return 0;
}

/* `[label]:` at i (up to three blanks before): the end of the label's `]`. */
static size_t refdef_label(const char *s, size_t n, size_t i)
{
	for (int k = 0; k < 3 && i < n && s[i] == ' '; k++)
		i++;
	if (i >= n || s[i] != '[')
		return 0;
	size_t j = i + 1;
	while (j < n && j - i <= MAX_LABEL && s[j] != ']' && s[j] != '[' && !is_nl(s[j]))
		j += s[j] == '\\' && j + 1 < n && !is_nl(s[j + 1]) ? 2 : 1;
	if (j >= n || s[j] != ']' || j == i + 1 || j + 1 >= n || s[j + 1] != ':')
		return 0;
	return j;
}

static int collect_labels(struct scan *sc)
{
	int bi = 0;
	for (size_t i = 0; i < sc->n; i = next_line(sc->s, sc->n, i)) {
		while (bi < sc->nblocks && sc->blocks[bi].end <= i)
			bi++;
		if (bi < sc->nblocks && sc->blocks[bi].start <= i)
			continue;
		size_t j = refdef_label(sc->s, sc->n, i);
		if (j) {
			size_t o = i;
			while (sc->s[o] != '[')
				o++;
			if (sc->s[o + 1] != '^' && add_label(sc, sc->s + o + 1, j - o - 1))
				return -1;
		}
	}
	return 0;
}

static int esm_line(const char *s, size_t n, size_t i)
{
	return (n - i > 7 && !memcmp(s + i, "import", 6) && (is_blank(s[i + 6]) || s[i + 6] == '{')) ||
	       (n - i > 7 && !memcmp(s + i, "export", 6) && is_blank(s[i + 6]));
}

/* Constructs that only start a line; returns the end of what was protected
 * (0: none), negative on error. */
static long line_construct(struct scan *sc, size_t i)
{
	const char *s = sc->s;
	size_t n = sc->n, j = i;
	int rc;
	if (esm_line(s, n, i)) {
		size_t end = para_end(s, n, i);
		while (end > i && is_nl(s[end - 1]))
			end--;
		if (end > sc->limit)
			end = sc->limit;
		rc = add(sc, i, end, K_ESM, NULL, 0);
		return rc < 0 ? rc : rc ? (long)end : 0;
	}
	size_t d = refdef_label(s, n, i);
	if (d) {
		size_t o = i;
		while (s[o] != '[')
			o++;
		size_t end = s[o + 1] == '^' ? d + 2 : eol(s, n, d);
		while (end > d + 2 && is_blank(s[end - 1]))
			end--;
		rc = add(sc, o, end, K_REFDEF, NULL, 0);
		return rc < 0 ? rc : rc ? (long)end : 0;
	}
	while (j < n && (is_blank(s[j]) || s[j] == '>'))
		j++;
	if (n - j >= 3 && !memcmp(s + j, ":::", 3)) {
		size_t k = j;
		while (k < n && s[k] == ':')
			k++;
		if (k < n && ((s[k] >= 'a' && s[k] <= 'z') || (s[k] >= 'A' && s[k] <= 'Z')))
			while (k < n && (is_word(s[k]) || s[k] == '-'))
				k++;
		if (k < n && s[k] == '{') {
			size_t m = k;
			int depth = 0;
			for (; m < n && !is_nl(s[m]); m++) {
				if (s[m] == '{')
					depth++;
				else if (s[m] == '}' && --depth == 0)
					break;
				else if (s[m] == '"' || s[m] == '\'') {
					char q = s[m];
					for (m++; m < n && s[m] != q && !is_nl(s[m]); m++)
						;
				}
			}
			if (m < n && s[m] == '}')
				k = m + 1;
		}
		if (k >= n || is_ws(s[k]) || s[k] == '[') {
			rc = add(sc, j, k, K_ADMON, NULL, 0);
			return rc < 0 ? rc : rc ? (long)k : 0;
		}
	}
	return 0;
}

/* ---- inline constructs: each returns the end of the span, 0 if none ---- */

static size_t code_span(struct scan *sc, size_t i)
{
	const char *s = sc->s;
	size_t k = i;
	while (k < sc->limit && s[k] == '`')
		k++;
	size_t run = k - i;
	if (run > MAX_TICKS || (i > 0 && s[i - 1] == '`') || i < sc->tick_fail[run])
		return 0;
	for (size_t j = k; j < sc->limit;) {
		if (s[j] != '`') {
			j++;
			continue;
		}
		size_t m = j;
		while (m < sc->limit && s[m] == '`')
			m++;
		if (m - j == run)
			return m;
		j = m;
	}
	sc->tick_fail[run] = sc->limit;
	return 0;
}

static size_t skip_string(const char *s, size_t j, size_t lim)
{
	char q = s[j];
	for (j++; j < lim && s[j] != q; j++)
		if (s[j] == '\\')
			j++;
	return j < lim ? j + 1 : 0;
}

/* A balanced {…} JSX expression at j: the end, 0 if it does not close. */
static size_t skip_expr(const char *s, size_t j, size_t lim)
{
	int depth = 0;
	while (j < lim) {
		char c = s[j];
		if (c == '"' || c == '\'' || c == '`') {
			if (!(j = skip_string(s, j, lim)))
				return 0;
			continue;
		}
		if (c == '{')
			depth++;
		else if (c == '}' && --depth == 0)
			return j + 1;
		j++;
	}
	return 0;
}

static size_t html_tag(struct scan *sc, size_t i)
{
	const char *s = sc->s;
	size_t lim = sc->limit, j = i + 1;
	if (j < lim && s[j] == '/')
		j++;
	if (j < lim && s[j] == '>')
		return j + 1; /* a JSX fragment: <> or </> */
	if (j >= lim || !((s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z')))
		return 0;
	while (j < lim && (is_alnum(s[j]) || s[j] == '-' || s[j] == '.' || s[j] == ':' || s[j] == '_'))
		j++;
	if (i < sc->tag_fail)
		return 0;
	for (;;) {
		while (j < lim && is_ws(s[j]))
			j++;
		if (j >= lim)
			break;
		if (s[j] == '>')
			return j + 1;
		if (s[j] == '/' && j + 1 < lim && s[j + 1] == '>')
			return j + 2;
		if (s[j] == '{') {
			size_t x = skip_expr(s, j, lim);
			if (!x) {
				j = lim;
				break;
			}
			j = x;
			continue;
		}
		if (!(is_alnum(s[j]) || s[j] == '_' || s[j] == ':' || s[j] == '@'))
			break;
		while (j < lim && (is_alnum(s[j]) || s[j] == '_' || s[j] == ':' || s[j] == '.' || s[j] == '-' || s[j] == '@'))
			j++;
		while (j < lim && is_ws(s[j]))
			j++;
		if (j >= lim || s[j] != '=')
			continue;
		for (j++; j < lim && is_ws(s[j]);)
			j++;
		if (j >= lim)
			break;
		if (s[j] == '"' || s[j] == '\'' || s[j] == '{') {
			size_t x = s[j] == '{' ? skip_expr(s, j, lim) : skip_string(s, j, lim);
			if (!x) {
				j = lim; /* everything up to the limit was looked at */
				break;
			}
			j = x;
		} else {
			size_t v = j;
			while (j < lim && !is_ws(s[j]) && !strchr("\"'=<>`", s[j]))
				j++;
			if (j == v)
				break;
		}
	}
	sc->tag_fail = j > i ? j : i + 1;
	return 0;
}

static size_t angle(struct scan *sc, size_t i)
{
	const char *s = sc->s;
	size_t lim = sc->limit, j = i + 1;
	/* autolink <scheme:…> or <user@host> */
	size_t k = j;
	while (k < lim && (is_alnum(s[k]) || s[k] == '+' || s[k] == '.' || s[k] == '-'))
		k++;
	if (k < lim && (s[k] == ':' || s[k] == '@') && k > j) {
		size_t m = k + 1;
		while (m < lim && m - i < MAX_LINK && !is_ws(s[m]) && s[m] != '<' && s[m] != '>')
			m++;
		if (m < lim && s[m] == '>' && m > k + 1)
			return m + 1;
	}
	if (lim - j >= 3 && !memcmp(s + j, "!--", 3)) {
		if (i < sc->comment_fail)
			return 0;
		for (size_t m = j + 3; m + 3 <= lim; m++)
			if (!memcmp(s + m, "-->", 3))
				return m + 3;
		sc->comment_fail = lim;
		return 0;
	}
	return html_tag(sc, i);
}

/* `(dest "title")` at i: the end after `)`. */
static size_t link_target(const char *s, size_t i, size_t lim)
{
	size_t j = i + 1, max = i + MAX_LINK < lim ? i + MAX_LINK : lim;
	while (j < max && is_ws(s[j]))
		j++;
	if (j < max && s[j] == '<') {
		while (j < max && s[j] != '>' && !is_nl(s[j]))
			j += s[j] == '\\' ? 2 : 1;
		if (j >= max || s[j] != '>')
			return 0;
		j++;
	} else {
		int depth = 0;
		while (j < max && !is_ws(s[j]) && (s[j] != ')' || depth > 0)) {
			if (s[j] == '\\')
				j++;
			else if (s[j] == '(' && ++depth > 32)
				return 0;
			else if (s[j] == ')')
				depth--;
			j++;
		}
	}
	while (j < max && is_ws(s[j]))
		j++;
	if (j < max && (s[j] == '"' || s[j] == '\'' || s[j] == '(')) {
		char q = s[j] == '(' ? ')' : s[j];
		for (j++; j < max && s[j] != q; j++)
			if (s[j] == '\\')
				j++;
		if (j >= max)
			return 0;
		j++;
		while (j < max && is_ws(s[j]))
			j++;
	}
	return j < max && s[j] == ')' ? j + 1 : 0;
}

/* `[label]` at i without nesting: the end after `]`. */
static size_t bracket(const char *s, size_t i, size_t lim)
{
	for (size_t j = i + 1; j < lim && j - i <= MAX_LABEL; j++) {
		if (s[j] == '\\')
			j++;
		else if (s[j] == '[')
			return 0;
		else if (s[j] == ']')
			return j + 1;
	}
	return 0;
}

static int defined_label(struct scan *sc, const char *l, size_t n)
{
	for (int k = 0; k < sc->nlabels; k++) {
		const char *d = sc->labels[k];
		size_t i = 0;
		while (i < n && d[i] && lower(l[i]) == d[i])
			i++;
		if (i == n && !d[i])
			return 1;
	}
	return 0;
}

static size_t bare_url(struct scan *sc, size_t i)
{
	const char *s = sc->s;
	size_t lim = sc->limit, j;
	if (i > 0 && !is_ws(s[i - 1]) && !strchr("*_~(\"'", s[i - 1]))
		return 0;
	if (lim - i > 8 && !strncasecmp(s + i, "https://", 8))
		j = i + 8;
	else if (lim - i > 7 && !strncasecmp(s + i, "http://", 7))
		j = i + 7;
	else if (lim - i > 4 && !strncasecmp(s + i, "www.", 4))
		j = i + 4;
	else
		return 0;
	size_t host = j;
	while (j < lim && !is_ws(s[j]) && s[j] != '<')
		j++;
	for (;;) { /* GFM: trailing punctuation and unbalanced ')' are not the URL's */
		if (j > host && strchr("?!.,:*_~'\"", s[j - 1])) {
			j--;
			continue;
		}
		if (j > host && s[j - 1] == ')') {
			int bal = 0;
			for (size_t k = i; k < j; k++)
				bal += s[k] == '(' ? 1 : s[k] == ')' ? -1 : 0;
			if (bal < 0) {
				j--;
				continue;
			}
		}
		break;
	}
	return j > host ? j : 0;
}

/* Pandoc's rule, stricter (see the top). */
static size_t math(struct scan *sc, size_t i)
{
	const char *s = sc->s;
	size_t lim = sc->limit;
	if (i + 1 < lim && s[i + 1] == '$') {
		if (i < sc->math2_fail)
			return 0;
		for (size_t j = i + 2; j + 1 < lim; j++)
			if (s[j] == '\\')
				j++;
			else if (s[j] == '$' && s[j + 1] == '$')
				return j > i + 2 ? j + 2 : 0;
		sc->math2_fail = lim;
		return 0;
	}
	if (i + 1 >= lim || is_ws(s[i + 1]) || i < sc->math_fail)
		return 0;
	for (size_t j = i + 1; j < lim; j++) {
		if (s[j] == '\\') {
			j++;
			continue;
		}
		if (s[j] != '$')
			continue;
		if (!is_ws(s[j - 1]) && !(j + 1 < lim && ((s[j + 1] >= '0' && s[j + 1] <= '9') || s[j + 1] == '$')))
			return j + 1;
		return 0; /* the first `$` met closes or nothing does */
	}
	sc->math_fail = lim;
	return 0;
}

static size_t anchor(struct scan *sc, size_t i)
{
	const char *s = sc->s;
	size_t j = i + 2, lim = sc->limit;
	while (j < lim && s[j] != '}' && !is_ws(s[j]))
		j++;
	if (j >= lim || s[j] != '}' || j == i + 2)
		return 0;
	size_t k = j + 1;
	while (k < lim && (is_blank(s[k]) || s[k] == '#'))
		k++;
	return k >= lim || is_nl(s[k]) ? j + 1 : 0;
}

static const struct term *term_at(struct scan *sc, size_t i)
{
	unsigned char c = (unsigned char)sc->s[i];
	for (int k = sc->bucket[c]; k < sc->bucket[c + 1]; k++) {
		const struct term *t = &sc->terms[k];
		if (t->n > sc->limit - i || memcmp(sc->s + i, t->t, t->n))
			continue;
		if (is_word(t->t[0]) && i > 0 && is_word(sc->s[i - 1]))
			continue;
		if (is_word(t->t[t->n - 1]) && i + t->n < sc->n && is_word(sc->s[i + t->n]))
			continue;
		return t;
	}
	return NULL;
}

/* One step of the scanner at i: the next position, or negative on error. */
static long step(struct scan *sc, size_t i)
{
	const char *s = sc->s;
	size_t end = 0;
	int kind = K_HTML;
	const char *restore = NULL;
	size_t rn = 0, from = i;
	switch (s[i]) {
	case '\\':
		return i + 1 < sc->limit && is_punct(s[i + 1]) ? (long)(i + 2) : (long)(i + 1);
	case '`':
		if ((end = code_span(sc, i)))
			kind = K_CODE;
		else {
			while (i < sc->limit && s[i] == '`')
				i++;
			return (long)i;
		}
		break;
	case '<':
		end = angle(sc, i);
		break;
	case '$':
		end = math(sc, i);
		kind = K_MATH;
		break;
	case ']':
		if (i + 1 < sc->limit && s[i + 1] == '(' && (end = link_target(s, i + 1, sc->limit)))
			from = i + 1;
		else if (i + 1 < sc->limit && s[i + 1] == '[' && (end = bracket(s, i + 1, sc->limit)))
			from = i + 1;
		kind = K_LINK;
		break;
	case '[':
		kind = K_LINK;
		if (i + 1 < sc->limit && s[i + 1] == '^') {
			end = bracket(s, i, sc->limit);
			for (size_t k = i; end && k < end; k++)
				if (is_ws(s[k]))
					end = 0;
		} else if (sc->nlabels && (end = bracket(s, i, sc->limit))) {
			char next = end < sc->n ? s[end] : 0;
			if (next == '(' || next == '[' || next == ':' || !defined_label(sc, s + i + 1, end - i - 2))
				end = 0;
		}
		break;
	case '{':
		if (i + 1 < sc->limit && s[i + 1] == '#')
			end = anchor(sc, i);
		kind = K_ANCHOR;
		break;
	case 'h':
	case 'H':
	case 'w':
	case 'W':
		end = bare_url(sc, i);
		kind = K_URL;
		break;
	case '\xE2':
		if (sc->limit - i >= 3 && !memcmp(s + i, OPEN, 3)) {
			end = i + 3;
			kind = K_LITERAL;
		}
		break;
	default:
		break;
	}
	if (!end && sc->nterms) {
		const struct term *t = term_at(sc, i);
		if (t) {
			end = i + t->n;
			kind = K_TERM;
			restore = t->tr;
			rn = t->trn;
		}
	}
	if (end) {
		int rc = add(sc, from, end, kind, restore, rn);
		if (rc < 0)
			return rc;
		if (rc)
			return (long)end;
	}
	return (long)i + 1;
}

static int term_cmp(const void *x, const void *y)
{
	const struct term *a = x, *b = y;
	unsigned char ca = (unsigned char)a->t[0], cb = (unsigned char)b->t[0];
	if (ca != cb)
		return ca < cb ? -1 : 1;
	return a->n > b->n ? -1 : a->n < b->n ? 1 : 0;
}

static int load_glossary(struct scan *sc, const struct md_glossary_term *g, int n)
{
	if (n > MD_PROTECT_MAX_TERMS)
		return err_set(sc->e, ERR_TOO_LARGE, "more than %d glossary terms", MD_PROTECT_MAX_TERMS);
	if (n > 0 && !(sc->terms = arena_alloc(sc->a, sizeof(*sc->terms) * (size_t)n)))
		return oom(sc);
	for (int k = 0; k < n; k++) {
		if (!g[k].term || !g[k].term[0])
			continue;
		struct term *t = &sc->terms[sc->nterms++];
		t->n = strlen(g[k].term);
		if (!(t->t = arena_strndup(sc->a, g[k].term, t->n)))
			return oom(sc);
		t->tr = NULL;
		if (g[k].translation) {
			t->trn = strlen(g[k].translation);
			if (!(t->tr = arena_strndup(sc->a, g[k].translation, t->trn)))
				return oom(sc);
		}
	}
	if (sc->nterms)
		qsort(sc->terms, (size_t)sc->nterms, sizeof(*sc->terms), term_cmp);
	int k = 0;
	for (int c = 0; c <= 256; c++) {
		while (k < sc->nterms && (unsigned char)sc->terms[k].t[0] < c)
			k++;
		sc->bucket[c] = k;
	}
	return 0;
}

static int scan_text(struct scan *sc)
{
	const char *s = sc->s;
	size_t n = sc->n, pe = 0;
	int bi = 0;
	for (size_t i = 0; i < n;) {
		if (bi < sc->nblocks && i >= sc->blocks[bi].start) {
			const struct span *b = &sc->blocks[bi++];
			sc->limit = b->end;
			int rc = add(sc, b->start, b->end, b->kind, NULL, 0);
			if (rc < 0)
				return rc;
			i = b->end > i ? b->end : i;
			pe = 0;
			continue;
		}
		if (i >= pe)
			pe = para_end(s, n, i);
		sc->limit = bi < sc->nblocks && sc->blocks[bi].start < pe ? sc->blocks[bi].start : pe;
		if (line_start(s, i)) {
			long r = line_construct(sc, i);
			if (r < 0)
				return (int)r;
			if (r > 0) {
				i = (size_t)r;
				continue;
			}
		}
		long r = step(sc, i);
		if (r < 0)
			return (int)r;
		i = (size_t)r;
	}
	return 0;
}

/* ---- the API ---- */

int md_protect(struct arena *a, const char *src, size_t n, const struct md_glossary_term *glossary, int nterms,
	       struct md_protected *out, struct err *e)
{
	int rc;
	struct buf b;
	buf_init(&b, MD_PROTECT_MAX_BYTES * 2);
	memset(out, 0, sizeof(*out));
	if (n > MD_PROTECT_MAX_BYTES)
		return err_set(e, ERR_TOO_LARGE, "section is %zu bytes; at most %d can be protected", n,
			       MD_PROTECT_MAX_BYTES);
	if (memchr(src, 0, n) || !utf8_valid(src, n))
		return err_set(e, ERR_BAD_REQUEST, "section is not UTF-8 text");
	struct priv *pv = arena_alloc(a, sizeof(*pv));
	struct scan *sc = arena_alloc(a, sizeof(*sc));
	if (!pv || !sc || !(pv->src = arena_strndup(a, src, n)))
		return err_set(e, ERR_INTERNAL, "out of memory");
	memset(sc, 0, sizeof(*sc));
	sc->s = pv->src;
	sc->n = pv->n = n;
	sc->a = a;
	sc->e = e;
	if ((rc = shape_of(a, pv->src, n, &pv->shape, sc, e)) || (rc = load_glossary(sc, glossary, nterms)) ||
	    (rc = collect_labels(sc)) || (rc = scan_text(sc)))
		goto out;
	size_t at = 0, *pos = NULL;
	if (sc->nslots && !(pos = arena_alloc(a, sizeof(*pos) * 2 * (size_t)sc->nslots))) {
		rc = err_set(e, ERR_INTERNAL, "out of memory");
		goto out;
	}
	for (int k = 0; k < sc->nslots; k++) {
		const struct slot *sl = &sc->slots[k];
		if (buf_append(&b, pv->src + at, sl->start - at)) {
			rc = err_set(e, ERR_TOO_LARGE, "protected section too large");
			goto out;
		}
		pos[2 * k] = b.n;
		if (buf_printf(&b, OPEN "%d" CLOSE, k + 1)) {
			rc = err_set(e, ERR_TOO_LARGE, "protected section too large");
			goto out;
		}
		pos[2 * k + 1] = b.n;
		at = sl->end;
	}
	if (buf_append(&b, pv->src + at, n - at) || !(out->text = arena_strndup(a, b.p ? b.p : "", b.n))) {
		rc = err_set(e, ERR_INTERNAL, "out of memory");
		goto out;
	}
	for (int k = 0; k < sc->nslots; k++) {
		struct slot *sl = &sc->slots[k];
		sl->own_line = (unsigned char)starts_own_line(out->text, pos[2 * k]);
		sl->line_end = (unsigned char)ends_line(out->text, b.n, pos[2 * k + 1]);
	}
	pv->slots = sc->slots;
	out->nslots = sc->nslots;
	out->priv = pv;
	rc = 0;
out:
	buf_free(&b);
	return rc;
}

/* A placeholder at s[i] (which starts with ⟦): its number and end, or 0. */
static int placeholder(const char *s, size_t n, size_t i, size_t *end)
{
	size_t j = i + 3;
	long v = 0;
	int digits = 0;
	while (j < n && s[j] == ' ')
		j++;
	for (; j < n && digits < 9; digits++) {
		unsigned char c = (unsigned char)s[j];
		if (c >= '0' && c <= '9') {
			v = v * 10 + (c - '0');
			j++;
		} else if (j + 1 < n && c == 0xD9 && (unsigned char)s[j + 1] >= 0xA0 && (unsigned char)s[j + 1] <= 0xA9) {
			v = v * 10 + ((unsigned char)s[j + 1] - 0xA0); /* ٠-٩ */
			j += 2;
		} else if (j + 1 < n && c == 0xDB && (unsigned char)s[j + 1] >= 0xB0 && (unsigned char)s[j + 1] <= 0xB9) {
			v = v * 10 + ((unsigned char)s[j + 1] - 0xB0); /* ۰-۹ */
			j += 2;
		} else {
			break;
		}
	}
	while (j < n && s[j] == ' ')
		j++;
	if (!digits || n - j < 3 || memcmp(s + j, CLOSE, 3))
		return -1;
	*end = j + 3;
	return (int)v;
}

static int compare_shape(const struct shape *want, const struct shape *got, struct err *e)
{
	if (got->nfenced != want->nfenced)
		return err_set(e, ERR_INVALID, "fence count %d != %d", got->nfenced, want->nfenced);
	if (got->ncode != want->ncode)
		return err_set(e, ERR_INVALID, "code block count %d != %d", got->ncode, want->ncode);
	for (int k = 0; k < want->ncode; k++)
		if (strcmp(got->code[k], want->code[k]))
			return err_set(e, ERR_INVALID, "code block %d changed", k + 1);
	if (got->nlinks != want->nlinks)
		return err_set(e, ERR_INVALID, "link count %d != %d", got->nlinks, want->nlinks);
	if (got->nheadings != want->nheadings)
		return err_set(e, ERR_INVALID, "heading count %d != %d", got->nheadings, want->nheadings);
	for (int k = 0; k < want->nheadings; k++) {
		const struct heading *w = &want->headings[k], *g = &got->headings[k];
		if (g->level != w->level)
			return err_set(e, ERR_INVALID, "heading %d level %d != %d", k + 1, g->level, w->level);
		if (w->anchor && !g->anchor)
			return err_set(e, ERR_INVALID, "heading %d lost its anchor", k + 1);
		if (w->anchor && (g->anchor_n != w->anchor_n || memcmp(g->anchor, w->anchor, w->anchor_n)))
			return err_set(e, ERR_INVALID, "heading %d anchor changed", k + 1);
		if (!w->anchor && g->anchor)
			return err_set(e, ERR_INVALID, "heading %d gained an anchor", k + 1);
	}
	return 0;
}

int md_restore(struct arena *a, const struct md_protected *p, const char *answer, size_t n, char **restored,
	       struct err *e)
{
	const struct priv *pv = p->priv;
	int rc, ns = p->nslots;
	unsigned char *seen = NULL;
	struct buf b;
	size_t cap = (pv ? pv->n : 0) * MD_PROTECT_ANSWER_FACTOR + 4096;
	buf_init(&b, cap + (size_t)MD_PROTECT_MAX_BYTES * 2);
	*restored = NULL;
	if (!pv)
		return err_set(e, ERR_INTERNAL, "md_restore without md_protect");
	if (n > cap)
		return err_set(e, ERR_TOO_LARGE, "answer is %zu bytes, more than %zu", n, cap);
	if (!utf8_valid(answer, n) || memchr(answer, 0, n))
		return err_set(e, ERR_INVALID, "answer is not UTF-8 text");
	if (!(seen = arena_alloc(a, (size_t)ns + 1)))
		return err_set(e, ERR_INTERNAL, "out of memory");
	memset(seen, 0, (size_t)ns + 1);
	size_t at = 0;
	for (size_t i = 0; i + 3 <= n; i++) {
		if (answer[i] != '\xE2' || memcmp(answer + i, OPEN, 3))
			continue;
		size_t end;
		int k = placeholder(answer, n, i, &end);
		if (k < 0) {
			rc = err_set(e, ERR_INVALID, "stray " OPEN " at byte %zu", i);
			goto out;
		}
		if (k < 1 || k > ns) {
			rc = err_set(e, ERR_INVALID, "placeholder " OPEN "%d" CLOSE " invented", k);
			goto out;
		}
		if (seen[k]++) {
			rc = err_set(e, ERR_INVALID, "placeholder " OPEN "%d" CLOSE " duplicated", k);
			goto out;
		}
		const struct slot *sl = &pv->slots[k - 1];
		int block = sl->kind == K_CODE_BLOCK || sl->kind == K_HTML_BLOCK || sl->kind == K_ADMON ||
			    sl->kind == K_REFDEF || sl->kind == K_ESM || (sl->kind == K_MATH && sl->rn > 1 && sl->restore[1] == '$');
		if (block && sl->own_line && !starts_own_line(answer, i)) {
			rc = err_set(e, ERR_INVALID, "placeholder " OPEN "%d" CLOSE " (%s) no longer starts its line", k,
				     kind_names[sl->kind]);
			goto out;
		}
		if (block && sl->kind != K_ADMON && sl->line_end && !ends_line(answer, n, end)) {
			rc = err_set(e, ERR_INVALID, "placeholder " OPEN "%d" CLOSE " (%s) no longer ends its line", k,
				     kind_names[sl->kind]);
			goto out;
		}
		if (buf_append(&b, answer + at, i - at) || buf_append(&b, sl->restore, sl->rn)) {
			rc = err_set(e, ERR_TOO_LARGE, "restored answer too large");
			goto out;
		}
		at = end;
		i = end - 1;
	}
	for (int k = 1; k <= ns; k++)
		if (!seen[k]) {
			rc = err_set(e, ERR_INVALID, "placeholder " OPEN "%d" CLOSE " missing", k);
			goto out;
		}
	if (buf_append(&b, answer + at, n - at)) {
		rc = err_set(e, ERR_TOO_LARGE, "restored answer too large");
		goto out;
	}
	const char *text = b.p ? b.p : "";
	struct shape got;
	if ((rc = shape_of(a, text, b.n, &got, NULL, e)) || (rc = compare_shape(&pv->shape, &got, e)))
		goto out;
	if (!(*restored = arena_strndup(a, text, b.n))) {
		rc = err_set(e, ERR_INTERNAL, "out of memory");
		goto out;
	}
	rc = 0;
out:
	buf_free(&b);
	return rc;
}

const char *md_protect_instructions(void)
{
	return "The text contains placeholders such as " OPEN "1" CLOSE ", " OPEN "2" CLOSE
	       ": each stands for code, a link, markup, math or a fixed term. Copy every placeholder exactly as "
	       "written, each exactly once, where it belongs in your text; never translate, renumber, merge, "
	       "split, add or drop one, and a placeholder that is alone on its line stays alone on its line.";
}
