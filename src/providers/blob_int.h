/*
 * The backends of blob.h: one `struct blob_ops` each (local files, S3). A
 * backend's writer begins with a `struct blob_writer`; blob.c checks keys
 * and arguments before a backend sees them.
 */
#ifndef BOOKD_BLOB_INT_H
#define BOOKD_BLOB_INT_H

#include "blob.h"

struct blob_ops {
	const char *kind; /* what BOOKD_STORAGE names */
	int (*open)(void **self, const struct blob_config *cfg, struct stop *stop, struct err *e);
	void (*close)(void *self);
	int (*write_begin)(void *self, const char *key, const char *content_type, struct blob_writer **out,
			   struct err *e);
	int (*write)(struct blob_writer *w, const void *data, size_t n, struct err *e);
	int (*commit)(struct blob_writer *w, struct err *e); /* frees w */
	void (*abort)(struct blob_writer *w);		     /* frees w */
	int (*stat)(void *self, const char *key, struct blob_info *out, struct err *e);
	int (*read)(void *self, const char *key, int64_t off, size_t n, void *buf, size_t *got, struct err *e);
	int (*open_fd)(void *self, const char *key, int *fd, struct blob_info *info, struct err *e); /* may be NULL */
	int (*delete_prefix)(void *self, const char *prefix, struct err *e);
	int (*presign_get)(void *self, const char *key, int expires_s, char *out, size_t cap,
			   struct err *e); /* may be NULL */
	int (*ping)(void *self, struct err *e);
};

struct blob_writer {
	const struct blob_ops *ops;
};

extern const struct blob_ops blob_local_ops, blob_s3_ops;

#endif
