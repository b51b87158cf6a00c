/* Transports: reference parsing as containers/image does it, and images
 * copied through OCI layouts, OCI archives and docker archives (kiln's own
 * and hand-made ones in the skopeo/older-docker shape), with their
 * verification; the flattened rootfs export with whiteouts. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "layers/archive.h"
#include "layers/transport.h"
#include "lib/json.h"
#include "lib/platform.h"
#include "storetest.h"

/* ---- parsing ------------------------------------------------------------ */

static const struct {
    const char *in;
    int kind; /* -1: must fail */
    const char *path, *ref;
    int index;
} parse_cases[] = {
    {"alpine", TRANSPORT_DOCKER, NULL, "alpine", -1},
    {"docker://alpine:3.19", TRANSPORT_DOCKER, NULL, "alpine:3.19", -1},
    {"localhost:5000/app:1", TRANSPORT_DOCKER, NULL, "localhost:5000/app:1", -1},
    {"ghcr.io/a/b@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
     TRANSPORT_DOCKER, NULL,
     "ghcr.io/a/b@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", -1},
    {"oci:/tmp/lay", TRANSPORT_OCI, "/tmp/lay", NULL, -1},
    {"oci:/tmp/lay:v1", TRANSPORT_OCI, "/tmp/lay", "v1", -1},
    {"oci:rel/dir:app:1.0", TRANSPORT_OCI, "rel/dir", "app:1.0", -1},
    {"oci:/tmp/lay:docker.io/library/app:1", TRANSPORT_OCI, "/tmp/lay",
     "docker.io/library/app:1", -1},
    {"oci:/tmp/lay:a--b+c@d", TRANSPORT_OCI, "/tmp/lay", "a--b+c@d", -1},
    {"oci:/tmp/lay:@3", TRANSPORT_OCI, "/tmp/lay", NULL, 3},
    {"oci:/tmp/lay:", TRANSPORT_OCI, "/tmp/lay", NULL, -1},
    {"oci-archive:/x/img.tar:latest", TRANSPORT_OCI_ARCHIVE, "/x/img.tar", "latest", -1},
    {"oci-archive:-", TRANSPORT_OCI_ARCHIVE, "-", NULL, -1},
    {"docker-archive:/x/d.tar", TRANSPORT_DOCKER_ARCHIVE, "/x/d.tar", NULL, -1},
    {"docker-archive:/x/d.tar:app:1", TRANSPORT_DOCKER_ARCHIVE, "/x/d.tar", "app:1", -1},
    {"docker-archive:/x/d.tar:app", TRANSPORT_DOCKER_ARCHIVE, "/x/d.tar", "app:latest", -1},
    {"docker-archive:/x/d.tar:docker.io/library/app:2", TRANSPORT_DOCKER_ARCHIVE, "/x/d.tar",
     "app:2", -1},
    {"docker-archive:/x/d.tar:localhost:5000/a/b:c", TRANSPORT_DOCKER_ARCHIVE, "/x/d.tar",
     "localhost:5000/a/b:c", -1},
    {"docker-archive:/x/d.tar:@0", TRANSPORT_DOCKER_ARCHIVE, "/x/d.tar", NULL, 0},
    /* errors */
    {"", -1, NULL, NULL, -1},
    {"oci:", -1, NULL, NULL, -1},
    {"oci::v1", -1, NULL, NULL, -1},
    {"oci:/x:bad tag", -1, NULL, NULL, -1},
    {"oci:/x:-lead", -1, NULL, NULL, -1},
    {"oci:/x:a..b", -1, NULL, NULL, -1},
    {"oci:/x:@-1", -1, NULL, NULL, -1},
    {"oci:/x:@x", -1, NULL, NULL, -1},
    {"docker-archive:/x/d.tar:app@sha256:"
     "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
     -1, NULL, NULL, -1},
    {"docker-archive:/x/d.tar:UPPER", -1, NULL, NULL, -1},
    {"dir:/x", -1, NULL, NULL, -1},
    {"containers-storage:app", -1, NULL, NULL, -1},
    {"docker:alpine", -1, NULL, NULL, -1},
    {"docker://", -1, NULL, NULL, -1},
    {"Upper:1", -1, NULL, NULL, -1},
};

