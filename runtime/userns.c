/* kiln's own user and mount namespaces, entered once per command.
 *
 * Mode choice (auto):
 * - kiln runs as root with CAP_SETUID/CAP_SETGID: every id of the current
 *   namespace is mapped as it is ("range" behaviour, exact ownership);
 * - else range mode when kiln runs in the initial user namespace, the user
 *   has subordinate uids and gids totalling at least 65536 each (what images
 *   expect: nobody is 65534) and newuidmap/newgidmap are found; if the
 *   helpers then fail, kiln falls back to single-ID mode;
 * - else single-ID mode (root emulation).
 * --userns=range insists on a range of any size; --userns=single always
 * maps only the user's own id.  `why` says which and why. */
#include "runtime/runtime.h"

#include <errno.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/log.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"
#include "runtime/idmap.h"

#define RANGE_AUTO_MIN 65536u

static struct userns_info g_info;
static bool g_entered;

const char *userns_mode_name(enum userns_mode m)
{
    switch (m) {
    case USERNS_AUTO:
        return "auto";
    case USERNS_RANGE:
        return "range";
    case USERNS_SINGLE:
        return "single";
    }
    return "?";
}

int userns_mode_from_name(const char *name, enum userns_mode *ret)
{
    if (!name || !*name || strcmp(name, "auto") == 0)
        *ret = USERNS_AUTO;
    else if (strcmp(name, "range") == 0)
        *ret = USERNS_RANGE;
    else if (strcmp(name, "single") == 0)
        *ret = USERNS_SINGLE;
    else
        return -1;
    return 0;
}

const struct userns_info *userns_current(void)
{
    return g_entered ? &g_info : NULL;
}

/* The decision, with what entering needs. */
struct plan {
    enum userns_mode mode;
    bool as_root;             /* identity maps of the current namespace */
    struct subid_range *uids, *gids; /* subordinate ranges (range mode), or the
                                      * current namespace's extents (as_root) */
    size_t n_uids, n_gids;
    char *newuidmap, *newgidmap;
    char *why;
};

static void plan_free(struct plan *p)
{
    free(p->uids);
    free(p->gids);
    free(p->newuidmap);
    free(p->newgidmap);
    free(p->why);
    memset(p, 0, sizeof(*p));
}

static bool in_initial_userns(void)
{
    struct subid_range *r = NULL;
    size_t n = 0;
    bool initial = false;
    if (idmap_read_current("uid_map", &r, &n, NULL) == 0)
        initial = n == 1 && r[0].start == 0 && r[0].count == UINT32_MAX;
    free(r);
    return initial;
}

static bool has_setid_caps(void)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d) < 0)
        return false;
    uint32_t need = (1u << CAP_SETUID) | (1u << CAP_SETGID);
    return (d[0].effective & need) == need;
}

