/* Word expansion: the conformance data (envVarTest, wordsTest,
 * lex_cases.jsonl) and BuildKit behaviours beyond it. */
#include <errno.h>
#include <fcntl.h>

#include "dockerfile/expand.h"
#include "harness.h"
#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/json.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

/* Go's strings.TrimSpace for the ASCII test data */
static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

static char *join(char *const *v, const char *sep)
{
    struct strbuf sb = STRBUF_INIT;
    strbuf_init(&sb);
    for (size_t i = 0; v && v[i]; i++)
        strbuf_addf(&sb, "%s%s", i ? sep : "", v[i]);
    return strbuf_detach(&sb, NULL);
}

static void run_envvartest(void)
{
    char *buf = harness_read_conformance("shell-words/envVarTest", NULL);
    char *vars[] = {"PWD=/home", "SHELL=bash", "KOREAN=한국어", "NULL="};
    struct expand_env env = {vars, 4};
    int rows = 0, ok_rows = 0, windows = 0, lineno = 0;
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        (void)lineno;
        if (line[0] == '#')
            continue;
        char *t = trim(line);
        if (!*t)
            continue;
        char *f1 = strchr(t, '|');
        char *f2 = f1 ? strchr(f1 + 1, '|') : NULL;
        if (!f1 || !f2 || strchr(f2 + 1, '|')) {
            fprintf(stderr, "bad envVarTest line: %s\n", t);
            exit(2);
        }
        *f1 = *f2 = '\0';
        char *platform = trim(t), *input = trim(f1 + 1), *expected = trim(f2 + 1);
        if (strcmp(platform, "W") == 0) {
            windows++; /* Windows-only rows: a Linux builder does not run them */
            continue;
        }
        rows++;
        char *got = NULL;
        struct kiln_error *err = NULL;
        int r = expand_word(input, &env, NULL, &got, NULL, &err);
        bool ok = strcmp(expected, "error") == 0 ? r < 0 : (r == 0 && strcmp(got, expected) == 0);
        char name[256], why[512];
        snprintf(name, sizeof(name), "envVarTest '%s'", input);
        snprintf(why, sizeof(why), "got '%s', want '%s'", r == 0 ? got : err->msg, expected);
        harness_case(name, ok, why);
        ok_rows += ok;
        free(got);
        kiln_error_free(&err);
    }
    printf("envVarTest: %d rows (A and U), %d as expected; %d W rows not applicable\n", rows,
           ok_rows, windows);
    free(buf);
}

static void run_wordstest(void)
{
    char *buf = harness_read_conformance("shell-words/wordsTest", NULL);
    char **vars = strv_new();
    int rows = 0, ok_rows = 0;
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#')
            continue;
        if (strncmp(line, "ENV ", 4) == 0) {
            char *v = line + 3;
            while (*v == ' ')
                v++;
            strv_push(&vars, v);
            continue;
        }
        char *bar = strchr(line, '|');
        if (!bar || strchr(bar + 1, '|')) {
            fprintf(stderr, "bad wordsTest line: %s\n", line);
            exit(2);
        }
        *bar = '\0';
        char *input = trim(line), *expected = bar + 1;
        while (*expected == ' ')
            expected++;
        rows++;
        struct expand_env env = {vars, strv_len(vars)};
        char **words = NULL;
        struct kiln_error *err = NULL;
        int r = expand_words(input, &env, NULL, &words, &err);
        char *got = r == 0 ? join(words, ",") : xstrdup("error");
        bool ok = strcmp(got, expected) == 0;
        char name[256], why[512];
        snprintf(name, sizeof(name), "wordsTest '%s'", input);
        snprintf(why, sizeof(why), "got '%s', want '%s'", got, expected);
        harness_case(name, ok, why);
        ok_rows += ok;
        free(got);
        strv_free(words);
        kiln_error_free(&err);
    }
    printf("wordsTest: %d rows, %d as expected\n", rows, ok_rows);
    strv_free(vars);
    free(buf);
}

static bool strv_same(char *const *a, char *const *b)
{
    size_t i = 0;
    for (; a && b && a[i] && b[i]; i++)
        if (strcmp(a[i], b[i]) != 0)
            return false;
    return (!a || !a[i]) && (!b || !b[i]);
}

