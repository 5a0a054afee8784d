/*
 * S3-compatible storage through the provider HTTP client, each request
 * signed by libcurl (CURLOPT_AWS_SIGV4) with the payload's SHA-256 in
 * x-amz-content-sha256; presigned GET URLs are signed by sigv4.c.
 *
 * Addressing: path-style (endpoint/bucket/key, what MinIO and most
 * S3-compatible servers want) or virtual-hosted (bucket.endpoint/key, what
 * AWS prefers; it needs a host name, not an IP address).
 *
 * Writes: a writer keeps at most one part (5 MiB, S3's smallest) in memory.
 * An object that ends within its first part is one PUT; a longer one is a
 * multipart upload (CreateMultipartUpload, UploadPart per 5 MiB,
 * CompleteMultipartUpload), aborted on any failure. Either way the object
 * appears under its key whole, at the last request, or not at all.
 */
#include "blob_int.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../core/buf.h"
#include "../core/mem.h"
#include "../core/timeutil.h"
#include "http_client.h"
#include "sigv4.h"

#define PART_SIZE ((size_t)5 << 20)
#define MAX_PARTS 10000
#define READ_CHUNK ((size_t)8 << 20)
#define URL_CAP 4096
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct s3 {
	struct phttp *http;
	char *origin;	   /* scheme://host[:port] (virtual-hosted: the bucket's host) */
	char *host;	   /* the Host header */
	char *bucket_path; /* "/<bucket>" path-style (after the endpoint's own path), "" virtual-hosted */
	char *bucket, *access, *secret, *sigv4;
	long timeout_ms;
};

struct part {
	char etag[80];
};

struct s3_writer {
	struct blob_writer base;
	struct s3 *s;
	char key[600];
	char ctype[128];
	char *buf;
	size_t used, cap;
	char upload_id[512];
	struct part *parts;
	int nparts, parts_cap;
	int failed;
};

/* What one request learned besides its body. */
struct call {
	char etag[80];
	int64_t length, mtime_ms;
	char code[64], message[200];
};

/* ---- small XML reading (S3's answers are flat and machine-written) --------------- */

static size_t xml_unescape(const char *p, size_t n, char *out, size_t cap)
{
	static const struct {
		const char *ent;
		char c;
	} ents[] = { { "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' }, { "&quot;", '"' }, { "&apos;", '\'' } };
	size_t k = 0;
	for (size_t i = 0; i < n;) {
		char c = p[i];
		size_t adv = 1;
		if (c == '&')
			for (size_t j = 0; j < ARRAY_LEN(ents); j++) {
				size_t el = strlen(ents[j].ent);
				if (n - i >= el && !memcmp(p + i, ents[j].ent, el)) {
					c = ents[j].c;
					adv = el;
					break;
				}
			}
		if (k + 1 >= cap)
			return (size_t)-1;
		out[k++] = c;
		i += adv;
	}
	out[k] = '\0';
	return k;
}

/* The text of the next <tag>…</tag> at or after *from: 1 found, 0 none,
 * -1 longer than cap. *from moves past it. */
static int xml_next(const char *body, const char **from, const char *tag, char *out, size_t cap)
{
	char open[64], close[64];
	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	const char *a = strstr(*from ? *from : body, open);
	if (!a)
		return 0;
	a += strlen(open);
	const char *b = strstr(a, close);
	if (!b)
		return 0;
	*from = b + strlen(close);
	return xml_unescape(a, (size_t)(b - a), out, cap) == (size_t)-1 ? -1 : 1;
}

/* ---- requests ----------------------------------------------------------------------- */

static void on_header(void *ctx, const char *line, size_t n)
{
	struct call *c = ctx;
	char v[256];
	if (n >= 5 && !strncmp(line, "HTTP/", 5)) {
		c->etag[0] = '\0';
		c->length = -1;
		c->mtime_ms = 0;
		return;
	}
	const char *colon = memchr(line, ':', n);
	if (!colon)
		return;
	size_t name = (size_t)(colon - line), k = name + 1;
	while (k < n && line[k] == ' ')
		k++;
	size_t vn = n - k;
	while (vn && (line[k + vn - 1] == '\r' || line[k + vn - 1] == '\n' || line[k + vn - 1] == ' '))
		vn--;
	if (vn >= sizeof(v))
		return;
	memcpy(v, line + k, vn);
	v[vn] = '\0';
	if (name == 4 && !strncasecmp(line, "ETag", 4))
		snprintf(c->etag, sizeof(c->etag), "%.79s", v);
	else if (name == 14 && !strncasecmp(line, "Content-Length", 14))
		c->length = strtoll(v, NULL, 10);
	else if (name == 13 && !strncasecmp(line, "Last-Modified", 13)) {
		time_t t = curl_getdate(v, NULL);
		c->mtime_ms = t == (time_t)-1 ? 0 : (int64_t)t * 1000;
	}
}

