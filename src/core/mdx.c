/*
 * MDX clean-up: one pass over the text, as a small state machine.
 *
 * At the start of a line, block constructs are decided: a code fence (copied
 * verbatim up to its closing fence: JSX in code is an example, not markup) or
 * a top-level `import`/`export` statement (dropped, however many lines it
 * takes: it ends at the end of a line where its brackets are balanced and
 * that does not ask for more, as a trailing `=` does). Inside a line, inline
 * code is copied through, JSX comments (brace, slash-star) are dropped, and a
 * JSX tag (`<Name ...>`, `</Name>`, `<Name ... />`, `<>`, `</>`) is dropped
 * up to its closing `>`, across lines if it spans them: attribute strings may
 * hold `>` and `}`, and `{...}` expressions nest, with JS strings, template
 * literals and comments in them. The children between an opening and a
 * closing tag are content and stay. A line left blank by what was dropped is
 * dropped with its newline.
 *
 * A `<` followed by a capital that does not end as a well-formed tag (prose
 * like "a <B, c", or a tag never closed) is kept as text, and so is any `<`
 * that failed scan already looked past: every byte is scanned a bounded
 * number of times, so stripping stays linear on hostile input. Lower-case
 * HTML (<div>, <br>) is kept.
 */
#include "mdx.h"

#include <ctype.h>
#include <string.h>

/* The longest JSX tag looked for, attributes included. */
#define MDX_TAG_MAX ((size_t)64 << 10)

static int is_fence(const char *line, size_t n, char *fch, size_t *flen)
{
	size_t i = 0;
	while (i < n && (line[i] == ' ' || line[i] == '\t'))
		i++; /* any indent: fences inside list items are fences too */
	if (i >= n || (line[i] != '`' && line[i] != '~'))
		return 0;
	char c = line[i];
	size_t k = i;
	while (k < n && line[k] == c)
		k++;
	if (k - i < 3)
		return 0;
	*fch = c;
	*flen = k - i;
	return 1;
}

static int is_blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isspace((unsigned char)s[i]))
			return 0;
	return 1;
}

static size_t line_len(const char *s, size_t n)
{
	const char *nl = memchr(s, '\n', n);
	return nl ? (size_t)(nl - s) : n;
}

/* ---- JavaScript: just enough to find where an expression ends ------------- */

struct js {
	int depth;    /* open brackets */
	char quote;   /* ' " ` while in a string */
	int comment;  /* 1: // to end of line, 2: block comment */
	int brackets; /* count ( and [ as well as { */
};

/* Feeds s[i] (s has n bytes); returns the bytes consumed (1 or 2). */
static size_t js_feed(struct js *j, const char *s, size_t n, size_t i)
{
	char c = s[i], d = i + 1 < n ? s[i + 1] : 0;
	if (j->comment == 1) {
		if (c == '\n')
			j->comment = 0;
		return 1;
	}
	if (j->comment == 2) {
		if (c == '*' && d == '/') {
			j->comment = 0;
			return 2;
		}
		return 1;
	}
	if (j->quote) {
		if (c == '\\' && d)
			return 2;
		if (c == j->quote || (c == '\n' && j->quote != '`'))
			j->quote = 0; /* '…' and "…" end at a newline: a stray apostrophe costs one line */
		return 1;
	}
	if (c == '"' || c == '\'' || c == '`')
		j->quote = c;
	else if (c == '/' && (d == '/' || d == '*')) {
		j->comment = d == '/' ? 1 : 2;
		return 2;
	} else if (c == '{' || (j->brackets && (c == '(' || c == '[')))
		j->depth++;
	else if (c == '}' || (j->brackets && (c == ')' || c == ']')))
		j->depth--;
	return 1;
}

/* ---- JSX tags ----------------------------------------------------------- */

static int attr_char(unsigned char c)
{
	return isalnum(c) || c >= 0x80 || isspace(c) || strchr("_$-:./=", c);
}

/* At s[0] == '<': the length of the JSX tag there, or 0 when there is none;
 * then *seen is how far the scan looked. Between attributes only names, `=`,
 * strings and `{...}` may appear, and a blank line ends the tag: prose is
 * rejected early. */
static size_t jsx_tag(const char *s, size_t n, size_t *seen)
{
	size_t i = 1;
	if (n > MDX_TAG_MAX)
		n = MDX_TAG_MAX;
	if (i < n && s[i] == '/')
		i++;
	if (i < n && s[i] == '>')
		return i + 1; /* fragment */
	*seen = 1;
	if (i >= n || !isupper((unsigned char)s[i]))
		return 0;
	struct js j = { 0 };
	char quote = 0; /* attribute string, which may span lines */
	while (i < n) {
		char c = s[i];
		if (j.depth > 0) {
			i += js_feed(&j, s, n, i);
		} else if (quote) {
			if (c == quote)
				quote = 0;
			i++;
		} else if (c == '>') {
			return i + 1;
		} else if (c == '"' || c == '\'') {
			quote = c;
			i++;
		} else if (c == '{') {
			j.depth = 1;
			i++;
		} else if (c == '\n' && is_blank(s + i + 1, line_len(s + i + 1, n - i - 1))) {
			break;
		} else if (!attr_char((unsigned char)c)) {
			break;
		} else {
			i++;
		}
	}
	*seen = i; /* no tag starts inside what was looked at */
	return 0;
}

