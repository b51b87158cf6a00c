/* Instructions that only change the image config (and its history), with
 * BuildKit's semantics and created_by texts. */
#include "engine/meta.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dockerfile/dockerfile.h"
#include "engine/history.h"
#include "lib/cleanup.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

static const char *const default_shell[] = {"/bin/sh", "-c", NULL};

char **meta_with_shell(const struct image_config *cfg, char *const *args)
{
    char **out = strv_copy(cfg->shell && cfg->shell[0] ? cfg->shell : (char **)default_shell);
    struct strbuf sb = STRBUF_INIT;
    for (size_t i = 0; args && args[i]; i++) {
        if (i)
            strbuf_addc(&sb, ' ');
        strbuf_adds(&sb, args[i]);
    }
    strv_push_take(&out, strbuf_detach(&sb, NULL));
    return out;
}

static void set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = v ? xstrdup(v) : NULL;
}

static int env_or_label(struct stage_state *st, const struct df_instruction *in, bool label,
                        struct kiln_error **err)
{
    struct strbuf msg = STRBUF_INIT;
    strbuf_adds(&msg, label ? "LABEL" : "ENV");
    for (size_t i = 0; i < in->u.kvs.n; i++) {
        const char *k = in->u.kvs.v[i].key.text, *v = in->u.kvs.v[i].value.text;
        if (!k || !*k) {
            strbuf_release(&msg);
            return kiln_error_set(err, 0, "%s names must not be empty", label ? "LABEL" : "ENV");
        }
        if (label) {
            strmap_set(&st->config.labels, k, v ? v : "");
        } else {
            image_config_setenv(&st->config, k, v ? v : "");
            env_set(&st->env, k, v ? v : "");
        }
        strbuf_addf(&msg, " %s=%s", k, v ? v : "");
    }
    history_add(&st->config, msg.buf, false, NULL);
    strbuf_release(&msg);
    return 0;
}

/* EXPOSE port specs -> "80/tcp" entries (ranges expanded). */
static int port_range(const char *s, unsigned long *a, unsigned long *b)
{
    char *end = NULL;
    errno = 0;
    *a = strtoul(s, &end, 10);
    if (errno || end == s || *a > 65535)
        return -1;
    *b = *a;
    if (*end == '-') {
        const char *t = end + 1;
        *b = strtoul(t, &end, 10);
        if (errno || end == t || *b > 65535 || *b < *a)
            return -1;
    }
    return *end ? -1 : 0;
}

static int expose(struct stage_state *st, const struct df_instruction *in,
                  struct kiln_error **err)
{
    char **ports = strv_new();
    for (size_t i = 0; i < in->u.words.n; i++) {
        const char *raw = in->u.words.v[i].text;
        /* [ip:][hostport:]port[/proto] */
        const char *colon = strrchr(raw, ':');
        _cleanup_free_ char *spec = xstrdup(colon ? colon + 1 : raw);
        char *slash = strchr(spec, '/');
        const char *proto = "tcp";
        if (slash) {
            *slash = '\0';
            for (char *p = slash + 1; *p; p++)
                *p = (char)tolower((unsigned char)*p);
            proto = slash + 1;
            if (!*proto)
                proto = "tcp";
            else if (strcmp(proto, "tcp") && strcmp(proto, "udp") && strcmp(proto, "sctp")) {
                strv_free(ports);
                return kiln_error_set(err, 0, "invalid proto: %s", proto);
            }
        }
        if (!*spec) {
            strv_free(ports);
            return kiln_error_set(err, 0, "no port specified: %s<empty>", raw);
        }
        unsigned long a, b;
        if (port_range(spec, &a, &b) < 0) {
            strv_free(ports);
            return kiln_error_set(err, 0, "invalid containerPort: %s", spec);
        }
        for (unsigned long p = a; p <= b; p++)
            strv_push_take(&ports, xasprintf("%lu/%s", p, proto));
    }
    for (size_t i = 0; ports[i]; i++)
        strmap_set(&st->config.exposed_ports, ports[i], "");
    struct strbuf msg = STRBUF_INIT;
    strbuf_adds(&msg, "EXPOSE ");
    go_plain_strv(&msg, ports);
    history_add(&st->config, msg.buf, false, NULL);
    strbuf_release(&msg);
    strv_free(ports);
    return 0;
}

