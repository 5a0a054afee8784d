/* File storage (providers/blob.h): SigV4 presigning against AWS's published
 * example, the key rules, the local store (atomic writes, ranges, ETags,
 * deletes by prefix) and the S3 store against a real S3-compatible server
 * started here on loopback (@20minutes/s3rver, which checks signatures and
 * presigned expiry): multipart uploads, aborts, presigned GETs fetched with
 * libcurl (valid, expired, tampered), a wrong secret, an endpoint that is down. */
#include "unit.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/mem.h"
#include "core/stop.h"
#include "core/timeutil.h"
#include "providers/blob.h"
#include "providers/http_client.h"
#include "providers/sigv4.h"

#define BUCKET "bk-test"

/* ---- SigV4 ---------------------------------------------------------------------- */

/* The example of "Authenticating Requests: Using Query Parameters (AWS
 * Signature Version 4)" in the Amazon S3 API reference. */
static void test_sigv4_aws_example(void **state)
{
	(void)state;
	struct sigv4_presign p = {
		.method = "GET",
		.origin = "https://examplebucket.s3.amazonaws.com",
		.host = "examplebucket.s3.amazonaws.com",
		.path = "/test.txt",
		.access_key = "AKIAIOSFODNN7EXAMPLE",
		.secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		.region = "us-east-1",
		.service = "s3",
		.when = 1369353600, /* 20130524T000000Z */
		.expires_s = 86400,
	};
	char url[2048];
	struct err e = { 0 };
	assert_int_equal(sigv4_presign(&p, url, sizeof(url), &e), 0);
	assert_string_equal(url, "https://examplebucket.s3.amazonaws.com/test.txt"
				 "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
				 "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
				 "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
				 "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");

	/* Limits: the expiry, a buffer too small. */
	p.expires_s = 0;
	assert_int_equal(sigv4_presign(&p, url, sizeof(url), &e), ERR_INVALID);
	p.expires_s = 604801;
	assert_int_equal(sigv4_presign(&p, url, sizeof(url), &e), ERR_INVALID);
	p.expires_s = 60;
	assert_int_equal(sigv4_presign(&p, url, 64, &e), ERR_TOO_LARGE);
}

static void test_sigv4_encode_hash(void **state)
{
	(void)state;
	char out[64];
	assert_int_equal(sigv4_uri_encode("a b/c+d~_.-", 1, out, sizeof(out)), 15);
	assert_string_equal(out, "a%20b/c%2Bd~_.-");
	sigv4_uri_encode("a/b=", 0, out, sizeof(out));
	assert_string_equal(out, "a%2Fb%3D");
	assert_int_equal(sigv4_uri_encode("////", 0, out, 4), 12); /* the whole length, cut output */
	assert_int_equal(strlen(out), 3);
	char h[65];
	sigv4_sha256_hex("", 0, h);
	assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/* ---- local ------------------------------------------------------------------------ */

static char tmp_root[256];

static void rm_rf(const char *path)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", path);
}

static struct blob_store *open_local(char *dir, size_t cap)
{
	snprintf(dir, cap, "%s/data/files", tmp_root);
	struct blob_config cfg = { .kind = "local", .dir = dir };
	struct blob_store *b = NULL;
	struct err e = { 0 };
	if (blob_open(&b, &cfg, NULL, &e))
		print_error("blob_open: %s\n", e.msg);
	assert_non_null(b);
	return b;
}

/* Names in dir (not . and ..), joined by spaces. */
static void list_dir(const char *dir, char *out, size_t cap)
{
	out[0] = '\0';
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	size_t k = 0;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			k += (size_t)snprintf(out + k, cap - k, "%s ", de->d_name);
	closedir(d);
}

