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
#include "harness.h"
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
    const char *dirs[] = {"tests/fuzz/corpus/parser", "tests/fuzz/regressions/parser"};
    int seen = 0;
    for (size_t k = 0; k < ARRAY_SIZE(dirs); k++) {
        DIR *d = opendir(dirs[k]);
        if (!d)
            continue;
        struct dirent *de;
        while ((de = readdir(d))) {
            if (de->d_name[0] == '.')
                continue;
            _cleanup_free_ char *p = xasprintf("%s/%s", dirs[k], de->d_name);
            size_t len;
            _cleanup_free_ char *buf = read_all(p, &len);
            if (!buf)
                continue;
            struct df_ast *ast = NULL;
            struct kiln_error *err = NULL;
            if (dockerfile_parse("fuzz", buf, len, &ast, &err) == 0) {
                struct strbuf out = STRBUF_INIT;
                dockerfile_dump(ast, &out);
                strbuf_release(&out);
            }
            kiln_error_free(&err);
            dockerfile_free(ast);
            seen++;
        }
        closedir(d);
    }
    CHECK(seen > 0);
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
