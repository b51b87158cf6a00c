/* Stage planning: ARG scoping in FROM, bases, COPY --from / RUN --mount
 * dependencies, --target pruning and order, errors and warnings. */
#include <stdio.h>
#include <time.h>
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

struct planned {
    struct df_ast *ast;
    struct df_file *file;
    struct plan *plan;
};

static int plan_text(const char *text, const struct plan_opts *opts, struct planned *pd,
                     struct kiln_error **err)
{
    memset(pd, 0, sizeof(*pd));
    if (dockerfile_parse("Dockerfile", text, strlen(text), &pd->ast, err) < 0)
        return -1;
    if (df_file_from_ast(pd->ast, &pd->file, err) < 0)
        return -1;
    return plan_create(pd->file, opts, &pd->plan, err);
}

static void planned_free(struct planned *pd)
{
    plan_free(pd->plan);
    df_file_free(pd->file);
    dockerfile_free(pd->ast);
}

/* "0,2,3": the build order by stage index. */
static char *order_str(const struct plan *p)
{
    struct strbuf sb = STRBUF_INIT;
    for (size_t i = 0; i < p->n_order; i++)
        strbuf_addf(&sb, "%s%zu", i ? "," : "", p->order[i]);
    return strbuf_detach(&sb, NULL);
}

static void check_plan_error_opts(const char *text, const struct plan_opts *opts,
                                  const char *want)
{
    struct planned pd;
    struct kiln_error *err = NULL;
    int r = plan_text(text, opts, &pd, &err);
    CHECK_INT_EQ(r, -1);
    CHECK_STR_EQ(err ? err->msg : NULL, want);
    kiln_error_free(&err);
    planned_free(&pd);
}

static void check_plan_error(const char *text, const char *want)
{
    check_plan_error_opts(text, NULL, want);
}

TEST(global_args_in_from)
{
    const char *text = "ARG REGISTRY=docker.io/library\n"
                       "ARG TAG=3.19\n"
                       "ARG IMAGE=${REGISTRY}/alpine:${TAG}\n"
                       "FROM ${IMAGE} AS base\n"
                       "FROM --platform=$BUILDPLATFORM busybox:$TAG\n";
    char *args[] = {"TAG=3.20", NULL};
    struct plan_opts opts = {.build_args = args, .platform = "linux/arm64/v8"};
    struct planned pd;
    struct kiln_error *err = NULL;
    CHECK_INT_EQ(plan_text(text, &opts, &pd, &err), 0);
    if (err)
        fprintf(stderr, "%s\n", err->msg);
    kiln_error_free(&err);
    if (!pd.plan)
        return;
    CHECK_STR_EQ(pd.plan->stages[0].base_image, "docker.io/library/alpine:3.20");
    CHECK_INT_EQ(pd.plan->stages[0].base, PLAN_BASE_IMAGE);
    CHECK_STR_EQ(pd.plan->stages[1].base_image, "busybox:3.20");
    CHECK(pd.plan->stages[1].platform && strncmp(pd.plan->stages[1].platform, "linux/", 6) == 0);
    CHECK_STR_EQ(pd.plan->target_platform.arch, "arm64");
    CHECK_STR_EQ(pd.plan->target_platform.variant, "");
    /* Only the last stage is needed. */
    _cleanup_free_ char *o = order_str(pd.plan);
    CHECK_STR_EQ(o, "1");
    CHECK(!pd.plan->stages[0].needed);
    CHECK_INT_EQ(strv_len(pd.plan->warnings), 0);
    planned_free(&pd);
}

