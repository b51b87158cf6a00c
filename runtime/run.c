/* runtime_run, the parent side: prepares everything the child needs (mount
 * points, the plan, the compiled filter), clones into new mount, pid, uts,
 * ipc (and net) namespaces, relays a pty when asked, waits, and cleans up.
 * SIGINT/SIGTERM/SIGHUP kill the container (SIGKILL to its pid 1 takes the
 * whole pid namespace, and with it every mount) and make runtime_run return
 * with status 128+N. */
#include "runtime/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "runtime/internal.h"

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif

/* ---- signals ---------------------------------------------------------------- */

static volatile sig_atomic_t g_signal;
static volatile sig_atomic_t g_winch;
static int g_sigpipe[2] = {-1, -1};

/* run_spec.forward_signals: the container's init (it passes them to the
 * command), while one runs; how many were passed on.  After FORWARD_MAX
 * the container is killed: a command that ignores them cannot hold kiln
 * forever. */
static volatile sig_atomic_t g_forward_pid;
static volatile sig_atomic_t g_forwarded;
#define FORWARD_MAX 3

static void on_signal(int sig)
{
    int saved = errno;
    pid_t fwd = (pid_t)g_forward_pid;
    if (sig == SIGWINCH) {
        g_winch = 1;
    } else if (fwd > 0 && ++g_forwarded < FORWARD_MAX) {
        kill(fwd, sig);
    } else {
        if (fwd > 0)
            kill(fwd, SIGKILL);
        if (!g_signal)
            g_signal = sig;
    }
    if (g_sigpipe[1] >= 0) {
        ssize_t n = write(g_sigpipe[1], "s", 1);
        (void)n;
    }
    errno = saved;
}

void runtime_install_signal_handlers(void)
{
    if (g_sigpipe[0] < 0 && pipe2(g_sigpipe, O_CLOEXEC | O_NONBLOCK) < 0)
        g_sigpipe[0] = g_sigpipe[1] = -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGWINCH, &sa, NULL);
}

int runtime_interrupted(void)
{
    return g_signal;
}

void runtime_interrupt_reset(void)
{
    g_signal = 0;
    char buf[64];
    if (g_sigpipe[0] >= 0)
        while (read(g_sigpipe[0], buf, sizeof(buf)) > 0)
            ;
}

static int interrupted_error(struct kiln_error **err)
{
    int sig = g_signal;
    return kiln_error_set_status(err, 128 + sig, 0, "interrupted by SIG%s", sigabbrev_np(sig)
                                                                         ? sigabbrev_np(sig)
                                                                         : "a signal");
}

/* ---- filters ------------------------------------------------------------------ */

/* The default and unconfined filters depend only on whether root emulation
 * is on: compile each once per process. */
static pthread_mutex_t g_filter_lock = PTHREAD_MUTEX_INITIALIZER;
static struct filter_prog *g_filters[2][2]; /* [mode == DEFAULT][rootemu] */
static bool g_filter_built[2][2];

static int get_filter(const struct run_spec *spec, bool rootemu, struct filter_prog **ret,
                      bool *ret_owned, struct kiln_error **err)
{
    struct filter_opts o = {.mode = spec->seccomp,
                            .profile_path = spec->seccomp_profile,
                            .rootemu = rootemu,
                            .caps = caps_docker_default()};
    if (spec->seccomp == SECCOMP_PROFILE) {
        *ret_owned = true;
        return filter_build(&o, ret, err);
    }
    *ret_owned = false;
    int i = spec->seccomp == SECCOMP_DEFAULT, j = rootemu;
    int r = 0;
    pthread_mutex_lock(&g_filter_lock);
    if (!g_filter_built[i][j]) {
        r = filter_build(&o, &g_filters[i][j], err);
        g_filter_built[i][j] = r == 0;
    }
    *ret = g_filters[i][j];
    pthread_mutex_unlock(&g_filter_lock);
    return r;
}

/* ---- the plan ---------------------------------------------------------------- */

/* Where kiln's argv and environ strings are (fields 48 to 51 of
 * /proc/self/stat), read once. */
static pthread_once_t g_area_once = PTHREAD_ONCE_INIT;
static uintptr_t g_area[4];

