/* Image sources: OCI layout directories and archives read in one stream
 * (see layers/archive.h). */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layers/archive.h"
#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

#define COPY_BUF (256u * 1024)

char *archive_path_normalize(const char *path)
{
    if (!path)
        return NULL;
    char **parts = strv_new();
    const char *p = path;
    while (*p) {
        while (*p == '/')
            p++;
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0)
            break;
        if (n == 1 && p[0] == '.') {
            /* nothing */
        } else if (n == 2 && p[0] == '.' && p[1] == '.') {
            size_t len = strv_len(parts);
            if (len == 0) {
                strv_free(parts);
                return NULL;
            }
            free(parts[len - 1]);
            parts[len - 1] = NULL;
        } else {
            strv_push_take(&parts, xstrndup(p, n));
        }
        p += n;
    }
    if (!parts[0]) {
        strv_free(parts);
        return NULL;
    }
    struct strbuf sb = STRBUF_INIT;
    for (size_t i = 0; parts[i]; i++) {
        if (i)
            strbuf_addc(&sb, '/');
        strbuf_adds(&sb, parts[i]);
    }
    strv_free(parts);
    return strbuf_detach(&sb, NULL);
}

static void file_free(struct src_file *f)
{
    free(f->path);
    free(f->link);
    free(f->data);
}

void source_free(struct image_source *src)
{
    if (!src)
        return;
    for (size_t i = 0; i < src->n; i++)
        file_free(&src->files[i]);
    free(src->files);
    if (src->dirfd >= 0)
        close(src->dirfd);
    free(src->what);
    memset(src, 0, sizeof(*src));
    src->dirfd = -1;
}

int source_open_dir(struct store *s, const char *path, struct image_source *ret,
                    struct kiln_error **err)
{
    memset(ret, 0, sizeof(*ret));
    ret->dirfd = -1;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return kiln_error_set(err, errno, "open OCI layout '%s'", path);
    ret->store = s;
    ret->dirfd = fd;
    ret->what = xstrdup(path);
    return 0;
}

static int cmp_file(const void *a, const void *b)
{
    return strcmp(((const struct src_file *)a)->path, ((const struct src_file *)b)->path);
}

static struct src_file *find_exact(struct image_source *src, const char *path)
{
    struct src_file key = {.path = (char *)path};
    return bsearch(&key, src->files, src->n, sizeof(*src->files), cmp_file);
}

/* The file a path names in an archive, following links. */
static struct src_file *resolve(struct image_source *src, const char *path)
{
    struct src_file *f = find_exact(src, path);
    for (int hops = 0; f && f->link; hops++) {
        if (hops >= ARCHIVE_MAX_LINK_HOPS)
            return NULL;
        f = find_exact(src, f->link);
    }
    return f;
}

/* Streams the current entry into a store blob. */
static int entry_to_store(struct archive *a, struct store *s, const char *path,
                          const char *expect, struct src_file *f, struct kiln_error **err)
{
    struct blob_writer *w = NULL;
    if (store_blob_begin(s, &w, err) < 0)
        return -1;
    _cleanup_free_ char *buf = xmalloc(COPY_BUF);
    for (;;) {
        la_ssize_t n = archive_read_data(a, buf, COPY_BUF);
        if (n < 0) {
            store_blob_abort(w);
            return kiln_error_set(err, 0, "read '%s' from the archive: %s", path,
                                  archive_error_string(a));
        }
        if (n == 0)
            break;
        if (blob_writer_write(w, buf, (size_t)n, err) < 0) {
            store_blob_abort(w);
            return -1;
        }
    }
    if (store_blob_commit(w, expect, f->digest, &f->size, err) < 0)
        return kiln_error_wrap(err, "archive file '%s'%s", path, expect ? " is corrupt" : "");
    f->in_store = true;
    return 0;
}

static int entry_to_memory(struct archive *a, const char *path, int64_t size, struct src_file *f,
                           struct kiln_error **err)
{
    f->data = xmalloc((size_t)size + 1);
    size_t got = 0;
    for (;;) {
        la_ssize_t n = archive_read_data(a, f->data + got, (size_t)size + 1 - got);
        if (n < 0)
            return kiln_error_set(err, 0, "read '%s' from the archive: %s", path,
                                  archive_error_string(a));
        if (n == 0)
            break;
        got += (size_t)n;
        if (got > (size_t)size)
            return kiln_error_set(err, 0, "archive file '%s' is longer than its header says",
                                  path);
    }
    f->len = got;
    f->size = got;
    f->data[got] = '\0';
    sha256_digest_of(f->data, got, f->digest);
    return 0;
}

