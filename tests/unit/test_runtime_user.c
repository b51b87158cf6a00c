/* runtime/: USER lookup, environment defaults, subordinate id files, mode
 * names.  No namespaces needed: runs as any user. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"
#include "runtime/idmap.h"
#include "runtime/internal.h"
#include "runtime/runtime.h"

static const char passwd[] = "root:x:0:0:root:/root:/bin/bash\n"
                             "# a comment\n"
                             "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
                             "app:x:1234:1235:App:/home/app:/bin/sh\n"
                             "\n"
                             "broken line without fields\n"
                             "nohome:x:1500:1500::\n"
                             "1600:x:1700:1700::/home/numeric-name:/bin/sh\n"
                             "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
static const char group[] = "root:x:0:\n"
                            "daemon:x:1:\n"
                            "app:x:1235:\n"
                            "staff:x:50:app,other\n"
                            "audio:x:29:other,app\n"
                            "dup:x:50:app\n"
                            "video:x:44:other\n"
                            "nogroup:x:65534:\n";

struct user_case {
    const char *spec;
    int ok;
    uid_t uid;
    gid_t gid;
    const char *home;
    size_t n_groups;
    const char *error;
};

static const struct user_case user_cases[] = {
    {"", 1, 0, 0, "/root", 0, NULL},
    {NULL, 1, 0, 0, "/root", 0, NULL},
    {"root", 1, 0, 0, "/root", 0, NULL},
    {"app", 1, 1234, 1235, "/home/app", 2, NULL}, /* staff (50, once) and audio */
    {"1234", 1, 1234, 1235, "/home/app", 2, NULL},
    {"app:audio", 1, 1234, 29, "/home/app", 0, NULL},
    {"app:29", 1, 1234, 29, "/home/app", 0, NULL},
    {"app:4242", 1, 1234, 4242, "/home/app", 0, NULL},
    {"1234:0", 1, 1234, 0, "/home/app", 0, NULL},
    {"4000", 1, 4000, 0, "/", 0, NULL},
    {"4000:4001", 1, 4000, 4001, "/", 0, NULL},
    {"nohome", 1, 1500, 1500, "/", 0, NULL},
    {"1600", 1, 1700, 1700, "/home/numeric-name", 0, NULL}, /* a name match wins */
    {"nobody", 1, 65534, 65534, "/nonexistent", 0, NULL},
    {"ghost", 0, 0, 0, NULL, 0, "unable to find user ghost: no matching entries in passwd file"},
    {"app:ghosts", 0, 0, 0, NULL, 0,
     "unable to find group ghosts: no matching entries in group file"},
    {"app:", 0, 0, 0, NULL, 0, "invalid USER 'app:': empty group"},
    {":0", 0, 0, 0, NULL, 0, "invalid USER ':0': empty user"},
    {"99999999999", 0, 0, 0, NULL, 0,
     "unable to find user 99999999999: no matching entries in passwd file"},
};

TEST(user_resolve_db)
{
    for (size_t i = 0; i < ARRAY_SIZE(user_cases); i++) {
        const struct user_case *c = &user_cases[i];
        struct run_user u;
        struct kiln_error *err = NULL;
        int r = runtime_user_resolve_db(passwd, group, c->spec, &u, &err);
        char name[64];
        snprintf(name, sizeof(name), "user '%s'", c->spec ? c->spec : "(null)");
        if (c->ok) {
            CHECK_INT_EQ(r, 0);
            if (r == 0) {
                CHECK_INT_EQ(u.uid, c->uid);
                CHECK_INT_EQ(u.gid, c->gid);
                CHECK_STR_EQ(u.home, c->home);
                CHECK_INT_EQ(u.n_groups, c->n_groups);
            } else {
                H_FAIL("%s: %s", name, err ? err->msg : "?");
            }
        } else {
            CHECK_INT_EQ(r, -1);
            CHECK_STR_EQ(err ? err->msg : NULL, c->error);
        }
        run_user_free(&u);
        kiln_error_free(&err);
    }
}

