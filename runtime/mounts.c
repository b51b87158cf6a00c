/* Mounts of a RUN.
 *
 * Parent side: mount points the rootfs lacks are created before clone
 * (resolved inside the rootfs, never following a symlink out of it) and
 * removed after the run, so that the rootfs ends as the payload left it.
 *
 * Child side (mounts_setup, no allocation): in the fresh mount namespace,
 * bind the rootfs on itself, mount /proc, a tmpfs /dev with the host's
 * device nodes bound in, devpts, /dev/shm, a read-only /sys, /etc/hosts and
 * /etc/resolv.conf, the spec's binds and tmpfs, mask what Docker masks, then
 * pivot_root and detach the old root.  Every target is opened inside the
 * rootfs with openat2(RESOLVE_IN_ROOT) and mounted on through its
 * /proc/self/fd path, so an image's symlinks cannot redirect a mount. */
#include "runtime/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/xalloc.h"
#include "runtime/safe.h"

static int openat2_in_root(int rootfd, const char *path, int flags)
{
    struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC), .resolve = RESOLVE_IN_ROOT};
    return (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
}

/* ---- parent side: stubs ----------------------------------------------------- */

static int stub_add(struct stubs *s, int dirfd, const char *name, bool dir,
                    struct kiln_error **err)
{
    int pfd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (pfd < 0)
        return kiln_error_set(err, errno, "opening the parent of mount point '%s'", name);
    struct stat st;
    if (fstat(pfd, &st) < 0) {
        int e = errno;
        close(pfd);
        return kiln_error_set(err, e, "stat of the parent of mount point '%s'", name);
    }
    XGROW(s->v, s->cap, s->n + 1);
    s->v[s->n++] = (struct stub){pfd, xstrdup(name), dir, {st.st_atim, st.st_mtim}};
    return 0;
}

int stubs_ensure(int rootfd, const char *target, bool dir, struct stubs *s, bool *ret_usable,
                 struct kiln_error **err)
{
    *ret_usable = false;
    _cleanup_free_ char *copy = xstrdup(target);
    char *comps[256];
    size_t n = 0;
    for (char *save = NULL, *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        if (strcmp(c, ".") == 0)
            continue;
        if (strcmp(c, "..") == 0)
            return kiln_error_set(err, 0, "mount target '%s': '..' not allowed", target);
        if (n == ARRAY_SIZE(comps))
            return kiln_error_set(err, 0, "mount target '%s': too deep", target);
        comps[n++] = c;
    }
    if (n == 0)
        return kiln_error_set(err, 0, "mount target '%s': cannot mount over /", target);