static bool str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

TEST(parse)
{
    for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
        struct transport_ref r;
        struct kiln_error *err = NULL;
        int rc = transport_parse(parse_cases[i].in, &r, &err);
        char name[128];
        snprintf(name, sizeof(name), "parse '%s'", parse_cases[i].in);
        if (parse_cases[i].kind < 0) {
            harness_case(name, rc < 0 && err && err->msg[0], "accepted");
            kiln_error_free(&err);
            if (rc == 0)
                transport_ref_free(&r);
            continue;
        }
        bool ok = rc == 0 && (int)r.kind == parse_cases[i].kind &&
                  str_eq(r.path, parse_cases[i].path) && str_eq(r.ref, parse_cases[i].ref) &&
                  r.index == parse_cases[i].index;
        if (!ok)
            fprintf(stderr, "  got rc=%d kind=%d path=%s ref=%s index=%d (%s)\n", rc,
                    rc == 0 ? (int)r.kind : -1, rc == 0 && r.path ? r.path : "-",
                    rc == 0 && r.ref ? r.ref : "-", rc == 0 ? r.index : -9,
                    err ? err->msg : "");
        harness_case(name, ok, ok ? NULL : "parsed differently");
        kiln_error_free(&err);
        if (rc == 0) {
            /* the string form parses back to the same thing */
            char *str = transport_ref_string(&r);
            struct transport_ref r2;
            if (transport_parse(str, &r2, &err) == 0) {
                harness_case(str, r2.kind == r.kind && str_eq(r2.path, r.path) &&
                                      str_eq(r2.ref, r.ref) && r2.index == r.index,
                             "string form does not round-trip");
                transport_ref_free(&r2);
            } else {
                harness_case(str, 0, err->msg);
                kiln_error_free(&err);
            }
            free(str);
            transport_ref_free(&r);
        }
    }
}

