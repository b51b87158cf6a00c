/* Id maps: subordinate id ranges (/etc/subuid, /etc/subgid), the
 * newuidmap/newgidmap helper, and maps kiln writes itself. */
#ifndef KILN_RUNTIME_IDMAP_H
#define KILN_RUNTIME_IDMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/error.h"

struct subid_range {
    uint32_t start, count;
};

/* The kernel takes at most 340 lines per map; one is the user's own id. */
#define IDMAP_MAX_RANGES 339
#define IDMAP_FILE_MAX (4u << 20)

/* Ranges for the user (by name or numeric id) in a subuid/subgid file, in
 * file order.  A missing file gives no ranges. */
int idmap_parse_subids(const char *buf, size_t len, const char *name, uint32_t id,
                       struct subid_range **ret, size_t *ret_n, struct kiln_error **err);
int idmap_read_subids(const char *path, const char *name, uint32_t id, struct subid_range **ret,
                      size_t *ret_n, struct kiln_error **err);
/* Sum of the counts (saturates at UINT32_MAX). */
uint32_t idmap_total(const struct subid_range *r, size_t n);

/* Full path of a helper found in $PATH (or the default path), NULL if none. */
char *idmap_find_helper(const char *name);

/* The map helper is forked before unshare(CLONE_NEWUSER) (maps must be
 * written from the outer namespace), waits until told to go, maps the
 * parent (newuidmap: 0 = the user, 1.. = the ranges) and reports. */
struct idmap_helper {
    pid_t pid;
    int go_fd, result_fd;
};

struct idmap_helper_opts {
    /* either the maps to write as they are (root, which has CAP_SETUID
     * only in the outer namespace) ... */
    const char *uid_map, *gid_map;
    /* ... or the setuid helpers and the ranges they map */
    const char *newuidmap, *newgidmap;
    uid_t uid;
    gid_t gid;
    const struct subid_range *uids, *gids;
    size_t n_uids, n_gids;
};

int idmap_helper_start(const struct idmap_helper_opts *o, struct idmap_helper *h,
                       struct kiln_error **err);
/* Tells the helper to map the caller (now in its new namespace) and waits;
 * newuidmap and newgidmap run side by side.  *ret_uid_done says whether a
 * map was written (then falling back to single-ID maps is impossible). */
int idmap_helper_run(struct idmap_helper *h, bool *ret_uid_done, struct kiln_error **err);
void idmap_helper_abort(struct idmap_helper *h);

/* Writes /proc/self/{uid,gid}_map (and "deny" to setgroups first when asked). */
int idmap_write_self(const char *which, const char *content, struct kiln_error **err);
int idmap_deny_setgroups(struct kiln_error **err);

/* The inside ranges of the current namespace's map ("/proc/self/uid_map"). */
int idmap_read_current(const char *which, struct subid_range **ret, size_t *ret_n,
                       struct kiln_error **err);

#endif
