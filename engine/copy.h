/* COPY and ADD: select the sources (build context with .dockerignore,
 * another stage, heredocs, archives, URLs), key them for the cache by
 * content, and write the layer straight from them. */
#ifndef KILN_COPY_H
#define KILN_COPY_H

#include "dockerfile/ignore.h"
#include "dockerfile/instructions.h"
#include "engine/internal.h"

/* Where COPY --from reads: another stage of this build, or an image. */
struct copy_from {
    const struct stage_state *stage; /* its layers and config */
};

struct copy_request {
    const struct df_copy *c;     /* expanded */
    bool is_add;
    const char *workdir;         /* the stage's WORKDIR */
    int context_fd;              /* the build context, when reading from it */
    const struct ignore *ignore; /* .dockerignore of the context */
    const struct copy_from *from;/* NULL: the context */
    const char *history;         /* BuildKit's created_by text, also part of the key */
};

/* Computes the step's cache key from the sources (a stat walk; content
 * digests come from the file-hash cache), then either finds the layer in
 * the cache or writes it.  *ret_cached tells which. */
int copy_step(struct build_ctx *bc, struct stage_state *st, const struct copy_request *rq,
              char ret_key[DIGEST_STR_LEN], struct layer_result *ret, bool *ret_cached,
              struct kiln_error **err);

/* Applies a --chmod value (octal, or symbolic like "u+x,g-w") to a mode. */
int chmod_apply(const char *spec, mode_t mode, mode_t *ret);

#endif
