/* The build cache: content-addressed keys chained from the base image
 * through each instruction, and small records naming the layer a step made.
 * Keys never contain mtimes or secrets. */
#ifndef KILN_CACHE_H
#define KILN_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "layers/descriptor.h"
#include "layers/store.h"
#include "lib/error.h"
#include "lib/sha256.h"

/* A key under construction: length-prefixed fields, so that no two field
 * sequences hash alike. */
struct cache_key {
    struct sha256 h;
};

void cache_key_begin(struct cache_key *k, const char *parent /* digest or NULL */);
void cache_key_add(struct cache_key *k, const char *field, const void *data, size_t len);
void cache_key_add_str(struct cache_key *k, const char *field, const char *s);
void cache_key_add_strv(struct cache_key *k, const char *field, char *const *v);
void cache_key_add_int(struct cache_key *k, const char *field, int64_t v);
void cache_key_end(struct cache_key *k, char out[DIGEST_STR_LEN]);

struct cache_record {
    struct descriptor layer;
    char diff_id[DIGEST_STR_LEN];
    char *created; /* RFC 3339: when the layer was made */
};

void cache_record_free(struct cache_record *r);
/* 0 on a hit whose layer blob is present; -ENOENT on a miss. */
int cache_lookup(struct store *s, const char *key, struct cache_record *ret);
int cache_save(struct store *s, const char *key, const struct cache_record *rec,
               struct kiln_error **err);
/* Every record key in the store (for prune and cache export). */
int cache_list(struct store *s, char ***ret, struct kiln_error **err);
int cache_record_to_json(const struct cache_record *rec, char **ret, size_t *ret_len);
int cache_record_parse(const char *buf, size_t len, struct cache_record *ret,
                       struct kiln_error **err);

#endif
