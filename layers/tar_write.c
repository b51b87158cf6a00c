/* Layer writing in one streaming pass:
 *
 *   entries -> libarchive (pax restricted) -> write callback
 *     -> SHA-256 (diff_id) -> compressor (threads) -> output thread
 *     -> blob writer (SHA-256 of the blob, tmp/ file) -> commit
 *
 * The tar is never held in memory or written to a temporary tar file. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "layers/compress.h"
#include "layers/layer.h"
#include "layers/layer_internal.h"
#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#define READ_BUF_SIZE (1 << 20)

/* Hard links already written: (dev, ino) -> path. */
struct link_slot {
    dev_t dev;
    ino_t ino;
    char *path;
};

struct link_map {
    struct link_slot *slots;
    size_t cap, n;
};

/* The tree extracted beside the blob (opts.tree): the tar stream goes down
 * a pipe to tar_extract in a thread. */
struct tree_tee {
    int wr; /* write end of the pipe; -1 once closed */
    int rd;
    int dfd;
    char *tmp; /* tmp/tree-XXXXXX */
    pthread_t thread;
    bool started;
    int rc;
    struct kiln_error *err;
    struct tar_extract_result res;
};

struct layer_writer {
    struct store *store;
    struct layer_write_opts opts;
    struct archive *ar;
    locale_t utf8;
    struct sha256 diff_hash;
    bool hash_live;
    uint64_t tar_size;
    uint64_t entries;
    struct compressor *comp;
    struct blob_writer *blob;
    struct kiln_error *cb_err; /* failure inside a libarchive callback */
    uint8_t *buf;
    uint64_t pending; /* content bytes the caller still owes (layer_writer_write) */
    struct link_map links;
    struct tree_tee *tee;
    bool failed;
};

void layer_result_free(struct layer_result *r)
{
    if (!r)
        return;
    free(r->blob.media_type);
    r->blob.media_type = NULL;
}

/* ---- hard link map --------------------------------------------------------- */

static size_t link_hash(dev_t dev, ino_t ino)
{
    uint64_t h = (uint64_t)ino * 0x9e3779b97f4a7c15ULL ^ (uint64_t)dev * 0xc2b2ae3d27d4eb4fULL;
    return (size_t)(h ^ (h >> 29));
}

static struct link_slot *link_find(struct link_map *m, dev_t dev, ino_t ino)
{
    if (m->cap == 0)
        return NULL;
    for (size_t i = link_hash(dev, ino) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        struct link_slot *s = &m->slots[i];
        if (!s->path)
            return s;
        if (s->dev == dev && s->ino == ino)
            return s;
    }
}

static void link_insert(struct link_map *m, dev_t dev, ino_t ino, const char *path)
{
    if ((m->n + 1) * 2 > m->cap) {
        struct link_map bigger = {.cap = m->cap ? m->cap * 2 : 64};
        bigger.slots = xcalloc(bigger.cap, sizeof(*bigger.slots));
        for (size_t i = 0; i < m->cap; i++)
            if (m->slots[i].path)
                *link_find(&bigger, m->slots[i].dev, m->slots[i].ino) = m->slots[i];
        bigger.n = m->n;
        free(m->slots);
        *m = bigger;
    }
    struct link_slot *s = link_find(m, dev, ino);
    if (s->path)
        return;
    s->dev = dev;
    s->ino = ino;
    s->path = xstrdup(path);
    m->n++;
}

static void link_map_free(struct link_map *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->slots[i].path);
    free(m->slots);
    memset(m, 0, sizeof(*m));
}

/* ---- the tree beside the blob ------------------------------------------------ */

