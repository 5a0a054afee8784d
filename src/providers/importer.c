#include "importer.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/buf.h"
#include "../core/mem.h"
#include "../core/utf8.h"
#include "../core/mdx.h"

/* ---- small helpers --------------------------------------------------------- */

#define PATH_CAP 4096

/* dir + "/" + name into out; -1 when it does not fit. */
static int path_join(char *out, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

static int is_markdown_name(const char *name)
{
	return ends_with(name, ".md") || ends_with(name, ".mdx") || ends_with(name, ".markdown");
}

/* Reads a whole file, capped; a UTF-8 byte-order mark is dropped. */
static int read_file(const char *path, struct arena *a, char **out, size_t *len, struct err *e)
{
	int rc = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return err_set(e, ERR_IO, "%s: cannot read: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return err_set(e, ERR_IO, "%s: not a regular file", path);
	}
	if ((size_t)st.st_size > IMPORT_MAX_FILE) {
		close(fd);
		return err_set(e, ERR_TOO_LARGE, "%s: larger than %zu MiB", path, IMPORT_MAX_FILE >> 20);
	}
	char *p = arena_alloc(a, (size_t)st.st_size + 1);
	if (!p) {
		close(fd);
		return err_set(e, ERR_INTERNAL, "out of memory");
	}
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, p + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = err_set(e, ERR_IO, "%s: read failed: %s", path, r ? strerror(errno) : "file shrank");
			break;
		}
		got += (size_t)r;
	}
	close(fd);
	if (rc)
		return rc;
	p[got] = '\0';
	if (got >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
		p += 3;
		got -= 3;
	}
	*out = p;
	*len = got;
	return 0;
}

/* Records a warning about `rel` (made valid UTF-8: it goes into JSON). */
static int add_warning(struct import_book *b, const char *rel, const char *action, const char *msg,
		       struct err *e)
{
	if (b->nwarnings >= IMPORT_MAX_WARNINGS) {
		b->warnings_omitted++;
		return 0;
	}
	if (!(b->warnings = arena_grow(&b->arena, b->warnings, b->nwarnings, &b->wcap, sizeof(*b->warnings))))
		return err_set(e, ERR_INTERNAL, "out of memory");
	struct import_warning *w = &b->warnings[b->nwarnings];
	size_t n = strlen(rel), fn = utf8_repair(rel, n, NULL, NULL);
	w->file = arena_alloc(&b->arena, fn + 1);
	w->message = arena_strdup(&b->arena, msg);
	w->action = action;
	if (!w->file || !w->message)
		return err_set(e, ERR_INTERNAL, "out of memory");
	utf8_repair(rel, n, w->file, NULL);
	w->file[fn] = '\0';
	b->nwarnings++;
	return 0;
}

/* Makes `*text` valid UTF-8 or decides the file is not text (the rule is in
 * importer.h). Returns 0 to use the text, 1 when the file is to be skipped
 * (why in `why`), or an error. */
static int clean_text(struct import_book *b, const char *rel, char **text, size_t *len, char *why,
		      size_t whycap, struct err *e)
{
	size_t n = *len;
	if (memchr(*text, '\0', n)) {
		snprintf(why, whycap, "contains NUL bytes (not a text file)");
		return 1;
	}
	size_t first = utf8_first_invalid(*text, n);
	if (first == n)
		return 0;
	size_t bad;
	size_t cn = utf8_repair(*text, n, NULL, &bad);
	if (bad > n / IMPORT_INVALID_RATIO) {
		snprintf(why, whycap, "not UTF-8 text (%zu of %zu bytes invalid)", bad, n);
		return 1;
	}
	char *c = arena_alloc(&b->arena, cn + 1);
	if (!c)
		return err_set(e, ERR_INTERNAL, "out of memory");
	utf8_repair(*text, n, c, NULL);
	c[cn] = '\0';
	char msg[160];
	snprintf(msg, sizeof(msg), "%zu invalid UTF-8 byte%s replaced with U+FFFD (the first at byte %zu)", bad,
		 bad == 1 ? "" : "s", first);
	int rc = add_warning(b, rel, "cleaned", msg, e);
	if (rc)
		return rc;
	*text = c;
	*len = cn;
	return 0;
}