TEST(normalize)
{
    static const char *const cases[][2] = {
        {"./a/b", "a/b"},     {"/a//b/", "a/b"}, {"a/./b", "a/b"},       {"a/../b", "b"},
        {"../a", NULL},       {"a/../../b", NULL}, {"./", NULL},         {"", NULL},
        {"blobs/sha256/x", "blobs/sha256/x"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = archive_path_normalize(cases[i][0]);
        harness_case(cases[i][0], str_eq(got, cases[i][1]), got ? got : "(null)");
        free(got);
    }
}

/* ---- a test image ----------------------------------------------------- */

static char *dir;
static struct store *src;
static struct descriptor app_manifest;

static void setup(void)
{
    dir = st_tmpdir();
    src = st_store(dir, "src");
    static const struct tent l1[] = {{"bin", 'd', NULL}, {"bin/hello", 'f', "hello\n"},
                                     {"etc", 'd', NULL}, {"etc/os", 'f', "kiln\n"}};
    static const struct tent l2[] = {{"etc", 'd', NULL}, {"etc/extra", 'f', "more\n"}};
    struct descriptor layers[2];
    char diffs[2][DIGEST_STR_LEN];
    st_layer(src, l1, 4, false, &layers[0], diffs[0]);
    st_layer(src, l2, 2, false, &layers[1], diffs[1]);
    st_image(src, "app:1", layers, diffs, 2, NULL, NULL, &app_manifest);
    struct kiln_error *err = NULL;
    if (store_tag(src, "example.com/team/app:latest", &app_manifest, &err) < 0)
        abort();
    descriptor_free(&layers[0]);
    descriptor_free(&layers[1]);
}

static bool store_named(struct store *s, const char *name, const char *digest)
{
    struct descriptor d;
    struct kiln_error *err = NULL;
    if (store_resolve(s, name, &d, NULL, &err) < 0) {
        fprintf(stderr, "  %s\n", err->msg);
        kiln_error_free(&err);
        return false;
    }
    bool ok = strcmp(d.digest, digest) == 0;
    if (!ok)
        fprintf(stderr, "  %s is %s, want %s\n", name, d.digest, digest);
    descriptor_free(&d);
    return ok;
}

static int load_file(struct store *s, const char *path, struct transport_image **imgs,
                     size_t *n, struct kiln_error **err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int r = transport_load_fd(s, fd, path, imgs, n, err);
    close(fd);
    return r;
}

TEST(oci_dir_round_trip)
{
    char *lay = path_join(dir, "layout");
    char *ref = xasprintf("oci:%s:v1", lay);
    struct transport_ref t;
    struct kiln_error *err = NULL;
    CHECK(transport_parse(ref, &t, &err) == 0);
    CHECK(transport_export(src, &app_manifest, NULL, 1, &t, &err) == 0);
    if (err)
        fprintf(stderr, "  %s\n", err->msg);
    /* a second image (by name) into the same layout, then v1 again: replaced */
    char *ref2 = xasprintf("oci:%s:v2", lay);
    struct transport_ref t2;
    CHECK(transport_parse(ref2, &t2, &err) == 0);
    CHECK(transport_export(src, &app_manifest, NULL, 1, &t2, &err) == 0);
    CHECK(transport_export(src, &app_manifest, NULL, 1, &t, &err) == 0);
    char *idx = path_join(lay, "index.json");
    char *buf = NULL;
    size_t len = 0;
    CHECK(fs_read_file_at(AT_FDCWD, idx, 1 << 20, &buf, &len) == 0);
    yajl_val root = NULL;
    CHECK(buf && json_parse(buf, len, &root, &err) == 0);
    yajl_val m = json_get_arr(root, "manifests");
    CHECK_INT_EQ(m ? m->u.array.len : 0, 2);
    yajl_tree_free(root);
    free(buf);

    struct store *dst = st_store(dir, "dst-oci");
    struct descriptor got = {0};
    CHECK(transport_import(dst, &t, &got, &err) == 0);
    if (err)
        fprintf(stderr, "  %s\n", err->msg);
    CHECK_STR_EQ(got.digest, app_manifest.digest);
    /* a bare tag names the image after the directory */
    CHECK(store_named(dst, "layout:v1", app_manifest.digest));
    descriptor_free(&got);
    /* two images and no tag: ambiguous */
    char *noref = xasprintf("oci:%s", lay);
    struct transport_ref t3;
    CHECK(transport_parse(noref, &t3, &err) == 0);
    CHECK(transport_import(dst, &t3, &got, &err) < 0);
    CHECK(err && strstr(err->msg, "holds 2 images"));
    kiln_error_free(&err);
    /* @1 picks the second */
    char *at1 = xasprintf("oci:%s:@1", lay);
    struct transport_ref t4;
    CHECK(transport_parse(at1, &t4, &err) == 0);
    CHECK(transport_import(dst, &t4, &got, &err) == 0);
    descriptor_free(&got);
    /* a tag that is not there */
    char *nope = xasprintf("oci:%s:nope", lay);
    struct transport_ref t5;
    CHECK(transport_parse(nope, &t5, &err) == 0);
    CHECK(transport_import(dst, &t5, &got, &err) < 0);
    CHECK(err && strstr(err->msg, "no image named 'nope'"));
    kiln_error_free(&err);
    transport_ref_free(&t);
    transport_ref_free(&t2);
    transport_ref_free(&t3);
    transport_ref_free(&t4);
    transport_ref_free(&t5);
    store_close(dst);
    free(lay), free(ref), free(ref2), free(idx), free(noref), free(at1), free(nope);
}

static void archive_round_trip(enum transport_kind kind, const char *file)
{
    char *path = path_join(dir, file);
    struct transport_ref t = {.kind = kind, .path = path, .index = -1};
    char *names[] = {"app:1", "example.com/team/app:latest"};
    struct descriptor ms[2];
    ms[0] = app_manifest;
    ms[1] = app_manifest;
    struct kiln_error *err = NULL;
    CHECK(transport_export(src, ms, names, 2, &t, &err) == 0);
    if (err)
        fprintf(stderr, "  %s\n", err->msg);
    /* reproducible: a second save is the same bytes */
    char *path2 = xasprintf("%s.again", path);
    struct transport_ref t2 = {.kind = kind, .path = path2, .index = -1};
    CHECK(transport_export(src, ms, names, 2, &t2, &err) == 0);
    char *a = NULL, *b = NULL;
    size_t al = 0, bl = 0;
    CHECK(fs_read_file_at(AT_FDCWD, path, 64 << 20, &a, &al) == 0);
    CHECK(fs_read_file_at(AT_FDCWD, path2, 64 << 20, &b, &bl) == 0);
    CHECK(a && b && al == bl && memcmp(a, b, al) == 0);
    free(a), free(b);

    char *sub = xasprintf("dst-%s", file);
    struct store *dst = st_store(dir, sub);
    struct transport_image *imgs = NULL;
    size_t n = 0;
    CHECK(load_file(dst, path, &imgs, &n, &err) == 0);
    if (err)
        fprintf(stderr, "  %s\n", err->msg);
    CHECK_INT_EQ(n, 1);
    if (n == 1) {
        CHECK_STR_EQ(imgs[0].manifest.digest, app_manifest.digest);
        CHECK_INT_EQ(strv_len(imgs[0].names), 2);
    }
    CHECK(store_named(dst, "app:1", app_manifest.digest));
    CHECK(store_named(dst, "example.com/team/app:latest", app_manifest.digest));
    transport_images_free(imgs, n);
    /* transport_import with a name picks it */
    struct transport_ref t3;
    char *ref = kind == TRANSPORT_DOCKER_ARCHIVE ? xasprintf("docker-archive:%s:app:1", path)
                                                 : xasprintf("oci-archive:%s:1", path);
    CHECK(transport_parse(ref, &t3, &err) == 0);
    struct descriptor got = {0};
    CHECK(transport_import(dst, &t3, &got, &err) == 0);
    if (err)
        fprintf(stderr, "  %s\n", err->msg);
    CHECK_STR_EQ(got.digest, app_manifest.digest);
    descriptor_free(&got);
    transport_ref_free(&t3);
    store_close(dst);
    free(sub), free(ref), free(path), free(path2);
}

TEST(docker_archive_round_trip)
{
    archive_round_trip(TRANSPORT_DOCKER_ARCHIVE, "d.tar");
}

TEST(oci_archive_round_trip)
{
    archive_round_trip(TRANSPORT_OCI_ARCHIVE, "o.tar");
}

/* ---- hand-made archives ------------------------------------------------ */

struct afile {
    const char *path;
    const char *data; /* NULL with link: a symlink */
    size_t len;
    const char *link;
};

static void write_archive_file(const char *path, const struct afile *f, size_t n, bool gzip)
{
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    if (gzip)
        archive_write_add_filter_gzip(a);
    if (archive_write_open_filename(a, path) != ARCHIVE_OK)
        abort();
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, f[i].path);
        if (f[i].link) {
            archive_entry_set_filetype(e, AE_IFLNK);
            archive_entry_set_symlink(e, f[i].link);
            archive_entry_set_perm(e, 0777);
        } else {
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_perm(e, 0644);
            archive_entry_set_size(e, (la_int64_t)f[i].len);
        }
        archive_write_header(a, e);
        if (!f[i].link && f[i].len)
            archive_write_data(a, f[i].data, f[i].len);
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
}

