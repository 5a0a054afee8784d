/*
 * Local storage: a key is a path under the root directory (dirs 0700, files
 * 0600), every access relative to the root's descriptor (openat and
 * friends), so nothing depends on the working directory.
 *
 * A write goes to ".tmp-<random>" in the key's own directory — the same file
 * system, so the rename at commit is atomic — and is fsync'd before the
 * rename and the directory after it: a reader sees the old file or the whole
 * new one, and a crash leaves at most a temporary (keys never start a
 * segment with '.', so a temporary is never listed as a key).
 * ETag: size, mtime (ns) and inode; a rewrite changes at least one of them.
 */
#include "blob_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/mem.h"
#include "../core/uuid.h"

#define PATH_CAP 1100

struct local {
	int root; /* O_DIRECTORY descriptor */
	char *dir;
};

struct local_writer {
	struct blob_writer base;
	struct local *l;
	int fd;
	int failed;
	char key[PATH_CAP];
	char tmp[PATH_CAP + 32];
};

static int io_err(struct err *e, const char *what, const char *key, int errnum)
{
	if (errnum == ENOSPC || errnum == EDQUOT)
		return err_set(e, ERR_IO, "storage full: %s %s: %s", what, key, strerror(errnum));
	return err_set(e, ERR_IO, "storage: %s %s: %s", what, key, strerror(errnum));
}

/* mkdir -p of the directories above `path` (relative to root). */
static int make_parents(int root, const char *path, struct err *e)
{
	char p[PATH_CAP];
	snprintf(p, sizeof(p), "%s", path);
	for (char *s = strchr(p, '/'); s; s = strchr(s + 1, '/')) {
		*s = '\0';
		if (mkdirat(root, p, 0700) && errno != EEXIST)
			return io_err(e, "mkdir", p, errno);
		*s = '/';
	}
	return 0;
}

static int mkdir_all(const char *dir, struct err *e)
{
	char p[4096];
	int n = snprintf(p, sizeof(p), "%s", dir);
	if (n <= 0 || (size_t)n >= sizeof(p))
		return err_set(e, ERR_INVALID, "storage directory \"%.64s\" is empty or too long", dir);
	for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
		*s = '\0';
		if (mkdir(p, 0700) && errno != EEXIST)
			return io_err(e, "mkdir", p, errno);
		*s = '/';
	}
	if (mkdir(p, 0700) && errno != EEXIST)
		return io_err(e, "mkdir", p, errno);
	return 0;
}

static int local_open(void **self, const struct blob_config *cfg, struct stop *stop, struct err *e)
{
	(void)stop;
	*self = NULL;
	if (!cfg->dir || !cfg->dir[0])
		return err_set(e, ERR_INVALID, "local storage needs a directory");
	int rc = mkdir_all(cfg->dir, e);
	if (rc)
		return rc;
	struct local *l = xcalloc(1, sizeof(*l));
	if (!l || !(l->dir = xstrdup(cfg->dir))) {
		xfree(l);
		return err_set(e, ERR_INTERNAL, "out of memory");
	}
	l->root = open(cfg->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l->root < 0) {
		rc = io_err(e, "open", cfg->dir, errno);
		xfree(l->dir);
		xfree(l);
		return rc;
	}
	*self = l;
	return 0;
}

static void local_close(void *self)
{
	struct local *l = self;
	if (!l)
		return;
	close(l->root);
	xfree(l->dir);
	xfree(l);
}

static void parent_of(const char *key, char *out, size_t cap)
{
	const char *slash = strrchr(key, '/');
	if (slash)
		snprintf(out, cap, "%.*s", (int)(slash - key), key);
	else
		snprintf(out, cap, ".");
}

