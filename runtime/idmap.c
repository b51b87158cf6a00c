/* Id maps (see idmap.h). */
#include "runtime/idmap.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"
#include "runtime/runtime.h"

extern char **environ;

/* ---- /etc/subuid ------------------------------------------------------------- */

static bool parse_u32(const char *s, size_t n, uint32_t *ret)
{
    if (n == 0 || n > 10)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > UINT32_MAX)
        return false;
    *ret = (uint32_t)v;
    return true;
}

int idmap_parse_subids(const char *buf, size_t len, const char *name, uint32_t id,
                       struct subid_range **ret, size_t *ret_n, struct kiln_error **err)
{
    struct subid_range *v = NULL;
    size_t n = 0, cap = 0;
    char idstr[16];
    snprintf(idstr, sizeof(idstr), "%u", id);
    size_t lineno = 0;
    for (size_t pos = 0; pos < len;) {
        const char *line = buf + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - line) : len - pos;
        pos += ll + 1;
        lineno++;
        while (ll && (line[ll - 1] == '\r' || line[ll - 1] == ' ' || line[ll - 1] == '\t'))
            ll--;
        if (ll == 0 || line[0] == '#')
            continue;
        const char *c1 = memchr(line, ':', ll);
        const char *c2 = c1 ? memchr(c1 + 1, ':', ll - (size_t)(c1 + 1 - line)) : NULL;
        if (!c2)
            continue; /* malformed: shadow's tools skip it too */
        size_t owner_len = (size_t)(c1 - line);
        bool mine = (name && owner_len == strlen(name) && memcmp(line, name, owner_len) == 0) ||
                    (owner_len == strlen(idstr) && memcmp(line, idstr, owner_len) == 0);
        if (!mine)
            continue;
        struct subid_range r;
        if (!parse_u32(c1 + 1, (size_t)(c2 - c1 - 1), &r.start) ||
            !parse_u32(c2 + 1, ll - (size_t)(c2 + 1 - line), &r.count)) {
            free(v);
            return kiln_error_set(err, 0, "line %zu: bad range", lineno);
        }
        if (r.count == 0 || (uint64_t)r.start + r.count > (uint64_t)UINT32_MAX)
            continue;
        if (n == IDMAP_MAX_RANGES)
            break;
        XGROW(v, cap, n + 1);
        v[n++] = r;
    }
    *ret = v;
    *ret_n = n;
    return 0;
}

int idmap_read_subids(const char *path, const char *name, uint32_t id, struct subid_range **ret,
                      size_t *ret_n, struct kiln_error **err)
{
    *ret = NULL;
    *ret_n = 0;
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    int r = fs_read_file_at(AT_FDCWD, path, IDMAP_FILE_MAX, &buf, &len);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return kiln_error_set(err, -r, "reading '%s'", path);
    if (idmap_parse_subids(buf, len, name, id, ret, ret_n, err) < 0)
        return kiln_error_wrap(err, "'%s'", path);
    return 0;
}

uint32_t idmap_total(const struct subid_range *r, size_t n)
{
    uint64_t t = 0;
    for (size_t i = 0; i < n; i++)
        t += r[i].count;
    return t > UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}

char *idmap_find_helper(const char *name)
{
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = RUNTIME_DEFAULT_PATH;
    _cleanup_free_ char *copy = xstrdup(path);
    for (char *save = NULL, *dir = strtok_r(copy, ":", &save); dir;
         dir = strtok_r(NULL, ":", &save)) {
        char *full = xasprintf("%s/%s", dir, name);
        struct stat st;
        if (stat(full, &st) == 0 && S_ISREG(st.st_mode) && access(full, X_OK) == 0)
            return full;
        free(full);
    }
    return NULL;
}

/* ---- the helper ----------------------------------------------------------------- */

struct helper_result {
    int uid_done;  /* a map was written (newuidmap or newgidmap succeeded) */
    int ok;        /* both succeeded */
    char msg[1024];
};

/* A helper started with its stdout and stderr going to a pipe. */
struct spawned {
    pid_t pid;
    int out_fd;
    int err; /* -errno when it could not be started */
};

