/* Pieces shared by the image commands (images, inspect, history, rmi,
 * prune, save, load, export). */
#ifndef KILN_IMGUTIL_H
#define KILN_IMGUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cmd/template.h"
#include "layers/gc.h"
#include "layers/image.h"
#include "layers/store.h"
#include "lib/error.h"

/* Every index.json entry, loaded. */
struct img_row {
    struct descriptor desc; /* the manifest */
    char *name;             /* ref name, or NULL (untagged) */
    bool loaded;            /* img is valid */
    struct image img;
};

struct img_list {
    struct img_row *rows;
    size_t n;
};

/* Loads every entry; an entry that does not load is kept (loaded = false)
 * after a warning on stderr. */
int img_list_load(struct store *s, struct img_list *ret, struct kiln_error **err);
void img_list_free(struct img_list *l);
/* The names of every entry whose image id (config digest) is id. */
char **img_names_of(const struct img_list *l, const char *id);

/* The entry an argument names: NAME[:TAG], NAME@DIGEST, a manifest digest,
 * or an image id (the config digest, "sha256:" optional, 4 to 64 hex).
 * Several manifests of one image id are one image (the first, preferring a
 * named one, is returned); an id prefix of several images is ambiguous. */
const struct img_row *img_resolve(const struct img_list *l, const char *arg,
                                  struct kiln_error **err);

/* An image's size: its layers as stored (compressed) -- kiln keeps no record
 * of uncompressed sizes. */
uint64_t img_size(const struct image *img);
/* "0123456789ab" (12 hex of a digest); caller frees. */
char *img_short_id(const char *digest);

/* docker inspect's value for an image (see cmd/inspect.c). */
struct tval *img_inspect_value(const struct img_list *l, const struct img_row *row);

/* "WARNING! ..." then "Are you sure you want to continue? [y/N] " on
 * stderr; true for y/yes on stdin, else says it cancelled. */
bool img_confirm(const char *warning);

/* Enters kiln's user namespace before layer trees or cache mounts are
 * deleted or measured -- only when the store has some; a failure is a
 * warning (trees owned by subordinate ids then stay). */
void img_enter_namespace(struct store *s);

/* Runs a gc sweep after index changes: the session may be NULL, then one is
 * begun without waiting; a busy store is a warning. */
int img_gc(struct store *s, struct gc_session *g, struct gc_result *res, struct kiln_error **err);

/* docker's "Deleted Images:" section: "untagged: NAME", "deleted: ID" for
 * the images pruned (pr), then "deleted: DIGEST" for the blobs gc removed. */
void img_print_deleted_images(const struct gc_result *pr, const struct gc_result *sweep);

/* docker's "Deleted build cache objects:" section: record keys (12 hex)
 * and "mount:ID" for cache mounts. */
void img_print_deleted_cache(const struct gc_result *pr);

/* "Total reclaimed space: 1.234MB" */
void img_print_reclaimed(uint64_t bytes);

#endif
