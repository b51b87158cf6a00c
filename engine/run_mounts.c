/* RUN --mount=type=bind|cache|tmpfs|secret|ssh, the way BuildKit gives them
 * to a step, in two halves: run_mounts_prepare names every mount in the
 * step's cache key (what it reads, never a secret's content) without
 * touching anything, and run_mounts_materialize, called only when the step
 * really runs, makes them (views of stages, cache directories, secret files,
 * an ssh-agent).  A fully cached step thus mounts and starts nothing. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dockerfile/walk.h"
#include "engine/build_run.h"
#include "engine/output.h"
#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"

extern char **environ;

#define SECRET_MAX (500u << 10) /* BuildKit's limit */

static struct run_mount *add_mount(struct mount_prep *m)
{
    m->mounts = xreallocarray(m->mounts, m->n + 1, sizeof(*m->mounts));
    struct run_mount *r = &m->mounts[m->n++];
    memset(r, 0, sizeof(*r));
    return r;
}

/* Strings handed to run_mount live as long as the prep. */
static const char *keep(struct mount_prep *m, char *s)
{
    strv_push_take(&m->strings, s);
    return m->strings[strv_len(m->strings) - 1];
}

static void add_view(struct mount_prep *m, struct rootfs *view)
{
    m->views = xreallocarray(m->views, m->n_views + 1, sizeof(*m->views));
    m->views[m->n_views++] = view;
}

static char *target_abs(const struct stage_state *st, const char *target)
{
    if (target[0] == '/')
        return xstrdup(target);
    const char *wd = st->config.working_dir && *st->config.working_dir
                         ? st->config.working_dir
                         : "/";
    return xasprintf("%s/%s", strcmp(wd, "/") == 0 ? "" : wd, target);
}

/* ---- the content of a context directory, for the key ------------------ */

struct hash_walk {
    struct build_ctx *bc;
    int root_fd;
    struct cache_key *key; /* NULL: only count */
    size_t n;
};

static int hash_cb(const struct walk_entry *e, void *ud, struct kiln_error **err)
{
    struct hash_walk *h = ud;
    h->n++;
    if (!h->key)
        return WALK_CONTINUE;
    cache_key_add_str(h->key, "path", e->path);
    cache_key_add_int(h->key, "mode", e->st->st_mode);
    if (S_ISREG(e->st->st_mode)) {
        int fd = context_openat(h->root_fd, e->path, O_RDONLY | O_NOFOLLOW);
        if (fd < 0)
            return kiln_error_set(err, -fd, "read '%s'", e->path);
        uint8_t sha[32];
        int r = filehash_get(h->bc->filehash, fd, e->st, sha);
        close(fd);
        if (r < 0)
            return kiln_error_set(err, -r, "read '%s'", e->path);
        cache_key_add(h->key, "sha", sha, 32);
    } else if (S_ISLNK(e->st->st_mode)) {
        char buf[4096];
        ssize_t n = readlinkat(e->dirfd, e->name, buf, sizeof(buf) - 1);
        if (n >= 0)
            cache_key_add(h->key, "link", buf, (size_t)n);
    }
    return WALK_CONTINUE;
}

/* The real path of `src` inside a context directory (symlinks resolved in
 * it), relative to it ("." for the root). */
static int context_source(const char *ctx_dir, int ctx_fd, const char *src, char **ret,
                          struct kiln_error **err)
{
    int fd = context_openat(ctx_fd, src, O_PATH);
    if (fd < 0)
        return kiln_error_set(err, -fd, "RUN --mount: source '%s' in the build context", src);
    char proc[64], real[4096];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(proc, real, sizeof(real) - 1);
    close(fd);
    if (n < 0)
        return kiln_error_set(err, errno, "RUN --mount: resolve '%s'", src);
    real[n] = '\0';
    size_t cl = strlen(ctx_dir);
    if (strncmp(real, ctx_dir, cl) != 0 || (real[cl] && real[cl] != '/'))
        return kiln_error_set(err, 0, "RUN --mount: '%s' leads outside the build context", src);
    *ret = xstrdup(real[cl] ? real + cl + 1 : ".");
    return 0;
}

