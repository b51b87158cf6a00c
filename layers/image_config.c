/* The image config JSON (OCI image-spec config.md plus Docker's extensions
 * that BuildKit writes: Healthcheck, OnBuild, Shell, ArgsEscaped). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "layers/image.h"
#include "lib/json.h"
#include "lib/xalloc.h"

void image_config_init(struct image_config *c)
{
    memset(c, 0, sizeof(*c));
}

static void healthcheck_free(struct healthcheck *h)
{
    if (!h)
        return;
    strv_free(h->test);
    free(h);
}

void image_config_free(struct image_config *c)
{
    free(c->created);
    free(c->author);
    free(c->architecture);
    free(c->os);
    free(c->variant);
    free(c->user);
    strmap_free(&c->exposed_ports);
    strv_free(c->env);
    strv_free(c->entrypoint);
    strv_free(c->cmd);
    strmap_free(&c->volumes);
    free(c->working_dir);
    strmap_free(&c->labels);
    free(c->stop_signal);
    healthcheck_free(c->healthcheck);
    strv_free(c->onbuild);
    strv_free(c->shell);
    strv_free(c->diff_ids);
    for (size_t i = 0; i < c->n_history; i++) {
        free(c->history[i].created);
        free(c->history[i].created_by);
        free(c->history[i].author);
        free(c->history[i].comment);
    }
    free(c->history);
    memset(c, 0, sizeof(*c));
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

void image_config_copy(struct image_config *d, const struct image_config *s)
{
    image_config_init(d);
    d->created = dup_or_null(s->created);
    d->author = dup_or_null(s->author);
    d->architecture = dup_or_null(s->architecture);
    d->os = dup_or_null(s->os);
    d->variant = dup_or_null(s->variant);
    d->user = dup_or_null(s->user);
    strmap_copy(&d->exposed_ports, &s->exposed_ports);
    d->env = strv_copy(s->env);
    d->entrypoint = strv_copy(s->entrypoint);
    d->cmd = strv_copy(s->cmd);
    strmap_copy(&d->volumes, &s->volumes);
    d->working_dir = dup_or_null(s->working_dir);
    strmap_copy(&d->labels, &s->labels);
    d->stop_signal = dup_or_null(s->stop_signal);
    d->args_escaped = s->args_escaped;
    if (s->healthcheck) {
        d->healthcheck = xmemdup(s->healthcheck, sizeof(*s->healthcheck));
        d->healthcheck->test = strv_copy(s->healthcheck->test);
    }
    d->onbuild = strv_copy(s->onbuild);
    d->shell = strv_copy(s->shell);
    d->diff_ids = strv_copy(s->diff_ids);
    d->n_history = s->n_history;
    d->history = xcalloc(s->n_history + 1, sizeof(*d->history));
    for (size_t i = 0; i < s->n_history; i++) {
        d->history[i].created = dup_or_null(s->history[i].created);
        d->history[i].created_by = dup_or_null(s->history[i].created_by);
        d->history[i].author = dup_or_null(s->history[i].author);
        d->history[i].comment = dup_or_null(s->history[i].comment);
        d->history[i].empty_layer = s->history[i].empty_layer;
    }
}

static void keys_from_obj(struct strmap *m, yajl_val obj, bool with_values)
{
    if (!obj || !YAJL_IS_OBJECT(obj))
        return;
    for (size_t i = 0; i < obj->u.object.len; i++) {
        yajl_val v = obj->u.object.values[i];
        const char *val = with_values && YAJL_IS_STRING(v) ? v->u.string : "";
        strmap_set(m, obj->u.object.keys[i], val);
    }
}

static char *str_or_null(yajl_val obj, const char *key)
{
    const char *s = json_get_str(obj, key);
    return s ? xstrdup(s) : NULL;
}

int image_config_parse(const char *buf, size_t len, struct image_config *c,
                       struct kiln_error **err)
{
    yajl_val root = NULL;
    if (json_parse(buf, len, &root, err) < 0)
        return kiln_error_wrap(err, "image config");
    if (!YAJL_IS_OBJECT(root)) {
        yajl_tree_free(root);
        return kiln_error_set(err, 0, "image config: not a JSON object");
    }
    image_config_init(c);
    c->created = str_or_null(root, "created");
    c->author = str_or_null(root, "author");
    c->architecture = str_or_null(root, "architecture");
    c->os = str_or_null(root, "os");
    c->variant = str_or_null(root, "variant");
    yajl_val cfg = json_get_obj(root, "config");
    if (cfg) {
        c->user = str_or_null(cfg, "User");
        keys_from_obj(&c->exposed_ports, json_get_obj(cfg, "ExposedPorts"), false);
        c->env = json_to_strv(json_get_arr(cfg, "Env"));
        c->entrypoint = json_to_strv(json_get_arr(cfg, "Entrypoint"));
        c->cmd = json_to_strv(json_get_arr(cfg, "Cmd"));
        keys_from_obj(&c->volumes, json_get_obj(cfg, "Volumes"), false);
        c->working_dir = str_or_null(cfg, "WorkingDir");
        keys_from_obj(&c->labels, json_get_obj(cfg, "Labels"), true);
        c->stop_signal = str_or_null(cfg, "StopSignal");
        yajl_val ae = json_get(cfg, "ArgsEscaped");
        c->args_escaped = ae && YAJL_IS_TRUE(ae);
        yajl_val hc = json_get_obj(cfg, "Healthcheck");
        if (hc) {
            c->healthcheck = xcalloc(1, sizeof(*c->healthcheck));
            c->healthcheck->test = json_to_strv(json_get_arr(hc, "Test"));
            json_get_int(hc, "Interval", &c->healthcheck->interval);
            json_get_int(hc, "Timeout", &c->healthcheck->timeout);
            json_get_int(hc, "StartPeriod", &c->healthcheck->start_period);
            json_get_int(hc, "StartInterval", &c->healthcheck->start_interval);
            json_get_int(hc, "Retries", &c->healthcheck->retries);
        }
        c->onbuild = json_to_strv(json_get_arr(cfg, "OnBuild"));
        c->shell = json_to_strv(json_get_arr(cfg, "Shell"));
    }
    yajl_val rootfs = json_get_obj(root, "rootfs");
    c->diff_ids = json_to_strv(json_get_arr(rootfs, "diff_ids"));
    if (!c->diff_ids)
        c->diff_ids = strv_new();
    for (size_t i = 0; c->diff_ids[i]; i++) {
        if (!digest_is_valid(c->diff_ids[i])) {
            kiln_error_set(err, 0, "image config: invalid diff_id '%s'", c->diff_ids[i]);
            yajl_tree_free(root);
            image_config_free(c);
            return -1;
        }
    }
    yajl_val hist = json_get_arr(root, "history");
    if (hist) {
        c->history = xcalloc(hist->u.array.len + 1, sizeof(*c->history));
        for (size_t i = 0; i < hist->u.array.len; i++) {
            yajl_val h = hist->u.array.values[i];
            if (!YAJL_IS_OBJECT(h))
                continue;
            struct history_entry *e = &c->history[c->n_history++];
            e->created = str_or_null(h, "created");
            e->created_by = str_or_null(h, "created_by");
            e->author = str_or_null(h, "author");
            e->comment = str_or_null(h, "comment");
            yajl_val el = json_get(h, "empty_layer");
            e->empty_layer = el && YAJL_IS_TRUE(el);
        }
    }
    yajl_tree_free(root);
    return 0;
}

static void gen_keys_obj(struct json_gen *j, const char *key, const struct strmap *m)
{
    if (!m->n)
        return;
    json_key(j, key);
    json_obj_open(j);
    for (size_t i = 0; i < m->n; i++) {
        json_key(j, m->keys[i]);
        json_obj_open(j);
        json_obj_close(j);
    }
    json_obj_close(j);
}

char *image_config_to_json(const struct image_config *c, size_t *ret_len)
{
    struct json_gen j;
    json_gen_init(&j, false);
    json_obj_open(&j);
    json_kv_str(&j, "created", c->created);
    json_kv_str(&j, "author", c->author);
    json_kv_str(&j, "architecture", c->architecture ? c->architecture : "amd64");
    json_kv_str(&j, "os", c->os ? c->os : "linux");
    json_kv_str(&j, "variant", c->variant);
    json_key(&j, "config");
    json_obj_open(&j);
    json_kv_str(&j, "User", c->user);
    gen_keys_obj(&j, "ExposedPorts", &c->exposed_ports);
    json_kv_strv(&j, "Env", c->env);
    json_kv_strv(&j, "Entrypoint", c->entrypoint);
    json_kv_strv(&j, "Cmd", c->cmd);
    gen_keys_obj(&j, "Volumes", &c->volumes);
    json_kv_str(&j, "WorkingDir", c->working_dir);
    json_strmap_member(&j, "Labels", &c->labels);
    json_kv_str(&j, "StopSignal", c->stop_signal);
    if (c->args_escaped) {
        json_key(&j, "ArgsEscaped");
        json_bool(&j, true);
    }
    if (c->healthcheck) {
        const struct healthcheck *h = c->healthcheck;
        json_key(&j, "Healthcheck");
        json_obj_open(&j);
        json_kv_strv(&j, "Test", h->test);
        static const char *const names[] = {"Interval", "Timeout", "StartPeriod", "StartInterval",
                                            "Retries"};
        const int64_t vals[] = {h->interval, h->timeout, h->start_period, h->start_interval,
                                h->retries};
        for (size_t i = 0; i < 5; i++) {
            if (vals[i]) {
                json_key(&j, names[i]);
                json_int(&j, vals[i]);
            }
        }
        json_obj_close(&j);
    }
    json_kv_strv(&j, "OnBuild", c->onbuild);
    json_kv_strv(&j, "Shell", c->shell);
    json_obj_close(&j);
    json_key(&j, "rootfs");
    json_obj_open(&j);
    json_kv_str(&j, "type", "layers");
    json_key(&j, "diff_ids");
    json_arr_open(&j);
    for (size_t i = 0; c->diff_ids && c->diff_ids[i]; i++)
        json_str(&j, c->diff_ids[i]);
    json_arr_close(&j);
    json_obj_close(&j);
    if (c->n_history) {
        json_key(&j, "history");
        json_arr_open(&j);
        for (size_t i = 0; i < c->n_history; i++) {
            const struct history_entry *e = &c->history[i];
            json_obj_open(&j);
            json_kv_str(&j, "created", e->created);
            json_kv_str(&j, "created_by", e->created_by);
            json_kv_str(&j, "author", e->author);
            json_kv_str(&j, "comment", e->comment);
            if (e->empty_layer) {
                json_key(&j, "empty_layer");
                json_bool(&j, true);
            }
            json_obj_close(&j);
        }
        json_arr_close(&j);
    }
    json_obj_close(&j);
    char *out = json_gen_take(&j, ret_len);
    json_gen_free(&j);
    return out;
}

void image_config_add_history(struct image_config *c, const char *created, const char *created_by,
                              const char *comment, bool empty_layer)
{
    c->history = xreallocarray(c->history, c->n_history + 1, sizeof(*c->history));
    struct history_entry *e = &c->history[c->n_history++];
    memset(e, 0, sizeof(*e));
    e->created = dup_or_null(created);
    e->created_by = dup_or_null(created_by);
    e->comment = dup_or_null(comment);
    e->empty_layer = empty_layer;
}

const char *image_config_getenv(const struct image_config *c, const char *key)
{
    size_t kl = strlen(key);
    const char *found = NULL;
    for (size_t i = 0; c->env && c->env[i]; i++)
        if (strncmp(c->env[i], key, kl) == 0 && c->env[i][kl] == '=')
            found = c->env[i] + kl + 1;
    return found;
}

void image_config_setenv(struct image_config *c, const char *key, const char *value)
{
    size_t kl = strlen(key);
    char *entry = xasprintf("%s=%s", key, value ? value : "");
    for (size_t i = 0; c->env && c->env[i]; i++) {
        if (strncmp(c->env[i], key, kl) == 0 && c->env[i][kl] == '=') {
            free(c->env[i]);
            c->env[i] = entry;
            return;
        }
    }
    if (!c->env)
        c->env = strv_new();
    strv_push_take(&c->env, entry);
}

char *rfc3339_time(int64_t epoch_override)
{
    struct timespec ts;
    if (epoch_override >= 0) {
        ts.tv_sec = (time_t)epoch_override;
        ts.tv_nsec = 0;
    } else {
        clock_gettime(CLOCK_REALTIME, &ts);
    }
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char base[32];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    if (ts.tv_nsec == 0)
        return xasprintf("%sZ", base);
    /* RFC 3339 with nanoseconds, trailing zeros trimmed (Go's RFC3339Nano). */
    char frac[16];
    snprintf(frac, sizeof(frac), "%09ld", ts.tv_nsec);
    size_t n = strlen(frac);
    while (n > 0 && frac[n - 1] == '0')
        frac[--n] = '\0';
    return xasprintf("%s.%sZ", base, frac);
}

int64_t rfc3339_parse(const char *s)
{
    if (!s)
        return -1;
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return -1;
    int64_t t = (int64_t)timegm(&tm);
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            ;
    if (*p == 'Z' || *p == 'z')
        return t;
    if (*p == '+' || *p == '-') {
        int sign = *p == '+' ? 1 : -1;
        int hh = 0, mm = 0;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) == 2)
            return t - sign * (hh * 3600 + mm * 60);
    }
    return t;
}
