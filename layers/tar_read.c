/* Layer extraction into a tree, overlay style, refusing hostile entries.
 *
 * The stream is decompressed here (format by magic), hashed twice on the
 * way (blob digest of the raw bytes, diff_id of the tar) and parsed by
 * libarchive; every file is created with *at() calls relative to parent
 * directories opened one component at a time with O_NOFOLLOW, so no entry
 * can reach outside the tree or through a symlink. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "layers/compress.h"
#include "layers/layer_internal.h"
#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/strset.h"
#include "lib/xalloc.h"

#define RBUF_SIZE (256 * 1024)
#define LAYER_MAX_ENTRIES 10000000

struct dir_rec {
    char *path;
    mode_t mode;
    struct timespec mtime;
    bool has_mtime;
};

struct extractor {
    int rootfd;
    struct archive *ar;
    struct decompressor *dec;
    struct sha256 tar_hash;
    bool hash_live;
    uint8_t *rbuf;
    uint8_t *wbuf;
    struct kiln_error *cb_err;
    locale_t utf8;
    uid_t my_uid;
    gid_t my_gid;
    char *cached_parent;
    int cached_fd;
    /* directories whose mode and mtime are set at the end */
    struct dir_rec *dirs;
    size_t ndirs, dcap;
    size_t *dindex; /* open addressing: index+1 into dirs, 0 = empty */
    size_t dindex_cap;
    struct tar_extract_result *res;
};

/* ---- directory records --------------------------------------------------------- */

static size_t *dindex_slot(struct extractor *x, const char *path)
{
    for (size_t i = strset_hash(path) & (x->dindex_cap - 1);; i = (i + 1) & (x->dindex_cap - 1))
        if (x->dindex[i] == 0 || strcmp(x->dirs[x->dindex[i] - 1].path, path) == 0)
            return &x->dindex[i];
}

static struct dir_rec *dir_rec_get(struct extractor *x, const char *path)
{
    if ((x->ndirs + 1) * 2 > x->dindex_cap) {
        size_t cap = x->dindex_cap ? x->dindex_cap * 2 : 256;
        free(x->dindex);
        x->dindex = xcalloc(cap, sizeof(*x->dindex));
        x->dindex_cap = cap;
        for (size_t i = 0; i < x->ndirs; i++)
            *dindex_slot(x, x->dirs[i].path) = i + 1;
    }
    size_t *slot = dindex_slot(x, path);
    if (*slot)
        return &x->dirs[*slot - 1];
    XGROW(x->dirs, x->dcap, x->ndirs + 1);
    struct dir_rec *d = &x->dirs[x->ndirs++];
    memset(d, 0, sizeof(*d));
    d->path = xstrdup(path);
    d->mode = 0755;
    *slot = x->ndirs;
    return d;
}

/* ---- parents ------------------------------------------------------------------- */

static int refuse(const char *path, const char *why, struct kiln_error **err)
{
    size_t n = strlen(path);
    return kiln_error_set(err, 0, "layer: refusing entry '%.*s%s': %s", n > 200 ? 200 : (int)n, path,
                          n > 200 ? "..." : "", why);
}

/* Opens (O_PATH) the directory `parent` under the root one component at a
 * time without following symlinks; creates missing components when
 * `create`.  The descriptor is cached: the caller must not close it. */