TEST(user_supplementary_groups)
{
    struct run_user u;
    struct kiln_error *err = NULL;
    CHECK_INT_EQ(runtime_user_resolve_db(passwd, group, "app", &u, &err), 0);
    CHECK_INT_EQ(u.n_groups, 2);
    if (u.n_groups == 2) {
        CHECK_INT_EQ(u.groups[0], 50);
        CHECK_INT_EQ(u.groups[1], 29);
    }
    CHECK_STR_EQ(u.name, "app");
    run_user_free(&u);
}

TEST(user_missing_files)
{
    struct run_user u;
    struct kiln_error *err = NULL;
    /* no /etc/passwd: numeric ids still work, names do not */
    CHECK_INT_EQ(runtime_user_resolve_db(NULL, NULL, "1000:1000", &u, &err), 0);
    CHECK_INT_EQ(u.uid, 1000);
    CHECK_INT_EQ(u.gid, 1000);
    CHECK_STR_EQ(u.home, "/");
    run_user_free(&u);
    CHECK_INT_EQ(runtime_user_resolve_db(NULL, NULL, "app", &u, &err), -1);
    CHECK_STR_EQ(err ? err->msg : NULL,
                 "unable to find user app: no matching entries in passwd file");
    kiln_error_free(&err);
}

/* Reading through a rootfs: /etc/passwd as a symlink to an absolute path,
 * /etc/group as one that climbs with "..", both resolve inside the rootfs,
 * never to the host's files. */
TEST(user_resolve_rootfs)
{
    char dir[] = "/tmp/kiln-test-user-XXXXXX";
    if (!mkdtemp(dir)) {
        H_FAIL("mkdtemp: %s", strerror(errno));
        return;
    }
    char *etc = path_join(dir, "etc");
    CHECK_INT_EQ(mkdir(etc, 0755), 0);
    int dfd = open(etc, O_PATH | O_DIRECTORY | O_CLOEXEC);
    CHECK_INT_EQ(fs_write_atomic_at(dfd, "passwd.real", "img:x:77:78::/img:/bin/sh\n", 26, 0644,
                                    false),
                 0);
    CHECK_INT_EQ(fs_write_atomic_at(dfd, "group.real", "imggrp:x:78:\n", 13, 0644, false), 0);
    CHECK_INT_EQ(symlinkat("/etc/passwd.real", dfd, "passwd"), 0);
    CHECK_INT_EQ(symlinkat("../../../../etc/group.real", dfd, "group"), 0);
    close(dfd);

    struct run_user u;
    struct kiln_error *err = NULL;
    CHECK_INT_EQ(runtime_user_resolve(dir, "img:imggrp", &u, &err), 0);
    CHECK_INT_EQ(u.uid, 77);
    CHECK_INT_EQ(u.gid, 78);
    CHECK_STR_EQ(u.home, "/img");
    run_user_free(&u);
    kiln_error_free(&err);
    /* the host's root user and group are not visible through the image */
    CHECK_INT_EQ(runtime_user_resolve(dir, "root", &u, &err), -1);
    kiln_error_free(&err);
    CHECK_INT_EQ(runtime_user_resolve(dir, "img:root", &u, &err), -1);
    CHECK_STR_EQ(err ? err->msg : NULL,
                 "unable to find group root: no matching entries in group file");
    kiln_error_free(&err);
    CHECK_INT_EQ(runtime_user_resolve("/nonexistent-rootfs", "root", &u, &err), -1);
    kiln_error_free(&err);
    fs_rm_rf(dir);
    free(etc);
}

static const char *env_get(char *const *env, const char *key)
{
    size_t n = strlen(key);
    for (size_t i = 0; env && env[i]; i++)
        if (strncmp(env[i], key, n) == 0 && env[i][n] == '=')
            return env[i] + n + 1;
    return NULL;
}

