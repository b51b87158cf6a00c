/* The registry client's parts, shared by layers/registry_*.c and their unit
 * tests.  Not for other modules: they use layers/registry.h.
 *
 *   registry_http.c    libcurl requests, scheme/TLS choice, retries, auth dance
 *   registry_auth.c    WWW-Authenticate parsing, bearer tokens
 *   registry_creds.c   auth.json / config.json reading and writing, base64
 *   registry_list.c    manifest lists / OCI indexes, platform selection
 *   registry_blob.c    verified downloads into a staging dir, uploads, manifests
 *   registry_pull.c, registry_push.c, registry_login.c, registry_cache.c */
#ifndef KILN_REGISTRY_INTERNAL_H
#define KILN_REGISTRY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <time.h>
#include <yajl/yajl_tree.h>

#include "layers/registry.h"
#include "lib/sha256.h"
#include "lib/strbuf.h"

/* Largest manifest or index accepted from a registry (containers/image: 4 MiB). */
#define REG_MANIFEST_MAX (4u << 20)
/* Largest error body kept for a message. */
#define REG_ERROR_BODY_MAX (64u << 10)
/* Attempts for one request (first try included). */
#define REG_MAX_ATTEMPTS 5

/* ---- retry policy (registry_http.c) --------------------------------- */

/* True for the statuses worth trying again: 429, 502, 503, 504 (and 500? no:
 * a 500 is usually a registry bug that repeats). */
bool reg_status_is_retryable(long status);
/* The wait before the next attempt, in milliseconds, after `failures`
 * failed attempts (1 after the first): base * 2^(failures-1) capped at
 * cap_ms, or what Retry-After asks (seconds or an HTTP date, relative to
 * now) when given, capped at REG_RETRY_AFTER_MAX_MS.  -1 once failures
 * reaches REG_MAX_ATTEMPTS. */
#define REG_RETRY_AFTER_MAX_MS 60000L
long reg_retry_delay_ms(unsigned failures, const char *retry_after, time_t now, long base_ms,
                        long cap_ms);

/* ---- WWW-Authenticate (registry_auth.c) ----------------------------- */

enum reg_auth_scheme { REG_AUTH_NONE = 0, REG_AUTH_BASIC, REG_AUTH_BEARER, REG_AUTH_OTHER };

struct reg_challenge {
    enum reg_auth_scheme scheme;
    char *realm;
    char *service;
    char *scope;
    char *error; /* "insufficient_scope", "invalid_token" ... */
};

/* Parses a WWW-Authenticate value (RFC 7235: one or more challenges, each a
 * scheme then auth-params or a token68).  Caps: 8 KiB, 16 challenges. */
int reg_challenges_parse(const char *header, struct reg_challenge **ret, size_t *ret_n,
                         struct kiln_error **err);
void reg_challenges_free(struct reg_challenge *c, size_t n);

/* A token endpoint's JSON answer: "token" or "access_token", "expires_in". */
int reg_token_parse(const char *buf, size_t len, char **ret_token, int64_t *ret_expires_in,
                    struct kiln_error **err);

/* ---- credentials (registry_creds.c) --------------------------------- */

char *reg_base64_encode(const void *data, size_t len);
/* -1 on malformed input; *ret is NUL-terminated. */
int reg_base64_decode(const char *s, char **ret, size_t *ret_len);

/* "https://index.docker.io/v1/" -> "docker.io", "http://h:1/" -> "h:1",
 * "quay.io/ns/repo" kept (per-repository credentials). */
char *reg_auth_key_normalize(const char *s);

/* Where login writes: --authfile, $REGISTRY_AUTH_FILE,
 * $XDG_RUNTIME_DIR/containers/auth.json, else
 * $XDG_CONFIG_HOME/containers/auth.json (~/.config/...). */
char *reg_authfile_for_write(const struct registry_opts *o);
/* The files read, in order (NULL-terminated). */
char **reg_authfiles_for_read(const struct registry_opts *o);

