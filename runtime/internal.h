/* Internals of runtime/: the plan the parent prepares before clone, and
 * the pieces of the child's setup sequence. */
#ifndef KILN_RUNTIME_INTERNAL_H
#define KILN_RUNTIME_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "lib/error.h"
#include "runtime/runtime.h"
#include "seccomp/filter.h"
#include "seccomp/rootemu.h"

/* ---- sync.c: child -> parent messages ------------------------------------- */

enum sync_type {
    SYNC_ERROR = 1, /* setup or exec failed: code (errno), status, text */
    SYNC_PTY,       /* carries the pty master (SCM_RIGHTS) */
};

struct sync_msg {
    int32_t type;
    int32_t code;   /* errno */
    int32_t status; /* exit status the error maps to (125, 126, 127) */
    char text[496];
};

/* Child side (no allocation). */
int sync_send(int fd, const struct sync_msg *m, int pass_fd);
/* Sends SYNC_ERROR "what 'arg'" (arg may be NULL). */
void sync_error(int fd, int code, int status, const char *what, const char *arg);
/* Parent side: one message; 0 at end of stream, -errno on error.
 * *ret_fd receives a passed descriptor or -1. */
int sync_recv(int fd, struct sync_msg *m, int *ret_fd);
/* Sends / receives one descriptor over a socket (root emulation listener). */
int fd_send(int sock, int fd);
int fd_recv(int sock);

/* ---- caps.c ------------------------------------------------------------------ */

/* Docker's default capability set as a bit mask. */
uint64_t caps_docker_default(void);
/* The highest capability the kernel knows. */
int caps_last_cap(void);
/* Child side: drops every capability not in keep from the bounding set. */
int caps_drop_bounding(uint64_t keep, int last_cap);
/* Child side: sets effective = permitted = eff, inheritable = 0; clears ambient. */
int caps_set(uint64_t eff);
/* Child side: uid 0 stops gaining capabilities on exec (single-ID USER). */
int caps_lock_noroot(void);

/* ---- mounts.c --------------------------------------------------------------- */

/* Mount points the parent had to create in the rootfs, removed after the run. */
struct stub {
    int parent_fd; /* O_DIRECTORY */
    char *name;
    bool dir;
    struct timespec times[2]; /* the parent's atime/mtime before */
};

struct stubs {
    struct stub *v;
    size_t n, cap;
};

/* Makes sure `target` (relative to the rootfs, resolved inside it) exists as
 * a directory or a file, creating what is missing and recording it.
 * *ret_usable is false when the target is a dangling symlink (left alone). */
int stubs_ensure(int rootfd, const char *target, bool dir, struct stubs *s, bool *ret_usable,
                 struct kiln_error **err);
/* Removes the stubs (newest first) and restores their parents' times. */
void stubs_remove(struct stubs *s);

enum plan_mount_kind { PM_BIND = 0, PM_TMPFS };

struct plan_mount {
    enum plan_mount_kind kind;
    char *source; /* host path (binds); owned */
    char *target; /* relative to the rootfs; owned */
    bool readonly, recursive;
    char data[80]; /* tmpfs options */
};

/* ---- user.c -------------------------------------------------------------------- */


/* ---- the plan ----------------------------------------------------------------- */

/* Every string the child uses is a copy owned by the plan: the init wipes
 * kiln's argv and environ area, which the caller's strings may point into. */
struct run_plan {
    const char *rootfs;
    char *const *argv;
    char *const *envp;
    const char *path_env; /* PATH from envp, for the lookup of argv[0] */
    const char *cwd;
    const char *hostname;
    uid_t uid;
    gid_t gid;
    const gid_t *groups;
    size_t n_groups;
    bool single;       /* single-ID mode: no setgroups; other ids are emulated */
    bool netns;        /* --network=none: bring lo up */
    bool tty;
    uint64_t cap_keep; /* Docker's default set */
    int cap_last;

    struct plan_mount *mounts; /* hosts, resolv.conf, then the spec's */
    size_t n_mounts;
    char devpts_opts[96];
    char shm_opts[64];

    const struct run_ulimit *ulimits;
    size_t n_ulimits;

    struct filter_prog *filter; /* NULL: none */
    bool use_emu;
    struct rootemu emu;

    /* kiln's argv and environ strings (from /proc/self/stat), which the
     * init wipes: its /proc/1/cmdline is readable by the container */
    uintptr_t arg_start, arg_end, env_start, env_end;

    int sync_fd; /* the child's end */
    int stdin_fd, stdout_fd, stderr_fd; /* -1: /dev/null (stdin) or inherit */
};

/* child.c: the cloned child; never returns. */
_Noreturn void child_main(struct run_plan *p);

/* mounts.c, child side: everything up to and including pivot_root.  On
 * failure reports through the sync socket and returns -1. */
int mounts_setup(struct run_plan *p);

/* init.c: pid 1 after the payload was started; never returns. */
_Noreturn void init_loop(struct run_plan *p, pid_t payload, int sigfd);

/* Signals pid 1 forwards to the payload. */
extern const int init_forwarded_signals[];

#endif
