#include "layers/lowerfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "layers/layer.h"
#include "layers/layer_internal.h"
#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

#define MAX_SYMLINK_HOPS 40

int lowerfs_init(struct lowerfs *l, char *const *trees, size_t n, struct kiln_error **err)
{
    memset(l, 0, sizeof(*l));
    l->fds = xcalloc(n + 1, sizeof(int));
    l->paths = xcalloc(n + 1, sizeof(char *));
    l->owners = xcalloc(n + 1, sizeof(*l->owners));
    for (size_t i = 0; i < n; i++) {
        int fd = open(trees[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
            kiln_error_set(err, errno, "open layer tree '%s'", trees[i]);
            lowerfs_close(l);
            return -1;
        }
        l->fds[i] = fd;
        l->paths[i] = xstrdup(trees[i]);
        l->n++;
        /* symlinks and fifos of a tree extracted in single-ID mode keep
         * their owners here (missing file: an empty table) */
        _cleanup_free_ char *op = xasprintf("%s.owners", trees[i]);
        if (owner_table_load(op, &l->owners[i], err) < 0) {
            lowerfs_close(l);
            return -1;
        }
    }
    return 0;
}

void lowerfs_close(struct lowerfs *l)
{
    for (size_t i = 0; i < l->n; i++) {
        close(l->fds[i]);
        free(l->paths[i]);
        owner_table_free(l->owners[i]);
    }
    free(l->fds);
    free(l->paths);
    free(l->owners);
    memset(l, 0, sizeof(*l));
}

void lower_node_free(struct lower_node *n)
{
    free(n->path);
    n->path = NULL;
}

static bool is_whiteout(const struct stat *st)
{
    return S_ISCHR(st->st_mode) && major(st->st_rdev) == 0 && minor(st->st_rdev) == 0;
}

static char *tree_abs(struct lowerfs *l, int t, const char *rel)
{
    return *rel ? path_join(l->paths[t], rel) : xstrdup(l->paths[t]);
}

static bool is_opaque(struct lowerfs *l, int t, const char *rel)
{
    _cleanup_free_ char *p = tree_abs(l, t, rel);
    char v[4];
    ssize_t n = lgetxattr(p, "user.overlay.opaque", v, sizeof(v));
    if (n == 1 && v[0] == 'y')
        return true;
    n = lgetxattr(p, "trusted.overlay.opaque", v, sizeof(v));
    return n == 1 && v[0] == 'y';
}

static void owner_of(struct lowerfs *l, int t, const char *rel, const struct stat *st, uid_t *uid,
                     gid_t *gid)
{
    *uid = st->st_uid;
    *gid = st->st_gid;
    if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode)) {
        uid_t u;
        gid_t g;
        if (l->owners && owner_table_lookup(l->owners[t], rel, &u, &g) == 0) {
            *uid = u;
            *gid = g;
        }
        return;
    }
    _cleanup_free_ char *p = tree_abs(l, t, rel);
    char v[64];
    ssize_t n = lgetxattr(p, KILN_OWNER_XATTR, v, sizeof(v) - 1);
    if (n <= 0)
        return;
    v[n] = '\0';
    unsigned long u, g;
    if (sscanf(v, "%lu:%lu", &u, &g) == 2) {
        *uid = (uid_t)u;
        *gid = (gid_t)g;
    }
}

/* The entry at rel (exact, no symlinks followed), with the trees that
 * contribute to it when it is a directory.  active/n_active: the trees whose
 * parent directory is part of the merge. */
static int lookup_level(struct lowerfs *l, const char *rel, const int *active, size_t n_active,
                        struct lower_node *ret, int *ret_active, size_t *ret_n_active)
{
    int top = -1;
    struct stat top_st;
    size_t na = 0;
    for (size_t k = 0; k < n_active; k++) {
        int t = active[k];
        struct stat st;
        if (fstatat(l->fds[t], rel, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno == ENOENT || errno == ENOTDIR)
                continue;
            return -errno;
        }
        if (is_whiteout(&st))
            break;
        if (top < 0) {
            top = t;
            top_st = st;
        }
        if (!S_ISDIR(st.st_mode) || !S_ISDIR(top_st.st_mode))
            break;
        ret_active[na++] = t;
        if (is_opaque(l, t, rel))
            break;
    }
    if (top < 0)
        return -ENOENT;
    ret->tree = top;
    ret->st = top_st;
    free(ret->path);
    ret->path = xstrdup(rel);
    owner_of(l, top, rel, &top_st, &ret->uid, &ret->gid);
    *ret_n_active = na;
    return 0;
}

