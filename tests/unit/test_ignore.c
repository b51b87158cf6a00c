/* .dockerignore: the conformance tables (cases.tsv, readall.jsonl,
 * walk.jsonl), the context walk and COPY wildcards. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <sys/capability.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dockerfile/ignore.h"
#include "dockerfile/walk.h"
#include "harness.h"
#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/json.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

/* Builds a .dockerignore text from the ';'-separated raw lines of a row. */
static char *lines_of(const char *patterns)
{
    char *s = xstrdup(patterns);
    for (char *p = s; *p; p++)
        if (*p == ';')
            *p = '\n';
    return s;
}

/* Matches path the way the context walk does: component by component, each
 * with its parent's results (MatchesUsingParentResults). */
static bool walk_style_match(const struct ignore *ig, const char *clean_path)
{
    size_t n = ignore_count(ig), len = strlen(clean_path);
    uint8_t *a = xcalloc(n + 1, 1), *b = xcalloc(n + 1, 1), *parent = NULL;
    bool m = false;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && clean_path[i] != '/')
            continue;
        uint8_t *out = parent == a ? b : a;
        m = ignore_match_parent(ig, clean_path, i, parent, out);
        parent = out;
    }
    free(a);
    free(b);
    return m;
}

static void run_cases_tsv(void)
{
    size_t len;
    char *buf = harness_read_conformance("dockerignore/cases.tsv", &len);
    int rows = 0, ok_rows = 0;
    char *save = NULL;
    char *line = strtok_r(buf, "\n", &save);
    line = strtok_r(NULL, "\n", &save); /* header */
    for (; line; line = strtok_r(NULL, "\n", &save)) {
        char *f[5] = {0};
        char *p = line;
        for (int k = 0; k < 5; k++) {
            f[k] = p;
            char *tab = p ? strchr(p, '\t') : NULL;
            if (tab) {
                *tab = '\0';
                p = tab + 1;
            } else {
                p = NULL;
            }
        }
        rows++;
        char name[600];
        snprintf(name, sizeof(name), "cases.tsv:%d [%s] '%s'", rows + 1, f[0], f[1]);
        _cleanup_free_ char *text = lines_of(f[0]);
        struct ignore *ig = NULL;
        struct kiln_error *err = NULL;
        int r = ignore_parse(text, strlen(text), &ig, &err);
        if (strcmp(f[2], "error") == 0) {
            harness_case(name, r < 0, "expected an error");
        } else if (r < 0) {
            harness_case(name, 0, err->msg);
        } else {
            bool want = strcmp(f[2], "true") == 0;
            bool got = ignore_match(ig, f[1]);
            bool ok = got == want;
            /* the walker's matching must agree (README: identical on every row) */
            if (f[1][0] != '/') {
                size_t pl = strlen(f[1]);
                char *tmp = xstrdup(f[1]);
                /* clean as the walk sees paths: no "./", no trailing '/', no ".." */
                while (pl > 0 && tmp[pl - 1] == '/')
                    tmp[--pl] = '\0';
                if (strstr(tmp, "..") == NULL && strncmp(tmp, "./", 2) != 0 && pl > 0 &&
                    strcmp(tmp, ".") != 0 && strstr(tmp, "//") == NULL) {
                    bool w = walk_style_match(ig, tmp);
                    if (w != want)
                        ok = false;
                }
                free(tmp);
            }
            if (ok)
                ok_rows++;
            harness_case(name, ok, got != want ? "ignore_match gave the wrong answer"
                                               : "walk-style matching gave the wrong answer");
        }
        if (r < 0 && strcmp(f[2], "error") == 0)
            ok_rows++;
        kiln_error_free(&err);
        ignore_free(ig);
    }
    printf("cases.tsv: %d rows, %d as expected\n", rows, ok_rows);
    free(buf);
}

static yajl_val parse_line(const char *line)
{
    yajl_val v = NULL;
    struct kiln_error *err = NULL;
    if (json_parse(line, strlen(line), &v, &err) < 0) {
        fprintf(stderr, "bad JSON line: %s\n", err->msg);
        exit(2);
    }
    return v;
}

static bool strv_equal(char *const *a, char *const *b)
{
    size_t i = 0;
    for (; a[i] && b[i]; i++)
        if (strcmp(a[i], b[i]) != 0)
            return false;
    return !a[i] && !b[i];
}

