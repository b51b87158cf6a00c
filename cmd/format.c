#include "cmd/format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "layers/image.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

/* go-units' HumanSizeWithPrecision: divide by 1000 while >= 1000, then %.*g. */
static char *size_with_precision(uint64_t bytes, int prec)
{
    static const char *const units[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
    double v = (double)bytes;
    size_t u = 0;
    while (v >= 1000.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1000.0;
        u++;
    }
    return xasprintf("%.*g%s", prec, v, units[u]);
}

char *format_size(uint64_t bytes)
{
    return size_with_precision(bytes, 3);
}

char *format_size4(uint64_t bytes)
{
    return size_with_precision(bytes, 4);
}

char *format_duration(int64_t s)
{
    if (s < 1)
        return xstrdup("Less than a second");
    if (s == 1)
        return xstrdup("1 second");
    if (s < 60)
        return xasprintf("%lld seconds", (long long)s);
    int64_t m = s / 60;
    if (m == 1)
        return xstrdup("About a minute");
    if (m < 60)
        return xasprintf("%lld minutes", (long long)m);
    int64_t h = (s + 1800) / 3600; /* rounded, as time.Duration.Round(time.Hour) */
    if (h == 1)
        return xstrdup("About an hour");
    if (h < 48)
        return xasprintf("%lld hours", (long long)h);
    if (h < 24 * 7 * 2)
        return xasprintf("%lld days", (long long)(h / 24));
    if (h < 24 * 30 * 2)
        return xasprintf("%lld weeks", (long long)(h / 24 / 7));
    if (h < 24 * 365 * 2)
        return xasprintf("%lld months", (long long)(h / 24 / 30));
    return xasprintf("%lld years", (long long)(s / 3600 / 24 / 365));
}

char *format_ago(const char *rfc3339)
{
    int64_t t = rfc3339_parse(rfc3339);
    if (t < 0)
        return xstrdup("N/A");
    int64_t now = (int64_t)time(NULL);
    char *d = format_duration(now - t);
    char *r = xasprintf("%s ago", d);
    free(d);
    return r;
}

char *format_time_local(const char *rfc3339)
{
    int64_t t = rfc3339_parse(rfc3339);
    if (t < 0)
        return xstrdup("N/A");
    time_t tt = (time_t)t;
    struct tm tm;
    if (!localtime_r(&tt, &tm))
        return xstrdup("N/A");
    char buf[64];
    if (strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S %z %Z", &tm) == 0)
        return xstrdup("N/A");
    return xstrdup(buf);
}

static size_t utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80)
            n++;
    return n;
}

char *format_ellipsis(const char *s, size_t max)
{
    size_t len = strlen(s);
    if (utf8_chars(s, len) <= max)
        return xstrdup(s);
    if (max == 0)
        return xstrdup("");
    /* keep max-1 characters, then the ellipsis */
    size_t i = 0, chars = 0;
    for (; i < len; i++) {
        if (((unsigned char)s[i] & 0xc0) != 0x80) {
            if (chars == max - 1)
                break;
            chars++;
        }
    }
    return xasprintf("%.*s…", (int)i, s);
}

/* ---- tables ---------------------------------------------------------- */

#define TAB_MINWIDTH 10
#define TAB_PADDING 3

void table_add(struct table *t, const char *line)
{
    XGROW(t->lines, t->cap, t->n + 1);
    t->lines[t->n++] = xstrdup(line);
}

void table_flush(struct table *t, FILE *f)
{
    size_t *widths = NULL, n_cols = 0;
    /* every cell followed by a tab takes part in its column's width */
    for (size_t i = 0; i < t->n; i++) {
        size_t col = 0;
        const char *p = t->lines[i];
        const char *tab;
        while ((tab = strchr(p, '\t'))) {
            if (col >= n_cols) {
                widths = xreallocarray(widths, col + 1, sizeof(*widths));
                for (size_t k = n_cols; k <= col; k++)
                    widths[k] = TAB_MINWIDTH;
                n_cols = col + 1;
            }
            size_t w = utf8_chars(p, (size_t)(tab - p)) + TAB_PADDING;
            if (w > widths[col])
                widths[col] = w;
            p = tab + 1;
            col++;
        }
    }
    for (size_t i = 0; i < t->n; i++) {
        size_t col = 0;
        const char *p = t->lines[i];
        const char *tab;
        while ((tab = strchr(p, '\t'))) {
            size_t len = (size_t)(tab - p);
            fwrite(p, 1, len, f);
            for (size_t w = utf8_chars(p, len); w < widths[col]; w++)
                fputc(' ', f);
            p = tab + 1;
            col++;
        }
        fputs(p, f);
        fputc('\n', f);
        free(t->lines[i]);
    }
    free(widths);
    free(t->lines);
    memset(t, 0, sizeof(*t));
}

/* ---- --format ---------------------------------------------------------- */

static char *unescape_format(const char *s)
{
    struct strbuf sb = STRBUF_INIT;
    for (const char *p = s; *p; p++) {
        if (p[0] == '\\' && p[1] == 't') {
            strbuf_addc(&sb, '\t');
            p++;
        } else if (p[0] == '\\' && p[1] == 'n') {
            strbuf_addc(&sb, '\n');
            p++;
        } else {
            strbuf_addc(&sb, *p);
        }
    }
    return strbuf_detach(&sb, NULL);
}

static char *trim_spaces(const char *s)
{
    while (*s == ' ')
        s++;
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == ' ')
        n--;
    return xstrndup(s, n);
}

int output_format_parse(const char *user, const char *default_table, struct output_format *ret,
                        struct kiln_error **err)
{
    memset(ret, 0, sizeof(*ret));
    const char *f = user && *user ? user : default_table;
    if (strcmp(f, "table") == 0)
        f = default_table;
    if (strcmp(f, "json") == 0) {
        ret->json = true;
        f = "{{json .}}";
    } else if (strncmp(f, "table ", 6) == 0 || strcmp(f, "table") == 0) {
        ret->table = true;
        f += 5;
    }
    char *trimmed = trim_spaces(f);
    char *text = unescape_format(trimmed);
    free(trimmed);
    int r = template_parse(text, strlen(text), &ret->tmpl, err);
    free(text);
    if (r < 0)
        return kiln_error_wrap(err, "--format");
    return 0;
}

void output_format_free(struct output_format *o)
{
    template_free(o->tmpl);
    memset(o, 0, sizeof(*o));
}

int output_format_print(const struct output_format *o, struct tval *header, struct tval **items,
                        size_t n, FILE *f, struct kiln_error **err)
{
    struct table t = {0};
    struct strbuf sb = STRBUF_INIT;
    if (o->table && header) {
        if (template_exec(o->tmpl, header, &sb, err) < 0)
            goto fail;
        table_add(&t, strbuf_str(&sb));
    }
    for (size_t i = 0; i < n; i++) {
        strbuf_reset(&sb);
        if (template_exec(o->tmpl, items[i], &sb, err) < 0)
            goto fail;
        if (o->table) {
            table_add(&t, strbuf_str(&sb));
        } else {
            fputs(strbuf_str(&sb), f);
            fputc('\n', f);
        }
    }
    if (o->table)
        table_flush(&t, f);
    strbuf_release(&sb);
    return 0;
fail:
    for (size_t i = 0; i < t.n; i++)
        free(t.lines[i]);
    free(t.lines);
    strbuf_release(&sb);
    return kiln_error_wrap(err, "--format");
}
