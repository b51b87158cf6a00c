/* OCI image configs, manifests and indexes: the C model and its JSON. */
#ifndef KILN_IMAGE_H
#define KILN_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "layers/descriptor.h"
#include "layers/store.h"
#include "lib/error.h"

struct healthcheck {
    char **test;              /* ["NONE"] disables; ["CMD", ...]; ["CMD-SHELL", "..."] */
    int64_t interval;         /* nanoseconds; 0 = unset */
    int64_t timeout;
    int64_t start_period;
    int64_t start_interval;
    int64_t retries;
};

struct history_entry {
    char *created;
    char *created_by;
    char *author;
    char *comment;
    bool empty_layer;
};

/* A string-to-string map kept sorted by key (Go encodes maps sorted). */
struct strmap {
    char **keys;
    char **values;
    size_t n;
};

void strmap_set(struct strmap *m, const char *key, const char *value);
const char *strmap_get(const struct strmap *m, const char *key);
bool strmap_remove(struct strmap *m, const char *key);
void strmap_free(struct strmap *m);
void strmap_copy(struct strmap *dst, const struct strmap *src);

struct image_config {
    char *created; /* RFC 3339 */
    char *author;
    char *architecture;
    char *os;
    char *variant;
    /* "config" */
    char *user;
    struct strmap exposed_ports; /* keys only ("8080/tcp") */
    char **env;                  /* "K=V" */
    char **entrypoint;           /* NULL = absent */
    char **cmd;                  /* NULL = absent */
    struct strmap volumes;       /* keys only */
    char *working_dir;
    struct strmap labels;
    char *stop_signal;
    bool args_escaped;
    struct healthcheck *healthcheck; /* NULL = absent */
    char **onbuild;
    char **shell;
    /* "rootfs" */
    char **diff_ids;
    /* "history" */
    struct history_entry *history;
    size_t n_history;
};

void image_config_init(struct image_config *c);
void image_config_free(struct image_config *c);
void image_config_copy(struct image_config *dst, const struct image_config *src);
int image_config_parse(const char *buf, size_t len, struct image_config *ret,
                       struct kiln_error **err);
/* Canonical compact JSON; caller frees. */
char *image_config_to_json(const struct image_config *c, size_t *ret_len);
void image_config_add_history(struct image_config *c, const char *created, const char *created_by,
                              const char *comment, bool empty_layer);
/* Env helpers: value of KEY or NULL; set replaces in place or appends. */
const char *image_config_getenv(const struct image_config *c, const char *key);
void image_config_setenv(struct image_config *c, const char *key, const char *value);

struct manifest {
    char *media_type;
    struct descriptor config;
    struct descriptor *layers;
    size_t n_layers;
    struct strmap annotations;
};

void manifest_free(struct manifest *m);
int manifest_parse(const char *buf, size_t len, struct manifest *ret, struct kiln_error **err);
char *manifest_to_json(const struct manifest *m, size_t *ret_len);

/* Pieces of OCI JSON documents, for every writer of one (lib/json.h). */
struct json_gen;
/* "mediaType", "digest" and "size", inside an object being written. */
void json_descriptor_fields(struct json_gen *j, const struct descriptor *d);
/* {"schemaVersion":2,"mediaType":<OCI index>,"manifests":[ ... ]} */
void json_oci_index_open(struct json_gen *j);
void json_oci_index_close(struct json_gen *j);
/* KEY: {"k":"v",...} for a non-empty map (annotations); nothing when empty. */
void json_strmap_member(struct json_gen *j, const char *key, const struct strmap *m);

/* An image loaded from the store: manifest descriptor, manifest, config. */
struct image {
    struct descriptor desc; /* the manifest */
    struct manifest manifest;
    struct image_config config;
    char config_digest[DIGEST_STR_LEN]; /* the image id */
};

void image_free(struct image *img);
/* Loads and verifies the manifest and config blobs a descriptor names. */
int image_load(struct store *s, const struct descriptor *manifest_desc, struct image *ret,
               struct kiln_error **err);
/* Writes config + manifest blobs for a config and its layers; fills ret_desc. */
int image_commit(struct store *s, const struct image_config *cfg,
                 const struct descriptor *layers, size_t n_layers, struct descriptor *ret_desc,
                 char ret_config_digest[DIGEST_STR_LEN], struct kiln_error **err);

void descriptor_free(struct descriptor *d);
void descriptor_copy(struct descriptor *dst, const struct descriptor *src);

/* Current time (or SOURCE_DATE_EPOCH-style override when >= 0) as RFC 3339. */
char *rfc3339_time(int64_t epoch_override);
/* Parses RFC 3339 to seconds since the epoch; -1 on failure. */
int64_t rfc3339_parse(const char *s);

#endif
