/* One logical line -> one instruction node, with BuildKit's rules: the
 * keyword, the leading `--flags`, then the arguments split the way each
 * instruction wants (JSON array or shell form, whitespace-separated words,
 * KEY=VALUE pairs, the whole rest as one string, ONBUILD's nested
 * instruction).  Nothing is validated beyond what BuildKit's parser
 * refuses; unknown keywords and flags are the typed conversion's business. */
#include "dockerfile/parser.h"

#include <stdlib.h>
#include <string.h>

#include "dockerfile/dockerfile.h"
#include "dockerfile/internal.h"
#include "lib/cleanup.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

#define MAX_ONBUILD_DEPTH 64

/* Arguments being collected for an instruction. */
struct argv_build {
    struct df_node *v;
    size_t n;
    size_t cap;
};

static void args_push(struct parse_ctx *pc, struct argv_build *a, const char *value, size_t len,
                      uint32_t off, uint32_t rawlen)
{
    XGROW(a->v, a->cap, a->n + 1);
    struct df_node *node = &a->v[a->n++];
    memset(node, 0, sizeof(*node));
    node->value = pool_strndup(pc->pool, value, len);
    node->value_len = len;
    node->off = off;
    node->len = rawlen;
}

/* ---- JSON arrays, as Go's encoding/json Decoder reads them ---------------- */

struct json_elem {
    size_t off;  /* the opening quote */
    size_t end;  /* after the closing quote */
    char *value; /* decoded, malloc'ed */
    size_t len;
};

static bool json_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int get_u4(const char *s, size_t n, size_t i)
{
    /* s[i] is 'u' of "\uXXXX"; returns the code unit or -1 */
    if (i + 4 >= n)
        return -1;
    int v = 0;
    for (size_t k = 1; k <= 4; k++) {
        int h = hexval(s[i + k]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* Scans a JSON string starting at s[i] == '"'.  Returns the index after the
 * closing quote, or 0 on a syntax error.  Decodes into out when not NULL. */
static size_t json_string(const char *s, size_t n, size_t i, struct strbuf *out)
{
    i++;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"')
            return i + 1;
        if (c < 0x20)
            return 0;
        if (c == '\\') {
            if (i + 1 >= n)
                return 0;
            char e = s[i + 1];
            char lit = 0;
            switch (e) {
            case '"': lit = '"'; break;
            case '\\': lit = '\\'; break;
            case '/': lit = '/'; break;
            case 'b': lit = '\b'; break;
            case 'f': lit = '\f'; break;
            case 'n': lit = '\n'; break;
            case 'r': lit = '\r'; break;
            case 't': lit = '\t'; break;
            case 'u': {
                int u = get_u4(s, n, i + 1);
                if (u < 0)
                    return 0;
                i += 6;
                uint32_t r = (uint32_t)u;
                if (r >= 0xD800 && r <= 0xDFFF) {
                    /* A surrogate: combined with a following low one, else U+FFFD. */
                    int u2 = (i + 1 < n && s[i] == '\\' && s[i + 1] == 'u') ? get_u4(s, n, i + 1)
                                                                            : -1;
                    if (r <= 0xDBFF && u2 >= 0xDC00 && u2 <= 0xDFFF) {
                        r = 0x10000 + ((r - 0xD800) << 10) + ((uint32_t)u2 - 0xDC00);
                        i += 6;
                    } else {
                        r = RUNE_ERROR;
                    }
                }
                if (out)
                    utf8_encode(out, r);
                continue;
            }
            default:
                return 0;
            }
            if (out)
                strbuf_addc(out, lit);
            i += 2;
            continue;
        }
        if (c < 0x80) {
            if (out)
                strbuf_addc(out, (char)c);
            i++;
            continue;
        }
        size_t w;
        uint32_t r = utf8_decode(s + i, n - i, &w);
        if (out) {
            if (r == RUNE_ERROR && w == 1)
                utf8_encode(out, RUNE_ERROR);
            else
                strbuf_add(out, s + i, w);
        }
        i += w;
    }
    return 0;
}

static size_t json_number(const char *s, size_t n, size_t i)
{
    if (i < n && s[i] == '-')
        i++;
    if (i >= n)
        return 0;
    if (s[i] == '0') {
        i++;
    } else if (s[i] >= '1' && s[i] <= '9') {
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    } else {
        return 0;
    }
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || s[i] < '0' || s[i] > '9')
            return 0;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= n || s[i] < '0' || s[i] > '9')
            return 0;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    /* A number at the end of the input is incomplete for a stream decoder,
     * but inside an array something always follows. */
    return i < n ? i : 0;
}