/* ---- a filtered copy of a context directory ----------------------------- */

struct filter_copy {
    int src_fd;     /* the context root */
    int dst_fd;     /* the copy */
    size_t skip;    /* length of the mounted subpath prefix in walk paths */
};

static int copy_file_data(int in, int out)
{
    char buf[64 * 1024];
    for (;;) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return 0;
        int r = fs_write_all(out, buf, (size_t)n);
        if (r < 0)
            return r;
    }
}

static int filter_cb(const struct walk_entry *e, void *ud, struct kiln_error **err)
{
    struct filter_copy *f = ud;
    const char *rel = e->path_len > f->skip ? e->path + f->skip : "";
    while (*rel == '/')
        rel++;
    if (!*rel)
        return WALK_CONTINUE;
    mode_t mode = e->st->st_mode & 07777;
    if (S_ISDIR(e->st->st_mode)) {
        if (mkdirat(f->dst_fd, rel, mode | 0700) < 0 && errno != EEXIST)
            return kiln_error_set(err, errno, "RUN --mount: copy '%s'", e->path);
    } else if (S_ISLNK(e->st->st_mode)) {
        char buf[4096];
        ssize_t n = readlinkat(e->dirfd, e->name, buf, sizeof(buf) - 1);
        if (n < 0)
            return kiln_error_set(err, errno, "RUN --mount: readlink '%s'", e->path);
        buf[n] = '\0';
        if (symlinkat(buf, f->dst_fd, rel) < 0)
            return kiln_error_set(err, errno, "RUN --mount: copy '%s'", e->path);
    } else if (S_ISREG(e->st->st_mode)) {
        /* a hard link when the context is on the store's file system */
        if (linkat(e->dirfd, e->name, f->dst_fd, rel, 0) == 0)
            return WALK_CONTINUE;
        _cleanup_close_ int in = openat(e->dirfd, e->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        _cleanup_close_ int out =
            openat(f->dst_fd, rel, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (in < 0 || out < 0 || copy_file_data(in, out) < 0)
            return kiln_error_set(err, errno, "RUN --mount: copy '%s'", e->path);
    }
    return WALK_CONTINUE;
}

/* ---- phase 1: what each mount is, in the key ------------------------------ */

/* The stage or image a from= names: a stage of this build (waited for),
 * else an image. */
static int mount_from(struct build_run *br, struct stage_state *st, const char *name,
                      const struct stage_state **ret, struct kiln_error **err)
{
    size_t k = SIZE_MAX;
    if (!plan_find_stage(br->plan, name, br->plan->n_stages, &k)) {
        char *end = NULL;
        unsigned long v = strtoul(name, &end, 10);
        if (*name >= '0' && *name <= '9' && !*end && v < br->plan->n_stages)
            k = (size_t)v;
    }
    if (k != SIZE_MAX) {
        if (build_wait_stage(br, (size_t)st->index, k, err) < 0)
            return -1;
        *ret = &br->states[k];
        return 0;
    }
    return build_image_state(br, name, ret, err);
}

int run_mounts_prepare(struct build_run *br, struct stage_state *st, const struct df_run *run,
                       struct mount_prep *m, struct cache_key *key, struct kiln_error **err)
{
    memset(m, 0, sizeof(*m));
    m->env_add = strv_new();
    m->strings = strv_new();
    m->remove = strv_new();
    m->n_plans = run->n_mounts;
    m->plans = xcalloc(run->n_mounts + 1, sizeof(*m->plans));
    for (size_t i = 0; i < run->n_mounts; i++) {
        const struct df_mount *dm = &run->mounts[i];
        struct mount_plan *p = &m->plans[i];
        p->dm = dm;
        cache_key_add_str(key, "mount", df_mount_type_name(dm->type));
        cache_key_add_str(key, "target", dm->target);
        cache_key_add_str(key, "source", dm->source);
        cache_key_add_str(key, "id", dm->id);
        cache_key_add_int(key, "ro", dm->readonly);
        cache_key_add_int(key, "required", dm->required);
        cache_key_add_int(key, "mode", dm->has_mode ? (int64_t)dm->mode : -1);
        cache_key_add_int(key, "uid", dm->has_uid ? (int64_t)dm->uid : -1);
        cache_key_add_int(key, "gid", dm->has_gid ? (int64_t)dm->gid : -1);
        p->target = dm->target ? keep(m, target_abs(st, dm->target)) : NULL;
        int r = 0;
        switch (dm->type) {
        case DF_MOUNT_BIND:
        case DF_MOUNT_CACHE:
            if (!p->target) {
                r = kiln_error_set(err, 0, "RUN --mount=type=%s needs a target",
                                   df_mount_type_name(dm->type));
                break;
            }
            if (dm->type == DF_MOUNT_CACHE)
                cache_key_add_int(key, "sharing", dm->sharing);
            if (dm->type == DF_MOUNT_CACHE && !dm->from)
                break;
            if (!dm->from || build_named_dir(br, dm->from)) {
                if (dm->type == DF_MOUNT_CACHE) {
                    r = kiln_error_set(err, 0, "RUN --mount=type=cache,from=%s: a cache can be "
                                               "seeded from a stage or an image only",
                                       dm->from);
                    break;
                }
                /* the build context, or a named one: its content is in the key */
                p->ctx_dir = dm->from ? build_named_dir(br, dm->from) : br->bc.context_dir;
                int fd = dm->from ? open(p->ctx_dir, O_PATH | O_DIRECTORY | O_CLOEXEC)
                                  : dup(br->context_fd);
                if (fd < 0) {
                    r = kiln_error_set(err, errno, "build context '%s'", p->ctx_dir);
                    break;
                }
                const struct ignore *ig = dm->from ? NULL : br->ignore;
                char *rel = NULL;
                r = context_source(p->ctx_dir, fd, dm->source && *dm->source ? dm->source : ".",
                                   &rel, err);
                if (r == 0) {
                    p->ctx_rel = keep(m, rel);
                    struct hash_walk hw = {&br->bc, fd, key, 0};
                    cache_key_add_str(key, "context", dm->from ? dm->from : "");
                    r = context_walk_at(fd, p->ctx_rel, ig, hash_cb, &hw, err);
                    if (r == 0 && ig && ignore_count(ig) > 0) {
                        /* does .dockerignore hide something in it? */
                        struct hash_walk all = {&br->bc, fd, NULL, 0};
                        r = context_walk_at(fd, p->ctx_rel, NULL, hash_cb, &all, err);
                        p->filtered = all.n != hw.n;
                    }
                }
                close(fd);
                break;
            }
            r = mount_from(br, st, dm->from, &p->from, err);
            if (r == 0)
                cache_key_add_str(key, "from", p->from->key);
            break;
        case DF_MOUNT_TMPFS:
            if (!p->target) {
                r = kiln_error_set(err, 0, "RUN --mount=type=tmpfs needs a target");
                break;
            }
            cache_key_add_int(key, "size", dm->size);
            break;
        case DF_MOUNT_SECRET:
            cache_key_add_str(key, "env", dm->env);
            if ((!dm->id || !*dm->id) && !dm->target)
                r = kiln_error_set(err, 0, "RUN --mount=type=secret needs an id or a target");
            break;
        case DF_MOUNT_SSH:
            break;
        }
        if (r < 0) {
            run_mounts_release(br, m);
            return kiln_error_wrap(err, "--mount=%s", dm->spec ? dm->spec : "");
        }
    }
    return 0;
}

/* ---- phase 2: making them ------------------------------------------------------ */

static int bind_context(struct build_run *br, struct mount_prep *m, const struct mount_plan *p,
                        struct kiln_error **err)
{
    const struct df_mount *dm = p->dm;
    _cleanup_free_ char *real = strcmp(p->ctx_rel, ".") == 0 ? xstrdup(p->ctx_dir)
                                                             : path_join(p->ctx_dir, p->ctx_rel);
    const char *source = keep(m, xstrdup(real));
    struct stat sst;
    if (stat(real, &sst) < 0)
        return kiln_error_set(err, errno, "RUN --mount: '%s'", real);
    if (p->filtered && S_ISDIR(sst.st_mode)) {
        /* .dockerignore'd files are not part of the context: mount a copy
         * without them */
        char *dir = NULL;
        if (store_mkdtemp(br->bc.store, "bind", &dir, err) < 0)
            return -1;
        strv_push_take(&m->remove, dir);
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
            return kiln_error_set(err, errno, "open '%s'", dir);
        struct filter_copy f = {br->context_fd, dfd,
                                strcmp(p->ctx_rel, ".") == 0 ? 0 : strlen(p->ctx_rel)};
        if (context_walk_at(br->context_fd, p->ctx_rel, br->ignore, filter_cb, &f, err) < 0)
            return -1;
        (void)!fchmod(dfd, sst.st_mode & 07777);
        source = keep(m, xstrdup(dir));
    }
    if (!dm->readonly && S_ISDIR(sst.st_mode)) {
        /* writes to a rw bind must not reach the user's files: give the
         * step a throw-away overlay of the directory */
        char *lowers[] = {(char *)source, NULL};
        struct rootfs *view = NULL;
        if (rootfs_mount(br->bc.store, br->bc.driver, lowers, &view, err) < 0)
            return -1;
        add_view(m, view);
        source = view->merged;
    }
    struct run_mount *r = add_mount(m);
    r->type = RUN_MOUNT_BIND;
    r->source = source;
    r->target = p->target;
    r->readonly = dm->readonly;
    return 0;
}

/* A path of a stage or image, in a view of it (writes are thrown away). */
static int bind_stage(struct build_run *br, struct mount_prep *m, const struct mount_plan *p,
                      struct kiln_error **err)
{
    const struct df_mount *dm = p->dm;
    char **trees = NULL;
    if (stage_trees(&br->bc, p->from, &trees, err) < 0)
        return -1;
    struct rootfs *view = NULL;
    int r = rootfs_mount(br->bc.store, br->bc.driver, trees, &view, err);
    strv_free(trees);
    if (r < 0)
        return -1;
    add_view(m, view);
    const char *src = dm->source && *dm->source ? dm->source : "/";
    /* resolve inside the view, never outside it */
    int rootfd = open(view->merged, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return kiln_error_set(err, errno, "open '%s'", view->merged);
    int fd = context_openat(rootfd, src, O_PATH);
    close(rootfd);
    if (fd < 0)
        return kiln_error_set(err, -fd, "RUN --mount: '%s' in '%s'", src, dm->from);
    char proc[64], real[4096];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(proc, real, sizeof(real) - 1);
    close(fd);
    if (n < 0)
        return kiln_error_set(err, errno, "RUN --mount: resolve '%s'", src);
    real[n] = '\0';
    struct run_mount *rm = add_mount(m);
    rm->type = RUN_MOUNT_BIND;
    rm->source = keep(m, xstrdup(real));
    rm->target = p->target;
    rm->readonly = dm->readonly;
    return 0;
}

/* A cache directory, kept in the store between builds: named by its id and
 * by what seeds it (BuildKit: "cache-dir:ID[:seed]"), so the same id seeded
 * differently is another cache.  The seed (a stage's path, or an empty
 * directory with mode/uid/gid) applies when the cache is created. */
static int cache_mount(struct build_run *br, struct mount_prep *m, const struct mount_plan *p,
                       struct kiln_error **err)
{
    const struct df_mount *dm = p->dm;
    const char *id = dm->id && *dm->id ? dm->id : p->target;
    struct cache_key ck;
    cache_key_begin(&ck, NULL);
    cache_key_add_str(&ck, "cache-dir", id);
    if (p->from) {
        cache_key_add_str(&ck, "from", p->from->key);
        cache_key_add_str(&ck, "source", dm->source && *dm->source ? dm->source : "/");
    }
    if (dm->has_mode || dm->has_uid || dm->has_gid) {
        cache_key_add_int(&ck, "mode", dm->has_mode ? (int64_t)dm->mode : 0755);
        cache_key_add_int(&ck, "uid", dm->has_uid ? (int64_t)dm->uid : 0);
        cache_key_add_int(&ck, "gid", dm->has_gid ? (int64_t)dm->gid : 0);
    }
    char digest[DIGEST_STR_LEN];
    cache_key_end(&ck, digest);
    _cleanup_free_ char *name = xasprintf("mounts/%.32s", digest_hex(digest));
    _cleanup_free_ char *lockname = xasprintf("%s.lock", name);
    _cleanup_free_ char *path = path_join(br->bc.store->root, name);
    enum df_sharing sharing = dm->sharing == DF_SHARING_UNSET ? DF_SHARING_SHARED : dm->sharing;
    bool fresh_private = false;
    if (sharing != DF_SHARING_SHARED) {
        int lfd = openat(br->bc.store->root_fd, lockname, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (lfd < 0)
            return kiln_error_set(err, errno, "cache mount '%s': lock", id);
        int how = sharing == DF_SHARING_LOCKED ? LOCK_EX : LOCK_EX | LOCK_NB;
        int r;
        while ((r = flock(lfd, how)) < 0 && errno == EINTR)
            ;
        if (r < 0) {
            close(lfd);
            if (sharing != DF_SHARING_PRIVATE)
                return kiln_error_set(err, errno, "cache mount '%s': lock", id);
            /* private and in use: this step gets a fresh one of its own */
            fresh_private = true;
        } else {
            m->locks = xreallocarray(m->locks, m->n_locks + 1, sizeof(int));
            m->locks[m->n_locks++] = lfd;
        }
    }
    struct stat sst;
    if (fresh_private || stat(path, &sst) < 0) {
        /* make it in tmp/, seeded, then move it into place */
        char *tmp = NULL;
        if (store_mkdtemp(br->bc.store, "cache", &tmp, err) < 0)
            return -1;
        strv_push_take(&m->remove, tmp);
        _cleanup_free_ char *dir = path_join(tmp, "d");
        if (p->from) {
            if (output_copy_subtree(&br->bc, p->from,
                                    dm->source && *dm->source ? dm->source : "/", dir, err) < 0)
                return kiln_error_wrap(err, "seed cache mount '%s' from '%s'", id, dm->from);
        } else if (mkdir(dir, 0755) < 0) {
            return kiln_error_set(err, errno, "cache mount '%s': create", id);
        }
        if (dm->has_uid || dm->has_gid)
            (void)!chown(dir, dm->has_uid ? dm->uid : 0, dm->has_gid ? dm->gid : 0);
        if (dm->has_mode && chmod(dir, (mode_t)dm->mode) < 0)
            return kiln_error_set(err, errno, "cache mount '%s': chmod", id);
        if (fresh_private) {
            free(path);
            path = xstrdup(dir);
        } else if (rename(dir, path) < 0 && errno != EEXIST && errno != ENOTEMPTY) {
            return kiln_error_set(err, errno, "cache mount '%s': create '%s'", id, path);
        }
    }
    struct run_mount *r = add_mount(m);
    r->type = RUN_MOUNT_BIND;
    r->source = keep(m, xstrdup(path));
    r->target = p->target;
    r->readonly = dm->readonly;
    return 0;
}

static const struct build_secret *find_secret(struct build_run *br, const char *id)
{
    for (size_t i = 0; i < br->bc.req->n_secrets; i++)
        if (strcmp(br->bc.req->secrets[i].id, id) == 0)
            return &br->bc.req->secrets[i];
    return NULL;
}

static int secret_mount(struct build_run *br, struct mount_prep *m, const struct mount_plan *p,
                        struct kiln_error **err)
{
    const struct df_mount *dm = p->dm;
    const char *id = dm->id;
    _cleanup_free_ char *derived = NULL;
    if ((!id || !*id) && dm->target) {
        const char *slash = strrchr(dm->target, '/');
        derived = xstrdup(slash ? slash + 1 : dm->target);
        id = derived;
    }
    const struct build_secret *s = find_secret(br, id);
    char *value = NULL;
    size_t len = 0;
    if (s && s->src) {
        int r = fs_read_file_at(AT_FDCWD, s->src, SECRET_MAX, &value, &len);
        if (r < 0)
            return kiln_error_set(err, -r, "secret %s: read '%s'", id, s->src);
    } else if (s && s->env && getenv(s->env)) {
        value = xstrdup(getenv(s->env));
        len = strlen(value);
    }
    if (!value) {
        if (dm->required)
            return kiln_error_set(err, 0, "secret %s: not found", id);
        return 0; /* BuildKit skips a missing optional secret */
    }
    if (dm->env) {
        strv_push_take(&m->env_add, xasprintf("%s=%.*s", dm->env, (int)len, value));
        if (!dm->target) {
            explicit_bzero(value, len);
            free(value);
            return 0;
        }
    }
    /* on the build's scratch directory, 0700, removed after the step */
    _cleanup_free_ char *dir = path_join(br->bc.scratch, "secrets");
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        free(value);
        return kiln_error_set(err, errno, "secret %s: create '%s'", id, dir);
    }
    char *file = xasprintf("%s/secret-XXXXXX", dir);
    int fd = mkostemp(file, O_CLOEXEC);
    int r = fd < 0 ? -errno : fs_write_all(fd, value, len);
    explicit_bzero(value, len);
    free(value);
    if (fd >= 0) {
        if (r == 0 && fchmod(fd, dm->has_mode ? (mode_t)dm->mode : 0400) < 0)
            r = -errno;
        if (dm->has_uid || dm->has_gid)
            (void)!fchown(fd, dm->has_uid ? dm->uid : 0, dm->has_gid ? dm->gid : 0);
        close(fd);
        strv_push(&m->remove, file);
    }
    if (r < 0) {
        free(file);
        return kiln_error_set(err, -r, "secret %s: write", id);
    }
    struct run_mount *rm = add_mount(m);
    rm->type = RUN_MOUNT_BIND;
    rm->source = keep(m, file);
    rm->target = p->target ? p->target : keep(m, xasprintf("/run/secrets/%s", id));
    rm->readonly = true;
    return 0;
}

/* Runs a program to completion, output to /dev/null; its exit status or -errno. */
static int run_quiet(char *const argv[], char *const envp[])
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    if (r != 0)
        return -r;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -errno;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* An ssh-agent of our own serving key files, at path. */
static int start_agent(struct mount_prep *m, const char *id, char *const *keys, const char *path,
                       struct kiln_error **err)
{
    char *argv[] = {"ssh-agent", "-D", "-a", (char *)path, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int r = posix_spawnp(&pid, "ssh-agent", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (r != 0)
        return kiln_error_set(err, r, "ssh %s: start ssh-agent", id);
    m->agent = pid;
    for (int i = 0; i < 500 && access(path, F_OK) < 0; i++)
        usleep(10000);
    if (access(path, F_OK) < 0)
        return kiln_error_set(err, errno, "ssh %s: ssh-agent did not start", id);
    _cleanup_free_ char *sockenv = xasprintf("SSH_AUTH_SOCK=%s", path);
    char *envp[] = {sockenv, "PATH=/usr/local/bin:/usr/bin:/bin", NULL};
    for (size_t k = 0; keys[k]; k++) {
        char *add[] = {"ssh-add", keys[k], NULL};
        int st = run_quiet(add, envp);
        if (st != 0)
            return kiln_error_set(err, st < 0 ? -st : 0, "ssh %s: cannot add key '%s'", id,
                                  keys[k]);
    }
    return 0;
}

static int ssh_mount(struct build_run *br, struct mount_prep *m, const struct mount_plan *p,
                     size_t index, struct kiln_error **err)
{
    const struct df_mount *dm = p->dm;
    const char *id = dm->id && *dm->id ? dm->id : "default";
    const struct build_ssh *s = NULL;
    for (size_t i = 0; i < br->bc.req->n_ssh; i++)
        if (strcmp(br->bc.req->ssh[i].id, id) == 0)
            s = &br->bc.req->ssh[i];
    const char *sock = NULL;
    if (s && s->paths && s->paths[0]) {
        struct stat st;
        if (stat(s->paths[0], &st) == 0 && S_ISSOCK(st.st_mode)) {
            sock = s->paths[0];
        } else {
            static unsigned long seq;
            unsigned long n = __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED);
            char *path = xasprintf("%s/ssh-agent.%lu", br->bc.scratch, n);
            sock = keep(m, path);
            if (start_agent(m, id, s->paths, path, err) < 0)
                return -1;
        }
    } else if (s) {
        sock = getenv("SSH_AUTH_SOCK");
    }
    if (!sock) {
        if (dm->required || s)
            return kiln_error_set(err, 0, "no SSH key %s forwarded from the client (use --ssh %s)",
                                  id, id);
        return 0;
    }
    const char *target =
        p->target ? p->target : keep(m, xasprintf("/run/buildkit/ssh_agent.%zu", index));
    struct run_mount *rm = add_mount(m);
    rm->type = RUN_MOUNT_BIND;
    rm->source = sock;
    rm->target = target;
    rm->readonly = true;
    strv_push_take(&m->env_add, xasprintf("SSH_AUTH_SOCK=%s", target));
    return 0;
}

int run_mounts_materialize(struct build_run *br, struct stage_state *st, struct mount_prep *m,
                           struct kiln_error **err)
{
    (void)st;
    size_t ssh_index = 0;
    for (size_t i = 0; i < m->n_plans; i++) {
        const struct mount_plan *p = &m->plans[i];
        const struct df_mount *dm = p->dm;
        int r = 0;
        switch (dm->type) {
        case DF_MOUNT_BIND:
            r = p->from ? bind_stage(br, m, p, err) : bind_context(br, m, p, err);
            break;
        case DF_MOUNT_CACHE:
            r = cache_mount(br, m, p, err);
            break;
        case DF_MOUNT_TMPFS: {
            struct run_mount *rm = add_mount(m);
            rm->type = RUN_MOUNT_TMPFS;
            rm->target = p->target;
            rm->tmpfs_size = dm->size > 0 ? (uint64_t)dm->size : 0;
            break;
        }
        case DF_MOUNT_SECRET:
            r = secret_mount(br, m, p, err);
            break;
        case DF_MOUNT_SSH:
            r = ssh_mount(br, m, p, ssh_index++, err);
            break;
        }
        if (r < 0)
            return kiln_error_wrap(err, "--mount=%s", dm->spec ? dm->spec : "");
    }
    return 0;
}

void run_mounts_release(struct build_run *br, struct mount_prep *m)
{
    (void)br;
    for (size_t i = 0; i < m->n_views; i++)
        rootfs_release(m->views[i]);
    free(m->views);
    for (size_t i = 0; i < m->n_locks; i++)
        close(m->locks[i]);
    free(m->locks);
    if (m->agent > 0) {
        kill(m->agent, SIGTERM);
        while (waitpid(m->agent, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    for (size_t i = 0; m->remove && m->remove[i]; i++)
        fs_rm_rf(m->remove[i]);
    strv_free(m->remove);
    strv_free(m->strings);
    if (m->env_add)
        for (size_t i = 0; m->env_add[i]; i++)
            explicit_bzero(m->env_add[i], strlen(m->env_add[i]));
    strv_free(m->env_add);
    free(m->mounts);
    free(m->plans);
    memset(m, 0, sizeof(*m));
}
