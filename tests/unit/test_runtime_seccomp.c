/* seccomp/: the default profile, root emulation's rules and Docker's JSON
 * profile format.  Each filter is loaded for real (no_new_privs, no
 * namespace needed) in a child process that then makes calls. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "runtime/internal.h"
#include "seccomp/filter.h"

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

static char g_dir[] = "/tmp/kiln-test-seccomp-XXXXXX";

/* A call's errno (0 when it succeeded). */
static int err_of(long r)
{
    return r < 0 ? errno : 0;
}

/* Runs fn in a child under the filter; returns fn's result (0 = all good,
 * else the number of the first failed expectation), or 200+ on trouble. */
static int under_filter(const struct filter_prog *p, int (*fn)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return 201;
    if (pid == 0) {
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
            _exit(202);
        if (p) {
            struct sock_fprog prog = {.len = p->len, .filter = p->insns};
            int fd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                                  p->notify ? SECCOMP_FILTER_FLAG_NEW_LISTENER : 0, &prog);
            if (fd < 0)
                _exit(203);
            if (p->notify)
                close(fd); /* no supervisor: notified calls fail with ENOSYS */
        }
        _exit(fn());
    }
    int st;
    if (waitpid(pid, &st, 0) < 0)
        return 204;
    if (WIFSIGNALED(st))
        return 210 + WTERMSIG(st);
    return WEXITSTATUS(st);
}

#define EXPECT(n, cond)                                                                            \
    do {                                                                                           \
        if (!(cond))                                                                               \
            return (n);                                                                            \
    } while (0)

static void *thread_main(void *arg)
{
    return arg;
}

static int calls_default(void)
{
    EXPECT(1, err_of(syscall(SYS_keyctl, 0, 0, 0, 0, 0)) == EPERM);
    EXPECT(2, err_of(syscall(SYS_add_key, 0, 0, 0, 0, 0)) == EPERM);
    EXPECT(3, err_of(syscall(SYS_bpf, 0, 0, 0)) == EPERM);
    EXPECT(4, err_of(syscall(SYS_perf_event_open, 0, 0, -1, -1, 0)) == EPERM);
    EXPECT(5, err_of(syscall(SYS_userfaultfd, 0)) == EPERM);
    EXPECT(6, err_of(syscall(SYS_unshare, CLONE_NEWUSER)) == EPERM);
    EXPECT(7, err_of(syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0)) == EPERM);
    EXPECT(8, err_of(syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0)) == EPERM);
    EXPECT(9, err_of(syscall(SYS_clone3, NULL, 0)) == ENOSYS);
    EXPECT(10, err_of(socket(AF_VSOCK, SOCK_STREAM, 0)) == EPERM);
    EXPECT(11, err_of(syscall(SYS_personality, ADDR_NO_RANDOMIZE)) == EPERM);
    EXPECT(12, err_of(syscall(SYS_personality, 0xffffffffUL)) == 0);
    EXPECT(13, err_of(syscall(SYS_personality, 0x1ffffffffUL)) == EPERM);
    EXPECT(14, err_of(syscall(SYS_mount, 0, 0, 0, 0, 0)) == EPERM);
    EXPECT(15, err_of(syscall(SYS_open_by_handle_at, -1, 0, 0)) == EPERM);
    EXPECT(16, err_of(syscall(SYS_kexec_load, 0, 0, 0, 0)) == EPERM);
    EXPECT(17, err_of(syscall(SYS_init_module, 0, 0, 0)) == EPERM);
    EXPECT(18, err_of(syscall(SYS_request_key, 0, 0, 0, 0)) == EPERM);
    /* what must keep working */
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT(30, s >= 0);
    close(s);
    pid_t pid = fork();
    if (pid == 0)
        _exit(7);
    int st = 0;
    EXPECT(31, pid > 0 && waitpid(pid, &st, 0) == pid && WEXITSTATUS(st) == 7);
    pthread_t t;
    EXPECT(32, pthread_create(&t, NULL, thread_main, NULL) == 0 && pthread_join(t, NULL) == 0);
    EXPECT(33, err_of(syscall(SYS_personality, 0)) == 0);
    EXPECT(34, syscall(SYS_getpid) == getpid());
    return 0;
}