static bool valid_signal(const char *s)
{
    if (!*s)
        return false;
    char *end = NULL;
    long n = strtol(s, &end, 10);
    if (!*end)
        return n > 0 && n <= 64;
    char up[32];
    size_t i = 0;
    for (; s[i] && i < sizeof(up) - 1; i++)
        up[i] = (char)toupper((unsigned char)s[i]);
    up[i] = '\0';
    const char *name = strncmp(up, "SIG", 3) == 0 ? up + 3 : up;
    static const char *const names[] = {
        "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT",
        "KILL", "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM",
        "TRAP", "TSTP", "TTIN", "TTOU", "UNUSED", "URG", "USR1", "USR2", "VTALRM", "WINCH",
        "XCPU", "XFSZ", NULL};
    for (size_t k = 0; names[k]; k++)
        if (strcmp(name, names[k]) == 0)
            return true;
    if (strncmp(name, "RTMIN", 5) == 0 || strncmp(name, "RTMAX", 5) == 0)
        return true;
    return false;
}

static void cmdline_args(const struct image_config *cfg, const struct df_cmdline *c,
                         char ***ret)
{
    *ret = c->shell_form ? meta_with_shell(cfg, c->argv) : strv_copy(c->argv);
    if (!*ret)
        *ret = strv_new();
}

static void healthcheck(struct stage_state *st, const struct df_instruction *in)
{
    const struct df_healthcheck *h = &in->u.healthcheck;
    struct healthcheck *hc = xcalloc(1, sizeof(*hc));
    hc->test = strv_new();
    if (h->none) {
        strv_push(&hc->test, "NONE");
    } else if (h->cmd.shell_form) {
        strv_push(&hc->test, "CMD-SHELL");
        struct strbuf sb = STRBUF_INIT;
        for (size_t i = 0; h->cmd.argv && h->cmd.argv[i]; i++) {
            if (i)
                strbuf_addc(&sb, ' ');
            strbuf_adds(&sb, h->cmd.argv[i]);
        }
        strv_push_take(&hc->test, strbuf_detach(&sb, NULL));
    } else {
        strv_push(&hc->test, "CMD");
        for (size_t i = 0; h->cmd.argv && h->cmd.argv[i]; i++)
            strv_push(&hc->test, h->cmd.argv[i]);
    }
    hc->interval = h->interval_ns;
    hc->timeout = h->timeout_ns;
    hc->start_period = h->start_period_ns;
    hc->start_interval = h->start_interval_ns;
    hc->retries = h->retries;
    if (st->config.healthcheck) {
        strv_free(st->config.healthcheck->test);
        free(st->config.healthcheck);
    }
    st->config.healthcheck = hc;
    /* BuildKit: fmt.Sprintf("HEALTHCHECK %q", &HealthcheckConfig{...}), Go's
     * %q of each field: the test quoted, durations through their String()
     * quoted, the retries count as a quoted character literal */
    struct strbuf msg = STRBUF_INIT;
    strbuf_adds(&msg, "HEALTHCHECK &{");
    go_quote_strv(&msg, hc->test);
    const int64_t durations[] = {hc->interval, hc->timeout, hc->start_period, hc->start_interval};
    for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
        struct strbuf d = STRBUF_INIT;
        go_duration(&d, durations[i]);
        strbuf_addc(&msg, ' ');
        dockerfile_go_quote(&msg, d.buf, d.len);
        strbuf_release(&d);
    }
    strbuf_addc(&msg, ' ');
    go_quote_rune(&msg, hc->retries);
    strbuf_addc(&msg, '}');
    history_add(&st->config, msg.buf, false, NULL);
    strbuf_release(&msg);
}

