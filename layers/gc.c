/* Garbage collection, pruning and disk usage (see layers/gc.h for the
 * contract with builds). */
#include "layers/gc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "layers/image.h"
#include "layers/refs.h"
#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#define MAX_INDEX_DEPTH 4
#define DU_MAX_DEPTH 4096
#define RECORD_MAX (64u * 1024)

/* ---- a set of strings --------------------------------------------------------- */

struct strset {
    char **slots;
    size_t cap, n;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static char **set_slot(const struct strset *set, const char *s)
{
    size_t i = (size_t)(hash_str(s) & (set->cap - 1));
    while (set->slots[i] && strcmp(set->slots[i], s) != 0)
        i = (i + 1) & (set->cap - 1);
    return &set->slots[i];
}

static bool set_has(const struct strset *set, const char *s)
{
    return set->cap && *set_slot(set, s) != NULL;
}

static void set_add(struct strset *set, const char *s)
{
    if (set->n * 2 >= set->cap) {
        char **old = set->slots;
        size_t oldcap = set->cap;
        set->cap = oldcap ? oldcap * 2 : 256;
        set->slots = xcalloc(set->cap, sizeof(*set->slots));
        for (size_t i = 0; i < oldcap; i++)
            if (old[i])
                *set_slot(set, old[i]) = old[i];
        free(old);
    }
    char **sl = set_slot(set, s);
    if (!*sl) {
        *sl = xstrdup(s);
        set->n++;
    }
}

static void set_free(struct strset *set)
{
    for (size_t i = 0; i < set->cap; i++)
        free(set->slots[i]);
    free(set->slots);
    memset(set, 0, sizeof(*set));
}

/* ---- locking ------------------------------------------------------------ */

static int open_lock(struct store *s, int *ret, struct kiln_error **err)
{
    int fd = openat(s->root_fd, GC_LOCK_NAME, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return kiln_error_set(err, errno, "store '%s': open %s", s->root, GC_LOCK_NAME);
    *ret = fd;
    return 0;
}

int gc_lock_shared(struct store *s, int *ret_fd, struct kiln_error **err)
{
    int fd = -1;
    if (open_lock(s, &fd, err) < 0)
        return -1;
    while (flock(fd, LOCK_SH) < 0) {
        if (errno == EINTR)
            continue;
        int e = errno;
        close(fd);
        return kiln_error_set(err, e, "store '%s': lock", s->root);
    }
    *ret_fd = fd;
    return 0;
}

void gc_unlock(int fd)
{
    if (fd >= 0)
        close(fd);
}

struct gc_session {
    struct store *s;
    int lockfd;
};

int gc_begin(struct store *s, bool wait, struct gc_session **ret, struct kiln_error **err)
{
    int fd = -1;
    if (open_lock(s, &fd, err) < 0)
        return -1;
    while (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
        if (errno == EINTR)
            continue;
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK)
            return kiln_error_set(err, EBUSY,
                                  "store '%s' is in use by a running build, pull or load; "
                                  "nothing was removed",
                                  s->root);
        return kiln_error_set(err, e, "store '%s': lock", s->root);
    }
    struct gc_session *g = xcalloc(1, sizeof(*g));
    g->s = s;
    g->lockfd = fd;
    *ret = g;
    return 0;
}

void gc_end(struct gc_session *g)
{
    if (!g)
        return;
    gc_unlock(g->lockfd);
    free(g);
}

void gc_result_free(struct gc_result *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->items[i].kind);
        free(r->items[i].name);
    }
    free(r->items);
    memset(r, 0, sizeof(*r));
}

static void result_add(struct gc_result *r, const char *kind, const char *name, uint64_t bytes)
{
    if (!r)
        return;
    XGROW(r->items, r->cap, r->n + 1);
    r->items[r->n].kind = xstrdup(kind);
    r->items[r->n].name = xstrdup(name);
    r->items[r->n].bytes = bytes;
    r->n++;
    r->bytes += bytes;
}

/* ---- sizes ------------------------------------------------------------ */

static uint64_t du_fd(int dfd, int depth)
{
    if (depth > DU_MAX_DEPTH)
        return 0;
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return 0;
    }
    uint64_t total = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) {
            total += (uint64_t)st.st_size;
        } else if (S_ISDIR(st.st_mode)) {
            int c = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (c >= 0)
                total += du_fd(c, depth + 1);
        }
    }
    closedir(d);
    return total;
}

