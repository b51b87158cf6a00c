/* WWW-Authenticate challenges (RFC 7235) and token endpoint answers
 * (Docker's token authentication: "token" / "access_token", "expires_in"). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "layers/registry_internal.h"
#include "lib/json.h"
#include "lib/xalloc.h"

#define CHALLENGE_HEADER_MAX 8192
#define CHALLENGES_MAX 16
#define PARAMS_MAX 32

static bool is_tchar(char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_token68_char(char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c && strchr("-._~+/", c) != NULL;
}

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

/* Skips whitespace and commas (empty list elements are allowed). */
static const char *skip_ws_commas(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
        p++;
    return p;
}

static const char *scan_token(const char *p, const char *end)
{
    while (p < end && is_tchar(*p))
        p++;
    return p;
}

/* At p: does an auth-param (token BWS '=' not followed by another '='
 * ending a token68) start here? */
static bool param_starts(const char *p, const char *end)
{
    const char *t = scan_token(p, end);
    if (t == p)
        return false;
    t = skip_ws(t, end);
    if (t >= end || *t != '=')
        return false;
    /* "abc==" is a token68 with padding */
    t++;
    return !(t < end && *t == '=');
}

/* A quoted-string or token value; *ret gets a copy without quotes/escapes. */
static const char *scan_value(const char *p, const char *end, char **ret, struct kiln_error **err)
{
    if (p < end && *p == '"') {
        struct strbuf sb = STRBUF_INIT;
        strbuf_init(&sb);
        p++;
        while (p < end && *p != '"') {
            if (*p == '\\' && p + 1 < end)
                p++;
            strbuf_addc(&sb, *p);
            p++;
        }
        if (p >= end) {
            strbuf_release(&sb);
            kiln_error_set(err, 0, "WWW-Authenticate: unterminated quoted string");
            return NULL;
        }
        *ret = strbuf_detach(&sb, NULL);
        return p + 1;
    }
    const char *t = scan_token(p, end);
    if (t == p) {
        kiln_error_set(err, 0, "WWW-Authenticate: missing parameter value");
        return NULL;
    }
    *ret = xstrndup(p, (size_t)(t - p));
    return t;
}

void reg_challenges_free(struct reg_challenge *c, size_t n)
{
    for (size_t i = 0; c && i < n; i++) {
        free(c[i].realm);
        free(c[i].service);
        free(c[i].scope);
        free(c[i].error);
    }
    free(c);
}

static enum reg_auth_scheme scheme_of(const char *s, size_t n)
{
    if (n == 5 && strncasecmp(s, "basic", 5) == 0)
        return REG_AUTH_BASIC;
    if (n == 6 && strncasecmp(s, "bearer", 6) == 0)
        return REG_AUTH_BEARER;
    return REG_AUTH_OTHER;
}

int reg_challenges_parse(const char *header, struct reg_challenge **ret, size_t *ret_n,
                         struct kiln_error **err)
{
    *ret = NULL;
    *ret_n = 0;
    size_t len = strlen(header);
    if (len > CHALLENGE_HEADER_MAX)
        return kiln_error_set(err, 0, "WWW-Authenticate: header too long (%zu bytes)", len);
    const char *p = header, *end = header + len;
    struct reg_challenge *v = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        p = skip_ws_commas(p, end);
        if (p >= end)
            break;
        const char *t = scan_token(p, end);
        if (t == p) {
            kiln_error_set(err, 0, "WWW-Authenticate: unexpected '%c'", *p);
            goto fail;
        }
        if (n >= CHALLENGES_MAX) {
            kiln_error_set(err, 0, "WWW-Authenticate: too many challenges");
            goto fail;
        }
        XGROW(v, cap, n + 1);
        struct reg_challenge *c = &v[n++];
        memset(c, 0, sizeof(*c));
        c->scheme = scheme_of(p, (size_t)(t - p));
        p = t;
        const char *after = skip_ws(p, end);
        if (after == p || after >= end || *after == ',') {
            p = after; /* scheme alone */
            continue;
        }
        p = after;
        if (!param_starts(p, end)) {
            /* token68 (ignored: registries do not use it) */
            while (p < end && is_token68_char(*p))
                p++;
            while (p < end && *p == '=')
                p++;
            p = skip_ws(p, end);
            if (p < end && *p != ',') {
                kiln_error_set(err, 0, "WWW-Authenticate: malformed challenge");
                goto fail;
            }
            continue;
        }
        for (int np = 0;; np++) {
            if (np >= PARAMS_MAX) {
                kiln_error_set(err, 0, "WWW-Authenticate: too many parameters");
                goto fail;
            }
            const char *name = p;
            const char *name_end = scan_token(p, end);
            p = skip_ws(name_end, end);
            p = skip_ws(p + 1, end); /* '=' */
            char *value = NULL;
            p = scan_value(p, end, &value, err);
            if (!p)
                goto fail;
            size_t nl = (size_t)(name_end - name);
            char **slot = NULL;
            if (nl == 5 && strncasecmp(name, "realm", 5) == 0)
                slot = &c->realm;
            else if (nl == 7 && strncasecmp(name, "service", 7) == 0)
                slot = &c->service;
            else if (nl == 5 && strncasecmp(name, "scope", 5) == 0)
                slot = &c->scope;
            else if (nl == 5 && strncasecmp(name, "error", 5) == 0)
                slot = &c->error;
            if (slot) {
                free(*slot);
                *slot = value;
            } else {
                free(value);
            }
            p = skip_ws(p, end);
            if (p >= end)
                break;
            if (*p != ',') {
                kiln_error_set(err, 0, "WWW-Authenticate: expected ',' after a parameter");
                goto fail;
            }
            p = skip_ws_commas(p, end);
            if (p >= end || !param_starts(p, end))
                break; /* the next challenge (or the end) */
        }
    }
    *ret = v;
    *ret_n = n;
    return 0;
fail:
    reg_challenges_free(v, n);
    return -1;
}

int reg_token_parse(const char *buf, size_t len, char **ret_token, int64_t *ret_expires_in,
                    struct kiln_error **err)
{
    yajl_val root = NULL;
    if (len > (1u << 20))
        return kiln_error_set(err, 0, "token answer too large");
    if (json_parse(buf, len, &root, err) < 0)
        return kiln_error_wrap(err, "token answer");
    const char *tok = json_get_str(root, "token");
    if (!tok || !*tok)
        tok = json_get_str(root, "access_token");
    if (!tok || !*tok) {
        yajl_tree_free(root);
        return kiln_error_set(err, 0, "token answer: no token");
    }
    for (const char *q = tok; *q; q++)
        if ((unsigned char)*q < 0x21 || (unsigned char)*q > 0x7e) {
            yajl_tree_free(root);
            return kiln_error_set(err, 0, "token answer: token has invalid characters");
        }
    int64_t exp = 60;
    if (!json_get_int(root, "expires_in", &exp) || exp < 60)
        exp = 60; /* the spec's minimum */
    *ret_token = xstrdup(tok);
    *ret_expires_in = exp;
    yajl_tree_free(root);
    return 0;
}