/* Scans the JSON value that starts the (already left-trimmed) text s, which
 * must be an array.  Returns 0 with the string elements, 1 on a syntax
 * error, 2 when the array holds a non-string. */
static int json_array_scan(const char *s, size_t n, struct json_elem **ret, size_t *ret_n)
{
    *ret = NULL;
    *ret_n = 0;
    if (n == 0 || s[0] != '[')
        return 1;
    struct json_elem *elems = NULL;
    size_t ne = 0, cap = 0;
    /* Stack of open containers beyond the outer array: 1 = object. */
    unsigned char *stack = NULL;
    size_t depth = 0, stack_cap = 0;
    bool non_string = false;
    int result = 1;
    size_t i = 1;
    enum { VALUE_OR_CLOSE, VALUE, COMMA_OR_CLOSE, KEY_OR_CLOSE, KEY, COLON } state = VALUE_OR_CLOSE;

    for (;;) {
        while (i < n && json_ws(s[i]))
            i++;
        if (i >= n)
            goto out;
        char c = s[i];
        bool in_object = depth > 0 && stack[depth - 1];
        switch (state) {
        case KEY_OR_CLOSE:
            if (c == '}') {
                i++;
                depth--;
                state = COMMA_OR_CLOSE;
                break;
            }
            /* fall through */
        case KEY:
            if (c != '"')
                goto out;
            i = json_string(s, n, i, NULL);
            if (!i)
                goto out;
            state = COLON;
            break;
        case COLON:
            if (c != ':')
                goto out;
            i++;
            state = VALUE;
            break;
        case VALUE_OR_CLOSE:
            if (c == ']' && !in_object) {
                i++;
                if (depth == 0) {
                    result = non_string ? 2 : 0;
                    goto out;
                }
                depth--;
                state = COMMA_OR_CLOSE;
                break;
            }
            /* fall through */
        case VALUE:
            if (c == '"') {
                if (depth == 0) {
                    _cleanup_strbuf_ struct strbuf v = STRBUF_INIT;
                    size_t end = json_string(s, n, i, &v);
                    if (!end)
                        goto out;
                    XGROW(elems, cap, ne + 1);
                    elems[ne].off = i;
                    elems[ne].end = end;
                    elems[ne].len = v.len;
                    elems[ne].value = strbuf_detach(&v, NULL);
                    ne++;
                    i = end;
                } else {
                    i = json_string(s, n, i, NULL);
                    if (!i)
                        goto out;
                }
                state = COMMA_OR_CLOSE;
                break;
            }
            if (depth == 0)
                non_string = true;
            if (c == '[' || c == '{') {
                if (depth + 1 >= DOCKERFILE_MAX_JSON_DEPTH)
                    goto out;
                if (depth == stack_cap)
                    XGROW(stack, stack_cap, depth + 1);
                stack[depth++] = c == '{';
                i++;
                state = c == '{' ? KEY_OR_CLOSE : VALUE_OR_CLOSE;
                break;
            }
            if (c == '-' || (c >= '0' && c <= '9')) {
                i = json_number(s, n, i);
                if (!i)
                    goto out;
                state = COMMA_OR_CLOSE;
                break;
            }
            {
                static const char *const lits[] = {"true", "false", "null"};
                size_t k;
                for (k = 0; k < 3; k++) {
                    size_t l = strlen(lits[k]);
                    if (n - i >= l && memcmp(s + i, lits[k], l) == 0) {
                        i += l;
                        break;
                    }
                }
                if (k == 3)
                    goto out;
            }
            state = COMMA_OR_CLOSE;
            break;
        case COMMA_OR_CLOSE:
            if (c == ',') {
                i++;
                state = in_object ? KEY : VALUE;
                break;
            }
            if (in_object ? c == '}' : c == ']') {
                i++;
                if (depth == 0) {
                    result = non_string ? 2 : 0;
                    goto out;
                }
                depth--;
                state = COMMA_OR_CLOSE;
                break;
            }
            goto out;
        }
    }
out:
    free(stack);
    if (result != 0) {
        for (size_t k = 0; k < ne; k++)
            free(elems[k].value);
        free(elems);
        return result;
    }
    *ret = elems;
    *ret_n = ne;
    return 0;
}

