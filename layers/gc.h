/* Garbage collection of the store, pruning, disk usage, and the contract
 * that keeps gc away from what a running build still needs.
 *
 * THE CONTRACT (for every command that writes into the store)
 *
 *  1. A process that creates blobs, layer trees, cache records or cache-mount
 *     directories holds the gc lock SHARED (gc_lock_shared) from before its
 *     first write until everything it made is reachable -- named in
 *     index.json, or recorded in a cache record -- and until it stops reading
 *     blobs or trees of images that someone else could untag meanwhile.
 *     `kiln build` takes it when it starts and keeps it to the end; pull,
 *     load and import likewise; save and export while they read.
 *  2. gc takes the same lock EXCLUSIVELY (gc_begin).  The lock is flock(2) on
 *     gc.lock: it dies with its process, so a killed build never blocks
 *     gc, and a running one makes gc wait or give up (gc_begin's `wait`).
 *  3. Reachable, and kept: every index.json entry's manifest, config and
 *     layers (for an image index, the child manifests present in the store
 *     and theirs), the layer blob of every cache record, and trees/<hex>
 *     (also "<hex>-single" and their "*.owners" tables, layers/tree.c) whose
 *     diff_id is a layer of a kept image or record.  Everything else in
 *     blobs/sha256/ and trees/ is removed; entries of tmp/ older than an hour
 *     too.  mounts/ is only emptied by builder prune.
 *  4. Trees and mounts are renamed into tmp/ before they are deleted, so a
 *     crash never leaves a half-deleted tree under trees/.  Deleting a tree
 *     may need kiln's user namespace (files owned by subordinate ids): cmd/
 *     enters it first.
 *  5. Tagging an image already in the store (store_tag) needs no gc lock:
 *     its manifest is reachable already.  index.json is still only changed
 *     under store_lock.
 *
 * If index.json, a manifest or a config of an image cannot be read, gc
 * removes nothing and says so: it cannot know what that image needs. */
#ifndef KILN_GC_H
#define KILN_GC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "layers/store.h"
#include "lib/error.h"

#define GC_LOCK_NAME "gc.lock" /* at the store root, beside the index lock */
#define GC_TMP_MAX_AGE 3600    /* seconds */

/* Shared side of the contract: blocks while a gc runs (gc is short). */
int gc_lock_shared(struct store *s, int *ret_fd, struct kiln_error **err);
void gc_unlock(int fd);

/* ---- the exclusive side ------------------------------------------------- */

struct gc_session;

/* Takes the gc lock exclusively.  Without `wait`, fails with EBUSY (and a
 * message naming the cause) when a build, pull or load is running. */
int gc_begin(struct store *s, bool wait, struct gc_session **ret, struct kiln_error **err);
void gc_end(struct gc_session *g);

/* What a sweep or a prune removed. */
struct gc_item {
    char *kind; /* "blob", "tree", "tree-owners", "tmp", "record", "mount", "filehash",
                   "image", "untagged" */
    char *name; /* digest, trees/ entry, key, mount id, tmp name, image name */
    uint64_t bytes;
};

struct gc_result {
    struct gc_item *items;
    size_t n, cap;
    uint64_t bytes; /* total reclaimed */
};

void gc_result_free(struct gc_result *r);

/* Mark and sweep (see the contract). */
int gc_sweep(struct gc_session *g, struct gc_result *res, struct kiln_error **err);

/* ---- pruning ------------------------------------------------------------ */

/* Which images image prune removes: untagged ones, or all with `all`; an
 * image is kept when keep() says so (filters); keep may be NULL. */
struct gc_image_filter {
    bool all;
    bool (*keep)(void *ud, struct store *s, const char *manifest_digest, const char *config_json,
                 size_t config_len);
    void *ud;
};

/* Removes the chosen images from index.json ("untagged" items for names
 * dropped, "image" items with the image id for images gone). */
int gc_prune_images(struct gc_session *g, const struct gc_image_filter *f, struct gc_result *res,
                    struct kiln_error **err);

/* Removes build-cache records: all with `all`, else those whose layer no
 * image uses; with keep_storage >= 0, oldest first (by record mtime) until
 * the cache holds at most keep_storage bytes.  Then every cache mount
 * (mounts/<id>), and with `all` the file-hash table.  "record" items name
 * the key, "mount" items the mount id. */
int gc_prune_cache(struct gc_session *g, bool all, int64_t keep_storage, struct gc_result *res,
                   struct kiln_error **err);

/* ---- disk usage ------------------------------------------------------- */

struct gc_usage_row {
    size_t total, active;
    uint64_t size, reclaimable;
};

struct gc_usage {
    /* images: total = distinct image ids, active = those with a name; size =
     * their blobs and trees, plus anything unreferenced; reclaimable = what
     * `image prune` frees (untagged images' own data and unreferenced data) */
    struct gc_usage_row images;
    /* build cache: total = records, active = records whose layer an image
     * uses; size = reclaimable = blobs and trees only the cache uses */
    struct gc_usage_row cache;
    /* cache mounts: total = directories; size = reclaimable = their contents */
    struct gc_usage_row mounts;
};

/* Sizes are apparent sizes (st_size of files and links; blobs as stored,
 * i.e. compressed layers). */
int gc_usage(struct store *s, struct gc_usage *ret, struct kiln_error **err);

/* Apparent size of a directory tree (files and symlinks), 0 on errors. */
uint64_t gc_du_at(int dirfd, const char *name);

#endif
