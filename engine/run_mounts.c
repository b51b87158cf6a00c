/* RUN --mount=type=bind|cache|tmpfs|secret|ssh, the way BuildKit gives them
 * to a step.  A secret's content never reaches a layer, the config, the
 * history or a cache key: only its id and target do. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dockerfile/walk.h"
#include "engine/build_run.h"
#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"

static struct run_mount *add_mount(struct mount_prep *m)
{
    m->mounts = xreallocarray(m->mounts, m->n + 1, sizeof(*m->mounts));
    struct run_mount *r = &m->mounts[m->n++];
    memset(r, 0, sizeof(*r));
    return r;
}

/* Paths handed to run_mount live as long as the prep. */
static const char *keep(struct mount_prep *m, char *s)
{
    strv_push_take(&m->strings, s);
    return m->strings[strv_len(m->strings) - 1];
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

struct hash_walk {
    struct build_ctx *bc;
    int root_fd;
    struct cache_key *key;
};

static int hash_cb(const struct walk_entry *e, void *ud, struct kiln_error **err)
{
    struct hash_walk *h = ud;
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

/* A bind mount of a directory of the build context (or a named context). */
static int bind_context(struct build_run *br, struct mount_prep *m, const char *ctx_dir, int ctx_fd,
                        const struct ignore *ig, const struct df_mount *dm, const char *target,
                        struct cache_key *key, struct kiln_error **err)
{
    const char *src = dm->source && *dm->source ? dm->source : ".";
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
    if (strncmp(real, ctx_dir, cl) != 0)
        return kiln_error_set(err, 0, "RUN --mount: '%s' leads outside the build context", src);
    /* the content of what is mounted is part of the key */
    struct hash_walk hw = {&br->bc, ctx_fd, key};
    const char *rel = real[cl] ? real + cl + 1 : ".";
    if (context_walk_at(ctx_fd, rel, ig, hash_cb, &hw, err) < 0)
        return -1;
    const char *source = keep(m, xstrdup(real));
    if (!dm->readonly) {
        /* writes to a rw bind must not reach the user's files: give the step
         * a throw-away overlay of the directory */
        struct stat st;
        if (stat(real, &st) == 0 && S_ISDIR(st.st_mode)) {
            char *lowers[] = {real, NULL};
            struct rootfs *view = NULL;
            if (rootfs_mount(br->bc.store, br->bc.driver, lowers, &view, err) < 0)
                return -1;
            m->views = xreallocarray(m->views, m->n_views + 1, sizeof(*m->views));
            m->views[m->n_views++] = view;
            source = view->merged;
        }
    }
    struct run_mount *r = add_mount(m);
    r->type = RUN_MOUNT_BIND;
    r->source = source;
    r->target = target;
    r->readonly = dm->readonly;
    return 0;
}

/* A bind mount of a path of another stage or image. */
static int bind_stage(struct build_run *br, struct mount_prep *m, const struct stage_state *from,
                      const struct df_mount *dm, const char *target, struct cache_key *key,
                      struct kiln_error **err)
{
    cache_key_add_str(key, "from", from->key);
    char **trees = NULL;
    if (stage_trees(&br->bc, from, &trees, err) < 0)
        return -1;
    struct rootfs *view = NULL;
    int r = rootfs_mount(br->bc.store, br->bc.driver, trees, &view, err);
    strv_free(trees);
    if (r < 0)
        return -1;
    m->views = xreallocarray(m->views, m->n_views + 1, sizeof(*m->views));
    m->views[m->n_views++] = view;
    const char *src = dm->source && *dm->source ? dm->source : "/";
    _cleanup_free_ char *clean = NULL;
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
    rm->target = target;
    rm->readonly = dm->readonly;
    return 0;
}

static int cache_mount(struct build_run *br, struct mount_prep *m, const struct df_mount *dm,
                       const char *target, struct kiln_error **err)
{
    const char *id = dm->id && *dm->id ? dm->id : target;
    char digest[DIGEST_STR_LEN];
    _cleanup_free_ char *idkey = xasprintf("cache:%s", id);
    sha256_digest_of(idkey, strlen(idkey), digest);
    _cleanup_free_ char *name = xasprintf("mounts/%.32s", digest_hex(digest));
    _cleanup_free_ char *lockname = xasprintf("%s.lock", name);
    _cleanup_free_ char *path = path_join(br->bc.store->root, name);
    enum df_sharing sharing = dm->sharing == DF_SHARING_UNSET ? DF_SHARING_SHARED : dm->sharing;
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
            char *tmp = NULL;
            if (store_mkdtemp(br->bc.store, "cache-private", &tmp, err) < 0)
                return -1;
            free(path);
            path = tmp;
            strv_push(&m->remove, path);
        } else {
            m->locks = xreallocarray(m->locks, m->n_locks + 1, sizeof(int));
            m->locks[m->n_locks++] = lfd;
        }
    }
    if (mkdir(path, dm->has_mode ? (mode_t)dm->mode : 0755) == 0) {
        if (dm->has_mode)
            chmod(path, (mode_t)dm->mode);
        if (dm->has_uid || dm->has_gid)
            (void)!chown(path, dm->has_uid ? dm->uid : 0, dm->has_gid ? dm->gid : 0);
    } else if (errno != EEXIST) {
        return kiln_error_set(err, errno, "cache mount '%s': create '%s'", id, path);
    }
    struct run_mount *r = add_mount(m);
    r->type = RUN_MOUNT_BIND;
    r->source = keep(m, xstrdup(path));
    r->target = target;
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

static int secret_mount(struct build_run *br, struct mount_prep *m, const struct df_mount *dm,
                        struct kiln_error **err)
{
    const char *id = dm->id;
    _cleanup_free_ char *derived = NULL;
    if ((!id || !*id) && dm->target) {
        const char *slash = strrchr(dm->target, '/');
        derived = xstrdup(slash ? slash + 1 : dm->target);
        id = derived;
    }
    if (!id || !*id)
        return kiln_error_set(err, 0, "RUN --mount=type=secret needs an id or a target");
    const struct build_secret *s = find_secret(br, id);
    char *value = NULL;
    size_t len = 0;
    if (s && s->src) {
        int r = fs_read_file_at(AT_FDCWD, s->src, 500 << 10, &value, &len);
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
            free(value);
            return 0;
        }
    }
    _cleanup_free_ char *dir = path_join(br->bc.scratch, "secrets");
    mkdir(dir, 0700);
    char *file = xasprintf("%s/%zu", dir, strv_len(m->remove));
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int r = fd < 0 ? -errno : fs_write_all(fd, value, len);
    free(value);
    if (fd >= 0) {
        fchmod(fd, dm->has_mode ? (mode_t)dm->mode : 0400);
        if (dm->has_uid || dm->has_gid)
            (void)!fchown(fd, dm->has_uid ? dm->uid : 0, dm->has_gid ? dm->gid : 0);
        close(fd);
    }
    if (r < 0) {
        free(file);
        return kiln_error_set(err, -r, "secret %s: write", id);
    }
    strv_push(&m->remove, file);
    const char *kept = keep(m, file);
    struct run_mount *rm = add_mount(m);
    rm->type = RUN_MOUNT_BIND;
    rm->source = kept;
    rm->target = keep(m, dm->target ? xstrdup(dm->target) : xasprintf("/run/secrets/%s", id));
    rm->readonly = true;
    return 0;
}

