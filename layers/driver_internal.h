/* Private to layers/: the storage drivers' mount and unmount halves. */
#ifndef KILN_DRIVER_INTERNAL_H
#define KILN_DRIVER_INTERNAL_H

#include "layers/driver.h"
#include "lib/error.h"

/* r->scratch, r->lowers are set; these create what they need in scratch
 * (upper/, work/, merged/) and fill r->merged (and r->upper, r->work). */
int overlay_mount(struct rootfs *r, struct kiln_error **err);
int fuse_mount(struct rootfs *r, struct kiln_error **err);
int copy_populate(struct rootfs *r, struct kiln_error **err);

/* Creates upper/ work/ merged/ in r->scratch (and empty/ when there are
 * no lowers) and returns the lower list to mount (top first). */
int overlay_prepare_dirs(struct rootfs *r, char ***ret_lowers, struct kiln_error **err);

/* Unmounts r->merged: lazily when it is busy.  fuse: stops and reaps the
 * fuse-overlayfs process too. */
void overlay_umount(struct rootfs *r);
void fuse_umount(struct rootfs *r);

#endif
