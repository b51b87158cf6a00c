/* HTTP for the registry client (libcurl): choosing https or http, TLS
 * settings and CA certificates, the auth challenge dance, retries with
 * back-off on 429/502/503/504 and dropped connections. */
#include <ctype.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "layers/registry_internal.h"
#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#define HEADER_VALUE_MAX 16384
#define CA_FILE_MAX (1u << 20)
#define CONNECT_TIMEOUT_S 30L
#define STALL_TIMEOUT_S 60L
#define BACKOFF_CAP_MS 10000L

/* ---- retry policy ------------------------------------------------------ */

bool reg_status_is_retryable(long status)
{
    return status == 429 || status == 502 || status == 503 || status == 504;
}

static bool curl_code_is_retryable(CURLcode rc)
{
    switch (rc) {
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return true;
    default:
        return false;
    }
}

long reg_retry_delay_ms(unsigned failures, const char *retry_after, time_t now, long base_ms,
                        long cap_ms)
{
    if (failures == 0 || failures >= REG_MAX_ATTEMPTS)
        return -1;
    if (retry_after) {
        while (isspace((unsigned char)*retry_after))
            retry_after++;
    }
    if (retry_after && *retry_after) {
        const char *p = retry_after;
        long secs = 0;
        bool digits = true;
        for (; *p && !isspace((unsigned char)*p); p++) {
            if (!isdigit((unsigned char)*p)) {
                digits = false;
                break;
            }
            if (secs < REG_RETRY_AFTER_MAX_MS / 1000 + 1)
                secs = secs * 10 + (*p - '0');
        }
        if (digits) {
            long ms = secs * 1000;
            return ms > REG_RETRY_AFTER_MAX_MS ? REG_RETRY_AFTER_MAX_MS : ms;
        }
        struct tm tm;
        memset(&tm, 0, sizeof(tm));
        const char *end = strptime(retry_after, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        if (end) {
            time_t when = timegm(&tm);
            if (when <= now)
                return 0;
            double ms = difftime(when, now) * 1000.0;
            return ms > (double)REG_RETRY_AFTER_MAX_MS ? REG_RETRY_AFTER_MAX_MS : (long)ms;
        }
        /* unparseable: fall back to our own back-off */
    }
    long d = base_ms;
    for (unsigned i = 1; i < failures && d < cap_ms; i++)
        d *= 2;
    return d > cap_ms ? cap_ms : d;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* ---- small things -------------------------------------------------------- */

void reg_status(const struct registry_opts *o, const char *fmt, ...)
{
    if (!o || !o->status)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *line = xvasprintf(fmt, ap);
    va_end(ap);
    o->status(o->ud, line);
    free(line);
}

char *reg_path(const char *repo, const char *what, const char *ref)
{
    return xasprintf("/v2/%s/%s/%s", repo, what, ref ? ref : "");
}

char *reg_human_size(uint64_t n)
{
    static const char *const units[] = {"B", "kB", "MB", "GB", "TB"};
    double v = (double)n;
    size_t u = 0;
    while (v >= 1000.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1000.0;
        u++;
    }
    return u == 0 ? xasprintf("%llu%s", (unsigned long long)n, units[0])
                  : xasprintf("%.1f%s", v, units[u]);
}

void reg_response_free(struct reg_response *r)
{
    free(r->content_type);
    free(r->location);
    free(r->docker_content_digest);
    free(r->www_authenticate);
    free(r->retry_after);
    free(r->range);
    free(r->chunk_min);
    strbuf_release(&r->body);
    memset(r, 0, sizeof(*r));
}

static void response_reset_headers(struct reg_response *r)
{
    struct strbuf body = r->body;
    long status = r->status;
    r->body = (struct strbuf)STRBUF_INIT;
    reg_response_free(r);
    r->body = body;
    r->status = status;
}

/* ---- one transfer ---------------------------------------------------------- */

struct xfer {
    struct reg_response *resp;
    struct reg_sink *sink;
    bool sink_begun;
    struct kiln_error *sink_err;
    size_t max_body;
    bool too_large;
    const struct reg_body *body;
    uint64_t body_pos;
    bool read_failed;
    CURL *curl;
};

static void set_header(char **slot, const char *v, size_t n)
{
    free(*slot);
    *slot = xstrndup(v, n);
}

static size_t header_cb(char *buf, size_t size, size_t nitems, void *ud)
{
    struct xfer *x = ud;
    size_t n = size * nitems;
    if (n >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
        /* a new response (after 100-continue or a redirect): forget the last */
        response_reset_headers(x->resp);
        return n;
    }
    const char *colon = memchr(buf, ':', n);
    if (!colon)
        return n;
    size_t nl = (size_t)(colon - buf);
    const char *v = colon + 1, *end = buf + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t vl = (size_t)(end - v);
    if (vl > HEADER_VALUE_MAX)
        return n; /* ignore absurd values */
    struct reg_response *r = x->resp;
#define IS(name) (nl == sizeof(name) - 1 && strncasecmp(buf, name, nl) == 0)
    if (IS("Content-Type")) {
        set_header(&r->content_type, v, vl);
    } else if (IS("Location")) {
        set_header(&r->location, v, vl);
    } else if (IS("Docker-Content-Digest")) {
        set_header(&r->docker_content_digest, v, vl);
    } else if (IS("WWW-Authenticate")) {
        if (r->www_authenticate && strlen(r->www_authenticate) + vl < HEADER_VALUE_MAX) {
            char *joined = xasprintf("%s, %.*s", r->www_authenticate, (int)vl, v);
            free(r->www_authenticate);
            r->www_authenticate = joined;
        } else if (!r->www_authenticate) {
            set_header(&r->www_authenticate, v, vl);
        }
    } else if (IS("Retry-After")) {
        set_header(&r->retry_after, v, vl);
    } else if (IS("Range")) {
        set_header(&r->range, v, vl);
    } else if (IS("OCI-Chunk-Min-Length")) {
        set_header(&r->chunk_min, v, vl);
    }
#undef IS
    return n;
}

static size_t write_cb(char *buf, size_t size, size_t nitems, void *ud)
{
    struct xfer *x = ud;
    size_t n = size * nitems;
    long code = 0;
    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 300 && code < 400)
        return n; /* the body of a redirect being followed */
    if (code >= 200 && code < 300 && x->sink) {
        if (!x->sink_begun) {
            if (x->sink->begin && x->sink->begin(x->sink->ud, &x->sink_err) < 0)
                return 0;
            x->sink_begun = true;
        }
        if (x->sink->write(x->sink->ud, buf, n, &x->sink_err) < 0)
            return 0;
        return n;
    }
    if (x->resp->body.len + n > x->max_body) {
        x->too_large = true;
        return 0;
    }
    strbuf_add(&x->resp->body, buf, n);
    return n;
}

static size_t read_cb(char *buf, size_t size, size_t nitems, void *ud)
{
    struct xfer *x = ud;
    const struct reg_body *b = x->body;
    uint64_t left = b->len - x->body_pos;
    size_t n = size * nitems;
    if (n > left)
        n = (size_t)left;
    if (n == 0)
        return 0;
    if (b->data) {
        memcpy(buf, b->data + x->body_pos, n);
    } else {
        ssize_t r;
        do
            r = pread(b->fd, buf, n, (off_t)(b->offset + x->body_pos));
        while (r < 0 && errno == EINTR);
        if (r <= 0) {
            x->read_failed = true;
            return CURL_READFUNC_ABORT;
        }
        n = (size_t)r;
    }
    x->body_pos += n;
    return n;
}

static int seek_cb(void *ud, curl_off_t offset, int origin)
{
    struct xfer *x = ud;
    if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > x->body->len)
        return CURL_SEEKFUNC_FAIL;
    x->body_pos = (uint64_t)offset;
    return CURL_SEEKFUNC_OK;
}

