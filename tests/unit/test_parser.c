/* The Dockerfile parser against ../shared/conformance (BuildKit's parser
 * test data, as it is), plus error texts and the fuzz corpus.
 *
 *   build/tests/test_parser             run the tests
 *   build/tests/test_parser --bench [N] time parse + plan of a 5,000-line file */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "dockerfile/dockerfile.h"
#include "dockerfile/instructions.h"
#include "harness.h"
#include "../fuzz/fuzz_parser_run.h"
#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/json.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

static char *conf_path(const char *rel)
{
    return xasprintf("%s/%s", harness_conformance_dir(), rel);
}

static char *read_all(const char *path, size_t *ret_len)
{
    char *buf = NULL;
    size_t len = 0;
    int r = fs_read_file_at(AT_FDCWD, path, 64u << 20, &buf, &len);
    if (r < 0) {
        fprintf(stderr, "cannot read %s: %s\n", path, strerror(-r));
        return NULL;
    }
    if (ret_len)
        *ret_len = len;
    return buf;
}

/* Calls fn for each line of a JSONL file; returns the number of lines. */
static int each_jsonl(const char *rel, void (*fn)(yajl_val row, int lineno, void *ctx), void *ctx)
{
    _cleanup_free_ char *path = conf_path(rel);
    size_t len;
    _cleanup_free_ char *buf = read_all(path, &len);
    if (!buf) {
        harness_case(rel, 0, "cannot read the file");
        return 0;
    }
    int lineno = 0;
    char *p = buf;
    while (p < buf + len) {
        char *nl = memchr(p, '\n', (size_t)(buf + len - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(buf + len - p);
        lineno++;
        if (n > 0) {
            yajl_val row = NULL;
            struct kiln_error *err = NULL;
            if (json_parse(p, n, &row, &err) < 0) {
                harness_case(rel, 0, err->msg);
                kiln_error_free(&err);
            } else {
                fn(row, lineno, ctx);
                yajl_tree_free(row);
            }
        }
        p += n + 1;
    }
    return lineno;
}

static bool jbool(yajl_val v, const char *key)
{
    yajl_val b = json_get(v, key);
    return b && YAJL_IS_TRUE(b);
}

/* A JSON string value with its exact bytes (yajl strings may hold NUL:
 * we compare with strlen, which the data here never needs). */
static const char *jv(yajl_val v)
{
    const char *s = YAJL_IS_STRING(v) ? v->u.string : NULL;
    return s ? s : "";
}

static const char *jstr(yajl_val v, const char *key)
{
    const char *s = json_get_str(v, key);
    return s ? s : "";
}

static int parse_str(const char *text, struct df_ast **ret, struct kiln_error **err)
{
    return dockerfile_parse("Dockerfile", text, strlen(text), ret, err);
}

/* ---- buildkit-parser/<case>: dump == result ------------------------------ */

static int count_dump_pass, count_dump_total;

static void test_dump_cases(void)
{
    _cleanup_free_ char *dir = conf_path("buildkit-parser");
    DIR *d = opendir(dir);
    if (!d) {
        harness_case("buildkit-parser", 0, "cannot open the directory");
        return;
    }
    struct dirent *de;
    char **names = strv_new();
    while ((de = readdir(d)))
        if (de->d_name[0] != '.')
            strv_push(&names, de->d_name);
    closedir(d);
    for (size_t i = 0; names[i]; i++) {
        _cleanup_free_ char *df = xasprintf("%s/%s/Dockerfile", dir, names[i]);
        _cleanup_free_ char *rf = xasprintf("%s/%s/result", dir, names[i]);
        size_t dlen, rlen;
        _cleanup_free_ char *dbuf = read_all(df, &dlen);
        _cleanup_free_ char *rbuf = read_all(rf, &rlen);
        _cleanup_free_ char *cname = xasprintf("buildkit-parser/%s", names[i]);
        count_dump_total++;
        if (!dbuf || !rbuf) {
            harness_case(cname, 0, "missing Dockerfile or result");
            continue;
        }
        struct df_ast *ast = NULL;
        struct kiln_error *err = NULL;
        if (dockerfile_parse("Dockerfile", dbuf, dlen, &ast, &err) < 0) {
            harness_case(cname, 0, err->msg);
            kiln_error_free(&err);
            continue;
        }
        struct strbuf out = STRBUF_INIT;
        dockerfile_dump(ast, &out);
        bool ok = out.len == rlen && memcmp(out.buf, rbuf, rlen) == 0;
        if (!ok) {
            size_t k = 0;
            while (k < out.len && k < rlen && out.buf[k] == rbuf[k])
                k++;
            fprintf(stderr, "--- %s: differs at byte %zu\n got: %.*s\nwant: %.*s\n", cname, k,
                    (int)(out.len - k > 200 ? 200 : out.len - k), out.buf + k,
                    (int)(rlen - k > 200 ? 200 : rlen - k), rbuf + k);
        } else {
            count_dump_pass++;
        }
        harness_case(cname, ok, "dump differs from result");
        strbuf_release(&out);
        dockerfile_free(ast);
    }
    strv_free(names);
}

/* ---- buildkit-parser-negative/<case>: refused ------------------------------ */

static int count_neg_pass, count_neg_total;

static void test_negative_cases(void)
{
    _cleanup_free_ char *dir = conf_path("buildkit-parser-negative");
    DIR *d = opendir(dir);
    if (!d) {
        harness_case("buildkit-parser-negative", 0, "cannot open the directory");
        return;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        _cleanup_free_ char *df = xasprintf("%s/%s/Dockerfile", dir, de->d_name);
        _cleanup_free_ char *cname = xasprintf("buildkit-parser-negative/%s", de->d_name);
        size_t len;
        _cleanup_free_ char *buf = read_all(df, &len);
        count_neg_total++;
        struct df_ast *ast = NULL;
        struct kiln_error *err = NULL;
        int r = buf ? dockerfile_parse("Dockerfile", buf, len, &ast, &err) : 0;
        bool ok = buf && r < 0;
        if (ok)
            count_neg_pass++;
        harness_case(cname, ok, "parsed, should have been refused");
        kiln_error_free(&err);
        dockerfile_free(ast);
    }
    closedir(d);
}

/* ---- line numbers ---------------------------------------------------------- */

static int count_lines_pass, count_lines_total;

static void line_row(yajl_val row, int lineno, void *ctx)
{
    const char *rel = jstr(row, "dockerfile");
    _cleanup_free_ char *path = xasprintf("%s/buildkit-parser-extra/%s", harness_conformance_dir(),
                                          rel);
    size_t len;
    _cleanup_free_ char *buf = read_all(path, &len);
    count_lines_total++;
    struct df_ast *ast = NULL;
    struct kiln_error *err = NULL;
    if (!buf || dockerfile_parse("Dockerfile", buf, len, &ast, &err) < 0) {
        harness_case("line_numbers", 0, err ? err->msg : "cannot read");
        kiln_error_free(&err);
        return;
    }
    int64_t rs = 0, re = 0;
    json_get_int(row, "root_start", &rs);
    json_get_int(row, "root_end", &re);
    bool ok = ast->start_line == rs && ast->end_line == re;
    yajl_val ch = json_get_arr(row, "children");
    ok = ok && ch && ch->u.array.len == ast->n_instrs;
    for (size_t i = 0; ok && i < ast->n_instrs; i++) {
        yajl_val pair = ch->u.array.values[i];
        ok = YAJL_GET_INTEGER(pair->u.array.values[0]) == ast->instrs[i].start_line &&
             YAJL_GET_INTEGER(pair->u.array.values[1]) == ast->instrs[i].end_line;
    }
    if (ok)
        count_lines_pass++;
    harness_case("line_numbers", ok, "line numbers differ");
    dockerfile_free(ast);
}

/* ---- heredocs -------------------------------------------------------------- */

static int count_heredoc_pass, count_heredoc_total;

struct heredoc_ctx {
    struct df_ast *ast;
    const char *file;
};

static void heredoc_row(yajl_val row, int lineno, void *vctx)
{
    struct heredoc_ctx *ctx = vctx;
    count_heredoc_total++;
    _cleanup_free_ char *cname = xasprintf("%s row %d", ctx->file, lineno);
    if (!ctx->ast) {
        harness_case(cname, 0, "the Dockerfile did not parse");
        return;
    }
    int64_t idx = -1;
    json_get_int(row, "child_index", &idx);
    if (idx < 0 || (size_t)idx >= ctx->ast->n_instrs) {
        harness_case(cname, 0, "no such instruction");
        return;
    }
    const struct df_instr *ins = &ctx->ast->instrs[idx];
    yajl_val docs = json_get_arr(row, "heredocs");
    bool ok = docs && docs->u.array.len == ins->n_heredocs;
    for (size_t i = 0; ok && i < ins->n_heredocs; i++) {
        yajl_val h = docs->u.array.values[i];
        const struct df_heredoc *d = &ins->heredocs[i];
        int64_t fd = 0;
        json_get_int(h, "fd", &fd);
        const char *content = jstr(h, "content");
        ok = strcmp(jstr(h, "name"), d->name) == 0 && strlen(content) == d->content_len &&
             memcmp(content, d->content, d->content_len) == 0 &&
             jbool(h, "expand") == d->expand && jbool(h, "chomp") == d->chomp &&
             fd == d->fd;
        if (!ok)
            fprintf(stderr, "  heredoc %zu: got name=%s expand=%d chomp=%d fd=%u content=[%s]\n",
                    i, d->name, d->expand, d->chomp, d->fd, d->content);
    }
    if (!ok && docs)
        fprintf(stderr, "  %zu heredocs, want %zu\n", ins->n_heredocs, docs->u.array.len);
    if (ok)
        count_heredoc_pass++;
    harness_case(cname, ok, "heredocs differ");
}

static void test_heredoc_file(const char *dir)
{
    _cleanup_free_ char *df = xasprintf("%s/buildkit-parser-extra/%s/Dockerfile",
                                        harness_conformance_dir(), dir);
    size_t len;
    _cleanup_free_ char *buf = read_all(df, &len);
    struct heredoc_ctx ctx = {.file = dir};
    struct kiln_error *err = NULL;
    if (buf && dockerfile_parse("Dockerfile", buf, len, &ctx.ast, &err) < 0) {
        fprintf(stderr, "%s: %s\n", dir, err->msg);
        kiln_error_free(&err);
    }
    _cleanup_free_ char *rel = xasprintf("buildkit-parser-extra/%s/expected.jsonl", dir);
    each_jsonl(rel, heredoc_row, &ctx);
    dockerfile_free(ctx.ast);
}

static int count_helpers_pass, count_helpers_total;

static void helper_row(yajl_val row, int lineno, void *ctx)
{
    const char *fn = jstr(row, "func");
    const char *input = jstr(row, "input");
    _cleanup_free_ char *cname = xasprintf("heredoc_helpers row %d (%s)", lineno, fn);
    bool ok = false;
    count_helpers_total++;
    if (strcmp(fn, "ChompHeredocContent") == 0) {
        size_t n;
        _cleanup_free_ char *out = dockerfile_chomp_heredoc(input, strlen(input), &n);
        ok = strcmp(out, jstr(row, "expected")) == 0;
    } else if (strcmp(fn, "ParseHeredoc") == 0) {
        char *name = NULL;
        uint32_t fd;
        bool expand, chomp;
        struct kiln_error *err = NULL;
        int r = dockerfile_parse_heredoc(input, &name, &fd, &expand, &chomp, &err);
        const char *want = jstr(row, "result");
        if (strcmp(want, "heredoc") == 0)
            ok = r == 1 && strcmp(name, jstr(row, "name")) == 0;
        else if (strcmp(want, "error") == 0)
            ok = r < 0;
        else
            ok = r == 0;
        free(name);
        kiln_error_free(&err);
    } else if (strcmp(fn, "heredocsFromLine") == 0) {
        char **names = NULL;
        struct kiln_error *err = NULL;
        int r = dockerfile_heredocs_from_line(input, &names, &err);
        yajl_val want = json_get_arr(row, "names");
        ok = r == 0 && want && strv_len(names) == want->u.array.len;
        for (size_t i = 0; ok && names[i]; i++)
            ok = strcmp(names[i], jv(want->u.array.values[i])) == 0;
        strv_free(names);
        kiln_error_free(&err);
    }
    if (ok)
        count_helpers_pass++;
    harness_case(cname, ok, input);
}

/* ---- json_arrays, parse_words, name_val -------------------------------------- */

static int count_json_pass, count_json_total;

static void json_row(yajl_val row, int lineno, void *ctx)
{
    const char *input = jstr(row, "input");
    char **v = NULL;
    size_t *lens = NULL;
    int r = dockerfile_parse_json_array(input, strlen(input), &v, &lens);
    bool ok;
    count_json_total++;
    if (jbool(row, "valid")) {
        yajl_val want = json_get_arr(row, "expected");
        ok = r == 0 && want && strv_len(v) == want->u.array.len;
        for (size_t i = 0; ok && v[i]; i++) {
            /* yajl gives "\u0000" as a NUL byte inside the string. */
            const char *w = jv(want->u.array.values[i]);
            size_t wl = strlen(w);
            /* yajl's tree has no lengths: a trailing \u0000 shows as the end. */
            if (lens[i] == wl + 1 && v[i][wl] == '\0' && strstr(input, "\\u0000\"]"))
                wl++;
            ok = lens[i] == wl && memcmp(v[i], w, wl) == 0;
        }
    } else {
        ok = r == 2;
    }
    strv_free(v);
    free(lens);
    _cleanup_free_ char *cname = xasprintf("json_arrays row %d", lineno);
    if (ok)
        count_json_pass++;
    harness_case(cname, ok, input);
}

static int count_words_pass, count_words_total;

static void words_row(yajl_val row, int lineno, void *ctx)
{
    const char *input = jstr(row, "input");
    const char *esc = jstr(row, "escape");
    char **v = dockerfile_parse_words(input, strlen(input), esc[0] ? esc[0] : '\\');
    yajl_val want = json_get_arr(row, "expected");
    bool ok = want && strv_len(v) == want->u.array.len;
    for (size_t i = 0; ok && v[i]; i++)
        ok = strcmp(v[i], jv(want->u.array.values[i])) == 0;
    strv_free(v);
    _cleanup_free_ char *cname = xasprintf("parse_words row %d", lineno);
    count_words_total++;
    if (ok)
        count_words_pass++;
    harness_case(cname, ok, input);
}

static int count_nameval_pass, count_nameval_total;

static void nameval_row(yajl_val row, int lineno, void *ctx)
{
    _cleanup_free_ char *text = xasprintf("%s %s\n", jstr(row, "instruction"), jstr(row, "args"));
    struct df_ast *ast = NULL;
    struct kiln_error *err = NULL;
    int r = parse_str(text, &ast, &err);
    bool ok;
    if (jbool(row, "error")) {
        ok = r < 0;
    } else {
        yajl_val want = json_get_arr(row, "expected_chain");
        ok = r == 0 && want && ast->n_instrs == 1 && ast->instrs[0].n_args == want->u.array.len;
        for (size_t i = 0; ok && i < want->u.array.len; i++)
            ok = strcmp(ast->instrs[0].args[i].value, jv(want->u.array.values[i])) ==
                 0;
    }
    kiln_error_free(&err);
    dockerfile_free(ast);
    _cleanup_free_ char *cname = xasprintf("name_val row %d", lineno);
    count_nameval_total++;
    if (ok)
        count_nameval_pass++;
    harness_case(cname, ok, text);
}

/* ---- directives ------------------------------------------------------------------ */

static int count_dir_pass, count_dir_total;

static void directive_row(yajl_val row, int lineno, void *ctx)
{
    const char *fn = jstr(row, "func");
    struct strbuf input = STRBUF_INIT;
    const char *hex = json_get_str(row, "input_hex_prefix");
    for (size_t i = 0; hex && hex[i] && hex[i + 1]; i += 2) {
        unsigned v;
        sscanf(hex + i, "%2x", &v);
        strbuf_addc(&input, (char)v);
    }
    strbuf_adds(&input, jstr(row, "input"));
    bool ok = false;
    if (strcmp(fn, "ParseAll") == 0) {
        char **pairs = NULL;
        struct kiln_error *err = NULL;
        int r = dockerfile_parse_directives(input.buf, input.len, &pairs, &err);
        yajl_val want = json_get_arr(row, "directives");
        ok = r == 0 && want && strv_len(pairs) == 2 * want->u.array.len;
        for (size_t i = 0; ok && i < want->u.array.len; i++) {
            yajl_val p = want->u.array.values[i];
            ok = strcmp(pairs[2 * i], jv(p->u.array.values[0])) == 0 &&
                 strcmp(pairs[2 * i + 1], jv(p->u.array.values[1])) == 0;
        }
        strv_free(pairs);
        kiln_error_free(&err);
    } else {
        const char *key = strcmp(fn, "DetectSyntax") == 0 ? "syntax" : jstr(row, "name");
        bool any = strcmp(fn, "DetectSyntax") == 0;
        char *ref = NULL, *cmdline = NULL;
        int line = 0;
        bool found = dockerfile_find_directive(key, input.buf, input.len, any, &ref, &cmdline,
                                               &line);
        ok = found == jbool(row, "found");
        if (ok && found) {
            if (json_get_str(row, "ref"))
                ok = strcmp(ref, jstr(row, "ref")) == 0;
            if (ok && json_get_str(row, "cmdline"))
                ok = strcmp(cmdline, jstr(row, "cmdline")) == 0;
            int64_t wl;
            if (ok && json_get_int(row, "line", &wl))
                ok = wl == line;
        }
        free(ref);
        free(cmdline);
    }
    strbuf_release(&input);
    _cleanup_free_ char *cname = xasprintf("directives row %d (%s)", lineno, fn);
    count_dir_total++;
    if (ok)
        count_dir_pass++;
    harness_case(cname, ok, "directive result differs");
}

/* ---- empty continuation warnings --------------------------------------------------- */

static int count_empty_pass, count_empty_total;

static void empty_row(yajl_val row, int lineno, void *ctx)
{
    _cleanup_free_ char *df = conf_path("buildkit-parser-extra/empty-continuation/Dockerfile");
    size_t len;
    _cleanup_free_ char *buf = read_all(df, &len);
    struct df_ast *ast = NULL;
    struct kiln_error *err = NULL;
    int r = buf ? dockerfile_parse("Dockerfile", buf, len, &ast, &err) : -1;
    int64_t want_n = -1;
    json_get_int(row, "warning_count", &want_n);
    bool ok = r == 0 && (int64_t)ast->n_warnings == want_n;
    yajl_val contain = json_get_arr(row, "warnings_contain");
    for (size_t i = 0; ok && contain && i < contain->u.array.len; i++) {
        yajl_val subs = contain->u.array.values[i];
        for (size_t k = 0; ok && k < subs->u.array.len; k++)
            ok = strstr(ast->warnings[i].msg, jv(subs->u.array.values[k])) != NULL;
    }
    count_empty_total++;
    if (ok)
        count_empty_pass++;
    harness_case("empty-continuation", ok, "warnings differ");
    kiln_error_free(&err);
    dockerfile_free(ast);
}

/* ---- the 65535-byte line rule --------------------------------------------------------- */

TEST(line_length_limit)
{
    for (size_t n = 65534; n <= 65537; n++) {
        struct strbuf sb = STRBUF_INIT;
        strbuf_adds(&sb, "FROM busybox\nRUN ");
        /* the physical line "RUN xxx..." has n bytes */
        for (size_t i = 4; i < n; i++)
            strbuf_addc(&sb, 'x');
        strbuf_adds(&sb, "\n");
        struct df_ast *ast = NULL;
        struct kiln_error *err = NULL;
        int r = dockerfile_parse("Dockerfile", sb.buf, sb.len, &ast, &err);
        if (n <= 65535) {
            CHECK_INT_EQ(r, 0);
        } else {
            CHECK_INT_EQ(r, -1);
            CHECK(err && strstr(err->msg, "dockerfile line greater than max allowed size of 65535"));
            CHECK(err && strncmp(err->msg, "Dockerfile:2:", 13) == 0);
        }
        kiln_error_free(&err);
        dockerfile_free(ast);
        strbuf_release(&sb);
    }
    /* The same without a final newline, and inside a heredoc body. */
    struct strbuf sb = STRBUF_INIT;
    strbuf_adds(&sb, "FROM busybox\nRUN <<EOF\n");
    for (size_t i = 0; i < 65536; i++)
        strbuf_addc(&sb, 'y');
    struct df_ast *ast = NULL;
    struct kiln_error *err = NULL;
    CHECK_INT_EQ(dockerfile_parse("Dockerfile", sb.buf, sb.len, &ast, &err), -1);
    CHECK(err && strstr(err->msg, "max allowed size of 65535"));
    kiln_error_free(&err);
    strbuf_release(&sb);
}

/* ---- exact error texts ----------------------------------------------------------------- */

static void check_parse_error(const char *text, const char *want)
{
    struct df_ast *ast = NULL;
    struct kiln_error *err = NULL;
    int r = parse_str(text, &ast, &err);
    CHECK_INT_EQ(r, -1);
    CHECK_STR_EQ(err ? err->msg : NULL, want);
    kiln_error_free(&err);
    dockerfile_free(ast);
}

TEST(parse_errors)
{
    check_parse_error("", "Dockerfile:1:1: file with no instructions");
    check_parse_error("# only\n\n# comments\n", "Dockerfile:3:1: file with no instructions");
    check_parse_error("FROM busybox\n\nENV PATH\n",
                      "Dockerfile:3:5: ENV must have two arguments\n"
                      "ENV PATH\n"
                      "    ^~~~");
    check_parse_error("CMD [ \"echo\", [ \"nested json\" ] ]\n",
                      "Dockerfile:1:5: when using JSON array syntax, arrays must be comprised of "
                      "strings only\n"
                      "CMD [ \"echo\", [ \"nested json\" ] ]\n"
                      "    ^");
    check_parse_error("# escape=`\n# escape=\\\nFROM x\n",
                      "Dockerfile:2:1: only one escape parser directive can be used\n"
                      "# escape=\\\n"
                      "^~~~~~~~~~");
    check_parse_error("# escape=x\nFROM x\n",
                      "Dockerfile:1:10: invalid escape token 'x' does not match ` or \\\n"
                      "# escape=x\n"
                      "         ^");
    check_parse_error("FROM alpine\nRUN <<EOF cat\nhello\n",
                      "Dockerfile:2:5: unterminated heredoc 'EOF': the file ends before a line "
                      "'EOF' (the heredoc starts on line 2)\n"
                      "RUN <<EOF cat\n"
                      "    ^~~~~");
    check_parse_error("FROM alpine\nLABEL a=b \\\n\tc d\n",
                      "Dockerfile:3:2: Syntax error - can't find = in \"c\". Must be of the form: "
                      "name=value\n"
                      "\tc d\n"
                      "\t^");
}

TEST(unknown_keyword_kept)
{
    /* The parser keeps unknown instructions (the typed conversion refuses
     * them), as BuildKit's parser does. */
    struct df_ast *ast = NULL;
    struct kiln_error *err = NULL;
    CHECK_INT_EQ(parse_str("FROM a\nFOO bar baz\n", &ast, &err), 0);
    struct strbuf out = STRBUF_INIT;
    if (ast)
        dockerfile_dump(ast, &out);
    CHECK_STR_EQ(out.buf, "(from \"a\")\n(foo \"\")\n");
    strbuf_release(&out);
    dockerfile_free(ast);
}

TEST(positions)
{
    struct df_ast *ast = NULL;
    struct kiln_error *err = NULL;
    const char *text = "FROM a\n  RUN --mount=type=cache,target=/x \\\n    # c\n\tmake \\\n  all\n";
    CHECK_INT_EQ(parse_str(text, &ast, &err), 0);
    if (!ast)
        return;
    const struct df_instr *run = &ast->instrs[1];
    CHECK_INT_EQ(run->start_line, 2);
    CHECK_INT_EQ(run->end_line, 5);
    int line, col;
    dockerfile_locate(ast, run, run->flags[0].off, &line, &col);
    CHECK_INT_EQ(line, 2);
    CHECK_INT_EQ(col, 7);
    CHECK_STR_EQ(run->args[0].value, "make   all");
    dockerfile_locate(ast, run, run->args[0].off, &line, &col);
    CHECK_INT_EQ(line, 4);
    CHECK_INT_EQ(col, 2);
    dockerfile_locate(ast, run, run->args[0].off + 7, &line, &col);
    CHECK_INT_EQ(line, 5);
    CHECK_INT_EQ(col, 3);
    dockerfile_free(ast);
}

TEST(directives_recorded)
{
    struct df_ast *ast = NULL;
    struct kiln_error *err = NULL;
    CHECK_INT_EQ(parse_str("# syntax=docker/dockerfile:1\n# check=skip=all\n#escape=`\nFROM a\n",
                           &ast, &err),
                 0);
    if (!ast)
        return;
    CHECK_STR_EQ(ast->syntax.value, "docker/dockerfile:1");
    CHECK_INT_EQ(ast->syntax.line, 1);
    CHECK_STR_EQ(ast->check.value, "skip=all");
    CHECK_INT_EQ(ast->escape, '`');
    CHECK(ast->instrs[0].comments[0] == NULL);
    dockerfile_free(ast);
}

/* ---- the fuzz corpus replays without errors under the sanitizers ---------------------- */

TEST(fuzz_corpus)
{
    CHECK(harness_replay_corpus("parser", fuzz_parser_run) > 0);
}

/* ---- typed instructions ------------------------------------------------------------------ */

struct typed {
    struct df_ast *ast;
    struct df_file *file;
};

static int typed_parse(const char *text, struct typed *t, struct kiln_error **err)
{
    memset(t, 0, sizeof(*t));
    if (parse_str(text, &t->ast, err) < 0)
        return -1;
    if (df_file_from_ast(t->ast, &t->file, err) < 0) {
        dockerfile_free(t->ast);
        t->ast = NULL;
        return -1;
    }
    return 0;
}

static void typed_free(struct typed *t)
{
    df_file_free(t->file);
    dockerfile_free(t->ast);
}

static void check_typed_error(const char *text, const char *want)
{
    struct typed t;
    struct kiln_error *err = NULL;
    int r = typed_parse(text, &t, &err);
    CHECK_INT_EQ(r, -1);
    CHECK_STR_EQ(err ? err->msg : NULL, want);
    if (r == 0)
        typed_free(&t);
    kiln_error_free(&err);
}

TEST(typed_copy_add)
{
    struct typed t;
    struct kiln_error *err = NULL;
    const char *text = "FROM alpine AS base\n"
                       "COPY --from=base --chown=1:2 --chmod=0755 --link --parents "
                       "--exclude=*.md --exclude=x a b /dst/\n"
                       "ADD --keep-git-dir=true --checksum=sha256:abc --unpack=false "
                       "https://x/y.tgz /\n"
                       "COPY <<-EOF <<'NOEX' /etc/\n\tline $HOME\nEOF\n$keep\nNOEX\n";
    CHECK_INT_EQ(typed_parse(text, &t, &err), 0);
    if (!t.file)
        return;
    CHECK_INT_EQ(t.file->n_stages, 1);
    const struct df_stage *st = &t.file->stages[0];
    CHECK_STR_EQ(st->from->u.from.stage_name, "base");
    CHECK_INT_EQ(st->n_cmds, 3);
    const struct df_copy *cp = &st->cmds[0]->u.copy;
    CHECK_STR_EQ(cp->from.text, "base");
    CHECK_STR_EQ(cp->chown.text, "1:2");
    CHECK_STR_EQ(cp->chmod.text, "0755");
    CHECK(cp->link && cp->parents);
    CHECK_INT_EQ(cp->n_excludes, 2);
    CHECK_STR_EQ(cp->excludes[1].text, "x");
    CHECK_INT_EQ(cp->n_srcs, 2);
    CHECK_STR_EQ(cp->srcs[1].text, "b");
    CHECK_STR_EQ(cp->dest.text, "/dst/");
    CHECK(cp->checksum.text == NULL);
    const struct df_copy *add = &st->cmds[1]->u.copy;
    CHECK(add->keep_git_dir);
    CHECK_STR_EQ(add->checksum.text, "sha256:abc");
    CHECK_INT_EQ(add->unpack, 0);
    CHECK(add->from.text == NULL);
    const struct df_copy *hd = &st->cmds[2]->u.copy;
    CHECK_INT_EQ(hd->n_srcs, 0);
    CHECK_INT_EQ(hd->n_contents, 2);
    CHECK_STR_EQ(hd->contents[0].name, "EOF");
    CHECK_STR_EQ(hd->contents[0].data, "line $HOME\n");
    CHECK(hd->contents[0].expand && hd->contents[0].chomp);
    CHECK_STR_EQ(hd->contents[1].name, "NOEX");
    CHECK(!hd->contents[1].expand);
    typed_free(&t);
}

TEST(typed_run)
{
    struct typed t;
    struct kiln_error *err = NULL;
    const char *text =
        "FROM alpine\n"
        "RUN --mount=type=cache,target=/root/.cache,sharing=locked,id=pip,mode=0750,uid=1,gid=2 "
        "--mount=type=secret,id=tok,required,env=TOKEN "
        "--mount=type=tmpfs,dst=/t,size=64m "
        "--mount=from=builder,src=/out,target=/in,rw "
        "--mount=type=ssh "
        "--mount=target=$DIR "
        "--network=none --security=insecure make all\n"
        "RUN [\"echo\", \"hi\"]\n";
    CHECK_INT_EQ(typed_parse(text, &t, &err), 0);
    if (!t.file)
        return;
    const struct df_run *run = &t.file->stages[0].cmds[0]->u.run;
    CHECK(run->cmd.shell_form);
    CHECK_STR_EQ(run->cmd.argv[0], "make all");
    CHECK_INT_EQ(run->network, DF_NETWORK_NONE);
    CHECK_INT_EQ(run->security, DF_SECURITY_INSECURE);
    CHECK_INT_EQ(run->n_mounts, 6);
    const struct df_mount *m = run->mounts;
    CHECK_INT_EQ(m[0].type, DF_MOUNT_CACHE);
    CHECK_STR_EQ(m[0].target, "/root/.cache");
    CHECK_INT_EQ(m[0].sharing, DF_SHARING_LOCKED);
    CHECK_STR_EQ(m[0].id, "pip");
    CHECK(m[0].has_mode && m[0].mode == 0750 && m[0].uid == 1 && m[0].gid == 2);
    CHECK(!m[0].readonly);
    CHECK_INT_EQ(m[1].type, DF_MOUNT_SECRET);
    CHECK(m[1].required && m[1].readonly);
    CHECK_STR_EQ(m[1].env, "TOKEN");
    CHECK_INT_EQ(m[2].type, DF_MOUNT_TMPFS);
    CHECK_INT_EQ(m[2].size, 64 << 20);
    CHECK_INT_EQ(m[3].type, DF_MOUNT_BIND);
    CHECK_STR_EQ(m[3].from, "builder");
    CHECK(!m[3].readonly);
    CHECK_INT_EQ(m[4].type, DF_MOUNT_SSH);
    CHECK(m[4].readonly);
    CHECK(!m[5].expanded && m[5].target == NULL);
    const struct df_run *exec = &t.file->stages[0].cmds[1]->u.run;
    CHECK(!exec->cmd.shell_form);
    CHECK_INT_EQ(exec->cmd.argc, 2);
    typed_free(&t);
}

static int test_expander(void *ctx, const char *word, enum df_expand_how how, char ***ret,
                         struct kiln_error **err)
{
    /* "$DIR" -> "/work", "$PORTS" -> two words, "$BAD" -> an error */
    if (strstr(word, "BAD"))
        return kiln_error_set(err, 0, "BAD: is not allowed to be unset");
    char **v = strv_new();
    if (strcmp(word, "$PORTS") == 0 && how == DF_EXPAND_WORDS) {
        strv_push(&v, "80");
        strv_push(&v, "443/udp");
    } else if (strcmp(word, "$DIR") == 0) {
        strv_push(&v, "/work");
    } else {
        strv_push(&v, word);
    }
    *ret = v;
    return 0;
}

TEST(typed_expand)
{
    struct typed t;
    struct kiln_error *err = NULL;
    const char *text = "FROM alpine\n"
                       "RUN --mount=type=cache,target=$DIR true\n"
                       "EXPOSE 22 $PORTS\n"
                       "WORKDIR $DIR\n"
                       "USER ${BAD:?}\n";
    CHECK_INT_EQ(typed_parse(text, &t, &err), 0);
    if (!t.file)
        return;
    const struct df_stage *st = &t.file->stages[0];
    struct df_instruction *x = NULL;
    CHECK_INT_EQ(df_instruction_expand(t.ast, st->cmds[0], test_expander, NULL, &x, &err), 0);
    if (x) {
        CHECK(x->u.run.mounts[0].expanded);
        CHECK_STR_EQ(x->u.run.mounts[0].target, "/work");
        df_instruction_free(x);
    }
    CHECK_INT_EQ(df_instruction_expand(t.ast, st->cmds[1], test_expander, NULL, &x, &err), 0);
    if (x) {
        CHECK_INT_EQ(x->u.words.n, 3);
        CHECK_STR_EQ(x->u.words.v[2].text, "443/udp");
        df_instruction_free(x);
    }
    CHECK_INT_EQ(df_instruction_expand(t.ast, st->cmds[2], test_expander, NULL, &x, &err), 0);
    if (x) {
        CHECK_STR_EQ(x->u.word.text, "/work");
        CHECK_STR_EQ(st->cmds[2]->u.word.text, "$DIR");
        df_instruction_free(x);
    }
    CHECK_INT_EQ(df_instruction_expand(t.ast, st->cmds[3], test_expander, NULL, &x, &err), -1);
    CHECK_STR_EQ(err ? err->msg : NULL, "Dockerfile:5:6: BAD: is not allowed to be unset\n"
                                        "USER ${BAD:?}\n"
                                        "     ^~~~~~~~");
    kiln_error_free(&err);
    typed_free(&t);
}

TEST(typed_misc)
{
    struct typed t;
    struct kiln_error *err = NULL;
    const char *text = "ARG BASE=alpine V\n"
                       "FROM --platform=$BUILDPLATFORM ${BASE} As Build\n"
                       "ENV A=1 B=\"two words\"\n"
                       "ENV LEGACY value with spaces\n"
                       "LABEL k=v\n"
                       "ARG X Y=1\n"
                       "HEALTHCHECK --interval=1m30s --timeout=500ms --start-period=0s "
                       "--retries=0 CMD curl -f http://x/\n"
                       "HEALTHCHECK NONE\n"
                       "ONBUILD RUN <<EOF\necho hi\nEOF\n"
                       "SHELL [\"/bin/bash\", \"-c\"]\n"
                       "VOLUME [\"/a\", \"/b\"]\n"
                       "ENTRYPOINT []\n"
                       "CMD echo hi\n"
                       "STOPSIGNAL SIGTERM\n";
    CHECK_INT_EQ(typed_parse(text, &t, &err), 0);
    if (!t.file) {
        fprintf(stderr, "%s\n", err ? err->msg : "");
        kiln_error_free(&err);
        return;
    }
    CHECK_INT_EQ(t.file->n_meta_args, 1);
    CHECK_INT_EQ(t.file->meta_args[0]->u.args.n, 2);
    CHECK_STR_EQ(t.file->meta_args[0]->u.args.v[0].value.text, "alpine");
    CHECK(t.file->meta_args[0]->u.args.v[1].value.text == NULL);
    const struct df_stage *st = &t.file->stages[0];
    CHECK_STR_EQ(st->from->u.from.image.text, "${BASE}");
    CHECK_STR_EQ(st->from->u.from.platform.text, "$BUILDPLATFORM");
    CHECK_STR_EQ(st->from->u.from.stage_name, "build");
    CHECK_STR_EQ(st->from->u.from.name.text, "Build");
    struct df_instruction **c = st->cmds;
    CHECK_INT_EQ(c[0]->u.kvs.n, 2);
    CHECK_STR_EQ(c[0]->u.kvs.v[1].value.text, "\"two words\"");
    CHECK(c[1]->u.kvs.v[0].legacy);
    CHECK_STR_EQ(c[1]->u.kvs.v[0].value.text, "value with spaces");
    CHECK_INT_EQ(c[4]->u.healthcheck.interval_ns, 90000000000LL);
    CHECK_INT_EQ(c[4]->u.healthcheck.timeout_ns, 500000000LL);
    CHECK(c[4]->u.healthcheck.cmd.shell_form);
    CHECK(c[5]->u.healthcheck.none);
    CHECK_STR_EQ(c[6]->u.onbuild.expression, "RUN <<EOF\necho hi\nEOF");
    CHECK_INT_EQ(c[7]->u.shell.argc, 2);
    CHECK_INT_EQ(c[8]->u.words.n, 2);
    CHECK_INT_EQ(c[9]->u.cmd.argc, 0);
    CHECK(!c[9]->u.cmd.shell_form);
    CHECK(c[10]->u.cmd.shell_form);
    CHECK_STR_EQ(c[11]->u.word.text, "SIGTERM");
    typed_free(&t);
}

TEST(run_script_modes)
{
    struct typed t;
    struct kiln_error *err = NULL;
    const char *text = "FROM alpine\n"
                       "RUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF\n"
                       "RUN <<-EOF\n\techo hi\nEOF\n"
                       "RUN cat <<A > /x\nbody\nA\n"
                       "RUN true\n";
    CHECK_INT_EQ(typed_parse(text, &t, &err), 0);
    if (!t.file)
        return;
    struct df_instruction **c = t.file->stages[0].cmds;
    char *s = NULL;
    const char *name = NULL;
    CHECK_INT_EQ(df_run_script(&c[0]->u.run, &s, &name), DF_RUN_SCRIPT_FILE);
    CHECK_STR_EQ(s, "#!/usr/bin/env python3\nprint(1)\n");
    CHECK_STR_EQ(name, "EOF");
    free(s);
    CHECK_INT_EQ(df_run_script(&c[1]->u.run, &s, &name), DF_RUN_SCRIPT_SHELL);
    CHECK_STR_EQ(s, "echo hi\n");
    free(s);
    CHECK_INT_EQ(df_run_script(&c[2]->u.run, &s, &name), DF_RUN_SCRIPT_FULL);
    CHECK_STR_EQ(s, "cat <<A > /x\nbody\nA");
    free(s);
    CHECK_INT_EQ(df_run_script(&c[3]->u.run, &s, &name), DF_RUN_SCRIPT_NONE);
    CHECK(s == NULL);
    typed_free(&t);
}

TEST(typed_errors)
{
    check_typed_error("FROM a\nRUNN echo\n",
                      "Dockerfile:2:1: unknown instruction: RUNN (did you mean RUN?)\n"
                      "RUNN echo\n"
                      "^~~~");
    check_typed_error("FROM a\nINVALID\n", "Dockerfile:2:1: unknown instruction: INVALID\n"
                                           "INVALID\n"
                                           "^~~~~~~");
    check_typed_error("FROM a\nCOPY --chwon=1 a b\n",
                      "Dockerfile:2:6: unknown flag: --chwon (did you mean --chown?)\n"
                      "COPY --chwon=1 a b\n"
                      "     ^~~~~~~~~");
    check_typed_error("FROM a\nCMD --doit [ \"a\", \"b\" ]\n",
                      "Dockerfile:2:5: unknown flag: --doit\n"
                      "CMD --doit [ \"a\", \"b\" ]\n"
                      "    ^~~~~~");
    check_typed_error("FROM a\nCOPY --from=x --from=y a b\n",
                      "Dockerfile:2:15: duplicate flag specified: --from\n"
                      "COPY --from=x --from=y a b\n"
                      "              ^~~~~~~~");
    check_typed_error("FROM a\nCOPY --from a b\n",
                      "Dockerfile:2:6: missing a value on flag: --from\n"
                      "COPY --from a b\n"
                      "     ^~~~~~");
    check_typed_error("FROM a\nCOPY --link=yes a b\n",
                      "Dockerfile:2:6: expecting boolean value for flag --link, not: yes\n"
                      "COPY --link=yes a b\n"
                      "     ^~~~~~~~~~");
    check_typed_error("FROM a\nCOPY onlyone\n",
                      "Dockerfile:2:1: COPY requires at least two arguments, but only one was "
                      "provided. Destination could not be determined\n"
                      "COPY onlyone\n"
                      "^~~~");
    check_typed_error("FROM a\nCOPY a <<EOF\nx\nEOF\n",
                      "Dockerfile:2:8: COPY cannot accept a heredoc as a destination\n"
                      "COPY a <<EOF\n"
                      "       ^~~~~");
    check_typed_error("FROM a AS 1st\n",
                      "Dockerfile:1:11: invalid name for build stage: \"1st\", name can't start "
                      "with a number or contain symbols\n"
                      "FROM a AS 1st\n"
                      "          ^~~");
    check_typed_error("FROM a b\n", "Dockerfile:1:1: FROM requires either one or three arguments\n"
                                    "FROM a b\n"
                                    "^~~~");
    check_typed_error("RUN true\n",
                      "Dockerfile:1:1: RUN before the first FROM: no build stage in current "
                      "context\n"
                      "RUN true\n"
                      "^~~");
    check_typed_error("FROM a\nRUN --mount=type=cache,target=/x,sharing=bad true\n",
                      "Dockerfile:2:13: --mount: unsupported sharing value \"bad\"\n"
                      "RUN --mount=type=cache,target=/x,sharing=bad true\n"
                      "            ^~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~");
    check_typed_error("FROM a\nRUN --mount=type=bind,taget=/x true\n",
                      "Dockerfile:2:13: --mount: unexpected key 'taget' in 'taget=/x' (did you "
                      "mean target?)\n"
                      "RUN --mount=type=bind,taget=/x true\n"
                      "            ^~~~~~~~~~~~~~~~~~");
    check_typed_error("FROM a\nRUN --mount=type=tmpfs,target=/x,mode=0700 true\n",
                      "Dockerfile:2:13: --mount: mode not allowed for \"tmpfs\" type mounts\n"
                      "RUN --mount=type=tmpfs,target=/x,mode=0700 true\n"
                      "            ^~~~~~~~~~~~~~~~~~~~~~~~~~~~~~");
    check_typed_error("FROM a\nRUN --mount=type=secret,id=x,from=b true\n",
                      "Dockerfile:2:13: --mount: secret mount should not have a from\n"
                      "RUN --mount=type=secret,id=x,from=b true\n"
                      "            ^~~~~~~~~~~~~~~~~~~~~~~");
    check_typed_error("FROM a\nRUN --mount=from=$STAGE,target=/x true\n",
                      "Dockerfile:2:13: --mount: 'from' doesn't support variable expansion, "
                      "define alias stage instead\n"
                      "RUN --mount=from=$STAGE,target=/x true\n"
                      "            ^~~~~~~~~~~~~~~~~~~~~");
    check_typed_error("FROM a\nRUN --network=bridge true\n",
                      "Dockerfile:2:15: unsupported network mode \"bridge\"\n"
                      "RUN --network=bridge true\n"
                      "              ^~~~~~");
    check_typed_error("FROM a\nHEALTHCHECK --interval=10 CMD true\n",
                      "Dockerfile:2:24: invalid duration \"10\" for --interval\n"
                      "HEALTHCHECK --interval=10 CMD true\n"
                      "                       ^~");
    check_typed_error("FROM a\nHEALTHCHECK --timeout=1us CMD true\n",
                      "Dockerfile:2:23: --timeout cannot be less than 1ms\n"
                      "HEALTHCHECK --timeout=1us CMD true\n"
                      "                      ^~~");
    check_typed_error("FROM a\nHEALTHCHECK --retries=-1 CMD true\n",
                      "Dockerfile:2:23: --retries cannot be negative (-1)\n"
                      "HEALTHCHECK --retries=-1 CMD true\n"
                      "                      ^~");
    check_typed_error("FROM a\nHEALTHCHECK CONNECT TCP 7000\n",
                      "Dockerfile:2:13: Unknown type \"CONNECT\" in HEALTHCHECK (try CMD)\n"
                      "HEALTHCHECK CONNECT TCP 7000\n"
                      "            ^~~~~~~");
    check_typed_error("FROM a\nHEALTHCHECK NONE x\n",
                      "Dockerfile:2:18: HEALTHCHECK NONE takes no arguments\n"
                      "HEALTHCHECK NONE x\n"
                      "                 ^");
    check_typed_error("FROM a\nONBUILD FROM b\n",
                      "Dockerfile:2:9: FROM isn't allowed as an ONBUILD trigger\n"
                      "ONBUILD FROM b\n"
                      "        ^~~~");
    check_typed_error("FROM a\nONBUILD ONBUILD RUN x\n",
                      "Dockerfile:2:9: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed\n"
                      "ONBUILD ONBUILD RUN x\n"
                      "        ^~~~~~~");
    check_typed_error("FROM a\nSHELL /bin/sh -c\n",
                      "Dockerfile:2:7: SHELL requires the arguments to be in JSON form\n"
                      "SHELL /bin/sh -c\n"
                      "      ^~~~~~~~~~");
    check_typed_error("FROM a\nUSER\n", "Dockerfile:2:1: USER requires exactly one argument\n"
                                        "USER\n"
                                        "^~~~");
    check_typed_error("FROM a\nARG =x\n", "Dockerfile:2:5: ARG names can not be blank\n"
                                          "ARG =x\n"
                                          "    ^~");
    check_typed_error("FROM a\nENV =x\n", "Dockerfile:2:5: ENV names can not be blank\n"
                                          "ENV =x\n"
                                          "    ^");
    check_typed_error("FROM a\nVOLUME [\"\"]\n",
                      "Dockerfile:2:9: VOLUME specified can not be an empty string\n"
                      "VOLUME [\"\"]\n"
                      "        ^~");
    check_typed_error("FROM a\nEXPOSE\n", "Dockerfile:2:1: EXPOSE requires at least one argument\n"
                                          "EXPOSE\n"
                                          "^~~~~~");
}

TEST(durations)
{
    static const struct {
        const char *in;
        int64_t ns; /* -1: error */
    } cases[] = {
        {"0", 0},           {"5s", 5000000000LL}, {"1m30s", 90000000000LL}, {"1.5h", 5400000000000LL},
        {"300ms", 300000000}, {"-2s", -2000000000LL}, {"1\xc2\xb5s", 1000},   {"10", -1},
        {"", -1},           {".s", -1},             {"1x", -1},               {"+0", 0},
        {".5s", 500000000}, {"1.s", 1000000000},   {"9999999999h", -1},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        int64_t d = 12345;
        int r = go_parse_duration(cases[i].in, &d);
        if (cases[i].ns == -1 && strcmp(cases[i].in, "-2s") != 0) {
            CHECK_INT_EQ(r, -1);
        } else {
            CHECK_INT_EQ(r, 0);
            CHECK_INT_EQ(d, cases[i].ns);
        }
    }
}

int main(int argc, char **argv)
{
    test_dump_cases();
    test_negative_cases();
    each_jsonl("buildkit-parser-extra/line_numbers.jsonl", line_row, NULL);
    test_heredoc_file("heredoc");
    test_heredoc_file("heredoc-json");
    each_jsonl("buildkit-parser-extra/heredoc_helpers.jsonl", helper_row, NULL);
    each_jsonl("buildkit-parser-extra/json_arrays.jsonl", json_row, NULL);
    each_jsonl("buildkit-parser-extra/parse_words.jsonl", words_row, NULL);
    each_jsonl("buildkit-parser-extra/name_val.jsonl", nameval_row, NULL);
    each_jsonl("buildkit-parser-extra/directives.jsonl", directive_row, NULL);
    each_jsonl("buildkit-parser-extra/empty-continuation/expected.jsonl", empty_row, NULL);
    RUN(line_length_limit);
    RUN(parse_errors);
    RUN(unknown_keyword_kept);
    RUN(positions);
    RUN(directives_recorded);
    RUN(fuzz_corpus);
    RUN(typed_copy_add);
    RUN(typed_run);
    RUN(typed_expand);
    RUN(typed_misc);
    RUN(run_script_modes);
    RUN(typed_errors);
    RUN(durations);

    fprintf(stderr,
            "conformance: buildkit-parser %d/%d, negative %d/%d, line_numbers %d/%d, "
            "heredoc+heredoc-json %d/%d, heredoc_helpers %d/%d, json_arrays %d/%d, "
            "parse_words %d/%d, name_val %d/%d, directives %d/%d, empty-continuation %d/%d\n",
            count_dump_pass, count_dump_total, count_neg_pass, count_neg_total, count_lines_pass,
            count_lines_total, count_heredoc_pass, count_heredoc_total, count_helpers_pass,
            count_helpers_total, count_json_pass, count_json_total, count_words_pass,
            count_words_total, count_nameval_pass, count_nameval_total, count_dir_pass,
            count_dir_total, count_empty_pass, count_empty_total);
    (void)argc;
    (void)argv;
    return harness_done();
}
