/* Transports: parsing references, and importing images from OCI layouts,
 * OCI archives and docker archives into the store (exports are in
 * archive_write.c). */
#include "layers/transport.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "layers/archive.h"
#include "layers/gc.h"
#include "layers/image.h"
#include "layers/layer.h"
#include "layers/reference.h"
#include "layers/refs.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/platform.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

#define MAX_IMAGES 4096 /* images in one source */
#define MAX_INDEX_DEPTH 4

/* ---- parsing ------------------------------------------------------------ */

void transport_ref_free(struct transport_ref *r)
{
    if (!r)
        return;
    free(r->path);
    free(r->ref);
    memset(r, 0, sizeof(*r));
    r->index = -1;
}

/* containers/image's OCI ref-name: components of [A-Za-z0-9]+ joined by one
 * of - . _ : @ + (or "--"), components separated by '/'. */
static bool valid_oci_refname(const char *s)
{
    const char *p = s;
    for (;;) {
        /* one component */
        if (!isalnum((unsigned char)*p))
            return false;
        while (isalnum((unsigned char)*p))
            p++;
        while (*p == '-' || *p == '.' || *p == '_' || *p == ':' || *p == '@' || *p == '+') {
            if (p[0] == '-' && p[1] == '-')
                p++;
            p++;
            if (!isalnum((unsigned char)*p))
                return false;
            while (isalnum((unsigned char)*p))
                p++;
        }
        if (*p == '\0')
            return true;
        if (*p != '/')
            return false;
        p++;
    }
}

static int parse_index(const char *s, int *ret)
{
    if (!*s)
        return -1;
    long v = 0;
    for (const char *p = s; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return -1;
        v = v * 10 + (*p - '0');
        if (v > MAX_IMAGES)
            return -1;
    }
    *ret = (int)v;
    return 0;
}

int transport_parse(const char *s, struct transport_ref *ret, struct kiln_error **err)
{
    memset(ret, 0, sizeof(*ret));
    ret->index = -1;
    if (!s || !*s)
        return kiln_error_set(err, 0, "invalid image reference: empty");
    const char *first_colon = strchr(s, ':'), *first_slash = strchr(s, '/');
    if (strncmp(s, "docker://", 9) == 0 || !first_colon ||
        (first_slash && first_slash < first_colon)) {
        const char *r = strncmp(s, "docker://", 9) == 0 ? s + 9 : s;
        struct image_ref ir;
        if (ref_parse(r, &ir, err) < 0)
            return -1;
        ref_free(&ir);
        ret->kind = TRANSPORT_DOCKER;
        ret->ref = xstrdup(r);
        return 0;
    }
    const char *colon = strchr(s, ':');
    size_t tl = (size_t)(colon - s);
    const char *rest = colon + 1;
    static const struct {
        const char *name;
        enum transport_kind kind;
    } known[] = {{"oci", TRANSPORT_OCI},
                 {"oci-archive", TRANSPORT_OCI_ARCHIVE},
                 {"docker-archive", TRANSPORT_DOCKER_ARCHIVE}};
    int kind = -1;
    for (size_t i = 0; i < ARRAY_SIZE(known); i++)
        if (strlen(known[i].name) == tl && strncmp(s, known[i].name, tl) == 0)
            kind = (int)known[i].kind;
    if (kind < 0) {
        static const char *const other[] = {"dir",    "docker-daemon", "containers-storage",
                                            "ostree", "sif",           "tarball",
                                            "docker"};
        for (size_t i = 0; i < ARRAY_SIZE(other); i++)
            if (strlen(other[i]) == tl && strncmp(s, other[i], tl) == 0)
                return kiln_error_set(
                    err, 0,
                    strcmp(other[i], "docker") == 0
                        ? "invalid reference '%s': the docker transport is written docker://REF"
                        : "transport in '%s' is not supported (kiln knows docker://, oci:, "
                          "oci-archive: and docker-archive:)",
                    s);
        /* "localhost:5000/app" and the like: a registry reference */
        struct image_ref ir;
        if (ref_parse(s, &ir, err) < 0)
            return -1;
        ref_free(&ir);
        ret->kind = TRANSPORT_DOCKER;
        ret->ref = xstrdup(s);
        return 0;
    }
    ret->kind = (enum transport_kind)kind;
    const char *c2 = strchr(rest, ':');
    ret->path = c2 ? xstrndup(rest, (size_t)(c2 - rest)) : xstrdup(rest);
    if (!ret->path[0]) {
        transport_ref_free(ret);
        return kiln_error_set(err, 0, "invalid reference '%s': no path", s);
    }
    if (!c2 || !c2[1])
        return 0;
    const char *tag = c2 + 1;
    if (tag[0] == '@') {
        if (parse_index(tag + 1, &ret->index) < 0) {
            transport_ref_free(ret);
            return kiln_error_set(err, 0, "invalid reference '%s': bad source index '%s'", s, tag);
        }
        return 0;
    }
    if (ret->kind == TRANSPORT_DOCKER_ARCHIVE) {
        struct image_ref ir;
        if (ref_parse(tag, &ir, err) < 0) {
            transport_ref_free(ret);
            return kiln_error_wrap(err, "invalid reference '%s'", s);
        }
        if (ir.digest) {
            ref_free(&ir);
            transport_ref_free(ret);
            return kiln_error_set(err, 0, "invalid reference '%s': docker-archive takes no digest",
                                  s);
        }
        ret->ref = ref_familiar(&ir);
        ref_free(&ir);
        return 0;
    }
    if (strlen(tag) > 255 || !valid_oci_refname(tag)) {
        transport_ref_free(ret);
        return kiln_error_set(err, 0, "invalid reference '%s': bad image name '%s'", s, tag);
    }
    ret->ref = xstrdup(tag);
    return 0;
}