int meta_dispatch(struct stage_state *st, const struct df_instruction *in,
                  struct kiln_error **err)
{
    struct strbuf msg = STRBUF_INIT;
    int rc = 0;
    switch (in->kind) {
    case DF_ENV:
        return env_or_label(st, in, false, err);
    case DF_LABEL:
        return env_or_label(st, in, true, err);
    case DF_MAINTAINER:
        set_str(&st->config.author, in->u.word.text);
        strbuf_addf(&msg, "MAINTAINER %s", in->u.word.text ? in->u.word.text : "");
        break;
    case DF_EXPOSE:
        return expose(st, in, err);
    case DF_USER:
        if (!in->u.word.text || !*in->u.word.text)
            return kiln_error_set(err, 0, "USER requires exactly one argument");
        set_str(&st->config.user, in->u.word.text);
        strbuf_addf(&msg, "USER %s", in->u.word.text);
        break;
    case DF_VOLUME: {
        char **vols = strv_new();
        for (size_t i = 0; i < in->u.words.n; i++) {
            const char *v = in->u.words.v[i].text;
            if (!v || !*v) {
                strv_free(vols);
                return kiln_error_set(err, 0, "VOLUME specified can not be an empty string");
            }
            strmap_set(&st->config.volumes, v, "");
            strv_push(&vols, v);
        }
        strbuf_adds(&msg, "VOLUME ");
        go_plain_strv(&msg, vols);
        strv_free(vols);
        break;
    }
    case DF_STOPSIGNAL:
        if (!in->u.word.text || !valid_signal(in->u.word.text))
            return kiln_error_set(err, 0, "Invalid signal: %s",
                                  in->u.word.text ? in->u.word.text : "");
        set_str(&st->config.stop_signal, in->u.word.text);
        strbuf_addf(&msg, "STOPSIGNAL %s", in->u.word.text);
        break;
    case DF_SHELL:
        if (!in->u.shell.argc)
            return kiln_error_set(err, 0, "SHELL requires at least one argument");
        strv_free(st->config.shell);
        st->config.shell = strv_copy(in->u.shell.argv);
        strbuf_adds(&msg, "SHELL ");
        go_plain_strv(&msg, st->config.shell);
        break;
    case DF_CMD: {
        char **args = NULL;
        cmdline_args(&st->config, &in->u.cmd, &args);
        strv_free(st->config.cmd);
        st->config.cmd = args;
        st->config.args_escaped = true;
        st->cmd_set = true;
        strbuf_adds(&msg, "CMD ");
        go_quote_strv(&msg, args);
        break;
    }
    case DF_ENTRYPOINT: {
        char **args = NULL;
        cmdline_args(&st->config, &in->u.cmd, &args);
        strv_free(st->config.entrypoint);
        st->config.entrypoint = args;
        if (!st->cmd_set) {
            strv_free(st->config.cmd);
            st->config.cmd = NULL;
        }
        strbuf_adds(&msg, "ENTRYPOINT ");
        go_quote_strv(&msg, args);
        break;
    }
    case DF_HEALTHCHECK:
        healthcheck(st, in);
        return 0;
    case DF_ONBUILD:
        if (!st->config.onbuild)
            st->config.onbuild = strv_new();
        strv_push(&st->config.onbuild, in->u.onbuild.expression);
        return 0; /* BuildKit writes no history for ONBUILD */
    default:
        rc = kiln_error_set(err, 0, "internal: %s is not a metadata instruction",
                            df_kind_name(in->kind));
        strbuf_release(&msg);
        return rc;
    }
    history_add(&st->config, msg.buf, false, NULL);
    strbuf_release(&msg);
    return rc;
}