/* Reads a text file of the source as UTF-8: 0 with the text, 1 when it was
 * skipped (and a warning recorded), or an error. */
static int read_text_file(struct import_book *b, const char *path, const char *rel, char **out, size_t *len,
			  struct err *e)
{
	int rc = read_file(path, &b->arena, out, len, e);
	if (rc)
		return rc;
	char why[128];
	if ((rc = clean_text(b, rel, out, len, why, sizeof(why), e)) != 1)
		return rc;
	return add_warning(b, rel, "skipped", why, e) ? ERR_INTERNAL : 1;
}

static int add_chapter(struct import_book *b, const char *title, const char *md, size_t len,
		       const char *source_key, struct err *e)
{
	if (b->nchapters >= IMPORT_MAX_CHAPTERS)
		return err_set(e, ERR_TOO_LARGE, "more than %d chapters", IMPORT_MAX_CHAPTERS);
	if (!(b->chapters = arena_grow(&b->arena, b->chapters, b->nchapters, &b->cap, sizeof(*b->chapters))))
		return err_set(e, ERR_INTERNAL, "out of memory");
	struct import_chapter *c = &b->chapters[b->nchapters];
	c->title = arena_strdup(&b->arena, title);
	c->markdown = arena_strndup(&b->arena, md, len);
	c->len = len;
	c->source_key = arena_strdup(&b->arena, source_key);
	if (!c->title || !c->markdown || !c->source_key)
		return err_set(e, ERR_INTERNAL, "out of memory");
	b->nchapters++;
	return 0;
}

/* Trims spaces and one level of matching quotes, in place. */
static char *trim_value(char *v)
{
	while (*v == ' ' || *v == '\t')
		v++;
	size_t n = strlen(v);
	while (n && isspace((unsigned char)v[n - 1]))
		v[--n] = '\0';
	if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
		v[n - 1] = '\0';
		v++;
	}
	return v;
}

/* File name without directories, extension and a "01-" style order prefix
 * (which Docusaurus strips too); otherwise verbatim. */
static char *title_from_name(struct arena *a, const char *path)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	const char *dot = strrchr(base, '.');
	size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
	size_t skip = 0;
	while (skip < n && isdigit((unsigned char)base[skip]))
		skip++;
	if (skip && skip < n && (base[skip] == '-' || base[skip] == '_' || base[skip] == ' '))
		skip++;
	else
		skip = 0;
	return arena_strndup(a, base + skip, n - skip);
}

/* ---- front matter ---------------------------------------------------------- */

struct front_matter {
	char *title;
	double position;
	int has_position;
	int draft;
};

/* Splits YAML front matter off `*text`; only flat `key: value` lines are read. */
static void front_matter(struct arena *a, char **text, size_t *len, struct front_matter *fm)
{
	memset(fm, 0, sizeof(*fm));
	char *t = *text;
	if (strncmp(t, "---\n", 4) != 0 && strncmp(t, "---\r\n", 5) != 0)
		return;
	char *body = strchr(t, '\n') + 1;
	char *end = NULL;
	for (char *line = body; *line;) {
		char *nl = strchr(line, '\n');
		size_t ln = nl ? (size_t)(nl - line) : strlen(line);
		if ((ln == 3 || (ln == 4 && line[3] == '\r')) && strncmp(line, "---", 3) == 0) {
			end = line;
			break;
		}
		if (!nl)
			break;
		line = nl + 1;
	}
	if (!end)
		return; /* no closing fence: not front matter */
	char *copy = arena_strndup(a, body, (size_t)(end - body));
	char *after = strchr(end, '\n');
	after = after ? after + 1 : end + strlen(end);
	*len -= (size_t)(after - t);
	*text = after;
	if (!copy)
		return;
	char *save = NULL;
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == ' ' || line[0] == '\t' || line[0] == '#')
			continue; /* nested YAML and comments are not ours */
		char *colon = strchr(line, ':');
		if (!colon)
			continue;
		*colon = '\0';
		char *key = trim_value(line), *val = trim_value(colon + 1);
		if (strcmp(key, "title") == 0 && *val)
			fm->title = val;
		else if (strcmp(key, "sidebar_position") == 0) {
			char *e;
			double d = strtod(val, &e);
			if (e != val) {
				fm->position = d;
				fm->has_position = 1;
			}
		} else if (strcmp(key, "draft") == 0)
			fm->draft = strcmp(val, "true") == 0;
	}
}

