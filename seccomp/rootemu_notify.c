/* The root-emulation supervisor (see rootemu.h).  rootemu_serve runs in the
 * container's init, a raw clone of kiln: plain syscalls only, no allocation. */
#include "seccomp/rootemu.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "lib/xalloc.h"
#include "runtime/safe.h"

#define OWNER_XATTR "user.kiln.owner"

/* ---- parent side ----------------------------------------------------------- */

static void add_call(struct rootemu *e, uint32_t scmp_arch, const char *name, uint8_t op,
                     bool ids16)
{
    int nr = seccomp_syscall_resolve_name_arch(scmp_arch, name);
    if (nr < 0 || e->n_calls == sizeof(e->calls) / sizeof(e->calls[0]))
        return;
    /* x32 reports AUDIT_ARCH_X86_64 with the x32 bit in the number */
    uint32_t arch = scmp_arch == SCMP_ARCH_X32 ? SCMP_ARCH_X86_64 : scmp_arch;
    e->calls[e->n_calls++] = (struct rootemu_call){arch, nr, op, ids16};
}

int rootemu_prepare(struct rootemu *e, struct kiln_error **err)
{
    memset(e, 0, sizeof(*e));
    e->listener = e->procfd = e->owner_log_fd = -1;

    uint32_t arches[] = {seccomp_arch_native(), SCMP_ARCH_X86, SCMP_ARCH_X32, SCMP_ARCH_ARM};
    size_t n_arches = seccomp_arch_native() == SCMP_ARCH_X86_64    ? 3
                      : seccomp_arch_native() == SCMP_ARCH_AARCH64 ? 1
                                                                   : 1;
    if (seccomp_arch_native() == SCMP_ARCH_AARCH64)
        arches[n_arches++] = SCMP_ARCH_ARM;
    for (size_t i = 0; i < n_arches; i++) {
        /* On x86 and arm the calls without "32" take 16-bit ids. */
        bool legacy16 = arches[i] == SCMP_ARCH_X86 || arches[i] == SCMP_ARCH_ARM;
        add_call(e, arches[i], "chown", EMU_CHOWN, legacy16);
        add_call(e, arches[i], "lchown", EMU_LCHOWN, legacy16);
        add_call(e, arches[i], "fchown", EMU_FCHOWN, legacy16);
        add_call(e, arches[i], "chown32", EMU_CHOWN, false);
        add_call(e, arches[i], "lchown32", EMU_LCHOWN, false);
        add_call(e, arches[i], "fchown32", EMU_FCHOWN, false);
        add_call(e, arches[i], "fchownat", EMU_FCHOWNAT, false);
        static const struct {
            const char *name;
            uint8_t op;
        } cred[] = {
            {"setuid", EMU_SETUID},       {"setgid", EMU_SETGID},
            {"setreuid", EMU_SETREUID},   {"setregid", EMU_SETREGID},
            {"setresuid", EMU_SETRESUID}, {"setresgid", EMU_SETRESGID},
            {"setfsuid", EMU_SETFSUID},   {"setfsgid", EMU_SETFSGID},
            {"setgroups", EMU_SETGROUPS}, {"getuid", EMU_GETUID},
            {"geteuid", EMU_GETEUID},     {"getgid", EMU_GETGID},
            {"getegid", EMU_GETEGID},     {"getresuid", EMU_GETRESUID},
            {"getresgid", EMU_GETRESGID}, {"getgroups", EMU_GETGROUPS},
        };
        for (size_t j = 0; j < sizeof(cred) / sizeof(cred[0]); j++) {
            char name32[32];
            snprintf(name32, sizeof(name32), "%s32", cred[j].name);
            add_call(e, arches[i], cred[j].name, cred[j].op, legacy16);
            add_call(e, arches[i], name32, cred[j].op, false);
        }
    }
    e->creds = xcalloc(EMU_MAX_PROCS, sizeof(*e->creds));

    struct seccomp_notif_sizes sizes;
    if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) < 0)
        return kiln_error_set(err, errno, "seccomp: user notification sizes");
    e->req_size = sizes.seccomp_notif > sizeof(*e->req) ? sizes.seccomp_notif : sizeof(*e->req);
    e->resp_size = sizes.seccomp_notif_resp > sizeof(*e->resp) ? sizes.seccomp_notif_resp
                                                                 : sizeof(*e->resp);
    e->req = xcalloc(1, e->req_size);
    e->resp = xcalloc(1, e->resp_size);
    return 0;
}

