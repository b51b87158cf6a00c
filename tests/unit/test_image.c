/* Image references, configs, manifests and index.json refs. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "layers/image.h"
#include "layers/reference.h"
#include "layers/refs.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"

static void check_ref(const char *in, const char *familiar, const char *full)
{
    struct image_ref r;
    struct kiln_error *err = NULL;
    int rc = ref_parse(in, &r, &err);
    if (!familiar) {
        harness_case(in, rc < 0, rc < 0 ? NULL : "accepted an invalid reference");
        kiln_error_free(&err);
        if (rc == 0)
            ref_free(&r);
        return;
    }
    if (rc < 0) {
        harness_case(in, 0, err->msg);
        kiln_error_free(&err);
        return;
    }
    char *f = ref_familiar(&r), *u = ref_full(&r);
    int ok = strcmp(f, familiar) == 0 && strcmp(u, full) == 0;
    if (!ok)
        fprintf(stderr, "  got %s / %s\n", f, u);
    harness_case(in, ok, ok ? NULL : "normalisation differs");
    free(f);
    free(u);
    ref_free(&r);
}

TEST(references)
{
    check_ref("busybox", "busybox:latest", "docker.io/library/busybox:latest");
    check_ref("busybox:1.36", "busybox:1.36", "docker.io/library/busybox:1.36");
    check_ref("docker.io/library/busybox", "busybox:latest", "docker.io/library/busybox:latest");
    check_ref("index.docker.io/foo/bar:x", "foo/bar:x", "docker.io/foo/bar:x");
    check_ref("localhost:5000/app", "localhost:5000/app:latest", "localhost:5000/app:latest");
    check_ref("localhost/app:v1", "localhost/app:v1", "localhost/app:v1");
    check_ref("ghcr.io/a/b/c:1.0-rc_1", "ghcr.io/a/b/c:1.0-rc_1", "ghcr.io/a/b/c:1.0-rc_1");
    check_ref("app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
              "app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
              "docker.io/library/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    check_ref("a__b--c.d", "a__b--c.d:latest", "docker.io/library/a__b--c.d:latest");
    check_ref("Upper", NULL, NULL);
    check_ref("app:", NULL, NULL);
    check_ref("-app", NULL, NULL);
    check_ref("app@sha256:abc", NULL, NULL);
    check_ref("a___b", NULL, NULL);
    check_ref("", NULL, NULL);
    check_ref("app:bad/tag", NULL, NULL);
}

TEST(config_round_trip)
{
    const char *in =
        "{\"created\":\"2024-01-02T03:04:05Z\",\"architecture\":\"amd64\",\"os\":\"linux\","
        "\"config\":{\"User\":\"65532:65532\",\"ExposedPorts\":{\"8080/tcp\":{},\"53/udp\":{}},"
        "\"Env\":[\"PATH=/bin\",\"A=b c\"],\"Entrypoint\":[\"/app\"],\"Cmd\":[],"
        "\"Volumes\":{\"/data\":{}},\"WorkingDir\":\"/w\",\"Labels\":{\"z\":\"1\",\"a\":\"2\"},"
        "\"StopSignal\":\"SIGQUIT\",\"Healthcheck\":{\"Test\":[\"CMD\",\"true\"],"
        "\"Interval\":30000000000,\"Retries\":3},\"OnBuild\":[\"RUN x\"],"
        "\"Shell\":[\"/bin/bash\",\"-c\"]},\"container_config\":{\"ignored\":1},"
        "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"]},"
        "\"history\":[{\"created\":\"2024-01-02T03:04:05Z\",\"created_by\":\"RUN x\"},"
        "{\"created_by\":\"ENV A=b c\",\"empty_layer\":true}]}";
    struct image_config c;
    struct kiln_error *err = NULL;
    CHECK_INT_EQ(image_config_parse(in, strlen(in), &c, &err), 0);
    if (err)
        return;
    CHECK_STR_EQ(c.user, "65532:65532");
    CHECK_INT_EQ(c.exposed_ports.n, 2);
    CHECK_STR_EQ(c.exposed_ports.keys[0], "53/udp");
    CHECK_STR_EQ(image_config_getenv(&c, "A"), "b c");
    CHECK(c.cmd && c.cmd[0] == NULL);
    CHECK_STR_EQ(strmap_get(&c.labels, "a"), "2");
    CHECK_INT_EQ(c.healthcheck->interval, 30000000000LL);
    CHECK_INT_EQ(c.n_history, 2);
    CHECK(c.history[1].empty_layer);
    char *out = image_config_to_json(&c, NULL);
    struct image_config c2;
    CHECK_INT_EQ(image_config_parse(out, strlen(out), &c2, &err), 0);
    char *out2 = image_config_to_json(&c2, NULL);
    CHECK_STR_EQ(out, out2);
    CHECK(strstr(out, "container_config") == NULL);
    CHECK(strstr(out, "\"Cmd\":[]") != NULL);
    image_config_setenv(&c2, "A", "new");
    image_config_setenv(&c2, "NEW", "1");
    CHECK_STR_EQ(image_config_getenv(&c2, "A"), "new");
    CHECK_INT_EQ(strv_len(c2.env), 3);
    free(out);
    free(out2);
    image_config_free(&c);
    image_config_free(&c2);
}

TEST(config_rejects_garbage)
{
    struct image_config c;
    struct kiln_error *err = NULL;
    CHECK(image_config_parse("[1,2]", 5, &c, &err) < 0);
    kiln_error_free(&err);
    CHECK(image_config_parse("{\"rootfs\":{\"diff_ids\":[\"md5:x\"]}}", 33, &c, &err) < 0);
    kiln_error_free(&err);
    CHECK(image_config_parse("{\"a\":", 5, &c, &err) < 0);
    kiln_error_free(&err);
}

TEST(store_refs)
{
    char tmpl[] = "/tmp/kiln-test-store-XXXXXX";
    CHECK(mkdtemp(tmpl) != NULL);
    struct store *s = NULL;
    struct kiln_error *err = NULL;
    CHECK_INT_EQ(store_open(tmpl, &s, &err), 0);
    if (!s)
        return;
    struct image_config cfg;
    image_config_init(&cfg);
    cfg.diff_ids = strv_new();
    cfg.created = xstrdup("2024-01-01T00:00:00Z");
    struct descriptor d1, d2;
    char id1[DIGEST_STR_LEN];
    CHECK_INT_EQ(image_commit(s, &cfg, NULL, 0, &d1, id1, &err), 0);
    image_config_setenv(&cfg, "X", "1");
    CHECK_INT_EQ(image_commit(s, &cfg, NULL, 0, &d2, NULL, &err), 0);
    CHECK_INT_EQ(store_tag(s, "app", &d1, &err), 0);
    CHECK_INT_EQ(store_tag(s, "docker.io/library/app:2", &d1, &err), 0);
    struct descriptor got;
    char *name = NULL;
    CHECK_INT_EQ(store_resolve(s, "app:latest", &got, &name, &err), 0);
    CHECK_STR_EQ(got.digest, d1.digest);
    CHECK_STR_EQ(name, "app:latest");
    free(name);
    descriptor_free(&got);
    /* by image id prefix */
    char prefix[20];
    snprintf(prefix, sizeof(prefix), "%.12s", id1 + 7);
    CHECK_INT_EQ(store_resolve(s, prefix, &got, NULL, &err), 0);
    CHECK_STR_EQ(got.digest, d1.digest);
    descriptor_free(&got);
    /* moving a tag leaves the old image untagged only if nothing names it */
    CHECK_INT_EQ(store_tag(s, "app", &d2, &err), 0);
    struct store_index idx;
    CHECK_INT_EQ(store_index_read(s, &idx, &err), 0);
    CHECK_INT_EQ(idx.n, 2);
    store_index_free(&idx);
    CHECK_INT_EQ(store_tag(s, "app:2", &d2, &err), 0);
    CHECK_INT_EQ(store_index_read(s, &idx, &err), 0);
    CHECK_INT_EQ(idx.n, 3); /* app, app:2, and d1 untagged */
    int untagged = 0;
    for (size_t i = 0; i < idx.n; i++)
        untagged += index_entry_name(&idx.entries[i]) == NULL;
    CHECK_INT_EQ(untagged, 1);
    store_index_free(&idx);
    bool found = false;
    CHECK_INT_EQ(store_untag(s, "app:2", &found, &err), 0);
    CHECK(found);
    CHECK(store_resolve(s, "nope", &got, NULL, &err) < 0);
    CHECK(err && strstr(err->msg, "no such image"));
    kiln_error_free(&err);
    descriptor_free(&d1);
    descriptor_free(&d2);
    image_config_free(&cfg);
    store_close(s);
    fs_rm_rf(tmpl);
}

int main(void)
{
    RUN(references);
    RUN(config_round_trip);
    RUN(config_rejects_garbage);
    RUN(store_refs);
    return harness_done();
}
