/* Heredocs: finding `<<WORD` in an instruction line and decoding the word.
 *
 * BuildKit finds them by running its shell lexer over the whole line with
 * quotes and escapes kept, then matching each word against
 * ^(\d*)<<(-?)\s*([^<]*)$.  The delimiter is lexed twice, with and without
 * quote removal: if the counts of quote characters differ, part of it was
 * quoted and the body is not expanded.  This file has that lexer, reduced to
 * what word splitting needs (the environment is always empty and unset
 * variables are kept as written). */
#include <stdlib.h>
#include <string.h>

#include "dockerfile/dockerfile.h"
#include "dockerfile/internal.h"
#include "dockerfile/unicode.h"
#include "lib/cleanup.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

#define SW_EOF (-1)

struct sw {
    const char *s;
    size_t n;
    size_t pos;
    bool raw_quotes;
    bool raw_escapes;
    const char *error;
    int depth;
};

/* The words being built (BuildKit's wordsStruct). */
struct sw_words {
    struct strbuf word;
    bool in_word;
    char **words;
};

static int32_t sw_peek(struct sw *sw)
{
    if (sw->pos >= sw->n)
        return SW_EOF;
    size_t w;
    return (int32_t)utf8_decode(sw->s + sw->pos, sw->n - sw->pos, &w);
}

static int32_t sw_next(struct sw *sw)
{
    if (sw->pos >= sw->n)
        return SW_EOF;
    size_t w;
    uint32_t r = utf8_decode(sw->s + sw->pos, sw->n - sw->pos, &w);
    sw->pos += w;
    return (int32_t)r;
}

static void words_add_raw_char(struct sw_words *w, int32_t ch)
{
    utf8_encode(&w->word, (uint32_t)ch);
    w->in_word = true;
}

static void words_flush(struct sw_words *w)
{
    strv_push(&w->words, strbuf_str(&w->word));
    strbuf_reset(&w->word);
    w->in_word = false;
}

static void words_add_char(struct sw_words *w, int32_t ch)
{
    if (rune_is_space((uint32_t)ch)) {
        if (w->in_word && w->word.len != 0)
            words_flush(w);
        return;
    }
    words_add_raw_char(w, ch);
}

static void words_add_string(struct sw_words *w, const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t width;
        uint32_t r = utf8_decode(s + i, n - i, &width);
        words_add_char(w, (int32_t)r);
        i += width;
    }
}

static void words_add_raw_string(struct sw_words *w, const char *s, size_t n)
{
    strbuf_add(&w->word, s, n);
    w->in_word = true;
}

static bool is_name_rune(int32_t ch)
{
    if (ch < 0)
        return false;
    if (ch < 0x80)
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
               ch == '_';
    return uni_is_letter((uint32_t)ch) || uni_is_digit((uint32_t)ch);
}

static bool is_digit_rune(int32_t ch)
{
    return ch >= 0 && uni_is_digit((uint32_t)ch);
}

static bool is_special_param(int32_t ch)
{
    return ch == '@' || ch == '*' || ch == '#' || ch == '?' || ch == '-' || ch == '$' ||
           ch == '!' || ch == '0';
}

static void sw_name(struct sw *sw, struct strbuf *name)
{
    while (sw_peek(sw) != SW_EOF) {
        int32_t ch = sw_peek(sw);
        if (name->len == 0 && is_digit_rune(ch)) {
            while (is_digit_rune(sw_peek(sw)))
                utf8_encode(name, (uint32_t)sw_next(sw));
            return;
        }
        if (name->len == 0 && is_special_param(ch)) {
            utf8_encode(name, (uint32_t)sw_next(sw));
            return;
        }
        if (!is_name_rune(ch))
            return;
        utf8_encode(name, (uint32_t)sw_next(sw));
    }
}

static int sw_stop_on(struct sw *sw, int32_t stop, struct strbuf *result, struct sw_words *words);

/* `$name`, `${name}`, `${name<op>word}`: with an empty environment and
 * unset variables kept, the text comes back as written. */
static int sw_dollar(struct sw *sw, struct strbuf *out)
{
    sw_next(sw);
    if (sw_peek(sw) != '{') {
        strbuf_addc(out, '$');
        sw_name(sw, out);
        return 0;
    }
    sw_next(sw);
    int32_t ch = sw_peek(sw);
    if (ch == SW_EOF) {
        sw->error = "syntax error: missing '}'";
        return -1;
    }
    if (ch == '{' || ch == '}' || ch == ':') {
        sw->error = "syntax error: bad substitution";
        return -1;
    }
    strbuf_adds(out, "${");
    sw_name(sw, out);
    ch = sw_next(sw);
    if (ch == '}') {
        strbuf_addc(out, '}');
        return 0;
    }
    if (ch == SW_EOF) {
        sw->error = "syntax error: missing '}'";
        return -1;
    }
    utf8_encode(out, (uint32_t)ch);
    if (ch == ':') {
        int32_t mod = sw_next(sw);
        if (mod == SW_EOF) {
            sw->error = "syntax error: missing '}'";
            return -1;
        }
        utf8_encode(out, (uint32_t)mod);
    }
    if (++sw->depth > 64) {
        sw->error = "substitutions nested too deeply";
        return -1;
    }
    _cleanup_strbuf_ struct strbuf word = STRBUF_INIT;
    int r = sw_stop_on(sw, '}', &word, NULL);
    sw->depth--;
    if (r < 0)
        return -1;
    strbuf_add(out, word.buf, word.len);
    strbuf_addc(out, '}');
    return 0;
}