static bool tls_verify_for(const struct reg_client *c)
{
    return !c->insecure;
}

static CURLcode perform_once(struct reg_client *c, const char *url, const char *method,
                             struct curl_slist *headers, const struct reg_body *body,
                             struct xfer *x, char errbuf[CURL_ERROR_SIZE])
{
    CURL *h = c->curl;
    curl_easy_reset(h);
    errbuf[0] = '\0';
    x->curl = h;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "kiln");
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, STALL_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    bool verify = tls_verify_for(c);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, verify ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
    if (c->ca_blob) {
        struct curl_blob blob = {.data = c->ca_blob, .len = c->ca_len, .flags = CURL_BLOB_COPY};
        curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
    }
    if (c->client_cert && c->client_key) {
        curl_easy_setopt(h, CURLOPT_SSLCERT, c->client_cert);
        curl_easy_setopt(h, CURLOPT_SSLKEY, c->client_key);
    }
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
    } else if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
    } else if (strcmp(method, "DELETE") == 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
    } else {
        static const struct reg_body empty = {.data = "", .len = 0};
        x->body = body ? body : &empty;
        x->body_pos = 0;
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
        curl_easy_setopt(h, CURLOPT_READDATA, x);
        curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, seek_cb);
        curl_easy_setopt(h, CURLOPT_SEEKDATA, x);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)x->body->len);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    CURLcode rc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    x->resp->status = code;
    return rc;
}