static int decide(enum userns_mode want, struct plan *p, struct kiln_error **err)
{
    memset(p, 0, sizeof(*p));
    uid_t uid = getuid();
    gid_t gid = getgid();

    if (want != USERNS_SINGLE && geteuid() == 0 && has_setid_caps()) {
        if (idmap_read_current("uid_map", &p->uids, &p->n_uids, err) < 0 ||
            idmap_read_current("gid_map", &p->gids, &p->n_gids, err) < 0) {
            plan_free(p);
            return -1;
        }
        uint32_t nu = idmap_total(p->uids, p->n_uids), ng = idmap_total(p->gids, p->n_gids);
        /* root of a namespace that maps only a few ids (a rootless
         * container mapping just its user) is better off emulating */
        if (want == USERNS_RANGE || (nu >= RANGE_AUTO_MIN && ng >= RANGE_AUTO_MIN)) {
            p->mode = USERNS_RANGE;
            p->as_root = true;
            p->why = xasprintf("range: kiln runs as root, %" PRIu32 " uids and %" PRIu32
                               " gids mapped as they are",
                               nu, ng);
            return 0;
        }
        plan_free(p);
        p->mode = USERNS_SINGLE;
        p->why = xasprintf("single: kiln runs as root of a user namespace with only %" PRIu32
                           " uids and %" PRIu32 " gids; only its own id is mapped, root emulated",
                           nu, ng);
        return 0;
    }
    if (want == USERNS_SINGLE) {
        p->mode = USERNS_SINGLE;
        p->why = xstrdup("single: --userns=single; only the user's id is mapped");
        return 0;
    }

    char pwbuf[4096];
    struct passwd pw, *pwp = NULL;
    getpwuid_r(uid, &pw, pwbuf, sizeof(pwbuf), &pwp);
    const char *name = pwp ? pwp->pw_name : NULL;
    char idname[32];
    snprintf(idname, sizeof(idname), "%u", (unsigned)uid);
    const char *who = name ? name : idname;

    /* Why range mode is impossible here (NULL: it is possible). */
    _cleanup_free_ char *reason = NULL;
    if (idmap_read_subids("/etc/subuid", name, uid, &p->uids, &p->n_uids, err) < 0 ||
        idmap_read_subids("/etc/subgid", name, gid, &p->gids, &p->n_gids, err) < 0) {
        plan_free(p);
        return -1;
    }
    /* /etc/subgid is keyed by user name or uid too */
    if (p->n_gids == 0 && name == NULL) {
        free(p->gids);
        p->gids = NULL;
        if (idmap_read_subids("/etc/subgid", NULL, uid, &p->gids, &p->n_gids, err) < 0) {
            plan_free(p);
            return -1;
        }
    }
    uint32_t nu = idmap_total(p->uids, p->n_uids), ng = idmap_total(p->gids, p->n_gids);
    p->newuidmap = idmap_find_helper("newuidmap");
    p->newgidmap = idmap_find_helper("newgidmap");
    if (nu == 0 || ng == 0)
        reason = xasprintf("no subordinate %s for '%s' in %s", nu == 0 ? "uids" : "gids", who,
                           nu == 0 ? "/etc/subuid" : "/etc/subgid");
    else if (!p->newuidmap || !p->newgidmap)
        reason = xasprintf("%s not found in $PATH", !p->newuidmap ? "newuidmap" : "newgidmap");
    else if (!in_initial_userns())
        reason = xstrdup("kiln already runs inside a user namespace, where newuidmap cannot work");

    if (want == USERNS_RANGE) {
        if (reason) {
            kiln_error_set(err, 0, "--userns=range: %s", reason);
            plan_free(p);
            return -1;
        }
        p->mode = USERNS_RANGE;
        p->why = xasprintf("range: --userns=range; %" PRIu32 " subordinate uids and %" PRIu32
                           " gids for '%s'",
                           nu, ng, who);
        return 0;
    }
    if (!reason && (nu < RANGE_AUTO_MIN || ng < RANGE_AUTO_MIN))
        reason = xasprintf("only %" PRIu32 " subordinate uids and %" PRIu32
                           " gids for '%s' (auto needs %u of each)",
                           nu, ng, who, RANGE_AUTO_MIN);
    if (reason) {
        p->mode = USERNS_SINGLE;
        p->why = xasprintf("single: %s; only the user's id is mapped, root emulated", reason);
    } else {
        p->mode = USERNS_RANGE;
        p->why = xasprintf("range: %" PRIu32 " subordinate uids and %" PRIu32
                           " gids for '%s' (newuidmap/newgidmap)",
                           nu, ng, who);
    }
    return 0;
}

/* uid and gid: the caller's ids outside (getuid() says 0 once inside). */
static void fill_info(struct userns_info *ret, const struct plan *p, uid_t uid, gid_t gid)
{
    memset(ret, 0, sizeof(*ret));
    ret->mode = p->mode;
    ret->host_uid = uid;
    ret->host_gid = gid;
    if (p->mode == USERNS_SINGLE) {
        ret->uid_count = ret->gid_count = 1;
    } else if (p->as_root) {
        ret->uid_count = idmap_total(p->uids, p->n_uids);
        ret->gid_count = idmap_total(p->gids, p->n_gids);
    } else {
        uint32_t nu = idmap_total(p->uids, p->n_uids), ng = idmap_total(p->gids, p->n_gids);
        ret->uid_count = nu == UINT32_MAX ? nu : nu + 1;
        ret->gid_count = ng == UINT32_MAX ? ng : ng + 1;
    }
    ret->why = xstrdup(p->why);
}

int userns_probe(enum userns_mode want, struct userns_info *ret, struct kiln_error **err)
{
    if (g_entered) {
        *ret = g_info;
        ret->why = xstrdup(g_info.why);
        return 0;
    }
    struct plan p;
    if (decide(want, &p, err) < 0)
        return -1;
    fill_info(ret, &p, getuid(), getgid());
    plan_free(&p);
    return 0;
}

