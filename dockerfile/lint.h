/* BuildKit's build checks (`docker build --check`), with their rule names
 * and messages: https://docs.docker.com/reference/build-checks/
 *
 * Implemented: StageNameCasing FromAsCasing NoEmptyContinuation
 * ConsistentInstructionCasing DuplicateStageName ReservedStageName
 * JSONArgsRecommended MaintainerDeprecated UndefinedArgInFrom
 * WorkdirRelativePath UndefinedVar MultipleInstructionsDisallowed
 * LegacyKeyValueFormat RedundantTargetPlatform SecretsUsedInArgOrEnv
 * InvalidDefaultArgInFrom FromPlatformFlagConstDisallowed ExposeProtoCasing
 * ExposeInvalidFormat.  Not: InvalidBaseImagePlatform (needs the pulled
 * image), CopyIgnoredFile and InvalidDefinitionDescription (experimental).
 *
 * The checks walk every stage the way the build would (ARG values, ENV,
 * expansion), so they also find expansion errors (`${VAR:?message}` with
 * VAR unset, a bad substitution); those are errors when the stage is one
 * the plan needs. */
#ifndef KILN_DOCKERFILE_LINT_H
#define KILN_DOCKERFILE_LINT_H

#include <stdbool.h>
#include <stddef.h>

#include "dockerfile/instructions.h"
#include "dockerfile/plan.h"
#include "lib/error.h"

struct lint_finding {
    const char *rule;   /* "JSONArgsRecommended" */
    const char *url;    /* the rule's documentation */
    char *message;      /* "JSON arguments recommended for CMD to prevent ..." */
    int line;           /* where the instruction starts */
};

/* The `# check=` directive: "skip=Rule1,Rule2;error=true", "skip=all". */
struct lint_config {
    bool skip_all;
    char **skip;        /* rule names, NULL-terminated (may be NULL) */
    bool error;         /* findings are errors */
};

int lint_parse_config(const char *value, struct lint_config *ret, struct kiln_error **err);
void lint_config_clear(struct lint_config *c);

/* The environment and shell of an external base image, when the caller
 * knows them (from the store); returns 1 and fills the vectors (caller
 * frees) when known, 0 when not. */
typedef int (*lint_image_fn)(void *ctx, const char *image, const char *platform, char ***ret_env,
                             char ***ret_shell);

struct lint_opts {
    lint_image_fn image_config; /* may be NULL: unknown images */
    void *image_ctx;
    const struct lint_config *config; /* NULL: the file's `# check=` directive */
};

struct lint_result {
    struct lint_finding *findings; /* sorted by line */
    size_t n_findings;
    struct lint_config config;     /* in effect */
};

/* Runs the checks.  Returns -1 with *err on a bad `# check=` directive or
 * an expansion error in a stage the plan needs. */
int lint_run(const struct df_file *file, const struct plan *plan, const struct lint_opts *opts,
             struct lint_result *ret, struct kiln_error **err);
void lint_result_clear(struct lint_result *r);

/* BuildKit's test for ARG/ENV names that look like secrets. */
bool lint_is_secret_key(const char *name);

#endif
