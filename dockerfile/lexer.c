/* From bytes to logical instructions, the way BuildKit's parser.Parse reads
 * a Dockerfile:
 *
 *  - physical lines end at '\n'; trailing '\r' and '\n' are dropped; one
 *    line may hold at most 65535 bytes; a UTF-8 BOM on line 1 is skipped;
 *  - parser directives are read from the top until the first other line;
 *  - an instruction's first line loses its leading white space; a line
 *    whose first non-blank is '#' is a comment (also inside a continued
 *    instruction, where it is skipped);
 *  - the escape character as the last non-blank of a line continues the
 *    instruction on the next line (not when it is itself escaped); blank
 *    continuation lines are skipped with a warning;
 *  - RUN, COPY and ADD (also under ONBUILD), when not in JSON form, take
 *    the heredocs their line names: the following lines up to each
 *    delimiter, in order. */
#include <stdlib.h>
#include <string.h>

#include "dockerfile/directives.h"
#include "dockerfile/dockerfile.h"
#include "dockerfile/internal.h"
#include "dockerfile/parser.h"
#include "lib/cleanup.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

struct reader {
    const char *buf;
    size_t len;
    size_t pos;
    int line; /* lines read so far */
};

/* The next physical line, with its newline (BuildKit's scanLines). */
static int next_line(struct reader *rd, const char **ret, size_t *ret_len, bool *ret_ok)
{
    *ret_ok = false;
    if (rd->pos >= rd->len)
        return 0;
    const char *start = rd->buf + rd->pos;
    size_t avail = rd->len - rd->pos;
    const char *nl = memchr(start, '\n', avail);
    size_t n = nl ? (size_t)(nl - start) + 1 : avail;
    size_t content = nl ? n - 1 : n;
    if (content > DOCKERFILE_MAX_LINE)
        return -1;
    rd->pos += n;
    *ret = start;
    *ret_len = n;
    *ret_ok = true;
    return 0;
}

/* bytes.TrimRight(s, "\r\n") */
static size_t trim_newline(const char *s, size_t n)
{
    while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == '\n'))
        n--;
    return n;
}

static bool is_comment(const char *s, size_t n)
{
    size_t i = utf8_space_prefix(s, n);
    return i < n && s[i] == '#';
}

/* The continuation check: the escape as the last non-blank ([ \t]) of the
 * line, not preceded by another escape, or alone on the line.  Returns the
 * length of the line without it, and whether the instruction goes on. */
static size_t trim_continuation(const char *s, size_t n, char escape, bool *ret_continues)
{
    size_t e = n;
    while (e > 0 && (s[e - 1] == ' ' || s[e - 1] == '\t'))
        e--;
    *ret_continues = false;
    if (e == 0 || s[e - 1] != escape)
        return n;
    if (e == 1) {
        *ret_continues = true;
        return 0;
    }
    if (s[e - 2] == escape)
        return n;
    *ret_continues = true;
    return e - 1;
}

struct lex {
    struct df_ast *ast;
    struct reader rd;
    struct dirparser dir;
    struct parse_ctx pc;
    struct df_instr *instrs;
    size_t n_instrs, cap_instrs;
    struct df_seg *segs;
    size_t n_segs, cap_segs;
    struct df_warning *warnings;
    size_t n_warnings, cap_warnings;
    char **comments;
};

static int too_long(struct lex *lx, struct kiln_error **err)
{
    return dockerfile_error_line(lx->ast, lx->rd.line + 1, 0, 0, err,
                                 "dockerfile line greater than max allowed size of %d",
                                 DOCKERFILE_MAX_LINE);
}

static void add_seg(struct lex *lx, uint32_t off, int line, size_t col)
{
    XGROW(lx->segs, lx->cap_segs, lx->n_segs + 1);
    lx->segs[lx->n_segs++] = (struct df_seg){.off = off, .line = (uint32_t)line, .col = (uint32_t)col};
}

