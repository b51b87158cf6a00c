/* Capabilities: Docker's default set, computed with libcap in the parent;
 * applied with plain prctl/capset in the child (libcap allocates). */
#include "runtime/internal.h"

#include <errno.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The capabilities Docker gives a container by default. */
static const char *const docker_default_caps[] = {
    "cap_chown",  "cap_dac_override",     "cap_fsetid",     "cap_fowner",
    "cap_mknod",  "cap_net_raw",          "cap_setgid",     "cap_setuid",
    "cap_setfcap", "cap_setpcap",         "cap_net_bind_service", "cap_sys_chroot",
    "cap_kill",   "cap_audit_write",
};

uint64_t caps_docker_default(void)
{
    uint64_t mask = 0;
    for (size_t i = 0; i < sizeof(docker_default_caps) / sizeof(docker_default_caps[0]); i++) {
        cap_value_t c;
        if (cap_from_name(docker_default_caps[i], &c) == 0 && c >= 0 && c < 64)
            mask |= 1ull << c;
    }
    return mask;
}

int caps_last_cap(void)
{
    static int last = -1;
    if (last >= 0)
        return last;
    FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
    if (f) {
        if (fscanf(f, "%d", &last) != 1)
            last = -1;
        fclose(f);
    }
    if (last < 0 || last > 63)
        last = (int)cap_max_bits() - 1;
    if (last < 0 || last > 63)
        last = CAP_LAST_CAP;
    return last;
}

int caps_drop_bounding(uint64_t keep, int last_cap)
{
    for (int c = 0; c <= last_cap; c++) {
        if (keep & (1ull << c))
            continue;
        if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
            return -errno;
    }
    return 0;
}

int caps_set(uint64_t eff)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof(d));
    d[0].effective = d[0].permitted = (uint32_t)eff;
    d[1].effective = d[1].permitted = (uint32_t)(eff >> 32);
    if (syscall(SYS_capset, &h, d) < 0)
        return -errno;
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        return -errno;
    return 0;
}

int caps_lock_noroot(void)
{
    unsigned long bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
                         SECBIT_NO_SETUID_FIXUP_LOCKED;
    if (prctl(PR_SET_SECUREBITS, bits, 0, 0, 0) < 0)
        return -errno;
    return 0;
}
