/* The engine's pure parts: --chmod values, BuildKit's history times and
 * duration texts, cache keys and records, the stage environment. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/cache.h"
#include "engine/copy.h"
#include "engine/history.h"
#include "engine/internal.h"
#include "harness.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

static mode_t chmod_of(const char *spec, mode_t mode, int *ok)
{
    mode_t out = 0;
    *ok = chmod_apply(spec, mode, &out) == 0;
    return out;
}

TEST(chmod_octal_and_symbolic)
{
    static const struct {
        const char *spec;
        mode_t in, want;
    } cases[] = {
        {"755", S_IFREG | 0600, S_IFREG | 0755},
        {"0644", S_IFDIR | 0700, S_IFDIR | 0644},
        {"4755", S_IFREG | 0644, S_IFREG | 04755},
        {"u+x", S_IFREG | 0644, S_IFREG | 0744},
        {"g-r,o=", S_IFREG | 0644, S_IFREG | 0600},
        {"a+X", S_IFREG | 0644, S_IFREG | 0644},  /* X: not for a plain file */
        {"a+X", S_IFREG | 0744, S_IFREG | 0755},  /* ... unless someone may run it */
        {"a+X", S_IFDIR | 0700, S_IFDIR | 0711},  /* always for directories */
        {"+w", S_IFREG | 0444, S_IFREG | 0666},
        {"u=rwx,g=rx,o=", S_IFREG | 0, S_IFREG | 0750},
        {"ug+s", S_IFREG | 0755, S_IFREG | 06755},
        {"+t", S_IFDIR | 0777, S_IFDIR | 01777},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int ok;
        mode_t got = chmod_of(cases[i].spec, cases[i].in, &ok);
        CHECK(ok);
        CHECK_INT_EQ(got, cases[i].want);
    }
}

TEST(chmod_rejects_bad_values)
{
    const char *bad[] = {"", "8", "99z", "17777", "u+q", "x", "u+x,", "a+r;", "rwx", NULL};
    for (size_t i = 0; bad[i]; i++) {
        int ok;
        chmod_of(bad[i], S_IFREG | 0644, &ok);
        if (ok)
            H_FAIL("chmod '%s' was accepted", bad[i]);
    }
}

