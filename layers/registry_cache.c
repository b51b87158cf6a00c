/* The build cache shared through a registry or a directory.
 *
 * An export is an OCI image manifest whose config blob (media type
 * application/vnd.kiln.cache.config.v1+json) lists the records
 *   {"records": {"sha256:KEY": {"layer": {...}, "diff_id": ..., "created": ...}}}
 * (each record as engine/cache.c writes it) and whose layers are the records'
 * layer blobs, so that a registry keeps them.  type=registry pushes it to
 * REF; type=local writes it as an OCI image layout in DIR (tag "latest").
 * An import fetches the manifest and config, verifies and stores the layer
 * blobs the store lacks, then saves the records. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/cache.h"
#include "engine/engine.h"
#include "layers/image.h"
#include "layers/reference.h"
#include "layers/registry_internal.h"
#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#define MT_KILN_CACHE_CONFIG "application/vnd.kiln.cache.config.v1+json"
#define CACHE_RECORDS_MAX 100000
#define LOCAL_TAG "latest"

struct cache_doc {
    char **keys;
    struct cache_record *recs;
    size_t n;
};

static void cache_doc_free(struct cache_doc *d)
{
    strv_free(d->keys);
    for (size_t i = 0; i < d->n; i++)
        cache_record_free(&d->recs[i]);
    free(d->recs);
    memset(d, 0, sizeof(*d));
}

/* ---- export ------------------------------------------------------------------ */

/* The config document and the manifest (layers deduplicated, in key order). */
static int build_export(struct store *s, char *const *keys, char **ret_config, size_t *ret_clen,
                        struct manifest *m, size_t *ret_records, struct kiln_error **err)
{
    struct json_gen j;
    json_gen_init(&j, false);
    json_obj_open(&j);
    json_kv_str(&j, "mediaType", MT_KILN_CACHE_CONFIG);
    json_key(&j, "records");
    json_obj_open(&j);
    memset(m, 0, sizeof(*m));
    m->media_type = xstrdup(MT_OCI_MANIFEST);
    size_t cap = 0, n_records = 0;
    for (size_t i = 0; keys && keys[i]; i++) {
        if (!digest_is_valid(keys[i])) {
            json_gen_free(&j);
            manifest_free(m);
            return kiln_error_set(err, 0, "cache export: invalid key '%s'", keys[i]);
        }
        struct cache_record rec;
        if (cache_lookup(s, keys[i], &rec) < 0) {
            log_debug("cache export: no record (or no blob) for %s", keys[i]);
            continue;
        }
        char *rj = NULL;
        size_t rl = 0;
        cache_record_to_json(&rec, &rj, &rl);
        yajl_val v = NULL;
        int r = json_parse(rj, rl, &v, err);
        free(rj);
        if (r < 0) {
            cache_record_free(&rec);
            json_gen_free(&j);
            manifest_free(m);
            return -1;
        }
        json_key(&j, keys[i]);
        reg_json_gen_value(&j, v);
        yajl_tree_free(v);
        n_records++;
        bool have = false;
        for (size_t k = 0; k < m->n_layers && !have; k++)
            have = strcmp(m->layers[k].digest, rec.layer.digest) == 0;
        if (!have) {
            XGROW(m->layers, cap, m->n_layers + 1);
            descriptor_copy(&m->layers[m->n_layers++], &rec.layer);
        }
        cache_record_free(&rec);
    }
    json_obj_close(&j);
    json_obj_close(&j);
    *ret_config = json_gen_take(&j, ret_clen);
    json_gen_free(&j);
    m->config.media_type = xstrdup(MT_KILN_CACHE_CONFIG);
    m->config.size = *ret_clen;
    sha256_digest_of(*ret_config, *ret_clen, m->config.digest);
    *ret_records = n_records;
    return 0;
}

