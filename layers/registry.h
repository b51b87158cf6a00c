/* The OCI Distribution client (docker:// references): pull into the store,
 * push from it, credentials, and the build cache shared through a registry.
 * Every downloaded blob is verified (digest and size) before it is used.
 *
 * Configuration read here:
 *   credentials  --creds, --authfile / $REGISTRY_AUTH_FILE, else
 *                $XDG_RUNTIME_DIR/containers/auth.json,
 *                $XDG_CONFIG_HOME/containers/auth.json, ~/.docker/config.json
 *                ($DOCKER_CONFIG/config.json); credential helpers are not run
 *   CAs          --cert-dir, else certs.d/HOST:PORT/ (*.crt files) under
 *                $XDG_CONFIG_HOME/containers, ~/.config/containers,
 *                /etc/containers, /etc/docker (added to the system's CAs;
 *                a *.cert + *.key pair is used as a client certificate)
 *   insecure     KILN_INSECURE_REGISTRIES="host:port,other" and
 *                $XDG_CONFIG_HOME/kiln/registries.conf lines
 *                "insecure HOST[:PORT] ..." ('#' comments)
 *   tuning       KILN_REGISTRY_BACKOFF_MS (first retry delay, default 500),
 *                KILN_REGISTRY_CHUNK_SIZE (bytes; larger blobs are uploaded
 *                in PATCH chunks of that size, default 32 MiB)
 * The store gets one extra file, sources.json: which repositories of which
 * registries hold which blobs (a hint for cross-repository mounts). */
#ifndef KILN_REGISTRY_H
#define KILN_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

#include "layers/descriptor.h"
#include "layers/store.h"
#include "lib/error.h"

/* TLS for a registry (the values of registry_opts.tls_verify).
 * DEFAULT (-1): https with verification, except for registries listed as
 * insecure (KILN_INSECURE_REGISTRIES, $XDG_CONFIG_HOME/kiln/registries.conf),
 * which get SKIP_VERIFY, and loopback ones (localhost, 127.0.0.0/8, ::1),
 * which fall back to plain http when TLS cannot start.  VERIFY (1): https,
 * verified, no fallback (--tls-verify=true).  SKIP_VERIFY (0): https
 * without verification, then plain http (--tls-verify=false).
 * A zeroed registry_opts therefore skips verification: set tls_verify. */
enum registry_tls { REGISTRY_TLS_SKIP_VERIFY = 0, REGISTRY_TLS_VERIFY = 1, REGISTRY_TLS_DEFAULT = -1 };

struct registry_opts {
    const char *authfile;   /* NULL: $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json,
                               ~/.docker/config.json */
    const char *creds;      /* "USER[:PASSWORD]" from --creds */
    int tls_verify;         /* enum registry_tls: -1 per-registry default, 1 verify, 0 off */
    const char *cert_dir;   /* CA certificates (*.crt) instead of certs.d */
    const char *platform;   /* "linux/amd64" or NULL for the build machine's */
    /* progress lines ("pulling sha256:abc... 12.3MB"); may be NULL */
    void (*status)(void *ud, const char *line);
    void *ud;
};

/* "docker://REF" -> "REF"; anything else unchanged. */
const char *registry_strip_transport(const char *ref);

/* Pulls REF (docker reference or docker://REF, maybe with @digest) into the
 * store and names it (familiar form, "NAME:TAG") unless it was given by
 * digest only (then it is recorded untagged, found by NAME@DIGEST).  From an
 * index the platform's manifest is pulled (o->platform, else the build
 * machine's); *ret_manifest is that manifest (caller frees media_type).
 * Every blob is verified (size, digest) in tmp/ before any reaches blobs/;
 * on failure nothing is added to the store. */
int registry_pull(struct store *s, const char *ref, const struct registry_opts *o,
                  struct descriptor *ret_manifest, struct kiln_error **err);
/* Pushes an image of the store (manifest descriptor) to REF (docker
 * reference or docker://REF); the manifest goes up unchanged, so
 * ret_digest is its store digest. */
int registry_push(struct store *s, const struct descriptor *manifest, const char *ref,
                  const struct registry_opts *o, char ret_digest[DIGEST_STR_LEN],
                  struct kiln_error **err);

/* Checks user/password against REGISTRY (GET /v2/ or the token server),
 * then stores them in the auth file (o->authfile, $REGISTRY_AUTH_FILE,
 * $XDG_RUNTIME_DIR/containers/auth.json, else
 * $XDG_CONFIG_HOME/containers/auth.json), mode 0600. */
int registry_login(const char *registry, const char *user, const char *password,
                   const struct registry_opts *o, struct kiln_error **err);
/* Removes REGISTRY's credentials from that file (registry NULL: all). */
int registry_logout(const char *registry, const struct registry_opts *o, bool *ret_found,
                    struct kiln_error **err);
/* The auth file login writes and logout edits (caller frees). */
char *registry_authfile_path(const struct registry_opts *o);

/* The build cache through a registry (or a local directory): records
 * (key -> layer, diff_id, created; see engine/cache.h) with their blobs. */
struct cache_spec;
/* Brings the records (and their blobs) of a cache source into the store.
 * type=registry (ref=REF) or type=local (dir = src=DIR).  -ENOENT when the
 * registry has no such cache (a first build: warn and go on), -1 on other
 * failures (nothing is saved then). */
int cache_remote_import(struct store *s, const struct cache_spec *from,
                        const struct registry_opts *o, struct kiln_error **err);
/* Exports the records named by keys (with their blobs; keys without a
 * record or blob are left out): mode=min/max is the caller's choice of
 * keys.  type=registry pushes an OCI artifact to ref; type=local writes an
 * OCI image layout to dir (dest=DIR), tag "latest". */
int cache_remote_export(struct store *s, const struct cache_spec *to, char *const *keys,
                        const struct registry_opts *o, struct kiln_error **err);

#endif
