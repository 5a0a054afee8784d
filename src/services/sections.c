#include "sections.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../core/buf.h"
#include "markdown.h"

/* A line's fence opener: its character and length (0 when not a fence). */
static size_t fence_of(const char *l, size_t n, char *ch)
{
	size_t i = 0;
	while (i < n && (l[i] == ' ' || l[i] == '\t'))
		i++;
	if (i >= n || (l[i] != '`' && l[i] != '~'))
		return 0;
	char c = l[i];
	size_t k = 0;
	while (i + k < n && l[i + k] == c)
		k++;
	if (k < 3)
		return 0;
	*ch = c;
	return k;
}

/* Tracks code fences line by line; returns 1 when the line is inside (or
 * opens or closes) a fence. */
struct fences {
	char ch;
	size_t len;
};

static int fence_line(struct fences *f, const char *l, size_t n)
{
	char c;
	size_t k = fence_of(l, n, &c);
	if (f->len) {
		if (k >= f->len && c == f->ch) {
			const char *p = memchr(l, c, n);
			size_t rest = n - (size_t)(p - l) - k;
			int blank = 1;
			for (size_t i = 0; i < rest; i++)
				if (!isspace((unsigned char)p[k + i]))
					blank = 0;
			if (blank)
				f->len = 0;
		}
		return 1;
	}
	if (k) {
		f->ch = c;
		f->len = k;
		return 1;
	}
	return 0;
}

/* An ATX heading's level (0: not one). */
static int atx_level(const char *l, size_t n)
{
	size_t i = 0;
	while (i < n && i < 3 && l[i] == ' ')
		i++;
	int lv = 0;
	while (i < n && l[i] == '#' && lv < 7) {
		lv++;
		i++;
	}
	if (lv < 1 || lv > 6)
		return 0;
	return (i == n || l[i] == ' ' || l[i] == '\t' || l[i] == '\r') ? lv : 0;
}

static int used(struct md_part *p, int n, const char *slug)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(p[i].anchor, slug))
			return 1;
	return 0;
}

/* Heading text and anchor of an ATX line. */
static int heading_of(struct arena *a, const char *l, size_t n, struct md_part *parts, int np, struct md_part *out)
{
	size_t i = 0;
	while (i < n && (l[i] == ' ' || l[i] == '#'))
		i++;
	while (n > i && isspace((unsigned char)l[n - 1]))
		n--;
	const char *explicit_id = NULL;
	size_t idn = 0;
	if (n > i + 3 && l[n - 1] == '}') {
		const char *open = NULL;
		for (size_t k = n - 1; k > i; k--)
			if (l[k] == '{') {
				open = l + k;
				break;
			}
		if (open && open[1] == '#') {
			explicit_id = open + 2;
			idn = (size_t)(l + n - 1 - explicit_id);
			n = (size_t)(open - l);
			while (n > i && l[n - 1] == ' ')
				n--;
		}
	}
	while (n > i && l[n - 1] == '#')
		n--;
	while (n > i && l[n - 1] == ' ')
		n--;
	out->heading = arena_strndup(a, l + i, n - i);
	if (explicit_id) {
		out->anchor = arena_strndup(a, explicit_id, idn);
		return out->heading && out->anchor ? 0 : -1;
	}
	struct buf b;
	buf_init(&b, 4096);
	int rc = md_slug(l + i, n - i, &b);
	const char *slug = rc == 0 && b.p ? b.p : "";
	char *anchor = arena_strdup(a, slug);
	for (int k = 1; anchor && used(parts, np, anchor); k++)
		anchor = arena_printf(a, "%s-%d", slug, k);
	buf_free(&b);
	out->anchor = anchor;
	return rc == 0 && out->heading && anchor ? 0 : -1;
}

static int blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isspace((unsigned char)s[i]))
			return 0;
	return 1;
}

struct heading_at {
	size_t at, len;
	int level;
};

int sections_split(struct arena *a, const char *md, size_t n, struct md_part **parts, int *nparts, struct err *e)
{
	int rc = 0, nh = 0, hcap = 0, np = 0, cap = 0;
	struct heading_at *h = NULL;
	struct md_part *p = NULL;
	struct fences f = { 0 };
	for (size_t at = 0; at < n;) {
		const char *nl = memchr(md + at, '\n', n - at);
		size_t end = nl ? (size_t)(nl - md) + 1 : n;
		size_t ln = end - at - (nl ? 1 : 0);
		int lv = fence_line(&f, md + at, ln) ? 0 : atx_level(md + at, ln);
		if (lv) {
			struct heading_at *q = arena_grow(a, h, nh, &hcap, sizeof(*h));
			if (!q) {
				rc = err_set(e, ERR_INTERNAL, "out of memory");
				goto out;
			}
			h = q;
			h[nh++] = (struct heading_at){ at, ln, lv };
		}
		at = end;
	}
	/* The intro, when it says something; else it goes with the first heading. */
	int intro = nh == 0 ? !blank(md, n) : !blank(md, h[0].at);
	p = arena_alloc(a, sizeof(*p) * (size_t)(nh + 1));
	if (!p) {
		rc = err_set(e, ERR_INTERNAL, "out of memory");
		goto out;
	}
	cap = nh + 1;
	if (intro) {
		p[np++] = (struct md_part){ .anchor = SECTION_INTRO, .heading = "", .level = 0, .text = md,
					    .len = nh ? h[0].at : n };
	}
	for (int i = 0; i < nh; i++) {
		struct md_part *q = &p[np];
		if (heading_of(a, md + h[i].at, h[i].len, p, np, q)) {
			rc = err_set(e, ERR_INTERNAL, "out of memory");
			goto out;
		}
		q->level = h[i].level;
		size_t from = (i == 0 && !intro) ? 0 : h[i].at;
		size_t to = i + 1 < nh ? h[i + 1].at : n;
		q->text = md + from;
		q->len = to - from;
		np++;
	}
	(void)cap;
out:
	*parts = rc ? NULL : p;
	*nparts = rc ? 0 : np;
	return rc;
}

