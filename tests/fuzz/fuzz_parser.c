/* libFuzzer target: the Dockerfile reader and everything on it (see
 * fuzz_parser_run.h and tests/fuzz/README.md). */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_parser_run.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_parser_run(data, size);
    return 0;
}
