/* Store validation (see layers/fsck.h). */
#include "layers/fsck.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "layers/descriptor.h"
#include "layers/gc.h"
#include "layers/image.h"
#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/json.h"
#include "lib/xalloc.h"

#define MAX_INDEX_DEPTH 4
#define HASH_BUF (256u * 1024)

struct blobinfo {
    char hex[65];
    uint64_t size;
    bool ok; /* content matches the name */
};

struct fsck {
    struct store *s;
    struct fsck_report *rep;
    struct blobinfo *blobs; /* sorted by hex */
    size_t n_blobs;
};

static void problem(struct fsck *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(struct fsck *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    if (!strv_contains(f->rep->problems, msg))
        strv_push(&f->rep->problems, msg);
    free(msg);
}

void fsck_report_free(struct fsck_report *r)
{
    strv_free(r->problems);
    memset(r, 0, sizeof(*r));
}

static bool is_hex64(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
            return false;
    return n == 64;
}

static int cmp_blob(const void *a, const void *b)
{
    return strcmp(((const struct blobinfo *)a)->hex, ((const struct blobinfo *)b)->hex);
}

static const struct blobinfo *find_blob(struct fsck *f, const char *digest)
{
    if (!digest_is_valid(digest))
        return NULL;
    struct blobinfo key;
    memcpy(key.hex, digest_hex(digest), 65);
    return bsearch(&key, f->blobs, f->n_blobs, sizeof(key), cmp_blob);
}

/* Hashes every blob file once. */
static int scan_blobs(struct fsck *f, struct kiln_error **err)
{
    int fd = openat(f->s->blobs_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return kiln_error_set(err, errno, "open blobs/sha256");
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return kiln_error_set(err, errno, "open blobs/sha256");
    }
    size_t cap = 0;
    struct dirent *de;
    _cleanup_free_ char *buf = xmalloc(HASH_BUF);
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (!is_hex64(de->d_name)) {
            problem(f, "blobs/sha256/%s: not a sha256 blob name", de->d_name);
            continue;
        }
        int bfd = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        struct stat st;
        if (bfd < 0 || fstat(bfd, &st) < 0 || !S_ISREG(st.st_mode)) {
            problem(f, "blob sha256:%s: cannot be read%s%s", de->d_name, bfd < 0 ? ": " : "",
                    bfd < 0 ? strerror(errno) : "");
            if (bfd >= 0)
                close(bfd);
            continue;
        }
        struct sha256 h;
        sha256_init(&h);
        ssize_t n;
        bool rd_err = false;
        while ((n = read(bfd, buf, HASH_BUF)) != 0) {
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                rd_err = true;
                break;
            }
            sha256_update(&h, buf, (size_t)n);
        }
        close(bfd);
        char got[DIGEST_STR_LEN];
        sha256_final_digest(&h, got);
        XGROW(f->blobs, cap, f->n_blobs + 1);
        struct blobinfo *b = &f->blobs[f->n_blobs++];
        memcpy(b->hex, de->d_name, 65);
        b->size = (uint64_t)st.st_size;
        b->ok = !rd_err && strcmp(got + 7, de->d_name) == 0;
        if (rd_err)
            problem(f, "blob sha256:%s: read error", de->d_name);
        else if (!b->ok)
            problem(f, "blob sha256:%s: content hashes to %s", de->d_name, got);
    }
    closedir(d);
    f->rep->blobs = f->n_blobs;
    if (f->n_blobs)
        qsort(f->blobs, f->n_blobs, sizeof(*f->blobs), cmp_blob);
    return 0;
}

/* A descriptor's blob: present, right size, sound content. */
static bool check_desc(struct fsck *f, const char *what, const char *digest, uint64_t size)
{
    const struct blobinfo *b = find_blob(f, digest);
    if (!b) {
        problem(f, "%s: blob %s is missing", what, digest);
        return false;
    }
    if (b->size != size) {
        problem(f, "%s: blob %s has %llu bytes, its descriptor says %llu", what, digest,
                (unsigned long long)b->size, (unsigned long long)size);
        return false;
    }
    return b->ok;
}

