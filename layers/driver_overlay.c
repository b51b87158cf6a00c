/* Kernel overlayfs in kiln's user and mount namespaces.
 *
 * Unprivileged overlay needs "userxattr" (Linux 5.11+): overlay then keeps
 * its metadata in user.overlay.* (which is also how layer trees mark opaque
 * directories) and refuses redirect_dir/metacopy, which we do not want
 * anyway.  "volatile" drops the syncs of the upper layer: a RUN's scratch
 * directory is thrown away after a crash, so durability buys nothing.
 * Lowers are added one by one with fsconfig "lowerdir+" (Linux 6.8+), so
 * any number of layers fits; older kernels get one legacy mount(2) whose
 * option string names the layers as /proc/self/fd/N (about 200 fit). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layers/driver_internal.h"
#include "lib/cleanup.h"
#include "lib/log.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

/* fsconfig string values are capped at 256 bytes by the kernel. */
#define FSCONFIG_MAX_VALUE 255

static char *context_log(int fsfd)
{
    struct strbuf sb = STRBUF_INIT;
    strbuf_init(&sb);
    char buf[512];
    for (int i = 0; i < 16; i++) {
        ssize_t n = read(fsfd, buf, sizeof(buf) - 1);
        if (n <= 0)
            break;
        buf[n] = '\0';
        if (n > 0 && buf[n - 1] == '\n')
            buf[--n] = '\0';
        /* "e overlayfs: message" */
        strbuf_addf(&sb, "%s%s", sb.len ? "; " : "", n > 2 && buf[1] == ' ' ? buf + 2 : buf);
    }
    return strbuf_detach(&sb, NULL);
}

static int mkdir_in(const char *dir, const char *name, mode_t mode, char **ret)
{
    char *p = xasprintf("%s/%s", dir, name);
    if (mkdir(p, mode) < 0 && errno != EEXIST) {
        int e = errno;
        free(p);
        return -e;
    }
    *ret = p;
    return 0;
}

int overlay_prepare_dirs(struct rootfs *r, char ***ret_lowers, struct kiln_error **err)
{
    int e;
    if ((e = mkdir_in(r->scratch, "upper", 0755, &r->upper)) < 0 ||
        (e = mkdir_in(r->scratch, "work", 0700, &r->work)) < 0 ||
        (e = mkdir_in(r->scratch, "merged", 0755, &r->merged)) < 0)
        return kiln_error_set(err, -e, "rootfs: create directories in '%s'", r->scratch);
    /* The upper root is the rootfs root: 0755 like the trees' roots. */
    chmod(r->upper, 0755);
    char **lowers = strv_copy(r->lowers);
    if (!lowers[0]) {
        /* A scratch image: overlay needs one lower, an empty one will do. */
        char *empty = NULL;
        if ((e = mkdir_in(r->scratch, "empty", 0755, &empty)) < 0) {
            strv_free(lowers);
            return kiln_error_set(err, -e, "rootfs: create '%s/empty'", r->scratch);
        }
        strv_push_take(&lowers, empty);
    }
    *ret_lowers = lowers;
    return 0;
}

