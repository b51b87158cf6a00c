/* Values and a Go text/template subset (see template.h). */
#include "cmd/template.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/xalloc.h"

/* ---- values ------------------------------------------------------------ */

static struct tval *tv_new(enum tv_kind kind)
{
    struct tval *v = xcalloc(1, sizeof(*v));
    v->kind = kind;
    v->refs = 1;
    return v;
}

struct tval *tv_null(void)
{
    return tv_new(TV_NULL);
}

struct tval *tv_bool(bool b)
{
    struct tval *v = tv_new(TV_BOOL);
    v->b = b;
    return v;
}

struct tval *tv_int(int64_t i)
{
    struct tval *v = tv_new(TV_INT);
    v->i = i;
    return v;
}

struct tval *tv_str(const char *s)
{
    return tv_str_take(xstrdup(s ? s : ""));
}

struct tval *tv_str_take(char *s)
{
    struct tval *v = tv_new(TV_STR);
    v->s = s ? s : xstrdup("");
    return v;
}

struct tval *tv_list(bool nil)
{
    struct tval *v = tv_new(TV_LIST);
    v->nil = nil;
    return v;
}

struct tval *tv_map(bool nil)
{
    struct tval *v = tv_new(TV_MAP);
    v->nil = nil;
    return v;
}

struct tval *tv_struct(const char *type_name)
{
    struct tval *v = tv_new(TV_STRUCT);
    v->type_name = type_name;
    return v;
}

struct tval *tv_strv(char *const *sv)
{
    struct tval *l = tv_list(sv == NULL);
    for (size_t i = 0; sv && sv[i]; i++)
        tv_push(l, tv_str(sv[i]));
    return l;
}

struct tval *tv_omitempty(struct tval *v)
{
    v->omitempty = true;
    return v;
}

struct tval *tv_push(struct tval *l, struct tval *v)
{
    XGROW(l->items, l->cap, l->n + 1);
    l->items[l->n++] = v;
    l->nil = false;
    return l;
}

static size_t map_find(const struct tval *m, const char *key, bool *found)
{
    return strv_sorted_find(m->keys, m->n, key, found);
}

struct tval *tv_set(struct tval *o, const char *key, struct tval *v)
{
    if (o->kind == TV_MAP) {
        bool found;
        size_t i = map_find(o, key, &found);
        if (found) {
            tv_unref(o->items[i]);
            o->items[i] = v;
            return o;
        }
        size_t kcap = o->cap;
        XGROW(o->items, o->cap, o->n + 1);
        XGROW(o->keys, kcap, o->n + 1);
        memmove(&o->items[i + 1], &o->items[i], (o->n - i) * sizeof(*o->items));
        memmove(&o->keys[i + 1], &o->keys[i], (o->n - i) * sizeof(*o->keys));
        o->items[i] = v;
        o->keys[i] = xstrdup(key);
        o->n++;
        o->nil = false;
        return o;
    }
    size_t kcap = o->cap;
    XGROW(o->items, o->cap, o->n + 1);
    XGROW(o->keys, kcap, o->n + 1);
    o->items[o->n] = v;
    o->keys[o->n] = xstrdup(key);
    o->n++;
    return o;
}

struct tval *tv_get(const struct tval *o, const char *key)
{
    if (o->kind == TV_MAP) {
        bool found;
        size_t i = map_find(o, key, &found);
        return found ? o->items[i] : NULL;
    }
    if (o->kind == TV_STRUCT)
        for (size_t i = 0; i < o->n; i++)
            if (strcmp(o->keys[i], key) == 0)
                return o->items[i];
    return NULL;
}

struct tval *tv_ref(struct tval *v)
{
    if (v)
        v->refs++;
    return v;
}