/* The skopeo / pre-25 docker shape: <hex>.json config, layers as plain
 * tars, one of them behind a symlink (as docker wrote shared layers). */
static void legacy_archive(const char *path, bool corrupt_layer, bool gzip_archive,
                           char ret_diff[DIGEST_STR_LEN])
{
    static const struct tent l1[] = {{"a", 'f', "one\n"}};
    size_t tl = 0;
    char *tar = st_tar(l1, 1, &tl);
    char diff[DIGEST_STR_LEN];
    sha256_digest_of(tar, tl, diff);
    memcpy(ret_diff, diff, DIGEST_STR_LEN);
    char *cfg = xasprintf("{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":"
                          "\"2024-05-06T07:08:09Z\",\"config\":{\"Env\":[\"A=1\"]},"
                          "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"%s\",\"%s\"]}}",
                          diff, diff);
    char cdig[DIGEST_STR_LEN];
    sha256_digest_of(cfg, strlen(cfg), cdig);
    char *cname = xasprintf("%s.json", digest_hex(cdig));
    char *manifest = xasprintf("[{\"Config\":\"%s\",\"RepoTags\":[\"docker.io/library/legacy:1\","
                               "\"legacy:2\"],\"Layers\":[\"abc/layer.tar\",\"def/layer.tar\"]}]",
                               cname);
    if (corrupt_layer)
        tar[600] ^= 1;
    struct afile files[] = {
        {"repositories", "{}", 2, NULL},
        {cname, cfg, strlen(cfg), NULL},
        {"abc/VERSION", "1.0", 3, NULL},
        {"abc/layer.tar", tar, tl, NULL},
        {"def/layer.tar", NULL, 0, "../abc/layer.tar"},
        {"manifest.json", manifest, strlen(manifest), NULL},
    };
    write_archive_file(path, files, sizeof(files) / sizeof(files[0]), gzip_archive);
    free(tar), free(cfg), free(cname), free(manifest);
}