char *transport_ref_string(const struct transport_ref *r)
{
    static const char *const names[] = {"docker://", "oci:", "oci-archive:", "docker-archive:"};
    if (r->kind == TRANSPORT_DOCKER)
        return xasprintf("docker://%s", r->ref ? r->ref : "");
    if (r->index >= 0)
        return xasprintf("%s%s:@%d", names[r->kind], r->path, r->index);
    return xasprintf("%s%s%s%s", names[r->kind], r->path, r->ref ? ":" : "", r->ref ? r->ref : "");
}

void transport_images_free(struct transport_image *imgs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        descriptor_free(&imgs[i].manifest);
        strv_free(imgs[i].names);
    }
    free(imgs);
}

/* ---- naming ------------------------------------------------------------ */

/* "alpine" from "/x/alpine", "alpine.tar", "alpine.oci.tar.gz" */
static char *name_base(const char *hint)
{
    if (!hint || strcmp(hint, "-") == 0)
        return NULL;
    const char *b = strrchr(hint, '/');
    b = b ? b + 1 : hint;
    char *base = xstrdup(b);
    static const char *const exts[] = {".tar.gz", ".tar.zst", ".tar.xz", ".tar.bz2", ".tgz",
                                       ".tar",    ".oci",     ".gz"};
    bool again = true;
    while (again) {
        again = false;
        size_t n = strlen(base);
        for (size_t i = 0; i < ARRAY_SIZE(exts); i++) {
            size_t el = strlen(exts[i]);
            if (n > el && strcmp(base + n - el, exts[i]) == 0) {
                base[n - el] = '\0';
                again = true;
                break;
            }
        }
    }
    return base;
}

/* A store name for an OCI ref-name: itself when it is a full name, else
 * BASENAME:TAG; NULL when neither makes a valid reference. */
static char *name_from_oci(const char *refname, const char *hint)
{
    if (!refname || !*refname)
        return NULL;
    char *out = NULL;
    struct kiln_error *e = NULL;
    if (strchr(refname, ':') || strchr(refname, '/')) {
        if (store_ref_name(refname, &out, &e) == 0)
            return out;
        kiln_error_free(&e);
        return NULL;
    }
    _cleanup_free_ char *base = name_base(hint);
    if (!base)
        return NULL;
    _cleanup_free_ char *cand = xasprintf("%s:%s", base, refname);
    if (store_ref_name(cand, &out, &e) == 0)
        return out;
    kiln_error_free(&e);
    return NULL;
}

/* ---- OCI images ------------------------------------------------------------ */

struct oci_entry {
    struct descriptor desc;
    char *ref_name;       /* org.opencontainers.image.ref.name */
    char *containerd_name; /* io.containerd.image.name */
};

static void oci_entries_free(struct oci_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        descriptor_free(&e[i].desc);
        free(e[i].ref_name);
        free(e[i].containerd_name);
    }
    free(e);
}

static char *blob_path(const char *digest)
{
    return xasprintf("blobs/sha256/%s", digest_hex(digest));
}

static int parse_desc(yajl_val v, struct descriptor *d, const char *what, struct kiln_error **err)
{
    memset(d, 0, sizeof(*d));
    const char *dg = json_get_str(v, "digest");
    const char *mt = json_get_str(v, "mediaType");
    int64_t size = -1;
    if (!dg || !digest_is_valid(dg))
        return kiln_error_set(err, 0, "%s: a descriptor has a missing or unsupported digest", what);
    if (!json_get_int(v, "size", &size) || size < 0)
        return kiln_error_set(err, 0, "%s: descriptor %s has no valid size", what, dg);
    memcpy(d->digest, dg, DIGEST_STR_LEN);
    d->size = (uint64_t)size;
    d->media_type = xstrdup(mt ? mt : "");
    return 0;
}