struct path_order {
    const char *path;
    size_t idx;
};

static int cmp_path_order(const void *a, const void *b)
{
    const struct path_order *x = a, *y = b;
    int c = strcmp(x->path, y->path);
    return c ? c : (x->idx < y->idx ? -1 : x->idx > y->idx);
}

/* Sorts the files by path; of several entries with one path, the last one
 * in the archive wins (as when a tar is extracted). */
static void dedupe_sorted(struct image_source *src)
{
    size_t n = src->n;
    struct path_order *order = xcalloc(n + 1, sizeof(*order));
    for (size_t i = 0; i < n; i++) {
        order[i].path = src->files[i].path;
        order[i].idx = i;
    }
    qsort(order, n, sizeof(*order), cmp_path_order);
    struct src_file *sorted = xcalloc(n + 1, sizeof(*sorted));
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        bool last = i + 1 == n || strcmp(order[i].path, order[i + 1].path) != 0;
        if (last)
            sorted[m++] = src->files[order[i].idx];
        else
            file_free(&src->files[order[i].idx]);
    }
    free(order);
    free(src->files);
    src->files = sorted;
    src->n = src->cap = m;
}

/* "blobs/sha256/<64 hex>" -> "sha256:<hex>" */
static bool blob_path_digest(const char *path, char out[DIGEST_STR_LEN])
{
    if (strncmp(path, "blobs/sha256/", 13) != 0)
        return false;
    snprintf(out, DIGEST_STR_LEN, "sha256:%.64s", path + 13);
    return strlen(path + 13) == 64 && digest_is_valid(out);
}

int source_read_archive(struct store *s, int fd, const char *what, struct image_source *ret,
                        struct kiln_error **err)
{
    memset(ret, 0, sizeof(*ret));
    ret->dirfd = -1;
    ret->store = s;
    ret->what = xstrdup(what);
    _cleanup_archive_read_ struct archive *a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    if (archive_read_open_fd(a, fd, 64 * 1024) != ARCHIVE_OK) {
        kiln_error_set(err, 0, "'%s': %s", what, archive_error_string(a));
        goto fail;
    }
    for (;;) {
        struct archive_entry *e = NULL;
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN) {
            kiln_error_set(err, 0, "'%s': not a tar archive, or damaged: %s", what,
                           archive_error_string(a));
            goto fail;
        }
        if (ret->n >= ARCHIVE_MAX_ENTRIES) {
            kiln_error_set(err, 0, "'%s': more than %u entries", what, ARCHIVE_MAX_ENTRIES);
            goto fail;
        }
        const char *raw = archive_entry_pathname(e);
        if (!raw || strlen(raw) > ARCHIVE_MAX_PATH) {
            kiln_error_set(err, 0, "'%s': an entry has no name or too long a name", what);
            goto fail;
        }
        mode_t type = archive_entry_filetype(e);
        const char *hardlink = archive_entry_hardlink(e);
        if (type == AE_IFDIR)
            continue;
        if (type != AE_IFREG && type != AE_IFLNK && !hardlink)
            continue; /* devices, fifos: nothing an image archive needs */
        _cleanup_free_ char *path = archive_path_normalize(raw);
        if (!path) {
            kiln_error_set(err, 0, "'%s': entry '%s' points outside the archive", what, raw);
            goto fail;
        }
        XGROW(ret->files, ret->cap, ret->n + 1);
        struct src_file *f = &ret->files[ret->n];
        memset(f, 0, sizeof(*f));
        if (hardlink || type == AE_IFLNK) {
            const char *target = hardlink ? hardlink : archive_entry_symlink(e);
            _cleanup_free_ char *joined = NULL;
            if (!target || strlen(target) > ARCHIVE_MAX_PATH) {
                kiln_error_set(err, 0, "'%s': link '%s' has a bad target", what, raw);
                goto fail;
            }
            if (hardlink || target[0] == '/') {
                joined = xstrdup(target);
            } else {
                const char *slash = strrchr(path, '/');
                joined = slash ? xasprintf("%.*s/%s", (int)(slash - path), path, target)
                               : xstrdup(target);
            }
            f->link = archive_path_normalize(joined);
            if (!f->link) {
                kiln_error_set(err, 0, "'%s': link '%s' points outside the archive", what, raw);
                goto fail;
            }
            f->path = TAKE_PTR(path);
            ret->n++;
            continue;
        }
        int64_t size = archive_entry_size(e);
        if (size < 0) {
            kiln_error_set(err, 0, "'%s': entry '%s' has a bad size", what, raw);
            goto fail;
        }
        char expect[DIGEST_STR_LEN];
        bool is_blob = blob_path_digest(path, expect);
        int rr;
        if ((uint64_t)size <= ARCHIVE_MEM_FILE_MAX &&
            ret->mem + (uint64_t)size <= ARCHIVE_MEM_TOTAL_MAX) {
            rr = entry_to_memory(a, path, size, f, err);
            if (rr == 0) {
                ret->mem += f->len;
                if (is_blob && strcmp(expect, f->digest) != 0)
                    rr = kiln_error_set(err, 0, "'%s': blob %s is corrupt (content hashes to %s)",
                                        what, expect, f->digest);
            }
        } else {
            rr = entry_to_store(a, s, path, is_blob ? expect : NULL, f, err);
        }
        f->path = TAKE_PTR(path);
        ret->n++;
        if (rr < 0)
            goto fail;
    }
    dedupe_sorted(ret);
    return 0;
