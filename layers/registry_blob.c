/* Blobs and manifests over the wire: verified downloads into a staging
 * directory (nothing reaches blobs/ before a whole image is verified),
 * uploads (existence check, cross-repository mount, monolithic or chunked),
 * and the record of which repositories hold which blobs. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "layers/image.h"
#include "layers/registry_internal.h"
#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#define SOURCES_MAX (16u << 20)
#define SOURCES_PER_BLOB 4
#define UPLOAD_ATTEMPTS REG_MAX_ATTEMPTS

/* ---- staging ------------------------------------------------------------- */

int reg_staging_begin(struct store *s, struct reg_staging **ret, struct kiln_error **err)
{
    char *dir = NULL;
    if (store_mkdtemp(s, "pull", &dir, err) < 0)
        return -1;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        fs_rm_rf(dir);
        free(dir);
        return kiln_error_set(err, e, "open '%s'", dir);
    }
    struct reg_staging *st = xcalloc(1, sizeof(*st));
    st->store = s;
    st->dir = dir;
    st->dirfd = fd;
    st->digests = strv_new();
    pthread_mutex_init(&st->lock, NULL);
    *ret = st;
    return 0;
}

bool reg_staging_has(struct reg_staging *st, const char *digest)
{
    pthread_mutex_lock(&st->lock);
    bool has = strv_contains(st->digests, digest);
    pthread_mutex_unlock(&st->lock);
    return has;
}

static void staging_add(struct reg_staging *st, const char *digest)
{
    pthread_mutex_lock(&st->lock);
    strv_push(&st->digests, digest);
    pthread_mutex_unlock(&st->lock);
}

int reg_staging_put(struct reg_staging *st, const char *digest, const void *data, size_t len,
                    struct kiln_error **err)
{
    char got[DIGEST_STR_LEN];
    sha256_digest_of(data, len, got);
    if (strcmp(got, digest) != 0)
        return kiln_error_set(err, 0, "blob %s: content hashes to %s", digest, got);
    if (reg_staging_has(st, digest) || store_has_blob(st->store, digest))
        return 0;
    int r = fs_write_atomic_at(st->dirfd, digest_hex(digest), data, len, 0644, false);
    if (r < 0)
        return kiln_error_set(err, -r, "write '%s/%s'", st->dir, digest_hex(digest));
    staging_add(st, digest);
    return 0;
}

int reg_staging_commit(struct reg_staging *st, struct kiln_error **err)
{
    for (size_t i = 0; st->digests[i]; i++) {
        const char *hex = digest_hex(st->digests[i]);
        _cleanup_close_ int fd = openat(st->dirfd, hex, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) < 0)
            return kiln_error_set(err, errno, "sync '%s/%s'", st->dir, hex);
    }
    for (size_t i = 0; st->digests[i]; i++) {
        const char *hex = digest_hex(st->digests[i]);
        if (renameat(st->dirfd, hex, st->store->blobs_fd, hex) < 0)
            return kiln_error_set(err, errno, "store: move blob %s into place", st->digests[i]);
    }
    if (st->digests[0] && fsync(st->store->blobs_fd) < 0)
        return kiln_error_set(err, errno, "store: sync blobs directory");
    strv_free(st->digests);
    st->digests = strv_new();
    return 0;
}

