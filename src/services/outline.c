#include "outline.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/json.h"

struct titles {
	struct arena *a;
	char **items;
	int n, cap, max;
};

static int is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* Dashes a model puts between a number and a title: '-', en dash, em dash. */
static size_t dash_len(const char *p, const char *end)
{
	if (p < end && *p == '-')
		return 1;
	if (end - p >= 3 && (unsigned char)p[0] == 0xE2 && (unsigned char)p[1] == 0x80 &&
	    ((unsigned char)p[2] == 0x93 || (unsigned char)p[2] == 0x94))
		return 3;
	return 0;
}

/* Trims spaces, Markdown emphasis and quotes from both ends of [*p, *end). */
static void trim(const char **p, const char **end)
{
	for (;;) {
		const char *s = *p, *t = *end;
		while (s < t && is_space((unsigned char)*s))
			s++;
		while (t > s && is_space((unsigned char)t[-1]))
			t--;
		while (s < t && (*s == '*' || *s == '_' || *s == '`'))
			s++;
		while (t > s && (t[-1] == '*' || t[-1] == '_' || t[-1] == '`'))
			t--;
		if (t - s >= 2 && ((*s == '"' && t[-1] == '"') || (*s == '\'' && t[-1] == '\'')))
			s++, t--;
		if (s == *p && t == *end)
			return;
		*p = s;
		*end = t;
	}
}

static int add(struct titles *t, const char *p, const char *end, struct err *e)
{
	trim(&p, &end);
	size_t len = (size_t)(end - p);
	if (!len || len > OUTLINE_TITLE_MAX || t->n >= t->max)
		return 0;
	if (!(t->items = arena_grow(t->a, t->items, t->n, &t->cap, sizeof(*t->items))) ||
	    !(t->items[t->n] = arena_strndup(t->a, p, len)))
		return err_set(e, ERR_INTERNAL, "out of memory");
	t->n++;
	return 0;
}

/* "Chapter 3: Title", "3. Title" ("III. Title" is not read: no digits).
 * Sets *title to what follows the number; 0 when the line has none, 2 when
 * it said "chapter". */
static int numbered(const char *p, const char *end, const char **title)
{
	while (p < end && (is_space((unsigned char)*p) || *p == '*' || *p == '_' || *p == '#' || *p == '>' ||
			   (*p == '-' && p + 1 < end && p[1] == ' ')))
		p++;
	if (end - p >= 3 && (unsigned char)p[0] == 0xE2 && (unsigned char)p[1] == 0x80 && (unsigned char)p[2] == 0xA2)
		p += 3; /* a bullet */
	while (p < end && is_space((unsigned char)*p))
		p++;
	int word = 0;
	if (end - p > 7 && !strncasecmp(p, "chapter", 7) && is_space((unsigned char)p[7])) {
		p += 8;
		word = 1;
	} else if (end - p > 3 && !strncasecmp(p, "ch.", 3)) {
		p += 3;
		word = 1;
	}
	while (p < end && is_space((unsigned char)*p))
		p++;
	const char *digits = p;
	while (p < end && p - digits < 6 && isdigit((unsigned char)*p))
		p++;
	if (p == digits || (p < end && isdigit((unsigned char)*p)))
		return 0;
	while (p < end && (*p == '*' || *p == '_'))
		p++;
	size_t d;
	if (p < end && (*p == '.' || *p == ')' || *p == ':'))
		p++;
	else if (p < end && *p == ' ' && (d = dash_len(p + 1, end)))
		p += 1 + d;
	else if ((d = dash_len(p, end)))
		p += d;
	else if (!word || (p < end && !is_space((unsigned char)*p)))
		return 0;
	*title = p;
	return 1 + word;
}

static int from_lines(struct titles *t, const char *text, const char *end, struct err *e)
{
	for (const char *line = text; line < end;) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		const char *le = nl ? nl : end, *title;
		int kind = numbered(line, le, &title);
		if (kind) {
			const char *te = le;
			trim(&title, &te);
			int rc = 0;
			if (title < te)
				rc = add(t, title, te, e);
			else if (kind == 2)
				rc = add(t, line, le, e); /* "Chapter 4" and no more */
			if (rc)
				return rc;
		}
		line = nl ? nl + 1 : end;
	}
	return 0;
}

static int from_json(struct titles *t, json_t *j, struct err *e)
{
	if (json_is_object(j))
		j = json_object_get(j, "chapters");
	if (!json_is_array(j))
		return 0;
	size_t i;
	json_t *v;
	json_array_foreach (j, i, v) {
		if (json_is_object(v)) {
			json_t *s = json_object_get(v, "title");
			v = s ? s : json_object_get(v, "name");
		}
		if (!json_is_string(v))
			continue;
		const char *s = json_string_value(v), *se = s + json_string_length(v), *title;
		if (numbered(s, se, &title) && title < se)
			s = title; /* "Chapter 1: Title" inside JSON */
		int rc = add(t, s, se, e);
		if (rc)
			return rc;
	}
	return 0;
}

int outline_parse(const char *text, size_t len, int max, struct arena *a, char ***titles, int *n, struct err *e)
{
	struct titles t = { .a = a, .max = max };
	const char *p = text, *end = text + len;
	*titles = NULL;
	*n = 0;
	while (p < end && is_space((unsigned char)*p))
		p++;
	if (end - p >= 3 && !memcmp(p, "```", 3)) { /* a fence, and its language */
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		p = nl ? nl + 1 : end;
		const char *close = end;
		while (close > p && is_space((unsigned char)close[-1]))
			close--;
		if (close - p >= 3 && !memcmp(close - 3, "```", 3))
			end = close - 3;
	}
	while (p < end && is_space((unsigned char)*p))
		p++;
	int rc = 0;
	if (p < end && (*p == '[' || *p == '{')) {
		json_t *j = json_loadb(p, (size_t)(end - p), 0, NULL);
		if (j) {
			rc = from_json(&t, j, e);
			json_decref(j);
			goto out;
		}
	}
	rc = from_lines(&t, p, end, e);
out:
	if (rc == 0) {
		*titles = t.items;
		*n = t.n;
	}
	return rc;
}