static char *identity_map(const struct subid_range *r, size_t n)
{
    struct strbuf sb = STRBUF_INIT;
    for (size_t i = 0; i < n; i++)
        strbuf_addf(&sb, "%" PRIu32 " %" PRIu32 " %" PRIu32 "\n", r[i].start, r[i].start,
                    r[i].count);
    return strbuf_detach(&sb, NULL);
}

static int write_single_maps(uid_t uid, gid_t gid, bool uid_done, struct kiln_error **err)
{
    char line[64];
    if (!uid_done) {
        snprintf(line, sizeof(line), "0 %u 1\n", (unsigned)uid);
        if (idmap_write_self("uid_map", line, err) < 0)
            return -1;
    }
    /* An unprivileged gid_map needs setgroups denied; it works the same when
     * an outer namespace already denies it, whatever the outer uid. */
    if (idmap_deny_setgroups(err) < 0)
        return -1;
    snprintf(line, sizeof(line), "0 %u 1\n", (unsigned)gid);
    return idmap_write_self("gid_map", line, err);
}

int userns_enter(enum userns_mode want, struct userns_info *ret, struct kiln_error **err)
{
    if (g_entered) {
        if (ret) {
            *ret = g_info;
            ret->why = xstrdup(g_info.why);
        }
        return 0;
    }
    struct plan p;
    if (decide(want, &p, err) < 0)
        return -1;
    uid_t uid = getuid();
    gid_t gid = getgid();
    int r = -1;

    struct idmap_helper helper = {.pid = -1, .go_fd = -1, .result_fd = -1};
    _cleanup_free_ char *um = p.as_root ? identity_map(p.uids, p.n_uids) : NULL;
    _cleanup_free_ char *gm = p.as_root ? identity_map(p.gids, p.n_gids) : NULL;
    struct idmap_helper_opts ho = {.uid_map = um,
                                   .gid_map = gm,
                                   .newuidmap = p.newuidmap,
                                   .newgidmap = p.newgidmap,
                                   .uid = uid,
                                   .gid = gid,
                                   .uids = p.uids,
                                   .gids = p.gids,
                                   .n_uids = p.n_uids,
                                   .n_gids = p.n_gids};
    if (p.mode == USERNS_RANGE && idmap_helper_start(&ho, &helper, err) < 0)
        goto out;

    if (unshare(CLONE_NEWUSER) < 0) {
        int e = errno;
        idmap_helper_abort(&helper);
        kiln_error_set(err, e, "creating a user namespace%s",
                       e == EPERM || e == ENOSPC
                           ? " (are unprivileged user namespaces disabled here? see "
                             "/proc/sys/user/max_user_namespaces)"
                       : e == EINVAL ? " (kiln must be single-threaded here)"
                                     : "");
        goto out;
    }

    if (p.mode == USERNS_RANGE) {
        bool uid_done = false;
        struct kiln_error *herr = NULL;
        if (idmap_helper_run(&helper, &uid_done, &herr) < 0) {
            if (want == USERNS_RANGE || uid_done || p.as_root) {
                /* forced, or half done: a single-ID gid map would be wrong */
                kiln_error_set(err, 0, "mapping ids with newuidmap/newgidmap: %s", herr->msg);
                kiln_error_free(&herr);
                goto out;
            }
            log_debug("newuidmap failed (%s); using single-ID mode", herr->msg);
            free(p.why);
            p.why = xasprintf("single: newuidmap failed (%s); only the user's id is mapped, "
                              "root emulated",
                              herr->msg);
            kiln_error_free(&herr);
            p.mode = USERNS_SINGLE;
            if (write_single_maps(uid, gid, false, err) < 0)
                goto out;
        }
    } else {
        if (write_single_maps(uid, gid, false, err) < 0)
            goto out;
    }

    /* kiln's own mounts (overlay rootfs, fuse) live in a mount namespace
     * that dies with it and never propagate back. */
    if (unshare(CLONE_NEWNS) < 0) {
        kiln_error_set(err, errno, "creating a mount namespace");
        goto out;
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
        kiln_error_set(err, errno, "making mounts private");
        goto out;
    }

    fill_info(&g_info, &p, uid, gid);
    g_info.entered = true;
    g_entered = true;
    log_debug("user namespace: %s", g_info.why);
    if (ret) {
        *ret = g_info;
        ret->why = xstrdup(g_info.why);
    }
    r = 0;
out:
    plan_free(&p);
    return r;
}
