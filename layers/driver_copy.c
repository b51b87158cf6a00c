/* The copy driver: the merged view of the layer trees, copied into the
 * scratch directory bottom-up (whiteouts delete, opaque directories are
 * emptied first), for file systems where no overlay works.
 *
 * The copy keeps every piece of metadata the diff compares (type, mode,
 * raw owner, user.kiln.owner, xattrs, nanosecond mtimes), so unchanged
 * entries compare equal.  Hard links between lower files are copied as
 * separate files: as with overlayfs (index=off), writing through one name
 * does not change the others.  File data is reflinked where the file
 * system can, else copied in the kernel (copy_file_range). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "layers/driver_internal.h"
#include "layers/layer_internal.h"
#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#define COPY_MAX_DEPTH 2048

static int reflink_state; /* 0 unknown, 1 works, -1 not here */

static int copy_data(int in, int out, off_t size)
{
    if (size == 0)
        return 0;
    if (reflink_state >= 0) {
        if (ioctl(out, FICLONE, in) == 0) {
            reflink_state = 1;
            return 0;
        }
        if (errno == EOPNOTSUPP || errno == ENOTTY || errno == EXDEV || errno == EINVAL)
            reflink_state = reflink_state == 1 ? 1 : -1;
    }
    off_t left = size;
    while (left > 0) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP || errno == EINVAL)
                break; /* plain read/write below */
            return -errno;
        }
        if (n == 0)
            return -EIO; /* the source shrank */
        left -= n;
    }
    if (left == 0)
        return 0;
    char buf[65536];
    off_t off = size - left;
    while (left > 0) {
        ssize_t n = pread(in, buf, sizeof(buf), off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EIO;
        int r = fs_write_all(out, buf, (size_t)n);
        if (r < 0)
            return r;
        left -= n;
        off += n;
    }
    return 0;
}

/* Owner, xattrs (user.kiln.owner included), mode, times: in this order
 * (chown clears set-id bits). */
static int copy_meta(int ddir, const char *name, int fd, const struct file_meta *m,
                     const char *path, struct kiln_error **err)
{
    mode_t type = m->st.st_mode & S_IFMT;
    int r = fd >= 0 ? fchown(fd, m->st.st_uid, m->st.st_gid)
                    : fchownat(ddir, name, m->st.st_uid, m->st.st_gid, AT_SYMLINK_NOFOLLOW);
    if (r < 0)
        return kiln_error_set(err, errno, "copy: chown '%s'", path);
    if (fd >= 0) {
        if (m->owner_from_xattr) {
            char v[32];
            int n = snprintf(v, sizeof(v), "%u:%u", (unsigned)m->uid, (unsigned)m->gid);
            if (fsetxattr(fd, KILN_OWNER_XATTR, v, (size_t)n, 0) < 0)
                return kiln_error_set(err, errno, "copy: '%s': set " KILN_OWNER_XATTR, path);
        }
        for (size_t i = 0; i < m->xattrs.n; i++)
            if (fsetxattr(fd, m->xattrs.names[i], m->xattrs.values[i], m->xattrs.sizes[i], 0) <
                0)
                log_debug("copy: '%s': cannot set xattr '%s': %s", path, m->xattrs.names[i],
                          strerror(errno));
    } else if (m->xattrs.n > 0) {
        /* symlinks and special files: only security.* and trusted.* */
        _cleanup_free_ char *pp = xasprintf("/proc/self/fd/%d/%s", ddir, name);
        for (size_t i = 0; i < m->xattrs.n; i++)
            if (lsetxattr(pp, m->xattrs.names[i], m->xattrs.values[i], m->xattrs.sizes[i], 0) <
                0)
                log_debug("copy: '%s': cannot set xattr '%s': %s", path, m->xattrs.names[i],
                          strerror(errno));
    }
    if (type != S_IFLNK) {
        r = fd >= 0 ? fchmod(fd, m->st.st_mode & 07777)
                    : fchmodat(ddir, name, m->st.st_mode & 07777, 0);
        if (r < 0)
            return kiln_error_set(err, errno, "copy: chmod '%s'", path);
    }
    struct timespec ts[2] = {m->st.st_atim, m->st.st_mtim};
    r = fd >= 0 ? futimens(fd, ts) : utimensat(ddir, name, ts, AT_SYMLINK_NOFOLLOW);
    if (r < 0)
        return kiln_error_set(err, errno, "copy: set times of '%s'", path);
    return 0;
}

