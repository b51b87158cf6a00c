/* Parser directives: `# escape=`, `# syntax=`, `# check=` at the top of the
 * file.  The first line that is not a directive (an instruction, an empty
 * line, a plain comment, an unknown key) ends them for good; a repeated
 * directive is an error.  The key is case-insensitive, the value is kept. */
#include "dockerfile/directives.h"

#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "dockerfile/dockerfile.h"
#include "dockerfile/internal.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/xalloc.h"

static const char *const directive_names[] = {"escape", "syntax", "check"};

static bool is_re_s(char c)
{
    /* RE2's \s */
    return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

int dirparser_line(struct dirparser *d, const char *line, size_t n, struct directive_hit *hit,
                   const char **ret_error)
{
    d->line++;
    if (d->done)
        return 0;
    const char *comment = d->comment ? d->comment : "#";
    size_t clen = strlen(comment);
    if (n < clen || memcmp(line, comment, clen) != 0) {
        d->done = true;
        return 0;
    }
    size_t i = clen;
    i += utf8_space_prefix(line + i, n - i);

    /* ^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$ */
    size_t name_start = i;
    if (i >= n || !is_alpha(line[i])) {
        d->done = true;
        return 0;
    }
    while (i < n && (is_alpha(line[i]) || (line[i] >= '0' && line[i] <= '9')))
        i++;
    size_t name_len = i - name_start;
    while (i < n && is_re_s(line[i]))
        i++;
    if (i >= n || line[i] != '=') {
        d->done = true;
        return 0;
    }
    i++;
    size_t ws_start = i;
    while (i < n && is_re_s(line[i]))
        i++;
    if (memchr(line + ws_start, '\n', n - ws_start)) {
        /* `.` does not match a newline. */
        d->done = true;
        return 0;
    }
    size_t vstart, vend;
    if (i < n) {
        vstart = i;
        vend = n;
        while (vend > vstart && is_re_s(line[vend - 1]))
            vend--;
    } else if (i > ws_start) {
        /* Only blanks after '=': the lazy group takes the last one. */
        vstart = n - 1;
        vend = n;
    } else {
        d->done = true;
        return 0;
    }

    int which = -1;
    for (size_t k = 0; k < ARRAY_SIZE(directive_names); k++) {
        size_t kl = strlen(directive_names[k]);
        if (kl != name_len)
            continue;
        size_t j = 0;
        while (j < kl && (line[name_start + j] | 0x20) == directive_names[k][j])
            j++;
        if (j == kl)
            which = (int)k;
    }
    if (which < 0) {
        d->done = true;
        return 0;
    }
    if (d->seen & (1u << which)) {
        if (ret_error)
            *ret_error = directive_names[which];
        return -1;
    }
    d->seen |= 1u << which;
    hit->name = directive_names[which];
    hit->value_off = vstart;
    hit->value_len = vend - vstart;
    hit->name_off = name_start;
    hit->line = d->line;
    return 1;
}

/* bufio.ScanLines: lines without "\n" and without one trailing "\r". */
static bool next_scan_line(const char *buf, size_t len, size_t *pos, const char **ret_line,
                           size_t *ret_n)
{
    if (*pos >= len)
        return false;
    const char *start = buf + *pos;
    const char *nl = memchr(start, '\n', len - *pos);
    size_t n = nl ? (size_t)(nl - start) : len - *pos;
    *pos += n + (nl ? 1 : 0);
    if (n > 0 && start[n - 1] == '\r')
        n--;
    *ret_line = start;
    *ret_n = n;
    return true;
}

static int parse_all(struct dirparser *d, const char *buf, size_t len, char ***ret_pairs,
                     int **ret_lines, struct kiln_error **err)
{
    _cleanup_strv_ char **pairs = strv_new();
    _cleanup_free_ int *lines = NULL;
    size_t nlines = 0, cap = 0;
    size_t pos = 0;
    const char *line;
    size_t n;
    while (!d->done && next_scan_line(buf, len, &pos, &line, &n)) {
        if (n > DOCKERFILE_MAX_LINE)
            break; /* bufio.Scanner gives up on the rest */
        struct directive_hit hit;
        const char *dup = NULL;
        int r = dirparser_line(d, line, n, &hit, &dup);
        if (r < 0)
            return kiln_error_set(err, 0, "only one %s parser directive can be used", dup);
        if (r > 0) {
            strv_push(&pairs, hit.name);
            strv_push_take(&pairs, xstrndup(line + hit.value_off, hit.value_len));
            XGROW(lines, cap, nlines + 1);
            lines[nlines++] = hit.line;
        }
    }
    *ret_pairs = TAKE_PTR(pairs);
    if (ret_lines)
        *ret_lines = TAKE_PTR(lines);
    return 0;
}

int dockerfile_parse_directives(const char *buf, size_t len, char ***ret_pairs,
                                struct kiln_error **err)
{
    struct dirparser d = {0};
    return parse_all(&d, buf, len, ret_pairs, NULL, err);
}

bool dockerfile_find_directive(const char *key, const char *buf, size_t len, bool any_format,
                               char **ret_ref, char **ret_cmdline, int *ret_line)
{
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) {
        buf += 3;
        len -= 3;
    }
    int base_line = 0;
    if (len >= 2 && buf[0] == '#' && buf[1] == '!') {
        const char *nl = memchr(buf, '\n', len);
        size_t skip = nl ? (size_t)(nl - buf) + 1 : len;
        buf += skip;
        len -= skip;
        base_line = 1;
    }

    static const char *const comments[] = {"#", "//"};
    for (size_t c = 0; c < (any_format ? 2u : 1u); c++) {
        struct dirparser d = {.comment = comments[c], .line = base_line};
        _cleanup_strv_ char **pairs = NULL;
        _cleanup_free_ int *lines = NULL;
        if (parse_all(&d, buf, len, &pairs, &lines, NULL) < 0)
            continue;
        for (size_t i = 0; pairs[i]; i += 2) {
            if (strcmp(pairs[i], key) != 0)
                continue;
            const char *value = pairs[i + 1];
            const char *cut = strstr(value, "//");
            size_t rl = cut ? (size_t)(cut - value) : strlen(value);
            size_t lead = utf8_space_prefix(value, rl);
            size_t end = utf8_trim_right_len(value + lead, rl - lead);
            if (ret_ref)
                *ret_ref = xstrndup(value + lead, end);
            if (ret_cmdline)
                *ret_cmdline = xstrdup(value);
            if (ret_line)
                *ret_line = lines[i / 2];
            return true;
        }
    }

    if (any_format && len > 0) {
        yajl_val root = NULL;
        struct kiln_error *jerr = NULL;
        if (json_parse(buf, len, &root, &jerr) < 0) {
            kiln_error_free(&jerr);
            return false;
        }
        bool found = false;
        if (YAJL_IS_OBJECT(root)) {
            /* Go keeps the last of duplicate keys. */
            const char *v = NULL;
            for (size_t i = 0; i < root->u.object.len; i++)
                if (strcmp(root->u.object.keys[i], key) == 0)
                    v = YAJL_IS_STRING(root->u.object.values[i])
                            ? root->u.object.values[i]->u.string
                            : NULL;
            if (v) {
                found = true;
                if (ret_ref)
                    *ret_ref = xstrdup(v);
                if (ret_cmdline)
                    *ret_cmdline = xstrdup(v);
                if (ret_line)
                    *ret_line = base_line + 1;
            }
        }
        yajl_tree_free(root);
        return found;
    }
    return false;
}
