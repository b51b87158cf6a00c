/* The build-context walk (see walk.h) and COPY source wildcards. */
#include "walk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dockerfile/gopath.h"
#include "lib/cleanup.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

int context_openat(int root_fd, const char *path, int flags)
{
    struct open_how how = {
        .flags = (uint64_t)(flags | O_CLOEXEC),
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    long fd = syscall(SYS_openat2, root_fd, path, &how, sizeof(how));
    if (fd >= 0)
        return (int)fd;
    if (errno != ENOSYS && errno != EPERM)
        return -errno;
    /* No openat2 (old kernel, or a seccomp filter refusing it): walk the
     * components without following any symlink. */
    _cleanup_free_ char *clean = gopath_clean(path, strlen(path));
    const char *p = clean;
    while (*p == '/')
        p++;
    if (strcmp(p, ".") == 0 || *p == '\0')
        return openat(root_fd, ".", flags | O_CLOEXEC) < 0 ? -errno : 0;
    if (strncmp(p, "..", 2) == 0 && (p[2] == '/' || p[2] == '\0'))
        return -ENOENT;
    _cleanup_close_ int cur = openat(root_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (cur < 0)
        return -errno;
    for (;;) {
        const char *slash = strchr(p, '/');
        if (!slash) {
            int r = openat(cur, p, flags | O_NOFOLLOW | O_CLOEXEC);
            return r < 0 ? -errno : r;
        }
        _cleanup_free_ char *comp = xstrndup(p, (size_t)(slash - p));
        int next = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0)
            return -errno;
        close(cur);
        cur = next;
        p = slash + 1;
    }
}

/* ---- reading a directory ------------------------------------------------------- */

struct dirlist {
    char *names; /* NUL-separated names */
    size_t len, cap;
    uint32_t *off; /* offsets into names, sorted by name */
    unsigned char *type;
    size_t n, capn;
};

static void dirlist_free(struct dirlist *d)
{
    free(d->names);
    free(d->off);
    free(d->type);
}

static struct dirlist *sort_base;
static int cmp_names(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return strcmp(sort_base->names + x, sort_base->names + y);
}

struct linux_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/* All names of the directory but "." and "..", sorted as Go sorts strings. */
static int read_dir(int fd, struct dirlist *d)
{
    memset(d, 0, sizeof(*d));
    char buf[32768] __attribute__((aligned(8)));
    for (;;) {
        long n = syscall(SYS_getdents64, fd, buf, sizeof(buf));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            dirlist_free(d);
            return -e;
        }
        if (n == 0)
            break;
        for (long pos = 0; pos < n;) {
            struct linux_dirent64 *de = (struct linux_dirent64 *)(buf + pos);
            pos += de->d_reclen;
            const char *nm = de->d_name;
            if (nm[0] == '.' && (nm[1] == '\0' || (nm[1] == '.' && nm[2] == '\0')))
                continue;
            size_t l = strlen(nm) + 1;
            if (d->len + l > UINT32_MAX) {
                dirlist_free(d);
                return -EFBIG;
            }
            XGROW(d->names, d->cap, d->len + l);
            memcpy(d->names + d->len, nm, l);
            XGROW(d->off, d->capn, d->n + 1);
            size_t capt = d->capn;
            d->type = xrealloc(d->type, capt);
            d->off[d->n] = (uint32_t)d->len;
            d->type[d->n] = de->d_type;
            d->n++;
            d->len += l;
        }
    }
    /* sort offsets, carrying the types along */
    if (d->n > 1) {
        uint64_t *pairs = xreallocarray(NULL, d->n, sizeof(*pairs));
        for (size_t i = 0; i < d->n; i++)
            pairs[i] = (uint64_t)d->off[i] | ((uint64_t)d->type[i] << 32);
        sort_base = d;
        qsort(pairs, d->n, sizeof(*pairs), cmp_names);
        sort_base = NULL;
        for (size_t i = 0; i < d->n; i++) {
            d->off[i] = (uint32_t)pairs[i];
            d->type[i] = (unsigned char)(pairs[i] >> 32);
        }
        free(pairs);
    }
    return 0;
}

/* ---- the walk -------------------------------------------------------------------------- */

struct level {
    int fd;
    size_t path_len; /* bytes of w->path naming this directory */
    size_t name_off; /* where its last component starts */
    bool pending;    /* excluded: reported only when something below is kept */
    uint8_t *state;  /* match state of this directory (NULL at the top) */
    uint8_t *state_buf;
};

