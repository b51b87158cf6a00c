/* A small regexp engine that parses Go's syntax and matches with Go's
 * leftmost-first rules (see goregex.h for the supported subset). */
#include "goregex.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dockerfile/unicode.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

#define MAX_DEPTH 1000 /* Go's parser refuses deeper nesting too */

/* ---- character classes ---------------------------------------------------- */

struct range {
    uint32_t lo, hi;
};

enum citem_kind { CI_RANGE, CI_TABLE, CI_CAT };

struct citem {
    uint8_t kind;
    bool neg;
    uint32_t lo, hi;            /* CI_RANGE */
    const struct range *tab;    /* CI_TABLE */
    size_t ntab;
    char cat[3];                /* CI_CAT: general category ("L", "Lu", ...) */
};

struct cls {
    struct citem *items;
    size_t n, cap;
    bool neg;
};

#define R(a, b) {(a), (b)}
static const struct range t_digit[] = {R('0', '9')};
static const struct range t_space_perl[] = {R('\t', '\n'), R('\f', '\r'), R(' ', ' ')};
static const struct range t_word[] = {R('0', '9'), R('A', 'Z'), R('_', '_'), R('a', 'z')};
static const struct range t_alnum[] = {R('0', '9'), R('A', 'Z'), R('a', 'z')};
static const struct range t_alpha[] = {R('A', 'Z'), R('a', 'z')};
static const struct range t_ascii[] = {R(0, 0x7F)};
static const struct range t_blank[] = {R('\t', '\t'), R(' ', ' ')};
static const struct range t_cntrl[] = {R(0, 0x1F), R(0x7F, 0x7F)};
static const struct range t_graph[] = {R('!', '~')};
static const struct range t_lower[] = {R('a', 'z')};
static const struct range t_print[] = {R(' ', '~')};
static const struct range t_punct[] = {R('!', '/'), R(':', '@'), R('[', '`'), R('{', '~')};
static const struct range t_space[] = {R('\t', '\r'), R(' ', ' ')};
static const struct range t_upper[] = {R('A', 'Z')};
static const struct range t_xdigit[] = {R('0', '9'), R('A', 'F'), R('a', 'f')};
static const struct range t_any[] = {R(0, UNI_MAX)};
#undef R

#define TAB(t) (t), sizeof(t) / sizeof((t)[0])

static const struct {
    const char *name;
    const struct range *tab;
    size_t n;
} posix_classes[] = {
    {"alnum", TAB(t_alnum)}, {"alpha", TAB(t_alpha)}, {"ascii", TAB(t_ascii)},
    {"blank", TAB(t_blank)}, {"cntrl", TAB(t_cntrl)}, {"digit", TAB(t_digit)},
    {"graph", TAB(t_graph)}, {"lower", TAB(t_lower)}, {"print", TAB(t_print)},
    {"punct", TAB(t_punct)}, {"space", TAB(t_space)}, {"upper", TAB(t_upper)},
    {"word", TAB(t_word)},   {"xdigit", TAB(t_xdigit)},
};

static struct citem *cls_add(struct cls *c)
{
    XGROW(c->items, c->cap, c->n + 1);
    struct citem *it = &c->items[c->n++];
    memset(it, 0, sizeof(*it));
    return it;
}

static void cls_add_range(struct cls *c, uint32_t lo, uint32_t hi)
{
    struct citem *it = cls_add(c);
    it->kind = CI_RANGE;
    it->lo = lo;
    it->hi = hi;
}

static void cls_add_table(struct cls *c, const struct range *tab, size_t n, bool neg)
{
    struct citem *it = cls_add(c);
    it->kind = CI_TABLE;
    it->tab = tab;
    it->ntab = n;
    it->neg = neg;
}

static bool item_has(const struct citem *it, uint32_t r)
{
    bool in = false;
    switch (it->kind) {
    case CI_RANGE:
        in = r >= it->lo && r <= it->hi;
        break;
    case CI_TABLE:
        for (size_t i = 0; i < it->ntab; i++)
            if (r >= it->tab[i].lo && r <= it->tab[i].hi) {
                in = true;
                break;
            }
        break;
    case CI_CAT:
        in = uni_in_category(r, it->cat, strlen(it->cat));
        break;
    }
    return in != it->neg;
}

static bool cls_has(const struct cls *c, uint32_t r)
{
    bool in = false;
    for (size_t i = 0; i < c->n && !in; i++)
        in = item_has(&c->items[i], r);
    return in != c->neg;
}

/* ---- program ---------------------------------------------------------------- */

enum op { OP_RUNE, OP_NOTRUNE, OP_CLASS, OP_ANYNL, OP_SPLIT, OP_JMP, OP_ASSERT, OP_MATCH };
enum assert_kind { AS_BEGIN, AS_END, AS_WORDB, AS_NWORDB };

struct inst {
    uint8_t op, as;
    uint32_t x, y; /* rune / class index / branch targets */
};

