/* Exports: images of the store into an OCI layout directory, an OCI
 * archive, or a docker archive (see layers/transport.h for the formats). */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layers/archive.h"
#include "layers/gc.h"
#include "layers/image.h"
#include "layers/reference.h"
#include "layers/refs.h"
#include "layers/transport.h"
#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/json.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

#define COPY_BUF (256u * 1024)
#define ANNOT_CONTAINERD_NAME "io.containerd.image.name"

struct export_item {
    struct descriptor desc;
    struct manifest m;
    char **names; /* familiar */
};

static void items_free(struct export_item *it, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        descriptor_free(&it[i].desc);
        manifest_free(&it[i].m);
        strv_free(it[i].names);
    }
    free(it);
}

static int collect(struct store *s, const struct descriptor *manifests, char *const *names,
                   size_t n, struct export_item **ret, size_t *ret_n, struct kiln_error **err)
{
    struct export_item *it = xcalloc(n + 1, sizeof(*it));
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        struct export_item *e = NULL;
        for (size_t k = 0; k < m; k++)
            if (strcmp(it[k].desc.digest, manifests[i].digest) == 0)
                e = &it[k];
        if (!e) {
            e = &it[m];
            _cleanup_free_ char *buf = NULL;
            size_t len = 0;
            if (store_blob_read(s, manifests[i].digest, JSON_MAX_SIZE, &buf, &len, err) < 0 ||
                manifest_parse(buf, len, &e->m, err) < 0) {
                items_free(it, m);
                return kiln_error_wrap(err, "export %s", manifests[i].digest);
            }
            memset(&e->desc, 0, sizeof(e->desc));
            memcpy(e->desc.digest, manifests[i].digest, DIGEST_STR_LEN);
            e->desc.size = len;
            e->desc.media_type = xstrdup(e->m.media_type ? e->m.media_type : MT_OCI_MANIFEST);
            e->names = strv_new();
            m++;
        }
        if (names && names[i]) {
            char *nm = NULL;
            if (store_ref_name(names[i], &nm, err) < 0) {
                items_free(it, m);
                return -1;
            }
            if (!strv_contains(e->names, nm))
                strv_push(&e->names, nm);
            free(nm);
        }
    }
    *ret = it;
    *ret_n = m;
    return 0;
}

/* Every blob of the items, once, sorted. */
static char **blob_list(const struct export_item *it, size_t n)
{
    char **v = strv_new();
    for (size_t i = 0; i < n; i++) {
        if (!strv_contains(v, it[i].desc.digest))
            strv_push(&v, it[i].desc.digest);
        if (!strv_contains(v, it[i].m.config.digest))
            strv_push(&v, it[i].m.config.digest);
        for (size_t k = 0; k < it[i].m.n_layers; k++)
            if (!strv_contains(v, it[i].m.layers[k].digest))
                strv_push(&v, it[i].m.layers[k].digest);
    }
    size_t len = strv_len(v);
    for (size_t i = 1; i < len; i++)
        for (size_t k = i; k > 0 && strcmp(v[k - 1], v[k]) > 0; k--) {
            char *t = v[k];
            v[k] = v[k - 1];
            v[k - 1] = t;
        }
    return v;
}

static char *full_name(const char *familiar)
{
    struct image_ref r;
    struct kiln_error *e = NULL;
    if (ref_parse(familiar, &r, &e) < 0) {
        kiln_error_free(&e);
        return xstrdup(familiar);
    }
    char *out = ref_full(&r);
    ref_free(&r);
    return out;
}

static void gen_entry(struct json_gen *j, const struct export_item *e, const char *refname,
                      const char *containerd)
{
    json_obj_open(j);
    json_descriptor_fields(j, &e->desc);
    if (refname || containerd) {
        json_key(j, "annotations");
        json_obj_open(j);
        json_kv_str(j, ANNOT_CONTAINERD_NAME, containerd);
        json_kv_str(j, ANNOT_REF_NAME, refname);
        json_obj_close(j);
    }
    json_obj_close(j);
}

/* The index.json entries for the items: one per name (docker's way: the
 * full name, and the tag as ref.name), or one with the TAG asked for, or
 * one without a name. */