static char *strv_join(char *const *v)
{
    struct strbuf sb = STRBUF_INIT;
    strbuf_init(&sb);
    strbuf_addc(&sb, '[');
    for (size_t i = 0; v && v[i]; i++)
        strbuf_addf(&sb, "%s\"%s\"", i ? ", " : "", v[i]);
    strbuf_addc(&sb, ']');
    return strbuf_detach(&sb, NULL);
}

static void run_readall(void)
{
    size_t len;
    char *buf = harness_read_conformance("dockerignore/readall.jsonl", &len);
    int rows = 0, ok_rows = 0;
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        yajl_val v = parse_line(line);
        const char *input = json_get_str(v, "input");
        char **want = json_to_strv(json_get_arr(v, "expected"));
        char **got = NULL;
        struct kiln_error *err = NULL;
        char name[64];
        snprintf(name, sizeof(name), "readall.jsonl:%d", ++rows);
        int r = ignore_read(input, strlen(input), &got, &err);
        bool ok = r == 0 && strv_equal(got, want);
        ok_rows += ok;
        _cleanup_free_ char *gs = r == 0 ? strv_join(got) : xstrdup("error");
        harness_case(name, ok, gs);
        strv_free(got);
        strv_free(want);
        kiln_error_free(&err);
        yajl_tree_free(v);
    }
    printf("readall.jsonl: %d rows, %d as expected\n", rows, ok_rows);
    free(buf);
}

static char *make_tmpdir(void)
{
    char *t = xstrdup("/tmp/kiln-test-ignore-XXXXXX");
    if (!mkdtemp(t)) {
        perror("mkdtemp");
        exit(2);
    }
    return t;
}

static int list_cb(const struct walk_entry *e, void *ud, struct kiln_error **err)
{
    char ***out = ud;
    const char *kind = S_ISDIR(e->st->st_mode) ? "dir" : S_ISLNK(e->st->st_mode) ? "symlink" : "file";
    strv_push_take(out, xasprintf("%s %s", kind, e->path));
    return WALK_CONTINUE;
}

static bool listing_has(char *const *listing, const char *path)
{
    for (size_t i = 0; listing[i]; i++) {
        const char *sp = strchr(listing[i], ' ');
        if (sp && strcmp(sp + 1, path) == 0)
            return true;
    }
    return false;
}

