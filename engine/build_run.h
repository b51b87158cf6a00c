/* One `kiln build` in progress: the parsed Dockerfile, its plan, the
 * context, and the state of every stage.  Shared by engine/build.c (the
 * order of the build), engine/stage_build.c (one stage) and
 * engine/run_mounts.c. */
#ifndef KILN_BUILD_RUN_H
#define KILN_BUILD_RUN_H

#include "dockerfile/dockerfile.h"
#include "dockerfile/ignore.h"
#include "dockerfile/instructions.h"
#include "dockerfile/plan.h"
#include "engine/cache.h"
#include "engine/context.h"
#include "engine/internal.h"
#include "runtime/runtime.h"

struct external_image {
    char *name;               /* as written in the Dockerfile */
    struct stage_state state; /* its config and layers */
};

struct build_run {
    struct build_ctx bc;
    struct build_input in;
    struct df_ast *ast;
    struct df_file *file;
    struct plan *plan;
    struct ignore *ignore;
    int context_fd;
    struct stage_state *states;    /* one per plan stage */
    struct external_image *images; /* COPY --from / mount images, FROM images */
    size_t n_images;
    char **used_keys;              /* cache keys of the layer steps, for --cache-to */
};

/* Builds plan stage idx into br->states[idx]. */
int stage_build(struct build_run *br, size_t idx, struct kiln_error **err);

/* The stage state of an external image (from the store, pulled if missing
 * or with --pull). */
int build_image_state(struct build_run *br, const char *name, const struct stage_state **ret,
                      struct kiln_error **err);

/* A directory named by --build-context NAME=DIR, or NULL. */
const char *build_named_dir(struct build_run *br, const char *name);

/* RUN --mount: prepared mounts, environment additions, and what to undo. */
struct mount_prep {
    struct run_mount *mounts;
    size_t n;
    char **env_add;          /* "K=V" for SSH_AUTH_SOCK and secrets given as env */
    struct rootfs **views;   /* stage views and rw bind copies to release */
    size_t n_views;
    int *locks;              /* flock fds of locked cache mounts */
    size_t n_locks;
    char **strings;          /* paths the mounts point to (kept alive) */
    char **remove;           /* temporary files and directories to remove */
    pid_t agent;             /* an ssh-agent started for key files */
};

/* Prepares the mounts of a RUN, adding their identities (never a secret's
 * content) to the step's cache key. */
int run_mounts_prepare(struct build_run *br, struct stage_state *st, const struct df_run *run,
                       struct mount_prep *ret, struct cache_key *key, struct kiln_error **err);
void run_mounts_release(struct build_run *br, struct mount_prep *m);

#endif
