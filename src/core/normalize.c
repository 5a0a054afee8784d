#include "normalize.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "err.h"
#include "mem.h"

#define NORM_MAX 128

struct norm_map {
	int32_t from, to; /* to < 0: removed */
};

static struct norm_map map[NORM_MAX];
static int nmap;
static int32_t map_lo, map_hi;
static pthread_once_t map_once = PTHREAD_ONCE_INIT;

static int by_from(const void *a, const void *b)
{
	const struct norm_map *x = a, *y = b;
	return (x->from > y->from) - (x->from < y->from);
}

/* One code point of s[0..n): its length (1 for an invalid byte, *cp -1). */
static size_t next_cp(const char *s, size_t n, int32_t *cp)
{
	utf8proc_int32_t c;
	utf8proc_ssize_t len = utf8proc_iterate((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &c);
	if (len <= 0) {
		*cp = -1;
		return 1;
	}
	*cp = c;
	return (size_t)len;
}

static void build_map(void)
{
	const char *f = NORM_FROM, *t = NORM_TO;
	size_t fn = strlen(f), tn = strlen(t);
	while (fn && nmap < NORM_MAX) {
		int32_t from, to = -1;
		size_t k = next_cp(f, fn, &from);
		f += k, fn -= k;
		if (tn) {
			k = next_cp(t, tn, &to);
			t += k, tn -= k;
		}
		map[nmap++] = (struct norm_map){ from, to };
	}
	qsort(map, (size_t)nmap, sizeof(map[0]), by_from);
	map_lo = map[0].from;
	map_hi = map[nmap - 1].from;
}

static const struct norm_map *lookup(int32_t cp)
{
	if (cp < map_lo || cp > map_hi)
		return NULL;
	struct norm_map key = { cp, 0 };
	return bsearch(&key, map, (size_t)nmap, sizeof(map[0]), by_from);
}

/* Writes the search form into out (NULL: measures); returns its length and
 * sets *changed. */
static size_t transform(const char *s, size_t n, char *out, int *changed)
{
	size_t o = 0;
	*changed = 0;
	for (size_t i = 0; i < n;) {
		int32_t cp;
		size_t k = (unsigned char)s[i] < 0x80 ? (cp = (unsigned char)s[i], 1) : next_cp(s + i, n - i, &cp);
		const struct norm_map *m = cp >= 0x80 ? lookup(cp) : NULL;
		if (!m) {
			if (out)
				memcpy(out + o, s + i, k);
			o += k;
		} else {
			*changed = 1;
			if (m->to >= 0) {
				utf8proc_uint8_t enc[4];
				utf8proc_ssize_t el = utf8proc_encode_char(m->to, enc);
				if (out)
					memcpy(out + o, enc, (size_t)el);
				o += (size_t)el;
			}
		}
		i += k;
	}
	return o;
}

static int form(struct arena *a, const char *s, size_t n, char **out)
{
	pthread_once(&map_once, build_map);
	*out = NULL;
	int changed;
	size_t len = transform(s, n, NULL, &changed);
	if (!changed)
		return 0;
	char *p = a ? arena_alloc(a, len + 1) : xmalloc(len + 1);
	if (!p)
		return ERR_INTERNAL;
	transform(s, n, p, &changed);
	p[len] = '\0';
	*out = p;
	return 1;
}

int norm_search_form(struct arena *a, const char *s, size_t n, char **out)
{
	return form(a, s, n, out);
}

int norm_search_form_dup(const char *s, size_t n, char **out)
{
	return form(NULL, s, n, out);
}