TEST(env_defaults)
{
    char **e = runtime_env_defaults(NULL, "/home/app", "build-1", false);
    CHECK_STR_EQ(env_get(e, "PATH"), RUNTIME_DEFAULT_PATH);
    CHECK_STR_EQ(env_get(e, "HOME"), "/home/app");
    CHECK_STR_EQ(env_get(e, "HOSTNAME"), "build-1");
    CHECK(env_get(e, "TERM") == NULL);
    strv_free(e);

    char *const img[] = {"PATH=/opt/bin", "HOME=/srv", "FOO=bar", NULL};
    e = runtime_env_defaults(img, "/home/app", NULL, true);
    CHECK_STR_EQ(env_get(e, "PATH"), "/opt/bin");
    CHECK_STR_EQ(env_get(e, "HOME"), "/srv");
    CHECK_STR_EQ(env_get(e, "FOO"), "bar");
    CHECK(env_get(e, "HOSTNAME") == NULL);
    CHECK_STR_EQ(env_get(e, "TERM"), "xterm");
    CHECK_INT_EQ(strv_len(e), 4);
    strv_free(e);

    e = runtime_env_defaults(NULL, NULL, NULL, false);
    CHECK_STR_EQ(env_get(e, "HOME"), "/");
    strv_free(e);
}

TEST(subid_parse)
{
    const char f[] = "# ranges\n"
                     "alice:100000:65536\n"
                     "bob:165536:65536\n"
                     "1001:300000:1000\r\n"
                     "alice:400000:10\n"
                     "alice:bad:10\n";
    struct subid_range *r = NULL;
    size_t n = 0;
    struct kiln_error *err = NULL;
    CHECK_INT_EQ(idmap_parse_subids(f, strlen(f) - 13, "alice", 1001, &r, &n, &err), 0);
    CHECK_INT_EQ(n, 3);
    if (n == 3) {
        CHECK_INT_EQ(r[0].start, 100000);
        CHECK_INT_EQ(r[0].count, 65536);
        CHECK_INT_EQ(r[1].start, 300000); /* by uid */
        CHECK_INT_EQ(r[2].count, 10);
    }
    CHECK_INT_EQ(idmap_total(r, n), 65536 + 1000 + 10);
    free(r);
    CHECK_INT_EQ(idmap_parse_subids(f, strlen(f), "alice", 1, &r, &n, &err), -1);
    CHECK(err && strstr(err->msg, "line 6"));
    kiln_error_free(&err);
    CHECK_INT_EQ(idmap_parse_subids(f, strlen(f), "carol", 4242, &r, &n, &err), 0);
    CHECK_INT_EQ(n, 0);
    free(r);
    /* a range running past 2^32 is ignored */
    const char g[] = "dave:4294967000:1000\n";
    CHECK_INT_EQ(idmap_parse_subids(g, strlen(g), "dave", 5, &r, &n, &err), 0);
    CHECK_INT_EQ(n, 0);
    free(r);
}

TEST(mode_names)
{
    enum userns_mode m;
    CHECK_INT_EQ(userns_mode_from_name("range", &m), 0);
    CHECK_INT_EQ(m, USERNS_RANGE);
    CHECK_INT_EQ(userns_mode_from_name("single", &m), 0);
    CHECK_INT_EQ(m, USERNS_SINGLE);
    CHECK_INT_EQ(userns_mode_from_name("auto", &m), 0);
    CHECK_INT_EQ(m, USERNS_AUTO);
    CHECK_INT_EQ(userns_mode_from_name("full", &m), -1);
    CHECK_STR_EQ(userns_mode_name(USERNS_SINGLE), "single");
}

TEST(runtime_run_requires_userns)
{
    char *const argv[] = {"/bin/true", NULL};
    struct run_spec s = {.rootfs = "/", .argv = argv, .stdin_fd = -1, .stdout_fd = -1,
                         .stderr_fd = -1};
    int status = -1;
    struct kiln_error *err = NULL;
    CHECK_INT_EQ(runtime_run(&s, &status, &err), -1);
    CHECK(err && err->status == KILN_EXIT_RUN_FAILED);
    kiln_error_free(&err);
}

int main(void)
{
    RUN(user_resolve_db);
    RUN(user_supplementary_groups);
    RUN(user_missing_files);
    RUN(user_resolve_rootfs);
    RUN(env_defaults);
    RUN(subid_parse);
    RUN(mode_names);
    RUN(runtime_run_requires_userns);
    return harness_done();
}