/* ---- audience blocks ------------------------------------------------------- */

/* The value of attribute `name` in `{a="x" b="y"}` (into out), 1 when found. */
static int attr(const char *s, size_t n, const char *name, char *out, size_t cap)
{
	size_t k = strlen(name);
	for (size_t i = 0; i + k + 2 <= n; i++) {
		if ((i == 0 || s[i - 1] == '{' || s[i - 1] == ' ' || s[i - 1] == ',') && !memcmp(s + i, name, k) &&
		    s[i + k] == '=' && s[i + k + 1] == '"') {
			const char *v = s + i + k + 2;
			const char *q = memchr(v, '"', n - (size_t)(v - s));
			if (!q)
				return 0;
			snprintf(out, cap, "%.*s", (int)(q - v), v);
			return 1;
		}
	}
	return 0;
}

/* Whether any of the comma/space separated words of `list` is `word`
 * (exact, or with contains: found in `word` case-insensitively). */
static int any_of(const char *list, const char *text, int contains)
{
	char item[128];
	const char *p = list;
	while (*p) {
		while (*p == ' ' || *p == ',')
			p++;
		size_t k = strcspn(p, contains ? "," : ", ");
		while (k && p[k - 1] == ' ')
			k--;
		if (k && k < sizeof(item)) {
			memcpy(item, p, k);
			item[k] = '\0';
			if (contains ? (text && strcasestr(text, item) != NULL) : (text && !strcasecmp(item, text)))
				return 1;
		}
		p += k;
		while (*p && *p != ',' && *p != ' ')
			p++;
	}
	return 0;
}

static int audience_matches(const char *attrs, size_t n, const struct audience *who)
{
	char v[512];
	const char *level = who->level ? who->level : "intermediate";
	if (attr(attrs, n, "level", v, sizeof(v)) && !any_of(v, level, 0))
		return 0;
	if (attr(attrs, n, "software", v, sizeof(v)) && !any_of(v, who->software, 1))
		return 0;
	if (attr(attrs, n, "hardware", v, sizeof(v)) && !any_of(v, who->hardware, 1))
		return 0;
	return 1;
}

/* `:::name…` opens (returns 1; *aud when the name is "audience"), a bare
 * `:::` closes (returns 2), anything else 0. */
static int directive(const char *l, size_t n, int *aud)
{
	size_t i = 0;
	while (i < n && (l[i] == ' ' || l[i] == '\t'))
		i++;
	if (n - i < 3 || memcmp(l + i, ":::", 3))
		return 0;
	i += 3;
	while (i < n && l[i] == ':')
		i++;
	int rest = !blank(l + i, n - i);
	*aud = rest && n - i >= 8 && !memcmp(l + i, "audience", 8) &&
	       (n - i == 8 || l[i + 8] == '{' || l[i + 8] == ' ' || l[i + 8] == '\r');
	return rest ? 1 : 2;
}

#define AUDIENCE_DEPTH 32

int audience_select(struct arena *a, const char *md, size_t n, const struct audience *who, char **out,
		    size_t *outn, int *blocks, struct err *e)
{
	int rc = 0, depth = 0, hidden = 0; /* hidden: depth of the innermost dropped block, 0 = none */
	int is_aud[AUDIENCE_DEPTH + 1] = { 0 };
	struct fences f = { 0 };
	char *o = arena_alloc(a, n + 1);
	size_t on = 0;
	*blocks = 0;
	if (!o) {
		rc = err_set(e, ERR_INTERNAL, "out of memory");
		goto done;
	}
	for (size_t at = 0; at < n;) {
		const char *nl = memchr(md + at, '\n', n - at);
		size_t end = nl ? (size_t)(nl - md) + 1 : n;
		size_t ln = end - at - (nl ? 1 : 0);
		int aud = 0, d = 0, copy = 1;
		if (!f.len)
			d = directive(md + at, ln, &aud);
		if (d == 0)
			fence_line(&f, md + at, ln);
		if (d == 1 && depth < AUDIENCE_DEPTH) {
			depth++;
			is_aud[depth] = aud;
			if (aud) {
				(*blocks)++;
				copy = 0;
				if (!hidden && !audience_matches(md + at, ln, who))
					hidden = depth;
			}
		} else if (d == 2 && depth > 0) {
			copy = !is_aud[depth];
			if (hidden == depth) {
				hidden = 0;
				copy = 0;
			}
			depth--;
		}
		if (copy && !hidden) {
			memcpy(o + on, md + at, end - at);
			on += end - at;
		}
		at = end;
	}
	o[on] = '\0';
done:
	*out = rc ? NULL : o;
	*outn = rc ? 0 : on;
	return rc;
}
