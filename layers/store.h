/* The per-user store: an OCI image layout plus kiln's own directories.
 *
 *   oci-layout  index.json  blobs/sha256/<hex>   OCI image layout
 *   trees/<hex of diff_id>/                      extracted layer trees
 *   cache/                                       build-cache records
 *   mounts/<id>/                                 RUN --mount=type=cache dirs
 *   tmp/                                         staging (same fs: atomic rename)
 *   lock                                         flock for index.json updates
 *
 * Every write goes to tmp/, then fsync where durability needs it, then
 * rename.  A store killed at any moment stays valid. */
#ifndef KILN_STORE_H
#define KILN_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/error.h"
#include "lib/sha256.h"

struct store {
    char *root;  /* absolute path */
    int root_fd; /* O_PATH|O_DIRECTORY of root */
    int blobs_fd; /* blobs/sha256 */
    int tmp_fd;
};

/* The default root: $KILN_ROOT, else $XDG_DATA_HOME/kiln, else
 * ~/.local/share/kiln.  Caller frees. */
char *store_default_root(void);

/* Opens (creating when missing, mode 0700) the store at root. */
int store_open(const char *root, struct store **ret, struct kiln_error **err);
void store_close(struct store *s);

/* ---- blobs ---------------------------------------------------------- */

/* A blob being written: bytes go to a file in tmp/ and through SHA-256. */
struct blob_writer {
    struct store *store;
    int fd;
    char *tmp_name;
    struct sha256 hash;
    uint64_t size;
};

int store_blob_begin(struct store *s, struct blob_writer **ret, struct kiln_error **err);
int blob_writer_write(struct blob_writer *w, const void *data, size_t len, struct kiln_error **err);
/* Finishes the blob: checks it against expected_digest (when not NULL),
 * fsyncs, renames it into blobs/.  Frees w in every case. */
int store_blob_commit(struct blob_writer *w, const char *expected_digest,
                      char ret_digest[DIGEST_STR_LEN], uint64_t *ret_size, struct kiln_error **err);
/* Discards a blob being written; accepts NULL. */
void store_blob_abort(struct blob_writer *w);

/* A small blob (JSON) in one call. */
int store_blob_put(struct store *s, const void *data, size_t len, char ret_digest[DIGEST_STR_LEN],
                   struct kiln_error **err);
bool store_has_blob(struct store *s, const char *digest);
int store_blob_open(struct store *s, const char *digest, int *ret_fd, struct kiln_error **err);
/* Reads a whole blob of at most max bytes and verifies its digest. */
int store_blob_read(struct store *s, const char *digest, size_t max, char **ret, size_t *ret_len,
                    struct kiln_error **err);
/* "blobs/sha256/<hex>" relative to the root; caller frees. */
char *store_blob_relpath(const char *digest);

/* ---- temporary directories ----------------------------------------- */

/* Makes a fresh directory under tmp/ ("tmp/<prefix>-XXXXXX"); returns its
 * absolute path. */
int store_mkdtemp(struct store *s, const char *prefix, char **ret_path, struct kiln_error **err);

/* ---- locking ---------------------------------------------------------- */

/* Exclusive lock on the store's index (flock on root/lock); blocks. */
int store_lock(struct store *s, int *ret_lockfd, struct kiln_error **err);
void store_unlock(int lockfd);

#endif