struct walker {
    const struct ignore *ig;
    walk_fn fn;
    void *ud;
    struct kiln_error **err;
    struct strbuf path;
    struct level lv[WALK_MAX_DEPTH + 1];
    int unwind; /* > 0: abandon levels >= unwind */
    bool emitted;
};

static int call(struct walker *w, int dirfd, const char *path, size_t plen, size_t name_off,
                const struct stat *st)
{
    struct walk_entry e = {
        .path = path, .path_len = plen, .name = path + name_off, .dirfd = dirfd, .st = st};
    w->emitted = true;
    int r = w->fn(&e, w->ud, w->err);
    if (r < 0 && w->err && !*w->err)
        kiln_error_set(w->err, 0, "walk callback failed at '%s'", path);
    return r;
}

/* Reports the excluded directories above the current entry that have not
 * been reported yet, outermost first. */
static int emit_pending(struct walker *w, int li)
{
    for (int k = 1; k <= li; k++) {
        struct level *L = &w->lv[k];
        if (!L->pending)
            continue;
        L->pending = false;
        _cleanup_free_ char *p = xstrndup(w->path.buf, L->path_len);
        struct stat st;
        if (fstatat(w->lv[k - 1].fd, p + L->name_off, &st, AT_SYMLINK_NOFOLLOW) < 0)
            return kiln_error_set(w->err, errno, "stat '%s'", p);
        int r = call(w, w->lv[k - 1].fd, p, L->path_len, L->name_off, &st);
        if (r < 0)
            return -1;
        if (r == WALK_SKIP) {
            w->unwind = k;
            return 0;
        }
    }
    return 0;
}

static int walk_dir(struct walker *w, int li);

static int descend(struct walker *w, int li, const char *name, size_t name_off, bool pending)
{
    if (li + 1 > WALK_MAX_DEPTH)
        return kiln_error_set(w->err, ELOOP, "'%s': more than %d directory levels", w->path.buf,
                              WALK_MAX_DEPTH);
    int fd = openat(w->lv[li].fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR || (pending && errno == EACCES))
            return 0; /* vanished, or excluded and unreadable (fsutil ignores that) */
        return kiln_error_set(w->err, errno, "open '%s'", w->path.buf);
    }
    struct level *C = &w->lv[li + 1];
    C->fd = fd;
    C->path_len = w->path.len;
    C->name_off = name_off;
    C->pending = pending;
    C->state = w->ig ? C->state_buf : NULL;
    int r = walk_dir(w, li + 1);
    close(fd);
    C->fd = -1;
    return r;
}

static int walk_dir(struct walker *w, int li)
{
    struct level *L = &w->lv[li];
    struct dirlist d;
    int r = read_dir(L->fd, &d);
    if (r < 0) {
        if (L->pending && r == -EACCES)
            return 0;
        return kiln_error_set(w->err, -r, "read directory '%s'", L->path_len ? w->path.buf : ".");
    }
    size_t n_state = ignore_count(w->ig);
    if (w->ig && !w->lv[li + 1].state_buf && li + 1 <= WALK_MAX_DEPTH)
        w->lv[li + 1].state_buf = xcalloc(n_state ? n_state : 1, 1);
    uint8_t *child_state = li + 1 <= WALK_MAX_DEPTH ? w->lv[li + 1].state_buf : NULL;
    r = 0;
    for (size_t i = 0; i < d.n && r == 0; i++) {
        const char *name = d.names + d.off[i];
        strbuf_truncate(&w->path, L->path_len);
        if (L->path_len)
            strbuf_addc(&w->path, '/');
        size_t name_off = w->path.len;
        strbuf_adds(&w->path, name);
        unsigned char type = d.type[i];
        struct stat st;
        bool have_st = false;
        if (type == DT_UNKNOWN) {
            if (fstatat(L->fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno == ENOENT)
                    continue;
                r = kiln_error_set(w->err, errno, "stat '%s'", w->path.buf);
                break;
            }
            have_st = true;
            type = S_ISDIR(st.st_mode) ? DT_DIR : DT_REG;
        }
        bool excluded = w->ig && ignore_match_parent(w->ig, w->path.buf, w->path.len, L->state,
                                                     child_state);
        if (excluded) {
            if (type != DT_DIR || !ignore_dir_needs_walk(w->ig, w->path.buf, w->path.len))
                continue;
            r = descend(w, li, name, name_off, true);
        } else {
            if ((r = emit_pending(w, li)) < 0 || w->unwind)
                break;
            if (!have_st && fstatat(L->fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno == ENOENT)
                    continue;
                r = kiln_error_set(w->err, errno, "stat '%s'", w->path.buf);
                break;
            }
            r = call(w, L->fd, w->path.buf, w->path.len, name_off, &st);
            if (r < 0)
                break;
            if (r == WALK_SKIP) {
                r = 0;
                if (S_ISDIR(st.st_mode))
                    continue;
                break; /* a file asked to skip the rest of its directory */
            }
            if (S_ISDIR(st.st_mode))
                r = descend(w, li, name, name_off, false);
        }
        if (r < 0)
            break;
        if (w->unwind) {
            if (w->unwind != li + 1)
                break;
            w->unwind = 0;
        }
    }
    dirlist_free(&d);
    return r < 0 ? -1 : 0;
}

