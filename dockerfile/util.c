/* Small helpers of the Dockerfile reader: the allocation pool, UTF-8 the way
 * Go decodes it, Go's case folding and white space, "did you mean". */
#include "dockerfile/internal.h"

#include <ctype.h>
#include <locale.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

#include "dockerfile/ast.h"
#include "dockerfile/unicode.h"
#include "lib/xalloc.h"

/* ---- pool ---------------------------------------------------------------- */

struct df_pool *pool_new(void)
{
    return xcalloc(1, sizeof(struct df_pool));
}

void pool_free(struct df_pool *pool)
{
    if (!pool)
        return;
    for (size_t i = 0; i < pool->n; i++)
        free(pool->ptrs[i]);
    free(pool->ptrs);
    free(pool);
}

void *pool_adopt(struct df_pool *pool, void *p)
{
    if (!p)
        return NULL;
    if (pool->n == pool->cap)
        XGROW(pool->ptrs, pool->cap, pool->n + 1);
    pool->ptrs[pool->n++] = p;
    return p;
}

void *pool_alloc(struct df_pool *pool, size_t n)
{
    return pool_adopt(pool, xcalloc(1, n ? n : 1));
}

char *pool_strndup(struct df_pool *pool, const char *s, size_t n)
{
    char *p = pool_alloc(pool, n + 1);
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *pool_strdup(struct df_pool *pool, const char *s)
{
    return pool_strndup(pool, s, strlen(s));
}

char **pool_strv(struct df_pool *pool, char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    char **out = pool_alloc(pool, (n + 1) * sizeof(char *));
    for (size_t i = 0; i < n; i++)
        out[i] = pool_strdup(pool, v[i]);
    return out;
}


void utf8_encode(struct strbuf *sb, uint32_t r)
{
    char b[4];
    if (r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF))
        r = RUNE_ERROR;
    if (r < 0x80) {
        strbuf_addc(sb, (char)r);
    } else if (r < 0x800) {
        b[0] = (char)(0xC0 | (r >> 6));
        b[1] = (char)(0x80 | (r & 0x3F));
        strbuf_add(sb, b, 2);
    } else if (r < 0x10000) {
        b[0] = (char)(0xE0 | (r >> 12));
        b[1] = (char)(0x80 | ((r >> 6) & 0x3F));
        b[2] = (char)(0x80 | (r & 0x3F));
        strbuf_add(sb, b, 3);
    } else {
        b[0] = (char)(0xF0 | (r >> 18));
        b[1] = (char)(0x80 | ((r >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((r >> 6) & 0x3F));
        b[3] = (char)(0x80 | (r & 0x3F));
        strbuf_add(sb, b, 4);
    }
}

bool rune_is_space(uint32_t r)
{
    if (r < 0x100)
        return r == ' ' || (r >= '\t' && r <= '\r') || r == 0x85 || r == 0xA0;
    return r == 0x1680 || (r >= 0x2000 && r <= 0x200A) || r == 0x2028 || r == 0x2029 ||
           r == 0x202F || r == 0x205F || r == 0x3000;
}

size_t utf8_space_prefix(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            if (!(c == ' ' || (c >= '\t' && c <= '\r')))
                break;
            i++;
            continue;
        }
        size_t w;
        uint32_t r = utf8_decode(s + i, n - i, &w);
        if (!rune_is_space(r) || (r == RUNE_ERROR && w == 1))
            break;
        i += w;
    }
    return i;
}

size_t utf8_trim_right_len(const char *s, size_t n)
{
    while (n > 0) {
        unsigned char c = (unsigned char)s[n - 1];
        if (c < 0x80) {
            if (!(c == ' ' || (c >= '\t' && c <= '\r')))
                break;
            n--;
            continue;
        }
        /* Find the start of the last rune (at most 4 bytes back). */
        size_t start = n - 1;
        while (start > 0 && n - start < 4 && ((unsigned char)s[start] & 0xC0) == 0x80)
            start--;
        size_t w;
        uint32_t r = utf8_decode(s + start, n - start, &w);
        if (start + w != n || !rune_is_space(r))
            break;
        n = start;
    }
    return n;
}

static locale_t utf8_locale;
static pthread_once_t utf8_locale_once = PTHREAD_ONCE_INIT;