static int ssh_mount(struct build_run *br, struct mount_prep *m, const struct df_mount *dm,
                     size_t index, struct kiln_error **err)
{
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
            /* key files: serve them from an ssh-agent of our own */
            _cleanup_free_ char *path = xasprintf("%s/ssh-agent.%zu", br->bc.scratch, index);
            pid_t pid = fork();
            if (pid == 0) {
                execlp("ssh-agent", "ssh-agent", "-D", "-a", path, (char *)NULL);
                _exit(127);
            }
            if (pid < 0)
                return kiln_error_set(err, errno, "ssh %s: start ssh-agent", id);
            m->agent = pid;
            for (int i = 0; i < 100 && access(path, F_OK) < 0; i++)
                usleep(10000);
            for (size_t k = 0; s->paths[k]; k++) {
                pid_t p = fork();
                if (p == 0) {
                    setenv("SSH_AUTH_SOCK", path, 1);
                    int devnull = open("/dev/null", O_RDWR);
                    dup2(devnull, 0);
                    dup2(devnull, 1);
                    dup2(devnull, 2);
                    execlp("ssh-add", "ssh-add", s->paths[k], (char *)NULL);
                    _exit(127);
                }
                int status = 0;
                if (p < 0 || waitpid(p, &status, 0) < 0 || !WIFEXITED(status) ||
                    WEXITSTATUS(status) != 0)
                    return kiln_error_set(err, 0, "ssh %s: cannot add key '%s'", id,
                                          s->paths[k]);
            }
            sock = keep(m, xstrdup(path));
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
        keep(m, dm->target ? xstrdup(dm->target) : xasprintf("/run/buildkit/ssh_agent.%zu", index));
    struct run_mount *rm = add_mount(m);
    rm->type = RUN_MOUNT_BIND;
    rm->source = sock;
    rm->target = target;
    rm->readonly = true;
    strv_push_take(&m->env_add, xasprintf("SSH_AUTH_SOCK=%s", target));
    return 0;
}

