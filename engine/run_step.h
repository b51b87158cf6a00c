/* One RUN step: assemble the rootfs, run the command in the runtime, turn
 * the changes into a layer. */
#ifndef KILN_RUN_STEP_H
#define KILN_RUN_STEP_H

#include "engine/internal.h"
#include "runtime/runtime.h"

struct run_request {
    char **argv;      /* the final argv (shell already prepended) */
    char **env;       /* the complete environment */
    const char *cwd;  /* WORKDIR */
    const char *user; /* USER of the image ("" or NULL = root) */
    enum run_network network;
    const struct run_mount *mounts;
    size_t n_mounts;
    const char *display;  /* the command as BuildKit names it in errors */
    const char *location; /* "Dockerfile:12" */
};

/* Runs the step; on success *ret is the layer of its changes. */
int run_step(struct build_ctx *bc, struct stage_state *st, int vertex, double started,
             const struct run_request *rq, struct layer_result *ret, struct kiln_error **err);

#endif
