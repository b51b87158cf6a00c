/* The build cache through a directory (type=local) and through a real
 * registry (type=registry; Debian's docker-registry, started here by
 * tests/registry/registry.sh on 127.0.0.1): records and blobs written into
 * one store arrive in another, verified. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/cache.h"
#include "engine/engine.h"
#include "harness.h"
#include "layers/image.h"
#include "layers/refs.h"
#include "layers/registry_internal.h"
#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"

#define N_KEYS 4

static char tmpdir[] = "/tmp/kiln-test-cache-XXXXXX";
static char keys[N_KEYS][DIGEST_STR_LEN];
static char layer_digests[N_KEYS][DIGEST_STR_LEN];

static struct store *open_store(const char *name)
{
    char *root = xasprintf("%s/%s", tmpdir, name);
    struct store *s = NULL;
    struct kiln_error *err = NULL;
    if (store_open(root, &s, &err) < 0) {
        fprintf(stderr, "store_open: %s\n", err->msg);
        exit(1);
    }
    free(root);
    return s;
}

static size_t count_blobs(struct store *s)
{
    char *p = xasprintf("%s/blobs/sha256", s->root);
    DIR *d = opendir(p);
    free(p);
    size_t n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        n += de->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static size_t count_records(struct store *s)
{
    char **v = NULL;
    struct kiln_error *err = NULL;
    if (cache_list(s, &v, &err) < 0) {
        kiln_error_free(&err);
        return 0;
    }
    size_t n = strv_len(v);
    strv_free(v);
    return n;
}

/* Store A: N_KEYS records, the last two sharing a layer. */
static void fill_source(struct store *s)
{
    for (int i = 0; i < N_KEYS; i++) {
        char text[64];
        snprintf(text, sizeof(text), "cache key %d", i);
        sha256_digest_of(text, strlen(text), keys[i]);
        int layer = i < 3 ? i : 2;
        size_t len = 1000 + 100000 * (size_t)layer;
        char *data = xmalloc(len);
        for (size_t k = 0; k < len; k++)
            data[k] = (char)((k * 31 + (size_t)layer * 7) & 0xff);
        struct kiln_error *err = NULL;
        struct cache_record rec = {0};
        CHECK(store_blob_put(s, data, len, rec.layer.digest, &err) == 0);
        free(data);
        rec.layer.media_type = MT_OCI_LAYER_GZIP;
        rec.layer.size = len;
        sha256_digest_of(text, 3, rec.diff_id);
        rec.created = "2024-01-01T00:00:00Z";
        memcpy(layer_digests[i], rec.layer.digest, DIGEST_STR_LEN);
        CHECK(cache_save(s, keys[i], &rec, &err) == 0);
    }
}

static bool same_record(struct store *a, struct store *b, const char *key)
{
    struct cache_record ra, rb;
    if (cache_lookup(a, key, &ra) < 0)
        return false;
    if (cache_lookup(b, key, &rb) < 0) {
        cache_record_free(&ra);
        return false;
    }
    bool same = strcmp(ra.layer.digest, rb.layer.digest) == 0 && ra.layer.size == rb.layer.size &&
                strcmp(ra.layer.media_type, rb.layer.media_type) == 0 &&
                strcmp(ra.diff_id, rb.diff_id) == 0 && strcmp(ra.created, rb.created) == 0;
    cache_record_free(&ra);
    cache_record_free(&rb);
    return same;
}

static char **key_list(int from, int to)
{
    char **v = strv_new();
    for (int i = from; i < to; i++)
        strv_push(&v, keys[i]);
    return v;
}