fail:
    source_free(ret);
    return -1;
}

bool source_exists(struct image_source *src, const char *path)
{
    if (src->dirfd >= 0)
        return faccessat(src->dirfd, path, F_OK, 0) == 0;
    return resolve(src, path) != NULL;
}

int source_read(struct image_source *src, const char *path, size_t max, char **ret,
                size_t *ret_len, struct kiln_error **err)
{
    if (src->dirfd >= 0) {
        int r = fs_read_file_at(src->dirfd, path, max, ret, ret_len);
        if (r < 0)
            return kiln_error_set(err, -r, "'%s': read '%s'", src->what, path);
        return 0;
    }
    struct src_file *f = resolve(src, path);
    if (!f)
        return kiln_error_set(err, ENOENT, "'%s': no '%s' in the archive", src->what, path);
    if (f->size > max)
        return kiln_error_set(err, EFBIG, "'%s': '%s' is too large", src->what, path);
    if (f->in_store)
        return store_blob_read(src->store, f->digest, max, ret, ret_len, err);
    *ret = xmemdup(f->data, f->len + 1);
    if (ret_len)
        *ret_len = f->len;
    return 0;
}

/* Copies fd into a store blob, verifying against expect. */
static int fd_to_store(struct store *s, int fd, const char *what, const char *expect,
                       char ret_digest[DIGEST_STR_LEN], uint64_t *ret_size,
                       struct kiln_error **err)
{
    struct blob_writer *w = NULL;
    if (store_blob_begin(s, &w, err) < 0)
        return -1;
    _cleanup_free_ char *buf = xmalloc(COPY_BUF);
    for (;;) {
        ssize_t n = read(fd, buf, COPY_BUF);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            store_blob_abort(w);
            return kiln_error_set(err, e, "read '%s'", what);
        }
        if (n == 0)
            break;
        if (blob_writer_write(w, buf, (size_t)n, err) < 0) {
            store_blob_abort(w);
            return -1;
        }
    }
    if (store_blob_commit(w, expect, ret_digest, ret_size, err) < 0)
        return kiln_error_wrap(err, "'%s'", what);
    return 0;
}

static int blob_size_in_store(struct store *s, const char *digest, uint64_t *ret)
{
    struct stat st;
    if (fstatat(s->blobs_fd, digest_hex(digest), &st, 0) < 0)
        return -errno;
    *ret = (uint64_t)st.st_size;
    return 0;
}

