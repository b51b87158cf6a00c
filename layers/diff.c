/* rootfs_diff: what a RUN changed, as a layer; the same layer, byte for
 * byte, whatever the driver.
 *
 * Two views are compared: the merged view M (the rootfs as the RUN left it)
 * and the lower view L (the layer trees, top first, overlay semantics).  The
 * drivers only differ in how M is read: the copy driver's merged directory
 * is M itself, so every directory is walked; with overlayfs and
 * fuse-overlayfs M is the upper directory over L, so only directories that
 * exist in the upper are walked and every entry not in the upper is known
 * to be unchanged.  One rule decides the layer:
 *
 *   - an entry of M is written iff L has no entry at its path, or they
 *     differ in type, permission bits, owner (user.kiln.owner or the side
 *     table first), size, mtime (ns), symlink target, device number,
 *     xattrs (overlay and kiln ones ignored), or content (compared only
 *     when all else is equal); atime and ctime are not compared, nor the
 *     mtime of a directory that L has: it moves whenever an entry is made
 *     or removed in it (and fuse-overlayfs moves it for a mere copy-up), so
 *     such a directory is written with L's mtime, only when something else
 *     about it changed or as the parent of a written entry;
 *   - an entry of L missing from M becomes a whiteout ".wh.NAME";
 *   - a directory present in both is written opaque (the directory,
 *     ".wh..wh..opq", then its M entries, all new, and no whiteouts) iff L's
 *     directory has at least one child and none of their names is left in
 *     M's directory.  So "rm -rf d; mkdir d; touch d/new" gives an opaque d
 *     with any driver, as does deleting every child of d, while
 *     "rm -rf d; mkdir d; touch d/old-name" gives d, whiteouts for the other
 *     old names and d/old-name (the same tree once applied).  Never the
 *     root: overlayfs ignores opacity on a layer's root, so deletions there
 *     are whiteouts;
 *   - the parents of a written entry are written first (metadata from M,
 *     mtime as above); the root directory itself never is;
 *   - entries are sorted by name within each directory (depth first), a
 *     whiteout at the place of the name it hides.
 *
 * One exception, for fuse-overlayfs only: it does not keep the mtime of a
 * symlink it copies up, so there a symlink that differs in mtime alone is
 * unchanged (a "touch -h" of a lower symlink is lost with that driver).
 * And one limit of fuse-overlayfs: it shows a write through one name of a
 * lower hard-linked file through the other names too, until it is
 * remounted; its upper (and so the layer) has the written name alone, as
 * with overlayfs and the copy driver.
 *
 * Owners: a regular file or directory carries user.kiln.owner when its owner
 * could not be set; a symlink or special file cannot, so when M's entry has
 * the same raw owner as L's entry at the same path it takes L's effective
 * owner (from the tree's side table).
 *
 * And in single-ID mode a regular file without user.kiln.owner, owned by the
 * one mapped id, that replaced a regular file of L takes that file's owner:
 * tools that rewrite a file (useradd on /etc/shadow, sed -i, dpkg) make a
 * new one, chown it to the ids stat showed them (the mapped id, whatever
 * the old file's recorded owner) and rename it over the old one.  Docker
 * and range mode keep the old owner (0:42 for /etc/shadow); so does this. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "layers/driver.h"
#include "layers/layer_internal.h"
#include "lib/cleanup.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#define DIFF_MAX_DEPTH 2048

struct lower_layer {
    int fd;
    struct owner_table *owners;
};

/* The lower view of one directory: the tree directories that make it up,
 * top first (the walk stops at an opaque one). */
struct ldir {
    size_t n;
    int *fds;
    size_t *layer;
};

struct lent {
    char *name;
    size_t slot; /* index into the ldir of its topmost occurrence */
    struct stat st;
    bool whiteout;
};

struct uent {
    char *name;
    struct stat st;
    bool whiteout;
};

struct pending {
    char *path;
    struct file_meta meta;
    bool emitted;
};

struct diff {
    struct layer_writer *w;
    struct lower_layer *layers;
    size_t nlayers;
    bool copy; /* M is a plain tree */
    bool fuse; /* fuse-overlayfs upper conventions (".wh." files) */
    struct pending *stack;
    size_t depth, cap;
    uint8_t *buf1, *buf2;
    struct owner_table *run_owners; /* the RUN's owner log (rootfs.owner_log) */
    bool new_owner;                 /* rootfs.new_owner */
    uid_t new_uid;
    gid_t new_gid;
};

