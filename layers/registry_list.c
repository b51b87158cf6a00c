/* Manifest lists (Docker) and image indexes (OCI): parsing and choosing the
 * entry for a platform. */
#include <stdlib.h>
#include <string.h>

#include "layers/registry_internal.h"
#include "lib/json.h"
#include "lib/platform.h"
#include "lib/xalloc.h"

#define INDEX_ENTRIES_MAX 4096
#define PLATFORM_FIELD_MAX 64

void reg_platform_free(struct reg_platform *p)
{
    free(p->os);
    free(p->arch);
    free(p->variant);
    memset(p, 0, sizeof(*p));
}

/* Architecture aliases people and uname use, to the OCI names. */
static void normalize_arch(char **arch, char **variant)
{
    static const struct {
        const char *alias, *arch, *variant;
    } map[] = {
        {"x86_64", "amd64", NULL},  {"x86-64", "amd64", NULL}, {"aarch64", "arm64", NULL},
        {"armhf", "arm", "v7"},     {"armel", "arm", "v6"},    {"armv7l", "arm", "v7"},
        {"armv6l", "arm", "v6"},    {"i386", "386", NULL},     {"i686", "386", NULL},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (strcmp(*arch, map[i].alias) != 0)
            continue;
        free(*arch);
        *arch = xstrdup(map[i].arch);
        if (map[i].variant && !*variant)
            *variant = xstrdup(map[i].variant);
        break;
    }
    if (strcmp(*arch, "arm") == 0 && !*variant)
        *variant = xstrdup("v7"); /* what "arm" means without a variant */
    if (strcmp(*arch, "arm64") == 0 && *variant && strcmp(*variant, "v8") == 0) {
        free(*variant); /* arm64's only variant: the same as none */
        *variant = NULL;
    }
}

static bool valid_field(const char *s, size_t n)
{
    if (n == 0 || n > PLATFORM_FIELD_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '.'))
            return false;
    }
    return true;
}

int reg_platform_parse(const char *s, struct reg_platform *ret, struct kiln_error **err)
{
    memset(ret, 0, sizeof(*ret));
    const char *parts[4] = {0};
    size_t lens[4] = {0};
    size_t n = 0;
    for (const char *p = s;;) {
        const char *slash = strchr(p, '/');
        if (n >= 3)
            return kiln_error_set(err, 0, "invalid platform '%s': want OS/ARCH[/VARIANT]", s);
        parts[n] = p;
        lens[n] = slash ? (size_t)(slash - p) : strlen(p);
        if (!valid_field(parts[n], lens[n]))
            return kiln_error_set(err, 0, "invalid platform '%s': want OS/ARCH[/VARIANT]", s);
        n++;
        if (!slash)
            break;
        p = slash + 1;
    }
    if (n < 2)
        return kiln_error_set(err, 0, "invalid platform '%s': want OS/ARCH[/VARIANT]", s);
    ret->os = xstrndup(parts[0], lens[0]);
    ret->arch = xstrndup(parts[1], lens[1]);
    ret->variant = n == 3 ? xstrndup(parts[2], lens[2]) : NULL;
    normalize_arch(&ret->arch, &ret->variant);
    return 0;
}

void reg_platform_host(struct reg_platform *ret)
{
    ret->os = xstrdup(platform_os());
    ret->arch = xstrdup(platform_arch());
    ret->variant = platform_variant()[0] ? xstrdup(platform_variant()) : NULL;
    normalize_arch(&ret->arch, &ret->variant);
}

char *reg_platform_string(const struct reg_platform *p)
{
    return xasprintf("%s/%s%s%s", p->os ? p->os : "?", p->arch ? p->arch : "?",
                     p->variant ? "/" : "", p->variant ? p->variant : "");
}

bool reg_media_type_is_index(const char *mt)
{
    return mt && (strcmp(mt, MT_OCI_INDEX) == 0 || strcmp(mt, MT_DOCKER_MANIFEST_LIST) == 0);
}

bool reg_media_type_is_manifest(const char *mt)
{
    return mt && (strcmp(mt, MT_OCI_MANIFEST) == 0 || strcmp(mt, MT_DOCKER_MANIFEST) == 0);
}

