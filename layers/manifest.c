/* Image manifests (OCI image-spec manifest.md; Docker schema 2 is read too)
 * and loading/committing whole images. */
#include <stdlib.h>
#include <string.h>

#include "layers/image.h"
#include "lib/json.h"
#include "lib/xalloc.h"

void descriptor_free(struct descriptor *d)
{
    if (!d)
        return;
    free(d->media_type);
    d->media_type = NULL;
}

void descriptor_copy(struct descriptor *dst, const struct descriptor *src)
{
    *dst = *src;
    dst->media_type = src->media_type ? xstrdup(src->media_type) : NULL;
}

static int descriptor_parse(yajl_val v, struct descriptor *d, const char *what,
                            struct kiln_error **err)
{
    memset(d, 0, sizeof(*d));
    const char *mt = json_get_str(v, "mediaType");
    const char *dg = json_get_str(v, "digest");
    int64_t size = -1;
    if (!dg || !digest_is_valid(dg))
        return kiln_error_set(err, 0, "manifest: %s: missing or invalid digest", what);
    if (!json_get_int(v, "size", &size) || size < 0)
        return kiln_error_set(err, 0, "manifest: %s: missing or invalid size", what);
    d->media_type = xstrdup(mt ? mt : "");
    memcpy(d->digest, dg, DIGEST_STR_LEN);
    d->size = (uint64_t)size;
    return 0;
}

void manifest_free(struct manifest *m)
{
    free(m->media_type);
    descriptor_free(&m->config);
    for (size_t i = 0; i < m->n_layers; i++)
        descriptor_free(&m->layers[i]);
    free(m->layers);
    strmap_free(&m->annotations);
    memset(m, 0, sizeof(*m));
}

int manifest_parse(const char *buf, size_t len, struct manifest *m, struct kiln_error **err)
{
    yajl_val root = NULL;
    if (json_parse(buf, len, &root, err) < 0)
        return kiln_error_wrap(err, "manifest");
    memset(m, 0, sizeof(*m));
    int64_t sv = 0;
    if (!YAJL_IS_OBJECT(root) || !json_get_int(root, "schemaVersion", &sv) || sv != 2) {
        yajl_tree_free(root);
        return kiln_error_set(err, 0, "manifest: not an image manifest (schemaVersion 2)");
    }
    const char *mt = json_get_str(root, "mediaType");
    m->media_type = xstrdup(mt ? mt : MT_OCI_MANIFEST);
    if (strcmp(m->media_type, MT_OCI_MANIFEST) != 0 &&
        strcmp(m->media_type, MT_DOCKER_MANIFEST) != 0) {
        kiln_error_set(err, 0, "manifest: unsupported media type '%s'", m->media_type);
        goto fail;
    }
    yajl_val cfg = json_get_obj(root, "config");
    if (!cfg) {
        kiln_error_set(err, 0, "manifest: no config");
        goto fail;
    }
    if (descriptor_parse(cfg, &m->config, "config", err) < 0)
        goto fail;
    yajl_val layers = json_get_arr(root, "layers");
    size_t n = layers ? layers->u.array.len : 0;
    m->layers = xcalloc(n + 1, sizeof(*m->layers));
    for (size_t i = 0; i < n; i++) {
        if (descriptor_parse(layers->u.array.values[i], &m->layers[i], "layer", err) < 0)
            goto fail;
        m->n_layers++;
    }
    yajl_val ann = json_get_obj(root, "annotations");
    for (size_t i = 0; ann && i < ann->u.object.len; i++)
        if (YAJL_IS_STRING(ann->u.object.values[i]))
            strmap_set(&m->annotations, ann->u.object.keys[i], ann->u.object.values[i]->u.string);
    yajl_tree_free(root);
    return 0;
fail:
    yajl_tree_free(root);
    manifest_free(m);
    return -1;
}

void json_descriptor_fields(struct json_gen *j, const struct descriptor *d)
{
    json_kv_str(j, "mediaType", d->media_type);
    json_kv_str(j, "digest", d->digest);
    json_key(j, "size");
    json_int(j, (int64_t)d->size);
}

void json_oci_index_open(struct json_gen *j)
{
    json_obj_open(j);
    json_key(j, "schemaVersion");
    json_int(j, 2);
    json_kv_str(j, "mediaType", MT_OCI_INDEX);
    json_key(j, "manifests");
    json_arr_open(j);
}

void json_oci_index_close(struct json_gen *j)
{
    json_arr_close(j);
    json_obj_close(j);
}

