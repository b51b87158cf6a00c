/* Image references with a transport, as containers/skopeo write them:
 *   docker://REF (the default: "alpine" = docker://docker.io/library/alpine:latest)
 *   oci:DIR[:TAG]  oci-archive:FILE[:TAG]  docker-archive:FILE[:NAME:TAG]
 * and copying images between the store and local layouts/archives.
 * (The registry side, docker://, is layers/registry.h.) */
#ifndef KILN_TRANSPORT_H
#define KILN_TRANSPORT_H

#include <stddef.h>

#include "layers/descriptor.h"
#include "layers/store.h"
#include "lib/error.h"

enum transport_kind {
    TRANSPORT_DOCKER = 0,
    TRANSPORT_OCI,
    TRANSPORT_OCI_ARCHIVE,
    TRANSPORT_DOCKER_ARCHIVE,
};

struct transport_ref {
    enum transport_kind kind;
    char *path; /* oci/archives: the directory or file */
    char *ref;  /* docker: the image reference; oci: the tag; docker-archive: NAME:TAG (or NULL) */
};

int transport_parse(const char *s, struct transport_ref *ret, struct kiln_error **err);
void transport_ref_free(struct transport_ref *r);

/* An image from an OCI layout or an archive into the store (blobs verified);
 * *ret_manifest is the image's manifest descriptor in the store. */
int transport_import(struct store *s, const struct transport_ref *src,
                     struct descriptor *ret_manifest, struct kiln_error **err);

/* Images of the store (manifest descriptors, with the names to record for
 * each, e.g. "app:1"; names may be NULL) into a layout or an archive. */
int transport_export(struct store *s, const struct descriptor *manifests, char *const *names,
                     size_t n, const struct transport_ref *dst, struct kiln_error **err);

#endif
