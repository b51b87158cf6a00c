/* Store validation (`kiln system check`): the OCI layout and kiln's own
 * directories, reported as a list of problems. */
#ifndef KILN_FSCK_H
#define KILN_FSCK_H

#include <stddef.h>

#include "layers/store.h"
#include "lib/error.h"

#define FSCK_TMP_MAX_AGE (24 * 3600) /* tmp/ leftovers older than this are problems */

struct fsck_report {
    char **problems; /* one line each; empty when the store is sound */
    size_t images;   /* index.json entries */
    size_t blobs;    /* files in blobs/sha256, every one hashed */
    size_t records;  /* cache records */
};

/* Checks: oci-layout; index.json (parses, valid descriptors, no name used
 * twice); every blob file's content matches its name; every descriptor of
 * every image (manifests, image indexes, configs, layers) names a present
 * blob of the right size; manifests and configs parse and agree on the
 * number of layers; every cache record parses and its layer blob is present
 * with its size; no leftover in tmp/ older than a day.  Takes the gc lock
 * shared, so that no gc removes blobs while it looks.  Fails (-1) only when
 * the check itself cannot run. */
int store_fsck(struct store *s, struct fsck_report *ret, struct kiln_error **err);
void fsck_report_free(struct fsck_report *r);

#endif
