#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/strset.h"
#include "lib/xalloc.h"

static char gone_marker;
#define STRSET_GONE (&gone_marker)

size_t strset_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return (size_t)h;
}

/* The slot holding key, or else the empty slot that ends its probe. */
static size_t find(const struct strset *s, const char *key)
{
    size_t i = strset_hash(key) & (s->cap - 1);
    while (s->slots[i] && (s->slots[i] == STRSET_GONE || strcmp(s->slots[i], key) != 0))
        i = (i + 1) & (s->cap - 1);
    return i;
}

static void grow(struct strset *s)
{
    struct strset bigger = {.cap = s->cap ? s->cap * 2 : 64};
    bigger.slots = xcalloc(bigger.cap, sizeof(char *));
    for (size_t i = 0; i < s->cap; i++)
        if (s->slots[i] && s->slots[i] != STRSET_GONE) {
            bigger.slots[find(&bigger, s->slots[i])] = s->slots[i];
            bigger.used++;
        }
    free(s->slots);
    *s = bigger;
}

void strset_add(struct strset *s, const char *key)
{
    if (strset_contains(s, key))
        return;
    if ((s->used + 1) * 2 > s->cap)
        grow(s);
    s->slots[find(s, key)] = xstrdup(key);
    s->used++;
}

bool strset_contains(const struct strset *s, const char *key)
{
    return s->cap && s->slots[find(s, key)];
}

void strset_remove(struct strset *s, const char *key)
{
    if (!s->cap)
        return;
    size_t i = find(s, key);
    if (!s->slots[i])
        return;
    free(s->slots[i]);
    s->slots[i] = STRSET_GONE; /* keeps the probe chains behind it intact */
}

void strset_free(struct strset *s)
{
    for (size_t i = 0; i < s->cap; i++)
        if (s->slots[i] != STRSET_GONE)
            free(s->slots[i]);
    free(s->slots);
    memset(s, 0, sizeof(*s));
}
