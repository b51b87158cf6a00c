/* Storage drivers: names, the auto choice (a real test mount, once per
 * process), mounting and releasing a rootfs. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "layers/driver.h"
#include "layers/driver_internal.h"
#include "layers/layer_internal.h"
#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/xalloc.h"

static const char *const names[] = {"auto", "overlay", "fuse-overlayfs", "copy"};

const char *driver_name(enum storage_driver d)
{
    if ((size_t)d < ARRAY_SIZE(names))
        return names[d];
    return "unknown";
}

int driver_from_name(const char *name, enum storage_driver *ret)
{
    for (size_t i = 0; i < ARRAY_SIZE(names); i++)
        if (strcmp(name, names[i]) == 0) {
            *ret = (enum storage_driver)i;
            return 0;
        }
    if (strcmp(name, "fuse") == 0 || strcmp(name, "overlayfs") == 0) {
        *ret = strcmp(name, "fuse") == 0 ? DRIVER_FUSE_OVERLAYFS : DRIVER_OVERLAY;
        return 0;
    }
    return -EINVAL;
}

/* ---- mounting ------------------------------------------------------------------- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int do_mount(struct rootfs *r, struct kiln_error **err)
{
    switch (r->driver) {
    case DRIVER_OVERLAY:
        return overlay_mount(r, err);
    case DRIVER_FUSE_OVERLAYFS:
        return fuse_mount(r, err);
    case DRIVER_COPY:
        return copy_populate(r, err);
    default:
        return kiln_error_set(err, EINVAL, "rootfs: no driver chosen");
    }
}

static int mount_with(struct store *s, enum storage_driver d, char *const *lowers,
                      struct rootfs **ret, struct kiln_error **err)
{
    struct rootfs *r = xcalloc(1, sizeof(*r));
    r->started_ms = now_ms();
    r->driver = d;
    /* A tree listed twice (two layers with one diff_id: two empty RUN
     * layers, the same COPY twice) makes overlayfs fail with ELOOP.  Its
     * topmost occurrence hides everything the lower ones contribute, so
     * those are dropped: the merged view is the same. */
    r->lowers = strv_new();
    for (size_t i = 0; lowers[i]; i++)
        if (!strv_contains(r->lowers, lowers[i]))
            strv_push(&r->lowers, lowers[i]);
    if (store_mkdtemp(s, "rootfs", &r->scratch, err) < 0) {
        rootfs_release(r);
        return -1;
    }
    if (do_mount(r, err) < 0) {
        kiln_error_wrap(err, "%s driver", driver_name(d));
        rootfs_release(r);
        return -1;
    }
    log_debug("rootfs: %s, %zu layers, mounted in %.2f ms", driver_name(d), strv_len(r->lowers),
              now_ms() - r->started_ms);
    *ret = r;
    return 0;
}

void rootfs_release(struct rootfs *r)
{
    if (!r)
        return;
    double t0 = now_ms();
    if (r->driver == DRIVER_OVERLAY)
        overlay_umount(r);
    else if (r->driver == DRIVER_FUSE_OVERLAYFS)
        fuse_umount(r);
    if (r->scratch) {
        int e = fs_rm_rf(r->scratch);
        if (e < 0)
            log_debug("rootfs: remove '%s': %s", r->scratch, strerror(-e));
    }
    /* "step" = mount, run, diff and release: the fixed cost of a RUN */
    if (r->started_ms > 0)
        log_debug("rootfs: released in %.2f ms; step %.2f ms since the mount began",
                  now_ms() - t0, now_ms() - r->started_ms);
    free(r->scratch);
    free(r->merged);
    free(r->upper);
    free(r->work);
    free(r->owner_log);
    strv_free(r->lowers);
    free(r);
}

/* ---- choosing ------------------------------------------------------------------- */

/* A real test: one lower with a file and a directory; the merged view must
 * show them, take a new file into the upper, and record a deletion as a
 * whiteout in the upper. */