static void test_keys(void **state)
{
	(void)state;
	char dir[512];
	struct blob_store *b = open_local(dir, sizeof(dir));
	struct err e = { 0 };
	struct blob_info info;
	const char *bad[] = { "", "/abs", "a//b", "../x", "a/../b", "a/.tmp-1", ".hidden", "sp ace", "a\\b",
			      "dir/", "q?x", "pct%20" };
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		err_clear(&e);
		assert_int_equal(blob_stat(b, bad[i], &info, &e), ERR_INVALID);
	}
	assert_int_equal(blob_delete_prefix(b, "", &e), ERR_INVALID);
	assert_int_equal(blob_delete_prefix(b, "../", &e), ERR_INVALID);
	assert_int_equal(blob_stat(b, "books/x/audio/1-summary.mp3", &info, &e), ERR_NOT_FOUND);
	char url[256];
	assert_int_equal(blob_presign_get(b, "a.mp3", 60, url, sizeof(url), &e), ERR_UNSUPPORTED);
	assert_string_equal(blob_kind(b), "local");

	struct blob_config cfg = { .kind = "ftp", .dir = dir };
	struct blob_store *b2 = NULL;
	assert_int_equal(blob_open(&b2, &cfg, NULL, &e), ERR_INVALID);
	assert_contains(e.msg, "BOOKD_STORAGE");
	blob_close(b);
}

