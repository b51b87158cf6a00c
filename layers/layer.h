/* Layers: tar streams written into blobs (diff_id and compressed digest in
 * one pass), layer trees extracted from blobs, and imports.
 *
 * Ownership: a file's owner in a layer is the owner recorded in its
 * `user.kiln.owner` xattr ("UID:GID") when present, else its owner as kiln
 * sees it inside its user namespace.  The xattr is how single-ID mode (and
 * ids beyond a subuid range) keeps the ownership that images and RUN steps
 * ask for; it never appears in a layer. */
#ifndef KILN_LAYER_H
#define KILN_LAYER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "layers/descriptor.h"
#include "layers/store.h"
#include "lib/error.h"

#define KILN_OWNER_XATTR "user.kiln.owner"

struct layer_write_opts {
    enum compression compression; /* default gzip */
    int level;                    /* compression level; 0 = the codec's default */
    int64_t clamp_mtime;          /* SOURCE_DATE_EPOCH; -1 = keep mtimes */
    bool tree;                    /* also extract the layer's tree (see below) */
};

struct layer_result {
    struct descriptor blob; /* the compressed blob in the store */
    char diff_id[DIGEST_STR_LEN];
    uint64_t tar_size; /* uncompressed */
    uint64_t entries;  /* tar entries written */
};

void layer_result_free(struct layer_result *r);

/* ---- writing ------------------------------------------------------------ */

/* A layer is written in one streaming pass: libarchive (pax restricted: ustar
 * headers, pax records only where needed, no uname/gname, no atime/ctime,
 * whole-second mtimes clamped to clamp_mtime, xattrs as SCHILY.xattr.*
 * except user.kiln.*, user.overlay.*, trusted.overlay.*) feeds SHA-256 (the
 * diff_id) and the compressor threads, whose output goes through SHA-256
 * into a blob in tmp/, committed by layer_writer_finish.  Memory stays
 * bounded (about 20-40 MiB) whatever the layer size.
 *
 * A COPY layer from the build context needs no temporary files: add the
 * parent directories, then each source with layer_writer_add and its open
 * content fd (or layer_writer_add_file on the context's dirfd and name),
 * with the destination path and the --chown/--chmod ids and mode in st.
 *
 * With opts->tree, the tar stream is also extracted, while it is written,
 * into the layer's tree (what store_tree_ensure would make from the blob
 * later): a layer about to be used as an overlay lower (an imported base,
 * a COPY that a RUN follows) is then read, hashed, compressed and
 * extracted in one pass, never decompressed.  The tree is best effort: if
 * its extraction fails the layer is still written and the tree is made
 * from the blob when it is needed. */

struct layer_writer;

/* One entry of a layer.  Regular-file content comes from content_fd (read
 * from its current offset, st.st_size bytes); with content_fd = -1 and
 * st_size > 0 the caller streams exactly st_size bytes with
 * layer_writer_write before the next entry (imports, build contexts read
 * through other APIs).  Entries are written in the order given: callers
 * sort them (parents first, names in byte order). */
struct layer_entry {
    const char *path;  /* relative, no leading "/" or "./", '/'-separated */
    struct stat st;    /* type, mode, uid, gid, size, mtime (st_mtim), rdev */
    const char *link;  /* symlink target, or hard-link target path */
    bool hardlink;     /* link = path of an earlier entry of this layer */
    int content_fd;    /* regular files only; -1 for none */
    /* xattrs to record: name\0value pairs, n pairs */
    const char *const *xattr_names;
    const void *const *xattr_values;
    const size_t *xattr_sizes;
    size_t n_xattrs;
};

int layer_writer_begin(struct store *s, const struct layer_write_opts *opts,
                       struct layer_writer **ret, struct kiln_error **err);
int layer_writer_add(struct layer_writer *w, const struct layer_entry *e, struct kiln_error **err);
/* Content of the last entry added with content_fd = -1. */
int layer_writer_write(struct layer_writer *w, const void *data, size_t len,
                       struct kiln_error **err);
/* Adds the file at dirfd/name (no symlinks followed) as entry `path`,
 * reading owner from user.kiln.owner and xattrs from the file.  Regular
 * files with several links whose inode was already added become tar hard
 * links.  Sockets are skipped. */
int layer_writer_add_file(struct layer_writer *w, int dirfd, const char *name, const char *path,
                          struct kiln_error **err);
/* A whiteout (".wh.NAME") for path, or an opaque marker for a directory. */
int layer_writer_add_whiteout(struct layer_writer *w, const char *path, struct kiln_error **err);
int layer_writer_add_opaque(struct layer_writer *w, const char *dir_path, struct kiln_error **err);
/* Closes the tar, finishes compression and commits the blob. */
int layer_writer_finish(struct layer_writer *w, struct layer_result *ret, struct kiln_error **err);
void layer_writer_abort(struct layer_writer *w);

/* ---- reading ------------------------------------------------------------ */

/* The extracted tree of a layer, extracting it from the blob (gzip, zstd
 * or plain, told by magic) the first time: trees/<hex of diff_id>, or
 * trees/<hex>-single when only one id is mapped (files then stay owned by
 * kiln; each mode has its own trees).  Overlay whiteouts: char devices 0/0;
 * opaque directories: user.overlay.opaque="y" (and user.fuseoverlayfs.opaque
 * for fuse-overlayfs).  Owners are chowned where the ids are mapped, else
 * kept in user.kiln.owner (regular files, directories) or in the side table
 * trees/<name>.owners (symlinks, fifos, or no user xattrs): "UID:GID PATH\0"
 * records.  Device nodes that cannot be made here are skipped.  Never
 * writes outside the tree; refuses hostile entries ("..", absolute paths,
 * paths through symlinks, hard links outside, absurd sizes) and a blob
 * whose digest or diff_id does not match, before anything is renamed into
 * trees/.  The tree is synced (syncfs) before its rename; concurrent
 * extractions of one layer are fine (the loser drops its copy). */
int store_tree_ensure(struct store *s, const struct descriptor *layer, const char *diff_id,
                      char **ret_path, struct kiln_error **err);
bool store_has_tree(struct store *s, const char *diff_id);
/* Every layer tree of the image a manifest names (store_tree_ensure on
 * each): what comes into the store from outside (pull, load) is checked
 * this way before it is named, as docker extracts what it pulls. */
int store_trees_ensure_image(struct store *s, const struct descriptor *manifest,
                             struct kiln_error **err);

/* ---- imports -------------------------------------------------------------- */

/* A rootfs tarball (plain, gzip, bzip2, xz, zstd: detected) or a directory as
 * one layer.  Tarballs keep their order and owners, names made relative
 * ("./" and "/" dropped, ".." refused); directories are walked in byte
 * order, owners as kiln sees them (user.kiln.owner first), hard links kept,
 * sockets skipped, sparse files written dense. */
int layer_import_tar_fd(struct store *s, int fd, const struct layer_write_opts *opts,
                        struct layer_result *ret, struct kiln_error **err);
int layer_import_dir(struct store *s, const char *dir, const struct layer_write_opts *opts,
                     struct layer_result *ret, struct kiln_error **err);

#endif
