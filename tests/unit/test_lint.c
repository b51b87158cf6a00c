/* Build checks: each rule's trigger and non-trigger, messages as BuildKit
 * words them, # check= handling, expansion errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dockerfile/dockerfile.h"
#include "dockerfile/instructions.h"
#include "dockerfile/lint.h"
#include "dockerfile/plan.h"
#include "harness.h"
#include "lib/cleanup.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

/* Runs everything as `kiln check` does (a plan error still lets the checks
 * run on a lenient plan); returns "LINE Rule: message\n"... then
 * "error: MSG" when something failed. */
static char *lint_text(const char *text, const struct plan_opts *popts,
                       const struct lint_opts *lopts)
{
    struct df_ast *ast = NULL;
    struct df_file *file = NULL;
    struct plan *plan = NULL;
    struct kiln_error *err = NULL, *plan_err = NULL;
    struct strbuf out = STRBUF_INIT;
    struct lint_result res = {0};
    struct plan_opts po = popts ? *popts : (struct plan_opts){0};
    if (dockerfile_parse("Dockerfile", text, strlen(text), &ast, &err) < 0 ||
        df_file_from_ast(ast, &file, &err) < 0) {
        strbuf_addf(&out, "error: %s", err ? err->msg : "?");
    } else {
        if (plan_create(file, &po, &plan, &plan_err) < 0) {
            po.lenient = true;
            plan_create(file, &po, &plan, &err);
        }
        if (plan && lint_run(file, plan, lopts, &res, &err) == 0) {
            for (size_t i = 0; i < res.n_findings; i++)
                strbuf_addf(&out, "%d %s: %s\n", res.findings[i].line, res.findings[i].rule,
                            res.findings[i].message);
            if (res.config.error)
                strbuf_adds(&out, "(errors)\n");
        }
        if (plan_err || err)
            strbuf_addf(&out, "error: %s", plan_err ? plan_err->msg : err->msg);
    }
    kiln_error_free(&plan_err);
    lint_result_clear(&res);
    kiln_error_free(&err);
    plan_free(plan);
    df_file_free(file);
    dockerfile_free(ast);
    return strbuf_detach(&out, NULL);
}

#define CHECK_LINT(text, want)                                                                     \
    do {                                                                                           \
        _cleanup_free_ char *_got = lint_text(text, NULL, NULL);                                   \
        CHECK_STR_EQ(_got, want);                                                                  \
    } while (0)

TEST(clean_file)
{
    CHECK_LINT("FROM alpine:3.19 AS build\n"
               "ARG VERSION=1\n"
               "WORKDIR /src\n"
               "COPY . .\n"
               "RUN make VERSION=$VERSION\n"
               "FROM scratch\n"
               "COPY --from=build /src/app /app\n"
               "ENTRYPOINT [\"/app\"]\n",
               "");
}

TEST(casing_rules)
{
    CHECK_LINT("FROM alpine AS Build\nRUN true\n",
               "1 StageNameCasing: Stage name 'Build' should be lowercase\n");
    CHECK_LINT("FROM alpine as build\nRUN true\n",
               "1 FromAsCasing: 'as' and 'FROM' keywords' casing do not match\n");
    CHECK_LINT("from alpine AS build\nrun true\n",
               "1 FromAsCasing: 'AS' and 'from' keywords' casing do not match\n");
    CHECK_LINT("FROM alpine\nrun true\nRUN true\nCopy a /b\n",
               "2 ConsistentInstructionCasing: Command 'run' should match the case of the command "
               "majority (uppercase)\n"
               "4 ConsistentInstructionCasing: Command 'Copy' should match the case of the "
               "command majority (uppercase)\n");
    CHECK_LINT("from alpine\nrun true\nRUN true\n",
               "3 ConsistentInstructionCasing: Command 'RUN' should match the case of the "
               "command majority (lowercase)\n");
}

TEST(stage_names)
{
    CHECK_LINT("FROM alpine AS scratch\n",
               "1 ReservedStageName: Stage name should not use the same name as reserved stage "
               "\"scratch\"\n");
    /* A duplicate is also a plan error; the error wins. */
    _cleanup_free_ char *got = lint_text("FROM a AS x\nFROM b AS x\n", NULL, NULL);
    CHECK(strncmp(got, "error: Dockerfile:2:11: duplicate stage name", 44) == 0);
}

TEST(json_args_and_multiple)
{
    CHECK_LINT("FROM alpine\nCMD echo hi\nENTRYPOINT /bin/sh\n",
               "2 JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended "
               "behavior related to OS signals\n"
               "3 JSONArgsRecommended: JSON arguments recommended for ENTRYPOINT to prevent "
               "unintended behavior related to OS signals\n");
    CHECK_LINT("FROM alpine\nSHELL [\"/bin/bash\", \"-c\"]\nCMD echo hi\n", "");
    CHECK_LINT("FROM alpine AS base\nSHELL [\"/bin/bash\", \"-c\"]\nFROM base\nCMD echo hi\n", "");
    CHECK_LINT("FROM alpine\nCMD [\"a\"]\nCMD [\"b\"]\nHEALTHCHECK NONE\nHEALTHCHECK NONE\n",
               "2 MultipleInstructionsDisallowed: Multiple CMD instructions should not be used in "
               "the same stage because only the last one will be used\n"
               "4 MultipleInstructionsDisallowed: Multiple HEALTHCHECK instructions should not be "
               "used in the same stage because only the last one will be used\n");
}