static int read_oci_index(struct image_source *src, struct oci_entry **ret, size_t *ret_n,
                          struct kiln_error **err)
{
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    if (source_read(src, "index.json", JSON_MAX_SIZE, &buf, &len, err) < 0)
        return -1;
    yajl_val root = NULL;
    if (json_parse(buf, len, &root, err) < 0)
        return kiln_error_wrap(err, "'%s': index.json", src->what);
    yajl_val arr = json_get_arr(root, "manifests");
    if (!YAJL_IS_OBJECT(root) || !arr) {
        yajl_tree_free(root);
        return kiln_error_set(err, 0, "'%s': index.json has no manifests", src->what);
    }
    size_t n = arr->u.array.len;
    if (n > MAX_IMAGES) {
        yajl_tree_free(root);
        return kiln_error_set(err, 0, "'%s': index.json lists too many images", src->what);
    }
    struct oci_entry *e = xcalloc(n + 1, sizeof(*e));
    for (size_t i = 0; i < n; i++) {
        yajl_val v = arr->u.array.values[i];
        if (parse_desc(v, &e[i].desc, "index.json", err) < 0) {
            oci_entries_free(e, i);
            yajl_tree_free(root);
            return kiln_error_wrap(err, "'%s'", src->what);
        }
        yajl_val ann = json_get_obj(v, "annotations");
        const char *rn = json_get_str(ann, ANNOT_REF_NAME);
        const char *cn = json_get_str(ann, "io.containerd.image.name");
        e[i].ref_name = rn ? xstrdup(rn) : NULL;
        e[i].containerd_name = cn ? xstrdup(cn) : NULL;
    }
    yajl_tree_free(root);
    *ret = e;
    *ret_n = n;
    return 0;
}

static bool is_index_type(const char *mt)
{
    return mt && (strcmp(mt, MT_OCI_INDEX) == 0 || strcmp(mt, MT_DOCKER_MANIFEST_LIST) == 0);
}

/* Reads a small blob of the source and checks it against its descriptor. */
static int read_verified(struct image_source *src, const struct descriptor *d, char **ret,
                         size_t *ret_len, struct kiln_error **err)
{
    _cleanup_free_ char *path = blob_path(d->digest);
    if (d->size > JSON_MAX_SIZE)
        return kiln_error_set(err, 0, "'%s': %s is too large for a manifest or config", src->what,
                              d->digest);
    char *buf = NULL;
    size_t len = 0;
    if (source_read(src, path, JSON_MAX_SIZE, &buf, &len, err) < 0)
        return -1;
    char got[DIGEST_STR_LEN];
    sha256_digest_of(buf, len, got);
    if (strcmp(got, d->digest) != 0 || len != d->size) {
        free(buf);
        return kiln_error_set(err, 0, "'%s': blob %s is corrupt (%zu bytes hashing to %s)",
                              src->what, d->digest, len, got);
    }
    *ret = buf;
    *ret_len = len;
    return 0;
}

/* Picks this machine's image of an image index. */
static int pick_platform(struct image_source *src, const char *buf, size_t len,
                         struct descriptor *ret, struct kiln_error **err)
{
    yajl_val root = NULL;
    if (json_parse(buf, len, &root, err) < 0)
        return kiln_error_wrap(err, "'%s': image index", src->what);
    yajl_val arr = json_get_arr(root, "manifests");
    int r = -1;
    for (size_t i = 0; arr && i < arr->u.array.len && r < 0; i++) {
        yajl_val v = arr->u.array.values[i];
        yajl_val plat = json_get_obj(v, "platform");
        const char *os = json_get_str(plat, "os"), *arch = json_get_str(plat, "architecture"),
                   *var = json_get_str(plat, "variant");
        if (!os || !arch || strcmp(os, platform_os()) != 0 || strcmp(arch, platform_arch()) != 0)
            continue;
        if (var && *platform_variant() && strcmp(var, platform_variant()) != 0)
            continue;
        struct descriptor d;
        if (parse_desc(v, &d, "image index", err) < 0) {
            yajl_tree_free(root);
            return kiln_error_wrap(err, "'%s'", src->what);
        }
        *ret = d;
        r = 0;
    }
    yajl_tree_free(root);
    if (r < 0)
        return kiln_error_set(err, 0, "'%s': the image index has no image for %s", src->what,
                              platform_string());
    return 0;
}

