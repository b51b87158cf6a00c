/* --output type=local and type=tar: the final file system of the target
 * stage, read straight from its layer trees. */
#ifndef KILN_OUTPUT_H
#define KILN_OUTPUT_H

#include "engine/internal.h"

/* Writes the merged file system as files under dir (created; existing
 * files are replaced).  Owners are not kept: the files belong to the user. */
int output_local(struct build_ctx *bc, const struct stage_state *st, const char *dir,
                 struct kiln_error **err);
/* Copies the subtree at `path` (absolute, in the image) of a stage into
 * dir (created), keeping owners where kiln can set them (seeds a cache
 * mount from a stage).  A non-directory lands as dir/NAME. */
int output_copy_subtree(struct build_ctx *bc, const struct stage_state *st, const char *path,
                        const char *dir, struct kiln_error **err);
/* Writes the merged file system as a tar stream to fd (numeric owners). */
int output_tar(struct build_ctx *bc, const struct stage_state *st, int fd,
               struct kiln_error **err);

#endif