static void write_file(int dirfd, const char *path, const char *data)
{
    if (fs_write_atomic_at(dirfd, path, data, strlen(data), 0644, false) < 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
}

static void run_walk_jsonl(void)
{
    size_t len;
    char *buf = harness_read_conformance("dockerignore/walk.jsonl", &len);
    int rows = 0, ok_rows = 0;
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        yajl_val v = parse_line(line);
        char name[64];
        snprintf(name, sizeof(name), "walk.jsonl:%d", ++rows);
        _cleanup_free_ char *dir = make_tmpdir();
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        yajl_val tree = json_get_arr(v, "tree");
        const char *ignore_text = json_get_str(v, "dockerignore");
        const char *ignore_file = json_get_str(v, "ignore_file_used");
        const char *dockerfile = json_get_str(v, "dockerfile");
        for (size_t i = 0; i < tree->u.array.len; i++) {
            yajl_val ent = tree->u.array.values[i];
            const char *p = json_get_str(ent, "path");
            if (strcmp(json_get_str(ent, "type"), "dir") == 0) {
                fs_mkdir_p_at(dfd, p, 0755);
            } else {
                _cleanup_free_ char *parent = xstrdup(p);
                char *sl = strrchr(parent, '/');
                if (sl) {
                    *sl = '\0';
                    fs_mkdir_p_at(dfd, parent, 0755);
                }
                bool is_ignore = ignore_text && strcmp(p, ignore_file ? ignore_file : ".dockerignore") == 0;
                write_file(dfd, p, is_ignore ? ignore_text : p);
            }
        }
        struct ignore *ig = NULL;
        struct kiln_error *err = NULL;
        int r;
        _cleanup_free_ char *used = NULL;
        if (json_get_arr(v, "excludes")) {
            char **ex = json_to_strv(json_get_arr(v, "excludes"));
            r = ignore_compile(ex, &ig, &err);
            strv_free(ex);
        } else {
            _cleanup_free_ char *df = xasprintf("%s/%s", dir, dockerfile ? dockerfile : "Dockerfile");
            r = ignore_load(dfd, df, &ig, &used, &err);
        }
        yajl_val e = json_get(v, "error");
        bool want_error = e && YAJL_IS_TRUE(e);
        bool ok = true;
        const char *why = NULL;
        if (want_error) {
            ok = r < 0;
            why = "expected an error";
        } else if (r < 0) {
            ok = false;
            why = err->msg;
        } else {
            char **listing = strv_new();
            struct kiln_error *werr = NULL;
            if (context_walk_at(dfd, "", ig, list_cb, &listing, &werr) < 0) {
                ok = false;
                why = "walk failed";
            }
            yajl_val exp = json_get_arr(v, "expected_listing");
            if (ok && exp) {
                char **want = json_to_strv(exp);
                ok = strv_equal(listing, want);
                why = "listing differs";
                if (!ok) {
                    _cleanup_free_ char *a = strv_join(listing), *b = strv_join(want);
                    fprintf(stderr, "  got  %s\n  want %s\n", a, b);
                }
                strv_free(want);
            }
            char **present = json_to_strv(json_get_arr(v, "present"));
            char **absent = json_to_strv(json_get_arr(v, "absent"));
            for (size_t i = 0; ok && present && present[i]; i++)
                if (!listing_has(listing, present[i])) {
                    ok = false;
                    why = "a path that must be present is missing";
                }
            for (size_t i = 0; ok && absent && absent[i]; i++)
                if (listing_has(listing, absent[i])) {
                    ok = false;
                    why = "a path that must be absent is present";
                }
            if (ok && ignore_file) {
                const char *b = used ? strrchr(used, '/') : NULL;
                b = b ? b + 1 : used;
                ok = b && strcmp(b, ignore_file) == 0;
                why = "another ignore file was used";
            }
            strv_free(present);
            strv_free(absent);
            strv_free(listing);
            kiln_error_free(&werr);
        }
        ok_rows += ok;
        harness_case(name, ok, why);
        kiln_error_free(&err);
        ignore_free(ig);
        fs_rm_rf(dir);
        yajl_tree_free(v);
    }
    printf("walk.jsonl: %d rows, %d as expected\n", rows, ok_rows);
    free(buf);
}

/* ---- hand-written cases ------------------------------------------------------------- */

static char *tree(const char *const *files)
{
    char *dir = make_tmpdir();
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    for (size_t i = 0; files[i]; i++) {
        const char *p = files[i];
        size_t l = strlen(p);
        if (p[l - 1] == '/') {
            char *d = xstrndup(p, l - 1);
            fs_mkdir_p_at(dfd, d, 0755);
            free(d);
            continue;
        }
        char *parent = xstrdup(p);
        char *sl = strrchr(parent, '/');
        if (sl) {
            *sl = '\0';
            fs_mkdir_p_at(dfd, parent, 0755);
        }
        free(parent);
        write_file(dfd, p, p);
    }
    close(dfd);
    return dir;
}

static char **walk_list(const char *dir, const char *sub, const char *ignore_text, int *ret_r,
                        char **ret_msg)
{
    struct ignore *ig = NULL;
    struct kiln_error *err = NULL;
    if (ignore_text && ignore_parse(ignore_text, strlen(ignore_text), &ig, &err) < 0) {
        fprintf(stderr, "bad ignore text: %s\n", err->msg);
        exit(2);
    }
    char **listing = strv_new();
    *ret_r = context_walk(dir, sub, ig, list_cb, &listing, &err);
    if (ret_msg)
        *ret_msg = err ? xstrdup(err->msg) : NULL;
    kiln_error_free(&err);
    ignore_free(ig);
    return listing;
}

static void check_listing(const char *dir, const char *sub, const char *ign, const char *want)
{
    int r;
    char **l = walk_list(dir, sub, ign, &r, NULL);
    _cleanup_free_ char *got = strv_join(l);
    CHECK_INT_EQ(r, 0);
    CHECK_STR_EQ(got, want);
    strv_free(l);
}