enum kind { K_PRESENT, K_LOWER_ONLY, K_DELETED };

struct child {
    const char *name;
    struct uent *u;
    struct lent *l;
    enum kind kind;
    int changed; /* -1 not known yet */
    bool um_ok, lm_ok;
    struct file_meta um, lm;
};

/* ---- listings ------------------------------------------------------------------ */

static void ldir_free(struct ldir *d)
{
    for (size_t i = 0; i < d->n; i++)
        close(d->fds[i]);
    free(d->fds);
    free(d->layer);
    memset(d, 0, sizeof(*d));
}

static void ldir_push(struct ldir *d, int fd, size_t layer)
{
    d->fds = xreallocarray(d->fds, d->n + 1, sizeof(*d->fds));
    d->layer = xreallocarray(d->layer, d->n + 1, sizeof(*d->layer));
    d->fds[d->n] = fd;
    d->layer[d->n] = layer;
    d->n++;
}

/* The lower view of parent/name, when it is a directory there. */
static int ldir_child(const struct ldir *parent, const char *name, struct ldir *ret,
                      struct kiln_error **err)
{
    memset(ret, 0, sizeof(*ret));
    for (size_t i = 0; i < parent->n; i++) {
        struct stat st;
        if (fstatat(parent->fds[i], name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno == ENOENT)
                continue;
            ldir_free(ret);
            return kiln_error_set(err, errno, "diff: stat lower '%s'", name);
        }
        if (!S_ISDIR(st.st_mode))
            break; /* a whiteout or a non-directory hides everything below */
        int fd = openat(parent->fds[i], name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            ldir_free(ret);
            return kiln_error_set(err, errno, "diff: open lower '%s'", name);
        }
        ldir_push(ret, fd, parent->layer[i]);
        if (fd_is_opaque(fd))
            break;
    }
    return 0;
}

static int lent_cmp(const void *a, const void *b)
{
    const struct lent *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->slot < y->slot ? -1 : x->slot > y->slot;
}

static void lents_free(struct lent *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].name);
    free(v);
}

/* The visible children of a lower directory, sorted by name. */
static int lower_children(const struct ldir *d, struct lent **ret, size_t *ret_n,
                          struct kiln_error **err)
{
    struct lent *all = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i < d->n; i++) {
        char **names = NULL;
        size_t k = 0;
        int r = dir_list_names(d->fds[i], false, &names, &k);
        if (r < 0) {
            lents_free(all, n);
            return kiln_error_set(err, -r, "diff: list a lower directory");
        }
        for (size_t j = 0; j < k; j++) {
            XGROW(all, cap, n + 1);
            struct lent *e = &all[n];
            e->name = names[j];
            e->slot = i;
            if (fstatat(d->fds[i], names[j], &e->st, AT_SYMLINK_NOFOLLOW) < 0) {
                int e2 = errno;
                for (size_t m = j; m < k; m++)
                    free(names[m]);
                free(names);
                lents_free(all, n);
                return kiln_error_set(err, e2, "diff: stat lower '%s'", e->name);
            }
            e->whiteout = stat_is_whiteout(&e->st);
            n++;
        }
        free(names);
    }
    if (n)
        qsort(all, n, sizeof(*all), lent_cmp);
    /* The topmost occurrence of each name decides; a whiteout hides it. */
    size_t vis = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && strcmp(all[j].name, all[i].name) == 0)
            j++;
        for (size_t k = i + 1; k < j; k++)
            free(all[k].name);
        if (all[i].whiteout)
            free(all[i].name);
        else
            all[vis++] = all[i];
        i = j;
    }
    *ret = all;
    *ret_n = vis;
    return 0;
}

static int uent_cmp(const void *a, const void *b)
{
    const struct uent *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return (int)x->whiteout - (int)y->whiteout; /* an entry before a whiteout of its name */
}

static void uents_free(struct uent *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].name);
    free(v);
}

/* An overlayfs whiteout kept as an xattr on an empty file (Linux 6.7+). */
static bool xattr_whiteout(int dfd, const char *name)
{
    _cleanup_free_ char *pp = xasprintf("/proc/self/fd/%d/%s", dfd, name);
    return lgetxattr(pp, OVL_WHITEOUT_XATTR, NULL, 0) >= 0;
}

/* The entries of an upper (or, copy, merged) directory, sorted; overlay and
 * fuse-overlayfs whiteouts marked. */
