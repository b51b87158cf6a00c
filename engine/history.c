#include "engine/history.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dockerfile/dockerfile.h"
#include "lib/xalloc.h"

void go_quote_strv(struct strbuf *out, char *const *v)
{
    strbuf_addc(out, '[');
    for (size_t i = 0; v && v[i]; i++) {
        if (i)
            strbuf_addc(out, ' ');
        dockerfile_go_quote(out, v[i], strlen(v[i]));
    }
    strbuf_addc(out, ']');
}

void go_plain_strv(struct strbuf *out, char *const *v)
{
    strbuf_addc(out, '[');
    for (size_t i = 0; v && v[i]; i++) {
        if (i)
            strbuf_addc(out, ' ');
        strbuf_adds(out, v[i]);
    }
    strbuf_addc(out, ']');
}

void go_quote_rune(struct strbuf *out, int64_t r)
{
    if (r < 0 || r > 0x10ffff || (r >= 0xd800 && r <= 0xdfff))
        r = 0xfffd; /* utf8.RuneError */
    strbuf_addc(out, '\'');
    switch (r) {
    case '\a':
        strbuf_adds(out, "\\a");
        break;
    case '\b':
        strbuf_adds(out, "\\b");
        break;
    case '\f':
        strbuf_adds(out, "\\f");
        break;
    case '\n':
        strbuf_adds(out, "\\n");
        break;
    case '\r':
        strbuf_adds(out, "\\r");
        break;
    case '\t':
        strbuf_adds(out, "\\t");
        break;
    case '\v':
        strbuf_adds(out, "\\v");
        break;
    case '\\':
        strbuf_adds(out, "\\\\");
        break;
    case '\'':
        strbuf_adds(out, "\\'");
        break;
    default:
        if (r < 0x20 || r == 0x7f) {
            strbuf_addf(out, "\\x%02x", (unsigned)r);
        } else if (r < 0x7f) {
            strbuf_addc(out, (char)r);
        } else if (r < 0xa0) {
            strbuf_addf(out, "\\u%04x", (unsigned)r); /* C1 controls */
        } else {
            /* UTF-8 */
            char b[4];
            size_t n;
            if (r < 0x800) {
                b[0] = (char)(0xc0 | (r >> 6));
                b[1] = (char)(0x80 | (r & 0x3f));
                n = 2;
            } else if (r < 0x10000) {
                b[0] = (char)(0xe0 | (r >> 12));
                b[1] = (char)(0x80 | ((r >> 6) & 0x3f));
                b[2] = (char)(0x80 | (r & 0x3f));
                n = 3;
            } else {
                b[0] = (char)(0xf0 | (r >> 18));
                b[1] = (char)(0x80 | ((r >> 12) & 0x3f));
                b[2] = (char)(0x80 | ((r >> 6) & 0x3f));
                b[3] = (char)(0x80 | (r & 0x3f));
                n = 4;
            }
            strbuf_add(out, b, n);
        }
    }
    strbuf_addc(out, '\'');
}

/* Appends a fraction: v / 10^digits with trailing zeros removed. */
static void add_frac(struct strbuf *out, uint64_t v, int digits)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%0*" PRIu64, digits, v);
    size_t n = strlen(buf);
    while (n > 0 && buf[n - 1] == '0')
        buf[--n] = '\0';
    if (n) {
        strbuf_addc(out, '.');
        strbuf_adds(out, buf);
    }
}

void go_duration(struct strbuf *out, int64_t ns)
{
    uint64_t u = ns < 0 ? (uint64_t)(-ns) : (uint64_t)ns;
    if (ns < 0)
        strbuf_addc(out, '-');
    if (u == 0) {
        strbuf_adds(out, "0s");
        return;
    }
    if (u < 1000000000ULL) {
        /* sub-second: ns, µs or ms with a fraction */
        if (u < 1000) {
            strbuf_addf(out, "%" PRIu64 "ns", u);
        } else if (u < 1000000) {
            strbuf_addf(out, "%" PRIu64, u / 1000);
            add_frac(out, u % 1000, 3);
            strbuf_adds(out, "\xc2\xb5s");
        } else {
            strbuf_addf(out, "%" PRIu64, u / 1000000);
            add_frac(out, u % 1000000, 6);
            strbuf_adds(out, "ms");
        }
        return;
    }
    uint64_t secs = u / 1000000000ULL, frac = u % 1000000000ULL;
    uint64_t h = secs / 3600, m = (secs / 60) % 60, s = secs % 60;
    if (h)
        strbuf_addf(out, "%" PRIu64 "h", h);
    if (h || m)
        strbuf_addf(out, "%" PRIu64 "m", m);
    strbuf_addf(out, "%" PRIu64, s);
    add_frac(out, frac, 9);
    strbuf_addc(out, 's');
}

void history_add(struct image_config *c, const char *created_by, bool with_layer,
                 const char *created)
{
    image_config_add_history(c, created, created_by, HISTORY_COMMENT, !with_layer);
}

void history_fill_created(struct image_config *c, size_t first_new)
{
    (void)first_new;
    /* the first layer time after the first entry without one (or the last) */
    const char *created = NULL;
    bool gap = false;
    for (size_t i = 0; i < c->n_history; i++) {
        if (c->history[i].created) {
            created = c->history[i].created;
            if (gap)
                break;
        } else {
            gap = true;
        }
    }
    gap = false;
    for (size_t i = 0; i < c->n_history; i++) {
        struct history_entry *h = &c->history[i];
        if (h->created) {
            if (gap)
                created = h->created;
        } else {
            gap = true;
            if (created)
                h->created = xstrdup(created);
        }
    }
    if (c->n_history && c->history[c->n_history - 1].created) {
        free(c->created);
        c->created = xstrdup(c->history[c->n_history - 1].created);
    }
}

void history_clamp_created(struct image_config *c, int64_t epoch)
{
    for (size_t i = 0; i < c->n_history; i++) {
        struct history_entry *h = &c->history[i];
        int64_t t = h->created ? rfc3339_parse(h->created) : -1;
        if (!h->created || t < 0 || t > epoch ||
            (t == epoch && strchr(h->created, '.'))) {
            free(h->created);
            h->created = rfc3339_time(epoch);
        }
    }
}
