/* Unit tests for the static site's pure parts (http/site.c, included so its
 * static functions are reachable; its exported names are renamed so they do
 * not clash with the library's): path checks, content types, hashed names,
 * validators, ranges, and the lookup below the directory by both openat2 and
 * the walk by hand, symbolic links refused. */
#include "unit.h"

#define site_open t_site_open
#define site_close t_site_close
#define site_serve t_site_serve
#define site_parse_range t_site_parse_range
#include "http/site.c"

#include <ftw.h>

static void test_paths(void **state)
{
	(void)state;
	assert_int_equal(site_check_path("", 0), PATH_OK);
	assert_int_equal(site_check_path("docs/intro", 10), PATH_OK);
	assert_int_equal(site_check_path("docs/intro/", 11), PATH_OK);
	assert_int_equal(site_check_path("docs/..", 7), PATH_BAD);
	assert_int_equal(site_check_path("../etc/passwd", 13), PATH_BAD);
	assert_int_equal(site_check_path("a/./b", 5), PATH_BAD);
	assert_int_equal(site_check_path("a//b", 4), PATH_BAD);
	assert_int_equal(site_check_path("/etc", 4), PATH_BAD);
	assert_int_equal(site_check_path("a\\b", 3), PATH_BAD);
	assert_int_equal(site_check_path("a\tb", 3), PATH_BAD);
	assert_int_equal(site_check_path(".git/config", 11), PATH_HIDDEN);
	assert_int_equal(site_check_path("x/.env", 6), PATH_HIDDEN);
	assert_int_equal(site_check_path("x/..y", 5), PATH_HIDDEN);
	assert_int_equal(site_check_path("a.b/c..d", 8), PATH_OK);
}

static void test_types_and_caching(void **state)
{
	(void)state;
	assert_string_equal(site_content_type("index.html"), "text/html; charset=utf-8");
	assert_string_equal(site_content_type("assets/js/main.3f2a1b9c.js"), "text/javascript; charset=utf-8");
	assert_string_equal(site_content_type("a/font.WOFF2"), "font/woff2");
	assert_string_equal(site_content_type("img/logo.svg"), "image/svg+xml");
	assert_string_equal(site_content_type("x.tar.unknown"), "application/octet-stream");
	assert_string_equal(site_content_type("noext"), "application/octet-stream");
	assert_string_equal(site_content_type("dir.d/noext"), "application/octet-stream");
	assert_true(site_is_hashed("assets/js/main.3f2a1b9c.js"));
	assert_true(site_is_hashed("assets/css/styles.abcd1234.css"));
	assert_true(site_is_hashed("runtime~main.0123456789abcdef.js"));
	assert_true(site_is_hashed("assets/images/logo-0123abcd.png"));
	assert_false(site_is_hashed("17896441.js"));		/* a name, not a hash */
	assert_false(site_is_hashed("main.3f2a1b9.js"));	/* 7 digits */
	assert_false(site_is_hashed("img/logo.svg"));
	assert_false(site_is_hashed("main.3f2a1b9g.js"));
	assert_string_equal(site_cache_control("docs/intro/index.html"), "no-cache");
	assert_string_equal(site_cache_control("page.0123abcd.html"), "no-cache");
	assert_string_equal(site_cache_control("assets/js/main.3f2a1b9c.js"), "public, max-age=31536000, immutable");
	assert_string_equal(site_cache_control("img/logo.svg"), "public, max-age=600");
}

