/* Instructions that change only the image config: ENV LABEL MAINTAINER
 * EXPOSE USER VOLUME STOPSIGNAL SHELL CMD ENTRYPOINT HEALTHCHECK ONBUILD. */
#ifndef KILN_META_H
#define KILN_META_H

#include "dockerfile/instructions.h"
#include "engine/internal.h"

/* Applies an (expanded) metadata instruction to the stage. */
int meta_dispatch(struct stage_state *st, const struct df_instruction *in,
                  struct kiln_error **err);

/* SHELL (or /bin/sh -c) followed by the arguments joined with spaces. */
char **meta_with_shell(const struct image_config *cfg, char *const *args);

#endif
