#include "gopath.h"

#include <stdint.h>
#include <string.h>

#include "dockerfile/unicode.h"
#include "lib/xalloc.h"

char *gopath_clean(const char *path, size_t n)
{
    if (n == 0)
        return xstrdup(".");
    bool rooted = path[0] == '/';
    /* out never grows past n bytes (+1 for the NUL, +1 for "." results) */
    char *out = xmalloc(n + 2);
    size_t w = 0, r = 0, dotdot = 0;
    if (rooted) {
        out[w++] = '/';
        r = 1;
        dotdot = 1;
    }
    while (r < n) {
        if (path[r] == '/') {
            r++;
        } else if (path[r] == '.' && (r + 1 == n || path[r + 1] == '/')) {
            r++;
        } else if (path[r] == '.' && path[r + 1] == '.' && (r + 2 == n || path[r + 2] == '/')) {
            r += 2;
            if (w > dotdot) {
                /* back up to the previous separator */
                w--;
                while (w > dotdot && out[w] != '/')
                    w--;
            } else if (!rooted) {
                if (w > 0)
                    out[w++] = '/';
                out[w++] = '.';
                out[w++] = '.';
                dotdot = w;
            }
        } else {
            if ((rooted && w != 1) || (!rooted && w != 0))
                out[w++] = '/';
            for (; r < n && path[r] != '/'; r++)
                out[w++] = path[r];
        }
    }
    if (w == 0)
        out[w++] = '.';
    out[w] = '\0';
    return out;
}

/* Splits off the leading stars and the chunk up to the next unbracketed
 * star (Go's scanChunk). */
static void scan_chunk(const char **pat, size_t *plen, bool *star, const char **chunk,
                       size_t *clen)
{
    const char *p = *pat;
    size_t n = *plen;
    *star = false;
    while (n > 0 && p[0] == '*') {
        p++;
        n--;
        *star = true;
    }
    bool inrange = false;
    size_t i;
    for (i = 0; i < n; i++) {
        char c = p[i];
        if (c == '\\') {
            if (i + 1 < n)
                i++;
        } else if (c == '[') {
            inrange = true;
        } else if (c == ']') {
            inrange = false;
        } else if (c == '*' && !inrange) {
            break;
        }
    }
    *chunk = p;
    *clen = i;
    *pat = p + i;
    *plen = n - i;
}

/* Go's getEsc: one possibly escaped rune of a class. */
static int get_esc(const char **chunk, size_t *clen, uint32_t *ret)
{
    const char *c = *chunk;
    size_t n = *clen;
    if (n == 0 || c[0] == '-' || c[0] == ']')
        return -1;
    if (c[0] == '\\') {
        c++;
        n--;
        if (n == 0)
            return -1;
    }
    size_t w;
    uint32_t r = uni_decode(c, n, &w);
    if (r == UNI_ERROR && w == 1)
        return -1;
    c += w;
    n -= w;
    if (n == 0)
        return -1;
    *ret = r;
    *chunk = c;
    *clen = n;
    return 0;
}

/* Go's matchChunk: 1 matched (rest of name in *rest), 0 not, -1 bad pattern.
 * After a failure the chunk is still parsed, to report malformed patterns. */
static int match_chunk(const char *chunk, size_t clen, const char *s, size_t slen,
                       const char **rest, size_t *rest_len)
{
    bool failed = false;
    while (clen > 0) {
        if (!failed && slen == 0)
            failed = true;
        switch (chunk[0]) {
        case '[': {
            uint32_t r = 0;
            if (!failed) {
                size_t w;
                r = uni_decode(s, slen, &w);
                s += w;
                slen -= w;
            }
            chunk++;
            clen--;
            bool negated = false;
            if (clen > 0 && chunk[0] == '^') {
                negated = true;
                chunk++;
                clen--;
            }
            bool match = false;
            int nrange = 0;
            for (;;) {
                if (clen > 0 && chunk[0] == ']' && nrange > 0) {
                    chunk++;
                    clen--;
                    break;
                }
                uint32_t lo, hi;
                if (get_esc(&chunk, &clen, &lo) < 0)
                    return -1;
                hi = lo;
                if (chunk[0] == '-') {
                    chunk++;
                    clen--;
                    if (get_esc(&chunk, &clen, &hi) < 0)
                        return -1;
                }
                if (lo <= r && r <= hi)
                    match = true;
                nrange++;
            }
            if (match == negated)
                failed = true;
            break;
        }
        case '?':
            if (!failed) {
                if (s[0] == '/')
                    failed = true;
                size_t w;
                uni_decode(s, slen, &w);
                s += w;
                slen -= w;
            }
            chunk++;
            clen--;
            break;
        case '\\':
            chunk++;
            clen--;
            if (clen == 0)
                return -1;
            /* fallthrough */
        default:
            if (!failed) {
                if (chunk[0] != s[0])
                    failed = true;
                s++;
                slen--;
            }
            chunk++;
            clen--;
            break;
        }
    }
    if (failed)
        return 0;
    *rest = s;
    *rest_len = slen;
    return 1;
}

int gopath_match(const char *pattern, size_t plen, const char *name, size_t nlen)
{
    while (plen > 0) {
        bool star;
        const char *chunk;
        size_t clen;
        scan_chunk(&pattern, &plen, &star, &chunk, &clen);
        if (star && clen == 0)
            return memchr(name, '/', nlen) ? GOMATCH_NO : GOMATCH_YES;
        const char *t;
        size_t tlen;
        int ok = match_chunk(chunk, clen, name, nlen, &t, &tlen);
        if (ok == 1 && (tlen == 0 || plen > 0)) {
            name = t;
            nlen = tlen;
            continue;
        }
        if (ok < 0)
            return GOMATCH_BAD_PATTERN;
        if (star) {
            bool found = false;
            for (size_t i = 0; i < nlen && name[i] != '/'; i++) {
                ok = match_chunk(chunk, clen, name + i + 1, nlen - i - 1, &t, &tlen);
                if (ok == 1) {
                    if (plen == 0 && tlen > 0)
                        continue;
                    name = t;
                    nlen = tlen;
                    found = true;
                    break;
                }
                if (ok < 0)
                    return GOMATCH_BAD_PATTERN;
            }
            if (found)
                continue;
        }
        /* Before reporting a mismatch, make sure the rest is well formed. */
        while (plen > 0) {
            scan_chunk(&pattern, &plen, &star, &chunk, &clen);
            if (match_chunk(chunk, clen, "", 0, &t, &tlen) < 0)
                return GOMATCH_BAD_PATTERN;
        }
        return GOMATCH_NO;
    }
    return nlen == 0 ? GOMATCH_YES : GOMATCH_NO;
}

bool gopath_has_wildcards(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '*' || s[i] == '?' || s[i] == '[')
            return true;
    }
    return false;
}