int run_mounts_prepare(struct build_run *br, struct stage_state *st, const struct df_run *run,
                       struct mount_prep *m, struct cache_key *key, struct kiln_error **err)
{
    memset(m, 0, sizeof(*m));
    m->env_add = strv_new();
    m->strings = strv_new();
    m->remove = strv_new();
    size_t ssh_index = 0;
    for (size_t i = 0; i < run->n_mounts; i++) {
        const struct df_mount *dm = &run->mounts[i];
        cache_key_add_str(key, "mount", df_mount_type_name(dm->type));
        cache_key_add_str(key, "target", dm->target);
        cache_key_add_str(key, "source", dm->source);
        cache_key_add_str(key, "id", dm->id);
        cache_key_add_int(key, "ro", dm->readonly);
        const char *target = dm->target ? keep(m, target_abs(st, dm->target)) : NULL;
        int r = 0;
        switch (dm->type) {
        case DF_MOUNT_BIND:
        case DF_MOUNT_CACHE:
            if (!target) {
                r = kiln_error_set(err, 0, "RUN --mount=type=%s needs a target",
                                   df_mount_type_name(dm->type));
                break;
            }
            if (dm->type == DF_MOUNT_CACHE && !dm->from) {
                cache_key_add_int(key, "sharing", dm->sharing);
                r = cache_mount(br, m, dm, target, err);
                break;
            }
            if (!dm->from) {
                r = bind_context(br, m, br->bc.context_dir, br->context_fd, br->ignore, dm,
                                 target, key, err);
            } else if (build_named_dir(br, dm->from)) {
                const char *dir = build_named_dir(br, dm->from);
                int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0) {
                    r = kiln_error_set(err, errno, "build context '%s'", dir);
                    break;
                }
                r = bind_context(br, m, dir, fd, NULL, dm, target, key, err);
                close(fd);
            } else {
                const struct stage_state *from = NULL;
                /* a stage of this build, else an image */
                for (size_t k = 0; k < br->plan->n_stages; k++) {
                    const struct plan_stage *ps = &br->plan->stages[k];
                    char idx[24];
                    snprintf(idx, sizeof(idx), "%zu", k);
                    if ((ps->name && strcasecmp(ps->name, dm->from) == 0) ||
                        strcmp(idx, dm->from) == 0)
                        from = &br->states[k];
                }
                if (!from && build_image_state(br, dm->from, &from, err) < 0) {
                    r = -1;
                    break;
                }
                if (dm->type == DF_MOUNT_CACHE) {
                    /* a cache seeded from a stage: BuildKit mounts the stage path */
                    r = bind_stage(br, m, from, dm, target, key, err);
                } else {
                    r = bind_stage(br, m, from, dm, target, key, err);
                }
            }
            break;
        case DF_MOUNT_TMPFS: {
            if (!target) {
                r = kiln_error_set(err, 0, "RUN --mount=type=tmpfs needs a target");
                break;
            }
            cache_key_add_int(key, "size", dm->size);
            struct run_mount *rm = add_mount(m);
            rm->type = RUN_MOUNT_TMPFS;
            rm->target = target;
            rm->tmpfs_size = dm->size > 0 ? (uint64_t)dm->size : 0;
            break;
        }
        case DF_MOUNT_SECRET:
            cache_key_add_str(key, "env", dm->env);
            r = secret_mount(br, m, dm, err);
            break;
        case DF_MOUNT_SSH:
            r = ssh_mount(br, m, dm, ssh_index++, err);
            break;
        }
        if (r < 0) {
            run_mounts_release(br, m);
            return -1;
        }
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
        waitpid(m->agent, NULL, 0);
    }
    for (size_t i = 0; m->remove && m->remove[i]; i++)
        fs_rm_rf(m->remove[i]);
    strv_free(m->remove);
    strv_free(m->strings);
    strv_free(m->env_add);
    free(m->mounts);
    memset(m, 0, sizeof(*m));
}
