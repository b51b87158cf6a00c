/* fuse-overlayfs, run as a child of kiln in its user and mount namespaces
 * (it mounts /dev/fuse there as the namespace's root), kept in the
 * foreground so that kiln reaps it.  Upper syncs are off (fsync=0): the
 * scratch directory does not outlive a crash. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "layers/driver_internal.h"
#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

#define FUSE_SUPER_MAGIC 0x65735546
#define MOUNT_WAIT_MS 10000

extern char **environ;

/* The program: $KILN_FUSE_OVERLAYFS, else fuse-overlayfs in $PATH. */
static char *find_program(void)
{
    const char *e = getenv("KILN_FUSE_OVERLAYFS");
    if (e && *e)
        return access(e, X_OK) == 0 ? xstrdup(e) : NULL;
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
    _cleanup_free_ char *copy = xstrdup(path);
    char *save = NULL;
    for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        char *p = xasprintf("%s/fuse-overlayfs", d);
        if (access(p, X_OK) == 0)
            return p;
        free(p);
    }
    return NULL;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static bool is_fuse_mounted(const char *dir)
{
    struct statfs sf;
    return statfs(dir, &sf) == 0 && (unsigned long)sf.f_type == FUSE_SUPER_MAGIC;
}

static char *read_log(const char *scratch)
{
    _cleanup_free_ char *p = xasprintf("%s/fuse.log", scratch);
    char *buf = NULL;
    size_t len = 0;
    if (fs_read_file_at(AT_FDCWD, p, 4096, &buf, &len) < 0)
        return xstrdup("");
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
        buf[--len] = '\0';
    return buf;
}


int fuse_mount(struct rootfs *r, struct kiln_error **err)
{
    _cleanup_free_ char *prog = find_program();
    if (!prog)
        return kiln_error_set(err, ENOENT, "fuse-overlayfs: program not found in PATH");
    if (access("/dev/fuse", R_OK | W_OK) < 0)
        return kiln_error_set(err, errno, "fuse-overlayfs: /dev/fuse is not usable");
    _cleanup_strv_ char **lowers = NULL;
    if (overlay_prepare_dirs(r, &lowers, err) < 0)
        return -1;
    struct strbuf opts = STRBUF_INIT;
    strbuf_init(&opts);
    strbuf_adds(&opts, "lowerdir=");
    for (size_t i = 0; lowers[i]; i++) {
        if (strpbrk(lowers[i], ":,")) {
            strbuf_release(&opts);
            return kiln_error_set(err, EINVAL, "fuse-overlayfs: path '%s' contains ':' or ','",
                                  lowers[i]);
        }
        strbuf_addf(&opts, "%s%s", i ? ":" : "", lowers[i]);
    }
    if (strpbrk(r->scratch, ":,")) {
        strbuf_release(&opts);
        return kiln_error_set(err, EINVAL, "fuse-overlayfs: path '%s' contains ':' or ','",
                              r->scratch);
    }
    strbuf_addf(&opts, ",upperdir=%s,workdir=%s,fsync=0", r->upper, r->work);

    _cleanup_free_ char *logp = xasprintf("%s/fuse.log", r->scratch);
    _cleanup_close_ int logfd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    _cleanup_close_ int nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (logfd < 0 || nullfd < 0) {
        strbuf_release(&opts);
        return kiln_error_set(err, errno, "fuse-overlayfs: open '%s'", logp);
    }
    char *argv[] = {prog, "-f", "-o", opts.buf, r->merged, NULL};
    pid_t pid = fork();
    if (pid < 0) {
        strbuf_release(&opts);
        return kiln_error_set(err, errno, "fuse-overlayfs: fork");
    }
    if (pid == 0) {
        /* Only async-signal-safe calls between fork and exec. */
        dup2(nullfd, 0);
        dup2(nullfd, 1);
        dup2(logfd, 2);
        execve(prog, argv, environ);
        _exit(127);
    }
    strbuf_release(&opts);
    r->fuse_pid = pid;
    for (long waited = 0;; waited += 5) {
        if (is_fuse_mounted(r->merged))
            return 0;
        int st;
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid) {
            r->fuse_pid = 0;
            _cleanup_free_ char *why = read_log(r->scratch);
            return kiln_error_set(err, 0, "fuse-overlayfs exited with status %d%s%s",
                                  WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st),
                                  *why ? ": " : "", why);
        }
        if (waited >= MOUNT_WAIT_MS) {
            fuse_umount(r);
            return kiln_error_set(err, ETIMEDOUT, "fuse-overlayfs: no mount after %d s",
                                  MOUNT_WAIT_MS / 1000);
        }
        sleep_ms(5);
    }
}

/* Waits up to ms for the child; true when reaped. */
static bool reap(pid_t pid, long ms)
{
    for (long waited = 0;; waited += 10) {
        pid_t w = waitpid(pid, NULL, WNOHANG);
        if (w == pid || (w < 0 && errno == ECHILD))
            return true;
        if (waited >= ms)
            return false;
        sleep_ms(10);
    }
}

void fuse_umount(struct rootfs *r)
{
    if (r->merged && is_fuse_mounted(r->merged)) {
        if (umount2(r->merged, UMOUNT_NOFOLLOW) < 0) {
            log_debug("fuse-overlayfs: '%s' busy (%s), detaching", r->merged, strerror(errno));
            umount2(r->merged, MNT_DETACH | UMOUNT_NOFOLLOW);
        }
    }
    if (r->fuse_pid > 0) {
        /* Unmounted, it leaves on its own; else it is told to. */
        if (!reap(r->fuse_pid, 2000)) {
            kill(r->fuse_pid, SIGTERM);
            if (!reap(r->fuse_pid, 2000)) {
                kill(r->fuse_pid, SIGKILL);
                reap(r->fuse_pid, 5000);
            }
        }
        r->fuse_pid = 0;
    }
}