TEST(default_profile)
{
    struct filter_opts o = {.mode = SECCOMP_DEFAULT, .caps = caps_docker_default()};
    struct filter_prog *p = NULL;
    struct kiln_error *err = NULL;
    CHECK_INT_EQ(filter_build(&o, &p, &err), 0);
    CHECK(p && p->len > 100 && !p->notify);
    if (p)
        CHECK_INT_EQ(under_filter(p, calls_default), 0);
    filter_prog_free(p);
    /* without a filter the same calls are not all EPERM: the test can fail */
    CHECK(under_filter(NULL, calls_default) != 0);
}

static char g_path[512];

static int calls_rootemu(void)
{
    /* the credential calls go to the supervisor (none here: ENOSYS) */
    EXPECT(1, err_of(syscall(SYS_setuid, 4242)) == ENOSYS);
    EXPECT(2, err_of(syscall(SYS_getuid)) == ENOSYS);
    EXPECT(3, err_of(syscall(SYS_setresuid, 1, 2, 3)) == ENOSYS);
    EXPECT(4, err_of(syscall(SYS_setgroups, 0, NULL)) == ENOSYS);
    EXPECT(5, err_of(syscall(SYS_getgroups, 0, NULL)) == ENOSYS);
    char p[600];
    snprintf(p, sizeof(p), "%s/chr", g_path);
    EXPECT(6, mknod(p, S_IFCHR | 0600, makedev(1, 3)) == 0 && access(p, F_OK) < 0);
    snprintf(p, sizeof(p), "%s/blk", g_path);
    EXPECT(7, mknod(p, S_IFBLK | 0600, makedev(8, 0)) == 0 && access(p, F_OK) < 0);
    /* a whiteout is really made */
    snprintf(p, sizeof(p), "%s/wh", g_path);
    struct stat st;
    EXPECT(8, mknod(p, S_IFCHR | 0600, makedev(0, 0)) == 0 && lstat(p, &st) == 0 &&
                  S_ISCHR(st.st_mode) && st.st_rdev == 0);
    snprintf(p, sizeof(p), "%s/fifo", g_path);
    EXPECT(9, mknod(p, S_IFIFO | 0600, 0) == 0 && lstat(p, &st) == 0 && S_ISFIFO(st.st_mode));
    /* chown goes to the supervisor; with none, ENOSYS */
    EXPECT(10, err_of(chown(p, 1, 1)) == ENOSYS);
    /* the default profile is still there */
    EXPECT(11, err_of(syscall(SYS_keyctl, 0, 0, 0, 0, 0)) == EPERM);
    return 0;
}

TEST(rootemu_rules)
{
    snprintf(g_path, sizeof(g_path), "%s/rootemu", g_dir);
    CHECK_INT_EQ(mkdir(g_path, 0755), 0);
    struct filter_opts o = {
        .mode = SECCOMP_DEFAULT, .rootemu = true, .caps = caps_docker_default()};
    struct filter_prog *p = NULL;
    struct kiln_error *err = NULL;
    CHECK_INT_EQ(filter_build(&o, &p, &err), 0);
    CHECK(p && p->notify);
    if (p)
        CHECK_INT_EQ(under_filter(p, calls_rootemu), 0);
    filter_prog_free(p);

    /* unconfined: no filter, unless root emulation needs one */
    o.mode = SECCOMP_UNCONFINED;
    o.rootemu = false;
    CHECK_INT_EQ(filter_build(&o, &p, &err), 0);
    CHECK(p == NULL);
    o.rootemu = true;
    CHECK_INT_EQ(filter_build(&o, &p, &err), 0);
    CHECK(p && p->notify);
    filter_prog_free(p);
}