TEST(legacy_docker_archive)
{
    char *path = path_join(dir, "legacy.tar.gz");
    char diff[DIGEST_STR_LEN];
    legacy_archive(path, false, true, diff);
    struct store *dst = st_store(dir, "dst-legacy");
    struct transport_image *imgs = NULL;
    size_t n = 0;
    struct kiln_error *err = NULL;
    CHECK(load_file(dst, path, &imgs, &n, &err) == 0);
    if (err)
        fprintf(stderr, "  %s\n", err->msg);
    CHECK_INT_EQ(n, 1);
    if (n == 1) {
        CHECK_INT_EQ(strv_len(imgs[0].names), 2);
        struct image img;
        CHECK(image_load(dst, &imgs[0].manifest, &img, &err) == 0);
        CHECK_INT_EQ(img.manifest.n_layers, 2);
        if (img.manifest.n_layers == 2) {
            /* plain layers keep their bytes: digest = diff_id */
            CHECK_STR_EQ(img.manifest.layers[0].media_type, MT_OCI_LAYER_TAR);
            CHECK_STR_EQ(img.manifest.layers[1].digest, diff);
        }
        CHECK_STR_EQ(image_config_getenv(&img.config, "A"), "1");
        image_free(&img);
        CHECK(store_named(dst, "legacy:1", imgs[0].manifest.digest));
        CHECK(store_named(dst, "legacy:2", imgs[0].manifest.digest));
    }
    transport_images_free(imgs, n);

    /* a layer that does not match its diff_id is refused */
    char *bad = path_join(dir, "legacy-bad.tar");
    legacy_archive(bad, true, false, diff);
    imgs = NULL;
    n = 0;
    CHECK(load_file(dst, bad, &imgs, &n, &err) < 0);
    CHECK(err && strstr(err->msg, "diff_id"));
    kiln_error_free(&err);
    store_close(dst);
    free(path), free(bad);
}

