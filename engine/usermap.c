#include "engine/usermap.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"

void resolved_user_free(struct resolved_user *u)
{
    free(u->groups);
    free(u->home);
    memset(u, 0, sizeof(*u));
}

static bool parse_id(const char *s, uint32_t *ret)
{
    if (!*s)
        return false;
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v > UINT32_MAX - 1 || s[0] == '-' || s[0] == '+')
        return false;
    *ret = (uint32_t)v;
    return true;
}

/* Field `idx` (0-based) of a colon-separated line, copied. */
static char *field(const char *line, size_t len, int idx)
{
    const char *p = line, *end = line + len;
    for (int i = 0; i < idx; i++) {
        const char *c = memchr(p, ':', (size_t)(end - p));
        if (!c)
            return NULL;
        p = c + 1;
    }
    const char *c = memchr(p, ':', (size_t)(end - p));
    return xstrndup(p, c ? (size_t)(c - p) : (size_t)(end - p));
}

/* Iterates the non-comment lines of a passwd/group file. */
#define FOR_EACH_LINE(buf, line, len)                                                              \
    for (const char *line = (buf), *_nl; line && *line; line = _nl ? _nl + 1 : NULL)               \
        for (size_t len = ((_nl = strchr(line, '\n')) ? (size_t)(_nl - line) : strlen(line)),      \
                    _once = 1;                                                                     \
             _once && len > 0 && line[0] != '#'; _once = 0)

/* Finds a passwd entry by name or uid. */
static bool passwd_find(const char *passwd, const char *name, const uint32_t *uid, uint32_t *ret_uid,
                        uint32_t *ret_gid, char **ret_name, char **ret_home)
{
    if (!passwd)
        return false;
    FOR_EACH_LINE(passwd, line, len)
    {
        char *n = field(line, len, 0), *u = field(line, len, 2), *g = field(line, len, 3);
        uint32_t uu, gg;
        bool ok = n && u && g && parse_id(u, &uu) && parse_id(g, &gg) &&
                  ((name && strcmp(n, name) == 0) || (uid && uu == *uid));
        if (ok) {
            *ret_uid = uu;
            *ret_gid = gg;
            if (ret_name)
                *ret_name = xstrdup(n);
            if (ret_home) {
                char *h = field(line, len, 5);
                *ret_home = h && *h ? h : (free(h), xstrdup("/"));
            }
        }
        free(n);
        free(u);
        free(g);
        if (ok)
            return true;
    }
    return false;
}

static bool group_find(const char *group, const char *name, uint32_t *ret_gid)
{
    if (!group)
        return false;
    FOR_EACH_LINE(group, line, len)
    {
        char *n = field(line, len, 0), *g = field(line, len, 2);
        uint32_t gg;
        bool ok = n && g && strcmp(n, name) == 0 && parse_id(g, &gg);
        free(n);
        free(g);
        if (ok) {
            *ret_gid = gg;
            return true;
        }
    }
    return false;
}

/* Supplementary groups: groups listing `user` as a member. */
static void group_memberships(const char *group, const char *user, gid_t primary,
                              struct resolved_user *u)
{
    if (!group || !user)
        return;
    FOR_EACH_LINE(group, line, len)
    {
        char *g = field(line, len, 2), *members = field(line, len, 3);
        uint32_t gg;
        if (g && members && parse_id(g, &gg) && gg != primary) {
            char *save = NULL;
            for (char *m = strtok_r(members, ",", &save); m; m = strtok_r(NULL, ",", &save)) {
                if (strcmp(m, user) == 0) {
                    u->groups = xreallocarray(u->groups, u->n_groups + 1, sizeof(gid_t));
                    u->groups[u->n_groups++] = gg;
                    break;
                }
            }
        }
        free(g);
        free(members);
    }
}

static int resolve(const char *spec, const char *passwd, const char *group, bool chown,
                   struct resolved_user *ret, struct kiln_error **err)
{
    memset(ret, 0, sizeof(*ret));
    char *user = xstrdup(spec);
    char *grp = strchr(user, ':');
    if (grp)
        *grp++ = '\0';
    uint32_t uid = 0, gid = 0;
    char *name = NULL;
    bool have_entry = false;
    if (!*user) {
        free(user);
        return kiln_error_set(err, 0, "invalid user '%s'", spec);
    }
    if (parse_id(user, &uid)) {
        uint32_t pu;
        have_entry = passwd_find(passwd, NULL, &uid, &pu, &gid, &name, &ret->home);
        if (!have_entry || chown)
            gid = chown ? uid : 0;
    } else {
        have_entry = passwd_find(passwd, user, NULL, &uid, &gid, &name, &ret->home);
        if (!have_entry) {
            kiln_error_set(err, 0, "unable to find user %s: no matching entries in passwd file",
                           user);
            free(user);
            return -1;
        }
    }
    if (grp) {
        if (!*grp) {
            kiln_error_set(err, 0, "invalid user '%s': empty group", spec);
            goto fail;
        }
        if (!parse_id(grp, &gid) && !group_find(group, grp, &gid)) {
            kiln_error_set(err, 0, "unable to find group %s: no matching entries in group file",
                           grp);
            goto fail;
        }
    } else if (!chown && have_entry) {
        group_memberships(group, name, gid, ret);
    }
    if (!ret->home)
        ret->home = xstrdup("/");
    ret->uid = uid;
    ret->gid = gid;
    free(name);
    free(user);
    return 0;
fail:
    free(name);
    free(user);
    resolved_user_free(ret);
    return -1;
}

int usermap_resolve_user(const char *spec, const char *passwd, const char *group,
                         struct resolved_user *ret, struct kiln_error **err)
{
    return resolve(spec, passwd, group, false, ret, err);
}

int usermap_resolve_chown(const char *spec, const char *passwd, const char *group, uid_t *ret_uid,
                          gid_t *ret_gid, struct kiln_error **err)
{
    struct resolved_user u;
    if (resolve(spec, passwd, group, true, &u, err) < 0)
        return -1;
    *ret_uid = u.uid;
    *ret_gid = u.gid;
    resolved_user_free(&u);
    return 0;
}