static void test_local_write_read(void **state)
{
	(void)state;
	char dir[512], path[640], names[512];
	struct blob_store *b = open_local(dir, sizeof(dir));
	struct err e = { 0 };
	struct blob_writer *w;
	const char *key = "books/b1/audio/1-summary.mp3";
	assert_int_equal(blob_write_begin(b, key, "audio/mpeg", &w, &e), 0);
	assert_int_equal(blob_write(w, "hello, ", 7, &e), 0);
	struct blob_info info;
	assert_int_equal(blob_stat(b, key, &info, &e), ERR_NOT_FOUND); /* not before commit */
	assert_int_equal(blob_write(w, "world", 5, &e), 0);
	assert_int_equal(blob_write_commit(w, &e), 0);
	assert_int_equal(blob_stat(b, key, &info, &e), 0);
	assert_int_equal(info.size, 12);
	assert_true(info.etag[0] == '"' && info.etag[strlen(info.etag) - 1] == '"');
	assert_true(info.mtime_ms > 0);

	char buf[64];
	size_t got;
	assert_int_equal(blob_read(b, key, 7, 5, buf, &got, &e), 0);
	assert_int_equal(got, 5);
	assert_memory_equal(buf, "world", 5);
	assert_int_equal(blob_read(b, key, 10, 50, buf, &got, &e), 0); /* past the end: what there is */
	assert_int_equal(got, 2);
	assert_int_equal(blob_read(b, key, 100, 5, buf, &got, &e), 0);
	assert_int_equal(got, 0);
	assert_int_equal(blob_read(b, key, -1, 5, buf, &got, &e), ERR_INVALID);

	int fd;
	struct blob_info fi;
	assert_int_equal(blob_open_fd(b, key, &fd, &fi, &e), 0);
	assert_true(fd >= 0);
	assert_string_equal(fi.etag, info.etag);
	assert_int_equal(read(fd, buf, sizeof(buf)), 12);
	close(fd);

	/* Modes: directories 0700, files 0600; no temporary left. */
	struct stat st;
	snprintf(path, sizeof(path), "%s/books/b1/audio", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	snprintf(path, sizeof(path), "%s/%s", dir, key);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/books/b1/audio", dir);
	list_dir(path, names, sizeof(names));
	assert_string_equal(names, "1-summary.mp3 ");

	/* A rewrite: readers see the old file whole until the commit, then the
	 * new one; the ETag changes. */
	assert_int_equal(blob_write_begin(b, key, "audio/mpeg", &w, &e), 0);
	assert_int_equal(blob_write(w, "HELLO", 5, &e), 0);
	assert_int_equal(blob_read(b, key, 0, sizeof(buf), buf, &got, &e), 0);
	assert_int_equal(got, 12);
	assert_memory_equal(buf, "hello, world", 12);
	assert_int_equal(blob_write(w, ", NEW WORLD", 11, &e), 0);
	assert_int_equal(blob_write_commit(w, &e), 0);
	assert_int_equal(blob_read(b, key, 0, sizeof(buf), buf, &got, &e), 0);
	assert_int_equal(got, 16);
	assert_memory_equal(buf, "HELLO, NEW WORLD", 16);
	struct blob_info info2;
	assert_int_equal(blob_stat(b, key, &info2, &e), 0);
	assert_string_not_equal(info2.etag, info.etag);

	/* An aborted write leaves nothing: not the key, not a temporary. */
	assert_int_equal(blob_write_begin(b, "books/b1/audio/2-summary.mp3", NULL, &w, &e), 0);
	assert_int_equal(blob_write(w, "partial", 7, &e), 0);
	blob_write_abort(w);
	assert_int_equal(blob_stat(b, "books/b1/audio/2-summary.mp3", &info, &e), ERR_NOT_FOUND);
	list_dir(path, names, sizeof(names));
	assert_string_equal(names, "1-summary.mp3 ");

	assert_int_equal(blob_put(b, "books/b1/audio/1-summary.json", "application/json", "[]", 2, &e), 0);
	assert_int_equal(blob_ping(b, &e), 0);
	blob_close(b);
}

static void test_local_delete_prefix(void **state)
{
	(void)state;
	char dir[512];
	struct blob_store *b = open_local(dir, sizeof(dir));
	struct err e = { 0 };
	struct blob_info info;
	const char *keys[] = { "books/b1/audio/1-summary.mp3", "books/b1/audio/1-chapter.mp3",
			       "books/b1/audio/2-summary.mp3", "books/b1/cover.jpg", "books/b2/audio/1-summary.mp3" };
	for (size_t i = 0; i < ARRAY_LEN(keys); i++)
		assert_int_equal(blob_put(b, keys[i], NULL, "x", 1, &e), 0);
	/* A name prefix within a directory. */
	assert_int_equal(blob_delete_prefix(b, "books/b1/audio/1-", &e), 0);
	assert_int_equal(blob_stat(b, keys[0], &info, &e), ERR_NOT_FOUND);
	assert_int_equal(blob_stat(b, keys[1], &info, &e), ERR_NOT_FOUND);
	assert_int_equal(blob_stat(b, keys[2], &info, &e), 0);
	/* A whole book. */
	assert_int_equal(blob_delete_prefix(b, "books/b1/", &e), 0);
	assert_int_equal(blob_stat(b, keys[2], &info, &e), ERR_NOT_FOUND);
	assert_int_equal(blob_stat(b, keys[3], &info, &e), ERR_NOT_FOUND);
	assert_int_equal(blob_stat(b, keys[4], &info, &e), 0);
	assert_int_equal(blob_delete_prefix(b, "books/none/", &e), 0); /* nothing there: fine */
	char path[640];
	snprintf(path, sizeof(path), "%s/books/b1", dir);
	assert_int_equal(access(path, F_OK), -1);
	blob_close(b);
}

/* ---- S3 against s3rver ------------------------------------------------------------ */

static pid_t s3rver_pid;
static int s3rver_port;
static char s3_endpoint[64];

/* Starts s3rver (tests/s3, installed by scripts/deps.sh) on a free loopback
 * port with a fresh directory and the bucket BUCKET; fails the run if it
 * cannot. */
static int start_s3rver(void)
{
	const char *dir = getenv("BOOKD_S3RVER_DIR") ? getenv("BOOKD_S3RVER_DIR") : "tests/s3";
	char probe[512];
	snprintf(probe, sizeof(probe), "%s/node_modules/@20minutes/s3rver/package.json", dir);
	if (access(probe, R_OK)) {
		fprintf(stderr, "test_blob: %s is missing: run scripts/deps.sh (npm @20minutes/s3rver 4.0.4)\n", probe);
		return -1;
	}
	char data[300], script[1024];
	snprintf(data, sizeof(data), "%s/s3rver", tmp_root);
	snprintf(script, sizeof(script),
		 "require('@20minutes/s3rver/lib/cli.js').parseAsync(['node','s3rver','-d','%s','-a','127.0.0.1',"
		 "'-p','0','-s','--configure-bucket','" BUCKET "']).catch(e=>{console.error(e);process.exit(1)})",
		 data);
	int fds[2];
	if (pipe(fds))
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		if (chdir(dir))
			_exit(126);
		execlp("node", "node", "-e", script, (char *)NULL);
		fprintf(stderr, "test_blob: cannot run node: %s\n", strerror(errno));
		_exit(127);
	}
	close(fds[1]);
	s3rver_pid = pid;
	char out[4096] = "";
	size_t n = 0;
	int64_t until = time_now_ms() + 20000;
	while (time_now_ms() < until && n < sizeof(out) - 1) {
		ssize_t k = read(fds[0], out + n, sizeof(out) - 1 - n);
		if (k <= 0)
			break;
		n += (size_t)k;
		out[n] = '\0';
		const char *at = strstr(out, "listening on 127.0.0.1:");
		if (at && strchr(at, '\n')) {
			s3rver_port = (int)strtol(at + strlen("listening on 127.0.0.1:"), NULL, 10);
			break;
		}
	}
	close(fds[0]);
	if (s3rver_port <= 0) {
		fprintf(stderr, "test_blob: s3rver did not start (node >= 20 needed); it said: %s\n", out);
		return -1;
	}
	snprintf(s3_endpoint, sizeof(s3_endpoint), "http://127.0.0.1:%d", s3rver_port);
	return 0;
}

