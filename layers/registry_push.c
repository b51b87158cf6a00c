/* kiln push: an image of the store to a registry.  Blobs the registry has
 * are skipped (HEAD), blobs another repository of the same registry holds
 * are mounted, the rest are uploaded; the manifest goes up byte for byte,
 * so its digest is the store's. */
#include <stdlib.h>
#include <string.h>

#include "layers/image.h"
#include "layers/reference.h"
#include "layers/registry_internal.h"
#include "lib/cleanup.h"
#include "lib/log.h"
#include "lib/xalloc.h"

struct push_jobs {
    struct store *s;
    const char *repo;
    const struct descriptor **d;
    uint64_t *sent;
};

static int push_job(struct reg_client *c, size_t i, void *ud, struct kiln_error **err)
{
    struct push_jobs *j = ud;
    const struct descriptor *d = j->d[i];
    char **from = reg_sources_get(j->s, d->digest, c->registry);
    struct reg_blob_src src = {.store = j->s};
    int r = reg_push_blob(c, j->repo, d, &src, from, &j->sent[i], err);
    strv_free(from);
    return r;
}

int reg_push_manifest_blobs(struct reg_client *c, struct store *s, const char *repo,
                            const struct manifest *m, const char *config_data,
                            uint64_t *ret_sent, struct kiln_error **err)
{
    /* the layers, several at once (each once) */
    struct push_jobs j = {.s = s,
                          .repo = repo,
                          .d = xcalloc(m->n_layers + 1, sizeof(*j.d)),
                          .sent = xcalloc(m->n_layers + 1, sizeof(*j.sent))};
    size_t n = 0;
    int r = 0;
    for (size_t i = 0; i < m->n_layers && r == 0; i++) {
        bool dup = false;
        for (size_t q = 0; q < n && !dup; q++)
            dup = strcmp(j.d[q]->digest, m->layers[i].digest) == 0;
        if (dup)
            continue;
        if (!store_has_blob(s, m->layers[i].digest))
            r = kiln_error_set(err, 0, "blob %s is not in the store", m->layers[i].digest);
        j.d[n++] = &m->layers[i];
    }
    _cleanup_free_ char *scope = xasprintf("repository:%s:pull,push", repo);
    if (r == 0)
        r = reg_parallel(c, scope, n, push_job, &j, err);
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += j.sent[i];
    free(j.d);
    free(j.sent);
    if (r < 0)
        return -1;
    /* then the config */
    struct reg_blob_src src = {.store = s, .label = "config"};
    if (config_data) {
        src.store = NULL;
        src.data = config_data;
    } else if (!store_has_blob(s, m->config.digest)) {
        return kiln_error_set(err, 0, "config %s is not in the store", m->config.digest);
    }
    _cleanup_strv_ char **from = reg_sources_get(s, m->config.digest, c->registry);
    uint64_t sent = 0;
    if (reg_push_blob(c, repo, &m->config, &src, from, &sent, err) < 0)
        return -1;
    if (ret_sent)
        *ret_sent = total + sent;
    return 0;
}

int registry_push(struct store *s, const struct descriptor *manifest, const char *refstr,
                  const struct registry_opts *o, char ret_digest[DIGEST_STR_LEN],
                  struct kiln_error **err)
{
    struct image_ref ref;
    if (ref_parse(registry_strip_transport(refstr), &ref, err) < 0)
        return -1;
    _cleanup_free_ char *full = ref_full(&ref);
    struct reg_client *c = NULL;
    struct manifest m = {0};
    char *buf = NULL, *mt = NULL;
    size_t len = 0;
    int r = -1;
    uint64_t sent = 0;
    char digest[DIGEST_STR_LEN];

    if (store_blob_read(s, manifest->digest, REG_MANIFEST_MAX, &buf, &len, err) < 0)
        goto wrap;
    mt = manifest->media_type && *manifest->media_type ? xstrdup(manifest->media_type)
                                                       : reg_manifest_sniff(buf, len);
    if (!reg_media_type_is_manifest(mt)) {
        kiln_error_set(err, 0, "%s is not an image manifest (media type '%s')", manifest->digest,
                       mt ? mt : "?");
        goto wrap;
    }
    if (manifest_parse(buf, len, &m, err) < 0)
        goto wrap;
    if (reg_client_new(ref.domain, ref.path, NULL, NULL, o, &c, err) < 0)
        goto wrap;
    reg_status(o, "Pushing %s to %s", manifest->digest, full);
    if (reg_push_manifest_blobs(c, s, ref.path, &m, NULL, &sent, err) < 0)
        goto wrap;
    log_debug("registry: push of %s uploaded %llu bytes of blobs", full,
              (unsigned long long)sent);
    reg_status(o, "Writing manifest to image destination");
    if (reg_put_manifest(c, ref.path, ref.digest ? ref.digest : ref.tag, mt, buf, len, digest,
                         err) < 0)
        goto wrap;
    reg_sources_note(s, &m, true, ref.domain, ref.path);
    if (ret_digest)
        memcpy(ret_digest, digest, DIGEST_STR_LEN);
    r = 0;
    goto out;
wrap:
    kiln_error_wrap(err, "push '%s'", full);
out:
    manifest_free(&m);
    reg_client_free(c);
    ref_free(&ref);
    free(buf);
    free(mt);
    return r;
}
