/* kiln pull: a docker:// reference into the store.  The manifest (chosen
 * from an index by platform), its config and its layers are downloaded and
 * verified into a staging directory first; only when all of them are good
 * do they move into blobs/ and does the name point at the image. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "layers/image.h"
#include "layers/layer.h"
#include "layers/reference.h"
#include "layers/refs.h"
#include "layers/registry_internal.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/xalloc.h"

const char *registry_strip_transport(const char *ref)
{
    if (strncmp(ref, "docker://", 9) == 0)
        return ref + 9;
    return ref;
}

static char *index_platforms(const struct reg_index_entry *e, size_t n)
{
    struct strbuf sb = STRBUF_INIT;
    strbuf_init(&sb);
    for (size_t i = 0; i < n; i++) {
        if (!e[i].platform.os)
            continue;
        _cleanup_free_ char *p = reg_platform_string(&e[i].platform);
        strbuf_addf(&sb, "%s%s", sb.len ? ", " : "", p);
    }
    return strbuf_detach(&sb, NULL);
}

/* Loads the config from the store or the registry; checks it against the
 * manifest and the platform. */
static int pull_config(struct reg_client *c, struct store *s, const char *repo,
                       const struct manifest *m, struct reg_staging *st,
                       const struct reg_platform *want, bool explicit_platform,
                       const struct registry_opts *o, struct kiln_error **err)
{
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    _cleanup_free_ char *short_id = xstrndup(digest_hex(m->config.digest), 12);
    if (store_has_blob(s, m->config.digest)) {
        if (store_blob_read(s, m->config.digest, JSON_MAX_SIZE, &buf, &len, err) < 0)
            return -1;
        if (len != m->config.size)
            return kiln_error_set(err, 0, "config %s: %zu bytes in the store, manifest says %llu",
                                  m->config.digest, len, (unsigned long long)m->config.size);
    } else {
        reg_status(o, "Copying config %s", short_id);
        if (reg_fetch_blob_mem(c, repo, &m->config, JSON_MAX_SIZE, &buf, err) < 0)
            return -1;
        len = m->config.size;
        if (reg_staging_put(st, m->config.digest, buf, len, err) < 0)
            return -1;
    }
    struct image_config cfg;
    if (image_config_parse(buf, len, &cfg, err) < 0)
        return kiln_error_wrap(err, "config %s", m->config.digest);
    int r = 0;
    if (strv_len(cfg.diff_ids) != m->n_layers) {
        r = kiln_error_set(err, 0, "image config %s: %zu diff_ids for %zu layers",
                           m->config.digest, strv_len(cfg.diff_ids), m->n_layers);
    } else if (cfg.os && cfg.architecture &&
               (strcmp(cfg.os, want->os) != 0 || strcmp(cfg.architecture, want->arch) != 0)) {
        _cleanup_free_ char *w = reg_platform_string(want);
        if (explicit_platform)
            r = kiln_error_set(err, 0,
                               "the image is for %s/%s, not the requested platform %s",
                               cfg.os, cfg.architecture, w);
        else
            reg_status(o, "warning: the image is for %s/%s, this machine is %s", cfg.os,
                       cfg.architecture, w);
    }
    image_config_free(&cfg);
    return r;
}

int registry_pull(struct store *s, const char *refstr, const struct registry_opts *o,
                  struct descriptor *ret_manifest, struct kiln_error **err)
{
    struct image_ref ref;
    if (ref_parse(registry_strip_transport(refstr), &ref, err) < 0)
        return -1;
    struct reg_platform want = {0};
    bool explicit_platform = o && o->platform && *o->platform;
    struct reg_client *c = NULL;
    struct reg_staging *st = NULL;
    struct reg_index_entry *entries = NULL;
    size_t n_entries = 0;
    struct manifest m = {0};
    char *buf = NULL, *mt = NULL;
    size_t len = 0;
    char digest[DIGEST_STR_LEN];
    int r = -1;
    _cleanup_free_ char *full = ref_full(&ref);