static struct blob_store *open_s3(const char *endpoint, const char *secret, int path_style, struct err *e)
{
	struct blob_config cfg = {
		.kind = "s3",
		.endpoint = endpoint,
		.bucket = BUCKET,
		.region = "us-east-1",
		.access_key = "S3RVER",
		.secret_key = secret,
		.path_style = path_style,
		.timeout_s = 10,
	};
	struct blob_store *b = NULL;
	if (blob_open(&b, &cfg, NULL, e))
		return NULL;
	return b;
}

static struct blob_store *s3_store(void)
{
	struct err e = { 0 };
	struct blob_store *b = open_s3(s3_endpoint, "S3RVER", 1, &e);
	if (!b)
		print_error("blob_open s3: %s\n", e.msg);
	assert_non_null(b);
	return b;
}

static void test_s3_small(void **state)
{
	(void)state;
	struct blob_store *b = s3_store();
	struct err e = { 0 };
	struct blob_info info;
	const char *key = "books/b1/audio/1-summary.json";
	assert_int_equal(blob_ping(b, &e), 0);
	assert_int_equal(blob_stat(b, key, &info, &e), ERR_NOT_FOUND);
	assert_int_equal(blob_put(b, key, "application/json", "[{\"word\":\"hi\"}]", 15, &e), 0);
	assert_int_equal(blob_stat(b, key, &info, &e), 0);
	assert_int_equal(info.size, 15);
	assert_true(info.etag[0] == '"');
	assert_true(info.mtime_ms > 0);
	char buf[64];
	size_t got;
	assert_int_equal(blob_read(b, key, 3, 4, buf, &got, &e), 0);
	assert_int_equal(got, 4);
	assert_memory_equal(buf, "word", 4);
	assert_int_equal(blob_read(b, key, 10, 50, buf, &got, &e), 0);
	assert_int_equal(got, 5);
	assert_int_equal(blob_read(b, key, 15, 5, buf, &got, &e), 0); /* at the end */
	assert_int_equal(got, 0);
	int fd;
	assert_int_equal(blob_open_fd(b, key, &fd, &info, &e), ERR_UNSUPPORTED);
	/* An empty object is an object. */
	assert_int_equal(blob_put(b, "books/b1/empty", NULL, "", 0, &e), 0);
	assert_int_equal(blob_stat(b, "books/b1/empty", &info, &e), 0);
	assert_int_equal(info.size, 0);
	assert_string_equal(blob_kind(b), "s3");
	blob_close(b);
}