static void run_lex_cases(void)
{
    char *buf = harness_read_conformance("shell-words/lex_cases.jsonl", NULL);
    int rows = 0, ok_rows = 0;
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        yajl_val v = NULL;
        struct kiln_error *err = NULL;
        if (json_parse(line, strlen(line), &v, &err) < 0) {
            fprintf(stderr, "bad JSON: %s\n", err->msg);
            exit(2);
        }
        rows++;
        const char *input = json_get_str(v, "input");
        char **vars = json_to_strv(json_get_arr(v, "env"));
        struct expand_env env = {vars, strv_len(vars)};
        yajl_val e = json_get(v, "error");
        bool want_error = e && YAJL_IS_TRUE(e);
        char *got = NULL;
        struct expand_matches m = {0};
        int r = expand_word(input, &env, NULL, &got, &m, &err);
        bool ok;
        char why[1024];
        snprintf(why, sizeof(why), "got '%s'", r == 0 ? got : err->msg);
        if (want_error) {
            ok = r < 0;
            const char *contains = json_get_str(v, "error_contains");
            if (ok && contains)
                ok = strstr(err->msg, contains) != NULL;
        } else {
            ok = r == 0 && strcmp(got, json_get_str(v, "expected")) == 0;
            char **mw = json_to_strv(json_get_arr(v, "matched"));
            char **uw = json_to_strv(json_get_arr(v, "unmatched"));
            if (ok && mw && !strv_same(m.matched, mw)) {
                ok = false;
                snprintf(why, sizeof(why), "matched differs");
            }
            if (ok && uw && !strv_same(m.unmatched, uw)) {
                ok = false;
                snprintf(why, sizeof(why), "unmatched differs");
            }
            strv_free(mw);
            strv_free(uw);
        }
        char name[300];
        snprintf(name, sizeof(name), "lex_cases.jsonl:%d '%s'", rows, input);
        harness_case(name, ok, why);
        ok_rows += ok;
        free(got);
        expand_matches_free(&m);
        kiln_error_free(&err);
        strv_free(vars);
        yajl_tree_free(v);
    }
    printf("lex_cases.jsonl: %d rows, %d as expected\n", rows, ok_rows);
    free(buf);
}

/* ---- beyond the conformance data ---------------------------------------------------- */

static char *X(const char *word, const char *const *vars, const struct expand_opts *o)
{
    size_t n = 0;
    while (vars && vars[n])
        n++;
    struct expand_env env = {(char *const *)vars, n};
    char *out = NULL;
    struct kiln_error *err = NULL;
    if (expand_word(word, &env, o, &out, NULL, &err) < 0) {
        out = xasprintf("ERR %s", err->msg);
        kiln_error_free(&err);
    }
    return out;
}

#define CHECK_X(word, vars, opts, want)                                                            \
    do {                                                                                           \
        char *_g = X(word, vars, opts);                                                            \
        CHECK_STR_EQ(_g, want);                                                                    \
        free(_g);                                                                                  \
    } while (0)

TEST(error_wording)
{
    const char *none[] = {NULL};
    const char *empty[] = {"V=", NULL};
    CHECK_X("${V:?}", none, NULL, "ERR failed to process \"${V:?}\": V: is not allowed to be unset");
    CHECK_X("${V:?}", empty, NULL, "ERR failed to process \"${V:?}\": V: is not allowed to be empty");
    CHECK_X("${V?set it}", none, NULL, "ERR failed to process \"${V?set it}\": V: set it");
    /* BuildKit reads past the end as U+FFFD and reports that as the modifier */
    CHECK_X("${V", none, NULL, "ERR failed to process \"${V\": unsupported modifier (\xef\xbf\xbd) in substitution");
    CHECK_X("${V:-a", none, NULL, "ERR failed to process \"${V:-a\": syntax error: missing '}'");
    CHECK_X("${}", none, NULL, "ERR failed to process \"${}\": syntax error: bad substitution");
    CHECK_X("${V:=x}", none, NULL, "ERR failed to process \"${V:=x}\": unsupported modifier (:=) in substitution");
    CHECK_X("${V:#x}", none, NULL, "ERR failed to process \"${V:#x}\": unsupported modifier (:#) in substitution");
    CHECK_X("${V/x", none, NULL, "ERR failed to process \"${V/x\": syntax error: missing '/' in ${}");
    CHECK_X("'abc", none, NULL, "ERR failed to process \"'abc\": unexpected end of statement while looking for matching single-quote");
    CHECK_X("\"abc", none, NULL, "ERR failed to process \"\\\"abc\": unexpected end of statement while looking for matching double-quote");
    CHECK_X("${V#\\x}", empty, NULL, "ERR failed to process \"${V#\\\\x}\": invalid pattern (\\x) in substitution: invalid escape '\\x'");
    CHECK_X("a\tb${V:?}", none, NULL, "ERR failed to process \"a\\tb${V:?}\": V: is not allowed to be unset");
}

