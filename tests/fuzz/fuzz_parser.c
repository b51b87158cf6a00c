/* libFuzzer target: the Dockerfile parser and what sits on it (dump, typed
 * instructions and their expansion, stage plan, build checks).  See
 * tests/fuzz/README.md. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dockerfile/dockerfile.h"
#include "dockerfile/instructions.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Turns every word into itself reversed, WORDS into two words. */
static int fake_expand(void *ctx, const char *word, enum df_expand_how how, char ***ret,
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct df_ast *ast = NULL;
    struct kiln_error *err = NULL;
    if (dockerfile_parse("fuzz", (const char *)data, size, &ast, &err) == 0) {
        struct strbuf out = STRBUF_INIT;
        dockerfile_dump(ast, &out);
        strbuf_release(&out);
        struct df_file *file = NULL;
        if (df_file_from_ast(ast, &file, &err) == 0) {
            for (size_t i = 0; i < file->n_all; i++) {
                struct df_instruction *x = NULL;
                if (df_instruction_expand(ast, &file->all[i], fake_expand, NULL, &x, &err) == 0)
                    df_instruction_free(x);
                kiln_error_free(&err);
                if (file->all[i].kind == DF_RUN) {
                    char *text = NULL;
                    df_run_script(&file->all[i].u.run, &text, NULL);
                    free(text);
                }
            }
            df_file_free(file);
        }
    }
    kiln_error_free(&err);
    dockerfile_free(ast);
    return 0;
}
