#include "fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "strbuf.h"
#include "xalloc.h"

int fs_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int fs_read_fd(int fd, size_t max, char **ret, size_t *ret_len)
{
    size_t cap = 4096, len = 0;
    char *buf = xmalloc(cap + 1);
    for (;;) {
        if (len == cap) {
            if (cap > max) {
                free(buf);
                return -EFBIG;
            }
            cap *= 2;
            buf = xrealloc(buf, cap + 1);
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            free(buf);
            return -e;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > max) {
            free(buf);
            return -EFBIG;
        }
    }
    buf[len] = '\0';
    *ret = buf;
    if (ret_len)
        *ret_len = len;
    return 0;
}

int fs_read_file_at(int dirfd, const char *path, size_t max, char **ret, size_t *ret_len)
{
    _cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    return fs_read_fd(fd, max, ret, ret_len);
}

int fs_write_atomic_at(int dirfd, const char *path, const void *data, size_t len, mode_t mode,
                       bool sync)
{
    /* pid and a per-process sequence: threads of one process never share a
     * temporary name (and O_EXCL makes sure of it) */
    static unsigned long seq;
    unsigned long n = __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED);
    _cleanup_free_ char *tmp = xasprintf("%s.tmp-%d-%lu", path, (int)getpid(), n);
    _cleanup_close_ int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0 && errno == EEXIST) {
        /* left by a dead process that had our pid */
        unlinkat(dirfd, tmp, 0);
        fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    }
    if (fd < 0)
        return -errno;
    int r = fs_write_all(fd, data, len);
    if (r == 0 && sync && fsync(fd) < 0)
        r = -errno;
    if (r == 0 && close(TAKE_FD(fd)) < 0)
        r = -errno;
    if (r == 0 && renameat(dirfd, tmp, dirfd, path) < 0)
        r = -errno;
    if (r < 0) {
        unlinkat(dirfd, tmp, 0);
        return r;
    }
    if (sync) {
        _cleanup_free_ char *dir = xstrdup(path);
        char *slash = strrchr(dir, '/');
        if (slash) {
            *slash = '\0';
            fs_fsync_dir_at(dirfd, dir[0] ? dir : "/");
        } else {
            fs_fsync_dir_at(dirfd, ".");
        }
    }
    return 0;
}

int fs_fsync_dir_at(int dirfd, const char *path)
{
    _cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fsync(fd) < 0)
        return -errno;
    return 0;
}

int fs_mkdir_p_at(int dirfd, const char *path, mode_t mode)
{
    _cleanup_free_ char *p = xstrdup(path);
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/')
        p[--n] = '\0';
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdirat(dirfd, p, mode) < 0 && errno != EEXIST)
            return -errno;
        *s = '/';
    }
    if (mkdirat(dirfd, p, mode) < 0) {
        if (errno != EEXIST)
            return -errno;
        struct stat st;
        if (fstatat(dirfd, p, &st, 0) < 0)
            return -errno;
        if (!S_ISDIR(st.st_mode))
            return -ENOTDIR;
    }
    return 0;
}

int fs_mkdir_p(const char *path, mode_t mode)
{
    return fs_mkdir_p_at(AT_FDCWD, path, mode);
}

static int rm_rf_children(int dfd)
{
    _cleanup_dir_ DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return -errno;
    }
    int ret = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        int r = fs_rm_rf_at(dirfd(d), de->d_name);
        if (r < 0 && ret == 0)
            ret = r;
    }
    return ret;
}

int fs_rm_rf_at(int dirfd, const char *name)
{
    if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return -errno;
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISDIR(st.st_mode))
        return -EPERM;
    if ((st.st_mode & 0700) != 0700)
        (void)!fchmodat(dirfd, name, st.st_mode | 0700, 0);
    int dfd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return -errno;
    int r = rm_rf_children(dfd);
    if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        return r < 0 ? r : -errno;
    return r;
}

int fs_rm_rf(const char *path)
{
    return fs_rm_rf_at(AT_FDCWD, path);
}

bool fs_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

bool fs_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

char *path_join(const char *a, const char *b)
{
    size_t la = strlen(a);
    while (la > 0 && a[la - 1] == '/')
        la--;
    while (*b == '/')
        b++;
    return xasprintf("%.*s/%s", (int)la, a, b);
}

/* Cleans an absolute path ("/a/./b//c/.." -> "/a/b"); result has no trailing
 * slash except "/". */
char *path_clean_abs(const char *p)
{
    char **parts = strv_new();
    _cleanup_free_ char *copy = xstrdup(p);
    char *save = NULL;
    for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        if (strcmp(c, ".") == 0)
            continue;
        if (strcmp(c, "..") == 0) {
            size_t n = strv_len(parts);
            if (n) {
                free(parts[n - 1]);
                parts[n - 1] = NULL;
            }
            continue;
        }
        strv_push(&parts, c);
    }
    struct strbuf sb = STRBUF_INIT;
    for (size_t i = 0; parts[i]; i++) {
        strbuf_addc(&sb, '/');
        strbuf_adds(&sb, parts[i]);
    }
    if (!sb.len)
        strbuf_addc(&sb, '/');
    strv_free(parts);
    return strbuf_detach(&sb, NULL);
}