/* Copies an image (manifest, or index -> this platform's manifest) with its
 * config and layers into the store; the manifest goes last, so that a
 * manifest in the store always has its blobs. */
static int import_oci(struct image_source *src, const struct descriptor *d, int depth,
                      struct descriptor *ret, char ret_config[DIGEST_STR_LEN],
                      struct kiln_error **err)
{
    if (depth > MAX_INDEX_DEPTH)
        return kiln_error_set(err, 0, "'%s': image indexes nested too deeply", src->what);
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    if (read_verified(src, d, &buf, &len, err) < 0)
        return -1;
    const char *mt = d->media_type && *d->media_type ? d->media_type : NULL;
    yajl_val peek = NULL;
    if (!mt) {
        struct kiln_error *e = NULL;
        if (json_parse(buf, len, &peek, &e) == 0) {
            const char *m = json_get_str(peek, "mediaType");
            if (m && is_index_type(m))
                mt = MT_OCI_INDEX;
        }
        kiln_error_free(&e);
        yajl_tree_free(peek);
    }
    if (is_index_type(mt)) {
        struct descriptor child;
        if (pick_platform(src, buf, len, &child, err) < 0)
            return -1;
        int r = import_oci(src, &child, depth + 1, ret, ret_config, err);
        descriptor_free(&child);
        return r;
    }
    struct manifest m;
    if (manifest_parse(buf, len, &m, err) < 0)
        return kiln_error_wrap(err, "'%s': %s", src->what, d->digest);
    int r = -1;
    _cleanup_free_ char *cbuf = NULL, *cp = NULL, *mp = NULL;
    size_t clen = 0;
    struct image_config cfg;
    image_config_init(&cfg);
    if (read_verified(src, &m.config, &cbuf, &clen, err) < 0)
        goto out;
    if (image_config_parse(cbuf, clen, &cfg, err) < 0) {
        kiln_error_wrap(err, "'%s': config %s", src->what, m.config.digest);
        goto out;
    }
    if (strv_len(cfg.diff_ids) != m.n_layers) {
        kiln_error_set(err, 0, "'%s': image %s has %zu layers but %zu diff_ids", src->what,
                       d->digest, m.n_layers, strv_len(cfg.diff_ids));
        goto out;
    }
    for (size_t i = 0; i < m.n_layers; i++) {
        if (compression_from_media_type(m.layers[i].media_type) < 0) {
            kiln_error_set(err, 0, "'%s': layer %s has an unsupported media type '%s'",
                           src->what, m.layers[i].digest, m.layers[i].media_type);
            goto out;
        }
        _cleanup_free_ char *lp = blob_path(m.layers[i].digest);
        if (source_to_store(src, lp, m.layers[i].digest, (int64_t)m.layers[i].size, NULL, NULL,
                            err) < 0)
            goto out;
    }
    cp = blob_path(m.config.digest);
    if (source_to_store(src, cp, m.config.digest, (int64_t)m.config.size, NULL, NULL, err) < 0)
        goto out;
    mp = blob_path(d->digest);
    if (source_to_store(src, mp, d->digest, (int64_t)d->size, NULL, NULL, err) < 0)
        goto out;
    memset(ret, 0, sizeof(*ret));
    ret->media_type = xstrdup(m.media_type ? m.media_type : MT_OCI_MANIFEST);
    memcpy(ret->digest, d->digest, DIGEST_STR_LEN);
    ret->size = d->size;
    memcpy(ret_config, m.config.digest, DIGEST_STR_LEN);
    r = 0;
out:
    image_config_free(&cfg);
    manifest_free(&m);
    return r;
}

/* ---- docker archives ------------------------------------------------------ */

void docker_entries_free(struct docker_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(e[i].config);
        strv_free(e[i].layers);
        strv_free(e[i].tags);
    }
    free(e);
}

static char **str_array(yajl_val arr, bool *ok)
{
    char **v = strv_new();
    *ok = true;
    if (!arr || YAJL_IS_NULL(arr))
        return v;
    if (!YAJL_IS_ARRAY(arr)) {
        *ok = false;
        return v;
    }
    for (size_t i = 0; i < arr->u.array.len; i++) {
        yajl_val s = arr->u.array.values[i];
        if (!YAJL_IS_STRING(s)) {
            *ok = false;
            return v;
        }
        strv_push(&v, s->u.string);
    }
    return v;
}

