/* Storage drivers: how the rootfs of a RUN is assembled from layer trees,
 * and how its changes are found.  The layer that results is the same byte
 * for byte whatever the driver. */
#ifndef KILN_DRIVER_H
#define KILN_DRIVER_H

#include <sys/types.h>

#include "layers/layer.h"
#include "layers/store.h"
#include "lib/error.h"

enum storage_driver { DRIVER_AUTO = 0, DRIVER_OVERLAY, DRIVER_FUSE_OVERLAYFS, DRIVER_COPY };

const char *driver_name(enum storage_driver d);
int driver_from_name(const char *name, enum storage_driver *ret);

/* Resolves DRIVER_AUTO to the first driver that works here (kernel overlayfs
 * in kiln's user namespace, then fuse-overlayfs, then copy); checks that an
 * explicit choice works.  Must be called inside kiln's user and mount
 * namespaces (runtime/userns.h).  The answer is cached per process. */
int driver_resolve(struct store *s, enum storage_driver want, enum storage_driver *ret,
                   struct kiln_error **err);

struct rootfs {
    double started_ms; /* CLOCK_MONOTONIC when rootfs_mount began (debug timings) */
    enum storage_driver driver;
    char *scratch; /* tmp/ directory that holds the parts below */
    char *merged;  /* the directory a container pivots into */
    char *upper;   /* overlay/fuse upper dir (copy: NULL) */
    char *work;
    char **lowers; /* layer trees, top first */
    pid_t fuse_pid;
    /* A run_spec.owner_log (runtime/runtime.h) the RUN wrote, or NULL:
     * rootfs_diff gives the entries it names the owners recorded there
     * (single-ID mode: symlinks and other files without user xattrs). */
    char *owner_log;
    /* Single-ID mode with a non-root USER: the kernel gives every file the
     * RUN creates kiln's one id; rootfs_diff gives entries that are new
     * (absent below) and carry no recorded owner this owner instead. */
    bool new_owner;
    uid_t new_uid;
    gid_t new_gid;
};

/* Assembles a rootfs from layer trees (top first; may be empty: a scratch
 * image).  DRIVER_AUTO resolves first.  overlay: kernel overlayfs with
 * userxattr and volatile, lowers added with fsconfig "lowerdir+" (any
 * number; a legacy mount(2) on kernels before 6.8, about 200 layers).
 * fuse-overlayfs: a foreground child process (r->fuse_pid) with fsync=0.
 * copy: a full copy of the merged trees in r->merged (reflinks or
 * copy_file_range; hard links between lower files are copied apart, as
 * overlayfs breaks them on copy-up). */
int rootfs_mount(struct store *s, enum storage_driver d, char *const *lowers, struct rootfs **ret,
                 struct kiln_error **err);
/* Writes what changed in the rootfs as a layer, while it is still mounted.
 * ret->entries == 0 when nothing changed (the blob is then an empty tar).
 * The layer is the same byte for byte whatever the driver; the rule is at
 * the top of layers/diff.c.  In short: entries compared on type, mode,
 * owner, size, mtime, link target, xattrs and content (not atime, not the
 * mtime of directories the lowers have), deletions as ".wh." whiteouts, a
 * directory none of whose lower names is left as an opaque directory,
 * parents written with every entry, names sorted.
 *
 * Owners: in single-ID mode a regular file without a record, owned by the
 * one mapped id, takes the owner of the regular file it replaced
 * (rename-over by useradd, sed -i, dpkg).  A tree listed twice in lowers is
 * mounted once.
 *
 * Mount points the runtime adds for a RUN (/etc/hosts, /etc/resolv.conf,
 * /proc, /dev, /sys, --mount targets) must be gone when this is called:
 * runtime/ creates missing ones as stubs and removes them after the run,
 * restoring their parents' times, so the rootfs is as the payload left
 * it. */
int rootfs_diff(struct store *s, struct rootfs *r, const struct layer_write_opts *opts,
                struct layer_result *ret, struct kiln_error **err);
/* Unmounts (lazily when busy), stops and reaps fuse-overlayfs, removes the
 * scratch directory; accepts NULL. */
void rootfs_release(struct rootfs *r);

#endif
