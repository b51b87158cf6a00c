/* Imports: a rootfs tarball or a directory becomes one layer, normalised
 * through the layer writer. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "layers/layer.h"
#include "layers/layer_internal.h"
#include "lib/cleanup.h"
#include "lib/log.h"
#include "lib/strset.h"
#include "lib/xalloc.h"

#define IMPORT_BUF (1 << 20)

/* An imported image is a base for builds and `kiln run`: its tree is
 * extracted in the same pass as the blob is written (layer.h, opts.tree),
 * so that no build has to decompress it. */
static struct layer_write_opts import_opts(const struct layer_write_opts *opts)
{
    struct layer_write_opts o = {.compression = COMPRESSION_GZIP, .clamp_mtime = -1};
    if (opts)
        o = *opts;
    o.tree = true;
    return o;
}
#define IMPORT_MAX_DEPTH 1024

/* A hard link must name a non-directory entry earlier in the archive
 * (as extraction would find it); `seen` holds those paths. */
static int import_entry(struct archive *a, struct layer_writer *w, struct archive_entry *ae,
                        uint8_t *buf, struct strset *seen, struct kiln_error **err)
{
    const char *raw = archive_entry_pathname(ae);
    if (!raw)
        raw = archive_entry_pathname_utf8(ae);
    if (!raw)
        return kiln_error_set(err, 0, "import: an entry without a name");
    const char *bad = NULL;
    _cleanup_free_ char *path = layer_path_clean(raw, true, &bad);
    if (!path) {
        if (bad)
            return kiln_error_set(err, 0, "import: refusing entry '%s': %s", raw, bad);
        return 0; /* the root directory */
    }
    mode_t type = archive_entry_filetype(ae);
    const char *hl = archive_entry_hardlink(ae);
    if (!hl)
        hl = archive_entry_hardlink_utf8(ae);
    _cleanup_free_ char *target = NULL;
    if (hl) {
        target = layer_path_clean(hl, true, &bad);
        if (!target)
            return kiln_error_set(err, 0, "import: refusing hard link '%s' to '%s': %s", raw, hl,
                                  bad ? bad : "the root");
        if (!strset_contains(seen, target))
            return kiln_error_set(err, 0,
                                  "import: refusing hard link '%s' to '%s': no such file before it",
                                  raw, hl);
        type = AE_IFREG;
    }
    if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK && type != AE_IFIFO &&
        type != AE_IFCHR && type != AE_IFBLK) {
        log_debug("import: '%s': entry type not stored in layers, skipped", path);
        return 0;
    }
    if (type == AE_IFDIR)
        strset_remove(seen, path);
    else
        strset_add(seen, path);
    la_int64_t size = archive_entry_size(ae);
    if (size < 0 || size > LAYER_MAX_FILE_SIZE)
        return kiln_error_set(err, 0, "import: '%s': absurd size", path);

    struct layer_entry e = {.path = path, .content_fd = -1};
    e.st.st_mode = type | (archive_entry_perm(ae) & 07777);
    e.st.st_uid = (uid_t)archive_entry_uid(ae);
    e.st.st_gid = (gid_t)archive_entry_gid(ae);
    e.st.st_size = type == AE_IFREG && !hl ? (off_t)size : 0;
    e.st.st_mtim.tv_sec = archive_entry_mtime(ae);
    e.st.st_rdev = makedev(archive_entry_rdevmajor(ae), archive_entry_rdevminor(ae));
    if (hl) {
        e.hardlink = true;
        e.link = target;
    } else if (type == AE_IFLNK) {
        e.link = archive_entry_symlink(ae);
        if (!e.link)
            e.link = archive_entry_symlink_utf8(ae);
    }
    const char *names[LAYER_MAX_XATTRS];
    const void *values[LAYER_MAX_XATTRS];
    size_t sizes[LAYER_MAX_XATTRS];
    size_t nx = 0;
    if (archive_entry_xattr_reset(ae) > LAYER_MAX_XATTRS)
        return kiln_error_set(err, 0, "import: '%s': too many extended attributes", path);
    const char *xn;
    const void *xv;
    size_t xs;
    while (nx < LAYER_MAX_XATTRS && archive_entry_xattr_next(ae, &xn, &xv, &xs) == ARCHIVE_OK) {
        names[nx] = xn;
        values[nx] = xv;
        sizes[nx] = xs;
        nx++;
    }
    e.xattr_names = names;
    e.xattr_values = values;
    e.xattr_sizes = sizes;
    e.n_xattrs = nx;
    if (layer_writer_add(w, &e, err) < 0)
        return -1;
    if (e.st.st_size == 0)
        return 0;
    uint64_t left = (uint64_t)e.st.st_size;
    while (left > 0) {
        /* archive_read_data fills sparse holes with zeros: dense content */
        la_ssize_t n = archive_read_data(a, buf, left < IMPORT_BUF ? (size_t)left : IMPORT_BUF);
        if (n < 0)
            return kiln_error_set(err, archive_errno(a) > 0 ? archive_errno(a) : 0,
                                  "import: read '%s': %s", path, archive_error_string(a));
        if (n == 0)
            return kiln_error_set(err, 0, "import: '%s': truncated content", path);
        if (layer_writer_write(w, buf, (size_t)n, err) < 0)
            return -1;
        left -= (uint64_t)n;
    }
    return 0;
}

