#include "layers/reference.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lib/sha256.h"
#include "lib/xalloc.h"

#define DEFAULT_DOMAIN "docker.io"
#define NAME_MAX_LEN 255

static bool is_alnum_lower(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* path-component: [a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)* */
static bool valid_component(const char *s, size_t n)
{
    if (n == 0 || !is_alnum_lower(s[0]) || !is_alnum_lower(s[n - 1]))
        return false;
    for (size_t i = 0; i < n;) {
        if (is_alnum_lower(s[i])) {
            i++;
            continue;
        }
        size_t j = i;
        if (s[i] == '.') {
            j = i + 1;
        } else if (s[i] == '_') {
            j = i + 1;
            if (j < n && s[j] == '_')
                j++;
        } else if (s[i] == '-') {
            while (j < n && s[j] == '-')
                j++;
        } else {
            return false;
        }
        if (j >= n || !is_alnum_lower(s[j]))
            return false;
        i = j;
    }
    return true;
}

static bool valid_domain(const char *s)
{
    /* host[:port], host made of alnum/-/. components; IPv6 in [] allowed */
    if (!*s)
        return false;
    const char *colon = s[0] == '[' ? strchr(s, ']') : s;
    if (!colon)
        return false;
    colon = strchr(colon, ':');
    size_t hostlen = colon ? (size_t)(colon - s) : strlen(s);
    if (hostlen == 0)
        return false;
    if (s[0] != '[') {
        for (size_t i = 0; i < hostlen; i++)
            if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '.')
                return false;
    }
    if (colon) {
        if (!colon[1])
            return false;
        for (const char *p = colon + 1; *p; p++)
            if (!isdigit((unsigned char)*p))
                return false;
    }
    return true;
}

static bool valid_tag(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > 128)
        return false;
    if (!(isalnum((unsigned char)t[0]) || t[0] == '_'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)t[i]) || t[i] == '_' || t[i] == '.' || t[i] == '-'))
            return false;
    return true;
}

void ref_free(struct image_ref *r)
{
    free(r->domain);
    free(r->path);
    free(r->tag);
    free(r->digest);
    memset(r, 0, sizeof(*r));
}

int ref_parse(const char *input, struct image_ref *ret, struct kiln_error **err)
{
    memset(ret, 0, sizeof(*ret));
    if (!input || !*input)
        return kiln_error_set(err, 0, "invalid reference format: empty name");
    char *s = xstrdup(input);
    char *at = strchr(s, '@');
    if (at) {
        *at = '\0';
        if (!digest_is_valid(at + 1)) {
            free(s);
            return kiln_error_set(err, 0, "invalid reference format: bad digest in '%s'", input);
        }
        ret->digest = xstrdup(at + 1);
    }
    /* a tag is after the last ':' that follows the last '/' */
    char *slash = strrchr(s, '/');
    char *colon = strrchr(slash ? slash : s, ':');
    if (colon) {
        *colon = '\0';
        if (!valid_tag(colon + 1)) {
            kiln_error_set(err, 0, "invalid reference format: bad tag in '%s'", input);
            goto fail;
        }
        ret->tag = xstrdup(colon + 1);
    }
    char *name = s;
    char *first_slash = strchr(name, '/');
    if (first_slash) {
        size_t n = (size_t)(first_slash - name);
        char *first = xstrndup(name, n);
        if (strchr(first, '.') || strchr(first, ':') || strcmp(first, "localhost") == 0 ||
            strcmp(first, "[") == 0 || first[0] == '[') {
            if (!valid_domain(first)) {
                free(first);
                kiln_error_set(err, 0, "invalid reference format: bad registry in '%s'", input);
                goto fail;
            }
            ret->domain = first;
            name = first_slash + 1;
        } else {
            free(first);
        }
    }
    if (!ret->domain)
        ret->domain = xstrdup(DEFAULT_DOMAIN);
    if (strcmp(ret->domain, "index.docker.io") == 0) {
        free(ret->domain);
        ret->domain = xstrdup(DEFAULT_DOMAIN);
    }
    /* validate path components */
    for (char *p = name;;) {
        char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (!valid_component(p, n)) {
            bool upper = false;
            for (size_t i = 0; i < n; i++)
                upper |= isupper((unsigned char)p[i]) != 0;
            kiln_error_set(err, 0, "invalid reference format: %s'%s'",
                           upper ? "repository name must be lowercase: " : "", input);
            goto fail;
        }
        if (!e)
            break;
        p = e + 1;
    }
    if (strcmp(ret->domain, DEFAULT_DOMAIN) == 0 && !strchr(name, '/'))
        ret->path = xasprintf("library/%s", name);
    else
        ret->path = xstrdup(name);
    if (strlen(ret->domain) + 1 + strlen(ret->path) > NAME_MAX_LEN) {
        kiln_error_set(err, 0, "invalid reference format: repository name too long");
        goto fail;
    }
    if (!ret->tag && !ret->digest)
        ret->tag = xstrdup("latest");
    free(s);
    return 0;
fail:
    free(s);
    ref_free(ret);
    return -1;
}

char *ref_familiar_name(const struct image_ref *r)
{
    if (strcmp(r->domain, DEFAULT_DOMAIN) == 0) {
        if (strncmp(r->path, "library/", 8) == 0 && !strchr(r->path + 8, '/'))
            return xstrdup(r->path + 8);
        return xstrdup(r->path);
    }
    return xasprintf("%s/%s", r->domain, r->path);
}

static char *with_suffix(char *name, const struct image_ref *r)
{
    char *out = xasprintf("%s%s%s%s%s", name, r->tag ? ":" : "", r->tag ? r->tag : "",
                          r->digest ? "@" : "", r->digest ? r->digest : "");
    free(name);
    return out;
}

char *ref_familiar(const struct image_ref *r)
{
    return with_suffix(ref_familiar_name(r), r);
}

char *ref_full(const struct image_ref *r)
{
    return with_suffix(xasprintf("%s/%s", r->domain, r->path), r);
}