/* Text of the first level-1 ATX heading outside code fences, or NULL. */
static char *first_h1(struct arena *a, const char *md, size_t n)
{
	int fence = 0;
	for (size_t pos = 0; pos < n;) {
		const char *line = md + pos;
		const char *nl = memchr(line, '\n', n - pos);
		size_t ln = nl ? (size_t)(nl - line) : n - pos;
		pos += ln + 1;
		size_t i = 0;
		while (i < ln && i < 3 && line[i] == ' ')
			i++;
		if (ln - i >= 3 && (strncmp(line + i, "```", 3) == 0 || strncmp(line + i, "~~~", 3) == 0)) {
			fence = !fence;
			continue;
		}
		if (fence || ln - i < 2 || line[i] != '#' || (line[i + 1] != ' ' && line[i + 1] != '\t'))
			continue;
		const char *h = line + i + 2;
		size_t hn = ln - i - 2;
		while (hn && isspace((unsigned char)h[hn - 1]))
			hn--;
		/* A closing run of #s counts only after a space (CommonMark): "C#" stays. */
		size_t k = hn;
		while (k && h[k - 1] == '#')
			k--;
		if (k < hn && (k == 0 || h[k - 1] == ' ' || h[k - 1] == '\t'))
			hn = k;
		while (hn && isspace((unsigned char)h[hn - 1]))
			hn--;
		while (hn && isspace((unsigned char)*h))
			h++, hn--;
		return hn ? arena_strndup(a, h, hn) : NULL;
	}
	return NULL;
}

/* ---- folders --------------------------------------------------------------- */

struct dir_item {
	char *name;
	int is_dir;
	double position;
	int has_position;
};

static int item_cmp(const void *pa, const void *pb)
{
	const struct dir_item *a = pa, *b = pb;
	if (a->has_position != b->has_position)
		return a->has_position ? -1 : 1;
	if (a->has_position && a->position != b->position)
		return a->position < b->position ? -1 : 1;
	return strcmp(a->name, b->name);
}

static void category_position(const char *dir, struct dir_item *it)
{
	char path[PATH_CAP];
	if (path_join(path, sizeof(path), dir, "_category_.json"))
		return;
	json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
	if (j) {
		json_t *p = json_object_get(j, "position");
		if (json_is_number(p)) {
			it->position = json_number_value(p);
			it->has_position = 1;
		}
		json_decref(j);
		return;
	}
	/* _category_.yml: just its `position:` line. */
	if (path_join(path, sizeof(path), dir, "_category_.yml"))
		return;
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	char line[256];
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "position:", 9) == 0) {
			char *end;
			double d = strtod(line + 9, &end);
			if (end != line + 9) {
				it->position = d;
				it->has_position = 1;
			}
		}
	fclose(f);
}

static int load_markdown_chapter(struct import_book *b, const char *path, const char *rel, struct err *e)
{
	char *text;
	size_t len;
	int rc = read_text_file(b, path, rel, &text, &len, e);
	if (rc)
		return rc == 1 ? 0 : rc;
	struct front_matter fm;
	front_matter(&b->arena, &text, &len, &fm);
	if (fm.draft)
		return 0;
	struct buf clean;
	buf_init(&clean, IMPORT_MAX_FILE);
	if (md_strip_mdx(text, len, &clean)) {
		buf_free(&clean);
		return err_set(e, ERR_INTERNAL, "%s: out of memory", path);
	}
	const char *md = clean.p ? clean.p : "";
	size_t mn = clean.n;
	while (mn && (*md == '\n' || *md == '\r')) /* what stripped MDX lines leave */
		md++, mn--;
	char *title = fm.title ? fm.title : first_h1(&b->arena, md, mn);
	if (!title)
		title = title_from_name(&b->arena, path);
	rc = add_chapter(b, title ? title : "Untitled", md, mn, rel, e);
	buf_free(&clean);
	return rc;
}

