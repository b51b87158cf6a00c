/* --chown resolution against an image's own /etc/passwd and /etc/group
 * (never the host's).  USER itself is runtime_user_resolve_db's job
 * (runtime/runtime.h); --chown differs from it in one rule only. */
#ifndef KILN_USERMAP_H
#define KILN_USERMAP_H

#include <sys/types.h>

#include "lib/error.h"

/* BuildKit's --chown: a name takes its passwd gid, a numeric uid without a
 * group takes the same number as gid; no supplementary groups. */
int usermap_resolve_chown(const char *spec, const char *passwd, const char *group, uid_t *ret_uid,
                          gid_t *ret_gid, struct kiln_error **err);

#endif