static void check_manifest(struct fsck *f, const char *what, const char *digest, uint64_t size,
                           int depth)
{
    if (!check_desc(f, what, digest, size))
        return;
    if (depth > MAX_INDEX_DEPTH) {
        problem(f, "%s: image indexes nested too deeply", what);
        return;
    }
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    struct kiln_error *e = NULL;
    if (store_blob_read(f->s, digest, JSON_MAX_SIZE, &buf, &len, &e) < 0) {
        problem(f, "%s: %s", what, e->msg);
        kiln_error_free(&e);
        return;
    }
    yajl_val root = NULL;
    if (json_parse(buf, len, &root, &e) < 0) {
        problem(f, "%s: manifest %s: %s", what, digest, e->msg);
        kiln_error_free(&e);
        return;
    }
    yajl_val children = json_get_arr(root, "manifests");
    if (children) {
        for (size_t i = 0; i < children->u.array.len; i++) {
            yajl_val c = children->u.array.values[i];
            const char *cd = json_get_str(c, "digest");
            int64_t cs = -1;
            if (!cd || !digest_is_valid(cd) || !json_get_int(c, "size", &cs) || cs < 0) {
                problem(f, "%s: image index %s: entry %zu has a bad descriptor", what, digest, i);
                continue;
            }
            /* an index may list platforms that were never pulled */
            if (find_blob(f, cd))
                check_manifest(f, what, cd, (uint64_t)cs, depth + 1);
        }
        yajl_tree_free(root);
        return;
    }
    yajl_tree_free(root);
    struct manifest m;
    if (manifest_parse(buf, len, &m, &e) < 0) {
        problem(f, "%s: manifest %s: %s", what, digest, e->msg);
        kiln_error_free(&e);
        return;
    }
    bool cfg_ok = check_desc(f, what, m.config.digest, m.config.size);
    for (size_t i = 0; i < m.n_layers; i++) {
        check_desc(f, what, m.layers[i].digest, m.layers[i].size);
        if (compression_from_media_type(m.layers[i].media_type) < 0)
            problem(f, "%s: layer %s has an unknown media type '%s'", what, m.layers[i].digest,
                    m.layers[i].media_type);
    }
    if (cfg_ok) {
        _cleanup_free_ char *cbuf = NULL;
        size_t clen = 0;
        struct image_config cfg;
        if (store_blob_read(f->s, m.config.digest, JSON_MAX_SIZE, &cbuf, &clen, &e) < 0 ||
            image_config_parse(cbuf, clen, &cfg, &e) < 0) {
            problem(f, "%s: config %s: %s", what, m.config.digest, e->msg);
            kiln_error_free(&e);
        } else {
            if (strv_len(cfg.diff_ids) != m.n_layers)
                problem(f, "%s: %zu layers but %zu diff_ids", what, m.n_layers,
                        strv_len(cfg.diff_ids));
            image_config_free(&cfg);
        }
    }
    manifest_free(&m);
}

static void check_layout(struct fsck *f)
{
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    int r = fs_read_file_at(f->s->root_fd, "oci-layout", 4096, &buf, &len);
    if (r < 0) {
        problem(f, "oci-layout: %s", strerror(-r));
        return;
    }
    yajl_val root = NULL;
    struct kiln_error *e = NULL;
    if (json_parse(buf, len, &root, &e) < 0) {
        problem(f, "oci-layout: %s", e->msg);
        kiln_error_free(&e);
        return;
    }
    const char *v = json_get_str(root, "imageLayoutVersion");
    if (!v)
        problem(f, "oci-layout: no imageLayoutVersion");
    yajl_tree_free(root);
}