static int upper_children(struct diff *d, int ufd, struct uent **ret, size_t *ret_n,
                          struct kiln_error **err)
{
    char **names = NULL;
    size_t k = 0;
    int r = dir_list_names(ufd, false, &names, &k);
    if (r < 0)
        return kiln_error_set(err, -r, "diff: list an upper directory");
    struct uent *v = xcalloc(k ? k : 1, sizeof(*v));
    size_t n = 0;
    for (size_t i = 0; i < k; i++) {
        struct uent *e = &v[n];
        if (fstatat(ufd, names[i], &e->st, AT_SYMLINK_NOFOLLOW) < 0) {
            kiln_error_set(err, errno, "diff: stat '%s'", names[i]);
            for (size_t m = i; m < k; m++)
                free(names[m]);
            free(names);
            uents_free(v, n);
            return -1;
        }
        e->name = names[i];
        if (!d->copy) {
            if (stat_is_whiteout(&e->st)) {
                e->whiteout = true;
            } else if (d->fuse && strncmp(e->name, WH_PREFIX, strlen(WH_PREFIX)) == 0) {
                if (strcmp(e->name, WH_OPAQUE) == 0) {
                    free(e->name);
                    continue; /* read by the caller as the directory's opacity */
                }
                char *target = xstrdup(e->name + strlen(WH_PREFIX));
                free(e->name);
                e->name = target;
                e->whiteout = true;
            } else if (S_ISREG(e->st.st_mode) && e->st.st_size == 0 &&
                       xattr_whiteout(ufd, e->name)) {
                e->whiteout = true;
            }
        }
        n++;
    }
    free(names);
    if (n)
        qsort(v, n, sizeof(*v), uent_cmp);
    *ret = v;
    *ret_n = n;
    return 0;
}

/* ---- owners and comparison ------------------------------------------------------ */

static void lower_owner(struct diff *d, size_t layer, const char *path, struct file_meta *m)
{
    if (m->owner_from_xattr)
        return;
    uid_t u;
    gid_t g;
    if (owner_table_lookup(d->layers[layer].owners, path, &u, &g) == 0) {
        m->uid = u;
        m->gid = g;
    }
}

/* Single-ID mode, asked once per process. */
static pthread_once_t g_single_once = PTHREAD_ONCE_INIT;
static bool g_single;

static void single_init(void)
{
    g_single = layers_single_id();
}

/* um's owner when it has no user.kiln.owner: see the top of this file. */
static void upper_owner(struct file_meta *um, const struct file_meta *lm)
{
    if (um->owner_from_xattr || !lm)
        return;
    mode_t t = um->st.st_mode & S_IFMT;
    if (t == S_IFREG) {
        pthread_once(&g_single_once, single_init);
        if (g_single && S_ISREG(lm->st.st_mode) && um->st.st_uid == 0 && um->st.st_gid == 0) {
            um->uid = lm->uid;
            um->gid = lm->gid;
        }
        return;
    }
    if (t == S_IFDIR)
        return;
    if (um->st.st_uid == lm->st.st_uid && um->st.st_gid == lm->st.st_gid) {
        um->uid = lm->uid;
        um->gid = lm->gid;
    }
}

