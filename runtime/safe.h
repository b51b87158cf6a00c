/* String building for code that runs between clone() and exec(): the
 * container's init and the payload before exec.  They come from a raw clone
 * of a process that may have other threads, so they must not allocate or
 * take libc locks (no malloc, no stdio); these helpers only touch the
 * caller's buffer. */
#ifndef KILN_RUNTIME_SAFE_H
#define KILN_RUNTIME_SAFE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A fixed buffer, always NUL-terminated; `truncated` is set when something
 * did not fit. */
struct sbuf {
    char *p;
    size_t cap, len;
    bool truncated;
};

static inline void sb_init(struct sbuf *b, char *p, size_t cap)
{
    b->p = p;
    b->cap = cap;
    b->len = 0;
    b->truncated = false;
    if (cap)
        p[0] = '\0';
}

static inline void sb_mem(struct sbuf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (b->len + 1 >= b->cap) {
            b->truncated = true;
            break;
        }
        b->p[b->len++] = s[i];
    }
    if (b->cap)
        b->p[b->len] = '\0';
}

static inline void sb_str(struct sbuf *b, const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    sb_mem(b, s, n);
}

static inline void sb_chr(struct sbuf *b, char c)
{
    sb_mem(b, &c, 1);
}

static inline void sb_u64(struct sbuf *b, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        sb_chr(b, tmp[--n]);
}

static inline void sb_i64(struct sbuf *b, int64_t v)
{
    if (v < 0) {
        sb_chr(b, '-');
        sb_u64(b, (uint64_t)0 - (uint64_t)v);
    } else {
        sb_u64(b, (uint64_t)v);
    }
}

static inline size_t safe_strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

static inline int safe_strcmp(const char *a, const char *b)
{
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return (unsigned char)*a - (unsigned char)*b;
}

static inline bool safe_startswith(const char *s, const char *prefix)
{
    while (*prefix)
        if (*s++ != *prefix++)
            return false;
    return true;
}

/* Parses a decimal number of at most 10 digits ending at *end. */
static inline bool safe_parse_u32(const char *s, const char **end, uint32_t *ret)
{
    uint64_t v = 0;
    size_t n = 0;
    while (s[n] >= '0' && s[n] <= '9' && n < 11) {
        v = v * 10 + (uint64_t)(s[n] - '0');
        n++;
    }
    if (n == 0 || n > 10 || v > UINT32_MAX)
        return false;
    *ret = (uint32_t)v;
    if (end)
        *end = s + n;
    return true;
}

#endif
