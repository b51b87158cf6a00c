/* The registry client's parsers and policies: WWW-Authenticate challenges,
 * token answers, base64, auth files (read and write), the insecure list,
 * platforms and manifest lists, the retry policy. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "layers/registry_internal.h"
#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"

/* ---- WWW-Authenticate -------------------------------------------------- */

struct ch_case {
    const char *header;
    int ok;
    size_t n;
    enum reg_auth_scheme scheme0;
    const char *realm0, *service0, *scope0;
    enum reg_auth_scheme scheme1;
};

static const struct ch_case ch_cases[] = {
    {"Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
     "scope=\"repository:library/alpine:pull\"",
     1, 1, REG_AUTH_BEARER, "https://auth.docker.io/token", "registry.docker.io",
     "repository:library/alpine:pull", 0},
    {"Basic realm=\"kiln-test\"", 1, 1, REG_AUTH_BASIC, "kiln-test", NULL, NULL, 0},
    {"basic REALM=registry", 1, 1, REG_AUTH_BASIC, "registry", NULL, NULL, 0},
    /* two challenges in one header, spaces around '=' and commas */
    {"Bearer realm = \"https://h/t\" , service=\"s\", Basic realm=\"b\"", 1, 2, REG_AUTH_BEARER,
     "https://h/t", "s", NULL, REG_AUTH_BASIC},
    /* a comma inside a quoted value, escapes */
    {"Bearer realm=\"https://h/t?a=1,b=2\",scope=\"repository:a/b:pull,push\","
     "error=\"insufficient_scope\"",
     1, 1, REG_AUTH_BEARER, "https://h/t?a=1,b=2", NULL, "repository:a/b:pull,push", 0},
    {"Bearer realm=\"say \\\"hi\\\"\"", 1, 1, REG_AUTH_BEARER, "say \"hi\"", NULL, NULL, 0},
    /* token68 then another challenge */
    {"Negotiate abc123==, Basic realm=\"x\"", 1, 2, REG_AUTH_OTHER, NULL, NULL, NULL,
     REG_AUTH_BASIC},
    {"Bearer", 1, 1, REG_AUTH_BEARER, NULL, NULL, NULL, 0},
    {"", 1, 0, 0, NULL, NULL, NULL, 0},
    {"Bearer realm=\"unterminated", 0, 0, 0, NULL, NULL, NULL, 0},
    {"Bearer realm=", 0, 0, 0, NULL, NULL, NULL, 0},
    {"=x", 0, 0, 0, NULL, NULL, NULL, 0},
    {"Bearer realm=\"a\" service=\"b\"", 0, 0, 0, NULL, NULL, NULL, 0},
};

