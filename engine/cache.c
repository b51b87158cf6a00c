#include "engine/cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/json.h"
#include "lib/xalloc.h"

void cache_key_begin(struct cache_key *k, const char *parent)
{
    sha256_init(&k->h);
    cache_key_add_str(k, "kiln-cache-v2", parent ? parent : "");
}

void cache_key_add(struct cache_key *k, const char *field, const void *data, size_t len)
{
    uint64_t fl = strlen(field), dl = len;
    sha256_update(&k->h, &fl, sizeof(fl));
    sha256_update(&k->h, field, fl);
    sha256_update(&k->h, &dl, sizeof(dl));
    sha256_update(&k->h, data, len);
}

void cache_key_add_str(struct cache_key *k, const char *field, const char *s)
{
    cache_key_add(k, field, s ? s : "", s ? strlen(s) : 0);
}

void cache_key_add_strv(struct cache_key *k, const char *field, char *const *v)
{
    cache_key_add_int(k, field, (int64_t)strv_len(v));
    for (size_t i = 0; v && v[i]; i++)
        cache_key_add_str(k, field, v[i]);
}

void cache_key_add_int(struct cache_key *k, const char *field, int64_t v)
{
    cache_key_add(k, field, &v, sizeof(v));
}

void cache_key_end(struct cache_key *k, char out[DIGEST_STR_LEN])
{
    sha256_final_digest(&k->h, out);
}

void cache_record_free(struct cache_record *r)
{
    free(r->layer.media_type);
    free(r->created);
    memset(r, 0, sizeof(*r));
}

int cache_record_to_json(const struct cache_record *rec, char **ret, size_t *ret_len)
{
    struct json_gen j;
    json_gen_init(&j, false);
    json_obj_open(&j);
    json_key(&j, "layer");
    json_obj_open(&j);
    json_kv_str(&j, "mediaType", rec->layer.media_type);
    json_kv_str(&j, "digest", rec->layer.digest);
    json_key(&j, "size");
    json_int(&j, (int64_t)rec->layer.size);
    json_obj_close(&j);
    json_kv_str(&j, "diff_id", rec->diff_id);
    json_kv_str(&j, "created", rec->created);
    json_obj_close(&j);
    *ret = json_gen_take(&j, ret_len);
    json_gen_free(&j);
    return 0;
}

int cache_record_parse(const char *buf, size_t len, struct cache_record *rec,
                       struct kiln_error **err)
{
    yajl_val root = NULL;
    if (json_parse(buf, len, &root, err) < 0)
        return kiln_error_wrap(err, "cache record");
    memset(rec, 0, sizeof(*rec));
    yajl_val layer = json_get_obj(root, "layer");
    const char *mt = json_get_str(layer, "mediaType");
    const char *dg = json_get_str(layer, "digest");
    const char *diff = json_get_str(root, "diff_id");
    const char *created = json_get_str(root, "created");
    int64_t size = -1;
    if (!mt || !dg || !digest_is_valid(dg) || !diff || !digest_is_valid(diff) ||
        !json_get_int(layer, "size", &size) || size < 0) {
        yajl_tree_free(root);
        return kiln_error_set(err, 0, "cache record: missing or invalid fields");
    }
    rec->layer.media_type = xstrdup(mt);
    memcpy(rec->layer.digest, dg, DIGEST_STR_LEN);
    rec->layer.size = (uint64_t)size;
    memcpy(rec->diff_id, diff, DIGEST_STR_LEN);
    rec->created = created ? xstrdup(created) : NULL;
    yajl_tree_free(root);
    return 0;
}

static char *record_path(const char *key)
{
    return xasprintf("cache/%s", digest_hex(key));
}

int cache_lookup(struct store *s, const char *key, struct cache_record *ret)
{
    _cleanup_free_ char *path = record_path(key);
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    int r = fs_read_file_at(s->root_fd, path, 64 * 1024, &buf, &len);
    if (r < 0)
        return -ENOENT;
    struct kiln_error *err = NULL;
    if (cache_record_parse(buf, len, ret, &err) < 0) {
        kiln_error_free(&err);
        return -ENOENT;
    }
    if (!store_has_blob(s, ret->layer.digest)) {
        cache_record_free(ret);
        return -ENOENT;
    }
    return 0;
}

int cache_save(struct store *s, const char *key, const struct cache_record *rec,
               struct kiln_error **err)
{
    char *json = NULL;
    size_t len = 0;
    cache_record_to_json(rec, &json, &len);
    _cleanup_free_ char *path = record_path(key);
    /* no fsync: a lost record only costs a rebuild of that step */
    int r = fs_write_atomic_at(s->root_fd, path, json, len, 0600, false);
    free(json);
    if (r < 0)
        return kiln_error_set(err, -r, "save cache record");
    return 0;
}

int cache_list(struct store *s, char ***ret, struct kiln_error **err)
{
    int fd = openat(s->root_fd, "cache", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return kiln_error_set(err, errno, "open cache directory");
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return kiln_error_set(err, errno, "open cache directory");
    }
    char **v = strv_new();
    struct dirent *de;
    while ((de = readdir(d))) {
        _cleanup_free_ char *digest = xasprintf("sha256:%s", de->d_name);
        if (digest_is_valid(digest))
            strv_push(&v, digest);
    }
    closedir(d);
    *ret = v;
    return 0;
}