TEST(stage_graph_and_target)
{
    const char *text = "FROM alpine AS deps\n"                     /* 0 */
                       "RUN echo deps\n"
                       "FROM golang:1.22 AS Build\n"               /* 1 */
                       "COPY --from=deps /x /x\n"
                       "RUN --mount=type=cache,target=/c,from=tools make\n"
                       "FROM debian AS tools\n"                    /* 2 */
                       "FROM build AS test\n"                      /* 3 */
                       "RUN go test\n"
                       "FROM scratch\n"                            /* 4 */
                       "COPY --from=BUILD /app /app\n"
                       "COPY --from=0 /x /y\n"
                       "COPY --from=nginx:latest /etc/nginx /etc/nginx\n";
    struct planned pd;
    struct kiln_error *err = NULL;
    CHECK_INT_EQ(plan_text(text, NULL, &pd, &err), 0);
    kiln_error_free(&err);
    if (!pd.plan)
        return;
    struct plan *p = pd.plan;
    CHECK_INT_EQ(p->n_stages, 5);
    CHECK_INT_EQ(p->stages[3].base, PLAN_BASE_STAGE);
    CHECK_INT_EQ(p->stages[3].base_stage, 1);
    CHECK_INT_EQ(p->stages[4].base, PLAN_BASE_SCRATCH);
    CHECK_INT_EQ(p->stages[1].n_deps, 2);
    CHECK_INT_EQ(p->stages[1].deps[0], 0);
    CHECK_INT_EQ(p->stages[1].deps[1], 2); /* a later stage, through RUN --mount from */
    CHECK_INT_EQ(p->stages[4].n_refs, 3);
    CHECK_INT_EQ(p->stages[4].refs[2].kind, PLAN_REF_IMAGE);
    CHECK_STR_EQ(p->stages[4].refs[2].name, "nginx:latest");
    _cleanup_free_ char *o = order_str(p);
    CHECK_STR_EQ(o, "0,2,1,4");
    CHECK(!p->stages[3].needed);
    planned_free(&pd);

    struct plan_opts opts = {.target = "TEST"};
    CHECK_INT_EQ(plan_text(text, &opts, &pd, &err), 0);
    kiln_error_free(&err);
    if (pd.plan) {
        _cleanup_free_ char *o2 = order_str(pd.plan);
        CHECK_STR_EQ(o2, "0,2,1,3");
        CHECK_INT_EQ(pd.plan->target, 3);
    }
    planned_free(&pd);
}

TEST(stage_args_and_build_args)
{
    const char *text = "ARG GLOBAL=g\n"
                       "ARG NOVAL\n"
                       "FROM alpine\n"
                       "ARG GLOBAL\n"
                       "ARG LOCAL=${GLOBAL}-x\n"
                       "ARG TARGETARCH\n"
                       "ARG OVER=default\n"
                       "ARG NOVAL\n";
    char *args[] = {"OVER=given", "UNUSED1=1", "HTTP_PROXY=http://p", "ZZZ=2", "NOVAL=v", NULL};
    struct plan_opts opts = {.build_args = args};
    struct planned pd;
    struct kiln_error *err = NULL;
    CHECK_INT_EQ(plan_text(text, &opts, &pd, &err), 0);
    kiln_error_free(&err);
    if (!pd.plan)
        return;
    struct plan *p = pd.plan;
    const struct df_stage *st = &pd.file->stages[0];
    char *env_v[] = {"GLOBAL=g", NULL};
    struct expand_env env = {env_v, 1};
    char *v = NULL;
    CHECK_INT_EQ(plan_arg_value(p, st->cmds[0], &st->cmds[0]->u.args.v[0], &env, &v, NULL, &err),
                 0);
    CHECK_STR_EQ(v, "g"); /* inherited from the global ARG */
    free(v);
    CHECK_INT_EQ(plan_arg_value(p, st->cmds[1], &st->cmds[1]->u.args.v[0], &env, &v, NULL, &err),
                 0);
    CHECK_STR_EQ(v, "g-x");
    free(v);
    CHECK_INT_EQ(plan_arg_value(p, st->cmds[2], &st->cmds[2]->u.args.v[0], &env, &v, NULL, &err),
                 0);
    CHECK_STR_EQ(v, p->target_platform.arch);
    free(v);
    CHECK_INT_EQ(plan_arg_value(p, st->cmds[3], &st->cmds[3]->u.args.v[0], &env, &v, NULL, &err),
                 0);
    CHECK_STR_EQ(v, "given");
    free(v);
    CHECK_INT_EQ(plan_arg_value(p, st->cmds[4], &st->cmds[4]->u.args.v[0], &env, &v, NULL, &err),
                 0);
    CHECK_STR_EQ(v, "v");
    free(v);
    CHECK_STR_EQ(plan_build_arg(p, "HTTP_PROXY"), "http://p");
    CHECK(plan_is_proxy_arg("no_proxy") && !plan_is_proxy_arg("NOPROXY"));
    CHECK_INT_EQ(strv_len(p->warnings), 1);
    CHECK_STR_EQ(p->warnings[0], "One or more build-args [UNUSED1 ZZZ] were not consumed");
    planned_free(&pd);
}

TEST(build_arg_from_environment)
{
    setenv("KILN_TEST_FROM_ENV", "fromenv", 1);
    unsetenv("KILN_TEST_UNSET");
    char *args[] = {"KILN_TEST_FROM_ENV", "KILN_TEST_UNSET", NULL};
    struct plan_opts opts = {.build_args = args};
    struct planned pd;
    struct kiln_error *err = NULL;
    CHECK_INT_EQ(plan_text("ARG KILN_TEST_FROM_ENV\nFROM alpine:$KILN_TEST_FROM_ENV\n", &opts, &pd,
                           &err),
                 0);
    kiln_error_free(&err);
    if (pd.plan) {
        CHECK_STR_EQ(pd.plan->stages[0].base_image, "alpine:fromenv");
        CHECK(plan_build_arg(pd.plan, "KILN_TEST_UNSET") == NULL);
        CHECK_INT_EQ(strv_len(pd.plan->warnings), 0);
    }
    planned_free(&pd);
}

