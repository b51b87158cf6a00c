/* What the parts of the engine share: the build in progress and the state of
 * each stage.  Not for use outside engine/. */
#ifndef KILN_ENGINE_INTERNAL_H
#define KILN_ENGINE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"
#include "engine/filehash.h"
#include "layers/driver.h"
#include "layers/image.h"
#include "layers/layer.h"
#include "layers/lowerfs.h"
#include "layers/store.h"
#include "lib/error.h"

struct build_ctx {
    const struct build_request *req;
    const struct build_progress *progress;
    struct store *store;
    int gc_lockfd;     /* the gc lock, shared, held to the end (layers/gc.h) */
    enum storage_driver driver;
    struct layer_write_opts lw;
    int64_t epoch;     /* SOURCE_DATE_EPOCH / --timestamp; -1 = none */
    char *scratch;     /* per-build tmp dir (hosts, resolv.conf, secrets) */
    char *hosts_file;
    char *resolv_file;
    char *hostname;
    char *context_dir; /* the build context as a directory */
    struct filehash *filehash;
    pthread_mutex_t lock; /* vertex numbers, warnings (stages may run in parallel) */
    int next_vertex;
    bool driver_told;     /* the storage driver in use was shown (first mount) */
    double t0;
    int cancel_fd;        /* readable once a stage failed: running steps stop (0: none) */
};

/* A stage being built: its image so far. */
struct stage_state {
    char *name;          /* stage name or NULL */
    int index;
    struct image_config config;
    struct descriptor *layers; /* compressed blobs; diff_ids are config.diff_ids */
    size_t n_layers;
    char key[DIGEST_STR_LEN];  /* the cache key of the last layer step (or the base) */
    char manifest_digest[DIGEST_STR_LEN]; /* an external image's manifest ("" otherwise) */
    char **env;                /* what RUN sees and words expand with: the image's Env,
                                  then ARG values, last one wins (BuildKit's state env) */
    char **args;               /* ARGs declared: "K=V", "K" without a value (history) */
    bool cmd_set;              /* CMD given in this stage (ENTRYPOINT keeps it) */
    char *display_name;        /* "builder", "stage-1", or NULL for a one-stage file */
    int step;                  /* for "[stage i/n]" */
    int total_steps;
    bool done;
    char **layer_keys;         /* cache keys of the steps that made its layers (--cache-to) */
    bool from_context;         /* a --build-context directory (no layers of its own) */
    char *context_dir;
};

/* KEY=VALUE vectors: set (replace or append) and get. */
void env_set(char ***env, const char *key, const char *value);
const char *env_get(char *const *env, const char *key);

void stage_state_free(struct stage_state *st);

/* ---- progress helpers (engine/vertex.c) ------------------------------- */

int vertex_start(struct build_ctx *bc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void vertex_done(struct build_ctx *bc, int id, double started);
void vertex_cached(struct build_ctx *bc, int id);
void vertex_error(struct build_ctx *bc, int id, double started, const char *msg);
void vertex_canceled(struct build_ctx *bc, int id, double started);
void vertex_log(struct build_ctx *bc, int id, double started, const char *line, size_t len);
void vertex_source(struct build_ctx *bc, int id, const char *excerpt);
void vertex_status(struct build_ctx *bc, int id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void build_warn(struct build_ctx *bc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
double monotonic_now(void);

/* Resolves the storage driver (auto: a probe mount, once) and shows it;
 * called by the first step that needs a rootfs, so a cached build mounts
 * nothing. */
int build_settle_driver(struct build_ctx *bc, struct kiln_error **err);

/* ---- layer trees and the image's file system --------------------------- */

/* The extracted trees of a stage's layers, top first. */
int stage_trees(struct build_ctx *bc, const struct stage_state *st, char ***ret,
                struct kiln_error **err);
/* A lowerfs over a stage's layers. */
int stage_lowerfs(struct build_ctx *bc, const struct stage_state *st, struct lowerfs *ret,
                  struct kiln_error **err);
/* Appends a layer to a stage (config diff_ids + descriptors). */
void stage_add_layer(struct stage_state *st, const struct descriptor *blob, const char *diff_id);

#endif