/* ---- import / export ------------------------------------------------------ */

static int is_esm(const char *line, size_t n)
{
	return n >= 7 && (memcmp(line, "import ", 7) == 0 || memcmp(line, "export ", 7) == 0);
}

/* The last non-blank byte of a line asks for another line: "x =", "=>",
 * "&&", "||" (open brackets are counted apart). Prose that merely starts
 * with "import " loses one line, not a paragraph. */
static int continues(const char *line, size_t n)
{
	while (n && isspace((unsigned char)line[n - 1]))
		n--;
	return n && strchr("=>&|", line[n - 1]) != NULL;
}

/* Length of the import/export statement that starts at s (a line start),
 * through the newline that ends it. */
static size_t esm_len(const char *s, size_t n)
{
	struct js j = { .brackets = 1 };
	size_t i = 0, line = 0;
	while (i < n) {
		if (s[i] != '\n') {
			i += js_feed(&j, s, n, i);
			continue;
		}
		js_feed(&j, s, n, i);
		i++;
		if (j.depth <= 0 && !j.quote && j.comment != 2 && !continues(s + line, i - line))
			return i;
		line = i;
	}
	return n;
}

/* ---- the pass ------------------------------------------------------------- */

struct strip {
	const char *in;
	size_t n, i;
	struct buf *out;
	size_t line_start;   /* out->n where the current output line began */
	int dropped;	     /* markup was dropped on the current output line */
	size_t no_tag_until; /* a failed tag scan looked this far */
};

/* Ends the current output line: a line that only held markup goes. */
static int end_line(struct strip *st)
{
	struct buf *out = st->out;
	int drop = st->dropped && is_blank(out->p + st->line_start, out->n - st->line_start);
	st->dropped = 0;
	if (drop) {
		out->n = st->line_start;
		if (out->p)
			out->p[out->n] = '\0';
		return 0;
	}
	int rc = buf_putc(out, '\n');
	st->line_start = out->n;
	return rc;
}

/* Copies the line at st->i (a fence line) through its newline. */
static int copy_line(struct strip *st)
{
	size_t len = line_len(st->in + st->i, st->n - st->i);
	int rc = buf_append(st->out, st->in + st->i, len);
	if (!rc)
		rc = buf_putc(st->out, '\n');
	st->i += len + (st->i + len < st->n);
	st->line_start = st->out->n;
	return rc;
}

static int fence(struct strip *st, char fch, size_t flen)
{
	int rc = copy_line(st);
	while (!rc && st->i < st->n) {
		const char *line = st->in + st->i;
		size_t len = line_len(line, st->n - st->i);
		char c;
		size_t fl;
		int closes = is_fence(line, len, &c, &fl) && c == fch && fl >= flen;
		rc = copy_line(st);
		if (closes)
			break;
	}
	return rc;
}

/* Inline code at st->i: copied through to a closing run of as many
 * backticks on the same line, or to the end of the line. */
static int inline_code(struct strip *st)
{
	const char *s = st->in;
	size_t len = st->i + line_len(s + st->i, st->n - st->i);
	size_t run = 0;
	while (st->i + run < len && s[st->i + run] == '`')
		run++;
	size_t end = len;
	for (size_t k = st->i + run; k < len;) {
		size_t r = 0;
		while (k + r < len && s[k + r] == '`')
			r++;
		if (r == run) {
			end = k + r;
			break;
		}
		k += r ? r : 1;
	}
	int rc = buf_append(st->out, s + st->i, end - st->i);
	st->i = end;
	return rc;
}

int md_strip_mdx(const char *in, size_t n, struct buf *out)
{
	struct strip st = { .in = in, .n = n, .out = out, .line_start = out->n };
	int rc = 0;
	while (!rc && st.i < n) {
		const char *s = in + st.i;
		size_t left = n - st.i;
		if (st.i == 0 || in[st.i - 1] == '\n') {
			size_t len = line_len(s, left);
			char fch;
			size_t flen;
			if (is_fence(s, len, &fch, &flen)) {
				rc = fence(&st, fch, flen);
				continue;
			}
			if (is_esm(s, len)) {
				st.i += esm_len(s, left);
				continue;
			}
		}
		if (*s == '\n') {
			st.i++;
			rc = end_line(&st);
		} else if (left >= 3 && memcmp(s, "{/*", 3) == 0) {
			const char *end = left > 3 ? memmem(s + 3, left - 3, "*/}", 3) : NULL;
			st.i = end ? (size_t)(end - in) + 3 : n;
			st.dropped = 1;
		} else if (*s == '`') {
			rc = inline_code(&st);
		} else if (*s == '<' && st.i >= st.no_tag_until) {
			size_t seen = 1, t = jsx_tag(s, left, &seen);
			if (t) {
				st.i += t;
				st.dropped = 1;
			} else {
				st.no_tag_until = st.i + seen;
				rc = buf_putc(out, *s);
				st.i++;
			}
		} else {
			rc = buf_putc(out, *s);
			st.i++;
		}
	}
	if (!rc && n && in[n - 1] != '\n' && (out->n > st.line_start || st.dropped))
		rc = end_line(&st);
	return rc;
}
