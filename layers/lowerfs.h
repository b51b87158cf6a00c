/* A read-only view of an image's file system straight from its layer trees
 * (top first), with overlay semantics: 0/0 character devices are whiteouts,
 * directories with user.overlay.opaque="y" hide what is below them.  Used
 * to resolve COPY destinations, read /etc/passwd for --chown, and copy from
 * another stage, without mounting anything. */
#ifndef KILN_LOWERFS_H
#define KILN_LOWERFS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "lib/error.h"

struct owner_table;

struct lowerfs {
    size_t n;
    int *fds;     /* directory fds of the trees, top first */
    char **paths; /* their paths */
    struct owner_table **owners; /* each tree's side table (<tree>.owners), for
                                  * owners user.kiln.owner cannot hold */
};

struct lower_node {
    int tree;        /* index of the tree that provides the entry (-1: the root) */
    char *path;      /* resolved path, relative, no leading '/' ("" = root) */
    struct stat st;  /* lstat of the entry in its tree */
    uid_t uid;       /* owner after user.kiln.owner and the tree's side table */
    gid_t gid;
};

int lowerfs_init(struct lowerfs *l, char *const *trees, size_t n, struct kiln_error **err);
void lowerfs_close(struct lowerfs *l);
void lower_node_free(struct lower_node *n);

/* Resolves an absolute or relative (to /) path.  Symlinks in directory
 * components are followed inside the image root; the last component is
 * followed when `follow`.  Returns 0, or -ENOENT/-ENOTDIR/-ELOOP. */
int lowerfs_resolve(struct lowerfs *l, const char *path, bool follow, struct lower_node *ret);

/* Opens the entry of a node (O_RDONLY for files, O_DIRECTORY for dirs). */
int lowerfs_open(struct lowerfs *l, const struct lower_node *n, int flags);
/* Reads a whole (small) regular file of the image; -errno on failure. */
int lowerfs_read_file(struct lowerfs *l, const char *path, size_t max, char **ret, size_t *ret_len);
/* Reads a symlink's target. */
int lowerfs_readlink(struct lowerfs *l, const struct lower_node *n, char **ret);

struct lower_dirent {
    char *name;
    struct lower_node node;
};

/* The merged, sorted listing of a resolved directory. */
int lowerfs_readdir(struct lowerfs *l, const struct lower_node *dir, struct lower_dirent **ret,
                    size_t *ret_n);
void lower_dirents_free(struct lower_dirent *d, size_t n);

#endif
