/* BuildKit-style build progress on stderr: plain (CI, pipes), tty (redrawn
 * in place with a live clock per step) or quiet. */
#ifndef KILN_PROGRESS_H
#define KILN_PROGRESS_H

#include <stdbool.h>

#include "engine/engine.h"

struct progress;

struct progress *progress_new(enum progress_mode mode);
const struct build_progress *progress_callbacks(struct progress *p);
/* Stops the clock, draws the final state and repeats the warnings. */
void progress_finish(struct progress *p, bool ok);
void progress_free(struct progress *p);

#endif