void tv_unref(struct tval *v)
{
    if (!v || --v->refs > 0)
        return;
    for (size_t i = 0; i < v->n; i++) {
        tv_unref(v->items[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->s);
    free(v);
}

static const char *kind_name(const struct tval *v)
{
    static const char *const names[] = {"nil", "bool", "int", "string", "list", "map", "struct"};
    if (v->kind == TV_STRUCT && v->type_name)
        return v->type_name;
    return names[v->kind];
}

void tv_print(struct strbuf *sb, const struct tval *v)
{
    switch (v->kind) {
    case TV_NULL:
        strbuf_adds(sb, "<nil>");
        break;
    case TV_BOOL:
        strbuf_adds(sb, v->b ? "true" : "false");
        break;
    case TV_INT:
        strbuf_addf(sb, "%" PRId64, v->i);
        break;
    case TV_STR:
        strbuf_adds(sb, v->s);
        break;
    case TV_LIST:
    case TV_STRUCT:
        strbuf_addc(sb, v->kind == TV_LIST ? '[' : '{');
        for (size_t i = 0; i < v->n; i++) {
            if (i)
                strbuf_addc(sb, ' ');
            tv_print(sb, v->items[i]);
        }
        strbuf_addc(sb, v->kind == TV_LIST ? ']' : '}');
        break;
    case TV_MAP:
        strbuf_adds(sb, "map[");
        for (size_t i = 0; i < v->n; i++) {
            if (i)
                strbuf_addc(sb, ' ');
            strbuf_adds(sb, v->keys[i]);
            strbuf_addc(sb, ':');
            tv_print(sb, v->items[i]);
        }
        strbuf_addc(sb, ']');
        break;
    }
}

/* Length of the valid UTF-8 sequence at s (0 if invalid). */
static size_t utf8_seq(const unsigned char *s, size_t left, uint32_t *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t n;
    uint32_t c, min;
    if ((s[0] & 0xe0) == 0xc0) {
        n = 2, c = s[0] & 0x1f, min = 0x80;
    } else if ((s[0] & 0xf0) == 0xe0) {
        n = 3, c = s[0] & 0x0f, min = 0x800;
    } else if ((s[0] & 0xf8) == 0xf0) {
        n = 4, c = s[0] & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (left < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return n;
}

static void json_escape(struct strbuf *sb, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t len = strlen(str);
    strbuf_addc(sb, '"');
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\') {
            strbuf_addc(sb, '\\');
            strbuf_addc(sb, (char)c);
            i++;
        } else if (c == '\n') {
            strbuf_adds(sb, "\\n"), i++;
        } else if (c == '\r') {
            strbuf_adds(sb, "\\r"), i++;
        } else if (c == '\t') {
            strbuf_adds(sb, "\\t"), i++;
        } else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
            strbuf_addf(sb, "\\u%04x", c), i++;
        } else if (c < 0x80) {
            strbuf_addc(sb, (char)c), i++;
        } else {
            uint32_t cp = 0;
            size_t n = utf8_seq(s + i, len - i, &cp);
            if (n == 0) {
                strbuf_adds(sb, "\\ufffd");
                i++;
            } else if (cp == 0x2028 || cp == 0x2029) {
                strbuf_addf(sb, "\\u%04x", (unsigned)cp);
                i += n;
            } else {
                strbuf_add(sb, s + i, n);
                i += n;
            }
        }
    }
    strbuf_addc(sb, '"');
}

static void json_newline(struct strbuf *sb, bool indent, int depth)
{
    if (!indent)
        return;
    strbuf_addc(sb, '\n');
    for (int i = 0; i < depth; i++)
        strbuf_adds(sb, "    ");
}

static void tv_json_at(struct strbuf *sb, const struct tval *v, bool indent, int depth)
{
    switch (v->kind) {
    case TV_NULL:
        strbuf_adds(sb, "null");
        return;
    case TV_BOOL:
        strbuf_adds(sb, v->b ? "true" : "false");
        return;
    case TV_INT:
        strbuf_addf(sb, "%" PRId64, v->i);
        return;
    case TV_STR:
        json_escape(sb, v->s);
        return;
    case TV_LIST:
    case TV_MAP:
    case TV_STRUCT:
        break;
    }
    if (v->nil) {
        strbuf_adds(sb, "null");
        return;
    }
    bool list = v->kind == TV_LIST;
    strbuf_addc(sb, list ? '[' : '{');
    size_t written = 0;
    for (size_t i = 0; i < v->n; i++) {
        if (v->kind == TV_STRUCT && v->items[i]->omitempty && !tv_truth(v->items[i]))
            continue;
        if (written++)
            strbuf_addc(sb, ',');
        json_newline(sb, indent, depth + 1);
        if (!list) {
            json_escape(sb, v->keys[i]);
            strbuf_adds(sb, indent ? ": " : ":");
        }
        tv_json_at(sb, v->items[i], indent, depth + 1);
    }
    if (written)
        json_newline(sb, indent, depth);
    strbuf_addc(sb, list ? ']' : '}');
}

void tv_json(struct strbuf *sb, const struct tval *v, bool indent)
{
    tv_json_at(sb, v, indent, 0);
}

bool tv_truth(const struct tval *v)
{
    switch (v->kind) {
    case TV_NULL:
        return false;
    case TV_BOOL:
        return v->b;
    case TV_INT:
        return v->i != 0;
    case TV_STR:
        return v->s[0] != '\0';
    case TV_LIST:
    case TV_MAP:
        return v->n > 0;
    case TV_STRUCT:
        return true;
    }
    return false;
}

/* ---- lexer --------------------------------------------------------------- */

enum tok_kind {
    T_TEXT,
    T_LDELIM,
    T_RDELIM,
    T_FIELD, /* .Name */
    T_DOT,
    T_VAR, /* $ or $name */
    T_IDENT,
    T_STRING,
    T_INT,
    T_BOOL,
    T_NIL,
    T_PIPE,
    T_LPAREN,
    T_RPAREN,
    T_DECLARE,
    T_ASSIGN,
    T_COMMA,
    T_IF,
    T_ELSE,
    T_END,
    T_RANGE,
    T_WITH,
    T_EOF,
};

struct token {
    enum tok_kind kind;
    char *s;   /* text, name, or string value */
    size_t len; /* T_TEXT/T_STRING length */
    int64_t i;
    bool space_before;
    size_t pos; /* byte offset, for messages */
};

struct lexer {
    const char *src;
    size_t len, pos;
    struct token *toks;
    size_t n, cap;
    struct kiln_error **err;
};

static struct token *lex_push(struct lexer *lx, enum tok_kind kind, size_t pos)
{
    XGROW(lx->toks, lx->cap, lx->n + 1);
    struct token *t = &lx->toks[lx->n++];
    memset(t, 0, sizeof(*t));
    t->kind = kind;
    t->pos = pos;
    return t;
}

static int lex_fail(struct lexer *lx, size_t pos, const char *msg)
{
    return kiln_error_set(lx->err, 0, "template: at offset %zu: %s", pos, msg);
}

static bool is_ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int lex_string(struct lexer *lx, size_t start, struct token *t)
{
    struct strbuf sb = STRBUF_INIT;
    size_t p = start + 1;
    for (;;) {
        if (p >= lx->len || lx->src[p] == '\n') {
            strbuf_release(&sb);
            return lex_fail(lx, start, "unterminated quoted string");
        }
        char c = lx->src[p++];
        if (c == '"')
            break;
        if (c != '\\') {
            strbuf_addc(&sb, c);
            continue;
        }
        if (p >= lx->len) {
            strbuf_release(&sb);
            return lex_fail(lx, start, "unterminated quoted string");
        }
        char e = lx->src[p++];
        switch (e) {
        case 'n':
            strbuf_addc(&sb, '\n');
            break;
        case 't':
            strbuf_addc(&sb, '\t');
            break;
        case 'r':
            strbuf_addc(&sb, '\r');
            break;
        case '\\':
        case '"':
        case '\'':
            strbuf_addc(&sb, e);
            break;
        case 'x': {
            if (p + 2 > lx->len || !isxdigit((unsigned char)lx->src[p]) ||
                !isxdigit((unsigned char)lx->src[p + 1])) {
                strbuf_release(&sb);
                return lex_fail(lx, p, "bad \\x escape in string");
            }
            char hex[3] = {lx->src[p], lx->src[p + 1], 0};
            char byte = (char)strtol(hex, NULL, 16);
            if (byte == 0) {
                strbuf_release(&sb);
                return lex_fail(lx, p, "NUL in string");
            }
            strbuf_addc(&sb, byte);
            p += 2;
            break;
        }
        default:
            strbuf_release(&sb);
            return lex_fail(lx, p - 1, "unsupported escape in string");
        }
    }
    t->len = sb.len;
    t->s = strbuf_detach(&sb, NULL);
    lx->pos = p;
    return 0;
}

/* Lexes one action, from just after "{{" (and its trim marker). */
static int lex_action(struct lexer *lx, bool *ret_trim_right)
{
    bool space = true;
    for (;;) {
        while (lx->pos < lx->len && is_space(lx->src[lx->pos])) {
            lx->pos++;
            space = true;
        }
        size_t p = lx->pos;
        if (p >= lx->len)
            return lex_fail(lx, p, "unclosed action");
        const char *s = lx->src + p;
        size_t left = lx->len - p;
        if (space && left >= 3 && s[0] == '-' && s[1] == '}' && s[2] == '}') {
            lex_push(lx, T_RDELIM, p);
            lx->pos = p + 3;
            *ret_trim_right = true;
            return 0;
        }
        if (left >= 2 && s[0] == '}' && s[1] == '}') {
            lex_push(lx, T_RDELIM, p);
            lx->pos = p + 2;
            *ret_trim_right = false;
            return 0;
        }
        struct token *t = NULL;
        char c = s[0];
        if (c == '|') {
            t = lex_push(lx, T_PIPE, p);
            lx->pos++;
        } else if (c == '(') {
            t = lex_push(lx, T_LPAREN, p);
            lx->pos++;
        } else if (c == ')') {
            t = lex_push(lx, T_RPAREN, p);
            lx->pos++;
        } else if (c == ',') {
            t = lex_push(lx, T_COMMA, p);
            lx->pos++;
        } else if (c == ':' && left >= 2 && s[1] == '=') {
            t = lex_push(lx, T_DECLARE, p);
            lx->pos += 2;
        } else if (c == '=') {
            t = lex_push(lx, T_ASSIGN, p);
            lx->pos++;
        } else if (c == '"') {
            t = lex_push(lx, T_STRING, p);
            if (lex_string(lx, p, t) < 0)
                return -1;
        } else if (c == '`') {
            const char *end = memchr(s + 1, '`', left - 1);
            if (!end)
                return lex_fail(lx, p, "unterminated raw quoted string");
            t = lex_push(lx, T_STRING, p);
            t->len = (size_t)(end - s - 1);
            t->s = xstrndup(s + 1, t->len);
            if (strlen(t->s) != t->len)
                return lex_fail(lx, p, "NUL in string");
            lx->pos = p + 2 + t->len;
        } else if (c == '.' && left >= 2 && (isalpha((unsigned char)s[1]) || s[1] == '_')) {
            size_t n = 1;
            while (n < left && is_ident_char(s[n]))
                n++;
            t = lex_push(lx, T_FIELD, p);
            t->s = xstrndup(s + 1, n - 1);
            lx->pos = p + n;
        } else if (c == '.') {
            if (left >= 2 && isdigit((unsigned char)s[1]))
                return lex_fail(lx, p, "floating-point numbers are not supported");
            t = lex_push(lx, T_DOT, p);
            lx->pos++;
        } else if (c == '$') {
            size_t n = 1;
            while (n < left && is_ident_char(s[n]))
                n++;
            t = lex_push(lx, T_VAR, p);
            t->s = xstrndup(s, n);
            lx->pos = p + n;
        } else if (isdigit((unsigned char)c) ||
                   ((c == '-' || c == '+') && left >= 2 && isdigit((unsigned char)s[1]))) {
            size_t n = 1;
            while (n < left && (isalnum((unsigned char)s[n]) || s[n] == '.' || s[n] == '_'))
                n++;
            char *num = xstrndup(s, n);
            char *end = NULL;
            errno = 0;
            long long v = strtoll(num, &end, 10);
            bool ok = errno == 0 && end && *end == '\0';
            free(num);
            if (!ok)
                return lex_fail(lx, p, "bad number (only decimal integers are supported)");
            t = lex_push(lx, T_INT, p);
            t->i = v;
            lx->pos = p + n;
        } else if (isalpha((unsigned char)c) || c == '_') {
            size_t n = 1;
            while (n < left && is_ident_char(s[n]))
                n++;
            char *word = xstrndup(s, n);
            static const struct {
                const char *w;
                enum tok_kind k;
            } kw[] = {{"if", T_IF},       {"else", T_ELSE}, {"end", T_END},  {"range", T_RANGE},
                      {"with", T_WITH},   {"true", T_BOOL}, {"false", T_BOOL}, {"nil", T_NIL}};
            enum tok_kind k = T_IDENT;
            for (size_t i = 0; i < sizeof(kw) / sizeof(kw[0]); i++)
                if (strcmp(word, kw[i].w) == 0)
                    k = kw[i].k;
            static const char *const unsupported[] = {"define", "template", "block", "break",
                                                      "continue"};
            for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++) {
                if (strcmp(word, unsupported[i]) == 0) {
                    free(word);
                    return lex_fail(lx, p, "this template action is not supported");
                }
            }
            t = lex_push(lx, k, p);
            if (k == T_BOOL)
                t->i = strcmp(word, "true") == 0;
            t->s = word;
            lx->pos = p + n;
        } else {
            return lex_fail(lx, p, "unexpected character in action");
        }
        t->space_before = space;
        space = false;
    }
}