    _cleanup_close_ int cur = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (cur < 0)
        return kiln_error_set(err, errno, "opening the rootfs");
    _cleanup_free_ char *prefix = xstrdup("");
    for (size_t i = 0; i < n; i++) {
        bool last = i + 1 == n;
        char *path = xasprintf("%s%s%s", prefix, *prefix ? "/" : "", comps[i]);
        free(prefix);
        prefix = path;
        int fd = openat2_in_root(rootfd, path, O_PATH);
        if (fd >= 0) {
            struct stat st;
            if (fstat(fd, &st) < 0 || ((!last || dir) && !S_ISDIR(st.st_mode))) {
                close(fd);
                return kiln_error_set(err, ENOTDIR, "mount target '/%s'", path);
            }
            close(cur);
            cur = fd;
            continue;
        }
        if (errno != ENOENT)
            return kiln_error_set(err, errno, "mount target '/%s'", path);
        struct stat st;
        if (fstatat(cur, comps[i], &st, AT_SYMLINK_NOFOLLOW) == 0)
            return 0; /* a dangling symlink: not ours to replace */
        if (stub_add(s, cur, comps[i], !last || dir, err) < 0)
            return -1;
        if (!last || dir) {
            if (mkdirat(cur, comps[i], 0755) < 0)
                return kiln_error_set(err, errno, "creating mount point '/%s'", path);
        } else {
            int f = openat(cur, comps[i], O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                           0644);
            if (f < 0)
                return kiln_error_set(err, errno, "creating mount point '/%s'", path);
            close(f);
        }
        fd = openat(cur, comps[i], O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return kiln_error_set(err, errno, "opening mount point '/%s'", path);
        close(cur);
        cur = fd;
    }
    *ret_usable = true;
    return 0;
}

void stubs_remove(struct stubs *s)
{
    for (size_t i = s->n; i-- > 0;) {
        struct stub *st = &s->v[i];
        if (st->dir) {
            unlinkat(st->parent_fd, st->name, AT_REMOVEDIR);
        } else {
            struct stat sb;
            if (fstatat(st->parent_fd, st->name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
                S_ISREG(sb.st_mode) && sb.st_size == 0)
                unlinkat(st->parent_fd, st->name, 0);
        }
        futimens(st->parent_fd, st->times);
        close(st->parent_fd);
        free(st->name);
    }
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
}

/* ---- child side ----------------------------------------------------------------- */

/* "/proc/self/fd/N[/rest]" */
static const char *fdpath(char *buf, size_t size, int fd, const char *rest)
{
    struct sbuf b;
    sb_init(&b, buf, size);
    sb_str(&b, "/proc/self/fd/");
    sb_u64(&b, (uint64_t)fd);
    if (rest) {
        sb_chr(&b, '/');
        sb_str(&b, rest);
    }
    return buf;
}

static int fail(struct run_plan *p, const char *what, const char *arg)
{
    sync_error(p->sync_fd, errno, KILN_EXIT_RUN_FAILED, what, arg);
    return -1;
}

static int sys_open_tree(int dfd, const char *path, unsigned flags)
{
    return (int)syscall(SYS_open_tree, dfd, path, flags);
}

static int sys_move_mount(int from, int to)
{
    return (int)syscall(SYS_move_mount, from, "", to, "",
                        MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
}

static int sys_mount_setattr(int fd, bool recursive, uint64_t set)
{
    struct mount_attr a = {.attr_set = set};
    return (int)syscall(SYS_mount_setattr, fd, "",
                        AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &a, sizeof(a));
}

/* Clones the mount tree at src (a path, or dfd itself when src is "") and
 * attaches it on target, read-only if asked. */
static int bind_tree(int dfd, const char *src, int target, bool recursive, uint64_t attrs)
{
    unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0) |
                     (src[0] ? 0 : AT_EMPTY_PATH);
    int tree = sys_open_tree(dfd, src, flags);
    if (tree < 0)
        return -1;
    int r = 0;
    if (attrs)
        r = sys_mount_setattr(tree, recursive, attrs);
    if (r == 0)
        r = sys_move_mount(tree, target);
    int e = errno;
    close(tree);
    errno = e;
    return r;
}

static const char *const dev_nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};

static const struct {
    const char *name, *target;
} dev_links[] = {
    {"fd", "/proc/self/fd"},
    {"stdin", "/proc/self/fd/0"},
    {"stdout", "/proc/self/fd/1"},
    {"stderr", "/proc/self/fd/2"},
    {"ptmx", "pts/ptmx"},
};

static int setup_dev(struct run_plan *p, int rootfd)
{
    char buf[96], src[32];
    int t = openat2_in_root(rootfd, "dev", O_PATH | O_DIRECTORY);
    if (t < 0)
        return fail(p, "opening", "/dev");
    if (mount("tmpfs", fdpath(buf, sizeof(buf), t, NULL), "tmpfs", MS_NOSUID | MS_STRICTATIME,
              "mode=755,size=65536k") < 0)
        return fail(p, "mounting a tmpfs on", "/dev");
    close(t);
    int dev = openat2_in_root(rootfd, "dev", O_PATH | O_DIRECTORY);
    if (dev < 0)
        return fail(p, "opening", "/dev");

    for (size_t i = 0; i < sizeof(dev_nodes) / sizeof(dev_nodes[0]); i++) {
        struct sbuf b;
        sb_init(&b, src, sizeof(src));
        sb_str(&b, "/dev/");
        sb_str(&b, dev_nodes[i]);
        if (access(src, F_OK) < 0)
            continue; /* e.g. no /dev/tty where kiln runs */
        int f = openat(dev, dev_nodes[i], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (f < 0)
            return fail(p, "creating", src);
        close(f);
        if (mount(src, fdpath(buf, sizeof(buf), dev, dev_nodes[i]), NULL, MS_BIND, NULL) < 0)
            return fail(p, "binding", src);
    }

    if (mkdirat(dev, "pts", 0755) < 0 ||
        mount("devpts", fdpath(buf, sizeof(buf), dev, "pts"), "devpts", MS_NOSUID | MS_NOEXEC,
              p->devpts_opts) < 0)
        return fail(p, "mounting devpts on", "/dev/pts");
    if (mkdirat(dev, "shm", 01777) < 0 ||
        mount("shm", fdpath(buf, sizeof(buf), dev, "shm"), "tmpfs",
              MS_NOSUID | MS_NODEV | MS_NOEXEC, p->shm_opts) < 0)
        return fail(p, "mounting a tmpfs on", "/dev/shm");
    /* POSIX message queues of the container's ipc namespace, if allowed */
    if (mkdirat(dev, "mqueue", 0755) == 0 &&
        mount("mqueue", fdpath(buf, sizeof(buf), dev, "mqueue"), "mqueue",
              MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        unlinkat(dev, "mqueue", AT_REMOVEDIR);
    for (size_t i = 0; i < sizeof(dev_links) / sizeof(dev_links[0]); i++)
        if (symlinkat(dev_links[i].target, dev, dev_links[i].name) < 0)
            return fail(p, "creating", dev_links[i].name);
    close(dev);
    return 0;
}

static int setup_proc(struct run_plan *p, int rootfd)
{
    char buf[64];
    int t = openat2_in_root(rootfd, "proc", O_PATH | O_DIRECTORY);
    if (t < 0)
        return fail(p, "opening", "/proc");
    /* A fresh /proc shows the new pid namespace only.  The kernel refuses it
     * when kiln's own /proc is partly covered (kiln inside a container that
     * masks /proc paths); then the host's is bound, read-only below. */
    int r = mount("proc", fdpath(buf, sizeof(buf), t, NULL), "proc",
                  MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    if (r < 0 && (errno == EPERM || errno == EACCES))
        r = bind_tree(AT_FDCWD, "/proc", t, true, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
                                                      MOUNT_ATTR_NOEXEC);
    if (r < 0)
        return fail(p, "mounting", "/proc");
    close(t);
    return 0;
}

/* /sys read-only: a sysfs of our own when we own the network namespace and
 * the kernel allows it, else the host's, bound recursively read-only.
 * Failing that, the directory stays empty. */
static void setup_sys(struct run_plan *p, int rootfd)
{
    char buf[64];
    int t = openat2_in_root(rootfd, "sys", O_PATH | O_DIRECTORY);
    if (t < 0)
        return;
    unsigned long ro = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
    if (!p->netns || mount("sysfs", fdpath(buf, sizeof(buf), t, NULL), "sysfs", ro, NULL) < 0)
        bind_tree(AT_FDCWD, "/sys", t, true,
                  MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
    close(t);
}

/* A target under /dev was made as a stub on the rootfs, which the
 * container's own /dev tmpfs now hides: make it again on that tmpfs (it
 * goes away with the container).  Returns an O_PATH fd or -1. */
static int make_dev_target(int rootfd, const struct plan_mount *m)
{
    char path[1024];
    size_t len = strlen(m->target);
    if (strncmp(m->target, "dev/", 4) != 0 || len >= sizeof(path))
        return -1;
    struct stat st;
    bool dir = m->kind == PM_TMPFS || (stat(m->source, &st) == 0 && S_ISDIR(st.st_mode));
    memcpy(path, m->target, len + 1);
    for (char *s = path + 4;; s++) {
        bool last = !*s;
        if (*s != '/' && !last)
            continue;
        *s = '\0';
        int fd = openat2_in_root(rootfd, path, O_PATH);
        if (fd < 0) {
            char *slash = strrchr(path, '/');
            *slash = '\0';
            int parent = openat2_in_root(rootfd, path, O_PATH | O_DIRECTORY);
            *slash = '/';
            if (parent < 0)
                return -1;
            int r = !last || dir ? mkdirat(parent, slash + 1, 0755)
                                 : mknodat(parent, slash + 1, S_IFREG | 0644, 0);
            close(parent);
            if (r < 0)
                return -1;
        } else {
            close(fd);
        }
        if (last)
            break;
        *s = '/';
    }
    return openat2_in_root(rootfd, m->target, O_PATH);
}

static int setup_plan_mounts(struct run_plan *p, int rootfd)
{
    char buf[64];
    for (size_t i = 0; i < p->n_mounts; i++) {
        const struct plan_mount *m = &p->mounts[i];
        int t = openat2_in_root(rootfd, m->target, O_PATH);
        if (t < 0 && errno == ENOENT)
            t = make_dev_target(rootfd, m);
        if (t < 0)
            return fail(p, "opening mount target", m->target);
        int r;
        if (m->kind == PM_TMPFS) {
            r = mount("tmpfs", fdpath(buf, sizeof(buf), t, NULL), "tmpfs",
                      MS_NOSUID | MS_NODEV | (m->readonly ? MS_RDONLY : 0), m->data);
            if (r < 0)
                return fail(p, "mounting a tmpfs on", m->target);
        } else {
            r = bind_tree(AT_FDCWD, m->source, t, m->recursive,
                          m->readonly ? MOUNT_ATTR_RDONLY : 0);
            if (r < 0)
                return fail(p, "binding", m->source);
        }
        close(t);
    }
    return 0;
}

/* What Docker hides or makes read-only in /proc and /sys. */
static const char *const masked_paths[] = {
    "proc/asound", "proc/acpi",        "proc/interrupts", "proc/kcore",
    "proc/keys",   "proc/latency_stats", "proc/timer_list", "proc/timer_stats",
    "proc/sched_debug", "proc/scsi",   "sys/firmware",    "sys/devices/virtual/powercap",
};
static const char *const readonly_paths[] = {
    "proc/bus", "proc/fs", "proc/irq", "proc/sys", "proc/sysrq-trigger",
};

static int setup_masks(struct run_plan *p, int rootfd)
{
    char buf[64];
    for (size_t i = 0; i < sizeof(masked_paths) / sizeof(masked_paths[0]); i++) {
        int t = openat2_in_root(rootfd, masked_paths[i], O_PATH | O_NOFOLLOW);
        if (t < 0)
            continue;
        struct stat st;
        int r = fstat(t, &st);
        if (r == 0 && S_ISDIR(st.st_mode))
            r = mount("tmpfs", fdpath(buf, sizeof(buf), t, NULL), "tmpfs", MS_RDONLY,
                      "mode=555");
        else if (r == 0)
            r = mount("/dev/null", fdpath(buf, sizeof(buf), t, NULL), NULL, MS_BIND, NULL);
        close(t);
        if (r < 0)
            return fail(p, "masking", masked_paths[i]);
    }
    for (size_t i = 0; i < sizeof(readonly_paths) / sizeof(readonly_paths[0]); i++) {
        int t = openat2_in_root(rootfd, readonly_paths[i], O_PATH | O_NOFOLLOW);
        if (t < 0)
            continue;
        int r = bind_tree(t, "", t, true, MOUNT_ATTR_RDONLY);
        close(t);
        if (r < 0)
            return fail(p, "making read-only", readonly_paths[i]);
    }
    return 0;
}

int mounts_setup(struct run_plan *p)
{
    /* Nothing mounted here may propagate to kiln's namespace or the host. */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return fail(p, "making / private", NULL);
    /* pivot_root needs the new root to be a mount point. */
    if (mount(p->rootfs, p->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
        return fail(p, "binding the rootfs", p->rootfs);
    int rootfd = open(p->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return fail(p, "opening the rootfs", p->rootfs);

    if (setup_proc(p, rootfd) < 0 || setup_dev(p, rootfd) < 0)
        return -1;
    setup_sys(p, rootfd);
    if (setup_plan_mounts(p, rootfd) < 0 || setup_masks(p, rootfd) < 0)
        return -1;

    /* pivot_root(".", ".") stacks the old root on the new one; detaching
     * it leaves no path back to the host's file system (unlike chroot). */
    if (fchdir(rootfd) < 0)
        return fail(p, "entering the rootfs", p->rootfs);
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        return fail(p, "pivot_root into", p->rootfs);
    if (umount2(".", MNT_DETACH) < 0)
        return fail(p, "detaching the old root", NULL);
    if (chdir("/") < 0)
        return fail(p, "chdir", "/");
    close(rootfd);
    return 0;
}
