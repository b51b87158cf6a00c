/* The build-context walk: what a build sees of its context once
 * .dockerignore has been applied, in the order BuildKit's sender walks it
 * (tonistiigi/fsutil over Go's filepath.WalkDir: names in byte order, depth
 * first).  The engine uses it to select and hash COPY/ADD sources.
 *
 * Entries are reached with openat(O_NOFOLLOW) from the context root, one
 * component at a time: a symlink is reported as a symlink, never followed,
 * and nothing outside the root is ever opened. */
#ifndef KILN_WALK_H
#define KILN_WALK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "dockerfile/ignore.h"
#include "lib/error.h"

#define WALK_MAX_DEPTH 512

struct walk_entry {
    const char *path; /* context-relative, '/'-separated ("dir/file") */
    size_t path_len;
    const char *name; /* last component of path */
    int dirfd;        /* the parent directory, open during the callback */
    const struct stat *st; /* lstat of the entry */
};

enum walk_ret {
    WALK_CONTINUE = 0,
    /* On a directory: do not descend.  On anything else: skip the rest of
     * its directory (Go's fs.SkipDir). */
    WALK_SKIP = 1,
};

/* Returns WALK_CONTINUE, WALK_SKIP, or -1 with *err set to stop the walk. */
typedef int (*walk_fn)(const struct walk_entry *e, void *userdata, struct kiln_error **err);

/* Visits what is below `subpath` ("" or "." for the whole context) of the
 * context at root_fd, skipping what `ig` (may be NULL) excludes.  An excluded
 * directory is not even opened unless an exception could re-include
 * something below it; it is then reported only just before the first entry
 * below it that is kept (fsutil's behaviour).  When `subpath` names a
 * non-directory, the callback sees that entry alone.  A subpath that is
 * missing or excluded fails with ENOENT. */
int context_walk_at(int root_fd, const char *subpath, const struct ignore *ig, walk_fn fn,
                    void *userdata, struct kiln_error **err);
/* The same with the context given as a directory path. */
int context_walk(const char *root, const char *subpath, const struct ignore *ig, walk_fn fn,
                 void *userdata, struct kiln_error **err);

/* COPY/ADD source wildcards as BuildKit resolves them: the leading
 * components without wildcards name a directory, the rest is matched with
 * Go's filepath.Match against paths below it; a matching directory is
 * returned whole (not descended).  Returns the matching context-relative
 * paths in walk order (possibly none).  A pattern without wildcards is
 * returned as is when it exists and is not excluded. */
int context_glob(int root_fd, const char *pattern, const struct ignore *ig, char ***ret,
                 struct kiln_error **err);

/* Opens `path` relative to the context root, resolving symlinks as if the
 * root were "/" (openat2 RESOLVE_IN_ROOT; where that is unavailable, symlinks
 * are refused).  Returns an fd or -errno. */
int context_openat(int root_fd, const char *path, int flags);

#endif
