/*
 * AWS Signature Version 4 for what libcurl does not do: presigned URLs
 * (query-string authentication). libcurl signs the requests bookd sends
 * itself (CURLOPT_AWS_SIGV4); a presigned URL is handed to a reader's browser
 * instead, so its signature is computed here, with OpenSSL's HMAC-SHA256.
 * Only the `host` header is signed and the payload is UNSIGNED-PAYLOAD, as
 * S3 expects of a presigned GET.
 */
#ifndef BOOKD_SIGV4_H
#define BOOKD_SIGV4_H

#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"

struct sigv4_presign {
	const char *method;	 /* "GET" */
	const char *origin;	 /* what precedes the path in the URL: "https://examplebucket.s3.amazonaws.com" */
	const char *host;	 /* the Host header as sent: "examplebucket.s3.amazonaws.com", "127.0.0.1:9000" */
	const char *path;	 /* the canonical URI, already URI-encoded: "/test.txt" */
	const char *access_key, *secret_key, *region, *service;
	int64_t when;  /* seconds since the epoch */
	int expires_s; /* 1 .. 604800 */
};

/* The presigned URL into out; ERR_INVALID for a bad expiry, ERR_TOO_LARGE
 * when it does not fit in cap. */
int sigv4_presign(const struct sigv4_presign *p, char *out, size_t cap, struct err *e) WUR;

/* `s` URI-encoded as SigV4 wants (unreserved A-Z a-z 0-9 - . _ ~ kept,
 * everything else %XX upper-case; '/' kept when keep_slash). Returns the
 * length of the whole encoding, as snprintf does; out is NUL-terminated. */
size_t sigv4_uri_encode(const char *s, int keep_slash, char *out, size_t cap);

/* Lower-case hex SHA-256 of p[0..n). */
void sigv4_sha256_hex(const void *p, size_t n, char out[65]);

#endif
