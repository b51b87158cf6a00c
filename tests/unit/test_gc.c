/* Garbage collection, pruning, disk usage and store validation
 * (layers/gc.h, layers/fsck.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "layers/fsck.h"
#include "layers/gc.h"
#include "storetest.h"

static char *dir;

struct fixture {
    struct store *s;
    struct descriptor base_l, app_l, dang_l, cache_l; /* layers */
    char base_d[DIGEST_STR_LEN], app_d[DIGEST_STR_LEN], dang_d[DIGEST_STR_LEN],
        cache_d[DIGEST_STR_LEN]; /* diff_ids */
    struct descriptor app, dangling;
    char orphan[DIGEST_STR_LEN];
};

static bool has_blob(struct store *s, const char *d)
{
    return store_has_blob(s, d);
}

static bool has_path(struct store *s, const char *rel)
{
    return faccessat(s->root_fd, rel, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

static void age(struct store *s, const char *rel, int64_t seconds)
{
    struct timespec ts[2];
    clock_gettime(CLOCK_REALTIME, &ts[0]);
    ts[0].tv_sec -= seconds;
    ts[1] = ts[0];
    if (utimensat(s->root_fd, rel, ts, AT_SYMLINK_NOFOLLOW) < 0)
        abort();
}

static void write_rel(struct store *s, const char *rel, const char *data)
{
    if (fs_write_atomic_at(s->root_fd, rel, data, strlen(data), 0600, false) < 0)
        abort();
}

static void tree(struct store *s, const char *diff_id)
{
    /* a tree with a read-only directory inside, as extracted layers have */
    char *t = xasprintf("trees/%s", digest_hex(diff_id));
    char *sub = xasprintf("%s/ro", t);
    char *f = xasprintf("%s/ro/file", t);
    mkdirat(s->root_fd, t, 0755);
    mkdirat(s->root_fd, sub, 0755);
    write_rel(s, f, "data in a tree\n");
    if (fchmodat(s->root_fd, sub, 0555, 0) < 0)
        abort();
    free(t), free(sub), free(f);
}

static void record(struct store *s, const char *key_hex, const struct descriptor *l,
                   const char *diff_id)
{
    char *rel = xasprintf("cache/%s", key_hex);
    char *json = xasprintf("{\"layer\":{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%llu},"
                           "\"diff_id\":\"%s\",\"created\":\"2024-01-01T00:00:00Z\"}",
                           l->media_type, l->digest, (unsigned long long)l->size, diff_id);
    write_rel(s, rel, json);
    free(rel), free(json);
}

#define KEY1 "1111111111111111111111111111111111111111111111111111111111111111"
#define KEY2 "2222222222222222222222222222222222222222222222222222222222222222"
#define KEY3 "3333333333333333333333333333333333333333333333333333333333333333"

static void fixture(struct fixture *f, const char *name)
{
    memset(f, 0, sizeof(*f));
    f->s = st_store(dir, name);
    static const struct tent base[] = {{"etc", 'd', NULL}, {"etc/base", 'f', "base\n"}};
    static const struct tent app[] = {{"app", 'f', "app\n"}};
    static const struct tent dang[] = {{"old", 'f', "old build\n"}};
    static const struct tent cache[] = {{"cached", 'f', "a cached step\n"}};
    st_layer(f->s, base, 2, false, &f->base_l, f->base_d);
    st_layer(f->s, app, 1, false, &f->app_l, f->app_d);
    st_layer(f->s, dang, 1, false, &f->dang_l, f->dang_d);
    st_layer(f->s, cache, 1, false, &f->cache_l, f->cache_d);
    struct descriptor two[2] = {f->base_l, f->app_l};
    char d2[2][DIGEST_STR_LEN];
    memcpy(d2[0], f->base_d, DIGEST_STR_LEN);
    memcpy(d2[1], f->app_d, DIGEST_STR_LEN);
    st_image(f->s, "app:1", two, d2, 2, "2024-01-01T00:00:00Z", "keep", &f->app);
    struct descriptor two2[2] = {f->base_l, f->dang_l};
    memcpy(d2[1], f->dang_d, DIGEST_STR_LEN);
    st_image(f->s, NULL, two2, d2, 2, "2023-01-01T00:00:00Z", NULL, &f->dangling);
    /* a cache record of a layer no image uses, one of an image's layer,
     * and one that cannot be read */
    record(f->s, KEY1, &f->cache_l, f->cache_d);
    record(f->s, KEY2, &f->app_l, f->app_d);
    write_rel(f->s, "cache/" KEY3, "{not json");
    write_rel(f->s, "cache/filehash", "KILNFH1\n");
    /* trees: of an image, of the cache, of nothing */
    tree(f->s, f->base_d);
    tree(f->s, f->cache_d);
    tree(f->s, "sha256:9999999999999999999999999999999999999999999999999999999999999999");
    /* single-ID trees ("<hex>-single") and their owner tables (layers/tree.c) */
    char *single = xasprintf("trees/%s-single", digest_hex(f->base_d));
    char *owners = xasprintf("%s.owners", single);
    mkdirat(f->s->root_fd, single, 0755);
    write_rel(f->s, owners, "owners\n");
    free(single), free(owners);
    mkdirat(f->s->root_fd,
            "trees/8888888888888888888888888888888888888888888888888888888888888888-single", 0755);
    write_rel(f->s,
              "trees/8888888888888888888888888888888888888888888888888888888888888888-single.owners",
              "owners\n");
    write_rel(f->s, "trees/not-a-tree", "left alone\n");
    /* an orphan blob, tmp leftovers old and new, a cache mount */
    struct kiln_error *err = NULL;
    if (store_blob_put(f->s, "orphan", 6, f->orphan, &err) < 0)
        abort();
    mkdirat(f->s->root_fd, "tmp/build-old", 0700);
    write_rel(f->s, "tmp/build-old/x", "x");
    age(f->s, "tmp/build-old", 7200);
    mkdirat(f->s->root_fd, "tmp/build-new", 0700);
    mkdirat(f->s->root_fd, "mounts/m1", 0700);
    write_rel(f->s, "mounts/m1/pkg", "cached package");
}

static void fixture_free(struct fixture *f)
{
    descriptor_free(&f->base_l);
    descriptor_free(&f->app_l);
    descriptor_free(&f->dang_l);
    descriptor_free(&f->cache_l);
    descriptor_free(&f->app);
    descriptor_free(&f->dangling);
    store_close(f->s);
}

static bool result_has(const struct gc_result *r, const char *kind, const char *name)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->items[i].kind, kind) == 0 && strstr(r->items[i].name, name))
            return true;
    return false;
}

