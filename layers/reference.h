/* Image references as Docker writes them: [DOMAIN/]PATH[:TAG][@DIGEST].
 * "busybox" means docker.io/library/busybox:latest. */
#ifndef KILN_REFERENCE_H
#define KILN_REFERENCE_H

#include "lib/error.h"

struct image_ref {
    char *domain; /* "docker.io", "localhost:5000", ... */
    char *path;   /* "library/busybox" */
    char *tag;    /* NULL when only a digest was given */
    char *digest; /* "sha256:..." or NULL */
};

/* Parses and normalises; "latest" is added when there is neither a tag nor
 * a digest. */
int ref_parse(const char *s, struct image_ref *ret, struct kiln_error **err);
void ref_free(struct image_ref *r);
/* "busybox:latest", "localhost:5000/app:1", "app@sha256:..." (caller frees). */
char *ref_familiar(const struct image_ref *r);
/* The familiar repository without tag or digest: "busybox", "localhost:5000/app". */
char *ref_familiar_name(const struct image_ref *r);
/* "docker.io/library/busybox:latest" (caller frees). */
char *ref_full(const struct image_ref *r);

#endif
