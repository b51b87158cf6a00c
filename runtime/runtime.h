/* Running one process in a rootless container.
 *
 * kiln enters its own user namespace once per command (userns_enter), before
 * it starts any thread: in range mode newuidmap/newgidmap map container 0 to
 * the user and 1..N to the subordinate range; in single-ID mode the process
 * maps only its own id.  It also unshares a mount namespace, so every mount
 * it makes (overlay rootfs, fuse) dies with it, even on SIGKILL.  Each RUN is
 * then a clone into new mount, pid, uts and ipc namespaces (and net with
 * --network=none) inside that user namespace: no helper process per step. */
#ifndef KILN_RUNTIME_H
#define KILN_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/error.h"

enum userns_mode { USERNS_AUTO = 0, USERNS_RANGE, USERNS_SINGLE };

struct userns_info {
    enum userns_mode mode; /* the mode in effect (never AUTO) */
    uid_t host_uid;        /* the caller's ids outside */
    gid_t host_gid;
    uint32_t uid_count;    /* ids mapped: 1 in single mode, 1 + range length in range
                            * mode, the whole namespace's for root */
    uint32_t gid_count;
    bool entered;
    char *why;             /* why this mode was chosen, for `kiln info` and the build
                            * log; a copy in what probe/enter return: free it */
};

const char *userns_mode_name(enum userns_mode m);
int userns_mode_from_name(const char *name, enum userns_mode *ret);

/* Decides the mode without entering anything (for `kiln info`). */
int userns_probe(enum userns_mode want, struct userns_info *ret, struct kiln_error **err);
/* Enters kiln's user and mount namespaces; idempotent.  Must be called while
 * the process is single-threaded, before anything else.  Auto picks range
 * mode when kiln runs in the initial user namespace, the user has at least
 * 65536 subordinate uids and gids, and newuidmap/newgidmap (found in $PATH)
 * work; root (with CAP_SETUID) maps every id as it is; else single-ID mode.
 * ret may be NULL. */
int userns_enter(enum userns_mode want, struct userns_info *ret, struct kiln_error **err);
/* The info of the namespace entered (NULL before userns_enter). */
const struct userns_info *userns_current(void);

enum run_network { NET_HOST = 0, NET_NONE };
enum seccomp_mode { SECCOMP_DEFAULT = 0, SECCOMP_UNCONFINED, SECCOMP_PROFILE };

enum run_mount_type { RUN_MOUNT_BIND = 0, RUN_MOUNT_TMPFS };

struct run_mount {
    enum run_mount_type type;
    const char *source;  /* host path for binds */
    const char *target;  /* path inside the container */
    bool readonly;
    uint64_t tmpfs_size; /* bytes; 0 = kernel default */
    mode_t tmpfs_mode;   /* 0 = 01777 */
};

struct run_ulimit {
    int resource; /* RLIMIT_* */
    uint64_t soft, hard;
};

struct run_spec {
    const char *rootfs;  /* the assembled rootfs directory (layers/driver.h) */
    char *const *argv;   /* argv[0] is looked up in PATH from env when it has no '/' */
    char *const *env;    /* the environment ("K=V"), completed with
                          * runtime_env_defaults(env, "/", hostname, tty):
                          * PATH, HOSTNAME, HOME and (tty) TERM where unset */
    const char *cwd;     /* inside the container; created when missing */
    uid_t uid;           /* container ids, already resolved */
    gid_t gid;
    const gid_t *groups; /* supplementary groups (run_user) */
    size_t n_groups;
    const char *hostname;    /* NULL: "kiln" */
    enum run_network network;
    const struct run_mount *mounts;
    size_t n_mounts;
    const char *hosts_file;  /* host file bound read-only over /etc/hosts (NULL: none) */
    const char *resolv_file; /* host file bound read-only over /etc/resolv.conf */
    enum seccomp_mode seccomp;
    const char *seccomp_profile; /* Docker profile JSON path, for SECCOMP_PROFILE */
    uint64_t shm_size;           /* /dev/shm size in bytes; 0 = 64 MiB */
    const struct run_ulimit *ulimits;
    size_t n_ulimits;
    int stdin_fd;  /* -1: /dev/null */
    int stdout_fd; /* -1: inherit */
    int stderr_fd; /* -1: inherit */
    bool tty;      /* a pty for the process: stdin_fd is relayed to it (raw mode
                    * when a terminal), its output to stdout_fd; window size
                    * follows SIGWINCH */
    bool forward_signals; /* kiln run: SIGINT, SIGTERM and SIGHUP that kiln
                           * receives go to the command (through the
                           * container's init) and runtime_run returns its
                           * exit status; the third kills the container
                           * (then as below).  Otherwise (RUN) the first
                           * kills it.  One such container at a time. */
    /* Ownership the root emulation (single-ID mode) could not store in a
     * user.kiln.owner xattr (symlinks, fifos, sockets, device nodes, file
     * systems without user xattrs) is appended to this host file (created
     * when missing; NULL: such changes are dropped).  One record per line:
     *
     *     UID:GID PATH\n
     *
     * PATH is absolute inside the container; a backslash in it is written
     * as two backslashes, a newline as "\n".  A later line for the same
     * path wins.  Only changes to files on the rootfs mount itself are
     * recorded (never /proc, /dev, tmpfs or bind mounts).  A path renamed
     * after its chown keeps its old name here. */
    const char *owner_log;
    /* When > 0: a file descriptor that becomes readable when the process
     * should be stopped (another step of the build failed): the container
     * is killed (SIGKILL) and its status is 128+9.  0: none. */
    int cancel_fd;
};

