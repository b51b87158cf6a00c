/* libFuzzer: credentials files (auth.json, ~/.docker/config.json) and the
 * insecure registries list; the files are the user's, but a damaged or
 * hostile one must give an error, never a crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "layers/registry_internal.h"
#include "lib/xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kiln_error *err = NULL;
    char *u = NULL, *p = NULL;
    if (reg_authjson_lookup((const char *)data, size, "localhost:5000", "a/b", &u, &p, &err) ==
        0) {
        free(u);
        free(p);
    }
    kiln_error_free(&err);
    if (reg_authjson_lookup((const char *)data, size, "docker.io", "library/x", &u, &p, &err) ==
        0) {
        free(u);
        free(p);
    }
    kiln_error_free(&err);
    (void)reg_conf_names_insecure((const char *)data, size, "localhost:5000");
    char *s = xstrndup((const char *)data, size);
    char *dec = NULL;
    size_t len = 0;
    if (reg_base64_decode(s, &dec, &len) == 0)
        free(dec);
    char *k = reg_auth_key_normalize(s);
    free(k);
    free(s);
    return 0;
}