static void walker_done(struct walker *w)
{
    for (int i = 0; i <= WALK_MAX_DEPTH; i++)
        free(w->lv[i].state_buf);
    strbuf_release(&w->path);
}

int context_walk_at(int root_fd, const char *subpath, const struct ignore *ig, walk_fn fn,
                    void *userdata, struct kiln_error **err)
{
    _cleanup_free_ char *clean = gopath_clean(subpath ? subpath : "", subpath ? strlen(subpath) : 0);
    const char *sp = clean;
    while (*sp == '/')
        sp++;
    if (*sp == '\0')
        sp = ".";
    if (strncmp(sp, "..", 2) == 0 && (sp[2] == '/' || sp[2] == '\0'))
        return kiln_error_set(err, EINVAL, "'%s' is outside the build context", subpath);

    struct walker *w = xcalloc(1, sizeof(*w));
    w->ig = ig && ignore_count(ig) ? ig : NULL;
    w->fn = fn;
    w->ud = userdata;
    w->err = err;
    strbuf_init(&w->path);
    for (int i = 0; i <= WALK_MAX_DEPTH; i++)
        w->lv[i].fd = -1;
    size_t n_state = ignore_count(w->ig);
    int r = 0;
    uint8_t *state = NULL; /* top-level entries have no parent results */
    _cleanup_free_ uint8_t *sbuf_a = w->ig ? xcalloc(n_state + 1, 1) : NULL;
    _cleanup_free_ uint8_t *sbuf_b = w->ig ? xcalloc(n_state + 1, 1) : NULL;
    bool excluded = false;
    _cleanup_close_ int cur = openat(root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cur < 0) {
        r = kiln_error_set(err, errno, "open the build context");
        goto out;
    }
    if (strcmp(sp, ".") != 0) {
        const char *p = sp;
        for (;;) {
            const char *slash = strchr(p, '/');
            size_t clen = slash ? (size_t)(slash - p) : strlen(p);
            _cleanup_free_ char *comp = xstrndup(p, clen);
            if (w->path.len)
                strbuf_addc(&w->path, '/');
            size_t name_off = w->path.len;
            strbuf_adds(&w->path, comp);
            struct stat st;
            if (fstatat(cur, comp, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                r = kiln_error_set(err, errno, "'%s'", w->path.buf);
                goto out;
            }
            uint8_t *next_state = state == sbuf_a ? sbuf_b : sbuf_a;
            excluded = w->ig && ignore_match_parent(w->ig, w->path.buf, w->path.len, state,
                                                    next_state);
            state = next_state;
            bool is_dir = S_ISDIR(st.st_mode);
            if (excluded && (!is_dir || !ignore_dir_needs_walk(w->ig, w->path.buf, w->path.len))) {
                r = kiln_error_set(err, ENOENT, "'%s': excluded by .dockerignore", w->path.buf);
                goto out;
            }
            if (!slash && !is_dir) {
                r = call(w, cur, w->path.buf, w->path.len, name_off, &st);
                r = r < 0 ? -1 : 0;
                goto out;
            }
            if (!is_dir) {
                r = kiln_error_set(err, S_ISLNK(st.st_mode) ? ELOOP : ENOTDIR,
                                   "'%s' is not a directory", w->path.buf);
                goto out;
            }
            int next = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (next < 0) {
                r = kiln_error_set(err, errno, "open '%s'", w->path.buf);
                goto out;
            }
            close(cur);
            cur = next;
            if (!slash)
                break;
            p = slash + 1;
        }
    }
    w->lv[0].fd = cur;
    w->lv[0].path_len = w->path.len;
    if (w->ig) {
        w->lv[0].state_buf = xcalloc(n_state + 1, 1);
        if (state)
            memcpy(w->lv[0].state_buf, state, n_state);
        w->lv[0].state = state ? w->lv[0].state_buf : NULL;
    }
    r = walk_dir(w, 0);
    if (r == 0 && excluded && !w->emitted)
        r = kiln_error_set(err, ENOENT, "'%s': excluded by .dockerignore", sp);
out:
    walker_done(w);
    free(w);
    return r;
}

int context_walk(const char *root, const char *subpath, const struct ignore *ig, walk_fn fn,
                 void *userdata, struct kiln_error **err)
{
    _cleanup_close_ int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return kiln_error_set(err, errno, "open build context '%s'", root);
    return context_walk_at(fd, subpath, ig, fn, userdata, err);
}

/* ---- COPY wildcards ------------------------------------------------------------------------- */

struct glob_ctx {
    const char *rest; /* the part of the pattern with wildcards */
    size_t rest_len;
    size_t base_len; /* bytes of the static directory prefix (+1 for '/') */
    int max_depth;   /* a match has at most this many components */
    char **out;
};

static int glob_cb(const struct walk_entry *e, void *userdata, struct kiln_error **err)
{
    struct glob_ctx *g = userdata;
    const char *rel = e->path + g->base_len;
    size_t rlen = e->path_len - g->base_len;
    int depth = 1;
    for (size_t i = 0; i < rlen; i++)
        depth += rel[i] == '/';
    if (gopath_match(g->rest, g->rest_len, rel, rlen) == GOMATCH_YES) {
        strv_push(&g->out, e->path);
        return S_ISDIR(e->st->st_mode) ? WALK_SKIP : WALK_CONTINUE;
    }
    if (S_ISDIR(e->st->st_mode) && depth >= g->max_depth)
        return WALK_SKIP;
    return WALK_CONTINUE;
}

static int exists_cb(const struct walk_entry *e, void *userdata, struct kiln_error **err)
{
    *(bool *)userdata = true;
    return WALK_SKIP;
}

int context_glob(int root_fd, const char *pattern, const struct ignore *ig, char ***ret,
                 struct kiln_error **err)
{
    _cleanup_free_ char *clean = gopath_clean(pattern, strlen(pattern));
    const char *p = clean;
    while (*p == '/')
        p++;
    if (*p == '\0')
        p = ".";
    /* split at the first component with a wildcard */
    size_t split = 0, i = 0, len = strlen(p);
    bool wild = false;
    while (i <= len) {
        size_t j = i;
        while (j < len && p[j] != '/')
            j++;
        if (gopath_has_wildcards(p + i, j - i)) {
            wild = true;
            split = i;
            break;
        }
        i = j + 1;
    }
    _cleanup_strv_ char **out = strv_new();
    if (!wild) {
        /* The path itself, when the filtered context has it. */
        bool found = false;
        struct kiln_error *e2 = NULL;
        int r = context_walk_at(root_fd, p, ig, exists_cb, &found, &e2);
        if (r < 0 && e2 && e2->code != ENOENT && e2->code != ENOTDIR) {
            kiln_error_set(err, e2->code, "%s", e2->msg);
            kiln_error_free(&e2);
            return -1;
        }
        kiln_error_free(&e2);
        /* an empty directory that is kept exists too */
        if (r == 0 && !found) {
            struct stat st;
            _cleanup_close_ int fd = context_openat(root_fd, p, O_PATH | O_NOFOLLOW);
            found = fd >= 0 && fstat(fd, &st) == 0;
        }
        if (found)
            strv_push(&out, p);
        *ret = TAKE_PTR(out);
        return 0;
    }
    _cleanup_free_ char *base = split ? xstrndup(p, split - 1) : xstrdup(".");
    struct glob_ctx g = {
        .rest = p + split,
        .rest_len = len - split,
        .base_len = split,
        .max_depth = 1,
        .out = TAKE_PTR(out),
    };
    /* '/' in a name is matched by a literal '/' or by a bracket class */
    for (size_t k = 0; k < g.rest_len; k++)
        g.max_depth += g.rest[k] == '/' || g.rest[k] == '[';
    if (gopath_match(g.rest, g.rest_len, "", 0) == GOMATCH_BAD_PATTERN) {
        strv_free(g.out);
        return kiln_error_set(err, EINVAL, "'%s': syntax error in pattern", pattern);
    }
    struct kiln_error *e2 = NULL;
    int r = context_walk_at(root_fd, base, ig, glob_cb, &g, &e2);
    if (r < 0 && e2 && e2->code != ENOENT && e2->code != ENOTDIR) {
        kiln_error_set(err, e2->code, "%s", e2->msg);
        kiln_error_free(&e2);
        strv_free(g.out);
        return -1;
    }
    kiln_error_free(&e2);
    *ret = g.out;
    return 0;
}
