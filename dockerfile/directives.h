/* The parser-directive state machine (BuildKit's DirectiveParser); internal
 * to dockerfile/. */
#ifndef KILN_DOCKERFILE_DIRECTIVES_H
#define KILN_DOCKERFILE_DIRECTIVES_H

#include <stdbool.h>
#include <stddef.h>

struct dirparser {
    const char *comment; /* "#" (default) or "//" */
    bool done;           /* a non-directive line was seen */
    unsigned seen;       /* bit per directive name */
    int line;            /* lines seen so far */
};

struct directive_hit {
    const char *name;    /* "escape", "syntax" or "check" */
    size_t name_off;     /* in the line passed */
    size_t value_off;
    size_t value_len;
    int line;
};

/* Feeds one line (without its newline).  Returns 1 and fills *hit for a
 * directive, 0 otherwise, -1 for a repeated directive (*ret_error = its
 * name). */
int dirparser_line(struct dirparser *d, const char *line, size_t n, struct directive_hit *hit,
                   const char **ret_error);

#endif
