/* The build engine: the one place that knows the order of a build.
 * cmd/build.c turns flags into a build_request; engine_build runs it and
 * reports progress through build_progress callbacks. */
#ifndef KILN_ENGINE_H
#define KILN_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "layers/descriptor.h"
#include "layers/driver.h"
#include "lib/error.h"
#include "lib/sha256.h"

struct build_secret {
    char *id;
    char *src; /* file path, or NULL */
    char *env; /* environment variable, or NULL */
};

struct build_ssh {
    char *id;     /* "default" or a name */
    char **paths; /* agent socket or key files; empty = $SSH_AUTH_SOCK */
};

enum output_type { OUTPUT_IMAGE = 0, OUTPUT_LOCAL, OUTPUT_TAR, OUTPUT_OCI, OUTPUT_DOCKER };

struct build_output {
    enum output_type type;
    char *dest; /* directory or file; "-" = stdout for tar kinds */
    char *name; /* image name for oci/docker archives (optional) */
};

struct build_context_arg {
    char *name;
    char *value; /* a directory, or docker-image://REF / an image name */
};

struct build_ulimit {
    char *name; /* "nofile" ... */
    uint64_t soft, hard;
};

struct cache_spec {
    char *type;   /* "registry" | "local" */
    char *ref;    /* registry reference */
    char *dir;    /* local src/dest */
    char *mode;   /* "min" | "max" */
};

enum progress_mode { PROGRESS_AUTO = 0, PROGRESS_TTY, PROGRESS_PLAIN, PROGRESS_QUIET };

struct build_request {
    char *store_root;      /* the store (--root) */
    enum storage_driver storage_driver;
    char *context;         /* directory, "-" (tar on stdin) or an http(s) URL to a tar */
    char *dockerfile;      /* path; NULL = CONTEXT/Dockerfile; "-" = stdin */
    char **tags;
    char **build_args;     /* "K=V" or "K" (value from the environment) */
    char *target;
    bool no_cache;
    bool pull;
    char **labels;         /* "K=V" */
    char *iidfile;
    bool quiet;
    struct build_secret *secrets;
    size_t n_secrets;
    struct build_ssh *ssh;
    size_t n_ssh;
    enum progress_mode progress;
    struct build_output *outputs;
    size_t n_outputs;
    struct build_context_arg *contexts;
    size_t n_contexts;
    int64_t timestamp;     /* --timestamp / SOURCE_DATE_EPOCH; -1 = none */
    char *network;         /* "default" | "none" | "host" */
    char **add_hosts;      /* "host:ip" */
    uint64_t shm_size;
    struct build_ulimit *ulimits;
    size_t n_ulimits;
    enum compression compression;
    int compression_level;
    char *platform;        /* --platform (only the build platform is supported) */
    char **security_opts;  /* "seccomp=unconfined" | "seccomp=FILE" */
    struct cache_spec *cache_from;
    size_t n_cache_from;
    struct cache_spec *cache_to;
    size_t n_cache_to;
};

void build_request_init(struct build_request *r);
/* RLIMIT_* for a --ulimit name ("nofile"), or -1. */
int ulimit_from_name(const char *name);
void build_request_free(struct build_request *r);

/* Progress events.  Step ids are BuildKit's "#N" numbers. */
struct build_progress {
    void *ud;
    /* a new vertex: "[stage 2/5] RUN make" */
    void (*start)(void *ud, int id, const char *name);
    /* one line of output of a step (no trailing newline) */
    void (*log)(void *ud, int id, double elapsed, const char *line, size_t len);
    /* a short status detail: "transferring context: 2.1MB", "writing image sha256:..." */
    void (*status)(void *ud, int id, const char *text);
    void (*cached)(void *ud, int id);
    void (*done)(void *ud, int id, double seconds);
    void (*error)(void *ud, int id, double seconds, const char *msg);
    /* stopped because another step failed */
    void (*canceled)(void *ud, int id, double seconds);
    /* a warning to repeat at the end */
    void (*warning)(void *ud, const char *msg);
    /* where a failed step is in its Dockerfile: BuildKit's excerpt
     * ("Dockerfile:12", a rule, numbered lines with ">>>" on the step's) */
    void (*source)(void *ud, int id, const char *excerpt);
};

struct build_result {
    char image_id[DIGEST_STR_LEN]; /* config digest */
    struct descriptor manifest;
};

int engine_build(const struct build_request *req, const struct build_progress *progress,
                 struct build_result *ret, struct kiln_error **err);

#endif