/* Runs spec->argv to completion.  Requires userns_enter.  The rootfs is
 * left exactly as the process left it: mount points the runtime had to
 * create (e.g. /etc/hosts in an image without one) are removed afterwards
 * and their parent directories get their timestamps back.  In single-ID
 * mode the seccomp root emulation is active whatever spec->seccomp says:
 * chown-family calls succeed and record the ownership asked for in the
 * user.kiln.owner xattr (layers/layer.h) or in spec->owner_log; mknod of
 * device nodes succeeds without effect (0/0 character devices, i.e.
 * whiteouts, are really created).
 *
 * *ret_status is the exit code, or 128+N when the process died of signal N.
 * Fails (returns -1) only when the container could not be set up or the
 * command could not be started (err->status then 125, 126 or 127), or on
 * SIGINT/SIGTERM/SIGHUP (err->status 128+N, see runtime_interrupted; with
 * forward_signals, only when the container had to be killed).
 *
 * Single-ID mode also emulates credentials: set*id/setgroups change a
 * per-process record that get*id/getgroups report (apt's _apt sandbox, su),
 * and a non-root spec->uid starts with it; the kernel still sees the one
 * mapped id, without capabilities for a non-root USER.
 *
 * Safe to call from several threads at once. */
int runtime_run(const struct run_spec *spec, int *ret_status, struct kiln_error **err);

/* ---- USER and environment --------------------------------------------- */

struct run_user {
    uid_t uid;
    gid_t gid;
    gid_t *groups; /* supplementary groups (from /etc/group membership) */
    size_t n_groups;
    char *home;    /* from /etc/passwd; "/" when unknown */
    char *name;    /* user name, NULL when numeric and not in /etc/passwd */
};

/* Resolves a Dockerfile USER value ("name", "uid", "name:group", "uid:gid",
 * NULL or "" = root) against the rootfs's /etc/passwd and /etc/group, read
 * through the rootfs (symlinks cannot leave it; the host's files are never
 * read).  A group given explicitly replaces the supplementary groups.
 * Errors are worded like Docker's ("unable to find user app: no matching
 * entries in passwd file"). */
int runtime_user_resolve(const char *rootfs, const char *user, struct run_user *ret,
                         struct kiln_error **err);
void run_user_free(struct run_user *u);
/* The same on the contents of passwd and group (NUL-terminated; NULL for a
 * missing file): for callers that read them otherwise (layer trees). */
int runtime_user_resolve_db(const char *passwd, const char *group, const char *user,
                            struct run_user *ret, struct kiln_error **err);

/* Completes an environment ("K=V" vector; NULL = empty) as Docker does:
 * PATH when unset, HOME (home, else "/") when unset, HOSTNAME (when hostname
 * is not NULL) and TERM=xterm for a tty when unset.  Returns a new vector. */
char **runtime_env_defaults(char *const *env, const char *home, const char *hostname, bool tty);

#define RUNTIME_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* The signal (SIGINT, SIGTERM or SIGHUP) that interrupted kiln, 0 if none.
 * runtime_run kills the container and returns -1 with err->status 128+N;
 * callers clean up and exit 128+N (130/143). */
int runtime_interrupted(void);
/* Installs kiln's SIGINT/SIGTERM/SIGHUP (and SIGWINCH, for tty relays)
 * handlers (cmd/ calls this once). */
void runtime_install_signal_handlers(void);
/* Forgets an interruption (tests, `kiln run` loops).  */
void runtime_interrupt_reset(void);

#endif
