/* .dockerignore: reading, compiling and matching with moby/patternmatcher's
 * semantics.  Each pattern is classified as patternmatcher does (exact,
 * prefix, suffix or regexp match); a regexp pattern is translated into the
 * very Go regexp text patternmatcher builds and compiled by goregex, so odd
 * escapes behave as they do in Docker (`a\b` has a word boundary). */
#include "ignore.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dockerfile/gopath.h"
#include "dockerfile/goregex.h"
#include "dockerfile/unicode.h"
#include "dockerfile/walk.h"
#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

enum match_type { MT_EXACT, MT_PREFIX, MT_SUFFIX, MT_REGEX };

struct pattern {
    char *text; /* cleaned, without the '!' */
    size_t len;
    bool exclusion;
    enum match_type type;
    struct goregex *re;
    /* For regexp patterns made only of literals, '*', '?' and '**': the
     * literal runs every match contains (see set_prefilter). */
    bool prefilter, anchored_start, anchored_end;
    struct seg {
        size_t off, len;
    } *seg;
    size_t nseg;
};

struct ignore {
    struct pattern *p;
    size_t n;
    bool exclusions;
    bool only_prefix_exceptions;
};

/* ---- reading ------------------------------------------------------------------ */

/* Go's strings.TrimSpace: Unicode White_Space at both ends. */
static void trim_space(const char **s, size_t *len)
{
    const char *p = *s;
    size_t n = *len, w;
    while (n > 0) {
        uint32_t r = uni_decode(p, n, &w);
        if (!uni_is_space(r) || (r == UNI_ERROR && w == 1))
            break;
        p += w;
        n -= w;
    }
    while (n > 0) {
        uint32_t r = uni_decode_last(p, n, &w);
        if (!uni_is_space(r) || (r == UNI_ERROR && w == 1))
            break;
        n -= w;
    }
    *s = p;
    *len = n;
}

int ignore_read(const char *buf, size_t len, char ***ret, struct kiln_error **err)
{
    _cleanup_strv_ char **out = strv_new();
    size_t pos = 0, lineno = 0;
    while (pos < len) {
        const char *line = buf + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl ? 1 : 0);
        if (n > IGNORE_MAX_LINE)
            return kiln_error_set(err, 0, "line %zu is longer than %u bytes", lineno + 1,
                                  IGNORE_MAX_LINE);
        if (n > 0 && line[n - 1] == '\r') /* bufio.ScanLines drops it */
            n--;
        if (lineno == 0 && n >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
            line += 3;
            n -= 3;
        }
        lineno++;
        if (n > 0 && line[0] == '#')
            continue;
        trim_space(&line, &n);
        if (n == 0)
            continue;
        bool invert = line[0] == '!';
        if (invert) {
            line++;
            n--;
            trim_space(&line, &n);
        }
        _cleanup_free_ char *pat = NULL;
        if (n > 0) {
            pat = gopath_clean(line, n);
            if (strlen(pat) > 1 && pat[0] == '/')
                memmove(pat, pat + 1, strlen(pat));
        } else {
            pat = xstrdup("");
        }
        strv_push_take(&out, invert ? xasprintf("!%s", pat) : TAKE_PTR(pat));
    }
    *ret = TAKE_PTR(out);
    return 0;
}

/* ---- compiling ------------------------------------------------------------------ */

static bool should_escape(uint32_t c)
{
    return c < 0x80 && strchr(".+()|{}$", (int)c) && c != 0;
}

static void add_rune(struct strbuf *sb, uint32_t r)
{
    char enc[4];
    strbuf_add(sb, enc, uni_encode(r, enc));
}

/* patternmatcher's compile(): classifies the pattern and, for a regexp
 * pattern, builds the regexp text.  Runes are read as Go's text/scanner
 * reads them (a leading BOM is skipped, bad UTF-8 becomes U+FFFD). */