static void utf8_locale_init(void)
{
    utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

static uint32_t rune_to_lower(uint32_t r)
{
    if (r < 0x80)
        return (r >= 'A' && r <= 'Z') ? r + 32 : r;
    pthread_once(&utf8_locale_once, utf8_locale_init);
    if (utf8_locale)
        return (uint32_t)towlower_l((wint_t)r, utf8_locale);
    /* Without a UTF-8 locale, the two mappings that reach ASCII. */
    if (r == 0x130)
        return 'i';
    if (r == 0x212A)
        return 'k';
    return r;
}

bool rune_is_print(uint32_t r)
{
    /* Go's strconv.IsPrint: letters, marks, numbers, punctuation, symbols
     * and the ASCII space. */
    if (r < 0x80)
        return r >= 0x20 && r < 0x7F;
    static const char groups[] = "LMNPS";
    for (size_t i = 0; i < sizeof(groups) - 1; i++)
        if (uni_in_category(r, groups + i, 1))
            return true;
    return false;
}

void go_to_lower(struct strbuf *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            strbuf_addc(out, (char)((c >= 'A' && c <= 'Z') ? c + 32 : c));
            i++;
            continue;
        }
        size_t w;
        uint32_t r = utf8_decode(s + i, n - i, &w);
        utf8_encode(out, r == RUNE_ERROR ? RUNE_ERROR : rune_to_lower(r));
        i += w;
    }
}

static const char *const kind_names[DF_KIND_COUNT] = {
    [DF_UNKNOWN] = "",          [DF_ADD] = "ADD",
    [DF_ARG] = "ARG",           [DF_CMD] = "CMD",
    [DF_COPY] = "COPY",         [DF_ENTRYPOINT] = "ENTRYPOINT",
    [DF_ENV] = "ENV",           [DF_EXPOSE] = "EXPOSE",
    [DF_FROM] = "FROM",         [DF_HEALTHCHECK] = "HEALTHCHECK",
    [DF_LABEL] = "LABEL",       [DF_MAINTAINER] = "MAINTAINER",
    [DF_ONBUILD] = "ONBUILD",   [DF_RUN] = "RUN",
    [DF_SHELL] = "SHELL",       [DF_STOPSIGNAL] = "STOPSIGNAL",
    [DF_USER] = "USER",         [DF_VOLUME] = "VOLUME",
    [DF_WORKDIR] = "WORKDIR",
};

const char *df_kind_name(enum df_kind kind)
{
    if ((int)kind < 0 || kind >= DF_KIND_COUNT)
        return "";
    return kind_names[kind];
}

int df_kind_lookup(const char *keyword, size_t n)
{
    /* The longest keyword has 11 letters; lower-casing shrinks a rune to at
     * most a third of its bytes. */
    if (n == 0 || n > 40)
        return DF_UNKNOWN;
    char buf[16];
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)keyword[i];
        uint32_t r;
        size_t w = 1;
        if (c < 0x80)
            r = c;
        else
            r = utf8_decode(keyword + i, n - i, &w);
        r = rune_to_lower(r);
        if (r < 'a' || r > 'z' || k >= sizeof(buf) - 1)
            return DF_UNKNOWN;
        buf[k++] = (char)r;
        i += w;
    }
    buf[k] = '\0';
    for (int kind = 1; kind < DF_KIND_COUNT; kind++) {
        const char *name = kind_names[kind];
        if (strlen(name) != k)
            continue;
        size_t j = 0;
        while (j < k && tolower((unsigned char)name[j]) == buf[j])
            j++;
        if (j == k)
            return kind;
    }
    return DF_UNKNOWN;
}

/* ---- suggestions ------------------------------------------------------- */

size_t df_edit_distance(const char *a, const char *b, size_t cap)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 256 || lb > 256)
        return cap + 1;
    if ((la > lb ? la - lb : lb - la) > cap)
        return cap + 1;
    size_t prev[257], cur[257];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        size_t row_min = cur[0];
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]) ? 0 : 1;
            size_t v = prev[j - 1] + cost;
            if (prev[j] + 1 < v)
                v = prev[j] + 1;
            if (cur[j - 1] + 1 < v)
                v = cur[j - 1] + 1;
            cur[j] = v;
            if (v < row_min)
                row_min = v;
        }
        if (row_min > cap)
            return cap + 1;
        memcpy(prev, cur, (lb + 1) * sizeof(size_t));
    }
    return prev[lb] > cap ? cap + 1 : prev[lb];
}

const char *df_suggest(const char *word, const char *const *candidates, size_t n)
{
    const char *best = NULL;
    size_t best_d = 3;
    size_t len = strlen(word);
    for (size_t i = 0; i < n; i++) {
        size_t d = df_edit_distance(word, candidates[i], 2);
        if (d < best_d && d < len) {
            best = candidates[i];
            best_d = d;
        }
    }
    return best;
}