TEST(go_durations)
{
    static const struct {
        int64_t ns;
        const char *want;
    } cases[] = {
        {0, "0s"},
        {30000000000LL, "30s"},
        {60000000000LL, "1m0s"},
        {90000000000LL, "1m30s"},
        {3600000000000LL, "1h0m0s"},
        {1500000000LL, "1.5s"},
        {500000000LL, "500ms"},
        {1500LL, "1.5\xc2\xb5s"},
        {7LL, "7ns"},
        {-2000000000LL, "-2s"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct strbuf sb = STRBUF_INIT;
        go_duration(&sb, cases[i].ns);
        CHECK_STR_EQ(strbuf_str(&sb), cases[i].want);
        strbuf_release(&sb);
    }
}

TEST(go_quoted_runes)
{
    static const struct {
        int64_t r;
        const char *want;
    } cases[] = {
        {0, "'\\x00'"},   {4, "'\\x04'"}, {9, "'\\t'"},       {'A', "'A'"},
        {'\'', "'\\''"}, {'\\', "'\\\\'"}, {0x7f, "'\\x7f'"}, {0x85, "'\\u0085'"},
        {0xe9, "'\xc3\xa9'"}, {-1, "'\xef\xbf\xbd'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct strbuf sb = STRBUF_INIT;
        go_quote_rune(&sb, cases[i].r);
        CHECK_STR_EQ(strbuf_str(&sb), cases[i].want);
        strbuf_release(&sb);
    }
}

TEST(history_created_fill)
{
    /* base image entries with times, then a metadata step (no time), a
     * layer, another metadata step: BuildKit's exporter gives the first new
     * layer's time to the metadata step before it and the last layer's to
     * those after */
    struct image_config c;
    image_config_init(&c);
    image_config_add_history(&c, "2020-01-01T00:00:00Z", "base", NULL, false);
    image_config_add_history(&c, NULL, "ENV A=1", NULL, true);
    image_config_add_history(&c, "2024-05-05T05:05:05Z", "RUN x", NULL, false);
    image_config_add_history(&c, NULL, "LABEL l=1", NULL, true);
    history_fill_created(&c, 0);
    CHECK_STR_EQ(c.history[1].created, "2024-05-05T05:05:05Z");
    CHECK_STR_EQ(c.history[3].created, "2024-05-05T05:05:05Z");
    CHECK_STR_EQ(c.history[0].created, "2020-01-01T00:00:00Z");
    image_config_free(&c);
}

TEST(history_clamp_to_epoch)
{
    struct image_config c;
    image_config_init(&c);
    image_config_add_history(&c, "2000-01-01T00:00:00Z", "old base", NULL, false);
    image_config_add_history(&c, "2030-01-01T00:00:00.5Z", "RUN late", NULL, false);
    image_config_add_history(&c, NULL, "ENV A=1", NULL, true);
    history_clamp_created(&c, 1700000000);
    CHECK_STR_EQ(c.history[0].created, "2000-01-01T00:00:00Z");
    CHECK_STR_EQ(c.history[1].created, "2023-11-14T22:13:20Z");
    CHECK_STR_EQ(c.history[2].created, "2023-11-14T22:13:20Z");
    image_config_free(&c);
}

static void key_of(const char *a, const char *b, char out[DIGEST_STR_LEN])
{
    struct cache_key k;
    cache_key_begin(&k, NULL);
    cache_key_add_str(&k, "f", a);
    cache_key_add_str(&k, "f", b);
    cache_key_end(&k, out);
}

TEST(cache_keys_have_field_boundaries)
{
    char k1[DIGEST_STR_LEN], k2[DIGEST_STR_LEN], k3[DIGEST_STR_LEN];
    key_of("ab", "c", k1);
    key_of("a", "bc", k2);
    key_of("ab", "c", k3);
    CHECK(strcmp(k1, k2) != 0);
    CHECK_STR_EQ(k1, k3);
    CHECK(digest_is_valid(k1));
    /* chained from a parent: another parent, another key */
    struct cache_key a, b;
    cache_key_begin(&a, k1);
    cache_key_begin(&b, k2);
    char ka[DIGEST_STR_LEN], kb[DIGEST_STR_LEN];
    cache_key_end(&a, ka);
    cache_key_end(&b, kb);
    CHECK(strcmp(ka, kb) != 0);
}

TEST(cache_record_round_trip_and_bad_input)
{
    struct cache_record rec = {0};
    rec.layer.media_type = xstrdup("application/vnd.oci.image.layer.v1.tar+gzip");
    sha256_digest_of("layer", 5, rec.layer.digest);
    rec.layer.size = 1234;
    sha256_digest_of("diff", 4, rec.diff_id);
    rec.created = xstrdup("2024-01-02T03:04:05Z");
    char *json = NULL;
    size_t len = 0;
    cache_record_to_json(&rec, &json, &len);
    struct cache_record back;
    struct kiln_error *err = NULL;
    CHECK_INT_EQ(cache_record_parse(json, len, &back, &err), 0);
    CHECK_STR_EQ(back.layer.digest, rec.layer.digest);
    CHECK_STR_EQ(back.diff_id, rec.diff_id);
    CHECK_INT_EQ(back.layer.size, 1234);
    CHECK_STR_EQ(back.created, "2024-01-02T03:04:05Z");
    cache_record_free(&back);
    cache_record_free(&rec);
    free(json);
    const char *bad[] = {
        "", "{", "[]", "{\"layer\":{}}",
        "{\"layer\":{\"mediaType\":\"x\",\"digest\":\"sha256:zz\",\"size\":1},\"diff_id\":\"x\"}",
        "{\"layer\":{\"mediaType\":\"x\",\"digest\":\"sha256:" /* size missing */
        "0000000000000000000000000000000000000000000000000000000000000000\"},"
        "\"diff_id\":\"sha256:0000000000000000000000000000000000000000000000000000000000000000\"}",
        NULL};
    for (size_t i = 0; bad[i]; i++) {
        struct cache_record r;
        if (cache_record_parse(bad[i], strlen(bad[i]), &r, &err) == 0) {
            H_FAIL("bad record %zu was accepted", i);
            cache_record_free(&r);
        }
        kiln_error_free(&err);
    }
}

TEST(stage_environment)
{
    char **env = strv_new();
    env_set(&env, "A", "1");
    env_set(&env, "AB", "2");
    env_set(&env, "A", "3");
    CHECK_STR_EQ(env_get(env, "A"), "3");
    CHECK_STR_EQ(env_get(env, "AB"), "2");
    CHECK(env_get(env, "B") == NULL);
    CHECK_INT_EQ(strv_len(env), 2);
    strv_free(env);
}

int main(void)
{
    RUN(chmod_octal_and_symbolic);
    RUN(chmod_rejects_bad_values);
    RUN(go_durations);
    RUN(go_quoted_runes);
    RUN(history_created_fill);
    RUN(history_clamp_to_epoch);
    RUN(cache_keys_have_field_boundaries);
    RUN(cache_record_round_trip_and_bad_input);
    RUN(stage_environment);
    return harness_done();
}