static void root_node(struct lowerfs *l, struct lower_node *ret)
{
    memset(ret, 0, sizeof(*ret));
    ret->tree = -1;
    ret->path = xstrdup("");
    ret->st.st_mode = S_IFDIR | 0755;
    for (size_t t = 0; t < l->n; t++) {
        struct stat st;
        if (fstat(l->fds[t], &st) == 0) {
            ret->tree = (int)t;
            ret->st = st;
            owner_of(l, (int)t, "", &st, &ret->uid, &ret->gid);
            break;
        }
    }
}

/* Splits a path into components, dropping "" and "." */
static char **split_path(const char *path)
{
    char **v = strv_new();
    _cleanup_free_ char *copy = xstrdup(path);
    char *save = NULL;
    for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save))
        if (strcmp(c, ".") != 0)
            strv_push(&v, c);
    return v;
}

int lowerfs_resolve(struct lowerfs *l, const char *path, bool follow, struct lower_node *ret)
{
    _cleanup_strv_ char **comps = split_path(path);
    struct strbuf resolved = STRBUF_INIT;
    strbuf_adds(&resolved, "");
    int hops = 0;
    int r = 0;
    size_t i = 0;
    _cleanup_free_ int *active = xcalloc(l->n + 1, sizeof(int));
    _cleanup_free_ int *next = xcalloc(l->n + 1, sizeof(int));
    size_t n_active;

restart:
    /* (re)walk from the root: recompute the active trees of `resolved` */
    n_active = l->n;
    for (size_t t = 0; t < l->n; t++)
        active[t] = (int)t;
    struct lower_node node;
    memset(&node, 0, sizeof(node));
    root_node(l, &node);
    {
        _cleanup_strv_ char **done = split_path(resolved.buf ? resolved.buf : "");
        struct strbuf prefix = STRBUF_INIT;
        for (size_t d = 0; done[d]; d++) {
            if (prefix.len)
                strbuf_addc(&prefix, '/');
            strbuf_adds(&prefix, done[d]);
            size_t nn = 0;
            r = lookup_level(l, prefix.buf, active, n_active, &node, next, &nn);
            if (r < 0) {
                strbuf_release(&prefix);
                goto out;
            }
            memcpy(active, next, nn * sizeof(int));
            n_active = nn;
        }
        strbuf_release(&prefix);
    }
    for (; comps[i]; i++) {
        const char *c = comps[i];
        bool last = comps[i + 1] == NULL;
        if (strcmp(c, "..") == 0) {
            char *slash = resolved.len ? strrchr(resolved.buf, '/') : NULL;
            strbuf_truncate(&resolved, slash ? (size_t)(slash - resolved.buf) : 0);
            i++;
            lower_node_free(&node);
            goto restart;
        }
        if (!S_ISDIR(node.st.st_mode)) {
            r = -ENOTDIR;
            goto out;
        }
        size_t base_len = resolved.len;
        if (resolved.len)
            strbuf_addc(&resolved, '/');
        strbuf_adds(&resolved, c);
        size_t nn = 0;
        r = lookup_level(l, resolved.buf, active, n_active, &node, next, &nn);
        if (r < 0)
            goto out;
        if (S_ISLNK(node.st.st_mode) && (!last || follow)) {
            if (++hops > MAX_SYMLINK_HOPS) {
                r = -ELOOP;
                goto out;
            }
            char *target = NULL;
            r = lowerfs_readlink(l, &node, &target);
            if (r < 0)
                goto out;
            /* continue with target + the remaining components */
            _cleanup_strv_ char **tcomps = split_path(target);
            char **rest = strv_new();
            for (size_t k = 0; tcomps[k]; k++)
                strv_push(&rest, tcomps[k]);
            for (size_t k = i + 1; comps[k]; k++)
                strv_push(&rest, comps[k]);
            if (target[0] == '/')
                strbuf_truncate(&resolved, 0);
            else
                strbuf_truncate(&resolved, base_len);
            free(target);
            strv_free(comps);
            comps = rest;
            i = 0;
            lower_node_free(&node);
            goto restart;
        }
        memcpy(active, next, nn * sizeof(int));
        n_active = nn;
    }
    *ret = node;
    node.path = NULL;
    r = 0;
out:
    lower_node_free(&node);
    strbuf_release(&resolved);
    return r;
}