/* Positions of a folder's items need reading their front matter first. */
static void file_position(struct import_book *b, const char *path, struct dir_item *it)
{
	char head[2048];
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	size_t n = fread(head, 1, sizeof(head) - 1, f);
	fclose(f);
	head[n] = '\0';
	char *t = head;
	struct front_matter fm;
	front_matter(&b->arena, &t, &n, &fm);
	it->position = fm.position;
	it->has_position = fm.has_position;
}

static int walk(struct import_book *b, const char *dir, const char *rel, int depth, struct err *e)
{
	if (depth > IMPORT_MAX_DEPTH)
		return err_set(e, ERR_INVALID, "%s: folders nested more than %d deep", dir, IMPORT_MAX_DEPTH);
	DIR *d = opendir(dir);
	if (!d)
		return err_set(e, ERR_IO, "%s: cannot read folder: %s", dir, strerror(errno));
	struct dir_item *items = NULL;
	int n = 0, cap = 0, rc = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		const char *name = de->d_name;
		if (name[0] == '.' || name[0] == '_' || strcmp(name, "node_modules") == 0)
			continue;
		char path[PATH_CAP];
		if (path_join(path, sizeof(path), dir, name))
			continue;
		struct stat st;
		if (lstat(path, &st)) /* links are not followed: a source cannot reach outside itself */
			continue;
		int is_dir = S_ISDIR(st.st_mode);
		if (!is_dir && !(S_ISREG(st.st_mode) && is_markdown_name(name)))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 32;
			struct dir_item *ni = arena_alloc(&b->arena, sizeof(*ni) * (size_t)cap);
			if (!ni) {
				rc = err_set(e, ERR_INTERNAL, "out of memory");
				break;
			}
			if (n)
				memcpy(ni, items, sizeof(*ni) * (size_t)n);
			items = ni;
		}
		struct dir_item *it = &items[n++];
		memset(it, 0, sizeof(*it));
		it->name = arena_strdup(&b->arena, name);
		it->is_dir = is_dir;
		if (is_dir)
			category_position(path, it);
		else
			file_position(b, path, it);
	}
	closedir(d);
	if (rc)
		return rc;
	if (n)
		qsort(items, (size_t)n, sizeof(*items), item_cmp);
	for (int i = 0; !rc && i < n; i++) {
		char path[PATH_CAP], sub[PATH_CAP];
		if (path_join(path, sizeof(path), dir, items[i].name) ||
		    (*rel ? path_join(sub, sizeof(sub), rel, items[i].name)
			  : snprintf(sub, sizeof(sub), "%s", items[i].name) >= (int)sizeof(sub)))
			return err_set(e, ERR_INVALID, "%s/%s: path too long", dir, items[i].name);
		rc = items[i].is_dir ? walk(b, path, sub, depth + 1, e) : load_markdown_chapter(b, path, sub, e);
	}
	return rc;
}

static int load_book_json(struct import_book *b, const char *dir, struct err *e)
{
	char path[PATH_CAP];
	if (path_join(path, sizeof(path), dir, "book.json"))
		return err_set(e, ERR_INVALID, "%s: path too long", dir);
	if (access(path, F_OK) != 0)
		return 0;
	json_error_t je;
	json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (!j || !json_is_object(j)) {
		json_decref(j);
		return err_set(e, ERR_INVALID, "%s: not a JSON object (line %d: %s)", path, je.line, j ? "" : je.text);
	}
	const char *keys[] = { "title", "author", "language" };
	char **dst[] = { &b->title, &b->author, &b->language };
	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		json_t *v = json_object_get(j, keys[i]);
		if (v && json_is_string(v))
			*dst[i] = arena_strdup(&b->arena, json_string_value(v));
		else if (v && !json_is_null(v)) {
			json_decref(j);
			return err_set(e, ERR_INVALID, "%s: \"%s\" must be a string", path, keys[i]);
		}
	}
	json_t *isbns = json_object_get(j, "isbns");
	size_t i;
	json_t *v;
	if (isbns && json_is_array(isbns))
		json_array_foreach(isbns, i, v) {
			if (json_is_string(v) && b->nisbns < IMPORT_MAX_ISBNS)
				b->isbns[b->nisbns++] = arena_strdup(&b->arena, json_string_value(v));
		}
	b->isbn_source = arena_strdup(&b->arena, path);
	json_decref(j);
	return 0;
}