uint64_t gc_du_at(int dirfd, const char *name)
{
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return 0;
    if (!S_ISDIR(st.st_mode))
        return S_ISREG(st.st_mode) || S_ISLNK(st.st_mode) ? (uint64_t)st.st_size : 0;
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return 0;
    return du_fd(fd, 0);
}

static uint64_t blob_size(struct store *s, const char *digest)
{
    struct stat st;
    if (!digest_is_valid(digest) || fstatat(s->blobs_fd, digest_hex(digest), &st, 0) < 0)
        return 0;
    return (uint64_t)st.st_size;
}

static bool is_hex64(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
            return false;
    return n == 64;
}

/* A layer tree's entry in trees/: "<hex>" (range mode or root), "<hex>-single"
 * (extracted where one id is mapped), and "<either>.owners", the side table
 * of owners that goes with it (layers/tree.c).  Fills the diff_id. */
static bool tree_entry(const char *name, char diff_id[DIGEST_STR_LEN], bool *ret_owners)
{
    char hex[65];
    size_t n = strlen(name);
    if (n < 64)
        return false;
    memcpy(hex, name, 64);
    hex[64] = '\0';
    if (!is_hex64(hex))
        return false;
    const char *rest = name + 64;
    if (strncmp(rest, "-single", 7) == 0)
        rest += 7;
    *ret_owners = strcmp(rest, ".owners") == 0;
    if (*rest && !*ret_owners)
        return false;
    snprintf(diff_id, DIGEST_STR_LEN, "sha256:%s", hex);
    return true;
}

/* ---- marking ------------------------------------------------------------- */

struct marks {
    struct strset blobs;
    struct strset diff_ids;
};

static void marks_free(struct marks *m)
{
    set_free(&m->blobs);
    set_free(&m->diff_ids);
}

/* Marks a manifest (or image index) and what it needs. */
static int mark_manifest(struct store *s, const char *digest, int depth, struct marks *mk,
                         struct kiln_error **err)
{
    if (depth > MAX_INDEX_DEPTH)
        return kiln_error_set(err, 0, "image index %s nested too deeply", digest);
    set_add(&mk->blobs, digest);
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    if (store_blob_read(s, digest, JSON_MAX_SIZE, &buf, &len, err) < 0)
        return -1;
    yajl_val root = NULL;
    if (json_parse(buf, len, &root, err) < 0)
        return kiln_error_wrap(err, "manifest %s", digest);
    yajl_val children = json_get_arr(root, "manifests");
    if (children) {
        int r = 0;
        for (size_t i = 0; i < children->u.array.len && r == 0; i++) {
            const char *cd = json_get_str(children->u.array.values[i], "digest");
            /* an index may name platforms that were never pulled */
            if (cd && store_has_blob(s, cd))
                r = mark_manifest(s, cd, depth + 1, mk, err);
        }
        yajl_tree_free(root);
        return r;
    }
    yajl_tree_free(root);
    struct manifest m;
    if (manifest_parse(buf, len, &m, err) < 0)
        return kiln_error_wrap(err, "manifest %s", digest);
    set_add(&mk->blobs, m.config.digest);
    for (size_t i = 0; i < m.n_layers; i++)
        set_add(&mk->blobs, m.layers[i].digest);
    _cleanup_free_ char *cbuf = NULL;
    size_t clen = 0;
    struct image_config cfg;
    int r = store_blob_read(s, m.config.digest, JSON_MAX_SIZE, &cbuf, &clen, err);
    if (r == 0)
        r = image_config_parse(cbuf, clen, &cfg, err);
    manifest_free(&m);
    if (r < 0)
        return kiln_error_wrap(err, "image %s", digest);
    for (size_t i = 0; cfg.diff_ids[i]; i++)
        set_add(&mk->diff_ids, cfg.diff_ids[i]);
    image_config_free(&cfg);
    return 0;
}