static int copy_blob_to_layout(struct store *s, int blobs_fd, const char *digest,
                               struct kiln_error **err)
{
    const char *hex = digest_hex(digest);
    if (faccessat(blobs_fd, hex, F_OK, 0) == 0)
        return 0;
    if (linkat(s->blobs_fd, hex, blobs_fd, hex, 0) == 0)
        return 0;
    _cleanup_close_ int in = -1;
    if (store_blob_open(s, digest, &in, err) < 0)
        return -1;
    _cleanup_free_ char *tmp = xasprintf("%s.tmp-%d", hex, (int)getpid());
    _cleanup_close_ int out = openat(blobs_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0)
        return kiln_error_set(err, errno, "cache export: create blob %s", digest);
    char buf[65536];
    for (;;) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || (n > 0 && fs_write_all(out, buf, (size_t)n) < 0)) {
            int e = errno;
            unlinkat(blobs_fd, tmp, 0);
            return kiln_error_set(err, e, "cache export: copy blob %s", digest);
        }
        if (n == 0)
            break;
    }
    if (fsync(out) < 0 || renameat(blobs_fd, tmp, blobs_fd, hex) < 0) {
        int e = errno;
        unlinkat(blobs_fd, tmp, 0);
        return kiln_error_set(err, e, "cache export: write blob %s", digest);
    }
    return 0;
}