    if (explicit_platform) {
        if (reg_platform_parse(o->platform, &want, err) < 0)
            goto out;
    } else {
        reg_platform_host(&want);
    }
    if (reg_client_new(ref.domain, ref.path, NULL, NULL, o, &c, err) < 0)
        goto out;
    reg_status(o, "Trying to pull %s...", full);
    const char *reference = ref.digest ? ref.digest : ref.tag;
    if (reg_fetch_manifest(c, ref.path, reference, &buf, &len, &mt, digest, err) < 0)
        goto out;
    if (reg_staging_begin(s, &st, err) < 0)
        goto out;
    if (reg_media_type_is_index(mt)) {
        if (reg_index_parse(buf, len, &entries, &n_entries, err) < 0)
            goto wrap;
        int i = reg_index_select(entries, n_entries, &want);
        if (i < 0) {
            _cleanup_free_ char *w = reg_platform_string(&want);
            _cleanup_free_ char *have = index_platforms(entries, n_entries);
            kiln_error_set(err, 0, "no image for platform %s in '%s' (it has: %s)", w, full,
                           have[0] ? have : "none");
            goto out;
        }
        const struct descriptor *d = &entries[i].desc;
        _cleanup_free_ char *p = reg_platform_string(&entries[i].platform);
        reg_status(o, "Choosing %s from the image index: %s", p, d->digest);
        free(buf);
        free(mt);
        buf = mt = NULL;
        char got[DIGEST_STR_LEN];
        if (reg_fetch_manifest(c, ref.path, d->digest, &buf, &len, &mt, got, err) < 0)
            goto out;
        if (len != d->size) {
            kiln_error_set(err, 0, "manifest %s: %zu bytes, the index says %llu; refusing it",
                           d->digest, len, (unsigned long long)d->size);
            goto out;
        }
        memcpy(digest, got, DIGEST_STR_LEN);
    }
    if (!reg_media_type_is_manifest(mt)) {
        kiln_error_set(err, 0, "'%s': unsupported manifest type '%s'", full, mt);
        goto out;
    }
    if (manifest_parse(buf, len, &m, err) < 0)
        goto wrap;
    if (strcmp(m.media_type, mt) != 0) {
        kiln_error_set(err, 0, "'%s': manifest media type '%s' where '%s' was expected", full,
                       m.media_type, mt);
        goto out;
    }
    if (pull_config(c, s, ref.path, &m, st, &want, explicit_platform, o, err) < 0)
        goto wrap;
    if (reg_fetch_blobs(c, ref.path, m.layers, m.n_layers, st, err) < 0)
        goto wrap;
    if (reg_staging_put(st, digest, buf, len, err) < 0)
        goto wrap;
    reg_status(o, "Writing manifest to image destination");
    /* everything verified: into the store, then the name */
    if (reg_staging_commit(st, err) < 0)
        goto wrap;
    struct descriptor desc = {.media_type = mt, .size = len};
    memcpy(desc.digest, digest, DIGEST_STR_LEN);
    /* the layers' contents, before the name: a hostile or mislabelled layer
     * leaves only unnamed blobs, which the next prune removes */
    reg_status(o, "Extracting layers");
    if (store_trees_ensure_image(s, &desc, err) < 0)
        goto wrap;
    if (ref.tag) {
        _cleanup_free_ char *name = ref_familiar_name(&ref);
        _cleanup_free_ char *tagged = xasprintf("%s:%s", name, ref.tag);
        if (store_tag(s, tagged, &desc, err) < 0)
            goto wrap;
    } else if (store_add_untagged(s, &desc, err) < 0) {
        goto wrap;
    }
    reg_sources_note(s, &m, true, ref.domain, ref.path);
    reg_status(o, "Digest: %s", digest);
    if (ret_manifest) {
        ret_manifest->media_type = TAKE_PTR(mt);
        memcpy(ret_manifest->digest, digest, DIGEST_STR_LEN);
        ret_manifest->size = len;
    }
    r = 0;
    goto out;
wrap:
    kiln_error_wrap(err, "pull '%s'", full);
out:
    manifest_free(&m);
    reg_index_free(entries, n_entries);
    reg_staging_free(st);
    reg_client_free(c);
    reg_platform_free(&want);
    ref_free(&ref);
    free(buf);
    free(mt);
    return r;
}