static unsigned char pattern_at(size_t i)
{
	return (unsigned char)((i * 2654435761u) >> 13);
}

static void write_pattern(struct blob_writer *w, size_t total)
{
	static unsigned char chunk[65536 + 7];
	struct err e = { 0 };
	for (size_t off = 0; off < total;) {
		size_t n = MIN(sizeof(chunk), total - off);
		for (size_t i = 0; i < n; i++)
			chunk[i] = pattern_at(off + i);
		if (blob_write(w, chunk, n, &e))
			print_error("blob_write: %s\n", e.msg);
		off += n;
	}
}

static void test_s3_multipart(void **state)
{
	(void)state;
	struct blob_store *b = s3_store();
	struct err e = { 0 };
	struct blob_info info;
	const char *key = "books/b1/audio/1-chapter.mp3";
	size_t total = ((size_t)11 << 20) + 12345; /* three parts, the last short */
	struct blob_writer *w;
	assert_int_equal(blob_write_begin(b, key, "audio/mpeg", &w, &e), 0);
	write_pattern(w, total);
	/* Two parts are uploaded, the object is not there yet. */
	assert_int_equal(blob_stat(b, key, &info, &e), ERR_NOT_FOUND);
	if (blob_write_commit(w, &e))
		print_error("commit: %s\n", e.msg);
	assert_int_equal(e.code, 0);
	assert_int_equal(blob_stat(b, key, &info, &e), 0);
	assert_int_equal((size_t)info.size, total);

	/* A range across the first part boundary, and the tail. */
	size_t n = 100000, got;
	unsigned char *buf = xmalloc(n);
	size_t off = ((size_t)5 << 20) - 50000;
	assert_int_equal(blob_read(b, key, (int64_t)off, n, buf, &got, &e), 0);
	assert_int_equal(got, n);
	for (size_t i = 0; i < n; i++)
		if (buf[i] != pattern_at(off + i))
			fail_msg("byte %zu differs", off + i);
	assert_int_equal(blob_read(b, key, (int64_t)(total - 10), n, buf, &got, &e), 0);
	assert_int_equal(got, 10);
	assert_int_equal(buf[9], pattern_at(total - 1));
	xfree(buf);

	/* An aborted multipart write leaves nothing, and an earlier object
	 * under the key stays whole. */
	assert_int_equal(blob_write_begin(b, key, "audio/mpeg", &w, &e), 0);
	write_pattern(w, ((size_t)6 << 20));
	blob_write_abort(w);
	assert_int_equal(blob_stat(b, key, &info, &e), 0);
	assert_int_equal((size_t)info.size, total);
	assert_int_equal(blob_write_begin(b, "books/b1/audio/9-chapter.mp3", "audio/mpeg", &w, &e), 0);
	write_pattern(w, ((size_t)6 << 20));
	blob_write_abort(w);
	assert_int_equal(blob_stat(b, "books/b1/audio/9-chapter.mp3", &info, &e), ERR_NOT_FOUND);
	blob_close(b);
}

static void test_s3_delete_prefix(void **state)
{
	(void)state;
	struct blob_store *b = s3_store();
	struct err e = { 0 };
	struct blob_info info;
	const char *keys[] = { "books/d1/audio/1-summary.mp3", "books/d1/audio/2-summary.mp3", "books/d1/cover.jpg",
			       "books/d10/audio/1-summary.mp3", "books/d2/audio/1-summary.mp3" };
	for (size_t i = 0; i < ARRAY_LEN(keys); i++)
		assert_int_equal(blob_put(b, keys[i], NULL, "x", 1, &e), 0);
	assert_int_equal(blob_delete_prefix(b, "books/d1/", &e), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(blob_stat(b, keys[i], &info, &e), ERR_NOT_FOUND);
	assert_int_equal(blob_stat(b, keys[3], &info, &e), 0); /* "d10" is not under "d1/" */
	assert_int_equal(blob_stat(b, keys[4], &info, &e), 0);
	assert_int_equal(blob_delete_prefix(b, "books/none/", &e), 0);
	blob_close(b);
}

struct fetched {
	char body[256];
	size_t n;
};

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
	struct fetched *f = ud;
	size_t n = size * nmemb, k = MIN(n, sizeof(f->body) - 1 - f->n);
	memcpy(f->body + f->n, p, k);
	f->n += k;
	f->body[f->n] = '\0';
	return n;
}