struct goregex {
    struct inst *inst;
    size_t n, cap;
    struct cls *cls;
    size_t ncls, capcls;
};

void goregex_free(struct goregex *re)
{
    if (!re)
        return;
    for (size_t i = 0; i < re->ncls; i++)
        free(re->cls[i].items);
    free(re->cls);
    free(re->inst);
    free(re);
}

static uint32_t emit(struct goregex *re, uint8_t op, uint32_t x, uint32_t y)
{
    XGROW(re->inst, re->cap, re->n + 1);
    re->inst[re->n] = (struct inst){.op = op, .x = x, .y = y};
    return (uint32_t)re->n++;
}

/* ---- parser: Go syntax with the Perl flags regexp.Compile uses --------------- */

enum nkind { NK_EMPTY, NK_RUNE, NK_CLASS, NK_ANYNL, NK_ASSERT, NK_CAT, NK_ALT, NK_REP };

struct node {
    uint8_t kind, as, rep; /* rep: '*', '+', '?' */
    bool greedy;
    uint32_t rune;
    size_t cls;
    size_t *kids;
    size_t nkids, capkids;
};

struct parser {
    const char *s;
    size_t len, pos;
    struct goregex *re;
    struct node *nodes;
    size_t nnodes, capnodes;
    char *err;
};

static size_t new_node(struct parser *p, uint8_t kind)
{
    XGROW(p->nodes, p->capnodes, p->nnodes + 1);
    memset(&p->nodes[p->nnodes], 0, sizeof(struct node));
    p->nodes[p->nnodes].kind = kind;
    return p->nnodes++;
}

static void add_kid(struct parser *p, size_t parent, size_t kid)
{
    struct node *n = &p->nodes[parent];
    XGROW(n->kids, n->capkids, n->nkids + 1);
    n->kids[n->nkids++] = kid;
}

static int fail(struct parser *p, const char *code, size_t from, size_t to)
{
    if (!p->err) {
        if (to > p->len)
            to = p->len;
        p->err = xasprintf("error parsing regexp: %s: `%.*s`", code, (int)(to - from), p->s + from);
    }
    return -1;
}

static bool at_end(const struct parser *p)
{
    return p->pos >= p->len;
}

static uint32_t peek_rune(const struct parser *p, size_t *w)
{
    return uni_decode(p->s + p->pos, p->len - p->pos, w);
}

static size_t new_class(struct parser *p)
{
    struct goregex *re = p->re;
    XGROW(re->cls, re->capcls, re->ncls + 1);
    memset(&re->cls[re->ncls], 0, sizeof(struct cls));
    return re->ncls++;
}

static int unhex(uint32_t c)
{
    if (c >= '0' && c <= '9')
        return (int)(c - '0');
    if (c >= 'a' && c <= 'f')
        return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F')
        return (int)(c - 'A' + 10);
    return -1;
}

