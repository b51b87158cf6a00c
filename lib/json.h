/* JSON through yajl: a generator with short names, and tree accessors. */
#ifndef KILN_JSON_H
#define KILN_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "error.h"

/* Largest JSON document kiln reads (configs, manifests, index.json). */
#define JSON_MAX_SIZE (64u << 20)
/* Deepest nesting of arrays and objects kiln reads. */
#define JSON_MAX_DEPTH 256

struct json_gen {
    yajl_gen g;
};

void json_gen_init(struct json_gen *j, bool pretty);
void json_gen_free(struct json_gen *j);
void json_obj_open(struct json_gen *j);
void json_obj_close(struct json_gen *j);
void json_arr_open(struct json_gen *j);
void json_arr_close(struct json_gen *j);
void json_key(struct json_gen *j, const char *key);
void json_str(struct json_gen *j, const char *s); /* NULL writes null */
void json_strn(struct json_gen *j, const char *s, size_t len);
void json_int(struct json_gen *j, int64_t v);
void json_bool(struct json_gen *j, bool v);
void json_null(struct json_gen *j);
/* key + string value; nothing when s is NULL. */
void json_kv_str(struct json_gen *j, const char *key, const char *s);
/* key + array of strings; nothing when v is NULL. */
void json_kv_strv(struct json_gen *j, const char *key, char *const *v);
/* The document so far (owned by the generator until json_gen_free). */
const char *json_gen_buf(struct json_gen *j, size_t *ret_len);
/* A copy of the document; caller frees. */
char *json_gen_take(struct json_gen *j, size_t *ret_len);

/* Parses a document (need not be NUL-terminated). */
int json_parse(const char *buf, size_t len, yajl_val *ret, struct kiln_error **err);
/* Deepest nesting of arrays and objects outside strings; yajl frees its
 * trees recursively, so depth must be capped before it parses (json_parse
 * caps it at JSON_MAX_DEPTH; stricter readers check it first). */
size_t json_depth(const char *buf, size_t len);

/* Accessors return NULL / defaults when the key is missing or of another type. */
yajl_val json_get(yajl_val obj, const char *key);
const char *json_get_str(yajl_val obj, const char *key);
yajl_val json_get_obj(yajl_val obj, const char *key);
yajl_val json_get_arr(yajl_val obj, const char *key);
bool json_get_int(yajl_val obj, const char *key, int64_t *ret);
/* A JSON array of strings as a NULL-terminated vector (NULL if not one). */
char **json_to_strv(yajl_val arr);

#endif