static char *tree_rel(const char *diff)
{
    return xasprintf("trees/%s", digest_hex(diff));
}

TEST(sweep)
{
    struct fixture f;
    fixture(&f, "sweep");
    struct gc_session *g = NULL;
    struct gc_result r = {0};
    struct kiln_error *err = NULL;
    CHECK(gc_begin(f.s, false, &g, &err) == 0);
    CHECK(gc_sweep(g, &r, &err) == 0);
    if (err)
        fprintf(stderr, "  %s\n", err->msg);
    gc_end(g);
    /* kept: everything an image or a record needs */
    CHECK(has_blob(f.s, f.app.digest));
    CHECK(has_blob(f.s, f.dangling.digest));
    CHECK(has_blob(f.s, f.dang_l.digest));
    CHECK(has_blob(f.s, f.cache_l.digest));
    char *t_base = tree_rel(f.base_d), *t_cache = tree_rel(f.cache_d);
    CHECK(has_path(f.s, t_base));
    CHECK(has_path(f.s, t_cache));
    CHECK(has_path(f.s, "tmp/build-new"));
    CHECK(has_path(f.s, "cache/" KEY1));
    CHECK(has_path(f.s, "mounts/m1"));
    /* removed: the orphan blob and tree (read-only inside), the old tmp
     * entry, the unreadable record */
    CHECK(!has_blob(f.s, f.orphan));
    CHECK(result_has(&r, "blob", f.orphan));
    CHECK(!has_path(f.s, "trees/9999999999999999999999999999999999999999999999999999999999999999"));
    CHECK(result_has(&r, "tree", "9999"));
    /* the single-ID flavour and the owner tables follow their trees */
    char *kept_single = xasprintf("trees/%s-single", digest_hex(f.base_d));
    char *kept_owners = xasprintf("trees/%s-single.owners", digest_hex(f.base_d));
    CHECK(has_path(f.s, kept_single));
    CHECK(has_path(f.s, kept_owners));
    free(kept_single), free(kept_owners);
    CHECK(!has_path(f.s, "trees/8888888888888888888888888888888888888888888888888888888888888888-single"));
    CHECK(!has_path(f.s, "trees/8888888888888888888888888888888888888888888888888888888888888888-single.owners"));
    CHECK(result_has(&r, "tree-owners", "8888"));
    CHECK(has_path(f.s, "trees/not-a-tree"));
    CHECK(!has_path(f.s, "tmp/build-old"));
    CHECK(result_has(&r, "tmp", "build-old"));
    CHECK(!has_path(f.s, "cache/" KEY3));
    CHECK(r.bytes >= 6 + 15);
    /* nothing of gc's own is left in tmp/ */
    DIR *td = fdopendir(openat(f.s->tmp_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    struct dirent *de;
    bool leftover = false;
    while (td && (de = readdir(td)))
        leftover |= strncmp(de->d_name, "gc-", 3) == 0;
    if (td)
        closedir(td);
    CHECK(!leftover);
    free(t_base), free(t_cache);
    gc_result_free(&r);
    /* the store is sound afterwards */
    struct fsck_report rep;
    CHECK(store_fsck(f.s, &rep, &err) == 0);
    for (size_t i = 0; rep.problems && rep.problems[i]; i++)
        fprintf(stderr, "  problem: %s\n", rep.problems[i]);
    CHECK_INT_EQ(strv_len(rep.problems), 0);
    CHECK_INT_EQ(rep.images, 2);
    CHECK_INT_EQ(rep.records, 2);
    fsck_report_free(&rep);
    fixture_free(&f);
}

static bool keep_labelled(void *ud, struct store *s, const char *m, const char *cfg, size_t len)
{
    (void)ud, (void)s, (void)m, (void)len;
    return cfg && strstr(cfg, "\"k\":\"keep\"");
}

TEST(prune_images)
{
    struct fixture f;
    fixture(&f, "prune-images");
    struct gc_session *g = NULL;
    struct gc_result pr = {0}, sw = {0};
    struct kiln_error *err = NULL;
    CHECK(gc_begin(f.s, false, &g, &err) == 0);
    struct gc_image_filter flt = {.all = false};
    CHECK(gc_prune_images(g, &flt, &pr, &err) == 0);
    CHECK(gc_sweep(g, &sw, &err) == 0);
    gc_end(g);
    /* the untagged image is gone with its own layer; shared ones stay */
    CHECK(!has_blob(f.s, f.dangling.digest));
    CHECK(!has_blob(f.s, f.dang_l.digest));
    CHECK(has_blob(f.s, f.base_l.digest));
    CHECK(has_blob(f.s, f.app.digest));
    CHECK(result_has(&pr, "image", "sha256:"));
    CHECK(!result_has(&pr, "untagged", "app:1"));
    struct descriptor d;
    CHECK(store_resolve(f.s, "app:1", &d, NULL, &err) == 0);
    descriptor_free(&d);
    gc_result_free(&pr);
    gc_result_free(&sw);
    /* -a with a filter that keeps labelled images: nothing goes */
    CHECK(gc_begin(f.s, false, &g, &err) == 0);
    flt.all = true;
    flt.keep = keep_labelled;
    CHECK(gc_prune_images(g, &flt, &pr, &err) == 0);
    CHECK_INT_EQ(pr.n, 0);
    gc_result_free(&pr);
    /* -a: everything */
    flt.keep = NULL;
    CHECK(gc_prune_images(g, &flt, &pr, &err) == 0);
    CHECK(result_has(&pr, "untagged", "app:1"));
    CHECK(gc_sweep(g, &sw, &err) == 0);
    gc_end(g);
    CHECK(!has_blob(f.s, f.app.digest));
    CHECK(!has_blob(f.s, f.base_l.digest));
    /* the cache still holds its layers */
    CHECK(has_blob(f.s, f.cache_l.digest));
    CHECK(has_blob(f.s, f.app_l.digest));
    gc_result_free(&pr);
    gc_result_free(&sw);
    fixture_free(&f);
}

TEST(prune_cache)
{
    struct fixture f;
    fixture(&f, "prune-cache");
    struct gc_session *g = NULL;
    struct gc_result pr = {0}, sw = {0};
    struct kiln_error *err = NULL;
    CHECK(gc_begin(f.s, false, &g, &err) == 0);
    CHECK(gc_prune_cache(g, false, -1, &pr, &err) == 0);
    CHECK(gc_sweep(g, &sw, &err) == 0);
    gc_end(g);
    /* unused record, its blob and tree, and the mount are gone; the record
     * of an image's layer stays */
    CHECK(!has_path(f.s, "cache/" KEY1));
    CHECK(has_path(f.s, "cache/" KEY2));
    CHECK(!has_blob(f.s, f.cache_l.digest));
    char *t_cache = tree_rel(f.cache_d);
    CHECK(!has_path(f.s, t_cache));
    free(t_cache);
    CHECK(!has_path(f.s, "mounts/m1"));
    CHECK(result_has(&pr, "mount", "m1"));
    CHECK(result_has(&pr, "record", KEY1));
    CHECK(has_path(f.s, "cache/filehash"));
    gc_result_free(&pr);
    gc_result_free(&sw);
    /* -a: every record, and the file-hash table */
    CHECK(gc_begin(f.s, false, &g, &err) == 0);
    CHECK(gc_prune_cache(g, true, -1, &pr, &err) == 0);
    gc_end(g);
    CHECK(!has_path(f.s, "cache/" KEY2));
    CHECK(!has_path(f.s, "cache/filehash"));
    gc_result_free(&pr);
    fixture_free(&f);
}

TEST(keep_storage)
{
    struct fixture f;
    fixture(&f, "keep-storage");
    /* two more unused records; KEY1 is the oldest */
    static const struct tent x[] = {{"x", 'f', "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}};
    struct descriptor xl;
    char xd[DIGEST_STR_LEN];
    st_layer(f.s, x, 1, true, &xl, xd);
    record(f.s, "4444444444444444444444444444444444444444444444444444444444444444", &xl, xd);
    age(f.s, "cache/" KEY1, 3 * 86400);
    age(f.s, "cache/4444444444444444444444444444444444444444444444444444444444444444", 86400);
    age(f.s, "mounts/m1", 10);
    struct gc_session *g = NULL;
    struct gc_result pr = {0};
    struct kiln_error *err = NULL;
    /* room for the newer record (a plain tar of ~2k) and the mount, not the old one */
    CHECK(gc_begin(f.s, false, &g, &err) == 0);
    CHECK(gc_prune_cache(g, false, (int64_t)xl.size + 100, &pr, &err) == 0);
    gc_end(g);
    CHECK(!has_path(f.s, "cache/" KEY1));
    CHECK(has_path(f.s, "cache/4444444444444444444444444444444444444444444444444444444444444444"));
    CHECK(has_path(f.s, "mounts/m1"));
    CHECK(has_path(f.s, "cache/" KEY2));
    gc_result_free(&pr);
    /* keep 0: all unused ones go, oldest first */
    CHECK(gc_begin(f.s, false, &g, &err) == 0);
    CHECK(gc_prune_cache(g, false, 0, &pr, &err) == 0);
    gc_end(g);
    CHECK(!has_path(f.s, "cache/4444444444444444444444444444444444444444444444444444444444444444"));
    CHECK(!has_path(f.s, "mounts/m1"));
    gc_result_free(&pr);
    descriptor_free(&xl);
    fixture_free(&f);
}

TEST(lock_contract)
{
    struct fixture f;
    fixture(&f, "lock");
    struct kiln_error *err = NULL;
    int shared = -1;
    CHECK(gc_lock_shared(f.s, &shared, &err) == 0);
    /* a running build (shared lock) keeps gc out */
    struct gc_session *g = NULL;
    CHECK(gc_begin(f.s, false, &g, &err) < 0);
    CHECK(err && err->code == EBUSY);
    kiln_error_free(&err);
    /* and builds may run side by side */
    int shared2 = -1;
    CHECK(gc_lock_shared(f.s, &shared2, &err) == 0);
    gc_unlock(shared2);
    gc_unlock(shared);
    CHECK(gc_begin(f.s, false, &g, &err) == 0);
    gc_end(g);
    fixture_free(&f);
}

TEST(refuses_broken_index)
{
    struct fixture f;
    fixture(&f, "broken");
    /* an index entry gc cannot follow: nothing is removed */
    char *idx = NULL;
    size_t len = 0;
    CHECK(fs_read_file_at(f.s->root_fd, "index.json", 1 << 20, &idx, &len) == 0);
    char *bad = xasprintf("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"x\","
                          "\"digest\":\"sha256:5555555555555555555555555555555555555555555555555555"
                          "555555555555\",\"size\":3},%s",
                          strstr(idx, "\"manifests\":[") + 13);
    write_rel(f.s, "index.json", bad);
    struct gc_session *g = NULL;
    struct gc_result r = {0};
    struct kiln_error *err = NULL;
    CHECK(gc_begin(f.s, false, &g, &err) == 0);
    CHECK(gc_sweep(g, &r, &err) < 0);
    CHECK(err && strstr(err->msg, "nothing removed"));
    kiln_error_free(&err);
    gc_end(g);
    CHECK(has_blob(f.s, f.orphan));
    CHECK_INT_EQ(r.n, 0);
    gc_result_free(&r);
    /* and check names the problem */
    struct fsck_report rep;
    CHECK(store_fsck(f.s, &rep, &err) == 0);
    bool named = false;
    for (size_t i = 0; rep.problems[i]; i++)
        named |= strstr(rep.problems[i], "5555555555") && strstr(rep.problems[i], "missing");
    CHECK(named);
    fsck_report_free(&rep);
    free(idx), free(bad);
    fixture_free(&f);
}

TEST(fsck_problems)
{
    struct fixture f;
    fixture(&f, "fsck");
    struct kiln_error *err = NULL;
    /* a corrupt layer, a record whose blob is gone, an old leftover */
    char *rel = xasprintf("blobs/sha256/%s", digest_hex(f.app_l.digest));
    CHECK(fchmodat(f.s->root_fd, rel, 0644, 0) == 0);
    write_rel(f.s, rel, "tampered");
    unlinkat(f.s->blobs_fd, digest_hex(f.cache_l.digest), 0);
    age(f.s, "tmp/build-old", 2 * 86400);
    write_rel(f.s, "blobs/sha256/notahash", "x");
    struct fsck_report rep;
    CHECK(store_fsck(f.s, &rep, &err) == 0);
    const char *want[] = {"content hashes to", "has 8 bytes", "cache record 111111111111",
                          "tmp/build-old", "notahash"};
    for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
        bool found = false;
        for (size_t i = 0; rep.problems[i]; i++)
            found |= strstr(rep.problems[i], want[k]) != NULL;
        harness_case(want[k], found, "problem not reported");
    }
    fsck_report_free(&rep);
    free(rel);
    fixture_free(&f);
}

TEST(usage)
{
    struct fixture f;
    fixture(&f, "usage");
    struct gc_usage u;
    struct kiln_error *err = NULL;
    CHECK(gc_usage(f.s, &u, &err) == 0);
    CHECK_INT_EQ(u.images.total, 2);
    CHECK_INT_EQ(u.images.active, 1);
    CHECK_INT_EQ(u.cache.total, 3);
    CHECK_INT_EQ(u.cache.active, 1);
    CHECK_INT_EQ(u.mounts.total, 1);
    CHECK_INT_EQ(u.mounts.size, strlen("cached package"));
    /* cache: its own layer blob and tree */
    CHECK_INT_EQ(u.cache.size, f.cache_l.size + strlen("data in a tree\n"));
    CHECK(u.images.reclaimable >= f.dang_l.size + 6);
    CHECK(u.images.size > u.images.reclaimable);
    fixture_free(&f);
}

int main(void)
{
    dir = st_tmpdir();
    RUN(sweep);
    RUN(prune_images);
    RUN(prune_cache);
    RUN(keep_storage);
    RUN(lock_contract);
    RUN(refuses_broken_index);
    RUN(fsck_problems);
    RUN(usage);
    fs_rm_rf(dir);
    free(dir);
    return harness_done();
}
