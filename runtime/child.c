/* The child setup sequence.  The cloned child becomes pid 1 of the new pid
 * namespace: it sets up the mounts, pivots, and forks the payload, then
 * stays as the init (init.c).  The payload drops privileges, loads the
 * seccomp filter and execs.
 *
 * Both run in a raw clone of kiln, which may have had other threads: only
 * plain syscalls here, no allocation, no stdio.  Errors go to the parent
 * over the sync socket as (errno, exit status, message). */
#include "runtime/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime/safe.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

struct child_io {
    int in, out, err; /* descriptors to become 0, 1, 2 (-1: keep) */
    int pty_slave;    /* -1 without a tty */
};

static _Noreturn void die(struct run_plan *p, int status, const char *what, const char *arg)
{
    sync_error(p->sync_fd, errno, status, what, arg);
    _exit(status);
}

static pid_t raw_fork(void)
{
#if defined(__s390x__) || defined(__s390__)
    return (pid_t)syscall(SYS_clone, 0, SIGCHLD, NULL, NULL, 0);
#else
    return (pid_t)syscall(SYS_clone, SIGCHLD, 0, NULL, NULL, 0);
#endif
}

static int loopback_up(void)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    memcpy(ifr.ifr_name, "lo", 3);
    int r = ioctl(s, SIOCGIFFLAGS, &ifr);
    if (r == 0) {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        r = ioctl(s, SIOCSIFFLAGS, &ifr);
    }
    int e = errno;
    close(s);
    errno = e;
    return r;
}