static int sw_single_quote(struct sw *sw, struct strbuf *out)
{
    int32_t ch = sw_next(sw);
    if (sw->raw_quotes)
        utf8_encode(out, (uint32_t)ch);
    for (;;) {
        ch = sw_next(sw);
        if (ch == SW_EOF) {
            sw->error = "unexpected end of statement while looking for matching single-quote";
            return -1;
        }
        if (ch == '\'') {
            if (sw->raw_quotes)
                utf8_encode(out, (uint32_t)ch);
            return 0;
        }
        utf8_encode(out, (uint32_t)ch);
    }
}

static int sw_double_quote(struct sw *sw, struct strbuf *out)
{
    int32_t ch = sw_next(sw);
    if (sw->raw_quotes)
        utf8_encode(out, (uint32_t)ch);
    for (;;) {
        int32_t p = sw_peek(sw);
        if (p == SW_EOF) {
            sw->error = "unexpected end of statement while looking for matching double-quote";
            return -1;
        }
        if (p == '"') {
            ch = sw_next(sw);
            if (sw->raw_quotes)
                utf8_encode(out, (uint32_t)ch);
            return 0;
        }
        if (p == '$') {
            if (sw_dollar(sw, out) < 0)
                return -1;
            continue;
        }
        ch = sw_next(sw);
        if (ch == '\\') {
            if (sw->raw_escapes)
                utf8_encode(out, (uint32_t)ch);
            int32_t q = sw_peek(sw);
            if (q == SW_EOF)
                continue;
            if (q == '"' || q == '$' || q == '\\')
                ch = sw_next(sw);
        }
        utf8_encode(out, (uint32_t)ch);
    }
}

/* `<`: a redirection, or `<<` (with `-` and blanks before the delimiter,
 * which belong to the same word). */
static void sw_possible_heredoc(struct sw *sw, struct strbuf *out)
{
    sw_next(sw);
    strbuf_addc(out, '<');
    if (sw_peek(sw) != '<')
        return;
    sw_next(sw);
    strbuf_addc(out, '<');
    if (sw_peek(sw) == '-') {
        sw_next(sw);
        strbuf_addc(out, '-');
    }
    while (sw_peek(sw) == ' ' || sw_peek(sw) == '\t')
        utf8_encode(out, (uint32_t)sw_next(sw));
}

static int sw_stop_on(struct sw *sw, int32_t stop, struct strbuf *result, struct sw_words *words)
{
    _cleanup_strbuf_ struct strbuf tmp = STRBUF_INIT;
    while (sw_peek(sw) != SW_EOF) {
        int32_t ch = sw_peek(sw);
        if (stop != SW_EOF && ch == stop) {
            sw_next(sw);
            return 0;
        }
        if (ch == '$' || ch == '\'' || ch == '"' || ch == '<') {
            strbuf_reset(&tmp);
            int r = 0;
            if (ch == '$')
                r = sw_dollar(sw, &tmp);
            else if (ch == '\'')
                r = sw_single_quote(sw, &tmp);
            else if (ch == '"')
                r = sw_double_quote(sw, &tmp);
            else
                sw_possible_heredoc(sw, &tmp);
            if (r < 0)
                return -1;
            strbuf_add(result, tmp.buf, tmp.len);
            if (words) {
                if (ch == '$')
                    words_add_string(words, tmp.buf, tmp.len);
                else
                    words_add_raw_string(words, tmp.buf, tmp.len);
            }
            continue;
        }
        ch = sw_next(sw);
        if (ch == '\\') {
            if (sw->raw_escapes) {
                if (words)
                    words_add_raw_char(words, ch);
                utf8_encode(result, (uint32_t)ch);
            }
            ch = sw_next(sw);
            if (ch == SW_EOF)
                break;
            if (words)
                words_add_raw_char(words, ch);
        } else if (words) {
            words_add_char(words, ch);
        }
        utf8_encode(result, (uint32_t)ch);
    }
    if (stop != SW_EOF) {
        sw->error = stop == '}' ? "syntax error: missing '}'"
                                : "unexpected end of statement while looking for a match";
        return -1;
    }
    return 0;
}