static int open_parent(struct extractor *x, const char *parent, bool create, const char *entry,
                       int *ret_fd, struct kiln_error **err)
{
    if (!*parent) {
        *ret_fd = x->rootfd;
        return 0;
    }
    if (x->cached_parent && strcmp(x->cached_parent, parent) == 0) {
        *ret_fd = x->cached_fd;
        return 0;
    }
    _cleanup_free_ char *p = xstrdup(parent);
    int cur = x->rootfd;
    char *save = NULL;
    for (char *comp = strtok_r(p, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
        int fd = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT && create) {
            if (mkdirat(cur, comp, 0700) < 0 && errno != EEXIST) {
                int e = errno;
                if (cur != x->rootfd)
                    close(cur);
                return kiln_error_set(err, e, "layer: create parent of '%s'", entry);
            }
            /* An implicit directory: 0755, recorded so its mode is set. */
            size_t done = (size_t)(comp - p) + strlen(comp);
            _cleanup_free_ char *sub = xstrndup(parent, done);
            dir_rec_get(x, sub);
            fd = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        int e = errno;
        if (cur != x->rootfd)
            close(cur);
        if (fd < 0) {
            if (e == ENOTDIR || e == ELOOP)
                return refuse(entry, "a parent is a symlink or not a directory", err);
            if (e == ENOENT)
                return refuse(entry, "a parent directory is missing", err);
            return kiln_error_set(err, e, "layer: open parent of '%s'", entry);
        }
        cur = fd;
    }
    if (x->cached_parent) {
        close(x->cached_fd);
        free(x->cached_parent);
    }
    x->cached_parent = xstrdup(parent);
    x->cached_fd = cur;
    *ret_fd = cur;
    return 0;
}

static void drop_cached_parent(struct extractor *x)
{
    if (x->cached_parent) {
        close(x->cached_fd);
        free(x->cached_parent);
        x->cached_parent = NULL;
        x->cached_fd = -1;
    }
}

/* Splits "a/b/c" into "a/b" and "c" (in place). */
static void split_path(char *path, const char **ret_parent, const char **ret_base)
{
    char *slash = strrchr(path, '/');
    if (slash) {
        *slash = '\0';
        *ret_parent = path;
        *ret_base = slash + 1;
    } else {
        *ret_parent = "";
        *ret_base = path;
    }
}

static void drop_cached_parent(struct extractor *x);

/* Removes whatever is at pfd/name (a directory with its contents).  The
 * cached parent may be inside what goes: it is dropped.  pfd stays valid
 * (it is the cache only when it is not being removed). */
static int remove_existing(struct extractor *x, int pfd, const char *name, const char *path,
                           struct kiln_error **err)
{
    if (x->cached_parent && pfd != x->cached_fd)
        drop_cached_parent(x);
    int r = fs_rm_rf_at(pfd, name);
    if (r < 0)
        return kiln_error_set(err, -r, "layer: replace '%s'", path);
    return 0;
}

/* ---- metadata --------------------------------------------------------------------- */

static int record_owner(struct extractor *x, int fd, const char *path, mode_t type, uid_t uid,
                        gid_t gid)
{
    if (fd >= 0 && (type == S_IFREG || type == S_IFDIR)) {
        char v[32];
        int n = snprintf(v, sizeof(v), "%u:%u", (unsigned)uid, (unsigned)gid);
        if (fsetxattr(fd, KILN_OWNER_XATTR, v, (size_t)n, 0) == 0)
            return 0;
        log_debug("layer: '%s': cannot record owner in an xattr (%s), using the side table",
                  path, strerror(errno));
    }
    owner_record_add(&x->res->owners, path, uid, gid);
    return 0;
}

/* chown to the entry's ids where they are mapped; otherwise keep kiln as
 * the owner and record the ids. */
static int apply_owner(struct extractor *x, int pfd, const char *base, int fd, const char *path,
                       mode_t type, uid_t uid, gid_t gid, struct kiln_error **err)
{
    if (uid == x->my_uid && gid == x->my_gid)
        return 0;
    int r = fd >= 0 ? fchown(fd, uid, gid) : fchownat(pfd, base, uid, gid, AT_SYMLINK_NOFOLLOW);
    if (r == 0)
        return 0;
    if (errno == EINVAL || errno == EPERM)
        return record_owner(x, fd, path, type, uid, gid);
    return kiln_error_set(err, errno, "layer: chown '%s'", path);
}

static int apply_xattrs(struct archive_entry *ae, int fd, const char *path,
                        struct kiln_error **err)
{
    int n = archive_entry_xattr_reset(ae);
    if (n > LAYER_MAX_XATTRS)
        return refuse(path, "too many extended attributes", err);
    const char *name;
    const void *value;
    size_t size;
    while (archive_entry_xattr_next(ae, &name, &value, &size) == ARCHIVE_OK) {
        if (!name || !*name)
            continue;
        if (xattr_is_private(name)) {
            log_debug("layer: '%s': ignoring xattr '%s'", path, name);
            continue;
        }
        if (size > LAYER_MAX_XATTR_VALUE)
            return refuse(path, "extended attribute too large", err);
        if (fd < 0) {
            log_debug("layer: '%s': xattr '%s' not kept on this file type", path, name);
            continue;
        }
        if (fsetxattr(fd, name, value, size, 0) < 0) {
            /* security.* and trusted.* need privileges a user namespace
             * does not give; file systems may lack xattrs. */
            if (errno == EPERM || errno == ENOTSUP || errno == EOPNOTSUPP || errno == EACCES) {
                log_debug("layer: '%s': cannot set xattr '%s': %s", path, name, strerror(errno));
                continue;
            }
            return kiln_error_set(err, errno, "layer: '%s': set xattr '%s'", path, name);
        }
    }
    return 0;
}

static struct timespec entry_mtime(struct archive_entry *ae)
{
    struct timespec ts = {0, 0};
    if (archive_entry_mtime_is_set(ae)) {
        ts.tv_sec = archive_entry_mtime(ae);
        long ns = archive_entry_mtime_nsec(ae);
        ts.tv_nsec = ns >= 0 && ns < 1000000000L ? ns : 0;
    }
    return ts;
}

/* ---- entry types ------------------------------------------------------------------- */

static int write_content(struct extractor *x, int fd, struct archive_entry *ae, const char *path,
                         struct kiln_error **err)
{
    la_int64_t size = archive_entry_size(ae);
    const void *buf;
    size_t len;
    la_int64_t off;
    la_int64_t end = 0;
    for (;;) {
        int r = archive_read_data_block(x->ar, &buf, &len, &off);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN) {
            if (x->cb_err) {
                kiln_error_set(err, x->cb_err->code, "%s", x->cb_err->msg);
                kiln_error_free(&x->cb_err);
                return kiln_error_wrap(err, "layer: read content of '%s'", path);
            }
            return kiln_error_set(err, 0, "layer: read content of '%s': %s", path,
                                  archive_error_string(x->ar));
        }
        if (off < 0 || off > size || (la_int64_t)len > size - off)
            return refuse(path, "content beyond the entry's size", err);
        const uint8_t *p = buf;
        size_t left = len;
        la_int64_t pos = off;
        while (left > 0) {
            ssize_t n = pwrite(fd, p, left, (off_t)pos);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                return kiln_error_set(err, errno, "layer: write '%s'", path);
            }
            p += n;
            pos += n;
            left -= (size_t)n;
        }
        if (off + (la_int64_t)len > end)
            end = off + (la_int64_t)len;
    }
    /* A sparse tail: the size, not the last data byte, ends the file. */
    if (end < size && ftruncate(fd, (off_t)size) < 0)
        return kiln_error_set(err, errno, "layer: extend '%s'", path);
    return 0;
}

