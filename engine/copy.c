#include "engine/copy.h"
#include "engine/context.h"

#include <archive.h>
#include <archive_entry.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fnmatch.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dockerfile/walk.h"
#include "engine/cache.h"
#include "engine/usermap.h"
#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

/* ---- items: what the layer will hold ---------------------------------- */

enum item_src { SRC_NONE, SRC_CONTEXT, SRC_LOWER, SRC_BUFFER, SRC_FILE };

struct item {
    char *dest;             /* relative to the image root, no leading '/' */
    struct stat st;         /* type and permission bits, size, mtime, dev/ino of the source */
    bool chown_set;         /* owner comes from --chown (else from the source / 0:0) */
    char *link;             /* symlink target */
    char *hardlink;         /* dest of the entry this one is a hard link to */
    enum item_src src;
    char *src_path;         /* context-relative path or host file */
    struct lower_node node; /* SRC_LOWER */
    const char *buf;        /* SRC_BUFFER (points into the instruction) */
    size_t buf_len;
    uint8_t sha[32];
    bool has_sha;
    bool is_root;           /* the destination directory itself */
    bool keep_owner;        /* an archive entry: its owner comes from the archive */
    char *file_name;        /* a lone file source: its name, should the destination turn out
                               to be a directory */
    size_t seq;             /* order of addition: a later source wins */
};

struct items {
    struct item *v;
    size_t n, cap;
};

static void items_free(struct items *it)
{
    for (size_t i = 0; i < it->n; i++) {
        free(it->v[i].dest);
        free(it->v[i].link);
        free(it->v[i].hardlink);
        free(it->v[i].src_path);
        free(it->v[i].file_name);
        lower_node_free(&it->v[i].node);
    }
    free(it->v);
    memset(it, 0, sizeof(*it));
}

static void item_clear(struct item *x)
{
    free(x->dest);
    free(x->link);
    free(x->hardlink);
    free(x->src_path);
    free(x->file_name);
    lower_node_free(&x->node);
}

static struct item *items_add(struct items *it, const char *dest)
{
    XGROW(it->v, it->cap, it->n + 1);
    struct item *x = &it->v[it->n++];
    memset(x, 0, sizeof(*x));
    x->dest = xstrdup(dest);
    x->node.tree = -1;
    x->seq = it->n;
    return x;
}

/* Compares paths component by component ("a/b" before "a-b"), the order of a
 * directory walk. */
static int path_cmp(const char *a, const char *b)
{
    for (;; a++, b++) {
        unsigned char ca = (unsigned char)*a, cb = (unsigned char)*b;
        if (ca == cb) {
            if (!ca)
                return 0;
            continue;
        }
        if (ca == '/')
            return cb ? -1 : 1;
        if (cb == '/')
            return ca ? 1 : -1;
        return ca < cb ? -1 : 1;
    }
}

static int item_cmp(const void *x, const void *y)
{
    const struct item *a = x, *b = y;
    int c = path_cmp(a->dest, b->dest);
    if (c)
        return c;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Sorts and drops duplicates (a later source wins over an earlier one). */
static void items_finish(struct items *it)
{
    if (it->n == 0)
        return;
    qsort(it->v, it->n, sizeof(*it->v), item_cmp);
    size_t out = 0;
    for (size_t i = 0; i < it->n; i++) {
        if (out > 0 && strcmp(it->v[out - 1].dest, it->v[i].dest) == 0) {
            struct item *prev = &it->v[out - 1];
            if (it->v[i].seq > prev->seq) {
                item_clear(prev);
                *prev = it->v[i];
            } else {
                item_clear(&it->v[i]);
            }
            continue;
        }
        if (out != i)
            it->v[out] = it->v[i];
        out++;
    }
    it->n = out;
}

/* ---- paths -------------------------------------------------------------- */


/* "/a/b" -> "a/b"; "/" -> "" */
static const char *rel_of(const char *abs)
{
    while (*abs == '/')
        abs++;
    return abs;
}

static char *join_rel(const char *a, const char *b)
{
    if (!*a)
        return xstrdup(b);
    if (!*b)
        return xstrdup(a);
    return xasprintf("%s/%s", a, b);
}

static const char *base_name(const char *p)
{
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/')
        n--;
    const char *s = p + n;
    while (s > p && s[-1] != '/')
        s--;
    return s;
}

static bool has_wildcards(const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' && s[1]) {
            s++;
            continue;
        }
        if (*s == '*' || *s == '?' || *s == '[')
            return true;
    }
    return false;
}