TEST(walk_order_and_subpath)
{
    const char *files[] = {"b", "a/z", "a/y/x", "a-", "A", "c/", NULL};
    _cleanup_free_ char *d = tree(files);
    check_listing(d, "", NULL,
                  "[\"file A\", \"dir a\", \"dir a/y\", \"file a/y/x\", \"file a/z\", "
                  "\"file a-\", \"file b\", \"dir c\"]");
    check_listing(d, "a", NULL, "[\"dir a/y\", \"file a/y/x\", \"file a/z\"]");
    check_listing(d, "./a/../a/y/", NULL, "[\"file a/y/x\"]");
    check_listing(d, "a/z", NULL, "[\"file a/z\"]");
    int r;
    char *msg = NULL;
    char **l = walk_list(d, "../etc", NULL, &r, &msg);
    CHECK(r < 0 && msg && strstr(msg, "outside the build context"));
    strv_free(l);
    free(msg);
    l = walk_list(d, "nope", NULL, &r, NULL);
    CHECK(r < 0);
    strv_free(l);
    fs_rm_rf(d);
}

TEST(walk_excluded_subpath)
{
    const char *files[] = {"nm/a", "nm/keep/k", "src/x", "empty/", NULL};
    _cleanup_free_ char *d = tree(files);
    int r;
    char *msg = NULL;
    char **l = walk_list(d, "nm", "nm\n", &r, &msg);
    CHECK(r < 0 && msg && strstr(msg, "excluded by .dockerignore"));
    strv_free(l);
    free(msg);
    check_listing(d, "nm", "nm\n!nm/keep\n", "[\"dir nm/keep\", \"file nm/keep/k\"]");
    check_listing(d, "", "nm\n!nm/keep\n",
                  "[\"dir empty\", \"dir nm\", \"dir nm/keep\", \"file nm/keep/k\", \"dir src\", "
                  "\"file src/x\"]");
    /* excluded, walked for a possible exception, nothing kept: not found */
    l = walk_list(d, "empty", "empty\n!empty/x\n", &r, &msg);
    CHECK(r < 0 && msg && strstr(msg, "excluded"));
    strv_free(l);
    free(msg);
    fs_rm_rf(d);
}

TEST(walk_symlinks_not_followed)
{
    const char *files[] = {"d/f", NULL};
    _cleanup_free_ char *d = tree(files);
    _cleanup_free_ char *l1 = xasprintf("%s/out", d), *l2 = xasprintf("%s/dl", d);
    CHECK(symlink("/etc", l1) == 0);
    CHECK(symlink("d", l2) == 0);
    check_listing(d, "", NULL, "[\"dir d\", \"file d/f\", \"symlink dl\", \"symlink out\"]");
    check_listing(d, "out", NULL, "[\"symlink out\"]");
    int r;
    char **l = walk_list(d, "out/passwd", NULL, &r, NULL);
    CHECK(r < 0);
    CHECK(l[0] == NULL);
    strv_free(l);
    _cleanup_close_ int root = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int fd = context_openat(root, "dl/../../../d/f", O_RDONLY);
    CHECK(fd >= 0); /* ".." stops at the root: /d/f */
    if (fd >= 0)
        close(fd);
    fd = context_openat(root, "out/passwd", O_RDONLY); /* /etc inside the root: absent */
    CHECK(fd == -ENOENT);
    fs_rm_rf(d);
}

struct skip_ctx {
    char **seen;
    const char *skip;
};

static int skip_cb(const struct walk_entry *e, void *ud, struct kiln_error **err)
{
    struct skip_ctx *c = ud;
    strv_push(&c->seen, e->path);
    return strcmp(e->path, c->skip) == 0 ? WALK_SKIP : WALK_CONTINUE;
}

