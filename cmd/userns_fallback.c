/* cli_enter_namespaces() for the image commands until cmd/cli.c provides
 * it through runtime/runtime.h's userns_enter.  It is a weak definition:
 * the real one replaces it at link time, and this file can then go.
 *
 * What prune, rmi and reset need is kiln's user namespace, in which files
 * of layer trees owned by subordinate ids are the process's own (as
 * container root with CAP_DAC_OVERRIDE and CAP_FOWNER there), so that they
 * can be deleted.  Range mode maps 0 to the user and 1..N to the
 * /etc/subuid and /etc/subgid ranges through newuidmap/newgidmap; single-ID
 * mode maps 0 to the user alone.  Real root in the initial namespace needs
 * nothing. */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd/cli.h"
#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"

static bool in_initial_userns(void)
{
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    if (fs_read_file_at(AT_FDCWD, "/proc/self/uid_map", 4096, &buf, &len) < 0)
        return false;
    unsigned long a = 0, b = 0, c = 0;
    return sscanf(buf, "%lu %lu %lu", &a, &b, &c) == 3 && a == 0 && b == 0 && c == 4294967295UL;
}

/* The subordinate range of the user in /etc/subuid or /etc/subgid. */
static bool sub_range(const char *file, const char *user, unsigned long id, unsigned long *start,
                      unsigned long *count)
{
    _cleanup_fclose_ FILE *f = fopen(file, "re");
    if (!f)
        return false;
    char line[512];
    char idstr[32];
    snprintf(idstr, sizeof(idstr), "%lu", id);
    while (fgets(line, sizeof(line), f)) {
        char *c1 = strchr(line, ':');
        if (!c1)
            continue;
        *c1 = '\0';
        if (strcmp(line, user) != 0 && strcmp(line, idstr) != 0)
            continue;
        unsigned long s = 0, n = 0;
        if (sscanf(c1 + 1, "%lu:%lu", &s, &n) == 2 && n > 0) {
            *start = s;
            *count = n;
            return true;
        }
    }
    return false;
}

static int write_file(const char *path, const char *s)
{
    _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    return fs_write_all(fd, s, strlen(s));
}

static int run_helper(const char *prog, pid_t target, unsigned long id, unsigned long start,
                      unsigned long count)
{
    char a[5][32];
    snprintf(a[0], 32, "%d", (int)target);
    snprintf(a[1], 32, "%lu", id);
    snprintf(a[2], 32, "%lu", start);
    snprintf(a[3], 32, "%lu", count);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        execlp(prog, prog, a[0], "0", a[1], "1", "1", a[2], a[3], (char *)NULL);
        _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

__attribute__((weak)) int cli_enter_namespaces(struct kiln_error **err)
{
    static bool entered;
    if (entered)
        return 0;
    uid_t uid = getuid();
    gid_t gid = getgid();
    if (uid == 0 && in_initial_userns()) {
        entered = true;
        return 0;
    }
    const char *mode = g_opts.userns ? g_opts.userns : "auto";
    struct passwd *pw = getpwuid(uid);
    const char *user = pw ? pw->pw_name : "";
    unsigned long us = 0, un = 0, gs = 0, gn = 0;
    bool have_range = sub_range("/etc/subuid", user, uid, &us, &un) &&
                      sub_range("/etc/subgid", user, uid, &gs, &gn) &&
                      access("/usr/bin/newuidmap", X_OK) == 0 &&
                      access("/usr/bin/newgidmap", X_OK) == 0;
    bool range = strcmp(mode, "range") == 0 || (strcmp(mode, "auto") == 0 && have_range);
    if (range && !have_range)
        return kiln_error_set(err, 0, "--userns=range: no /etc/subuid and /etc/subgid range for "
                                      "'%s', or no newuidmap/newgidmap",
                              user);
    if (range) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
            return kiln_error_set(err, errno, "pipe");
        pid_t parent = getpid();
        pid_t child = fork();
        if (child < 0)
            return kiln_error_set(err, errno, "fork");
        if (child == 0) {
            /* wait until the parent has unshared, then map it */
            char c;
            close(p[1]);
            if (read(p[0], &c, 1) != 1)
                _exit(1);
            if (run_helper("newuidmap", parent, uid, us, un) < 0 ||
                run_helper("newgidmap", parent, gid, gs, gn) < 0)
                _exit(1);
            _exit(0);
        }
        close(p[0]);
        int r = unshare(CLONE_NEWUSER);
        int e = errno;
        if (write(p[1], "x", 1) != 1) {
            /* the child then fails and is reported below */
        }
        close(p[1]);
        int st = 0;
        while (waitpid(child, &st, 0) < 0 && errno == EINTR)
            ;
        if (r < 0)
            return kiln_error_set(err, e, "unshare a user namespace");
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            return kiln_error_set(err, 0, "newuidmap/newgidmap failed for '%s'", user);
    } else {
        if (unshare(CLONE_NEWUSER) < 0)
            return kiln_error_set(err, errno, "unshare a user namespace");
        char map[64];
        int r = write_file("/proc/self/setgroups", "deny");
        snprintf(map, sizeof(map), "0 %lu 1", (unsigned long)uid);
        if (r == 0)
            r = write_file("/proc/self/uid_map", map);
        snprintf(map, sizeof(map), "0 %lu 1", (unsigned long)gid);
        if (r == 0)
            r = write_file("/proc/self/gid_map", map);
        if (r < 0)
            return kiln_error_set(err, -r, "write the user namespace's id maps");
    }
    entered = true;
    return 0;
}