static bool is_url(const char *s)
{
    return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

/* ---- chmod ---------------------------------------------------------------- */

int chmod_apply(const char *spec, mode_t mode, mode_t *ret)
{
    if (!spec || !*spec)
        return -1;
    bool octal = true;
    for (const char *p = spec; *p; p++)
        octal &= *p >= '0' && *p <= '7';
    if (octal) {
        unsigned long v = strtoul(spec, NULL, 8);
        if (strlen(spec) > 5 || v > 07777)
            return -1;
        *ret = (mode & S_IFMT) | (mode_t)v;
        return 0;
    }
    mode_t m = mode & 07777;
    const char *p = spec;
    while (*p) {
        mode_t who = 0;
        for (; *p && strchr("ugoa", *p); p++)
            who |= *p == 'u' ? 04700 : *p == 'g' ? 02070 : *p == 'o' ? 01007 : 07777;
        if (!who)
            who = 07777;
        if (!*p || !strchr("+-=", *p))
            return -1;
        while (*p && strchr("+-=", *p)) {
            char op = *p++;
            mode_t bits = 0;
            for (; *p && strchr("rwxXst", *p); p++) {
                switch (*p) {
                case 'r':
                    bits |= 0444;
                    break;
                case 'w':
                    bits |= 0222;
                    break;
                case 'x':
                    bits |= 0111;
                    break;
                case 'X':
                    if (S_ISDIR(mode) || (m & 0111))
                        bits |= 0111;
                    break;
                case 's':
                    bits |= 06000;
                    break;
                case 't':
                    bits |= 01000;
                    break;
                }
            }
            bits &= who;
            if (op == '+')
                m |= bits;
            else if (op == '-')
                m &= ~bits;
            else
                m = (m & ~(who & 07777)) | bits;
        }
        if (*p == ',' && p[1])
            p++;
        else if (*p)
            return -1;
    }
    *ret = (mode & S_IFMT) | m;
    return 0;
}

/* ---- collecting sources --------------------------------------------------- */

struct collect {
    struct build_ctx *bc;
    const struct copy_request *rq;
    struct items items;
    struct cache_key key;
    const char *dest_rel; /* the destination directory (dir copies) */
    const struct ignore *exclude;
    size_t src_prefix_len; /* strip this much of walk paths */
    char *ctx_base;       /* the directory being copied, context-relative */
};

static void key_item(struct collect *c, const struct item *x)
{
    cache_key_add_str(&c->key, "path", x->dest);
    cache_key_add_int(&c->key, "mode", (int64_t)x->st.st_mode);
    if (x->link)
        cache_key_add_str(&c->key, "link", x->link);
    if (x->has_sha)
        cache_key_add(&c->key, "sha", x->sha, 32);
}

static int context_file_sha(struct collect *c, const char *path, const struct stat *st,
                            uint8_t sha[32], struct kiln_error **err)
{
    int fd = context_openat(c->rq->context_fd, path, O_RDONLY | O_NOFOLLOW);
    if (fd < 0)
        return kiln_error_set(err, -fd, "read '%s' from the build context", path);
    int r = filehash_get(c->bc->filehash, fd, st, sha);
    close(fd);
    if (r < 0)
        return kiln_error_set(err, -r, "read '%s' from the build context", path);
    return 0;
}

static bool excluded(struct collect *c, const char *rel)
{
    return c->exclude && *rel && ignore_match(c->exclude, rel);
}

static int walk_cb(const struct walk_entry *e, void *ud, struct kiln_error **err)
{
    struct collect *c = ud;
    const char *rel = e->path + c->src_prefix_len;
    while (*rel == '/')
        rel++;
    if (excluded(c, rel))
        return S_ISDIR(e->st->st_mode) ? WALK_SKIP : WALK_CONTINUE;
    _cleanup_free_ char *dest = join_rel(c->dest_rel, rel);
    struct item *x = items_add(&c->items, dest);
    x->st = *e->st;
    x->src = SRC_CONTEXT;
    x->src_path = xstrdup(e->path);
    if (S_ISLNK(e->st->st_mode)) {
        char buf[PATH_MAX];
        ssize_t n = readlinkat(e->dirfd, e->name, buf, sizeof(buf) - 1);
        if (n < 0)
            return kiln_error_set(err, errno, "readlink '%s'", e->path);
        buf[n] = '\0';
        x->link = xstrdup(buf);
    } else if (S_ISREG(e->st->st_mode)) {
        if (context_file_sha(c, e->path, e->st, x->sha, err) < 0)
            return -1;
        x->has_sha = true;
    }
    return WALK_CONTINUE;
}

/* The context-relative path a context path resolves to (symlinks followed
 * inside the context). */
static int context_resolve(struct collect *c, const char *path, char **ret, struct stat *st,
                           struct kiln_error **err)
{
    int fd = context_openat(c->rq->context_fd, path, O_PATH);
    if (fd < 0)
        return kiln_error_set(err, -fd, "\"/%s\": not found", path);
    fstat(fd, st);
    char proc[64], real[PATH_MAX];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(proc, real, sizeof(real) - 1);
    close(fd);
    if (n < 0)
        return kiln_error_set(err, errno, "resolve '%s'", path);
    real[n] = '\0';
    size_t cl = strlen(c->bc->context_dir);
    if (strncmp(real, c->bc->context_dir, cl) != 0 || (real[cl] && real[cl] != '/'))
        return kiln_error_set(err, 0, "\"/%s\": points outside the build context", path);
    const char *r = real + cl;
    while (*r == '/')
        r++;
    *ret = xstrdup(r);
    return 0;
}

/* One context source (after wildcard expansion). dest_is_dir: files land
 * in dest_rel/NAME; else a file source lands at file_dest. */
static int collect_context_source(struct collect *c, const char *path, bool dest_is_dir,
                                  const char *dest_rel, const char *file_dest,
                                  struct kiln_error **err)
{
    struct stat lst;
    int fd = context_openat(c->rq->context_fd, path, O_PATH | O_NOFOLLOW);
    if (fd < 0)
        return kiln_error_set(err, 0, "failed to compute cache key: \"/%s\": not found", path);
    fstat(fd, &lst);
    close(fd);
    _cleanup_free_ char *real = NULL;
    struct stat st = lst;
    if (S_ISLNK(lst.st_mode)) {
        /* a source named directly is followed (inside the context) */
        if (context_resolve(c, path, &real, &st, err) < 0)
            return -1;
    } else {
        real = xstrdup(path);
    }
    if (S_ISDIR(st.st_mode)) {
        c->dest_rel = dest_rel;
        struct item *root = items_add(&c->items, dest_rel);
        root->st = st;
        root->is_root = true;
        c->src_prefix_len = strcmp(real, ".") == 0 ? 0 : strlen(real);
        int r = context_walk_at(c->rq->context_fd, real, c->rq->ignore, walk_cb, c, err);
        return r < 0 ? -1 : 0;
    }
    _cleanup_free_ char *dest =
        dest_is_dir ? join_rel(dest_rel, base_name(path)) : xstrdup(file_dest);
    struct item *x = items_add(&c->items, dest);
    x->st = st;
    x->src = SRC_CONTEXT;
    x->src_path = xstrdup(real);
    if (S_ISREG(st.st_mode)) {
        if (context_file_sha(c, real, &st, x->sha, err) < 0)
            return -1;
        x->has_sha = true;
    }
    return 0;
}

/* ---- sources from another stage or image (COPY --from) ------------------- */

static int collect_lower_tree(struct collect *c, struct lowerfs *l, const struct lower_node *dir,
                              const char *dest, const char *rel, struct kiln_error **err)
{
    struct lower_dirent *ents = NULL;
    size_t n = 0;
    int r = lowerfs_readdir(l, dir, &ents, &n);
    if (r < 0)
        return kiln_error_set(err, -r, "read '/%s'", dir->path);
    for (size_t i = 0; i < n && r == 0; i++) {
        _cleanup_free_ char *crel = join_rel(rel, ents[i].name);
        if (excluded(c, crel))
            continue;
        _cleanup_free_ char *cdest = join_rel(dest, ents[i].name);
        struct item *x = items_add(&c->items, cdest);
        x->st = ents[i].node.st;
        x->st.st_uid = ents[i].node.uid;
        x->st.st_gid = ents[i].node.gid;
        x->src = SRC_LOWER;
        x->node = ents[i].node;
        x->node.path = xstrdup(ents[i].node.path);
        if (S_ISLNK(x->st.st_mode))
            lowerfs_readlink(l, &x->node, &x->link);
        if (S_ISDIR(x->st.st_mode))
            r = collect_lower_tree(c, l, &ents[i].node, cdest, crel, err);
    }
    lower_dirents_free(ents, n);
    return r;
}

/* ---- ADD: archives and URLs ---------------------------------------------- */


/* Unpacks an archive's entries as items below dest_rel, their content in
 * files under the build's scratch directory. */
static int collect_archive(struct collect *c, int fd, const char *name, const char *dest_rel,
                           struct kiln_error **err)
{
    struct archive *a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    archive_read_support_format_gnutar(a);
    int rc = -1;
    static int seq;
    _cleanup_free_ char *dir =
        xasprintf("%s/add-%d", c->bc->scratch, __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED));
    if (mkdir(dir, 0700) < 0) {
        kiln_error_set(err, errno, "create '%s'", dir);
        goto out;
    }
    if (archive_read_open_fd(a, fd, 64 * 1024) != ARCHIVE_OK) {
        kiln_error_set(err, 0, "ADD '%s': %s", name, archive_error_string(a));
        goto out;
    }
    struct archive_entry *e;
    int r, n = 0;
    while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        _cleanup_free_ char *clean = path_clean_abs(archive_entry_pathname(e));
        const char *rel = rel_of(clean);
        if (!*rel)
            continue;
        _cleanup_free_ char *dest = join_rel(dest_rel, rel);
        struct item *x = items_add(&c->items, dest);
        x->st = *archive_entry_stat(e);
        x->chown_set = false;
        x->keep_owner = true;
        if (archive_entry_hardlink(e)) {
            _cleanup_free_ char *hc = path_clean_abs(archive_entry_hardlink(e));
            x->hardlink = join_rel(dest_rel, rel_of(hc));
            x->st.st_mode = S_IFREG | (x->st.st_mode & 07777);
            cache_key_add_str(&c->key, "hardlink", x->hardlink);
        }
        if (archive_entry_symlink(e))
            x->link = xstrdup(archive_entry_symlink(e));
        if (S_ISREG(x->st.st_mode) && !x->hardlink) {
            x->src = SRC_FILE;
            x->src_path = xasprintf("%s/%d", dir, n++);
            int out = open(x->src_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            if (out < 0) {
                kiln_error_set(err, errno, "create '%s'", x->src_path);
                goto out;
            }
            struct sha256 h;
            sha256_init(&h);
            const void *buf;
            size_t len;
            la_int64_t off;
            uint64_t size = 0;
            while ((r = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK) {
                sha256_update(&h, buf, len);
                if (pwrite(out, buf, len, off) < 0) {
                    close(out);
                    sha256_abort(&h);
                    kiln_error_set(err, errno, "write '%s'", x->src_path);
                    goto out;
                }
                size = (uint64_t)off + len;
            }
            close(out);
            sha256_final_raw(&h, x->sha);
            x->has_sha = true;
            x->st.st_size = (off_t)size;
            if (r != ARCHIVE_EOF) {
                kiln_error_set(err, 0, "ADD '%s': %s", name, archive_error_string(a));
                goto out;
            }
        }
        cache_key_add_int(&c->key, "uid", x->st.st_uid);
        cache_key_add_int(&c->key, "gid", x->st.st_gid);
    }
    if (r != ARCHIVE_EOF) {
        kiln_error_set(err, 0, "ADD '%s': %s", name, archive_error_string(a));
        goto out;
    }
    rc = 0;
out:
    archive_read_free(a);
    return rc;
}

struct download {
    int fd;
    struct sha256 h;
    uint64_t size;
};

static size_t download_write(char *ptr, size_t size, size_t n, void *ud)
{
    struct download *d = ud;
    sha256_update(&d->h, ptr, size * n);
    d->size += size * n;
    return fs_write_all(d->fd, ptr, size * n) < 0 ? 0 : size * n;
}

static int collect_url(struct collect *c, const char *url, bool dest_is_dir, const char *dest_rel,
                       const char *file_dest, struct kiln_error **err)
{
    static int seq;
    _cleanup_free_ char *path =
        xasprintf("%s/url-%d", c->bc->scratch, __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED));
    struct download d = {.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)};
    if (d.fd < 0)
        return kiln_error_set(err, errno, "create '%s'", path);
    sha256_init(&d.h);
    CURL *curl = curl_easy_init();
    char ebuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(curl, CURLOPT_FILETIME, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, download_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &d);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode cr = curl_easy_perform(curl);
    long filetime = -1;
    curl_easy_getinfo(curl, CURLINFO_FILETIME, &filetime);
    curl_easy_cleanup(curl);
    close(d.fd);
    uint8_t sha[32];
    sha256_final_raw(&d.h, sha);
    if (cr != CURLE_OK)
        return kiln_error_set(err, 0, "ADD '%s': %s", url, ebuf[0] ? ebuf : curl_easy_strerror(cr));
    const char *want = c->rq->c->checksum.text;
    if (want) {
        char hex[65], got[DIGEST_STR_LEN];
        sha256_hex(sha, hex);
        snprintf(got, sizeof(got), "sha256:%s", hex);
        if (strcmp(want, got) != 0)
            return kiln_error_set(err, 0, "ADD '%s': digest mismatch %s: %s", url, got, want);
    }
    /* the file name: the last component of the URL path */
    _cleanup_free_ char *u = xstrdup(url);
    char *q = strpbrk(u + 8, "?#");
    if (q)
        *q = '\0';
    const char *slash = strrchr(u + 8, '/');
    const char *name = slash && slash[1] ? slash + 1 : "__unnamed__";
    _cleanup_free_ char *dest = dest_is_dir ? join_rel(dest_rel, name) : xstrdup(file_dest);
    struct item *x = items_add(&c->items, dest);
    x->st.st_mode = S_IFREG | 0600;
    x->st.st_size = (off_t)d.size;
    if (filetime > 0)
        x->st.st_mtim.tv_sec = filetime;
    x->src = SRC_FILE;
    x->src_path = xstrdup(path);
    memcpy(x->sha, sha, 32);
    x->has_sha = true;
    if (!dest_is_dir)
        x->file_name = xstrdup(name);
    return 0;
}