TEST(local_roundtrip)
{
    struct store *a = open_store("local-a"), *b = open_store("local-b");
    fill_source(a);
    char *dir = xasprintf("%s/cache-dir", tmpdir);
    struct cache_spec spec = {.type = "local", .dir = dir};
    char **all = key_list(0, N_KEYS);
    strv_push(&all, "sha256:" "0000000000000000000000000000000000000000000000000000000000000000");
    struct kiln_error *err = NULL;
    CHECK(cache_remote_export(a, &spec, all, NULL, &err) == 0);
    if (err)
        fprintf(stderr, "%s\n", err->msg);
    kiln_error_free(&err);
    char *idx = path_join(dir, "index.json");
    CHECK(fs_exists(idx));
    free(idx);
    CHECK(cache_remote_import(b, &spec, NULL, &err) == 0);
    if (err)
        fprintf(stderr, "%s\n", err->msg);
    kiln_error_free(&err);
    for (int i = 0; i < N_KEYS; i++)
        CHECK(same_record(a, b, keys[i]));
    CHECK_INT_EQ(count_records(b), N_KEYS);
    CHECK_INT_EQ(count_blobs(b), 3); /* layers only: records share one */
    /* importing again changes nothing */
    CHECK(cache_remote_import(b, &spec, NULL, &err) == 0);
    CHECK_INT_EQ(count_blobs(b), 3);

    /* mode=min: the caller passes fewer keys; only those travel */
    struct store *c = open_store("local-c");
    char **two = key_list(0, 2);
    CHECK(cache_remote_export(a, &spec, two, NULL, &err) == 0);
    CHECK(cache_remote_import(c, &spec, NULL, &err) == 0);
    CHECK_INT_EQ(count_records(c), 2);
    CHECK_INT_EQ(count_blobs(c), 2);
    struct cache_record r;
    CHECK(cache_lookup(c, keys[3], &r) == -ENOENT);
    strv_free(two);

    /* a tampered blob: refused, and nothing lands */
    CHECK(cache_remote_export(a, &spec, all, NULL, &err) == 0);
    char *victim = xasprintf("%s/blobs/sha256/%s", dir, digest_hex(layer_digests[1]));
    int fd = open(victim, O_WRONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    CHECK(pwrite(fd, "X", 1, 10) == 1);
    close(fd);
    free(victim);
    struct store *d = open_store("local-d");
    CHECK(cache_remote_import(d, &spec, NULL, &err) < 0);
    CHECK(err && strstr(err->msg, layer_digests[1]));
    kiln_error_free(&err);
    CHECK_INT_EQ(count_records(d), 0);
    CHECK_INT_EQ(count_blobs(d), 0);

    /* not a cache, bad specs */
    struct cache_spec bad = {.type = "local", .dir = "/nonexistent/kiln"};
    CHECK(cache_remote_import(d, &bad, NULL, &err) < 0);
    kiln_error_free(&err);
    struct cache_spec weird = {.type = "s3", .ref = "x"};
    CHECK(cache_remote_import(d, &weird, NULL, &err) < 0);
    CHECK(err && strstr(err->msg, "unsupported"));
    kiln_error_free(&err);
    struct cache_spec nodest = {.type = "local"};
    CHECK(cache_remote_export(a, &nodest, all, NULL, &err) < 0);
    kiln_error_free(&err);

    strv_free(all);
    free(dir);
    store_close(a);
    store_close(b);
    store_close(c);
    store_close(d);
}

static int registry_port = -1;
static char *registry_dir;

static void start_registry(void)
{
    if (system("command -v docker-registry >/dev/null 2>&1") != 0)
        return;
    registry_dir = xasprintf("%s/registry", tmpdir);
    char *cmd = xasprintf("tests/registry/registry.sh start %s", registry_dir);
    int r = system(cmd);
    free(cmd);
    if (r != 0)
        return;
    char *portfile = path_join(registry_dir, "port");
    char *buf = NULL;
    size_t len = 0;
    if (fs_read_file_at(AT_FDCWD, portfile, 64, &buf, &len) == 0)
        registry_port = atoi(buf);
    free(buf);
    free(portfile);
}

static void stop_registry(void)
{
    if (!registry_dir)
        return;
    char *cmd = xasprintf("tests/registry/registry.sh stop %s", registry_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "stopping the registry failed\n");
    free(cmd);
    free(registry_dir);
}

TEST(registry_roundtrip)
{
    if (registry_port < 0) {
        harness_skip("registry_roundtrip", "docker-registry is not installed or did not start");
        return;
    }
    struct store *a = open_store("reg-a"), *b = open_store("reg-b");
    fill_source(a);
    char *ref = xasprintf("127.0.0.1:%d/cache/app:buildcache", registry_port);
    struct cache_spec spec = {.type = "registry", .ref = ref};
    char **all = key_list(0, N_KEYS);
    struct registry_opts o = {.tls_verify = REGISTRY_TLS_DEFAULT};
    struct kiln_error *err = NULL;
    CHECK(cache_remote_export(a, &spec, all, &o, &err) == 0);
    if (err)
        fprintf(stderr, "%s\n", err->msg);
    kiln_error_free(&err);
    CHECK(cache_remote_import(b, &spec, &o, &err) == 0);
    if (err)
        fprintf(stderr, "%s\n", err->msg);
    kiln_error_free(&err);
    for (int i = 0; i < N_KEYS; i++)
        CHECK(same_record(a, b, keys[i]));
    CHECK_INT_EQ(count_blobs(b), 3);

    /* a missing cache: ENOENT, so that a build can go on without it */
    char *missing = xasprintf("127.0.0.1:%d/cache/none:x", registry_port);
    struct cache_spec ms = {.type = "registry", .ref = missing};
    struct store *c = open_store("reg-c");
    CHECK(cache_remote_import(c, &ms, &o, &err) == -ENOENT);
    CHECK(err && strstr(err->msg, "not found"));
    kiln_error_free(&err);

    /* an image that is not a cache is refused */
    struct image_config cfg;
    image_config_init(&cfg);
    cfg.architecture = xstrdup("amd64");
    cfg.os = xstrdup("linux");
    cfg.diff_ids = strv_new();
    struct descriptor md;
    char cfgd[DIGEST_STR_LEN];
    CHECK(image_commit(a, &cfg, NULL, 0, &md, cfgd, &err) == 0);
    image_config_free(&cfg);
    char *imgref = xasprintf("127.0.0.1:%d/cache/notcache:1", registry_port);
    char pushed[DIGEST_STR_LEN];
    CHECK(registry_push(a, &md, imgref, &o, pushed, &err) == 0);
    CHECK_STR_EQ(pushed, md.digest);
    kiln_error_free(&err);
    struct cache_spec nc = {.type = "registry", .ref = imgref};
    CHECK(cache_remote_import(c, &nc, &o, &err) < 0);
    CHECK(err && strstr(err->msg, "not a kiln build cache"));
    kiln_error_free(&err);
    CHECK_INT_EQ(count_records(c), 0);
    descriptor_free(&md);

    free(imgref);
    free(missing);
    strv_free(all);
    free(ref);
    store_close(a);
    store_close(b);
    store_close(c);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    setenv("KILN_REGISTRY_BACKOFF_MS", "10", 1);
    RUN(local_roundtrip);
    start_registry();
    RUN(registry_roundtrip);
    stop_registry();
    fs_rm_rf(tmpdir);
    return harness_done();
}