static int make_regular(struct extractor *x, int pfd, const char *base, const char *path,
                        struct archive_entry *ae, struct kiln_error **err)
{
    la_int64_t size = archive_entry_size(ae);
    if (size < 0 || size > LAYER_MAX_FILE_SIZE)
        return refuse(path, "absurd file size", err);
    _cleanup_close_ int fd = -1;
    for (int attempt = 0; attempt < 2; attempt++) {
        fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0 || errno != EEXIST || attempt)
            break;
        if (remove_existing(x, pfd, base, path, err) < 0)
            return -1;
    }
    if (fd < 0)
        return kiln_error_set(err, errno, "layer: create '%s'", path);
    if (write_content(x, fd, ae, path, err) < 0)
        return -1;
    mode_t type = S_IFREG;
    if (apply_owner(x, pfd, base, fd, path, type, (uid_t)archive_entry_uid(ae),
                    (gid_t)archive_entry_gid(ae), err) < 0)
        return -1;
    if (apply_xattrs(ae, fd, path, err) < 0)
        return -1;
    /* after chown, which clears set-id bits */
    if (fchmod(fd, archive_entry_perm(ae) & 07777) < 0)
        return kiln_error_set(err, errno, "layer: chmod '%s'", path);
    struct timespec ts[2] = {entry_mtime(ae), entry_mtime(ae)};
    if (futimens(fd, ts) < 0)
        return kiln_error_set(err, errno, "layer: set times of '%s'", path);
    return 0;
}

