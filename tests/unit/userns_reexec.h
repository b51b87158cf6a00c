/* For unit tests that need kiln's namespaces (kiln-test: as-users): run
 * unprivileged, the test re-executes itself under unshare(1) in a user and
 * mount namespace, range style (--map-auto, needs a /etc/subuid entry and
 * newuidmap) when the user has a subordinate range, else single-id style.
 * Root runs as it is.  (runtime/'s userns_enter will replace this.) */
#ifndef KILN_TEST_USERNS_REEXEC_H
#define KILN_TEST_USERNS_REEXEC_H

#include <errno.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static inline bool userns_has_subuid(void)
{
    struct passwd *pw = getpwuid(getuid());
    FILE *f = fopen("/etc/subuid", "re");
    if (!pw || !f) {
        if (f)
            fclose(f);
        return false;
    }
    char line[512];
    char uid[32];
    snprintf(uid, sizeof(uid), "%u", (unsigned)getuid());
    bool found = false;
    while (!found && fgets(line, sizeof(line), f)) {
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        *colon = '\0';
        found = strcmp(line, pw->pw_name) == 0 || strcmp(line, uid) == 0;
    }
    fclose(f);
    return found && access("/usr/bin/newuidmap", X_OK) == 0;
}

/* Returns only when no re-execution happened (root, already inside, or
 * unshare missing); KILN_TEST_USERNS then tells which. */
static inline void userns_reexec(void)
{
    if (geteuid() == 0 || getenv("KILN_TEST_USERNS"))
        return;
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return;
    self[n] = '\0';
    bool range = userns_has_subuid();
    setenv("KILN_TEST_USERNS", range ? "range" : "single", 1);
    char *range_args[] = {"unshare", "--map-auto", "--map-root-user", "--mount", self, NULL};
    char *single_args[] = {"unshare", "--map-root-user", "--mount", self, NULL};
    execvp("unshare", range ? range_args : single_args);
    fprintf(stderr, "cannot re-run in a user namespace (unshare): %s\n", strerror(errno));
    unsetenv("KILN_TEST_USERNS");
}

#endif