/* ---- Docker JSON profiles ------------------------------------------------------ */

static struct filter_prog *profile(const char *json, bool rootemu, struct kiln_error **err)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/profile.json", g_dir);
    if (fs_write_atomic_at(AT_FDCWD, path, json, strlen(json), 0644, false) < 0)
        return NULL;
    struct filter_opts o = {.mode = SECCOMP_PROFILE,
                            .profile_path = path,
                            .rootemu = rootemu,
                            .caps = caps_docker_default()};
    struct filter_prog *p = NULL;
    if (filter_build(&o, &p, err) < 0)
        return NULL;
    return p;
}

static int calls_profile_deny(void)
{
    char p[600];
    snprintf(p, sizeof(p), "%s/nodir", g_path);
    EXPECT(1, err_of(mkdir(p, 0755)) == EACCES);
    EXPECT(2, err_of(syscall(SYS_getppid)) == 0);
    return 0;
}

static int calls_profile_allowlist(void)
{
    EXPECT(1, syscall(SYS_getpid) > 0);
    EXPECT(2, err_of(syscall(SYS_getppid)) == EPERM);
    EXPECT(3, err_of(syscall(SYS_mkdirat, AT_FDCWD, "/nonexistent/x", 0)) == EPERM);
    return 0;
}

static int calls_profile_args(void)
{
    EXPECT(1, err_of(syscall(SYS_personality, 0xffffffffUL)) == 0);
    EXPECT(2, err_of(syscall(SYS_personality, 0x0040000UL)) == EINVAL);
    /* two conditions on one argument: either matches */
    EXPECT(3, err_of(syscall(SYS_dup, 100)) == EXDEV);
    EXPECT(4, err_of(syscall(SYS_dup, 101)) == EXDEV);
    EXPECT(5, err_of(syscall(SYS_dup, 102)) == EBADF);
    /* masked: clone with CLONE_NEWUSER refused, fork allowed */
    EXPECT(6, err_of(syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0)) == EPERM);
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    EXPECT(7, pid > 0 && waitpid(pid, NULL, 0) == pid);
    /* includes.caps CAP_SYS_ADMIN (not ours): not applied; excludes: applied */
    EXPECT(8, err_of(syscall(SYS_getppid)) == 0);
    EXPECT(9, err_of(syscall(SYS_getpgid, 0)) == ENOEXEC);
    return 0;
}

static int calls_profile_rootemu(void)
{
    EXPECT(1, err_of(syscall(SYS_setuid, 4242)) == ENOSYS); /* notified, not denied */
    EXPECT(2, err_of(syscall(SYS_getppid)) == EPERM);
    return 0;
}