/* ---- writing the layer ----------------------------------------------------- */

struct dest_info {
    struct lowerfs lower;
    bool have_lower;
    uid_t uid;
    gid_t gid;
    bool chown;
    const char *chmod;
    struct timespec now;
};

static int add_parent_dirs(struct build_ctx *bc, struct layer_writer *w, struct dest_info *di,
                           const char *path, char ***emitted, struct kiln_error **err)
{
    /* every proper ancestor of path, outermost first */
    _cleanup_free_ char *p = xstrdup(path);
    for (char *s = p; (s = strchr(s, '/')); s++) {
        *s = '\0';
        if (!strv_contains(*emitted, p)) {
            struct layer_entry e = {.path = p, .content_fd = -1};
            struct lower_node n = {0};
            if (di->have_lower && lowerfs_resolve(&di->lower, p, false, &n) == 0 &&
                S_ISDIR(n.st.st_mode)) {
                e.st = n.st;
                e.st.st_uid = n.uid;
                e.st.st_gid = n.gid;
            } else {
                /* BuildKit (fsutil since 2025): new parents take --chmod too */
                e.st.st_mode = S_IFDIR | 0755;
                mode_t m;
                if (di->chmod && chmod_apply(di->chmod, e.st.st_mode, &m) == 0)
                    e.st.st_mode = m;
                e.st.st_uid = di->chown ? di->uid : 0;
                e.st.st_gid = di->chown ? di->gid : 0;
                e.st.st_mtim = di->now;
            }
            lower_node_free(&n);
            if (layer_writer_add(w, &e, err) < 0)
                return -1;
            strv_push(emitted, p);
        }
        *s = '/';
    }
    (void)bc;
    return 0;
}

