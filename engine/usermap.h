/* USER and --chown resolution against an image's own /etc/passwd and
 * /etc/group (never the host's), with Docker's rules. */
#ifndef KILN_USERMAP_H
#define KILN_USERMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "lib/error.h"

struct resolved_user {
    uid_t uid;
    gid_t gid;
    gid_t *groups; /* supplementary groups (for USER) */
    size_t n_groups;
    char *home;    /* from passwd, or "/" */
};

void resolved_user_free(struct resolved_user *u);

/* USER semantics: "name", "uid", "name:group", "uid:gid"; a name must exist
 * in passwd; a numeric uid without an entry gets gid 0; supplementary groups
 * are the passwd user's memberships in /etc/group.  passwd/group may be NULL
 * (no such file in the image). */
int usermap_resolve_user(const char *spec, const char *passwd, const char *group,
                         struct resolved_user *ret, struct kiln_error **err);

/* --chown semantics (BuildKit's): a name takes its passwd gid, a numeric uid
 * without a group takes the same number as gid; no supplementary groups. */
int usermap_resolve_chown(const char *spec, const char *passwd, const char *group, uid_t *ret_uid,
                          gid_t *ret_gid, struct kiln_error **err);

#endif
