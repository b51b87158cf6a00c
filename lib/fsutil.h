/* Small file-system helpers.  Leaf helpers return 0 or -errno. */
#ifndef KILN_FSUTIL_H
#define KILN_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

int fs_write_all(int fd, const void *buf, size_t len);
/* Reads until EOF or `max` bytes; -EFBIG when the file is larger. */
int fs_read_fd(int fd, size_t max, char **ret, size_t *ret_len);
int fs_read_file_at(int dirfd, const char *path, size_t max, char **ret, size_t *ret_len);
/* Writes a file whole: a temporary beside it, optional fsync, rename. */
int fs_write_atomic_at(int dirfd, const char *path, const void *data, size_t len, mode_t mode,
                       bool sync);
/* mkdir -p; existing directories are fine. */
int fs_mkdir_p(const char *path, mode_t mode);
int fs_mkdir_p_at(int dirfd, const char *path, mode_t mode);
/* rm -rf of dirfd/name, making directories writable on the way down.
 * A missing name is not an error. */
int fs_rm_rf_at(int dirfd, const char *name);
int fs_rm_rf(const char *path);
/* fsync of a directory, for renames to last. */
int fs_fsync_dir_at(int dirfd, const char *path);
bool fs_exists(const char *path);
bool fs_is_dir(const char *path);
/* Cleans a path as an absolute one, lexically ("a/./b//c/.." -> "/a/b",
 * ".." above the root stays at the root); no trailing '/' but for "/". */
char *path_clean_abs(const char *p);
/* Joins two path parts with exactly one '/'. */
char *path_join(const char *a, const char *b);

#endif