TEST(plan_errors)
{
    check_plan_error("FROM a AS x\nFROM b AS X\n",
                     "Dockerfile:2:11: duplicate stage name \"x\": stage 0 on line 1 has it "
                     "already\n"
                     "FROM b AS X\n"
                     "          ^");
    check_plan_error("FROM a AS one\nCOPY --from=two /a /a\nFROM b AS two\nCOPY --from=one /b /b\n",
                     "Dockerfile:4:13: circular dependency detected between stages: one -> two -> "
                     "one\n"
                     "COPY --from=one /b /b\n"
                     "            ^~~");
    check_plan_error("FROM a\nCOPY --from=0 /a /b\n",
                     "Dockerfile:2:13: circular dependency detected between stages: stage 0 -> "
                     "stage 0\n"
                     "COPY --from=0 /a /b\n"
                     "            ^");
    check_plan_error("FROM a\nCOPY --from=3 /a /b\n",
                     "Dockerfile:2:13: invalid stage index 3 (the Dockerfile has 1 stages)\n"
                     "COPY --from=3 /a /b\n"
                     "            ^");
    check_plan_error("ARG X=y\nFROM a\nCOPY --from=$X /a /b\n",
                     "Dockerfile:3:13: variable expansion is not supported for --from, define a "
                     "new stage with FROM using ARG from global scope as a workaround\n"
                     "COPY --from=$X /a /b\n"
                     "            ^~");
    check_plan_error("ARG V\nFROM ${V}\n", "Dockerfile:2:6: base name (${V}) should not be blank\n"
                                           "FROM ${V}\n"
                                           "     ^~~~");
    check_plan_error("FROM ${V:?required}\n",
                     "Dockerfile:1:6: failed to process \"${V:?required}\": V: required\n"
                     "FROM ${V:?required}\n"
                     "     ^~~~~~~~~~~~~~");
    check_plan_error("FROM Alpine\n",
                     "Dockerfile:1:6: invalid base image \"Alpine\": not a valid image reference "
                     "(names are lower case)\n"
                     "FROM Alpine\n"
                     "     ^~~~~~");
    check_plan_error("FROM --platform=linux alpine\n",
                     "Dockerfile:1:17: failed to parse platform \"linux\": expected "
                     "os/arch[/variant]\n"
                     "FROM --platform=linux alpine\n"
                     "                ^~~~~");
    struct plan_opts opts = {.target = "nope"};
    check_plan_error_opts("FROM a AS x\n", &opts, "target stage \"nope\" could not be found");
}

TEST(image_references)
{
    static const struct {
        const char *ref;
        bool ok;
    } cases[] = {
        {"alpine", true},
        {"alpine:3.19", true},
        {"library/alpine", true},
        {"docker.io/library/alpine:latest", true},
        {"localhost:5000/team/app:v1.2_3", true},
        {"127.0.0.1:5000/a", true},
        {"[::1]:5000/a", true},
        {"Registry.Example.COM/team/app", true},
        {"a__b/c-d.e", true},
        {"a---b", true},
        {"alpine@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", true},
        {"alpine:3@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", true},
        {"", false},
        {"Alpine", false},
        {"team/Alpine", false},
        {"alpine:", false},
        {"alpine:-x", false},
        {"a___b", false},
        {"a_", false},
        {"a/", false},
        {"a//b", false},
        {"alpine@sha256:abc", false},
        {"alpine@md5:0123456789abcdef0123456789abcdef", false},
        {"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", false},
        {"busybox:buildroot-2014.02", true},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        bool got = plan_valid_image_ref(cases[i].ref);
        if (got != cases[i].ok)
            fprintf(stderr, "  reference '%s': got %d\n", cases[i].ref, got);
        CHECK(got == cases[i].ok);
    }
}

TEST(named_context)
{
    char *ctx[] = {"extra", NULL};
    struct plan_opts opts = {.named_contexts = ctx};
    struct planned pd;
    struct kiln_error *err = NULL;
    CHECK_INT_EQ(plan_text("FROM alpine\nCOPY --from=extra /a /b\n", &opts, &pd, &err), 0);
    kiln_error_free(&err);
    if (pd.plan) {
        CHECK_INT_EQ(pd.plan->stages[0].n_refs, 2);
        CHECK_INT_EQ(pd.plan->stages[0].refs[1].kind, PLAN_REF_CONTEXT);
    }
    planned_free(&pd);
}

/* ---- benchmark: build/tests/test_plan --bench [RUNS] ------------------------------------------ */