static int copy_nondir(int sdir, int ddir, const char *name, const char *path,
                       const struct file_meta *m, struct kiln_error **err)
{
    int r = fs_rm_rf_at(ddir, name);
    if (r < 0)
        return kiln_error_set(err, -r, "copy: replace '%s'", path);
    mode_t type = m->st.st_mode & S_IFMT;
    if (type == S_IFREG) {
        _cleanup_close_ int in = openat(sdir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (in < 0)
            return kiln_error_set(err, errno, "copy: open '%s'", path);
        _cleanup_close_ int out =
            openat(ddir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (out < 0)
            return kiln_error_set(err, errno, "copy: create '%s'", path);
        r = copy_data(in, out, m->st.st_size);
        if (r < 0)
            return kiln_error_set(err, -r, "copy: copy '%s'", path);
        return copy_meta(ddir, name, out, m, path, err);
    }
    if (type == S_IFLNK)
        r = symlinkat(m->link, ddir, name);
    else if (type == S_IFIFO)
        r = mkfifoat(ddir, name, 0600);
    else if (type == S_IFCHR || type == S_IFBLK)
        r = mknodat(ddir, name, type | 0600, m->st.st_rdev);
    else
        return 0; /* sockets are not part of layers */
    if (r < 0) {
        if ((type == S_IFCHR || type == S_IFBLK) && (errno == EPERM || errno == EACCES)) {
            log_debug("copy: '%s': device node skipped", path);
            return 0;
        }
        return kiln_error_set(err, errno, "copy: create '%s'", path);
    }
    return copy_meta(ddir, name, -1, m, path, err);
}

static int clear_dir(int dfd, const char *path, struct kiln_error **err)
{
    int fd = dup(dfd);
    if (fd < 0)
        return kiln_error_set(err, errno, "copy: '%s'", path);
    _cleanup_dir_ DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return kiln_error_set(err, errno, "copy: '%s'", path);
    }
    rewinddir(d);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        int r = fs_rm_rf_at(dfd, de->d_name);
        if (r < 0)
            return kiln_error_set(err, -r, "copy: empty '%s'", path);
    }
    return 0;
}

static int apply_dir(int sdir, int ddir, const char *path, int depth, struct kiln_error **err);

static int apply_entry(int sdir, int ddir, const char *name, const char *path, int depth,
                       struct kiln_error **err)
{
    struct file_meta m;
    int r = meta_read_at(sdir, name, -1, &m);
    if (r < 0)
        return kiln_error_set(err, -r, "copy: read '%s'", path);
    if (stat_is_whiteout(&m.st)) {
        meta_free(&m);
        r = fs_rm_rf_at(ddir, name);
        return r < 0 ? kiln_error_set(err, -r, "copy: delete '%s'", path) : 0;
    }
    if (!S_ISDIR(m.st.st_mode)) {
        r = copy_nondir(sdir, ddir, name, path, &m, err);
        meta_free(&m);
        return r;
    }
    struct stat dst;
    if (fstatat(ddir, name, &dst, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(dst.st_mode)) {
        r = fs_rm_rf_at(ddir, name);
        if (r < 0) {
            meta_free(&m);
            return kiln_error_set(err, -r, "copy: replace '%s'", path);
        }
    }
    if (mkdirat(ddir, name, 0700) < 0 && errno != EEXIST) {
        meta_free(&m);
        return kiln_error_set(err, errno, "copy: mkdir '%s'", path);
    }
    _cleanup_close_ int s = openat(sdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    _cleanup_close_ int d = openat(ddir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (s < 0 || d < 0) {
        meta_free(&m);
        return kiln_error_set(err, errno, "copy: open '%s'", path);
    }
    /* A lower layer may have left it read-only; the final mode comes after. */
    fchmod(d, 0700);
    if (fd_is_opaque(s) && clear_dir(d, path, err) < 0) {
        meta_free(&m);
        return -1;
    }
    r = apply_dir(s, d, path, depth + 1, err);
    if (r == 0)
        r = copy_meta(ddir, name, d, &m, path, err);
    meta_free(&m);
    return r;
}

static int apply_dir(int sdir, int ddir, const char *path, int depth, struct kiln_error **err)
{
    if (depth > COPY_MAX_DEPTH)
        return kiln_error_set(err, ELOOP, "copy: '%s' nested too deep", path);
    int fd = dup(sdir);
    if (fd < 0)
        return kiln_error_set(err, errno, "copy: '%s'", path);
    _cleanup_dir_ DIR *dir = fdopendir(fd);
    if (!dir) {
        close(fd);
        return kiln_error_set(err, errno, "copy: '%s'", path);
    }
    rewinddir(dir);
    struct dirent *de;
    while ((de = readdir(dir))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        _cleanup_free_ char *sub =
            *path ? xasprintf("%s/%s", path, de->d_name) : xstrdup(de->d_name);
        if (apply_entry(sdir, ddir, de->d_name, sub, depth, err) < 0)
            return -1;
    }
    return 0;
}

int copy_populate(struct rootfs *r, struct kiln_error **err)
{
    r->merged = xasprintf("%s/merged", r->scratch);
    if (mkdir(r->merged, 0755) < 0 && errno != EEXIST)
        return kiln_error_set(err, errno, "copy: create '%s'", r->merged);
    _cleanup_close_ int dfd = open(r->merged, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return kiln_error_set(err, errno, "copy: open '%s'", r->merged);
    /* bottom-up: the lowest layer first */
    for (size_t i = strv_len(r->lowers); i-- > 0;) {
        _cleanup_close_ int sfd =
            open(r->lowers[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sfd < 0)
            return kiln_error_set(err, errno, "copy: open layer '%s'", r->lowers[i]);
        /* a layer root is never opaque (as with overlayfs) */
        if (apply_dir(sfd, dfd, "", 0, err) < 0)
            return kiln_error_wrap(err, "layer '%s'", r->lowers[i]);
    }
    fchmod(dfd, 0755);
    return 0;
}
