/* Internal to layers/transport.c and layers/archive_*.c: the files of an
 * image source -- an OCI layout directory, or an archive read once, in a
 * stream, with its large files going straight into the store as blobs and
 * its small ones kept in memory. */
#ifndef KILN_ARCHIVE_H
#define KILN_ARCHIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "layers/store.h"
#include "lib/error.h"

/* Limits on what an archive may make kiln do. */
#define ARCHIVE_MAX_ENTRIES 200000
#define ARCHIVE_MAX_PATH 4096
#define ARCHIVE_MEM_FILE_MAX (1u << 20)    /* files up to this size stay in memory */
#define ARCHIVE_MEM_TOTAL_MAX (64u << 20)  /* ... while they add up to less than this */
#define ARCHIVE_MAX_LINK_HOPS 16

struct src_file {
    char *path;   /* normalised: no "./", no leading '/', no "..", no trailing '/' */
    char *link;   /* symbolic or hard link: the normalised path it points to */
    char *data;   /* small files: the content */
    size_t len;
    bool in_store; /* large files: the content is the store blob `digest` */
    char digest[DIGEST_STR_LEN];
    uint64_t size;
};

struct image_source {
    struct store *store;
    int dirfd;  /* an OCI layout directory; -1 for an archive */
    char *what; /* the path, for messages */
    struct src_file *files; /* sorted by path */
    size_t n, cap;
    uint64_t mem;
};

int source_open_dir(struct store *s, const char *path, struct image_source *ret,
                    struct kiln_error **err);
/* Reads a (maybe compressed) tar from fd. */
int source_read_archive(struct store *s, int fd, const char *what, struct image_source *ret,
                        struct kiln_error **err);
void source_free(struct image_source *src);

bool source_exists(struct image_source *src, const char *path);
/* A small file's content (at most max bytes). */
int source_read(struct image_source *src, const char *path, size_t max, char **ret,
                size_t *ret_len, struct kiln_error **err);
/* Makes the file at path a blob of the store, checking it against
 * expect_digest and expect_size when given (NULL, -1 otherwise). */
int source_to_store(struct image_source *src, const char *path, const char *expect_digest,
                    int64_t expect_size, char ret_digest[DIGEST_STR_LEN], uint64_t *ret_size,
                    struct kiln_error **err);

/* Normalises an archive path; NULL when it is empty, absolute after "..",
 * or climbs out with "..". */
char *archive_path_normalize(const char *path);

/* The diff_id (SHA-256 of the uncompressed tar) of a layer blob of the
 * store, whatever its compression. */
int layer_blob_diff_id(struct store *s, const char *digest, char ret[DIGEST_STR_LEN],
                       struct kiln_error **err);
/* "gzip", "zstd", "bzip2", "xz" or NULL (plain) from a blob's first bytes. */
const char *blob_compression(struct store *s, const char *digest);

/* docker's manifest.json: [{"Config": PATH, "RepoTags": [..]|null, "Layers": [PATH..]}] */
struct docker_entry {
    char *config;  /* path in the archive */
    char **layers; /* paths */
    char **tags;   /* RepoTags as written */
};

int docker_manifest_parse(const char *buf, size_t len, struct docker_entry **ret, size_t *ret_n,
                          struct kiln_error **err);
void docker_entries_free(struct docker_entry *e, size_t n);

#endif