static void gen_entries(struct json_gen *j, const struct export_item *it, size_t n,
                        const char *tag)
{
    for (size_t i = 0; i < n; i++) {
        if (tag) {
            gen_entry(j, &it[i], tag, NULL);
            continue;
        }
        if (!it[i].names[0]) {
            gen_entry(j, &it[i], NULL, NULL);
            continue;
        }
        for (size_t k = 0; it[i].names[k]; k++) {
            struct image_ref r;
            struct kiln_error *e = NULL;
            if (ref_parse(it[i].names[k], &r, &e) < 0) {
                kiln_error_free(&e);
                gen_entry(j, &it[i], it[i].names[k], NULL);
                continue;
            }
            _cleanup_free_ char *full = ref_full(&r);
            gen_entry(j, &it[i], r.tag ? r.tag : "latest", full);
            ref_free(&r);
        }
    }
}

static char *index_json(const struct export_item *it, size_t n, const char *tag, size_t *ret_len)
{
    struct json_gen j;
    json_gen_init(&j, false);
    json_oci_index_open(&j);
    gen_entries(&j, it, n, tag);
    json_oci_index_close(&j);
    char *out = json_gen_take(&j, ret_len);
    json_gen_free(&j);
    return out;
}

static char *docker_manifest_json(const struct export_item *it, size_t n, size_t *ret_len)
{
    struct json_gen j;
    json_gen_init(&j, false);
    json_arr_open(&j);
    for (size_t i = 0; i < n; i++) {
        json_obj_open(&j);
        _cleanup_free_ char *cp = xasprintf("blobs/sha256/%s", digest_hex(it[i].m.config.digest));
        json_kv_str(&j, "Config", cp);
        json_key(&j, "RepoTags");
        json_arr_open(&j);
        for (size_t k = 0; it[i].names[k]; k++) {
            _cleanup_free_ char *f = full_name(it[i].names[k]);
            json_str(&j, f);
        }
        json_arr_close(&j);
        json_key(&j, "Layers");
        json_arr_open(&j);
        for (size_t k = 0; k < it[i].m.n_layers; k++) {
            _cleanup_free_ char *lp =
                xasprintf("blobs/sha256/%s", digest_hex(it[i].m.layers[k].digest));
            json_str(&j, lp);
        }
        json_arr_close(&j);
        json_obj_close(&j);
    }
    json_arr_close(&j);
    char *out = json_gen_take(&j, ret_len);
    json_gen_free(&j);
    return out;
}

/* ---- tar output ------------------------------------------------------------ */

static struct archive_entry *new_entry(const char *path, mode_t type, mode_t perm, int64_t size)
{
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, path);
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, perm);
    archive_entry_set_size(e, size);
    archive_entry_set_mtime(e, 0, 0);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    return e;
}

static int tar_dir(struct archive *a, const char *path, struct kiln_error **err)
{
    struct archive_entry *e = new_entry(path, AE_IFDIR, 0755, 0);
    int r = archive_write_header(a, e);
    archive_entry_free(e);
    if (r != ARCHIVE_OK)
        return kiln_error_set(err, 0, "write archive: %s", archive_error_string(a));
    return 0;
}

static int tar_bytes(struct archive *a, const char *path, const void *data, size_t len,
                     struct kiln_error **err)
{
    struct archive_entry *e = new_entry(path, AE_IFREG, 0644, (int64_t)len);
    int r = archive_write_header(a, e);
    archive_entry_free(e);
    if (r != ARCHIVE_OK || (len && archive_write_data(a, data, len) != (la_ssize_t)len))
        return kiln_error_set(err, 0, "write archive: %s", archive_error_string(a));
    return 0;
}

/* Streams a store blob into the archive, checking its digest on the way. */
static int tar_blob(struct archive *a, struct store *s, const char *digest,
                    struct kiln_error **err)
{
    _cleanup_close_ int fd = -1;
    if (store_blob_open(s, digest, &fd, err) < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return kiln_error_set(err, errno, "stat blob %s", digest);
    _cleanup_free_ char *path = xasprintf("blobs/sha256/%s", digest_hex(digest));
    struct archive_entry *e = new_entry(path, AE_IFREG, 0644, st.st_size);
    int r = archive_write_header(a, e);
    archive_entry_free(e);
    if (r != ARCHIVE_OK)
        return kiln_error_set(err, 0, "write archive: %s", archive_error_string(a));
    struct sha256 h;
    sha256_init(&h);
    _cleanup_free_ char *buf = xmalloc(COPY_BUF);
    uint64_t total = 0;
    for (;;) {
        ssize_t n = read(fd, buf, COPY_BUF);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e2 = errno;
            sha256_abort(&h);
            return kiln_error_set(err, e2, "read blob %s", digest);
        }
        if (n == 0)
            break;
        sha256_update(&h, buf, (size_t)n);
        total += (uint64_t)n;
        if (archive_write_data(a, buf, (size_t)n) != n) {
            sha256_abort(&h);
            return kiln_error_set(err, 0, "write archive: %s", archive_error_string(a));
        }
    }
    char got[DIGEST_STR_LEN];
    sha256_final_digest(&h, got);
    if (strcmp(got, digest) != 0 || total != (uint64_t)st.st_size)
        return kiln_error_set(err, 0, "store blob %s is corrupt (content hashes to %s)", digest,
                              got);
    return 0;
}

