/* Image references with a transport, as containers/skopeo write them:
 *   docker://REF (the default: "alpine" = docker://docker.io/library/alpine:latest)
 *   oci:DIR[:TAG]  oci-archive:FILE[:TAG]  docker-archive:FILE[:NAME:TAG]
 * and copying images between the store and local layouts/archives.
 * (The registry side, docker://, is layers/registry.h.)
 *
 * Parsing follows containers/image: the path ends at the first ':' (paths
 * with a colon cannot be named); an OCI TAG is an OCI ref-name
 * ([A-Za-z0-9]+ joined by - . _ : @ + or --, components split by '/'); a
 * docker-archive NAME:TAG is a docker reference without digest; both also
 * take "@N", the N-th image of the source.
 *
 * Formats written:
 *   oci:DIR         an OCI image layout, created or added to; the entry for
 *                   a TAG replaces one with the same org.opencontainers.image.ref.name
 *   oci-archive     a tar of such a layout
 *   docker-archive  docker's `manifest.json` (Config, RepoTags, Layers) over
 *                   an OCI layout (oci-layout, index.json, blobs/sha256/...),
 *                   the way `docker save` writes it since Docker 25: layers
 *                   stay as stored (gzip), which podman load and docker load
 *                   read; the manifests are kept, so save -> load gives the
 *                   same manifest digest.
 * Archives are reproducible: sorted entries, mtime 0, owner 0:0.
 *
 * Formats read: OCI layouts and archives (image indexes: the entry for this
 * machine's platform), docker archives with or without the OCI part
 * (skopeo's and older docker's <hex>.json/<hex>.tar or <id>/layer.tar
 * layouts, symlinked layers included); the archive may be compressed
 * (gzip, bzip2, xz, zstd).  Every blob is verified while it is copied: its
 * digest, its size, and for layers whose digest is not their diff_id
 * (compressed layers of docker archives) the diff_id of the content. */
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
    char *path; /* oci/archives: the directory or file ("-": stdin/stdout for archives) */
    char *ref;  /* docker: the image reference; oci: the tag; docker-archive: NAME:TAG
                   in familiar form ("app:1"); NULL when absent or when index >= 0 */
    int index;  /* "@N": the N-th image of the source; -1 when not given */
};

int transport_parse(const char *s, struct transport_ref *ret, struct kiln_error **err);
void transport_ref_free(struct transport_ref *r);
/* "oci:DIR:TAG" etc. (caller frees). */
char *transport_ref_string(const struct transport_ref *r);

/* One image copied into the store. */
struct transport_image {
    struct descriptor manifest;         /* the manifest in the store */
    char config_digest[DIGEST_STR_LEN]; /* the image id */
    char **names;                       /* names recorded in the store (familiar form) */
};

void transport_images_free(struct transport_image *imgs, size_t n);

/* An image from an OCI layout or an archive into the store (blobs verified);
 * *ret_manifest is the image's manifest descriptor in the store.  Chooses
 * the image named by the ref (TAG, NAME:TAG, @N), or the only one.  Names it
 * in the store: docker-archive by its RepoTags (or the NAME:TAG asked for);
 * OCI by its TAG when that is a full name ("app:1", "ghcr.io/a/b:2"), or by
 * "BASENAME:TAG" for a bare tag ("oci:/x/alpine:3.19" -> "alpine:3.19");
 * without a usable name it stays untagged. */
int transport_import(struct store *s, const struct transport_ref *src,
                     struct descriptor *ret_manifest, struct kiln_error **err);

/* Every image of an archive read from fd (kiln load): the format is
 * detected; `name_hint` (a file name, or NULL) names images whose OCI tag is
 * bare, as above. */
int transport_load_fd(struct store *s, int fd, const char *name_hint,
                      struct transport_image **ret, size_t *ret_n, struct kiln_error **err);

/* Images of the store (manifest descriptors, with the names to record for
 * each, e.g. "app:1"; names may be NULL, and a manifest may be listed once
 * per name) into a layout or an archive ("-" writes an archive to stdout).
 * Archive files are written beside the target and renamed into place. */
int transport_export(struct store *s, const struct descriptor *manifests, char *const *names,
                     size_t n, const struct transport_ref *dst, struct kiln_error **err);
/* The same into an open file descriptor (archives only). */
int transport_export_fd(struct store *s, const struct descriptor *manifests, char *const *names,
                        size_t n, enum transport_kind kind, int fd, struct kiln_error **err);

/* The flattened file system of an image (layers applied in order, whiteouts
 * honoured) as a tar, like `docker export` of a container made from it. */
int image_export_rootfs(struct store *s, const struct descriptor *manifest, int fd,
                        struct kiln_error **err);

#endif