void reg_staging_free(struct reg_staging *st)
{
    if (!st)
        return;
    if (st->dirfd >= 0)
        close(st->dirfd);
    if (st->dir)
        fs_rm_rf(st->dir);
    free(st->dir);
    strv_free(st->digests);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

/* ---- downloads ------------------------------------------------------------- */

struct blob_sink {
    struct reg_staging *st;
    const struct descriptor *d;
    char tmpname[96];
    int fd;
    struct sha256 hash;
    bool hashing;
    uint64_t got;
};

static int bs_begin(void *ud, struct kiln_error **err)
{
    struct blob_sink *b = ud;
    b->fd = openat(b->st->dirfd, b->tmpname, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (b->fd < 0)
        return kiln_error_set(err, errno, "create '%s/%s'", b->st->dir, b->tmpname);
    sha256_init(&b->hash);
    b->hashing = true;
    b->got = 0;
    return 0;
}

static int bs_write(void *ud, const void *data, size_t len, struct kiln_error **err)
{
    struct blob_sink *b = ud;
    if (b->got + len > b->d->size)
        return kiln_error_set(err, 0,
                              "blob %s: the registry sent more than the %llu bytes its "
                              "descriptor says; refusing it",
                              b->d->digest, (unsigned long long)b->d->size);
    sha256_update(&b->hash, data, len);
    int r = fs_write_all(b->fd, data, len);
    if (r < 0)
        return kiln_error_set(err, -r, "write '%s/%s'", b->st->dir, b->tmpname);
    b->got += len;
    return 0;
}

static void bs_reset(void *ud)
{
    struct blob_sink *b = ud;
    if (b->fd >= 0)
        close(b->fd);
    b->fd = -1;
    if (b->hashing)
        sha256_abort(&b->hash);
    b->hashing = false;
    unlinkat(b->st->dirfd, b->tmpname, 0);
    b->got = 0;
}

int reg_fetch_blob(struct reg_client *c, const char *repo, const struct descriptor *d,
                   struct reg_staging *st, struct kiln_error **err)
{
    if (reg_staging_has(st, d->digest))
        return 0;
    struct blob_sink b = {.st = st, .d = d, .fd = -1};
    snprintf(b.tmpname, sizeof(b.tmpname), "%s.part", digest_hex(d->digest));
    struct reg_sink sink = {.begin = bs_begin, .write = bs_write, .reset = bs_reset, .ud = &b};
    _cleanup_free_ char *path = reg_path(repo, "blobs", d->digest);
    _cleanup_free_ char *scope = xasprintf("repository:%s:pull", repo);
    struct reg_request rq = {.method = "GET", .url = path, .scope = scope, .sink = &sink};
    struct reg_response resp = {0};
    strbuf_init(&resp.body);
    if (reg_do(c, &rq, &resp, err) < 0) {
        reg_response_free(&resp);
        bs_reset(&b);
        return kiln_error_wrap(err, "fetch blob %s", d->digest);
    }
    if (resp.status != 200) {
        int r = reg_response_error(c, &resp, err, "fetch blob %s from '%s/%s'", d->digest,
                                   c->registry, repo);
        reg_response_free(&resp);
        bs_reset(&b);
        return r;
    }
    reg_response_free(&resp);
    if (b.fd < 0 && bs_begin(&b, err) < 0) /* an empty body */
        return -1;
    char got[DIGEST_STR_LEN];
    sha256_final_digest(&b.hash, got);
    b.hashing = false;
    if (b.got != d->size) {
        bs_reset(&b);
        return kiln_error_set(err, 0,
                              "blob %s: the registry sent %llu bytes, its descriptor says %llu; "
                              "refusing it",
                              d->digest, (unsigned long long)b.got, (unsigned long long)d->size);
    }
    if (strcmp(got, d->digest) != 0) {
        bs_reset(&b);
        return kiln_error_set(err, 0,
                              "blob %s: digest mismatch, the registry sent content hashing to "
                              "%s; refusing it",
                              d->digest, got);
    }
    close(b.fd);
    b.fd = -1;
    if (renameat(st->dirfd, b.tmpname, st->dirfd, digest_hex(d->digest)) < 0) {
        int e = errno;
        bs_reset(&b);
        return kiln_error_set(err, e, "rename '%s/%s'", st->dir, b.tmpname);
    }
    staging_add(st, d->digest);
    return 0;
}

struct fetch_jobs {
    const char *repo;
    struct reg_staging *st;
    const struct descriptor **d;
};

static int fetch_job(struct reg_client *c, size_t i, void *ud, struct kiln_error **err)
{
    struct fetch_jobs *j = ud;
    const struct descriptor *d = j->d[i];
    _cleanup_free_ char *short_id = xstrndup(digest_hex(d->digest), 12);
    _cleanup_free_ char *hs = reg_human_size(d->size);
    reg_status(c->opts, "Copying blob %s [%s]", short_id, hs);
    if (reg_fetch_blob(c, j->repo, d, j->st, err) < 0)
        return -1;
    reg_status(c->opts, "Copying blob %s done", short_id);
    return 0;
}

int reg_fetch_blobs(struct reg_client *c, const char *repo, const struct descriptor *d, size_t n,
                    struct reg_staging *st, struct kiln_error **err)
{
    struct fetch_jobs j = {.repo = repo, .st = st, .d = xcalloc(n + 1, sizeof(*j.d))};
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool dup = false;
        for (size_t q = 0; q < k && !dup; q++)
            dup = strcmp(j.d[q]->digest, d[i].digest) == 0;
        if (dup)
            continue;
        if (store_has_blob(st->store, d[i].digest) || reg_staging_has(st, d[i].digest)) {
            _cleanup_free_ char *short_id = xstrndup(digest_hex(d[i].digest), 12);
            reg_status(c->opts, "Copying blob %s skipped: already exists", short_id);
            continue;
        }
        j.d[k++] = &d[i];
    }
    _cleanup_free_ char *scope = xasprintf("repository:%s:pull", repo);
    int r = reg_parallel(c, scope, k, fetch_job, &j, err);
    free(j.d);
    return r;
}

int reg_staging_copy_fd(struct reg_staging *st, const struct descriptor *d, int fd,
                        struct kiln_error **err)
{
    if (reg_staging_has(st, d->digest) || store_has_blob(st->store, d->digest))
        return 0;
    struct blob_sink b = {.st = st, .d = d, .fd = -1};
    snprintf(b.tmpname, sizeof(b.tmpname), "%s.part", digest_hex(d->digest));
    if (bs_begin(&b, err) < 0)
        return -1;
    char buf[65536];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            bs_reset(&b);
            return kiln_error_set(err, e, "read blob %s", d->digest);
        }
        if (n == 0)
            break;
        if (bs_write(&b, buf, (size_t)n, err) < 0) {
            bs_reset(&b);
            return -1;
        }
    }
    char got[DIGEST_STR_LEN];
    sha256_final_digest(&b.hash, got);
    b.hashing = false;
    if (b.got != d->size || strcmp(got, d->digest) != 0) {
        bs_reset(&b);
        return kiln_error_set(err, 0, "blob %s: %llu bytes hashing to %s; refusing it",
                              d->digest, (unsigned long long)b.got, got);
    }
    close(b.fd);
    b.fd = -1;
    if (renameat(st->dirfd, b.tmpname, st->dirfd, digest_hex(d->digest)) < 0) {
        int e = errno;
        bs_reset(&b);
        return kiln_error_set(err, e, "rename '%s/%s'", st->dir, b.tmpname);
    }
    staging_add(st, d->digest);
    return 0;
}