static int legacy_mount(struct rootfs *r, char *const *lowers, struct kiln_error **err)
{
    size_t n = strv_len(lowers);
    _cleanup_free_ int *fds = xcalloc(n, sizeof(int));
    struct strbuf opts = STRBUF_INIT;
    strbuf_init(&opts);
    strbuf_adds(&opts, "lowerdir=");
    int ret = 0;
    for (size_t i = 0; i < n; i++)
        fds[i] = -1;
    for (size_t i = 0; i < n; i++) {
        fds[i] = open(lowers[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fds[i] < 0) {
            ret = kiln_error_set(err, errno, "overlay: open lower '%s'", lowers[i]);
            goto out;
        }
        strbuf_addf(&opts, "%s/proc/self/fd/%d", i ? ":" : "", fds[i]);
    }
    strbuf_addf(&opts, ",upperdir=%s,workdir=%s,userxattr", r->upper, r->work);
    if (opts.len >= 4096) {
        ret = kiln_error_set(err, E2BIG,
                             "overlay: %zu layers do not fit in one mount (needs Linux 6.8 or "
                             "fewer layers)",
                             n);
        goto out;
    }
    if (mount("overlay", r->merged, "overlay", 0, opts.buf) < 0)
        ret = kiln_error_set(err, errno, "overlay: mount '%s'", r->merged);
out:
    for (size_t i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    strbuf_release(&opts);
    return ret;
}

int overlay_mount(struct rootfs *r, struct kiln_error **err)
{
    _cleanup_strv_ char **lowers = NULL;
    if (overlay_prepare_dirs(r, &lowers, err) < 0)
        return -1;
    bool legacy = getenv("KILN_OVERLAY_LEGACY") != NULL; /* tests of the old path */
    if (legacy)
        return legacy_mount(r, lowers, err);

    _cleanup_close_ int fsfd = fsopen("overlay", FSOPEN_CLOEXEC);
    if (fsfd < 0)
        return kiln_error_set(err, errno, "overlay: kernel overlayfs unavailable (fsopen)");
    fsconfig(fsfd, FSCONFIG_SET_STRING, "source", "kiln", 0);
    /* Long paths are named through /proc/self/fd/N. */
    size_t n = strv_len(lowers);
    _cleanup_free_ int *fds = xcalloc(n ? n : 1, sizeof(int));
    int ret = 0;
    for (size_t i = 0; i < n; i++)
        fds[i] = -1;
    for (size_t i = 0; i < n && ret == 0; i++) {
        char fdpath[64];
        const char *p = lowers[i];
        if (strlen(p) > FSCONFIG_MAX_VALUE) {
            fds[i] = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
            if (fds[i] < 0) {
                ret = kiln_error_set(err, errno, "overlay: open lower '%s'", p);
                break;
            }
            snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", fds[i]);
            p = fdpath;
        }
        if (fsconfig(fsfd, FSCONFIG_SET_STRING, "lowerdir+", p, 0) < 0) {
            if (i == 0 && errno == EINVAL) {
                /* "lowerdir+" is Linux 6.8+. */
                log_debug("overlay: no lowerdir+ in this kernel, using one mount(2)");
                legacy = true;
                break;
            }
            _cleanup_free_ char *why = context_log(fsfd);
            ret = kiln_error_set(err, errno, "overlay: lower '%s'%s%s", lowers[i],
                                 *why ? ": " : "", why);
        }
    }
    for (size_t i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    if (ret < 0)
        return -1;
    if (legacy)
        return legacy_mount(r, lowers, err);

    if (strlen(r->upper) > FSCONFIG_MAX_VALUE || strlen(r->work) > FSCONFIG_MAX_VALUE)
        return kiln_error_set(err, ENAMETOOLONG, "overlay: store path too long for overlayfs");
    if (fsconfig(fsfd, FSCONFIG_SET_STRING, "upperdir", r->upper, 0) < 0 ||
        fsconfig(fsfd, FSCONFIG_SET_STRING, "workdir", r->work, 0) < 0) {
        _cleanup_free_ char *why = context_log(fsfd);
        return kiln_error_set(err, errno, "overlay: upper/work in '%s'%s%s", r->scratch,
                              *why ? ": " : "", why);
    }
    if (fsconfig(fsfd, FSCONFIG_SET_FLAG, "userxattr", NULL, 0) < 0)
        return kiln_error_set(err, errno, "overlay: no 'userxattr' option (needs Linux 5.11)");
    if (fsconfig(fsfd, FSCONFIG_SET_FLAG, "volatile", NULL, 0) < 0)
        log_debug("overlay: no 'volatile' option: %s", strerror(errno));
    if (fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
        int e = errno;
        _cleanup_free_ char *why = context_log(fsfd);
        return kiln_error_set(err, e, "overlay: mount%s%s", *why ? ": " : "", why);
    }
    _cleanup_close_ int mfd = fsmount(fsfd, FSMOUNT_CLOEXEC, 0);
    if (mfd < 0)
        return kiln_error_set(err, errno, "overlay: fsmount");
    if (move_mount(mfd, "", AT_FDCWD, r->merged, MOVE_MOUNT_F_EMPTY_PATH) < 0)
        return kiln_error_set(err, errno, "overlay: attach at '%s'", r->merged);
    return 0;
}

void overlay_umount(struct rootfs *r)
{
    if (!r->merged)
        return;
    if (umount2(r->merged, UMOUNT_NOFOLLOW) == 0 || errno == EINVAL || errno == ENOENT)
        return;
    log_debug("overlay: '%s' busy (%s), detaching", r->merged, strerror(errno));
    umount2(r->merged, MNT_DETACH | UMOUNT_NOFOLLOW);
}
