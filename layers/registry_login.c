/* kiln login / logout: check credentials against a registry, keep them in
 * the containers auth file (0600). */
#include <stdlib.h>
#include <string.h>

#include "layers/registry_internal.h"
#include "lib/cleanup.h"
#include "lib/xalloc.h"

int registry_login(const char *registry, const char *user, const char *password,
                   const struct registry_opts *o, struct kiln_error **err)
{
    if (!user || !*user)
        return kiln_error_set(err, 0, "login: a user name is required");
    _cleanup_free_ char *key = reg_auth_key_normalize(registry);
    if (!*key)
        return kiln_error_set(err, 0, "login: no registry given");
    /* "quay.io/ns" keeps credentials for a namespace; the server is quay.io */
    char *slash = strchr(key, '/');
    _cleanup_free_ char *host = slash ? xstrndup(key, (size_t)(slash - key)) : xstrdup(key);
    struct reg_client *c = NULL;
    if (reg_client_new(host, NULL, user, password, o, &c, err) < 0)
        return -1;
    int r = reg_client_ping(c, err);
    if (r == 0 && c->scheme == REG_AUTH_BEARER) {
        const char *tok = NULL;
        r = reg_client_token(c, NULL, true, &tok, err);
    } else if (r == 0 && c->scheme == REG_AUTH_BASIC) {
        struct reg_request rq = {.method = "GET", .url = "/v2/"};
        struct reg_response resp = {0};
        strbuf_init(&resp.body);
        r = reg_do(c, &rq, &resp, err);
        if (r == 0 && resp.status == 401)
            r = kiln_error_set(err, 0,
                               "registry '%s': authentication failed for user '%s': invalid "
                               "user name or password",
                               host, user);
        else if (r == 0 && resp.status != 200)
            r = reg_response_error(c, &resp, err, "registry '%s': GET /v2/", host);
        reg_response_free(&resp);
    } else if (r == 0 && c->scheme == REG_AUTH_OTHER) {
        r = kiln_error_set(err, 0, "registry '%s': unsupported authentication scheme", host);
    }
    reg_client_free(c);
    if (r < 0)
        return kiln_error_wrap(err, "login to '%s'", key);
    _cleanup_free_ char *path = reg_authfile_for_write(o);
    if (reg_authfile_update(path, key, user, password ? password : "", NULL, err) < 0)
        return kiln_error_wrap(err, "login to '%s': save credentials", key);
    return 0;
}

int registry_logout(const char *registry, const struct registry_opts *o, bool *ret_found,
                    struct kiln_error **err)
{
    _cleanup_free_ char *path = reg_authfile_for_write(o);
    _cleanup_free_ char *key = registry ? reg_auth_key_normalize(registry) : NULL;
    if (reg_authfile_update(path, key, NULL, NULL, ret_found, err) < 0)
        return kiln_error_wrap(err, "logout");
    return 0;
}

char *registry_authfile_path(const struct registry_opts *o)
{
    return reg_authfile_for_write(o);
}
