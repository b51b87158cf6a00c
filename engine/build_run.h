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

/* Where a stage stands in the build (engine/build.c schedules them). */
enum stage_status { STAGE_IDLE = 0, STAGE_QUEUED, STAGE_RUNNING, STAGE_DONE, STAGE_FAILED };

struct build_run {
    struct build_ctx bc;
    struct build_input in;
    struct df_ast *ast;
    struct df_file *file;
    struct plan *plan;
    struct ignore *ignore;
    int context_fd;
    struct stage_state *states;    /* one per plan stage */
    struct external_image **images; /* COPY --from / mount images, FROM images */
    size_t n_images;
    char **used_keys;               /* cache keys of the layer steps, for --cache-to */
    char **metadata_shown;          /* images whose "load metadata" vertex was shown */
    /* stages run in parallel threads: lock guards images, used_keys and the
     * schedule below; cond is signalled when a stage ends */
    pthread_mutex_t lock;
    pthread_mutex_t images_lock;    /* held while an image is resolved (pulls) */
    pthread_cond_t cond;
    enum stage_status *status;      /* one per plan stage */
    bool failed;                    /* a stage failed: the others stop */
    int cancel_pipe[2];             /* written when one fails: kills running steps */
    int slots;                      /* stages that may work at once */
};

/* Builds plan stage idx into br->states[idx]. */
int stage_build(struct build_run *br, size_t idx, struct kiln_error **err);

/* Waits until stage idx is built, building it in this thread when nobody
 * has scheduled it (a stage an ONBUILD trigger of an image names).  `from`
 * is the stage asking (for the cycle check). */
int build_wait_stage(struct build_run *br, size_t from, size_t idx, struct kiln_error **err);
/* Another stage failed (or kiln was interrupted): stop at the next step. */
bool build_cancelled(struct build_run *br);
/* Records the cache key of a layer step (for --cache-to mode=max). */
void build_note_key(struct build_run *br, const char *key);

/* The stage state of an external image (from the store, pulled if missing
 * or with --pull). */
int build_image_state(struct build_run *br, const char *name, const struct stage_state **ret,
                      struct kiln_error **err);

/* A directory named by --build-context NAME=DIR, or NULL. */
const char *build_named_dir(struct build_run *br, const char *name);

/* RUN --mount: what each mount is (phase 1, for the key) ... */
struct mount_plan {
    const struct df_mount *dm;
    const char *target;             /* absolute, inside the container */
    const struct stage_state *from; /* bind/cache from a stage or an image */
    const char *ctx_dir;            /* bind of the build context or a named one */
    const char *ctx_rel;            /* the source in it, resolved ("." = its root) */
    bool filtered;                  /* .dockerignore hides something below it */
};

/* ... and, once materialized (phase 2), the mounts, the environment
 * additions and what to undo. */
struct mount_prep {
    struct mount_plan *plans;
    size_t n_plans;
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

/* Phase 1: resolves the mounts of a RUN and adds their identities (never a
 * secret's content) to the step's cache key, making nothing. */
int run_mounts_prepare(struct build_run *br, struct stage_state *st, const struct df_run *run,
                       struct mount_prep *ret, struct cache_key *key, struct kiln_error **err);
/* Phase 2, when the step runs: views, cache directories, secrets, agents. */
int run_mounts_materialize(struct build_run *br, struct stage_state *st, struct mount_prep *m,
                           struct kiln_error **err);
void run_mounts_release(struct build_run *br, struct mount_prep *m);

#endif
