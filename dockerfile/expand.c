/* Word expansion with BuildKit's rules: a rune scanner and the same
 * recursive structure as BuildKit's shell lexer (processStopOn,
 * processSingleQuote, processDoubleQuote, processDollar), so that quoting,
 * escapes, word splitting and error cases agree with `docker build`. */
#include "expand.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dockerfile/goregex.h"
#include "dockerfile/unicode.h"
#include "lib/cleanup.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

#define EOF_RUNE UINT32_MAX

struct words {
    struct strbuf word;
    bool in_word;
    char **list; /* NULL-terminated, with room for `cap` entries */
    size_t n, cap;
};

static void words_push(struct words *w)
{
    XGROW(w->list, w->cap, w->n + 2);
    w->list[w->n++] = xstrdup(strbuf_str(&w->word));
    w->list[w->n] = NULL;
    strbuf_reset(&w->word);
    w->in_word = false;
}

struct lex {
    const char *s;
    size_t len, pos;
    const struct expand_env *env;
    uint32_t escape;
    bool skip_unset, raw_quotes, raw_escapes, skip_quotes;
    int depth;
    char **matched, **unmatched; /* in reference order, duplicates allowed */
    char *errmsg;                /* the innermost error, BuildKit's words */
};

/* ---- scanner (Go's text/scanner on a string) ------------------------------------ */

static uint32_t peek(const struct lex *l)
{
    if (l->pos >= l->len)
        return EOF_RUNE;
    size_t w;
    return uni_decode(l->s + l->pos, l->len - l->pos, &w);
}

static uint32_t next(struct lex *l)
{
    if (l->pos >= l->len)
        return EOF_RUNE;
    size_t w;
    uint32_t r = uni_decode(l->s + l->pos, l->len - l->pos, &w);
    l->pos += w;
    return r;
}

static void add_rune(struct strbuf *sb, uint32_t r)
{
    char enc[4];
    strbuf_add(sb, enc, uni_encode(r == EOF_RUNE ? UNI_ERROR : r, enc));
}