TEST(walk_skip)
{
    const char *files[] = {"a/1", "a/2", "b/c/1", "b/d", "b/e", "z", NULL};
    _cleanup_free_ char *d = tree(files);
    struct skip_ctx c = {strv_new(), "b/c"};
    CHECK_INT_EQ(context_walk(d, "", NULL, skip_cb, &c, NULL), 0);
    _cleanup_free_ char *got = strv_join(c.seen);
    CHECK_STR_EQ(got, "[\"a\", \"a/1\", \"a/2\", \"b\", \"b/c\", \"b/d\", \"b/e\", \"z\"]");
    strv_free(c.seen);
    /* a file returning SKIP ends its directory */
    struct skip_ctx c2 = {strv_new(), "b/d"};
    CHECK_INT_EQ(context_walk(d, "", NULL, skip_cb, &c2, NULL), 0);
    _cleanup_free_ char *got2 = strv_join(c2.seen);
    CHECK_STR_EQ(got2, "[\"a\", \"a/1\", \"a/2\", \"b\", \"b/c\", \"b/c/1\", \"b/d\", \"z\"]");
    strv_free(c2.seen);
    /* SKIP on an excluded directory reported late (as a parent) */
    struct ignore *ig = NULL;
    CHECK_INT_EQ(ignore_parse("b\n!b/c/1\n!b/e\n", 14, &ig, NULL), 0);
    struct skip_ctx c3 = {strv_new(), "b"};
    CHECK_INT_EQ(context_walk(d, "", ig, skip_cb, &c3, NULL), 0);
    _cleanup_free_ char *got3 = strv_join(c3.seen);
    CHECK_STR_EQ(got3, "[\"a\", \"a/1\", \"a/2\", \"b\", \"z\"]");
    strv_free(c3.seen);
    ignore_free(ig);
    fs_rm_rf(d);
}

TEST(walk_parent_results_semantics)
{
    /* README: "a/b" then "!a" differ between the two matchers; the walk
     * follows MatchesUsingParentResults: a/b stays excluded. */
    const char *files[] = {"a/b", "a/c", NULL};
    _cleanup_free_ char *d = tree(files);
    check_listing(d, "", "a/b\n!a\n", "[\"dir a\", \"file a/c\"]");
    struct ignore *ig = NULL;
    CHECK_INT_EQ(ignore_parse("a/b\n!a\n", 7, &ig, NULL), 0);
    CHECK(!ignore_match(ig, "a/b")); /* MatchesOrParentMatches keeps it */
    ignore_free(ig);
    fs_rm_rf(d);
}

static char *glob_str(const char *dir, const char *pat, const char *ign, int *ret_r)
{
    struct ignore *ig = NULL;
    if (ign)
        ignore_parse(ign, strlen(ign), &ig, NULL);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    char **out = NULL;
    struct kiln_error *err = NULL;
    *ret_r = context_glob(fd, pat, ig, &out, &err);
    close(fd);
    char *s = *ret_r == 0 ? strv_join(out) : xstrdup(err->msg);
    strv_free(out);
    kiln_error_free(&err);
    ignore_free(ig);
    return s;
}

#define CHECK_GLOB(dir, pat, ign, want)                                                            \
    do {                                                                                           \
        int _r;                                                                                    \
        char *_s = glob_str(dir, pat, ign, &_r);                                                   \
        CHECK_STR_EQ(_s, want);                                                                    \
        free(_s);                                                                                  \
    } while (0)

TEST(glob)
{
    const char *files[] = {"a.txt", "b.txt", "c.md", "src/x.txt", "src/y/z.txt", "srcdir/q",
                           "dir1/f", "dir2/", "x*y", "lit\\*", NULL};
    _cleanup_free_ char *d = tree(files);
    CHECK_GLOB(d, "*.txt", NULL, "[\"a.txt\", \"b.txt\"]");
    CHECK_GLOB(d, "/*.txt", NULL, "[\"a.txt\", \"b.txt\"]");
    CHECK_GLOB(d, "src/*.txt", NULL, "[\"src/x.txt\"]");
    CHECK_GLOB(d, "src/*/*.txt", NULL, "[\"src/y/z.txt\"]");
    CHECK_GLOB(d, "*/*.txt", NULL, "[\"src/x.txt\"]");
    CHECK_GLOB(d, "src*", NULL, "[\"src\", \"srcdir\"]");
    CHECK_GLOB(d, "dir?", NULL, "[\"dir1\", \"dir2\"]");
    CHECK_GLOB(d, "[ab].txt", NULL, "[\"a.txt\", \"b.txt\"]");
    CHECK_GLOB(d, "[^a].txt", NULL, "[\"b.txt\"]");
    /* an escaped wildcard is no wildcard: the path is taken as written */
    CHECK_GLOB(d, "x\\*y", NULL, "[]");
    CHECK_GLOB(d, "*.none", NULL, "[]");
    CHECK_GLOB(d, "c.md", NULL, "[\"c.md\"]");
    CHECK_GLOB(d, "dir2", NULL, "[\"dir2\"]");
    CHECK_GLOB(d, "nope", NULL, "[]");
    CHECK_GLOB(d, "lit\\*", NULL, "[\"lit\\*\"]");
    CHECK_GLOB(d, "*.txt", "b.txt\n", "[\"a.txt\"]");
    CHECK_GLOB(d, "src/*", "src\n!src/y/z.txt\n", "[\"src/y\"]");
    CHECK_GLOB(d, "c.md", "*.md\n", "[]");
    CHECK_GLOB(d, "src/[", NULL, "'src/[': syntax error in pattern");
    fs_rm_rf(d);
}

