/* Private to layers/: file metadata as layers see it, the owner side table
 * of layer trees, path checks, the tar extractor, and the writer's
 * metadata entry point used by the diff.  Not for other modules. */
#ifndef KILN_LAYER_INTERNAL_H
#define KILN_LAYER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "layers/compress.h"
#include "layers/layer.h"
#include "lib/error.h"
#include "lib/strbuf.h"

/* Caps on what a layer may ask for. */
#define LAYER_MAX_PATH 4096
#define LAYER_MAX_NAME 255
#define LAYER_MAX_LINK 4095
#define LAYER_MAX_FILE_SIZE ((int64_t)1 << 40) /* 1 TiB */
#define LAYER_MAX_XATTRS 256
#define LAYER_MAX_XATTR_VALUE 65536

/* Overlay and kiln bookkeeping: never copied into a layer, never taken
 * from one. */
bool xattr_is_private(const char *name);

/* ---- xattrs ------------------------------------------------------------- */

struct xattr_list {
    size_t n;
    char **names; /* sorted by name */
    void **values;
    size_t *sizes;
};

void xattr_list_free(struct xattr_list *x);
bool xattr_list_equal(const struct xattr_list *a, const struct xattr_list *b);

/* ---- ownership ------------------------------------------------------------ */

/* "UID:GID" -> ids; -EINVAL when malformed. */
int owner_parse(const char *s, size_t len, uid_t *ret_uid, gid_t *ret_gid);

/* A tree's side table of owners that neither chown nor the user.kiln.owner
 * xattr could keep (symlinks, fifos, file systems without user xattrs):
 * "UID:GID PATH\0" records, in trees/<hex>.owners. */
struct owner_table;
int owner_table_load(const char *path, struct owner_table **ret, struct kiln_error **err);
/* 0 and the ids when path is recorded, -ENOENT otherwise. */
int owner_table_lookup(const struct owner_table *t, const char *path, uid_t *ret_uid,
                       gid_t *ret_gid);
void owner_table_free(struct owner_table *t);
/* A runtime owner log ("UID:GID /PATH\n" lines, backslash escapes; see
 * run_spec.owner_log) as a table of relative paths; a missing file is an
 * empty table. */
int owner_table_load_log(const char *path, struct owner_table **ret, struct kiln_error **err);
void owner_record_add(struct strbuf *sb, const char *path, uid_t uid, gid_t gid);

/* ---- file metadata ---------------------------------------------------------- */

struct file_meta {
    struct stat st;
    uid_t uid; /* the owner for layers: user.kiln.owner, else st_uid/st_gid */
    gid_t gid;
    bool owner_from_xattr;
    char *link;                /* symlink target */
    struct xattr_list xattrs;  /* without private ones */
};

/* lstat of dirfd/name plus owner, link target and xattrs.  fd, when >= 0,
 * is an open descriptor of the same file (used for xattrs).  -errno. */
int meta_read_at(int dirfd, const char *name, int fd, struct file_meta *ret);
void meta_free(struct file_meta *m);

/* ---- paths ------------------------------------------------------------------ */

/* Normalises a path from a layer or an import: drops "./" and empty or "."
 * components and (allow_absolute) leading slashes; refuses "..", and
 * over-long paths or names.  Returns NULL for the root itself ("", ".") and
 * sets *bad (static reason) on refusal. */
char *layer_path_clean(const char *path, bool allow_absolute, const char **bad);

/* ---- writer ------------------------------------------------------------------ */

/* Adds an entry described by meta (read from dirfd/name) as path.
 * detect_links: regular files with several links become tar hard links to
 * the first path written with the same inode. */
int layer_writer_add_meta(struct layer_writer *w, int dirfd, const char *name, const char *path,
                          const struct file_meta *meta, bool detect_links,
                          struct kiln_error **err);

/* ---- extraction ------------------------------------------------------------ */

struct tar_extract_result {
    char diff_id[DIGEST_STR_LEN];     /* SHA-256 of the uncompressed stream */
    char blob_digest[DIGEST_STR_LEN]; /* SHA-256 of the bytes read */
    enum compression format;
    uint64_t entries;
    uint64_t skipped; /* device nodes that could not be made, sockets */
    struct strbuf owners; /* owner side table records */
};

/* Extracts the layer stream read from fd into the directory dirfd (which
 * should be empty), overlay style.  Refuses hostile entries; on failure the
 * directory holds a partial tree that the caller removes. */
int tar_extract(int fd, int dirfd, struct tar_extract_result *ret, struct kiln_error **err);
void tar_extract_result_release(struct tar_extract_result *r);

/* The name of a layer's tree under trees/: the diff_id's hex, plus
 * "-single" when only one id is mapped here (owners then live in xattrs and
 * the side table instead of the files' real owners).  Caller frees. */
char *layer_tree_name(const char *diff_id);
/* Only one id is mapped here (single-ID mode): owners other than it live in
 * user.kiln.owner and the side tables. */
bool layers_single_id(void);

/* Installs the extracted tree in tmp (open as dfd) as trees/<name of
 * diff_id>: mode 0755, syncfs, side table of owners, rename (a tree that
 * is already there wins; tmp is then removed).  tmp is removed on
 * failure.  ret_path (may be NULL) gets the tree's absolute path. */
int tree_install(struct store *s, const char *tmp, int dfd, const char *diff_id,
                 struct tar_extract_result *res, char **ret_path, struct kiln_error **err);

/* ---- overlay whiteouts in directories ------------------------------------- */

#define OVL_OPAQUE_XATTR "user.overlay.opaque"
#define FUSE_OPAQUE_XATTR "user.fuseoverlayfs.opaque"
#define OVL_WHITEOUT_XATTR "user.overlay.whiteout"
#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"

/* A char device 0/0. */
static inline bool stat_is_whiteout(const struct stat *st)
{
    return S_ISCHR(st->st_mode) && st->st_rdev == 0;
}

/* The open directory is marked opaque (user.overlay.opaque,
 * trusted.overlay.opaque or fuse-overlayfs's user.fuseoverlayfs.opaque). */
bool fd_is_opaque(int fd);

/* The names in a directory (without "." and ".."), sorted bytewise when
 * asked.  -errno. */
int dir_list_names(int dfd, bool sort, char ***ret, size_t *ret_n);
void names_free(char **v, size_t n);

#endif
