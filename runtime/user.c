/* USER resolution against the image's /etc/passwd and /etc/group (read
 * through the rootfs with RESOLVE_IN_ROOT, never the host's files), and the
 * environment defaults Docker adds. */
#include "runtime/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"
#include "runtime/internal.h"

#define DB_MAX (16u << 20) /* largest passwd/group file read */
#define MAX_GROUPS 65536

struct db_line {
    const char *f[7]; /* fields (NUL-terminated in place) */
    size_t n;
};

/* Reads rootfs/etc/NAME; *ret NULL when the file is missing. */
static int read_db(const char *rootfs, const char *name, char **ret, struct kiln_error **err)
{
    *ret = NULL;
    _cleanup_close_ int rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return kiln_error_set(err, errno, "opening rootfs '%s'", rootfs);
    struct open_how how = {.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY, .resolve = RESOLVE_IN_ROOT};
    char path[32];
    snprintf(path, sizeof(path), "etc/%s", name);
    _cleanup_close_ int fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        return kiln_error_set(err, errno, "opening /%s in the image", path);
    }
    int r = fs_read_fd(fd, DB_MAX, ret, NULL);
    if (r < 0)
        return kiln_error_set(err, -r, "reading /%s in the image", path);
    return 0;
}

/* Splits the next line of *pos into ':'-separated fields. */
static bool next_line(char **pos, struct db_line *l)
{
    while (**pos) {
        char *line = *pos;
        char *nl = strchr(line, '\n');
        if (nl) {
            *nl = '\0';
            *pos = nl + 1;
        } else {
            *pos = line + strlen(line);
        }
        size_t len = strlen(line);
        if (len && line[len - 1] == '\r')
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        l->n = 0;
        char *f = line;
        for (;;) {
            char *c = strchr(f, ':');
            if (l->n < ARRAY_SIZE(l->f))
                l->f[l->n++] = f;
            if (!c)
                break;
            *c = '\0';
            f = c + 1;
        }
        return true;
    }
    return false;
}

static bool parse_id(const char *s, uint32_t *ret)
{
    if (!s || !*s || strlen(s) > 10)
        return false;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (v >= UINT32_MAX)
        return false;
    *ret = (uint32_t)v;
    return true;
}

void run_user_free(struct run_user *u)
{
    if (!u)
        return;
    free(u->groups);
    free(u->home);
    free(u->name);
    memset(u, 0, sizeof(*u));
}

static bool in_member_list(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p && *p;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (len == n && memcmp(p, name, n) == 0)
            return true;
        p = c ? c + 1 : NULL;
    }
    return false;
}

int runtime_user_resolve(const char *rootfs, const char *user, struct run_user *ret,
                         struct kiln_error **err)
{
    memset(ret, 0, sizeof(*ret));
    _cleanup_free_ char *passwd = NULL, *groups = NULL;
    if (read_db(rootfs, "passwd", &passwd, err) < 0 || read_db(rootfs, "group", &groups, err) < 0)
        return -1;
    return runtime_user_resolve_db(passwd, groups, user, ret, err);
}

int runtime_user_resolve_db(const char *passwd, const char *groups, const char *user,
                    struct run_user *ret, struct kiln_error **err)
{
    memset(ret, 0, sizeof(*ret));
    if (!user || !*user)
        user = "0";
    _cleanup_free_ char *spec = xstrdup(user);
    char *group = strchr(spec, ':');
    if (group)
        *group++ = '\0';
    if (!*spec)
        return kiln_error_set(err, 0, "invalid USER '%s': empty user", user);

    uint32_t num;
    bool numeric = parse_id(spec, &num);
    bool found = false;
    struct run_user u = {0};
    /* a name match wins over a uid match, as in runc */
    for (int pass = 0; pass < 2 && !found && passwd; pass++) {
        _cleanup_free_ char *copy = xstrdup(passwd);
        char *pos = copy;
        struct db_line l;
        while (next_line(&pos, &l)) {
            uint32_t uid, gid;
            if (l.n < 4 || !parse_id(l.f[2], &uid) || !parse_id(l.f[3], &gid))
                continue;
            bool match = pass == 0 ? strcmp(l.f[0], spec) == 0 : numeric && uid == num;
            if (!match)
                continue;
            u.uid = uid;
            u.gid = gid;
            u.name = xstrdup(l.f[0]);
            u.home = xstrdup(l.n >= 6 && *l.f[5] ? l.f[5] : "/");
            found = true;
            break;
        }
    }
    if (!found) {
        if (!numeric)
            return kiln_error_set(err, 0,
                                  "unable to find user %s: no matching entries in passwd file",
                                  spec);
        u.uid = num;
        u.gid = 0;
        u.home = xstrdup("/");
    }

    if (group) {
        if (!*group) {
            run_user_free(&u);
            return kiln_error_set(err, 0, "invalid USER '%s': empty group", user);
        }
        uint32_t gnum;
        bool gnumeric = parse_id(group, &gnum);
        bool gfound = false;
        for (int pass = 0; pass < 2 && !gfound && groups; pass++) {
            _cleanup_free_ char *copy = xstrdup(groups);
            char *pos = copy;
            struct db_line l;
            while (next_line(&pos, &l)) {
                uint32_t gid;
                if (l.n < 3 || !parse_id(l.f[2], &gid))
                    continue;
                if (pass == 0 ? strcmp(l.f[0], group) == 0 : gnumeric && gid == gnum) {
                    u.gid = gid;
                    gfound = true;
                    break;
                }
            }
        }
        if (!gfound) {
            if (!gnumeric) {
                run_user_free(&u);
                return kiln_error_set(
                    err, 0, "unable to find group %s: no matching entries in group file", group);
            }
            u.gid = gnum;
        }
    } else if (u.name && groups) {
        /* supplementary groups: those that list the user as a member */
        size_t cap = 0;
        _cleanup_free_ char *copy = xstrdup(groups);
        char *pos = copy;
        struct db_line l;
        while (next_line(&pos, &l)) {
            uint32_t gid;
            if (l.n < 4 || !parse_id(l.f[2], &gid) || !in_member_list(l.f[3], u.name))
                continue;
            bool dup = false;
            for (size_t i = 0; i < u.n_groups; i++)
                dup |= u.groups[i] == gid;
            if (dup)
                continue;
            if (u.n_groups == MAX_GROUPS)
                break;
            XGROW(u.groups, cap, u.n_groups + 1);
            u.groups[u.n_groups++] = gid;
        }
    }
    *ret = u;
    return 0;
}

static bool env_has(char *const *env, const char *key)
{
    size_t n = strlen(key);
    for (size_t i = 0; env && env[i]; i++)
        if (strncmp(env[i], key, n) == 0 && env[i][n] == '=')
            return true;
    return false;
}

char **runtime_env_defaults(char *const *env, const char *home, const char *hostname, bool tty)
{
    char **out = env ? strv_copy(env) : strv_new();
    if (!env_has(out, "PATH"))
        strv_push(&out, "PATH=" RUNTIME_DEFAULT_PATH);
    if (hostname && !env_has(out, "HOSTNAME"))
        strv_push_take(&out, xasprintf("HOSTNAME=%s", hostname));
    if (!env_has(out, "HOME"))
        strv_push_take(&out, xasprintf("HOME=%s", home && *home ? home : "/"));
    if (tty && !env_has(out, "TERM"))
        strv_push(&out, "TERM=xterm");
    return out;
}
