/*
 * File storage (struct blob_ops): the local data directory (default) or an
 * S3-compatible object store. Keys are relative paths of printable ASCII
 * ("books/<book>/audio/3-summary.mp3"); a backend never sees a user's string.
 *
 * Writes are atomic: a writer streams into a temporary object and commit
 * makes it visible under its key at once (rename; a completed upload), so a
 * reader never sees half a file and a crash leaves at most an orphan
 * temporary. Reads are by range, for HTTP Range requests.
 *
 * Keys: 1-512 bytes of A-Z a-z 0-9 - _ . ~ and '/', relative, no empty
 * segment and no segment starting with '.' (a backend's temporaries do);
 * anything else is ERR_INVALID. They need no escaping in a path or a URL.
 */
#ifndef BOOKD_BLOB_H
#define BOOKD_BLOB_H

#include <stddef.h>
#include <stdint.h>

#include "../core/config.h"
#include "../core/err.h"
#include "../core/stop.h"

struct blob_store;
struct blob_writer;

struct blob_info {
	int64_t size;
	int64_t mtime_ms;
	char etag[80]; /* strong, quoted */
};

struct blob_config {
	const char *kind;     /* "local" or "s3" */
	const char *dir;      /* local: the root directory (created 0700) */
	const char *endpoint; /* s3: e.g. http://127.0.0.1:9000 or https://s3.eu-west-1.amazonaws.com */
	const char *bucket, *region, *access_key, *secret_key;
	int path_style;	      /* s3: 1 = endpoint/bucket/key, 0 = bucket.endpoint/key */
	int timeout_s;	      /* one S3 request, all its tries; 0 = 30 */
};

/* The settings of the config table (BOOKD_STORAGE, BOOKD_S3_*), the local
 * root being <BOOKD_DATA_DIR>/files (written into dir). The strings stay
 * c's. ERR_INVALID when dir is too small. */
int blob_config_from(struct blob_config *out, const struct config *c, char *dir, size_t dircap) WUR;

/* ERR_INVALID names a bad setting. `stop` cancels transfers at shutdown. */
int blob_open(struct blob_store **out, const struct blob_config *cfg, struct stop *stop, struct err *e) WUR;
void blob_close(struct blob_store *b);

/* Streaming write: begin, write any number of times, then commit (visible
 * under `key`) or abort (nothing left). Every call fails with ERR_UNAVAILABLE
 * (retry later) or ERR_IO when the store cannot take it. */
int blob_write_begin(struct blob_store *b, const char *key, const char *content_type, struct blob_writer **out,
		     struct err *e) WUR;
int blob_write(struct blob_writer *w, const void *data, size_t n, struct err *e) WUR;
int blob_write_commit(struct blob_writer *w, struct err *e) WUR; /* frees w */
void blob_write_abort(struct blob_writer *w);			  /* frees w */
/* A whole small object at once (timings JSON). */
int blob_put(struct blob_store *b, const char *key, const char *content_type, const void *data, size_t n,
	     struct err *e) WUR;

int blob_stat(struct blob_store *b, const char *key, struct blob_info *out, struct err *e) WUR; /* ERR_NOT_FOUND */
/* Bytes [off, off+n) into buf (n <= cap); *got receives the count. */
int blob_read(struct blob_store *b, const char *key, int64_t off, size_t n, void *buf, size_t *got,
	      struct err *e) WUR;
/* Local store: an fd open for reading (the caller closes it; sendfile);
 * -1 and ERR_UNSUPPORTED on S3. */
int blob_open_fd(struct blob_store *b, const char *key, int *fd, struct blob_info *info, struct err *e) WUR;
/* Every object under `prefix` ("books/<id>/"). */
int blob_delete_prefix(struct blob_store *b, const char *prefix, struct err *e) WUR;
/* S3: a presigned GET URL valid for `expires_s` into out; ERR_UNSUPPORTED locally. */
int blob_presign_get(struct blob_store *b, const char *key, int expires_s, char *out, size_t cap,
		     struct err *e) WUR;
/* For /health/ready: a cheap round trip (HEAD bucket, or the directory). */
int blob_ping(struct blob_store *b, struct err *e) WUR;
const char *blob_kind(const struct blob_store *b);

#endif