static int probe_mounted(struct rootfs *r, struct kiln_error **err)
{
    _cleanup_free_ char *mf = xasprintf("%s/f", r->merged);
    _cleanup_free_ char *mg = xasprintf("%s/g", r->merged);
    _cleanup_free_ char *ug = xasprintf("%s/g", r->upper);
    _cleanup_free_ char *uf = xasprintf("%s/f", r->upper);
    struct stat st;
    if (!fs_exists(mf))
        return kiln_error_set(err, 0, "probe: the lower file is not visible");
    if (fs_write_atomic_at(AT_FDCWD, mg, "y", 1, 0644, false) < 0 || !fs_exists(ug))
        return kiln_error_set(err, errno, "probe: a new file did not reach the upper directory");
    if (unlink(mf) < 0)
        return kiln_error_set(err, errno, "probe: delete a lower file");
    if (lstat(uf, &st) < 0 || !(stat_is_whiteout(&st) || S_ISREG(st.st_mode)))
        return kiln_error_set(err, 0, "probe: deleting a lower file left no whiteout");
    return 0;
}

static int probe(struct store *s, enum storage_driver d, struct kiln_error **err)
{
    if (d == DRIVER_COPY)
        return 0;
    _cleanup_free_ char *dir = NULL;
    if (store_mkdtemp(s, "probe", &dir, err) < 0)
        return -1;
    _cleanup_free_ char *lower = xasprintf("%s/lower", dir);
    _cleanup_free_ char *file = xasprintf("%s/lower/f", dir);
    int ret = -1;
    struct rootfs *r = NULL;
    if (mkdir(lower, 0755) < 0 || fs_write_atomic_at(AT_FDCWD, file, "x", 1, 0644, false) < 0) {
        kiln_error_set(err, errno, "probe: prepare '%s'", dir);
        goto out;
    }
    char *lowers[] = {lower, NULL};
    r = xcalloc(1, sizeof(*r));
    r->driver = d;
    r->lowers = strv_copy(lowers);
    r->scratch = xasprintf("%s/mnt", dir);
    if (mkdir(r->scratch, 0700) < 0) {
        kiln_error_set(err, errno, "probe: prepare '%s'", r->scratch);
        goto out;
    }
    if (do_mount(r, err) < 0 || probe_mounted(r, err) < 0)
        goto out;
    ret = 0;
out:
    if (r) {
        free(r->scratch); /* removed with dir, below */
        r->scratch = NULL;
        rootfs_release(r);
    }
    fs_rm_rf(dir);
    return ret;
}

static pthread_mutex_t resolve_lock = PTHREAD_MUTEX_INITIALIZER;
static int resolved[4];        /* 0 untested, 1 works, -1 fails */
static char *resolve_why[4];

static int check_driver(struct store *s, enum storage_driver d, struct kiln_error **err)
{
    if (resolved[d] == 0) {
        struct kiln_error *e = NULL;
        if (probe(s, d, &e) == 0) {
            resolved[d] = 1;
        } else {
            resolved[d] = -1;
            resolve_why[d] = kiln_error_text(e);
            kiln_error_free(&e);
        }
        log_debug("storage driver %s: %s", driver_name(d),
                  resolved[d] > 0 ? "works" : resolve_why[d]);
    }
    if (resolved[d] < 0)
        return kiln_error_set(err, 0, "storage driver %s does not work here: %s", driver_name(d),
                              resolve_why[d]);
    return 0;
}

int driver_resolve(struct store *s, enum storage_driver want, enum storage_driver *ret,
                   struct kiln_error **err)
{
    if ((size_t)want >= ARRAY_SIZE(names))
        return kiln_error_set(err, EINVAL, "unknown storage driver %d", (int)want);
    pthread_mutex_lock(&resolve_lock);
    int r = 0;
    if (want != DRIVER_AUTO) {
        r = check_driver(s, want, err);
        if (r == 0)
            *ret = want;
    } else {
        static const enum storage_driver order[] = {DRIVER_OVERLAY, DRIVER_FUSE_OVERLAYFS,
                                                    DRIVER_COPY};
        r = -1;
        for (size_t i = 0; i < ARRAY_SIZE(order) && r < 0; i++) {
            if (check_driver(s, order[i], NULL) == 0) {
                *ret = order[i];
                r = 0;
            }
        }
        if (r < 0)
            kiln_error_set(err, 0, "no storage driver works here");
    }
    pthread_mutex_unlock(&resolve_lock);
    return r;
}

int rootfs_mount(struct store *s, enum storage_driver d, char *const *lowers, struct rootfs **ret,
                 struct kiln_error **err)
{
    static char *const none[] = {NULL};
    if (d == DRIVER_AUTO && driver_resolve(s, DRIVER_AUTO, &d, err) < 0)
        return -1;
    return mount_with(s, d, lowers ? lowers : none, ret, err);
}
