#include "layers/refs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "layers/reference.h"
#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/json.h"
#include "lib/xalloc.h"

const char *index_entry_name(const struct index_entry *e)
{
    return strmap_get(&e->annotations, ANNOT_REF_NAME);
}

void store_index_free(struct store_index *idx)
{
    for (size_t i = 0; i < idx->n; i++) {
        descriptor_free(&idx->entries[i].desc);
        strmap_free(&idx->entries[i].annotations);
        free(idx->entries[i].platform_os);
        free(idx->entries[i].platform_arch);
        free(idx->entries[i].platform_variant);
    }
    free(idx->entries);
    memset(idx, 0, sizeof(*idx));
}

int store_index_read(struct store *s, struct store_index *idx, struct kiln_error **err)
{
    memset(idx, 0, sizeof(*idx));
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    int r = fs_read_file_at(s->root_fd, "index.json", JSON_MAX_SIZE, &buf, &len);
    if (r < 0)
        return kiln_error_set(err, -r, "store '%s': read index.json", s->root);
    yajl_val root = NULL;
    if (json_parse(buf, len, &root, err) < 0)
        return kiln_error_wrap(err, "store '%s': index.json", s->root);
    yajl_val arr = json_get_arr(root, "manifests");
    size_t n = arr ? arr->u.array.len : 0;
    idx->entries = xcalloc(n + 1, sizeof(*idx->entries));
    for (size_t i = 0; i < n; i++) {
        yajl_val v = arr->u.array.values[i];
        const char *dg = json_get_str(v, "digest");
        const char *mt = json_get_str(v, "mediaType");
        int64_t size = -1;
        if (!dg || !digest_is_valid(dg) || !json_get_int(v, "size", &size) || size < 0)
            continue; /* an entry we cannot use; skip rather than lose the store */
        struct index_entry *e = &idx->entries[idx->n++];
        e->desc.media_type = xstrdup(mt ? mt : MT_OCI_MANIFEST);
        memcpy(e->desc.digest, dg, DIGEST_STR_LEN);
        e->desc.size = (uint64_t)size;
        yajl_val ann = json_get_obj(v, "annotations");
        for (size_t k = 0; ann && k < ann->u.object.len; k++)
            if (YAJL_IS_STRING(ann->u.object.values[k]))
                strmap_set(&e->annotations, ann->u.object.keys[k],
                           ann->u.object.values[k]->u.string);
        yajl_val plat = json_get_obj(v, "platform");
        if (plat) {
            const char *os = json_get_str(plat, "os"), *arch = json_get_str(plat, "architecture"),
                       *var = json_get_str(plat, "variant");
            e->platform_os = os ? xstrdup(os) : NULL;
            e->platform_arch = arch ? xstrdup(arch) : NULL;
            e->platform_variant = var ? xstrdup(var) : NULL;
        }
    }
    yajl_tree_free(root);
    return 0;
}

int store_index_write(struct store *s, const struct store_index *idx, struct kiln_error **err)
{
    struct json_gen j;
    json_gen_init(&j, false);
    json_oci_index_open(&j);
    for (size_t i = 0; i < idx->n; i++) {
        const struct index_entry *e = &idx->entries[i];
        json_obj_open(&j);
        json_descriptor_fields(&j, &e->desc);
        json_strmap_member(&j, "annotations", &e->annotations);
        if (e->platform_os || e->platform_arch) {
            json_key(&j, "platform");
            json_obj_open(&j);
            json_kv_str(&j, "architecture", e->platform_arch);
            json_kv_str(&j, "os", e->platform_os);
            json_kv_str(&j, "variant", e->platform_variant);
            json_obj_close(&j);
        }
        json_obj_close(&j);
    }
    json_oci_index_close(&j);
    size_t len = 0;
    const char *buf = json_gen_buf(&j, &len);
    int r = fs_write_atomic_at(s->root_fd, "index.json", buf, len, 0644, true);
    json_gen_free(&j);
    if (r < 0)
        return kiln_error_set(err, -r, "store '%s': write index.json", s->root);
    return 0;
}

int store_ref_name(const char *what, char **ret, struct kiln_error **err)
{
    struct image_ref ref;
    if (ref_parse(what, &ref, err) < 0)
        return -1;
    *ret = ref_familiar(&ref);
    ref_free(&ref);
    return 0;
}