/* manifest.json: [{"Config": PATH, "RepoTags": [..]|null, "Layers": [PATH..]}] */
int docker_manifest_parse(const char *buf, size_t len, struct docker_entry **ret, size_t *ret_n,
                          struct kiln_error **err)
{
    yajl_val root = NULL;
    if (json_parse(buf, len, &root, err) < 0)
        return kiln_error_wrap(err, "manifest.json");
    if (!YAJL_IS_ARRAY(root)) {
        yajl_tree_free(root);
        return kiln_error_set(err, 0, "manifest.json: not a JSON array");
    }
    size_t n = root->u.array.len;
    if (n > MAX_IMAGES) {
        yajl_tree_free(root);
        return kiln_error_set(err, 0, "manifest.json: too many images");
    }
    struct docker_entry *e = xcalloc(n + 1, sizeof(*e));
    for (size_t i = 0; i < n; i++) {
        yajl_val v = root->u.array.values[i];
        const char *cfg = json_get_str(v, "Config");
        bool ok1 = false, ok2 = false;
        e[i].layers = str_array(json_get(v, "Layers"), &ok1);
        e[i].tags = str_array(json_get(v, "RepoTags"), &ok2);
        if (!YAJL_IS_OBJECT(v) || !cfg || !ok1 || !ok2) {
            docker_entries_free(e, i + 1);
            yajl_tree_free(root);
            return kiln_error_set(err, 0, "manifest.json: entry %zu is not "
                                          "{Config, RepoTags, Layers}", i);
        }
        e[i].config = xstrdup(cfg);
    }
    yajl_tree_free(root);
    *ret = e;
    *ret_n = n;
    return 0;
}

/* Digest of a file of the source without copying it (archives only; for
 * directories the file is hashed). */
static int source_digest(struct image_source *src, const char *path, char ret[DIGEST_STR_LEN],
                         struct kiln_error **err)
{
    _cleanup_free_ char *norm = archive_path_normalize(path);
    if (!norm)
        return kiln_error_set(err, 0, "'%s': bad path '%s' in manifest.json", src->what, path);
    return source_to_store(src, norm, NULL, -1, ret, NULL, err);
}

/* An OCI manifest of the archive's index.json with this config and these
 * layer blobs (docker 25+ archives carry both); 0 if found. */
static int find_matching_oci(struct image_source *src, const char *config_digest,
                             char *const *layer_digests, struct descriptor *ret)
{
    struct kiln_error *e = NULL;
    struct oci_entry *ents = NULL;
    size_t n = 0;
    if (!source_exists(src, "index.json") || read_oci_index(src, &ents, &n, &e) < 0) {
        kiln_error_free(&e);
        return -1;
    }
    int found = -1;
    for (size_t i = 0; i < n && found < 0; i++) {
        if (is_index_type(ents[i].desc.media_type))
            continue;
        char *buf = NULL;
        size_t len = 0;
        if (read_verified(src, &ents[i].desc, &buf, &len, &e) < 0) {
            kiln_error_free(&e);
            continue;
        }
        struct manifest m;
        if (manifest_parse(buf, len, &m, &e) == 0) {
            bool same = strcmp(m.config.digest, config_digest) == 0 &&
                        m.n_layers == strv_len(layer_digests);
            for (size_t k = 0; same && k < m.n_layers; k++)
                same = strcmp(m.layers[k].digest, layer_digests[k]) == 0;
            if (same) {
                descriptor_copy(ret, &ents[i].desc);
                found = 0;
            }
            manifest_free(&m);
        }
        kiln_error_free(&e);
        free(buf);
    }
    oci_entries_free(ents, n);
    return found;
}

/* Makes an OCI manifest for a docker-archive entry, verifying every layer
 * against the config's diff_ids. */
