/* A stage's layers: its trees, its file system view, adding a layer. */
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"
#include "lib/xalloc.h"

void stage_state_free(struct stage_state *st)
{
    if (!st)
        return;
    free(st->name);
    image_config_free(&st->config);
    for (size_t i = 0; i < st->n_layers; i++)
        descriptor_free(&st->layers[i]);
    free(st->layers);
    strv_free(st->args);
    strv_free(st->env);
    strv_free(st->layer_keys);
    free(st->context_dir);
    free(st->display_name);
    memset(st, 0, sizeof(*st));
}

int build_settle_driver(struct build_ctx *bc, struct kiln_error **err)
{
    pthread_mutex_lock(&bc->lock);
    int r = 0;
    if (!bc->driver_told) {
        enum storage_driver d;
        r = driver_resolve(bc->store, bc->driver, &d, err);
        if (r == 0) {
            bc->driver = d;
            bc->driver_told = true;
            vertex_status(bc, 0, "storage driver: %s", driver_name(d));
        }
    }
    pthread_mutex_unlock(&bc->lock);
    return r;
}

void env_set(char ***env, const char *key, const char *value)
{
    size_t kl = strlen(key);
    char *entry = xasprintf("%s=%s", key, value ? value : "");
    if (!*env)
        *env = strv_new();
    for (size_t i = 0; (*env)[i]; i++) {
        if (strncmp((*env)[i], key, kl) == 0 && ((*env)[i][kl] == '=' || !(*env)[i][kl])) {
            free((*env)[i]);
            (*env)[i] = entry;
            return;
        }
    }
    strv_push_take(env, entry);
}

const char *env_get(char *const *env, const char *key)
{
    size_t kl = strlen(key);
    const char *found = NULL;
    for (size_t i = 0; env && env[i]; i++)
        if (strncmp(env[i], key, kl) == 0 && env[i][kl] == '=')
            found = env[i] + kl + 1;
    return found;
}

int stage_trees(struct build_ctx *bc, const struct stage_state *st, char ***ret,
                struct kiln_error **err)
{
    char **trees = xcalloc(st->n_layers + 1, sizeof(char *));
    size_t n = 0;
    for (size_t i = 0; i < st->n_layers; i++) {
        size_t top = st->n_layers - 1 - i;
        char *path = NULL;
        if (store_tree_ensure(bc->store, &st->layers[top], st->config.diff_ids[top], &path, err) <
            0) {
            strv_free(trees);
            return -1;
        }
        /* one layer twice (two steps that changed the same, or nothing):
         * overlayfs refuses a lower given twice, and the lower copy adds
         * nothing to the view the upper one gives */
        if (strv_contains(trees, path)) {
            free(path);
            continue;
        }
        trees[n++] = path;
    }
    *ret = trees;
    return 0;
}

int stage_lowerfs(struct build_ctx *bc, const struct stage_state *st, struct lowerfs *ret,
                  struct kiln_error **err)
{
    char **trees = NULL;
    if (stage_trees(bc, st, &trees, err) < 0)
        return -1;
    int r = lowerfs_init(ret, trees, strv_len(trees), err);
    strv_free(trees);
    return r;
}

void stage_add_layer(struct stage_state *st, const struct descriptor *blob, const char *diff_id)
{
    st->layers = xreallocarray(st->layers, st->n_layers + 1, sizeof(*st->layers));
    descriptor_copy(&st->layers[st->n_layers++], blob);
    if (!st->config.diff_ids)
        st->config.diff_ids = strv_new();
    strv_push(&st->config.diff_ids, diff_id);
}