/* ---- single files ---------------------------------------------------------- */

/* A "Chapter N" heading line of a plain-text book: returns 1 and the title
 * after the separator (or "Chapter N"). */
static int chapter_line(struct arena *a, const char *line, size_t n, char **title)
{
	size_t i = 0;
	while (i < n && isspace((unsigned char)line[i]))
		i++;
	if (n - i < 9 || strncasecmp(line + i, "chapter", 7) != 0 || !isspace((unsigned char)line[i + 7]))
		return 0;
	size_t j = i + 8;
	while (j < n && line[j] == ' ')
		j++;
	size_t num = j;
	if (j < n && isdigit((unsigned char)line[j])) {
		while (j < n && isdigit((unsigned char)line[j]))
			j++;
	} else {
		while (j < n && strchr("IVXLCivxlc", line[j]))
			j++;
	}
	if (j == num || (j < n && isalnum((unsigned char)line[j])))
		return 0;
	size_t numend = j;
	while (j < n && (line[j] == ' ' || line[j] == ':' || line[j] == '.' || line[j] == '-'))
		j++;
	size_t end = n;
	while (end > j && isspace((unsigned char)line[end - 1]))
		end--;
	if (end > j)
		*title = arena_strndup(a, line + j, end - j);
	else
		*title = arena_strndup(a, line + i, numend - i);
	return *title != NULL;
}

int import_text(const char *name, const char *text, size_t n, struct import_book *b, struct err *e)
{
	struct buf body;
	buf_init(&body, IMPORT_MAX_FILE);
	char *cur_title = NULL, *first_line = NULL;
	int rc = 0, chapters = 0;
	for (size_t pos = 0; !rc;) {
		/* One pass per line, and one more at the end to close the last chapter. */
		int at_end = pos >= n;
		const char *line = text + (at_end ? n : pos);
		const char *nl = at_end ? NULL : memchr(line, '\n', n - pos);
		size_t ln = at_end ? 0 : nl ? (size_t)(nl - line) : n - pos;
		pos = at_end ? n : pos + ln + 1;
		if (ln && line[ln - 1] == '\r')
			ln--;
		char *title = NULL;
		if (at_end || chapter_line(&b->arena, line, ln, &title)) {
			if (cur_title) {
				char key[32];
				snprintf(key, sizeof(key), "chapter-%d", ++chapters);
				rc = add_chapter(b, cur_title, body.p ? body.p : "", body.n, key, e);
			}
			buf_reset(&body);
			cur_title = title;
			if (at_end)
				break;
			continue;
		}
		/* Leading indentation would make Markdown code blocks of prose. */
		size_t k = 0;
		while (k < ln && (line[k] == ' ' || line[k] == '\t'))
			k++;
		if (!cur_title) {
			if (!first_line && k < ln)
				first_line = arena_strndup(&b->arena, line + k, ln - k);
			continue;
		}
		if ((rc = buf_append(&body, line + k, ln - k)) || (rc = buf_putc(&body, '\n')))
			rc = rc == BUF_NOMEM ? err_set(e, ERR_INTERNAL, "out of memory")
					     : err_set(e, ERR_TOO_LARGE, "%s: too large", name);
	}
	buf_free(&body);
	if (rc)
		return rc;
	if (!chapters)
		return err_set(e, ERR_INVALID, "%s: no chapters found (expected lines like \"Chapter 1: Title\")", name);
	if (!b->title && first_line)
		b->title = first_line;
	return 0;
}

static int is_h1_line(const char *line, size_t n)
{
	size_t i = 0;
	while (i < n && i < 3 && line[i] == ' ')
		i++;
	return n - i >= 2 && line[i] == '#' && (line[i + 1] == ' ' || line[i + 1] == '\t');
}