static int fsync_dir(int root, const char *key)
{
	char dir[PATH_CAP];
	parent_of(key, dir, sizeof(dir));
	int fd = openat(root, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

static int local_write_begin(void *self, const char *key, const char *content_type, struct blob_writer **out,
			     struct err *e)
{
	(void)content_type;
	struct local *l = self;
	int rc = make_parents(l->root, key, e);
	if (rc)
		return rc;
	struct local_writer *w = xcalloc(1, sizeof(*w));
	if (!w)
		return err_set(e, ERR_INTERNAL, "out of memory");
	w->base.ops = &blob_local_ops;
	w->l = l;
	w->fd = -1;
	snprintf(w->key, sizeof(w->key), "%s", key);
	char dir[PATH_CAP];
	parent_of(key, dir, sizeof(dir));
	for (int tries = 0; tries < 8 && w->fd < 0; tries++) {
		unsigned char r[8];
		if (random_bytes(r, sizeof(r))) {
			xfree(w);
			return err_set(e, ERR_INTERNAL, "no random bytes for a temporary name");
		}
		snprintf(w->tmp, sizeof(w->tmp), "%s/.tmp-%02x%02x%02x%02x%02x%02x%02x%02x", dir, r[0], r[1], r[2],
			 r[3], r[4], r[5], r[6], r[7]);
		w->fd = openat(l->root, w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (w->fd < 0 && errno != EEXIST)
			break;
	}
	if (w->fd < 0) {
		rc = io_err(e, "create", key, errno);
		xfree(w);
		return rc;
	}
	*out = &w->base;
	return 0;
}

static int local_write(struct blob_writer *bw, const void *data, size_t n, struct err *e)
{
	struct local_writer *w = (struct local_writer *)bw;
	if (w->failed)
		return err_set(e, ERR_IO, "storage: an earlier write of %s failed", w->key);
	const char *p = data;
	while (n) {
		ssize_t k = write(w->fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			w->failed = 1;
			return io_err(e, "write", w->key, k < 0 ? errno : EIO);
		}
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static void local_abort(struct blob_writer *bw)
{
	struct local_writer *w = (struct local_writer *)bw;
	if (w->fd >= 0)
		close(w->fd);
	unlinkat(w->l->root, w->tmp, 0);
	xfree(w);
}

static int local_commit(struct blob_writer *bw, struct err *e)
{
	struct local_writer *w = (struct local_writer *)bw;
	int rc = -1;
	if (w->failed) {
		rc = err_set(e, ERR_IO, "storage: an earlier write of %s failed", w->key);
		goto fail;
	}
	if (fsync(w->fd)) {
		rc = io_err(e, "fsync", w->key, errno);
		goto fail;
	}
	int fd = w->fd;
	w->fd = -1;
	if (close(fd)) {
		rc = io_err(e, "close", w->key, errno);
		goto fail;
	}
	if (renameat(w->l->root, w->tmp, w->l->root, w->key)) {
		rc = io_err(e, "rename", w->key, errno);
		goto fail;
	}
	fsync_dir(w->l->root, w->key); /* the rename is durable; a failure here loses nothing visible */
	xfree(w);
	return 0;
fail:
	local_abort(bw);
	return rc;
}

static void fill_info(const struct stat *st, struct blob_info *out)
{
	out->size = (int64_t)st->st_size;
	out->mtime_ms = (int64_t)st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000;
	snprintf(out->etag, sizeof(out->etag), "\"%llx-%llx%09lx-%llx\"", (unsigned long long)st->st_size,
		 (unsigned long long)st->st_mtim.tv_sec, (long)st->st_mtim.tv_nsec, (unsigned long long)st->st_ino);
}

static int local_stat(void *self, const char *key, struct blob_info *out, struct err *e)
{
	struct local *l = self;
	struct stat st;
	if (fstatat(l->root, key, &st, AT_SYMLINK_NOFOLLOW)) {
		if (errno == ENOENT || errno == ENOTDIR)
			return err_set(e, ERR_NOT_FOUND, "no stored file %s", key);
		return io_err(e, "stat", key, errno);
	}
	if (!S_ISREG(st.st_mode))
		return err_set(e, ERR_NOT_FOUND, "no stored file %s", key);
	fill_info(&st, out);
	return 0;
}

static int local_open_fd(void *self, const char *key, int *fd, struct blob_info *info, struct err *e)
{
	struct local *l = self;
	int f = openat(l->root, key, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (f < 0) {
		if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
			return err_set(e, ERR_NOT_FOUND, "no stored file %s", key);
		return io_err(e, "open", key, errno);
	}
	struct stat st;
	if (fstat(f, &st) || !S_ISREG(st.st_mode)) {
		close(f);
		return err_set(e, ERR_NOT_FOUND, "no stored file %s", key);
	}
	fill_info(&st, info);
	*fd = f;
	return 0;
}

static int local_read(void *self, const char *key, int64_t off, size_t n, void *buf, size_t *got, struct err *e)
{
	int fd;
	struct blob_info info;
	int rc = local_open_fd(self, key, &fd, &info, e);
	if (rc)
		return rc;
	char *p = buf;
	size_t have = 0;
	while (have < n) {
		ssize_t k = pread(fd, p + have, n - have, (off_t)(off + (int64_t)have));
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			rc = io_err(e, "read", key, errno);
			break;
		}
		if (k == 0)
			break;
		have += (size_t)k;
	}
	close(fd);
	*got = have;
	return rc;
}

/* Removes `name` in directory `dfd`: a file, or a directory and all below it. */
static int remove_tree(int dfd, const char *name, int depth)
{
	if (!unlinkat(dfd, name, 0) || errno == ENOENT)
		return 0;
	if ((errno != EISDIR && errno != EPERM) || depth > 32)
		return -1;
	int sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sub < 0)
		return -1;
	DIR *d = fdopendir(sub);
	if (!d) {
		close(sub);
		return -1;
	}
	int rc = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (remove_tree(dirfd(d), de->d_name, depth + 1))
			rc = -1;
	}
	closedir(d);
	if (!rc && unlinkat(dfd, name, AT_REMOVEDIR) && errno != ENOENT)
		rc = -1;
	return rc;
}

/* "books/7/" removes that directory; "books/7/audio/3-" the entries of
 * books/7/audio whose names start with "3-". */
static int local_delete_prefix(void *self, const char *prefix, struct err *e)
{
	struct local *l = self;
	char dir[PATH_CAP];
	const char *slash = strrchr(prefix, '/');
	const char *tail = slash ? slash + 1 : prefix;
	if (!*tail) { /* a directory */
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - prefix), prefix);
		if (remove_tree(l->root, dir, 0))
			return io_err(e, "delete", prefix, errno);
		return 0;
	}
	parent_of(prefix, dir, sizeof(dir));
	int dfd = openat(l->root, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return errno == ENOENT || errno == ENOTDIR ? 0 : io_err(e, "open", dir, errno);
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return io_err(e, "read", dir, errno);
	}
	int rc = 0;
	size_t tn = strlen(tail);
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || strncmp(de->d_name, tail, tn))
			continue;
		if (remove_tree(dirfd(d), de->d_name, 0) && !rc)
			rc = io_err(e, "delete", de->d_name, errno);
	}
	closedir(d);
	return rc;
}

static int local_ping(void *self, struct err *e)
{
	struct local *l = self;
	struct stat st;
	if (fstat(l->root, &st) || faccessat(l->root, ".", W_OK, AT_EACCESS))
		return err_set(e, ERR_UNAVAILABLE, "storage directory %s: %s", l->dir, strerror(errno));
	if (st.st_nlink == 0)
		return err_set(e, ERR_UNAVAILABLE, "storage directory %s was removed", l->dir);
	return 0;
}

const struct blob_ops blob_local_ops = {
	.kind = "local",
	.open = local_open,
	.close = local_close,
	.write_begin = local_write_begin,
	.write = local_write,
	.commit = local_commit,
	.abort = local_abort,
	.stat = local_stat,
	.read = local_read,
	.open_fd = local_open_fd,
	.delete_prefix = local_delete_prefix,
	.presign_get = NULL,
	.ping = local_ping,
};