static void on_refused(void *ctx, long status, const char *body, size_t n)
{
	struct call *c = ctx;
	(void)status, (void)n;
	const char *from = NULL;
	if (xml_next(body, &from, "Code", c->code, sizeof(c->code)) != 1)
		c->code[0] = '\0';
	from = NULL;
	if (xml_next(body, &from, "Message", c->message, sizeof(c->message)) != 1)
		c->message[0] = '\0';
}

/* One signed request. A 404 is ERR_NOT_FOUND; a refusal names S3's error
 * code; anything else is phttp's ERR_UNAVAILABLE. */
static int s3_request(struct s3 *s, const char *method, const char *url, const char *what, const char *ctype,
		      const char *range, const void *body, size_t n, struct call *c, struct phttp_response *resp,
		      struct err *e)
{
	memset(c, 0, sizeof(*c));
	c->length = -1;
	char sha[65], h_sha[96], h_type[160], h_range[96];
	const char *headers[3];
	int nh = 0;
	if (body)
		sigv4_sha256_hex(body, n, sha);
	snprintf(h_sha, sizeof(h_sha), "x-amz-content-sha256: %s", body ? sha : EMPTY_SHA256);
	headers[nh++] = h_sha;
	if (ctype) {
		snprintf(h_type, sizeof(h_type), "Content-Type: %s", ctype);
		headers[nh++] = h_type;
	}
	if (range) {
		snprintf(h_range, sizeof(h_range), "Range: %s", range);
		headers[nh++] = h_range;
	}
	struct phttp_request req = {
		.url = url,
		.headers = headers,
		.nheaders = nh,
		.body = body ? body : (!strcmp(method, "POST") ? "" : NULL),
		.body_len = body ? n : 0,
		.deadline_ms = time_now_ms() + s->timeout_ms,
		.ctx = c,
		.method = strcmp(method, "GET") && strcmp(method, "POST") ? method : NULL,
		.aws_sigv4 = s->sigv4,
		.aws_key = s->access,
		.aws_secret = s->secret,
		.on_header = on_header,
		.on_refused = on_refused,
	};
	int rc = phttp_call(s->http, &req, resp, e);
	if (!rc)
		return 0;
	if (resp->status == 404)
		return err_set(e, ERR_NOT_FOUND, "no stored file %s", what);
	if (resp->status >= 400 && resp->status < 500 && resp->status != 408 && resp->status != 429) {
		const char *hint = resp->status == 403 ? "; check BOOKD_S3_ACCESS_KEY and BOOKD_S3_SECRET_KEY" : "";
		return err_set(e, ERR_UNAVAILABLE, "s3 refused %s %s: %ld %s%s%.160s%s%s", method, what, resp->status,
			       c->code[0] ? c->code : "", c->message[0] ? " (" : "", c->message,
			       c->message[0] ? ")" : "", hint);
	}
	return rc;
}

static int object_url(struct s3 *s, const char *key, const char *query, char *out, size_t cap, struct err *e)
{
	char enc[1600];
	if (sigv4_uri_encode(key, 1, enc, sizeof(enc)) >= sizeof(enc))
		return err_set(e, ERR_INVALID, "storage key too long");
	int n = snprintf(out, cap, "%s%s/%s%s%s", s->origin, s->bucket_path, enc, query ? "?" : "", query ? query : "");
	if (n < 0 || (size_t)n >= cap)
		return err_set(e, ERR_INVALID, "storage URL too long");
	return 0;
}

/* ---- open / close ------------------------------------------------------------------- */

static int valid_bucket(const char *b)
{
	size_t n = strlen(b);
	if (n < 3 || n > 63)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((b[i] >= 'a' && b[i] <= 'z') || (b[i] >= '0' && b[i] <= '9') || b[i] == '-' || b[i] == '.'))
			return 0;
	return b[0] != '-' && b[0] != '.' && b[n - 1] != '-' && b[n - 1] != '.';
}

