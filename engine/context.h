/* The build context and the Dockerfile: a directory, a tar on stdin or a
 * tar behind an http(s) URL; the Dockerfile from a path, the context or
 * stdin. */
#ifndef KILN_CONTEXT_H
#define KILN_CONTEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "engine/internal.h"

struct build_input {
    char *context_dir;     /* absolute; the context as a directory */
    char *dockerfile_name; /* for messages: "Dockerfile", "ci/Dockerfile.dev", "-" */
    char *dockerfile_path; /* on disk (NULL when read from stdin) */
    char *dockerfile;      /* contents */
    size_t dockerfile_len;
    char *ignore_text;     /* the .dockerignore in effect (NULL: none) */
    char *ignore_name;     /* its name, for messages */
};

void build_input_free(struct build_input *in);

/* Prepares the context (extracting a tar into scratch when needed) and reads
 * the Dockerfile and the ignore file that applies to it. */
int context_prepare(struct build_ctx *bc, struct build_input *ret, struct kiln_error **err);

/* Is the file open as fd a tar archive (plain or compressed)?  The offset is
 * put back to 0.  (ADD unpacks those; a URL context must be one.) */
bool context_is_archive(int fd);

/* Extracts a tar stream (any compression) into dir, refusing entries that
 * would land outside it. */
int context_extract_tar(int fd, const char *dir, struct kiln_error **err);

#endif