int reg_fetch_blob_mem(struct reg_client *c, const char *repo, const struct descriptor *d,
                       size_t max, char **ret, struct kiln_error **err)
{
    if (d->size > max)
        return kiln_error_set(err, 0, "blob %s: %llu bytes is more than the %zu allowed",
                              d->digest, (unsigned long long)d->size, max);
    _cleanup_free_ char *path = reg_path(repo, "blobs", d->digest);
    _cleanup_free_ char *scope = xasprintf("repository:%s:pull", repo);
    struct reg_request rq = {.method = "GET", .url = path, .scope = scope, .max_body = max};
    struct reg_response resp = {0};
    strbuf_init(&resp.body);
    if (reg_do(c, &rq, &resp, err) < 0) {
        reg_response_free(&resp);
        return kiln_error_wrap(err, "fetch blob %s", d->digest);
    }
    if (resp.status != 200) {
        int r = reg_response_error(c, &resp, err, "fetch blob %s from '%s/%s'", d->digest,
                                   c->registry, repo);
        reg_response_free(&resp);
        return r;
    }
    char got[DIGEST_STR_LEN];
    sha256_digest_of(resp.body.buf, resp.body.len, got);
    if (resp.body.len != d->size || strcmp(got, d->digest) != 0) {
        kiln_error_set(err, 0,
                       "blob %s: the registry sent %zu bytes hashing to %s; refusing it",
                       d->digest, resp.body.len, got);
        reg_response_free(&resp);
        return -1;
    }
    *ret = strbuf_detach(&resp.body, NULL);
    reg_response_free(&resp);
    return 0;
}