TEST(errors_name_the_pattern)
{
    struct ignore *ig = NULL;
    struct kiln_error *err = NULL;
    CHECK(ignore_parse("ok\n[z\n", 6, &ig, &err) < 0);
    CHECK(err && strstr(err->msg, "'[z'"));
    kiln_error_free(&err);
    CHECK(ignore_parse("!\n", 2, &ig, &err) < 0);
    CHECK_STR_EQ(err ? err->msg : NULL, "illegal exclusion pattern: \"!\"");
    kiln_error_free(&err);
    /* valid for filepath.Match but not as a Go regexp */
    CHECK(ignore_parse("a\\e*\n", 5, &ig, &err) < 0);
    CHECK(err && strstr(err->msg, "'a\\e*'"));
    kiln_error_free(&err);
    char *big = xmalloc(70000);
    memset(big, 'a', 69999);
    big[69999] = '\0';
    CHECK(ignore_parse(big, strlen(big), &ig, &err) < 0);
    CHECK(err && strstr(err->msg, "longer than"));
    kiln_error_free(&err);
    free(big);
}

static bool excluded_by(const char *pattern, const char *path)
{
    struct ignore *ig = NULL;
    if (ignore_parse(pattern, strlen(pattern), &ig, NULL) < 0)
        return false;
    bool m = ignore_match(ig, path);
    ignore_free(ig);
    return m;
}

TEST(regexp_quirks)
{
    /* patternmatcher hands `\x` to Go's regexp as is */
    CHECK(excluded_by("\\d", "7"));
    CHECK(!excluded_by("\\d", "d"));
    CHECK(excluded_by("a\\.b*", "a.bc"));
    CHECK(excluded_by("x\\x41*", "xA"));
    /* \Q..\E quotes the rest of the regexp, including the final '$' */
    CHECK(excluded_by("\\Q*", "[^/]*$"));
    CHECK(excluded_by("\\Q*", "[^/]*$tail"));
    CHECK(!excluded_by("\\Q*", "Qx"));
    /* an unescaped ^ is an anchor inside a regexp, a character otherwise */
    CHECK(excluded_by("a^", "a^"));
    CHECK(!excluded_by("a^*", "a^b"));
    /* classes go through as Go classes */
    CHECK(excluded_by("[[:digit:]]x", "1x"));
    CHECK(excluded_by("\\pL*", "éa"));
    CHECK(!excluded_by("\\pL*", "1a"));
    CHECK(excluded_by("[\\PL]*", "1a"));
    /* braces are escaped by patternmatcher, so \p{Lu} is \p followed by '\': invalid */
    struct ignore *ig = NULL;
    struct kiln_error *err = NULL;
    CHECK(ignore_parse("\\p{Lu}\n", 7, &ig, &err) < 0);
    kiln_error_free(&err);
    /* '*' inside a class becomes [^/]* there: [*] is the class [[^/] then ']' */
    CHECK(excluded_by("x[*]", "x]"));
    CHECK(excluded_by("x[*]", "x[^]"));
    CHECK(!excluded_by("x[*]", "x*"));
    /* '.' in '**' does not match a newline */
    CHECK(!excluded_by("a**/*.txt", "a\nb/c.txt"));
    CHECK(excluded_by("a**/*.txt", "ab/c.txt"));
}

