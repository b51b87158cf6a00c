/* Shell-style word expansion with BuildKit's rules ($VAR, ${VAR}, ${VAR:-w},
 * ${VAR-w}, ${VAR:+w}, ${VAR+w}, ${VAR:?m}, ${VAR?m}, ${VAR#p}, ${VAR##p},
 * ${VAR%p}, ${VAR%%p}, ${VAR/p/r}, ${VAR//p/r}), quotes and escapes, with
 * the escape character of the Dockerfile's escape directive.
 *
 * This follows moby/buildkit frontend/dockerfile/shell (Lex) to the byte,
 * including its quirks: positional and special parameters ($1, $@, ...) are
 * looked up like any name (and are normally unset), literal text that is not
 * valid UTF-8 comes out as U+FFFD, patterns are Go regexps built from the
 * shell pattern (so '*' and '?' do not match a newline).
 *
 * Which instructions expand, and whether they split into words, is the
 * caller's business (see expand_instruction_mode below). */
#ifndef KILN_EXPAND_H
#define KILN_EXPAND_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/error.h"

/* Longest word accepted and longest result produced (bytes). */
#define EXPAND_MAX_LEN (4u << 20)
/* Deepest nesting of ${...} inside ${...}. */
#define EXPAND_MAX_DEPTH 100

/* An environment: ordered "KEY=VALUE" entries; on lookup the LAST entry of a
 * key wins.  An entry without '=' defines KEY as empty. */
struct expand_env {
    char *const *vars;
    size_t n_vars;
};

struct expand_opts {
    char escape;      /* '\\' or '`' (0 means '\\') */
    bool skip_unset;  /* leave $UNSET as written (BuildKit's SkipUnsetEnv) */
    bool raw_quotes;  /* keep quote characters in the result (RawQuotes) */
    bool raw_escapes; /* keep escape characters in the result (RawEscapes) */
    bool skip_quotes; /* quotes are ordinary characters (SkipProcessQuotes) */
};

/* Variables a word referenced: set ones in matched, unset ones in unmatched
 * (each NULL-terminated, sorted, no duplicates; caller frees with strv_free). */
struct expand_matches {
    char **matched;
    char **unmatched;
};

/* Expands `word` as one word (quotes removed, escapes processed).
 * `opts` may be NULL (escape '\\', nothing else).  Errors carry BuildKit's
 * wording, e.g. "failed to process \"${V:?}\": V: is not allowed to be unset". */
int expand_word(const char *word, const struct expand_env *env, const struct expand_opts *opts,
                char **ret, struct expand_matches *ret_matches, struct kiln_error **err);

/* Expands and splits into words on unquoted whitespace (NULL-terminated). */
int expand_words(const char *word, const struct expand_env *env, const struct expand_opts *opts,
                 char ***ret, struct kiln_error **err);

void expand_matches_free(struct expand_matches *m);

/* Where Docker expands variables (the Dockerfile reference's list, as
 * BuildKit implements it): ADD COPY ENV EXPOSE FROM LABEL STOPSIGNAL USER
 * VOLUME WORKDIR ONBUILD(no) and the flags of those; ARG's default value;
 * RUN/CMD/ENTRYPOINT/SHELL/HEALTHCHECK are left to the shell.  EXPOSE
 * splits words (ProcessWords); the others expand single words. */
enum expand_mode {
    EXPAND_NONE = 0, /* the instruction's arguments are not expanded */
    EXPAND_WORD,     /* each argument expands to one word */
    EXPAND_SPLIT,    /* each argument expands and splits into words */
};
/* `instruction` is the keyword, any case ("copy", "EXPOSE"). */
enum expand_mode expand_instruction_mode(const char *instruction);

#endif