TEST(maintainer_legacy_secrets)
{
    CHECK_LINT("FROM alpine\nMAINTAINER me <me@example.com>\n",
               "2 MaintainerDeprecated: Maintainer instruction is deprecated in favor of using "
               "label\n");
    CHECK_LINT("FROM alpine\nENV FOO bar\nLABEL a b\n",
               "2 LegacyKeyValueFormat: \"ENV key=value\" should be used instead of legacy \"ENV "
               "key value\" format\n"
               "3 LegacyKeyValueFormat: \"LABEL key=value\" should be used instead of legacy "
               "\"LABEL key value\" format\n");
    CHECK_LINT("ARG AWS_SECRET_ACCESS_KEY\nFROM alpine\nENV GITHUB_TOKEN=x PUBLIC_KEY=y "
               "KEYBOARD=z\nARG db_password\n",
               "1 SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data "
               "(ARG \"AWS_SECRET_ACCESS_KEY\")\n"
               "3 SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data "
               "(ENV \"GITHUB_TOKEN\")\n"
               "4 SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data "
               "(ARG \"db_password\")\n");
    CHECK(lint_is_secret_key("API_KEY") && lint_is_secret_key("auth") &&
          !lint_is_secret_key("AUTHOR") && !lint_is_secret_key("PUBLIC_TOKEN"));
}

TEST(from_args_and_platform)
{
    CHECK_LINT("ARG TAG=1\nFROM alpine:$TAGG\n",
               "2 UndefinedArgInFrom: FROM argument 'TAGG' is not declared (did you mean TAG?)\n"
               "2 InvalidDefaultArgInFrom: Default value for ARG alpine:$TAGG results in empty or "
               "invalid base image name\n"
               "error: Dockerfile:2:6: invalid base image \"alpine:\": not a valid image reference "
               "(names are lower case)\n"
               "FROM alpine:$TAGG\n"
               "     ^~~~~~~~~~~~");
    CHECK_LINT("FROM --platform=$BUILDPLATFORM alpine:$TARGETARCH\n", "");
    CHECK_LINT("FROM --platform=$TARGETPLATFORM alpine\n",
               "1 RedundantTargetPlatform: Setting platform to predefined $TARGETPLATFORM in FROM "
               "is redundant as this is the default behavior\n");
    CHECK_LINT("FROM --platform=linux/amd64 alpine AS base\n",
               "1 FromPlatformFlagConstDisallowed: FROM --platform flag should not use constant "
               "value \"linux/amd64\"\n");
    CHECK_LINT("FROM --platform=linux/arm64 alpine AS build_arm64\n", "");
    CHECK_LINT("ARG TAG\nFROM busybox:${TAG}\n",
               "2 InvalidDefaultArgInFrom: Default value for ARG busybox:${TAG} results in empty "
               "or invalid base image name\n"
               "error: Dockerfile:2:6: invalid base image \"busybox:\": not a valid image "
               "reference (names are lower case)\n"
               "FROM busybox:${TAG}\n"
               "     ^~~~~~~~~~~~~~");
    char *args[] = {"TAG=1.36", NULL};
    struct plan_opts po = {.build_args = args};
    _cleanup_free_ char *got = lint_text("ARG TAG\nFROM busybox:${TAG}\n", &po, NULL);
    CHECK_STR_EQ(got, "2 InvalidDefaultArgInFrom: Default value for ARG busybox:${TAG} results "
                      "in empty or invalid base image name\n");
}

TEST(workdir_and_expose)
{
    CHECK_LINT("FROM alpine\nWORKDIR app\nWORKDIR sub\n",
               "2 WorkdirRelativePath: Relative workdir \"app\" can have unexpected results if "
               "the base image changes\n");
    CHECK_LINT("FROM alpine AS a\nWORKDIR /app\nFROM a\nWORKDIR sub\n", "");
    CHECK_LINT("FROM alpine\nEXPOSE 80/TcP 127.0.0.1:80:80 8080/udp\n",
               "2 ExposeProtoCasing: Defined protocol '80/TcP' in EXPOSE instruction should be "
               "lowercase\n"
               "2 ExposeInvalidFormat: EXPOSE instruction should not define an IP address or "
               "host-port mapping, found '127.0.0.1:80:80'\n");
}