/* Feeds a line to the directive parser; sets the escape character. */
static int directive_line(struct lex *lx, const char *tok, size_t n, bool *ret_is_directive,
                          struct kiln_error **err)
{
    struct directive_hit hit;
    const char *dup = NULL;
    *ret_is_directive = false;
    int r = dirparser_line(&lx->dir, tok, n, &hit, &dup);
    int line = lx->rd.line;
    size_t col = (size_t)(tok - (lx->ast->source + lx->ast->line_off[line]));
    if (r < 0)
        return dockerfile_error_line(lx->ast, line, (int)col + 1, (int)n, err,
                                     "only one %s parser directive can be used", dup);
    if (r == 0)
        return 0;
    struct df_directive *d = NULL;
    if (strcmp(hit.name, "escape") == 0) {
        if (hit.value_len != 1 || (tok[hit.value_off] != '\\' && tok[hit.value_off] != '`')) {
            _cleanup_free_ char *v = xstrndup(tok + hit.value_off, hit.value_len);
            return dockerfile_error_line(lx->ast, line, (int)(col + hit.value_off) + 1,
                                         (int)hit.value_len, err,
                                         "invalid escape token '%s' does not match ` or \\", v);
        }
        lx->pc.escape = tok[hit.value_off];
        d = &lx->ast->escape_directive;
    } else if (strcmp(hit.name, "syntax") == 0) {
        d = &lx->ast->syntax;
    } else {
        d = &lx->ast->check;
    }
    d->value = pool_strndup(lx->ast->pool, tok + hit.value_off, hit.value_len);
    d->line = line;
    *ret_is_directive = true;
    return 0;
}

static bool can_contain_heredoc(const struct df_instr *ins)
{
    if (ins->kind == DF_ONBUILD && ins->n_args > 0 && ins->args[0].sub)
        ins = ins->args[0].sub;
    return (ins->kind == DF_RUN || ins->kind == DF_COPY || ins->kind == DF_ADD) && !ins->json;
}

/* Reads the bodies of the heredocs the instruction names. */
static int read_heredocs(struct lex *lx, struct df_instr *ins, int start_line,
                         struct kiln_error **err)
{
    _cleanup_strv_ char **words = NULL;
    if (shellwords_split(ins->original, ins->original_len, true, true, &words, NULL) < 0)
        return 0;
    struct df_heredoc *docs = NULL;
    size_t nd = 0, cap = 0;
    size_t search = 0;
    int ret = 0;
    for (size_t w = 0; words[w]; w++) {
        char *name = NULL;
        uint32_t fd;
        bool expand, chomp;
        struct kiln_error *herr = NULL;
        int r = dockerfile_parse_heredoc(words[w], &name, &fd, &expand, &chomp, &herr);
        /* Where the word is, for messages: the next "<<" in the line. */
        const char *at = NULL;
        if (search < ins->original_len)
            at = memmem(ins->original + search, ins->original_len - search, "<<", 2);
        uint32_t off = at ? (uint32_t)(at - ins->original) : DF_NOPOS;
        if (r != 0 && at)
            search = (size_t)(at - ins->original) + 2;
        if (r < 0) {
            ret = dockerfile_error_at(lx->ast, ins, off, (uint32_t)strlen(words[w]), err, "%s",
                                      herr->msg);
            kiln_error_free(&herr);
            goto out;
        }
        if (r == 0)
            continue;

        XGROW(docs, cap, nd + 1);
        struct df_heredoc *h = &docs[nd++];
        memset(h, 0, sizeof(*h));
        h->name = pool_adopt(lx->ast->pool, name);
        h->fd = fd;
        h->expand = expand;
        h->chomp = chomp;
        h->off = off;
        h->len = (uint32_t)strlen(words[w]);
        h->start_line = lx->rd.line + 1;

        size_t nlen = strlen(name);
        struct strbuf content = STRBUF_INIT;
        bool terminated = false;
        for (;;) {
            const char *l;
            size_t ln;
            bool ok;
            if (next_line(&lx->rd, &l, &ln, &ok) < 0) {
                strbuf_release(&content);
                ret = too_long(lx, err);
                goto out;
            }
            if (!ok)
                break;
            lx->rd.line++;
            size_t tl = trim_newline(l, ln);
            const char *t = l;
            if (chomp)
                while (tl > 0 && *t == '\t') {
                    t++;
                    tl--;
                }
            if (tl == nlen && memcmp(t, name, nlen) == 0) {
                terminated = true;
                break;
            }
            strbuf_add(&content, l, ln);
        }
        h->end_line = lx->rd.line;
        h->content_len = content.len;
        h->content = pool_adopt(lx->ast->pool, strbuf_detach(&content, NULL));
        if (!terminated) {
            ret = dockerfile_error_at(lx->ast, ins, off, h->len, err,
                                      "unterminated heredoc '%s': the file ends before a line "
                                      "'%s' (the heredoc starts on line %d)",
                                      name, name, start_line);
            goto out;
        }
    }
out:
    ins->heredocs = pool_adopt(lx->ast->pool, docs);
    ins->n_heredocs = nd;
    return ret;
}