static void json_elems_free(struct json_elem *e, size_t n)
{
    for (size_t k = 0; k < n; k++)
        free(e[k].value);
    free(e);
}

int dockerfile_parse_json_array(const char *s, size_t len, char ***ret, size_t **ret_lens)
{
    size_t lead = utf8_space_prefix(s, len);
    struct json_elem *e;
    size_t n;
    int r = json_array_scan(s + lead, len - lead, &e, &n);
    if (r != 0)
        return r;
    char **v = xcalloc(n + 1, sizeof(char *));
    size_t *lens = xcalloc(n + 1, sizeof(size_t));
    for (size_t k = 0; k < n; k++) {
        v[k] = TAKE_PTR(e[k].value);
        lens[k] = e[k].len;
    }
    free(e);
    *ret = v;
    if (ret_lens)
        *ret_lens = lens;
    else
        free(lens);
    return 0;
}

/* ---- words ----------------------------------------------------------------- */

struct word_span {
    char *text;
    size_t len;
    size_t start; /* raw span in the input */
    size_t end;
};

/* BuildKit's parseWords: split on Unicode white space outside quotes; quotes
 * and escapes stay in the words. */
static void parse_words_spans(const char *s, size_t n, char escape, struct word_span **ret,
                              size_t *ret_n)
{
    enum { IN_SPACES, IN_WORD, IN_QUOTE } phase = IN_SPACES;
    struct word_span *words = NULL;
    size_t nw = 0, cap = 0;
    struct strbuf word = STRBUF_INIT;
    uint32_t quote = 0;
    bool blank_ok = false;
    size_t start = 0;
    uint32_t ch = 0;
    size_t w = 0;

    for (size_t pos = 0; pos <= n; pos += w) {
        if (pos != n) {
            ch = utf8_decode(s + pos, n - pos, &w);
        } else {
            w = 1;
        }
        if (phase == IN_SPACES) {
            if (pos == n)
                break;
            if (rune_is_space(ch))
                continue;
            phase = IN_WORD;
            start = pos;
        }
        if ((phase == IN_WORD || phase == IN_QUOTE) && pos == n) {
            if (blank_ok || word.len > 0) {
                XGROW(words, cap, nw + 1);
                words[nw++] = (struct word_span){.len = word.len, .start = start, .end = n};
                words[nw - 1].text = strbuf_detach(&word, NULL);
            }
            break;
        }
        if (phase == IN_WORD) {
            if (rune_is_space(ch)) {
                phase = IN_SPACES;
                if (blank_ok || word.len > 0) {
                    XGROW(words, cap, nw + 1);
                    words[nw++] = (struct word_span){.len = word.len, .start = start, .end = pos};
                    words[nw - 1].text = strbuf_detach(&word, NULL);
                }
                strbuf_reset(&word);
                blank_ok = false;
                continue;
            }
            if (ch == '\'' || ch == '"') {
                quote = ch;
                blank_ok = true;
                phase = IN_QUOTE;
            }
            if (ch == (unsigned char)escape) {
                if (pos + w == n)
                    continue; /* an escape at the very end is dropped */
                utf8_encode(&word, ch);
                pos += w;
                ch = utf8_decode(s + pos, n - pos, &w);
            }
            utf8_encode(&word, ch);
            continue;
        }
        /* IN_QUOTE */
        if (ch == quote)
            phase = IN_WORD;
        if (ch == (unsigned char)escape && quote != '\'') {
            if (pos + w == n) {
                phase = IN_WORD;
                continue;
            }
            pos += w;
            utf8_encode(&word, ch);
            ch = utf8_decode(s + pos, n - pos, &w);
        }
        utf8_encode(&word, ch);
    }
    strbuf_release(&word);
    *ret = words;
    *ret_n = nw;
}