static int lex_all(struct lexer *lx)
{
    bool trim_next_left = false;
    while (lx->pos < lx->len) {
        const char *s = lx->src + lx->pos;
        size_t left = lx->len - lx->pos;
        const char *open = memmem(s, left, "{{", 2);
        size_t textlen = open ? (size_t)(open - s) : left;
        size_t start = 0;
        /* "{{- " trims the white space before it */
        bool trim_right_of_text =
            open && textlen + 4 <= left && open[2] == '-' && is_space(open[3]);
        if (trim_next_left)
            while (start < textlen && is_space(s[start]))
                start++;
        size_t end = textlen;
        if (trim_right_of_text)
            while (end > start && is_space(s[end - 1]))
                end--;
        if (end > start) {
            struct token *t = lex_push(lx, T_TEXT, lx->pos + start);
            t->s = xstrndup(s + start, end - start);
            t->len = end - start;
            if (strlen(t->s) != t->len)
                return lex_fail(lx, lx->pos, "NUL in template");
        }
        if (!open)
            break;
        lx->pos += textlen;
        lex_push(lx, T_LDELIM, lx->pos);
        lx->pos += 2;
        if (trim_right_of_text)
            lx->pos += 2; /* "- " */
        /* a comment fills the whole action */
        size_t p = lx->pos;
        if (p + 1 < lx->len && lx->src[p] == '/' && lx->src[p + 1] == '*') {
            const char *close = memmem(lx->src + p + 2, lx->len - p - 2, "*/", 2);
            if (!close)
                return lex_fail(lx, p, "unclosed comment");
            size_t q = (size_t)(close - lx->src) + 2;
            bool trim = false;
            if (q + 4 <= lx->len && is_space(lx->src[q]) && lx->src[q + 1] == '-' &&
                lx->src[q + 2] == '}' && lx->src[q + 3] == '}') {
                trim = true;
                q += 4;
            } else if (q + 2 <= lx->len && lx->src[q] == '}' && lx->src[q + 1] == '}') {
                q += 2;
            } else {
                return lex_fail(lx, p, "comment ends before closing delimiter");
            }
            lx->n--; /* drop the LDELIM: a comment produces nothing */
            lx->pos = q;
            trim_next_left = trim;
            continue;
        }
        bool trim_right = false;
        if (lex_action(lx, &trim_right) < 0)
            return -1;
        trim_next_left = trim_right;
    }
    lex_push(lx, T_EOF, lx->len);
    return 0;
}

/* ---- parser ------------------------------------------------------------ */

struct t_pipe;

enum arg_kind { A_DOT, A_FIELD, A_VAR, A_IDENT, A_STRING, A_INT, A_BOOL, A_NIL, A_GROUP };

struct t_arg {
    enum arg_kind kind;
    char *name;   /* variable, function, or string value */
    int64_t i;
    char **fields; /* field chain applied to the base (A_FIELD: to dot) */
    struct t_pipe *group;
};

struct t_cmd {
    struct t_arg *args;
    size_t n, cap;
};

struct t_pipe {
    char *decl[2];
    size_t n_decl;
    bool assign;
    struct t_cmd *cmds;
    size_t n, cap;
    size_t pos;
};

enum node_kind { N_TEXT, N_ACTION, N_IF, N_RANGE, N_WITH };

struct t_list;

struct t_node {
    enum node_kind kind;
    char *text;
    size_t len;
    struct t_pipe *pipe;
    struct t_list *body;
    struct t_list *else_body;
};

struct t_list {
    struct t_node **nodes;
    size_t n, cap;
};

struct template {
    struct t_list *root;
};

struct parser {
    struct token *toks;
    size_t n, i;
    int depth;
    struct kiln_error **err;
};

static void pipe_free(struct t_pipe *p);
static void list_free(struct t_list *l);