static void *tee_main(void *arg)
{
    struct tree_tee *t = arg;
    t->rc = tar_extract(t->rd, t->dfd, &t->res, &t->err);
    /* Drain what is left so that the writer never blocks on a dead reader. */
    char buf[65536];
    for (;;) {
        ssize_t n = read(t->rd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
    }
    return NULL;
}

static void tee_free(struct tree_tee *t)
{
    if (!t)
        return;
    if (t->wr >= 0)
        close(t->wr);
    if (t->started)
        pthread_join(t->thread, NULL);
    if (t->rd >= 0)
        close(t->rd);
    if (t->dfd >= 0)
        close(t->dfd);
    if (t->tmp)
        fs_rm_rf(t->tmp);
    free(t->tmp);
    tar_extract_result_release(&t->res);
    kiln_error_free(&t->err);
    free(t);
}

/* Starts the extraction thread; on any failure the layer is written
 * without its tree. */
static struct tree_tee *tee_start(struct store *s)
{
    struct tree_tee *t = xcalloc(1, sizeof(*t));
    t->wr = t->rd = t->dfd = -1;
    strbuf_init(&t->res.owners);
    struct kiln_error *e = NULL;
    int p[2];
    if (store_mkdtemp(s, "tree", &t->tmp, &e) < 0 || pipe2(p, O_CLOEXEC) < 0) {
        log_debug("layer: no tree beside the blob: %s", e ? e->msg : strerror(errno));
        kiln_error_free(&e);
        tee_free(t);
        return NULL;
    }
    t->rd = p[0];
    t->wr = p[1];
    /* Bigger pipe, fewer wake-ups; the default 64 KiB works too. */
    (void)fcntl(t->wr, F_SETPIPE_SZ, 1 << 20);
    t->dfd = open(t->tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (t->dfd < 0 || pthread_create(&t->thread, NULL, tee_main, t) != 0) {
        log_debug("layer: no tree beside the blob: cannot start the extraction");
        tee_free(t);
        return NULL;
    }
    t->started = true;
    return t;
}

static void tee_write(struct layer_writer *w, const void *data, size_t len)
{
    if (fs_write_all(w->tee->wr, data, len) < 0) {
        log_debug("layer: tree beside the blob dropped: %s", strerror(errno));
        tee_free(w->tee);
        w->tee = NULL;
    }
}

/* After the blob is committed: ends the stream, waits for the extraction
 * and installs the tree if it matches the layer. */
static void tee_finish(struct layer_writer *w, const char *diff_id)
{
    struct tree_tee *t = w->tee;
    w->tee = NULL;
    close(t->wr);
    t->wr = -1;
    pthread_join(t->thread, NULL);
    t->started = false;
    if (t->rc < 0) {
        log_debug("layer %s: tree beside the blob failed: %s", diff_id,
                  t->err ? t->err->msg : "?");
    } else if (strcmp(t->res.diff_id, diff_id) != 0) {
        log_debug("layer %s: tree beside the blob hashes to %s, dropped", diff_id,
                  t->res.diff_id);
    } else {
        struct kiln_error *e = NULL;
        /* tree_install removes tmp on failure too */
        char *tmp = TAKE_PTR(t->tmp);
        if (tree_install(w->store, tmp, t->dfd, diff_id, &t->res, NULL, &e) < 0) {
            log_debug("layer %s: tree beside the blob not installed: %s", diff_id, e->msg);
            kiln_error_free(&e);
        }
        free(tmp);
    }
    tee_free(t);
}

/* ---- callbacks ------------------------------------------------------------- */

static int blob_sink(void *opaque, const void *data, size_t len, struct kiln_error **err)
{
    return blob_writer_write(opaque, data, len, err);
}

static la_ssize_t tar_out(struct archive *a, void *opaque, const void *data, size_t len)
{
    struct layer_writer *w = opaque;
    sha256_update(&w->diff_hash, data, len);
    w->tar_size += len;
    if (compressor_write(w->comp, data, len, &w->cb_err) < 0) {
        archive_set_error(a, EIO, "compressed stream failed");
        return -1;
    }
    if (w->tee)
        tee_write(w, data, len);
    return (la_ssize_t)len;
}

/* libarchive converts names from the current locale to UTF-8 for pax
 * headers; a fixed UTF-8 locale on this thread makes the bytes of a layer
 * independent of the caller's locale. */
#define WITH_UTF8(w, stmt)                                                                         \
    do {                                                                                           \
        locale_t _old = (w)->utf8 ? uselocale((w)->utf8) : (locale_t)0;                            \
        stmt;                                                                                      \
        if ((w)->utf8)                                                                             \
            uselocale(_old);                                                                       \
    } while (0)

static int archive_fail(struct layer_writer *w, const char *what, const char *path,
                        struct kiln_error **err)
{
    w->failed = true;
    if (w->cb_err) {
        kiln_error_set(err, w->cb_err->code, "%s", w->cb_err->msg);
        kiln_error_free(&w->cb_err);
        return kiln_error_wrap(err, "layer: %s '%s'", what, path);
    }
    return kiln_error_set(err, archive_errno(w->ar) > 0 ? archive_errno(w->ar) : 0,
                          "layer: %s '%s': %s", what, path, archive_error_string(w->ar));
}

/* ---- begin / finish ---------------------------------------------------------- */

int layer_writer_begin(struct store *s, const struct layer_write_opts *opts,
                       struct layer_writer **ret, struct kiln_error **err)
{
    struct layer_writer *w = xcalloc(1, sizeof(*w));
    w->store = s;
    if (opts)
        w->opts = *opts;
    else
        w->opts = (struct layer_write_opts){.compression = COMPRESSION_GZIP, .clamp_mtime = -1};
    w->utf8 = newlocale(LC_ALL_MASK, "C.UTF-8", (locale_t)0);
    w->buf = xmalloc(READ_BUF_SIZE);
    if (store_blob_begin(s, &w->blob, err) < 0)
        goto fail;
    if (compressor_new(w->opts.compression, w->opts.level, 0, blob_sink, w->blob, &w->comp, err) <
        0)
        goto fail;
    sha256_init(&w->diff_hash);
    w->hash_live = true;
    if (w->opts.tree)
        w->tee = tee_start(s);

    w->ar = archive_write_new();
    int r = ARCHIVE_OK;
    WITH_UTF8(w, {
        r = archive_write_set_format_pax_restricted(w->ar);
        if (r == ARCHIVE_OK)
            r = archive_write_set_format_option(w->ar, "pax", "xattrheader", "SCHILY");
        /* Whole 64 KiB writes into the pipeline, no padding after the
         * end-of-archive blocks (as Go's archive/tar). */
        if (r == ARCHIVE_OK)
            r = archive_write_set_bytes_per_block(w->ar, 65536);
        if (r == ARCHIVE_OK)
            r = archive_write_set_bytes_in_last_block(w->ar, 1);
        if (r == ARCHIVE_OK)
            r = archive_write_open2(w->ar, w, NULL, tar_out, NULL, NULL);
    });
    if (r != ARCHIVE_OK) {
        kiln_error_set(err, 0, "layer: libarchive: %s", archive_error_string(w->ar));
        goto fail;
    }
    *ret = w;
    return 0;
fail:
    layer_writer_abort(w);
    return -1;
}

int layer_writer_finish(struct layer_writer *w, struct layer_result *ret, struct kiln_error **err)
{
    int result = -1;
    if (w->failed) {
        kiln_error_set(err, 0, "layer: writer failed earlier");
        goto out;
    }
    if (w->pending) {
        kiln_error_set(err, 0, "layer: %llu content bytes missing",
                       (unsigned long long)w->pending);
        goto out;
    }
    int r = ARCHIVE_OK;
    WITH_UTF8(w, r = archive_write_close(w->ar));
    if (r != ARCHIVE_OK) {
        archive_fail(w, "close", "tar", err);
        goto out;
    }
    struct layer_result res = {0};
    sha256_final_digest(&w->diff_hash, res.diff_id);
    w->hash_live = false;
    if (compressor_finish(w->comp, err) < 0)
        goto out;
    if (store_blob_commit(w->blob, NULL, res.blob.digest, &res.blob.size, err) < 0) {
        w->blob = NULL;
        goto out;
    }
    w->blob = NULL;
    res.blob.media_type = xstrdup(compression_media_type(w->opts.compression));
    res.tar_size = w->tar_size;
    res.entries = w->entries;
    if (w->tee)
        tee_finish(w, res.diff_id);
    *ret = res;
    result = 0;
out:
    layer_writer_abort(w);
    return result;
}

void layer_writer_abort(struct layer_writer *w)
{
    if (!w)
        return;
    if (w->ar)
        archive_write_free(w->ar); /* after close: frees; else closes into a dead pipeline */
    tee_free(w->tee);
    compressor_free(w->comp);
    store_blob_abort(w->blob);
    if (w->hash_live)
        sha256_abort(&w->diff_hash);
    if (w->utf8)
        freelocale(w->utf8);
    kiln_error_free(&w->cb_err);
    link_map_free(&w->links);
    free(w->buf);
    free(w);
}

/* ---- entries ---------------------------------------------------------------- */

static int check_path(const char *path, struct kiln_error **err)
{
    const char *bad = NULL;
    _cleanup_free_ char *clean = layer_path_clean(path, false, &bad);
    if (!clean || strcmp(clean, path) != 0)
        return kiln_error_set(err, EINVAL, "layer: invalid entry path '%s'%s%s", path,
                              bad ? ": " : "", bad ? bad : "");
    return 0;
}

static int64_t clamp_time(const struct layer_writer *w, int64_t t)
{
    if (w->opts.clamp_mtime >= 0 && t > w->opts.clamp_mtime)
        return w->opts.clamp_mtime;
    return t;
}

static int write_header(struct layer_writer *w, struct archive_entry *ae, const char *path,
                        struct kiln_error **err)
{
    int r = ARCHIVE_OK;
    WITH_UTF8(w, r = archive_write_header(w->ar, ae));
    /* ARCHIVE_WARN: a name that is not UTF-8, written as binary. */
    if (r < ARCHIVE_WARN)
        return archive_fail(w, "write header", path, err);
    w->entries++;
    return 0;
}

static int write_data(struct layer_writer *w, const void *buf, size_t len, const char *path,
                      struct kiln_error **err)
{
    la_ssize_t n = 0;
    WITH_UTF8(w, n = archive_write_data(w->ar, buf, len));
    if (n < 0 || (size_t)n != len)
        return archive_fail(w, "write content of", path, err);
    return 0;
}

/* The common header of every entry: type, mode, owner, mtime, no atime,
 * ctime, uname, gname. */
static struct archive_entry *entry_new(struct layer_writer *w, const char *path, mode_t mode,
                                       uid_t uid, gid_t gid, int64_t mtime)
{
    struct archive_entry *ae = archive_entry_new();
    archive_entry_copy_pathname(ae, path);
    archive_entry_set_filetype(ae, mode & S_IFMT);
    archive_entry_set_perm(ae, mode & 07777);
    archive_entry_set_uid(ae, uid);
    archive_entry_set_gid(ae, gid);
    /* Whole seconds: sub-second times would force pax headers. */
    archive_entry_set_mtime(ae, (time_t)clamp_time(w, mtime), 0);
    archive_entry_unset_atime(ae);
    archive_entry_unset_ctime(ae);
    archive_entry_unset_birthtime(ae);
    return ae;
}

static int add_entry(struct layer_writer *w, const struct layer_entry *e, int content_fd,
                     const struct xattr_list *xl, struct kiln_error **err)
{
    if (w->failed)
        return kiln_error_set(err, 0, "layer: writer failed earlier");
    if (w->pending)
        return kiln_error_set(err, 0, "layer: content of the previous entry is incomplete");
    if (check_path(e->path, err) < 0)
        return -1;
    mode_t type = e->st.st_mode & S_IFMT;
    bool hardlink = e->hardlink;
    if (type == S_IFSOCK)
        return kiln_error_set(err, EINVAL, "layer: '%s': sockets cannot be stored in a layer",
                              e->path);
    if (type != S_IFREG && type != S_IFDIR && type != S_IFLNK && type != S_IFIFO &&
        type != S_IFCHR && type != S_IFBLK)
        return kiln_error_set(err, EINVAL, "layer: '%s': unknown file type", e->path);
    if ((type == S_IFLNK || hardlink) && (!e->link || !*e->link))
        return kiln_error_set(err, EINVAL, "layer: '%s': link without a target", e->path);
    if (hardlink && check_path(e->link, err) < 0)
        return -1;

    struct archive_entry *ae =
        entry_new(w, e->path, hardlink ? (S_IFREG | (e->st.st_mode & 07777)) : e->st.st_mode,
                  e->st.st_uid, e->st.st_gid, (int64_t)e->st.st_mtim.tv_sec);
    if (type == S_IFLNK && !hardlink)
        archive_entry_copy_symlink(ae, e->link);
    if (hardlink)
        archive_entry_copy_hardlink(ae, e->link);
    if (type == S_IFCHR || type == S_IFBLK) {
        archive_entry_set_rdevmajor(ae, major(e->st.st_rdev));
        archive_entry_set_rdevminor(ae, minor(e->st.st_rdev));
    }
    uint64_t size = type == S_IFREG && !hardlink ? (uint64_t)e->st.st_size : 0;
    archive_entry_set_size(ae, (la_int64_t)size);
    if (xl) {
        for (size_t i = 0; i < xl->n; i++)
            if (!xattr_is_private(xl->names[i]))
                archive_entry_xattr_add_entry(ae, xl->names[i], xl->values[i], xl->sizes[i]);
    } else {
        for (size_t i = 0; i < e->n_xattrs; i++)
            if (!xattr_is_private(e->xattr_names[i]))
                archive_entry_xattr_add_entry(ae, e->xattr_names[i], e->xattr_values[i],
                                              e->xattr_sizes[i]);
    }
    int r = write_header(w, ae, e->path, err);
    archive_entry_free(ae);
    if (r < 0)
        return -1;
    if (size == 0)
        return 0;
    if (content_fd < 0) {
        w->pending = size;
        return 0;
    }
    uint64_t left = size;
    while (left > 0) {
        size_t want = left < READ_BUF_SIZE ? (size_t)left : READ_BUF_SIZE;
        ssize_t n = read(content_fd, w->buf, want);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            w->failed = true;
            return kiln_error_set(err, errno, "layer: read '%s'", e->path);
        }
        if (n == 0) {
            w->failed = true;
            return kiln_error_set(err, 0, "layer: '%s' shrank while being read", e->path);
        }
        if (write_data(w, w->buf, (size_t)n, e->path, err) < 0)
            return -1;
        left -= (uint64_t)n;
    }
    return 0;
}

int layer_writer_add(struct layer_writer *w, const struct layer_entry *e, struct kiln_error **err)
{
    return add_entry(w, e, e->content_fd, NULL, err);
}

int layer_writer_write(struct layer_writer *w, const void *data, size_t len,
                       struct kiln_error **err)
{
    if (w->failed)
        return kiln_error_set(err, 0, "layer: writer failed earlier");
    if (len > w->pending)
        return kiln_error_set(err, EINVAL, "layer: more content than the entry's size");
    if (len == 0)
        return 0;
    if (write_data(w, data, len, "content", err) < 0)
        return -1;
    w->pending -= len;
    return 0;
}

int layer_writer_add_meta(struct layer_writer *w, int dirfd, const char *name, const char *path,
                          const struct file_meta *m, bool detect_links, struct kiln_error **err)
{
    struct layer_entry e = {.path = path, .st = m->st, .link = m->link, .content_fd = -1};
    e.st.st_uid = m->uid;
    e.st.st_gid = m->gid;
    mode_t type = m->st.st_mode & S_IFMT;
    if (type == S_IFSOCK) {
        log_debug("layer: '%s' is a socket, not stored", path);
        return 0;
    }
    if (type == S_IFREG && detect_links && m->st.st_nlink > 1) {
        struct link_slot *s = link_find(&w->links, m->st.st_dev, m->st.st_ino);
        if (s && s->path) {
            e.hardlink = true;
            e.link = s->path;
            return add_entry(w, &e, -1, &m->xattrs, err);
        }
        link_insert(&w->links, m->st.st_dev, m->st.st_ino, path);
    }
    _cleanup_close_ int fd = -1;
    if (type == S_IFREG && m->st.st_size > 0) {
        fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
            w->failed = true;
            return kiln_error_set(err, errno, "layer: open '%s'", path);
        }
    }
    return add_entry(w, &e, fd, &m->xattrs, err);
}