static void check_index(struct fsck *f)
{
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    int r = fs_read_file_at(f->s->root_fd, "index.json", JSON_MAX_SIZE, &buf, &len);
    if (r < 0) {
        problem(f, "index.json: %s", strerror(-r));
        return;
    }
    yajl_val root = NULL;
    struct kiln_error *e = NULL;
    if (json_parse(buf, len, &root, &e) < 0) {
        problem(f, "index.json: %s", e->msg);
        kiln_error_free(&e);
        return;
    }
    int64_t sv = 0;
    if (!YAJL_IS_OBJECT(root) || !json_get_int(root, "schemaVersion", &sv) || sv != 2)
        problem(f, "index.json: not an image index (schemaVersion 2)");
    yajl_val arr = json_get(root, "manifests");
    if (arr && !YAJL_IS_ARRAY(arr))
        problem(f, "index.json: manifests is not an array");
    char **names = strv_new();
    for (size_t i = 0; arr && YAJL_IS_ARRAY(arr) && i < arr->u.array.len; i++) {
        yajl_val v = arr->u.array.values[i];
        const char *dg = json_get_str(v, "digest"), *mt = json_get_str(v, "mediaType");
        const char *name = json_get_str(json_get_obj(v, "annotations"), ANNOT_REF_NAME);
        int64_t size = -1;
        _cleanup_free_ char *what =
            name ? xasprintf("image '%s'", name) : xasprintf("index.json entry %zu", i);
        if (!dg || !digest_is_valid(dg) || !json_get_int(v, "size", &size) || size < 0) {
            problem(f, "%s: bad digest or size", what);
            continue;
        }
        if (!mt)
            problem(f, "%s: no mediaType", what);
        if (name) {
            if (strv_contains(names, name))
                problem(f, "index.json: the name '%s' is used twice", name);
            strv_push(&names, name);
        }
        f->rep->images++;
        check_manifest(f, what, dg, (uint64_t)size, 0);
    }
    strv_free(names);
    yajl_tree_free(root);
}

static void check_records(struct fsck *f)
{
    int fd = openat(f->s->root_fd, "cache", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT)
            problem(f, "cache/: %s", strerror(errno));
        return;
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!is_hex64(de->d_name))
            continue;
        f->rep->records++;
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        int r = fs_read_file_at(dirfd(d), de->d_name, 64 * 1024, &buf, &len);
        if (r < 0) {
            problem(f, "cache record %.12s: %s", de->d_name, strerror(-r));
            continue;
        }
        yajl_val root = NULL;
        struct kiln_error *e = NULL;
        if (json_parse(buf, len, &root, &e) < 0) {
            problem(f, "cache record %.12s: %s", de->d_name, e->msg);
            kiln_error_free(&e);
            continue;
        }
        yajl_val layer = json_get_obj(root, "layer");
        const char *dg = json_get_str(layer, "digest"), *diff = json_get_str(root, "diff_id");
        int64_t size = -1;
        if (!dg || !digest_is_valid(dg) || !diff || !digest_is_valid(diff) ||
            !json_get_int(layer, "size", &size) || size < 0) {
            problem(f, "cache record %.12s: missing or invalid fields", de->d_name);
        } else {
            _cleanup_free_ char *what = xasprintf("cache record %.12s", de->d_name);
            check_desc(f, what, dg, (uint64_t)size);
        }
        yajl_tree_free(root);
    }
    closedir(d);
}

static void check_tmp(struct fsck *f)
{
    int fd = openat(f->s->tmp_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    int64_t now = (int64_t)time(NULL);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            now - (int64_t)st.st_mtim.tv_sec > FSCK_TMP_MAX_AGE)
            problem(f, "tmp/%s: leftover older than a day (kiln image prune removes it)",
                    de->d_name);
    }
    closedir(d);
}

int store_fsck(struct store *s, struct fsck_report *ret, struct kiln_error **err)
{
    memset(ret, 0, sizeof(*ret));
    ret->problems = strv_new();
    int lockfd = -1;
    if (gc_lock_shared(s, &lockfd, err) < 0)
        return -1;
    struct fsck f = {.s = s, .rep = ret};
    int r = scan_blobs(&f, err);
    if (r == 0) {
        check_layout(&f);
        check_index(&f);
        check_records(&f);
        check_tmp(&f);
    }
    free(f.blobs);
    gc_unlock(lockfd);
    if (r < 0)
        fsck_report_free(ret);
    return r;
}