static void arg_free(struct t_arg *a)
{
    free(a->name);
    strv_free(a->fields);
    pipe_free(a->group);
}

static void pipe_free(struct t_pipe *p)
{
    if (!p)
        return;
    free(p->decl[0]);
    free(p->decl[1]);
    for (size_t i = 0; i < p->n; i++) {
        for (size_t k = 0; k < p->cmds[i].n; k++)
            arg_free(&p->cmds[i].args[k]);
        free(p->cmds[i].args);
    }
    free(p->cmds);
    free(p);
}

static void node_free(struct t_node *nd)
{
    if (!nd)
        return;
    free(nd->text);
    pipe_free(nd->pipe);
    list_free(nd->body);
    list_free(nd->else_body);
    free(nd);
}

static void list_free(struct t_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        node_free(l->nodes[i]);
    free(l->nodes);
    free(l);
}

static void list_add(struct t_list *l, struct t_node *nd)
{
    XGROW(l->nodes, l->cap, l->n + 1);
    l->nodes[l->n++] = nd;
}

static struct token *peek(struct parser *p)
{
    return &p->toks[p->i];
}

static int parse_fail(struct parser *p, const struct token *t, const char *msg)
{
    return kiln_error_set(p->err, 0, "template: at offset %zu: %s", t->pos, msg);
}

static int parse_pipeline(struct parser *p, enum tok_kind end, struct t_pipe **ret);

/* Field tokens that directly follow (no space) extend a chain. */
static void parse_chain(struct parser *p, char ***fields)
{
    while (peek(p)->kind == T_FIELD && !peek(p)->space_before) {
        if (!*fields)
            *fields = strv_new();
        strv_push(fields, peek(p)->s);
        p->i++;
    }
}

static int parse_operand(struct parser *p, struct t_arg *a)
{
    memset(a, 0, sizeof(*a));
    struct token *t = peek(p);
    switch (t->kind) {
    case T_DOT:
        a->kind = A_DOT;
        p->i++;
        if (peek(p)->kind == T_FIELD && !peek(p)->space_before)
            return parse_fail(p, peek(p), "unexpected field after '.'");
        return 0;
    case T_FIELD:
        a->kind = A_FIELD;
        a->fields = strv_new();
        strv_push(&a->fields, t->s);
        p->i++;
        parse_chain(p, &a->fields);
        return 0;
    case T_VAR:
        a->kind = A_VAR;
        a->name = xstrdup(t->s);
        p->i++;
        parse_chain(p, &a->fields);
        return 0;
    case T_IDENT:
        a->kind = A_IDENT;
        a->name = xstrdup(t->s);
        p->i++;
        return 0;
    case T_STRING:
        a->kind = A_STRING;
        a->name = xstrdup(t->s);
        p->i++;
        return 0;
    case T_INT:
        a->kind = A_INT;
        a->i = t->i;
        p->i++;
        return 0;
    case T_BOOL:
        a->kind = A_BOOL;
        a->i = t->i;
        p->i++;
        return 0;
    case T_NIL:
        a->kind = A_NIL;
        p->i++;
        return 0;
    case T_LPAREN:
        if (++p->depth > TEMPLATE_MAX_DEPTH)
            return parse_fail(p, t, "nested too deeply");
        p->i++;
        a->kind = A_GROUP;
        if (parse_pipeline(p, T_RPAREN, &a->group) < 0)
            return -1;
        p->depth--;
        p->i++; /* ')' */
        parse_chain(p, &a->fields);
        return 0;
    default:
        return parse_fail(p, t, "unexpected token in command");
    }
}

/* A pipeline up to (not including) the `end` token. */
static int parse_pipeline(struct parser *p, enum tok_kind end, struct t_pipe **ret)
{
    struct t_pipe *pp = xcalloc(1, sizeof(*pp));
    pp->pos = peek(p)->pos;
    /* declarations: $x := / $x, $y := / $x = */
    size_t save = p->i;
    if (peek(p)->kind == T_VAR) {
        struct token *v1 = peek(p);
        p->i++;
        if (peek(p)->kind == T_COMMA) {
            p->i++;
            struct token *v2 = peek(p);
            if (v2->kind == T_VAR && p->toks[p->i + 1].kind == T_DECLARE) {
                pp->decl[0] = xstrdup(v1->s);
                pp->decl[1] = xstrdup(v2->s);
                pp->n_decl = 2;
                p->i += 2;
            } else {
                pipe_free(pp);
                return parse_fail(p, v2, "bad variable declaration");
            }
        } else if (peek(p)->kind == T_DECLARE || peek(p)->kind == T_ASSIGN) {
            pp->assign = peek(p)->kind == T_ASSIGN;
            pp->decl[0] = xstrdup(v1->s);
            pp->n_decl = 1;
            p->i++;
        } else {
            p->i = save;
        }
    }
    for (;;) {
        struct t_cmd cmd = {0};
        while (peek(p)->kind != end && peek(p)->kind != T_PIPE) {
            if (peek(p)->kind == T_RDELIM || peek(p)->kind == T_EOF || peek(p)->kind == T_RPAREN) {
                for (size_t k = 0; k < cmd.n; k++)
                    arg_free(&cmd.args[k]);
                free(cmd.args);
                pipe_free(pp);
                return parse_fail(p, peek(p), end == T_RPAREN ? "unclosed '('"
                                                               : "unexpected end of action");
            }
            XGROW(cmd.args, cmd.cap, cmd.n + 1);
            if (parse_operand(p, &cmd.args[cmd.n]) < 0) {
                arg_free(&cmd.args[cmd.n]);
                for (size_t k = 0; k < cmd.n; k++)
                    arg_free(&cmd.args[k]);
                free(cmd.args);
                pipe_free(pp);
                return -1;
            }
            cmd.n++;
        }
        if (cmd.n == 0) {
            free(cmd.args);
            pipe_free(pp);
            return parse_fail(p, peek(p), "missing value for command");
        }
        XGROW(pp->cmds, pp->cap, pp->n + 1);
        pp->cmds[pp->n++] = cmd;
        if (peek(p)->kind == T_PIPE) {
            p->i++;
            continue;
        }
        break;
    }
    *ret = pp;
    return 0;
}

static int expect_rdelim(struct parser *p)
{
    if (peek(p)->kind != T_RDELIM)
        return parse_fail(p, peek(p), "expected '}}'");
    p->i++;
    return 0;
}

/* Parses nodes until {{end}} or {{else}} (left for the caller) or EOF. */
static int parse_list(struct parser *p, struct t_list **ret);

