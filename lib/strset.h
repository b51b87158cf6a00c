/* A set of strings (open addressing, FNV-1a), for streams that must
 * remember which names they have seen. */
#ifndef KILN_STRSET_H
#define KILN_STRSET_H

#include <stdbool.h>
#include <stddef.h>

struct strset {
    char **slots; /* NULL = empty, STRSET_GONE = removed */
    size_t cap;   /* a power of two, or 0 */
    size_t used;  /* live and removed slots */
};

#define STRSET_INIT {NULL, 0, 0}

void strset_add(struct strset *s, const char *key);
bool strset_contains(const struct strset *s, const char *key);
void strset_remove(struct strset *s, const char *key);
void strset_free(struct strset *s);
/* The set's string hash (FNV-1a), for other tables keyed by strings. */
size_t strset_hash(const char *key);

#endif