static const char *const manifest_accept[] = {
    "Accept: " MT_OCI_MANIFEST ", " MT_DOCKER_MANIFEST ", " MT_OCI_INDEX
    ", " MT_DOCKER_MANIFEST_LIST,
    NULL,
};

int reg_fetch_manifest(struct reg_client *c, const char *repo, const char *reference,
                       char **ret, size_t *ret_len, char **ret_media_type,
                       char ret_digest[DIGEST_STR_LEN], struct kiln_error **err)
{
    _cleanup_free_ char *path = reg_path(repo, "manifests", reference);
    _cleanup_free_ char *scope = xasprintf("repository:%s:pull", repo);
    struct reg_request rq = {.method = "GET",
                             .url = path,
                             .scope = scope,
                             .headers = manifest_accept,
                             .max_body = REG_MANIFEST_MAX};
    struct reg_response resp = {0};
    strbuf_init(&resp.body);
    if (reg_do(c, &rq, &resp, err) < 0) {
        reg_response_free(&resp);
        return kiln_error_wrap(err, "fetch manifest '%s/%s:%s'", c->registry, repo, reference);
    }
    if (resp.status != 200) {
        int r;
        if (resp.status == 404) {
            kiln_error_set(err, 0, "manifest '%s/%s%s%s' not found", c->registry, repo,
                           strchr(reference, ':') ? "@" : ":", reference);
            r = -ENOENT;
        }
        else
            r = reg_response_error(c, &resp, err, "fetch manifest '%s/%s%s%s'", c->registry,
                                   repo, strchr(reference, ':') ? "@" : ":", reference);
        reg_response_free(&resp);
        return r;
    }
    char digest[DIGEST_STR_LEN];
    sha256_digest_of(resp.body.buf, resp.body.len, digest);
    if (digest_is_valid(reference) && strcmp(reference, digest) != 0) {
        kiln_error_set(err, 0,
                       "manifest '%s/%s@%s': the registry sent content hashing to %s; "
                       "refusing it",
                       c->registry, repo, reference, digest);
        reg_response_free(&resp);
        return -1;
    }
    if (resp.docker_content_digest && strncmp(resp.docker_content_digest, "sha256:", 7) == 0 &&
        strcmp(resp.docker_content_digest, digest) != 0) {
        kiln_error_set(err, 0,
                       "manifest '%s/%s:%s': the registry says its digest is %s but the "
                       "content hashes to %s; refusing it",
                       c->registry, repo, reference, resp.docker_content_digest, digest);
        reg_response_free(&resp);
        return -1;
    }
    char *mt = reg_manifest_sniff(resp.body.buf, resp.body.len);
    if (!mt) {
        kiln_error_set(err, 0,
                       "manifest '%s/%s:%s': not an OCI or Docker schema 2 manifest or index "
                       "(Content-Type '%s')",
                       c->registry, repo, reference,
                       resp.content_type ? resp.content_type : "");
        reg_response_free(&resp);
        return -1;
    }
    *ret_len = resp.body.len;
    *ret = strbuf_detach(&resp.body, NULL);
    *ret_media_type = mt;
    memcpy(ret_digest, digest, DIGEST_STR_LEN);
    reg_response_free(&resp);
    return 0;
}

/* ---- uploads --------------------------------------------------------------- */

uint64_t reg_chunk_size(void)
{
    const char *e = getenv("KILN_REGISTRY_CHUNK_SIZE");
    if (e && *e) {
        char *end = NULL;
        unsigned long long v = strtoull(e, &end, 10);
        if (end && !*end && v >= 4096)
            return v;
    }
    return 32u << 20;
}

/* Resolves a Location header against the registry. */
static char *absolute_location(struct reg_client *c, const char *loc)
{
    if (strncmp(loc, "http://", 7) == 0 || strncmp(loc, "https://", 8) == 0)
        return xstrdup(loc);
    if (loc[0] == '/')
        return xasprintf("%s%s", c->base, loc);
    return xasprintf("%s/%s", c->base, loc);
}