/* Fetches url without credentials: the status (0 when unreachable). */
static long fetch(const char *url, struct fetched *f)
{
	memset(f, 0, sizeof(*f));
	CURL *h = curl_easy_init();
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, f);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
	long status = 0;
	if (curl_easy_perform(h) == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	return status;
}

static void test_s3_presign(void **state)
{
	(void)state;
	struct blob_store *b = s3_store();
	struct err e = { 0 };
	const char *key = "books/p1/audio/1-summary.mp3";
	assert_int_equal(blob_put(b, key, "audio/mpeg", "ID3 fake mp3", 12, &e), 0);
	char url[2048], bad[2048];
	struct fetched f;
	assert_int_equal(blob_presign_get(b, key, 300, url, sizeof(url), &e), 0);
	assert_true(!strncmp(url, s3_endpoint, strlen(s3_endpoint)));
	assert_contains(url, "/" BUCKET "/books/p1/audio/1-summary.mp3?X-Amz-Algorithm=AWS4-HMAC-SHA256");
	assert_int_equal(fetch(url, &f), 200);
	assert_string_equal(f.body, "ID3 fake mp3");

	/* Tampered: another key, a changed signature, a longer expiry. */
	snprintf(bad, sizeof(bad), "%s", url);
	*strstr(bad, "1-summary") = '2';
	assert_int_equal(fetch(bad, &f), 403);
	snprintf(bad, sizeof(bad), "%s", url);
	char *sig = strstr(bad, "X-Amz-Signature=") + 16;
	sig[0] = sig[0] == 'a' ? 'b' : 'a';
	assert_int_equal(fetch(bad, &f), 403);
	assert_contains(f.body, "SignatureDoesNotMatch");
	snprintf(bad, sizeof(bad), "%s", url);
	char *exp = strstr(bad, "X-Amz-Expires=300");
	memcpy(exp, "X-Amz-Expires=900", 17);
	assert_int_equal(fetch(bad, &f), 403);

	/* Expired. */
	assert_int_equal(blob_presign_get(b, key, 1, url, sizeof(url), &e), 0);
	struct timespec ts = { 2, 200000000 };
	nanosleep(&ts, NULL);
	assert_int_equal(fetch(url, &f), 403);
	assert_contains(f.body, "expired");
	assert_int_equal(blob_presign_get(b, key, 0, url, sizeof(url), &e), ERR_INVALID);
	blob_close(b);
}

static void test_s3_wrong_secret(void **state)
{
	(void)state;
	struct err e = { 0 };
	struct blob_store *b = open_s3(s3_endpoint, "not-the-secret", 1, &e);
	assert_non_null(b);
	assert_int_equal(blob_put(b, "books/w/x", NULL, "x", 1, &e), ERR_UNAVAILABLE);
	assert_contains(e.msg, "403 SignatureDoesNotMatch");
	assert_contains(e.msg, "BOOKD_S3_SECRET_KEY");
	err_clear(&e);
	assert_int_equal(blob_ping(b, &e), ERR_UNAVAILABLE);
	assert_contains(e.msg, "403");
	blob_close(b);
}

