/*
 * Extracts the text files of a .zip (a zipped Markdown folder) into a fresh
 * directory, refusing what could harm: entries with absolute paths or "..",
 * symlinks, more than UNZIP_MAX_ENTRIES entries, more than UNZIP_MAX_TOTAL
 * bytes in all, and compression ratios beyond UNZIP_MAX_RATIO (zip bombs).
 * Sizes are counted while inflating, never taken from the archive's word.
 * Files other than Markdown, text, JSON and YAML are skipped.
 */
#ifndef BOOKD_UNZIP_H
#define BOOKD_UNZIP_H

#include "../core/err.h"

#define UNZIP_MAX_ENTRIES 10000
#define UNZIP_MAX_TOTAL ((long long)512 << 20)
#define UNZIP_MAX_RATIO 200

/* dest must not exist yet. On failure dest may hold a partial tree: the
 * caller removes it. */
int unzip_to_dir(const char *zip_path, const char *dest, struct err *e) WUR;
/* rm -rf of a directory tree we made (no symlinks followed). */
int remove_tree(const char *path);

#endif