static int import_docker(struct image_source *src, const struct docker_entry *de,
                         struct descriptor *ret, char ret_config[DIGEST_STR_LEN],
                         struct kiln_error **err)
{
    char cdigest[DIGEST_STR_LEN];
    uint64_t csize = 0;
    _cleanup_free_ char *cpath = archive_path_normalize(de->config);
    if (!cpath)
        return kiln_error_set(err, 0, "'%s': bad config path '%s'", src->what, de->config);
    if (source_to_store(src, cpath, NULL, -1, cdigest, &csize, err) < 0)
        return -1;
    _cleanup_strv_ char **ldigests = strv_new();
    for (size_t i = 0; de->layers[i]; i++) {
        char d[DIGEST_STR_LEN];
        if (source_digest(src, de->layers[i], d, err) < 0)
            return -1;
        strv_push(&ldigests, d);
    }
    struct descriptor exact;
    if (find_matching_oci(src, cdigest, ldigests, &exact) == 0) {
        int r = import_oci(src, &exact, 0, ret, ret_config, err);
        descriptor_free(&exact);
        return r;
    }
    _cleanup_free_ char *cbuf = NULL;
    size_t clen = 0;
    if (store_blob_read(src->store, cdigest, JSON_MAX_SIZE, &cbuf, &clen, err) < 0)
        return -1;
    struct image_config cfg;
    if (image_config_parse(cbuf, clen, &cfg, err) < 0)
        return kiln_error_wrap(err, "'%s': %s", src->what, de->config);
    size_t nl = strv_len(ldigests);
    if (strv_len(cfg.diff_ids) != nl) {
        kiln_error_set(err, 0, "'%s': image %s has %zu layers but %zu diff_ids", src->what,
                       cdigest, nl, strv_len(cfg.diff_ids));
        image_config_free(&cfg);
        return -1;
    }
    struct manifest m;
    memset(&m, 0, sizeof(m));
    m.media_type = xstrdup(MT_OCI_MANIFEST);
    m.config.media_type = xstrdup(MT_OCI_CONFIG);
    memcpy(m.config.digest, cdigest, DIGEST_STR_LEN);
    m.config.size = csize;
    m.layers = xcalloc(nl + 1, sizeof(*m.layers));
    int r = 0;
    for (size_t i = 0; i < nl && r == 0; i++) {
        struct descriptor *l = &m.layers[i];
        memcpy(l->digest, ldigests[i], DIGEST_STR_LEN);
        _cleanup_free_ char *lpath = archive_path_normalize(de->layers[i]);
        r = source_to_store(src, lpath, ldigests[i], -1, NULL, &l->size, err);
        if (r < 0)
            break;
        m.n_layers++;
        const char *comp = blob_compression(src->store, l->digest);
        if (!comp) {
            l->media_type = xstrdup(MT_OCI_LAYER_TAR);
            if (strcmp(l->digest, cfg.diff_ids[i]) != 0)
                r = kiln_error_set(err, 0, "'%s': layer '%s' does not match diff_id %s",
                                   src->what, de->layers[i], cfg.diff_ids[i]);
            continue;
        }
        if (strcmp(comp, "gzip") != 0 && strcmp(comp, "zstd") != 0) {
            r = kiln_error_set(err, 0, "'%s': layer '%s' is %s-compressed, which OCI images "
                                       "cannot carry",
                               src->what, de->layers[i], comp);
            break;
        }
        l->media_type = xstrdup(strcmp(comp, "gzip") == 0 ? MT_OCI_LAYER_GZIP : MT_OCI_LAYER_ZSTD);
        char diff[DIGEST_STR_LEN];
        r = layer_blob_diff_id(src->store, l->digest, diff, err);
        if (r == 0 && strcmp(diff, cfg.diff_ids[i]) != 0)
            r = kiln_error_set(err, 0, "'%s': layer '%s' uncompresses to %s, not diff_id %s",
                               src->what, de->layers[i], diff, cfg.diff_ids[i]);
    }
    image_config_free(&cfg);
    if (r == 0) {
        size_t mlen = 0;
        _cleanup_free_ char *mjson = manifest_to_json(&m, &mlen);
        memset(ret, 0, sizeof(*ret));
        r = store_blob_put(src->store, mjson, mlen, ret->digest, err);
        if (r == 0) {
            ret->media_type = xstrdup(MT_OCI_MANIFEST);
            ret->size = mlen;
            memcpy(ret_config, cdigest, DIGEST_STR_LEN);
        }
    }
    manifest_free(&m);
    return r;
}

/* ---- the import driver ------------------------------------------------------ */

struct import_req {
    const char *ref; /* tag / NAME:TAG to pick, or NULL */
    int index;       /* @N, or -1 */
    bool all;        /* every image (load) */
    const char *hint;
};

static void add_result(struct transport_image **res, size_t *n, const struct descriptor *m,
                       const char *cfg, char **names)
{
    /* one image under several names (several index entries): one result */
    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*res)[i].manifest.digest, m->digest) != 0)
            continue;
        for (size_t k = 0; names[k]; k++)
            if (!strv_contains((*res)[i].names, names[k]))
                strv_push(&(*res)[i].names, names[k]);
        strv_free(names);
        return;
    }
    *res = xreallocarray(*res, *n + 1, sizeof(**res));
    struct transport_image *t = &(*res)[(*n)++];
    memset(t, 0, sizeof(*t));
    descriptor_copy(&t->manifest, m);
    memcpy(t->config_digest, cfg, DIGEST_STR_LEN);
    t->names = names;
}

