/*
 * The static site: a built Docusaurus `build/` folder (or any tree of files)
 * served for the GET and HEAD requests no API route matches, so a book's site
 * and its `/api` widgets share one origin and one process.
 *
 * Paths. The request path (already percent-decoded by libmicrohttpd, checked
 * as UTF-8 by the server) must start with the base URL ("/" or "/my-book/");
 * what follows is looked up in the directory. A `.` or `..` segment, a
 * backslash, an empty segment or a control character is refused outright
 * (400), never normalised: `%2e%2e` arrives decoded and is refused the same
 * way. A segment starting with a dot (`.git`, `.env`) is never served (404).
 * An encoded NUL ends the path where libmicrohttpd decoded it; what is left
 * passes the same checks.
 *
 * Lookup, first found wins: the file itself; for a directory (with or without
 * a trailing slash) its index.html; then PATH.html (`/docs/intro` may be
 * `docs/intro/index.html` or `docs/intro.html`). Nothing found: the site's
 * 404.html with status 404, or, without one, -1 so the server answers its
 * JSON 404. Only regular files are served.
 *
 * Confinement. The directory is opened once; every lookup is relative to it
 * with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS): no component may be a
 * symbolic link, so a link inside the site never leads out of it (links are
 * simply not served, even those that stay inside). Where openat2 is missing
 * (ENOSYS: kernels before 5.6, some sandboxes) the walk is done by hand, one
 * openat(O_NOFOLLOW) per component, which refuses links the same way. The
 * lexical checks above come first either way. A rebuild that replaces the
 * directory is noticed on the first miss (the old directory has no links
 * left) and the new one is opened.
 *
 * Caching. HTML: `no-cache` (always revalidated). A name with a hex hash of 8
 * or more characters before its extension (`main.3f2a1b9c.js`,
 * `styles.abcd1234.css`, `logo-0123abcd.png`): a year, `immutable`. Anything
 * else: ten minutes. Every file has a strong ETag made of its inode, size and
 * modification time in nanoseconds, and Last-Modified; If-None-Match (else
 * If-Modified-Since) answers 304. One byte range (`bytes=a-b`, `a-`, `-n`) is
 * answered 206, honouring If-Range; several ranges get the whole file.
 * The body is sent from the file descriptor (sendfile).
 */
#include "site.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../core/log.h"
#include "../core/mem.h"
#include "server.h"

#define SITE_PATH_MAX 1024
#define SITE_OLD_MAX 16

struct site {
	char *dir;
	char *base; /* "/" or "/prefix/" */
	size_t base_len;
	atomic_int dirfd;
	pthread_mutex_t lock; /* replacing dirfd */
	int old[SITE_OLD_MAX]; /* replaced descriptors, closed at site_close */
	int nold;
};

/* 0: openat2 is missing, walk by hand (tests set it too). */
static atomic_int use_openat2 = 1;

/* ---- what a path may be --------------------------------------------------------- */

enum path_check { PATH_OK = 0, PATH_BAD = 1, PATH_HIDDEN = 2 };

/* `rel` is the path below the base, without a leading slash; it may end with
 * one. */
static enum path_check site_check_path(const char *rel, size_t n)
{
	enum path_check rc = PATH_OK;
	size_t seg = 0; /* start of the current segment */
	for (size_t i = 0; i <= n; i++) {
		unsigned char c = i < n ? (unsigned char)rel[i] : '/';
		if (c == '\\' || c < 0x20 || c == 0x7f)
			return PATH_BAD;
		if (c != '/')
			continue;
		size_t len = i - seg;
		const char *s = rel + seg;
		if (len == 0 && i != n && !(i == 0 && n == 0))
			return PATH_BAD; /* "a//b", or a leading slash */
		if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
			return PATH_BAD;
		if (len > 0 && s[0] == '.')
			rc = PATH_HIDDEN;
		seg = i + 1;
	}
	return rc;
}

/* ---- content types and caching ---------------------------------------------------- */