static int open_content(struct collect *c, struct dest_info *di, struct lowerfs *from,
                        const struct item *x, struct kiln_error **err)
{
    int fd = -1;
    switch (x->src) {
    case SRC_CONTEXT:
        fd = context_openat(c->rq->context_fd, x->src_path, O_RDONLY | O_NOFOLLOW);
        break;
    case SRC_LOWER:
        fd = lowerfs_open(from, &x->node, O_RDONLY);
        break;
    case SRC_FILE:
        fd = open(x->src_path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            fd = -errno;
        break;
    case SRC_BUFFER:
        fd = memfd_create("kiln-heredoc", MFD_CLOEXEC);
        if (fd < 0) {
            fd = -errno;
            break;
        }
        if (fs_write_all(fd, x->buf, x->buf_len) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
            int e = errno;
            close(fd);
            fd = -e;
        }
        break;
    case SRC_NONE:
        fd = -EINVAL;
        break;
    }
    (void)di;
    if (fd < 0)
        kiln_error_set(err, -fd, "read source for '/%s'", x->dest);
    return fd;
}

static ssize_t item_index(const struct items *it, const char *dest)
{
    size_t lo = 0, hi = it->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = path_cmp(it->v[mid].dest, dest);
        if (c == 0)
            return (ssize_t)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* Hard links of an archive name an entry that may sort after them: in the
 * layer, the first name of each inode (in layer order) carries the data
 * and the others link to it. */
static int fix_hardlinks(struct items *it, struct kiln_error **err)
{
    size_t *root = xcalloc(it->n + 1, sizeof(*root));
    int rc = 0;
    for (size_t i = 0; i < it->n; i++) {
        size_t t = i;
        for (size_t hops = 0; it->v[t].hardlink; hops++) {
            ssize_t j = item_index(it, it->v[t].hardlink);
            if (j < 0 || hops > it->n) {
                rc = kiln_error_set(err, 0, "'%s': hard link to a missing file '%s'",
                                    it->v[i].dest, it->v[t].hardlink);
                goto out;
            }
            t = (size_t)j;
        }
        root[i] = t;
    }
    for (size_t i = 0; i < it->n; i++) {
        size_t t = root[i];
        if (!it->v[i].hardlink || t < i)
            continue;
        /* i is the first name of t's inode seen so far: it takes the data */
        size_t first = i;
        for (size_t k = 0; k < i; k++)
            if (root[k] == t) {
                first = k;
                break;
            }
        if (first != i)
            continue;
        struct item *a = &it->v[first], *b = &it->v[t];
        struct item tmp = *a;
        /* swap everything but the names and the order */
        char *ad = a->dest, *bd = b->dest;
        size_t as = a->seq, bs = b->seq;
        char *afn = a->file_name, *bfn = b->file_name;
        *a = *b;
        *b = tmp;
        a->dest = ad;
        a->seq = as;
        a->file_name = afn;
        b->dest = bd;
        b->seq = bs;
        b->file_name = bfn;
        free(a->hardlink);
        a->hardlink = NULL;
        free(b->hardlink);
        b->hardlink = xstrdup(a->dest);
        for (size_t k = 0; k < it->n; k++) {
            if (root[k] == t)
                root[k] = first;
            if (k != first && root[k] == first && it->v[k].hardlink &&
                strcmp(it->v[k].hardlink, a->dest) != 0) {
                free(it->v[k].hardlink);
                it->v[k].hardlink = xstrdup(a->dest);
            }
        }
        root[first] = first;
    }
out:
    free(root);
    return rc;
}

static int write_items(struct collect *c, struct dest_info *di, struct lowerfs *from,
                       struct layer_result *ret, struct kiln_error **err)
{
    if (fix_hardlinks(&c->items, err) < 0)
        return -1;
    struct layer_writer *w = NULL;
    if (layer_writer_begin(c->bc->store, &c->bc->lw, &w, err) < 0)
        return -1;
    char **emitted = strv_new();
    /* hard links: the first entry of an inode (in layer order) carries the data */
    struct {
        dev_t dev;
        ino_t ino;
        const char *dest;
    } *links = NULL;
    size_t n_links = 0, cap_links = 0;
    int rc = -1;
    for (size_t i = 0; i < c->items.n; i++) {
        struct item *x = &c->items.v[i];
        if (!*x->dest)
            continue; /* the image root itself */
        if (add_parent_dirs(c->bc, w, di, x->dest, &emitted, err) < 0)
            goto out;
        struct layer_entry e = {.path = x->dest, .st = x->st, .content_fd = -1};
        /* owners: an archive's or another stage's are kept, the context's
         * and downloads' are root's */
        if (!x->keep_owner && x->src != SRC_LOWER) {
            e.st.st_uid = 0;
            e.st.st_gid = 0;
        }
        if (di->chown) {
            e.st.st_uid = di->uid;
            e.st.st_gid = di->gid;
        }
        if (di->chmod && !S_ISLNK(x->st.st_mode)) {
            mode_t m;
            if (chmod_apply(di->chmod, x->st.st_mode, &m) == 0)
                e.st.st_mode = m;
        }
        if (x->link)
            e.link = x->link;
        if (x->hardlink) {
            e.link = x->hardlink;
            e.hardlink = true;
        } else if (S_ISREG(x->st.st_mode) && x->st.st_nlink > 1 && x->src == SRC_CONTEXT) {
            for (size_t k = 0; k < n_links; k++)
                if (links[k].dev == x->st.st_dev && links[k].ino == x->st.st_ino) {
                    e.link = links[k].dest;
                    e.hardlink = true;
                }
            if (!e.hardlink) {
                XGROW(links, cap_links, n_links + 1);
                links[n_links].dev = x->st.st_dev;
                links[n_links].ino = x->st.st_ino;
                links[n_links].dest = x->dest;
                n_links++;
            }
        }
        int fd = -1;
        if (S_ISREG(x->st.st_mode) && !e.hardlink) {
            fd = open_content(c, di, from, x, err);
            if (fd < 0)
                goto out;
            struct stat now;
            if (fstat(fd, &now) == 0 && x->src != SRC_BUFFER)
                e.st.st_size = now.st_size;
            e.content_fd = fd;
        }
        e.st.st_nlink = 1;
        int r = layer_writer_add(w, &e, err);
        if (fd >= 0)
            close(fd);
        if (r < 0)
            goto out;
        if (S_ISDIR(x->st.st_mode))
            strv_push(&emitted, x->dest);
    }
    rc = layer_writer_finish(w, ret, err);
    w = NULL;
out:
    if (w)
        layer_writer_abort(w);
    strv_free(emitted);
    free(links);
    return rc;
}

/* ---- the step ------------------------------------------------------------ */

static int read_image_file(struct lowerfs *l, const char *path, char **ret)
{
    size_t len = 0;
    if (lowerfs_read_file(l, path, 16 << 20, ret, &len) < 0)
        *ret = NULL;
    return 0;
}

/* The item a lone file source made lands inside the destination after all
 * (the destination exists as a directory in the image). */
static void move_into_dir(struct items *it, const char *dest_rel)
{
    for (size_t i = 0; i < it->n; i++) {
        struct item *x = &it->v[i];
        if (!x->file_name)
            continue;
        free(x->dest);
        x->dest = join_rel(dest_rel, x->file_name);
    }
}

/* Rewrites the destination prefix of every item (the destination resolved
 * through symlinks of the image). */
static void rebase(struct items *it, const char *from, const char *to)
{
    size_t fl = strlen(from);
    for (size_t i = 0; i < it->n; i++) {
        struct item *x = &it->v[i];
        if (fl && (strncmp(x->dest, from, fl) != 0 || (x->dest[fl] && x->dest[fl] != '/')))
            continue;
        const char *rest = x->dest + fl;
        while (*rest == '/')
            rest++;
        char *d = join_rel(to, rest);
        free(x->dest);
        x->dest = d;
    }
}

/* One source path of another stage or image. */
static int collect_lower_source(struct collect *c, struct lowerfs *from, const char *sabs,
                                bool dest_is_dir, const char *dest_rel, struct kiln_error **err)
{
    struct lower_node n = {0};
    int r = lowerfs_resolve(from, sabs, true, &n);
    if (r < 0)
        return kiln_error_set(err, 0, "failed to compute cache key: \"%s\": not found", sabs);
    if (S_ISDIR(n.st.st_mode)) {
        struct item *root = items_add(&c->items, dest_rel);
        root->st = n.st;
        root->st.st_uid = n.uid;
        root->st.st_gid = n.gid;
        root->is_root = true;
        root->keep_owner = true;
        r = collect_lower_tree(c, from, &n, dest_rel, "", err);
    } else {
        _cleanup_free_ char *d =
            dest_is_dir ? join_rel(dest_rel, base_name(sabs)) : xstrdup(dest_rel);
        struct item *x = items_add(&c->items, d);
        x->st = n.st;
        x->st.st_uid = n.uid;
        x->st.st_gid = n.gid;
        x->src = SRC_LOWER;
        x->node = n;
        x->node.path = xstrdup(n.path);
        if (S_ISLNK(n.st.st_mode))
            lowerfs_readlink(from, &x->node, &x->link);
    }
    lower_node_free(&n);
    return r < 0 ? -1 : 0;
}

/* Matches the components of an absolute pattern against the image, Go's
 * filepath.Match per component; matches in name order. */
static int lower_glob_at(struct lowerfs *from, const char *dir, char **comps, size_t i,
                         char ***matches, int depth, struct kiln_error **err)
{
    if (!comps[i]) {
        strv_push(matches, *dir ? dir : "/");
        return 0;
    }
    if (depth > 256)
        return kiln_error_set(err, ELOOP, "COPY --from: pattern too deep");
    if (!has_wildcards(comps[i])) {
        _cleanup_free_ char *next = xasprintf("%s/%s", dir, comps[i]);
        struct lower_node n = {0};
        bool ok = lowerfs_resolve(from, next, comps[i + 1] != NULL, &n) == 0;
        lower_node_free(&n);
        return ok ? lower_glob_at(from, next, comps, i + 1, matches, depth + 1, err) : 0;
    }
    struct lower_node d = {0};
    if (lowerfs_resolve(from, *dir ? dir : "/", true, &d) < 0 || !S_ISDIR(d.st.st_mode)) {
        lower_node_free(&d);
        return 0;
    }
    struct lower_dirent *ents = NULL;
    size_t n = 0;
    int r = lowerfs_readdir(from, &d, &ents, &n);
    lower_node_free(&d);
    if (r < 0)
        return kiln_error_set(err, -r, "COPY --from: read '%s'", *dir ? dir : "/");
    for (size_t k = 0; k < n && r == 0; k++) {
        if (fnmatch(comps[i], ents[k].name, FNM_PATHNAME) != 0)
            continue;
        _cleanup_free_ char *next = xasprintf("%s/%s", dir, ents[k].name);
        r = lower_glob_at(from, next, comps, i + 1, matches, depth + 1, err);
    }
    lower_dirents_free(ents, n);
    return r;
}

static int lower_glob(struct lowerfs *from, const char *pattern, char ***matches,
                      struct kiln_error **err)
{
    char **comps = strv_new();
    _cleanup_free_ char *copy = xstrdup(pattern);
    char *save = NULL;
    for (char *p = strtok_r(copy, "/", &save); p; p = strtok_r(NULL, "/", &save))
        strv_push(&comps, p);
    int r = lower_glob_at(from, "", comps, 0, matches, 0, err);
    strv_free(comps);
    return r;
}

static int collect_sources(struct collect *c, struct stage_state *st, struct lowerfs *from,
                           bool have_from, bool dest_is_dir, const char *dest_rel,
                           struct kiln_error **err)
{
    const struct copy_request *rq = c->rq;
    const struct df_copy *cp = rq->c;
    struct build_ctx *bc = c->bc;
    bool lone = cp->n_srcs + cp->n_contents == 1 && !dest_is_dir;
    (void)st;
    for (size_t i = 0; i < cp->n_srcs; i++) {
        const char *src = cp->srcs[i].text;
        size_t before = c->items.n;
        if (is_url(src)) {
            if (!rq->is_add)
                return kiln_error_set(err, 0, "source can't be a URL for COPY");
            if (collect_url(c, src, dest_is_dir, dest_rel, dest_rel, err) < 0)
                return -1;
        } else if (have_from) {
            cache_key_add_str(&c->key, "src", src);
            _cleanup_free_ char *sabs = path_clean_abs(src);
            if (has_wildcards(sabs)) {
                /* BuildKit: a wildcard may match nothing */
                char **matches = strv_new();
                int r = lower_glob(from, sabs, &matches, err);
                for (size_t k = 0; r == 0 && matches[k]; k++)
                    r = collect_lower_source(c, from, matches[k], true, dest_rel, err);
                strv_free(matches);
                if (r < 0)
                    return -1;
            } else if (collect_lower_source(c, from, sabs, dest_is_dir, dest_rel, err) < 0) {
                return -1;
            }
        } else {
            _cleanup_free_ char *sclean = path_clean_abs(src);
            const char *srel = *rel_of(sclean) ? rel_of(sclean) : ".";
            _cleanup_strv_ char **matches = NULL;
            if (context_glob(rq->context_fd, srel, rq->ignore, &matches, err) < 0)
                return -1;
            if (!matches[0] && !has_wildcards(srel))
                return kiln_error_set(err, 0, "failed to compute cache key: \"/%s\": not found",
                                      strcmp(srel, ".") == 0 ? "" : srel);
            for (size_t k = 0; matches[k]; k++) {
                int r;
                if (cp->parents) {
                    /* --parents keeps the source's path (after a "/./" pivot) */
                    const char *keep = matches[k];
                    const char *pivot = strstr(src, "/./");
                    if (pivot) {
                        _cleanup_free_ char *pre0 = xstrndup(src, (size_t)(pivot - src));
                        _cleanup_free_ char *pre = path_clean_abs(pre0);
                        size_t pl = strlen(rel_of(pre));
                        if (pl && strncmp(keep, rel_of(pre), pl) == 0)
                            keep += pl + (keep[pl] == '/');
                    }
                    _cleanup_free_ char *d = join_rel(dest_rel, keep);
                    r = collect_context_source(c, matches[k], false, d, d, err);
                } else if (rq->is_add) {
                    int fd = context_openat(rq->context_fd, matches[k], O_RDONLY);
                    struct stat sst;
                    if (fd >= 0 && fstat(fd, &sst) == 0 && S_ISREG(sst.st_mode) &&
                        context_is_archive(fd)) {
                        uint8_t sha[32];
                        if (filehash_get(bc->filehash, fd, &sst, sha) < 0)
                            memset(sha, 0, sizeof(sha));
                        cache_key_add(&c->key, "archive", sha, 32);
                        r = collect_archive(c, fd, matches[k], dest_rel, err);
                        lone = false;
                    } else {
                        r = collect_context_source(c, matches[k], dest_is_dir, dest_rel,
                                                   dest_rel, err);
                    }
                    if (fd >= 0)
                        close(fd);
                } else {
                    r = collect_context_source(c, matches[k], dest_is_dir, dest_rel, dest_rel,
                                               err);
                }
                if (r < 0)
                    return -1;
            }
        }
        /* a lone file might yet land inside an existing directory */
        if (lone && !is_url(src) && c->items.n == before + 1 &&
            !S_ISDIR(c->items.v[before].st.st_mode))
            c->items.v[before].file_name = xstrdup(base_name(src));
    }
    for (size_t i = 0; i < cp->n_contents; i++) {
        const struct df_inline_file *f = &cp->contents[i];
        _cleanup_free_ char *d = dest_is_dir ? join_rel(dest_rel, f->name) : xstrdup(dest_rel);
        struct item *x = items_add(&c->items, d);
        x->st.st_mode = S_IFREG | 0644;
        x->st.st_size = (off_t)f->len;
        x->src = SRC_BUFFER;
        x->buf = f->data;
        x->buf_len = f->len;
        struct sha256 h;
        sha256_init(&h);
        sha256_update(&h, f->data, f->len);
        sha256_final_raw(&h, x->sha);
        x->has_sha = true;
        if (lone)
            x->file_name = xstrdup(f->name);
    }
    return 0;
}

int copy_step(struct build_ctx *bc, struct stage_state *st, const struct copy_request *rq,
              char ret_key[DIGEST_STR_LEN], struct layer_result *ret, bool *ret_cached,
              struct kiln_error **err)
{
    const struct df_copy *cp = rq->c;
    struct collect c = {.bc = bc, .rq = rq};
    struct dest_info di = {0};
    struct lowerfs from = {0};
    bool have_from = false;
    int rc = -1;
    *ret_cached = false;
    clock_gettime(CLOCK_REALTIME, &di.now);
    if (bc->epoch >= 0) {
        di.now.tv_sec = bc->epoch;
        di.now.tv_nsec = 0;
    }

    /* the destination, relative to WORKDIR */
    const char *dest_text = cp->dest.text && *cp->dest.text ? cp->dest.text : ".";
    size_t dl = strlen(dest_text);
    bool dest_slash = dest_text[dl - 1] == '/' || strcmp(dest_text, ".") == 0 ||
                      strcmp(dest_text, "..") == 0 ||
                      (dl >= 2 && strcmp(dest_text + dl - 2, "/.") == 0);
    _cleanup_free_ char *dest_joined =
        dest_text[0] == '/' ? xstrdup(dest_text)
                            : xasprintf("%s/%s", rq->workdir && *rq->workdir ? rq->workdir : "/",
                                        dest_text);
    _cleanup_free_ char *dest_abs = path_clean_abs(dest_joined);
    const char *dest_rel = rel_of(dest_abs);
    size_t n_sources = cp->n_srcs + cp->n_contents;
    bool any_wild = false;
    for (size_t i = 0; i < cp->n_srcs; i++)
        any_wild |= has_wildcards(cp->srcs[i].text);
    if (n_sources > 1 && !dest_slash)
        return kiln_error_set(err, 0, "When using %s with more than one source file, the "
                                      "destination must be a directory and end with a /",
                              rq->is_add ? "ADD" : "COPY");
    bool dest_is_dir = dest_slash || n_sources > 1 || any_wild;

    if (cp->n_excludes) {
        char **pats = strv_new();
        for (size_t i = 0; i < cp->n_excludes; i++)
            strv_push(&pats, cp->excludes[i].text);
        struct ignore *ex = NULL;
        int r = ignore_compile(pats, &ex, err);
        strv_free(pats);
        if (r < 0)
            return kiln_error_wrap(err, "--exclude");
        c.exclude = ex;
    }

    /* 1. the key: from the sources alone (nothing of the image is read, so a
     *    hit extracts nothing); the image below is named by st->key */
    cache_key_begin(&c.key, st->key);
    cache_key_add_str(&c.key, "step", rq->is_add ? "ADD" : "COPY");
    cache_key_add_str(&c.key, "history", rq->history);
    cache_key_add_str(&c.key, "dest", dest_abs);
    cache_key_add_int(&c.key, "dest_is_dir", dest_is_dir);
    cache_key_add_int(&c.key, "link", cp->link);
    if (rq->from) {
        /* another stage or an image: its key names its content, so a hit
         * reads none of its files (nor extracts its layers) */
        cache_key_add_str(&c.key, "from", rq->from->stage->key);
        for (size_t i = 0; i < cp->n_srcs; i++)
            cache_key_add_str(&c.key, "src", cp->srcs[i].text);
        for (size_t i = 0; i < cp->n_contents; i++)
            cache_key_add(&c.key, "heredoc", cp->contents[i].data, cp->contents[i].len);
        cache_key_end(&c.key, ret_key);
        cache_key_begin(&c.key, NULL); /* what collecting adds below goes nowhere */
    } else {
        if (collect_sources(&c, st, &from, false, dest_is_dir, dest_rel, err) < 0)
            goto out;
        items_finish(&c.items);
        for (size_t i = 0; i < c.items.n; i++)
            key_item(&c, &c.items.v[i]);
        cache_key_end(&c.key, ret_key);
    }

    if (!bc->req->no_cache) {
        struct cache_record rec;
        if (cache_lookup(bc->store, ret_key, &rec) == 0) {
            descriptor_copy(&ret->blob, &rec.layer);
            memcpy(ret->diff_id, rec.diff_id, DIGEST_STR_LEN);
            cache_record_free(&rec);
            *ret_cached = true;
            rc = 0;
            goto out;
        }
    }

    if (rq->from) {
        if (stage_lowerfs(bc, rq->from->stage, &from, err) < 0)
            goto out;
        have_from = true;
        if (collect_sources(&c, st, &from, true, dest_is_dir, dest_rel, err) < 0)
            goto out;
        items_finish(&c.items);
    }

    /* 2. a miss: place the items in the image (--link never looks at it) */
    if (!cp->link && st->n_layers) {
        if (stage_lowerfs(bc, st, &di.lower, err) < 0)
            goto out;
        di.have_lower = true;
        struct lower_node n = {0};
        _cleanup_free_ char *real = NULL;
        if (lowerfs_resolve(&di.lower, dest_abs, true, &n) == 0) {
            if (S_ISDIR(n.st.st_mode) && !dest_is_dir) {
                move_into_dir(&c.items, dest_rel);
                dest_is_dir = true;
            }
            if (S_ISDIR(n.st.st_mode))
                real = xstrdup(n.path);
        }
        lower_node_free(&n);
        if (!real) {
            /* resolve the parent, so that a file lands through symlinked dirs */
            _cleanup_free_ char *parent = xstrdup(dest_abs);
            char *slash = strrchr(parent, '/');
            if (slash && slash != parent) {
                *slash = '\0';
                if (lowerfs_resolve(&di.lower, parent, true, &n) == 0 && S_ISDIR(n.st.st_mode))
                    real = join_rel(n.path, base_name(dest_abs));
                lower_node_free(&n);
            }
        }
        if (real && strcmp(real, dest_rel) != 0)
            rebase(&c.items, dest_rel, real);
        /* a directory source copied onto a directory that exists leaves that
         * directory as it is (BuildKit: the target's metadata is only set
         * when the copy creates it) */
        for (size_t i = 0; i < c.items.n; i++) {
            struct item *x = &c.items.v[i];
            if (!x->is_root || !*x->dest)
                continue;
            if (lowerfs_resolve(&di.lower, x->dest, true, &n) == 0 && S_ISDIR(n.st.st_mode)) {
                free(x->dest);
                x->dest = xstrdup(""); /* not written */
            }
            lower_node_free(&n);
        }
        items_finish(&c.items);
    }

    /* --chown names resolve in the image's own passwd and group */
    if (cp->chown.text) {
        char *passwd = NULL, *group = NULL;
        if (di.have_lower) {
            read_image_file(&di.lower, "/etc/passwd", &passwd);
            read_image_file(&di.lower, "/etc/group", &group);
        } else if (st->n_layers) {
            struct lowerfs tmp;
            if (stage_lowerfs(bc, st, &tmp, err) < 0)
                goto out;
            read_image_file(&tmp, "/etc/passwd", &passwd);
            read_image_file(&tmp, "/etc/group", &group);
            lowerfs_close(&tmp);
        }
        int r = usermap_resolve_chown(cp->chown.text, passwd, group, &di.uid, &di.gid, err);
        free(passwd);
        free(group);
        if (r < 0)
            goto out;
        di.chown = true;
    }
    di.chmod = cp->chmod.text;
    if (di.chmod) {
        mode_t m;
        if (chmod_apply(di.chmod, S_IFREG | 0644, &m) < 0) {
            kiln_error_set(err, 0, "invalid chmod parameter: '%s'. it should be octal string "
                                   "and between 0 and 07777",
                           di.chmod);
            goto out;
        }
    }
    for (size_t i = 0; i < c.items.n; i++)
        if (c.items.v[i].src == SRC_BUFFER)
            c.items.v[i].st.st_mtim = di.now;
    /* a wildcard that matched nothing still makes the destination
     * (BuildKit: AllowEmptyWildcard, CreateDestPath) */
    if (c.items.n == 0 && dest_is_dir && *dest_rel) {
        struct lower_node n = {0};
        bool exists = di.have_lower && lowerfs_resolve(&di.lower, dest_abs, true, &n) == 0;
        lower_node_free(&n);
        if (!exists) {
            struct item *x = items_add(&c.items, dest_rel);
            x->st.st_mode = S_IFDIR | 0755;
            x->st.st_mtim = di.now;
        }
    }
    if (write_items(&c, &di, &from, ret, err) < 0)
        goto out;
    rc = 0;
out:
    if (di.have_lower)
        lowerfs_close(&di.lower);
    if (have_from)
        lowerfs_close(&from);
    if (c.exclude)
        ignore_free((struct ignore *)c.exclude);
    sha256_abort(&c.key.h);
    items_free(&c.items);
    return rc;
}
