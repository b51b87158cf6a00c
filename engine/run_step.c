#include "engine/run_step.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"
#include "runtime/runtime.h"

#define MAX_LINE 4096

/* Reads the step's output and forwards it line by line (progress keeps the
 * tail for the error block). */
struct output_pump {
    struct build_ctx *bc;
    int vertex;
    double started;
    int fd;
};

static void pump_line(struct output_pump *p, const char *line, size_t len)
{
    vertex_log(p->bc, p->vertex, p->started, line, len);
}

static void *pump_main(void *arg)
{
    struct output_pump *p = arg;
    struct strbuf line = STRBUF_INIT;
    char buf[8192];
    for (;;) {
        ssize_t n = read(p->fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\n' || line.len >= MAX_LINE) {
                pump_line(p, strbuf_str(&line), line.len);
                strbuf_reset(&line);
                if (buf[i] == '\n')
                    continue;
            }
            if (buf[i] != '\r')
                strbuf_addc(&line, buf[i]);
        }
    }
    if (line.len)
        pump_line(p, line.buf, line.len);
    strbuf_release(&line);
    return NULL;
}

static int read_image_file(struct lowerfs *l, const char *path, char **ret)
{
    size_t len = 0;
    int r = lowerfs_read_file(l, path, 16 << 20, ret, &len);
    if (r < 0)
        *ret = NULL;
    return r;
}

int run_step(struct build_ctx *bc, struct stage_state *st, int vertex, double started,
             const struct run_request *rq, struct layer_result *ret, struct kiln_error **err)
{
    int rc = -1;
    _cleanup_strv_ char **trees = NULL;
    struct rootfs *rootfs = NULL;
    struct run_user user = {0};
    int pipefd[2] = {-1, -1};
    pthread_t pump_thread;
    bool pumping = false;
    struct output_pump pump = {.bc = bc, .vertex = vertex, .started = started, .fd = -1};

    if (stage_trees(bc, st, &trees, err) < 0)
        goto out;
    /* USER resolves against the image's own passwd and group files */
    {
        struct lowerfs lfs;
        if (lowerfs_init(&lfs, trees, strv_len(trees), err) < 0)
            goto out;
        char *passwd = NULL, *group = NULL;
        read_image_file(&lfs, "/etc/passwd", &passwd);
        read_image_file(&lfs, "/etc/group", &group);
        lowerfs_close(&lfs);
        int r = runtime_user_resolve_db(passwd, group, rq->user && *rq->user ? rq->user : "0", &user,
                                     err);
        free(passwd);
        free(group);
        if (r < 0)
            goto out;
    }
    if (rootfs_mount(bc->store, bc->driver, trees, &rootfs, err) < 0)
        goto out;
    /* single-ID mode: owners the root emulation cannot keep on the files */
    rootfs->owner_log = path_join(rootfs->scratch, "owners.log");
    /* single-ID mode: what a non-root USER creates belongs to it, although
     * the kernel could only give it kiln's one id */
    const struct userns_info *ns = userns_current();
    if (ns && ns->mode == USERNS_SINGLE && (user.uid != 0 || user.gid != 0)) {
        rootfs->new_owner = true;
        rootfs->new_uid = user.uid;
        rootfs->new_gid = user.gid;
    }
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        kiln_error_set(err, errno, "pipe");
        goto out;
    }
    pump.fd = pipefd[0];
    if (pthread_create(&pump_thread, NULL, pump_main, &pump) != 0) {
        kiln_error_set(err, errno, "start output reader");
        goto out;
    }
    pumping = true;

    /* HOME and the like: the runtime completes the environment */
    char **env = strv_copy(rq->env);
    bool has_home = false;
    for (size_t i = 0; env[i]; i++)
        has_home |= strncmp(env[i], "HOME=", 5) == 0;
    if (!has_home)
        strv_push_take(&env, xasprintf("HOME=%s", user.home ? user.home : "/"));

    struct run_spec spec = {
        .rootfs = rootfs->merged,
        .argv = rq->argv,
        .env = env,
        .cwd = rq->cwd && *rq->cwd ? rq->cwd : "/",
        .uid = user.uid,
        .gid = user.gid,
        .groups = user.groups,
        .n_groups = user.n_groups,
        .hostname = bc->hostname,
        .network = rq->network,
        .mounts = rq->mounts,
        .n_mounts = rq->n_mounts,
        .hosts_file = bc->hosts_file,
        .resolv_file = bc->resolv_file,
        .seccomp = SECCOMP_DEFAULT,
        .shm_size = bc->req->shm_size,
        .stdin_fd = -1,
        .stdout_fd = pipefd[1],
        .stderr_fd = pipefd[1],
        .owner_log = rootfs->owner_log,
        .cancel_fd = bc->cancel_fd,
    };
    for (size_t i = 0; bc->req->security_opts && bc->req->security_opts[i]; i++) {
        const char *v = bc->req->security_opts[i] + strlen("seccomp=");
        if (strcmp(v, "unconfined") == 0) {
            spec.seccomp = SECCOMP_UNCONFINED;
        } else {
            spec.seccomp = SECCOMP_PROFILE;
            spec.seccomp_profile = v;
        }
    }
    struct run_ulimit *ulimits = NULL;
    if (bc->req->n_ulimits) {
        ulimits = xcalloc(bc->req->n_ulimits, sizeof(*ulimits));
        for (size_t i = 0; i < bc->req->n_ulimits; i++) {
            ulimits[i].resource = ulimit_from_name(bc->req->ulimits[i].name);
            ulimits[i].soft = bc->req->ulimits[i].soft;
            ulimits[i].hard = bc->req->ulimits[i].hard;
        }
        spec.ulimits = ulimits;
        spec.n_ulimits = bc->req->n_ulimits;
    }
    int status = 0;
    int r = runtime_run(&spec, &status, err);
    free(ulimits);
    strv_free(env);
    close(pipefd[1]);
    pipefd[1] = -1;
    pthread_join(pump_thread, NULL);
    pumping = false;
    if (r < 0)
        goto out;
    if (status != 0) {
        /* the output's tail is progress's to show (BuildKit's error block) */
        kiln_error_set(err, 0, "process \"%s\" did not complete successfully: exit code: %d",
                       rq->display, status);
        goto out;
    }
    if (rootfs_diff(bc->store, rootfs, &bc->lw, ret, err) < 0)
        goto out;
    rc = 0;
out:
    if (pumping) {
        if (pipefd[1] >= 0)
            close(pipefd[1]);
        pipefd[1] = -1;
        pthread_join(pump_thread, NULL);
    }
    if (pipefd[0] >= 0)
        close(pipefd[0]);
    if (pipefd[1] >= 0)
        close(pipefd[1]);
    rootfs_release(rootfs);
    run_user_free(&user);
    return rc;
}
