/* The root-emulation supervisor (see rootemu.h).  rootemu_serve runs in the
 * container's init, a raw clone of kiln: plain syscalls only, no allocation. */
#include "seccomp/rootemu.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <seccomp.h>
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
    }

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

static int read_capeff(int procfd, pid_t pid, uint64_t *ret)
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
    *ret = v;
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
    uint64_t capeff = 0;
    bool have_caps = read_capeff(e->procfd, pid, &capeff) == 0;

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

    /* Without CAP_CHOWN only a no-op is allowed, as for a real chown. */
    bool changes = want_uid != cur_uid || want_gid != cur_gid;
    if (changes && have_caps && !(capeff & (1ull << CAP_CHOWN))) {
        result = EPERM;
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
