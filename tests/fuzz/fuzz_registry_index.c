/* libFuzzer: manifest lists / OCI indexes and manifest sniffing, as a
 * registry sends them; a platform is chosen from whatever parses. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "layers/registry_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kiln_error *err = NULL;
    char *mt = reg_manifest_sniff((const char *)data, size);
    free(mt);
    struct reg_index_entry *e = NULL;
    size_t n = 0;
    if (reg_index_parse((const char *)data, size, &e, &n, &err) == 0) {
        static const char *const plats[] = {"linux/amd64", "linux/arm64/v8", "linux/arm"};
        for (size_t i = 0; i < sizeof(plats) / sizeof(plats[0]); i++) {
            struct reg_platform p;
            if (reg_platform_parse(plats[i], &p, NULL) == 0) {
                int k = reg_index_select(e, n, &p);
                if (k >= (int)n)
                    abort();
                reg_platform_free(&p);
            }
        }
        reg_index_free(e, n);
    }
    kiln_error_free(&err);
    return 0;
}
