/* libFuzzer target for the .dockerignore matcher.
 * Input: the .dockerignore text, a NUL byte, then paths separated by '\n'.
 * Each path goes through ignore_match (MatchesOrParentMatches) and the walk's
 * component-by-component ignore_match_parent; each pattern line is also run
 * through Go's filepath.Match and, as a raw Go regexp, through goregex.
 * Also compiled into tests/unit/test_ignore.c, which replays
 * tests/fuzz/corpus/ignore. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dockerfile/gopath.h"
#include "dockerfile/goregex.h"
#include "dockerfile/ignore.h"
#include "lib/xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    const char *d = (const char *)data;
    const char *nul = memchr(d, '\0', size);
    size_t tlen = nul ? (size_t)(nul - d) : size;
    char *paths = nul ? xstrndup(nul + 1, size - tlen - 1) : xstrdup("a/b/c");

    struct ignore *ig = NULL;
    struct kiln_error *err = NULL;
    if (ignore_parse(d, tlen, &ig, &err) < 0) {
        if (!err || !err->msg)
            abort();
        kiln_error_free(&err);
    }
    size_t n = ignore_count(ig);
    uint8_t *a = xcalloc(n + 1, 1), *b = xcalloc(n + 1, 1);
    for (char *p = paths; p && *p;) {
        char *e = strchr(p, '\n');
        if (e)
            *e = '\0';
        if (ig) {
            (void)ignore_match(ig, p);
            size_t len = strlen(p);
            uint8_t *parent = NULL;
            for (size_t i = 0; i <= len; i++) {
                if (i < len && p[i] != '/')
                    continue;
                uint8_t *out = parent == a ? b : a;
                (void)ignore_match_parent(ig, p, i, parent, out);
                (void)ignore_dir_needs_walk(ig, p, i);
                parent = out;
            }
        }
        /* the raw lines as filepath.Match patterns and Go regexps */
        const char *line = d;
        while (line < d + tlen) {
            const char *le = memchr(line, '\n', (size_t)(d + tlen - line));
            size_t ll = le ? (size_t)(le - line) : (size_t)(d + tlen - line);
            (void)gopath_match(line, ll, p, strlen(p));
            struct goregex *re = NULL;
            char *msg = NULL;
            if (goregex_compile(line, ll, &re, &msg) == 0) {
                (void)goregex_match_string(re, p, strlen(p));
                size_t rl;
                free(goregex_replace_all_string(re, p, strlen(p), "<$0>", 4, 1u << 16, &rl));
                goregex_free(re);
            } else if (!msg) {
                abort();
            }
            free(msg);
            line += ll + 1;
        }
        if (!e)
            break;
        p = e + 1;
    }
    free(a);
    free(b);
    ignore_free(ig);
    free(paths);
    return 0;
}
