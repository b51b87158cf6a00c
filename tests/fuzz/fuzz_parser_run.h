/* What fuzz_parser does with one input; also replayed over the kept corpus
 * by tests/unit/test_parser.c.  Everything that reads the Dockerfile: the
 * parser and its dump, typed instructions and their expansion hook, the RUN
 * heredoc modes, the stage plan (strict, then lenient) and the build checks. */
#ifndef KILN_FUZZ_PARSER_RUN_H
#define KILN_FUZZ_PARSER_RUN_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dockerfile/dockerfile.h"
#include "dockerfile/instructions.h"
#include "dockerfile/lint.h"
#include "dockerfile/plan.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

/* Turns every word into itself reversed (WORDS: that and the word), and
 * refuses words ending in '?', so both paths of the hook run. */
static int fuzz_fake_expand(void *ctx, const char *word, enum df_expand_how how, char ***ret,
                            struct kiln_error **err)
{
    (void)ctx;
    size_t n = strlen(word);
    if (n > 0 && word[n - 1] == '?')
        return kiln_error_set(err, 0, "refused");
    char *r = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++)
        r[i] = word[n - 1 - i];
    r[n] = '\0';
    char **v = strv_new();
    strv_push_take(&v, r);
    if (how == DF_EXPAND_WORDS)
        strv_push(&v, word);
    *ret = v;
    return 0;
}

static void fuzz_parser_run(const uint8_t *data, size_t size)
{
    struct df_ast *ast = NULL;
    struct df_file *file = NULL;
    struct plan *plan = NULL;
    struct kiln_error *err = NULL;
    if (dockerfile_parse("fuzz", (const char *)data, size, &ast, &err) < 0)
        goto out;
    struct strbuf out = STRBUF_INIT;
    dockerfile_dump(ast, &out);
    strbuf_release(&out);
    if (df_file_from_ast(ast, &file, &err) < 0)
        goto out;
    for (size_t i = 0; i < file->n_all; i++) {
        struct df_instruction *x = NULL;
        if (df_instruction_expand(ast, &file->all[i], fuzz_fake_expand, NULL, &x, &err) == 0)
            df_instruction_free(x);
        kiln_error_free(&err);
        if (file->all[i].kind == DF_RUN) {
            char *text = NULL;
            df_run_script(&file->all[i].u.run, &text, NULL);
            free(text);
        }
    }
    static char *args[] = {"A=1", "B=${A}", NULL};
    struct plan_opts po = {.build_args = args};
    if (plan_create(file, &po, &plan, &err) < 0) {
        kiln_error_free(&err);
        po.lenient = true;
        if (plan_create(file, &po, &plan, &err) < 0)
            goto out;
    }
    struct lint_result res;
    if (lint_run(file, plan, NULL, &res, &err) == 0)
        lint_result_clear(&res);
out:
    kiln_error_free(&err);
    plan_free(plan);
    df_file_free(file);
    dockerfile_free(ast);
}

#endif