static void s3_close(void *self)
{
	struct s3 *s = self;
	if (!s)
		return;
	phttp_free(s->http);
	xfree(s->origin);
	xfree(s->host);
	xfree(s->bucket_path);
	xfree(s->bucket);
	xfree(s->access);
	if (s->secret)
		memset(s->secret, 0, strlen(s->secret));
	xfree(s->secret);
	xfree(s->sigv4);
	xfree(s);
}

static char *fmt_dup(const char *fmt, const char *a, const char *b, const char *c2)
{
	char tmp[URL_CAP];
	int n = snprintf(tmp, sizeof(tmp), fmt, a, b, c2);
	return n < 0 || (size_t)n >= sizeof(tmp) ? NULL : xstrdup(tmp);
}

static int s3_open(void **self, const struct blob_config *cfg, struct stop *stop, struct err *e)
{
	*self = NULL;
	const char *ep = cfg->endpoint ? cfg->endpoint : "";
	const char *region = cfg->region && cfg->region[0] ? cfg->region : "us-east-1";
	int https = !strncmp(ep, "https://", 8);
	if (!https && strncmp(ep, "http://", 7))
		return err_set(e, ERR_INVALID, "BOOKD_S3_ENDPOINT=\"%.64s\" must be an http:// or https:// URL", ep);
	const char *auth = ep + (https ? 8 : 7);
	size_t alen = strcspn(auth, "/?#");
	const char *path = auth + alen;
	size_t plen = strlen(path);
	while (plen && path[plen - 1] == '/')
		plen--;
	if (!alen || alen > 255 || memchr(auth, '@', alen) || strpbrk(path, "?#"))
		return err_set(e, ERR_INVALID, "BOOKD_S3_ENDPOINT=\"%.64s\" must be scheme://host[:port][/path]", ep);
	if (!cfg->bucket || !valid_bucket(cfg->bucket))
		return err_set(e, ERR_INVALID, "BOOKD_S3_BUCKET=\"%.64s\" must be 3-63 of a-z 0-9 . -",
			       cfg->bucket ? cfg->bucket : "");
	if (!cfg->access_key || !cfg->access_key[0] || !cfg->secret_key || !cfg->secret_key[0])
		return err_set(e, ERR_INVALID, "BOOKD_S3_ACCESS_KEY and BOOKD_S3_SECRET_KEY must be set for s3 storage");
	for (const char *r = region; *r; r++)
		if (!((*r >= 'a' && *r <= 'z') || (*r >= '0' && *r <= '9') || *r == '-'))
			return err_set(e, ERR_INVALID, "BOOKD_S3_REGION=\"%.32s\" must be like us-east-1", region);

	/* The authority as the Host header carries it: no default port. */
	char authority[256];
	snprintf(authority, sizeof(authority), "%.*s", (int)alen, auth);
	size_t al = strlen(authority);
	const char *dport = https ? ":443" : ":80";
	if (al > strlen(dport) && !strcmp(authority + al - strlen(dport), dport))
		authority[al - strlen(dport)] = '\0';
	if (!cfg->path_style) {
		char hostonly[256];
		snprintf(hostonly, sizeof(hostonly), "%s", authority);
		char *colon = strrchr(hostonly, ':');
		if (colon)
			*colon = '\0';
		if (hostonly[0] == '[' || strspn(hostonly, "0123456789.") == strlen(hostonly))
			return err_set(e, ERR_INVALID,
				       "BOOKD_S3_PATH_STYLE=false needs a host name in BOOKD_S3_ENDPOINT, not an IP "
				       "address (\"%.64s\")",
				       ep);
	}

	struct s3 *s = xcalloc(1, sizeof(*s));
	if (!s)
		return err_set(e, ERR_INTERNAL, "out of memory");
	char epath[URL_CAP];
	snprintf(epath, sizeof(epath), "%.*s", (int)plen, path);
	const char *scheme = https ? "https://" : "http://";
	if (cfg->path_style) {
		s->host = xstrdup(authority);
		s->origin = fmt_dup("%s%s%s", scheme, authority, "");
		s->bucket_path = fmt_dup("%s/%s%s", epath, cfg->bucket, "");
	} else {
		s->host = fmt_dup("%s.%s%s", cfg->bucket, authority, "");
		s->origin = fmt_dup("%s%s.%s", scheme, cfg->bucket, authority);
		s->bucket_path = xstrdup(epath);
	}
	s->bucket = xstrdup(cfg->bucket);
	s->access = xstrdup(cfg->access_key);
	s->secret = xstrdup(cfg->secret_key);
	s->sigv4 = fmt_dup("aws:amz:%s:%s%s", region, "s3", "");
	s->timeout_ms = (cfg->timeout_s > 0 ? cfg->timeout_s : 30) * 1000L;
	if (!s->host || !s->origin || !s->bucket_path || !s->bucket || !s->access || !s->secret || !s->sigv4) {
		s3_close(s);
		return err_set(e, ERR_INTERNAL, "out of memory");
	}
	struct phttp_config hc = {
		.name = "s3",
		.tries = 3,
		.breaker_failures = 5,
		.breaker_seconds = 15,
		.max_response = READ_CHUNK + (64 << 10),
		.backoff_ms = 200,
	};
	int rc = phttp_new(&s->http, &hc, stop, e);
	if (rc) {
		s3_close(s);
		return rc;
	}
	*self = s;
	return 0;
}