/* index.json read strictly: an entry gc cannot understand stops it. */
static int index_digests(struct store *s, char ***ret, struct kiln_error **err)
{
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    int r = fs_read_file_at(s->root_fd, "index.json", JSON_MAX_SIZE, &buf, &len);
    if (r < 0)
        return kiln_error_set(err, -r, "read index.json");
    yajl_val root = NULL;
    if (json_parse(buf, len, &root, err) < 0)
        return kiln_error_wrap(err, "index.json");
    yajl_val arr = json_get(root, "manifests");
    if (!YAJL_IS_OBJECT(root) || (arr && !YAJL_IS_ARRAY(arr))) {
        yajl_tree_free(root);
        return kiln_error_set(err, 0, "index.json: not an image index");
    }
    char **v = strv_new();
    for (size_t i = 0; arr && i < arr->u.array.len; i++) {
        const char *d = json_get_str(arr->u.array.values[i], "digest");
        if (!d || !digest_is_valid(d)) {
            strv_free(v);
            yajl_tree_free(root);
            return kiln_error_set(err, 0, "index.json: entry %zu has no valid digest", i);
        }
        strv_push(&v, d);
    }
    yajl_tree_free(root);
    *ret = v;
    return 0;
}

static int mark_images(struct store *s, struct marks *mk, struct kiln_error **err)
{
    _cleanup_strv_ char **digests = NULL;
    if (index_digests(s, &digests, err) < 0)
        return -1;
    for (size_t i = 0; digests[i]; i++)
        if (mark_manifest(s, digests[i], 0, mk, err) < 0)
            return -1;
    return 0;
}

/* ---- cache records ---------------------------------------------------------- */

struct record {
    char *key; /* file name (hex) */
    char layer[DIGEST_STR_LEN];
    uint64_t size;
    char diff_id[DIGEST_STR_LEN];
    int64_t mtime;
    bool valid;
};

static void records_free(struct record *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(r[i].key);
    free(r);
}

static int read_records(struct store *s, struct record **ret, size_t *ret_n,
                        struct kiln_error **err)
{
    int fd = openat(s->root_fd, "cache", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            *ret = NULL;
            *ret_n = 0;
            return 0;
        }
        return kiln_error_set(err, errno, "open cache/");
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return kiln_error_set(err, errno, "open cache/");
    }
    struct record *recs = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!is_hex64(de->d_name))
            continue;
        XGROW(recs, cap, n + 1);
        struct record *r = &recs[n++];
        memset(r, 0, sizeof(*r));
        r->key = xstrdup(de->d_name);
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, 0) == 0)
            r->mtime = (int64_t)st.st_mtim.tv_sec;
        char *buf = NULL;
        size_t len = 0;
        if (fs_read_file_at(dirfd(d), de->d_name, RECORD_MAX, &buf, &len) < 0)
            continue;
        yajl_val root = NULL;
        struct kiln_error *e = NULL;
        if (json_parse(buf, len, &root, &e) == 0) {
            yajl_val layer = json_get_obj(root, "layer");
            const char *dg = json_get_str(layer, "digest");
            const char *diff = json_get_str(root, "diff_id");
            int64_t size = -1;
            if (dg && digest_is_valid(dg) && diff && digest_is_valid(diff) &&
                json_get_int(layer, "size", &size) && size >= 0) {
                memcpy(r->layer, dg, DIGEST_STR_LEN);
                memcpy(r->diff_id, diff, DIGEST_STR_LEN);
                r->size = (uint64_t)size;
                r->valid = true;
            }
            yajl_tree_free(root);
        }
        kiln_error_free(&e);
        free(buf);
    }
    closedir(d);
    *ret = recs;
    *ret_n = n;
    return 0;
}

static void mark_records(struct store *s, const struct record *recs, size_t n, struct marks *mk)
{
    for (size_t i = 0; i < n; i++) {
        if (!recs[i].valid || !store_has_blob(s, recs[i].layer))
            continue;
        set_add(&mk->blobs, recs[i].layer);
        set_add(&mk->diff_ids, recs[i].diff_id);
    }
}

static int remove_record(struct store *s, const char *key, struct gc_result *res)
{
    _cleanup_free_ char *path = xasprintf("cache/%s", key);
    struct stat st;
    uint64_t bytes = fstatat(s->root_fd, path, &st, 0) == 0 ? (uint64_t)st.st_size : 0;
    if (unlinkat(s->root_fd, path, 0) < 0 && errno != ENOENT)
        return -errno;
    result_add(res, "record", key, bytes);
    return 0;
}

/* ---- sweeping ------------------------------------------------------------ */