void rootemu_release(struct rootemu *e)
{
    free(e->req);
    free(e->resp);
    free(e->creds);
    e->creds = NULL;
    e->req = NULL;
    e->resp = NULL;
}

/* ---- child side ------------------------------------------------------------ */

struct chown_args {
    uint8_t op;
    int dirfd;     /* AT_FDCWD or a descriptor of the caller */
    uint64_t addr; /* path in the caller's memory; 0 for fchown */
    uint32_t uid, gid; /* (uint32_t)-1 = unchanged */
    bool nofollow, empty_path;
};

static const struct rootemu_call *find_call(const struct rootemu *e, uint32_t arch, int nr)
{
    for (size_t i = 0; i < e->n_calls; i++)
        if (e->calls[i].arch == arch && e->calls[i].nr == nr)
            return &e->calls[i];
    return NULL;
}

static uint32_t id_arg(uint64_t v, bool ids16)
{
    if (ids16)
        return (v & 0xffff) == 0xffff ? (uint32_t)-1 : (uint32_t)(v & 0xffff);
    return (uint32_t)v;
}

/* "PID/rest" relative to procfd */
static void proc_path(struct sbuf *b, char *buf, size_t size, pid_t pid, const char *rest,
                      int num)
{
    sb_init(b, buf, size);
    sb_u64(b, (uint64_t)pid);
    sb_str(b, rest);
    if (num >= 0)
        sb_u64(b, (uint64_t)num);
}

/* The caller's pid as procfd numbers it.  With a /proc of our own pid
 * namespace it is the notification's; with an outer one, the pidfd's
 * fdinfo tells (it shows the pid in the namespace of the /proc read). */