static const struct {
	const char *ext, *type;
} types[] = {
	{ "html", "text/html; charset=utf-8" },
	{ "htm", "text/html; charset=utf-8" },
	{ "css", "text/css; charset=utf-8" },
	{ "js", "text/javascript; charset=utf-8" },
	{ "mjs", "text/javascript; charset=utf-8" },
	{ "cjs", "text/javascript; charset=utf-8" },
	{ "json", "application/json" },
	{ "map", "application/json" },
	{ "webmanifest", "application/manifest+json" },
	{ "xml", "application/xml" },
	{ "rss", "application/rss+xml" },
	{ "atom", "application/atom+xml" },
	{ "txt", "text/plain; charset=utf-8" },
	{ "md", "text/markdown; charset=utf-8" },
	{ "csv", "text/csv; charset=utf-8" },
	{ "svg", "image/svg+xml" },
	{ "png", "image/png" },
	{ "jpg", "image/jpeg" },
	{ "jpeg", "image/jpeg" },
	{ "gif", "image/gif" },
	{ "webp", "image/webp" },
	{ "avif", "image/avif" },
	{ "ico", "image/x-icon" },
	{ "bmp", "image/bmp" },
	{ "woff", "font/woff" },
	{ "woff2", "font/woff2" },
	{ "ttf", "font/ttf" },
	{ "otf", "font/otf" },
	{ "eot", "application/vnd.ms-fontobject" },
	{ "wasm", "application/wasm" },
	{ "pdf", "application/pdf" },
	{ "zip", "application/zip" },
	{ "mp3", "audio/mpeg" },
	{ "ogg", "audio/ogg" },
	{ "wav", "audio/wav" },
	{ "m4a", "audio/mp4" },
	{ "mp4", "video/mp4" },
	{ "webm", "video/webm" },
	{ "vtt", "text/vtt; charset=utf-8" },
};

/* The extension of the last segment of `name` (without the dot), or "". */
static const char *site_ext(const char *name)
{
	const char *slash = strrchr(name, '/');
	const char *base = slash ? slash + 1 : name;
	const char *dot = strrchr(base, '.');
	return dot && dot != base ? dot + 1 : "";
}

static const char *site_content_type(const char *name)
{
	const char *ext = site_ext(name);
	for (size_t i = 0; i < ARRAY_LEN(types); i++)
		if (!strcasecmp(ext, types[i].ext))
			return types[i].type;
	return "application/octet-stream";
}

/* 1 when the file name carries a content hash: NAME.HASH.EXT or NAME-HASH.EXT
 * with at least 8 hex digits (what Docusaurus and webpack emit). */
static int site_is_hashed(const char *name)
{
	const char *slash = strrchr(name, '/');
	const char *base = slash ? slash + 1 : name;
	const char *dot = strrchr(base, '.');
	if (!dot || dot == base)
		return 0;
	const char *h = dot; /* the hash ends here */
	size_t nhex = 0;
	while (h > base && strchr("0123456789abcdefABCDEF", h[-1]) && h[-1]) {
		h--;
		nhex++;
	}
	return nhex >= 8 && h > base + 1 && (h[-1] == '.' || h[-1] == '-');
}

static const char *site_cache_control(const char *name)
{
	const char *ext = site_ext(name);
	if (!strcasecmp(ext, "html") || !strcasecmp(ext, "htm"))
		return "no-cache";
	if (site_is_hashed(name))
		return "public, max-age=31536000, immutable";
	return "public, max-age=600";
}

/* ---- validators -------------------------------------------------------------------- */