static char *with_query(const char *url, const char *kv)
{
    return xasprintf("%s%c%s", url, strchr(url, '?') ? '&' : '?', kv);
}

static int blob_exists(struct reg_client *c, const char *repo, const char *scope,
                       const struct descriptor *d, bool *ret, struct kiln_error **err)
{
    _cleanup_free_ char *path = reg_path(repo, "blobs", d->digest);
    struct reg_request rq = {.method = "HEAD", .url = path, .scope = scope};
    struct reg_response resp = {0};
    strbuf_init(&resp.body);
    if (reg_do(c, &rq, &resp, err) < 0) {
        reg_response_free(&resp);
        return -1;
    }
    int r = 0;
    if (resp.status == 200)
        *ret = true;
    else if (resp.status == 404)
        *ret = false;
    else
        r = reg_response_error(c, &resp, err, "check blob %s in '%s/%s'", d->digest,
                               c->registry, repo);
    reg_response_free(&resp);
    return r;
}

/* One upload attempt, from POST to the final PUT. *ret_retry says whether
 * a failure is worth another attempt. */
static int upload_once(struct reg_client *c, const char *repo, const char *scope,
                       const struct descriptor *d, const struct reg_body *whole,
                       const char *mount_from, bool *ret_mounted, uint64_t *ret_sent,
                       bool *ret_retry, long *ret_retry_status, char **ret_retry_after,
                       struct kiln_error **err)
{
    *ret_retry = false;
    *ret_mounted = false;
    _cleanup_free_ char *post = NULL;
    if (mount_from) {
        post = xasprintf("/v2/%s/blobs/uploads/?mount=%s&from=%s", repo, d->digest, mount_from);
    } else {
        post = xasprintf("/v2/%s/blobs/uploads/", repo);
    }
    struct reg_request rq = {.method = "POST", .url = post, .scope = scope, .no_retry = true};
    struct reg_response resp = {0};
    strbuf_init(&resp.body);
    if (reg_do(c, &rq, &resp, err) < 0) {
        reg_response_free(&resp);
        *ret_retry = true;
        return -1;
    }
    if (mount_from && resp.status == 201) {
        reg_response_free(&resp);
        *ret_mounted = true;
        return 0;
    }
    if (resp.status != 202 || !resp.location) {
        *ret_retry = reg_status_is_retryable(resp.status);
        *ret_retry_status = resp.status;
        if (resp.retry_after)
            *ret_retry_after = xstrdup(resp.retry_after);
        int r = reg_response_error(c, &resp, err, "start upload of %s to '%s/%s'", d->digest,
                                   c->registry, repo);
        reg_response_free(&resp);
        return r;
    }
    _cleanup_free_ char *loc = absolute_location(c, resp.location);
    uint64_t chunk = reg_chunk_size();
    if (resp.chunk_min) {
        unsigned long long m = strtoull(resp.chunk_min, NULL, 10);
        if (m > chunk)
            chunk = m;
    }
    reg_response_free(&resp);

