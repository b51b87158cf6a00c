#include "layers/descriptor.h"

#include <string.h>

const char *compression_media_type(enum compression c)
{
    switch (c) {
    case COMPRESSION_ZSTD:
        return MT_OCI_LAYER_ZSTD;
    case COMPRESSION_NONE:
        return MT_OCI_LAYER_TAR;
    case COMPRESSION_GZIP:
    default:
        return MT_OCI_LAYER_GZIP;
    }
}

int compression_from_media_type(const char *mt)
{
    if (!mt)
        return -1;
    if (strcmp(mt, MT_OCI_LAYER_GZIP) == 0 || strcmp(mt, MT_DOCKER_LAYER_GZIP) == 0 ||
        strcmp(mt, MT_DOCKER_LAYER_FOREIGN) == 0)
        return COMPRESSION_GZIP;
    if (strcmp(mt, MT_OCI_LAYER_ZSTD) == 0)
        return COMPRESSION_ZSTD;
    if (strcmp(mt, MT_OCI_LAYER_TAR) == 0)
        return COMPRESSION_NONE;
    return -1;
}