static bool is_alnum_ascii(uint32_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* A single-rune escape; p->pos is at the backslash. */
static int parse_escape(struct parser *p, uint32_t *ret)
{
    size_t start = p->pos;
    p->pos++; /* backslash */
    if (at_end(p))
        return fail(p, "trailing backslash at end of expression", start, p->len);
    size_t w;
    uint32_t c = peek_rune(p, &w);
    p->pos += w;
    switch (c) {
    case '1': case '2': case '3': case '4': case '5': case '6': case '7':
        if (at_end(p) || p->s[p->pos] < '0' || p->s[p->pos] > '7')
            break;
        /* fallthrough */
    case '0': {
        uint32_t r = c - '0';
        for (int i = 1; i < 3; i++) {
            if (at_end(p) || p->s[p->pos] < '0' || p->s[p->pos] > '7')
                break;
            r = r * 8 + (uint32_t)(p->s[p->pos] - '0');
            p->pos++;
        }
        *ret = r;
        return 0;
    }
    case 'x': {
        if (at_end(p))
            break;
        c = peek_rune(p, &w);
        p->pos += w;
        if (c == '{') {
            int nhex = 0;
            uint32_t r = 0;
            for (;;) {
                if (at_end(p))
                    goto bad;
                c = peek_rune(p, &w);
                p->pos += w;
                if (c == '}')
                    break;
                int v = unhex(c);
                if (v < 0)
                    goto bad;
                r = r * 16 + (uint32_t)v;
                if (r > UNI_MAX)
                    goto bad;
                nhex++;
            }
            if (nhex == 0)
                goto bad;
            *ret = r;
            return 0;
        }
        int x = unhex(c);
        if (at_end(p))
            goto bad;
        c = peek_rune(p, &w);
        p->pos += w;
        int y = unhex(c);
        if (x < 0 || y < 0)
            goto bad;
        *ret = (uint32_t)(x * 16 + y);
        return 0;
    }
    case 'a': *ret = 7; return 0;
    case 'f': *ret = '\f'; return 0;
    case 'n': *ret = '\n'; return 0;
    case 'r': *ret = '\r'; return 0;
    case 't': *ret = '\t'; return 0;
    case 'v': *ret = '\v'; return 0;
    default:
        if (c < 0x80 && !is_alnum_ascii(c)) {
            *ret = c;
            return 0;
        }
        break;
    }
bad:
    return fail(p, "invalid escape sequence", start, p->pos);
}

/* \d \s \w \D \S \W at p->pos; returns 1 when one was added. */
static int parse_perl_class(struct parser *p, struct cls *c)
{
    if (p->len - p->pos < 2 || p->s[p->pos] != '\\')
        return 0;
    char k = p->s[p->pos + 1];
    bool neg = k >= 'A' && k <= 'Z';
    switch (k | 0x20) {
    case 'd':
        cls_add_table(c, TAB(t_digit), neg);
        break;
    case 's':
        cls_add_table(c, TAB(t_space_perl), neg);
        break;
    case 'w':
        cls_add_table(c, TAB(t_word), neg);
        break;
    default:
        return 0;
    }
    p->pos += 2;
    return 1;
}

/* \pX \p{Name} \PX \P{^Name} at p->pos: 1 added, 0 not one, -1 error. */
static int parse_unicode_class(struct parser *p, struct cls *c)
{
    size_t start = p->pos;
    if (p->len - p->pos < 2 || p->s[p->pos] != '\\' ||
        (p->s[p->pos + 1] != 'p' && p->s[p->pos + 1] != 'P'))
        return 0;
    bool neg = p->s[p->pos + 1] == 'P';
    p->pos += 2;
    if (at_end(p))
        return fail(p, "invalid character class range", start, p->len);
    const char *name;
    size_t nlen, w;
    uint32_t ch = peek_rune(p, &w);
    if (ch != '{') {
        name = p->s + p->pos;
        nlen = w;
        p->pos += w;
    } else {
        const char *end = memchr(p->s + p->pos, '}', p->len - p->pos);
        if (!end)
            return fail(p, "invalid character class range", start, p->len);
        name = p->s + p->pos + 1;
        nlen = (size_t)(end - name);
        p->pos = (size_t)(end - p->s) + 1;
    }
    if (nlen > 0 && name[0] == '^') {
        neg = !neg;
        name++;
        nlen--;
    }
    if (nlen == 3 && memcmp(name, "Any", 3) == 0) {
        cls_add_table(c, TAB(t_any), neg);
        return 1;
    }
    if (uni_category_known(name, nlen)) {
        struct citem *it = cls_add(c);
        it->kind = CI_CAT;
        it->neg = neg;
        memcpy(it->cat, name, nlen);
        return 1;
    }
    if (nlen > 0 && name[0] >= 'A' && name[0] <= 'Z')
        return fail(p, "unsupported Unicode script class", start, p->pos);
    return fail(p, "invalid character class range", start, p->pos);
}

/* [:alpha:] [:^alpha:] at p->pos: 1 added, 0 not one, -1 error. */
static int parse_named_class(struct parser *p, struct cls *c)
{
    if (p->len - p->pos < 3 || p->s[p->pos] != '[' || p->s[p->pos + 1] != ':')
        return 0;
    const char *rest = p->s + p->pos + 2;
    const char *end = memmem(rest, p->len - p->pos - 2, ":]", 2);
    if (!end)
        return 0;
    size_t start = p->pos;
    const char *name = rest;
    size_t nlen = (size_t)(end - rest);
    bool neg = false;
    if (nlen > 0 && name[0] == '^') {
        neg = true;
        name++;
        nlen--;
    }
    for (size_t i = 0; i < sizeof(posix_classes) / sizeof(posix_classes[0]); i++) {
        if (strlen(posix_classes[i].name) == nlen && memcmp(posix_classes[i].name, name, nlen) == 0) {
            cls_add_table(c, posix_classes[i].tab, posix_classes[i].n, neg);
            p->pos = (size_t)(end - p->s) + 2;
            return 1;
        }
    }
    return fail(p, "invalid character class range", start, (size_t)(end - p->s) + 2);
}

static int parse_class_char(struct parser *p, size_t class_start, uint32_t *ret)
{
    if (at_end(p))
        return fail(p, "missing closing ]", class_start, p->len);
    if (p->s[p->pos] == '\\')
        return parse_escape(p, ret);
    size_t w;
    *ret = peek_rune(p, &w);
    p->pos += w;
    return 0;
}

static int parse_class(struct parser *p, size_t *ret_node)
{
    size_t start = p->pos;
    p->pos++; /* [ */
    size_t ci = new_class(p);
    struct cls c = {0};
    if (!at_end(p) && p->s[p->pos] == '^') {
        c.neg = true;
        p->pos++;
    }
    bool first = true;
    int r = 0;
    while (at_end(p) || p->s[p->pos] != ']' || first) {
        if (at_end(p)) {
            r = fail(p, "missing closing ]", start, p->len);
            goto out;
        }
        first = false;
        if ((r = parse_named_class(p, &c)) != 0) {
            if (r < 0)
                goto out;
            continue;
        }
        if ((r = parse_unicode_class(p, &c)) != 0) {
            if (r < 0)
                goto out;
            continue;
        }
        if (parse_perl_class(p, &c))
            continue;
        size_t rng = p->pos;
        uint32_t lo, hi;
        if ((r = parse_class_char(p, start, &lo)) < 0)
            goto out;
        hi = lo;
        if (p->len - p->pos >= 2 && p->s[p->pos] == '-' && p->s[p->pos + 1] != ']') {
            p->pos++;
            if ((r = parse_class_char(p, start, &hi)) < 0)
                goto out;
            if (hi < lo) {
                r = fail(p, "invalid character class range", rng, p->pos);
                goto out;
            }
        }
        cls_add_range(&c, lo, hi);
    }
    p->pos++; /* ] */
    r = 0;
out:
    p->re->cls[ci] = c;
    if (r < 0)
        return -1;
    size_t n = new_node(p, NK_CLASS);
    p->nodes[n].cls = ci;
    *ret_node = n;
    return 0;
}

static int parse_alt(struct parser *p, int depth, size_t *ret);

static size_t rune_node(struct parser *p, uint32_t r)
{
    size_t n = new_node(p, NK_RUNE);
    p->nodes[n].rune = r;
    return n;
}

static size_t assert_node(struct parser *p, uint8_t as)
{
    size_t n = new_node(p, NK_ASSERT);
    p->nodes[n].as = as;
    return n;
}

/* One atom, appended to the concatenation `cat` (\Q..\E may add several). */
static int parse_atom(struct parser *p, int depth, size_t cat)
{
    size_t start = p->pos, w, n;
    uint32_t c = peek_rune(p, &w);
    switch (c) {
    case '(':
        if (p->len - p->pos >= 2 && p->s[p->pos + 1] == '?')
            return fail(p, "unsupported group flags", start, p->pos + 2);
        p->pos++;
        if (parse_alt(p, depth + 1, &n) < 0)
            return -1;
        if (at_end(p) || p->s[p->pos] != ')')
            return fail(p, "missing closing )", 0, p->len);
        p->pos++;
        break;
    case '[':
        if (parse_class(p, &n) < 0)
            return -1;
        break;
    case '.':
        p->pos++;
        n = new_node(p, NK_ANYNL);
        break;
    case '^':
        p->pos++;
        n = assert_node(p, AS_BEGIN);
        break;
    case '$':
        p->pos++;
        n = assert_node(p, AS_END);
        break;
    case '\\':
        if (p->len - p->pos >= 2) {
            switch (p->s[p->pos + 1]) {
            case 'A':
                p->pos += 2;
                n = assert_node(p, AS_BEGIN);
                goto done;
            case 'z':
                p->pos += 2;
                n = assert_node(p, AS_END);
                goto done;
            case 'b':
                p->pos += 2;
                n = assert_node(p, AS_WORDB);
                goto done;
            case 'B':
                p->pos += 2;
                n = assert_node(p, AS_NWORDB);
                goto done;
            case 'C':
                return fail(p, "invalid escape sequence", start, start + 2);
            case 'Q': {
                p->pos += 2;
                const char *lit = p->s + p->pos;
                const char *e = memmem(lit, p->len - p->pos, "\\E", 2);
                size_t llen = e ? (size_t)(e - lit) : p->len - p->pos;
                for (size_t i = 0; i < llen; i += w)
                    add_kid(p, cat, rune_node(p, uni_decode(lit + i, llen - i, &w)));
                p->pos += llen + (e ? 2 : 0);
                return 0;
            }
            default:
                break;
            }
        }
        {
            struct cls tmp = {0};
            int r = parse_unicode_class(p, &tmp);
            if (r == 0)
                r = parse_perl_class(p, &tmp);
            if (r != 0) {
                size_t ci = new_class(p);
                p->re->cls[ci] = tmp;
                if (r < 0)
                    return -1;
                n = new_node(p, NK_CLASS);
                p->nodes[n].cls = ci;
                break;
            }
        }
        uint32_t r;
        if (parse_escape(p, &r) < 0)
            return -1;
        n = rune_node(p, r);
        break;
    default:
        p->pos += w;
        n = rune_node(p, c);
        break;
    }
done:
    add_kid(p, cat, n);
    return 0;
}

static bool is_repeat_op(char c)
{
    return c == '*' || c == '+' || c == '?';
}

static int parse_cat(struct parser *p, int depth, size_t *ret)
{
    size_t cat = new_node(p, NK_CAT);
    while (!at_end(p) && p->s[p->pos] != '|' && p->s[p->pos] != ')') {
        char c = p->s[p->pos];
        if (is_repeat_op(c)) {
            size_t nk = p->nodes[cat].nkids;
            size_t op_start = p->pos;
            if (nk == 0)
                return fail(p, "missing argument to repetition operator", op_start, op_start + 1);
            p->pos++;
            bool greedy = true;
            if (!at_end(p) && p->s[p->pos] == '?') {
                greedy = false;
                p->pos++;
            }
            if (!at_end(p) && is_repeat_op(p->s[p->pos]))
                return fail(p, "invalid nested repetition operator", op_start, p->pos + 1);
            size_t rep = new_node(p, NK_REP);
            p->nodes[rep].rep = (uint8_t)c;
            p->nodes[rep].greedy = greedy;
            add_kid(p, rep, p->nodes[cat].kids[nk - 1]);
            p->nodes[cat].kids[nk - 1] = rep;
            continue;
        }
        if (parse_atom(p, depth, cat) < 0)
            return -1;
        /* A repetition right after a repetition is a syntax error; catch
         * "a**" where the second star follows the one just applied. */
    }
    *ret = cat;
    return 0;
}

static int parse_alt(struct parser *p, int depth, size_t *ret)
{
    if (depth > MAX_DEPTH)
        return fail(p, "expression nests too deeply", 0, p->len);
    size_t first;
    if (parse_cat(p, depth, &first) < 0)
        return -1;
    if (at_end(p) || p->s[p->pos] != '|') {
        *ret = first;
        return 0;
    }
    size_t alt = new_node(p, NK_ALT);
    add_kid(p, alt, first);
    while (!at_end(p) && p->s[p->pos] == '|') {
        p->pos++;
        size_t next;
        if (parse_cat(p, depth, &next) < 0)
            return -1;
        add_kid(p, alt, next);
    }
    *ret = alt;
    return 0;
}

/* ---- compiler ------------------------------------------------------------------ */

static void compile_node(struct parser *p, size_t ni)
{
    struct goregex *re = p->re;
    struct node *n = &p->nodes[ni];
    switch (n->kind) {
    case NK_EMPTY:
        break;
    case NK_RUNE:
        emit(re, OP_RUNE, n->rune, 0);
        break;
    case NK_CLASS: {
        const struct cls *c = &re->cls[n->cls];
        if (c->n == 1 && c->items[0].kind == CI_RANGE && !c->items[0].neg &&
            c->items[0].lo == c->items[0].hi)
            emit(re, c->neg ? OP_NOTRUNE : OP_RUNE, c->items[0].lo, 0);
        else
            emit(re, OP_CLASS, (uint32_t)n->cls, 0);
        break;
    }
    case NK_ANYNL:
        emit(re, OP_ANYNL, 0, 0);
        break;
    case NK_ASSERT: {
        uint32_t i = emit(re, OP_ASSERT, 0, 0);
        re->inst[i].as = n->as;
        break;
    }
    case NK_CAT:
        for (size_t k = 0; k < p->nodes[ni].nkids; k++)
            compile_node(p, p->nodes[ni].kids[k]);
        break;
    case NK_ALT: {
        /* SPLIT a, next; a; JMP end; next: SPLIT b, ...; last */
        size_t nk = n->nkids;
        uint32_t *jumps = xcalloc(nk, sizeof(*jumps));
        for (size_t k = 0; k < nk; k++) {
            uint32_t split = 0;
            if (k + 1 < nk)
                split = emit(re, OP_SPLIT, 0, 0);
            if (k + 1 < nk)
                re->inst[split].x = (uint32_t)re->n;
            compile_node(p, p->nodes[ni].kids[k]);
            if (k + 1 < nk) {
                jumps[k] = emit(re, OP_JMP, 0, 0);
                re->inst[split].y = (uint32_t)re->n;
            }
        }
        for (size_t k = 0; k + 1 < nk; k++)
            re->inst[jumps[k]].x = (uint32_t)re->n;
        free(jumps);
        break;
    }
    case NK_REP: {
        bool greedy = n->greedy;
        uint8_t rep = n->rep;
        size_t kid = n->kids[0];
        if (rep == '+') {
            uint32_t body = (uint32_t)re->n;
            compile_node(p, kid);
            uint32_t split = emit(re, OP_SPLIT, 0, 0);
            uint32_t after = (uint32_t)re->n;
            re->inst[split].x = greedy ? body : after;
            re->inst[split].y = greedy ? after : body;
        } else {
            uint32_t split = emit(re, OP_SPLIT, 0, 0);
            uint32_t body = (uint32_t)re->n;
            compile_node(p, kid);
            if (rep == '*')
                emit(re, OP_JMP, split, 0);
            uint32_t after = (uint32_t)re->n;
            re->inst[split].x = greedy ? body : after;
            re->inst[split].y = greedy ? after : body;
        }
        break;
    }
    }
}

int goregex_compile(const char *expr, size_t len, struct goregex **ret, char **ret_errmsg)
{
    *ret = NULL;
    *ret_errmsg = NULL;
    for (size_t i = 0, w; i < len; i += w) {
        if (uni_decode(expr + i, len - i, &w) == UNI_ERROR && w == 1) {
            *ret_errmsg = xstrdup("error parsing regexp: invalid UTF-8");
            return -1;
        }
    }
    struct parser p = {.s = expr, .len = len};
    p.re = xcalloc(1, sizeof(*p.re));
    size_t root;
    int r = parse_alt(&p, 0, &root);
    if (r == 0 && !at_end(&p))
        r = fail(&p, "unexpected )", 0, p.len);
    if (r == 0) {
        compile_node(&p, root);
        emit(p.re, OP_MATCH, 0, 0);
        *ret = p.re;
        p.re = NULL;
    } else {
        *ret_errmsg = p.err;
        p.err = NULL;
    }
    for (size_t i = 0; i < p.nnodes; i++)
        free(p.nodes[i].kids);
    free(p.nodes);
    free(p.err);
    goregex_free(p.re);
    return r;
}

/* ---- matcher ---------------------------------------------------------------------- */

struct bt {
    const struct goregex *re;
    const char *s;
    size_t len;
    uint64_t *visited;
    size_t nbits;
    uint64_t local[64];
    uint32_t *touched; /* set bits, for cheap clearing between searches */
    size_t ntouched, captouched;
    bool track;
    uint32_t *stack; /* (pc, pos) pairs */
    size_t nstack, capstack;
};

static void bt_init(struct bt *b, const struct goregex *re, const char *s, size_t len, bool track)
{
    memset(b, 0, sizeof(*b));
    b->re = re;
    b->s = s;
    b->len = len;
    b->track = track;
    b->nbits = re->n * (len + 1);
    size_t words = (b->nbits + 63) / 64;
    if (words <= sizeof(b->local) / sizeof(b->local[0]))
        b->visited = b->local;
    else
        b->visited = xcalloc(words, sizeof(uint64_t));
}

static void bt_done(struct bt *b)
{
    if (b->visited != b->local)
        free(b->visited);
    free(b->touched);
    free(b->stack);
}

static void bt_reset(struct bt *b)
{
    for (size_t i = 0; i < b->ntouched; i++)
        b->visited[b->touched[i] / 64] &= ~(UINT64_C(1) << (b->touched[i] % 64));
    b->ntouched = 0;
}

static bool is_word(uint32_t r)
{
    return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || r == '_';
}

static bool assert_holds(const struct bt *b, uint8_t as, size_t pos)
{
    size_t w;
    switch (as) {
    case AS_BEGIN:
        return pos == 0;
    case AS_END:
        return pos == b->len;
    default: {
        bool before = pos > 0 && is_word(uni_decode_last(b->s, pos, &w));
        bool after = pos < b->len && is_word(uni_decode(b->s + pos, b->len - pos, &w));
        return (before != after) == (as == AS_WORDB);
    }
    }
}

static void push(struct bt *b, uint32_t pc, size_t pos)
{
    XGROW(b->stack, b->capstack, b->nstack + 2);
    b->stack[b->nstack++] = pc;
    b->stack[b->nstack++] = (uint32_t)pos;
}

static ssize_t bt_try(struct bt *b, size_t start)
{
    const struct inst *prog = b->re->inst;
    size_t n = b->re->n;
    b->nstack = 0;
    push(b, 0, start);
    while (b->nstack) {
        size_t pos = b->stack[--b->nstack];
        uint32_t pc = b->stack[--b->nstack];
        for (;;) {
            size_t key = pos * n + pc;
            uint64_t bit = UINT64_C(1) << (key % 64);
            if (b->visited[key / 64] & bit)
                break;
            b->visited[key / 64] |= bit;
            if (b->track) {
                XGROW(b->touched, b->captouched, b->ntouched + 1);
                b->touched[b->ntouched++] = (uint32_t)key;
            }
            const struct inst *in = &prog[pc];
            size_t w;
            uint32_t r;
            switch (in->op) {
            case OP_RUNE:
            case OP_NOTRUNE:
            case OP_CLASS:
            case OP_ANYNL:
                if (pos >= b->len)
                    goto fail;
                r = uni_decode(b->s + pos, b->len - pos, &w);
                if (in->op == OP_RUNE ? r != in->x
                    : in->op == OP_NOTRUNE ? r == in->x
                    : in->op == OP_ANYNL ? r == '\n'
                    : !cls_has(&b->re->cls[in->x], r))
                    goto fail;
                pos += w;
                pc++;
                continue;
            case OP_SPLIT:
                push(b, in->y, pos);
                pc = in->x;
                continue;
            case OP_JMP:
                pc = in->x;
                continue;
            case OP_ASSERT:
                if (!assert_holds(b, in->as, pos))
                    goto fail;
                pc++;
                continue;
            case OP_MATCH:
                return (ssize_t)pos;
            }
        fail:
            break;
        }
    }
    return -1;
}

/* ---- NFA simulation (Pike VM), for inputs too long for the backtracker ---- */

/* The backtracker's visited set costs one bit per (instruction, position);
 * above this many bits the NFA simulation runs instead, as Go does.  Both give
 * the same leftmost-first answer. */
#define MAX_BACKTRACK_BITS (UINT64_C(1) << 22)

struct thread {
    uint32_t pc;
    size_t start;
};

struct tlist {
    struct thread *t;
    size_t n;
    uint32_t *mark; /* generation per instruction: already in this list */
    uint32_t gen;
    size_t cap;
};

struct pike {
    const struct goregex *re;
    const char *s;
    size_t len;
    struct tlist a, b;
    uint32_t *stack;
    size_t nstack, capstack;
};

static void tlist_init(struct tlist *l, size_t n)
{
    l->t = xcalloc(n + 1, sizeof(*l->t));
    l->mark = xcalloc(n + 1, sizeof(*l->mark));
    l->n = 0;
    l->gen = 1;
    l->cap = n + 1;
}

static void tlist_clear(struct tlist *l)
{
    l->n = 0;
    if (++l->gen == 0) {
        memset(l->mark, 0, sizeof(*l->mark) * l->cap);
        l->gen = 1;
    }
}

/* Adds the thread at pc and everything reachable from it without consuming
 * input, in priority order. */
static void add_thread(struct pike *p, struct tlist *l, uint32_t pc0, size_t pos, size_t start)
{
    struct bt ctx = {.re = p->re, .s = p->s, .len = p->len};
    p->nstack = 0;
    XGROW(p->stack, p->capstack, 1);
    p->stack[p->nstack++] = pc0;
    while (p->nstack) {
        uint32_t pc = p->stack[--p->nstack];
        if (l->mark[pc] == l->gen)
            continue;
        l->mark[pc] = l->gen;
        const struct inst *in = &p->re->inst[pc];
        switch (in->op) {
        case OP_JMP:
            XGROW(p->stack, p->capstack, p->nstack + 1);
            p->stack[p->nstack++] = in->x;
            break;
        case OP_SPLIT:
            XGROW(p->stack, p->capstack, p->nstack + 2);
            p->stack[p->nstack++] = in->y;
            p->stack[p->nstack++] = in->x;
            break;
        case OP_ASSERT:
            if (assert_holds(&ctx, in->as, pos)) {
                XGROW(p->stack, p->capstack, p->nstack + 1);
                p->stack[p->nstack++] = pc + 1;
            }
            break;
        default:
            l->t[l->n++] = (struct thread){pc, start};
            break;
        }
    }
}

static bool pike_run(const struct goregex *re, const char *s, size_t len, size_t from,
                     bool anchored, size_t *ret_start, size_t *ret_end)
{
    struct pike p = {.re = re, .s = s, .len = len};
    tlist_init(&p.a, re->n);
    tlist_init(&p.b, re->n);
    struct tlist *cl = &p.a, *nl = &p.b;
    bool matched = false;
    for (size_t pos = from;;) {
        if (!matched && (!anchored || pos == from))
            add_thread(&p, cl, 0, pos, pos);
        if (cl->n == 0 && (matched || anchored || pos >= len))
            break;
        size_t w = 0;
        uint32_t r = UINT32_MAX;
        if (pos < len)
            r = uni_decode(s + pos, len - pos, &w);
        tlist_clear(nl);
        for (size_t i = 0; i < cl->n; i++) {
            const struct thread *t = &cl->t[i];
            const struct inst *in = &re->inst[t->pc];
            bool ok;
            switch (in->op) {
            case OP_MATCH:
                matched = true;
                *ret_start = t->start;
                *ret_end = pos;
                i = cl->n; /* lower-priority threads lose */
                continue;
            case OP_RUNE:
                ok = r == in->x;
                break;
            case OP_NOTRUNE:
                ok = r != UINT32_MAX && r != in->x;
                break;
            case OP_ANYNL:
                ok = r != UINT32_MAX && r != '\n';
                break;
            case OP_CLASS:
                ok = r != UINT32_MAX && cls_has(&re->cls[in->x], r);
                break;
            default:
                ok = false;
                break;
            }
            if (ok)
                add_thread(&p, nl, t->pc + 1, pos + w, t->start);
        }
        struct tlist *tmp = cl;
        cl = nl;
        nl = tmp;
        tlist_clear(nl);
        if (pos >= len)
            break;
        pos += w;
    }
    free(p.a.t);
    free(p.a.mark);
    free(p.b.t);
    free(p.b.mark);
    free(p.stack);
    return matched;
}

static bool use_backtrack(const struct goregex *re, size_t len)
{
    return (uint64_t)re->n * (len + 1) <= MAX_BACKTRACK_BITS;
}

ssize_t goregex_match_at(const struct goregex *re, const char *s, size_t len, size_t start)
{
    if (!use_backtrack(re, len)) {
        size_t a, e;
        return pike_run(re, s, len, start, true, &a, &e) ? (ssize_t)e : -1;
    }
    struct bt b;
    bt_init(&b, re, s, len, false);
    ssize_t r = bt_try(&b, start);
    bt_done(&b);
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    size_t a2, e2; /* both engines must agree */
    bool m2 = pike_run(re, s, len, start, true, &a2, &e2);
    if (m2 != (r >= 0) || (m2 && (ssize_t)e2 != r))
        abort();
#endif
    return r;
}

static bool search(struct bt *b, size_t from, size_t *ret_start, size_t *ret_end)
{
    for (size_t pos = from;;) {
        ssize_t e = bt_try(b, pos);
        if (e >= 0) {
            *ret_start = pos;
            *ret_end = (size_t)e;
            return true;
        }
        if (pos >= b->len)
            return false;
        size_t w;
        uni_decode(b->s + pos, b->len - pos, &w);
        pos += w;
    }
}

bool goregex_search(const struct goregex *re, const char *s, size_t len, size_t from,
                    size_t *ret_start, size_t *ret_end)
{
    if (!use_backtrack(re, len))
        return pike_run(re, s, len, from, false, ret_start, ret_end);
    struct bt b;
    bt_init(&b, re, s, len, false);
    bool r = search(&b, from, ret_start, ret_end);
    bt_done(&b);
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    size_t a2, e2; /* both engines must agree */
    bool m2 = pike_run(re, s, len, from, false, &a2, &e2);
    if (m2 != r || (r && (a2 != *ret_start || e2 != *ret_end)))
        abort();
#endif
    return r;
}

bool goregex_match_string(const struct goregex *re, const char *s, size_t len)
{
    size_t a, e;
    return goregex_search(re, s, len, 0, &a, &e);
}

/* Go's Regexp.expand for a program without capture groups: $$ is a dollar,
 * $0 / ${0} the whole match, any other valid $name or ${name} expands to
 * nothing, and a malformed one is kept as text. */
static void expand_template(struct strbuf *out, const char *t, size_t tlen, const char *m,
                            size_t mlen)
{
    size_t i = 0;
    while (i < tlen) {
        const char *d = memchr(t + i, '$', tlen - i);
        if (!d) {
            strbuf_add(out, t + i, tlen - i);
            return;
        }
        strbuf_add(out, t + i, (size_t)(d - (t + i)));
        i = (size_t)(d - t) + 1;
        if (i < tlen && t[i] == '$') {
            strbuf_addc(out, '$');
            i++;
            continue;
        }
        size_t j = i;
        bool brace = j < tlen && t[j] == '{';
        if (brace)
            j++;
        size_t name = j, w;
        while (j < tlen) {
            uint32_t r = uni_decode(t + j, tlen - j, &w);
            if (!uni_is_letter(r) && !uni_is_digit(r) && r != '_')
                break;
            j += w;
        }
        size_t nlen = j - name;
        if (nlen == 0 || (brace && (j >= tlen || t[j] != '}'))) {
            strbuf_addc(out, '$');
            continue;
        }
        if (brace)
            j++;
        /* Only group 0 exists: "0" alone names it. */
        if (nlen == 1 && t[name] == '0')
            strbuf_add(out, m, mlen);
        i = j;
    }
}

char *goregex_replace_all_string(const struct goregex *re, const char *src, size_t len,
                                 const char *repl, size_t repl_len, size_t max,
                                 size_t *ret_len)
{
    bool bt = use_backtrack(re, len);
    struct bt b;
    if (bt)
        bt_init(&b, re, src, len, true);
    struct strbuf out = STRBUF_INIT;
    strbuf_init(&out);
    size_t last_end = 0, search_pos = 0, a, e;
    bool too_long = false;
    while (search_pos <= len) {
        if (bt)
            bt_reset(&b);
        if (!(bt ? search(&b, search_pos, &a, &e)
                 : pike_run(re, src, len, search_pos, false, &a, &e)))
            break;
        strbuf_add(&out, src + last_end, a - last_end);
        /* No replacement for an empty match right after a previous match. */
        if (e > last_end || a == 0)
            expand_template(&out, repl, repl_len, src + a, e - a);
        last_end = e;
        size_t w = 0;
        if (search_pos < len)
            uni_decode(src + search_pos, len - search_pos, &w);
        if (search_pos + w > e)
            search_pos += w;
        else if (search_pos + 1 > e)
            search_pos++;
        else
            search_pos = e;
        if (out.len > max) {
            too_long = true;
            break;
        }
    }
    if (bt)
        bt_done(&b);
    if (!too_long)
        strbuf_add(&out, src + last_end, len - last_end);
    if (too_long || out.len > max) {
        strbuf_release(&out);
        return NULL;
    }
    return strbuf_detach(&out, ret_len);
}