    uint64_t off = 0;
    if (whole->len > chunk) {
        /* chunked: PATCH pieces, each answered with the next location */
        while (off < whole->len) {
            uint64_t n = whole->len - off < chunk ? whole->len - off : chunk;
            struct reg_body part = *whole;
            if (part.data)
                part.data += off;
            else
                part.offset += off;
            part.len = n;
            _cleanup_free_ char *range = xasprintf("Content-Range: %llu-%llu",
                                                   (unsigned long long)off,
                                                   (unsigned long long)(off + n - 1));
            const char *hdrs[] = {"Content-Type: application/octet-stream", range, NULL};
            struct reg_request pq = {.method = "PATCH",
                                     .url = loc,
                                     .scope = scope,
                                     .headers = hdrs,
                                     .body = &part,
                                     .no_retry = true};
            if (reg_do(c, &pq, &resp, err) < 0) {
                reg_response_free(&resp);
                *ret_retry = true;
                return -1;
            }
            if (resp.status != 202 || !resp.location) {
                *ret_retry = reg_status_is_retryable(resp.status);
                *ret_retry_status = resp.status;
                int r = reg_response_error(c, &resp, err, "upload %s to '%s/%s' (bytes %llu-)",
                                           d->digest, c->registry, repo,
                                           (unsigned long long)off);
                reg_response_free(&resp);
                return r;
            }
            /* the registry says what it holds now: "0-LAST" */
            if (resp.range) {
                const char *dash = strchr(resp.range, '-');
                unsigned long long last = dash ? strtoull(dash + 1, NULL, 10) : 0;
                if (!dash || last != off + n - 1) {
                    kiln_error_set(err, 0,
                                   "upload %s to '%s/%s': the registry holds bytes %s, "
                                   "expected 0-%llu",
                                   d->digest, c->registry, repo, resp.range,
                                   (unsigned long long)(off + n - 1));
                    reg_response_free(&resp);
                    *ret_retry = true;
                    return -1;
                }
            }
            free(loc);
            loc = absolute_location(c, resp.location);
            reg_response_free(&resp);
            off += n;
            *ret_sent += n;
        }
    }
    /* the final PUT carries the rest (everything, for a monolithic upload) */
    struct reg_body rest = *whole;
    if (rest.data)
        rest.data += off;
    else
        rest.offset += off;
    rest.len = whole->len - off;
    _cleanup_free_ char *kv = xasprintf("digest=%s", d->digest);
    _cleanup_free_ char *put = with_query(loc, kv);
    const char *hdrs[] = {"Content-Type: application/octet-stream", NULL};
    struct reg_request pq = {.method = "PUT",
                             .url = put,
                             .scope = scope,
                             .headers = hdrs,
                             .body = &rest,
                             .no_retry = true};
    if (reg_do(c, &pq, &resp, err) < 0) {
        reg_response_free(&resp);
        *ret_retry = true;
        return -1;
    }
    if (resp.status != 201 && resp.status != 204) {
        *ret_retry = reg_status_is_retryable(resp.status);
        *ret_retry_status = resp.status;
        int r = reg_response_error(c, &resp, err, "finish upload of %s to '%s/%s'", d->digest,
                                   c->registry, repo);
        reg_response_free(&resp);
        return r;
    }
    if (resp.docker_content_digest && strcmp(resp.docker_content_digest, d->digest) != 0) {
        kiln_error_set(err, 0, "upload of %s to '%s/%s': the registry recorded digest %s",
                       d->digest, c->registry, repo, resp.docker_content_digest);
        reg_response_free(&resp);
        return -1;
    }
    reg_response_free(&resp);
    *ret_sent += rest.len;
    return 0;
}