static void spawn_capture(char *const *argv, struct spawned *sp)
{
    sp->pid = -1;
    sp->out_fd = -1;
    sp->err = 0;
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        sp->err = -errno;
        return;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDERR_FILENO);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
    int r = posix_spawn(&sp->pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pipefd[1]);
    if (r != 0) {
        close(pipefd[0]);
        sp->pid = -1;
        sp->err = -r;
        return;
    }
    sp->out_fd = pipefd[0];
}

/* Collects a spawned helper's output and wait status (or -errno). */
static int wait_capture(struct spawned *sp, char *out, size_t out_size)
{
    out[0] = '\0';
    if (sp->err < 0)
        return sp->err;
    size_t len = 0;
    ssize_t n;
    char sink[256];
    while ((n = read(sp->out_fd, len + 1 < out_size ? out + len : sink,
                     len + 1 < out_size ? out_size - 1 - len : sizeof(sink))) > 0 ||
           (n < 0 && errno == EINTR))
        if (n > 0 && len + 1 < out_size)
            len += (size_t)n;
    out[len] = '\0';
    while (len && (out[len - 1] == '\n' || out[len - 1] == ' '))
        out[--len] = '\0';
    close(sp->out_fd);
    sp->out_fd = -1;
    int status;
    while (waitpid(sp->pid, &status, 0) < 0)
        if (errno != EINTR)
            return -errno;
    return status;
}