static void word_spans_free(struct word_span *w, size_t n)
{
    for (size_t k = 0; k < n; k++)
        free(w[k].text);
    free(w);
}

char **dockerfile_parse_words(const char *s, size_t len, char escape)
{
    struct word_span *w;
    size_t n;
    parse_words_spans(s, len, escape, &w, &n);
    char **v = strv_new();
    for (size_t k = 0; k < n; k++)
        strv_push_take(&v, TAKE_PTR(w[k].text));
    word_spans_free(w, n);
    return v;
}

/* ---- the instruction parsers ------------------------------------------------ */

struct rest {
    const char *s; /* the arguments after the flags, trimmed */
    size_t n;
    uint32_t off;  /* offset of s in the top-level line */
};

static int ins_error(struct parse_ctx *pc, struct df_instr *ins, uint32_t off, uint32_t len,
                     struct kiln_error **err, const char *msg)
{
    return dockerfile_error_at(pc->ast, ins, off, len, err, "%s", msg);
}

/* Whitespace-separated words ([\t\v\f\r ]+), BuildKit's
 * parseStringsWhitespaceDelimited. */
static void parse_ws_words(struct parse_ctx *pc, const struct rest *r, struct argv_build *a)
{
    size_t i = 0;
    while (i < r->n) {
        size_t j = i;
        while (j < r->n && !is_re_ws((unsigned char)r->s[j]))
            j++;
        args_push(pc, a, r->s + i, j - i, r->off + (uint32_t)i, (uint32_t)(j - i));
        while (j < r->n && is_re_ws((unsigned char)r->s[j]))
            j++;
        i = j;
    }
}

/* JSON array, or (1) not one. */
static int parse_json(struct parse_ctx *pc, struct df_instr *ins, const struct rest *r,
                      struct argv_build *a, struct kiln_error **err)
{
    size_t lead = utf8_space_prefix(r->s, r->n);
    struct json_elem *e;
    size_t n;
    int res = json_array_scan(r->s + lead, r->n - lead, &e, &n);
    if (res == 2)
        return ins_error(pc, ins, r->off + (uint32_t)lead, 1, err,
                         "when using JSON array syntax, arrays must be comprised of strings only");
    if (res == 1)
        return 1;
    for (size_t k = 0; k < n; k++)
        args_push(pc, a, e[k].value, e[k].len, r->off + (uint32_t)(lead + e[k].off),
                  (uint32_t)(e[k].end - e[k].off));
    json_elems_free(e, n);
    ins->json = true;
    return 0;
}

static int parse_maybe_json(struct parse_ctx *pc, struct df_instr *ins, const struct rest *r,
                            struct argv_build *a, struct kiln_error **err)
{
    if (r->n == 0)
        return 0;
    int res = parse_json(pc, ins, r, a, err);
    if (res <= 0)
        return res;
    args_push(pc, a, r->s, r->n, r->off, (uint32_t)r->n);
    return 0;
}

