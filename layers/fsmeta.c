/* File metadata as layers see it: owners, xattrs, path checks, owner side
 * tables. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "layers/layer_internal.h"
#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

bool xattr_is_private(const char *name)
{
    static const char *const prefixes[] = {"user.kiln.", "user.overlay.", "trusted.overlay.",
                                           "user.fuseoverlayfs.", "trusted.fuseoverlayfs.",
                                           "security.fuseoverlayfs."};
    for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++)
        if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    return false;
}

void xattr_list_free(struct xattr_list *x)
{
    for (size_t i = 0; i < x->n; i++) {
        free(x->names[i]);
        free(x->values[i]);
    }
    free(x->names);
    free(x->values);
    free(x->sizes);
    memset(x, 0, sizeof(*x));
}

bool xattr_list_equal(const struct xattr_list *a, const struct xattr_list *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->names[i], b->names[i]) != 0 || a->sizes[i] != b->sizes[i] ||
            memcmp(a->values[i], b->values[i], a->sizes[i]) != 0)
            return false;
    return true;
}

int owner_parse(const char *s, size_t len, uid_t *ret_uid, gid_t *ret_gid)
{
    char buf[64];
    if (len == 0 || len >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *colon = strchr(buf, ':');
    if (!colon || colon == buf || !colon[1])
        return -EINVAL;
    *colon = '\0';
    char *end = NULL;
    errno = 0;
    unsigned long long u = strtoull(buf, &end, 10);
    if (errno || *end || buf[0] == '-' || u > UINT32_MAX - 1)
        return -EINVAL;
    unsigned long long g = strtoull(colon + 1, &end, 10);
    if (errno || *end || colon[1] == '-' || g > UINT32_MAX - 1)
        return -EINVAL;
    *ret_uid = (uid_t)u;
    *ret_gid = (gid_t)g;
    return 0;
}

/* ---- owner side tables ------------------------------------------------------ */

struct owner_rec {
    const char *path;
    uid_t uid;
    gid_t gid;
};

struct owner_table {
    char *data;
    struct owner_rec *recs;
    size_t n;
};

/* By path, then in file order (records point into one buffer), so that the
 * last record of a path is the last of its run. */
static int owner_rec_cmp(const void *a, const void *b)
{
    const struct owner_rec *x = a, *y = b;
    int c = strcmp(x->path, y->path);
    if (c)
        return c;
    return x->path < y->path ? -1 : x->path > y->path;
}

static int owner_rec_path_cmp(const void *a, const void *b)
{
    return strcmp(((const struct owner_rec *)a)->path, ((const struct owner_rec *)b)->path);
}

void owner_record_add(struct strbuf *sb, const char *path, uid_t uid, gid_t gid)
{
    strbuf_addf(sb, "%u:%u %s", (unsigned)uid, (unsigned)gid, path);
    strbuf_addc(sb, '\0');
}

/* A new table holding the bytes of path (none when it does not exist). */
static int table_read(const char *path, const char *what, struct owner_table **ret,
                      size_t *ret_len, struct kiln_error **err)
{
    struct owner_table *t = xcalloc(1, sizeof(*t));
    *ret_len = 0;
    int r = fs_read_file_at(AT_FDCWD, path, (size_t)1 << 30, &t->data, ret_len);
    if (r < 0 && r != -ENOENT) {
        free(t);
        return kiln_error_set(err, -r, "read %s '%s'", what, path);
    }
    *ret = t;
    return 0;
}

int owner_table_load(const char *path, struct owner_table **ret, struct kiln_error **err)
{
    struct owner_table *t;
    size_t len;
    if (table_read(path, "owner table", &t, &len, err) < 0)
        return -1;
    size_t cap = 0;
    for (size_t off = 0; off < len;) {
        char *rec = t->data + off;
        size_t rl = strnlen(rec, len - off);
        off += rl + 1;
        char *sp = memchr(rec, ' ', rl);
        struct owner_rec o;
        if (!sp || owner_parse(rec, (size_t)(sp - rec), &o.uid, &o.gid) < 0) {
            owner_table_free(t);
            return kiln_error_set(err, 0, "owner table '%s' is corrupt", path);
        }
        o.path = sp + 1;
        XGROW(t->recs, cap, t->n + 1);
        t->recs[t->n++] = o;
    }
    if (t->n)
        qsort(t->recs, t->n, sizeof(*t->recs), owner_rec_cmp);
    *ret = t;
    return 0;
}

int owner_table_lookup(const struct owner_table *t, const char *path, uid_t *ret_uid,
                       gid_t *ret_gid)
{
    if (!t || t->n == 0)
        return -ENOENT;
    struct owner_rec key = {.path = path};
    /* The last record of a path wins: find any, then walk to the last. */
    struct owner_rec *o = bsearch(&key, t->recs, t->n, sizeof(*t->recs), owner_rec_path_cmp);
    if (!o)
        return -ENOENT;
    while (o + 1 < t->recs + t->n && strcmp(o[1].path, path) == 0)
        o++;
    *ret_uid = o->uid;
    *ret_gid = o->gid;
    return 0;
}