static enum match_type classify(const char *p, size_t len, struct strbuf *re)
{
    enum match_type type = MT_EXACT;
    size_t pos = 0, w;
    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        pos = 3;
    strbuf_addc(re, '^');
    for (size_t i = 0; pos < len; i++) {
        uint32_t ch = uni_decode(p + pos, len - pos, &w);
        pos += w;
        if (ch == '*') {
            if (pos < len && p[pos] == '*') {
                pos++;
                if (pos < len && p[pos] == '/')
                    pos++;
                if (pos >= len) {
                    if (type == MT_EXACT) {
                        type = MT_PREFIX;
                    } else {
                        strbuf_adds(re, ".*");
                        type = MT_REGEX;
                    }
                } else {
                    strbuf_adds(re, "(.*/)?");
                    type = MT_REGEX;
                }
                if (i == 0)
                    type = MT_SUFFIX;
            } else {
                strbuf_adds(re, "[^/]*");
                type = MT_REGEX;
            }
        } else if (ch == '?') {
            strbuf_adds(re, "[^/]");
            type = MT_REGEX;
        } else if (should_escape(ch)) {
            strbuf_addc(re, '\\');
            add_rune(re, ch);
        } else if (ch == '\\') {
            strbuf_addc(re, '\\');
            if (pos < len) {
                add_rune(re, uni_decode(p + pos, len - pos, &w));
                pos += w;
                type = MT_REGEX;
            }
        } else if (ch == '[' || ch == ']') {
            add_rune(re, ch);
            type = MT_REGEX;
        } else {
            add_rune(re, ch);
        }
    }
    if (type == MT_REGEX)
        strbuf_addc(re, '$');
    return type;
}

static bool is_valid_utf8(const char *s, size_t len)
{
    for (size_t i = 0, w; i < len; i += w)
        if (uni_decode(s + i, len - i, &w) == UNI_ERROR && w == 1)
            return false;
    return true;
}

/* For a regexp pattern of literals, '*', '?' and '**' only: the literal
 * runs between wildcards.  A match starts with the first run (unless the
 * pattern starts with a wildcard), ends with the last one (unless it ends
 * with one) and contains the others in order: a cheap test that rejects most
 * paths before the regexp runs. */
static void set_prefilter(struct pattern *pt)
{
    const char *p = pt->text;
    size_t len = pt->len;
    if (!is_valid_utf8(p, len) || (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) ||
        strpbrk(p, "\\[]^"))
        return;
    size_t cap = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && p[i] != '*' && p[i] != '?')
            continue;
        if (i > start) {
            XGROW(pt->seg, cap, pt->nseg + 1);
            pt->seg[pt->nseg++] = (struct seg){start, i - start};
        }
        if (i < len && p[i] == '*' && i + 1 < len && p[i + 1] == '*') {
            i++;
            if (i + 1 < len && p[i + 1] == '/')
                i++;
        }
        start = i + 1;
    }
    pt->anchored_start = len > 0 && p[0] != '*' && p[0] != '?';
    pt->anchored_end = len > 0 && p[len - 1] != '*' && p[len - 1] != '?' &&
                       !(len >= 3 && memcmp(p + len - 3, "**/", 3) == 0);
    pt->prefilter = true;
}

/* Can the path match at all?  (Only ever answers false when it cannot.) */
static bool prefilter_pass(const struct pattern *pt, const char *path, size_t len)
{
    size_t from = 0, to = len, k = 0, n = pt->nseg;
    if (n == 0)
        return true;
    if (pt->anchored_start) {
        const struct seg *s = &pt->seg[0];
        if (len < s->len || memcmp(path, pt->text + s->off, s->len) != 0)
            return false;
        from = s->len;
        k = 1;
    }
    if (pt->anchored_end && k < n) {
        const struct seg *s = &pt->seg[n - 1];
        if (to - from < s->len || memcmp(path + to - s->len, pt->text + s->off, s->len) != 0)
            return false;
        to -= s->len;
        n--;
    }
    for (; k < n; k++) {
        const struct seg *s = &pt->seg[k];
        const char *hit = memmem(path + from, to - from, pt->text + s->off, s->len);
        if (!hit)
            return false;
        from = (size_t)(hit - path) + s->len;
    }
    return true;
}

void ignore_free(struct ignore *ig)
{
    if (!ig)
        return;
    for (size_t i = 0; i < ig->n; i++) {
        free(ig->p[i].text);
        free(ig->p[i].seg);
        goregex_free(ig->p[i].re);
    }
    free(ig->p);
    free(ig);
}

/* fsutil's patternWithoutTrailingGlob */
static size_t without_trailing_glob(const char *p, size_t len)
{
    if (len >= 3 && memcmp(p + len - 3, "/**", 3) == 0)
        len -= 3;
    if (len >= 2 && memcmp(p + len - 2, "/*", 2) == 0)
        len -= 2;
    return len;
}