int reg_push_blob(struct reg_client *c, const char *repo, const struct descriptor *d,
                  const struct reg_blob_src *src, char *const *from, uint64_t *ret_uploaded,
                  struct kiln_error **err)
{
    *ret_uploaded = 0;
    _cleanup_free_ char *scope = xasprintf("repository:%s:pull,push", repo);
    bool exists = false;
    if (blob_exists(c, repo, scope, d, &exists, err) < 0)
        return kiln_error_wrap(err, "push blob %s", d->digest);
    _cleanup_free_ char *short_id = xstrndup(digest_hex(d->digest), 12);
    const char *label = src->label ? src->label : "blob";
    if (exists) {
        reg_status(c->opts, "Copying %s %s skipped: already exists", label, short_id);
        return 0;
    }
    _cleanup_close_ int fd = -1;
    struct reg_body whole = {.fd = -1, .len = d->size};
    if (src->data) {
        whole.data = src->data;
    } else {
        if (store_blob_open(src->store, d->digest, &fd, err) < 0)
            return kiln_error_wrap(err, "push blob");
        struct stat st;
        if (fstat(fd, &st) < 0)
            return kiln_error_set(err, errno, "push blob %s: stat", d->digest);
        if ((uint64_t)st.st_size != d->size)
            return kiln_error_set(err, 0,
                                  "push blob %s: the store's copy has %lld bytes, the "
                                  "manifest says %llu",
                                  d->digest, (long long)st.st_size, (unsigned long long)d->size);
        whole.fd = fd;
    }
    /* a mount first, from a repository known to hold the blob */
    for (size_t i = 0; from && from[i]; i++) {
        if (strcmp(from[i], repo) == 0)
            continue;
        _cleanup_free_ char *mscope =
            xasprintf("repository:%s:pull,push repository:%s:pull", repo, from[i]);
        bool mounted = false, retry = false;
        long rs = 0;
        _cleanup_free_ char *ra = NULL;
        uint64_t sent = 0;
        struct kiln_error *e = NULL;
        int r = upload_once(c, repo, mscope, d, &whole, from[i], &mounted, &sent, &retry, &rs,
                            &ra, &e);
        if (r == 0) {
            *ret_uploaded = sent;
            if (mounted)
                reg_status(c->opts, "Copying %s %s mounted from %s", label, short_id, from[i]);
            else {
                _cleanup_free_ char *hs = reg_human_size(d->size);
                reg_status(c->opts, "Copying %s %s done %s", label, short_id, hs);
            }
            return 0;
        }
        log_debug("registry: mount of %s from '%s' failed: %s", d->digest, from[i], e->msg);
        kiln_error_free(&e);
    }
    for (unsigned failures = 0;;) {
        bool mounted = false, retry = false;
        long rs = 0;
        _cleanup_free_ char *ra = NULL;
        uint64_t sent = 0;
        struct kiln_error *e = NULL;
        int r = upload_once(c, repo, scope, d, &whole, NULL, &mounted, &sent, &retry, &rs, &ra,
                            &e);
        *ret_uploaded += sent;
        if (r == 0) {
            _cleanup_free_ char *hs = reg_human_size(d->size);
            reg_status(c->opts, "Copying %s %s done %s", label, short_id, hs);
            return 0;
        }
        long delay = retry ? reg_retry_delay_ms(++failures, ra, time(NULL), c->backoff_ms, 10000)
                           : -1;
        if (delay < 0) {
            if (err) {
                kiln_error_free(err);
                *err = e;
            } else {
                kiln_error_free(&e);
            }
            return kiln_error_wrap(err, "push blob");
        }
        reg_status(c->opts, "Copying %s %s: %s; retrying in %.1fs", label, short_id, e->msg,
                   (double)delay / 1000.0);
        kiln_error_free(&e);
        struct timespec ts = {.tv_sec = delay / 1000, .tv_nsec = (delay % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

int reg_put_manifest(struct reg_client *c, const char *repo, const char *reference,
                     const char *media_type, const char *data, size_t len,
                     char ret_digest[DIGEST_STR_LEN], struct kiln_error **err)
{
    char digest[DIGEST_STR_LEN];
    sha256_digest_of(data, len, digest);
    if (digest_is_valid(reference) && strcmp(reference, digest) != 0)
        return kiln_error_set(err, 0, "push manifest: it hashes to %s, not %s", digest,
                              reference);
    _cleanup_free_ char *path = reg_path(repo, "manifests", reference);
    _cleanup_free_ char *scope = xasprintf("repository:%s:pull,push", repo);
    _cleanup_free_ char *ct = xasprintf("Content-Type: %s", media_type);
    const char *hdrs[] = {ct, NULL};
    struct reg_body body = {.data = data, .fd = -1, .len = len};
    struct reg_request rq = {
        .method = "PUT", .url = path, .scope = scope, .headers = hdrs, .body = &body};
    struct reg_response resp = {0};
    strbuf_init(&resp.body);
    if (reg_do(c, &rq, &resp, err) < 0) {
        reg_response_free(&resp);
        return kiln_error_wrap(err, "push manifest to '%s/%s:%s'", c->registry, repo, reference);
    }
    if (resp.status != 201 && resp.status != 200 && resp.status != 204) {
        int r = reg_response_error(c, &resp, err, "push manifest to '%s/%s:%s'", c->registry,
                                   repo, reference);
        reg_response_free(&resp);
        return r;
    }
    if (resp.docker_content_digest && strcmp(resp.docker_content_digest, digest) != 0) {
        kiln_error_set(err, 0,
                       "push manifest to '%s/%s:%s': the registry recorded digest %s, not %s",
                       c->registry, repo, reference, resp.docker_content_digest, digest);
        reg_response_free(&resp);
        return -1;
    }
    reg_response_free(&resp);
    memcpy(ret_digest, digest, DIGEST_STR_LEN);
    return 0;
}

/* ---- where blobs came from ------------------------------------------------- */

static void gen_sources(struct json_gen *j, yajl_val root, char *const *digests, const char *add)
{
    json_obj_open(j);
    for (size_t i = 0; root && YAJL_IS_OBJECT(root) && i < root->u.object.len; i++) {
        const char *k = root->u.object.keys[i];
        yajl_val arr = root->u.object.values[i];
        if (!digest_is_valid(k) || !YAJL_IS_ARRAY(arr))
            continue;
        bool adding = strv_contains(digests, k);
        json_key(j, k);
        json_arr_open(j);
        size_t n = 0;
        if (adding) {
            json_str(j, add);
            n++;
        }
        for (size_t a = 0; a < arr->u.array.len && n < SOURCES_PER_BLOB; a++) {
            yajl_val v = arr->u.array.values[a];
            if (!YAJL_IS_STRING(v) || (adding && strcmp(v->u.string, add) == 0))
                continue;
            json_str(j, v->u.string);
            n++;
        }
        json_arr_close(j);
    }
    for (size_t i = 0; digests[i]; i++) {
        if (json_get(root, digests[i]))
            continue;
        json_key(j, digests[i]);
        json_arr_open(j);
        json_str(j, add);
        json_arr_close(j);
    }
    json_obj_close(j);
}

static int reg_sources_add(struct store *s, char *const *digests, const char *registry,
                           const char *repo, struct kiln_error **err)
{
    int lockfd = -1;
    if (store_lock(s, &lockfd, err) < 0)
        return -1;
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    yajl_val root = NULL;
    if (fs_read_file_at(s->root_fd, "sources.json", SOURCES_MAX, &buf, &len) == 0) {
        struct kiln_error *e = NULL;
        if (json_parse(buf, len, &root, &e) < 0)
            kiln_error_free(&e); /* a damaged hint file: start over */
    }
    _cleanup_free_ char *add = xasprintf("%s/%s", registry, repo);
    struct json_gen j;
    json_gen_init(&j, false);
    gen_sources(&j, root, digests, add);
    yajl_tree_free(root);
    size_t olen = 0;
    const char *out = json_gen_buf(&j, &olen);
    int r = 0;
    if (olen < SOURCES_MAX)
        r = fs_write_atomic_at(s->root_fd, "sources.json", out, olen, 0600, false);
    json_gen_free(&j);
    store_unlock(lockfd);
    if (r < 0)
        return kiln_error_set(err, -r, "store: write sources.json");
    return 0;
}

void reg_sources_note(struct store *s, const struct manifest *m, bool with_config,
                      const char *registry, const char *repo)
{
    char **blobs = strv_new();
    if (with_config)
        strv_push(&blobs, m->config.digest);
    for (size_t i = 0; i < m->n_layers; i++)
        strv_push(&blobs, m->layers[i].digest);
    struct kiln_error *e = NULL;
    if (reg_sources_add(s, blobs, registry, repo, &e) < 0)
        log_debug("registry: %s", e->msg);
    kiln_error_free(&e);
    strv_free(blobs);
}

char **reg_sources_get(struct store *s, const char *digest, const char *registry)
{
    char **v = strv_new();
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    if (fs_read_file_at(s->root_fd, "sources.json", SOURCES_MAX, &buf, &len) < 0)
        return v;
    yajl_val root = NULL;
    struct kiln_error *e = NULL;
    if (json_parse(buf, len, &root, &e) < 0) {
        kiln_error_free(&e);
        return v;
    }
    yajl_val arr = json_get_arr(root, digest);
    size_t rl = strlen(registry);
    for (size_t i = 0; arr && i < arr->u.array.len; i++) {
        yajl_val x = arr->u.array.values[i];
        if (YAJL_IS_STRING(x) && strncmp(x->u.string, registry, rl) == 0 &&
            x->u.string[rl] == '/' && x->u.string[rl + 1])
            strv_push(&v, x->u.string + rl + 1);
    }
    yajl_tree_free(root);
    return v;
}
