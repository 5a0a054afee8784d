#include "mdx.h"

#include <ctype.h>
#include <string.h>

/* ---- MDX ------------------------------------------------------------------ */

static int is_fence(const char *line, size_t n, char *fch, size_t *flen)
{
	size_t i = 0;
	while (i < n && i < 3 && line[i] == ' ')
		i++;
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

/* At s[0] == '<': length of a JSX tag (<Name ...>, </Name>, <Name/>, <>, </>)
 * or 0 when it is not one (plain HTML like <br> and <div> is kept). */
static size_t jsx_tag_len(const char *s, size_t n)
{
	size_t i = 1;
	if (i < n && s[i] == '/')
		i++;
	if (i < n && s[i] == '>')
		return i + 1; /* fragment */
	if (i >= n || !isupper((unsigned char)s[i]))
		return 0;
	char quote = 0;
	int depth = 0;
	for (; i < n; i++) {
		char c = s[i];
		if (quote) {
			if (c == quote)
				quote = 0;
		} else if (c == '"' || c == '\'') {
			quote = c;
		} else if (c == '{') {
			depth++;
		} else if (c == '}') {
			depth--;
		} else if (c == '>' && depth <= 0) {
			return i + 1;
		}
	}
	return 0;
}

static int line_is_blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isspace((unsigned char)s[i]))
			return 0;
	return 1;
}

int md_strip_mdx(const char *in, size_t n, struct buf *out)
{
	char fch = 0;
	size_t flen = 0;
	int in_fence = 0, in_comment = 0, in_export_block = 0;
	size_t pos = 0;
	while (pos < n) {
		const char *line = in + pos;
		const char *nl = memchr(line, '\n', n - pos);
		size_t len = nl ? (size_t)(nl - line) : n - pos;
		size_t next = pos + len + (nl ? 1 : 0);
		pos = next;
		char c;
		size_t fl;
		int rc;

		if (in_fence) {
			if (is_fence(line, len, &c, &fl) && c == fch && fl >= flen)
				in_fence = 0;
			if ((rc = buf_append(out, line, len)) || (rc = buf_putc(out, '\n')))
				return rc;
			continue;
		}
		if (is_fence(line, len, &fch, &flen)) {
			in_fence = 1;
			if ((rc = buf_append(out, line, len)) || (rc = buf_putc(out, '\n')))
				return rc;
			continue;
		}
		if (in_export_block) {
			/* A multi-line `export const x = {...}` ends at a blank line. */
			if (line_is_blank(line, len))
				in_export_block = 0;
			continue;
		}
		if ((len >= 7 && strncmp(line, "import ", 7) == 0) ||
		    (len >= 7 && strncmp(line, "export ", 7) == 0)) {
			int opened = 0;
			for (size_t i = 0; i < len; i++)
				opened += line[i] == '{' ? 1 : line[i] == '}' ? -1 : 0;
			if (opened > 0)
				in_export_block = 1;
			continue;
		}

		/* Copy the line, dropping JSX tags and JSX comments. */
		size_t start_n = out->n;
		for (size_t i = 0; i < len;) {
			if (in_comment) {
				if (i + 3 <= len && memcmp(line + i, "*/}", 3) == 0) {
					in_comment = 0;
					i += 3;
				} else {
					i++;
				}
				continue;
			}
			if (i + 3 <= len && memcmp(line + i, "{/*", 3) == 0) {
				in_comment = 1;
				i += 3;
				continue;
			}
			if (line[i] == '`') {
				/* Inline code: copy through to a closing run of as many backticks. */
				size_t run = 0;
				while (i + run < len && line[i + run] == '`')
					run++;
				size_t end = len;
				for (size_t k = i + run; k < len;) {
					size_t r = 0;
					while (k + r < len && line[k + r] == '`')
						r++;
					if (r == run) {
						end = k + r;
						break;
					}
					k += r ? r : 1;
				}
				if ((rc = buf_append(out, line + i, end - i)))
					return rc;
				i = end;
				continue;
			}
			if (line[i] == '<') {
				size_t t = jsx_tag_len(line + i, len - i);
				if (t) {
					i += t;
					continue;
				}
			}
			if ((rc = buf_putc(out, line[i])))
				return rc;
			i++;
		}
		/* A line that held only tags (or a comment) is dropped entirely. */
		if (!line_is_blank(line, len) &&
		    (out->n == start_n || line_is_blank(out->p + start_n, out->n - start_n))) {
			out->n = start_n;
			if (out->p)
				out->p[out->n] = '\0';
			continue;
		}
		if ((rc = buf_putc(out, '\n')))
			return rc;
	}
	return 0;
}