void reg_index_free(struct reg_index_entry *e, size_t n)
{
    for (size_t i = 0; e && i < n; i++) {
        free(e[i].desc.media_type);
        reg_platform_free(&e[i].platform);
    }
    free(e);
}

int reg_index_parse(const char *buf, size_t len, struct reg_index_entry **ret, size_t *ret_n,
                    struct kiln_error **err)
{
    yajl_val root = NULL;
    if (len > REG_MANIFEST_MAX)
        return kiln_error_set(err, 0, "image index too large (%zu bytes)", len);
    if (json_parse(buf, len, &root, err) < 0)
        return kiln_error_wrap(err, "image index");
    int64_t sv = 0;
    yajl_val arr = json_get_arr(root, "manifests");
    if (!json_get_int(root, "schemaVersion", &sv) || sv != 2 || !arr) {
        yajl_tree_free(root);
        return kiln_error_set(err, 0, "image index: not a schemaVersion 2 index");
    }
    size_t n = arr->u.array.len;
    if (n > INDEX_ENTRIES_MAX) {
        yajl_tree_free(root);
        return kiln_error_set(err, 0, "image index: too many entries (%zu)", n);
    }
    struct reg_index_entry *v = xcalloc(n + 1, sizeof(*v));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        yajl_val m = arr->u.array.values[i];
        const char *mt = json_get_str(m, "mediaType");
        const char *dg = json_get_str(m, "digest");
        int64_t size = -1;
        if (!dg || !digest_is_valid(dg) || !json_get_int(m, "size", &size) || size < 0) {
            reg_index_free(v, k);
            yajl_tree_free(root);
            return kiln_error_set(err, 0, "image index: entry %zu: missing or invalid digest/size",
                                  i);
        }
        struct reg_index_entry *e = &v[k++];
        e->desc.media_type = xstrdup(mt ? mt : "");
        memcpy(e->desc.digest, dg, DIGEST_STR_LEN);
        e->desc.size = (uint64_t)size;
        yajl_val plat = json_get_obj(m, "platform");
        const char *os = json_get_str(plat, "os"), *arch = json_get_str(plat, "architecture"),
                   *var = json_get_str(plat, "variant");
        if (os && arch && strlen(os) <= PLATFORM_FIELD_MAX && strlen(arch) <= PLATFORM_FIELD_MAX) {
            e->platform.os = xstrdup(os);
            e->platform.arch = xstrdup(arch);
            if (var && *var && strlen(var) <= PLATFORM_FIELD_MAX)
                e->platform.variant = xstrdup(var);
            normalize_arch(&e->platform.arch, &e->platform.variant);
        }
    }
    yajl_tree_free(root);
    *ret = v;
    *ret_n = k;
    return 0;
}

int reg_index_select(const struct reg_index_entry *e, size_t n, const struct reg_platform *want)
{
    int loose = -1;
    for (size_t i = 0; i < n; i++) {
        const struct reg_platform *p = &e[i].platform;
        if (!p->os || !p->arch)
            continue; /* attestations and other platform-less entries */
        if (!reg_media_type_is_manifest(e[i].desc.media_type) && e[i].desc.media_type[0])
            continue;
        if (strcmp(p->os, want->os) != 0 || strcmp(p->arch, want->arch) != 0)
            continue;
        bool pv = p->variant != NULL, wv = want->variant != NULL;
        if (pv == wv && (!pv || strcmp(p->variant, want->variant) == 0))
            return (int)i; /* exact */
        if (loose < 0 && (!pv || !wv))
            loose = (int)i; /* one side does not say */
    }
    return loose;
}

char *reg_manifest_sniff(const char *buf, size_t len)
{
    yajl_val root = NULL;
    struct kiln_error *err = NULL;
    if (json_parse(buf, len, &root, &err) < 0) {
        kiln_error_free(&err);
        return NULL;
    }
    char *out = NULL;
    int64_t sv = 0;
    const char *mt = json_get_str(root, "mediaType");
    if (json_get_int(root, "schemaVersion", &sv) && sv == 2) {
        if (mt)
            out = xstrdup(mt);
        else if (json_get_arr(root, "manifests"))
            out = xstrdup(MT_OCI_INDEX);
        else if (json_get_obj(root, "config"))
            out = xstrdup(MT_OCI_MANIFEST);
    }
    yajl_tree_free(root);
    return out;
}