static void read_args_area(void)
{
    _cleanup_free_ char *buf = NULL;
    if (fs_read_file_at(AT_FDCWD, "/proc/self/stat", 1 << 16, &buf, NULL) < 0)
        return;
    /* fields after the command name, which may hold spaces and ')' */
    char *s = strrchr(buf, ')');
    for (int field = 2; s && field < 48; field++)
        s = strchr(s + 1, ' ');
    unsigned long long v[4];
    if (s && sscanf(s, " %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3]) == 4 && v[0] < v[1] &&
        v[2] < v[3])
        for (int i = 0; i < 4; i++)
            g_area[i] = (uintptr_t)v[i];
}

static const char *env_get(char *const *env, const char *key)
{
    size_t n = strlen(key);
    for (size_t i = 0; env && env[i]; i++)
        if (strncmp(env[i], key, n) == 0 && env[i][n] == '=')
            return env[i] + n + 1;
    return NULL;
}

static const char *strip_slashes(const char *p)
{
    while (*p == '/')
        p++;
    return p;
}

static int add_mounts(struct run_plan *p, const struct run_spec *spec, int rootfd,
                      struct stubs *stubs, struct kiln_error **err)
{
    size_t n = spec->n_mounts + 2;
    p->mounts = xcalloc(n, sizeof(*p->mounts));
    const struct {
        const char *source, *target;
    } files[] = {{spec->hosts_file, "etc/hosts"}, {spec->resolv_file, "etc/resolv.conf"}};
    for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
        if (!files[i].source)
            continue;
        bool usable;
        if (stubs_ensure(rootfd, files[i].target, false, stubs, &usable, err) < 0)
            return kiln_error_wrap(err, "/%s", files[i].target);
        if (!usable) {
            log_debug("/%s is a dangling symlink in the image: not bound", files[i].target);
            continue;
        }
        struct plan_mount *m = &p->mounts[p->n_mounts++];
        m->kind = PM_BIND;
        m->source = xstrdup(files[i].source);
        m->target = xstrdup(files[i].target);
        m->readonly = true;
    }
    for (size_t i = 0; i < spec->n_mounts; i++) {
        const struct run_mount *rm = &spec->mounts[i];
        if (!rm->target || rm->target[0] != '/')
            return kiln_error_set(err, 0, "mount target '%s' is not an absolute path",
                                  rm->target ? rm->target : "");
        struct plan_mount *m = &p->mounts[p->n_mounts++];
        m->target = xstrdup(strip_slashes(rm->target));
        m->readonly = rm->readonly;
        bool dir = true;
        if (rm->type == RUN_MOUNT_BIND) {
            struct stat st;
            if (!rm->source || stat(rm->source, &st) < 0)
                return kiln_error_set(err, rm->source ? errno : EINVAL, "bind source '%s'",
                                      rm->source ? rm->source : "");
            dir = S_ISDIR(st.st_mode);
            m->kind = PM_BIND;
            m->source = xstrdup(rm->source);
            m->recursive = true;
        } else {
            m->kind = PM_TMPFS;
            int len;
            if (rm->tmpfs_size)
                len = snprintf(m->data, sizeof(m->data), "mode=%o,size=%llu",
                               rm->tmpfs_mode ? (unsigned)rm->tmpfs_mode : 01777u,
                               (unsigned long long)rm->tmpfs_size);
            else
                len = snprintf(m->data, sizeof(m->data), "mode=%o",
                               rm->tmpfs_mode ? (unsigned)rm->tmpfs_mode : 01777u);
            if (len < 0 || (size_t)len >= sizeof(m->data))
                return kiln_error_set(err, 0, "tmpfs options too long");
        }
        bool usable;
        if (stubs_ensure(rootfd, m->target, dir, stubs, &usable, err) < 0)
            return -1;
        if (!usable)
            return kiln_error_set(err, 0, "mount target '%s' is a dangling symlink", rm->target);
    }
    return 0;
}

/* ---- the wait, with a pty relay -------------------------------------------------- */

struct relay {
    int master;
    int in, out;
    bool in_open;
};

static void copy_winsize(int from, int to)
{
    struct winsize ws;
    if (from >= 0 && to >= 0 && ioctl(from, TIOCGWINSZ, &ws) == 0)
        ioctl(to, TIOCSWINSZ, &ws);
}

/* Moves what is available from one descriptor to another; false at EOF. */
static bool pump(int from, int to)
{
    char buf[8192];
    ssize_t n = read(from, buf, sizeof(buf));
    if (n < 0)
        return errno == EAGAIN || errno == EINTR;
    if (n == 0)
        return false;
    fs_write_all(to, buf, (size_t)n);
    return true;
}