static int write_archive(struct store *s, const struct export_item *it, size_t n,
                         enum transport_kind kind, const char *tag, int fd,
                         struct kiln_error **err)
{
    _cleanup_archive_write_ struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    if (archive_write_open_fd(a, fd) != ARCHIVE_OK)
        return kiln_error_set(err, 0, "write archive: %s", archive_error_string(a));
    _cleanup_strv_ char **blobs = blob_list(it, n);
    size_t ilen = 0, mlen = 0;
    _cleanup_free_ char *index = index_json(it, n, tag, &ilen);
    _cleanup_free_ char *dman =
        kind == TRANSPORT_DOCKER_ARCHIVE ? docker_manifest_json(it, n, &mlen) : NULL;
    if (tar_dir(a, "blobs", err) < 0 || tar_dir(a, "blobs/sha256", err) < 0)
        return -1;
    for (size_t i = 0; blobs[i]; i++)
        if (tar_blob(a, s, blobs[i], err) < 0)
            return -1;
    if (tar_bytes(a, "index.json", index, ilen, err) < 0)
        return -1;
    if (dman && tar_bytes(a, "manifest.json", dman, mlen, err) < 0)
        return -1;
    if (tar_bytes(a, "oci-layout", OCI_LAYOUT_JSON, strlen(OCI_LAYOUT_JSON), err) < 0)
        return -1;
    if (archive_write_close(a) != ARCHIVE_OK)
        return kiln_error_set(err, 0, "write archive: %s", archive_error_string(a));
    return 0;
}

/* ---- OCI layout directories ------------------------------------------------ */

static void gen_yajl(struct json_gen *j, yajl_val v)
{
    if (YAJL_IS_STRING(v)) {
        json_str(j, v->u.string);
    } else if (YAJL_IS_NUMBER(v)) {
        yajl_gen_number(j->g, v->u.number.r, strlen(v->u.number.r));
    } else if (YAJL_IS_OBJECT(v)) {
        json_obj_open(j);
        for (size_t i = 0; i < v->u.object.len; i++) {
            json_key(j, v->u.object.keys[i]);
            gen_yajl(j, v->u.object.values[i]);
        }
        json_obj_close(j);
    } else if (YAJL_IS_ARRAY(v)) {
        json_arr_open(j);
        for (size_t i = 0; i < v->u.array.len; i++)
            gen_yajl(j, v->u.array.values[i]);
        json_arr_close(j);
    } else if (YAJL_IS_TRUE(v)) {
        json_bool(j, true);
    } else if (YAJL_IS_FALSE(v)) {
        json_bool(j, false);
    } else {
        json_null(j);
    }
}

/* Copies a store blob into dir/blobs/sha256 (verified; skipped when a file
 * of the right size is there). */
