/* Layer trees: trees/<hex of diff_id>, extracted once per store from the
 * layer blob, verified, synced and renamed into place atomically. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layers/image.h"
#include "layers/layer.h"
#include "layers/layer_internal.h"
#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/xalloc.h"

/* Sum of the id counts of a /proc/self/{uid,gid}_map. */
static uint64_t mapped_ids(const char *file)
{
    _cleanup_fclose_ FILE *f = fopen(file, "re");
    if (!f)
        return UINT32_MAX; /* no user namespaces: everything is "mapped" */
    unsigned long long in, out, count;
    uint64_t total = 0;
    while (fscanf(f, "%llu %llu %llu", &in, &out, &count) == 3)
        total += count;
    return total;
}

bool layers_single_id(void)
{
    return mapped_ids("/proc/self/uid_map") <= 1 || mapped_ids("/proc/self/gid_map") <= 1;
}

char *layer_tree_name(const char *diff_id)
{
    /* A tree extracted where only one id is mapped keeps owners in xattrs
     * and leaves files owned by kiln; where a range is mapped files are
     * chowned.  Neither is right for the other mode, so each has its own. */
    return xasprintf("%s%s", digest_hex(diff_id), layers_single_id() ? "-single" : "");
}

bool store_has_tree(struct store *s, const char *diff_id)
{
    if (!digest_is_valid(diff_id))
        return false;
    _cleanup_free_ char *name = layer_tree_name(diff_id);
    _cleanup_free_ char *rel = xasprintf("trees/%s", name);
    struct stat st;
    return fstatat(s->root_fd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

int tree_install(struct store *s, const char *tmp, int dfd, const char *diff_id,
                 struct tar_extract_result *res, char **ret_path, struct kiln_error **err)
{
    _cleanup_free_ char *name = layer_tree_name(diff_id);
    _cleanup_free_ char *rel = xasprintf("trees/%s", name);
    _cleanup_free_ char *abs = xasprintf("%s/%s", s->root, rel);
    int r = -1;
    if (fchmod(dfd, 0755) < 0) {
        r = kiln_error_set(err, errno, "layer: chmod '%s'", tmp);
        goto fail;
    }
    /* One syncfs instead of an fsync per file: the tree must be whole on
     * disk before its name says it exists. */
    if (syncfs(dfd) < 0) {
        r = kiln_error_set(err, errno, "layer: sync '%s'", tmp);
        goto fail;
    }
    if (res->owners.len > 0) {
        /* The side table goes first: a tree never exists without it.  It is
         * written beside this extraction's directory (a unique name), then
         * renamed. */
        _cleanup_free_ char *otmp = xasprintf("%s.owners", tmp);
        _cleanup_free_ char *orel = xasprintf("%s.owners", rel);
        _cleanup_close_ int ofd =
            open(otmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        int w = ofd < 0 ? -errno : fs_write_all(ofd, res->owners.buf, res->owners.len);
        if (w == 0 && fsync(ofd) < 0)
            w = -errno;
        if (w == 0 && renameat(AT_FDCWD, otmp, s->root_fd, orel) < 0)
            w = -errno;
        if (w < 0) {
            unlink(otmp);
            r = kiln_error_set(err, -w, "layer: write '%s'", orel);
            goto fail;
        }
    }
    if (renameat2(AT_FDCWD, tmp, s->root_fd, rel, RENAME_NOREPLACE) < 0) {
        if (errno == EEXIST || errno == ENOTEMPTY) {
            /* Another build extracted it first: theirs is as good. */
            log_debug("layer %s: extracted concurrently, keeping the other copy", diff_id);
            fs_rm_rf(tmp);
            if (ret_path)
                *ret_path = TAKE_PTR(abs);
            return 0;
        }
        r = kiln_error_set(err, errno, "layer: rename '%s' to '%s'", tmp, rel);
        goto fail;
    }
    fs_fsync_dir_at(s->root_fd, "trees");
    if (ret_path)
        *ret_path = TAKE_PTR(abs);
    return 0;
fail:
    fs_rm_rf(tmp);
    return r;
}

int store_tree_ensure(struct store *s, const struct descriptor *layer, const char *diff_id,
                      char **ret_path, struct kiln_error **err)
{
    if (!digest_is_valid(diff_id))
        return kiln_error_set(err, EINVAL, "layer: invalid diff_id '%s'", diff_id);
    _cleanup_free_ char *name = layer_tree_name(diff_id);
    _cleanup_free_ char *rel = xasprintf("trees/%s", name);
    _cleanup_free_ char *abs = xasprintf("%s/%s", s->root, rel);
    if (store_has_tree(s, diff_id)) {
        *ret_path = TAKE_PTR(abs);
        return 0;
    }

    _cleanup_close_ int blob_fd = -1;
    if (store_blob_open(s, layer->digest, &blob_fd, err) < 0)
        return kiln_error_wrap(err, "layer %s", diff_id);
    _cleanup_free_ char *tmp = NULL;
    if (store_mkdtemp(s, "tree", &tmp, err) < 0)
        return -1;
    _cleanup_close_ int dfd = open(tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) {
        int e = errno;
        fs_rm_rf(tmp);
        return kiln_error_set(err, e, "layer: open '%s'", tmp);
    }
    struct tar_extract_result res;
    int r = tar_extract(blob_fd, dfd, &res, err);
    if (r < 0) {
        kiln_error_wrap(err, "extract layer %s", layer->digest);
        goto fail;
    }
    if (strcmp(res.blob_digest, layer->digest) != 0) {
        r = kiln_error_set(err, 0, "layer %s: blob content hashes to %s", layer->digest,
                           res.blob_digest);
        goto fail;
    }
    if (strcmp(res.diff_id, diff_id) != 0) {
        r = kiln_error_set(err, 0, "layer %s: diff_id mismatch: expected %s, got %s",
                           layer->digest, diff_id, res.diff_id);
        goto fail;
    }
    if (res.skipped)
        log_debug("layer %s: %llu device nodes or sockets skipped", layer->digest,
                  (unsigned long long)res.skipped);
    r = tree_install(s, tmp, dfd, diff_id, &res, ret_path, err);
    tar_extract_result_release(&res);
    return r;
fail:
    tar_extract_result_release(&res);
    fs_rm_rf(tmp);
    return -1;
}

int store_trees_ensure_image(struct store *s, const struct descriptor *manifest,
                             struct kiln_error **err)
{
    struct image img;
    if (image_load(s, manifest, &img, err) < 0)
        return -1;
    int r = 0;
    for (size_t i = 0; i < img.manifest.n_layers && r == 0; i++) {
        char *path = NULL;
        r = store_tree_ensure(s, &img.manifest.layers[i], img.config.diff_ids[i], &path, err);
        free(path);
    }
    image_free(&img);
    return r;
}