static int parse_maybe_json_to_list(struct parse_ctx *pc, struct df_instr *ins,
                                    const struct rest *r, struct argv_build *a,
                                    struct kiln_error **err)
{
    int res = parse_json(pc, ins, r, a, err);
    if (res <= 0)
        return res;
    parse_ws_words(pc, r, a);
    return 0;
}

/* ENV and LABEL: `KEY value words` (legacy) or `KEY=value ...`; each pair
 * becomes key, value, then "=" or "" for the legacy form. */
static int parse_name_val(struct parse_ctx *pc, struct df_instr *ins, const struct rest *r,
                          const char *what, struct argv_build *a, struct kiln_error **err)
{
    struct word_span *w;
    size_t nw;
    parse_words_spans(r->s, r->n, pc->escape, &w, &nw);
    int ret = 0;
    if (nw == 0)
        goto out;
    if (!memchr(w[0].text, '=', w[0].len)) {
        size_t k = 0;
        while (k < r->n && !is_re_ws((unsigned char)r->s[k]))
            k++;
        if (k == r->n) {
            _cleanup_free_ char *msg = xasprintf("%s must have two arguments", what);
            ret = ins_error(pc, ins, r->off, (uint32_t)r->n, err, msg);
            goto out;
        }
        size_t v = k;
        while (v < r->n && is_re_ws((unsigned char)r->s[v]))
            v++;
        args_push(pc, a, r->s, k, r->off, (uint32_t)k);
        args_push(pc, a, r->s + v, r->n - v, r->off + (uint32_t)v, (uint32_t)(r->n - v));
        args_push(pc, a, "", 0, DF_NOPOS, 0);
        goto out;
    }
    for (size_t i = 0; i < nw; i++) {
        const char *eq = memchr(w[i].text, '=', w[i].len);
        if (!eq) {
            struct strbuf q = STRBUF_INIT;
            dockerfile_go_quote(&q, w[i].text, w[i].len);
            _cleanup_free_ char *msg = xasprintf(
                "Syntax error - can't find = in %s. Must be of the form: name=value", q.buf);
            strbuf_release(&q);
            ret = ins_error(pc, ins, r->off + (uint32_t)w[i].start,
                            (uint32_t)(w[i].end - w[i].start), err, msg);
            goto out;
        }
        size_t klen = (size_t)(eq - w[i].text);
        const char *raw_eq = memchr(r->s + w[i].start, '=', w[i].end - w[i].start);
        size_t raw_k = raw_eq ? (size_t)(raw_eq - (r->s + w[i].start)) : klen;
        uint32_t koff = r->off + (uint32_t)w[i].start;
        args_push(pc, a, w[i].text, klen, koff, (uint32_t)raw_k);
        args_push(pc, a, eq + 1, w[i].len - klen - 1, koff + (uint32_t)raw_k + 1,
                  (uint32_t)(w[i].end - w[i].start - raw_k - 1));
        args_push(pc, a, "=", 1, DF_NOPOS, 0);
    }
out:
    word_spans_free(w, nw);
    return ret;
}

/* ARG: the words, each `name` or `name=value`. */
static void parse_name_or_name_val(struct parse_ctx *pc, const struct rest *r,
                                   struct argv_build *a)
{
    struct word_span *w;
    size_t nw;
    parse_words_spans(r->s, r->n, pc->escape, &w, &nw);
    for (size_t i = 0; i < nw; i++)
        args_push(pc, a, w[i].text, w[i].len, r->off + (uint32_t)w[i].start,
                  (uint32_t)(w[i].end - w[i].start));
    word_spans_free(w, nw);
}