static int copy_blob_to_dir(struct store *s, int blobs_dirfd, const char *digest,
                            struct kiln_error **err)
{
    const char *hex = digest_hex(digest);
    _cleanup_close_ int in = -1;
    if (store_blob_open(s, digest, &in, err) < 0)
        return -1;
    struct stat st, dst;
    if (fstat(in, &st) < 0)
        return kiln_error_set(err, errno, "stat blob %s", digest);
    if (fstatat(blobs_dirfd, hex, &dst, 0) == 0 && dst.st_size == st.st_size)
        return 0;
    _cleanup_free_ char *tmp = xasprintf(".tmp-%s-%d", hex, (int)getpid());
    _cleanup_close_ int out =
        openat(blobs_dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0)
        return kiln_error_set(err, errno, "create blob %s", digest);
    struct sha256 h;
    sha256_init(&h);
    _cleanup_free_ char *buf = xmalloc(COPY_BUF);
    int r = 0;
    for (;;) {
        ssize_t n = read(in, buf, COPY_BUF);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = kiln_error_set(err, errno, "read blob %s", digest);
            break;
        }
        if (n == 0)
            break;
        sha256_update(&h, buf, (size_t)n);
        int w = fs_write_all(out, buf, (size_t)n);
        if (w < 0) {
            r = kiln_error_set(err, -w, "write blob %s", digest);
            break;
        }
    }
    char got[DIGEST_STR_LEN];
    sha256_final_digest(&h, got);
    if (r == 0 && strcmp(got, digest) != 0)
        r = kiln_error_set(err, 0, "store blob %s is corrupt (content hashes to %s)", digest, got);
    if (r == 0 && fsync(out) < 0)
        r = kiln_error_set(err, errno, "fsync blob %s", digest);
    if (r == 0 && renameat(blobs_dirfd, tmp, blobs_dirfd, hex) < 0)
        r = kiln_error_set(err, errno, "rename blob %s", digest);
    if (r < 0)
        unlinkat(blobs_dirfd, tmp, 0);
    return r;
}