static int make_dir(struct extractor *x, int pfd, const char *base, const char *path,
                    struct archive_entry *ae, struct kiln_error **err)
{
    if (mkdirat(pfd, base, 0700) < 0) {
        if (errno != EEXIST)
            return kiln_error_set(err, errno, "layer: mkdir '%s'", path);
        struct stat st;
        if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
            return kiln_error_set(err, errno, "layer: stat '%s'", path);
        if (!S_ISDIR(st.st_mode)) {
            if (remove_existing(x, pfd, base, path, err) < 0)
                return -1;
            if (mkdirat(pfd, base, 0700) < 0)
                return kiln_error_set(err, errno, "layer: mkdir '%s'", path);
        }
    }
    _cleanup_close_ int fd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return kiln_error_set(err, errno, "layer: open '%s'", path);
    if (apply_owner(x, pfd, base, fd, path, S_IFDIR, (uid_t)archive_entry_uid(ae),
                    (gid_t)archive_entry_gid(ae), err) < 0)
        return -1;
    if (apply_xattrs(ae, fd, path, err) < 0)
        return -1;
    struct dir_rec *d = dir_rec_get(x, path);
    d->mode = archive_entry_perm(ae) & 07777;
    d->mtime = entry_mtime(ae);
    d->has_mtime = true;
    return 0;
}

/* Creates a symlink, fifo or device node with mk(); `what` names it. */
static int make_special(struct extractor *x, int pfd, const char *base, const char *path,
                        struct archive_entry *ae, struct kiln_error **err)
{
    mode_t type = archive_entry_filetype(ae);
    for (int attempt = 0; attempt < 2; attempt++) {
        int r;
        if (type == AE_IFLNK) {
            const char *target = archive_entry_symlink(ae);
            if (!target || !*target)
                return refuse(path, "symlink without a target", err);
            if (strlen(target) > LAYER_MAX_LINK)
                return refuse(path, "symlink target too long", err);
            r = symlinkat(target, pfd, base);
        } else if (type == AE_IFIFO) {
            r = mkfifoat(pfd, base, 0600);
        } else {
            dev_t rdev = makedev(archive_entry_rdevmajor(ae), archive_entry_rdevminor(ae));
            r = mknodat(pfd, base, type | 0600, rdev);
            if (r < 0 && (errno == EPERM || errno == EACCES)) {
                /* Device nodes cannot be made in a user namespace. */
                log_debug("layer: '%s': device node skipped (cannot be created here)", path);
                x->res->skipped++;
                return 0;
            }
        }
        if (r == 0)
            break;
        if (errno != EEXIST || attempt)
            return kiln_error_set(err, errno, "layer: create '%s'", path);
        if (remove_existing(x, pfd, base, path, err) < 0)
            return -1;
    }
    if (apply_owner(x, pfd, base, -1, path, type, (uid_t)archive_entry_uid(ae),
                    (gid_t)archive_entry_gid(ae), err) < 0)
        return -1;
    if (apply_xattrs(ae, -1, path, err) < 0)
        return -1;
    /* The node was just created by us: fchmodat cannot be misled here. */
    if (type != AE_IFLNK && fchmodat(pfd, base, archive_entry_perm(ae) & 07777, 0) < 0)
        return kiln_error_set(err, errno, "layer: chmod '%s'", path);
    struct timespec ts[2] = {entry_mtime(ae), entry_mtime(ae)};
    if (utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW) < 0)
        return kiln_error_set(err, errno, "layer: set times of '%s'", path);
    return 0;
}