/* Credentials for registry (and repository path, for per-repository
 * entries): --creds first, then the auth files.  0 found, 1 none. */
int reg_creds_lookup(const struct registry_opts *o, const char *registry, const char *repo,
                     char **ret_user, char **ret_pass, struct kiln_error **err);
/* Looks a key up in one auth file's JSON text.  0 found, 1 none. */
int reg_authjson_lookup(const char *buf, size_t len, const char *registry, const char *repo,
                        char **ret_user, char **ret_pass, struct kiln_error **err);
/* Adds or replaces auths[key] (keeping everything else), or removes it
 * (user NULL; key NULL removes every entry).  Writes 0600, creating
 * directories 0700. */
int reg_authfile_update(const char *path, const char *key, const char *user, const char *pass,
                        bool *ret_found, struct kiln_error **err);

/* Re-emits a parsed JSON value (numbers keep their text). */
struct json_gen;
void reg_json_gen_value(struct json_gen *j, yajl_val v);

/* The per-registry insecure list: KILN_INSECURE_REGISTRIES (comma or space
 * separated) and $XDG_CONFIG_HOME/kiln/registries.conf ("insecure HOST[:PORT]"
 * lines, '#' comments). */
bool reg_registry_is_insecure(const char *registry);
bool reg_registry_is_loopback(const char *registry);
/* Parses registries.conf text: true if it names registry as insecure. */
bool reg_conf_names_insecure(const char *text, size_t len, const char *registry);

/* ---- manifest lists (registry_list.c) ------------------------------- */

struct reg_platform {
    char *os;
    char *arch;
    char *variant; /* may be NULL */
};

/* "linux/arm64/v8", "linux/amd64"; architectures normalised (x86_64 ->
 * amd64, aarch64 -> arm64, armhf -> arm/v7). */
int reg_platform_parse(const char *s, struct reg_platform *ret, struct kiln_error **err);
void reg_platform_free(struct reg_platform *p);
/* The build machine's. */
void reg_platform_host(struct reg_platform *ret);
char *reg_platform_string(const struct reg_platform *p);

struct reg_index_entry {
    struct descriptor desc;
    struct reg_platform platform; /* os/arch NULL when absent */
};

bool reg_media_type_is_index(const char *mt);
bool reg_media_type_is_manifest(const char *mt);
/* Parses an OCI index / Docker manifest list (at most 4096 entries). */
int reg_index_parse(const char *buf, size_t len, struct reg_index_entry **ret, size_t *ret_n,
                    struct kiln_error **err);
void reg_index_free(struct reg_index_entry *e, size_t n);
/* The entry for a platform: exact variant first; arm64 "" == "v8"; an
 * entry without variant matches any; -1 when none fits. */
int reg_index_select(const struct reg_index_entry *e, size_t n, const struct reg_platform *want);
/* The media type a manifest document declares (its "mediaType", else
 * guessed: "manifests" -> OCI index, "layers" -> OCI manifest); NULL for
 * schema 1 or garbage.  Caller frees. */
char *reg_manifest_sniff(const char *buf, size_t len);

/* ---- HTTP (registry_http.c) ------------------------------------------ */

struct reg_response {
    long status;
    char *content_type;
    char *location;
    char *docker_content_digest;
    char *www_authenticate; /* all challenges, joined with ", " */
    char *retry_after;
    char *range;
    char *chunk_min;        /* OCI-Chunk-Min-Length */
    struct strbuf body;     /* non-2xx bodies, or 2xx without a sink (capped) */
};

void reg_response_free(struct reg_response *r);

/* Streaming target for 2xx bodies: begin before the first byte of each
 * attempt, reset when an attempt fails (the next one starts over). */
struct reg_sink {
    int (*begin)(void *ud, struct kiln_error **err);
    int (*write)(void *ud, const void *data, size_t len, struct kiln_error **err);
    void (*reset)(void *ud);
    void *ud;
};

/* Request body: memory, or a range of a file (pread, so retries rewind). */
struct reg_body {
    const char *data;
    int fd; /* used when data is NULL */
    uint64_t offset;
    uint64_t len;
};