static int parse_control(struct parser *p, enum node_kind kind, struct t_node **ret)
{
    if (++p->depth > TEMPLATE_MAX_DEPTH)
        return parse_fail(p, peek(p), "nested too deeply");
    struct t_node *nd = xcalloc(1, sizeof(*nd));
    nd->kind = kind;
    if (peek(p)->kind == T_RDELIM) {
        node_free(nd);
        return parse_fail(p, peek(p), "missing value for control action");
    }
    if (parse_pipeline(p, T_RDELIM, &nd->pipe) < 0 || expect_rdelim(p) < 0)
        goto fail;
    if (parse_list(p, &nd->body) < 0)
        goto fail;
    /* now at {{else or {{end (LDELIM consumed by parse_list's stop) */
    if (peek(p)->kind == T_ELSE) {
        p->i++;
        if ((peek(p)->kind == T_IF && kind == N_IF) || (peek(p)->kind == T_WITH && kind == N_WITH)) {
            /* {{else if ...}}: an if in the else branch sharing our {{end}} */
            p->i++;
            struct t_node *inner = NULL;
            if (parse_control(p, kind, &inner) < 0)
                goto fail;
            nd->else_body = xcalloc(1, sizeof(*nd->else_body));
            list_add(nd->else_body, inner);
            p->depth--;
            *ret = nd;
            return 0;
        }
        if (expect_rdelim(p) < 0 || parse_list(p, &nd->else_body) < 0)
            goto fail;
        if (peek(p)->kind != T_END) {
            parse_fail(p, peek(p), "expected {{end}}");
            goto fail;
        }
    }
    if (peek(p)->kind != T_END) {
        parse_fail(p, peek(p), "unexpected EOF: missing {{end}}");
        goto fail;
    }
    p->i++;
    if (expect_rdelim(p) < 0)
        goto fail;
    p->depth--;
    *ret = nd;
    return 0;
fail:
    node_free(nd);
    return -1;
}

static int parse_list(struct parser *p, struct t_list **ret)
{
    struct t_list *l = xcalloc(1, sizeof(*l));
    for (;;) {
        struct token *t = peek(p);
        if (t->kind == T_EOF)
            break;
        if (t->kind == T_TEXT) {
            struct t_node *nd = xcalloc(1, sizeof(*nd));
            nd->kind = N_TEXT;
            nd->text = xstrdup(t->s);
            nd->len = t->len;
            list_add(l, nd);
            p->i++;
            continue;
        }
        /* T_LDELIM */
        p->i++;
        t = peek(p);
        if (t->kind == T_END || t->kind == T_ELSE)
            break; /* the caller handles it */
        struct t_node *nd = NULL;
        if (t->kind == T_IF || t->kind == T_RANGE || t->kind == T_WITH) {
            p->i++;
            enum node_kind k = t->kind == T_IF ? N_IF : t->kind == T_RANGE ? N_RANGE : N_WITH;
            if (parse_control(p, k, &nd) < 0)
                goto fail;
        } else {
            nd = xcalloc(1, sizeof(*nd));
            nd->kind = N_ACTION;
            if (t->kind == T_RDELIM) {
                node_free(nd);
                parse_fail(p, t, "missing value for command");
                goto fail;
            }
            if (parse_pipeline(p, T_RDELIM, &nd->pipe) < 0 || expect_rdelim(p) < 0) {
                node_free(nd);
                goto fail;
            }
        }
        list_add(l, nd);
    }
    *ret = l;
    return 0;
fail:
    list_free(l);
    return -1;
}

int template_parse(const char *text, size_t len, struct template **ret, struct kiln_error **err)
{
    if (len > TEMPLATE_MAX_LEN)
        return kiln_error_set(err, 0, "template: longer than %u bytes", TEMPLATE_MAX_LEN);
    struct lexer lx = {.src = text, .len = len, .err = err};
    int r = lex_all(&lx);
    struct t_list *root = NULL;
    if (r == 0) {
        struct parser p = {.toks = lx.toks, .n = lx.n, .err = err};
        r = parse_list(&p, &root);
        if (r == 0 && peek(&p)->kind != T_EOF) {
            r = parse_fail(&p, peek(&p),
                           peek(&p)->kind == T_END ? "unexpected {{end}}" : "unexpected {{else}}");
            list_free(root);
        }
    }
    for (size_t i = 0; i < lx.n; i++)
        free(lx.toks[i].s);
    free(lx.toks);
    if (r < 0)
        return -1;
    struct template *t = xcalloc(1, sizeof(*t));
    t->root = root;
    *ret = t;
    return 0;
}

void template_free(struct template *t)
{
    if (!t)
        return;
    list_free(t->root);
    free(t);
}

/* ---- execution ------------------------------------------------------------ */

struct var {
    char *name;
    struct tval *v;
};

struct exec {
    struct strbuf *out;
    struct var *vars;
    size_t n_vars, cap;
    int depth;
    struct kiln_error **err;
};

static int exec_fail(struct exec *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int exec_fail(struct exec *x, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    kiln_error_set(x->err, 0, "template: %s", msg);
    free(msg);
    return -1;
}

static void vars_pop_to(struct exec *x, size_t n)
{
    while (x->n_vars > n) {
        x->n_vars--;
        free(x->vars[x->n_vars].name);
        tv_unref(x->vars[x->n_vars].v);
    }
}

static void var_push(struct exec *x, const char *name, struct tval *v)
{
    XGROW(x->vars, x->cap, x->n_vars + 1);
    x->vars[x->n_vars].name = xstrdup(name);
    x->vars[x->n_vars].v = v;
    x->n_vars++;
}

static struct var *var_find(struct exec *x, const char *name)
{
    for (size_t i = x->n_vars; i-- > 0;)
        if (strcmp(x->vars[i].name, name) == 0)
            return &x->vars[i];
    return NULL;
}

/* Follows a field chain; returns a new reference. */
static int walk_fields(struct exec *x, struct tval *base, char *const *fields, struct tval **ret)
{
    struct tval *cur = tv_ref(base);
    for (size_t i = 0; fields && fields[i]; i++) {
        const char *f = fields[i];
        struct tval *next = NULL;
        if (cur->kind == TV_STRUCT) {
            next = tv_get(cur, f);
            if (!next) {
                int r = exec_fail(x, "can't evaluate field %s in type %s", f, kind_name(cur));
                tv_unref(cur);
                return r;
            }
            next = tv_ref(next);
        } else if (cur->kind == TV_MAP) {
            next = tv_get(cur, f);
            next = next ? tv_ref(next) : tv_str("");
        } else if (cur->kind == TV_NULL) {
            tv_unref(cur);
            return exec_fail(x, "nil pointer evaluating .%s", f);
        } else {
            int r = exec_fail(x, "can't evaluate field %s in type %s", f, kind_name(cur));
            tv_unref(cur);
            return r;
        }
        tv_unref(cur);
        cur = next;
    }
    *ret = cur;
    return 0;
}

static int eval_pipe(struct exec *x, const struct t_pipe *p, struct tval *dot, struct tval **ret);

static int eval_arg(struct exec *x, const struct t_arg *a, struct tval *dot, struct tval **ret)
{
    switch (a->kind) {
    case A_DOT:
        *ret = tv_ref(dot);
        return 0;
    case A_FIELD:
        return walk_fields(x, dot, a->fields, ret);
    case A_VAR: {
        struct var *v = var_find(x, a->name);
        if (!v)
            return exec_fail(x, "undefined variable: %s", a->name);
        return walk_fields(x, v->v, a->fields, ret);
    }
    case A_STRING:
        *ret = tv_str(a->name);
        return 0;
    case A_INT:
        *ret = tv_int(a->i);
        return 0;
    case A_BOOL:
        *ret = tv_bool(a->i != 0);
        return 0;
    case A_NIL:
        *ret = tv_null();
        return 0;
    case A_GROUP: {
        struct tval *g = NULL;
        if (eval_pipe(x, a->group, dot, &g) < 0)
            return -1;
        int r = walk_fields(x, g, a->fields, ret);
        tv_unref(g);
        return r;
    }
    case A_IDENT:
        return exec_fail(x, "function %s used as a value", a->name);
    }
    return -1;
}

/* ---- functions ---- */

static const char *need_str(struct exec *x, const char *fn, struct tval *v)
{
    if (v->kind != TV_STR) {
        exec_fail(x, "%s: expected a string, got %s", fn, kind_name(v));
        return NULL;
    }
    return v->s;
}

static int need_int(struct exec *x, const char *fn, struct tval *v, int64_t *ret)
{
    if (v->kind != TV_INT)
        return exec_fail(x, "%s: expected an integer, got %s", fn, kind_name(v));
    *ret = v->i;
    return 0;
}

static size_t utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xc0) != 0x80)
            n++;
    return n;
}