static void index_remove_at(struct store_index *idx, size_t i)
{
    descriptor_free(&idx->entries[i].desc);
    strmap_free(&idx->entries[i].annotations);
    free(idx->entries[i].platform_os);
    free(idx->entries[i].platform_arch);
    free(idx->entries[i].platform_variant);
    memmove(&idx->entries[i], &idx->entries[i + 1], (idx->n - i - 1) * sizeof(idx->entries[0]));
    idx->n--;
}

/* Drops the name from its entry; the entry stays, untagged, unless its
 * manifest is still named by another entry. */
static bool index_drop_name(struct store_index *idx, const char *name)
{
    for (size_t i = 0; i < idx->n; i++) {
        const char *n = index_entry_name(&idx->entries[i]);
        if (!n || strcmp(n, name) != 0)
            continue;
        char digest[DIGEST_STR_LEN];
        memcpy(digest, idx->entries[i].desc.digest, DIGEST_STR_LEN);
        strmap_remove(&idx->entries[i].annotations, ANNOT_REF_NAME);
        bool named_elsewhere = false;
        for (size_t k = 0; k < idx->n; k++)
            if (k != i && strcmp(idx->entries[k].desc.digest, digest) == 0)
                named_elsewhere = true;
        if (named_elsewhere)
            index_remove_at(idx, i);
        return true;
    }
    return false;
}

/* Changes index.json under the store lock: read, edit, write when edit says
 * something changed (returns 1), unlock. */
typedef int (*index_edit_fn)(struct store_index *idx, void *ud);

static int index_update(struct store *s, index_edit_fn edit, void *ud, struct kiln_error **err)
{
    int lockfd = -1;
    if (store_lock(s, &lockfd, err) < 0)
        return -1;
    struct store_index idx;
    int r = store_index_read(s, &idx, err);
    if (r == 0) {
        if (edit(&idx, ud) > 0)
            r = store_index_write(s, &idx, err);
        store_index_free(&idx);
    }
    store_unlock(lockfd);
    return r;
}

static struct index_entry *index_append(struct store_index *idx, const struct descriptor *manifest)
{
    idx->entries = xreallocarray(idx->entries, idx->n + 1, sizeof(*idx->entries));
    struct index_entry *e = &idx->entries[idx->n++];
    memset(e, 0, sizeof(*e));
    descriptor_copy(&e->desc, manifest);
    if (!e->desc.media_type)
        e->desc.media_type = xstrdup(MT_OCI_MANIFEST);
    return e;
}

struct tag_edit {
    const char *name;
    const struct descriptor *manifest;
    bool found;
};

static int edit_tag(struct store_index *idx, void *ud)
{
    struct tag_edit *t = ud;
    index_drop_name(idx, t->name);
    /* reuse an untagged entry of the same manifest */
    struct index_entry *e = NULL;
    for (size_t i = 0; i < idx->n; i++)
        if (!index_entry_name(&idx->entries[i]) &&
            strcmp(idx->entries[i].desc.digest, t->manifest->digest) == 0)
            e = &idx->entries[i];
    if (!e)
        e = index_append(idx, t->manifest);
    strmap_set(&e->annotations, ANNOT_REF_NAME, t->name);
    return 1;
}

int store_tag(struct store *s, const char *what, const struct descriptor *manifest,
              struct kiln_error **err)
{
    _cleanup_free_ char *name = NULL;
    if (store_ref_name(what, &name, err) < 0)
        return -1;
    struct tag_edit t = {name, manifest, false};
    return index_update(s, edit_tag, &t, err);
}

static int edit_add_untagged(struct store_index *idx, void *ud)
{
    const struct descriptor *manifest = ud;
    for (size_t i = 0; i < idx->n; i++)
        if (strcmp(idx->entries[i].desc.digest, manifest->digest) == 0)
            return 0;
    index_append(idx, manifest);
    return 1;
}

int store_add_untagged(struct store *s, const struct descriptor *manifest, struct kiln_error **err)
{
    return index_update(s, edit_add_untagged, (void *)manifest, err);
}

static int edit_untag(struct store_index *idx, void *ud)
{
    struct tag_edit *t = ud;
    t->found = index_drop_name(idx, t->name);
    return t->found;
}

