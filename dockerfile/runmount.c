/* RUN --mount=type=...,key=value,...: BuildKit's parseMount.
 *
 * The value is one CSV record (quotes allowed, "" inside quotes).  Keys are
 * case-insensitive; type defaults to bind; read-only defaults to true for
 * bind, secret and ssh and false for cache and tmpfs. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dockerfile/instructions.h"
#include "dockerfile/internal.h"
#include "lib/cleanup.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

static const char *const mount_type_names[] = {"bind", "cache", "tmpfs", "secret", "ssh"};
static const char *const sharing_names[] = {"", "shared", "private", "locked"};
static const char *const mount_keys[] = {
    "type", "from", "source", "target", "readonly", "id",          "sharing", "required",
    "size", "mode", "uid",    "gid",    "src",      "dst",         "destination", "ro",
    "rw",   "readwrite", "env",
};

const char *df_mount_type_name(enum df_mount_type t)
{
    return (size_t)t < ARRAY_SIZE(mount_type_names) ? mount_type_names[t] : "?";
}

void df_mount_clear(struct df_mount *m)
{
    if (!m)
        return;
    free(m->from);
    free(m->source);
    free(m->target);
    free(m->id);
    free(m->env);
    free(m->spec);
    memset(m, 0, sizeof(*m));
}

/* One CSV record, as Go's encoding/csv reads it with the defaults. */
static int csv_fields(const char *s, char ***ret, const char **ret_msg)
{
    _cleanup_strv_ char **fields = strv_new();
    _cleanup_strbuf_ struct strbuf f = STRBUF_INIT;
    size_t i = 0, n = strlen(s);
    for (;;) {
        strbuf_reset(&f);
        if (i < n && s[i] == '"') {
            i++;
            for (;;) {
                if (i >= n) {
                    *ret_msg = "extraneous or missing \" in quoted-field";
                    return -1;
                }
                if (s[i] == '"') {
                    if (i + 1 < n && s[i + 1] == '"') {
                        strbuf_addc(&f, '"');
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                strbuf_addc(&f, s[i++]);
            }
            if (i < n && s[i] != ',') {
                *ret_msg = "extraneous or missing \" in quoted-field";
                return -1;
            }
        } else {
            while (i < n && s[i] != ',') {
                if (s[i] == '"') {
                    *ret_msg = "bare \" in non-quoted-field";
                    return -1;
                }
                strbuf_addc(&f, s[i++]);
            }
        }
        strv_push(&fields, strbuf_str(&f));
        if (i >= n)
            break;
        i++; /* the comma */
    }
    *ret = TAKE_PTR(fields);
    return 0;
}

/* Go's strconv.ParseBool. */
static int parse_go_bool(const char *s, bool *ret)
{
    static const char *const t[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const f[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
        if (strcmp(s, t[i]) == 0) {
            *ret = true;
            return 0;
        }
        if (strcmp(s, f[i]) == 0) {
            *ret = false;
            return 0;
        }
    }
    return -1;
}

/* Go's strconv.ParseUint(s, base, 32). */
static int parse_go_uint32(const char *s, int base, uint32_t *ret)
{
    if (!*s)
        return -1;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        int d = (*p >= '0' && *p <= '9') ? *p - '0' : 99;
        if (d >= base)
            return -1;
        v = v * (uint64_t)base + (uint64_t)d;
        if (v > UINT32_MAX)
            return -1;
    }
    *ret = (uint32_t)v;
    return 0;
}

/* docker/go-units RAMInBytes: "64m", "1.5GiB", "512" (binary multiples). */
static int parse_ram_bytes(const char *s, int64_t *ret)
{
    const char *p = s;
    if (!(*p >= '0' && *p <= '9'))
        return -1;
    while (*p >= '0' && *p <= '9')
        p++;
    const char *num_end = p;
    int dots = 0;
    while (*p == '.' && p[1] >= '0' && p[1] <= '9') {
        dots++;
        p++;
        while (*p >= '0' && *p <= '9')
            p++;
        num_end = p;
    }
    if (dots > 1)
        return -1; /* the pattern allows it, the float parser does not */
    if (*p == ' ')
        p++;
    double mult = 1;
    switch (*p) {
    case 'k': case 'K': mult = 1024.0; p++; break;
    case 'm': case 'M': mult = 1024.0 * 1024; p++; break;
    case 'g': case 'G': mult = 1024.0 * 1024 * 1024; p++; break;
    case 't': case 'T': mult = 1024.0 * 1024 * 1024 * 1024; p++; break;
    case 'p': case 'P': mult = 1024.0 * 1024 * 1024 * 1024 * 1024; p++; break;
    }
    if (*p == 'i' || *p == 'I')
        p++;
    if (*p == 'b' || *p == 'B')
        p++;
    if (*p)
        return -1;
    _cleanup_free_ char *num = xstrndup(s, (size_t)(num_end - s));
    errno = 0;
    double v = strtod(num, NULL);
    if (errno || v * mult > 9.2e18)
        return -1;
    *ret = (int64_t)(v * mult);
    return 0;
}

static bool key_is(const char *key, const char *a, const char *b, const char *c)
{
    return strcmp(key, a) == 0 || (b && strcmp(key, b) == 0) || (c && strcmp(key, c) == 0);
}

static int set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = xstrdup(v);
    return 0;
}

int df_mount_parse(const char *spec, df_expand_fn fn, void *ctx, struct df_mount *ret,
                   struct kiln_error **err)
{
    struct df_mount m = {.type = DF_MOUNT_BIND, .spec = xstrdup(spec)};
    _cleanup_strv_ char **fields = NULL;
    const char *msg = NULL;
    bool ro_auto = true;
    bool deferred = false; /* some value waits for expansion */
    bool type_known = true;

    if (csv_fields(spec, &fields, &msg) < 0) {
        df_mount_clear(&m);
        return kiln_error_set(err, 0, "failed to parse csv mounts: %s", msg);
    }
    for (size_t i = 0; fields[i]; i++) {
        const char *field = fields[i];
        const char *eq = strchr(field, '=');
        struct strbuf kb = STRBUF_INIT;
        go_to_lower(&kb, field, eq ? (size_t)(eq - field) : strlen(field));
        _cleanup_free_ char *key = strbuf_detach(&kb, NULL);
        _cleanup_free_ char *value = NULL;

        if (!eq) {
            if (!fn && strchr(field, '$')) {
                deferred = true;
                continue;
            }
            if (key_is(key, "readonly", "ro", NULL)) {
                m.readonly = true;
                ro_auto = false;
            } else if (key_is(key, "readwrite", "rw", NULL)) {
                m.readonly = false;
                ro_auto = false;
            } else if (strcmp(key, "required") == 0 && type_known) {
                if (m.type != DF_MOUNT_SECRET && m.type != DF_MOUNT_SSH)
                    goto unexpected_for_type;
                m.required = true;
            } else if (strcmp(key, "required") != 0) {
                kiln_error_set(err, 0, "invalid field '%s' must be a key=value pair", field);
                goto fail;
            }
            continue;
        }

        if (strcmp(key, "from") == 0) {
            const char *d = strchr(eq + 1, '$');
            if (d && d[1] != '\0') {
                kiln_error_set(err, 0, "'from' doesn't support variable expansion, define alias "
                                       "stage instead");
                goto fail;
            }
        }
        if (fn && strcmp(key, "from") != 0) {
            _cleanup_strv_ char **out = NULL;
            if (fn(ctx, eq + 1, DF_EXPAND_WORD, &out, err) < 0)
                goto fail;
            value = xstrdup(out && out[0] ? out[0] : "");
        } else {
            value = xstrdup(eq + 1);
        }

        size_t k;
        for (k = 0; k < ARRAY_SIZE(mount_keys); k++)
            if (strcmp(key, mount_keys[k]) == 0)
                break;
        if (k == ARRAY_SIZE(mount_keys)) {
            const char *s = df_suggest(key, mount_keys, ARRAY_SIZE(mount_keys));
            if (s)
                kiln_error_set(err, 0, "unexpected key '%s' in '%s' (did you mean %s?)", key,
                               field, s);
            else
                kiln_error_set(err, 0, "unexpected key '%s' in '%s'", key, field);
            goto fail;
        }
        if (!fn && strcmp(key, "from") != 0 && strchr(value, '$')) {
            deferred = true;
            if (strcmp(key, "type") == 0)
                type_known = false;
            continue;
        }

        if (strcmp(key, "type") == 0) {
            struct strbuf lb = STRBUF_INIT;
            go_to_lower(&lb, value, strlen(value));
            size_t t;
            for (t = 0; t < ARRAY_SIZE(mount_type_names); t++)
                if (strcmp(lb.buf ? lb.buf : "", mount_type_names[t]) == 0)
                    break;
            strbuf_release(&lb);
            if (t == ARRAY_SIZE(mount_type_names)) {
                const char *s = df_suggest(value, mount_type_names, ARRAY_SIZE(mount_type_names));
                if (s)
                    kiln_error_set(err, 0, "unsupported mount type \"%s\" (did you mean %s?)",
                                   value, s);
                else
                    kiln_error_set(err, 0, "unsupported mount type \"%s\"", value);
                goto fail;
            }
            m.type = (enum df_mount_type)t;
            type_known = true;
        } else if (strcmp(key, "from") == 0) {
            set_str(&m.from, value);
        } else if (key_is(key, "source", "src", NULL)) {
            set_str(&m.source, value);
        } else if (key_is(key, "target", "dst", "destination")) {
            set_str(&m.target, value);
        } else if (key_is(key, "readonly", "ro", NULL) || key_is(key, "readwrite", "rw", NULL)) {
            bool b;
            if (parse_go_bool(value, &b) < 0) {
                kiln_error_set(err, 0, "invalid value for %s: %s", key, value);
                goto fail;
            }
            if (key_is(key, "readwrite", "rw", NULL))
                m.readonly = !b;
            else
                m.readonly = b;
            ro_auto = false;
        } else if (strcmp(key, "required") == 0) {
            if (!type_known)
                continue;
            if (m.type != DF_MOUNT_SECRET && m.type != DF_MOUNT_SSH)
                goto unexpected_for_type;
            if (parse_go_bool(value, &m.required) < 0) {
                kiln_error_set(err, 0, "invalid value for %s: %s", key, value);
                goto fail;
            }
        } else if (strcmp(key, "size") == 0) {
            if (!type_known)
                continue;
            if (m.type != DF_MOUNT_TMPFS)
                goto unexpected_for_type;
            if (parse_ram_bytes(value, &m.size) < 0) {
                kiln_error_set(err, 0, "invalid value for %s: %s", key, value);
                goto fail;
            }
        } else if (strcmp(key, "id") == 0) {
            set_str(&m.id, value);
        } else if (strcmp(key, "sharing") == 0) {
            struct strbuf lb = STRBUF_INIT;
            go_to_lower(&lb, value, strlen(value));
            size_t t;
            for (t = 1; t < ARRAY_SIZE(sharing_names); t++)
                if (strcmp(lb.buf ? lb.buf : "", sharing_names[t]) == 0)
                    break;
            strbuf_release(&lb);
            if (t == ARRAY_SIZE(sharing_names)) {
                kiln_error_set(err, 0, "unsupported sharing value \"%s\"", value);
                goto fail;
            }
            m.sharing = (enum df_sharing)t;
        } else if (strcmp(key, "mode") == 0) {
            if (parse_go_uint32(value, 8, &m.mode) < 0) {
                kiln_error_set(err, 0, "invalid value %s for mode", value);
                goto fail;
            }
            m.has_mode = true;
        } else if (strcmp(key, "uid") == 0 || strcmp(key, "gid") == 0) {
            uint32_t v;
            if (parse_go_uint32(value, 10, &v) < 0) {
                kiln_error_set(err, 0, "invalid value %s for %s", value, key);
                goto fail;
            }
            if (key[0] == 'u') {
                m.uid = v;
                m.has_uid = true;
            } else {
                m.gid = v;
                m.has_gid = true;
            }
        } else if (strcmp(key, "env") == 0) {
            set_str(&m.env, value);
        }
        continue;

    unexpected_for_type:
        kiln_error_set(err, 0, "unexpected key '%s' for mount type '%s'", key,
                       df_mount_type_name(m.type));
        goto fail;
    }

    if (deferred && !fn) {
        /* The rest is checked once the values are known. */
        m.expanded = false;
        *ret = m;
        return 0;
    }
    bool file_info = m.type == DF_MOUNT_SECRET || m.type == DF_MOUNT_SSH ||
                     m.type == DF_MOUNT_CACHE;
    if (!file_info && (m.has_mode || m.has_uid || m.has_gid)) {
        kiln_error_set(err, 0, "%s not allowed for \"%s\" type mounts",
                       m.has_mode ? "mode" : m.has_uid ? "uid" : "gid", df_mount_type_name(m.type));
        goto fail;
    }
    if (ro_auto)
        m.readonly = !(m.type == DF_MOUNT_CACHE || m.type == DF_MOUNT_TMPFS);
    if (m.type == DF_MOUNT_SECRET) {
        if (m.from) {
            kiln_error_set(err, 0, "secret mount should not have a from");
            goto fail;
        }
        if (m.sharing != DF_SHARING_UNSET) {
            kiln_error_set(err, 0, "secret mount should not define sharing");
            goto fail;
        }
        if (!(m.source && *m.source) && !(m.target && *m.target) && !(m.id && *m.id)) {
            kiln_error_set(err, 0, "invalid secret mount. one of source, target required");
            goto fail;
        }
        if (m.source && *m.source && m.id && *m.id) {
            kiln_error_set(err, 0, "both source and id can't be set");
            goto fail;
        }
    }
    if (m.sharing != DF_SHARING_UNSET && m.type != DF_MOUNT_CACHE) {
        kiln_error_set(err, 0, "invalid cache sharing set for %s mount", df_mount_type_name(m.type));
        goto fail;
    }
    m.expanded = fn != NULL;
    *ret = m;
    return 0;
fail:
    df_mount_clear(&m);
    return -1;
}
