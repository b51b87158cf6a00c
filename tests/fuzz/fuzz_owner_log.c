/* libFuzzer target: the runtime's owner log (layers/fsmeta.c,
 * owner_table_from_log).  Its lines are written by kiln, but the paths in
 * them are names a RUN step chose; the diff reads the log back.  After the
 * parse, a few lookups (the table is sorted and searched). */
#include <stddef.h>
#include <stdint.h>

#include "layers/layer_internal.h"
#include "lib/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct owner_table *t = NULL;
    struct kiln_error *err = NULL;
    if (owner_table_from_log((const char *)data, size, &t, &err) == 0) {
        static const char *const paths[] = {"a", "etc/shadow", "", "x/y", "\\"};
        uid_t u;
        gid_t g;
        for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
            owner_table_lookup(t, paths[i], &u, &g);
        owner_table_free(t);
    }
    kiln_error_free(&err);
    return 0;
}
