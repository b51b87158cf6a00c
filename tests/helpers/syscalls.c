/* Calls each system call kiln's default seccomp profile denies, and a few
 * that it must allow, each in a child process of its own, and prints one
 * line per call: "NAME ERRNO" (0 when the call succeeded).  Arguments are
 * harmless (NULL, -1, 0), so a call that gets past the filter fails on them
 * with EFAULT, EINVAL, EBADF, ... or on missing capabilities.
 *
 * Usage: syscalls [NAME...]   (no NAME: all of them)
 *        syscalls chown chown|lchown|fchown|fchownat|fchownat-empty PATH UID GID
 *            (ids may be -1; prints "chown ERRNO")
 *        syscalls drop UID GID
 *            drops privileges as apt does and prints what the process then
 *            sees, and whether it can get root back */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

struct call {
    const char *name;
    long nr;
    long a[6];
};

/* Calls denied outright. */
static const struct call denied[] = {
    {"add_key", SYS_add_key, {0}},
    {"keyctl", SYS_keyctl, {-1}},
    {"request_key", SYS_request_key, {0}},
    {"bpf", SYS_bpf, {-1}},
    {"create_module", SYS_create_module, {0}},
    {"delete_module", SYS_delete_module, {0}},
    {"finit_module", SYS_finit_module, {-1}},
    {"init_module", SYS_init_module, {0}},
    {"query_module", SYS_query_module, {0}},
    {"get_kernel_syms", SYS_get_kernel_syms, {0}},
    {"kexec_file_load", SYS_kexec_file_load, {-1, -1}},
    {"kexec_load", SYS_kexec_load, {0}},
    {"reboot", SYS_reboot, {0}},
    {"perf_event_open", SYS_perf_event_open, {0, 0, -1, -1, 0}},
    {"lookup_dcookie", SYS_lookup_dcookie, {0}},
    {"syslog", SYS_syslog, {-1}},
    {"fanotify_init", SYS_fanotify_init, {-1}},
    {"userfaultfd", SYS_userfaultfd, {-1}},
    {"get_mempolicy", SYS_get_mempolicy, {0}},
    {"set_mempolicy", SYS_set_mempolicy, {-1}},
    {"mbind", SYS_mbind, {0, 0, -1}},
    {"migrate_pages", SYS_migrate_pages, {-1}},
    {"move_pages", SYS_move_pages, {-1}},
    {"open_by_handle_at", SYS_open_by_handle_at, {-1}},
    {"mount", SYS_mount, {0}},
    {"umount2", SYS_umount2, {0}},
    {"pivot_root", SYS_pivot_root, {0}},
    {"fsopen", SYS_fsopen, {0}},
    {"fsconfig", SYS_fsconfig, {-1}},
    {"fsmount", SYS_fsmount, {-1}},
    {"fspick", SYS_fspick, {-1}},
    {"move_mount", SYS_move_mount, {-1, 0, -1}},
    {"open_tree", SYS_open_tree, {-1}},
    {"mount_setattr", SYS_mount_setattr, {-1}},
    {"setns", SYS_setns, {-1}},
    {"unshare", SYS_unshare, {0}},
    {"clock_settime", SYS_clock_settime, {-1}},
    {"settimeofday", SYS_settimeofday, {0}},
    {"sethostname", SYS_sethostname, {0}},
    {"setdomainname", SYS_setdomainname, {0}},
    {"swapon", SYS_swapon, {0}},
    {"swapoff", SYS_swapoff, {0}},
    {"quotactl", SYS_quotactl, {0}},
    {"quotactl_fd", SYS_quotactl_fd, {-1}},
    {"acct", SYS_acct, {0}},
    {"_sysctl", SYS__sysctl, {0}},
    {"sysfs", SYS_sysfs, {-1}},
    {"ustat", SYS_ustat, {0}},
    {"nfsservctl", SYS_nfsservctl, {0}},
    {"vhangup", SYS_vhangup, {0}},
    {"uselib", SYS_uselib, {0}},
    {"kcmp", SYS_kcmp, {-1, -1, -1}},
    {"pidfd_getfd", SYS_pidfd_getfd, {-1, -1}},
    {"process_madvise", SYS_process_madvise, {-1}},
    {"ioperm", SYS_ioperm, {0}},
    {"iopl", SYS_iopl, {-1}},
    {"afs_syscall", SYS_afs_syscall, {0}},
    {"getpmsg", SYS_getpmsg, {0}},
    {"putpmsg", SYS_putpmsg, {0}},
    {"security", SYS_security, {0}},
    {"tuxcall", SYS_tuxcall, {0}},
    {"vserver", SYS_vserver, {0}},
    /* denied for their arguments */
    {"clone:newuser", SYS_clone, {CLONE_NEWUSER | SIGCHLD}},
    {"clone:newns", SYS_clone, {CLONE_NEWNS | SIGCHLD}},
    {"clone:newnet", SYS_clone, {CLONE_NEWNET | SIGCHLD}},
    {"unshare:newuser", SYS_unshare, {CLONE_NEWUSER}},
    {"socket:vsock", SYS_socket, {AF_VSOCK, SOCK_STREAM}},
    {"personality:addr_no_randomize", SYS_personality, {ADDR_NO_RANDOMIZE}},
    /* clone3 gets ENOSYS so that libc falls back to clone */
    {"clone3", SYS_clone3, {0, 0}},
    /* pid 1 (kiln's init) has capabilities the payload lacks */
    {"ptrace:attach_init", SYS_ptrace, {PTRACE_ATTACH, 1}},
};

