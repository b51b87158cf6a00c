/* A small table-driven test harness: checks record file:line and go on;
 * main() ends with "N passed, N failed[, N skipped]".
 *
 *   TEST(name) { CHECK(x); CHECK_STR_EQ(a, b); }
 *   int main(void) { RUN(name); return harness_done(); }
 */
#ifndef KILN_HARNESS_H
#define KILN_HARNESS_H

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/fsutil.h"
#include "lib/xalloc.h"

static int h_passed, h_failed, h_skipped;
static int h_case_failed;
static const char *h_case;

#define TEST(name) static void test_##name(void)

#define RUN(name)                                                                                  \
    do {                                                                                           \
        h_case = #name;                                                                            \
        h_case_failed = 0;                                                                         \
        test_##name();                                                                             \
        if (h_case_failed)                                                                         \
            h_failed++;                                                                            \
        else                                                                                       \
            h_passed++;                                                                            \
    } while (0)

/* Counts one case directly (for data-driven loops). */
static inline void harness_case(const char *name, int ok, const char *why)
{
    if (ok) {
        h_passed++;
    } else {
        h_failed++;
        fprintf(stderr, "FAIL %s%s%s\n", name, why ? ": " : "", why ? why : "");
    }
}

static inline void harness_skip(const char *name, const char *reason)
{
    h_skipped++;
    fprintf(stderr, "SKIP %s: %s\n", name, reason);
}

#define H_FAIL(...)                                                                                \
    do {                                                                                           \
        h_case_failed = 1;                                                                         \
        fprintf(stderr, "%s:%d: %s: ", __FILE__, __LINE__, h_case ? h_case : "?");                 \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fputc('\n', stderr);                                                                       \
    } while (0)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            H_FAIL("check failed: %s", #cond);                                                     \
    } while (0)

#define CHECK_INT_EQ(a, b)                                                                         \
    do {                                                                                           \
        long long _a = (long long)(a), _b = (long long)(b);                                        \
        if (_a != _b)                                                                              \
            H_FAIL("%s == %s: %lld != %lld", #a, #b, _a, _b);                                      \
    } while (0)

#define CHECK_STR_EQ(a, b)                                                                         \
    do {                                                                                           \
        const char *_a = (a), *_b = (b);                                                           \
        if (!_a || !_b || strcmp(_a, _b) != 0)                                                     \
            H_FAIL("%s == %s: '%s' != '%s'", #a, #b, _a ? _a : "(null)", _b ? _b : "(null)");      \
    } while (0)

static inline int harness_done(void)
{
    printf("%d passed, %d failed", h_passed, h_failed);
    if (h_skipped)
        printf(", %d skipped", h_skipped);
    printf("\n");
    return h_failed ? 1 : 0;
}

/* ../shared/conformance, or $KILN_CONFORMANCE. */
static inline const char *harness_conformance_dir(void)
{
    const char *d = getenv("KILN_CONFORMANCE");
    return d && *d ? d : "../shared/conformance";
}

/* A file of the conformance data (NUL-terminated; its length in *ret_len
 * unless NULL); without it the test cannot run: a message and exit 2. */
static inline char *harness_read_conformance(const char *rel, size_t *ret_len)
{
    char *path = xasprintf("%s/%s", harness_conformance_dir(), rel);
    char *buf = NULL;
    size_t len = 0;
    int r = fs_read_file_at(AT_FDCWD, path, 64u << 20, &buf, &len);
    if (r < 0) {
        fprintf(stderr, "cannot read %s: %s\n", path, strerror(-r));
        exit(2);
    }
    free(path);
    if (ret_len)
        *ret_len = len;
    return buf;
}

/* Runs every file of a kept fuzz corpus (tests/fuzz/corpus/NAME, read from
 * the source root) through fn, the fuzz target's own code; reaching the end
 * without a crash is the test.  Returns the number of inputs, -1 when the
 * directory is missing. */
static inline int harness_replay_corpus(const char *name, void (*fn)(const uint8_t *, size_t))
{
    char *dir = xasprintf("tests/fuzz/corpus/%s", name);
    DIR *d = opendir(dir);
    int n = -1;
    if (d) {
        n = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
            if (de->d_name[0] == '.')
                continue;
            char *path = xasprintf("%s/%s", dir, de->d_name);
            char *buf = NULL;
            size_t len = 0;
            if (fs_read_file_at(AT_FDCWD, path, 1u << 20, &buf, &len) == 0) {
                fn((const uint8_t *)buf, len);
                n++;
            }
            free(buf);
            free(path);
        }
        closedir(d);
    }
    free(dir);
    return n;
}

#endif
