#include "engine/usermap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime.h"

int usermap_resolve_chown(const char *spec, const char *passwd, const char *group, uid_t *ret_uid,
                          gid_t *ret_gid, struct kiln_error **err)
{
    struct run_user u;
    if (runtime_user_resolve_db(passwd, group, spec, &u, err) < 0)
        return -1;
    *ret_uid = u.uid;
    *ret_gid = u.gid;
    /* a bare number: the same number for the group, whatever passwd says */
    if (!strchr(spec, ':')) {
        char *end = NULL;
        errno = 0;
        strtoul(spec, &end, 10);
        if (!errno && end != spec && !*end)
            *ret_gid = (gid_t)u.uid;
    }
    run_user_free(&u);
    return 0;
}