static int same_content(struct diff *d, int ufd, const char *uname, int lfd, const char *lname,
                        off_t size, bool *ret, struct kiln_error **err)
{
    _cleanup_close_ int a = openat(ufd, uname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    _cleanup_close_ int b = openat(lfd, lname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (a < 0 || b < 0)
        return kiln_error_set(err, errno, "diff: open '%s' to compare", uname);
    const size_t bs = 256 * 1024;
    if (!d->buf1) {
        d->buf1 = xmalloc(bs);
        d->buf2 = xmalloc(bs);
    }
    off_t left = size;
    while (left > 0) {
        size_t want = left < (off_t)bs ? (size_t)left : bs;
        size_t got1 = 0, got2 = 0;
        while (got1 < want) {
            ssize_t n = read(a, d->buf1 + got1, want - got1);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            got1 += (size_t)n;
        }
        while (got2 < want) {
            ssize_t n = read(b, d->buf2 + got2, want - got2);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            got2 += (size_t)n;
        }
        if (got1 != want || got2 != want || memcmp(d->buf1, d->buf2, want) != 0) {
            *ret = false;
            return 0;
        }
        left -= (off_t)want;
    }
    *ret = true;
    return 0;
}

/* The entry rule: false when M's entry differs from L's. */
static int entries_equal(struct diff *d, int ufd, const char *name, const struct file_meta *um,
                         int lfd, const struct file_meta *lm, bool *ret, struct kiln_error **err)
{
    const struct stat *a = &um->st, *b = &lm->st;
    mode_t t = a->st_mode & S_IFMT;
    *ret = false;
    /* fuse-overlayfs (1.10) stamps a symlink it copies up (say, for an
     * lchown to the same owner) with the current time: there, a symlink's
     * mtime alone is not a change. */
    bool skip_mtime = d->fuse && t == S_IFLNK;
    if (t != (b->st_mode & S_IFMT) || (a->st_mode & 07777) != (b->st_mode & 07777) ||
        um->uid != lm->uid || um->gid != lm->gid ||
        (!skip_mtime && (a->st_mtim.tv_sec != b->st_mtim.tv_sec ||
                         a->st_mtim.tv_nsec != b->st_mtim.tv_nsec)))
        return 0;
    if ((t == S_IFREG || t == S_IFLNK) && a->st_size != b->st_size)
        return 0;
    if ((t == S_IFCHR || t == S_IFBLK) && a->st_rdev != b->st_rdev)
        return 0;
    if (t == S_IFLNK && strcmp(um->link ? um->link : "", lm->link ? lm->link : "") != 0)
        return 0;
    if (!xattr_list_equal(&um->xattrs, &lm->xattrs))
        return 0;
    if (t == S_IFREG && a->st_size > 0 && !(a->st_dev == b->st_dev && a->st_ino == b->st_ino))
        return same_content(d, ufd, name, lfd, name, a->st_size, ret, err);
    *ret = true;
    return 0;
}

/* ---- emitting --------------------------------------------------------------------- */

static int flush_pending(struct diff *d, struct kiln_error **err)
{
    for (size_t i = 0; i < d->depth; i++) {
        struct pending *p = &d->stack[i];
        if (p->emitted)
            continue;
        if (layer_writer_add_meta(d->w, -1, NULL, p->path, &p->meta, false, err) < 0)
            return -1;
        p->emitted = true;
    }
    return 0;
}

/* An entry of M (hard links among them become tar hard links). */
static int emit(struct diff *d, int dirfd, const char *name, const char *path,
                const struct file_meta *m, struct kiln_error **err)
{
    if (flush_pending(d, err) < 0)
        return -1;
    return layer_writer_add_meta(d->w, dirfd, name, path, m, true, err);
}

static void push_pending(struct diff *d, const char *path, const struct file_meta *m,
                         bool emitted)
{
    XGROW(d->stack, d->cap, d->depth + 1);
    struct pending *p = &d->stack[d->depth++];
    p->path = xstrdup(path);
    p->emitted = emitted;
    /* a shallow copy: the caller's meta stays owned by the caller */
    p->meta = *m;
}

static void pop_pending(struct diff *d)
{
    struct pending *p = &d->stack[--d->depth];
    free(p->path);
}

/* ---- the walk ---------------------------------------------------------------------- */

static int diff_dir(struct diff *d, const char *P, int ufd, struct ldir *lower, bool hide,
                    int depth, struct kiln_error **err);

static int child_meta(struct diff *d, struct child *c, int ufd, const struct ldir *lower,
                      const char *path, struct kiln_error **err)
{
    int r;
    if (c->l && !c->lm_ok) {
        r = meta_read_at(lower->fds[c->l->slot], c->name, -1, &c->lm);
        if (r < 0)
            return kiln_error_set(err, -r, "diff: read lower '%s'", path);
        lower_owner(d, lower->layer[c->l->slot], path, &c->lm);
        c->lm_ok = true;
    }
    if (c->u && !c->um_ok) {
        r = meta_read_at(ufd, c->name, -1, &c->um);
        if (r < 0)
            return kiln_error_set(err, -r, "diff: read '%s'", path);
        upper_owner(&c->um, c->lm_ok ? &c->lm : NULL);
        /* what the root emulation could not store on the file itself */
        if (!c->um.owner_from_xattr) {
            uid_t u;
            gid_t g;
            if (owner_table_lookup(d->run_owners, path, &u, &g) == 0) {
                c->um.uid = u;
                c->um.gid = g;
            } else if (d->new_owner && !c->l && c->um.uid == 0 && c->um.gid == 0) {
                c->um.uid = d->new_uid;
                c->um.gid = d->new_gid;
            }
        }
        /* A directory that is below keeps the mtime it has there. */
        if (c->lm_ok && S_ISDIR(c->um.st.st_mode) && S_ISDIR(c->lm.st.st_mode))
            c->um.st.st_mtim = c->lm.st.st_mtim;
        c->um_ok = true;
    }
    return 0;
}

static int child_changed(struct diff *d, struct child *c, int ufd, const struct ldir *lower,
                         const char *path, struct kiln_error **err)
{
    if (c->changed >= 0)
        return 0;
    if (child_meta(d, c, ufd, lower, path, err) < 0)
        return -1;
    if (!c->l) {
        c->changed = 1;
        return 0;
    }
    bool eq = false;
    if (entries_equal(d, ufd, c->name, &c->um, lower->fds[c->l->slot], &c->lm, &eq, err) < 0)
        return -1;
    c->changed = !eq;
    return 0;
}

/* Whether the upper directory ufd/name hides its lower directories. */
static bool upper_dir_opaque(struct diff *d, int childfd)
{
    if (fd_is_opaque(childfd))
        return true;
    struct stat st;
    return d->fuse && fstatat(childfd, WH_OPAQUE, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Into a directory present in M. */
static int recurse(struct diff *d, struct child *c, const char *path, int ufd,
                   const struct ldir *lower, bool hide, int depth, struct kiln_error **err)
{
    _cleanup_close_ int cfd = openat(ufd, c->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (cfd < 0)
        return kiln_error_set(err, errno, "diff: open '%s'", path);
    struct ldir sub = {0};
    if (c->l && S_ISDIR(c->l->st.st_mode) && ldir_child(lower, c->name, &sub, err) < 0)
        return -1;
    bool child_hide = d->copy || hide || upper_dir_opaque(d, cfd);
    int r = diff_dir(d, path, cfd, &sub, child_hide, depth + 1, err);
    ldir_free(&sub);
    return r;
}

static int diff_dir(struct diff *d, const char *P, int ufd, struct ldir *lower, bool hide,
                    int depth, struct kiln_error **err)
{
    if (depth > DIFF_MAX_DEPTH)
        return kiln_error_set(err, ELOOP, "diff: '%s' nested too deep", P);
    struct lent *ls = NULL;
    size_t nl = 0;
    struct uent *us = NULL;
    size_t nu = 0;
    struct child *cs = NULL;
    size_t nc = 0;
    int ret = -1;
    if (lower_children(lower, &ls, &nl, err) < 0)
        return -1;
    if (ufd >= 0 && upper_children(d, ufd, &us, &nu, err) < 0)
        goto out;

    /* Merge the two sorted lists into the children of P. */
    cs = xcalloc(nl + nu + 1, sizeof(*cs));
    for (size_t i = 0, j = 0; i < nu || j < nl;) {
        int c = i >= nu ? 1 : j >= nl ? -1 : strcmp(us[i].name, ls[j].name);
        struct child *ch = &cs[nc];
        ch->changed = -1;
        if (c < 0) { /* upper only */
            if (us[i].whiteout) {
                i++;
                continue; /* hides nothing */
            }
            ch->name = us[i].name;
            ch->u = &us[i++];
            ch->kind = K_PRESENT;
        } else if (c > 0) { /* lower only */
            ch->name = ls[j].name;
            ch->l = &ls[j++];
            ch->kind = hide ? K_DELETED : K_LOWER_ONLY;
        } else {
            /* an entry and a whiteout of the same name: the entry wins */
            struct uent *u = &us[i++];
            while (i < nu && strcmp(us[i].name, u->name) == 0)
                i++;
            ch->name = ls[j].name;
            ch->l = &ls[j++];
            if (u->whiteout) {
                ch->kind = K_DELETED;
            } else {
                ch->u = u;
                ch->kind = K_PRESENT;
            }
        }
        nc++;
    }

    /* The opaque rule: L's directory has children and none of their names
     * is left in M.  Then every entry below is new: no whiteouts needed. */
    bool opaque = false;
    if (nl > 0 && *P) { /* the root cannot be opaque in a tree */
        opaque = true;
        for (size_t i = 0; i < nc && opaque; i++)
            if (cs[i].l && cs[i].kind != K_DELETED)
                opaque = false;
    }
    if (opaque &&
        (flush_pending(d, err) < 0 || layer_writer_add_opaque(d->w, P, err) < 0))
        goto out;

    for (size_t i = 0; i < nc; i++) {
        struct child *c = &cs[i];
        if (c->kind == K_LOWER_ONLY)
            continue; /* untouched by the RUN */
        _cleanup_free_ char *path = *P ? xasprintf("%s/%s", P, c->name) : xstrdup(c->name);
        if (c->kind == K_DELETED) {
            if (!opaque && (flush_pending(d, err) < 0 ||
                            layer_writer_add_whiteout(d->w, path, err) < 0))
                goto out;
            continue;
        }
        if (child_changed(d, c, ufd, lower, path, err) < 0)
            goto out;
        if (c->changed && emit(d, ufd, c->name, path, &c->um, err) < 0)
            goto out;
        if (S_ISDIR(c->um.st.st_mode)) {
            push_pending(d, path, &c->um, c->changed);
            int r = recurse(d, c, path, ufd, lower, hide, depth, err);
            pop_pending(d);
            if (r < 0)
                goto out;
        }
    }
    ret = 0;
out:
    for (size_t i = 0; i < nc; i++) {
        if (cs[i].um_ok)
            meta_free(&cs[i].um);
        if (cs[i].lm_ok)
            meta_free(&cs[i].lm);
    }
    free(cs);
    lents_free(ls, nl);
    uents_free(us, nu);
    return ret;
}

static void raise_fd_limit(void)
{
    /* Each directory level holds a descriptor per layer that has it. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int rootfs_diff(struct store *s, struct rootfs *r, const struct layer_write_opts *opts,
                struct layer_result *ret, struct kiln_error **err)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    raise_fd_limit();
    struct diff d = {.copy = r->driver == DRIVER_COPY, .fuse = r->driver == DRIVER_FUSE_OVERLAYFS};
    const char *top = d.copy ? r->merged : r->upper;
    if (!top)
        return kiln_error_set(err, EINVAL, "diff: rootfs has no upper directory");
    if (d.fuse) {
        /* FUSE may hold written pages in its cache: push them to the upper. */
        _cleanup_close_ int mfd = open(r->merged, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (mfd >= 0)
            syncfs(mfd);
    }
    int ret_code = -1;
    struct ldir root = {0};
    _cleanup_close_ int ufd = open(top, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (ufd < 0)
        return kiln_error_set(err, errno, "diff: open '%s'", top);
    d.nlayers = strv_len(r->lowers);
    d.layers = xcalloc(d.nlayers ? d.nlayers : 1, sizeof(*d.layers));
    for (size_t i = 0; i < d.nlayers; i++)
        d.layers[i].fd = -1;
    for (size_t i = 0; i < d.nlayers; i++) {
        d.layers[i].fd = open(r->lowers[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (d.layers[i].fd < 0) {
            kiln_error_set(err, errno, "diff: open layer '%s'", r->lowers[i]);
            goto out;
        }
        _cleanup_free_ char *op = xasprintf("%s.owners", r->lowers[i]);
        if (owner_table_load(op, &d.layers[i].owners, err) < 0)
            goto out;
    }
    if (r->owner_log && owner_table_load_log(r->owner_log, &d.run_owners, err) < 0)
        goto out;
    d.new_owner = r->new_owner;
    d.new_uid = r->new_uid;
    d.new_gid = r->new_gid;
    /* The root's lower view: every layer (overlayfs ignores opacity on
     * layer roots). */
    for (size_t i = 0; i < d.nlayers; i++) {
        int fd = dup(d.layers[i].fd);
        if (fd < 0) {
            kiln_error_set(err, errno, "diff: dup");
            goto out;
        }
        ldir_push(&root, fd, i);
    }
    if (layer_writer_begin(s, opts, &d.w, err) < 0)
        goto out;
    bool hide = d.copy || upper_dir_opaque(&d, ufd);
    if (diff_dir(&d, "", ufd, &root, hide, 0, err) < 0) {
        layer_writer_abort(d.w);
        d.w = NULL;
        kiln_error_wrap(err, "diff of '%s'", r->scratch);
        goto out;
    }
    ret_code = layer_writer_finish(d.w, ret, err);
    if (ret_code == 0) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        log_debug("diff: %llu entries in %.2f ms", (unsigned long long)ret->entries,
                  (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    }
out:
    ldir_free(&root);
    for (size_t i = 0; i < d.nlayers; i++) {
        if (d.layers[i].fd >= 0)
            close(d.layers[i].fd);
        owner_table_free(d.layers[i].owners);
    }
    free(d.layers);
    owner_table_free(d.run_owners);
    free(d.stack);
    free(d.buf1);
    free(d.buf2);
    return ret_code;
}