TEST(backtick_escape)
{
    const char *vars[] = {"V=val", NULL};
    struct expand_opts o = {.escape = '`'};
    CHECK_X("a`$V", vars, &o, "a$V");
    CHECK_X("a\\$V", vars, &o, "a\\val");
    CHECK_X("C:\\path\\to", vars, &o, "C:\\path\\to");
    CHECK_X("\"a`\"b\"", vars, &o, "a\"b");
    CHECK_X("\"a\\\"", vars, &o, "a\\");
    CHECK_X("a``b", vars, &o, "a`b");
    CHECK_X("a`", vars, &o, "a");
    /* shell patterns keep '\' as their escape whatever the directive says */
    const char *star[] = {"S=a*b", NULL};
    CHECK_X("${S#a\\*}", star, &o, "b");
}

TEST(modes)
{
    const char *vars[] = {"V=val", NULL};
    struct expand_opts skip = {.skip_unset = true};
    CHECK_X("$U-${U}-${U:-d}-${U/a/b}-$V", vars, &skip, "$U-${U}-${U:-d}-${U/a/b}-val");
    struct expand_opts raw = {.raw_quotes = true, .raw_escapes = true};
    CHECK_X("'a b' \"c\\\"$V\" \\x", vars, &raw, "'a b' \"c\\\"val\" \\x");
    struct expand_opts noq = {.skip_quotes = true};
    CHECK_X("echo '$V' \"$V\"", vars, &noq, "echo 'val' \"val\"");
    /* heredoc markers stay one word when split */
    char **w = NULL;
    struct expand_env env = {NULL, 0};
    CHECK_INT_EQ(expand_words("RUN <<  EOF a<b", &env, &raw, &w, NULL), 0);
    char *j = join(w, "|");
    CHECK_STR_EQ(j, "RUN|<<  EOF|a<b");
    free(j);
    strv_free(w);
}

TEST(patterns_and_replacement)
{
    const char *vars[] = {"P=a/b/c.tar.gz", "N=x\ny", "R=$0", "U=h\xc3\xa9llo", NULL};
    CHECK_X("${P%.*}", vars, NULL, "a/b/c.tar");
    CHECK_X("${P%%.*}", vars, NULL, "a/b/c");
    CHECK_X("${P#*/}", vars, NULL, "b/c.tar.gz");
    CHECK_X("${P##*/}", vars, NULL, "c.tar.gz");
    CHECK_X("${P/\\//:}", vars, NULL, "a:b/c.tar.gz");
    CHECK_X("${P//\\//:}", vars, NULL, "a:b:c.tar.gz");
    CHECK_X("${P//?/.}", vars, NULL, "............");
    CHECK_X("${P//x*/}", vars, NULL, "a/b/c.tar.gz");
    CHECK_X("${P//*/[&]}", vars, NULL, "[&]");
    /* '*' does not cross a newline (Go's '.') */
    CHECK_X("${N#*y}", vars, NULL, "x\ny");
    CHECK_X("${N#x?y}", vars, NULL, "x\ny");
    /* Go's ReplaceAllString expands $0 in the replacement; a single replace does not */
    CHECK_X("${P//b/'<$0>'}", vars, NULL, "a/<b>/c.tar.gz");
    CHECK_X("${P/b/'<$0>'}", vars, NULL, "a/<$0>/c.tar.gz");
    CHECK_X("${P//b/$R}", vars, NULL, "a/b/c.tar.gz");
    /* empty pattern: Go inserts at every rune boundary */
    CHECK_X("${U//$E/-}", vars, NULL, "-h-\xc3\xa9-l-l-o-");
    CHECK_X("${U%?llo}", vars, NULL, "h");
    CHECK_X("${U#h?}", vars, NULL, "llo");
}

