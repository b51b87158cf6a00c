/* The OCI Distribution client (docker:// references): pull into the store,
 * push from it, credentials, and the build cache shared through a registry.
 * Every downloaded blob is verified (digest and size) before it is used. */
#ifndef KILN_REGISTRY_H
#define KILN_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

#include "layers/descriptor.h"
#include "layers/store.h"
#include "lib/error.h"

struct registry_opts {
    const char *authfile;   /* NULL: $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json,
                               ~/.docker/config.json */
    const char *creds;      /* "USER[:PASSWORD]" from --creds */
    int tls_verify;         /* 1 verify (default), 0 off, -1 per-registry default */
    const char *cert_dir;   /* extra CA certificates (*.crt) */
    const char *platform;   /* "linux/amd64" or NULL for the build machine's */
    /* progress lines ("pulling sha256:abc... 12.3MB"); may be NULL */
    void (*status)(void *ud, const char *line);
    void *ud;
};

/* Pulls REF (docker reference, maybe with @digest) into the store and names
 * it (familiar form) unless it was given by digest only. */
int registry_pull(struct store *s, const char *ref, const struct registry_opts *o,
                  struct descriptor *ret_manifest, struct kiln_error **err);
/* Pushes an image of the store (manifest descriptor) to REF. */
int registry_push(struct store *s, const struct descriptor *manifest, const char *ref,
                  const struct registry_opts *o, char ret_digest[DIGEST_STR_LEN],
                  struct kiln_error **err);

int registry_login(const char *registry, const char *user, const char *password,
                   const struct registry_opts *o, struct kiln_error **err);
int registry_logout(const char *registry, const struct registry_opts *o, bool *ret_found,
                    struct kiln_error **err);

/* The build cache through a registry (or a local directory): records
 * (key -> layer, diff_id, created; see engine/cache.h) with their blobs. */
struct cache_spec;
/* Brings the records (and their blobs) of a cache source into the store. */
int cache_remote_import(struct store *s, const struct cache_spec *from,
                        const struct registry_opts *o, struct kiln_error **err);
/* Exports the records named by keys (with their blobs). */
int cache_remote_export(struct store *s, const struct cache_spec *to, char *const *keys,
                        const struct registry_opts *o, struct kiln_error **err);

#endif
