/* A small table-driven test harness: checks record file:line and go on;
 * main() ends with "N passed, N failed[, N skipped]".
 *
 *   TEST(name) { CHECK(x); CHECK_STR_EQ(a, b); }
 *   int main(void) { RUN(name); return harness_done(); }
 */
#ifndef KILN_HARNESS_H
#define KILN_HARNESS_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

#endif