int import_markdown_file(const char *name, const char *text, size_t n, struct import_book *b, struct err *e)
{
	char *t = (char *)text;
	struct front_matter fm;
	front_matter(&b->arena, &t, &n, &fm);
	struct buf clean;
	buf_init(&clean, IMPORT_MAX_FILE);
	if (md_strip_mdx(t, n, &clean)) {
		buf_free(&clean);
		return err_set(e, ERR_INTERNAL, "%s: out of memory", name);
	}
	const char *md = clean.p ? clean.p : "";
	size_t mn = clean.n;
	int rc = 0, chapters = 0, fence = 0;
	size_t start = 0;
	char key[32];
	/* Split before every level-1 heading outside code fences. */
	for (size_t pos = 0; pos <= mn && !rc;) {
		const char *line = md + pos;
		const char *nl = pos < mn ? memchr(line, '\n', mn - pos) : NULL;
		size_t ln = pos < mn ? (nl ? (size_t)(nl - line) : mn - pos) : 0;
		int at_end = pos >= mn;
		size_t here = pos;
		pos += ln + 1;
		if (!at_end && ln >= 3 && (strncmp(line, "```", 3) == 0 || strncmp(line, "~~~", 3) == 0))
			fence = !fence;
		if (!at_end && (fence || !is_h1_line(line, ln)))
			continue;
		size_t seg = (at_end ? mn : here) - start;
		const char *segp = md + start;
		int blank = 1;
		for (size_t i = 0; i < seg; i++)
			blank &= isspace((unsigned char)segp[i]) != 0;
		if (!blank) {
			char *title = first_h1(&b->arena, segp, seg);
			if (!title)
				title = chapters == 0 && fm.title ? fm.title : "Introduction";
			snprintf(key, sizeof(key), "chapter-%d", chapters + 1);
			rc = add_chapter(b, title, segp, seg, key, e);
			chapters++;
		}
		start = here;
	}
	buf_free(&clean);
	if (rc)
		return rc;
	if (!chapters)
		return err_set(e, ERR_INVALID, "%s: no chapters found (the file is empty)", name);
	if (!b->title && fm.title)
		b->title = fm.title;
	return 0;
}

/* ---- entry point ----------------------------------------------------------- */

int import_load(const char *path, struct import_book *b, struct err *e)
{
	memset(b, 0, sizeof(*b));
	arena_init(&b->arena, 64 * 1024);
	struct stat st;
	if (stat(path, &st))
		return err_set(e, ERR_IO, "%s: %s", path, strerror(errno));
	int rc;
	if (S_ISDIR(st.st_mode)) {
		if ((rc = load_book_json(b, path, e)) != 0)
			return rc;
		if ((rc = walk(b, path, "", 0, e)) != 0)
			return rc;
		if (!b->nchapters && b->nwarnings)
			return err_set(e, ERR_INVALID, "%s: no chapters found (%s %s: %s)", path, b->warnings[0].file,
				       b->warnings[0].action, b->warnings[0].message);
		if (!b->nchapters)
			return err_set(e, ERR_INVALID, "%s: no chapters found (no .md or .mdx files)", path);
		if (!b->title) {
			char *copy = arena_strdup(&b->arena, path);
			size_t n = copy ? strlen(copy) : 0;
			while (n > 1 && copy[n - 1] == '/')
				copy[--n] = '\0';
			b->title = copy ? title_from_name(&b->arena, copy) : NULL;
			b->title_from_name = 1;
		}
		return 0;
	}
	if (!S_ISREG(st.st_mode))
		return err_set(e, ERR_UNSUPPORTED, "%s: not a file or folder", path);
	int md = is_markdown_name(path), txt = ends_with(path, ".txt");
	if (!md && !txt)
		return err_set(e, ERR_UNSUPPORTED, "%s: unsupported file type (use a folder, .md, .mdx or .txt)", path);
	b->single_file = 1;
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	char *text;
	size_t len;
	if ((rc = read_text_file(b, path, base, &text, &len, e)) == 1)
		return err_set(e, ERR_INVALID, "%s: %s", path, b->warnings[b->nwarnings - 1].message);
	if (rc)
		return rc;
	rc = md ? import_markdown_file(path, text, len, b, e) : import_text(path, text, len, b, e);
	if (!rc && !b->title) {
		b->title = title_from_name(&b->arena, path);
		b->title_from_name = 1;
	}
	return rc;
}

void import_book_free(struct import_book *b)
{
	arena_free(&b->arena);
}