TEST(docker_profile)
{
    snprintf(g_path, sizeof(g_path), "%s/profile", g_dir);
    CHECK_INT_EQ(mkdir(g_path, 0755), 0);
    struct kiln_error *err = NULL;

    struct filter_prog *p = profile(
        "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"mkdir\", "
        "\"mkdirat\", \"no_such_call\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 13}]}",
        false, &err);
    CHECK(p != NULL);
    if (p)
        CHECK_INT_EQ(under_filter(p, calls_profile_deny), 0);
    filter_prog_free(p);
    kiln_error_free(&err);

    /* an allow list, as Docker's own profile is */
    p = profile("{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"defaultErrnoRet\": 1,\n"
                " \"archMap\": [{\"architecture\": \"SCMP_ARCH_X86_64\", \"subArchitectures\": "
                "[\"SCMP_ARCH_X86\", \"SCMP_ARCH_X32\"]},\n"
                "   {\"architecture\": \"SCMP_ARCH_AARCH64\", \"subArchitectures\": "
                "[\"SCMP_ARCH_ARM\"]}],\n"
                " \"syscalls\": [{\"names\": [\"exit\", \"exit_group\", \"getpid\", \"write\", "
                "\"rt_sigreturn\", \"mmap\", \"munmap\", \"mprotect\", \"madvise\", "
                "\"brk\", \"rt_sigaction\", \"rt_sigprocmask\", \"sigaltstack\", "
                "\"futex\", \"gettid\", \"prlimit64\", \"openat\", \"read\", \"close\", "
                "\"readlink\", \"newfstatat\", \"fstat\", \"lseek\", \"sched_yield\"], "
                "\"action\": \"SCMP_ACT_ALLOW\", \"comment\": \"minimal (ASan's runtime "
                "needs some of these)\"}]}",
                false, &err);
    CHECK(p != NULL);
    if (p)
        CHECK_INT_EQ(under_filter(p, calls_profile_allowlist), 0);
    filter_prog_free(p);
    kiln_error_free(&err);

    p = profile(
        "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": [\"SCMP_ARCH_X86_64\", "
        "\"SCMP_ARCH_X86\", \"SCMP_ARCH_AARCH64\", \"SCMP_ARCH_UNKNOWNARCH\"], \"syscalls\": [\n"
        " {\"names\": [\"personality\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 22,\n"
        "  \"args\": [{\"index\": 0, \"value\": 262144, \"valueTwo\": 0, \"op\": "
        "\"SCMP_CMP_EQ\"}]},\n"
        " {\"names\": [\"dup\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 18,\n"
        "  \"args\": [{\"index\": 0, \"value\": 100, \"op\": \"SCMP_CMP_EQ\"}, {\"index\": 0, "
        "\"value\": 101, \"op\": \"SCMP_CMP_EQ\"}]},\n"
        " {\"names\": [\"clone\"], \"action\": \"SCMP_ACT_ERRNO\",\n"
        "  \"args\": [{\"index\": 0, \"value\": 268435456, \"valueTwo\": 268435456, \"op\": "
        "\"SCMP_CMP_MASKED_EQ\"}]},\n"
        " {\"names\": [\"getppid\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 8, "
        "\"includes\": {\"caps\": [\"CAP_SYS_ADMIN\"]}},\n"
        " {\"names\": [\"getpgid\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 8, "
        "\"excludes\": {\"caps\": [\"CAP_SYS_ADMIN\"], \"arches\": [\"s390x\"], "
        "\"minKernel\": \"99.0\"}},\n"
        " {\"names\": [\"getsid\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 8, "
        "\"args\": [{\"index\": 0, \"value\": 18446744073709551615, \"op\": \"SCMP_CMP_EQ\"}]}"
        "]}",
        false, &err);
    CHECK(p != NULL);
    if (!p)
        H_FAIL("%s", err ? err->msg : "?");
    if (p)
        CHECK_INT_EQ(under_filter(p, calls_profile_args), 0);
    filter_prog_free(p);
    kiln_error_free(&err);

    /* root emulation takes precedence for its calls */
    p = profile("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": "
                "[\"setuid\", \"getppid\"], \"action\": \"SCMP_ACT_ERRNO\"}]}",
                true, &err);
    CHECK(p && p->notify);
    if (p)
        CHECK_INT_EQ(under_filter(p, calls_profile_rootemu), 0);
    filter_prog_free(p);
    kiln_error_free(&err);
}

struct bad_profile {
    const char *json;
    const char *error; /* a substring of the message */
};

static const struct bad_profile bad_profiles[] = {
    {"", "invalid JSON"},
    {"[]", "not a JSON object"},
    {"{\"defaultAction\": 1}", "missing action"},
    {"{\"defaultAction\": \"SCMP_ACT_MAYBE\"}", "unknown action 'SCMP_ACT_MAYBE'"},
    {"{\"defaultAction\": \"SCMP_ACT_NOTIFY\"}", "not supported"},
    {"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"listenerPath\": \"/run/agent.sock\"}",
     "listenerPath"},
    {"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"defaultErrnoRet\": 5000}", "defaultErrnoRet"},
    {"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": {}}", "'syscalls' must be an array"},
    {"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [1]}", "syscalls[0]: not an object"},
    {"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"action\": \"SCMP_ACT_ERRNO\"}]}",
     "syscalls[0]: no 'names'"},
    {"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\", 7], "
     "\"action\": \"SCMP_ACT_ERRNO\"}]}",
     "names[1] is not a string"},
    {"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], "
     "\"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": -1}]}",
     "errnoRet"},
    {"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], "
     "\"action\": \"SCMP_ACT_ERRNO\", \"args\": [{\"index\": 6, \"value\": 1, \"op\": "
     "\"SCMP_CMP_EQ\"}]}]}",
     "index must be 0 to 5"},
    {"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], "
     "\"action\": \"SCMP_ACT_ERRNO\", \"args\": [{\"index\": 0, \"value\": 1, \"op\": "
     "\"SCMP_CMP_ABOUT\"}]}]}",
     "unknown op 'SCMP_CMP_ABOUT'"},
    {"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], "
     "\"action\": \"SCMP_ACT_ERRNO\", \"args\": [{\"index\": 0, \"value\": -5, \"op\": "
     "\"SCMP_CMP_EQ\"}]}]}",
     "bad value"},
    {"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": [\"SCMP_ARCH_X86_64\"], "
     "\"archMap\": [{\"architecture\": \"SCMP_ARCH_X86_64\"}]}",
     "use one"},
    {"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]}",
     "nested deeper"},
};

