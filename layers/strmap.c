#include <stdlib.h>
#include <string.h>

#include "layers/image.h"
#include "lib/xalloc.h"

static size_t strmap_find(const struct strmap *m, const char *key, bool *found)
{
    return strv_sorted_find(m->keys, m->n, key, found);
}

void strmap_set(struct strmap *m, const char *key, const char *value)
{
    bool found;
    size_t i = strmap_find(m, key, &found);
    if (found) {
        free(m->values[i]);
        m->values[i] = xstrdup(value ? value : "");
        return;
    }
    m->keys = xreallocarray(m->keys, m->n + 1, sizeof(char *));
    m->values = xreallocarray(m->values, m->n + 1, sizeof(char *));
    memmove(m->keys + i + 1, m->keys + i, (m->n - i) * sizeof(char *));
    memmove(m->values + i + 1, m->values + i, (m->n - i) * sizeof(char *));
    m->keys[i] = xstrdup(key);
    m->values[i] = xstrdup(value ? value : "");
    m->n++;
}

const char *strmap_get(const struct strmap *m, const char *key)
{
    bool found;
    size_t i = strmap_find(m, key, &found);
    return found ? m->values[i] : NULL;
}

bool strmap_remove(struct strmap *m, const char *key)
{
    bool found;
    size_t i = strmap_find(m, key, &found);
    if (!found)
        return false;
    free(m->keys[i]);
    free(m->values[i]);
    memmove(m->keys + i, m->keys + i + 1, (m->n - i - 1) * sizeof(char *));
    memmove(m->values + i, m->values + i + 1, (m->n - i - 1) * sizeof(char *));
    m->n--;
    return true;
}

void strmap_free(struct strmap *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->keys[i]);
        free(m->values[i]);
    }
    free(m->keys);
    free(m->values);
    memset(m, 0, sizeof(*m));
}

void strmap_copy(struct strmap *dst, const struct strmap *src)
{
    memset(dst, 0, sizeof(*dst));
    for (size_t i = 0; i < src->n; i++)
        strmap_set(dst, src->keys[i], src->values[i]);
}