static void test_validators(void **state)
{
	(void)state;
	time_t t;
	char buf[40];
	assert_int_equal(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT", &t), 0);
	assert_int_equal((long)t, 784111777L);
	http_date(t, buf, sizeof(buf));
	assert_string_equal(buf, "Sun, 06 Nov 1994 08:49:37 GMT");
	assert_int_equal(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", &t), -1);
	assert_int_equal(parse_http_date("Sun, 06 Nov 1994 08:49:37 UTC", &t), -1);
	assert_int_equal(parse_http_date("Sun, 06 Foo 1994 08:49:37 GMT", &t), -1);
	assert_int_equal(parse_http_date("", &t), -1);
	assert_true(etag_listed("\"a-1\"", "\"a-1\""));
	assert_true(etag_listed("\"x\", W/\"a-1\"", "\"a-1\""));
	assert_true(etag_listed("*", "\"a-1\""));
	assert_false(etag_listed("\"a-2\"", "\"a-1\""));
	assert_false(etag_listed("\"a-1", "\"a-1\""));
	assert_false(etag_listed("a-1", "\"a-1\""));
}

static void test_ranges(void **state)
{
	(void)state;
	uint64_t a, b;
	assert_int_equal(parse_range("bytes=0-9", 100, &a, &b), 1);
	assert_true(a == 0 && b == 9);
	assert_int_equal(parse_range("bytes=90-", 100, &a, &b), 1);
	assert_true(a == 90 && b == 99);
	assert_int_equal(parse_range("bytes=-10", 100, &a, &b), 1);
	assert_true(a == 90 && b == 99);
	assert_int_equal(parse_range("bytes=-1000", 100, &a, &b), 1);
	assert_true(a == 0 && b == 99);
	assert_int_equal(parse_range("bytes=50-5000", 100, &a, &b), 1);
	assert_true(a == 50 && b == 99);
	assert_int_equal(parse_range("bytes=100-", 100, &a, &b), -1);
	assert_int_equal(parse_range("bytes=-0", 100, &a, &b), -1);
	assert_int_equal(parse_range("bytes=0-1,5-6", 100, &a, &b), 0);
	assert_int_equal(parse_range("bytes=9-1", 100, &a, &b), 0);
	assert_int_equal(parse_range("items=0-1", 100, &a, &b), 0);
	assert_int_equal(parse_range("bytes=x-1", 100, &a, &b), 0);
	assert_int_equal(parse_range("bytes=99999999999999999999999-", 100, &a, &b), 0);
}

static char root[256];

static void put(const char *rel, const char *text)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void sub(const char *rel)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	assert_int_equal(mkdir(p, 0755), 0);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

/* The name found for `rel`, or "-" when none. */
static const char *find(int dirfd, const char *rel)
{
	static char name[SITE_PATH_MAX];
	struct stat st;
	int fd = site_find(dirfd, rel, strlen(rel), name, sizeof(name), &st);
	if (fd < 0)
		return "-";
	close(fd);
	return name;
}

static void lookups(int dirfd)
{
	assert_string_equal(find(dirfd, ""), "index.html");
	assert_string_equal(find(dirfd, "docs/intro"), "docs/intro/index.html");
	assert_string_equal(find(dirfd, "docs/intro/"), "docs/intro/index.html");
	assert_string_equal(find(dirfd, "docs/page"), "docs/page.html");
	assert_string_equal(find(dirfd, "docs/page.html"), "docs/page.html");
	assert_string_equal(find(dirfd, "docs/empty"), "-"); /* a directory without an index */
	assert_string_equal(find(dirfd, "docs/nope"), "-");
	assert_string_equal(find(dirfd, "out"), "-");	   /* a link to a directory outside */
	assert_string_equal(find(dirfd, "out/secret"), "-");
	assert_string_equal(find(dirfd, "link.html"), "-"); /* a link inside, to a file inside */
	assert_string_equal(find(dirfd, "fifo"), "-");
}

static void test_lookup(void **state)
{
	(void)state;
	char outside[300];
	snprintf(root, sizeof(root), "/tmp/bookd-site-XXXXXX");
	assert_non_null(mkdtemp(root));
	snprintf(outside, sizeof(outside), "%s-out", root);
	assert_int_equal(mkdir(outside, 0755), 0);
	char secret[400];
	snprintf(secret, sizeof(secret), "%s/secret", outside);
	FILE *f = fopen(secret, "w");
	assert_non_null(f);
	fputs("s", f);
	fclose(f);
	snprintf(root + strlen(root), sizeof(root) - strlen(root), "/site");
	assert_int_equal(mkdir(root, 0755), 0);
	put("index.html", "home");
	sub("docs");
	sub("docs/intro");
	sub("docs/empty");
	put("docs/intro/index.html", "intro");
	put("docs/page.html", "page");
	char p[512];
	snprintf(p, sizeof(p), "%s/out", root);
	assert_int_equal(symlink(outside, p), 0);
	snprintf(p, sizeof(p), "%s/link.html", root);
	assert_int_equal(symlink("index.html", p), 0);
	snprintf(p, sizeof(p), "%s/fifo", root);
	assert_int_equal(mkfifo(p, 0600), 0);

	int dirfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(dirfd >= 0);
	atomic_store(&use_openat2, 1);
	lookups(dirfd);
	atomic_store(&use_openat2, 0); /* the walk by hand */
	lookups(dirfd);
	atomic_store(&use_openat2, 1);
	close(dirfd);

	/* site_open: a missing directory, a bad prefix. */
	struct err e = { 0 };
	site *s = NULL;
	assert_int_equal(t_site_open(&s, "/nonexistent/bookd-site", "/", &e), ERR_IO);
	assert_null(s);
	assert_int_equal(t_site_open(&s, root, "/a/../b/", &e), ERR_INVALID);
	assert_int_equal(t_site_open(&s, root, "/my-book", &e), 0);
	assert_string_equal(s->base, "/my-book/");
	t_site_close(s);

	*strrchr(root, '/') = '\0';
	nftw(root, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	nftw(outside, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_types_and_caching),
		cmocka_unit_test(test_validators),
		cmocka_unit_test(test_ranges),
		cmocka_unit_test(test_lookup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