/* HEALTHCHECK: the type word (CMD, NONE, ...), then the command like CMD. */
static int parse_health(struct parse_ctx *pc, struct df_instr *ins, const struct rest *r,
                        struct argv_build *a, struct kiln_error **err)
{
    size_t sep = 0;
    while (sep < r->n && !byte_is_space_rune((unsigned char)r->s[sep]))
        sep++;
    size_t next = sep;
    while (next < r->n && byte_is_space_rune((unsigned char)r->s[next]))
        next++;
    if (sep == 0)
        return 0;
    args_push(pc, a, r->s, sep, r->off, (uint32_t)sep);
    struct rest cmd = {.s = r->s + next, .n = r->n - next, .off = r->off + (uint32_t)next};
    return parse_maybe_json(pc, ins, &cmd, a, err);
}

/* ---- flags --------------------------------------------------------------------- */

struct flag_build {
    struct df_flag *v;
    size_t n;
    size_t cap;
};

static void flag_push(struct parse_ctx *pc, struct flag_build *f, struct strbuf *word,
                      uint32_t off, uint32_t len)
{
    XGROW(f->v, f->cap, f->n + 1);
    f->v[f->n++] = (struct df_flag){
        .text = pool_strndup(pc->pool, word->buf ? word->buf : "", word->len),
        .off = off,
        .len = len,
    };
}

/* BuildKit's extractBuilderFlags: the leading words that start with "--"
 * (quotes and escapes processed; a lone "--" ends them).  Works on bytes,
 * as BuildKit does.  Returns the offset where the arguments start. */
static size_t extract_flags(struct parse_ctx *pc, const char *s, size_t n, uint32_t base,
                            struct flag_build *f)
{
    enum { IN_SPACES, IN_WORD, IN_QUOTE } phase = IN_SPACES;
    _cleanup_strbuf_ struct strbuf word = STRBUF_INIT;
    unsigned char quote = 0;
    bool blank_ok = false;
    size_t start = 0;
    unsigned char esc = (unsigned char)pc->escape;

    for (size_t pos = 0; pos <= n; pos++) {
        unsigned char ch = pos < n ? (unsigned char)s[pos] : 0;
        if (phase == IN_SPACES) {
            if (pos == n)
                break;
            if (byte_is_space_rune(ch))
                continue;
            if (ch != '-' || pos + 1 == n || s[pos + 1] != '-')
                return pos;
            phase = IN_WORD;
            start = pos;
        }
        if ((phase == IN_WORD || phase == IN_QUOTE) && pos == n) {
            bool dashdash = word.len == 2 && memcmp(word.buf, "--", 2) == 0;
            if (!dashdash && (blank_ok || word.len > 0))
                flag_push(pc, f, &word, base + (uint32_t)start, (uint32_t)(n - start));
            break;
        }
        if (phase == IN_WORD) {
            if (byte_is_space_rune(ch)) {
                phase = IN_SPACES;
                if (word.len == 2 && memcmp(word.buf, "--", 2) == 0)
                    return pos;
                if (blank_ok || word.len > 0)
                    flag_push(pc, f, &word, base + (uint32_t)start, (uint32_t)(pos - start));
                strbuf_reset(&word);
                blank_ok = false;
                continue;
            }
            if (ch == '\'' || ch == '"') {
                quote = ch;
                blank_ok = true;
                phase = IN_QUOTE;
                continue;
            }
            if (ch == esc) {
                if (pos + 1 == n)
                    continue;
                pos++;
                ch = (unsigned char)s[pos];
            }
            strbuf_addc(&word, (char)ch);
            continue;
        }
        /* IN_QUOTE */
        if (ch == quote) {
            phase = IN_WORD;
            continue;
        }
        if (ch == esc) {
            if (pos + 1 == n) {
                phase = IN_WORD;
                continue;
            }
            pos++;
            ch = (unsigned char)s[pos];
        }
        strbuf_addc(&word, (char)ch);
    }
    return n;
}

/* ---- the instruction -------------------------------------------------------------- */

