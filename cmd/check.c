/* kiln check: parse, plan and run the build checks on a Dockerfile without
 * building (like `docker build --check`). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cli.h"
#include "dockerfile/dockerfile.h"
#include "dockerfile/instructions.h"
#include "dockerfile/lint.h"
#include "dockerfile/plan.h"
#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

static void usage(FILE *f)
{
    fprintf(f, "Usage: kiln check [OPTIONS] [CONTEXT]\n\n"
               "Parse a Dockerfile, plan its stages and run BuildKit's build checks, without\n"
               "building.  Findings are printed as FILE:LINE: warning: Rule: message.\n\n"
               "Options:\n"
               "  -f, --file FILE          the Dockerfile (default CONTEXT/Dockerfile; - for stdin)\n"
               "      --target STAGE       the stage to check the plan for (default the last)\n"
               "      --build-arg K=V      a build argument (repeatable; K alone takes $K)\n"
               "      --platform OS/ARCH   the target platform (default this machine's)\n"
               "      --print-ast          print the parse tree (BuildKit's test format)\n"
               "  -h, --help               this help\n\n"
               "Exit status: 0 when there are no errors (warnings allowed), 1 on errors,\n"
               "2 on usage errors.  `# check=error=true` in the Dockerfile makes findings\n"
               "errors; `# check=skip=Rule1,Rule2` (or skip=all) turns rules off.\n");
}

static int read_dockerfile(const char *path, char **ret, size_t *ret_len, struct kiln_error **err)
{
    int r;
    if (strcmp(path, "-") == 0)
        r = fs_read_fd(STDIN_FILENO, DOCKERFILE_MAX_SIZE, ret, ret_len);
    else
        r = fs_read_file_at(AT_FDCWD, path, DOCKERFILE_MAX_SIZE, ret, ret_len);
    if (r == -EFBIG)
        return kiln_error_set(err, 0, "%s: the Dockerfile is larger than %u MiB",
                              strcmp(path, "-") == 0 ? "stdin" : path, DOCKERFILE_MAX_SIZE >> 20);
    if (r < 0)
        return kiln_error_set(err, -r, "cannot read the Dockerfile '%s'",
                              strcmp(path, "-") == 0 ? "stdin" : path);
    return 0;
}

/* "kiln: error: ..." for an error that comes after findings were printed. */
static void print_error(struct kiln_error **err)
{
    cli_fail(err);
}

int cmd_check(int argc, char **argv)
{
    enum { OPT_TARGET = 0x2001, OPT_BUILD_ARG, OPT_PLATFORM, OPT_PRINT_AST };
    static const struct option longopts[] = {{"file", required_argument, NULL, 'f'},
                                             {"target", required_argument, NULL, OPT_TARGET},
                                             {"build-arg", required_argument, NULL, OPT_BUILD_ARG},
                                             {"platform", required_argument, NULL, OPT_PLATFORM},
                                             {"print-ast", no_argument, NULL, OPT_PRINT_AST},
                                             {"help", no_argument, NULL, 'h'},
                                             CLI_GLOBAL_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    const char *file_opt = NULL, *target = NULL, *platform = NULL;
    bool print_ast = false;
    _cleanup_strv_ char **build_args = strv_new();
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "f:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            file_opt = optarg;
            break;
        case OPT_TARGET:
            target = optarg;
            break;
        case OPT_BUILD_ARG:
            if (!*optarg || optarg[0] == '=')
                return cli_usage_error("check", "invalid --build-arg '%s': expected KEY=VALUE",
                                       optarg);
            strv_push(&build_args, optarg);
            break;
        case OPT_PLATFORM:
            platform = optarg;
            break;
        case OPT_PRINT_AST:
            print_ast = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            if (!cli_global_opt(c, optarg))
                return cli_bad_option("check", argv);
        }
    }
    if (argc - optind > 1)
        return cli_usage_error("check", "too many arguments");
    const char *context = optind < argc ? argv[optind] : ".";

    _cleanup_free_ char *path = NULL;
    _cleanup_free_ char *name = NULL;
    if (file_opt) {
        path = xstrdup(file_opt);
        name = xstrdup(strcmp(file_opt, "-") == 0 ? "Dockerfile" : file_opt);
    } else {
        path = path_join(context, "Dockerfile");
        name = strcmp(context, ".") == 0 ? xstrdup("Dockerfile") : xstrdup(path);
    }

    struct kiln_error *err = NULL;
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    if (read_dockerfile(path, &buf, &len, &err) < 0)
        return cli_fail(&err);

    struct df_ast *ast = NULL;
    if (dockerfile_parse(name, buf, len, &ast, &err) < 0)
        return cli_fail(&err);
    if (print_ast) {
        struct strbuf out = STRBUF_INIT;
        dockerfile_dump(ast, &out);
        fwrite(out.buf ? out.buf : "", 1, out.len, stdout);
        fflush(stdout);
        strbuf_release(&out);
    }

    int status = 0;
    struct df_file *file = NULL;
    struct plan *plan = NULL;
    struct kiln_error *plan_err = NULL;
    struct lint_result res = {0};
    if (df_file_from_ast(ast, &file, &err) < 0) {
        dockerfile_free(ast);
        return cli_fail(&err);
    }
    struct plan_opts popts = {.target = target, .build_args = build_args, .platform = platform};
    if (plan_create(file, &popts, &plan, &plan_err) < 0) {
        /* Still run the checks, on a plan that lets malformed names through. */
        popts.lenient = true;
        struct kiln_error *e2 = NULL;
        if (plan_create(file, &popts, &plan, &e2) < 0)
            plan = NULL;
        kiln_error_free(&e2);
    }
    if (plan && lint_run(file, plan, NULL, &res, &err) < 0)
        status = 1;

    const char *sev = res.config.error ? "error" : "warning";
    for (size_t i = 0; i < res.n_findings; i++)
        fprintf(stderr, "%s:%d: %s: %s: %s\n", ast->name, res.findings[i].line, sev,
                res.findings[i].rule, res.findings[i].message);
    size_t n_warn = res.n_findings;
    if (plan && !plan_err) {
        for (size_t i = 0; plan->warnings[i]; i++) {
            fprintf(stderr, "%s: warning: %s\n", ast->name, plan->warnings[i]);
            n_warn++;
        }
    }
    bool checked = plan && status == 0;
    if (checked && n_warn == 0)
        fprintf(stderr, "Check complete, no warnings found.\n");
    else if (n_warn > 0)
        fprintf(stderr, "Check complete, %zu warning%s been found!\n", n_warn,
                n_warn == 1 ? " has" : "s have");

    if (res.config.error && res.n_findings > 0) {
        struct strbuf rules = STRBUF_INIT;
        for (size_t i = 0; i < res.n_findings; i++) {
            bool seen = false;
            for (size_t k = 0; k < i; k++)
                if (strcmp(res.findings[k].rule, res.findings[i].rule) == 0)
                    seen = true;
            if (!seen)
                strbuf_addf(&rules, "%s%s", rules.len ? ", " : "", res.findings[i].rule);
        }
        struct kiln_error *lerr = NULL;
        kiln_error_set(&lerr, 0, "lint violation found for rules: %s", rules.buf);
        strbuf_release(&rules);
        print_error(&lerr);
        status = 1;
    }
    if (plan_err) {
        print_error(&plan_err);
        status = 1;
    }
    if (err) {
        print_error(&err);
        status = 1;
    }
    lint_result_clear(&res);
    plan_free(plan);
    df_file_free(file);
    dockerfile_free(ast);
    return status;
}