/* Byte offset of the n-th character. */
static size_t utf8_offset(const char *s, size_t n)
{
    size_t i = 0, chars = 0;
    for (; s[i]; i++) {
        if (((unsigned char)s[i] & 0xc0) != 0x80) {
            if (chars == n)
                return i;
            chars++;
        }
    }
    return i;
}

static void pad_to(struct strbuf *sb, const char *s, int64_t width, bool left, char padc)
{
    size_t n = utf8_len(s);
    size_t w = width > 0 ? (size_t)width : 0;
    if (!left)
        for (size_t i = n; i < w; i++)
            strbuf_addc(sb, padc);
    strbuf_adds(sb, s);
    if (left)
        for (size_t i = n; i < w; i++)
            strbuf_addc(sb, ' ');
}

static void go_quote(struct strbuf *sb, const char *s)
{
    strbuf_addc(sb, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            strbuf_adds(sb, "\\\"");
            break;
        case '\\':
            strbuf_adds(sb, "\\\\");
            break;
        case '\n':
            strbuf_adds(sb, "\\n");
            break;
        case '\t':
            strbuf_adds(sb, "\\t");
            break;
        case '\r':
            strbuf_adds(sb, "\\r");
            break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                strbuf_addf(sb, "\\x%02x", *p);
            else
                strbuf_addc(sb, (char)*p);
        }
    }
    strbuf_addc(sb, '"');
}

static int fn_printf(struct exec *x, struct tval **args, size_t n, struct tval **ret)
{
    const char *f = need_str(x, "printf", args[0]);
    if (!f)
        return -1;
    struct strbuf sb = STRBUF_INIT;
    size_t ai = 1;
    for (const char *p = f; *p; p++) {
        if (*p != '%') {
            strbuf_addc(&sb, *p);
            continue;
        }
        p++;
        if (*p == '%') {
            strbuf_addc(&sb, '%');
            continue;
        }
        bool left = false, zero = false;
        for (; *p == '-' || *p == '0' || *p == '+' || *p == ' ' || *p == '#'; p++) {
            if (*p == '-')
                left = true;
            if (*p == '0')
                zero = true;
        }
        int64_t width = 0, prec = -1;
        for (; isdigit((unsigned char)*p); p++)
            if (width < 10000)
                width = width * 10 + (*p - '0');
        if (*p == '.') {
            prec = 0;
            for (p++; isdigit((unsigned char)*p); p++)
                if (prec < 10000)
                    prec = prec * 10 + (*p - '0');
        }
        char verb = *p;
        if (!verb) {
            strbuf_adds(&sb, "%!(NOVERB)");
            break;
        }
        if (ai >= n) {
            strbuf_addf(&sb, "%%!%c(MISSING)", verb);
            continue;
        }
        struct tval *a = args[ai++];
        struct strbuf one = STRBUF_INIT;
        switch (verb) {
        case 'v':
        case 's':
            tv_print(&one, a);
            break;
        case 'q':
            if (a->kind == TV_STR)
                go_quote(&one, a->s);
            else
                tv_print(&one, a);
            break;
        case 'd':
            if (a->kind == TV_INT)
                strbuf_addf(&one, "%" PRId64, a->i);
            else {
                strbuf_adds(&one, "%!d(");
                tv_print(&one, a);
                strbuf_addc(&one, ')');
            }
            break;
        case 'x':
            if (a->kind == TV_INT)
                strbuf_addf(&one, "%" PRIx64, (uint64_t)a->i);
            else if (a->kind == TV_STR)
                for (const unsigned char *c = (const unsigned char *)a->s; *c; c++)
                    strbuf_addf(&one, "%02x", *c);
            else
                tv_print(&one, a);
            break;
        default:
            strbuf_addf(&one, "%%!%c(", verb);
            tv_print(&one, a);
            strbuf_addc(&one, ')');
        }
        const char *txt = strbuf_str(&one);
        _cleanup_free_ char *cut = NULL;
        if (prec >= 0 && (verb == 's' || verb == 'v') &&
            (size_t)prec < utf8_len(txt))
            txt = cut = xstrndup(txt, utf8_offset(txt, (size_t)prec));
        pad_to(&sb, txt, width, left, zero && !left && verb == 'd' ? '0' : ' ');
        strbuf_release(&one);
    }
    if (ai < n) {
        strbuf_adds(&sb, "%!(EXTRA ");
        for (size_t i = ai; i < n; i++) {
            if (i > ai)
                strbuf_adds(&sb, ", ");
            tv_print(&sb, args[i]);
        }
        strbuf_addc(&sb, ')');
    }
    *ret = tv_str_take(strbuf_detach(&sb, NULL));
    return 0;
}

/* Go's fmt.Sprint: a space between operands when neither is a string. */
static struct tval *do_print(struct tval **args, size_t n, bool ln)
{
    struct strbuf sb = STRBUF_INIT;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && (ln || (args[i]->kind != TV_STR && args[i - 1]->kind != TV_STR)))
            strbuf_addc(&sb, ' ');
        tv_print(&sb, args[i]);
    }
    if (ln)
        strbuf_addc(&sb, '\n');
    return tv_str_take(strbuf_detach(&sb, NULL));
}

/* -1/0/1 for ints and strings; eq and ne also take bools and nil. */
static int compare(struct exec *x, const char *fn, struct tval *a, struct tval *b, int *ret)
{
    bool equality = strcmp(fn, "eq") == 0 || strcmp(fn, "ne") == 0;
    if (a->kind == TV_INT && b->kind == TV_INT) {
        *ret = a->i < b->i ? -1 : a->i > b->i;
        return 0;
    }
    if (a->kind == TV_STR && b->kind == TV_STR) {
        int c = strcmp(a->s, b->s);
        *ret = c < 0 ? -1 : c > 0;
        return 0;
    }
    if (equality && a->kind == TV_BOOL && b->kind == TV_BOOL) {
        *ret = a->b != b->b;
        return 0;
    }
    if (equality && a->kind == TV_NULL && b->kind == TV_NULL) {
        *ret = 0;
        return 0;
    }
    return exec_fail(x, "%s: incompatible types for comparison (%s and %s)", fn, kind_name(a),
                     kind_name(b));
}