int shellwords_split(const char *s, size_t n, bool raw_quotes, bool raw_escapes, char ***ret,
                     const char **ret_msg)
{
    struct sw sw = {.s = s, .n = n, .raw_quotes = raw_quotes, .raw_escapes = raw_escapes};
    struct sw_words words = {.word = STRBUF_INIT, .words = strv_new()};
    _cleanup_strbuf_ struct strbuf result = STRBUF_INIT;
    int r = sw_stop_on(&sw, SW_EOF, &result, &words);
    if (r < 0) {
        strbuf_release(&words.word);
        strv_free(words.words);
        if (ret_msg)
            *ret_msg = sw.error;
        return -1;
    }
    if (words.word.len > 0)
        words_flush(&words);
    strbuf_release(&words.word);
    *ret = words.words;
    return 0;
}

/* ---- heredoc words ------------------------------------------------------- */

static size_t count_quotes(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (*s == '\'' || *s == '"')
            n++;
    return n;
}

/* Matches ^(\d*)<<(-?)\s*([^<]*)$; returns the offset of the third group or
 * -1. */
static long heredoc_match(const char *w, size_t n, uint32_t *ret_fd, bool *ret_chomp)
{
    size_t i = 0;
    uint64_t fd = 0;
    bool overflow = false;
    while (i < n && w[i] >= '0' && w[i] <= '9') {
        unsigned d = (unsigned)(w[i] - '0');
        if (fd > (UINT64_MAX - d) / 10)
            overflow = true;
        else
            fd = fd * 10 + d;
        i++;
    }
    if (i + 2 > n || w[i] != '<' || w[i + 1] != '<')
        return -1;
    i += 2;
    bool chomp = false;
    if (i < n && w[i] == '-') {
        chomp = true;
        i++;
    }
    while (i < n && (w[i] == ' ' || w[i] == '\t' || w[i] == '\n' || w[i] == '\f' || w[i] == '\r'))
        i++;
    if (memchr(w + i, '<', n - i))
        return -1;
    /* Go's strconv.ParseUint error (overflow) leaves fd at 0. */
    *ret_fd = (overflow || fd > UINT32_MAX) ? 0 : (uint32_t)fd;
    *ret_chomp = chomp;
    return (long)i;
}

int dockerfile_parse_heredoc(const char *word, char **ret_name, uint32_t *ret_fd,
                             bool *ret_expand, bool *ret_chomp, struct kiln_error **err)
{
    size_t n = strlen(word);
    uint32_t fd;
    bool chomp;
    long rest = heredoc_match(word, n, &fd, &chomp);
    if (rest < 0 || (size_t)rest == n)
        return 0;

    const char *msg = NULL;
    _cleanup_strv_ char **words = NULL;
    if (shellwords_split(word + rest, n - (size_t)rest, false, false, &words, &msg) < 0)
        return kiln_error_set(err, 0, "heredoc '%s': %s", word, msg);
    if (strv_len(words) != 1)
        return 0;
    _cleanup_strv_ char **raw = NULL;
    if (shellwords_split(word + rest, n - (size_t)rest, true, false, &raw, &msg) < 0)
        return kiln_error_set(err, 0, "heredoc '%s': %s", word, msg);
    if (strv_len(raw) != 1)
        return kiln_error_set(err, 0, "internal lexing of heredoc produced inconsistent results: %s",
                              word + rest);

    *ret_name = xstrdup(words[0]);
    *ret_fd = fd;
    *ret_chomp = chomp;
    *ret_expand = count_quotes(words[0]) == count_quotes(raw[0]);
    return 1;
}

int dockerfile_heredocs_from_line(const char *line, char ***ret_names, struct kiln_error **err)
{
    _cleanup_strv_ char **names = strv_new();
    _cleanup_strv_ char **words = NULL;
    if (shellwords_split(line, strlen(line), true, true, &words, NULL) == 0) {
        for (size_t i = 0; words[i]; i++) {
            char *name = NULL;
            uint32_t fd;
            bool expand, chomp;
            int r = dockerfile_parse_heredoc(words[i], &name, &fd, &expand, &chomp, err);
            if (r < 0)
                return -1;
            if (r > 0)
                strv_push_take(&names, name);
        }
    }
    *ret_names = TAKE_PTR(names);
    return 0;
}

char *dockerfile_chomp_heredoc(const char *content, size_t len, size_t *ret_len)
{
    struct strbuf out = STRBUF_INIT;
    strbuf_grow(&out, len);
    bool line_start = true;
    for (size_t i = 0; i < len; i++) {
        char c = content[i];
        if (line_start && c == '\t')
            continue;
        line_start = c == '\n';
        strbuf_addc(&out, c);
    }
    return strbuf_detach(&out, ret_len);
}