TEST(corrupt_archives)
{
    struct store *dst = st_store(dir, "dst-corrupt");
    struct kiln_error *err = NULL;
    struct transport_image *imgs = NULL;
    size_t n = 0;
    /* a blob whose content is not its name */
    char *p1 = path_join(dir, "c1.tar");
    struct afile f1[] = {
        {"oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}", 30, NULL},
        {"blobs/sha256/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
         "not it", 6, NULL},
        {"index.json", "{\"schemaVersion\":2,\"manifests\":[]}", 35, NULL},
    };
    write_archive_file(p1, f1, 3, false);
    CHECK(load_file(dst, p1, &imgs, &n, &err) < 0);
    CHECK(err && strstr(err->msg, "corrupt"));
    kiln_error_free(&err);
    /* an index naming a blob that is not there */
    char *p2 = path_join(dir, "c2.tar");
    const char *idx2 = "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/"
                       "vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:"
                       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\","
                       "\"size\":10}]}";
    struct afile f2[] = {{"index.json", idx2, strlen(idx2), NULL}};
    write_archive_file(p2, f2, 1, false);
    CHECK(load_file(dst, p2, &imgs, &n, &err) < 0);
    CHECK(err && strstr(err->msg, "no 'blobs/sha256/0123"));
    kiln_error_free(&err);
    /* entries that climb out */
    char *p3 = path_join(dir, "c3.tar");
    struct afile f3[] = {{"../evil", "x", 1, NULL}};
    write_archive_file(p3, f3, 1, false);
    CHECK(load_file(dst, p3, &imgs, &n, &err) < 0);
    CHECK(err && strstr(err->msg, "outside"));
    kiln_error_free(&err);
    /* neither format */
    char *p4 = path_join(dir, "c4.tar");
    struct afile f4[] = {{"hello", "x", 1, NULL}};
    write_archive_file(p4, f4, 1, false);
    CHECK(load_file(dst, p4, &imgs, &n, &err) < 0);
    CHECK(err && strstr(err->msg, "neither"));
    kiln_error_free(&err);
    /* not a tar at all */
    char *p5 = path_join(dir, "c5.tar");
    CHECK(fs_write_atomic_at(AT_FDCWD, p5, "garbage garbage garbage", 23, 0644, false) == 0);
    CHECK(load_file(dst, p5, &imgs, &n, &err) < 0);
    kiln_error_free(&err);
    /* manifest.json of the wrong shape */
    char *p6 = path_join(dir, "c6.tar");
    struct afile f6[] = {{"manifest.json", "{\"Config\":1}", 12, NULL}};
    write_archive_file(p6, f6, 1, false);
    CHECK(load_file(dst, p6, &imgs, &n, &err) < 0);
    CHECK(err && strstr(err->msg, "manifest.json"));
    kiln_error_free(&err);
    /* JSON nested deeper than any image document (yajl would recurse) */
    char *p7 = path_join(dir, "c7.tar");
    size_t deep = 100000;
    char *nest = xmalloc(2 * deep + 1);
    memset(nest, '[', deep);
    memset(nest + deep, ']', deep);
    nest[2 * deep] = '\0';
    struct afile f7[] = {{"manifest.json", nest, 2 * deep, NULL}};
    write_archive_file(p7, f7, 1, false);
    CHECK(load_file(dst, p7, &imgs, &n, &err) < 0);
    CHECK(err && strstr(err->msg, "nested deeper"));
    kiln_error_free(&err);
    free(nest), free(p7);
    /* nothing was named */
    struct store_index idx;
    CHECK(store_index_read(dst, &idx, &err) == 0);
    CHECK_INT_EQ(idx.n, 0);
    store_index_free(&idx);
    store_close(dst);
    free(p1), free(p2), free(p3), free(p4), free(p5), free(p6);
}

TEST(image_index_platform)
{
    /* an OCI layout whose index.json points at an image index with two
     * platforms; only this machine's is present and imported */
    char *lay = path_join(dir, "multi");
    struct transport_ref t = {.kind = TRANSPORT_OCI, .path = lay, .index = -1};
    struct kiln_error *err = NULL;
    CHECK(transport_export(src, &app_manifest, NULL, 1, &t, &err) == 0);
    char *mi = xasprintf(
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
        "\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
        "\"digest\":\"sha256:1111111111111111111111111111111111111111111111111111111111111111\","
        "\"size\":5,\"platform\":{\"architecture\":\"s390x\",\"os\":\"linux\"}},"
        "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\","
        "\"size\":%llu,\"platform\":{\"architecture\":\"%s\",\"os\":\"linux\"}}]}",
        app_manifest.digest, (unsigned long long)app_manifest.size, platform_arch());
    char mdig[DIGEST_STR_LEN];
    sha256_digest_of(mi, strlen(mi), mdig);
    char *bp = xasprintf("%s/blobs/sha256/%s", lay, digest_hex(mdig));
    CHECK(fs_write_atomic_at(AT_FDCWD, bp, mi, strlen(mi), 0644, false) == 0);
    char *idx = xasprintf("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/"
                          "vnd.oci.image.index.v1+json\",\"digest\":\"%s\",\"size\":%zu,"
                          "\"annotations\":{\"org.opencontainers.image.ref.name\":\"multi:7\"}}]}",
                          mdig, strlen(mi));
    char *ip = path_join(lay, "index.json");
    CHECK(fs_write_atomic_at(AT_FDCWD, ip, idx, strlen(idx), 0644, false) == 0);
    struct store *dst = st_store(dir, "dst-multi");
    struct descriptor got = {0};
    CHECK(transport_import(dst, &t, &got, &err) == 0);
    if (err)
        fprintf(stderr, "  %s\n", err->msg);
    CHECK_STR_EQ(got.digest, app_manifest.digest);
    CHECK(store_named(dst, "multi:7", app_manifest.digest));
    descriptor_free(&got);
    store_close(dst);
    free(lay), free(mi), free(bp), free(idx), free(ip);
}