struct reg_request {
    const char *method;          /* GET HEAD PUT POST PATCH DELETE */
    const char *url;             /* absolute, or a path starting with '/' */
    const char *scope;           /* bearer scope(s), space separated; NULL: none */
    const char *const *headers;  /* extra "Name: value", NULL-terminated */
    const struct reg_body *body;
    struct reg_sink *sink;
    size_t max_body;             /* cap for resp->body (0: REG_ERROR_BODY_MAX) */
    bool no_retry;               /* one attempt (plus the auth retry) */
    bool no_auth;                /* never send credentials */
};

struct reg_token {
    char *scope;
    char *token;
    time_t expires;
};

struct reg_client {
    char *registry; /* as in references: "docker.io", "localhost:5000" */
    char *host;     /* where to connect: "registry-1.docker.io" */
    char *base;     /* "https://host" or "http://host" once pinged */
    bool insecure;  /* no TLS verification, plain HTTP allowed */
    bool loopback;  /* plain HTTP allowed when TLS cannot start */
    char *ca_blob;  /* PEM of certs.d CAs (added to the system's) */
    size_t ca_len;
    char *client_cert, *client_key;
    char *user, *pass;
    enum reg_auth_scheme scheme;
    char *realm, *service;
    struct reg_token *tokens;
    size_t n_tokens;
    bool pinged;
    int last_curl_code; /* CURLcode of the last failed request */
    void *curl;
    const struct registry_opts *opts;
    long backoff_ms; /* base back-off (KILN_REGISTRY_BACKOFF_MS, default 500) */
};

/* A client for one registry; credentials are looked up for repo (may be
 * NULL).  user/pass override the lookup (login). */
int reg_client_new(const char *registry, const char *repo, const char *user, const char *pass,
                   const struct registry_opts *o, struct reg_client **ret,
                   struct kiln_error **err);
void reg_client_free(struct reg_client *c);
/* GET /v2/: picks the scheme and learns the auth challenge. */
int reg_client_ping(struct reg_client *c, struct kiln_error **err);
/* One request with the auth dance (one retry on 401) and retries on 429,
 * 502-504 and dropped connections.  0 with resp filled whatever the HTTP
 * status; -1 when no answer could be had (or a sink failed). */
int reg_do(struct reg_client *c, const struct reg_request *rq, struct reg_response *resp,
           struct kiln_error **err);
/* An error from a response: "what: 404 Not Found: MANIFEST_UNKNOWN: ...".
 * 401/403 get an authentication hint. */
