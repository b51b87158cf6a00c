/* .dockerignore with Docker's semantics: moby/patternmatcher's reading
 * (ignorefile.ReadAll), compiling (New) and matching, and BuildKit's choice of
 * ignore file.  See ../shared/conformance/README.md section 3. */
#ifndef KILN_IGNORE_H
#define KILN_IGNORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/error.h"

/* Largest ignore file read, and longest line (bufio.Scanner's limit). */
#define IGNORE_MAX_FILE (16u << 20)
#define IGNORE_MAX_LINE 65535u

struct ignore;

/* ReadAll: splits `buf` into patterns (BOM, '#' comments checked before
 * trimming, whitespace trimmed, '!' kept, filepath.Clean, one leading '/'
 * dropped).  *ret is NULL-terminated (strv_free). */
int ignore_read(const char *buf, size_t len, char ***ret, struct kiln_error **err);

/* New: compiles patterns (trimmed and cleaned again; empty ones skipped).
 * A lone "!" and a malformed pattern are errors naming the pattern. */
int ignore_compile(char *const *patterns, struct ignore **ret, struct kiln_error **err);

/* ignore_read + ignore_compile. */
int ignore_parse(const char *buf, size_t len, struct ignore **ret, struct kiln_error **err);

void ignore_free(struct ignore *ig);

/* Number of compiled patterns (the size of a match state, below). */
size_t ignore_count(const struct ignore *ig);
/* True when some pattern is an exception ("!..."). */
bool ignore_has_exceptions(const struct ignore *ig);

/* MatchesOrParentMatches on a context-relative slash path: the path is
 * cleaned first; "." is never excluded.  True = excluded. */
bool ignore_match(const struct ignore *ig, const char *path);

/* MatchesUsingParentResults, what the context walk uses: `path` is a clean
 * context-relative path, `parent` the state returned for its directory
 * (NULL for entries at the top of the context).  Writes this path's state
 * (ignore_count bytes) to ret_state when not NULL.  True = excluded. */
bool ignore_match_parent(const struct ignore *ig, const char *path, size_t len,
                         const uint8_t *parent, uint8_t *ret_state);

/* Whether an excluded directory must still be walked because an exception
 * could re-include something below it (fsutil's rule: with only literal
 * exceptions, one that names the directory or a path below it; with any
 * wildcard exception, always).  `dir` is clean and context-relative. */
bool ignore_dir_needs_walk(const struct ignore *ig, const char *dir, size_t len);

/* Loads the ignore file a build uses, as BuildKit chooses it:
 * "<Dockerfile>.dockerignore" beside the Dockerfile when it exists, else
 * ".dockerignore" at the context root (read inside the context, symlinks
 * resolved within it).  `dockerfile` may be NULL or "-" (stdin).  No file at
 * all gives an empty matcher.  *ret_used is the file read, or NULL. */
int ignore_load(int context_fd, const char *dockerfile, struct ignore **ret, char **ret_used,
                struct kiln_error **err);

#endif
