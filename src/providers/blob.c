/*
 * File storage: the dispatch over the backends (blob_local.c, blob_s3.c) and
 * the one check of keys, so a backend never sees a key that could leave its
 * root, collide with its temporaries or need escaping.
 */
#include "blob_int.h"

#include <stdio.h>
#include <string.h>

#include "../core/mem.h"

#define KEY_MAX 512

struct blob_store {
	const struct blob_ops *ops;
	void *self;
};

static const struct blob_ops *const all_ops[] = { &blob_local_ops, &blob_s3_ops };

/* 0 when `key` is a valid key (or, with prefix, a valid start of keys). */
static int key_check(const char *key, int prefix, struct err *e)
{
	const char *what = prefix ? "prefix" : "key";
	size_t n = key ? strlen(key) : 0;
	if (!n || n > KEY_MAX)
		return err_set(e, ERR_INVALID, "storage %s must be 1 to %d bytes", what, KEY_MAX);
	for (size_t i = 0; i < n; i++) {
		char c = key[i];
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
			 c == '_' || c == '.' || c == '~' || c == '/';
		if (!ok)
			return err_set(e, ERR_INVALID, "storage %s \"%.64s\": byte 0x%02x is not allowed", what, key,
				       (unsigned char)c);
		int seg_start = i == 0 || key[i - 1] == '/';
		if (seg_start && (c == '/' || c == '.'))
			return err_set(e, ERR_INVALID, "storage %s \"%.64s\": empty segment or one starting with '.'",
				       what, key);
	}
	if (!prefix && key[n - 1] == '/')
		return err_set(e, ERR_INVALID, "storage key \"%.64s\" ends with '/'", key);
	return 0;
}

int blob_config_from(struct blob_config *out, const struct config *c, char *dir, size_t dircap)
{
	memset(out, 0, sizeof(*out));
	int n = snprintf(dir, dircap, "%s/files", c->data_dir ? c->data_dir : ".");
	if (n < 0 || (size_t)n >= dircap)
		return ERR_INVALID;
	out->kind = c->storage && c->storage[0] ? c->storage : "local";
	out->dir = dir;
	out->endpoint = c->s3_endpoint;
	out->bucket = c->s3_bucket;
	out->region = c->s3_region;
	out->access_key = c->s3_access_key;
	out->secret_key = c->s3_secret_key;
	out->path_style = c->s3_path_style;
	return 0;
}

int blob_open(struct blob_store **out, const struct blob_config *cfg, struct stop *stop, struct err *e)
{
	*out = NULL;
	const struct blob_ops *ops = NULL;
	const char *kind = cfg->kind && cfg->kind[0] ? cfg->kind : "local";
	for (size_t i = 0; i < ARRAY_LEN(all_ops); i++)
		if (!strcmp(all_ops[i]->kind, kind))
			ops = all_ops[i];
	if (!ops)
		return err_set(e, ERR_INVALID, "BOOKD_STORAGE=\"%.32s\" must be local or s3", kind);
	struct blob_store *b = xcalloc(1, sizeof(*b));
	if (!b)
		return err_set(e, ERR_INTERNAL, "out of memory");
	b->ops = ops;
	int rc = ops->open(&b->self, cfg, stop, e);
	if (rc) {
		xfree(b);
		return rc;
	}
	*out = b;
	return 0;
}

void blob_close(struct blob_store *b)
{
	if (!b)
		return;
	b->ops->close(b->self);
	xfree(b);
}

const char *blob_kind(const struct blob_store *b)
{
	return b->ops->kind;
}

int blob_write_begin(struct blob_store *b, const char *key, const char *content_type, struct blob_writer **out,
		     struct err *e)
{
	*out = NULL;
	int rc = key_check(key, 0, e);
	if (rc)
		return rc;
	return b->ops->write_begin(b->self, key, content_type ? content_type : "application/octet-stream", out, e);
}

int blob_write(struct blob_writer *w, const void *data, size_t n, struct err *e)
{
	return n ? w->ops->write(w, data, n, e) : 0;
}

int blob_write_commit(struct blob_writer *w, struct err *e)
{
	return w->ops->commit(w, e);
}

void blob_write_abort(struct blob_writer *w)
{
	if (w)
		w->ops->abort(w);
}

int blob_put(struct blob_store *b, const char *key, const char *content_type, const void *data, size_t n,
	     struct err *e)
{
	struct blob_writer *w;
	int rc = blob_write_begin(b, key, content_type, &w, e);
	if (rc)
		return rc;
	rc = blob_write(w, data, n, e);
	if (rc) {
		blob_write_abort(w);
		return rc;
	}
	return blob_write_commit(w, e);
}

int blob_stat(struct blob_store *b, const char *key, struct blob_info *out, struct err *e)
{
	memset(out, 0, sizeof(*out));
	int rc = key_check(key, 0, e);
	return rc ? rc : b->ops->stat(b->self, key, out, e);
}

int blob_read(struct blob_store *b, const char *key, int64_t off, size_t n, void *buf, size_t *got, struct err *e)
{
	*got = 0;
	int rc = key_check(key, 0, e);
	if (rc)
		return rc;
	if (off < 0)
		return err_set(e, ERR_INVALID, "storage read at a negative offset");
	return n ? b->ops->read(b->self, key, off, n, buf, got, e) : 0;
}

int blob_open_fd(struct blob_store *b, const char *key, int *fd, struct blob_info *info, struct err *e)
{
	*fd = -1;
	memset(info, 0, sizeof(*info));
	int rc = key_check(key, 0, e);
	if (rc)
		return rc;
	if (!b->ops->open_fd)
		return err_set(e, ERR_UNSUPPORTED, "%s storage has no file descriptors", b->ops->kind);
	return b->ops->open_fd(b->self, key, fd, info, e);
}

int blob_delete_prefix(struct blob_store *b, const char *prefix, struct err *e)
{
	int rc = key_check(prefix, 1, e);
	return rc ? rc : b->ops->delete_prefix(b->self, prefix, e);
}

int blob_presign_get(struct blob_store *b, const char *key, int expires_s, char *out, size_t cap, struct err *e)
{
	if (cap)
		out[0] = '\0';
	int rc = key_check(key, 0, e);
	if (rc)
		return rc;
	if (!b->ops->presign_get)
		return err_set(e, ERR_UNSUPPORTED, "%s storage has no presigned URLs", b->ops->kind);
	return b->ops->presign_get(b->self, key, expires_s, out, cap, e);
}

int blob_ping(struct blob_store *b, struct err *e)
{
	return b->ops->ping(b->self, e);
}
