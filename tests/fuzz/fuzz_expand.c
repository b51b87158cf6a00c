/* libFuzzer target for the word expander.
 * Input: one flags byte (escape char, SkipUnsetEnv, raw quotes/escapes,
 * skip quotes), then the word up to the first '\n', then "KEY=VALUE" lines
 * for the environment.  Also compiled into tests/unit/test_expand.c, which
 * replays tests/fuzz/corpus/expand. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dockerfile/expand.h"
#include "lib/xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    uint8_t flags = data[0];
    char *text = xstrndup((const char *)data + 1, size - 1); /* stops at a NUL */
    char *nl = strchr(text, '\n');
    char **vars = strv_new();
    if (nl) {
        *nl = '\0';
        for (char *p = nl + 1; *p;) {
            char *e = strchr(p, '\n');
            if (e)
                *e = '\0';
            strv_push(&vars, p);
            if (!e)
                break;
            p = e + 1;
        }
    }
    struct expand_env env = {vars, strv_len(vars)};
    struct expand_opts opts = {
        .escape = (flags & 1) ? '`' : '\\',
        .skip_unset = flags & 2,
        .raw_quotes = flags & 4,
        .raw_escapes = flags & 8,
        .skip_quotes = flags & 16,
    };
    char *out = NULL;
    struct expand_matches m = {0};
    struct kiln_error *err = NULL;
    if (expand_word(text, &env, &opts, &out, &m, &err) == 0) {
        free(out);
        expand_matches_free(&m);
    } else if (!err || !err->msg || strncmp(err->msg, "failed to process ", 18) != 0) {
        abort(); /* every failure must carry a message */
    }
    kiln_error_free(&err);
    char **words = NULL;
    if (expand_words(text, &env, &opts, &words, &err) == 0)
        strv_free(words);
    kiln_error_free(&err);
    strv_free(vars);
    free(text);
    return 0;
}
