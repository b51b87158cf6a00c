/* Stage planning, with BuildKit's rules (dockerfile2llb):
 *
 *  - the global ARGs (before the first FROM) take their --build-arg value or
 *    their default, expanded with the ARGs before them and the automatic
 *    platform ARGs (TARGETPLATFORM TARGETOS TARGETARCH TARGETVARIANT
 *    BUILDPLATFORM BUILDOS BUILDARCH BUILDVARIANT);
 *  - each FROM is expanded with those only, then is `scratch`, an EARLIER
 *    stage (by name, case-insensitive), or an external image;
 *  - COPY --from=NAME|INDEX and RUN --mount=from=NAME name a stage anywhere
 *    in the file or else an external image (never expanded);
 *  - --target (case-insensitive) selects a stage, default the last one; only
 *    the stages it needs are planned, dependencies first;
 *  - cycles, a duplicate stage name, an unknown --target, a stage index out
 *    of range, a variable in COPY --from, an empty or malformed base name
 *    are errors; --build-args nobody consumes give a warning. */
#ifndef KILN_DOCKERFILE_PLAN_H
#define KILN_DOCKERFILE_PLAN_H

#include <stdbool.h>
#include <stddef.h>

#include "dockerfile/expand.h"
#include "dockerfile/instructions.h"
#include "lib/error.h"

struct plan_opts {
    const char *target;          /* --target; NULL: the last stage */
    char *const *build_args;     /* NULL-terminated "K=V", or "K": the value of $K when set */
    const char *platform;        /* target "os/arch[/variant]"; NULL: this machine's */
    char *const *named_contexts; /* --build-context names; an external reference equal to
                                    one is that context */
    bool lenient;                /* accept empty or malformed image references (for checks
                                    that go on to report more) */
};

enum plan_base {
    PLAN_BASE_SCRATCH,
    PLAN_BASE_STAGE,   /* base_stage */
    PLAN_BASE_IMAGE,   /* base_image */
    PLAN_BASE_CONTEXT, /* base_image is the --build-context name */
};

enum plan_ref_kind { PLAN_REF_STAGE, PLAN_REF_IMAGE, PLAN_REF_CONTEXT };

/* Something a stage reads from: its FROM, a COPY --from, a RUN --mount from. */
struct plan_ref {
    enum plan_ref_kind kind;
    size_t stage;                          /* PLAN_REF_STAGE */
    const char *name;                      /* as written (image reference, context name) */
    const struct df_instruction *by;       /* the instruction */
};

struct plan_stage {
    const struct df_stage *stage;
    size_t index;
    const char *name;          /* lower-cased AS name, or NULL */
    enum plan_base base;
    size_t base_stage;
    char *base_image;          /* the expanded FROM */
    char *platform;            /* the expanded --platform, or NULL */
    struct plan_ref *refs;     /* in instruction order; the FROM first */
    size_t n_refs;
    size_t *deps;              /* distinct stages this one needs, in first-use order */
    size_t n_deps;
    bool needed;               /* the target needs it */
};

struct plan_platform {
    char *os, *arch, *variant; /* variant may be "" */
};

struct plan {
    const struct df_file *file;
    struct plan_stage *stages; /* every stage, in file order */
    size_t n_stages;
    size_t target;
    size_t *order;             /* the needed stages, each after what it needs */
    size_t n_order;
    char **global_env;         /* "K=V": the platform ARGs, then the global ARGs that have a value */
    char **global_names;       /* the global ARGs declared (names) */
    char **build_args;         /* "K=V" given with --build-arg */
    struct plan_platform target_platform;
    struct plan_platform build_platform;
    char **warnings;           /* messages, e.g. "One or more build-args [X] were not consumed" */
    char escape;
    size_t *name_index;        /* named stages sorted by name (internal) */
    size_t n_named;
};

int plan_create(const struct df_file *file, const struct plan_opts *opts, struct plan **ret,
                struct kiln_error **err);
void plan_free(struct plan *p);

/* The stage called `name` (case-insensitive) among stages [0, limit). */
bool plan_find_stage(const struct plan *p, const char *name, size_t limit, size_t *ret);

/* A --build-arg value (NULL when not given). */
const char *plan_build_arg(const struct plan *p, const char *name);

/* The value an `ARG name[=default]` takes inside a stage, BuildKit's rules:
 * the --build-arg value; else the default expanded with `env` (the stage's
 * environment before this ARG; matches reported in *ret_matches when not
 * NULL); else the value of the global ARG of that name (platform ARGs
 * included); else unset (*ret_value NULL).  Errors point at the ARG. */
int plan_arg_value(const struct plan *p, const struct df_instruction *arg_instr,
                   const struct df_argdef *a, const struct expand_env *env, char **ret_value,
                   struct expand_matches *ret_matches, struct kiln_error **err);

/* HTTP_PROXY and friends, usable without declaration and kept out of the
 * image history unless declared; and the automatic platform ARGs. */
bool plan_is_proxy_arg(const char *name);
bool plan_is_platform_arg(const char *name);

/* The platform of this machine (uname), e.g. linux/amd64. */
void plan_host_platform(struct plan_platform *ret);
void plan_platform_clear(struct plan_platform *p);

/* Whether `ref` is a valid image reference (docker/distribution's grammar:
 * [domain[:port]/]path[:tag][@digest], lower-case path, ParseNormalizedNamed). */
bool plan_valid_image_ref(const char *ref);

#endif