static const char wdays[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
				    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

static void http_date(time_t t, char *out, size_t cap)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(out, cap, "%s, %02d %s %04d %02d:%02d:%02d GMT", wdays[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
		 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static int digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/* An IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"); -1 when it is not one
 * (a recipient then ignores the header). */
static int parse_http_date(const char *s, time_t *out)
{
	struct tm tm = { 0 };
	int mon = -1;
	if (strlen(s) != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
	    s[19] != ':' || s[22] != ':' || s[25] != ' ' || strcmp(s + 26, "GMT"))
		return -1;
	for (int i = 0; i < 12; i++)
		if (!strncmp(s + 8, months[i], 3))
			mon = i;
	if (mon < 0 || digits(s + 5, 2, &tm.tm_mday) || digits(s + 12, 4, &tm.tm_year) ||
	    digits(s + 17, 2, &tm.tm_hour) || digits(s + 20, 2, &tm.tm_min) || digits(s + 23, 2, &tm.tm_sec))
		return -1;
	if (tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
		return -1;
	tm.tm_mon = mon;
	tm.tm_year -= 1900;
	*out = timegm(&tm);
	return 0;
}

static void site_etag(const struct stat *st, char *out, size_t cap)
{
	snprintf(out, cap, "\"%llx-%llx-%llx\"", (unsigned long long)st->st_ino, (unsigned long long)st->st_size,
		 (unsigned long long)st->st_mtim.tv_sec * 1000000000ULL + (unsigned long long)st->st_mtim.tv_nsec);
}

/* If-None-Match: 1 when one of its entity tags matches `etag` (weak
 * comparison: a W/ prefix is ignored), or it is "*". */
static int etag_listed(const char *header, const char *etag)
{
	size_t elen = strlen(etag);
	const char *p = header;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '*')
			return 1;
		if (p[0] == 'W' && p[1] == '/')
			p += 2;
		if (*p != '"')
			return 0;
		const char *end = strchr(p + 1, '"');
		if (!end)
			return 0;
		if ((size_t)(end + 1 - p) == elen && !memcmp(p, etag, elen))
			return 1;
		p = end + 1;
	}
	return 0;
}

/* Range: one "bytes=" range of a `size`-byte file. Returns 1 and the range
 * (inclusive), 0 to send the whole file (absent, malformed or several
 * ranges), -1 when it cannot be satisfied (416). */
static int parse_range(const char *h, uint64_t size, uint64_t *first, uint64_t *last)
{
	if (strncasecmp(h, "bytes=", 6))
		return 0;
	const char *p = h + 6;
	while (*p == ' ')
		p++;
	if (strchr(p, ','))
		return 0;
	char *end;
	if (*p == '-') {
		if (p[1] < '0' || p[1] > '9')
			return 0;
		errno = 0;
		unsigned long long n = strtoull(p + 1, &end, 10);
		if (errno || *end)
			return 0;
		if (n == 0 || size == 0)
			return -1;
		*first = n >= size ? 0 : size - n;
		*last = size - 1;
		return 1;
	}
	if (*p < '0' || *p > '9')
		return 0;
	errno = 0;
	unsigned long long a = strtoull(p, &end, 10);
	if (errno || *end != '-')
		return 0;
	p = end + 1;
	unsigned long long b = size ? size - 1 : 0;
	if (*p) {
		if (*p < '0' || *p > '9')
			return 0;
		b = strtoull(p, &end, 10);
		if (errno || *end || b < a)
			return 0;
	}
	if (a >= size)
		return -1;
	*first = a;
	*last = b >= size ? size - 1 : b;
	return 1;
}

int site_parse_range(const char *h, uint64_t size, uint64_t *first, uint64_t *last)
{
	return parse_range(h, size, first, last);
}

/* ---- opening files inside the directory -------------------------------------------- */

static int open_walk(int dirfd, const char *rel)
{
	int cur = dirfd, fd = -1;
	const char *p = rel;
	for (;;) {
		const char *slash = strchr(p, '/');
		if (!slash) {
			fd = openat(cur, p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
			break;
		}
		char comp[256];
		size_t n = (size_t)(slash - p);
		if (n == 0 || n >= sizeof(comp)) {
			errno = ENOENT;
			break;
		}
		memcpy(comp, p, n);
		comp[n] = '\0';
		int next = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (cur != dirfd)
			close(cur);
		cur = next;
		if (cur < 0)
			return -1;
		p = slash + 1;
	}
	int saved = errno;
	if (cur != dirfd)
		close(cur);
	errno = saved;
	return fd;
}

/* Opens `rel` (no leading slash; "" is the directory itself) below `dirfd`,
 * following no symbolic link. */
static int open_beneath(int dirfd, const char *rel)
{
	if (!*rel)
		rel = ".";
	if (atomic_load_explicit(&use_openat2, memory_order_relaxed)) {
		struct open_how how = {
			.flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK,
			.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
		};
		long fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
		if (fd >= 0 || errno != ENOSYS)
			return (int)fd;
		atomic_store(&use_openat2, 0);
	}
	return open_walk(dirfd, rel);
}

/* A regular file found for `rel`: its descriptor and stat, and in `name` the
 * path it was found at (for its type). -1 when there is none. */
static int site_find(int dirfd, const char *rel, size_t n, char *name, size_t cap, struct stat *st)
{
	int fd = -1, rc = -1;
	int dir_slash = n == 0 || rel[n - 1] == '/';
	size_t stem = dir_slash && n ? n - 1 : n; /* without the trailing slash */
	if (n + sizeof("/index.html") > cap)
		goto out;
	memcpy(name, rel, stem);
	name[stem] = '\0';
	fd = open_beneath(dirfd, name);
	if (fd >= 0 && fstat(fd, st) == 0) {
		if (S_ISREG(st->st_mode) && !dir_slash) {
			rc = fd;
			goto out;
		}
		if (S_ISDIR(st->st_mode)) {
			int ifd = openat(fd, "index.html", O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
			if (ifd >= 0 && fstat(ifd, st) == 0 && S_ISREG(st->st_mode)) {
				snprintf(name + stem, cap - stem, "%sindex.html", stem ? "/" : "");
				rc = ifd;
				goto out;
			}
			if (ifd >= 0)
				close(ifd);
		}
	}
	if (fd >= 0)
		close(fd);
	fd = -1;
	if (stem == 0)
		goto out;
	memcpy(name + stem, ".html", sizeof(".html"));
	fd = open_beneath(dirfd, name);
	if (fd >= 0 && fstat(fd, st) == 0 && S_ISREG(st->st_mode)) {
		rc = fd;
		fd = -1;
	}
out:
	if (fd >= 0 && fd != rc)
		close(fd);
	return rc;
}

/* After a miss: when the directory was replaced (a rebuild removes the old
 * one), open the new one. 1 when the descriptor changed. */
static int site_refresh(site *s)
{
	int changed = 0;
	pthread_mutex_lock(&s->lock);
	int cur = atomic_load(&s->dirfd);
	struct stat st;
	if (s->nold < SITE_OLD_MAX && fstat(cur, &st) == 0 && st.st_nlink == 0) {
		int fd = open(s->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0) {
			/* Threads may still be looking up below the old one. */
			s->old[s->nold++] = cur;
			atomic_store(&s->dirfd, fd);
			changed = 1;
			log_info("site: %s was replaced, serving the new directory", s->dir);
		}
	}
	pthread_mutex_unlock(&s->lock);
	return changed;
}

/* ---- the module's interface ------------------------------------------------------- */

int site_open(site **out, const char *dir, const char *base_url, struct err *e)
{
	int rc = -1;
	site *s = NULL;
	*out = NULL;
	if (!base_url || !*base_url)
		base_url = "/";
	size_t blen = strlen(base_url);
	if (base_url[0] != '/' || site_check_path(base_url + 1, blen - 1) != PATH_OK) {
		rc = err_set(e, ERR_INVALID, "BOOKD_SITE_BASE_URL=\"%.64s\" must be a path such as /my-book/",
			     base_url);
		goto out;
	}
	s = xcalloc(1, sizeof(*s));
	if (!s) {
		rc = err_set(e, ERR_INTERNAL, "out of memory");
		goto out;
	}
	atomic_init(&s->dirfd, -1);
	pthread_mutex_init(&s->lock, NULL);
	s->dir = xstrdup(dir);
	s->base_len = blen + (base_url[blen - 1] != '/');
	s->base = xmalloc(s->base_len + 1);
	if (!s->dir || !s->base) {
		rc = err_set(e, ERR_INTERNAL, "out of memory");
		goto out;
	}
	memcpy(s->base, base_url, blen);
	s->base[s->base_len - 1] = '/';
	s->base[s->base_len] = '\0';
	int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		rc = err_set(e, ERR_IO, "site directory %.160s: %s", dir, strerror(errno));
		goto out;
	}
	atomic_store(&s->dirfd, fd);
	*out = s;
	s = NULL;
	rc = 0;
out:
	site_close(s);
	return rc;
}

void site_close(site *s)
{
	if (!s)
		return;
	int fd = atomic_load(&s->dirfd);
	if (fd >= 0)
		close(fd);
	for (int i = 0; i < s->nold; i++)
		close(s->old[i]);
	pthread_mutex_destroy(&s->lock);
	xfree(s->base);
	xfree(s->dir);
	xfree(s);
}

static void redirect(http_req *req, const char *location)
{
	http_respond_empty(req, 301);
	http_set_header(req, "Location", location);
	http_set_header(req, "Cache-Control", "no-cache");
}

/* 1 when the validators in the request match (answer 304). */
static int not_modified(http_req *req, const char *etag, const struct stat *st)
{
	const char *inm = http_header(req, "If-None-Match");
	if (inm)
		return etag_listed(inm, etag);
	const char *ims = http_header(req, "If-Modified-Since");
	time_t t;
	return ims && parse_http_date(ims, &t) == 0 && st->st_mtim.tv_sec <= t;
}

/* If-Range: the range applies only while the file is the one the client has. */
static int range_applies(http_req *req, const char *etag, const char *modified)
{
	const char *ir = http_header(req, "If-Range");
	if (!ir)
		return 1;
	if (ir[0] == '"')
		return !strcmp(ir, etag);
	return !strcmp(ir, modified);
}

static void answer_file(http_req *req, int fd, const struct stat *st, const char *name, int status)
{
	char etag[80], modified[40], crange[96];
	site_etag(st, etag, sizeof(etag));
	http_date(st->st_mtim.tv_sec, modified, sizeof(modified));
	uint64_t size = (uint64_t)st->st_size, first = 0, last = size ? size - 1 : 0;
	int ranged = 0;
	if (status == 200 && not_modified(req, etag, st)) {
		close(fd);
		http_respond_empty(req, 304);
		goto headers;
	}
	const char *range = status == 200 && http_method(req) == HTTP_GET ? http_header(req, "Range") : NULL;
	if (range && range_applies(req, etag, modified))
		ranged = parse_range(range, size, &first, &last);
	if (ranged < 0) {
		close(fd);
		snprintf(crange, sizeof(crange), "bytes */%llu", (unsigned long long)size);
		http_respond_error(req, 416, "range_not_satisfiable", "the range is outside the file", NULL);
		http_set_header(req, "Content-Range", crange);
		return;
	}
	if (ranged) {
		status = 206;
		snprintf(crange, sizeof(crange), "bytes %llu-%llu/%llu", (unsigned long long)first,
			 (unsigned long long)last, (unsigned long long)size);
	}
	if (size == 0) {
		close(fd);
		http_respond(req, status, site_content_type(name), "", 0);
	} else {
		http_respond_fd(req, status, site_content_type(name), fd, first, last - first + 1);
	}
	if (ranged)
		http_set_header(req, "Content-Range", crange);
	http_set_header(req, "Accept-Ranges", "bytes");
	http_set_header(req, "X-Content-Type-Options", "nosniff");
headers:
	if (status == 404) {
		http_set_header(req, "Cache-Control", "no-cache");
		return;
	}
	http_set_header(req, "Cache-Control", site_cache_control(name));
	http_set_header(req, "ETag", etag);
	http_set_header(req, "Last-Modified", modified);
}

int site_serve(http_req *req, void *ctx)
{
	site *s = ctx;
	const char *path = http_path(req);
	size_t plen = strlen(path);
	int rc = -1;
	if (s->base_len > 1 && plen + 1 == s->base_len && !strncmp(path, s->base, plen)) {
		redirect(req, s->base); /* "/my-book" → "/my-book/" */
		return 0;
	}
	if (s->base_len > 1 && !strcmp(path, "/")) {
		redirect(req, s->base);
		return 0;
	}
	if (plen < s->base_len || strncmp(path, s->base, s->base_len))
		return -1;
	const char *rel = path + s->base_len;
	size_t n = plen - s->base_len;
	enum path_check pc = site_check_path(rel, n);
	if (pc == PATH_BAD) {
		http_respond_error(req, 400, "bad_request", "the path has a . or .. segment, a backslash or an empty segment",
				   NULL);
		return 0;
	}
	char name[SITE_PATH_MAX];
	struct stat st;
	int fd = -1;
	if (pc == PATH_OK && n < SITE_PATH_MAX) {
		fd = site_find(atomic_load(&s->dirfd), rel, n, name, sizeof(name), &st);
		if (fd < 0 && site_refresh(s))
			fd = site_find(atomic_load(&s->dirfd), rel, n, name, sizeof(name), &st);
	}
	if (fd >= 0) {
		answer_file(req, fd, &st, name, 200);
		rc = 0;
	} else {
		fd = open_beneath(atomic_load(&s->dirfd), "404.html");
		if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
			answer_file(req, fd, &st, "404.html", 404);
			rc = 0;
		} else if (fd >= 0) {
			close(fd);
		}
	}
	return rc;
}