static int call_fn(struct exec *x, const char *name, struct tval **args, size_t n,
                   struct tval **ret)
{
#define ARGS(lo, hi)                                                                               \
    do {                                                                                           \
        if (n < (lo) || n > (hi))                                                                  \
            return exec_fail(x, "wrong number of args for %s: want %d got %zu", name, (int)(lo),  \
                             n);                                                                   \
    } while (0)
    if (strcmp(name, "json") == 0) {
        ARGS(1, 1);
        struct strbuf sb = STRBUF_INIT;
        tv_json(&sb, args[0], false);
        *ret = tv_str_take(strbuf_detach(&sb, NULL));
        return 0;
    }
    if (strcmp(name, "join") == 0) {
        ARGS(2, 2);
        const char *sep = need_str(x, name, args[1]);
        if (!sep)
            return -1;
        if (args[0]->kind != TV_LIST)
            return exec_fail(x, "join: expected a list, got %s", kind_name(args[0]));
        struct strbuf sb = STRBUF_INIT;
        for (size_t i = 0; i < args[0]->n; i++) {
            if (i)
                strbuf_adds(&sb, sep);
            tv_print(&sb, args[0]->items[i]);
        }
        *ret = tv_str_take(strbuf_detach(&sb, NULL));
        return 0;
    }
    if (strcmp(name, "split") == 0) {
        ARGS(2, 2);
        const char *s = need_str(x, name, args[0]), *sep = s ? need_str(x, name, args[1]) : NULL;
        if (!s || !sep)
            return -1;
        struct tval *l = tv_list(false);
        size_t sl = strlen(sep);
        if (sl == 0) {
            for (size_t i = 0; s[i];) {
                size_t next = utf8_offset(s + i, 1);
                if (next == 0)
                    next = 1;
                tv_push(l, tv_str_take(xstrndup(s + i, next)));
                i += next;
            }
        } else {
            const char *p = s, *q;
            while ((q = strstr(p, sep))) {
                tv_push(l, tv_str_take(xstrndup(p, (size_t)(q - p))));
                p = q + sl;
            }
            tv_push(l, tv_str(p));
        }
        *ret = l;
        return 0;
    }
    if (strcmp(name, "lower") == 0 || strcmp(name, "upper") == 0 || strcmp(name, "title") == 0) {
        ARGS(1, 1);
        const char *s = need_str(x, name, args[0]);
        if (!s)
            return -1;
        char *c = xstrdup(s);
        bool start = true;
        for (char *p = c; *p; p++) {
            if (name[0] == 'l')
                *p = (char)tolower((unsigned char)*p);
            else if (name[0] == 'u')
                *p = (char)toupper((unsigned char)*p);
            else {
                if (start && isalpha((unsigned char)*p))
                    *p = (char)toupper((unsigned char)*p);
                start = !isalnum((unsigned char)*p) && *p != '_' && *p != '\'' &&
                        !((unsigned char)*p & 0x80);
            }
        }
        *ret = tv_str_take(c);
        return 0;
    }
    if (strcmp(name, "pad") == 0) {
        ARGS(3, 3);
        const char *s = need_str(x, name, args[0]);
        int64_t l = 0, r = 0;
        if (!s || need_int(x, name, args[1], &l) < 0 || need_int(x, name, args[2], &r) < 0)
            return -1;
        if (l < 0 || r < 0 || l > 10000 || r > 10000)
            return exec_fail(x, "pad: widths must be between 0 and 10000");
        struct strbuf sb = STRBUF_INIT;
        for (int64_t i = 0; i < l; i++)
            strbuf_addc(&sb, ' ');
        strbuf_adds(&sb, s);
        for (int64_t i = 0; i < r; i++)
            strbuf_addc(&sb, ' ');
        *ret = tv_str_take(strbuf_detach(&sb, NULL));
        return 0;
    }
    if (strcmp(name, "truncate") == 0) {
        ARGS(2, 2);
        const char *s = need_str(x, name, args[0]);
        int64_t w = 0;
        if (!s || need_int(x, name, args[1], &w) < 0)
            return -1;
        if (w < 0)
            w = 0;
        *ret = tv_str_take(xstrndup(s, utf8_offset(s, (size_t)w)));
        return 0;
    }
    if (strcmp(name, "index") == 0) {
        if (n < 1)
            return exec_fail(x, "wrong number of args for index: want at least 1 got 0");
        struct tval *cur = tv_ref(args[0]);
        for (size_t i = 1; i < n; i++) {
            struct tval *k = args[i], *next = NULL;
            if (cur->kind == TV_LIST) {
                if (k->kind != TV_INT) {
                    tv_unref(cur);
                    return exec_fail(x, "index: cannot index a list with %s", kind_name(k));
                }
                if (k->i < 0 || (uint64_t)k->i >= cur->n) {
                    int r = exec_fail(x, "index: index out of range: %" PRId64, k->i);
                    tv_unref(cur);
                    return r;
                }
                next = tv_ref(cur->items[k->i]);
            } else if (cur->kind == TV_MAP) {
                if (k->kind != TV_STR) {
                    tv_unref(cur);
                    return exec_fail(x, "index: cannot index a map with %s", kind_name(k));
                }
                next = tv_get(cur, k->s);
                next = next ? tv_ref(next) : tv_str("");
            } else if (cur->kind == TV_STR && k->kind == TV_INT) {
                if (k->i < 0 || (uint64_t)k->i >= strlen(cur->s)) {
                    int r = exec_fail(x, "index: index out of range: %" PRId64, k->i);
                    tv_unref(cur);
                    return r;
                }
                next = tv_int((unsigned char)cur->s[k->i]);
            } else {
                int r = exec_fail(x, "index: can't index item of type %s", kind_name(cur));
                tv_unref(cur);
                return r;
            }
            tv_unref(cur);
            cur = next;
        }
        *ret = cur;
        return 0;
    }
    if (strcmp(name, "len") == 0) {
        ARGS(1, 1);
        struct tval *a = args[0];
        if (a->kind == TV_STR)
            *ret = tv_int((int64_t)strlen(a->s));
        else if (a->kind == TV_LIST || a->kind == TV_MAP)
            *ret = tv_int((int64_t)a->n);
        else
            return exec_fail(x, "len of type %s", kind_name(a));
        return 0;
    }
    if (strcmp(name, "printf") == 0) {
        if (n < 1)
            return exec_fail(x, "wrong number of args for printf: want at least 1 got 0");
        return fn_printf(x, args, n, ret);
    }
    if (strcmp(name, "print") == 0 || strcmp(name, "println") == 0) {
        *ret = do_print(args, n, name[5] == 'l');
        return 0;
    }
    if (strcmp(name, "eq") == 0) {
        if (n < 2)
            return exec_fail(x, "wrong number of args for eq: want at least 2 got %zu", n);
        bool any = false;
        for (size_t i = 1; i < n; i++) {
            int c = 0;
            if (compare(x, name, args[0], args[i], &c) < 0)
                return -1;
            any |= c == 0;
        }
        *ret = tv_bool(any);
        return 0;
    }
    if (strcmp(name, "ne") == 0 || strcmp(name, "lt") == 0 || strcmp(name, "le") == 0 ||
        strcmp(name, "gt") == 0 || strcmp(name, "ge") == 0) {
        ARGS(2, 2);
        int c = 0;
        if (compare(x, name, args[0], args[1], &c) < 0)
            return -1;
        bool b = name[0] == 'n'   ? c != 0
                 : name[0] == 'l' ? (name[1] == 't' ? c < 0 : c <= 0)
                                  : (name[1] == 't' ? c > 0 : c >= 0);
        *ret = tv_bool(b);
        return 0;
    }
    if (strcmp(name, "and") == 0 || strcmp(name, "or") == 0) {
        if (n < 1)
            return exec_fail(x, "wrong number of args for %s: want at least 1 got 0", name);
        bool is_and = name[0] == 'a';
        size_t i = 0;
        for (; i + 1 < n; i++)
            if (tv_truth(args[i]) != is_and)
                break;
        *ret = tv_ref(args[i]);
        return 0;
    }
    if (strcmp(name, "not") == 0) {
        ARGS(1, 1);
        *ret = tv_bool(!tv_truth(args[0]));
        return 0;
    }
#undef ARGS
    return exec_fail(x, "function \"%s\" not defined", name);
}