/* ---- the client ---------------------------------------------------------- */

static const char *home_dir(void)
{
    const char *h = getenv("HOME");
    return h && *h ? h : "/";
}

/* Appends every *.crt of dir to the CA blob; remembers a client cert/key
 * pair (*.cert + *.key) as containers/image does. */
static void load_cert_dir(struct reg_client *c, const char *dir, struct strbuf *ca)
{
    _cleanup_dir_ DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        _cleanup_free_ char *path = path_join(dir, de->d_name);
        if (n > 4 && strcmp(de->d_name + n - 4, ".crt") == 0) {
            _cleanup_free_ char *buf = NULL;
            size_t len = 0;
            if (fs_read_file_at(AT_FDCWD, path, CA_FILE_MAX, &buf, &len) == 0) {
                log_debug("registry: CA certificates from '%s'", path);
                strbuf_add(ca, buf, len);
                strbuf_addc(ca, '\n');
            }
        } else if (n > 5 && strcmp(de->d_name + n - 5, ".cert") == 0 && !c->client_cert) {
            _cleanup_free_ char *key = xasprintf("%.*s.key", (int)(n - 5), de->d_name);
            _cleanup_free_ char *keypath = path_join(dir, key);
            if (fs_exists(keypath)) {
                c->client_cert = TAKE_PTR(path);
                c->client_key = TAKE_PTR(keypath);
            }
        }
    }
}

static void load_certs(struct reg_client *c, const struct registry_opts *o)
{
    struct strbuf ca = STRBUF_INIT;
    strbuf_init(&ca);
    if (o && o->cert_dir && *o->cert_dir) {
        load_cert_dir(c, o->cert_dir, &ca);
    } else {
        char *dirs[4] = {0};
        size_t nd = 0;
        const char *x = getenv("XDG_CONFIG_HOME");
        if (x && x[0] == '/')
            dirs[nd++] = xasprintf("%s/containers/certs.d/%s", x, c->registry);
        dirs[nd++] = xasprintf("%s/.config/containers/certs.d/%s", home_dir(), c->registry);
        dirs[nd++] = xasprintf("/etc/containers/certs.d/%s", c->registry);
        dirs[nd++] = xasprintf("/etc/docker/certs.d/%s", c->registry);
        for (size_t i = 0; i < nd; i++) {
            load_cert_dir(c, dirs[i], &ca);
            free(dirs[i]);
        }
    }
    if (ca.len) {
        c->ca_len = ca.len;
        c->ca_blob = strbuf_detach(&ca, NULL);
    } else {
        strbuf_release(&ca);
    }
}