static int fail(struct lex *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct lex *l, const char *fmt, ...)
{
    if (!l->errmsg) {
        va_list ap;
        va_start(ap, fmt);
        l->errmsg = xvasprintf(fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int check_len(struct lex *l, const struct strbuf *sb)
{
    if (sb->len > EXPAND_MAX_LEN)
        return fail(l, "expansion result is longer than %u bytes", EXPAND_MAX_LEN);
    return 0;
}

/* ---- word splitting ------------------------------------------------------------- */

static void words_raw_rune(struct words *w, uint32_t r)
{
    add_rune(&w->word, r);
    w->in_word = true;
}

static void words_rune(struct words *w, uint32_t r)
{
    if (uni_is_space(r) && w->in_word) {
        if (w->word.len != 0)
            words_push(w);
    } else if (!uni_is_space(r)) {
        words_raw_rune(w, r);
    }
}

static void words_string(struct words *w, const char *s, size_t len)
{
    size_t width;
    for (size_t i = 0; i < len; i += width)
        words_rune(w, uni_decode(s + i, len - i, &width));
}

static void words_raw_string(struct words *w, const char *s, size_t len)
{
    strbuf_add(&w->word, s, len);
    w->in_word = true;
}

static void words_finish(struct words *w)
{
    if (w->word.len > 0)
        words_push(w);
}

/* ---- environment --------------------------------------------------------------------- */

static const char *env_get(struct lex *l, const char *name)
{
    size_t nlen = strlen(name);
    const char *val = NULL;
    for (size_t i = l->env ? l->env->n_vars : 0; i-- > 0;) {
        const char *e = l->env->vars[i];
        if (strncmp(e, name, nlen) == 0 && (e[nlen] == '=' || e[nlen] == '\0')) {
            val = e[nlen] == '=' ? e + nlen + 1 : "";
            break;
        }
    }
    strv_push(val ? &l->matched : &l->unmatched, name);
    return val;
}

/* ---- shell patterns ------------------------------------------------------------------- */

/* BuildKit's convertShellPatternToRegex over the runes of the pattern. */
static int pattern_regex(struct lex *l, const uint32_t *p, size_t n, bool greedy, bool anchored,
                         const char *shown, struct goregex **ret)
{
    struct strbuf re = STRBUF_INIT;
    strbuf_init(&re);
    if (anchored)
        strbuf_addc(&re, '^');
    size_t i = 0;
    if (n > 0 && p[0] == 0xFEFF) /* text/scanner drops a leading BOM */
        i = 1;
    for (; i < n; i++) {
        uint32_t t = p[i];
        if (t == '*') {
            strbuf_adds(&re, greedy ? ".*" : ".*?");
            continue;
        }
        if (t == '?') {
            strbuf_addc(&re, '.');
            continue;
        }
        if (t == '\\') {
            uint32_t nx = i + 1 < n ? p[i + 1] : EOF_RUNE;
            if (nx == '}' || nx == '/')
                continue; /* the escape of } and / inside ${} is not part of the pattern */
            strbuf_addc(&re, '\\');
            i++;
            if (nx != '*' && nx != '?' && nx != '\\') {
                struct strbuf bad = STRBUF_INIT;
                strbuf_init(&bad);
                add_rune(&bad, nx);
                fail(l, "invalid pattern (%s) in substitution: invalid escape '\\%s'", shown,
                     strbuf_str(&bad));
                strbuf_release(&bad);
                strbuf_release(&re);
                return -1;
            }
            t = nx;
        } else if (t < 0x80 && strchr("[]{}.+()|^$", (int)t) && t != 0) {
            strbuf_addc(&re, '\\');
        }
        add_rune(&re, t);
    }
    char *msg = NULL;
    int r = goregex_compile(re.buf, re.len, ret, &msg);
    if (r < 0) {
        fail(l, "invalid pattern (%s) in substitution: %s", shown, msg);
        free(msg);
    }
    strbuf_release(&re);
    return r;
}

static uint32_t *to_runes(const char *s, size_t len, size_t *ret_n)
{
    uint32_t *out = xreallocarray(NULL, len + 1, sizeof(*out));
    size_t n = 0, w;
    for (size_t i = 0; i < len; i += w)
        out[n++] = uni_decode(s + i, len - i, &w);
    *ret_n = n;
    return out;
}

static char *from_runes(const uint32_t *r, size_t n, size_t *ret_len)
{
    struct strbuf sb = STRBUF_INIT;
    strbuf_init(&sb);
    for (size_t i = 0; i < n; i++)
        add_rune(&sb, r[i]);
    return strbuf_detach(&sb, ret_len);
}

/* ${V#p} ${V##p}: the value without the shortest/longest matching prefix. */
static int trim_prefix(struct lex *l, const uint32_t *p, size_t n, const char *shown,
                       const char *value, size_t vlen, bool greedy, struct strbuf *out)
{
    struct goregex *re = NULL;
    if (pattern_regex(l, p, n, greedy, true, shown, &re) < 0)
        return -1;
    ssize_t e = goregex_match_at(re, value, vlen, 0);
    goregex_free(re);
    size_t from = e >= 0 ? (size_t)e : 0;
    strbuf_add(out, value + from, vlen - from);
    return 0;
}

/* ${V%p} ${V%%p}: as BuildKit, reverse the pattern (keeping escape pairs in
 * order) and the value, trim a prefix, reverse back. */
static int trim_suffix(struct lex *l, const uint32_t *p, size_t n, const char *shown,
                       const char *value, size_t vlen, bool greedy, struct strbuf *out)
{
    uint32_t *rp = xreallocarray(NULL, n + 1, sizeof(*rp));
    for (size_t i = 0; i < n;) {
        size_t o = n - 1 - i;
        if (p[i] == '\\' && i != n - 1) {
            rp[o - 1] = p[i];
            rp[o] = p[i + 1];
            i += 2;
        } else {
            rp[o] = p[i];
            i++;
        }
    }
    size_t nv;
    uint32_t *rv = to_runes(value, vlen, &nv);
    for (size_t i = 0; i < nv / 2; i++) {
        uint32_t t = rv[i];
        rv[i] = rv[nv - 1 - i];
        rv[nv - 1 - i] = t;
    }
    size_t rlen;
    char *rev = from_runes(rv, nv, &rlen);
    struct strbuf tmp = STRBUF_INIT;
    strbuf_init(&tmp);
    int r = trim_prefix(l, rp, n, shown, rev, rlen, greedy, &tmp);
    if (r == 0) {
        size_t nt;
        uint32_t *rt = to_runes(tmp.buf, tmp.len, &nt);
        for (size_t i = nt; i-- > 0;)
            add_rune(out, rt[i]);
        free(rt);
    }
    strbuf_release(&tmp);
    free(rev);
    free(rv);
    free(rp);
    return r;
}

/* ---- the lexer ---------------------------------------------------------------------- */

static int stop_on(struct lex *l, uint32_t stop, bool raw_escapes, struct strbuf *result,
                   struct words *words);

static int single_quote(struct lex *l, struct strbuf *out)
{
    uint32_t ch = next(l);
    if (l->raw_quotes)
        add_rune(out, ch);
    for (;;) {
        ch = next(l);
        if (ch == EOF_RUNE)
            return fail(l, "unexpected end of statement while looking for matching single-quote");
        if (ch == '\'') {
            if (l->raw_quotes)
                add_rune(out, ch);
            return 0;
        }
        add_rune(out, ch);
    }
}

static int dollar(struct lex *l, struct strbuf *out);

static int double_quote(struct lex *l, struct strbuf *out)
{
    uint32_t ch = next(l);
    if (l->raw_quotes)
        add_rune(out, ch);
    for (;;) {
        uint32_t pk = peek(l);
        if (pk == EOF_RUNE)
            return fail(l, "unexpected end of statement while looking for matching double-quote");
        if (pk == '"') {
            ch = next(l);
            if (l->raw_quotes)
                add_rune(out, ch);
            return 0;
        }
        if (pk == '$') {
            if (dollar(l, out) < 0)
                return -1;
            if (check_len(l, out) < 0)
                return -1;
            continue;
        }
        ch = next(l);
        if (ch == l->escape) {
            if (l->raw_escapes)
                add_rune(out, ch);
            pk = peek(l);
            if (pk == EOF_RUNE)
                continue; /* a trailing escape is dropped (then: unterminated) */
            if (pk == '"' || pk == '$' || pk == l->escape)
                ch = next(l);
        }
        add_rune(out, ch);
    }
}

static bool is_special_param(uint32_t c)
{
    return c == '@' || c == '*' || c == '#' || c == '?' || c == '-' || c == '$' || c == '!' ||
           c == '0';
}

static char *process_name(struct lex *l)
{
    struct strbuf name = STRBUF_INIT;
    strbuf_init(&name);
    while (peek(l) != EOF_RUNE) {
        uint32_t ch = peek(l);
        if (name.len == 0 && uni_is_digit(ch)) {
            while (peek(l) != EOF_RUNE && uni_is_digit(peek(l)))
                add_rune(&name, next(l));
            break;
        }
        if (name.len == 0 && is_special_param(ch)) {
            add_rune(&name, next(l));
            break;
        }
        if (!uni_is_letter(ch) && !uni_is_digit(ch) && ch != '_')
            break;
        add_rune(&name, next(l));
    }
    return strbuf_detach(&name, NULL);
}

/* A modifier word ("-w" of ${V:-w}) up to the closing brace. */
static int modifier_word(struct lex *l, uint32_t stop, bool raw_escapes, struct strbuf *word,
                         const char *missing)
{
    int r = stop_on(l, stop, raw_escapes, word, NULL);
    if (r < 0 && peek(l) == EOF_RUNE) {
        free(l->errmsg);
        l->errmsg = NULL;
        return fail(l, "%s", missing);
    }
    return r;
}

static int dollar(struct lex *l, struct strbuf *out)
{
    next(l); /* $ */
    if (peek(l) != '{') {
        _cleanup_free_ char *name = process_name(l);
        if (!*name) {
            strbuf_addc(out, '$');
            return 0;
        }
        const char *v = env_get(l, name);
        if (!v && l->skip_unset)
            strbuf_addf(out, "$%s", name);
        else if (v)
            strbuf_adds(out, v);
        return 0;
    }
    next(l); /* { */
    uint32_t pk = peek(l);
    if (pk == EOF_RUNE)
        return fail(l, "syntax error: missing '}'");
    if (pk == '{' || pk == '}' || pk == ':')
        return fail(l, "syntax error: bad substitution");
    if (++l->depth > EXPAND_MAX_DEPTH)
        return fail(l, "substitutions nested more than %d deep", EXPAND_MAX_DEPTH);
    _cleanup_free_ char *name = process_name(l);
    uint32_t ch = next(l);
    struct strbuf chs = STRBUF_INIT, word = STRBUF_INIT;
    strbuf_init(&chs);
    strbuf_init(&word);
    add_rune(&chs, ch);
    bool null_is_unset = false;
    int r = 0;
    switch (ch) {
    case '}': {
        const char *v = env_get(l, name);
        if (!v && l->skip_unset)
            strbuf_addf(out, "${%s}", name);
        else if (v)
            strbuf_adds(out, v);
        break;
    }
    case ':':
        null_is_unset = true;
        ch = next(l);
        add_rune(&chs, ch);
        /* fallthrough */
    case '+': case '-': case '?': case '#': case '%': {
        bool raw = ch == '#' || ch == '%';
        if (null_is_unset && raw) {
            r = fail(l, "unsupported modifier (%s) in substitution", strbuf_str(&chs));
            break;
        }
        if ((r = modifier_word(l, '}', raw, &word, "syntax error: missing '}'")) < 0)
            break;
        const char *v = env_get(l, name);
        if (l->skip_unset && !v) {
            strbuf_addf(out, "${%s%s%s}", name, strbuf_str(&chs), strbuf_str(&word));
            break;
        }
        bool empty = !v || (null_is_unset && !*v);
        switch (ch) {
        case '-':
            strbuf_adds(out, empty ? strbuf_str(&word) : v);
            break;
        case '+':
            if (!empty)
                strbuf_add(out, strbuf_str(&word), word.len);
            break;
        case '?':
            if (!v)
                r = fail(l, "%s: %s", name, word.len ? strbuf_str(&word) : "is not allowed to be unset");
            else if (null_is_unset && !*v)
                r = fail(l, "%s: %s", name, word.len ? strbuf_str(&word) : "is not allowed to be empty");
            else
                strbuf_adds(out, v);
            break;
        case '%':
        case '#': {
            const char *pat = strbuf_str(&word);
            size_t plen = word.len;
            bool greedy = plen > 0 && (uint32_t)(unsigned char)pat[0] == ch;
            if (greedy) {
                pat++;
                plen--;
            }
            size_t n;
            _cleanup_free_ uint32_t *runes = to_runes(pat, plen, &n);
            if (!v)
                v = "";
            if (ch == '%')
                r = trim_suffix(l, runes, n, pat, v, strlen(v), greedy, out);
            else
                r = trim_prefix(l, runes, n, pat, v, strlen(v), greedy, out);
            break;
        }
        default:
            r = fail(l, "unsupported modifier (%s) in substitution", strbuf_str(&chs));
            break;
        }
        break;
    }
    case '/': {
        bool all = peek(l) == '/';
        if (all)
            next(l);
        struct strbuf repl = STRBUF_INIT;
        strbuf_init(&repl);
        if ((r = modifier_word(l, '/', true, &word, "syntax error: missing '/' in ${}")) < 0 ||
            (r = modifier_word(l, '}', true, &repl, "syntax error: missing '}'")) < 0) {
            strbuf_release(&repl);
            break;
        }
        const char *v = env_get(l, name);
        if (l->skip_unset && !v) {
            strbuf_addf(out, "${%s/%s/%s}", name, strbuf_str(&word), strbuf_str(&repl));
            strbuf_release(&repl);
            break;
        }
        if (!v)
            v = "";
        size_t vlen = strlen(v), n;
        _cleanup_free_ uint32_t *runes = to_runes(strbuf_str(&word), word.len, &n);
        struct goregex *re = NULL;
        if ((r = pattern_regex(l, runes, n, true, false, strbuf_str(&word), &re)) == 0) {
            if (all) {
                size_t rl;
                char *res = goregex_replace_all_string(re, v, vlen, strbuf_str(&repl), repl.len,
                                                       EXPAND_MAX_LEN, &rl);
                if (!res)
                    r = fail(l, "expansion result is longer than %u bytes", EXPAND_MAX_LEN);
                else
                    strbuf_add(out, res, rl);
                free(res);
            } else {
                size_t a, e;
                if (goregex_search(re, v, vlen, 0, &a, &e)) {
                    strbuf_add(out, v, a);
                    strbuf_add(out, strbuf_str(&repl), repl.len);
                    strbuf_add(out, v + e, vlen - e);
                } else {
                    strbuf_add(out, v, vlen);
                }
            }
        }
        goregex_free(re);
        strbuf_release(&repl);
        break;
    }
    default:
        r = fail(l, "unsupported modifier (%s) in substitution", strbuf_str(&chs));
        break;
    }
    strbuf_release(&chs);
    strbuf_release(&word);
    l->depth--;
    return r;
}

/* "<<" and the blanks after it stay in one word, so that "<< EOF" reads as
 * one heredoc marker when words are split (BuildKit's processPossibleHeredoc). */
static void possible_heredoc(struct lex *l, struct strbuf *out)
{
    next(l);
    strbuf_addc(out, '<');
    if (peek(l) != '<')
        return;
    strbuf_addc(out, (char)next(l));
    while (peek(l) == ' ' || peek(l) == '\t' || peek(l) == '\r')
        strbuf_addc(out, (char)next(l));
}

static int stop_on(struct lex *l, uint32_t stop, bool raw_escapes, struct strbuf *result,
                   struct words *words)
{
    if (l->depth > EXPAND_MAX_DEPTH)
        return fail(l, "substitutions nested more than %d deep", EXPAND_MAX_DEPTH);
    bool saved = l->raw_escapes;
    l->raw_escapes = raw_escapes;
    int r = 0;
    struct strbuf tmp = STRBUF_INIT;
    strbuf_init(&tmp);
    while (peek(l) != EOF_RUNE) {
        uint32_t ch = peek(l);
        if (stop != EOF_RUNE && ch == stop) {
            next(l);
            goto out;
        }
        if (ch == '$' || ch == '<' || (!l->skip_quotes && (ch == '\'' || ch == '"'))) {
            strbuf_reset(&tmp);
            if (ch == '$')
                r = dollar(l, &tmp);
            else if (ch == '<')
                possible_heredoc(l, &tmp);
            else if (ch == '\'')
                r = single_quote(l, &tmp);
            else
                r = double_quote(l, &tmp);
            if (r < 0)
                goto out;
            strbuf_add(result, tmp.buf, tmp.len);
            if (words) {
                if (ch == '$')
                    words_string(words, tmp.buf, tmp.len);
                else
                    words_raw_string(words, tmp.buf, tmp.len);
            }
        } else {
            ch = next(l);
            if (ch == l->escape) {
                if (l->raw_escapes) {
                    if (words)
                        words_raw_rune(words, ch);
                    add_rune(result, ch);
                }
                ch = next(l);
                if (ch == EOF_RUNE)
                    break;
                if (words)
                    words_raw_rune(words, ch);
            } else if (words) {
                words_rune(words, ch);
            }
            add_rune(result, ch);
        }
        if ((r = check_len(l, result)) < 0)
            goto out;
    }
    if (stop != EOF_RUNE) {
        struct strbuf s = STRBUF_INIT;
        strbuf_init(&s);
        add_rune(&s, stop);
        r = fail(l, "unexpected end of statement while looking for matching %s", strbuf_str(&s));
        strbuf_release(&s);
    }
out:
    strbuf_release(&tmp);
    l->raw_escapes = saved;
    return r;
}

/* Go's %q, for the "failed to process" message. */
static void go_quote(struct strbuf *sb, const char *s, size_t len)
{
    strbuf_addc(sb, '"');
    for (size_t i = 0, w; i < len; i += w) {
        uint32_t r = uni_decode(s + i, len - i, &w);
        if (r == UNI_ERROR && w == 1) {
            strbuf_addf(sb, "\\x%02x", (unsigned char)s[i]);
            continue;
        }
        switch (r) {
        case '"': strbuf_adds(sb, "\\\""); continue;
        case '\\': strbuf_adds(sb, "\\\\"); continue;
        case '\a': strbuf_adds(sb, "\\a"); continue;
        case '\b': strbuf_adds(sb, "\\b"); continue;
        case '\f': strbuf_adds(sb, "\\f"); continue;
        case '\n': strbuf_adds(sb, "\\n"); continue;
        case '\r': strbuf_adds(sb, "\\r"); continue;
        case '\t': strbuf_adds(sb, "\\t"); continue;
        case '\v': strbuf_adds(sb, "\\v"); continue;
        default: break;
        }
        bool printable = r == ' ';
        static const char *const cats[] = {"L", "M", "N", "P", "S"};
        for (size_t k = 0; k < 5 && !printable; k++)
            printable = uni_in_category(r, cats[k], 1);
        if (printable)
            strbuf_add(sb, s + i, w);
        else if (r < 0x80)
            strbuf_addf(sb, "\\x%02x", r);
        else if (r <= 0xFFFF)
            strbuf_addf(sb, "\\u%04x", r);
        else
            strbuf_addf(sb, "\\U%08x", r);
    }
    strbuf_addc(sb, '"');
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char **sorted_unique(char **v)
{
    size_t n = strv_len(v), k = 0;
    qsort(v, n, sizeof(*v), cmp_str);
    for (size_t i = 0; i < n; i++) {
        if (k > 0 && strcmp(v[k - 1], v[i]) == 0) {
            free(v[i]);
            continue;
        }
        v[k++] = v[i];
    }
    v[k] = NULL;
    return v;
}

static int run(const char *word, const struct expand_env *env, const struct expand_opts *opts,
               struct strbuf *result, struct words *words, struct expand_matches *ret_matches,
               struct kiln_error **err)
{
    struct lex l = {
        .s = word,
        .len = strlen(word),
        .env = env,
        .escape = opts && opts->escape ? (uint32_t)(unsigned char)opts->escape : '\\',
        .skip_unset = opts && opts->skip_unset,
        .raw_quotes = opts && opts->raw_quotes,
        .raw_escapes = opts && opts->raw_escapes,
        .skip_quotes = opts && opts->skip_quotes,
        .matched = strv_new(),
        .unmatched = strv_new(),
    };
    if (l.len > EXPAND_MAX_LEN) {
        strv_free(l.matched);
        strv_free(l.unmatched);
        return kiln_error_set(err, E2BIG, "word is longer than %u bytes", EXPAND_MAX_LEN);
    }
    if (l.len >= 3 && memcmp(word, "\xEF\xBB\xBF", 3) == 0) /* text/scanner skips a BOM */
        l.pos = 3;
    int r = stop_on(&l, EOF_RUNE, l.raw_escapes, result, words);
    if (r < 0) {
        struct strbuf msg = STRBUF_INIT;
        strbuf_init(&msg);
        strbuf_adds(&msg, "failed to process ");
        go_quote(&msg, word, l.len);
        strbuf_addf(&msg, ": %s", l.errmsg ? l.errmsg : "error");
        kiln_error_set(err, EINVAL, "%s", msg.buf);
        strbuf_release(&msg);
    } else if (ret_matches) {
        ret_matches->matched = sorted_unique(TAKE_PTR(l.matched));
        ret_matches->unmatched = sorted_unique(TAKE_PTR(l.unmatched));
    }
    strv_free(l.matched);
    strv_free(l.unmatched);
    free(l.errmsg);
    return r;
}

int expand_word(const char *word, const struct expand_env *env, const struct expand_opts *opts,
                char **ret, struct expand_matches *ret_matches, struct kiln_error **err)
{
    struct strbuf result = STRBUF_INIT;
    strbuf_init(&result);
    if (ret_matches)
        *ret_matches = (struct expand_matches){0};
    if (run(word, env, opts, &result, NULL, ret_matches, err) < 0) {
        strbuf_release(&result);
        return -1;
    }
    *ret = strbuf_detach(&result, NULL);
    return 0;
}

int expand_words(const char *word, const struct expand_env *env, const struct expand_opts *opts,
                 char ***ret, struct kiln_error **err)
{
    struct strbuf result = STRBUF_INIT;
    struct words w = {0};
    strbuf_init(&result);
    strbuf_init(&w.word);
    int r = run(word, env, opts, &result, &w, NULL, err);
    strbuf_release(&result);
    if (r == 0) {
        words_finish(&w);
        *ret = w.list ? TAKE_PTR(w.list) : strv_new();
    }
    strv_free(w.list);
    strbuf_release(&w.word);
    return r;
}

void expand_matches_free(struct expand_matches *m)
{
    if (!m)
        return;
    strv_free(m->matched);
    strv_free(m->unmatched);
    m->matched = m->unmatched = NULL;
}

enum expand_mode expand_instruction_mode(const char *instruction)
{
    static const char *const word[] = {"add", "arg", "copy", "env", "from", "label",
                                       "stopsignal", "user", "volume", "workdir"};
    if (strcasecmp(instruction, "expose") == 0)
        return EXPAND_SPLIT;
    for (size_t i = 0; i < sizeof(word) / sizeof(word[0]); i++)
        if (strcasecmp(instruction, word[i]) == 0)
            return EXPAND_WORD;
    return EXPAND_NONE;
}
