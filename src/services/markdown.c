#include "markdown.h"

#include <cmark-gfm-core-extensions.h>
#include <cmark-gfm.h>
#include <ctype.h>
#include <utf8proc.h>
#include <jansson.h>
#include <pthread.h>
#include <string.h>

#include "../core/mem.h"

static pthread_once_t ext_once = PTHREAD_ONCE_INIT;

static void register_extensions(void)
{
	cmark_gfm_core_extensions_ensure_registered();
}

cmark_parser *md_parser_new(void)
{
	pthread_once(&ext_once, register_extensions);
	cmark_parser *p = cmark_parser_new(CMARK_OPT_DEFAULT | CMARK_OPT_FOOTNOTES);
	if (!p)
		return NULL;
	static const char *exts[] = { "table", "strikethrough", "autolink", "tasklist" };
	for (size_t i = 0; i < ARRAY_LEN(exts); i++) {
		cmark_syntax_extension *x = cmark_find_syntax_extension(exts[i]);
		if (x)
			cmark_parser_attach_syntax_extension(p, x);
	}
	return p;
}

int md_slug(const char *text, size_t n, struct buf *out)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)text[i];
		int rc = 0;
		if (c < 0x80) {
			if (isalnum(c) || c == '_' || c == '-')
				rc = buf_putc(out, (char)tolower(c));
			else if (c == ' ')
				rc = buf_putc(out, '-');
			/* other ASCII (punctuation, tabs) is dropped */
			i++;
		} else {
			/* Like GitHub's slugger: letters lowercased, marks and digits
			 * kept, punctuation and symbols (’ “ — …) dropped. */
			utf8proc_int32_t cp;
			utf8proc_ssize_t len = utf8proc_iterate((const utf8proc_uint8_t *)text + i, (utf8proc_ssize_t)(n - i), &cp);
			if (len <= 0) {
				i++;
				continue;
			}
			utf8proc_category_t cat = utf8proc_category(cp);
			int drop = (cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO) ||
				   (cat >= UTF8PROC_CATEGORY_SM && cat <= UTF8PROC_CATEGORY_SO) ||
				   (cat >= UTF8PROC_CATEGORY_ZS && cat <= UTF8PROC_CATEGORY_ZP) ||
				   cat == UTF8PROC_CATEGORY_CC || cat == UTF8PROC_CATEGORY_CF;
			if (!drop) {
				utf8proc_uint8_t enc[4];
				utf8proc_ssize_t el = utf8proc_encode_char(utf8proc_tolower(cp), enc);
				rc = buf_append(out, enc, (size_t)el);
			}
			i += (size_t)len;
		}
		if (rc)
			return rc;
	}
	return 0;
}

/* Heading text: the literal text of its inline descendants. */
static int inline_text(cmark_node *node, struct buf *b)
{
	cmark_iter *it = cmark_iter_new(node);
	cmark_event_type ev;
	int rc = 0;
	while (!rc && (ev = cmark_iter_next(it)) != CMARK_EVENT_DONE) {
		cmark_node *cur = cmark_iter_get_node(it);
		if (ev != CMARK_EVENT_ENTER)
			continue;
		switch (cmark_node_get_type(cur)) {
		case CMARK_NODE_TEXT:
		case CMARK_NODE_CODE:
			rc = buf_puts(b, cmark_node_get_literal(cur));
			break;
		case CMARK_NODE_SOFTBREAK:
		case CMARK_NODE_LINEBREAK:
			rc = buf_putc(b, ' ');
			break;
		default:
			break;
		}
	}
	cmark_iter_free(it);
	return rc;
}

/* Splits "Title {#custom-id}" into its text and explicit id. */
static void explicit_id(char *text, size_t *n, const char **id, size_t *idn)
{
	*id = NULL;
	size_t len = *n;
	while (len && text[len - 1] == ' ')
		len--;
	if (len < 4 || text[len - 1] != '}')
		return;
	char *open = NULL;
	for (size_t i = len - 1; i-- > 0;)
		if (text[i] == '{') {
			open = text + i;
			break;
		}
	if (!open || open[1] != '#' || open + 2 >= text + len - 1)
		return;
	*id = open + 2;
	*idn = (size_t)(text + len - 1 - (open + 2));
	size_t keep = (size_t)(open - text);
	while (keep && text[keep - 1] == ' ')
		keep--;
	*n = keep;
	text[keep] = '\0';
}

struct slug_seen {
	char **slugs;
	int n, cap;
};

static int slug_count(const struct slug_seen *s, const char *slug)
{
	for (int i = 0; i < s->n; i++)
		if (strcmp(s->slugs[i], slug) == 0)
			return 1;
	return 0;
}

static long count_words(const char *s, size_t n)
{
	long words = 0;
	int in_word = 0;
	for (size_t i = 0; i < n; i++) {
		int space = isspace((unsigned char)s[i]);
		if (!space && !in_word)
			words++;
		in_word = !space;
	}
	return words;
}