TEST(undefined_var)
{
    /* scratch: the environment is known (PATH only). */
    CHECK_LINT("FROM scratch\nENV PATH=$PAHT:/app/bin\nCOPY $foo .\nARG foo\nCOPY $foo .\n",
               "2 UndefinedVar: Usage of undefined variable '$PAHT' (did you mean $PATH?)\n"
               "3 UndefinedVar: Usage of undefined variable '$foo'\n");
    CHECK_LINT("FROM scratch AS base\nENV APP=/app\nFROM base\nWORKDIR $APP\nRUN echo $NOPE\n", "");
    /* An image's environment is unknown without a resolver: nothing said. */
    CHECK_LINT("FROM python\nARG VERSION=$PYTHON_VERSION\n", "");
    /* Platform and proxy ARGs are never "undefined". */
    CHECK_LINT("FROM scratch\nCOPY $TARGETARCH/$HTTP_PROXY /x\n", "");
}

static int fake_image(void *ctx, const char *image, const char *platform, char ***ret_env,
                      char ***ret_shell)
{
    if (strcmp(image, "python") != 0)
        return 0;
    char **env = strv_new();
    strv_push(&env, "PATH=/usr/bin");
    strv_push(&env, "PYTHON_VERSION=3.12");
    *ret_env = env;
    *ret_shell = strv_new();
    return 1;
}

TEST(undefined_var_with_image_config)
{
    struct lint_opts lo = {.image_config = fake_image};
    _cleanup_free_ char *got = lint_text("FROM python\nARG VERSION=$PYTHON_VERSION\n"
                                         "ENV X=$PYTHON_VERSIN\n",
                                         NULL, &lo);
    CHECK_STR_EQ(got, "3 UndefinedVar: Usage of undefined variable '$PYTHON_VERSIN' (did you "
                      "mean $PYTHON_VERSION?)\n");
}

TEST(empty_continuation)
{
    CHECK_LINT("FROM alpine\nRUN a \\\n\n  b\n",
               "4 NoEmptyContinuation: Empty continuation line\n");
}

TEST(check_directive)
{
    CHECK_LINT("# check=skip=JSONArgsRecommended,MaintainerDeprecated\n"
               "FROM alpine\nMAINTAINER x\nCMD echo\nWORKDIR rel\n",
               "5 WorkdirRelativePath: Relative workdir \"rel\" can have unexpected results if the "
               "base image changes\n");
    CHECK_LINT("# check=skip=all\nFROM alpine\nMAINTAINER x\n", "");
    CHECK_LINT("# check=error=true\nFROM alpine\nMAINTAINER x\n",
               "3 MaintainerDeprecated: Maintainer instruction is deprecated in favor of using "
               "label\n(errors)\n");
    CHECK_LINT("#!/bin/sh\n# check=skip=MaintainerDeprecated\nFROM alpine\nMAINTAINER x\n", "");
    CHECK_LINT("# check=bogus=1\nFROM alpine\n",
               "error: Dockerfile:1:1: failed to parse check options: invalid check option "
               "\"bogus\"\n"
               "# check=bogus=1\n"
               "^");
    struct lint_config cfg;
    struct kiln_error *err = NULL;
    CHECK_INT_EQ(lint_parse_config(" skip = A , B ; error = 1 ", &cfg, &err), 0);
    CHECK(cfg.error && cfg.skip && strv_len(cfg.skip) == 2);
    CHECK_STR_EQ(cfg.skip ? cfg.skip[1] : NULL, "B");
    lint_config_clear(&cfg);
    CHECK_INT_EQ(lint_parse_config("error=maybe", &cfg, &err), -1);
    kiln_error_free(&err);
}

TEST(expansion_errors)
{
    /* In a stage the target needs: an error, located. */
    CHECK_LINT("FROM alpine\nARG V\nENV X=${V:?unset}\n",
               "error: Dockerfile:3:7: failed to process \"${V:?unset}\": V: unset\n"
               "ENV X=${V:?unset}\n"
               "      ^~~~~~~~~~~");
    CHECK_LINT("FROM alpine\nWORKDIR \"/app\n",
               "error: Dockerfile:2:9: failed to process \"\\\"/app\": unexpected end of "
               "statement while looking for matching double-quote\n"
               "WORKDIR \"/app\n"
               "        ^~~~~");
    /* In a stage nothing needs: ignored. */
    CHECK_LINT("FROM alpine AS unused\nWORKDIR ${V:?}\nFROM alpine\n", "");
    /* A --build-arg makes it fine. */
    char *args[] = {"V=1", NULL};
    struct plan_opts po = {.build_args = args};
    _cleanup_free_ char *got =
        lint_text("FROM alpine\nARG V\nENV X=${V:?unset}\n", &po, NULL);
    CHECK_STR_EQ(got, "");
}

int main(void)
{
    RUN(clean_file);
    RUN(casing_rules);
    RUN(stage_names);
    RUN(json_args_and_multiple);
    RUN(maintainer_legacy_secrets);
    RUN(from_args_and_platform);
    RUN(workdir_and_expose);
    RUN(undefined_var);
    RUN(undefined_var_with_image_config);
    RUN(empty_continuation);
    RUN(check_directive);
    RUN(expansion_errors);
    return harness_done();
}
