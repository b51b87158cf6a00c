/* libFuzzer target: Docker seccomp profiles (seccomp/docker_profile.c), the
 * one runtime input a user hands kiln as a file.  Builds the libseccomp
 * context and exports it, as runtime_run would; nothing is loaded. */
#include <stddef.h>
#include <stdint.h>

#include "lib/error.h"
#include "seccomp/filter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FILTER_PROFILE_MAX)
        return 0;
    scmp_filter_ctx ctx = NULL;
    struct kiln_error *err = NULL;
    /* odd sizes exercise root emulation's precedence too */
    bool rootemu = size & 1;
    uint64_t caps = 0xa80425fbull; /* Docker's default set */
    if (filter_from_docker_json((const char *)data, size, caps, rootemu, &ctx, &err) == 0) {
        struct filter_prog *p = NULL;
        if (rootemu)
            filter_add_rootemu(ctx, &err);
        if (filter_export(ctx, NULL, 0, &p, &err) == 0)
            filter_prog_free(p);
        seccomp_release(ctx);
    }
    kiln_error_free(&err);
    return 0;
}