int ignore_compile(char *const *patterns, struct ignore **ret, struct kiln_error **err)
{
    struct ignore *ig = xcalloc(1, sizeof(*ig));
    size_t cap = 0;
    ig->only_prefix_exceptions = true;
    for (size_t k = 0; patterns && patterns[k]; k++) {
        const char *raw = patterns[k];
        size_t n = strlen(raw);
        trim_space(&raw, &n);
        if (n == 0)
            continue;
        char *clean = gopath_clean(raw, n);
        bool exclusion = false;
        const char *body = clean;
        if (clean[0] == '!') {
            if (clean[1] == '\0') {
                free(clean);
                ignore_free(ig);
                return kiln_error_set(err, EINVAL, "illegal exclusion pattern: \"!\"");
            }
            exclusion = true;
            body = clean + 1;
        }
        size_t blen = strlen(body);
        /* patternmatcher validates with filepath.Match(pattern, ".") */
        if (gopath_match(body, blen, ".", 1) == GOMATCH_BAD_PATTERN) {
            ignore_free(ig);
            kiln_error_set(err, EINVAL, "pattern '%s': syntax error in pattern", clean);
            free(clean);
            return -1;
        }
        XGROW(ig->p, cap, ig->n + 1);
        struct pattern *pt = &ig->p[ig->n++];
        memset(pt, 0, sizeof(*pt));
        pt->text = xstrdup(body);
        pt->len = blen;
        pt->exclusion = exclusion;
        free(clean);
        struct strbuf re = STRBUF_INIT;
        strbuf_init(&re);
        pt->type = classify(pt->text, pt->len, &re);
        if (pt->type == MT_REGEX) {
            char *msg = NULL;
            if (goregex_compile(re.buf, re.len, &pt->re, &msg) < 0) {
                kiln_error_set(err, EINVAL, "pattern '%s%s': syntax error in pattern (%s)",
                               exclusion ? "!" : "", pt->text, msg);
                free(msg);
                strbuf_release(&re);
                ignore_free(ig);
                return -1;
            }
            set_prefilter(pt);
        }
        strbuf_release(&re);
        if (exclusion) {
            ig->exclusions = true;
            size_t l = without_trailing_glob(pt->text, pt->len);
            for (size_t i = 0; i < l; i++)
                if (strchr("*[]?^\\", pt->text[i]))
                    ig->only_prefix_exceptions = false;
        }
    }
    *ret = ig;
    return 0;
}

int ignore_parse(const char *buf, size_t len, struct ignore **ret, struct kiln_error **err)
{
    _cleanup_strv_ char **pats = NULL;
    if (ignore_read(buf, len, &pats, err) < 0)
        return -1;
    return ignore_compile(pats, ret, err);
}

size_t ignore_count(const struct ignore *ig)
{
    return ig ? ig->n : 0;
}

bool ignore_has_exceptions(const struct ignore *ig)
{
    return ig && ig->exclusions;
}

/* ---- matching -------------------------------------------------------------------- */

static bool pattern_match(const struct pattern *pt, const char *path, size_t len)
{
    switch (pt->type) {
    case MT_EXACT:
        return len == pt->len && memcmp(path, pt->text, len) == 0;
    case MT_PREFIX:
        return len >= pt->len - 2 && memcmp(path, pt->text, pt->len - 2) == 0;
    case MT_SUFFIX: {
        const char *suf = pt->text + 2;
        size_t sl = pt->len - 2;
        if (len >= sl && memcmp(path + len - sl, suf, sl) == 0)
            return true;
        return sl > 0 && suf[0] == '/' && len == sl - 1 && memcmp(path, suf + 1, sl - 1) == 0;
    }
    case MT_REGEX:
        if (pt->prefilter && !prefilter_pass(pt, path, len)) {
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
            if (goregex_match_at(pt->re, path, len, 0) >= 0)
                abort(); /* the prefilter must never reject a match */
#endif
            return false;
        }
        /* the regexp starts with ^, so a match can only start at 0 */
        return goregex_match_at(pt->re, path, len, 0) >= 0;
    }
    return false;
}

/* Does the pattern match one of the parent directories of path? */
static bool parent_matches(const struct pattern *pt, const char *path, size_t len)
{
    /* filepath.Dir(path) split on '/'; "." (no slash) has no parents */
    const char *slash = memrchr(path, '/', len);
    if (!slash)
        return false;
    size_t dlen = (size_t)(slash - path);
    if (dlen == 0) /* Dir("/x") is "/": its elements are "" and "/" */
        return pattern_match(pt, "", 0) || pattern_match(pt, "/", 1);
    for (size_t i = 0; i <= dlen; i++) {
        if (i == dlen || path[i] == '/') {
            if (pattern_match(pt, path, i))
                return true;
        }
    }
    return false;
}

