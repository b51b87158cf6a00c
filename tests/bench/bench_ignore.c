/* Benchmark: a 100,000-file context against a 50-pattern .dockerignore.
 *
 *   build/bench/bench_ignore [DIR]
 *
 * 1. matching only: 100,000 paths (in walk order) through the walker's
 *    matcher (ignore_match_parent) and through ignore_match;
 * 2. the real walk of DIR/ctx (created on first use): the same 100,000 files
 *    plus a 100,000-file node_modules that the patterns exclude;
 * 3. the excluded node_modules alone, to show it costs nothing.
 * Times are the best of 5 runs. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dockerfile/ignore.h"
#include "dockerfile/walk.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"

static const char *const patterns =
    "# a .dockerignore of the usual kind: 50 patterns\n"
    ".git\n.gitignore\n.dockerignore\nDockerfile*\n**/.DS_Store\nnode_modules\n"
    "**/node_modules\nbower_components\n.npm\n.yarn/cache\ncoverage\n.nyc_output\n"
    "dist\nbuild\nout\ntarget\n**/__pycache__\n**/*.pyc\n**/*.pyo\n*.egg-info\n.tox\n"
    ".venv\nvenv\n.mypy_cache\n.pytest_cache\n*.log\nlogs/**\ntmp/**\n*.tmp\n*.swp\n"
    "*~\n.idea\n.vscode\n*.iml\ndocs/**\n!docs/api/*.md\n**/*.bak\n**/*.orig\n"
    "secrets/**\n*.pem\n*.key\n.env\n.env.*\n!.env.example\nsrc/**/test_*.py\n"
    "src/**/*_test.go\n**/testdata/**\n!src/keep/**\nvendor/**/*.a\n*.o\n";

#define NFILES 100000

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* 100,000 paths: src/pNN/mNN/fNNN.ext and a few other top-level dirs */
static char **make_paths(void)
{
    static const char *const ext[] = {"c", "h", "py", "pyc", "go", "md", "log", "txt", "js", "o"};
    char **v = xcalloc(NFILES + 1, sizeof(char *));
    size_t n = 0;
    for (int p = 0; n < NFILES; p++)
        for (int m = 0; m < 20 && n < NFILES; m++)
            for (int f = 0; f < 50 && n < NFILES; f++) {
                const char *top = p % 10 == 0 ? "docs" : p % 10 == 1 ? "tests" : "src";
                v[n++] = xasprintf("%s/p%03d/m%02d/f%03d.%s", top, p, m, f, ext[(f + m) % 10]);
            }
    return v;
}

/* walk-style matching: each path with its parents' states, as the walker
 * does (directories are matched once, like a real walk) */
static size_t match_parent_all(const struct ignore *ig, char **paths)
{
    size_t n = ignore_count(ig), excluded = 0;
    uint8_t *st[4];
    for (int i = 0; i < 4; i++)
        st[i] = xcalloc(n + 1, 1);
    char prev[3][64] = {"", "", ""};
    for (size_t k = 0; paths[k]; k++) {
        const char *p = paths[k];
        size_t len = strlen(p), comp = 0;
        for (size_t i = 0; i <= len; i++) {
            if (i < len && p[i] != '/')
                continue;
            if (i < len) { /* a directory: match it only when it is new */
                if (comp < 3 && strlen(prev[comp]) == i && memcmp(prev[comp], p, i) == 0) {
                    comp++;
                    continue;
                }
                if (comp < 3) {
                    memcpy(prev[comp], p, i);
                    prev[comp][i] = '\0';
                    for (size_t c = comp + 1; c < 3; c++)
                        prev[c][0] = '\0';
                }
            }
            bool m = ignore_match_parent(ig, p, i, comp ? st[comp - 1] : NULL, st[comp]);
            if (i == len)
                excluded += m;
            comp++;
        }
    }
    for (int i = 0; i < 4; i++)
        free(st[i]);
    return excluded;
}

static int count_cb(const struct walk_entry *e, void *ud, struct kiln_error **err)
{
    (*(size_t *)ud)++;
    return WALK_CONTINUE;
}