int store_untag(struct store *s, const char *what, bool *ret_found, struct kiln_error **err)
{
    _cleanup_free_ char *name = NULL;
    if (store_ref_name(what, &name, err) < 0)
        return -1;
    struct tag_edit t = {name, NULL, false};
    int r = index_update(s, edit_untag, &t, err);
    if (r == 0 && ret_found)
        *ret_found = t.found;
    return r;
}

static int edit_forget(struct store_index *idx, void *ud)
{
    const char *digest = ud;
    int changed = 0;
    for (size_t i = idx->n; i-- > 0;)
        if (strcmp(idx->entries[i].desc.digest, digest) == 0) {
            index_remove_at(idx, i);
            changed = 1;
        }
    return changed;
}

int store_forget_manifest(struct store *s, const char *digest, struct kiln_error **err)
{
    return index_update(s, edit_forget, (void *)digest, err);
}

static bool is_hex(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return false;
    return true;
}

/* The config digest of a manifest blob (without verifying the config). */
static bool manifest_config_digest(struct store *s, const char *mdigest,
                                   char out[DIGEST_STR_LEN])
{
    char *buf = NULL;
    size_t len = 0;
    struct kiln_error *e = NULL;
    if (store_blob_read(s, mdigest, JSON_MAX_SIZE, &buf, &len, &e) < 0) {
        kiln_error_free(&e);
        return false;
    }
    struct manifest m;
    int r = manifest_parse(buf, len, &m, &e);
    free(buf);
    if (r < 0) {
        kiln_error_free(&e);
        return false;
    }
    memcpy(out, m.config.digest, DIGEST_STR_LEN);
    manifest_free(&m);
    return true;
}

int store_resolve(struct store *s, const char *what, struct descriptor *ret, char **ret_name,
                  struct kiln_error **err)
{
    struct store_index idx;
    if (store_index_read(s, &idx, err) < 0)
        return -1;
    int found = -1;
    char *name = NULL;
    const char *hex = strncmp(what, "sha256:", 7) == 0 ? what + 7 : what;
    bool id_like = is_hex(hex) && strlen(hex) >= 4 && strlen(hex) <= 64;

    /* 1. a name */
    struct kiln_error *perr = NULL;
    struct image_ref ref;
    if (ref_parse(what, &ref, &perr) == 0) {
        char *fam = NULL;
        if (ref.digest) {
            for (size_t i = 0; i < idx.n && found < 0; i++)
                if (strcmp(idx.entries[i].desc.digest, ref.digest) == 0)
                    found = (int)i;
        } else {
            fam = ref_familiar(&ref);
            for (size_t i = 0; i < idx.n && found < 0; i++) {
                const char *n = index_entry_name(&idx.entries[i]);
                if (n && strcmp(n, fam) == 0) {
                    found = (int)i;
                    name = xstrdup(n);
                }
            }
        }
        free(fam);
        ref_free(&ref);
    }
    kiln_error_free(&perr);
    /* 2. an image id (config digest) or manifest digest, maybe abbreviated */
    if (found < 0 && id_like) {
        size_t hl = strlen(hex);
        int matches = 0;
        for (size_t i = 0; i < idx.n; i++) {
            char cfg[DIGEST_STR_LEN];
            bool hit = strncmp(idx.entries[i].desc.digest + 7, hex, hl) == 0;
            if (!hit && manifest_config_digest(s, idx.entries[i].desc.digest, cfg))
                hit = strncmp(cfg + 7, hex, hl) == 0;
            if (hit) {
                if (found >= 0 &&
                    strcmp(idx.entries[found].desc.digest, idx.entries[i].desc.digest) != 0)
                    matches++;
                if (found < 0)
                    found = (int)i;
            }
        }
        if (matches > 0) {
            store_index_free(&idx);
            return kiln_error_set(err, 0, "image id '%s' is ambiguous", what);
        }
    }
    if (found < 0) {
        store_index_free(&idx);
        return kiln_error_set_status(err, KILN_EXIT_FAILURE, 0, "no such image: '%s'", what);
    }
    descriptor_copy(ret, &idx.entries[found].desc);
    if (ret_name)
        *ret_name = name;
    else
        free(name);
    store_index_free(&idx);
    return 0;
}