TEST(unicode_names_and_bytes)
{
    const char *vars[] = {"KÖR=1", "A=2", NULL};
    CHECK_X("$KÖR/$Aé", vars, NULL, "1/");
    CHECK_X("${A}é", vars, NULL, "2é");
    /* literal bytes that are not UTF-8 come out as U+FFFD, as text/scanner reads them */
    CHECK_X("a\xff", vars, NULL, "a\xef\xbf\xbd");
    /* a BOM at the start of the word is dropped */
    CHECK_X("\xef\xbb\xbf$A", vars, NULL, "2");
}

TEST(caps)
{
    /* nesting depth */
    struct strbuf sb = STRBUF_INIT;
    strbuf_init(&sb);
    for (int i = 0; i < 200; i++)
        strbuf_adds(&sb, "${A:-");
    for (int i = 0; i < 200; i++)
        strbuf_addc(&sb, '}');
    const char *none[] = {NULL};
    char *g = X(sb.buf, none, NULL);
    CHECK(strstr(g, "nested more than") != NULL);
    free(g);
    strbuf_release(&sb);
    /* result length */
    char *big = xmalloc(1u << 20);
    memset(big, 'x', (1u << 20) - 1);
    big[(1u << 20) - 1] = '\0';
    char *def = xasprintf("B=%s", big);
    const char *vars[] = {def, NULL};
    g = X("$B$B$B$B$B", vars, NULL);
    CHECK(strstr(g, "longer than") != NULL);
    free(g);
    g = X("${B//x/yyyyy}", vars, NULL);
    CHECK(strstr(g, "longer than") != NULL);
    free(g);
    free(def);
    free(big);
}

TEST(long_values)
{
    /* 1 MiB values take the NFA simulation instead of the backtracker */
    size_t n = 1u << 19;
    char *v = xmalloc(2 * n + 3);
    memcpy(v, "V=", 2);
    for (size_t i = 0; i < n; i++)
        memcpy(v + 2 + 2 * i, "ab", 2);
    v[2 + 2 * n] = '\0';
    const char *vars[] = {v, NULL};
    char *g = X("${V//b/c}", vars, NULL);
    bool ok = strlen(g) == 2 * n;
    for (size_t i = 0; ok && i < n; i++)
        ok = g[2 * i] == 'a' && g[2 * i + 1] == 'c';
    CHECK(ok);
    free(g);
    CHECK_X("${V%%b*}", vars, NULL, "a");
    CHECK_X("${V%%a*b}", vars, NULL, "");
    g = X("${V#*b}", vars, NULL);
    CHECK(strlen(g) == 2 * n - 2);
    free(g);
    g = X("${V/a*b/x}", vars, NULL);
    CHECK_STR_EQ(g, "x");
    free(g);
    g = X("${V/b*a/x}", vars, NULL);
    CHECK_STR_EQ(g, "axb");
    free(g);
    free(v);
}

TEST(instruction_modes)
{
    CHECK_INT_EQ(expand_instruction_mode("COPY"), EXPAND_WORD);
    CHECK_INT_EQ(expand_instruction_mode("expose"), EXPAND_SPLIT);
    CHECK_INT_EQ(expand_instruction_mode("RUN"), EXPAND_NONE);
    CHECK_INT_EQ(expand_instruction_mode("cmd"), EXPAND_NONE);
}

/* ---- fuzz corpus replay -------------------------------------------------------------- */

/* The fuzz target itself, so that the kept corpus runs through exactly the
 * code the fuzzer ran (under ASan when this test is built by `make asan`). */
#include "../fuzz/fuzz_expand.c"

static void run_input(const uint8_t *data, size_t size)
{
    LLVMFuzzerTestOneInput(data, size);
}

static void replay_corpus(void)
{
    int n = harness_replay_corpus("expand", run_input);
    if (n < 0) {
        harness_case("fuzz corpus expand", 0, "tests/fuzz/corpus/expand is missing (run from the source root)");
        return;
    }
    /* reaching this line without a crash is the test */
    harness_case("fuzz corpus expand replayed", n > 0, "no corpus files");
    printf("fuzz corpus expand: %d inputs replayed\n", n);
}

int main(void)
{
    run_envvartest();
    run_wordstest();
    run_lex_cases();
    RUN(error_wording);
    RUN(backtick_escape);
    RUN(modes);
    RUN(patterns_and_replacement);
    RUN(unicode_names_and_bytes);
    RUN(caps);
    RUN(long_values);
    RUN(instruction_modes);
    replay_corpus();
    return harness_done();
}