int source_to_store(struct image_source *src, const char *path, const char *expect_digest,
                    int64_t expect_size, char ret_digest[DIGEST_STR_LEN], uint64_t *ret_size,
                    struct kiln_error **err)
{
    char digest[DIGEST_STR_LEN];
    uint64_t size = 0;
    if (src->dirfd >= 0) {
        uint64_t have = 0;
        if (expect_digest && store_has_blob(src->store, expect_digest) &&
            blob_size_in_store(src->store, expect_digest, &have) == 0 &&
            (expect_size < 0 || have == (uint64_t)expect_size)) {
            /* already in the store, verified when it was written */
            memcpy(digest, expect_digest, DIGEST_STR_LEN);
            size = have;
        } else {
            _cleanup_close_ int fd = openat(src->dirfd, path, O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                return kiln_error_set(err, errno, "'%s': open '%s'", src->what, path);
            _cleanup_free_ char *what = xasprintf("%s/%s", src->what, path);
            if (fd_to_store(src->store, fd, what, expect_digest, digest, &size, err) < 0)
                return -1;
        }
    } else {
        struct src_file *f = resolve(src, path);
        if (!f)
            return kiln_error_set(err, ENOENT, "'%s': no '%s' in the archive", src->what, path);
        if (expect_digest && strcmp(expect_digest, f->digest) != 0)
            return kiln_error_set(err, 0, "'%s': '%s' is corrupt: expected %s, content is %s",
                                  src->what, path, expect_digest, f->digest);
        if (!f->in_store) {
            char got[DIGEST_STR_LEN];
            if (store_blob_put(src->store, f->data, f->len, got, err) < 0)
                return -1;
        } else if (!store_has_blob(src->store, f->digest)) {
            return kiln_error_set(err, ENOENT, "'%s': blob %s went missing from the store",
                                  src->what, f->digest);
        }
        memcpy(digest, f->digest, DIGEST_STR_LEN);
        size = f->size;
    }
    if (expect_size >= 0 && size != (uint64_t)expect_size)
        return kiln_error_set(err, 0, "'%s': '%s' has %llu bytes, its descriptor says %lld",
                              src->what, path, (unsigned long long)size, (long long)expect_size);
    if (ret_digest)
        memcpy(ret_digest, digest, DIGEST_STR_LEN);
    if (ret_size)
        *ret_size = size;
    return 0;
}

const char *blob_compression(struct store *s, const char *digest)
{
    _cleanup_close_ int fd = -1;
    struct kiln_error *e = NULL;
    if (store_blob_open(s, digest, &fd, &e) < 0) {
        kiln_error_free(&e);
        return NULL;
    }
    unsigned char m[6] = {0};
    ssize_t n = pread(fd, m, sizeof(m), 0);
    if (n >= 2 && m[0] == 0x1f && m[1] == 0x8b)
        return "gzip";
    if (n >= 4 && m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd)
        return "zstd";
    if (n >= 3 && m[0] == 'B' && m[1] == 'Z' && m[2] == 'h')
        return "bzip2";
    if (n >= 6 && m[0] == 0xfd && m[1] == '7' && m[2] == 'z' && m[3] == 'X' && m[4] == 'Z' &&
        m[5] == 0)
        return "xz";
    return NULL;
}

int layer_blob_diff_id(struct store *s, const char *digest, char ret[DIGEST_STR_LEN],
                       struct kiln_error **err)
{
    _cleanup_close_ int fd = -1;
    if (store_blob_open(s, digest, &fd, err) < 0)
        return -1;
    _cleanup_archive_read_ struct archive *a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_raw(a);
    struct archive_entry *e = NULL;
    if (archive_read_open_fd(a, fd, 64 * 1024) != ARCHIVE_OK ||
        archive_read_next_header(a, &e) != ARCHIVE_OK)
        return kiln_error_set(err, 0, "layer %s: %s", digest, archive_error_string(a));
    struct sha256 h;
    sha256_init(&h);
    _cleanup_free_ char *buf = xmalloc(COPY_BUF);
    for (;;) {
        la_ssize_t n = archive_read_data(a, buf, COPY_BUF);
        if (n < 0) {
            sha256_abort(&h);
            return kiln_error_set(err, 0, "layer %s: decompress: %s", digest,
                                  archive_error_string(a));
        }
        if (n == 0)
            break;
        sha256_update(&h, buf, (size_t)n);
    }
    sha256_final_digest(&h, ret);
    return 0;
}