static pid_t proc_pid(const struct rootemu *e, pid_t pid)
{
    if (!e->foreign_proc)
        return pid;
    int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pfd < 0)
        return -1;
    char path[64], buf[2048];
    struct sbuf b;
    sb_init(&b, path, sizeof(path));
    sb_str(&b, "self/fdinfo/");
    sb_u64(&b, (uint64_t)pfd);
    int fd = openat(e->procfd, path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
    if (fd >= 0)
        close(fd);
    close(pfd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    const char *s = strstr(buf, "\nPid:\t");
    uint32_t v;
    if (!s || !safe_parse_u32(s + 6, NULL, &v) || v == 0 || v > INT32_MAX)
        return -1;
    return (pid_t)v;
}

/* Reads a NUL-terminated string from the caller's memory, page by page so
 * that a string ending just before an unmapped page is still read. */
static int read_string(int procfd, pid_t pid, uint64_t addr, char *buf, size_t size)
{
    char p[64];
    struct sbuf b;
    proc_path(&b, p, sizeof(p), pid, "/mem", -1);
    int fd = openat(procfd, p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t len = 0;
    int r = -ENAMETOOLONG;
    while (len + 1 < size) {
        uint64_t off = addr + len;
        size_t chunk = 4096 - (size_t)(off % 4096);
        if (chunk > size - 1 - len)
            chunk = size - 1 - len;
        ssize_t n = pread(fd, buf + len, chunk, (off_t)off);
        if (n <= 0) {
            r = -EFAULT;
            break;
        }
        char *nul = memchr(buf + len, '\0', (size_t)n);
        len += (size_t)n;
        if (nul) {
            r = 0;
            break;
        }
    }
    close(fd);
    buf[size - 1] = '\0';
    return r;
}

struct proc_info {
    int32_t tgid, ppid;
    uint64_t capeff;
};

static bool field_u32(const char *buf, const char *key, uint32_t *ret)
{
    const char *s = strstr(buf, key);
    if (!s)
        return false;
    s += strlen(key);
    while (*s == ' ' || *s == '\t')
        s++;
    return safe_parse_u32(s, NULL, ret);
}

/* Tgid, PPid and CapEff from /proc/PID/status. */
static int read_status(int procfd, pid_t pid, struct proc_info *ret)
{
    char p[64], buf[4096];
    struct sbuf b;
    proc_path(&b, p, sizeof(p), pid, "/status", -1);
    int fd = openat(procfd, p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t len = 0;
    ssize_t n;
    while (len < sizeof(buf) - 1 && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
        len += (size_t)n;
    close(fd);
    buf[len] = '\0';
    uint32_t tgid, ppid;
    if (!field_u32(buf, "\nTgid:", &tgid) || !field_u32(buf, "\nPPid:", &ppid))
        return -EINVAL;
    ret->tgid = (int32_t)tgid;
    ret->ppid = (int32_t)ppid;
    const char *s = strstr(buf, "\nCapEff:");
    if (!s)
        return -EINVAL;
    s += 8;
    while (*s == ' ' || *s == '\t')
        s++;
    uint64_t v = 0;
    for (; *s && *s != '\n'; s++) {
        int d = *s >= '0' && *s <= '9'   ? *s - '0'
                : *s >= 'a' && *s <= 'f' ? *s - 'a' + 10
                                         : -1;
        if (d < 0)
            return -EINVAL;
        v = v << 4 | (uint64_t)d;
    }
    ret->capeff = v;
    return 0;
}

/* The start time (field 22 of /proc/PID/stat): with the pid, it names a
 * process for good. */
static int read_start(int procfd, pid_t pid, uint64_t *ret)
{
    char p[64], buf[1024];
    struct sbuf b;
    proc_path(&b, p, sizeof(p), pid, "/stat", -1);
    int fd = openat(procfd, p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -EINVAL;
    buf[n] = '\0';
    char *s = strrchr(buf, ')');
    if (!s)
        return -EINVAL;
    /* after ") " come fields 3, 4, ...: skip to field 22 */
    for (int field = 3; field < 22; field++) {
        s = strchr(s + 1, ' ');
        if (!s)
            return -EINVAL;
    }
    uint64_t v = 0;
    for (s++; *s >= '0' && *s <= '9'; s++)
        v = v * 10 + (uint64_t)(*s - '0');
    *ret = v;
    return 0;
}

static int write_mem(int procfd, pid_t pid, uint64_t addr, const void *data, size_t len)
{
    char p[64];
    struct sbuf b;
    proc_path(&b, p, sizeof(p), pid, "/mem", -1);
    int fd = openat(procfd, p, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = pwrite(fd, data, len, (off_t)addr);
    close(fd);
    return n == (ssize_t)len ? 0 : -EFAULT;
}

static int read_mem(int procfd, pid_t pid, uint64_t addr, void *data, size_t len)
{
    char p[64];
    struct sbuf b;
    proc_path(&b, p, sizeof(p), pid, "/mem", -1);
    int fd = openat(procfd, p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = pread(fd, data, len, (off_t)addr);
    close(fd);
    return n == (ssize_t)len ? 0 : -EFAULT;
}

/* ---- emulated credentials ----------------------------------------------------- */

enum { R = 0, E = 1, S = 2, FS = 3 };
#define KEEP ((uint32_t)-1)

static struct emu_creds *creds_find(struct rootemu *e, int32_t tgid, uint64_t start)
{
    for (size_t i = 0; i < e->n_creds; i++)
        if (e->creds[i].tgid == tgid && e->creds[i].start == start)
            return &e->creds[i];
    return NULL;
}

/* Forgets processes that are gone. */
static void creds_gc(struct rootemu *e)
{
    for (size_t i = 0; i < e->n_creds;) {
        uint64_t start;
        if (read_start(e->procfd, e->creds[i].tgid, &start) < 0 || start != e->creds[i].start)
            e->creds[i] = e->creds[--e->n_creds];
        else
            i++;
    }
}

static struct emu_creds *creds_new(struct rootemu *e, int32_t tgid, uint64_t start)
{
    if (e->n_creds == EMU_MAX_PROCS)
        creds_gc(e);
    if (e->n_creds == EMU_MAX_PROCS)
        return NULL;
    struct emu_creds *c = &e->creds[e->n_creds++];
    memset(c, 0, sizeof(*c));
    c->tgid = tgid;
    c->start = start;
    return c;
}

/* The emulated credentials of a process: its own record, else a copy of
 * its nearest ancestor's (what it inherited at fork), else root's when
 * create (the first set*id of a process), else NULL (the kernel's view
 * is right). */
static struct emu_creds *creds_of(struct rootemu *e, const struct proc_info *pi, bool create)
{
    uint64_t start;
    if (read_start(e->procfd, pi->tgid, &start) < 0)
        return NULL;
    struct emu_creds *c = creds_find(e, pi->tgid, start);
    if (c)
        return c;
    struct emu_creds *anc = NULL;
    int32_t p = pi->ppid;
    for (int depth = 0; p > 0 && depth < 64 && e->n_creds && !anc; depth++) {
        uint64_t pstart;
        struct proc_info ppi;
        if (read_start(e->procfd, p, &pstart) < 0)
            break;
        anc = creds_find(e, p, pstart);
        if (anc || read_status(e->procfd, p, &ppi) < 0)
            break;
        p = ppi.ppid;
    }
    if (!anc && !create)
        return NULL;
    size_t anc_index = anc ? (size_t)(anc - e->creds) : 0;
    c = creds_new(e, pi->tgid, start);
    if (c && anc) {
        /* creds_new may have compacted the table */
        anc = anc_index < e->n_creds ? &e->creds[anc_index] : NULL;
        if (anc && anc != c) {
            memcpy(c->uid, anc->uid, sizeof(c->uid));
            memcpy(c->gid, anc->gid, sizeof(c->gid));
            c->n_groups = anc->n_groups;
            memcpy(c->groups, anc->groups, sizeof(c->groups));
        }
    }
    return c;
}

/* Privileged in the emulated sense: effective uid 0 and the capability. */
static bool emu_capable(const struct emu_creds *c, const struct proc_info *pi, int cap)
{
    return (!c || c->uid[E] == 0) && ((pi->capeff >> cap) & 1);
}

static bool one_of(uint32_t v, const uint32_t *ids)
{
    return v == ids[R] || v == ids[E] || v == ids[S];
}

/* The kernel's rules for set*uid/set*gid (kernel/sys.c) on ids[4]. */
static int apply_set(uint8_t op, uint32_t *ids, bool priv, const uint64_t *a, bool ids16,
                     uint64_t *ret_val)
{
    uint32_t x = (uint32_t)a[0], y = (uint32_t)a[1], z = (uint32_t)a[2];
    if (ids16) {
        x = (x & 0xffff) == 0xffff ? KEEP : (x & 0xffff);
        y = (y & 0xffff) == 0xffff ? KEEP : (y & 0xffff);
        z = (z & 0xffff) == 0xffff ? KEEP : (z & 0xffff);
    }
    *ret_val = 0;
    switch (op) {
    case EMU_SETUID:
    case EMU_SETGID:
        if (x == KEEP)
            return EINVAL;
        if (priv) {
            ids[R] = ids[E] = ids[S] = ids[FS] = x;
        } else if (x == ids[R] || x == ids[S]) {
            ids[E] = ids[FS] = x;
        } else {
            return EPERM;
        }
        return 0;
    case EMU_SETREUID:
    case EMU_SETREGID: {
        uint32_t old_r = ids[R];
        if (!priv) {
            if (x != KEEP && x != ids[R] && x != ids[E])
                return EPERM;
            if (y != KEEP && !one_of(y, ids))
                return EPERM;
        }
        if (x != KEEP)
            ids[R] = x;
        if (y != KEEP)
            ids[E] = y;
        if (x != KEEP || (y != KEEP && y != old_r))
            ids[S] = ids[E];
        ids[FS] = ids[E];
        return 0;
    }
    case EMU_SETRESUID:
    case EMU_SETRESGID:
        if (!priv && ((x != KEEP && !one_of(x, ids)) || (y != KEEP && !one_of(y, ids)) ||
                      (z != KEEP && !one_of(z, ids))))
            return EPERM;
        if (x != KEEP)
            ids[R] = x;
        if (y != KEEP)
            ids[E] = y;
        if (z != KEEP)
            ids[S] = z;
        ids[FS] = ids[E];
        return 0;
    case EMU_SETFSUID:
    case EMU_SETFSGID:
        *ret_val = ids[FS];
        if (x != KEEP && (priv || one_of(x, ids) || x == ids[FS]))
            ids[FS] = x;
        return 0;
    }
    return ENOSYS;
}

static uint32_t id16(uint32_t v, bool ids16)
{
    return ids16 && v > 0xffff ? 65534 : v;
}

/* Answers a credential call: 0 with *ret_val, a positive errno, or -1 to
 * let the kernel run the call (no emulated record applies). */
static int handle_creds(struct rootemu *e, const struct rootemu_call *call,
                        const struct seccomp_data *d, uint64_t *ret_val)
{
    uint8_t op = call->op;
    bool set = op <= EMU_SETGROUPS;
    if (!set && e->n_creds == 0)
        return -1; /* nobody changed ids: the kernel's answer is right */
    pid_t pid = proc_pid(e, (pid_t)e->req->pid);
    struct proc_info pi;
    if (pid <= 0 || read_status(e->procfd, pid, &pi) < 0)
        return -1;
    struct emu_creds *c = creds_of(e, &pi, set);
    if (!c)
        return set ? EAGAIN : -1;
    bool is_uid = op == EMU_SETUID || op == EMU_SETREUID || op == EMU_SETRESUID ||
                  op == EMU_SETFSUID;
    *ret_val = 0;
    switch (op) {
    case EMU_SETUID:
    case EMU_SETREUID:
    case EMU_SETRESUID:
    case EMU_SETFSUID:
    case EMU_SETGID:
    case EMU_SETREGID:
    case EMU_SETRESGID:
    case EMU_SETFSGID: {
        bool priv = emu_capable(c, &pi, is_uid ? CAP_SETUID : CAP_SETGID);
        const uint64_t args[3] = {d->args[0], d->args[1], d->args[2]};
        return apply_set(op, is_uid ? c->uid : c->gid, priv, args, call->ids16, ret_val);
    }
    case EMU_SETGROUPS: {
        if (!emu_capable(c, &pi, CAP_SETGID))
            return EPERM;
        uint64_t n = d->args[0];
        if (n > 65536)
            return EINVAL;
        size_t keep = n < EMU_MAX_GROUPS ? (size_t)n : EMU_MAX_GROUPS;
        if (call->ids16) {
            uint16_t g[EMU_MAX_GROUPS];
            if (keep && read_mem(e->procfd, pid, d->args[1], g, keep * 2) < 0)
                return EFAULT;
            for (size_t i = 0; i < keep; i++)
                c->groups[i] = g[i];
        } else if (keep && read_mem(e->procfd, pid, d->args[1], c->groups, keep * 4) < 0) {
            return EFAULT;
        }
        c->n_groups = (uint32_t)keep;
        return 0;
    }
    case EMU_GETUID:
        *ret_val = id16(c->uid[R], call->ids16);
        return 0;
    case EMU_GETEUID:
        *ret_val = id16(c->uid[E], call->ids16);
        return 0;
    case EMU_GETGID:
        *ret_val = id16(c->gid[R], call->ids16);
        return 0;
    case EMU_GETEGID:
        *ret_val = id16(c->gid[E], call->ids16);
        return 0;
    case EMU_GETRESUID:
    case EMU_GETRESGID: {
        const uint32_t *ids = op == EMU_GETRESUID ? c->uid : c->gid;
        for (int i = 0; i < 3; i++) {
            int r;
            if (call->ids16) {
                uint16_t v = (uint16_t)id16(ids[i], true);
                r = write_mem(e->procfd, pid, d->args[i], &v, sizeof(v));
            } else {
                r = write_mem(e->procfd, pid, d->args[i], &ids[i], sizeof(ids[i]));
            }
            if (r < 0)
                return EFAULT;
        }
        return 0;
    }
    case EMU_GETGROUPS: {
        int64_t size = (int32_t)d->args[0];
        if (size < 0)
            return EINVAL;
        *ret_val = c->n_groups;
        if (size == 0)
            return 0;
        if ((uint64_t)size < c->n_groups)
            return EINVAL;
        if (call->ids16) {
            uint16_t g[EMU_MAX_GROUPS];
            for (size_t i = 0; i < c->n_groups; i++)
                g[i] = (uint16_t)id16(c->groups[i], true);
            if (c->n_groups && write_mem(e->procfd, pid, d->args[1], g, c->n_groups * 2) < 0)
                return EFAULT;
        } else if (c->n_groups &&
                   write_mem(e->procfd, pid, d->args[1], c->groups, c->n_groups * 4) < 0) {
            return EFAULT;
        }
        return 0;
    }
    }
    return -1;
}

int rootemu_seed(struct rootemu *e, pid_t pid, uint32_t uid, uint32_t gid, const uint32_t *groups,
                 size_t n_groups)
{
    pid_t p = proc_pid(e, pid);
    uint64_t start;
    if (p <= 0 || read_start(e->procfd, p, &start) < 0)
        return -ESRCH;
    struct emu_creds *c = creds_find(e, p, start);
    if (!c)
        c = creds_new(e, p, start);
    if (!c)
        return -ENOSPC;
    for (int i = 0; i < 4; i++) {
        c->uid[i] = uid;
        c->gid[i] = gid;
    }
    c->n_groups = n_groups < EMU_MAX_GROUPS ? (uint32_t)n_groups : EMU_MAX_GROUPS;
    for (size_t i = 0; i < c->n_groups; i++)
        c->groups[i] = groups[i];
    return 0;
}

static int sys_openat2(int dirfd, const char *path, uint64_t flags, uint64_t resolve)
{
    struct open_how how = {.flags = flags, .mode = 0, .resolve = resolve};
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

/* An O_PATH descriptor of the file the caller means. */
static int open_target(const struct rootemu *e, pid_t pid, const struct chown_args *a,
                       const char *path)
{
    char p[64];
    struct sbuf b;
    int nofollow = a->nofollow ? O_NOFOLLOW : 0;

    if (a->op == EMU_FCHOWN) {
        proc_path(&b, p, sizeof(p), pid, "/fd/", a->dirfd);
        int fd = openat(e->procfd, p, O_PATH | O_CLOEXEC);
        return fd < 0 ? (errno == ENOENT ? -EBADF : -errno) : fd;
    }
    if (path[0] == '\0' && !a->empty_path)
        return -ENOENT;
    if (path[0] == '/') {
        /* absolute: resolved in the caller's root, which may be a chroot */
        proc_path(&b, p, sizeof(p), pid, "/root", -1);
        int root = openat(e->procfd, p, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root < 0)
            return -errno;
        int fd = sys_openat2(root, path, (uint64_t)(O_PATH | O_CLOEXEC | nofollow),
                             RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
        int saved = errno;
        close(root);
        return fd < 0 ? -saved : fd;
    }
    if (a->dirfd == AT_FDCWD)
        proc_path(&b, p, sizeof(p), pid, "/cwd", -1);
    else if (a->dirfd >= 0)
        proc_path(&b, p, sizeof(p), pid, "/fd/", a->dirfd);
    else
        return -EBADF;
    int base = openat(e->procfd, p, O_PATH | O_CLOEXEC);
    if (base < 0)
        return errno == ENOENT ? -EBADF : -errno;
    if (path[0] == '\0')
        return base; /* AT_EMPTY_PATH: the descriptor itself */
    int fd = openat(base, path, O_PATH | O_CLOEXEC | nofollow);
    int saved = errno;
    close(base);
    return fd < 0 ? -saved : fd;
}

static bool parse_owner(const char *s, size_t n, uint32_t *uid, uint32_t *gid)
{
    char buf[32];
    if (n == 0 || n >= sizeof(buf))
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    const char *end;
    if (!safe_parse_u32(buf, &end, uid) || *end != ':')
        return false;
    if (!safe_parse_u32(end + 1, &end, gid) || *end != '\0')
        return false;
    return true;
}

/* Appends "UID:GID PATH\n" for the file behind fd to the owner log. */
static void log_owner(struct rootemu *e, int fd, uint32_t uid, uint32_t gid)
{
    if (e->owner_log_fd < 0)
        return;
    char link[64], target[4096], line[8300];
    struct sbuf b;
    sb_init(&b, link, sizeof(link));
    sb_str(&b, "self/fd/");
    sb_u64(&b, (uint64_t)fd);
    ssize_t n = readlinkat(e->procfd, link, target, sizeof(target) - 1);
    if (n <= 0 || target[0] != '/')
        return;
    sb_init(&b, line, sizeof(line));
    sb_u64(&b, uid);
    sb_chr(&b, ':');
    sb_u64(&b, gid);
    sb_chr(&b, ' ');
    for (ssize_t i = 0; i < n; i++) {
        if (target[i] == '\\')
            sb_str(&b, "\\\\");
        else if (target[i] == '\n')
            sb_str(&b, "\\n");
        else
            sb_chr(&b, target[i]);
    }
    sb_chr(&b, '\n');
    if (b.truncated)
        return;
    if (write(e->owner_log_fd, line, b.len) == (ssize_t)b.len)
        e->n_logged++;
}

/* Sets (or, when clear, removes) the owner xattr of a regular file or
 * directory.  Returns 0 or -errno. */
static int set_owner_xattr(struct rootemu *e, int fd, bool clear, uint32_t uid, uint32_t gid)
{
    char link[64];
    struct sbuf b;
    sb_init(&b, link, sizeof(link));
    sb_str(&b, "self/fd/");
    sb_u64(&b, (uint64_t)fd);
    int rfd = openat(e->procfd, link, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (rfd < 0)
        return -errno;
    int r = 0;
    if (clear) {
        if (fremovexattr(rfd, OWNER_XATTR) < 0 && errno != ENODATA)
            r = -errno;
    } else {
        char val[32];
        sb_init(&b, val, sizeof(val));
        sb_u64(&b, uid);
        sb_chr(&b, ':');
        sb_u64(&b, gid);
        if (fsetxattr(rfd, OWNER_XATTR, val, b.len, 0) < 0)
            r = -errno;
    }
    close(rfd);
    return r;
}

static int get_owner_xattr(struct rootemu *e, int fd, uint32_t *uid, uint32_t *gid)
{
    char link[64], val[32];
    struct sbuf b;
    sb_init(&b, link, sizeof(link));
    sb_str(&b, "self/fd/");
    sb_u64(&b, (uint64_t)fd);
    int rfd = openat(e->procfd, link, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (rfd < 0)
        return -errno;
    ssize_t n = fgetxattr(rfd, OWNER_XATTR, val, sizeof(val));
    int saved = errno;
    close(rfd);
    if (n < 0)
        return -saved;
    return parse_owner(val, (size_t)n, uid, gid) ? 0 : -EINVAL;
}

/* Does the work; returns 0 or a positive errno for the caller, or -1 when
 * the notification went stale (no answer is possible). */
static int handle_chown(struct rootemu *e, const struct chown_args *a)
{
    pid_t pid = proc_pid(e, (pid_t)e->req->pid);
    if (pid <= 0)
        return ESRCH;
    char path[4096];
    path[0] = '\0';
    if (a->op != EMU_FCHOWN) {
        int r = read_string(e->procfd, pid, a->addr, path, sizeof(path));
        if (r < 0)
            return -r;
    }
    int fd = open_target(e, pid, a, path);
    if (fd < 0)
        return -fd;
    struct proc_info pi;
    bool have_caps = read_status(e->procfd, pid, &pi) == 0;
    bool may_chown = have_caps && emu_capable(creds_of(e, &pi, false), &pi, CAP_CHOWN);

    /* Everything read from the caller is now in hand: if it died and its
     * pid was reused meanwhile, the notification is no longer valid. */
    if (ioctl(e->listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &e->req->id) < 0) {
        close(fd);
        return -1;
    }

    int result = 0;
    struct statx stx;
    if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW,
              STATX_TYPE | STATX_UID | STATX_GID | STATX_MNT_ID, &stx) < 0) {
        result = errno;
        goto out;
    }
    bool xattr_ok = S_ISREG(stx.stx_mode) || S_ISDIR(stx.stx_mode);
    uint32_t cur_uid = stx.stx_uid, cur_gid = stx.stx_gid;
    bool had_xattr = xattr_ok && get_owner_xattr(e, fd, &cur_uid, &cur_gid) == 0;
    uint32_t want_uid = a->uid == (uint32_t)-1 ? cur_uid : a->uid;
    uint32_t want_gid = a->gid == (uint32_t)-1 ? cur_gid : a->gid;
    /* stat shows the program the real owner, not the recorded one: a chown
     * to exactly what stat showed (tools that copy ownership from a file,
     * or set it to what they read) changes nothing from its point of view,
     * and must not drop the record. */
    if (had_xattr && (a->uid == (uint32_t)-1 || a->uid == stx.stx_uid) &&
        (a->gid == (uint32_t)-1 || a->gid == stx.stx_gid)) {
        want_uid = cur_uid;
        want_gid = cur_gid;
    }

    /* Without CAP_CHOWN only a no-op is allowed, as for a real chown. */
    bool changes = want_uid != cur_uid || want_gid != cur_gid;
    if (changes && have_caps && !may_chown) {
        result = EPERM;
        goto out;
    }

    if (!changes) {
        /* The record stays; a real chown to the real owner still copies an
         * overlay file up and clears set-id bits as the call would. */
        uid_t ru = a->uid == (uint32_t)-1 ? (uid_t)-1 : (uid_t)stx.stx_uid;
        gid_t rg = a->gid == (uint32_t)-1 ? (gid_t)-1 : (gid_t)stx.stx_gid;
        if (fchownat(fd, "", ru, rg, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 && errno != EINVAL)
            result = errno;
        goto out;
    }

    /* The real chown: exact when the ids are mapped; else to the current
     * owner, which still copies an overlay file up and clears set-id bits
     * like the call asked for would. */
    uid_t ru = a->uid == (uint32_t)-1 ? (uid_t)-1 : (uid_t)want_uid;
    gid_t rg = a->gid == (uint32_t)-1 ? (gid_t)-1 : (gid_t)want_gid;
    bool exact = true;
    if (fchownat(fd, "", ru, rg, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno != EINVAL) {
            result = errno;
            goto out;
        }
        exact = false;
        ru = a->uid == (uint32_t)-1 ? (uid_t)-1 : (uid_t)stx.stx_uid;
        rg = a->gid == (uint32_t)-1 ? (gid_t)-1 : (gid_t)stx.stx_gid;
        if (fchownat(fd, "", ru, rg, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 && errno != EINVAL) {
            result = errno;
            goto out;
        }
    }

    if (stx.stx_mnt_id != e->root_mnt_id)
        goto out; /* /dev, /proc, tmpfs, binds: nothing reaches a layer */
    if (exact) {
        if (had_xattr)
            set_owner_xattr(e, fd, true, 0, 0);
        goto out;
    }
    if (xattr_ok && set_owner_xattr(e, fd, false, want_uid, want_gid) == 0) {
        e->n_recorded++;
        goto out;
    }
    log_owner(e, fd, want_uid, want_gid);
out:
    close(fd);
    return result;
}

int rootemu_serve(struct rootemu *e)
{
    memset(e->req, 0, e->req_size);
    if (ioctl(e->listener, SECCOMP_IOCTL_NOTIF_RECV, e->req) < 0) {
        if (errno == EINTR || errno == ENOENT)
            return 0; /* interrupted, or the caller died meanwhile */
        return -errno;
    }
    e->n_served++;
    const struct seccomp_data *d = &e->req->data;
    const struct rootemu_call *c = find_call(e, d->arch, d->nr);

    memset(e->resp, 0, e->resp_size);
    e->resp->id = e->req->id;
    if (!c) {
        /* not ours: let the kernel run it */
        e->resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    } else {
        if (c->op >= EMU_SETUID) {
            uint64_t val = 0;
            int r = handle_creds(e, c, d, &val);
            if (r < 0) {
                e->resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
            } else {
                e->resp->error = -r;
                e->resp->val = r ? 0 : (int64_t)val;
            }
            goto send;
        }
        struct chown_args a = {.op = c->op, .dirfd = AT_FDCWD};
        switch (c->op) {
        case EMU_CHOWN:
        case EMU_LCHOWN:
            a.addr = d->args[0];
            a.uid = id_arg(d->args[1], c->ids16);
            a.gid = id_arg(d->args[2], c->ids16);
            a.nofollow = c->op == EMU_LCHOWN;
            break;
        case EMU_FCHOWN:
            a.dirfd = (int)d->args[0];
            a.uid = id_arg(d->args[1], c->ids16);
            a.gid = id_arg(d->args[2], c->ids16);
            a.nofollow = true;
            break;
        case EMU_FCHOWNAT:
            a.dirfd = (int)d->args[0];
            a.addr = d->args[1];
            a.uid = id_arg(d->args[2], false);
            a.gid = id_arg(d->args[3], false);
            a.nofollow = (d->args[4] & AT_SYMLINK_NOFOLLOW) != 0;
            a.empty_path = (d->args[4] & AT_EMPTY_PATH) != 0;
            if (d->args[4] & ~(uint64_t)(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) {
                e->resp->error = -EINVAL;
                goto send;
            }
            break;
        }
        int r = handle_chown(e, &a);
        if (r < 0)
            return 0; /* stale: nobody to answer */
        e->resp->error = -r;
    }
send:
    if (ioctl(e->listener, SECCOMP_IOCTL_NOTIF_SEND, e->resp) < 0 && errno != ENOENT)
        return errno == EINTR ? 0 : -errno;
    return 0;
}
