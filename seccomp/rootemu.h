/* The root-emulation supervisor: the container's init answers the chown
 * family for every process of a single-ID container (SECCOMP_RET_USER_NOTIF).
 *
 * For each call it resolves the file as the caller would (its root, cwd and
 * fds through /proc/PID), checks that the notification is still valid,
 * performs a real chown to ids the namespace can represent (which copies an
 * overlay file up, clears set-id bits as chown does, and is the whole job
 * when the ids asked for are mapped), and records the ownership asked for
 * when it differs from the real one: in the user.kiln.owner xattr
 * ("UID:GID") of regular files and directories, else as a line of the owner
 * log (runtime.h).  Records are kept only for files on the rootfs mount.
 * The caller then sees success, or the error the real call would have had
 * (ENOENT, EPERM without CAP_CHOWN, ...).
 *
 * It also emulates credentials: set*id and setgroups change a per-process
 * record (following the kernel's rules for who may change what), get*id and
 * getgroups read it back, and children inherit it.  So a process that drops
 * to another user (apt's _apt sandbox, su, setpriv) sees the ids it asked
 * for and cannot regain root, while the kernel still sees the one mapped id.
 * Files such processes create are still owned by that id. */
#ifndef KILN_SECCOMP_ROOTEMU_H
#define KILN_SECCOMP_ROOTEMU_H

#include <linux/seccomp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/error.h"

enum rootemu_op {
    EMU_NONE = 0,
    EMU_CHOWN,
    EMU_LCHOWN,
    EMU_FCHOWN,
    EMU_FCHOWNAT,
    /* credentials */
    EMU_SETUID,
    EMU_SETGID,
    EMU_SETREUID,
    EMU_SETREGID,
    EMU_SETRESUID,
    EMU_SETRESGID,
    EMU_SETFSUID,
    EMU_SETFSGID,
    EMU_SETGROUPS,
    EMU_GETUID,
    EMU_GETEUID,
    EMU_GETGID,
    EMU_GETEGID,
    EMU_GETRESUID,
    EMU_GETRESGID,
    EMU_GETGROUPS,
};

/* Emulated credentials of one process (ids: real, effective, saved, fs). */
#define EMU_MAX_PROCS 512
#define EMU_MAX_GROUPS 64

struct emu_creds {
    int32_t tgid; /* as the container's /proc numbers it */
    uint64_t start; /* start time, against pid reuse */
    uint32_t uid[4], gid[4];
    uint32_t n_groups;
    uint32_t groups[EMU_MAX_GROUPS];
};

struct rootemu_call {
    uint32_t arch; /* AUDIT_ARCH_* as seccomp_data reports it */
    int32_t nr;
    uint8_t op;
    bool ids16; /* legacy 16-bit uid_t variant (x86, arm) */
};

struct rootemu {
    struct rootemu_call calls[160];
    size_t n_calls;
    struct seccomp_notif *req;
    struct seccomp_notif_resp *resp;
    size_t req_size, resp_size;
    int listener;         /* SECCOMP_FILTER_FLAG_NEW_LISTENER fd, -1 until known */
    int procfd;           /* the container's /proc */
    bool foreign_proc;    /* procfd belongs to an outer pid namespace (kiln inside a
                           * container that masks /proc): pids need translating */
    uint64_t root_mnt_id; /* mount id of the container's / */
    int owner_log_fd;     /* O_APPEND, -1 for none */
    /* processes whose credentials were changed (set*id): their get*id
     * calls are answered from here, the others' go to the kernel */
    struct emu_creds *creds;
    size_t n_creds;
    /* counters, for tests and debugging */
    uint64_t n_served, n_recorded, n_logged;
};

/* Parent side, before clone: the call table and the notification buffers. */
int rootemu_prepare(struct rootemu *e, struct kiln_error **err);
void rootemu_release(struct rootemu *e);

/* Child side (no allocation): receives and answers one notification.
 * Returns 0, or -errno when the listener cannot be used any more. */
int rootemu_serve(struct rootemu *e);
/* Child side: starts process pid (container numbering) with these ids, as
 * if it had called setgroups/setresgid/setresuid (a non-root USER). */
int rootemu_seed(struct rootemu *e, pid_t pid, uint32_t uid, uint32_t gid, const uint32_t *groups,
                 size_t n_groups);

#endif
