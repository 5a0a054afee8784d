#include "sigv4.h"

#include <openssl/hmac.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../core/buf.h"
#include "../core/hash.h"

#define SIGV4_MAX_EXPIRES 604800
/* The canonical request of a presigned GET: a path of a few hundred bytes
 * and six short parameters. */
#define CANON_MAX 16384

void sigv4_sha256_hex(const void *p, size_t n, char out[65])
{
	hash_sha256_hex(p, n, out);
}

static int hmac(const void *key, size_t klen, const char *msg, size_t mlen, unsigned char out[32])
{
	unsigned int n = 32;
	return HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, mlen, out, &n) && n == 32 ? 0 : -1;
}

size_t sigv4_uri_encode(const char *s, int keep_slash, char *out, size_t cap)
{
	static const char digits[] = "0123456789ABCDEF";
	size_t k = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		int keep = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
			   *p == '-' || *p == '.' || *p == '_' || *p == '~' || (keep_slash && *p == '/');
		if (keep) {
			if (k + 1 < cap)
				out[k] = (char)*p;
			k++;
		} else {
			if (k + 3 < cap) {
				out[k] = '%';
				out[k + 1] = digits[*p >> 4];
				out[k + 2] = digits[*p & 15];
			}
			k += 3;
		}
	}
	if (cap)
		out[k < cap ? k : cap - 1] = '\0';
	return k;
}

/* The signing key: HMAC chain over date, region, service, "aws4_request". */
static int signing_key(const struct sigv4_presign *p, const char *date, unsigned char key[32])
{
	char k0[1100];
	int n = snprintf(k0, sizeof(k0), "AWS4%s", p->secret_key);
	if (n < 0 || (size_t)n >= sizeof(k0))
		return -1;
	unsigned char a[32], b[32];
	int rc = hmac(k0, (size_t)n, date, strlen(date), a) || hmac(a, 32, p->region, strlen(p->region), b) ||
		 hmac(b, 32, p->service, strlen(p->service), a) || hmac(a, 32, "aws4_request", 12, key);
	OPENSSL_cleanse(k0, sizeof(k0));
	OPENSSL_cleanse(a, sizeof(a));
	OPENSSL_cleanse(b, sizeof(b));
	return rc ? -1 : 0;
}

int sigv4_presign(const struct sigv4_presign *p, char *out, size_t cap, struct err *e)
{
	int rc = -1;
	struct buf query, canon;
	buf_init(&query, CANON_MAX);
	buf_init(&canon, CANON_MAX);
	unsigned char key[32], sig[32];
	if (p->expires_s < 1 || p->expires_s > SIGV4_MAX_EXPIRES) {
		rc = err_set(e, ERR_INVALID, "a presigned URL lasts 1 to %d seconds, not %d", SIGV4_MAX_EXPIRES,
			     p->expires_s);
		goto out;
	}
	time_t t = (time_t)p->when;
	struct tm tm;
	if (!gmtime_r(&t, &tm)) {
		rc = err_set(e, ERR_INVALID, "presign: bad time");
		goto out;
	}
	char date[16], stamp[32];
	strftime(date, sizeof(date), "%Y%m%d", &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);

	char scope[256], cred[1400], cred_enc[4200];
	int n = snprintf(scope, sizeof(scope), "%s/%s/%s/aws4_request", date, p->region, p->service);
	if (n < 0 || (size_t)n >= sizeof(scope) ||
	    (size_t)snprintf(cred, sizeof(cred), "%s/%s", p->access_key, scope) >= sizeof(cred) ||
	    sigv4_uri_encode(cred, 0, cred_enc, sizeof(cred_enc)) >= sizeof(cred_enc)) {
		rc = err_set(e, ERR_INVALID, "presign: the access key or region is too long");
		goto out;
	}
	/* The parameters in byte order, as the canonical query string wants. */
	if (buf_printf(&query,
		       "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=%s&X-Amz-Date=%s&X-Amz-Expires=%d"
		       "&X-Amz-SignedHeaders=host",
		       cred_enc, stamp, p->expires_s) ||
	    buf_printf(&canon, "%s\n%s\n%s\nhost:%s\n\nhost\nUNSIGNED-PAYLOAD", p->method, p->path, query.p,
		       p->host)) {
		rc = err_set(e, ERR_TOO_LARGE, "presign: the request is too long to sign");
		goto out;
	}
	char canon_hash[65], to_sign[512];
	sigv4_sha256_hex(canon.p, canon.n, canon_hash);
	n = snprintf(to_sign, sizeof(to_sign), "AWS4-HMAC-SHA256\n%s\n%s\n%s", stamp, scope, canon_hash);
	if (n < 0 || (size_t)n >= sizeof(to_sign) || signing_key(p, date, key) ||
	    hmac(key, sizeof(key), to_sign, (size_t)n, sig)) {
		rc = err_set(e, ERR_INTERNAL, "presign: signing failed");
		goto out;
	}
	char sig_hex[65];
	sodium_bin2hex(sig_hex, sizeof(sig_hex), sig, sizeof(sig));
	n = snprintf(out, cap, "%s%s?%s&X-Amz-Signature=%s", p->origin, p->path, query.p, sig_hex);
	if (n < 0 || (size_t)n >= cap) {
		rc = err_set(e, ERR_TOO_LARGE, "presign: the URL is longer than %zu bytes", cap);
		goto out;
	}
	rc = 0;
out:
	OPENSSL_cleanse(key, sizeof(key));
	buf_free(&canon);
	buf_free(&query);
	return rc;
}