static int lex_file(struct lex *lx, struct kiln_error **err)
{
    struct df_ast *ast = lx->ast;
    _cleanup_strbuf_ struct strbuf logical = STRBUF_INIT;
    const char *l;
    size_t ln;
    bool ok;

    for (;;) {
        if (next_line(&lx->rd, &l, &ln, &ok) < 0)
            return too_long(lx, err);
        if (!ok)
            break;
        const char *line_start = l;
        if (lx->rd.line == 0 && ln >= 3 && memcmp(l, "\xEF\xBB\xBF", 3) == 0) {
            l += 3;
            ln -= 3;
        }
        if (is_comment(l, ln)) {
            /* BuildKit takes the text from the second byte of the line. */
            size_t a = 1 + utf8_space_prefix(l + 1, ln - 1);
            size_t b = a + utf8_trim_right_len(l + a, ln - a);
            if (b == a) {
                strv_free(lx->comments);
                lx->comments = strv_new();
            } else {
                strv_push_take(&lx->comments, xstrndup(l + a, b - a));
            }
        }

        /* processLine(strip=true) */
        size_t tn = trim_newline(l, ln);
        size_t lead = utf8_space_prefix(l, tn);
        const char *tok = l + lead;
        tn -= lead;
        lx->rd.line++;
        bool is_directive;
        if (directive_line(lx, tok, tn, &is_directive, err) < 0)
            return -1;
        if (is_directive) {
            size_t nc = strv_len(lx->comments);
            if (nc > 0) {
                free(lx->comments[nc - 1]);
                lx->comments[nc - 1] = NULL;
            }
        }
        if (is_comment(tok, tn))
            tn = 0;

        int start_line = lx->rd.line;
        bool continues;
        size_t kept = trim_continuation(tok, tn, lx->pc.escape, &continues);
        if (!continues && kept == 0)
            continue;

        if (lx->n_instrs >= DOCKERFILE_MAX_INSTRUCTIONS)
            return dockerfile_error_line(ast, start_line, 1, 0, err,
                                         "too many instructions (more than %d)",
                                         DOCKERFILE_MAX_INSTRUCTIONS);

        strbuf_reset(&logical);
        size_t seg_first = lx->n_segs;
        add_seg(lx, 0, start_line, (size_t)(tok - line_start));
        strbuf_add(&logical, tok, kept);
        bool empty_continuation = false;

        while (continues) {
            if (next_line(&lx->rd, &l, &ln, &ok) < 0)
                return too_long(lx, err);
            if (!ok)
                break;
            size_t cn = trim_newline(l, ln);
            lx->rd.line++;
            bool dummy;
            if (directive_line(lx, l, cn, &dummy, err) < 0)
                return -1;
            if (is_comment(l, ln))
                continue;
            if (utf8_space_prefix(l, cn) == cn) {
                empty_continuation = true;
                continue;
            }
            size_t ck = trim_continuation(l, cn, lx->pc.escape, &continues);
            add_seg(lx, (uint32_t)logical.len, lx->rd.line, 0);
            strbuf_add(&logical, l, ck);
        }

        XGROW(lx->instrs, lx->cap_instrs, lx->n_instrs + 1);
        struct df_instr *ins = &lx->instrs[lx->n_instrs];
        memset(ins, 0, sizeof(*ins));
        ins->start_line = start_line;
        ins->end_line = lx->rd.line;
        ins->seg_first = (uint32_t)seg_first;
        ins->n_segs = (uint32_t)(lx->n_segs - seg_first);
        ins->comments = pool_strv(ast->pool, lx->comments);

        /* Locations need the segments in place while parsing. */
        ast->segs = lx->segs;
        ast->n_segs = lx->n_segs;

        if (empty_continuation) {
            XGROW(lx->warnings, lx->cap_warnings, lx->n_warnings + 1);
            struct df_warning *w = &lx->warnings[lx->n_warnings++];
            w->rule = "NoEmptyContinuation";
            w->line = lx->rd.line;
            struct strbuf m = STRBUF_INIT;
            strbuf_adds(&m, "Empty continuation line found in: ");
            strbuf_add(&m, logical.buf, logical.len);
            w->msg = pool_adopt(ast->pool, strbuf_detach(&m, NULL));
        }

        if (parser_build_instr(&lx->pc, ins, logical.buf ? logical.buf : "", logical.len, 0,
                               err) < 0)
            return -1;
        if (can_contain_heredoc(ins) && memmem(ins->original, ins->original_len, "<<", 2)) {
            if (read_heredocs(lx, ins, start_line, err) < 0)
                return -1;
        }
        ins->end_line = lx->rd.line;
        lx->n_instrs++;
        strv_free(lx->comments);
        lx->comments = strv_new();
    }
    return 0;
}