int reg_client_new(const char *registry, const char *repo, const char *user, const char *pass,
                   const struct registry_opts *o, struct reg_client **ret,
                   struct kiln_error **err)
{
    static bool curl_ready;
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return kiln_error_set(err, 0, "libcurl initialisation failed");
        curl_ready = true;
    }
    struct reg_client *c = xcalloc(1, sizeof(*c));
    c->registry = xstrdup(registry);
    c->host = xstrdup(strcmp(registry, "docker.io") == 0 ? "registry-1.docker.io" : registry);
    c->opts = o;
    int tls = o ? o->tls_verify : REGISTRY_TLS_DEFAULT;
    c->insecure = tls == REGISTRY_TLS_SKIP_VERIFY ||
                  (tls == REGISTRY_TLS_DEFAULT && reg_registry_is_insecure(registry));
    c->loopback = tls == REGISTRY_TLS_DEFAULT && reg_registry_is_loopback(registry);
    const char *b = getenv("KILN_REGISTRY_BACKOFF_MS");
    c->backoff_ms = 500;
    if (b && *b) {
        char *end = NULL;
        long v = strtol(b, &end, 10);
        if (end && !*end && v >= 0 && v <= 60000)
            c->backoff_ms = v;
    }
    if (user) {
        c->user = xstrdup(user);
        c->pass = xstrdup(pass ? pass : "");
    } else {
        int r = reg_creds_lookup(o, registry, repo, &c->user, &c->pass, err);
        if (r < 0) {
            reg_client_free(c);
            return -1;
        }
        if (r == 1)
            c->user = c->pass = NULL;
    }
    load_certs(c, o);
    c->curl = curl_easy_init();
    if (!c->curl) {
        reg_client_free(c);
        return kiln_error_set(err, 0, "libcurl: cannot create a handle");
    }
    *ret = c;
    return 0;
}

void reg_client_free(struct reg_client *c)
{
    if (!c)
        return;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    free(c->registry);
    free(c->host);
    free(c->base);
    free(c->ca_blob);
    free(c->client_cert);
    free(c->client_key);
    free(c->user);
    if (c->pass) {
        explicit_bzero(c->pass, strlen(c->pass));
        free(c->pass);
    }
    free(c->realm);
    free(c->service);
    for (size_t i = 0; i < c->n_tokens; i++) {
        free(c->tokens[i].scope);
        free(c->tokens[i].token);
    }
    free(c->tokens);
    free(c);
}

/* ---- auth ------------------------------------------------------------------ */

static char *basic_header(const struct reg_client *c)
{
    _cleanup_free_ char *plain = xasprintf("%s:%s", c->user, c->pass);
    _cleanup_free_ char *b64 = reg_base64_encode(plain, strlen(plain));
    explicit_bzero(plain, strlen(plain));
    return xasprintf("Authorization: Basic %s", b64);
}

static void append_query(struct strbuf *sb, CURL *h, const char *name, const char *value)
{
    char *esc = curl_easy_escape(h, value, 0);
    strbuf_addf(sb, "%c%s=%s", strchr(sb->buf, '?') ? '&' : '?', name, esc ? esc : "");
    curl_free(esc);
}