static int str_eq_null(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

TEST(challenges)
{
    for (size_t i = 0; i < ARRAY_SIZE(ch_cases); i++) {
        const struct ch_case *t = &ch_cases[i];
        struct reg_challenge *c = NULL;
        size_t n = 0;
        struct kiln_error *err = NULL;
        int r = reg_challenges_parse(t->header, &c, &n, &err);
        int ok;
        if (!t->ok) {
            ok = r < 0 && err && err->msg[0];
        } else {
            ok = r == 0 && n == t->n;
            if (ok && n >= 1)
                ok = c[0].scheme == t->scheme0 && str_eq_null(c[0].realm, t->realm0) &&
                     str_eq_null(c[0].service, t->service0) && str_eq_null(c[0].scope, t->scope0);
            if (ok && n >= 2)
                ok = c[1].scheme == t->scheme1;
        }
        harness_case(t->header, ok, ok ? NULL : err ? err->msg : "wrong parse");
        kiln_error_free(&err);
        reg_challenges_free(c, n);
    }
    /* caps */
    char *big = xmalloc(9000);
    memset(big, 'a', 8999);
    big[8999] = '\0';
    struct reg_challenge *c = NULL;
    size_t n = 0;
    struct kiln_error *err = NULL;
    CHECK(reg_challenges_parse(big, &c, &n, &err) < 0);
    kiln_error_free(&err);
    free(big);
    struct strbuf sb = STRBUF_INIT;
    strbuf_init(&sb);
    for (int i = 0; i < 20; i++)
        strbuf_addf(&sb, "Basic realm=\"r%d\", ", i);
    CHECK(reg_challenges_parse(sb.buf, &c, &n, &err) < 0);
    kiln_error_free(&err);
    strbuf_release(&sb);
}

TEST(token_answers)
{
    char *tok = NULL;
    int64_t exp = 0;
    struct kiln_error *err = NULL;
    const char *a = "{\"token\":\"abc.def\",\"expires_in\":300,\"issued_at\":\"2024-01-01T00:00:00Z\"}";
    CHECK(reg_token_parse(a, strlen(a), &tok, &exp, &err) == 0);
    CHECK_STR_EQ(tok, "abc.def");
    CHECK_INT_EQ(exp, 300);
    free(tok);
    const char *b = "{\"access_token\":\"xyz\"}";
    CHECK(reg_token_parse(b, strlen(b), &tok, &exp, &err) == 0);
    CHECK_STR_EQ(tok, "xyz");
    CHECK_INT_EQ(exp, 60);
    free(tok);
    const char *c = "{\"token\":\"a\",\"expires_in\":5}";
    CHECK(reg_token_parse(c, strlen(c), &tok, &exp, &err) == 0);
    CHECK_INT_EQ(exp, 60); /* the spec's minimum */
    free(tok);
    const char *bad[] = {"{}", "{\"token\":\"\"}", "{\"token\":\"a\\nb\"}", "[1]", "not json"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        CHECK(reg_token_parse(bad[i], strlen(bad[i]), &tok, &exp, &err) < 0);
        kiln_error_free(&err);
    }
}

/* ---- credentials -------------------------------------------------------- */

TEST(base64)
{
    static const char *const plain[] = {"", "a", "ab", "abc", "user:pass", "ü:\x01\xff"};
    for (size_t i = 0; i < ARRAY_SIZE(plain); i++) {
        char *enc = reg_base64_encode(plain[i], strlen(plain[i]));
        char *dec = NULL;
        size_t len = 0;
        CHECK(reg_base64_decode(enc, &dec, &len) == 0);
        CHECK_INT_EQ(len, strlen(plain[i]));
        CHECK(dec && memcmp(dec, plain[i], len) == 0);
        free(enc);
        free(dec);
    }
    char *enc = reg_base64_encode("user:pass", 9);
    CHECK_STR_EQ(enc, "dXNlcjpwYXNz");
    free(enc);
    char *dec = NULL;
    size_t len = 0;
    CHECK(reg_base64_decode("abc", &dec, &len) < 0);
    CHECK(reg_base64_decode("ab!d", &dec, &len) < 0);
    CHECK(reg_base64_decode("a===", &dec, &len) < 0 || len == 0);
    if (dec)
        free(dec);
}

TEST(auth_keys)
{
    static const char *const cases[][2] = {
        {"https://index.docker.io/v1/", "docker.io"},
        {"index.docker.io", "docker.io"},
        {"registry-1.docker.io", "docker.io"},
        {"docker.io", "docker.io"},
        {"http://LocalHost:5000/", "localhost:5000"},
        {"localhost:5000", "localhost:5000"},
        {"quay.io/ns/repo", "quay.io/ns/repo"},
        {"https://quay.io/v2/", "quay.io"},
        {"docker.io/library/busybox", "docker.io/library/busybox"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        char *k = reg_auth_key_normalize(cases[i][0]);
        harness_case(cases[i][0], strcmp(k, cases[i][1]) == 0, k);
        free(k);
    }
}

static int lookup(const char *json, const char *registry, const char *repo, char **user,
                  char **pass)
{
    struct kiln_error *err = NULL;
    int r = reg_authjson_lookup(json, strlen(json), registry, repo, user, pass, &err);
    kiln_error_free(&err);
    return r;
}

TEST(auth_lookup)
{
    /* "alice:secret", "bob:pw:with:colons", "ns:nspw" */
    const char *json = "{\"auths\":{"
                       "\"https://index.docker.io/v1/\":{\"auth\":\"YWxpY2U6c2VjcmV0\"},"
                       "\"localhost:5000\":{\"auth\":\"Ym9iOnB3OndpdGg6Y29sb25z\"},"
                       "\"localhost:5000/team\":{\"auth\":\"bnM6bnNwdw==\"},"
                       "\"ghcr.io\":{\"identitytoken\":\"x\"}},"
                       "\"credsStore\":\"desktop\"}";
    char *u = NULL, *p = NULL;
    CHECK_INT_EQ(lookup(json, "docker.io", "library/busybox", &u, &p), 0);
    CHECK_STR_EQ(u, "alice");
    CHECK_STR_EQ(p, "secret");
    free(u);
    free(p);
    CHECK_INT_EQ(lookup(json, "localhost:5000", "app", &u, &p), 0);
    CHECK_STR_EQ(u, "bob");
    CHECK_STR_EQ(p, "pw:with:colons");
    free(u);
    free(p);
    /* the most specific entry wins */
    CHECK_INT_EQ(lookup(json, "localhost:5000", "team/app", &u, &p), 0);
    CHECK_STR_EQ(u, "ns");
    free(u);
    free(p);
    CHECK_INT_EQ(lookup(json, "localhost:5000", "teams/app", &u, &p), 0);
    CHECK_STR_EQ(u, "bob");
    free(u);
    free(p);
    CHECK_INT_EQ(lookup(json, "ghcr.io", "x", &u, &p), 1);
    CHECK_INT_EQ(lookup(json, "quay.io", NULL, &u, &p), 1);
    CHECK_INT_EQ(lookup("{}", "quay.io", NULL, &u, &p), 1);
    CHECK(lookup("{\"auths\":{\"q.io\":{\"auth\":\"!!!!\"}}}", "q.io", NULL, &u, &p) < 0);
    CHECK(lookup("{\"auths\":{\"q.io\":{\"auth\":\"bm9jb2xvbg==\"}}}", "q.io", NULL, &u, &p) < 0);
    CHECK(lookup("{", "q.io", NULL, &u, &p) < 0);
}

static char *read_all(const char *path)
{
    char *buf = NULL;
    size_t len = 0;
    if (fs_read_file_at(AT_FDCWD, path, 1 << 20, &buf, &len) < 0)
        return NULL;
    return buf;
}

TEST(auth_file_write)
{
    char dir[] = "/tmp/kiln-test-auth-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char *path = xasprintf("%s/sub/dir/auth.json", dir);
    struct kiln_error *err = NULL;
    bool found = true;
    /* removing from a missing file: nothing found, nothing written */
    CHECK(reg_authfile_update(path, "localhost:5000", NULL, NULL, &found, &err) == 0);
    CHECK(!found);
    CHECK(!fs_exists(path));
    CHECK(reg_authfile_update(path, "localhost:5000", "u1", "p1", NULL, &err) == 0);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    char *sub = xasprintf("%s/sub", dir);
    CHECK(stat(sub, &st) == 0 && (st.st_mode & 0777) == 0700);
    free(sub);
    CHECK(reg_authfile_update(path, "https://index.docker.io/v1/", "u2", "p:2", NULL, &err) == 0);
    /* replacing keeps one entry per key */
    CHECK(reg_authfile_update(path, "http://localhost:5000/", "u3", "p3", NULL, &err) == 0);
    char *text = read_all(path);
    CHECK(text != NULL);
    char *u = NULL, *p = NULL;
    CHECK_INT_EQ(lookup(text, "localhost:5000", "x", &u, &p), 0);
    CHECK_STR_EQ(u, "u3");
    CHECK_STR_EQ(p, "p3");
    free(u);
    free(p);
    CHECK_INT_EQ(lookup(text, "docker.io", "library/x", &u, &p), 0);
    CHECK_STR_EQ(p, "p:2");
    free(u);
    free(p);
    CHECK(strstr(text, "\"docker.io\"") != NULL);
    free(text);
    /* other keys of a Docker config survive */
    const char *docker = "{\"auths\":{\"a.io\":{\"auth\":\"YTpi\"}},\"credsStore\":\"x\","
                         "\"HttpHeaders\":{\"X\":\"1\"},\"n\":1.50}";
    CHECK(fs_write_atomic_at(AT_FDCWD, path, docker, strlen(docker), 0600, false) == 0);
    CHECK(reg_authfile_update(path, "b.io", "b", "c", NULL, &err) == 0);
    text = read_all(path);
    CHECK(text && strstr(text, "credsStore") && strstr(text, "HttpHeaders") &&
          strstr(text, "1.50") && strstr(text, "a.io") && strstr(text, "b.io"));
    free(text);
    CHECK(reg_authfile_update(path, "a.io", NULL, NULL, &found, &err) == 0);
    CHECK(found);
    text = read_all(path);
    CHECK(text && !strstr(text, "a.io") && strstr(text, "b.io"));
    free(text);
    /* all */
    CHECK(reg_authfile_update(path, NULL, NULL, NULL, &found, &err) == 0);
    CHECK(found);
    text = read_all(path);
    CHECK(text && !strstr(text, "b.io") && strstr(text, "credsStore"));
    free(text);
    /* a damaged file is not overwritten */
    CHECK(fs_write_atomic_at(AT_FDCWD, path, "{oops", 5, 0600, false) == 0);
    CHECK(reg_authfile_update(path, "c.io", "c", "d", NULL, &err) < 0);
    kiln_error_free(&err);
    text = read_all(path);
    CHECK_STR_EQ(text, "{oops");
    free(text);
    free(path);
    fs_rm_rf(dir);
}

TEST(auth_file_order)
{
    struct registry_opts o = {0};
    setenv("XDG_RUNTIME_DIR", "/run/user/77", 1);
    setenv("HOME", "/home/h", 1);
    unsetenv("XDG_CONFIG_HOME");
    unsetenv("REGISTRY_AUTH_FILE");
    unsetenv("DOCKER_CONFIG");
    char *w = reg_authfile_for_write(&o);
    CHECK_STR_EQ(w, "/run/user/77/containers/auth.json");
    free(w);
    char **r = reg_authfiles_for_read(&o);
    CHECK_INT_EQ(strv_len(r), 3);
    CHECK_STR_EQ(r[0], "/run/user/77/containers/auth.json");
    CHECK_STR_EQ(r[1], "/home/h/.config/containers/auth.json");
    CHECK_STR_EQ(r[2], "/home/h/.docker/config.json");
    strv_free(r);
    unsetenv("XDG_RUNTIME_DIR");
    w = reg_authfile_for_write(&o);
    CHECK_STR_EQ(w, "/home/h/.config/containers/auth.json");
    free(w);
    setenv("REGISTRY_AUTH_FILE", "/x/auth.json", 1);
    r = reg_authfiles_for_read(&o);
    CHECK_INT_EQ(strv_len(r), 1);
    CHECK_STR_EQ(r[0], "/x/auth.json");
    strv_free(r);
    o.authfile = "/y/a.json";
    w = reg_authfile_for_write(&o);
    CHECK_STR_EQ(w, "/y/a.json");
    free(w);
    unsetenv("REGISTRY_AUTH_FILE");
    /* --creds beats every file */
    o.creds = "me:pw:x";
    char *u = NULL, *p = NULL;
    struct kiln_error *err = NULL;
    CHECK(reg_creds_lookup(&o, "q.io", NULL, &u, &p, &err) == 0);
    CHECK_STR_EQ(u, "me");
    CHECK_STR_EQ(p, "pw:x");
    free(u);
    free(p);
    o.creds = "justme";
    CHECK(reg_creds_lookup(&o, "q.io", NULL, &u, &p, &err) == 0);
    CHECK_STR_EQ(u, "justme");
    CHECK_STR_EQ(p, "");
    free(u);
    free(p);
}

TEST(insecure_and_loopback)
{
    const char *conf = "# test registries\n"
                       "insecure a.example:5000 b.example\n"
                       "  insecure c.example # trailing comment\n"
                       "secure d.example\n"
                       "insecurefoo e.example\n"
                       "#insecure f.example\n";
    CHECK(reg_conf_names_insecure(conf, strlen(conf), "a.example:5000"));
    CHECK(reg_conf_names_insecure(conf, strlen(conf), "b.example"));
    CHECK(reg_conf_names_insecure(conf, strlen(conf), "C.example"));
    CHECK(!reg_conf_names_insecure(conf, strlen(conf), "a.example"));
    CHECK(!reg_conf_names_insecure(conf, strlen(conf), "d.example"));
    CHECK(!reg_conf_names_insecure(conf, strlen(conf), "e.example"));
    CHECK(!reg_conf_names_insecure(conf, strlen(conf), "f.example"));
    setenv("XDG_CONFIG_HOME", "/nonexistent", 1);
    setenv("KILN_INSECURE_REGISTRIES", "x.io:1, y.io", 1);
    CHECK(reg_registry_is_insecure("x.io:1"));
    CHECK(reg_registry_is_insecure("y.io"));
    CHECK(!reg_registry_is_insecure("x.io"));
    unsetenv("KILN_INSECURE_REGISTRIES");
    CHECK(reg_registry_is_loopback("localhost:5000"));
    CHECK(reg_registry_is_loopback("localhost"));
    CHECK(reg_registry_is_loopback("127.0.0.1:5000"));
    CHECK(reg_registry_is_loopback("127.1.2.3"));
    CHECK(reg_registry_is_loopback("[::1]:5000"));
    CHECK(!reg_registry_is_loopback("128.0.0.1:5000"));
    CHECK(!reg_registry_is_loopback("127.0.0.1.example.com"));
    CHECK(!reg_registry_is_loopback("localhost.example.com:5000"));
    CHECK(!reg_registry_is_loopback("docker.io"));
}

/* ---- platforms and manifest lists ------------------------------------------- */

TEST(platforms)
{
    static const char *const cases[][4] = {
        {"linux/amd64", "linux", "amd64", NULL},
        {"linux/arm64/v8", "linux", "arm64", NULL},
        {"linux/arm64", "linux", "arm64", NULL},
        {"linux/arm/v7", "linux", "arm", "v7"},
        {"linux/armhf", "linux", "arm", "v7"},
        {"linux/x86_64", "linux", "amd64", NULL},
        {"linux/aarch64", "linux", "arm64", NULL},
        {"windows/amd64", "windows", "amd64", NULL},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct reg_platform p;
        struct kiln_error *err = NULL;
        int r = reg_platform_parse(cases[i][0], &p, &err);
        int ok = r == 0 && strcmp(p.os, cases[i][1]) == 0 && strcmp(p.arch, cases[i][2]) == 0 &&
                 str_eq_null(p.variant, cases[i][3]);
        harness_case(cases[i][0], ok, err ? err->msg : NULL);
        kiln_error_free(&err);
        if (r == 0)
            reg_platform_free(&p);
    }
    static const char *const bad[] = {"", "linux", "linux/", "/amd64", "linux/amd64/v8/x",
                                      "Linux/AMD64", "linux/am d64"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        struct reg_platform p;
        struct kiln_error *err = NULL;
        int r = reg_platform_parse(bad[i], &p, &err);
        harness_case(bad[i], r < 0 && err, "accepted");
        kiln_error_free(&err);
        if (r == 0)
            reg_platform_free(&p);
    }
    struct reg_platform h;
    reg_platform_host(&h);
    CHECK_STR_EQ(h.os, "linux");
    CHECK(h.arch && h.arch[0]);
    reg_platform_free(&h);
}

#define D(n) "\"sha256:" n n n n n n n n "\""
#define H1 "11111111"
#define H2 "22222222"
#define H3 "33333333"
#define H4 "44444444"
#define H5 "55555555"

static const char index_json[] =
    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
    "\"manifests\":["
    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":" D(H1)
    ",\"size\":100,\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":" D(H2)
    ",\"size\":200,\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}},"
    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":" D(H3)
    ",\"size\":300,\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v6\"}},"
    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":" D(H4)
    ",\"size\":400,\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v7\"}},"
    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":" D(H5)
    ",\"size\":500,\"platform\":{\"architecture\":\"unknown\",\"os\":\"unknown\"}}"
    "]}";

static int select_for(const struct reg_index_entry *e, size_t n, const char *plat)
{
    struct reg_platform p;
    struct kiln_error *err = NULL;
    if (reg_platform_parse(plat, &p, &err) < 0) {
        kiln_error_free(&err);
        return -2;
    }
    int i = reg_index_select(e, n, &p);
    reg_platform_free(&p);
    return i;
}

TEST(manifest_lists)
{
    struct reg_index_entry *e = NULL;
    size_t n = 0;
    struct kiln_error *err = NULL;
    CHECK(reg_index_parse(index_json, strlen(index_json), &e, &n, &err) == 0);
    CHECK_INT_EQ(n, 5);
    CHECK_INT_EQ(select_for(e, n, "linux/amd64"), 0);
    CHECK_INT_EQ(select_for(e, n, "linux/arm64"), 1);
    CHECK_INT_EQ(select_for(e, n, "linux/arm64/v8"), 1);
    CHECK_INT_EQ(select_for(e, n, "linux/arm/v7"), 3);
    CHECK_INT_EQ(select_for(e, n, "linux/arm/v6"), 2);
    CHECK_INT_EQ(select_for(e, n, "linux/arm"), 3); /* arm without variant: v7 */
    CHECK_INT_EQ(select_for(e, n, "linux/s390x"), -1);
    CHECK_INT_EQ(select_for(e, n, "windows/amd64"), -1);
    CHECK_STR_EQ(e[1].desc.digest, "sha256:" H2 H2 H2 H2 H2 H2 H2 H2);
    CHECK_INT_EQ(e[1].desc.size, 200);
    reg_index_free(e, n);

    /* a Docker list; an entry without variant matches a variant request */
    const char *dl = "{\"schemaVersion\":2,\"mediaType\":"
                     "\"application/vnd.docker.distribution.manifest.list.v2+json\","
                     "\"manifests\":[{\"mediaType\":"
                     "\"application/vnd.docker.distribution.manifest.v2+json\",\"digest\":" D(H1)
                     ",\"size\":1,\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\"}}]}";
    CHECK(reg_index_parse(dl, strlen(dl), &e, &n, &err) == 0);
    CHECK_INT_EQ(select_for(e, n, "linux/arm/v7"), 0);
    reg_index_free(e, n);

    static const char *const bad[] = {
        "{\"schemaVersion\":2}",
        "{\"schemaVersion\":1,\"manifests\":[]}",
        "{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"sha256:abc\",\"size\":1}]}",
        "{\"schemaVersion\":2,\"manifests\":[{\"digest\":" D(H1) ",\"size\":-1}]}",
        "[]",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        int r = reg_index_parse(bad[i], strlen(bad[i]), &e, &n, &err);
        harness_case(bad[i], r < 0, "accepted");
        kiln_error_free(&err);
        if (r == 0)
            reg_index_free(e, n);
    }
}

TEST(manifest_sniff)
{
    static const char *const cases[][2] = {
        {"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\"}",
         MT_DOCKER_MANIFEST},
        {"{\"schemaVersion\":2,\"manifests\":[]}", MT_OCI_INDEX},
        {"{\"schemaVersion\":2,\"config\":{},\"layers\":[]}", MT_OCI_MANIFEST},
        {"{\"schemaVersion\":1,\"fsLayers\":[]}", NULL},
        {"garbage", NULL},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        char *mt = reg_manifest_sniff(cases[i][0], strlen(cases[i][0]));
        harness_case(cases[i][0], str_eq_null(mt, cases[i][1]), mt);
        free(mt);
    }
}

/* ---- retries ------------------------------------------------------------------ */

TEST(retry_policy)
{
    time_t now = 1700000000;
    CHECK(reg_status_is_retryable(429));
    CHECK(reg_status_is_retryable(502));
    CHECK(reg_status_is_retryable(503));
    CHECK(reg_status_is_retryable(504));
    CHECK(!reg_status_is_retryable(500));
    CHECK(!reg_status_is_retryable(404));
    CHECK(!reg_status_is_retryable(401));
    CHECK(!reg_status_is_retryable(200));
    /* exponential, capped, bounded */
    CHECK_INT_EQ(reg_retry_delay_ms(1, NULL, now, 500, 10000), 500);
    CHECK_INT_EQ(reg_retry_delay_ms(2, NULL, now, 500, 10000), 1000);
    CHECK_INT_EQ(reg_retry_delay_ms(3, NULL, now, 500, 10000), 2000);
    CHECK_INT_EQ(reg_retry_delay_ms(4, NULL, now, 500, 1500), 1500);
    CHECK_INT_EQ(reg_retry_delay_ms(REG_MAX_ATTEMPTS, NULL, now, 500, 10000), -1);
    CHECK_INT_EQ(reg_retry_delay_ms(0, NULL, now, 500, 10000), -1);
    CHECK_INT_EQ(reg_retry_delay_ms(1, NULL, now, 0, 10000), 0);
    /* Retry-After in seconds, capped */
    CHECK_INT_EQ(reg_retry_delay_ms(1, "3", now, 500, 10000), 3000);
    CHECK_INT_EQ(reg_retry_delay_ms(1, " 0 ", now, 500, 10000), 0);
    CHECK_INT_EQ(reg_retry_delay_ms(1, "86400", now, 500, 10000), REG_RETRY_AFTER_MAX_MS);
    CHECK_INT_EQ(reg_retry_delay_ms(1, "99999999999999999999", now, 500, 10000),
                 REG_RETRY_AFTER_MAX_MS);
    /* Retry-After as an HTTP date: 1700000000 = Tue, 14 Nov 2023 22:13:20 GMT */
    CHECK_INT_EQ(reg_retry_delay_ms(1, "Tue, 14 Nov 2023 22:13:25 GMT", now, 500, 10000), 5000);
    CHECK_INT_EQ(reg_retry_delay_ms(1, "Tue, 14 Nov 2023 22:13:00 GMT", now, 500, 10000), 0);
    CHECK_INT_EQ(reg_retry_delay_ms(1, "Wed, 15 Nov 2023 22:13:20 GMT", now, 500, 10000),
                 REG_RETRY_AFTER_MAX_MS);
    /* garbage: our own back-off */
    CHECK_INT_EQ(reg_retry_delay_ms(2, "soon", now, 500, 10000), 1000);
    /* still bounded with Retry-After */
    CHECK_INT_EQ(reg_retry_delay_ms(REG_MAX_ATTEMPTS, "1", now, 500, 10000), -1);
}

int main(void)
{
    RUN(challenges);
    RUN(token_answers);
    RUN(base64);
    RUN(auth_keys);
    RUN(auth_lookup);
    RUN(auth_file_write);
    RUN(auth_file_order);
    RUN(insecure_and_loopback);
    RUN(platforms);
    RUN(manifest_lists);
    RUN(manifest_sniff);
    RUN(retry_policy);
    return harness_done();
}
