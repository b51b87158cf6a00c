/* Seccomp filters for RUN steps, compiled to BPF in the parent before clone
 * so that the child only loads bytes.
 *
 * - profile.c: the default profile, equivalent to Docker's default for its
 *   default capability set (the calls Docker's allowlist leaves out are
 *   denied with EPERM; clone/unshare of namespaces denied; clone3 ENOSYS).
 * - docker_profile.c: Docker's JSON profile format (--security-opt seccomp=FILE).
 * - rootemu.c: the rules of single-ID root emulation.
 * - rootemu_notify.c: the supervisor that answers the chown family.
 * - bpf.c: libseccomp context -> BPF program, plus hand-written prefixes. */
#ifndef KILN_SECCOMP_FILTER_H
#define KILN_SECCOMP_FILTER_H

#include <linux/filter.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/error.h"
#include "runtime/runtime.h"

/* A compiled filter. */
struct filter_prog {
    struct sock_filter *insns;
    unsigned short len;
    bool notify; /* has SECCOMP_RET_USER_NOTIF rules: load with NEW_LISTENER */
};

struct filter_opts {
    enum seccomp_mode mode;
    const char *profile_path; /* SECCOMP_PROFILE */
    bool rootemu;             /* add the single-ID root emulation rules */
    uint64_t caps;            /* the container's bounding set (profile includes/excludes) */
};

/* Builds the filter for a RUN.  *ret is NULL when there is nothing to load
 * (unconfined without root emulation). */
int filter_build(const struct filter_opts *o, struct filter_prog **ret, struct kiln_error **err);
void filter_prog_free(struct filter_prog *p);

/* Largest profile file accepted, and deepest JSON nesting. */
#define FILTER_PROFILE_MAX (1u << 20)
#define FILTER_PROFILE_MAX_DEPTH 16

/* ---- internals shared by the files of seccomp/ ---------------------------- */

/* The native architecture and the ones its kernel also runs (x86 and x32 on
 * x86_64, arm on aarch64).  Returns how many were stored (at most 4). */
size_t filter_arches(uint32_t ret[4]);
/* Adds filter_arches() to a fresh context. */
int filter_ctx_add_arches(scmp_filter_ctx ctx, struct kiln_error **err);

/* profile.c: the default profile's rules; the names it denies (NULL-terminated). */
int filter_add_default(scmp_filter_ctx ctx, struct kiln_error **err);
extern const char *const filter_default_denied[];

/* docker_profile.c: a context from Docker's JSON profile format.  When
 * skip_rootemu, rules for the calls root emulation owns are left out. */
int filter_from_docker_json(const char *buf, size_t len, uint64_t caps, bool skip_rootemu,
                            scmp_filter_ctx *ret, struct kiln_error **err);

/* rootemu.c */
int filter_add_rootemu(scmp_filter_ctx ctx, struct kiln_error **err);
bool filter_is_rootemu_syscall(const char *name);

/* bpf.c: exports ctx and prepends `prefix` (which must fall through to its
 * end for calls it does not decide). */
int filter_export(scmp_filter_ctx ctx, const struct sock_filter *prefix, size_t n_prefix,
                  struct filter_prog **ret, struct kiln_error **err);
/* The personality(2) check of Docker's profile (only 0, 8, 0x20000, 0x20008
 * and 0xffffffff allowed), as a BPF prefix.  Caller frees *ret. */
int filter_personality_prefix(struct sock_filter **ret, size_t *ret_len, struct kiln_error **err);

#endif