int layer_import_tar_fd(struct store *s, int fd, const struct layer_write_opts *opts,
                        struct layer_result *ret, struct kiln_error **err)
{
    locale_t utf8 = newlocale(LC_ALL_MASK, "C.UTF-8", (locale_t)0);
    locale_t old = utf8 ? uselocale(utf8) : (locale_t)0;
    struct layer_writer *w = NULL;
    struct strset seen = STRSET_INIT;
    _cleanup_free_ uint8_t *buf = xmalloc(IMPORT_BUF);
    struct archive *a = archive_read_new();
    int r = -1;
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    if (archive_read_open_fd(a, fd, 65536) != ARCHIVE_OK) {
        kiln_error_set(err, 0, "import: %s", archive_error_string(a));
        goto out;
    }
    struct layer_write_opts o = import_opts(opts);
    if (layer_writer_begin(s, &o, &w, err) < 0)
        goto out;
    for (uint64_t n = 0;; n++) {
        struct archive_entry *ae = NULL;
        int ar = archive_read_next_header(a, &ae);
        if (ar == ARCHIVE_EOF)
            break;
        if (ar < ARCHIVE_WARN) {
            kiln_error_set(err, 0, "import: %s: %s", n ? "corrupt archive" : "not a tar archive",
                           archive_error_string(a));
            goto out;
        }
        if (import_entry(a, w, ae, buf, &seen, err) < 0)
            goto out;
    }
    r = layer_writer_finish(w, ret, err);
    w = NULL;
out:
    layer_writer_abort(w);
    archive_read_free(a);
    strset_free(&seen);
    if (utf8) {
        uselocale(old);
        freelocale(utf8);
    }
    return r;
}

static int import_walk(struct layer_writer *w, int dfd, const char *prefix, int depth,
                       struct kiln_error **err)
{
    if (depth > IMPORT_MAX_DEPTH)
        return kiln_error_set(err, ELOOP, "import: '%s': directories nested too deep", prefix);
    char **names = NULL;
    size_t n = 0;
    int r = dir_list_names(dfd, true, &names, &n);
    if (r < 0)
        return kiln_error_set(err, -r, "import: list '%s'", *prefix ? prefix : ".");
    for (size_t i = 0; i < n && r == 0; i++) {
        _cleanup_free_ char *path =
            *prefix ? xasprintf("%s/%s", prefix, names[i]) : xstrdup(names[i]);
        struct file_meta m;
        int mr = meta_read_at(dfd, names[i], -1, &m);
        if (mr < 0) {
            r = kiln_error_set(err, -mr, "import: '%s'", path);
            break;
        }
        r = layer_writer_add_meta(w, dfd, names[i], path, &m, true, err);
        bool is_dir = S_ISDIR(m.st.st_mode);
        meta_free(&m);
        if (r < 0 || !is_dir)
            continue;
        int sub = openat(dfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0) {
            r = kiln_error_set(err, errno, "import: open '%s'", path);
            break;
        }
        r = import_walk(w, sub, path, depth + 1, err);
        close(sub);
    }
    names_free(names, n);
    return r;
}

int layer_import_dir(struct store *s, const char *dir, const struct layer_write_opts *opts,
                     struct layer_result *ret, struct kiln_error **err)
{
    _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return kiln_error_set(err, errno, "import: open '%s'", dir);
    struct layer_writer *w = NULL;
    struct layer_write_opts o = import_opts(opts);
    if (layer_writer_begin(s, &o, &w, err) < 0)
        return -1;
    if (import_walk(w, dfd, "", 0, err) < 0) {
        layer_writer_abort(w);
        return kiln_error_wrap(err, "import '%s'", dir);
    }
    return layer_writer_finish(w, ret, err);
}