static int eval_cmd(struct exec *x, const struct t_cmd *c, struct tval *dot, struct tval *piped,
                    struct tval **ret)
{
    const struct t_arg *first = &c->args[0];
    if (first->kind != A_IDENT) {
        if (c->n > 1 || piped)
            return exec_fail(x, "can't give argument to non-function");
        return eval_arg(x, first, dot, ret);
    }
    size_t n = c->n - 1 + (piped ? 1 : 0);
    struct tval **args = xcalloc(n + 1, sizeof(*args));
    int r = 0;
    size_t got = 0;
    for (size_t i = 1; i < c->n && r == 0; i++) {
        if (c->args[i].kind == A_IDENT) {
            /* a niladic function as an argument is not supported: every
             * function here takes arguments */
            r = exec_fail(x, "function %s used as a value", c->args[i].name);
            break;
        }
        r = eval_arg(x, &c->args[i], dot, &args[got]);
        if (r == 0)
            got++;
    }
    if (r == 0 && piped)
        args[got++] = tv_ref(piped);
    if (r == 0)
        r = call_fn(x, first->name, args, got, ret);
    for (size_t i = 0; i < got; i++)
        tv_unref(args[i]);
    free(args);
    return r;
}

static int eval_pipe(struct exec *x, const struct t_pipe *p, struct tval *dot, struct tval **ret)
{
    if (++x->depth > TEMPLATE_MAX_DEPTH * 4)
        return exec_fail(x, "nested too deeply");
    struct tval *val = NULL;
    for (size_t i = 0; i < p->n; i++) {
        struct tval *next = NULL;
        int r = eval_cmd(x, &p->cmds[i], dot, val, &next);
        tv_unref(val);
        if (r < 0) {
            x->depth--;
            return -1;
        }
        val = next;
    }
    x->depth--;
    *ret = val;
    return 0;
}

/* Evaluates a pipeline and handles its variable declarations (not the
 * two-variable range form). */
static int eval_pipe_decl(struct exec *x, const struct t_pipe *p, struct tval *dot,
                          struct tval **ret)
{
    struct tval *v = NULL;
    if (eval_pipe(x, p, dot, &v) < 0)
        return -1;
    if (p->n_decl == 1) {
        if (p->assign) {
            struct var *var = var_find(x, p->decl[0]);
            if (!var) {
                tv_unref(v);
                return exec_fail(x, "undefined variable: %s", p->decl[0]);
            }
            tv_unref(var->v);
            var->v = tv_ref(v);
        } else {
            var_push(x, p->decl[0], tv_ref(v));
        }
    }
    *ret = v;
    return 0;
}

static int exec_list(struct exec *x, const struct t_list *l, struct tval *dot);

static int exec_node(struct exec *x, const struct t_node *nd, struct tval *dot)
{
    switch (nd->kind) {
    case N_TEXT:
        strbuf_add(x->out, nd->text, nd->len);
        return 0;
    case N_ACTION: {
        struct tval *v = NULL;
        if (eval_pipe_decl(x, nd->pipe, dot, &v) < 0)
            return -1;
        if (nd->pipe->n_decl == 0)
            tv_print(x->out, v);
        tv_unref(v);
        return 0;
    }
    case N_IF:
    case N_WITH: {
        size_t mark = x->n_vars;
        struct tval *v = NULL;
        if (eval_pipe_decl(x, nd->pipe, dot, &v) < 0)
            return -1;
        int r = 0;
        if (tv_truth(v))
            r = exec_list(x, nd->body, nd->kind == N_WITH ? v : dot);
        else if (nd->else_body)
            r = exec_list(x, nd->else_body, dot);
        tv_unref(v);
        vars_pop_to(x, mark);
        return r;
    }
    case N_RANGE: {
        size_t mark = x->n_vars;
        struct tval *v = NULL;
        if (eval_pipe(x, nd->pipe, dot, &v) < 0)
            return -1;
        int r = 0;
        if (v->kind != TV_LIST && v->kind != TV_MAP && v->kind != TV_NULL) {
            r = exec_fail(x, "range can't iterate over %s", kind_name(v));
        } else if (v->n == 0) {
            if (nd->else_body)
                r = exec_list(x, nd->else_body, dot);
        } else {
            for (size_t i = 0; i < v->n && r == 0; i++) {
                size_t inner = x->n_vars;
                struct tval *elem = v->items[i];
                if (nd->pipe->n_decl == 2) {
                    var_push(x, nd->pipe->decl[0],
                             v->kind == TV_MAP ? tv_str(v->keys[i]) : tv_int((int64_t)i));
                    var_push(x, nd->pipe->decl[1], tv_ref(elem));
                } else if (nd->pipe->n_decl == 1) {
                    var_push(x, nd->pipe->decl[0], tv_ref(elem));
                }
                r = exec_list(x, nd->body, elem);
                vars_pop_to(x, inner);
            }
        }
        tv_unref(v);
        vars_pop_to(x, mark);
        return r;
    }
    }
    return 0;
}

static int exec_list(struct exec *x, const struct t_list *l, struct tval *dot)
{
    if (++x->depth > TEMPLATE_MAX_DEPTH * 4)
        return exec_fail(x, "nested too deeply");
    for (size_t i = 0; i < l->n; i++) {
        if (exec_node(x, l->nodes[i], dot) < 0) {
            x->depth--;
            return -1;
        }
    }
    x->depth--;
    return 0;
}

int template_exec(const struct template *t, struct tval *data, struct strbuf *out,
                  struct kiln_error **err)
{
    struct exec x = {.out = out, .err = err};
    var_push(&x, "$", tv_ref(data));
    int r = exec_list(&x, t->root, data);
    vars_pop_to(&x, 0);
    free(x.vars);
    return r;
}
