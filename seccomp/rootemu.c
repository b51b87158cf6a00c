/* Root emulation for single-ID mode: the filter rules.
 *
 * With only one id mapped, calls that hand files or the process to another
 * id fail (EINVAL/EPERM), and package managers stop there.  As in
 * Charliecloud's root emulation, these calls are made to succeed:
 *
 * - the chown family goes to the supervisor (SECCOMP_RET_USER_NOTIF,
 *   rootemu_notify.c), which records the ownership asked for, so that it
 *   reaches the layer;
 * - setuid/setgid/setre*id/setres*id/setfs*id/setgroups and the matching
 *   get*id/getgroups (and their 32-bit x86/arm variants) go to the
 *   supervisor too, which keeps emulated credentials per process: a process
 *   that drops privileges sees the ids it asked for (apt checks);
 * - mknod/mknodat of a block device, or of a character device other than
 *   0/0, return 0 without creating anything.  0/0 character devices are
 *   overlay whiteouts, which the kernel lets an unprivileged user create:
 *   they are really made. */
#include "seccomp/filter.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

static const char *const notify_calls[] = {
    "chown", "fchown", "lchown", "fchownat", "chown32", "fchown32", "lchown32", NULL,
};

/* credentials: emulated by the supervisor too */
static const char *const cred_calls[] = {
    "setuid",      "setuid32",    "setgid",      "setgid32",    "setreuid",    "setreuid32",
    "setregid",    "setregid32",  "setresuid",   "setresuid32", "setresgid",   "setresgid32",
    "setfsuid",    "setfsuid32",  "setfsgid",    "setfsgid32",  "setgroups",   "setgroups32",
    "getuid",      "getuid32",    "geteuid",     "geteuid32",   "getgid",      "getgid32",
    "getegid",     "getegid32",   "getresuid",   "getresuid32", "getresgid",   "getresgid32",
    "getgroups",   "getgroups32", NULL,
};

bool filter_is_rootemu_syscall(const char *name)
{
    for (size_t i = 0; notify_calls[i]; i++)
        if (strcmp(name, notify_calls[i]) == 0)
            return true;
    for (size_t i = 0; cred_calls[i]; i++)
        if (strcmp(name, cred_calls[i]) == 0)
            return true;
    return strcmp(name, "mknod") == 0 || strcmp(name, "mknodat") == 0;
}

static int add(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned n,
               const struct scmp_arg_cmp *cmp, struct kiln_error **err)
{
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR)
        return 0;
    int r = seccomp_rule_add_array(ctx, action, nr, n, cmp);
    if (r < 0 && r != -EDOM)
        return kiln_error_set(err, -r, "seccomp: root emulation rule for '%s'", name);
    return 0;
}

int filter_add_rootemu(scmp_filter_ctx ctx, struct kiln_error **err)
{
    for (size_t i = 0; notify_calls[i]; i++)
        if (add(ctx, SCMP_ACT_NOTIFY, notify_calls[i], 0, NULL, err) < 0)
            return -1;
    for (size_t i = 0; cred_calls[i]; i++)
        if (add(ctx, SCMP_ACT_NOTIFY, cred_calls[i], 0, NULL, err) < 0)
            return -1;

    /* mknod(path, mode, dev) and mknodat(dirfd, path, mode, dev) */
    static const struct {
        const char *name;
        unsigned mode_arg, dev_arg;
    } mk[] = {{"mknod", 1, 2}, {"mknodat", 2, 3}};
    for (size_t i = 0; i < sizeof(mk) / sizeof(mk[0]); i++) {
        struct scmp_arg_cmp blk = SCMP_CMP(mk[i].mode_arg, SCMP_CMP_MASKED_EQ, S_IFMT, S_IFBLK);
        if (add(ctx, SCMP_ACT_ERRNO(0), mk[i].name, 1, &blk, err) < 0)
            return -1;
        struct scmp_arg_cmp chr[2] = {
            SCMP_CMP(mk[i].mode_arg, SCMP_CMP_MASKED_EQ, S_IFMT, S_IFCHR),
            SCMP_CMP(mk[i].dev_arg, SCMP_CMP_NE, 0, 0),
        };
        if (add(ctx, SCMP_ACT_ERRNO(0), mk[i].name, 2, chr, err) < 0)
            return -1;
    }
    return 0;
}