int owner_table_load_log(const char *path, struct owner_table **ret, struct kiln_error **err)
{
    struct owner_table *t;
    size_t len;
    if (table_read(path, "owner log", &t, &len, err) < 0)
        return -1;
    size_t cap = 0;
    /* unescaped in place: a record never grows */
    for (size_t off = 0; off < len;) {
        char *rec = t->data + off;
        char *nl = memchr(rec, '\n', len - off);
        size_t rl = nl ? (size_t)(nl - rec) : len - off;
        off += rl + 1;
        rec[rl] = '\0';
        char *sp = memchr(rec, ' ', rl);
        struct owner_rec o;
        if (!sp || owner_parse(rec, (size_t)(sp - rec), &o.uid, &o.gid) < 0 || sp[1] != '/') {
            owner_table_free(t);
            return kiln_error_set(err, 0, "owner log '%s' is corrupt", path);
        }
        char *in = sp + 1, *out = sp + 1;
        while (*in == '/')
            in++;
        for (; *in; in++) {
            if (*in == '\\' && in[1] == 'n') {
                *out++ = '\n';
                in++;
            } else if (*in == '\\' && in[1] == '\\') {
                *out++ = '\\';
                in++;
            } else {
                *out++ = *in;
            }
        }
        *out = '\0';
        o.path = sp + 1;
        XGROW(t->recs, cap, t->n + 1);
        t->recs[t->n++] = o;
    }
    if (t->n)
        qsort(t->recs, t->n, sizeof(*t->recs), owner_rec_cmp);
    *ret = t;
    return 0;
}

void owner_table_free(struct owner_table *t)
{
    if (!t)
        return;
    free(t->recs);
    free(t->data);
    free(t);
}

/* ---- metadata ------------------------------------------------------------------ */

static ssize_t x_list(int fd, const char *ppath, char *buf, size_t size)
{
    return fd >= 0 ? flistxattr(fd, buf, size) : llistxattr(ppath, buf, size);
}

static ssize_t x_get(int fd, const char *ppath, const char *name, void *buf, size_t size)
{
    return fd >= 0 ? fgetxattr(fd, name, buf, size) : lgetxattr(ppath, name, buf, size);
}

static int read_xattrs(int fd, const char *ppath, struct file_meta *m)
{
    char stackbuf[1024];
    _cleanup_free_ char *heap = NULL;
    char *names = stackbuf;
    ssize_t len = x_list(fd, ppath, stackbuf, sizeof(stackbuf));
    if (len < 0 && errno == ERANGE) {
        len = x_list(fd, ppath, NULL, 0);
        if (len < 0)
            return -errno;
        heap = xmalloc((size_t)len + 1);
        names = heap;
        len = x_list(fd, ppath, heap, (size_t)len);
    }
    if (len < 0)
        return errno == ENOTSUP || errno == EOPNOTSUPP ? 0 : -errno;
    size_t cap = 0;
    for (ssize_t off = 0; off < len;) {
        const char *name = names + off;
        off += (ssize_t)strnlen(name, (size_t)(len - off)) + 1;
        bool owner = strcmp(name, KILN_OWNER_XATTR) == 0;
        if (!owner && xattr_is_private(name))
            continue;
        char vbuf[256];
        void *val = vbuf;
        _cleanup_free_ void *vheap = NULL;
        ssize_t vl = x_get(fd, ppath, name, vbuf, sizeof(vbuf));
        if (vl < 0 && errno == ERANGE) {
            vl = x_get(fd, ppath, name, NULL, 0);
            if (vl > LAYER_MAX_XATTR_VALUE)
                return -E2BIG;
            if (vl >= 0) {
                vheap = xmalloc((size_t)vl + 1);
                val = vheap;
                vl = x_get(fd, ppath, name, vheap, (size_t)vl);
            }
        }
        if (vl < 0) {
            if (errno == ENODATA)
                continue; /* removed meanwhile, or not readable here */
            return -errno;
        }
        if (owner) {
            uid_t u;
            gid_t g;
            if (owner_parse(val, (size_t)vl, &u, &g) == 0) {
                m->uid = u;
                m->gid = g;
                m->owner_from_xattr = true;
            }
            continue;
        }
        if (m->xattrs.n >= LAYER_MAX_XATTRS)
            return -E2BIG;
        size_t c2 = cap, c3 = cap;
        XGROW(m->xattrs.names, cap, m->xattrs.n + 1);
        XGROW(m->xattrs.values, c2, m->xattrs.n + 1);
        XGROW(m->xattrs.sizes, c3, m->xattrs.n + 1);
        /* insertion keeps the list sorted by name */
        size_t i = m->xattrs.n;
        while (i > 0 && strcmp(m->xattrs.names[i - 1], name) > 0) {
            m->xattrs.names[i] = m->xattrs.names[i - 1];
            m->xattrs.values[i] = m->xattrs.values[i - 1];
            m->xattrs.sizes[i] = m->xattrs.sizes[i - 1];
            i--;
        }
        m->xattrs.names[i] = xstrdup(name);
        m->xattrs.values[i] = xmemdup(val, (size_t)vl ? (size_t)vl : 1);
        m->xattrs.sizes[i] = (size_t)vl;
        m->xattrs.n++;
    }
    return 0;
}