/* mkdir -p inside the container (after pivot_root). */
static int mkdir_p(const char *path)
{
    char buf[4096];
    struct sbuf b;
    sb_init(&b, buf, sizeof(buf));
    if (path[0] != '/')
        sb_chr(&b, '/');
    sb_str(&b, path);
    if (b.truncated) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *s = buf + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return -1;
        *s = c;
        if (c == '\0')
            break;
    }
    struct stat st;
    if (stat(buf, &st) < 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

/* ---- the payload: privileges, filter, exec ---------------------------------- */

static _Noreturn void exec_payload(struct run_plan *p)
{
    const char *file = p->argv[0];
    bool has_slash = false;
    for (const char *s = file; *s; s++)
        has_slash |= *s == '/';
    if (has_slash) {
        execve(file, p->argv, p->envp);
        die(p, errno == ENOENT ? KILN_EXIT_NOT_FOUND : KILN_EXIT_NOT_EXEC, "exec", file);
    }
    const char *path = p->path_env ? p->path_env : RUNTIME_DEFAULT_PATH;
    bool eacces = false;
    for (const char *seg = path;;) {
        const char *end = seg;
        while (*end && *end != ':')
            end++;
        char buf[4096];
        struct sbuf b;
        sb_init(&b, buf, sizeof(buf));
        if (end == seg)
            sb_chr(&b, '.');
        else
            sb_mem(&b, seg, (size_t)(end - seg));
        sb_chr(&b, '/');
        sb_str(&b, file);
        if (!b.truncated) {
            execve(buf, p->argv, p->envp);
            switch (errno) {
            case EACCES:
                eacces = true;
                break;
            case ENOENT:
            case ENOTDIR:
            case ESTALE:
            case ENODEV:
            case ETIMEDOUT:
            case ELOOP:
            case ENAMETOOLONG:
                break;
            default:
                die(p, KILN_EXIT_NOT_EXEC, "exec", buf);
            }
        }
        if (!*end)
            break;
        seg = end + 1;
    }
    if (eacces) {
        errno = EACCES;
        die(p, KILN_EXIT_NOT_EXEC, "exec", file);
    }
    struct sync_msg m;
    memset(&m, 0, sizeof(m));
    m.type = SYNC_ERROR;
    m.status = KILN_EXIT_NOT_FOUND;
    struct sbuf b;
    sb_init(&b, m.text, sizeof(m.text));
    sb_str(&b, "exec: '");
    sb_str(&b, file);
    sb_str(&b, "': executable file not found in $PATH");
    sync_send(p->sync_fd, &m, -1);
    _exit(KILN_EXIT_NOT_FOUND);
}

static _Noreturn void payload_main(struct run_plan *p, const struct child_io *io, int emu_sock)
{
    /* Signals back to normal: init blocked and caught them. */
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    for (size_t i = 0; init_forwarded_signals[i]; i++)
        signal(init_forwarded_signals[i], SIG_DFL);
    signal(SIGPIPE, SIG_DFL);

    /* Standard streams; with a tty, a session of its own that owns it. */
    if (io->pty_slave >= 0) {
        if (setsid() < 0 || ioctl(io->pty_slave, TIOCSCTTY, 0) < 0)
            die(p, KILN_EXIT_RUN_FAILED, "making the pty the controlling terminal", NULL);
        for (int i = 0; i < 3; i++)
            if (dup2(io->pty_slave, i) < 0)
                die(p, KILN_EXIT_RUN_FAILED, "dup2", NULL);
    }
    const int src[3] = {io->in, io->out, io->err};
    for (int i = 0; i < 3; i++)
        if (src[i] >= 0 && dup2(src[i], i) < 0)
            die(p, KILN_EXIT_RUN_FAILED, "dup2", NULL);

    if (chdir(p->cwd) < 0)
        die(p, KILN_EXIT_RUN_FAILED, "chdir", p->cwd);
    umask(022);
    for (size_t i = 0; i < p->n_ulimits; i++) {
        struct rlimit rl = {(rlim_t)p->ulimits[i].soft, (rlim_t)p->ulimits[i].hard};
        if (setrlimit(p->ulimits[i].resource, &rl) < 0)
            die(p, KILN_EXIT_RUN_FAILED, "setrlimit", NULL);
    }

    /* Capabilities: bounding set to Docker's default list, then the ids of
     * USER, then the effective set (none for a non-root USER).  With one id
     * mapped, a non-root USER keeps uid 0 but no capability, and exec may
     * not give them back. */
    if (caps_drop_bounding(p->cap_keep, p->cap_last) < 0)
        die(p, KILN_EXIT_RUN_FAILED, "dropping capabilities from the bounding set", NULL);
    bool root = p->uid == 0;
    if (p->single) {
        if (!root && caps_lock_noroot() < 0)
            die(p, KILN_EXIT_RUN_FAILED, "setting securebits", NULL);
    } else {
        /* Raw system calls: the libc wrappers broadcast to the threads the
         * parent had (setxid), which do not exist in this child: a hang. */
        if (syscall(SYS_setgroups, p->n_groups, p->groups) < 0)
            die(p, KILN_EXIT_RUN_FAILED, "setgroups", NULL);
        if (syscall(SYS_setresgid, p->gid, p->gid, p->gid) < 0)
            die(p, KILN_EXIT_RUN_FAILED, "setting the group id (not mapped?)", NULL);
        if (syscall(SYS_setresuid, p->uid, p->uid, p->uid) < 0)
            die(p, KILN_EXIT_RUN_FAILED, "setting the user id (not mapped?)", NULL);
    }
    if (caps_set(root ? p->cap_keep : 0) < 0)
        die(p, KILN_EXIT_RUN_FAILED, "capset", NULL);

    /* no_new_privs: exec cannot gain privileges, and the filter loads
     * without CAP_SYS_ADMIN. */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        die(p, KILN_EXIT_RUN_FAILED, "setting no_new_privs", NULL);

    /* Stray descriptors must not reach the payload. */
    syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);

    /* seccomp last, so that the filter need not allow the setup calls. */
    if (p->filter) {
        struct sock_fprog prog = {.len = p->filter->len, .filter = p->filter->insns};
        unsigned flags = p->filter->notify ? SECCOMP_FILTER_FLAG_NEW_LISTENER : 0;
        int fd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
        if (fd < 0)
            die(p, KILN_EXIT_RUN_FAILED, "loading the seccomp filter", NULL);
        if (p->filter->notify) {
            if (fd_send(emu_sock, fd) < 0)
                die(p, KILN_EXIT_RUN_FAILED, "passing the seccomp listener to init", NULL);
            close(fd);
        }
    }
    if (emu_sock >= 0)
        close(emu_sock);
    exec_payload(p);
}