/* A 5,000-line Dockerfile of the usual kinds of lines: 50 stages with ARGs,
 * ENVs, continued RUNs, heredocs, COPY --from, comments. */
static char *bench_dockerfile(size_t *ret_lines)
{
    struct strbuf sb = STRBUF_INIT;
    size_t lines = 0;
    strbuf_adds(&sb, "# syntax=docker/dockerfile:1\nARG BASE=debian:bookworm-slim\nARG VERSION=1.2.3\n");
    lines += 3;
    for (int s = 0; lines < 5000; s++) {
        if (s == 0)
            strbuf_addf(&sb, "FROM ${BASE} AS s%d\n", s);
        else
            strbuf_addf(&sb, "FROM %s AS s%d\n", s % 3 == 0 ? "s0" : "${BASE}", s);
        strbuf_adds(&sb, "ARG VERSION\nARG TARGETARCH\n");
        lines += 3;
        for (int k = 0; k < 4 && lines < 5000; k++) {
            strbuf_addf(&sb, "# step %d of stage %d\n", k, s);
            strbuf_addf(&sb, "ENV APP_HOME=/opt/app%d PATH=/opt/app%d/bin:$PATH LANG=C.UTF-8\n", s, s);
            strbuf_adds(&sb, "RUN set -eux; \\\n"
                             "    apt-get update; \\\n"
                             "    apt-get install -y --no-install-recommends ca-certificates curl git \\\n"
                             "        build-essential pkg-config libssl-dev; \\\n"
                             "    rm -rf /var/lib/apt/lists/*\n");
            strbuf_addf(&sb, "RUN --mount=type=cache,target=/root/.cache,id=c%d "
                             "--mount=type=bind,source=src,target=/src make -C /src all\n", s);
            strbuf_adds(&sb, "COPY --chown=1000:1000 --chmod=0755 [\"etc/app.conf\", \"/etc/app/\"]\n");
            strbuf_adds(&sb, "RUN <<EOF\n#!/bin/sh\necho building $VERSION for $TARGETARCH\nmake install\nEOF\n");
            strbuf_adds(&sb, "LABEL org.opencontainers.image.version=\"${VERSION}\" maintainer=\"team@example.com\"\n");
            strbuf_addf(&sb, "WORKDIR /opt/app%d\n", s);
            lines += 15;
        }
        if (s > 0)
            strbuf_addf(&sb, "COPY --from=s%d /opt /opt\n", s - 1);
        strbuf_adds(&sb, "EXPOSE 8080/tcp 9090\nUSER 1000:1000\nCMD [\"/opt/app/bin/server\", \"--port\", \"8080\"]\n");
        lines += 4;
    }
    *ret_lines = lines;
    return strbuf_detach(&sb, NULL);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int bench(int runs)
{
    size_t lines;
    _cleanup_free_ char *text = bench_dockerfile(&lines);
    size_t len = strlen(text);
    double best = 1e9, total = 0, best_lint = 1e9;
    for (int r = 0; r < runs; r++) {
        struct df_ast *ast = NULL;
        struct df_file *file = NULL;
        struct plan *plan = NULL;
        struct kiln_error *err = NULL;
        double t0 = now_ms();
        if (dockerfile_parse("Dockerfile", text, len, &ast, &err) < 0 ||
            df_file_from_ast(ast, &file, &err) < 0 || plan_create(file, NULL, &plan, &err) < 0) {
            fprintf(stderr, "bench: %s\n", err ? err->msg : "?");
            return 1;
        }
        double t1 = now_ms();
        struct lint_result res;
        if (lint_run(file, plan, NULL, &res, &err) < 0) {
            fprintf(stderr, "bench: %s\n", err->msg);
            return 1;
        }
        double t2 = now_ms();
        lint_result_clear(&res);
        total += t1 - t0;
        if (t1 - t0 < best)
            best = t1 - t0;
        if (t2 - t1 < best_lint)
            best_lint = t2 - t1;
        if (r == 0)
            printf("%zu lines, %zu bytes, %zu instructions, %zu stages (%zu needed)\n", lines, len,
                   ast->n_instrs, plan->n_stages, plan->n_order);
        plan_free(plan);
        df_file_free(file);
        dockerfile_free(ast);
    }
    printf("parse + typed + plan: best %.2f ms, mean %.2f ms over %d runs; build checks: best "
           "%.2f ms\n",
           best, total / runs, runs, best_lint);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--bench") == 0)
        return bench(argc > 2 ? atoi(argv[2]) : 20);
    RUN(global_args_in_from);
    RUN(stage_graph_and_target);
    RUN(stage_args_and_build_args);
    RUN(build_arg_from_environment);
    RUN(plan_errors);
    RUN(image_references);
    RUN(named_context);
    return harness_done();
}