/* ---- rootfs export -------------------------------------------------- */

static char **tar_listing(const char *path)
{
    char **v = strv_new();
    struct archive *a = archive_read_new();
    archive_read_support_format_tar(a);
    if (archive_read_open_filename(a, path, 10240) != ARCHIVE_OK)
        abort();
    struct archive_entry *e;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        char *s = NULL;
        if (archive_entry_filetype(e) == AE_IFREG) {
            char buf[64] = "";
            la_ssize_t n = archive_read_data(a, buf, sizeof(buf) - 1);
            s = xasprintf("%s=%.*s", archive_entry_pathname(e), (int)(n > 0 ? n : 0), buf);
        } else {
            s = xstrdup(archive_entry_pathname(e));
        }
        strv_push_take(&v, s);
    }
    archive_read_free(a);
    return v;
}

TEST(rootfs_whiteouts)
{
    static const struct tent l1[] = {
        {"a", 'd', NULL},       {"a/f1", 'f', "1"},  {"a/f2", 'f', "2"}, {"b", 'f', "b"},
        {"d", 'd', NULL},       {"d/x", 'f', "x"},   {"e", 'd', NULL},   {"e/sub", 'd', NULL},
        {"e/sub/deep", 'f', "deep"}, {"ln", 'l', "a/f2"},
    };
    static const struct tent l2[] = {
        {"a/.wh.f1", 'f', ""}, {".wh.b", 'f', ""},     {"d", 'd', NULL},
        {"d/.wh..wh..opq", 'f', ""}, {"d/y", 'f', "y"}, {"e", 'f', "now a file"},
        {"a/f2", 'f', "2bis"},
    };
    static const struct tent l3[] = {{"b", 'd', NULL}, {"b/new", 'f', "n"}};
    struct descriptor layers[3];
    char diffs[3][DIGEST_STR_LEN];
    st_layer(src, l1, sizeof(l1) / sizeof(l1[0]), false, &layers[0], diffs[0]);
    st_layer(src, l2, sizeof(l2) / sizeof(l2[0]), true, &layers[1], diffs[1]);
    st_layer(src, l3, 2, false, &layers[2], diffs[2]);
    struct descriptor m;
    st_image(src, "wh:1", layers, diffs, 3, NULL, NULL, &m);
    char *out = path_join(dir, "rootfs.tar");
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    struct kiln_error *err = NULL;
    CHECK(image_export_rootfs(src, &m, fd, &err) == 0);
    if (err)
        fprintf(stderr, "  %s\n", err->msg);
    close(fd);
    char **got = tar_listing(out);
    static const char *const want[] = {"a/", "ln", "d/", "a/f2=2bis", "e=now a file", "d/y=y",
                                       "b/", "b/new=n"};
    bool ok = strv_len(got) == sizeof(want) / sizeof(want[0]);
    for (size_t i = 0; ok && i < sizeof(want) / sizeof(want[0]); i++)
        ok = strv_contains(got, want[i]);
    if (!ok)
        for (size_t i = 0; got[i]; i++)
            fprintf(stderr, "  got %s\n", got[i]);
    harness_case("rootfs whiteouts", ok, ok ? NULL : "wrong entries");
    strv_free(got);
    for (int i = 0; i < 3; i++)
        descriptor_free(&layers[i]);
    descriptor_free(&m);
    free(out);
}

int main(void)
{
    RUN(parse);
    RUN(normalize);
    setup();
    RUN(oci_dir_round_trip);
    RUN(docker_archive_round_trip);
    RUN(oci_archive_round_trip);
    RUN(legacy_docker_archive);
    RUN(corrupt_archives);
    RUN(image_index_platform);
    RUN(rootfs_whiteouts);
    descriptor_free(&app_manifest);
    store_close(src);
    fs_rm_rf(dir);
    free(dir);
    return harness_done();
}
