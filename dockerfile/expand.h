/* Shell-style word expansion with BuildKit's rules ($VAR, ${VAR}, ${VAR:-w},
 * ${VAR-w}, ${VAR:+w}, ${VAR+w}, ${VAR:?m}, ${VAR?m}, ${VAR#p}, ${VAR##p},
 * ${VAR%p}, ${VAR%%p}, ${VAR/p/r}, ${VAR//p/r}), quotes and escapes, with
 * the escape character of the Dockerfile's escape directive. */
#ifndef KILN_EXPAND_H
#define KILN_EXPAND_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/error.h"

/* An environment: ordered "KEY=VALUE" entries; on lookup the LAST entry of a
 * key wins.  An entry without '=' defines KEY as empty. */
struct expand_env {
    char *const *vars;
    size_t n_vars;
};

struct expand_opts {
    char escape;        /* '\\' or '`' */
    bool skip_unset;    /* leave $UNSET as written (BuildKit's SkipUnsetEnv) */
};

/* Variables a word referenced: set ones in matched, unset ones in unmatched
 * (each NULL-terminated, sorted, no duplicates; caller frees with strv_free). */
struct expand_matches {
    char **matched;
    char **unmatched;
};

/* Expands `word` as one word (quotes removed, escapes processed). */
int expand_word(const char *word, const struct expand_env *env, const struct expand_opts *opts,
                char **ret, struct expand_matches *ret_matches, struct kiln_error **err);

/* Expands and splits into words on unquoted whitespace (NULL-terminated). */
int expand_words(const char *word, const struct expand_env *env, const struct expand_opts *opts,
                 char ***ret, struct kiln_error **err);

void expand_matches_free(struct expand_matches *m);

#endif