static void test_s3_down(void **state)
{
	(void)state;
	/* A port nothing listens on: s3rver's, once it is stopped, is not
	 * guaranteed free, so take a fresh one and close it. */
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	socklen_t al = sizeof(a);
	getsockname(s, (struct sockaddr *)&a, &al);
	close(s);
	char ep[64];
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", ntohs(a.sin_port));
	struct err e = { 0 };
	struct blob_store *b = open_s3(ep, "S3RVER", 1, &e);
	assert_non_null(b);
	int64_t t0 = time_now_ms();
	struct blob_writer *w;
	assert_int_equal(blob_write_begin(b, "books/x/a.mp3", "audio/mpeg", &w, &e), 0);
	assert_int_equal(blob_write(w, "abc", 3, &e), 0);
	assert_int_equal(blob_write_commit(w, &e), ERR_UNAVAILABLE);
	assert_int_equal(blob_ping(b, &e), ERR_UNAVAILABLE);
	struct blob_info info;
	assert_int_equal(blob_stat(b, "books/x/a.mp3", &info, &e), ERR_UNAVAILABLE);
	assert_true(time_now_ms() - t0 < 5000);
	blob_close(b);
}

/* Addressing and settings, without the network. */
static void test_s3_addressing(void **state)
{
	(void)state;
	struct err e = { 0 };
	char url[2048];
	struct blob_store *b = open_s3("https://s3.eu-west-1.amazonaws.com/", "secret", 0, &e);
	assert_non_null(b);
	assert_int_equal(blob_presign_get(b, "books/1/a.mp3", 60, url, sizeof(url), &e), 0);
	assert_contains(url, "https://" BUCKET ".s3.eu-west-1.amazonaws.com/books/1/a.mp3?X-Amz-");
	blob_close(b);
	b = open_s3("https://minio.example:9000/s3", "secret", 1, &e);
	assert_non_null(b);
	assert_int_equal(blob_presign_get(b, "a.mp3", 60, url, sizeof(url), &e), 0);
	assert_contains(url, "https://minio.example:9000/s3/" BUCKET "/a.mp3?X-Amz-");
	blob_close(b);

	assert_null(open_s3("http://127.0.0.1:9000", "secret", 0, &e)); /* virtual-hosted needs a name */
	assert_int_equal(e.code, ERR_INVALID);
	assert_contains(e.msg, "BOOKD_S3_PATH_STYLE");
	assert_null(open_s3("ftp://x", "secret", 1, &e));
	assert_contains(e.msg, "BOOKD_S3_ENDPOINT");
	assert_null(open_s3("http://x", "", 1, &e));
	assert_contains(e.msg, "BOOKD_S3_SECRET_KEY");
	struct blob_config cfg = { .kind = "s3", .endpoint = "http://x", .bucket = "Bad_Bucket",
				   .access_key = "a", .secret_key = "b", .path_style = 1 };
	struct blob_store *b2 = NULL;
	assert_int_equal(blob_open(&b2, &cfg, NULL, &e), ERR_INVALID);
	assert_contains(e.msg, "BOOKD_S3_BUCKET");
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmp_root, sizeof(tmp_root), "/tmp/bookd-blob-XXXXXX");
	if (!mkdtemp(tmp_root) || phttp_global_init())
		return -1;
	return start_s3rver();
}

static int teardown(void **state)
{
	(void)state;
	if (s3rver_pid > 0) {
		kill(s3rver_pid, SIGTERM);
		waitpid(s3rver_pid, NULL, 0);
	}
	rm_rf(tmp_root);
	phttp_global_cleanup();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sigv4_aws_example),
		cmocka_unit_test(test_sigv4_encode_hash),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_local_write_read),
		cmocka_unit_test(test_local_delete_prefix),
		cmocka_unit_test(test_s3_addressing),
		cmocka_unit_test(test_s3_small),
		cmocka_unit_test(test_s3_multipart),
		cmocka_unit_test(test_s3_delete_prefix),
		cmocka_unit_test(test_s3_presign),
		cmocka_unit_test(test_s3_wrong_secret),
		cmocka_unit_test(test_s3_down),
	};
	return cmocka_run_group_tests_name("blob", tests, setup, teardown);
}
