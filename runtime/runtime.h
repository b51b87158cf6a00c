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
    uint32_t uid_count;    /* ids mapped: 1 in single mode, 1 + range length in range mode */
    uint32_t gid_count;
    bool entered;
    char *why;             /* why this mode was chosen, for `kiln info` */
};

const char *userns_mode_name(enum userns_mode m);
int userns_mode_from_name(const char *name, enum userns_mode *ret);

/* Decides the mode without entering anything (for `kiln info`). */
int userns_probe(enum userns_mode want, struct userns_info *ret, struct kiln_error **err);
/* Enters kiln's user and mount namespaces; idempotent.  Must be called while
 * the process is single-threaded. */
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
    char *const *env;    /* the complete environment ("K=V") */
    const char *cwd;     /* inside the container; created when missing */
    uid_t uid;           /* container ids, already resolved */
    gid_t gid;
    const gid_t *groups; /* supplementary groups */
    size_t n_groups;
    const char *hostname;
    enum run_network network;
    const struct run_mount *mounts;
    size_t n_mounts;
    const char *hosts_file;  /* host file bound over /etc/hosts (NULL: none) */
    const char *resolv_file; /* host file bound over /etc/resolv.conf */
    enum seccomp_mode seccomp;
    const char *seccomp_profile; /* Docker profile JSON path, for SECCOMP_PROFILE */
    uint64_t shm_size;           /* /dev/shm size in bytes; 0 = 64 MiB */
    const struct run_ulimit *ulimits;
    size_t n_ulimits;
    int stdin_fd;  /* -1: /dev/null */
    int stdout_fd; /* -1: inherit */
    int stderr_fd; /* -1: inherit */
    bool tty;      /* allocate a pty for the process */
};

/* Runs spec->argv to completion.  *ret_status is the exit code, or 128+N
 * when the process died of signal N.  Fails (returns -1) only when the
 * container could not be set up or the command could not be started
 * (err->status then 125, 126 or 127). */
int runtime_run(const struct run_spec *spec, int *ret_status, struct kiln_error **err);

/* Signals that a SIGINT/SIGTERM arrived: runtime_run kills the container and
 * returns; callers clean up and exit 130/143.  0 if none. */
int runtime_interrupted(void);
/* Installs kiln's SIGINT/SIGTERM/SIGHUP handlers (cmd/ calls this once). */
void runtime_install_signal_handlers(void);

#endif
