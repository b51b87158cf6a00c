/* Regular expressions with Go's regexp syntax and leftmost-first semantics,
 * for the two places where BuildKit compiles a Go regexp from user text:
 * .dockerignore patterns (moby/patternmatcher turns each pattern into a
 * regexp) and the shell patterns of ${VAR#p} ${VAR%p} ${VAR/p/r}.  Getting
 * the same answers as Docker means parsing the very same regexp text the same
 * way, quirks included (`\b` is a word boundary, `[[:alpha:]]` a POSIX class,
 * `\Q..\E` literal text).
 *
 * Supported: literals, `.`, `^` `$` (whole text, as Go's Perl flags make
 * them), `\A` `\z` `\b` `\B`, classes with ranges, negation, POSIX `[:name:]`
 * and `\d\s\w\D\S\W`, `\pX` / `\p{Cat}` for general categories and `Any`,
 * escapes (`\x41`, `\x{263a}`, octal, `\a\f\t\n\r\v`, punctuation), groups,
 * `|`, and `*` `+` `?` (lazy with a trailing `?`).  Not supported (an error
 * says so): Unicode script classes (`\p{Greek}`), `(?flags)`, `{n,m}`
 * counted repetition -- neither Docker path can produce the latter two.
 *
 * Matching is a backtracking search with a visited set on (instruction,
 * position), so it takes O(program x input) time at worst. */
#ifndef KILN_GOREGEX_H
#define KILN_GOREGEX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct goregex;

/* Compiles expr[0..len).  On failure returns -1 and sets *ret_errmsg to a
 * message in Go's words (caller frees). */
int goregex_compile(const char *expr, size_t len, struct goregex **ret, char **ret_errmsg);
void goregex_free(struct goregex *re);

/* Tries a match starting exactly at `start`; returns the end offset of the
 * match Go would pick (leftmost-first priority), or -1. */
ssize_t goregex_match_at(const struct goregex *re, const char *s, size_t len, size_t start);

/* Leftmost-first search for a match starting at or after `from` (on rune
 * boundaries, as Go steps).  Returns true and the match bounds. */
bool goregex_search(const struct goregex *re, const char *s, size_t len, size_t from,
                    size_t *ret_start, size_t *ret_end);

/* True when the regexp matches somewhere in s (Go's MatchString). */
bool goregex_match_string(const struct goregex *re, const char *s, size_t len);

/* Go's ReplaceAllString: every leftmost-first match, left to right, replaced
 * by `repl` with $-expansion ($0 is the match; this engine has no groups).
 * Returns NULL when the result would exceed `max` bytes. */
char *goregex_replace_all_string(const struct goregex *re, const char *src, size_t len,
                                 const char *repl, size_t repl_len, size_t max,
                                 size_t *ret_len);

#endif