/* Moves dirfd/name into tmp/ (atomically: never a half-deleted tree in
 * place), then deletes it. */
static int remove_dir_via_tmp(struct store *s, int dirfd, const char *name, const char *tag,
                              uint64_t *ret_bytes)
{
    uint64_t bytes = gc_du_at(dirfd, name);
    _cleanup_free_ char *tmpname = xasprintf("gc-%s-%s-%d", tag, name, (int)getpid());
    if (renameat(dirfd, name, s->tmp_fd, tmpname) < 0)
        return -errno;
    int r = fs_rm_rf_at(s->tmp_fd, tmpname);
    if (r < 0)
        return r;
    *ret_bytes = bytes;
    return 0;
}

static int64_t now_sec(void)
{
    return (int64_t)time(NULL);
}

/* Removes name (file or tree) of dirfd when older than max_age seconds. */
static void sweep_old(struct store *s, int dirfd, const char *label, int64_t max_age,
                      bool (*want)(const char *), struct gc_result *res)
{
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    char **names = strv_new();
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 && (!want || want(de->d_name)))
            strv_push(&names, de->d_name);
    closedir(d);
    int64_t now = now_sec();
    for (size_t i = 0; names[i]; i++) {
        struct stat st;
        if (fstatat(dirfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (now - (int64_t)st.st_mtim.tv_sec < max_age)
            continue;
        uint64_t bytes = gc_du_at(dirfd, names[i]);
        int r = S_ISDIR(st.st_mode) ? fs_rm_rf_at(dirfd, names[i])
                                    : (unlinkat(dirfd, names[i], 0) < 0 ? -errno : 0);
        if (r < 0) {
            log_debug("gc: cannot remove %s '%s': %s", label, names[i], strerror(-r));
            continue;
        }
        _cleanup_free_ char *nm = xasprintf("%s%s", label, names[i]);
        result_add(res, "tmp", nm, bytes);
    }
    strv_free(names);
}

static bool want_stray(const char *name)
{
    return strstr(name, ".tmp-") != NULL;
}

static int list_dir_at(int dirfd, const char *path, char ***ret)
{
    int fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? (*ret = strv_new(), 0) : -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -errno;
    }
    char **v = strv_new();
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            strv_push(&v, de->d_name);
    closedir(d);
    *ret = v;
    return 0;
}

