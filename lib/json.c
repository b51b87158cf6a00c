#include "json.h"

#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

void json_gen_init(struct json_gen *j, bool pretty)
{
    j->g = yajl_gen_alloc(NULL);
    if (!j->g)
        abort();
    if (pretty) {
        yajl_gen_config(j->g, yajl_gen_beautify, 1);
        yajl_gen_config(j->g, yajl_gen_indent_string, "  ");
    }
    yajl_gen_config(j->g, yajl_gen_validate_utf8, 0);
}

void json_gen_free(struct json_gen *j)
{
    if (j->g)
        yajl_gen_free(j->g);
    j->g = NULL;
}

void json_obj_open(struct json_gen *j)
{
    yajl_gen_map_open(j->g);
}
void json_obj_close(struct json_gen *j)
{
    yajl_gen_map_close(j->g);
}
void json_arr_open(struct json_gen *j)
{
    yajl_gen_array_open(j->g);
}
void json_arr_close(struct json_gen *j)
{
    yajl_gen_array_close(j->g);
}
void json_key(struct json_gen *j, const char *key)
{
    yajl_gen_string(j->g, (const unsigned char *)key, strlen(key));
}
void json_strn(struct json_gen *j, const char *s, size_t len)
{
    yajl_gen_string(j->g, (const unsigned char *)s, len);
}
void json_str(struct json_gen *j, const char *s)
{
    if (!s)
        yajl_gen_null(j->g);
    else
        json_strn(j, s, strlen(s));
}
void json_int(struct json_gen *j, int64_t v)
{
    yajl_gen_integer(j->g, v);
}
void json_bool(struct json_gen *j, bool v)
{
    yajl_gen_bool(j->g, v);
}
void json_null(struct json_gen *j)
{
    yajl_gen_null(j->g);
}
void json_kv_str(struct json_gen *j, const char *key, const char *s)
{
    if (!s)
        return;
    json_key(j, key);
    json_str(j, s);
}
void json_kv_strv(struct json_gen *j, const char *key, char *const *v)
{
    if (!v)
        return;
    json_key(j, key);
    json_arr_open(j);
    for (size_t i = 0; v[i]; i++)
        json_str(j, v[i]);
    json_arr_close(j);
}

const char *json_gen_buf(struct json_gen *j, size_t *ret_len)
{
    const unsigned char *buf = NULL;
    size_t len = 0;
    yajl_gen_get_buf(j->g, &buf, &len);
    if (ret_len)
        *ret_len = len;
    return (const char *)buf;
}

char *json_gen_take(struct json_gen *j, size_t *ret_len)
{
    size_t len = 0;
    const char *b = json_gen_buf(j, &len);
    char *r = xmalloc(len + 1);
    memcpy(r, b, len);
    r[len] = '\0';
    if (ret_len)
        *ret_len = len;
    return r;
}

size_t json_depth(const char *buf, size_t len)
{
    size_t depth = 0, max = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max)
                max = depth;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return max;
}

int json_parse(const char *buf, size_t len, yajl_val *ret, struct kiln_error **err)
{
    if (len > JSON_MAX_SIZE)
        return kiln_error_set(err, 0, "JSON document too large (%zu bytes)", len);
    if (memchr(buf, '\0', len))
        return kiln_error_set(err, 0, "invalid JSON: NUL byte in document");
    if (json_depth(buf, len) > JSON_MAX_DEPTH)
        return kiln_error_set(err, 0, "invalid JSON: nested deeper than %d", JSON_MAX_DEPTH);
    char *copy = xmalloc(len + 1);
    memcpy(copy, buf, len);
    copy[len] = '\0';
    char ebuf[256] = "";
    yajl_val v = yajl_tree_parse(copy, ebuf, sizeof(ebuf));
    free(copy);
    if (!v) {
        size_t n = strlen(ebuf);
        while (n > 0 && (ebuf[n - 1] == '\n' || ebuf[n - 1] == ' '))
            ebuf[--n] = '\0';
        return kiln_error_set(err, 0, "invalid JSON: %s", ebuf[0] ? ebuf : "parse error");
    }
    *ret = v;
    return 0;
}

yajl_val json_get(yajl_val obj, const char *key)
{
    if (!obj || !YAJL_IS_OBJECT(obj))
        return NULL;
    for (size_t i = 0; i < obj->u.object.len; i++)
        if (strcmp(obj->u.object.keys[i], key) == 0)
            return obj->u.object.values[i];
    return NULL;
}

const char *json_get_str(yajl_val obj, const char *key)
{
    yajl_val v = json_get(obj, key);
    return v && YAJL_IS_STRING(v) ? v->u.string : NULL;
}

yajl_val json_get_obj(yajl_val obj, const char *key)
{
    yajl_val v = json_get(obj, key);
    return v && YAJL_IS_OBJECT(v) ? v : NULL;
}

yajl_val json_get_arr(yajl_val obj, const char *key)
{
    yajl_val v = json_get(obj, key);
    return v && YAJL_IS_ARRAY(v) ? v : NULL;
}

bool json_get_int(yajl_val obj, const char *key, int64_t *ret)
{
    yajl_val v = json_get(obj, key);
    if (!v || !YAJL_IS_INTEGER(v))
        return false;
    *ret = YAJL_GET_INTEGER(v);
    return true;
}

char **json_to_strv(yajl_val arr)
{
    if (!arr || !YAJL_IS_ARRAY(arr))
        return NULL;
    char **v = strv_new();
    for (size_t i = 0; i < arr->u.array.len; i++) {
        yajl_val e = arr->u.array.values[i];
        if (!YAJL_IS_STRING(e)) {
            strv_free(v);
            return NULL;
        }
        strv_push(&v, e->u.string);
    }
    return v;
}