int lowerfs_open(struct lowerfs *l, const struct lower_node *n, int flags)
{
    if (n->tree < 0)
        return -ENOENT;
    int fd = openat(l->fds[n->tree], *n->path ? n->path : ".", flags | O_NOFOLLOW | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int lowerfs_readlink(struct lowerfs *l, const struct lower_node *n, char **ret)
{
    char buf[4096];
    ssize_t len = readlinkat(l->fds[n->tree], n->path, buf, sizeof(buf) - 1);
    if (len < 0)
        return -errno;
    buf[len] = '\0';
    *ret = xstrdup(buf);
    return 0;
}

int lowerfs_read_file(struct lowerfs *l, const char *path, size_t max, char **ret, size_t *ret_len)
{
    struct lower_node n = {0};
    int r = lowerfs_resolve(l, path, true, &n);
    if (r < 0)
        return r;
    if (!S_ISREG(n.st.st_mode)) {
        lower_node_free(&n);
        return -EINVAL;
    }
    int fd = lowerfs_open(l, &n, O_RDONLY);
    lower_node_free(&n);
    if (fd < 0)
        return fd;
    r = fs_read_fd(fd, max, ret, ret_len);
    close(fd);
    return r;
}

static int cmp_dirent(const void *a, const void *b)
{
    return strcmp(((const struct lower_dirent *)a)->name, ((const struct lower_dirent *)b)->name);
}

void lower_dirents_free(struct lower_dirent *d, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(d[i].name);
        lower_node_free(&d[i].node);
    }
    free(d);
}

int lowerfs_readdir(struct lowerfs *l, const struct lower_node *dir, struct lower_dirent **ret,
                    size_t *ret_n)
{
    /* the trees merged into this directory */
    _cleanup_free_ int *active = xcalloc(l->n + 1, sizeof(int));
    _cleanup_free_ int *scratch = xcalloc(l->n + 1, sizeof(int));
    size_t n_active = 0;
    if (!*dir->path) {
        for (size_t t = 0; t < l->n; t++)
            active[n_active++] = (int)t;
    } else {
        /* recompute with a walk from the root */
        _cleanup_strv_ char **comps = split_path(dir->path);
        for (size_t t = 0; t < l->n; t++)
            active[n_active++] = (int)t;
        struct strbuf prefix = STRBUF_INIT;
        struct lower_node tmp = {0};
        for (size_t d = 0; comps[d]; d++) {
            if (prefix.len)
                strbuf_addc(&prefix, '/');
            strbuf_adds(&prefix, comps[d]);
            size_t nn = 0;
            int r = lookup_level(l, prefix.buf, active, n_active, &tmp, scratch, &nn);
            if (r < 0) {
                strbuf_release(&prefix);
                lower_node_free(&tmp);
                return r;
            }
            memcpy(active, scratch, nn * sizeof(int));
            n_active = nn;
        }
        strbuf_release(&prefix);
        lower_node_free(&tmp);
    }
    /* collect the union of names */
    char **names = strv_new();
    for (size_t k = 0; k < n_active; k++) {
        int t = active[k];
        int dfd = openat(l->fds[t], *dir->path ? dir->path : ".",
                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
            continue;
        DIR *d = fdopendir(dfd);
        if (!d) {
            close(dfd);
            continue;
        }
        struct dirent *de;
        while ((de = readdir(d)))
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
                !strv_contains(names, de->d_name))
                strv_push(&names, de->d_name);
        closedir(d);
    }
    size_t cap = strv_len(names), n = 0;
    struct lower_dirent *out = xcalloc(cap + 1, sizeof(*out));
    for (size_t i = 0; names[i]; i++) {
        _cleanup_free_ char *rel =
            *dir->path ? xasprintf("%s/%s", dir->path, names[i]) : xstrdup(names[i]);
        size_t nn = 0;
        struct lower_node node = {0};
        if (lookup_level(l, rel, active, n_active, &node, scratch, &nn) < 0) {
            lower_node_free(&node);
            continue; /* whited out */
        }
        out[n].name = xstrdup(names[i]);
        out[n].node = node;
        n++;
    }
    strv_free(names);
    qsort(out, n, sizeof(*out), cmp_dirent);
    *ret = out;
    *ret_n = n;
    return 0;
}