static int export_dir(struct store *s, const struct export_item *it, size_t n, const char *dir,
                      const char *tag, struct kiln_error **err)
{
    int r = fs_mkdir_p(dir, 0755);
    if (r < 0)
        return kiln_error_set(err, -r, "create '%s'", dir);
    _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return kiln_error_set(err, errno, "open '%s'", dir);
    if (faccessat(dfd, "oci-layout", F_OK, 0) < 0) {
        _cleanup_dir_ DIR *d = opendir(dir);
        struct dirent *de;
        while (d && (de = readdir(d)))
            if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                return kiln_error_set(err, 0, "'%s' is not empty and not an OCI layout", dir);
        r = fs_write_atomic_at(dfd, "oci-layout", OCI_LAYOUT_JSON, strlen(OCI_LAYOUT_JSON), 0644,
                               true);
        if (r < 0)
            return kiln_error_set(err, -r, "write '%s/oci-layout'", dir);
    }
    r = fs_mkdir_p_at(dfd, "blobs/sha256", 0755);
    if (r < 0)
        return kiln_error_set(err, -r, "create '%s/blobs/sha256'", dir);
    _cleanup_close_ int bfd = openat(dfd, "blobs/sha256", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (bfd < 0)
        return kiln_error_set(err, errno, "open '%s/blobs/sha256'", dir);
    _cleanup_strv_ char **blobs = blob_list(it, n);
    for (size_t i = 0; blobs[i]; i++)
        if (copy_blob_to_dir(s, bfd, blobs[i], err) < 0)
            return kiln_error_wrap(err, "'%s'", dir);

    /* index.json: the old entries, minus those whose names we give again */
    size_t nlen = 0;
    _cleanup_free_ char *fresh = index_json(it, n, tag, &nlen);
    yajl_val newv = NULL, oldv = NULL;
    if (json_parse(fresh, nlen, &newv, err) < 0)
        return -1;
    _cleanup_free_ char *old = NULL;
    size_t olen = 0;
    r = fs_read_file_at(dfd, "index.json", JSON_MAX_SIZE, &old, &olen);
    if (r == 0 && json_parse(old, olen, &oldv, err) < 0) {
        yajl_tree_free(newv);
        return kiln_error_wrap(err, "'%s/index.json'", dir);
    }
    if (r < 0 && r != -ENOENT) {
        yajl_tree_free(newv);
        return kiln_error_set(err, -r, "read '%s/index.json'", dir);
    }
    yajl_val newm = json_get_arr(newv, "manifests");
    yajl_val oldm = json_get_arr(oldv, "manifests");
    struct json_gen j;
    json_gen_init(&j, false);
    json_oci_index_open(&j);
    for (size_t i = 0; oldm && i < oldm->u.array.len; i++) {
        yajl_val e = oldm->u.array.values[i];
        const char *on = json_get_str(json_get_obj(e, "annotations"), ANNOT_REF_NAME);
        bool replaced = false;
        for (size_t k = 0; on && newm && k < newm->u.array.len; k++) {
            const char *nn =
                json_get_str(json_get_obj(newm->u.array.values[k], "annotations"), ANNOT_REF_NAME);
            replaced |= nn && strcmp(nn, on) == 0;
        }
        if (!replaced)
            gen_yajl(&j, e);
    }
    for (size_t k = 0; newm && k < newm->u.array.len; k++)
        gen_yajl(&j, newm->u.array.values[k]);
    json_oci_index_close(&j);
    size_t len = 0;
    const char *buf = json_gen_buf(&j, &len);
    r = fs_write_atomic_at(dfd, "index.json", buf, len, 0644, true);
    json_gen_free(&j);
    yajl_tree_free(newv);
    yajl_tree_free(oldv);
    if (r < 0)
        return kiln_error_set(err, -r, "write '%s/index.json'", dir);
    return 0;
}

/* ---- entry points ----------------------------------------------------------- */

/* Writes beside the target, then renames: a failed save leaves no half file. */
static int write_archive_file(struct store *s, const struct export_item *it, size_t n,
                              enum transport_kind kind, const char *tag, const char *path,
                              struct kiln_error **err)
{
    _cleanup_free_ char *tmp = xasprintf("%s.tmp-XXXXXX", path);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return kiln_error_set(err, errno, "create '%s'", path);
    mode_t um = umask(0);
    umask(um);
    if (fchmod(fd, 0666 & ~um) < 0) {
        /* the file stays 0600: harmless */
    }
    int r = write_archive(s, it, n, kind, tag, fd, err);
    if (r == 0 && fsync(fd) < 0)
        r = kiln_error_set(err, errno, "write '%s'", path);
    if (close(fd) < 0 && r == 0)
        r = kiln_error_set(err, errno, "write '%s'", path);
    if (r == 0 && rename(tmp, path) < 0)
        r = kiln_error_set(err, errno, "rename to '%s'", path);
    if (r < 0)
        unlink(tmp);
    return r;
}

/* (dst->index, "@N", only selects among the images of a source.) */
static int check_tag_count(const struct transport_ref *dst, size_t n, struct kiln_error **err)
{
    if (dst->ref && n != 1)
        return kiln_error_set(err, 0, "a destination name fits one image, not %zu", n);
    return 0;
}

int transport_export_fd(struct store *s, const struct descriptor *manifests, char *const *names,
                        size_t n, enum transport_kind kind, int fd, struct kiln_error **err)
{
    if (kind != TRANSPORT_OCI_ARCHIVE && kind != TRANSPORT_DOCKER_ARCHIVE)
        return kiln_error_set(err, 0, "only archives can be written to a file descriptor");
    int lockfd = -1;
    if (gc_lock_shared(s, &lockfd, err) < 0)
        return -1;
    struct export_item *it = NULL;
    size_t m = 0;
    int r = collect(s, manifests, names, n, &it, &m, err);
    if (r == 0)
        r = write_archive(s, it, m, kind, NULL, fd, err);
    items_free(it, m);
    gc_unlock(lockfd);
    return r;
}

int transport_export(struct store *s, const struct descriptor *manifests, char *const *names,
                     size_t n, const struct transport_ref *dst, struct kiln_error **err)
{
    if (dst->kind == TRANSPORT_DOCKER)
        return kiln_error_set(err, 0, "docker:// destinations are a registry's (registry_push)");
    if (n == 0)
        return kiln_error_set(err, 0, "no images to export");
    struct export_item *it = NULL;
    size_t m = 0;
    int lockfd = -1;
    if (gc_lock_shared(s, &lockfd, err) < 0)
        return -1;
    int r = collect(s, manifests, names, n, &it, &m, err);
    if (r == 0)
        r = check_tag_count(dst, m, err);
    if (r < 0)
        goto out;
    /* docker archives name images in RepoTags (and the OCI part docker's way) */
    const char *tag = dst->ref;
    if (dst->kind == TRANSPORT_DOCKER_ARCHIVE && tag) {
        strv_free(it[0].names);
        it[0].names = strv_new();
        strv_push(&it[0].names, tag);
        tag = NULL;
    }
    if (dst->kind == TRANSPORT_OCI) {
        r = export_dir(s, it, m, dst->path, tag, err);
        goto out;
    }
    if (strcmp(dst->path, "-") == 0) {
        r = write_archive(s, it, m, dst->kind, tag, STDOUT_FILENO, err);
        goto out;
    }
    r = write_archive_file(s, it, m, dst->kind, tag, dst->path, err);
out:
    items_free(it, m);
    gc_unlock(lockfd);
    return r;
}