/* ---- the container's init ------------------------------------------------------- */

static void init_nop_handler(int sig)
{
    (void)sig;
}

/* Closes every descriptor but those in keep (-1 entries ignored). */
static void close_all_but(int *keep, size_t n)
{
    /* sort the few entries (insertion sort: no allocation in the child) */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
            int t = keep[j];
            keep[j] = keep[j - 1];
            keep[j - 1] = t;
        }
    unsigned int next = 0;
    for (size_t i = 0; i < n; i++) {
        if (keep[i] < 0 || (unsigned int)keep[i] < next)
            continue;
        if ((unsigned int)keep[i] > next)
            syscall(SYS_close_range, next, (unsigned int)keep[i] - 1, 0);
        next = (unsigned int)keep[i] + 1;
    }
    syscall(SYS_close_range, next, ~0U, 0);
}

/* A copy of fd at 3 or above, so that dup2 onto 0..2 cannot clobber it. */
static int high_fd(int fd)
{
    return fd < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

_Noreturn void child_main(struct run_plan *p)
{
    /* Die with kiln; and if kiln died before that took effect, stop now
     * (its end of the sync socket is then closed). */
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    struct pollfd pf = {.fd = p->sync_fd, .events = POLLIN};
    if (poll(&pf, 1, 0) > 0 && (pf.revents & (POLLHUP | POLLERR | POLLIN)))
        _exit(KILN_EXIT_RUN_FAILED);

    /* The container can read /proc/1/cmdline: kiln's command line and
     * environment (build args, tokens) must not be there. */
    if (p->arg_end > p->arg_start) {
        static const char name[] = "kiln-init";
        size_t len = p->arg_end - p->arg_start;
        memset((void *)p->arg_start, 0, len);
        memcpy((void *)p->arg_start, name, len > sizeof(name) ? sizeof(name) - 1 : len - 1);
    }
    if (p->env_end > p->env_start)
        memset((void *)p->env_start, 0, p->env_end - p->env_start);
    prctl(PR_SET_NAME, "kiln-init", 0, 0, 0);

    /* A session of its own: the container has no controlling terminal. */
    setsid();

    /* Mounts, then pivot_root (mounts.c). */
    if (mounts_setup(p) < 0)
        _exit(KILN_EXIT_RUN_FAILED);

    if (sethostname(p->hostname, safe_strlen(p->hostname)) < 0)
        die(p, KILN_EXIT_RUN_FAILED, "sethostname", p->hostname);
    if (p->netns && loopback_up() < 0)
        die(p, KILN_EXIT_RUN_FAILED, "bringing up the loopback interface", NULL);
    if (mkdir_p(p->cwd) < 0)
        die(p, KILN_EXIT_RUN_FAILED, "creating the working directory", p->cwd);

    /* Root emulation needs the container's /proc and the mount id of /. */
    if (p->use_emu) {
        p->emu.procfd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
        struct statx stx;
        if (p->emu.procfd < 0 || statx(AT_FDCWD, "/", 0, STATX_MNT_ID, &stx) < 0)
            die(p, KILN_EXIT_RUN_FAILED, "preparing root emulation", NULL);
        p->emu.root_mnt_id = stx.stx_mnt_id;
        /* in our own pid namespace, init is "self" = 1 */
        char self[16];
        ssize_t n = readlinkat(p->emu.procfd, "self", self, sizeof(self) - 1);
        p->emu.foreign_proc = !(n == 1 && self[0] == '1');
    }

    struct child_io io = {high_fd(p->stdin_fd), high_fd(p->stdout_fd), high_fd(p->stderr_fd), -1};
    if (p->stdin_fd < 0 && !p->tty) {
        io.in = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (io.in < 0)
            die(p, KILN_EXIT_RUN_FAILED, "opening", "/dev/null");
    }
    if (p->tty) {
        /* The pty comes from the container's devpts; kiln relays the master. */
        int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
        int unlock = 0;
        if (master < 0 || ioctl(master, TIOCSPTLCK, &unlock) < 0)
            die(p, KILN_EXIT_RUN_FAILED, "allocating a pty", NULL);
        io.pty_slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (io.pty_slave < 0)
            die(p, KILN_EXIT_RUN_FAILED, "opening the pty", NULL);
        struct sync_msg m;
        memset(&m, 0, sizeof(m));
        m.type = SYNC_PTY;
        if (sync_send(p->sync_fd, &m, master) < 0)
            die(p, KILN_EXIT_RUN_FAILED, "passing the pty to kiln", NULL);
        close(master);
        if (io.in >= 0 || io.out >= 0 || io.err >= 0) {
            /* the pty carries all three streams */
            if (io.in >= 0)
                close(io.in);
            if (io.out >= 0)
                close(io.out);
            if (io.err >= 0)
                close(io.err);
            io.in = io.out = io.err = -1;
        }
    }

    int emu_socks[2] = {-1, -1};
    if (p->filter && p->filter->notify &&
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, emu_socks) < 0)
        die(p, KILN_EXIT_RUN_FAILED, "socketpair", NULL);

    /* As pid 1, init only receives signals it has a handler for: catch the
     * forwarded ones (and SIGCHLD) through a signalfd. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = init_nop_handler;
    for (size_t i = 0; init_forwarded_signals[i]; i++) {
        sigaddset(&set, init_forwarded_signals[i]);
        sigaction(init_forwarded_signals[i], &sa, NULL);
    }
    signal(SIGPIPE, SIG_IGN);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int sigfd = signalfd(-1, &set, SFD_CLOEXEC);
    if (sigfd < 0)
        die(p, KILN_EXIT_RUN_FAILED, "signalfd", NULL);

    pid_t pid = raw_fork();
    if (pid < 0)
        die(p, KILN_EXIT_RUN_FAILED, "fork", NULL);
    if (pid == 0) {
        close(sigfd);
        if (emu_socks[0] >= 0)
            close(emu_socks[0]);
        payload_main(p, &io, emu_socks[1]);
    }

    if (io.in >= 0)
        close(io.in);
    if (io.out >= 0)
        close(io.out);
    if (io.err >= 0)
        close(io.err);
    if (io.pty_slave >= 0)
        close(io.pty_slave);
    /* A non-root USER with one id mapped: the payload starts with emulated
     * ids (it really runs as the one mapped id, without capabilities). */
    if (p->use_emu && (p->uid != 0 || p->gid != 0 || p->n_groups))
        rootemu_seed(&p->emu, pid, p->uid, p->gid, (const uint32_t *)p->groups, p->n_groups);
    if (emu_socks[0] >= 0) {
        close(emu_socks[1]);
        /* The payload sends the listener just before exec; if it fails
         * earlier the socket closes and there is nothing to serve. */
        p->emu.listener = fd_recv(emu_socks[0]);
        close(emu_socks[0]);
    }
    /* init never execs: without this it would keep, for the container's
     * life, every descriptor kiln had open when it cloned, among them other
     * threads' (parallel build steps): output pipes whose readers then wait
     * for EOF, cache-mount locks that other steps wait for. */
    int keep[] = {0, 1, 2, p->sync_fd, sigfd, p->emu.listener, p->emu.procfd,
                  p->emu.owner_log_fd};
    close_all_but(keep, sizeof(keep) / sizeof(keep[0]));
    init_loop(p, pid, sigfd);
}