int reg_response_error(struct reg_client *c, const struct reg_response *resp, struct kiln_error **err,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Fetches a bearer token for scope (NULL: none, as login does). */
int reg_client_token(struct reg_client *c, const char *scope, bool force, const char **ret_token,
                     struct kiln_error **err);
void reg_status(const struct registry_opts *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* "/v2/<repo>/<what>/<ref>" */
char *reg_path(const char *repo, const char *what, const char *ref);

/* ---- blobs and manifests (registry_blob.c) -------------------------- */

/* Verified blobs waiting in tmp/ until everything of an image has arrived;
 * commit moves them into blobs/, abort removes them. */
struct reg_staging {
    struct store *store;
    char *dir;
    int dirfd;
    char **digests;
    pthread_mutex_t lock; /* digests, for parallel downloads */
};

int reg_staging_begin(struct store *s, struct reg_staging **ret, struct kiln_error **err);
/* A small verified blob (manifest, config) from memory. */
int reg_staging_put(struct reg_staging *st, const char *digest, const void *data, size_t len,
                    struct kiln_error **err);
/* A blob from an open file (another layout), checking size and digest. */
int reg_staging_copy_fd(struct reg_staging *st, const struct descriptor *d, int fd,
                        struct kiln_error **err);
bool reg_staging_has(struct reg_staging *st, const char *digest);
int reg_staging_commit(struct reg_staging *st, struct kiln_error **err);
/* Removes what is left and frees; accepts NULL. */
void reg_staging_free(struct reg_staging *st);

/* Downloads a blob into the staging dir, checking size and digest. */
int reg_fetch_blob(struct reg_client *c, const char *repo, const struct descriptor *d,
                   struct reg_staging *st, struct kiln_error **err);
/* Downloads the blobs the store and the staging dir lack, several at once. */
int reg_fetch_blobs(struct reg_client *c, const char *repo, const struct descriptor *d, size_t n,
                    struct reg_staging *st, struct kiln_error **err);
/* Downloads a small blob (config) into memory, checking size and digest. */
int reg_fetch_blob_mem(struct reg_client *c, const char *repo, const struct descriptor *d,
                       size_t max, char **ret, struct kiln_error **err);
/* GETs a manifest or index by tag or digest; verifies it against a digest
 * reference, and against Docker-Content-Digest when the registry sends one.
 * *ret_digest is the sha256 of the bytes. */
int reg_fetch_manifest(struct reg_client *c, const char *repo, const char *reference,
                       char **ret, size_t *ret_len, char **ret_media_type,
                       char ret_digest[DIGEST_STR_LEN], struct kiln_error **err);

/* Where an upload's bytes come from. */
struct reg_blob_src {
    struct store *store; /* the store's blob of that digest, or */
    const char *data;    /* memory */
    const char *label;   /* "config" in progress lines; NULL: "blob" */
};
/* HEAD, then a mount from one of `from` (repositories of the same
 * registry), else POST + PUT (monolithic) or PATCH chunks + PUT.
 * *ret_uploaded gets the bytes sent (0 when it existed or was mounted). */
int reg_push_blob(struct reg_client *c, const char *repo, const struct descriptor *d,
                  const struct reg_blob_src *src, char *const *from, uint64_t *ret_uploaded,
                  struct kiln_error **err);
/* Uploads a manifest's layers and config (config from config_data when
 * not NULL, else from the store); *ret_sent: bytes uploaded. */
struct manifest;
int reg_push_manifest_blobs(struct reg_client *c, struct store *s, const char *repo,
                            const struct manifest *m, const char *config_data,
                            uint64_t *ret_sent, struct kiln_error **err);
int reg_put_manifest(struct reg_client *c, const char *repo, const char *reference,
                     const char *media_type, const char *data, size_t len,
                     char ret_digest[DIGEST_STR_LEN], struct kiln_error **err);

/* Repositories a blob was pulled from or pushed to (for cross-repository
 * mounts): <store>/sources.json, {"sha256:...": ["host/repo", ...]}.
 * Records the layers (and the config, with_config) of m as held by
 * registry/repo; a hint only, so a failure is logged and not returned. */
void reg_sources_note(struct store *s, const struct manifest *m, bool with_config,
                      const char *registry, const char *repo);
/* Repositories of `registry` known to hold digest (without the registry). */
char **reg_sources_get(struct store *s, const char *digest, const char *registry);

/* ---- parallel transfers (registry_parallel.c) --------------------------- */

/* A copy of a client with its own connection (same settings, tokens). */
struct reg_client *reg_client_clone(const struct reg_client *c);
/* Transfers at once: KILN_REGISTRY_PARALLEL (1-8, default 3). */
unsigned reg_parallelism(void);
typedef int (*reg_job_fn)(struct reg_client *c, size_t i, void *ud, struct kiln_error **err);
/* Runs fn for i in [0, n) on up to reg_parallelism() clones of c, each job
 * once; progress lines (c->opts->status) are serialised.  The token for
 * scope is fetched first, so that the clones share it.  The first error is
 * returned; jobs not started by then are not run. */
int reg_parallel(struct reg_client *c, const char *scope, size_t n, reg_job_fn fn, void *ud,
                 struct kiln_error **err);

/* Upload chunk size: KILN_REGISTRY_CHUNK_SIZE bytes (default 32 MiB);
 * blobs larger than it go up in PATCH chunks. */
uint64_t reg_chunk_size(void);
char *reg_human_size(uint64_t n);

#endif