TEST(docker_profile_errors)
{
    for (size_t i = 0; i < ARRAY_SIZE(bad_profiles); i++) {
        struct kiln_error *err = NULL;
        struct filter_prog *p = profile(bad_profiles[i].json, false, &err);
        char name[32];
        snprintf(name, sizeof(name), "bad profile %zu", i);
        const char *msg = err ? err->msg : NULL;
        harness_case(name, p == NULL && msg && strstr(msg, bad_profiles[i].error), msg);
        filter_prog_free(p);
        kiln_error_free(&err);
    }
    /* a missing file, and one that is too large */
    struct filter_opts o = {.mode = SECCOMP_PROFILE, .profile_path = "/nonexistent/profile.json"};
    struct filter_prog *p = NULL;
    struct kiln_error *err = NULL;
    CHECK_INT_EQ(filter_build(&o, &p, &err), -1);
    CHECK(err && err->code == ENOENT && strstr(err->msg, "/nonexistent/profile.json"));
    kiln_error_free(&err);
    char big[600];
    snprintf(big, sizeof(big), "%s/big.json", g_dir);
    size_t n = FILTER_PROFILE_MAX + 10;
    char *buf = xmalloc(n);
    memset(buf, ' ', n);
    buf[0] = '{';
    buf[n - 1] = '}';
    CHECK_INT_EQ(fs_write_atomic_at(AT_FDCWD, big, buf, n, 0644, false), 0);
    free(buf);
    o.profile_path = big;
    CHECK_INT_EQ(filter_build(&o, &p, &err), -1);
    CHECK(err && strstr(err->msg, "larger than"));
    kiln_error_free(&err);
}

TEST(default_denied_names_known)
{
    /* every name the default profile denies is known to libseccomp on at
     * least one of our architectures, or it would silently do nothing */
    uint32_t arches[4];
    size_t n = filter_arches(arches);
    for (size_t i = 0; filter_default_denied[i]; i++) {
        bool known = false;
        for (size_t a = 0; a < n; a++)
            known |= seccomp_syscall_resolve_name_arch(arches[a], filter_default_denied[i]) >= 0;
        char name[64];
        snprintf(name, sizeof(name), "denied name %s", filter_default_denied[i]);
        harness_case(name, known || strcmp(filter_default_denied[i], "open_tree_attr") == 0,
                     "unknown to libseccomp");
    }
}

int main(void)
{
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(default_profile);
    RUN(rootemu_rules);
    RUN(docker_profile);
    RUN(docker_profile_errors);
    RUN(default_denied_names_known);
    fs_rm_rf(g_dir);
    return harness_done();
}
