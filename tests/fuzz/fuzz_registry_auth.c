/* libFuzzer: registry answers about authentication, untrusted bytes from
 * the network: WWW-Authenticate challenges and token endpoint JSON. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "layers/registry_internal.h"
#include "lib/xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct kiln_error *err = NULL;
    if (data[0] & 1) {
        char *s = xstrndup((const char *)data + 1, size - 1);
        struct reg_challenge *c = NULL;
        size_t n = 0;
        if (reg_challenges_parse(s, &c, &n, &err) == 0)
            reg_challenges_free(c, n);
        free(s);
    } else {
        char *tok = NULL;
        int64_t exp = 0;
        if (reg_token_parse((const char *)data + 1, size - 1, &tok, &exp, &err) == 0)
            free(tok);
    }
    kiln_error_free(&err);
    return 0;
}