static int name_images(struct store *s, struct transport_image *imgs, size_t n,
                       struct kiln_error **err)
{
    for (size_t i = 0; i < n; i++) {
        if (!imgs[i].names[0]) {
            if (store_add_untagged(s, &imgs[i].manifest, err) < 0)
                return -1;
            continue;
        }
        for (size_t k = 0; imgs[i].names[k]; k++)
            if (store_tag(s, imgs[i].names[k], &imgs[i].manifest, err) < 0)
                return -1;
    }
    return 0;
}

static int import_from_oci(struct image_source *src, const struct import_req *q,
                           struct transport_image **res, size_t *n_res, struct kiln_error **err)
{
    struct oci_entry *ents = NULL;
    size_t n = 0;
    if (read_oci_index(src, &ents, &n, err) < 0)
        return -1;
    int r = 0;
    bool *pick = xcalloc(n + 1, sizeof(*pick));
    size_t picked = 0;
    if (q->index >= 0) {
        if ((size_t)q->index >= n)
            r = kiln_error_set(err, 0, "'%s': no image @%d (it holds %zu)", src->what, q->index,
                               n);
        else
            pick[q->index] = true, picked = 1;
    } else if (q->ref) {
        for (size_t i = 0; i < n; i++)
            if (ents[i].ref_name && strcmp(ents[i].ref_name, q->ref) == 0)
                pick[i] = true, picked++;
        if (picked == 0)
            r = kiln_error_set(err, 0, "'%s': no image named '%s'", src->what, q->ref);
        else if (picked > 1)
            r = kiln_error_set(err, 0, "'%s': more than one image named '%s'", src->what, q->ref);
    } else if (q->all) {
        for (size_t i = 0; i < n; i++)
            pick[i] = true, picked++;
    } else if (n == 1) {
        pick[0] = true, picked = 1;
    } else {
        r = kiln_error_set(err, 0, "'%s' holds %zu images: name one with :TAG or :@N", src->what,
                           n);
    }
    if (r == 0 && picked == 0)
        r = kiln_error_set(err, 0, "'%s': no images", src->what);
    for (size_t i = 0; i < n && r == 0; i++) {
        if (!pick[i])
            continue;
        struct descriptor m;
        char cfg[DIGEST_STR_LEN];
        r = import_oci(src, &ents[i].desc, 0, &m, cfg, err);
        if (r < 0)
            break;
        char **names = strv_new();
        char *nm = NULL;
        if (q->ref)
            nm = name_from_oci(q->ref, q->hint);
        else if (ents[i].containerd_name)
            nm = name_from_oci(ents[i].containerd_name, NULL);
        if (!nm && !q->ref)
            nm = name_from_oci(ents[i].ref_name, q->hint);
        if (nm)
            strv_push_take(&names, nm);
        add_result(res, n_res, &m, cfg, names);
        descriptor_free(&m);
    }
    free(pick);
    oci_entries_free(ents, n);
    return r;
}

static int import_from_docker(struct image_source *src, const struct import_req *q,
                              struct transport_image **res, size_t *n_res,
                              struct kiln_error **err)
{
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    if (source_read(src, "manifest.json", JSON_MAX_SIZE, &buf, &len, err) < 0)
        return -1;
    struct docker_entry *ents = NULL;
    size_t n = 0;
    if (docker_manifest_parse(buf, len, &ents, &n, err) < 0)
        return kiln_error_wrap(err, "'%s'", src->what);
    int r = 0;
    char **want_name = NULL;
    bool *pick = xcalloc(n + 1, sizeof(*pick));
    size_t picked = 0;
    if (q->index >= 0) {
        if ((size_t)q->index >= n)
            r = kiln_error_set(err, 0, "'%s': no image @%d (it holds %zu)", src->what, q->index,
                               n);
        else
            pick[q->index] = true, picked = 1;
    } else if (q->ref) {
        for (size_t i = 0; i < n; i++) {
            for (size_t k = 0; ents[i].tags[k]; k++) {
                char *nm = NULL;
                struct kiln_error *e = NULL;
                if (store_ref_name(ents[i].tags[k], &nm, &e) == 0 && strcmp(nm, q->ref) == 0 &&
                    !pick[i])
                    pick[i] = true, picked++;
                kiln_error_free(&e);
                free(nm);
            }
        }
        if (picked != 1)
            r = kiln_error_set(err, 0, "'%s': %s image named '%s'", src->what,
                               picked ? "more than one" : "no", q->ref);
        want_name = strv_new();
        strv_push(&want_name, q->ref);
    } else if (q->all) {
        for (size_t i = 0; i < n; i++)
            pick[i] = true, picked++;
    } else if (n == 1) {
        pick[0] = true, picked = 1;
    } else {
        r = kiln_error_set(err, 0, "'%s' holds %zu images: name one with :NAME:TAG or :@N",
                           src->what, n);
    }
    if (r == 0 && picked == 0)
        r = kiln_error_set(err, 0, "'%s': no images", src->what);
    for (size_t i = 0; i < n && r == 0; i++) {
        if (!pick[i])
            continue;
        struct descriptor m;
        char cfg[DIGEST_STR_LEN];
        r = import_docker(src, &ents[i], &m, cfg, err);
        if (r < 0)
            break;
        char **names = want_name ? strv_copy(want_name) : strv_new();
        for (size_t k = 0; !want_name && ents[i].tags[k]; k++) {
            char *nm = NULL;
            struct kiln_error *e = NULL;
            if (store_ref_name(ents[i].tags[k], &nm, &e) == 0) {
                if (!strv_contains(names, nm))
                    strv_push(&names, nm);
            } else {
                log_debug("%s: ignoring RepoTag '%s': %s", src->what, ents[i].tags[k], e->msg);
            }
            kiln_error_free(&e);
            free(nm);
        }
        add_result(res, n_res, &m, cfg, names);
        descriptor_free(&m);
    }
    strv_free(want_name);
    free(pick);
    docker_entries_free(ents, n);
    return r;
}

