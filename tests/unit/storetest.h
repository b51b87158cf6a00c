/* Test helpers: temporary stores and small images made in memory (layer
 * tars written with libarchive, gzip'd with zlib). */
#ifndef KILN_STORETEST_H
#define KILN_STORETEST_H

#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "layers/image.h"
#include "layers/refs.h"
#include "layers/store.h"
#include "lib/fsutil.h"
#include "lib/sha256.h"
#include "lib/xalloc.h"

struct tent {
    const char *path;
    char type; /* 'f' file, 'd' directory, 'l' symlink (data = target), 'c' char device 0/0 */
    const char *data;
};

/* A tar of the entries, in memory. */
static inline char *st_tar(const struct tent *e, size_t n, size_t *ret_len)
{
    size_t cap = 1 << 20;
    char *buf = xmalloc(cap);
    size_t used = 0;
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    archive_write_set_bytes_in_last_block(a, 1);
    if (archive_write_open_memory(a, buf, cap, &used) != ARCHIVE_OK)
        abort();
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *en = archive_entry_new();
        archive_entry_set_pathname(en, e[i].path);
        archive_entry_set_mtime(en, 1000, 0);
        archive_entry_set_uid(en, 0);
        archive_entry_set_gid(en, 0);
        size_t dl = e[i].data ? strlen(e[i].data) : 0;
        switch (e[i].type) {
        case 'd':
            archive_entry_set_filetype(en, AE_IFDIR);
            archive_entry_set_perm(en, 0755);
            break;
        case 'l':
            archive_entry_set_filetype(en, AE_IFLNK);
            archive_entry_set_perm(en, 0777);
            archive_entry_set_symlink(en, e[i].data);
            dl = 0;
            break;
        case 'c':
            archive_entry_set_filetype(en, AE_IFCHR);
            archive_entry_set_perm(en, 0644);
            dl = 0;
            break;
        default:
            archive_entry_set_filetype(en, AE_IFREG);
            archive_entry_set_perm(en, 0644);
            archive_entry_set_size(en, (la_int64_t)dl);
        }
        if (archive_write_header(a, en) != ARCHIVE_OK)
            abort();
        if (dl)
            archive_write_data(a, e[i].data, dl);
        archive_entry_free(en);
    }
    archive_write_close(a);
    archive_write_free(a);
    *ret_len = used;
    return buf;
}

static inline char *st_gzip(const char *in, size_t len, size_t *ret_len)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        abort();
    size_t cap = deflateBound(&z, len) + 64;
    char *out = xmalloc(cap);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END)
        abort();
    *ret_len = z.total_out;
    deflateEnd(&z);
    return out;
}

/* A layer blob in the store; gzip'd unless plain. */
static inline void st_layer(struct store *s, const struct tent *e, size_t n, bool plain,
                            struct descriptor *ret, char diff_id[DIGEST_STR_LEN])
{
    size_t tl = 0;
    char *tar = st_tar(e, n, &tl);
    sha256_digest_of(tar, tl, diff_id);
    memset(ret, 0, sizeof(*ret));
    struct kiln_error *err = NULL;
    if (plain) {
        if (store_blob_put(s, tar, tl, ret->digest, &err) < 0)
            abort();
        ret->size = tl;
        ret->media_type = xstrdup(MT_OCI_LAYER_TAR);
    } else {
        size_t gl = 0;
        char *gz = st_gzip(tar, tl, &gl);
        if (store_blob_put(s, gz, gl, ret->digest, &err) < 0)
            abort();
        ret->size = gl;
        ret->media_type = xstrdup(MT_OCI_LAYER_GZIP);
        free(gz);
    }
    free(tar);
}

/* An image of the given layers; named `name` (or untagged when NULL). */
static inline void st_image(struct store *s, const char *name, const struct descriptor *layers,
                            char diff_ids[][DIGEST_STR_LEN], size_t n, const char *created,
                            const char *label, struct descriptor *ret)
{
    struct image_config cfg;
    image_config_init(&cfg);
    cfg.created = xstrdup(created ? created : "2024-01-02T03:04:05Z");
    cfg.architecture = xstrdup("amd64");
    cfg.os = xstrdup("linux");
    cfg.diff_ids = strv_new();
    for (size_t i = 0; i < n; i++) {
        strv_push(&cfg.diff_ids, diff_ids[i]);
        image_config_add_history(&cfg, cfg.created, "COPY x /", NULL, false);
    }
    image_config_add_history(&cfg, cfg.created, "CMD [\"sh\"]", "buildkit", true);
    cfg.cmd = strv_new();
    strv_push(&cfg.cmd, "sh");
    if (label)
        strmap_set(&cfg.labels, "k", label);
    struct kiln_error *err = NULL;
    if (image_commit(s, &cfg, layers, n, ret, NULL, &err) < 0)
        abort();
    if (name ? store_tag(s, name, ret, &err) < 0 : store_add_untagged(s, ret, &err) < 0)
        abort();
    image_config_free(&cfg);
}

/* A fresh temporary directory (caller frees and removes). */
static inline char *st_tmpdir(void)
{
    char *p = xstrdup("/tmp/kiln-test-XXXXXX");
    if (!mkdtemp(p))
        abort();
    return p;
}

static inline struct store *st_store(const char *dir, const char *sub)
{
    char *root = path_join(dir, sub);
    struct store *s = NULL;
    struct kiln_error *err = NULL;
    if (store_open(root, &s, &err) < 0)
        abort();
    free(root);
    return s;
}

#endif
