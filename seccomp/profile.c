/* The default profile: what Docker's default profile refuses to a container
 * with Docker's default capabilities, expressed as a deny list (EPERM).
 *
 * Docker's profile is an allow list; the calls below are those of the
 * x86_64, x86 and arm tables that it does not allow for the default
 * capability set (CAP_SYS_ADMIN, CAP_SYS_PTRACE, CAP_SYS_TIME, ... are not in
 * it), plus its argument rules: clone/unshare of namespaces, clone3 (ENOSYS
 * so that libc falls back to clone), socket(AF_VSOCK), and personality()
 * other than the values it allows (bpf.c).  One difference is deliberate:
 * calls newer than the profile (added by later kernels) are allowed rather
 * than refused, so that new libcs keep working; the mount-related ones
 * among them are denied by name here. */
#include "seccomp/filter.h"

#include <errno.h>
#include <sched.h>
#include <sys/socket.h>

const char *const filter_default_denied[] = {
    /* kernel keyrings */
    "add_key", "keyctl", "request_key",
    /* loading code into the kernel, replacing or stopping it */
    "bpf", "create_module", "delete_module", "finit_module", "init_module", "query_module",
    "get_kernel_syms", "kexec_file_load", "kexec_load", "reboot",
    /* tracing and profiling the kernel, kernel messages */
    "perf_event_open", "lookup_dcookie", "syslog", "fanotify_init",
    /* memory interfaces used in kernel exploits, NUMA policy (CAP_SYS_NICE) */
    "userfaultfd", "get_mempolicy", "set_mempolicy", "set_mempolicy_home_node", "mbind",
    "migrate_pages", "move_pages",
    /* file handles bypass path permission checks */
    "open_by_handle_at",
    /* mounts and namespaces */
    "mount", "umount", "umount2", "pivot_root", "fsopen", "fsconfig", "fsmount", "fspick",
    "move_mount", "open_tree", "open_tree_attr", "mount_setattr", "setns", "unshare",
    /* host-wide settings: clocks, names, swap, quotas, accounting */
    "clock_settime", "clock_settime64", "settimeofday", "stime",
    "sethostname", "setdomainname", "swapon", "swapoff", "quotactl", "quotactl_fd", "acct",
    "_sysctl", "sysfs", "ustat", "nfsservctl", "vhangup", "uselib", "bdflush",
    /* other processes' memory and files (CAP_SYS_PTRACE) */
    "kcmp", "pidfd_getfd", "process_madvise",
    /* raw I/O ports, vm86 */
    "ioperm", "iopl", "vm86", "vm86old", "idle",
    /* unimplemented or obsolete entry points Docker's profile leaves out */
    "afs_syscall", "getpmsg", "putpmsg", "security", "tuxcall", "vserver", "break", "ftime",
    "gtty", "stty", "lock", "mpx", "prof", "profil", "ulimit", "oldfstat", "oldlstat",
    "oldolduname", "olduname", "oldstat", "readdir", "sgetmask", "ssetmask", "signal",
    "sigaction", "sigpending", "sigsuspend", "nice",
    NULL,
};

/* Namespace flags Docker refuses in clone() without CAP_SYS_ADMIN. */
static const unsigned long clone_ns_flags[] = {
    CLONE_NEWNS,  CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
    CLONE_NEWUSER, CLONE_NEWPID,   CLONE_NEWNET,
};

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

static int rule_add(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned n,
                    const struct scmp_arg_cmp *cmp, struct kiln_error **err)
{
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR)
        return 0; /* unknown to this libseccomp: nothing to deny */
    int r = seccomp_rule_add_array(ctx, action, nr, n, cmp);
    if (r < 0 && r != -EDOM)
        return kiln_error_set(err, -r, "seccomp: rule for '%s'", name);
    return 0;
}

int filter_add_default(scmp_filter_ctx ctx, struct kiln_error **err)
{
    const uint32_t eperm = SCMP_ACT_ERRNO(EPERM);
    for (size_t i = 0; filter_default_denied[i]; i++)
        if (rule_add(ctx, eperm, filter_default_denied[i], 0, NULL, err) < 0)
            return -1;

    /* clone: any namespace flag -> EPERM (one rule per flag, since
     * libseccomp compares one argument once per rule).  s390 swaps the
     * first two arguments. */
#if defined(__s390x__) || defined(__s390__)
    const unsigned clone_flags_arg = 1;
#else
    const unsigned clone_flags_arg = 0;
#endif
    for (size_t i = 0; i < sizeof(clone_ns_flags) / sizeof(clone_ns_flags[0]); i++) {
        struct scmp_arg_cmp c = SCMP_CMP(clone_flags_arg, SCMP_CMP_MASKED_EQ, clone_ns_flags[i],
                                         clone_ns_flags[i]);
        if (rule_add(ctx, eperm, "clone", 1, &c, err) < 0)
            return -1;
    }

    /* clone3 passes its flags in memory, out of the filter's reach: ENOSYS
     * makes libc fall back to clone, which the rules above check. */
    if (rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, NULL, err) < 0)
        return -1;

    struct scmp_arg_cmp vsock = SCMP_CMP(0, SCMP_CMP_EQ, AF_VSOCK, 0);
    if (rule_add(ctx, eperm, "socket", 1, &vsock, err) < 0)
        return -1;
    return 0;
}