bool ignore_match(const struct ignore *ig, const char *path)
{
    if (!ig || ig->n == 0)
        return false;
    _cleanup_free_ char *clean = gopath_clean(path, strlen(path));
    if (strcmp(clean, ".") == 0)
        return false;
    size_t len = strlen(clean);
    bool matched = false;
    for (size_t i = 0; i < ig->n; i++) {
        const struct pattern *pt = &ig->p[i];
        if (pt->exclusion != matched)
            continue;
        if (pattern_match(pt, clean, len) || parent_matches(pt, clean, len))
            matched = !pt->exclusion;
    }
    return matched;
}

bool ignore_match_parent(const struct ignore *ig, const char *path, size_t len,
                         const uint8_t *parent, uint8_t *ret_state)
{
    bool matched = false;
    if (!ig)
        return false;
    for (size_t i = 0; i < ig->n; i++) {
        const struct pattern *pt = &ig->p[i];
        bool m = parent ? parent[i] : false;
        if (!m) {
            if (pt->exclusion != matched) {
                if (ret_state)
                    ret_state[i] = 0;
                continue;
            }
            m = pattern_match(pt, path, len);
            if (!m && !parent)
                m = parent_matches(pt, path, len);
        }
        if (ret_state)
            ret_state[i] = m;
        if (m)
            matched = !pt->exclusion;
    }
    return matched;
}

bool ignore_dir_needs_walk(const struct ignore *ig, const char *dir, size_t len)
{
    if (!ig || !ig->exclusions)
        return false;
    if (!ig->only_prefix_exceptions)
        return true;
    for (size_t i = 0; i < ig->n; i++) {
        const struct pattern *pt = &ig->p[i];
        if (!pt->exclusion)
            continue;
        /* pattern + "/" starts with dir + "/" */
        size_t l = without_trailing_glob(pt->text, pt->len);
        if (l + 1 >= len + 1 && memcmp(pt->text, dir, len) == 0 && (l == len || pt->text[len] == '/'))
            return true;
    }
    return false;
}

/* ---- choosing the file ----------------------------------------------------------------- */

static int read_all_fd(int fd, const char *what, char **ret, size_t *ret_len,
                       struct kiln_error **err)
{
    int r = fs_read_fd(fd, IGNORE_MAX_FILE, ret, ret_len);
    if (r == -EFBIG)
        return kiln_error_set(err, EFBIG, "'%s' is larger than %u MiB", what, IGNORE_MAX_FILE >> 20);
    if (r < 0)
        return kiln_error_set(err, -r, "read '%s'", what);
    return 0;
}

int ignore_load(int context_fd, const char *dockerfile, struct ignore **ret, char **ret_used,
                struct kiln_error **err)
{
    _cleanup_free_ char *data = NULL, *used = NULL;
    size_t len = 0;
    _cleanup_close_ int fd = -1;
    *ret = NULL;
    if (ret_used)
        *ret_used = NULL;
    if (dockerfile && *dockerfile && strcmp(dockerfile, "-") != 0) {
        _cleanup_free_ char *d1 = xstrdup(dockerfile), *d2 = xstrdup(dockerfile);
        char *dir = dirname(d1), *base = basename(d2);
        used = xasprintf("%s/%s.dockerignore", dir, base);
        fd = open(used, O_RDONLY | O_CLOEXEC);
        if (fd < 0 && errno != ENOENT && errno != ENOTDIR)
            return kiln_error_set(err, errno, "open '%s'", used);
        if (fd < 0) {
            free(used);
            used = NULL;
        }
    }
    if (fd < 0) {
        fd = context_openat(context_fd, ".dockerignore", O_RDONLY);
        if (fd < 0 && fd != -ENOENT && fd != -ENOTDIR && fd != -ELOOP)
            return kiln_error_set(err, -fd, "open '.dockerignore' in the context");
        if (fd >= 0)
            used = xstrdup(".dockerignore");
    }
    if (fd >= 0 && read_all_fd(fd, used, &data, &len, err) < 0)
        return -1;
    if (ignore_parse(data ? data : "", len, ret, err) < 0)
        return kiln_error_wrap(err, "%s", used);
    if (ret_used)
        *ret_used = TAKE_PTR(used);
    return 0;
}