static int make_hardlink(struct extractor *x, int pfd, const char *base, const char *path,
                         const char *raw_target, struct kiln_error **err)
{
    const char *bad = NULL;
    _cleanup_free_ char *target = layer_path_clean(raw_target, false, &bad);
    if (!target)
        return refuse(path, bad ? "hard link target outside the layer" : "hard link to the root",
                      err);
    if (strcmp(target, path) == 0)
        return refuse(path, "hard link to itself", err);
    /* The target's parent must exist already and is opened without
     * following symlinks; the link is made to the inode itself. */
    const char *tparent, *tbase;
    _cleanup_free_ char *tcopy = xstrdup(target);
    split_path(tcopy, &tparent, &tbase);
    int tpfd = -1;
    _cleanup_close_ int own = -1;
    if (!*tparent) {
        tpfd = x->rootfd;
    } else {
        /* A second walk, not cached (it would evict the entry's parent). */
        _cleanup_free_ char *pp = xstrdup(tparent);
        int cur = x->rootfd;
        char *save = NULL;
        for (char *c = strtok_r(pp, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
            int fd = openat(cur, c, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            int e = errno;
            if (cur != x->rootfd)
                close(cur);
            if (fd < 0)
                return e == ENOENT ? refuse(path, "hard link to a missing file", err)
                                   : refuse(path, "hard link target through a symlink", err);
            cur = fd;
        }
        own = cur;
        tpfd = cur;
    }
    struct stat st;
    if (fstatat(tpfd, tbase, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return refuse(path, "hard link to a missing file", err);
    if (S_ISDIR(st.st_mode))
        return refuse(path, "hard link to a directory", err);
    for (int attempt = 0; attempt < 2; attempt++) {
        if (linkat(tpfd, tbase, pfd, base, 0) == 0)
            return 0;
        if (errno != EEXIST || attempt)
            return kiln_error_set(err, errno, "layer: link '%s' to '%s'", path, target);
        if (remove_existing(x, pfd, base, path, err) < 0)
            return -1;
    }
    return 0;
}

static int make_whiteout(struct extractor *x, int pfd, const char *name, const char *path, struct kiln_error **err)
{
    if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return refuse(path, "whiteout of nothing", err);
    for (int attempt = 0; attempt < 2; attempt++) {
        if (mknodat(pfd, name, S_IFCHR | 0, makedev(0, 0)) == 0)
            return 0;
        if (errno != EEXIST || attempt)
            return kiln_error_set(err, errno,
                                  "layer: create whiteout '%s' (a 0/0 character device)", path);
        if (remove_existing(x, pfd, name, path, err) < 0)
            return -1;
    }
    return 0;
}

static int make_opaque(int pfd, const char *path, struct kiln_error **err)
{
    _cleanup_close_ int fd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return kiln_error_set(err, errno, "layer: open '%s'", path);
    /* Kernel overlayfs (userxattr) and fuse-overlayfs both read
     * user.overlay.opaque; fuse-overlayfs also its own name. */
    if (fsetxattr(fd, OVL_OPAQUE_XATTR, "y", 1, 0) < 0 ||
        fsetxattr(fd, FUSE_OPAQUE_XATTR, "y", 1, 0) < 0)
        return kiln_error_set(err, errno, "layer: mark '%s' opaque (user xattrs needed)", path);
    return 0;
}

static int extract_entry(struct extractor *x, struct archive_entry *ae, struct kiln_error **err)
{
    const char *raw = archive_entry_pathname(ae);
    if (!raw)
        raw = archive_entry_pathname_utf8(ae);
    if (!raw || !*raw)
        return kiln_error_set(err, 0, "layer: refusing an entry without a name");
    const char *bad = NULL;
    _cleanup_free_ char *path = layer_path_clean(raw, false, &bad);
    if (!path) {
        if (bad)
            return refuse(raw, bad, err);
        return 0; /* the root itself: its metadata is the rootfs's business */
    }
    _cleanup_free_ char *copy = xstrdup(path);
    const char *parent, *base;
    split_path(copy, &parent, &base);

    if (strncmp(base, WH_PREFIX, strlen(WH_PREFIX)) == 0) {
        int pfd;
        if (open_parent(x, parent, true, path, &pfd, err) < 0)
            return -1;
        if (strcmp(base, WH_OPAQUE) == 0) {
            if (!*parent) {
                /* Kernel overlayfs ignores opacity on a layer's root (and
                 * fuse-overlayfs does not): not marking it keeps every
                 * driver showing the same thing, the lower root entries. */
                log_debug("layer: opaque marker on the root ignored");
                x->res->skipped++;
                return 0;
            }
            return make_opaque(pfd, path, err);
        }
        if (strncmp(base, WH_PREFIX WH_PREFIX, 2 * strlen(WH_PREFIX)) == 0) {
            log_debug("layer: '%s': aufs metadata ignored", path);
            return 0;
        }
        return make_whiteout(x, pfd, base + strlen(WH_PREFIX), path, err);
    }

    int pfd;
    if (open_parent(x, parent, true, path, &pfd, err) < 0)
        return -1;
    const char *hl = archive_entry_hardlink(ae);
    if (!hl)
        hl = archive_entry_hardlink_utf8(ae);
    if (hl)
        return make_hardlink(x, pfd, base, path, hl, err);
    switch (archive_entry_filetype(ae)) {
    case AE_IFREG:
        return make_regular(x, pfd, base, path, ae, err);
    case AE_IFDIR:
        return make_dir(x, pfd, base, path, ae, err);
    case AE_IFLNK:
    case AE_IFIFO:
    case AE_IFCHR:
    case AE_IFBLK:
        return make_special(x, pfd, base, path, ae, err);
    default:
        log_debug("layer: '%s': unsupported entry type skipped", path);
        x->res->skipped++;
        return 0;
    }
}

/* ---- directories at the end ------------------------------------------------------- */

static int finish_dirs(struct extractor *x, struct kiln_error **err)
{
    drop_cached_parent(x);
    /* Children were recorded after their parents: going backwards sets
     * modes that may forbid writing only once nothing is left to write. */
    for (size_t i = x->ndirs; i-- > 0;) {
        struct dir_rec *d = &x->dirs[i];
        _cleanup_free_ char *copy = xstrdup(d->path);
        const char *parent, *base;
        split_path(copy, &parent, &base);
        int pfd;
        if (open_parent(x, parent, false, d->path, &pfd, err) < 0)
            return -1;
        _cleanup_close_ int fd =
            openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            /* replaced by a later non-directory entry */
            if (errno == ENOTDIR || errno == ELOOP || errno == ENOENT)
                continue;
            return kiln_error_set(err, errno, "layer: open '%s'", d->path);
        }
        if (fchmod(fd, d->mode) < 0)
            return kiln_error_set(err, errno, "layer: chmod '%s'", d->path);
        if (d->has_mtime) {
            struct timespec ts[2] = {d->mtime, d->mtime};
            if (futimens(fd, ts) < 0)
                return kiln_error_set(err, errno, "layer: set times of '%s'", d->path);
        }
    }
    return 0;
}

/* ---- the stream --------------------------------------------------------------------- */

static la_ssize_t ex_read(struct archive *a, void *opaque, const void **buf)
{
    struct extractor *x = opaque;
    size_t n = 0;
    if (decompressor_read(x->dec, x->rbuf, RBUF_SIZE, &n, &x->cb_err) < 0) {
        archive_set_error(a, EIO, "%s", x->cb_err ? x->cb_err->msg : "read failed");
        return -1;
    }
    sha256_update(&x->tar_hash, x->rbuf, n);
    *buf = x->rbuf;
    return (la_ssize_t)n;
}

static int archive_error(struct extractor *x, const char *what, struct kiln_error **err)
{
    if (x->cb_err) {
        kiln_error_set(err, x->cb_err->code, "%s", x->cb_err->msg);
        kiln_error_free(&x->cb_err);
        return kiln_error_wrap(err, "layer: %s", what);
    }
    return kiln_error_set(err, 0, "layer: %s: %s", what, archive_error_string(x->ar));
}

static int run(struct extractor *x, struct kiln_error **err)
{
    int r = ARCHIVE_OK;
    x->ar = archive_read_new();
    archive_read_support_format_tar(x->ar);
    archive_read_support_filter_none(x->ar);
    r = archive_read_open(x->ar, x, NULL, ex_read, NULL);
    if (r != ARCHIVE_OK)
        return archive_error(x, "not a tar stream", err);
    for (;;) {
        struct archive_entry *ae = NULL;
        r = archive_read_next_header(x->ar, &ae);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN)
            return archive_error(x, x->res->entries ? "corrupt tar stream" : "not a tar stream",
                                 err);
        if (++x->res->entries > LAYER_MAX_ENTRIES)
            return kiln_error_set(err, 0, "layer: more than %d entries", LAYER_MAX_ENTRIES);
        if (extract_entry(x, ae, err) < 0)
            return -1;
    }
    /* The diff_id covers the whole stream, padding after the tar included. */
    for (;;) {
        size_t n = 0;
        if (decompressor_read(x->dec, x->rbuf, RBUF_SIZE, &n, err) < 0)
            return kiln_error_wrap(err, "layer");
        if (n == 0)
            break;
        sha256_update(&x->tar_hash, x->rbuf, n);
    }
    return finish_dirs(x, err);
}

int tar_extract(int fd, int dirfd, struct tar_extract_result *ret, struct kiln_error **err)
{
    memset(ret, 0, sizeof(*ret));
    strbuf_init(&ret->owners);
    struct extractor x = {.rootfd = dirfd, .cached_fd = -1, .res = ret};
    x.my_uid = geteuid();
    x.my_gid = getegid();
    x.utf8 = newlocale(LC_ALL_MASK, "C.UTF-8", (locale_t)0);
    locale_t old = x.utf8 ? uselocale(x.utf8) : (locale_t)0;
    int r = decompressor_open(fd, &x.dec, err);
    if (r == 0) {
        x.rbuf = xmalloc(RBUF_SIZE);
        sha256_init(&x.tar_hash);
        x.hash_live = true;
        ret->format = decompressor_format(x.dec);
        r = run(&x, err);
    }
    if (r == 0) {
        sha256_final_digest(&x.tar_hash, ret->diff_id);
        x.hash_live = false;
        decompressor_raw_digest(x.dec, ret->blob_digest);
    }
    if (x.hash_live)
        sha256_abort(&x.tar_hash);
    if (x.ar)
        archive_read_free(x.ar);
    decompressor_free(x.dec);
    drop_cached_parent(&x);
    for (size_t i = 0; i < x.ndirs; i++)
        free(x.dirs[i].path);
    free(x.dirs);
    free(x.dindex);
    free(x.rbuf);
    kiln_error_free(&x.cb_err);
    if (x.utf8) {
        uselocale(old);
        freelocale(x.utf8);
    }
    return r;
}

void tar_extract_result_release(struct tar_extract_result *r)
{
    strbuf_release(&r->owners);
}
