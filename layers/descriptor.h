/* OCI content descriptors and media types. */
#ifndef KILN_DESCRIPTOR_H
#define KILN_DESCRIPTOR_H

#include <stdint.h>

#include "lib/sha256.h"

/* The content of an OCI image layout's oci-layout file. */
#define OCI_LAYOUT_JSON "{\"imageLayoutVersion\":\"1.0.0\"}"
#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_OCI_LAYER_TAR "application/vnd.oci.image.layer.v1.tar"
#define MT_OCI_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define MT_OCI_LAYER_ZSTD "application/vnd.oci.image.layer.v1.tar+zstd"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_MANIFEST_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define MT_DOCKER_LAYER_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define MT_DOCKER_LAYER_FOREIGN "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

#define ANNOT_REF_NAME "org.opencontainers.image.ref.name"

enum compression { COMPRESSION_GZIP = 0, COMPRESSION_ZSTD, COMPRESSION_NONE };

struct descriptor {
    char *media_type;
    char digest[DIGEST_STR_LEN];
    uint64_t size;
};

/* The layer media type for a compression, and back (-1: not a layer type). */
const char *compression_media_type(enum compression c);
int compression_from_media_type(const char *media_type);

#endif