int parser_build_instr(struct parse_ctx *pc, struct df_instr *ins, const char *line, size_t len,
                       uint32_t base, struct kiln_error **err)
{
    ins->original = pool_strndup(pc->pool, line, len);
    ins->original_len = len;

    /* splitCommand: trim, keyword up to the first [\t\v\f\r ], then flags. */
    size_t lead = utf8_space_prefix(line, len);
    size_t end = lead + utf8_trim_right_len(line + lead, len - lead);
    size_t k = lead;
    while (k < end && !is_re_ws((unsigned char)line[k]))
        k++;
    ins->keyword = pool_strndup(pc->pool, line + lead, k - lead);
    ins->keyword_off = base + (uint32_t)lead;
    ins->kind = df_kind_lookup(line + lead, k - lead);

    struct flag_build flags = {0};
    struct rest r = {.s = line + end, .n = 0, .off = base + (uint32_t)end};
    if (k < end) {
        size_t a = k;
        while (a < end && is_re_ws((unsigned char)line[a]))
            a++;
        size_t args = a + extract_flags(pc, line + a, end - a, base + (uint32_t)a, &flags);
        size_t alead = utf8_space_prefix(line + args, end - args);
        size_t alen = utf8_trim_right_len(line + args + alead, end - args - alead);
        r.s = line + args + alead;
        r.n = alen;
        r.off = base + (uint32_t)(args + alead);
    }
    ins->flags = pool_adopt(pc->pool, flags.v);
    ins->n_flags = flags.n;

    struct argv_build a = {0};
    int ret = 0;
    switch (ins->kind) {
    case DF_ADD:
    case DF_COPY:
    case DF_VOLUME:
        ret = parse_maybe_json_to_list(pc, ins, &r, &a, err);
        break;
    case DF_ARG:
        parse_name_or_name_val(pc, &r, &a);
        break;
    case DF_CMD:
    case DF_ENTRYPOINT:
    case DF_RUN:
    case DF_SHELL:
        ret = parse_maybe_json(pc, ins, &r, &a, err);
        break;
    case DF_ENV:
        ret = parse_name_val(pc, ins, &r, "ENV", &a, err);
        break;
    case DF_LABEL:
        ret = parse_name_val(pc, ins, &r, "LABEL", &a, err);
        break;
    case DF_EXPOSE:
    case DF_FROM:
        parse_ws_words(pc, &r, &a);
        break;
    case DF_HEALTHCHECK:
        ret = parse_health(pc, ins, &r, &a, err);
        break;
    case DF_MAINTAINER:
    case DF_STOPSIGNAL:
    case DF_USER:
    case DF_WORKDIR:
        if (r.n > 0)
            args_push(pc, &a, r.s, r.n, r.off, (uint32_t)r.n);
        break;
    case DF_ONBUILD:
        if (r.n > 0) {
            if (pc->depth >= MAX_ONBUILD_DEPTH) {
                ret = ins_error(pc, ins, r.off, 0, err, "ONBUILD instructions nested too deeply");
                break;
            }
            struct df_instr *sub = pool_alloc(pc->pool, sizeof(*sub));
            sub->seg_first = ins->seg_first;
            sub->n_segs = ins->n_segs;
            sub->start_line = ins->start_line;
            sub->end_line = ins->end_line;
            pc->depth++;
            ret = parser_build_instr(pc, sub, r.s, r.n, r.off, err);
            pc->depth--;
            if (ret == 0) {
                args_push(pc, &a, "", 0, r.off, (uint32_t)r.n);
                a.v[a.n - 1].sub = sub;
            }
        }
        break;
    default:
        /* Unknown instruction: BuildKit's parser keeps it with one empty node. */
        args_push(pc, &a, "", 0, DF_NOPOS, 0);
        break;
    }
    ins->args = pool_adopt(pc->pool, a.v);
    ins->n_args = a.n;
    return ret < 0 ? -1 : 0;
}