static int export_local(struct store *s, const char *dir, const struct manifest *m,
                        const char *config, size_t clen, struct kiln_error **err)
{
    _cleanup_free_ char *blobs = path_join(dir, "blobs/sha256");
    int r = fs_mkdir_p(blobs, 0755);
    if (r < 0)
        return kiln_error_set(err, -r, "cache export: create '%s'", blobs);
    _cleanup_close_ int bfd = open(blobs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (bfd < 0 || dfd < 0)
        return kiln_error_set(err, errno, "cache export: open '%s'", dir);
    for (size_t i = 0; i < m->n_layers; i++)
        if (copy_blob_to_layout(s, bfd, m->layers[i].digest, err) < 0)
            return -1;
    r = fs_write_atomic_at(bfd, digest_hex(m->config.digest), config, clen, 0644, true);
    size_t mlen = 0;
    _cleanup_free_ char *mjson = manifest_to_json(m, &mlen);
    char mdigest[DIGEST_STR_LEN];
    sha256_digest_of(mjson, mlen, mdigest);
    if (r == 0)
        r = fs_write_atomic_at(bfd, digest_hex(mdigest), mjson, mlen, 0644, true);
    if (r == 0)
        r = fs_write_atomic_at(dfd, "oci-layout", OCI_LAYOUT_JSON, strlen(OCI_LAYOUT_JSON), 0644,
                               true);
    if (r < 0)
        return kiln_error_set(err, -r, "cache export: write into '%s'", dir);
    struct json_gen j;
    json_gen_init(&j, false);
    json_oci_index_open(&j);
    json_obj_open(&j);
    struct descriptor md = {.media_type = (char *)MT_OCI_MANIFEST, .size = mlen};
    memcpy(md.digest, mdigest, DIGEST_STR_LEN);
    json_descriptor_fields(&j, &md);
    json_key(&j, "annotations");
    json_obj_open(&j);
    json_kv_str(&j, ANNOT_REF_NAME, LOCAL_TAG);
    json_obj_close(&j);
    json_obj_close(&j);
    json_oci_index_close(&j);
    size_t ilen = 0;
    const char *idx = json_gen_buf(&j, &ilen);
    r = fs_write_atomic_at(dfd, "index.json", idx, ilen, 0644, true);
    json_gen_free(&j);
    if (r < 0)
        return kiln_error_set(err, -r, "cache export: write '%s/index.json'", dir);
    return 0;
}

static int export_registry(struct store *s, const char *refstr, const struct manifest *m,
                           const char *config, size_t clen, const struct registry_opts *o,
                           struct kiln_error **err)
{
    (void)clen;
    struct image_ref ref;
    if (ref_parse(registry_strip_transport(refstr), &ref, err) < 0)
        return -1;
    struct reg_client *c = NULL;
    int r = reg_client_new(ref.domain, ref.path, NULL, NULL, o, &c, err);
    uint64_t sent = 0;
    if (r == 0)
        r = reg_push_manifest_blobs(c, s, ref.path, m, config, &sent, err);
    size_t mlen = 0;
    _cleanup_free_ char *mjson = r == 0 ? manifest_to_json(m, &mlen) : NULL;
    char digest[DIGEST_STR_LEN];
    if (r == 0)
        r = reg_put_manifest(c, ref.path, ref.digest ? ref.digest : ref.tag, MT_OCI_MANIFEST,
                             mjson, mlen, digest, err);
    if (r == 0) {
        reg_sources_note(s, m, false, ref.domain, ref.path);
        _cleanup_free_ char *hs = reg_human_size(sent);
        reg_status(o, "cache exported to %s: %zu layers (%s uploaded), %s", refstr, m->n_layers,
                   hs, digest);
    }
    reg_client_free(c);
    ref_free(&ref);
    return r;
}

int cache_remote_export(struct store *s, const struct cache_spec *to, char *const *keys,
                        const struct registry_opts *o, struct kiln_error **err)
{
    bool local = to->type && strcmp(to->type, "local") == 0;
    bool registry = !to->type || strcmp(to->type, "registry") == 0;
    if (!local && !registry)
        return kiln_error_set(err, 0, "cache export: unsupported type '%s'", to->type);
    if (local && !(to->dir && *to->dir))
        return kiln_error_set(err, 0, "cache export: type=local needs dest=DIR");
    if (registry && !(to->ref && *to->ref))
        return kiln_error_set(err, 0, "cache export: type=registry needs ref=REF");
    char *config = NULL;
    size_t clen = 0, n_records = 0;
    struct manifest m;
    if (build_export(s, keys, &config, &clen, &m, &n_records, err) < 0)
        return kiln_error_wrap(err, "cache export");
    reg_status(o, "exporting cache: %zu records, %zu layers", n_records, m.n_layers);
    int r = local ? export_local(s, to->dir, &m, config, clen, err)
                  : export_registry(s, to->ref, &m, config, clen, o, err);
    free(config);
    manifest_free(&m);
    if (r < 0)
        return kiln_error_wrap(err, "cache export to '%s'", local ? to->dir : to->ref);
    return 0;
}

/* ---- import ------------------------------------------------------------------ */

static int parse_cache_config(const char *buf, size_t len, const struct manifest *m,
                              struct cache_doc *doc, struct kiln_error **err)
{
    memset(doc, 0, sizeof(*doc));
    yajl_val root = NULL;
    if (json_parse(buf, len, &root, err) < 0)
        return kiln_error_wrap(err, "cache config");
    yajl_val recs = json_get_obj(root, "records");
    if (!recs) {
        yajl_tree_free(root);
        return kiln_error_set(err, 0, "cache config: no records");
    }
    if (recs->u.object.len > CACHE_RECORDS_MAX) {
        yajl_tree_free(root);
        return kiln_error_set(err, 0, "cache config: too many records (%zu)",
                              recs->u.object.len);
    }
    doc->keys = strv_new();
    doc->recs = xcalloc(recs->u.object.len + 1, sizeof(*doc->recs));
    for (size_t i = 0; i < recs->u.object.len; i++) {
        const char *key = recs->u.object.keys[i];
        struct json_gen j;
        json_gen_init(&j, false);
        reg_json_gen_value(&j, recs->u.object.values[i]);
        size_t rl = 0;
        const char *rj = json_gen_buf(&j, &rl);
        struct cache_record rec;
        struct kiln_error *e = NULL;
        int r = digest_is_valid(key) ? cache_record_parse(rj, rl, &rec, &e) : -1;
        json_gen_free(&j);
        if (r < 0) {
            log_debug("cache import: record '%s' skipped: %s", key, e ? e->msg : "invalid key");
            kiln_error_free(&e);
            continue;
        }
        /* a record may only name a layer the manifest carries */
        bool listed = false;
        for (size_t k = 0; k < m->n_layers && !listed; k++)
            listed = strcmp(m->layers[k].digest, rec.layer.digest) == 0 &&
                     m->layers[k].size == rec.layer.size;
        if (!listed) {
            log_debug("cache import: record '%s' names a layer outside the manifest", key);
            cache_record_free(&rec);
            continue;
        }
        strv_push(&doc->keys, key);
        doc->recs[doc->n++] = rec;
    }
    yajl_tree_free(root);
    return 0;
}

/* Verifies blobs into the store, then saves the records. */
static int import_finish(struct store *s, struct reg_staging *st, const struct cache_doc *doc,
                         const struct registry_opts *o, const char *what,
                         struct kiln_error **err)
{
    if (reg_staging_commit(st, err) < 0)
        return -1;
    for (size_t i = 0; i < doc->n; i++)
        if (cache_save(s, doc->keys[i], &doc->recs[i], err) < 0)
            return -1;
    reg_status(o, "cache imported from %s: %zu records", what, doc->n);
    return 0;
}

static int import_registry(struct store *s, const char *refstr, const struct registry_opts *o,
                           struct kiln_error **err)
{
    struct image_ref ref;
    if (ref_parse(registry_strip_transport(refstr), &ref, err) < 0)
        return -1;
    struct reg_client *c = NULL;
    struct reg_staging *st = NULL;
    struct manifest m = {0};
    struct cache_doc doc = {0};
    char *buf = NULL, *mt = NULL, *config = NULL;
    size_t len = 0;
    char digest[DIGEST_STR_LEN];
    int r = -1;
    if (reg_client_new(ref.domain, ref.path, NULL, NULL, o, &c, err) < 0)
        goto out;
    r = reg_fetch_manifest(c, ref.path, ref.digest ? ref.digest : ref.tag, &buf, &len, &mt,
                           digest, err);
    if (r < 0)
        goto out; /* -ENOENT: no cache there yet */
    r = -1;
    if (strcmp(mt, MT_OCI_MANIFEST) != 0 || manifest_parse(buf, len, &m, err) < 0 ||
        strcmp(m.config.media_type, MT_KILN_CACHE_CONFIG) != 0) {
        kiln_error_free(err);
        kiln_error_set(err, 0, "'%s' is not a kiln build cache", refstr);
        goto out;
    }
    if (reg_fetch_blob_mem(c, ref.path, &m.config, JSON_MAX_SIZE, &config, err) < 0)
        goto out;
    if (parse_cache_config(config, m.config.size, &m, &doc, err) < 0)
        goto out;
    if (reg_staging_begin(s, &st, err) < 0)
        goto out;
    /* the layers records name (shallow copies: the records own them) */
    struct descriptor *need = xcalloc(doc.n + 1, sizeof(*need));
    for (size_t i = 0; i < doc.n; i++)
        need[i] = doc.recs[i].layer;
    int fr = reg_fetch_blobs(c, ref.path, need, doc.n, st, err);
    free(need);
    if (fr < 0)
        goto out;
    r = import_finish(s, st, &doc, o, refstr, err);
    if (r == 0) {
        reg_sources_note(s, &m, false, ref.domain, ref.path);
    }
out:
    cache_doc_free(&doc);
    manifest_free(&m);
    reg_staging_free(st);
    reg_client_free(c);
    ref_free(&ref);
    free(buf);
    free(mt);
    free(config);
    return r;
}

static int read_layout_blob(int bfd, const struct descriptor *d, size_t max, char **ret,
                            struct kiln_error **err)
{
    if (d->size > max)
        return kiln_error_set(err, 0, "blob %s too large", d->digest);
    size_t len = 0;
    int r = fs_read_file_at(bfd, digest_hex(d->digest), max, ret, &len);
    if (r < 0)
        return kiln_error_set(err, -r, "read blob %s", d->digest);
    char got[DIGEST_STR_LEN];
    sha256_digest_of(*ret, len, got);
    if (len != d->size || strcmp(got, d->digest) != 0) {
        free(*ret);
        *ret = NULL;
        return kiln_error_set(err, 0, "blob %s is corrupt (%zu bytes hashing to %s)", d->digest,
                              len, got);
    }
    return 0;
}

static int import_local(struct store *s, const char *dir, const struct registry_opts *o,
                        struct kiln_error **err)
{
    _cleanup_free_ char *blobs = path_join(dir, "blobs/sha256");
    _cleanup_close_ int bfd = open(blobs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return kiln_error_set(err, errno, "open '%s'", dir);
    if (bfd < 0)
        return kiln_error_set(err, errno, "'%s' is not an OCI image layout", dir);
    _cleanup_free_ char *ibuf = NULL;
    size_t ilen = 0;
    int r = fs_read_file_at(dfd, "index.json", JSON_MAX_SIZE, &ibuf, &ilen);
    if (r < 0)
        return kiln_error_set(err, -r, "read '%s/index.json'", dir);
    yajl_val root = NULL;
    if (json_parse(ibuf, ilen, &root, err) < 0)
        return kiln_error_wrap(err, "'%s/index.json'", dir);
    yajl_val arr = json_get_arr(root, "manifests");
    yajl_val pick = NULL;
    for (size_t i = 0; arr && i < arr->u.array.len; i++) {
        yajl_val e = arr->u.array.values[i];
        const char *name = json_get_str(json_get_obj(e, "annotations"), ANNOT_REF_NAME);
        if (!pick || (name && strcmp(name, LOCAL_TAG) == 0))
            pick = e;
    }
    struct descriptor md = {0};
    const char *dg = json_get_str(pick, "digest");
    int64_t size = -1;
    if (!pick || !dg || !digest_is_valid(dg) || !json_get_int(pick, "size", &size) || size < 0) {
        yajl_tree_free(root);
        return kiln_error_set(err, 0, "'%s': no cache manifest in index.json", dir);
    }
    memcpy(md.digest, dg, DIGEST_STR_LEN);
    md.size = (uint64_t)size;
    yajl_tree_free(root);

    struct manifest m = {0};
    struct cache_doc doc = {0};
    struct reg_staging *st = NULL;
    char *mbuf = NULL, *config = NULL;
    r = -1;
    if (read_layout_blob(bfd, &md, REG_MANIFEST_MAX, &mbuf, err) < 0)
        goto out;
    if (manifest_parse(mbuf, md.size, &m, err) < 0 ||
        strcmp(m.config.media_type, MT_KILN_CACHE_CONFIG) != 0) {
        kiln_error_free(err);
        kiln_error_set(err, 0, "'%s' is not a kiln build cache", dir);
        goto out;
    }
    if (read_layout_blob(bfd, &m.config, JSON_MAX_SIZE, &config, err) < 0)
        goto out;
    if (parse_cache_config(config, m.config.size, &m, &doc, err) < 0)
        goto out;
    if (reg_staging_begin(s, &st, err) < 0)
        goto out;
    for (size_t i = 0; i < doc.n; i++) {
        const struct descriptor *d = &doc.recs[i].layer;
        if (store_has_blob(s, d->digest) || reg_staging_has(st, d->digest))
            continue;
        _cleanup_close_ int fd = openat(bfd, digest_hex(d->digest), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            kiln_error_set(err, errno, "blob %s", d->digest);
            goto out;
        }
        if (reg_staging_copy_fd(st, d, fd, err) < 0)
            goto out;
    }
    r = import_finish(s, st, &doc, o, dir, err);
out:
    cache_doc_free(&doc);
    manifest_free(&m);
    reg_staging_free(st);
    free(mbuf);
    free(config);
    return r;
}

int cache_remote_import(struct store *s, const struct cache_spec *from,
                        const struct registry_opts *o, struct kiln_error **err)
{
    bool local = from->type && strcmp(from->type, "local") == 0;
    bool registry = !from->type || strcmp(from->type, "registry") == 0;
    if (!local && !registry)
        return kiln_error_set(err, 0, "cache import: unsupported type '%s'", from->type);
    if (local && !(from->dir && *from->dir))
        return kiln_error_set(err, 0, "cache import: type=local needs src=DIR");
    if (registry && !(from->ref && *from->ref))
        return kiln_error_set(err, 0, "cache import: type=registry needs ref=REF");
    int r = local ? import_local(s, from->dir, o, err) : import_registry(s, from->ref, o, err);
    if (r < 0) {
        kiln_error_wrap(err, "cache import from '%s'", local ? from->dir : from->ref);
        return r == -ENOENT ? -ENOENT : -1;
    }
    return 0;
}