int dockerfile_parse(const char *name, const char *buf, size_t len, struct df_ast **ret,
                     struct kiln_error **err)
{
    if (len > DOCKERFILE_MAX_SIZE)
        return kiln_error_set(err, 0, "%s: the Dockerfile is larger than %u MiB", name,
                              DOCKERFILE_MAX_SIZE >> 20);

    struct df_ast *ast = xcalloc(1, sizeof(*ast));
    ast->pool = pool_new();
    ast->name = pool_strdup(ast->pool, name);
    ast->source = pool_strndup(ast->pool, buf, len);
    ast->source_len = len;
    ast->escape = '\\';

    /* Line starts, 1-based: line_off[k] is where line k begins. */
    size_t nl = 1;
    for (size_t i = 0; i < len; i++)
        if (buf[i] == '\n')
            nl++;
    ast->line_off = pool_alloc(ast->pool, (nl + 2) * sizeof(uint32_t));
    size_t k = 1;
    ast->line_off[1] = 0;
    for (size_t i = 0; i < len; i++)
        if (buf[i] == '\n')
            ast->line_off[++k] = (uint32_t)(i + 1);
    ast->n_lines = (len > 0 && buf[len - 1] == '\n') ? nl - 1 : nl;
    if (len == 0)
        ast->n_lines = 0;

    struct lex lx = {
        .ast = ast,
        .rd = {.buf = ast->source, .len = len},
        .pc = {.ast = ast, .pool = ast->pool, .escape = '\\'},
        .comments = strv_new(),
    };
    int r = lex_file(&lx, err);
    strv_free(lx.comments);
    ast->instrs = pool_adopt(ast->pool, lx.instrs);
    ast->n_instrs = lx.n_instrs;
    ast->segs = pool_adopt(ast->pool, lx.segs);
    ast->n_segs = lx.n_segs;
    ast->warnings = pool_adopt(ast->pool, lx.warnings);
    ast->n_warnings = lx.n_warnings;
    ast->escape = lx.pc.escape;
    if (r == 0 && ast->n_instrs == 0)
        r = dockerfile_error_line(ast, lx.rd.line > 0 ? lx.rd.line : 1, 0, 0, err,
                                  "file with no instructions");
    if (r < 0) {
        dockerfile_free(ast);
        return -1;
    }
    ast->start_line = ast->instrs[0].start_line;
    ast->end_line = ast->instrs[ast->n_instrs - 1].end_line;
    *ret = ast;
    return 0;
}

void dockerfile_free(struct df_ast *ast)
{
    if (!ast)
        return;
    pool_free(ast->pool);
    free(ast);
}