static bool exited_ok(int status)
{
    return status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static char **map_argv(const char *helper, pid_t target, uint32_t own,
                       const struct subid_range *r, size_t n)
{
    char **argv = strv_new();
    strv_push(&argv, helper);
    strv_push_take(&argv, xasprintf("%d", (int)target));
    strv_push(&argv, "0");
    strv_push_take(&argv, xasprintf("%u", own));
    strv_push(&argv, "1");
    uint64_t inside = 1;
    for (size_t i = 0; i < n && inside <= UINT32_MAX; i++) {
        uint64_t count = r[i].count;
        if (inside + count - 1 > UINT32_MAX - 1)
            count = UINT32_MAX - inside;
        strv_push_take(&argv, xasprintf("%" PRIu64, inside));
        strv_push_take(&argv, xasprintf("%u", r[i].start));
        strv_push_take(&argv, xasprintf("%" PRIu64, count));
        inside += count;
    }
    return argv;
}

static void describe(struct helper_result *res, const char *helper, int status, const char *out)
{
    if (status < 0)
        snprintf(res->msg, sizeof(res->msg), "%s: %s", helper, strerror(-status));
    else if (WIFEXITED(status))
        snprintf(res->msg, sizeof(res->msg), "%s exited with status %d%s%s", helper,
                 WEXITSTATUS(status), *out ? ": " : "", out);
    else
        snprintf(res->msg, sizeof(res->msg), "%s killed by signal %d", helper,
                 WTERMSIG(status));
}

static int write_proc_map(pid_t pid, const char *which, const char *content, char *msg,
                          size_t size)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, which);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, content, strlen(content)) < 0) {
        snprintf(msg, size, "writing %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

int idmap_helper_start(const struct idmap_helper_opts *o, struct idmap_helper *h,
                       struct kiln_error **err)
{
    int go[2], result[2];
    if (pipe2(go, O_CLOEXEC) < 0)
        return kiln_error_set(err, errno, "pipe");
    if (pipe2(result, O_CLOEXEC) < 0) {
        int e = errno;
        close(go[0]);
        close(go[1]);
        return kiln_error_set(err, e, "pipe");
    }
    /* argv is built before fork: the child only spawns and reports */
    pid_t parent = getpid();
    bool direct = o->uid_map != NULL;
    _cleanup_strv_ char **uargv =
        direct ? NULL : map_argv(o->newuidmap, parent, o->uid, o->uids, o->n_uids);
    _cleanup_strv_ char **gargv =
        direct ? NULL : map_argv(o->newgidmap, parent, o->gid, o->gids, o->n_gids);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(go[0]);
        close(go[1]);
        close(result[0]);
        close(result[1]);
        return kiln_error_set(err, e, "fork");
    }
    if (pid == 0) {
        close(go[1]);
        close(result[0]);
        struct helper_result res;
        memset(&res, 0, sizeof(res));
        char c;
        ssize_t n;
        do {
            n = read(go[0], &c, 1);
        } while (n < 0 && errno == EINTR);
        if (n == 1 && direct) {
            if (write_proc_map(parent, "uid_map", o->uid_map, res.msg, sizeof(res.msg)) == 0) {
                res.uid_done = 1;
                if (write_proc_map(parent, "gid_map", o->gid_map, res.msg, sizeof(res.msg)) == 0)
                    res.ok = 1;
            }
            fs_write_all(result[1], &res, sizeof(res));
        } else if (n == 1) {
            /* Both helpers at once: they write different files of the same
             * process (a millisecond or two each, for every command). */
            struct spawned us, gs;
            spawn_capture(uargv, &us);
            spawn_capture(gargv, &gs);
            char uout[512], gout[512];
            int ust = wait_capture(&us, uout, sizeof(uout));
            int gst = wait_capture(&gs, gout, sizeof(gout));
            /* uid_done: some map was written, so single-ID maps can no
             * longer be (the caller then fails instead of falling back) */
            res.uid_done = exited_ok(ust) || exited_ok(gst);
            if (!exited_ok(ust))
                describe(&res, o->newuidmap, ust, uout);
            else if (!exited_ok(gst))
                describe(&res, o->newgidmap, gst, gout);
            else
                res.ok = 1;
            fs_write_all(result[1], &res, sizeof(res));
        }
        _exit(0);
    }
    close(go[0]);
    close(result[1]);
    h->pid = pid;
    h->go_fd = go[1];
    h->result_fd = result[0];
    return 0;
}

int idmap_helper_run(struct idmap_helper *h, bool *ret_uid_done, struct kiln_error **err)
{
    *ret_uid_done = false;
    struct helper_result res;
    memset(&res, 0, sizeof(res));
    int r = fs_write_all(h->go_fd, "g", 1);
    close(h->go_fd);
    h->go_fd = -1;
    size_t got = 0;
    while (r == 0 && got < sizeof(res)) {
        ssize_t n = read(h->result_fd, (char *)&res + got, sizeof(res) - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(h->result_fd);
    h->result_fd = -1;
    while (waitpid(h->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    h->pid = -1;
    if (r < 0)
        return kiln_error_set(err, -r, "starting newuidmap");
    if (got != sizeof(res))
        return kiln_error_set(err, 0, "the newuidmap helper died");
    res.msg[sizeof(res.msg) - 1] = '\0';
    *ret_uid_done = res.uid_done;
    if (!res.ok)
        return kiln_error_set(err, 0, "%s", res.msg);
    return 0;
}

void idmap_helper_abort(struct idmap_helper *h)
{
    if (h->go_fd >= 0)
        close(h->go_fd);
    if (h->result_fd >= 0)
        close(h->result_fd);
    if (h->pid > 0) {
        while (waitpid(h->pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    h->pid = -1;
    h->go_fd = h->result_fd = -1;
}

/* ---- maps kiln writes ---------------------------------------------------------- */

int idmap_write_self(const char *which, const char *content, struct kiln_error **err)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/%s", which);
    _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return kiln_error_set(err, errno, "opening %s", path);
    ssize_t n = write(fd, content, strlen(content));
    if (n < 0)
        return kiln_error_set(err, errno, "writing '%s' to %s", content, path);
    return 0;
}

int idmap_deny_setgroups(struct kiln_error **err)
{
    _cleanup_close_ int fd = open("/proc/self/setgroups", O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0; /* kernels before 3.19 */
        return kiln_error_set(err, errno, "opening /proc/self/setgroups");
    }
    if (write(fd, "deny", 4) < 0)
        return kiln_error_set(err, errno, "writing 'deny' to /proc/self/setgroups");
    return 0;
}

int idmap_read_current(const char *which, struct subid_range **ret, size_t *ret_n,
                       struct kiln_error **err)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/%s", which);
    _cleanup_free_ char *buf = NULL;
    int r = fs_read_file_at(AT_FDCWD, path, 1 << 16, &buf, NULL);
    if (r < 0)
        return kiln_error_set(err, -r, "reading %s", path);
    struct subid_range *v = NULL;
    size_t n = 0, cap = 0;
    for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        unsigned long inside, outside, count;
        if (sscanf(line, "%lu %lu %lu", &inside, &outside, &count) != 3)
            continue;
        XGROW(v, cap, n + 1);
        v[n++] = (struct subid_range){(uint32_t)inside, (uint32_t)count};
    }
    *ret = v;
    *ret_n = n;
    return 0;
}
