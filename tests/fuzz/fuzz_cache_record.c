/* libFuzzer target: build-cache records (engine/cache.c), read from the
 * store's cache/ directory and imported from registries (--cache-from): any
 * bytes must parse or fail cleanly, and what parses must write back and
 * parse to the same record. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cache.h"
#include "lib/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cache_record rec;
    struct kiln_error *err = NULL;
    if (cache_record_parse((const char *)data, size, &rec, &err) < 0) {
        kiln_error_free(&err);
        return 0;
    }
    char *json = NULL;
    size_t len = 0;
    cache_record_to_json(&rec, &json, &len);
    struct cache_record back;
    if (cache_record_parse(json, len, &back, &err) < 0)
        abort();
    if (strcmp(back.layer.digest, rec.layer.digest) != 0 ||
        strcmp(back.diff_id, rec.diff_id) != 0 || back.layer.size != rec.layer.size ||
        strcmp(back.layer.media_type, rec.layer.media_type) != 0 ||
        (back.created == NULL) != (rec.created == NULL) ||
        (back.created && strcmp(back.created, rec.created) != 0))
        abort();
    cache_record_free(&back);
    cache_record_free(&rec);
    free(json);
    return 0;
}