int md_analyze(const char *md, size_t n, struct arena *a, struct md_info *out, struct err *e)
{
	int rc = ERR_INTERNAL;
	memset(out, 0, sizeof(*out));
	struct buf plain, head, slug;
	buf_init(&plain, (size_t)64 << 20);
	buf_init(&head, (size_t)1 << 20);
	buf_init(&slug, (size_t)1 << 20);
	struct slug_seen seen = { 0 };
	int cap = 0;
	cmark_node *doc = NULL;
	cmark_iter *it = NULL;

	cmark_parser *p = md_parser_new();
	if (!p)
		goto nomem;
	cmark_parser_feed(p, md, n);
	doc = cmark_parser_finish(p);
	if (!doc)
		goto nomem;
	it = cmark_iter_new(doc);
	cmark_event_type ev;
	int brc = 0; /* the failing buf call's BUF_TOOBIG or BUF_NOMEM */
	while ((ev = cmark_iter_next(it)) != CMARK_EVENT_DONE) {
		cmark_node *cur = cmark_iter_get_node(it);
		cmark_node_type t = cmark_node_get_type(cur);
		brc = 0;
		if (ev == CMARK_EVENT_EXIT) {
			if ((t & CMARK_NODE_TYPE_MASK) == CMARK_NODE_TYPE_BLOCK && plain.n &&
			    plain.p[plain.n - 1] != '\n')
				brc = buf_putc(&plain, '\n');
			if (brc)
				goto toobig;
			continue;
		}
		switch (t) {
		case CMARK_NODE_TEXT:
		case CMARK_NODE_CODE:
		case CMARK_NODE_CODE_BLOCK:
			brc = buf_puts(&plain, cmark_node_get_literal(cur));
			break;
		case CMARK_NODE_SOFTBREAK:
		case CMARK_NODE_LINEBREAK:
			brc = buf_putc(&plain, ' ');
			break;
		default:
			/* Table cells are blocks of the extension: keep words apart. */
			if ((t & CMARK_NODE_TYPE_MASK) == CMARK_NODE_TYPE_BLOCK && plain.n &&
			    !isspace((unsigned char)plain.p[plain.n - 1]))
				brc = buf_putc(&plain, ' ');
			break;
		}
		if (brc)
			goto toobig;
		if (t != CMARK_NODE_HEADING)
			continue;

		buf_reset(&head);
		if ((brc = inline_text(cur, &head)) != 0)
			goto toobig;
		size_t hn = head.n;
		const char *id;
		size_t idn = 0;
		explicit_id(head.p ? head.p : (char *)"", &hn, &id, &idn);
		buf_reset(&slug);
		brc = id ? buf_append(&slug, id, idn) : md_slug(head.p ? head.p : "", hn, &slug);
		if (brc)
			goto toobig;
		/* De-duplicate: base, base-1, base-2, ... */
		char *anchor = arena_strndup(a, slug.p ? slug.p : "", slug.n);
		for (int k = 1; anchor && slug_count(&seen, anchor); k++)
			anchor = arena_printf(a, "%s-%d", slug.p ? slug.p : "", k);
		char *heading = arena_strndup(a, head.p ? head.p : "", hn);
		if (!anchor || !heading)
			goto nomem;
		if (seen.n == seen.cap) {
			int ncap = seen.cap ? seen.cap * 2 : 16;
			char **ns = xrealloc(seen.slugs, (size_t)ncap * sizeof(*ns));
			if (!ns)
				goto nomem;
			seen.slugs = ns;
			seen.cap = ncap;
		}
		seen.slugs[seen.n++] = anchor;
		if (!(out->sections = arena_grow(a, out->sections, out->nsections, &cap, sizeof(*out->sections))))
			goto nomem;
		int level = cmark_node_get_heading_level(cur);
		out->sections[out->nsections++] = (struct md_section){ anchor, heading, level };
		if (level == 1 && !out->first_h1)
			out->first_h1 = heading;
	}
	out->plain = arena_strndup(a, plain.p ? plain.p : "", plain.n);
	if (!out->plain)
		goto nomem;
	out->plain_len = plain.n;
	out->word_count = count_words(plain.p ? plain.p : "", plain.n);
	rc = 0;
	goto out;
toobig:
	if (brc == BUF_NOMEM)
		goto nomem;
	rc = err_set(e, ERR_TOO_LARGE, "chapter text is too large");
	goto out;
nomem:
	rc = err_set(e, ERR_INTERNAL, "out of memory");
out:
	if (it)
		cmark_iter_free(it);
	if (doc)
		cmark_node_free(doc);
	if (p)
		cmark_parser_free(p);
	xfree(seen.slugs);
	buf_free(&plain);
	buf_free(&head);
	buf_free(&slug);
	return rc;
}

char *md_sections_json(const struct md_info *info, struct arena *a)
{
	json_t *arr = json_array();
	if (!arr)
		return NULL;
	for (int i = 0; i < info->nsections; i++) {
		const struct md_section *s = &info->sections[i];
		json_array_append_new(arr, json_pack("{s:s, s:s, s:i}", "anchor", s->anchor, "heading",
						     s->heading, "level", s->level));
	}
	char *dump = json_dumps(arr, JSON_COMPACT);
	json_decref(arr);
	if (!dump)
		return NULL;
	char *r = arena_strdup(a, dump);
	free(dump);
	return r;
}