int meta_read_at(int dirfd, const char *name, int fd, struct file_meta *m)
{
    memset(m, 0, sizeof(*m));
    if (fstatat(dirfd, name, &m->st, AT_SYMLINK_NOFOLLOW) < 0)
        return -errno;
    m->uid = m->st.st_uid;
    m->gid = m->st.st_gid;
    if (S_ISLNK(m->st.st_mode)) {
        if (m->st.st_size > LAYER_MAX_LINK)
            return -ENAMETOOLONG;
        size_t cap = (size_t)m->st.st_size + 1;
        m->link = xmalloc(cap + 1);
        ssize_t n = readlinkat(dirfd, name, m->link, cap);
        if (n < 0) {
            int e = errno;
            meta_free(m);
            return -e;
        }
        if ((size_t)n >= cap) { /* changed under us */
            meta_free(m);
            return -EAGAIN;
        }
        m->link[n] = '\0';
    }
    char ppath[64];
    _cleanup_free_ char *heap = NULL;
    const char *pp = ppath;
    if (fd < 0) {
        /* The parent through its descriptor, the name without following. */
        if (dirfd == AT_FDCWD) {
            pp = name;
        } else {
            heap = xasprintf("/proc/self/fd/%d/%s", dirfd, name);
            pp = heap;
        }
    }
    int r = read_xattrs(fd, pp, m);
    if (r < 0) {
        meta_free(m);
        return r;
    }
    /* Only regular files and directories can carry user xattrs. */
    if (!S_ISREG(m->st.st_mode) && !S_ISDIR(m->st.st_mode) && m->owner_from_xattr) {
        m->uid = m->st.st_uid;
        m->gid = m->st.st_gid;
        m->owner_from_xattr = false;
    }
    return 0;
}

void meta_free(struct file_meta *m)
{
    free(m->link);
    m->link = NULL;
    xattr_list_free(&m->xattrs);
}

/* ---- paths ---------------------------------------------------------------- */

char *layer_path_clean(const char *path, bool allow_absolute, const char **bad)
{
    *bad = NULL;
    const char *p = path;
    if (*p == '/') {
        if (!allow_absolute) {
            *bad = "absolute path";
            return NULL;
        }
        while (*p == '/')
            p++;
    }
    struct strbuf sb = STRBUF_INIT;
    strbuf_init(&sb);
    while (*p) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            *bad = "'..' in path";
            goto fail;
        }
        if (n > LAYER_MAX_NAME) {
            *bad = "name too long";
            goto fail;
        }
        if (n > 0 && !(n == 1 && p[0] == '.')) {
            if (sb.len)
                strbuf_addc(&sb, '/');
            strbuf_add(&sb, p, n);
            if (sb.len > LAYER_MAX_PATH) {
                *bad = "path too long";
                goto fail;
            }
        }
        p += n;
        while (*p == '/')
            p++;
    }
    if (sb.len == 0) {
        strbuf_release(&sb);
        return NULL;
    }
    return strbuf_detach(&sb, NULL);
fail:
    strbuf_release(&sb);
    return NULL;
}

/* ---- opaque directories ------------------------------------------------------ */

static bool xattr_yes(int fd, const char *name)
{
    char v[4];
    ssize_t n = fgetxattr(fd, name, v, sizeof(v));
    return n == 1 && (v[0] == 'y' || v[0] == 'Y');
}

bool fd_is_opaque(int fd)
{
    return xattr_yes(fd, OVL_OPAQUE_XATTR) || xattr_yes(fd, "trusted.overlay.opaque") ||
           xattr_yes(fd, FUSE_OPAQUE_XATTR);
}

/* ---- listings ------------------------------------------------------------------ */

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int dir_list_names(int dfd, bool sort, char ***ret, size_t *ret_n)
{
    int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        return -e;
    }
    char **v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        XGROW(v, cap, n + 1);
        v[n++] = xstrdup(de->d_name);
    }
    int e = errno;
    closedir(d);
    if (e) {
        names_free(v, n);
        return -e;
    }
    if (sort && n > 1)
        qsort(v, n, sizeof(*v), name_cmp);
    *ret = v;
    *ret_n = n;
    return 0;
}

void names_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}