int gc_sweep(struct gc_session *g, struct gc_result *res, struct kiln_error **err)
{
    struct store *s = g->s;
    struct marks mk = {0};
    struct record *recs = NULL;
    size_t n_recs = 0;
    if (mark_images(s, &mk, err) < 0 || read_records(s, &recs, &n_recs, err) < 0) {
        marks_free(&mk);
        return kiln_error_wrap(err, "gc: nothing removed (see 'kiln system check')");
    }
    /* records that cannot be used (unreadable, or their layer is gone) */
    for (size_t i = 0; i < n_recs; i++) {
        if (recs[i].valid && store_has_blob(s, recs[i].layer))
            continue;
        remove_record(s, recs[i].key, res);
    }
    mark_records(s, recs, n_recs, &mk);
    records_free(recs, n_recs);

    _cleanup_strv_ char **blobs = NULL;
    int r = list_dir_at(s->root_fd, "blobs/sha256", &blobs);
    if (r < 0) {
        marks_free(&mk);
        return kiln_error_set(err, -r, "gc: list blobs");
    }
    for (size_t i = 0; blobs[i]; i++) {
        if (!is_hex64(blobs[i]))
            continue;
        _cleanup_free_ char *digest = xasprintf("sha256:%s", blobs[i]);
        if (set_has(&mk.blobs, digest))
            continue;
        uint64_t size = blob_size(s, digest);
        if (unlinkat(s->blobs_fd, blobs[i], 0) < 0) {
            r = kiln_error_set(err, errno, "gc: remove blob %s", digest);
            break;
        }
        result_add(res, "blob", digest, size);
    }
    _cleanup_strv_ char **trees = NULL;
    int tfd = -1;
    if (r == 0 && list_dir_at(s->root_fd, "trees", &trees) == 0)
        tfd = openat(s->root_fd, "trees", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    /* trees first, then their owner tables: a tree is never without its table */
    for (int pass = 0; pass < 2 && r == 0 && tfd >= 0; pass++) {
        for (size_t i = 0; r == 0 && trees[i]; i++) {
            char diff[DIGEST_STR_LEN];
            bool owners = false;
            if (!tree_entry(trees[i], diff, &owners) || owners != (pass == 1) ||
                set_has(&mk.diff_ids, diff))
                continue;
            uint64_t bytes = 0;
            int rr = 0;
            if (owners) {
                bytes = gc_du_at(tfd, trees[i]);
                rr = unlinkat(tfd, trees[i], 0) < 0 && errno != ENOENT ? -errno : 0;
            } else {
                rr = remove_dir_via_tmp(s, tfd, trees[i], "tree", &bytes);
            }
            if (rr < 0) {
                r = kiln_error_set(err, -rr, "gc: remove trees/%s%s", trees[i],
                                   rr == -EACCES || rr == -EPERM
                                       ? " (files owned by subordinate ids need kiln's namespace)"
                                       : "");
                break;
            }
            result_add(res, owners ? "tree-owners" : "tree", trees[i], bytes);
        }
    }
    if (tfd >= 0)
        close(tfd);
    marks_free(&mk);
    if (r < 0)
        return -1;
    sweep_old(s, s->tmp_fd, "tmp/", GC_TMP_MAX_AGE, NULL, res);
    _cleanup_close_ int cfd = openat(s->root_fd, "cache", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cfd >= 0)
        sweep_old(s, cfd, "cache/", GC_TMP_MAX_AGE, want_stray, res);
    sweep_old(s, s->root_fd, "", GC_TMP_MAX_AGE, want_stray, res);
    return 0;
}

/* ---- pruning images ---------------------------------------------------------- */

static char *config_of(struct store *s, const char *manifest_digest, char **ret_json,
                       size_t *ret_len)
{
    struct descriptor d = {0};
    memcpy(d.digest, manifest_digest, DIGEST_STR_LEN);
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    struct kiln_error *e = NULL;
    char *out = NULL;
    if (store_blob_read(s, manifest_digest, JSON_MAX_SIZE, &buf, &len, &e) == 0) {
        struct manifest m;
        if (manifest_parse(buf, len, &m, &e) == 0) {
            out = xstrdup(m.config.digest);
            if (ret_json &&
                store_blob_read(s, m.config.digest, JSON_MAX_SIZE, ret_json, ret_len, &e) < 0)
                *ret_json = NULL;
            manifest_free(&m);
        }
    }
    kiln_error_free(&e);
    return out;
}

int gc_prune_images(struct gc_session *g, const struct gc_image_filter *f, struct gc_result *res,
                    struct kiln_error **err)
{
    struct store *s = g->s;
    int lockfd = -1;
    if (store_lock(s, &lockfd, err) < 0)
        return -1;
    struct store_index idx;
    if (store_index_read(s, &idx, err) < 0) {
        store_unlock(lockfd);
        return kiln_error_wrap(err, "prune: nothing removed (see 'kiln system check')");
    }
    char **gone_cfgs = strv_new();
    bool changed = false;
    for (size_t i = idx.n; i-- > 0;) {
        const struct index_entry *e = &idx.entries[i];
        const char *name = index_entry_name(e);
        if (name && !f->all)
            continue;
        _cleanup_free_ char *cjson = NULL;
        size_t clen = 0;
        _cleanup_free_ char *cfg = config_of(s, e->desc.digest, &cjson, &clen);
        if (f->keep && f->keep(f->ud, s, e->desc.digest, cjson, clen))
            continue;
        if (name)
            result_add(res, "untagged", name, 0);
        if (cfg && !strv_contains(gone_cfgs, cfg))
            strv_push(&gone_cfgs, cfg);
        /* drop the entry */
        descriptor_free(&idx.entries[i].desc);
        strmap_free(&idx.entries[i].annotations);
        free(idx.entries[i].platform_os);
        free(idx.entries[i].platform_arch);
        free(idx.entries[i].platform_variant);
        memmove(&idx.entries[i], &idx.entries[i + 1], (idx.n - i - 1) * sizeof(idx.entries[0]));
        idx.n--;
        changed = true;
    }
    int r = 0;
    if (changed)
        r = store_index_write(s, &idx, err);
    /* an image is gone when no entry left uses its config */
    for (size_t k = 0; r == 0 && gone_cfgs[k]; k++) {
        bool still = false;
        for (size_t i = 0; i < idx.n && !still; i++) {
            _cleanup_free_ char *cfg = config_of(s, idx.entries[i].desc.digest, NULL, NULL);
            still = cfg && strcmp(cfg, gone_cfgs[k]) == 0;
        }
        if (!still)
            result_add(res, "image", gone_cfgs[k], 0);
    }
    strv_free(gone_cfgs);
    store_index_free(&idx);
    store_unlock(lockfd);
    return r;
}

/* ---- pruning the build cache ---------------------------------------------------- */

struct victim {
    bool is_mount;
    size_t rec; /* index into records */
    char *mount;
    int64_t mtime;
    uint64_t bytes; /* what removing it frees (estimate for keep-storage) */
};

static int cmp_victim(const void *a, const void *b)
{
    const struct victim *x = a, *y = b;
    return x->mtime < y->mtime ? -1 : x->mtime > y->mtime;
}

int gc_prune_cache(struct gc_session *g, bool all, int64_t keep_storage, struct gc_result *res,
                   struct kiln_error **err)
{
    struct store *s = g->s;
    struct marks images = {0};
    if (mark_images(s, &images, err) < 0) {
        marks_free(&images);
        return kiln_error_wrap(err, "prune: nothing removed (see 'kiln system check')");
    }
    struct record *recs = NULL;
    size_t n = 0;
    if (read_records(s, &recs, &n, err) < 0) {
        marks_free(&images);
        return -1;
    }
    _cleanup_strv_ char **mounts = NULL;
    int r = list_dir_at(s->root_fd, "mounts", &mounts);
    if (r < 0) {
        records_free(recs, n);
        marks_free(&images);
        return kiln_error_set(err, -r, "list mounts/");
    }
    _cleanup_close_ int mfd = openat(s->root_fd, "mounts", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    /* candidates, and the cache's size: blobs only records use, and mounts */
    struct victim *v = xcalloc(n + strv_len(mounts) + 1, sizeof(*v));
    size_t nv = 0;
    uint64_t total = 0;
    struct strset counted = {0};
    for (size_t i = 0; i < n; i++) {
        bool used = recs[i].valid && set_has(&images.blobs, recs[i].layer);
        uint64_t bytes = 0;
        if (recs[i].valid && !used && !set_has(&counted, recs[i].layer)) {
            set_add(&counted, recs[i].layer);
            bytes = blob_size(s, recs[i].layer);
            total += bytes;
        }
        if (all || !used)
            v[nv++] = (struct victim){.rec = i, .mtime = recs[i].mtime, .bytes = bytes};
    }
    set_free(&counted);
    for (size_t i = 0; mfd >= 0 && mounts[i]; i++) {
        struct stat st;
        if (fstatat(mfd, mounts[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        uint64_t bytes = gc_du_at(mfd, mounts[i]);
        total += bytes;
        v[nv++] = (struct victim){.is_mount = true,
                                  .mount = mounts[i],
                                  .mtime = (int64_t)st.st_mtim.tv_sec,
                                  .bytes = bytes};
    }
    if (keep_storage >= 0)
        qsort(v, nv, sizeof(*v), cmp_victim);
    for (size_t i = 0; i < nv && r == 0; i++) {
        if (keep_storage >= 0 && total <= (uint64_t)keep_storage)
            break;
        if (v[i].is_mount) {
            uint64_t bytes = 0;
            int rr = remove_dir_via_tmp(s, mfd, v[i].mount, "mount", &bytes);
            if (rr < 0) {
                r = kiln_error_set(err, -rr, "remove cache mount '%s'", v[i].mount);
                break;
            }
            result_add(res, "mount", v[i].mount, bytes);
        } else {
            int rr = remove_record(s, recs[v[i].rec].key, res);
            if (rr < 0) {
                r = kiln_error_set(err, -rr, "remove cache record %s", recs[v[i].rec].key);
                break;
            }
        }
        total -= v[i].bytes < total ? v[i].bytes : total;
    }
    if (r == 0 && all && keep_storage < 0) {
        struct stat st;
        if (fstatat(s->root_fd, "cache/filehash", &st, 0) == 0 &&
            unlinkat(s->root_fd, "cache/filehash", 0) == 0)
            result_add(res, "filehash", "cache/filehash", (uint64_t)st.st_size);
    }
    free(v);
    records_free(recs, n);
    marks_free(&images);
    return r;
}

/* ---- usage ------------------------------------------------------------------ */

/* Sizes of blobs, trees and mounts, by who uses them. */
static void usage_sizes(struct store *s, struct gc_usage *u, const struct marks *tagged_m,
                        const struct marks *dangling_m, const struct marks *cache_m)
{
    const struct marks tagged = *tagged_m, dangling = *dangling_m, cache = *cache_m;
    _cleanup_strv_ char **blobs = NULL;
    if (list_dir_at(s->root_fd, "blobs/sha256", &blobs) == 0) {
        for (size_t i = 0; blobs[i]; i++) {
            if (!is_hex64(blobs[i]))
                continue;
            _cleanup_free_ char *d = xasprintf("sha256:%s", blobs[i]);
            uint64_t size = blob_size(s, d);
            bool t = set_has(&tagged.blobs, d), g = set_has(&dangling.blobs, d),
                 c = set_has(&cache.blobs, d);
            if (t || g || !c)
                u->images.size += size;
            if (!t && !c)
                u->images.reclaimable += size; /* untagged images' own, or unreferenced */
            if (c && !t && !g)
                u->cache.size += size;
        }
    }
    _cleanup_strv_ char **trees = NULL;
    _cleanup_close_ int tfd = openat(s->root_fd, "trees", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (tfd >= 0 && list_dir_at(s->root_fd, "trees", &trees) == 0) {
        for (size_t i = 0; trees[i]; i++) {
            char d[DIGEST_STR_LEN];
            bool owners = false;
            if (!tree_entry(trees[i], d, &owners))
                continue;
            uint64_t size = gc_du_at(tfd, trees[i]);
            bool t = set_has(&tagged.diff_ids, d), g = set_has(&dangling.diff_ids, d),
                 c = set_has(&cache.diff_ids, d);
            if (t || g || !c)
                u->images.size += size;
            if (!t && !c)
                u->images.reclaimable += size;
            if (c && !t && !g)
                u->cache.size += size;
        }
    }
    u->cache.reclaimable = u->cache.size;
    _cleanup_strv_ char **mounts = NULL;
    _cleanup_close_ int mfd = openat(s->root_fd, "mounts", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (mfd >= 0 && list_dir_at(s->root_fd, "mounts", &mounts) == 0) {
        for (size_t i = 0; mounts[i]; i++) {
            u->mounts.total++;
            u->mounts.size += gc_du_at(mfd, mounts[i]);
        }
    }
    u->mounts.reclaimable = u->mounts.size;
}

int gc_usage(struct store *s, struct gc_usage *u, struct kiln_error **err)
{
    memset(u, 0, sizeof(*u));
    struct store_index idx;
    if (store_index_read(s, &idx, err) < 0)
        return -1;
    struct marks tagged = {0}, dangling = {0}, cache = {0};
    struct strset ids = {0}, active_ids = {0};
    int r = 0;
    for (size_t i = 0; i < idx.n && r == 0; i++) {
        const struct index_entry *e = &idx.entries[i];
        bool named = index_entry_name(e) != NULL;
        r = mark_manifest(s, e->desc.digest, 0, named ? &tagged : &dangling, err);
        _cleanup_free_ char *cfg = config_of(s, e->desc.digest, NULL, NULL);
        if (cfg) {
            set_add(&ids, cfg);
            if (named)
                set_add(&active_ids, cfg);
        }
    }
    store_index_free(&idx);
    struct record *recs = NULL;
    size_t n_recs = 0;
    if (r == 0)
        r = read_records(s, &recs, &n_recs, err);
    if (r < 0)
        goto out;
    mark_records(s, recs, n_recs, &cache);
    u->images.total = ids.n;
    u->images.active = active_ids.n;
    u->cache.total = n_recs;
    for (size_t i = 0; i < n_recs; i++)
        if (recs[i].valid &&
            (set_has(&tagged.blobs, recs[i].layer) || set_has(&dangling.blobs, recs[i].layer)))
            u->cache.active++;
    records_free(recs, n_recs);

    usage_sizes(s, u, &tagged, &dangling, &cache);
out:
    marks_free(&tagged);
    marks_free(&dangling);
    marks_free(&cache);
    set_free(&ids);
    set_free(&active_ids);
    return r;
}