struct wait_state {
    int sync_fd;
    int cancel_fd; /* run_spec.cancel_fd, or -1 */
    bool have_error;
    struct sync_msg error;
    bool killed;
};

static void handle_sync(struct wait_state *w, struct relay *rl)
{
    struct sync_msg m;
    int fd = -1;
    int r = sync_recv(w->sync_fd, &m, &fd);
    if (r <= 0) {
        if (r != -EAGAIN) {
            close(w->sync_fd);
            w->sync_fd = -1;
        }
        return;
    }
    if (m.type == SYNC_ERROR && !w->have_error) {
        w->error = m;
        w->have_error = true;
    } else if (m.type == SYNC_PTY && fd >= 0 && rl->master < 0) {
        rl->master = fd;
        fd = -1;
        fcntl(rl->master, F_SETFL, fcntl(rl->master, F_GETFL) | O_NONBLOCK);
        copy_winsize(rl->in, rl->master);
    }
    if (fd >= 0)
        close(fd);
}

static int wait_child(pid_t pid, int pidfd, struct wait_state *w, struct relay *rl)
{
    bool exited = false;
    while (!exited) {
        struct pollfd fds[6];
        int n = 0, i_pid = -1, i_sync = -1, i_sig = -1, i_master = -1, i_in = -1;
        fds[i_pid = n++] = (struct pollfd){.fd = pidfd, .events = POLLIN};
        if (w->sync_fd >= 0)
            fds[i_sync = n++] = (struct pollfd){.fd = w->sync_fd, .events = POLLIN};
        if (g_sigpipe[0] >= 0)
            fds[i_sig = n++] = (struct pollfd){.fd = g_sigpipe[0], .events = POLLIN};
        if (rl->master >= 0)
            fds[i_master = n++] = (struct pollfd){.fd = rl->master, .events = POLLIN};
        if (rl->master >= 0 && rl->in_open)
            fds[i_in = n++] = (struct pollfd){.fd = rl->in, .events = POLLIN};
        int i_cancel = -1;
        if (w->cancel_fd >= 0 && !w->killed)
            fds[i_cancel = n++] = (struct pollfd){.fd = w->cancel_fd, .events = POLLIN};
        if (poll(fds, (nfds_t)n, -1) < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        /* once interrupted, the pipe stays readable: every thread waiting
         * for a container (parallel stages) must see it, not just the one
         * that would drain it first */
        if (i_sig >= 0 && fds[i_sig].revents && !g_signal) {
            char buf[64];
            while (read(g_sigpipe[0], buf, sizeof(buf)) > 0)
                ;
        }
        if (i_cancel >= 0 && fds[i_cancel].revents && !w->killed) {
            kill(pid, SIGKILL);
            w->killed = true;
        }
        if (g_signal && !w->killed) {
            /* pid 1 dies, and the kernel kills the rest of its pid namespace */
            kill(pid, SIGKILL);
            w->killed = true;
        }
        if (g_winch) {
            g_winch = 0;
            copy_winsize(rl->in, rl->master);
        }
        if (i_sync >= 0 && fds[i_sync].revents)
            handle_sync(w, rl);
        if (i_master >= 0 && fds[i_master].revents && !pump(rl->master, rl->out)) {
            close(rl->master);
            rl->master = -1;
        }
        if (i_in >= 0 && fds[i_in].revents && rl->master >= 0 && !pump(rl->in, rl->master)) {
            /* end of input: an end-of-file character for the terminal */
            fs_write_all(rl->master, "\x04", 1);
            rl->in_open = false;
        }
        if (fds[i_pid].revents)
            exited = true;
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return -errno;
    }
    /* everything the container wrote is in the socket and the pty by now */
    if (w->sync_fd >= 0) {
        fcntl(w->sync_fd, F_SETFL, fcntl(w->sync_fd, F_GETFL) | O_NONBLOCK);
        while (w->sync_fd >= 0) {
            struct sync_msg m;
            int fd = -1;
            int r = sync_recv(w->sync_fd, &m, &fd);
            if (fd >= 0)
                close(fd);
            if (r <= 0)
                break;
            if (m.type == SYNC_ERROR && !w->have_error) {
                w->error = m;
                w->have_error = true;
            }
        }
    }
    while (rl->master >= 0 && pump(rl->master, rl->out)) {
        struct pollfd pf = {.fd = rl->master, .events = POLLIN};
        if (poll(&pf, 1, 0) <= 0)
            break;
    }
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return KILN_EXIT_RUN_FAILED;
}

/* ---- runtime_run ----------------------------------------------------------------- */

int runtime_run(const struct run_spec *spec, int *ret_status, struct kiln_error **err)
{
    const struct userns_info *ns = userns_current();
    if (!ns)
        return kiln_error_set_status(err, KILN_EXIT_RUN_FAILED, 0,
                                     "runtime: not in kiln's user namespace (userns_enter)");
    if (!spec->rootfs || !spec->argv || !spec->argv[0] || !spec->argv[0][0])
        return kiln_error_set_status(err, KILN_EXIT_RUN_FAILED, 0, "runtime: no command");
    if (spec->cwd && spec->cwd[0] != '/')
        return kiln_error_set_status(err, KILN_EXIT_RUN_FAILED, 0,
                                     "working directory '%s' is not absolute", spec->cwd);
    if (g_signal)
        return interrupted_error(err);

    int r = -1;
    struct stubs stubs = {0};
    struct run_plan p;
    memset(&p, 0, sizeof(p));
    p.emu.listener = p.emu.procfd = p.emu.owner_log_fd = -1;
    p.sync_fd = -1;
    bool filter_owned = false;
    _cleanup_close_ int rootfd = -1;
    _cleanup_close_ int sync_parent = -1;
    _cleanup_close_ int pidfd = -1;
    _cleanup_strv_ char **argv_copy = NULL, **env_copy = NULL;
    _cleanup_free_ char *rootfs_copy = NULL, *cwd_copy = NULL, *hostname_copy = NULL;
    struct termios saved_tio;
    bool tio_saved = false;
    struct relay rl = {.master = -1, .in = -1, .out = -1};

    rootfd = open(spec->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) {
        kiln_error_set_status(err, KILN_EXIT_RUN_FAILED, errno, "rootfs '%s'", spec->rootfs);
        goto out;
    }
    /* Mount points the image lacks; removed again afterwards. */
    static const char *const base_dirs[] = {"proc", "dev", "sys"};
    for (size_t i = 0; i < ARRAY_SIZE(base_dirs); i++) {
        bool usable;
        if (stubs_ensure(rootfd, base_dirs[i], true, &stubs, &usable, err) < 0)
            goto fail_setup;
        if (!usable) {
            kiln_error_set(err, 0, "/%s is a dangling symlink in the image", base_dirs[i]);
            goto fail_setup;
        }
    }
    if (add_mounts(&p, spec, rootfd, &stubs, err) < 0)
        goto fail_setup;

    /* copies: the child wipes kiln's argv/environ area (see run_plan) */
    rootfs_copy = xstrdup(spec->rootfs);
    argv_copy = strv_copy(spec->argv);
    cwd_copy = xstrdup(spec->cwd ? spec->cwd : "/");
    hostname_copy = xstrdup(spec->hostname && *spec->hostname ? spec->hostname : "kiln");
    env_copy = runtime_env_defaults(spec->env, "/", hostname_copy, spec->tty);
    p.rootfs = rootfs_copy;
    p.argv = argv_copy;
    p.envp = env_copy;
    p.path_env = env_get(p.envp, "PATH");
    p.cwd = cwd_copy;
    p.hostname = hostname_copy;
    p.uid = spec->uid;
    p.gid = spec->gid;
    p.groups = spec->groups;
    p.n_groups = spec->n_groups;
    p.single = ns->mode == USERNS_SINGLE;
    p.netns = spec->network == NET_NONE;
    p.tty = spec->tty;
    p.cap_keep = caps_docker_default();
    p.cap_last = caps_last_cap();
    pthread_once(&g_area_once, read_args_area);
    p.arg_start = g_area[0];
    p.arg_end = g_area[1];
    p.env_start = g_area[2];
    p.env_end = g_area[3];
    p.ulimits = spec->ulimits;
    p.n_ulimits = spec->n_ulimits;
    p.stdin_fd = spec->stdin_fd;
    p.stdout_fd = spec->stdout_fd;
    p.stderr_fd = spec->stderr_fd;
    if (p.single && (spec->gid != 0 || spec->n_groups))
        log_debug("single-ID mode: USER group %u and supplementary groups are emulated",
                  (unsigned)spec->gid);
    /* gid 5 (tty) owns ptys when it is mapped, as in Docker */
    snprintf(p.devpts_opts, sizeof(p.devpts_opts), "newinstance,ptmxmode=0666,mode=0620%s",
             ns->gid_count > 5 ? ",gid=5" : "");
    snprintf(p.shm_opts, sizeof(p.shm_opts), "mode=1777,size=%llu",
             (unsigned long long)(spec->shm_size ? spec->shm_size : 64ull << 20));

    if (get_filter(spec, p.single, &p.filter, &filter_owned, err) < 0)
        goto fail_setup;
    if (p.single) {
        if (rootemu_prepare(&p.emu, err) < 0)
            goto fail_setup;
        p.use_emu = true;
        if (spec->owner_log) {
            p.emu.owner_log_fd =
                open(spec->owner_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
            if (p.emu.owner_log_fd < 0) {
                kiln_error_set(err, errno, "owner log '%s'", spec->owner_log);
                goto fail_setup;
            }
        }
    }

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        kiln_error_set(err, errno, "socketpair");
        goto fail_setup;
    }
    sync_parent = sv[0];
    p.sync_fd = sv[1];

    if (spec->tty) {
        rl.in = spec->stdin_fd;
        rl.in_open = rl.in >= 0;
        rl.out = spec->stdout_fd >= 0 ? spec->stdout_fd : STDOUT_FILENO;
        if (rl.in >= 0 && isatty(rl.in) && tcgetattr(rl.in, &saved_tio) == 0) {
            struct termios raw = saved_tio;
            cfmakeraw(&raw);
            tio_saved = tcsetattr(rl.in, TCSANOW, &raw) == 0;
        }
    }

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    unsigned long flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_PIDFD |
                          SIGCHLD | (p.netns ? CLONE_NEWNET : 0);
#if defined(__s390x__) || defined(__s390__)
    pid_t pid = (pid_t)syscall(SYS_clone, 0, flags, &pidfd, NULL, 0);
#else
    pid_t pid = (pid_t)syscall(SYS_clone, flags, 0, &pidfd, NULL, 0);
#endif
    if (pid < 0) {
        kiln_error_set(err, errno, "clone");
        goto fail_setup;
    }
    if (pid == 0)
        child_main(&p);
    if (spec->forward_signals) {
        /* from now on the command answers SIGINT/SIGTERM/SIGHUP (kiln run);
         * one that came before still kills the container */
        g_forwarded = 0;
        if (!g_signal)
            g_forward_pid = pid;
    }

    close(p.sync_fd);
    p.sync_fd = -1;
    struct wait_state w = {.sync_fd = TAKE_FD(sync_parent),
                           .cancel_fd = spec->cancel_fd > 0 ? spec->cancel_fd : -1};
    int status = wait_child(pid, pidfd, &w, &rl);
    g_forward_pid = 0;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    log_debug("runtime: container of '%s' done (status %d) in %.2f ms", p.argv[0], status,
              (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    if (w.sync_fd >= 0)
        close(w.sync_fd);
    if (status < 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        kiln_error_set(err, -status, "waiting for the container");
        goto fail_setup;
    }
    if (w.killed) {
        interrupted_error(err);
        goto out;
    }
    if (w.have_error) {
        kiln_error_set_status(err, w.error.status ? w.error.status : KILN_EXIT_RUN_FAILED,
                              w.error.code, "%s", w.error.text);
        goto out;
    }
    *ret_status = status;
    r = 0;
    goto out;

fail_setup:
    if (err && *err && !(*err)->status)
        (*err)->status = KILN_EXIT_RUN_FAILED;
out:
    if (tio_saved)
        tcsetattr(rl.in, TCSANOW, &saved_tio);
    if (rl.master >= 0)
        close(rl.master);
    if (p.sync_fd >= 0)
        close(p.sync_fd);
    stubs_remove(&stubs);
    for (size_t i = 0; i < p.n_mounts; i++) {
        free(p.mounts[i].source);
        free(p.mounts[i].target);
    }
    free(p.mounts);
    if (filter_owned)
        filter_prog_free(p.filter);
    if (p.emu.owner_log_fd >= 0)
        close(p.emu.owner_log_fd);
    rootemu_release(&p.emu);
    return r;
}
