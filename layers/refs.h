/* index.json: the images of the store.  A tag is a manifest descriptor with
 * the annotation org.opencontainers.image.ref.name = "NAME:TAG" (familiar
 * form: "busybox:latest", "localhost:5000/app:1").  An entry without the
 * annotation is an untagged ("dangling") image kept until pruned. */
#ifndef KILN_REFS_H
#define KILN_REFS_H

#include <stdbool.h>
#include <stddef.h>

#include "layers/descriptor.h"
#include "layers/image.h"
#include "layers/store.h"
#include "lib/error.h"

struct index_entry {
    struct descriptor desc;
    struct strmap annotations;
    char *platform_os;
    char *platform_arch;
    char *platform_variant;
};

struct store_index {
    struct index_entry *entries;
    size_t n;
};

int store_index_read(struct store *s, struct store_index *ret, struct kiln_error **err);
/* Replaces index.json atomically; the caller holds store_lock. */
int store_index_write(struct store *s, const struct store_index *idx, struct kiln_error **err);
void store_index_free(struct store_index *idx);
/* The ref name of an entry (NULL when untagged). */
const char *index_entry_name(const struct index_entry *e);

/* Points NAME (any form; normalised) at a manifest.  An image that loses its
 * last name stays as an untagged entry. */
int store_tag(struct store *s, const char *name, const struct descriptor *manifest,
              struct kiln_error **err);
/* Records an image without a name (kept until pruned). */
int store_add_untagged(struct store *s, const struct descriptor *manifest, struct kiln_error **err);
/* Removes a name; *ret_found says whether it existed. */
int store_untag(struct store *s, const char *name, bool *ret_found, struct kiln_error **err);
/* Drops index entries (tagged or not) pointing at a manifest digest. */
int store_forget_manifest(struct store *s, const char *digest, struct kiln_error **err);

/* Finds an image by what a user typed: NAME[:TAG], NAME@DIGEST, a manifest
 * digest, an image id (config digest, "sha256:..." or a hex prefix of at
 * least 4 characters).  ret_name gets the matched ref name (or NULL). */
int store_resolve(struct store *s, const char *what, struct descriptor *ret,
                  char **ret_name, struct kiln_error **err);
/* Normalises a user-given name to the stored form ("busybox:latest"). */
int store_ref_name(const char *what, char **ret, struct kiln_error **err);

#endif