static int import_source(struct store *s, struct image_source *src, const struct import_req *q,
                         struct transport_image **ret, size_t *ret_n, struct kiln_error **err)
{
    struct transport_image *res = NULL;
    size_t n = 0;
    int r;
    if (source_exists(src, "manifest.json"))
        r = import_from_docker(src, q, &res, &n, err);
    else if (source_exists(src, "index.json"))
        r = import_from_oci(src, q, &res, &n, err);
    else
        r = kiln_error_set(err, 0, "'%s' is neither an OCI layout nor a docker archive "
                                   "(no index.json or manifest.json)",
                           src->what);
    /* the layers' contents are checked (extracted) before any name */
    for (size_t i = 0; i < n && r == 0; i++)
        r = store_trees_ensure_image(s, &res[i].manifest, err);
    if (r == 0)
        r = name_images(s, res, n, err);
    if (r < 0) {
        transport_images_free(res, n);
        return -1;
    }
    *ret = res;
    *ret_n = n;
    return 0;
}

static int open_archive_fd(const char *path, int *ret, struct kiln_error **err)
{
    if (strcmp(path, "-") == 0) {
        *ret = dup(STDIN_FILENO);
        if (*ret < 0)
            return kiln_error_set(err, errno, "stdin");
        return 0;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return kiln_error_set(err, errno, "open '%s'", path);
    *ret = fd;
    return 0;
}

int transport_import(struct store *s, const struct transport_ref *src,
                     struct descriptor *ret_manifest, struct kiln_error **err)
{
    if (src->kind == TRANSPORT_DOCKER)
        return kiln_error_set(err, 0, "docker:// images come from a registry (registry_pull)");
    int lockfd = -1;
    if (gc_lock_shared(s, &lockfd, err) < 0)
        return -1;
    struct image_source is;
    int r;
    if (src->kind == TRANSPORT_OCI) {
        r = source_open_dir(s, src->path, &is, err);
    } else {
        _cleanup_close_ int fd = -1;
        r = open_archive_fd(src->path, &fd, err);
        if (r == 0)
            r = source_read_archive(s, fd, src->path, &is, err);
    }
    if (r < 0) {
        gc_unlock(lockfd);
        return -1;
    }
    struct import_req q = {.ref = src->ref, .index = src->index, .all = false, .hint = src->path};
    struct transport_image *imgs = NULL;
    size_t n = 0;
    r = import_source(s, &is, &q, &imgs, &n, err);
    source_free(&is);
    gc_unlock(lockfd);
    if (r < 0)
        return -1;
    descriptor_copy(ret_manifest, &imgs[0].manifest);
    transport_images_free(imgs, n);
    return 0;
}

int transport_load_fd(struct store *s, int fd, const char *name_hint,
                      struct transport_image **ret, size_t *ret_n, struct kiln_error **err)
{
    int lockfd = -1;
    if (gc_lock_shared(s, &lockfd, err) < 0)
        return -1;
    struct image_source is;
    int r = source_read_archive(s, fd, name_hint ? name_hint : "stdin", &is, err);
    if (r == 0) {
        struct import_req q = {.index = -1, .all = true, .hint = name_hint};
        r = import_source(s, &is, &q, ret, ret_n, err);
        source_free(&is);
    }
    gc_unlock(lockfd);
    return r;
}