static void make_tree(const char *root, char **paths)
{
    char *marker = xasprintf("%s/.complete", root);
    if (access(marker, F_OK) == 0) {
        free(marker);
        return;
    }
    fprintf(stderr, "creating %d + %d files under %s ...\n", NFILES, NFILES, root);
    fs_rm_rf(root);
    fs_mkdir_p(root, 0755);
    int rfd = open(root, O_RDONLY | O_DIRECTORY);
    for (size_t k = 0; paths[k]; k++) {
        char *d = xstrdup(paths[k]);
        *strrchr(d, '/') = '\0';
        fs_mkdir_p_at(rfd, d, 0755);
        int fd = openat(rfd, paths[k], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        close(fd);
        free(d);
    }
    for (int i = 0; i < NFILES; i++) {
        char *p = xasprintf("node_modules/pkg%03d/lib/f%03d.js", i / 100, i % 100);
        char *d = xstrdup(p);
        *strrchr(d, '/') = '\0';
        fs_mkdir_p_at(rfd, d, 0755);
        close(openat(rfd, p, O_WRONLY | O_CREAT | O_TRUNC, 0644));
        free(d);
        free(p);
    }
    close(rfd);
    close(open(marker, O_WRONLY | O_CREAT, 0644));
    free(marker);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "build/bench";
    struct ignore *ig = NULL;
    struct kiln_error *err = NULL;
    if (ignore_parse(patterns, strlen(patterns), &ig, &err) < 0) {
        fprintf(stderr, "%s\n", err->msg);
        return 1;
    }
    printf("patterns: %zu\n", ignore_count(ig));
    char **paths = make_paths();

    double best = 1e9;
    size_t excl = 0;
    for (int r = 0; r < 5; r++) {
        double t = now();
        excl = match_parent_all(ig, paths);
        t = now() - t;
        best = t < best ? t : best;
    }
    printf("match (walk-style, parent results): %d paths, %zu excluded, %.1f ms\n", NFILES, excl,
           best * 1e3);
    best = 1e9;
    for (int r = 0; r < 5; r++) {
        double t = now();
        excl = 0;
        for (size_t k = 0; paths[k]; k++)
            excl += ignore_match(ig, paths[k]);
        t = now() - t;
        best = t < best ? t : best;
    }
    printf("match (MatchesOrParentMatches): %d paths, %zu excluded, %.1f ms\n", NFILES, excl,
           best * 1e3);

    char *ctx = xasprintf("%s/ctx", dir);
    make_tree(ctx, paths);
    best = 1e9;
    size_t seen = 0;
    for (int r = 0; r < 5; r++) {
        seen = 0;
        double t = now();
        if (context_walk(ctx, "", ig, count_cb, &seen, &err) < 0) {
            fprintf(stderr, "walk: %s\n", err->msg);
            return 1;
        }
        t = now() - t;
        best = t < best ? t : best;
    }
    printf("walk with .dockerignore: 200,000 files on disk (100,000 in node_modules), "
           "%zu entries kept, %.1f ms\n", seen, best * 1e3);
    best = 1e9;
    for (int r = 0; r < 5; r++) {
        seen = 0;
        double t = now();
        context_walk(ctx, "", NULL, count_cb, &seen, &err);
        t = now() - t;
        best = t < best ? t : best;
    }
    printf("walk without .dockerignore: %zu entries, %.1f ms\n", seen, best * 1e3);
    /* node_modules alone: the context is its parent; exclude all but it */
    best = 1e9;
    for (int r = 0; r < 5; r++) {
        seen = 0;
        double t = now();
        context_walk(ctx, "node_modules", NULL, count_cb, &seen, &err);
        t = now() - t;
        best = t < best ? t : best;
    }
    printf("node_modules walked (not excluded): %zu entries, %.1f ms\n", seen, best * 1e3);
    struct ignore *nm = NULL;
    ignore_parse("node_modules\n", 13, &nm, &err);
    int rfd = open(ctx, O_RDONLY | O_DIRECTORY);
    best = 1e9;
    for (int r = 0; r < 5; r++) {
        double t = now();
        char **out = NULL;
        context_glob(rfd, "node_modules*", nm, &out, &err);
        strv_free(out);
        t = now() - t;
        best = t < best ? t : best;
    }
    printf("node_modules excluded (top-level listing only): %.3f ms\n", best * 1e3);
    close(rfd);
    ignore_free(nm);
    ignore_free(ig);
    strv_free(paths);
    free(ctx);
    return 0;
}
