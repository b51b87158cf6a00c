/* Go's path/filepath semantics on '/'-separated paths (Linux), as Docker
 * applies them to .dockerignore patterns and COPY wildcards. */
#ifndef KILN_GOPATH_H
#define KILN_GOPATH_H

#include <stdbool.h>
#include <stddef.h>

/* filepath.Clean: the shortest equivalent path ("" -> ".").  Caller frees. */
char *gopath_clean(const char *path, size_t len);

enum { GOMATCH_NO = 0, GOMATCH_YES = 1, GOMATCH_BAD_PATTERN = -1 };

/* filepath.Match: `*` any run of non-'/' bytes, `?` one non-'/' rune,
 * `[...]` / `[^...]` classes with ranges, `\` escapes the next character.
 * Returns GOMATCH_BAD_PATTERN for a malformed pattern (as Go: even when the
 * mismatch is found before the malformed part). */
int gopath_match(const char *pattern, size_t plen, const char *name, size_t nlen);

/* True when a path component has an unescaped `*`, `?` or `[`. */
bool gopath_has_wildcards(const char *s, size_t len);

#endif
