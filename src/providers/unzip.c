#include "unzip.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

static int wanted(const char *name)
{
	const char *dot = strrchr(name, '.');
	static const char *const ext[] = { ".md", ".mdx", ".markdown", ".txt", ".json", ".yml", ".yaml" };
	for (size_t i = 0; dot && i < sizeof(ext) / sizeof(ext[0]); i++)
		if (strcasecmp(dot, ext[i]) == 0)
			return 1;
	return 0;
}

static int safe_name(const char *n)
{
	if (!*n || n[0] == '/' || strchr(n, '\\') || strlen(n) > 1024)
		return 0;
	/* no ".." path component anywhere */
	for (const char *p = n; *p;) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		if (len == 2 && p[0] == '.' && p[1] == '.')
			return 0;
		if (!slash)
			break;
		p = slash + 1;
	}
	return 1;
}

static int mkdirs_for(const char *dest, const char *rel)
{
	char path[4096];
	if (snprintf(path, sizeof(path), "%s/%s", dest, rel) >= (int)sizeof(path))
		return -1;
	for (char *p = path + strlen(dest) + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			if (mkdir(path, 0700) && errno != EEXIST)
				return -1;
			*p = '/';
		}
	return 0;
}

int unzip_to_dir(const char *zip_path, const char *dest, struct err *e)
{
	int zerr = 0;
	zip_t *z = zip_open(zip_path, ZIP_RDONLY | ZIP_CHECKCONS, &zerr);
	if (!z)
		return err_set(e, ERR_INVALID, "the upload is not a valid zip archive");
	int rc = 0;
	long long total = 0;
	zip_int64_t n = zip_get_num_entries(z, 0);
	if (n > UNZIP_MAX_ENTRIES) {
		rc = err_set(e, ERR_INVALID, "the zip archive has more than %d entries", UNZIP_MAX_ENTRIES);
		goto out;
	}
	if (mkdir(dest, 0700)) {
		rc = err_set(e, ERR_IO, "cannot create %s: %s", dest, strerror(errno));
		goto out;
	}
	for (zip_int64_t i = 0; i < n && !rc; i++) {
		zip_stat_t st;
		if (zip_stat_index(z, (zip_uint64_t)i, 0, &st) || !(st.valid & ZIP_STAT_NAME)) {
			rc = err_set(e, ERR_INVALID, "the zip archive is corrupt (entry %lld)", (long long)i);
			break;
		}
		const char *name = st.name;
		if (!safe_name(name)) {
			rc = err_set(e, ERR_INVALID, "the zip archive has an unsafe path: %.200s", name);
			break;
		}
		zip_uint8_t os;
		zip_uint32_t attr;
		if (zip_file_get_external_attributes(z, (zip_uint64_t)i, 0, &os, &attr) == 0 && os == ZIP_OPSYS_UNIX &&
		    S_ISLNK((attr >> 16) & 0xffff)) {
			rc = err_set(e, ERR_INVALID, "the zip archive contains a symbolic link: %.200s", name);
			break;
		}
		size_t len = strlen(name);
		if (name[len - 1] == '/' || !wanted(name))
			continue;
		if (mkdirs_for(dest, name)) {
			rc = err_set(e, ERR_IO, "cannot create folders for %.200s", name);
			break;
		}
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", dest, name);
		zip_file_t *zf = zip_fopen_index(z, (zip_uint64_t)i, 0);
		int fd = zf ? open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600) : -1;
		if (!zf || fd < 0) {
			rc = zf ? err_set(e, ERR_INVALID, "the zip archive has a duplicate entry: %.200s", name)
				: err_set(e, ERR_INVALID, "the zip archive is corrupt: %.200s", name);
			if (zf)
				zip_fclose(zf);
			break;
		}
		long long written = 0;
		long long comp = (st.valid & ZIP_STAT_COMP_SIZE) ? (long long)st.comp_size : 0;
		char buf[65536];
		zip_int64_t got;
		while ((got = zip_fread(zf, buf, sizeof(buf))) > 0) {
			written += got;
			total += got;
			if (total > UNZIP_MAX_TOTAL || (written > (1 << 20) && written > (comp + 1) * UNZIP_MAX_RATIO)) {
				rc = err_set(e, ERR_INVALID, "the zip archive expands too much (a zip bomb?): %.200s", name);
				break;
			}
			if (write(fd, buf, (size_t)got) != got) {
				rc = err_set(e, ERR_IO, "cannot write %s: %s", path, strerror(errno));
				break;
			}
		}
		if (!rc && got < 0)
			rc = err_set(e, ERR_INVALID, "the zip archive is corrupt: %.200s", name);
		close(fd);
		zip_fclose(zf);
	}
out:
	zip_discard(z);
	return rc;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

int remove_tree(const char *path)
{
	struct stat st;
	if (lstat(path, &st))
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlink(path);
	return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
