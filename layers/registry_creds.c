/* Registry credentials as containers/image and Docker keep them:
 * {"auths": {"KEY": {"auth": base64("user:password")}}} in
 * $XDG_RUNTIME_DIR/containers/auth.json, ~/.config/containers/auth.json or
 * ~/.docker/config.json; and the per-registry "insecure" setting. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "layers/registry_internal.h"
#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/json.h"
#include "lib/xalloc.h"

#define AUTHFILE_MAX (4u << 20)
#define CONF_MAX (1u << 20)

/* ---- base64 --------------------------------------------------------- */

char *reg_base64_encode(const void *data, size_t len)
{
    char *out = xmalloc(4 * ((len + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

int reg_base64_decode(const char *s, char **ret, size_t *ret_len)
{
    size_t n = strlen(s);
    if (n == 0) {
        *ret = xstrdup("");
        *ret_len = 0;
        return 0;
    }
    if (n % 4 != 0 || n > (1u << 20))
        return -1;
    size_t pad = 0;
    if (s[n - 1] == '=')
        pad++;
    if (n > 1 && s[n - 2] == '=')
        pad++;
    for (size_t i = 0; i < n - pad; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '+' && s[i] != '/')
            return -1;
    unsigned char *out = xmalloc(n / 4 * 3 + 1);
    int r = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
    if (r < 0 || (size_t)r < pad) {
        free(out);
        return -1;
    }
    size_t len = (size_t)r - pad;
    out[len] = '\0';
    *ret = (char *)out;
    *ret_len = len;
    return 0;
}

/* ---- keys ------------------------------------------------------------ */

static bool is_docker_hub(const char *host)
{
    return strcmp(host, "docker.io") == 0 || strcmp(host, "index.docker.io") == 0 ||
           strcmp(host, "registry-1.docker.io") == 0;
}

char *reg_auth_key_normalize(const char *s)
{
    bool had_scheme = false;
    if (strncasecmp(s, "https://", 8) == 0) {
        s += 8;
        had_scheme = true;
    } else if (strncasecmp(s, "http://", 7) == 0) {
        s += 7;
        had_scheme = true;
    }
    char *k = xstrdup(s);
    if (had_scheme) {
        /* Docker's keys are URLs: "https://index.docker.io/v1/" */
        char *slash = strchr(k, '/');
        if (slash)
            *slash = '\0';
    }
    size_t n = strlen(k);
    while (n > 0 && k[n - 1] == '/')
        k[--n] = '\0';
    char *slash = strchr(k, '/');
    _cleanup_free_ char *host = slash ? xstrndup(k, (size_t)(slash - k)) : xstrdup(k);
    for (char *p = host; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (is_docker_hub(host)) {
        char *out = xasprintf("docker.io%s", slash ? slash : "");
        free(k);
        return out;
    }
    char *out = xasprintf("%s%s", host, slash ? slash : "");
    free(k);
    return out;
}

/* ---- which files ------------------------------------------------------ */

static const char *home_dir(void)
{
    const char *h = getenv("HOME");
    if (h && *h)
        return h;
    struct passwd *pw = getpwuid(getuid());
    return pw && pw->pw_dir ? pw->pw_dir : "/";
}

static char *config_home(void)
{
    const char *x = getenv("XDG_CONFIG_HOME");
    if (x && x[0] == '/')
        return xstrdup(x);
    return path_join(home_dir(), ".config");
}

char *reg_authfile_for_write(const struct registry_opts *o)
{
    if (o && o->authfile && *o->authfile)
        return xstrdup(o->authfile);
    const char *e = getenv("REGISTRY_AUTH_FILE");
    if (e && *e)
        return xstrdup(e);
    e = getenv("XDG_RUNTIME_DIR");
    if (e && e[0] == '/')
        return path_join(e, "containers/auth.json");
    _cleanup_free_ char *c = config_home();
    return path_join(c, "containers/auth.json");
}

char **reg_authfiles_for_read(const struct registry_opts *o)
{
    char **v = strv_new();
    if (o && o->authfile && *o->authfile) {
        strv_push(&v, o->authfile);
        return v;
    }
    const char *e = getenv("REGISTRY_AUTH_FILE");
    if (e && *e) {
        strv_push(&v, e);
        return v;
    }
    e = getenv("XDG_RUNTIME_DIR");
    if (e && e[0] == '/')
        strv_push_take(&v, path_join(e, "containers/auth.json"));
    _cleanup_free_ char *c = config_home();
    strv_push_take(&v, path_join(c, "containers/auth.json"));
    e = getenv("DOCKER_CONFIG");
    if (e && *e)
        strv_push_take(&v, path_join(e, "config.json"));
    else
        strv_push_take(&v, path_join(home_dir(), ".docker/config.json"));
    return v;
}

/* ---- lookup ------------------------------------------------------------ */

static int decode_entry(yajl_val entry, const char *key, char **ret_user, char **ret_pass,
                        struct kiln_error **err)
{
    const char *auth = json_get_str(entry, "auth");
    if (!auth || !*auth)
        return 1; /* e.g. only an identity token: not usable here */
    char *plain = NULL;
    size_t len = 0;
    if (reg_base64_decode(auth, &plain, &len) < 0)
        return kiln_error_set(err, 0, "credentials for '%s': invalid base64", key);
    char *colon = memchr(plain, ':', len);
    if (!colon || memchr(plain, '\0', len)) {
        free(plain);
        return kiln_error_set(err, 0, "credentials for '%s': not 'user:password'", key);
    }
    *ret_user = xstrndup(plain, (size_t)(colon - plain));
    *ret_pass = xstrdup(colon + 1);
    explicit_bzero(plain, len);
    free(plain);
    return 0;
}

int reg_authjson_lookup(const char *buf, size_t len, const char *registry, const char *repo,
                        char **ret_user, char **ret_pass, struct kiln_error **err)
{
    yajl_val root = NULL;
    if (json_parse(buf, len, &root, err) < 0)
        return -1;
    yajl_val auths = json_get_obj(root, "auths");
    if (!auths) {
        yajl_tree_free(root);
        return 1;
    }
    /* most specific first: registry/a/b/c, registry/a/b, registry/a, registry */
    _cleanup_free_ char *want_reg = reg_auth_key_normalize(registry);
    _cleanup_free_ char *full =
        repo && *repo ? xasprintf("%s/%s", want_reg, repo) : xstrdup(want_reg);
    int r = 1;
    for (;;) {
        for (size_t i = 0; i < auths->u.object.len && r == 1; i++) {
            _cleanup_free_ char *k = reg_auth_key_normalize(auths->u.object.keys[i]);
            if (strcmp(k, full) == 0)
                r = decode_entry(auths->u.object.values[i], auths->u.object.keys[i], ret_user,
                                 ret_pass, err);
        }
        if (r != 1)
            break;
        char *slash = strrchr(full, '/');
        if (!slash || strlen(full) <= strlen(want_reg))
            break;
        *slash = '\0';
        if (strlen(full) < strlen(want_reg))
            break;
    }
    yajl_tree_free(root);
    return r;
}

int reg_creds_lookup(const struct registry_opts *o, const char *registry, const char *repo,
                     char **ret_user, char **ret_pass, struct kiln_error **err)
{
    if (o && o->creds && *o->creds) {
        const char *colon = strchr(o->creds, ':');
        *ret_user = colon ? xstrndup(o->creds, (size_t)(colon - o->creds)) : xstrdup(o->creds);
        *ret_pass = xstrdup(colon ? colon + 1 : "");
        if (!**ret_user) {
            free(*ret_user);
            free(*ret_pass);
            return kiln_error_set(err, 0, "--creds: empty user name");
        }
        return 0;
    }
    _cleanup_strv_ char **files = reg_authfiles_for_read(o);
    for (size_t i = 0; files[i]; i++) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        int r = fs_read_file_at(AT_FDCWD, files[i], AUTHFILE_MAX, &buf, &len);
        if (r == -ENOENT || r == -ENOTDIR)
            continue;
        if (r < 0)
            return kiln_error_set(err, -r, "read credentials '%s'", files[i]);
        r = reg_authjson_lookup(buf, len, registry, repo, ret_user, ret_pass, err);
        if (r < 0)
            return kiln_error_wrap(err, "credentials file '%s'", files[i]);
        if (r == 0)
            return 0;
    }
    return 1;
}

/* ---- writing ------------------------------------------------------------ */

/* Re-emits a parsed value as it was (numbers keep their text). */
void reg_json_gen_value(struct json_gen *j, yajl_val v)
{
    if (!v) {
        json_null(j);
    } else if (YAJL_IS_STRING(v)) {
        json_str(j, v->u.string);
    } else if (YAJL_IS_NUMBER(v)) {
        yajl_gen_number(j->g, v->u.number.r, strlen(v->u.number.r));
    } else if (YAJL_IS_TRUE(v)) {
        json_bool(j, true);
    } else if (YAJL_IS_FALSE(v)) {
        json_bool(j, false);
    } else if (YAJL_IS_OBJECT(v)) {
        json_obj_open(j);
        for (size_t i = 0; i < v->u.object.len; i++) {
            json_key(j, v->u.object.keys[i]);
            reg_json_gen_value(j, v->u.object.values[i]);
        }
        json_obj_close(j);
    } else if (YAJL_IS_ARRAY(v)) {
        json_arr_open(j);
        for (size_t i = 0; i < v->u.array.len; i++)
            reg_json_gen_value(j, v->u.array.values[i]);
        json_arr_close(j);
    } else {
        json_null(j);
    }
}

int reg_authfile_update(const char *path, const char *key, const char *user, const char *pass,
                        bool *ret_found, struct kiln_error **err)
{
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    yajl_val root = NULL;
    int r = fs_read_file_at(AT_FDCWD, path, AUTHFILE_MAX, &buf, &len);
    if (r < 0 && r != -ENOENT)
        return kiln_error_set(err, -r, "read '%s'", path);
    if (r == 0 && len > 0) {
        if (json_parse(buf, len, &root, err) < 0)
            return kiln_error_wrap(err, "'%s' (not rewritten)", path);
        if (!YAJL_IS_OBJECT(root)) {
            yajl_tree_free(root);
            return kiln_error_set(err, 0, "'%s': not a JSON object (not rewritten)", path);
        }
    }
    _cleanup_free_ char *nkey = key ? reg_auth_key_normalize(key) : NULL;
    bool found = false;
    struct json_gen j;
    json_gen_init(&j, true);
    json_obj_open(&j);
    json_key(&j, "auths");
    json_obj_open(&j);
    yajl_val auths = json_get_obj(root, "auths");
    for (size_t i = 0; auths && i < auths->u.object.len; i++) {
        const char *k = auths->u.object.keys[i];
        _cleanup_free_ char *nk = reg_auth_key_normalize(k);
        if (!nkey || strcmp(nk, nkey) == 0) {
            found = true;
            continue; /* removed, or replaced below */
        }
        json_key(&j, k);
        reg_json_gen_value(&j, auths->u.object.values[i]);
    }
    if (user) {
        size_t ul = strlen(user), pl = strlen(pass ? pass : "");
        char *plain = xmalloc(ul + pl + 2);
        memcpy(plain, user, ul);
        plain[ul] = ':';
        memcpy(plain + ul + 1, pass ? pass : "", pl + 1);
        char *b64 = reg_base64_encode(plain, ul + 1 + pl);
        explicit_bzero(plain, ul + pl + 1);
        free(plain);
        json_key(&j, nkey);
        json_obj_open(&j);
        json_kv_str(&j, "auth", b64);
        json_obj_close(&j);
        explicit_bzero(b64, strlen(b64));
        free(b64);
    }
    json_obj_close(&j);
    for (size_t i = 0; root && i < root->u.object.len; i++) {
        if (strcmp(root->u.object.keys[i], "auths") == 0)
            continue;
        json_key(&j, root->u.object.keys[i]);
        reg_json_gen_value(&j, root->u.object.values[i]);
    }
    json_obj_close(&j);
    yajl_tree_free(root);
    if (ret_found)
        *ret_found = found;
    if (!user && !found) {
        json_gen_free(&j);
        return 0; /* nothing to remove: leave the file alone */
    }
    size_t olen = 0;
    const char *out = json_gen_buf(&j, &olen);
    _cleanup_free_ char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        r = fs_mkdir_p(dir, 0700);
        if (r < 0) {
            json_gen_free(&j);
            return kiln_error_set(err, -r, "create '%s'", dir);
        }
    }
    r = fs_write_atomic_at(AT_FDCWD, path, out, olen, 0600, true);
    json_gen_free(&j);
    if (r < 0)
        return kiln_error_set(err, -r, "write '%s'", path);
    return 0;
}

/* ---- insecure registries -------------------------------------------------- */

static bool same_registry(const char *a, size_t alen, const char *b)
{
    return alen == strlen(b) && strncasecmp(a, b, alen) == 0;
}

static bool list_names(const char *list, size_t len, const char *registry)
{
    const char *p = list, *end = list + len;
    while (p < end) {
        while (p < end && (*p == ',' || isspace((unsigned char)*p)))
            p++;
        const char *s = p;
        while (p < end && *p != ',' && !isspace((unsigned char)*p))
            p++;
        if (p > s && same_registry(s, (size_t)(p - s), registry))
            return true;
    }
    return false;
}

bool reg_conf_names_insecure(const char *text, size_t len, const char *registry)
{
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *s = p;
        while (s < le && isspace((unsigned char)*s))
            s++;
        if (s < le && *s != '#' && (size_t)(le - s) > 8 && strncmp(s, "insecure", 8) == 0 &&
            isspace((unsigned char)s[8])) {
            const char *hash = memchr(s, '#', (size_t)(le - s));
            if (list_names(s + 8, (size_t)((hash ? hash : le) - (s + 8)), registry))
                return true;
        }
        p = nl ? nl + 1 : end;
    }
    return false;
}

bool reg_registry_is_insecure(const char *registry)
{
    const char *e = getenv("KILN_INSECURE_REGISTRIES");
    if (e && list_names(e, strlen(e), registry))
        return true;
    _cleanup_free_ char *c = config_home();
    _cleanup_free_ char *path = path_join(c, "kiln/registries.conf");
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    if (fs_read_file_at(AT_FDCWD, path, CONF_MAX, &buf, &len) < 0)
        return false;
    return reg_conf_names_insecure(buf, len, registry);
}

bool reg_registry_is_loopback(const char *registry)
{
    _cleanup_free_ char *host = NULL;
    if (registry[0] == '[') {
        const char *close = strchr(registry, ']');
        if (!close)
            return false;
        host = xstrndup(registry + 1, (size_t)(close - registry - 1));
    } else {
        const char *colon = strchr(registry, ':');
        host = colon ? xstrndup(registry, (size_t)(colon - registry)) : xstrdup(registry);
    }
    if (strcasecmp(host, "localhost") == 0 || strcmp(host, "::1") == 0)
        return true;
    /* 127.0.0.0/8 written as a dotted quad */
    unsigned a, b, c, d;
    char tail;
    if (sscanf(host, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) == 4)
        return a == 127 && b < 256 && c < 256 && d < 256;
    return false;
}