/* ---- writes ------------------------------------------------------------------------- */

static int upload_query(const char *fmt, int part, const char *upload_id, char *out, size_t cap)
{
	char enc[1600];
	if (sigv4_uri_encode(upload_id, 0, enc, sizeof(enc)) >= sizeof(enc))
		return -1;
	int n = part ? snprintf(out, cap, fmt, part, enc) : snprintf(out, cap, fmt, enc);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static int start_upload(struct s3_writer *w, struct err *e)
{
	char url[URL_CAP];
	struct call c;
	struct phttp_response resp;
	int rc = object_url(w->s, w->key, "uploads=", url, sizeof(url), e);
	if (rc)
		return rc;
	rc = s3_request(w->s, "POST", url, w->key, w->ctype, NULL, NULL, 0, &c, &resp, e);
	if (rc)
		return rc;
	const char *from = NULL;
	int found = xml_next(resp.body, &from, "UploadId", w->upload_id, sizeof(w->upload_id));
	phttp_response_free(&resp);
	if (found != 1 || !w->upload_id[0]) {
		w->upload_id[0] = '\0';
		return err_set(e, ERR_UNAVAILABLE, "s3: no UploadId in the answer to CreateMultipartUpload of %s",
			       w->key);
	}
	return 0;
}

static int upload_part(struct s3_writer *w, struct err *e)
{
	if (w->nparts >= MAX_PARTS)
		return err_set(e, ERR_TOO_LARGE, "s3: %s would need more than %d parts", w->key, MAX_PARTS);
	if (!w->upload_id[0]) {
		int rc = start_upload(w, e);
		if (rc)
			return rc;
	}
	if (w->nparts == w->parts_cap) {
		int ncap = w->parts_cap ? w->parts_cap * 2 : 16;
		struct part *p = xrealloc(w->parts, (size_t)ncap * sizeof(*p));
		if (!p)
			return err_set(e, ERR_INTERNAL, "out of memory");
		w->parts = p;
		w->parts_cap = ncap;
	}
	char query[1700], url[URL_CAP];
	struct call c;
	struct phttp_response resp;
	if (upload_query("partNumber=%d&uploadId=%s", w->nparts + 1, w->upload_id, query, sizeof(query)))
		return err_set(e, ERR_INVALID, "s3: upload id too long");
	int rc = object_url(w->s, w->key, query, url, sizeof(url), e);
	if (!rc)
		rc = s3_request(w->s, "PUT", url, w->key, NULL, NULL, w->buf, w->used, &c, &resp, e);
	if (rc)
		return rc;
	phttp_response_free(&resp);
	if (!c.etag[0])
		return err_set(e, ERR_UNAVAILABLE, "s3: no ETag in the answer to part %d of %s", w->nparts + 1, w->key);
	snprintf(w->parts[w->nparts].etag, sizeof(w->parts[0].etag), "%s", c.etag);
	w->nparts++;
	w->used = 0;
	return 0;
}

static void abort_upload(struct s3_writer *w)
{
	if (!w->upload_id[0])
		return;
	char query[1700], url[URL_CAP];
	struct call c;
	struct phttp_response resp;
	struct err e2 = { 0 };
	if (!upload_query("uploadId=%s", 0, w->upload_id, query, sizeof(query)) &&
	    !object_url(w->s, w->key, query, url, sizeof(url), &e2) &&
	    !s3_request(w->s, "DELETE", url, w->key, NULL, NULL, NULL, 0, &c, &resp, &e2))
		phttp_response_free(&resp);
	w->upload_id[0] = '\0';
}

static int s3_write_begin(void *self, const char *key, const char *content_type, struct blob_writer **out,
			  struct err *e)
{
	struct s3_writer *w = xcalloc(1, sizeof(*w));
	if (!w)
		return err_set(e, ERR_INTERNAL, "out of memory");
	w->base.ops = &blob_s3_ops;
	w->s = self;
	snprintf(w->key, sizeof(w->key), "%s", key);
	snprintf(w->ctype, sizeof(w->ctype), "%s", content_type);
	*out = &w->base;
	return 0;
}

static int s3_write(struct blob_writer *bw, const void *data, size_t n, struct err *e)
{
	struct s3_writer *w = (struct s3_writer *)bw;
	if (w->failed)
		return err_set(e, ERR_UNAVAILABLE, "s3: an earlier write of %s failed", w->key);
	const char *p = data;
	while (n) {
		if (w->used == w->cap) {
			size_t ncap = w->cap ? MIN(w->cap * 2, PART_SIZE) : MIN((size_t)64 << 10, PART_SIZE);
			char *nb = xrealloc(w->buf, ncap);
			if (!nb) {
				w->failed = 1;
				return err_set(e, ERR_INTERNAL, "out of memory");
			}
			w->buf = nb;
			w->cap = ncap;
		}
		size_t k = MIN(n, w->cap - w->used);
		memcpy(w->buf + w->used, p, k);
		w->used += k;
		p += k;
		n -= k;
		if (w->used == PART_SIZE) {
			int rc = upload_part(w, e);
			if (rc) {
				w->failed = 1;
				abort_upload(w);
				return rc;
			}
		}
	}
	return 0;
}

static void s3_abort(struct blob_writer *bw)
{
	struct s3_writer *w = (struct s3_writer *)bw;
	abort_upload(w);
	xfree(w->buf);
	xfree(w->parts);
	xfree(w);
}

/* S3 may answer CompleteMultipartUpload 200 with an error document. */
static int check_complete(void *ctx, const char *body, size_t n, struct err *e)
{
	(void)ctx, (void)n;
	if (strstr(body, "<CompleteMultipartUploadResult"))
		return PHTTP_ACCEPT;
	err_set(e, ERR_UNAVAILABLE, "s3: CompleteMultipartUpload failed");
	return PHTTP_BAD_ANSWER;
}

static int complete_upload(struct s3_writer *w, struct err *e)
{
	struct buf x;
	buf_init(&x, (size_t)MAX_PARTS * 160 + 128);
	char query[1700], url[URL_CAP];
	struct call c;
	struct phttp_response resp;
	int rc = buf_puts(&x, "<CompleteMultipartUpload>") ? ERR_INTERNAL : 0;
	for (int i = 0; i < w->nparts && !rc; i++)
		if (buf_printf(&x, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", i + 1,
			       w->parts[i].etag))
			rc = ERR_INTERNAL;
	if (!rc && buf_puts(&x, "</CompleteMultipartUpload>"))
		rc = ERR_INTERNAL;
	if (rc) {
		err_set(e, ERR_INTERNAL, "out of memory");
		goto out;
	}
	if (upload_query("uploadId=%s", 0, w->upload_id, query, sizeof(query))) {
		rc = err_set(e, ERR_INVALID, "s3: upload id too long");
		goto out;
	}
	rc = object_url(w->s, w->key, query, url, sizeof(url), e);
	if (rc)
		goto out;
	memset(&c, 0, sizeof(c));
	{
		/* As s3_request, with the answer checked for an error document. */
		char sha[65], h_sha[96];
		sigv4_sha256_hex(x.p, x.n, sha);
		snprintf(h_sha, sizeof(h_sha), "x-amz-content-sha256: %s", sha);
		const char *headers[] = { h_sha, "Content-Type: application/xml" };
		struct phttp_request req = {
			.url = url,
			.headers = headers,
			.nheaders = 2,
			.body = x.p,
			.body_len = x.n,
			.deadline_ms = time_now_ms() + w->s->timeout_ms,
			.check = check_complete,
			.ctx = &c,
			.aws_sigv4 = w->s->sigv4,
			.aws_key = w->s->access,
			.aws_secret = w->s->secret,
			.on_refused = on_refused,
		};
		rc = phttp_call(w->s->http, &req, &resp, e);
		if (rc && c.code[0])
			err_set(e, ERR_UNAVAILABLE, "s3 refused to complete %s: %ld %s", w->key, resp.status, c.code);
	}
	if (!rc)
		phttp_response_free(&resp);
out:
	buf_free(&x);
	return rc;
}

static int s3_commit(struct blob_writer *bw, struct err *e)
{
	struct s3_writer *w = (struct s3_writer *)bw;
	int rc = -1;
	if (w->failed) {
		rc = err_set(e, ERR_UNAVAILABLE, "s3: an earlier write of %s failed", w->key);
		goto out;
	}
	if (!w->upload_id[0]) { /* within one part: a single PUT */
		char url[URL_CAP];
		struct call c;
		struct phttp_response resp;
		rc = object_url(w->s, w->key, NULL, url, sizeof(url), e);
		if (!rc)
			rc = s3_request(w->s, "PUT", url, w->key, w->ctype, NULL, w->buf ? w->buf : "", w->used, &c,
					&resp, e);
		if (!rc)
			phttp_response_free(&resp);
		goto out;
	}
	if (w->used && (rc = upload_part(w, e)) != 0)
		goto out;
	rc = complete_upload(w, e);
	if (!rc)
		w->upload_id[0] = '\0'; /* done: nothing to abort */
out:
	s3_abort(bw);
	return rc;
}

/* ---- reads, deletes ----------------------------------------------------------------- */

static int s3_stat(void *self, const char *key, struct blob_info *out, struct err *e)
{
	struct s3 *s = self;
	char url[URL_CAP];
	struct call c;
	struct phttp_response resp;
	int rc = object_url(s, key, NULL, url, sizeof(url), e);
	if (!rc)
		rc = s3_request(s, "HEAD", url, key, NULL, NULL, NULL, 0, &c, &resp, e);
	if (rc)
		return rc;
	phttp_response_free(&resp);
	if (c.length < 0)
		return err_set(e, ERR_UNAVAILABLE, "s3: no Content-Length for %s", key);
	out->size = c.length;
	out->mtime_ms = c.mtime_ms;
	if (c.etag[0] == '"')
		snprintf(out->etag, sizeof(out->etag), "%s", c.etag);
	else
		snprintf(out->etag, sizeof(out->etag), "\"%.76s\"", c.etag);
	return 0;
}

static int s3_read(void *self, const char *key, int64_t off, size_t n, void *buf, size_t *got, struct err *e)
{
	struct s3 *s = self;
	char url[URL_CAP];
	int rc = object_url(s, key, NULL, url, sizeof(url), e);
	while (!rc && *got < n) {
		size_t want = MIN(n - *got, READ_CHUNK);
		int64_t from = off + (int64_t)*got;
		char range[64];
		snprintf(range, sizeof(range), "bytes=%lld-%lld", (long long)from, (long long)(from + (int64_t)want - 1));
		struct call c;
		struct phttp_response resp;
		rc = s3_request(s, "GET", url, key, NULL, range, NULL, 0, &c, &resp, e);
		if (rc) {
			if (resp.status == 416) { /* at or past the end */
				err_clear(e);
				rc = 0;
			}
			break;
		}
		const char *p = resp.body;
		size_t k = resp.n;
		if (resp.status == 200) { /* the whole object: a server that ignores Range */
			size_t skip = (size_t)MIN((int64_t)k, from);
			p += skip;
			k -= skip;
		}
		k = MIN(k, want);
		memcpy((char *)buf + *got, p, k);
		*got += k;
		phttp_response_free(&resp);
		if (k < want)
			break;
	}
	return rc;
}

static int s3_delete_prefix(void *self, const char *prefix, struct err *e)
{
	struct s3 *s = self;
	char token[1024] = "", enc_prefix[1600], enc_token[3100], url[URL_CAP * 2], key[600];
	sigv4_uri_encode(prefix, 0, enc_prefix, sizeof(enc_prefix));
	int rc = 0;
	for (int page = 0; !rc; page++) {
		sigv4_uri_encode(token, 0, enc_token, sizeof(enc_token));
		int n = snprintf(url, sizeof(url), "%s%s%s?%s%s%slist-type=2&prefix=%s", s->origin, s->bucket_path,
				 s->bucket_path[0] ? "" : "/", token[0] ? "continuation-token=" : "", enc_token,
				 token[0] ? "&" : "", enc_prefix);
		if (n < 0 || (size_t)n >= sizeof(url))
			return err_set(e, ERR_INVALID, "s3: list URL too long");
		struct call c;
		struct phttp_response resp;
		rc = s3_request(s, "GET", url, prefix, NULL, NULL, NULL, 0, &c, &resp, e);
		if (rc)
			break;
		const char *from = NULL;
		int got;
		while (!rc && (got = xml_next(resp.body, &from, "Key", key, sizeof(key))) != 0) {
			char ourl[URL_CAP];
			struct call dc;
			struct phttp_response dresp;
			if (got < 0)
				rc = err_set(e, ERR_UNAVAILABLE, "s3: a listed key is too long");
			else if (!(rc = object_url(s, key, NULL, ourl, sizeof(ourl), e)))
				rc = s3_request(s, "DELETE", ourl, key, NULL, NULL, NULL, 0, &dc, &dresp, e);
			if (rc == ERR_NOT_FOUND) { /* gone meanwhile */
				err_clear(e);
				rc = 0;
			} else if (!rc) {
				phttp_response_free(&dresp);
			}
		}
		const char *tf = NULL;
		char truncated[16] = "";
		xml_next(resp.body, &tf, "IsTruncated", truncated, sizeof(truncated));
		tf = NULL;
		if (rc || strcmp(truncated, "true") ||
		    xml_next(resp.body, &tf, "NextContinuationToken", token, sizeof(token)) != 1 || page > 100000) {
			phttp_response_free(&resp);
			break;
		}
		phttp_response_free(&resp);
	}
	return rc;
}

static int s3_presign_get(void *self, const char *key, int expires_s, char *out, size_t cap, struct err *e)
{
	struct s3 *s = self;
	char enc[1600], path[URL_CAP];
	sigv4_uri_encode(key, 1, enc, sizeof(enc));
	int n = snprintf(path, sizeof(path), "%s/%s", s->bucket_path, enc);
	if (n < 0 || (size_t)n >= sizeof(path))
		return err_set(e, ERR_INVALID, "storage key too long");
	const char *colon = strchr(s->sigv4 + 8, ':'); /* "aws:amz:<region>:s3" */
	char region[64];
	snprintf(region, sizeof(region), "%.*s", colon ? (int)(colon - (s->sigv4 + 8)) : 0, s->sigv4 + 8);
	struct sigv4_presign p = {
		.method = "GET",
		.origin = s->origin,
		.host = s->host,
		.path = path,
		.access_key = s->access,
		.secret_key = s->secret,
		.region = region,
		.service = "s3",
		.when = (int64_t)time(NULL),
		.expires_s = expires_s,
	};
	return sigv4_presign(&p, out, cap, e);
}

static int s3_ping(void *self, struct err *e)
{
	struct s3 *s = self;
	char url[URL_CAP];
	struct call c;
	struct phttp_response resp;
	snprintf(url, sizeof(url), "%s%s", s->origin, s->bucket_path[0] ? s->bucket_path : "/");
	int rc = s3_request(s, "HEAD", url, s->bucket, NULL, NULL, NULL, 0, &c, &resp, e);
	if (rc == ERR_NOT_FOUND)
		return err_set(e, ERR_UNAVAILABLE, "s3: bucket %s does not exist", s->bucket);
	if (!rc)
		phttp_response_free(&resp);
	return rc;
}

const struct blob_ops blob_s3_ops = {
	.kind = "s3",
	.open = s3_open,
	.close = s3_close,
	.write_begin = s3_write_begin,
	.write = s3_write,
	.commit = s3_commit,
	.abort = s3_abort,
	.stat = s3_stat,
	.read = s3_read,
	.open_fd = NULL,
	.delete_prefix = s3_delete_prefix,
	.presign_get = s3_presign_get,
	.ping = s3_ping,
};