int reg_client_token(struct reg_client *c, const char *scope, bool force, const char **ret_token,
                     struct kiln_error **err)
{
    const char *key = scope ? scope : "";
    time_t now = time(NULL);
    for (size_t i = 0; i < c->n_tokens; i++) {
        if (strcmp(c->tokens[i].scope, key) != 0)
            continue;
        if (!force && c->tokens[i].expires > now) {
            *ret_token = c->tokens[i].token;
            return 0;
        }
    }
    if (!c->realm)
        return kiln_error_set(err, 0, "registry '%s': bearer challenge without a realm",
                              c->registry);
    struct strbuf url = STRBUF_INIT;
    strbuf_init(&url);
    strbuf_adds(&url, c->realm);
    CURL *h = c->curl;
    if (c->service)
        append_query(&url, h, "service", c->service);
    if (scope) {
        _cleanup_free_ char *copy = xstrdup(scope);
        char *save = NULL;
        for (char *tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
            append_query(&url, h, "scope", tok);
    }
    if (c->user)
        append_query(&url, h, "account", c->user);
    _cleanup_free_ char *auth = c->user ? basic_header(c) : NULL;
    const char *headers[] = {auth, NULL};
    struct reg_request rq = {
        .method = "GET",
        .url = url.buf,
        .headers = auth ? headers : NULL,
        .no_auth = true,
        .max_body = 1u << 20,
    };
    struct reg_response resp = {0};
    strbuf_init(&resp.body);
    int r = reg_do(c, &rq, &resp, err);
    strbuf_release(&url);
    if (auth)
        explicit_bzero(auth, strlen(auth));
    if (r < 0) {
        reg_response_free(&resp);
        return kiln_error_wrap(err, "registry '%s': get a token", c->registry);
    }
    if (resp.status == 401 || resp.status == 403) {
        reg_response_free(&resp);
        if (c->user)
            return kiln_error_set(err, 0,
                                  "registry '%s': authentication failed for user '%s': "
                                  "invalid user name or password",
                                  c->registry, c->user);
        return kiln_error_set(err, 0, "registry '%s': authentication required (use 'kiln login')",
                              c->registry);
    }
    if (resp.status != 200) {
        r = reg_response_error(c, &resp, err, "registry '%s': token server", c->registry);
        reg_response_free(&resp);
        return r;
    }
    char *token = NULL;
    int64_t expires_in = 0;
    r = reg_token_parse(resp.body.buf, resp.body.len, &token, &expires_in, err);
    reg_response_free(&resp);
    if (r < 0)
        return kiln_error_wrap(err, "registry '%s'", c->registry);
    struct reg_token *t = NULL;
    for (size_t i = 0; i < c->n_tokens && !t; i++)
        if (strcmp(c->tokens[i].scope, key) == 0)
            t = &c->tokens[i];
    if (!t) {
        c->tokens = xreallocarray(c->tokens, c->n_tokens + 1, sizeof(*c->tokens));
        t = &c->tokens[c->n_tokens++];
        t->scope = xstrdup(key);
        t->token = NULL;
    }
    free(t->token);
    t->token = token;
    /* a little early, so that a token does not expire on the way */
    t->expires = now + (time_t)expires_in - 10;
    *ret_token = t->token;
    return 0;
}

static int auth_header(struct reg_client *c, const char *scope, char **ret,
                       struct kiln_error **err)
{
    *ret = NULL;
    if (c->scheme == REG_AUTH_BEARER) {
        const char *tok = NULL;
        if (reg_client_token(c, scope, false, &tok, err) < 0)
            return -1;
        *ret = xasprintf("Authorization: Bearer %s", tok);
    } else if (c->scheme == REG_AUTH_BASIC && c->user) {
        *ret = basic_header(c);
    }
    return 0;
}

/* Learns the scheme (and realm, service) from a 401's challenges. */
static void take_challenge(struct reg_client *c, const char *header, char **ret_scope)
{
    struct reg_challenge *ch = NULL;
    size_t n = 0;
    struct kiln_error *e = NULL;
    if (ret_scope)
        *ret_scope = NULL;
    if (!header || reg_challenges_parse(header, &ch, &n, &e) < 0) {
        if (e)
            log_debug("registry '%s': %s", c->registry, e->msg);
        kiln_error_free(&e);
        return;
    }
    const struct reg_challenge *pick = NULL;
    for (size_t i = 0; i < n && !pick; i++)
        if (ch[i].scheme == REG_AUTH_BEARER && ch[i].realm)
            pick = &ch[i];
    for (size_t i = 0; i < n && !pick; i++)
        if (ch[i].scheme == REG_AUTH_BASIC)
            pick = &ch[i];
    if (pick) {
        c->scheme = pick->scheme;
        if (pick->scheme == REG_AUTH_BEARER) {
            free(c->realm);
            free(c->service);
            c->realm = xstrdup(pick->realm);
            c->service = pick->service ? xstrdup(pick->service) : NULL;
            if (ret_scope && pick->scope)
                *ret_scope = xstrdup(pick->scope);
        }
    }
    reg_challenges_free(ch, n);
}

/* ---- requests ------------------------------------------------------------ */

static bool same_origin(const struct reg_client *c, const char *url)
{
    size_t n = c->base ? strlen(c->base) : 0;
    return n && strncmp(url, c->base, n) == 0 && (url[n] == '/' || url[n] == '\0');
}

/* The scope to ask for: ours, plus what the challenge names if different. */
static char *merge_scope(const char *ours, const char *theirs)
{
    if (!theirs || (ours && strstr(ours, theirs)))
        return ours ? xstrdup(ours) : NULL;
    if (!ours)
        return xstrdup(theirs);
    return xasprintf("%s %s", ours, theirs);
}

int reg_do(struct reg_client *c, const struct reg_request *rq, struct reg_response *resp,
           struct kiln_error **err)
{
    bool absolute = strncmp(rq->url, "http://", 7) == 0 || strncmp(rq->url, "https://", 8) == 0;
    if (!absolute && !c->base && reg_client_ping(c, err) < 0)
        return -1;
    _cleanup_free_ char *url =
        absolute ? xstrdup(rq->url) : xasprintf("%s%s", c->base, rq->url);
    _cleanup_free_ char *scope = rq->scope ? xstrdup(rq->scope) : NULL;
    bool auth_retried = false;
    unsigned failures = 0;
    for (;;) {
        reg_response_free(resp);
        strbuf_init(&resp->body);
        struct curl_slist *hl = NULL;
        _cleanup_free_ char *auth = NULL;
        if (!rq->no_auth && same_origin(c, url) && auth_header(c, scope, &auth, err) < 0)
            return -1;
        if (auth)
            hl = curl_slist_append(hl, auth);
        for (size_t i = 0; rq->headers && rq->headers[i]; i++)
            hl = curl_slist_append(hl, rq->headers[i]);
        hl = curl_slist_append(hl, "Expect:");
        struct xfer x = {
            .resp = resp,
            .sink = rq->sink,
            .max_body = rq->max_body ? rq->max_body : REG_ERROR_BODY_MAX,
            .body = rq->body,
        };
        char errbuf[CURL_ERROR_SIZE];
        log_debug("registry: %s %s", rq->method, url);
        CURLcode rc = perform_once(c, url, rq->method, hl, rq->body, &x, errbuf);
        c->last_curl_code = 0;
        curl_slist_free_all(hl);
        if (auth)
            explicit_bzero(auth, strlen(auth));
        bool ok2xx = rc == CURLE_OK && resp->status >= 200 && resp->status < 300;
        if (x.sink_begun && !ok2xx && rq->sink->reset)
            rq->sink->reset(rq->sink->ud);
        if (x.sink_err) {
            /* the sink refused the bytes (too many, disk full): no retry */
            if (err) {
                kiln_error_free(err);
                *err = x.sink_err;
            } else {
                kiln_error_free(&x.sink_err);
            }
            return -1;
        }
        if (x.too_large)
            return kiln_error_set(err, 0, "%s %s: answer larger than %zu bytes", rq->method, url,
                                  x.max_body);
        if (x.read_failed)
            return kiln_error_set(err, errno, "%s %s: read the upload", rq->method, url);
        if (rc != CURLE_OK) {
            long d = -1;
            if (!rq->no_retry && curl_code_is_retryable(rc))
                d = reg_retry_delay_ms(++failures, NULL, time(NULL), c->backoff_ms,
                                       BACKOFF_CAP_MS);
            if (d >= 0) {
                reg_status(c->opts, "%s %s: %s; retrying in %.1fs", rq->method, url,
                           errbuf[0] ? errbuf : curl_easy_strerror(rc), (double)d / 1000.0);
                sleep_ms(d);
                continue;
            }
            c->last_curl_code = (int)rc;
            return kiln_error_set(err, 0, "%s %s: %s", rq->method, url,
                                  errbuf[0] ? errbuf : curl_easy_strerror(rc));
        }
        if (resp->status == 401 && !rq->no_auth && !auth_retried) {
            auth_retried = true;
            _cleanup_free_ char *ch_scope = NULL;
            enum reg_auth_scheme before = c->scheme;
            take_challenge(c, resp->www_authenticate, &ch_scope);
            if (c->scheme == REG_AUTH_BEARER) {
                char *merged = merge_scope(scope, ch_scope);
                free(scope);
                scope = merged;
                const char *tok = NULL;
                if (reg_client_token(c, scope, true, &tok, err) < 0)
                    return -1;
                continue;
            }
            if (c->scheme == REG_AUTH_BASIC && c->user && before != REG_AUTH_BASIC)
                continue;
            return 0; /* the caller reports the 401 */
        }
        if (reg_status_is_retryable(resp->status) && !rq->no_retry) {
            long d = reg_retry_delay_ms(++failures, resp->retry_after, time(NULL),
                                        c->backoff_ms, BACKOFF_CAP_MS);
            if (d >= 0) {
                reg_status(c->opts, "%s %s: %ld; retrying in %.1fs", rq->method, url,
                           resp->status, (double)d / 1000.0);
                sleep_ms(d);
                continue;
            }
        }
        return 0;
    }
}

int reg_client_ping(struct reg_client *c, struct kiln_error **err)
{
    if (c->base)
        return 0;
    const char *schemes[2] = {"https", NULL};
    if (c->insecure || c->loopback)
        schemes[1] = "http";
    struct kiln_error *first = NULL;
    for (size_t i = 0; i < 2 && schemes[i]; i++) {
        free(c->base);
        c->base = xasprintf("%s://%s", schemes[i], c->host);
        _cleanup_free_ char *url = xasprintf("%s/v2/", c->base);
        struct reg_request rq = {.method = "GET", .url = url, .no_auth = true};
        struct reg_response resp = {0};
        strbuf_init(&resp.body);
        struct kiln_error *e = NULL;
        if (reg_do(c, &rq, &resp, &e) < 0) {
            reg_response_free(&resp);
            /* why the https attempt failed decides whether http may follow:
             * an insecure registry falls back on any TLS trouble, a loopback
             * one only when TLS could not start (a plain HTTP server), never
             * when a certificate failed verification */
            CURLcode rc = (CURLcode)c->last_curl_code;
            bool tls_failed = rc == CURLE_SSL_CONNECT_ERROR;
            if (c->insecure)
                tls_failed |= rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_GOT_NOTHING ||
                              rc == CURLE_RECV_ERROR || rc == CURLE_SSL_CERTPROBLEM;
            if (i == 0 && schemes[1] && tls_failed) {
                log_debug("registry '%s': https failed (%s), trying http", c->registry, e->msg);
                first = e;
                continue;
            }
            kiln_error_free(&first);
            if (err) {
                kiln_error_free(err);
                *err = e;
            } else {
                kiln_error_free(&e);
            }
            free(c->base);
            c->base = NULL;
            if (rc == CURLE_PEER_FAILED_VERIFICATION)
                kiln_error_wrap(err, "registry '%s' (trust its CA in "
                                     "~/.config/containers/certs.d/%s/ or with --cert-dir, "
                                     "or use --tls-verify=false)",
                                c->registry, c->registry);
            else
                kiln_error_wrap(err, "registry '%s'", c->registry);
            return -1;
        }
        kiln_error_free(&first);
        if (resp.status == 401) {
            take_challenge(c, resp.www_authenticate, NULL);
        } else if (resp.status != 200) {
            int r = reg_response_error(c, &resp, err,
                                       "registry '%s': GET /v2/ (is it an OCI registry?)",
                                       c->registry);
            reg_response_free(&resp);
            free(c->base);
            c->base = NULL;
            return r;
        }
        reg_response_free(&resp);
        log_debug("registry '%s': %s, auth %d", c->registry, c->base, (int)c->scheme);
        c->pinged = true;
        return 0;
    }
    free(c->base);
    c->base = NULL;
    if (err) {
        kiln_error_free(err);
        *err = first;
    } else {
        kiln_error_free(&first);
    }
    return kiln_error_wrap(err, "registry '%s'", c->registry);
}

int reg_response_error(struct reg_client *c, const struct reg_response *resp,
                       struct kiln_error **err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *what = xvasprintf(fmt, ap);
    va_end(ap);
    struct strbuf detail = STRBUF_INIT;
    strbuf_init(&detail);
    yajl_val root = NULL;
    struct kiln_error *e = NULL;
    if (resp->body.len && json_parse(resp->body.buf, resp->body.len, &root, &e) == 0) {
        yajl_val errs = json_get_arr(root, "errors");
        for (size_t i = 0; errs && i < errs->u.array.len && i < 3; i++) {
            const char *code = json_get_str(errs->u.array.values[i], "code");
            const char *msg = json_get_str(errs->u.array.values[i], "message");
            strbuf_addf(&detail, "%s%s%s%s", detail.len ? "; " : ": ", code ? code : "",
                        code && msg ? ": " : "", msg ? msg : "");
        }
        yajl_tree_free(root);
    }
    kiln_error_free(&e);
    const char *hint = "";
    if (resp->status == 401)
        hint = c && c->user ? " (invalid user name or password?)"
               : strstr(strbuf_str(&detail), "authentication required")
                   ? " (log in with 'kiln login' or pass --creds)"
                   : " (authentication required: log in with 'kiln login' or pass --creds)";
    else if (resp->status == 403)
        hint = " (access denied)";
    int r = kiln_error_set(err, 0, "%s: HTTP %ld%s%s", what, resp->status, strbuf_str(&detail),
                           hint);
    strbuf_release(&detail);
    return r;
}