/* Calls that must keep working. */
static const struct call allowed[] = {
    {"personality:query", SYS_personality, {0xffffffff}},
    {"socket:unix", SYS_socket, {AF_UNIX, SOCK_STREAM}},
    {"getpid", SYS_getpid, {0}},
};

static void *thread_main(void *arg)
{
    return arg;
}

static int run_in_child(const struct call *c)
{
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        long r = syscall(c->nr, c->a[0], c->a[1], c->a[2], c->a[3], c->a[4], c->a[5]);
        if (r == 0 && c->nr == SYS_clone)
            _exit(0); /* the clone child, if the call went through */
        _exit(r < 0 ? (errno & 0xff) : 0);
    }
    int st;
    if (waitpid(pid, &st, 0) < 0)
        return -errno;
    if (WIFSIGNALED(st))
        return 1000 + WTERMSIG(st);
    return WEXITSTATUS(st);
}

static int wanted(int argc, char **argv, const char *name)
{
    if (argc < 2)
        return 1;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return 1;
    return 0;
}

/* The chown family with explicit ids, -1 included (busybox's chown fills
 * in the ids it is not given). */
static int do_chown(const char *how, const char *path, long uid, long gid)
{
    int r;
    if (strcmp(how, "chown") == 0) {
        r = chown(path, (uid_t)uid, (gid_t)gid);
    } else if (strcmp(how, "lchown") == 0) {
        r = lchown(path, (uid_t)uid, (gid_t)gid);
    } else if (strcmp(how, "fchown") == 0) {
        int fd = open(path, O_RDONLY | O_NONBLOCK);
        if (fd < 0)
            return errno;
        r = fchown(fd, (uid_t)uid, (gid_t)gid);
    } else if (strcmp(how, "fchownat") == 0) {
        /* relative to the directory of path */
        char dir[4096];
        snprintf(dir, sizeof(dir), "%s", path);
        char *slash = strrchr(dir, '/');
        const char *name = path;
        if (slash) {
            *slash = '\0';
            name = slash + 1;
        }
        int dfd = open(slash ? (dir[0] ? dir : "/") : ".", O_RDONLY | O_DIRECTORY);
        if (dfd < 0)
            return errno;
        r = fchownat(dfd, name, (uid_t)uid, (gid_t)gid, AT_SYMLINK_NOFOLLOW);
    } else if (strcmp(how, "fchownat-empty") == 0) {
        int fd = open(path, O_PATH | O_NOFOLLOW);
        if (fd < 0)
            return errno;
        r = fchownat(fd, "", (uid_t)uid, (gid_t)gid, AT_EMPTY_PATH);
    } else {
        return EINVAL;
    }
    return r < 0 ? errno : 0;
}

static void drop(uid_t uid, gid_t gid)
{
    gid_t g[1] = {gid};
    int r1 = setgroups(1, g), r2 = setresgid(gid, gid, gid), r3 = setresuid(uid, uid, uid);
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    getresuid(&ru, &eu, &su);
    getresgid(&rg, &eg, &sg);
    gid_t list[8];
    int n = getgroups(8, list);
    printf("drop %d %d %d uid=%u,%u,%u,%u,%u gid=%u,%u,%u,%u,%u groups=%d:%u\n", r1, r2, r3,
           (unsigned)getuid(), (unsigned)geteuid(), (unsigned)ru, (unsigned)eu, (unsigned)su,
           (unsigned)getgid(), (unsigned)getegid(), (unsigned)rg, (unsigned)eg, (unsigned)sg, n,
           n > 0 ? (unsigned)list[0] : 0);
    int back_u = setuid(0) < 0 ? errno : 0;
    int back_eu = seteuid(0) < 0 ? errno : 0;
    int back_g = setgid(0) < 0 ? errno : 0;
    printf("regain %d %d %d\n", back_u, back_eu, back_g);
    /* a child inherits the dropped ids */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        printf("child uid=%u gid=%u\n", (unsigned)getuid(), (unsigned)getgid());
        exit(0);
    }
    waitpid(pid, NULL, 0);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 4 && strcmp(argv[1], "drop") == 0) {
        drop((uid_t)atol(argv[2]), (gid_t)atol(argv[3]));
        return 0;
    }
    if (argc == 6 && strcmp(argv[1], "chown") == 0) {
        printf("chown %d\n", do_chown(argv[2], argv[3], atol(argv[4]), atol(argv[5])));
        return 0;
    }
    for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++)
        if (wanted(argc, argv, denied[i].name))
            printf("%s %d\n", denied[i].name, run_in_child(&denied[i]));
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
        if (wanted(argc, argv, allowed[i].name))
            printf("%s %d\n", allowed[i].name, run_in_child(&allowed[i]));
    if (wanted(argc, argv, "fork")) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(0);
        int st = 0;
        printf("fork %d\n", pid < 0 ? errno : waitpid(pid, &st, 0) == pid ? WEXITSTATUS(st) : 1);
    }
    if (wanted(argc, argv, "thread")) {
        pthread_t t;
        int r = pthread_create(&t, NULL, thread_main, NULL);
        if (r == 0)
            pthread_join(t, NULL);
        printf("thread %d\n", r);
    }
    return 0;
}