TEST(ignore_load_choice)
{
    const char *files[] = {"Dockerfile", "sub/app.Dockerfile", NULL};
    _cleanup_free_ char *d = tree(files);
    _cleanup_close_ int fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct ignore *ig = NULL;
    char *used = NULL;
    CHECK_INT_EQ(ignore_load(fd, NULL, &ig, &used, NULL), 0);
    CHECK(used == NULL && ignore_count(ig) == 0);
    ignore_free(ig);
    write_file(fd, ".dockerignore", "a\nb\n");
    CHECK_INT_EQ(ignore_load(fd, "-", &ig, &used, NULL), 0);
    CHECK_STR_EQ(used, ".dockerignore");
    CHECK_INT_EQ(ignore_count(ig), 2);
    free(used);
    ignore_free(ig);
    write_file(fd, "sub/app.Dockerfile.dockerignore", "x\n");
    _cleanup_free_ char *df = xasprintf("%s/sub/app.Dockerfile", d);
    CHECK_INT_EQ(ignore_load(fd, df, &ig, &used, NULL), 0);
    CHECK(used && strstr(used, "sub/app.Dockerfile.dockerignore"));
    CHECK_INT_EQ(ignore_count(ig), 1);
    free(used);
    ignore_free(ig);
    /* a .dockerignore symlink leading out of the context is resolved inside it */
    unlinkat(fd, ".dockerignore", 0);
    CHECK(symlinkat("/etc/passwd", fd, ".dockerignore") == 0);
    CHECK_INT_EQ(ignore_load(fd, NULL, &ig, &used, NULL), 0);
    CHECK(used == NULL && ignore_count(ig) == 0);
    ignore_free(ig);
    fs_rm_rf(d);
}

static bool listing_is(const char *dir, const char *ign, const char *want)
{
    int r;
    char **l = walk_list(dir, "", ign, &r, NULL);
    char *got = strv_join(l);
    bool ok = r == 0 && strcmp(got, want) == 0;
    if (!ok)
        fprintf(stderr, "  got %s (r=%d)\n  want %s\n", got, r, want);
    free(got);
    strv_free(l);
    return ok;
}

TEST(excluded_dir_is_not_opened)
{
    /* An unreadable excluded directory proves the walk never opens it.  The
     * check runs in a child without capabilities, so that even root is
     * refused by the mode bits. */
    const char *files[] = {"node_modules/x/y", "src/a", NULL};
    _cleanup_free_ char *d = tree(files);
    _cleanup_free_ char *nm = xasprintf("%s/node_modules/x", d);
    CHECK(chmod(nm, 0) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        cap_t none = cap_init();
        if (!none || cap_set_proc(none) < 0)
            _exit(3);
        if (access(nm, R_OK) == 0)
            _exit(4);
        bool ok = listing_is(d, "node_modules\n", "[\"dir src\", \"file src/a\"]") &&
                  listing_is(d, "**/x\n", "[\"dir node_modules\", \"dir src\", \"file src/a\"]") &&
                  /* walked for a possible exception: unreadable is ignored */
                  listing_is(d, "node_modules\n!node_modules/x/keep\n",
                             "[\"dir src\", \"file src/a\"]");
        _exit(ok ? 0 : 1);
    }
    int status = -1;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    chmod(nm, 0755);
    fs_rm_rf(d);
}

/* ---- fuzz corpus replay -------------------------------------------------------------- */

/* The fuzz target itself, so that the kept corpus runs through exactly the
 * code the fuzzer ran (under ASan when this test is built by `make asan`). */
#include "../fuzz/fuzz_ignore.c"

static void run_input(const uint8_t *data, size_t size)
{
    LLVMFuzzerTestOneInput(data, size);
}

static void replay_corpus(void)
{
    int n = harness_replay_corpus("ignore", run_input);
    if (n < 0) {
        harness_case("fuzz corpus ignore", 0, "tests/fuzz/corpus/ignore is missing (run from the source root)");
        return;
    }
    /* reaching this line without a crash is the test */
    harness_case("fuzz corpus ignore replayed", n > 0, "no corpus files");
    printf("fuzz corpus ignore: %d inputs replayed\n", n);
}

int main(void)
{
    RUN(walk_order_and_subpath);
    RUN(walk_excluded_subpath);
    RUN(walk_symlinks_not_followed);
    RUN(walk_skip);
    RUN(walk_parent_results_semantics);
    RUN(glob);
    RUN(errors_name_the_pattern);
    RUN(regexp_quirks);
    RUN(ignore_load_choice);
    RUN(excluded_dir_is_not_opened);
    run_cases_tsv();
    run_readall();
    run_walk_jsonl();
    replay_corpus();
    return harness_done();
}