void json_strmap_member(struct json_gen *j, const char *key, const struct strmap *m)
{
    if (!m->n)
        return;
    json_key(j, key);
    json_obj_open(j);
    for (size_t i = 0; i < m->n; i++) {
        json_key(j, m->keys[i]);
        json_str(j, m->values[i]);
    }
    json_obj_close(j);
}

static void gen_descriptor(struct json_gen *j, const struct descriptor *d)
{
    json_obj_open(j);
    json_descriptor_fields(j, d);
    json_obj_close(j);
}

char *manifest_to_json(const struct manifest *m, size_t *ret_len)
{
    struct json_gen j;
    json_gen_init(&j, false);
    json_obj_open(&j);
    json_key(&j, "schemaVersion");
    json_int(&j, 2);
    json_kv_str(&j, "mediaType", m->media_type ? m->media_type : MT_OCI_MANIFEST);
    json_key(&j, "config");
    gen_descriptor(&j, &m->config);
    json_key(&j, "layers");
    json_arr_open(&j);
    for (size_t i = 0; i < m->n_layers; i++)
        gen_descriptor(&j, &m->layers[i]);
    json_arr_close(&j);
    json_strmap_member(&j, "annotations", &m->annotations);
    json_obj_close(&j);
    char *out = json_gen_take(&j, ret_len);
    json_gen_free(&j);
    return out;
}

void image_free(struct image *img)
{
    descriptor_free(&img->desc);
    manifest_free(&img->manifest);
    image_config_free(&img->config);
}

int image_load(struct store *s, const struct descriptor *desc, struct image *img,
               struct kiln_error **err)
{
    memset(img, 0, sizeof(*img));
    char *buf = NULL;
    size_t len = 0;
    if (store_blob_read(s, desc->digest, JSON_MAX_SIZE, &buf, &len, err) < 0)
        return kiln_error_wrap(err, "load image %.19s", desc->digest);
    int r = manifest_parse(buf, len, &img->manifest, err);
    free(buf);
    if (r < 0)
        return kiln_error_wrap(err, "load image %.19s", desc->digest);
    if (store_blob_read(s, img->manifest.config.digest, JSON_MAX_SIZE, &buf, &len, err) < 0) {
        manifest_free(&img->manifest);
        return kiln_error_wrap(err, "load image %.19s", desc->digest);
    }
    r = image_config_parse(buf, len, &img->config, err);
    free(buf);
    if (r < 0) {
        manifest_free(&img->manifest);
        return kiln_error_wrap(err, "load image %.19s", desc->digest);
    }
    if (strv_len(img->config.diff_ids) != img->manifest.n_layers) {
        image_free(img);
        return kiln_error_set(err, 0, "load image %.19s: %zu layers but %zu diff_ids",
                              desc->digest, img->manifest.n_layers,
                              strv_len(img->config.diff_ids));
    }
    descriptor_copy(&img->desc, desc);
    memcpy(img->config_digest, img->manifest.config.digest, DIGEST_STR_LEN);
    return 0;
}

int image_commit(struct store *s, const struct image_config *cfg,
                 const struct descriptor *layers, size_t n_layers, struct descriptor *ret_desc,
                 char ret_config_digest[DIGEST_STR_LEN], struct kiln_error **err)
{
    size_t clen = 0;
    char *cjson = image_config_to_json(cfg, &clen);
    struct manifest m;
    memset(&m, 0, sizeof(m));
    m.media_type = MT_OCI_MANIFEST;
    m.config.media_type = MT_OCI_CONFIG;
    m.config.size = clen;
    int r = store_blob_put(s, cjson, clen, m.config.digest, err);
    free(cjson);
    if (r < 0)
        return kiln_error_wrap(err, "write image config");
    m.layers = (struct descriptor *)layers;
    m.n_layers = n_layers;
    size_t mlen = 0;
    char *mjson = manifest_to_json(&m, &mlen);
    memset(ret_desc, 0, sizeof(*ret_desc));
    r = store_blob_put(s, mjson, mlen, ret_desc->digest, err);
    free(mjson);
    if (r < 0)
        return kiln_error_wrap(err, "write image manifest");
    ret_desc->media_type = xstrdup(MT_OCI_MANIFEST);
    ret_desc->size = mlen;
    if (ret_config_digest)
        memcpy(ret_config_digest, m.config.digest, DIGEST_STR_LEN);
    return 0;
}