int layer_writer_add_file(struct layer_writer *w, int dirfd, const char *name, const char *path,
                          struct kiln_error **err)
{
    struct file_meta m;
    int r = meta_read_at(dirfd, name, -1, &m);
    if (r < 0)
        return kiln_error_set(err, -r, "layer: read metadata of '%s'", path);
    r = layer_writer_add_meta(w, dirfd, name, path, &m, true, err);
    meta_free(&m);
    return r;
}

static int add_marker(struct layer_writer *w, const char *path, struct kiln_error **err)
{
    if (w->failed)
        return kiln_error_set(err, 0, "layer: writer failed earlier");
    if (w->pending)
        return kiln_error_set(err, 0, "layer: content of the previous entry is incomplete");
    /* Markers carry no metadata worth keeping: mode 0, root, epoch. */
    struct archive_entry *ae = entry_new(w, path, S_IFREG, 0, 0, 0);
    archive_entry_set_size(ae, 0);
    int r = write_header(w, ae, path, err);
    archive_entry_free(ae);
    return r;
}

int layer_writer_add_whiteout(struct layer_writer *w, const char *path, struct kiln_error **err)
{
    if (check_path(path, err) < 0)
        return -1;
    const char *slash = strrchr(path, '/');
    _cleanup_free_ char *wh =
        slash ? xasprintf("%.*s/" WH_PREFIX "%s", (int)(slash - path), path, slash + 1)
              : xasprintf(WH_PREFIX "%s", path);
    if (strlen(slash ? slash + 1 : path) + strlen(WH_PREFIX) > LAYER_MAX_NAME)
        return kiln_error_set(err, ENAMETOOLONG, "layer: whiteout for '%s': name too long", path);
    return add_marker(w, wh, err);
}

int layer_writer_add_opaque(struct layer_writer *w, const char *dir_path, struct kiln_error **err)
{
    _cleanup_free_ char *p = NULL;
    if (!dir_path || !*dir_path) {
        p = xstrdup(WH_OPAQUE);
    } else {
        if (check_path(dir_path, err) < 0)
            return -1;
        p = xasprintf("%s/" WH_OPAQUE, dir_path);
    }
    return add_marker(w, p, err);
}
