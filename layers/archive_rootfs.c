/* The flattened file system of an image as one tar (kiln export).
 *
 * Two passes over the layer blobs, bottom first.  The first builds the
 * final tree: each layer's whiteouts (".wh.NAME") and opaque markers
 * (".wh..wh..opq") remove what lower layers put there, then its entries
 * are added (a non-directory replaces a whole subtree; a directory over a
 * directory merges).  The tree remembers which entry of which layer wins
 * each path.  The second pass writes exactly those entries, with their
 * headers (owner, mode, times, xattrs) as the layers have them. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "layers/archive.h"
#include "layers/image.h"
#include "layers/transport.h"
#include "layers/gc.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/xalloc.h"

#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"
#define COPY_BUF (256u * 1024)

struct node {
    char *path;
    int layer;    /* winning entry: layer index, -1 for a directory implied by its children */
    uint64_t idx; /* ... and its ordinal in that layer */
    bool is_dir;
    bool present;
    bool linked; /* in its parent's child list */
    struct node *parent, *child, *sibling;
};

struct tree {
    struct node **slots; /* open addressing on path */
    size_t cap, n;
    struct node root;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static struct node **slot_for(struct tree *t, const char *path)
{
    size_t i = (size_t)(hash_str(path) & (t->cap - 1));
    while (t->slots[i] && strcmp(t->slots[i]->path, path) != 0)
        i = (i + 1) & (t->cap - 1);
    return &t->slots[i];
}

static void tree_grow(struct tree *t)
{
    struct node **old = t->slots;
    size_t oldcap = t->cap;
    t->cap = oldcap ? oldcap * 2 : 1024;
    t->slots = xcalloc(t->cap, sizeof(*t->slots));
    for (size_t i = 0; i < oldcap; i++)
        if (old[i])
            *slot_for(t, old[i]->path) = old[i];
    free(old);
}

static struct node *tree_find(struct tree *t, const char *path)
{
    if (!t->cap)
        return NULL;
    return *slot_for(t, path);
}

static void tree_free(struct tree *t)
{
    for (size_t i = 0; i < t->cap; i++) {
        if (t->slots[i]) {
            free(t->slots[i]->path);
            free(t->slots[i]);
        }
    }
    free(t->slots);
    memset(t, 0, sizeof(*t));
}

/* Marks a node and everything under it absent. */
static void remove_subtree(struct node *nd)
{
    struct node *c = nd->child;
    while (c) {
        struct node *next = c->sibling;
        remove_subtree(c);
        c->linked = false;
        c->sibling = NULL;
        c = next;
    }
    nd->child = NULL;
    nd->present = false;
}

static void remove_children(struct node *nd)
{
    bool was = nd->present;
    remove_subtree(nd);
    nd->present = was;
}

/* The node for path, created (absent) when missing. */
static struct node *tree_get(struct tree *t, const char *path)
{
    if (!*path)
        return &t->root;
    if (t->n * 2 >= t->cap)
        tree_grow(t);
    struct node **sl = slot_for(t, path);
    if (*sl)
        return *sl;
    struct node *nd = xcalloc(1, sizeof(*nd));
    nd->path = xstrdup(path);
    nd->layer = -1;
    *sl = nd;
    t->n++;
    return nd;
}

/* Makes path present (with its ancestors as directories). */
static struct node *tree_put(struct tree *t, const char *path)
{
    if (!*path)
        return &t->root;
    struct node *nd = tree_get(t, path);
    if (nd->present && nd->linked)
        return nd;
    const char *slash = strrchr(path, '/');
    _cleanup_free_ char *ppath = slash ? xstrndup(path, (size_t)(slash - path)) : xstrdup("");
    struct node *parent = tree_put(t, ppath);
    if (parent != &t->root && !parent->is_dir) {
        /* a file below something that was not a directory: it becomes one */
        remove_children(parent);
        parent->is_dir = true;
        parent->layer = -1;
    }
    nd = tree_get(t, path); /* the table may have grown */
    nd->present = true;
    if (!nd->linked) {
        nd->parent = parent;
        nd->sibling = parent->child;
        parent->child = nd;
        nd->linked = true;
    }
    return nd;
}

static void tree_remove(struct tree *t, const char *path)
{
    struct node *nd = tree_find(t, path);
    if (!nd || !nd->present)
        return;
    remove_subtree(nd);
    /* unlink from the parent */
    if (nd->linked && nd->parent) {
        struct node **pp = &nd->parent->child;
        while (*pp && *pp != nd)
            pp = &(*pp)->sibling;
        if (*pp)
            *pp = nd->sibling;
        nd->linked = false;
        nd->sibling = NULL;
    }
}

static int open_layer(struct store *s, const struct descriptor *d, struct archive **ret, int *ret_fd,
                      struct kiln_error **err)
{
    int fd = -1;
    if (store_blob_open(s, d->digest, &fd, err) < 0)
        return -1;
    struct archive *a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    if (archive_read_open_fd(a, fd, 64 * 1024) != ARCHIVE_OK) {
        kiln_error_set(err, 0, "layer %s: %s", d->digest, archive_error_string(a));
        archive_read_free(a);
        close(fd);
        return -1;
    }
    *ret = a;
    *ret_fd = fd;
    return 0;
}

struct pending {
    char *path;
    uint64_t idx;
    bool is_dir;
};

/* Pass one over a layer: its whiteouts first, then its entries. */
static int apply_layer(struct tree *t, struct store *s, const struct descriptor *d, int layer,
                       struct kiln_error **err)
{
    struct archive *a = NULL;
    int fd = -1;
    if (open_layer(s, d, &a, &fd, err) < 0)
        return -1;
    struct pending *adds = NULL;
    size_t n_adds = 0, cap_adds = 0;
    char **whiteouts = strv_new(), **opaques = strv_new();
    int r = 0;
    for (uint64_t idx = 0;; idx++) {
        struct archive_entry *e = NULL;
        int rr = archive_read_next_header(a, &e);
        if (rr == ARCHIVE_EOF)
            break;
        if (rr < ARCHIVE_WARN) {
            r = kiln_error_set(err, 0, "layer %s: %s", d->digest, archive_error_string(a));
            break;
        }
        if (idx >= 10000000) {
            r = kiln_error_set(err, 0, "layer %s: too many entries", d->digest);
            break;
        }
        const char *raw = archive_entry_pathname(e);
        _cleanup_free_ char *path = raw ? archive_path_normalize(raw) : NULL;
        if (!path)
            continue; /* the root itself, or a name that escapes: not part of the tree */
        const char *slash = strrchr(path, '/');
        const char *base = slash ? slash + 1 : path;
        if (strcmp(base, WH_OPAQUE) == 0) {
            strv_push_take(&opaques, slash ? xstrndup(path, (size_t)(slash - path)) : xstrdup(""));
        } else if (strncmp(base, WH_PREFIX WH_PREFIX, 8) == 0) {
            /* other aufs metadata: not files */
        } else if (strncmp(base, WH_PREFIX, 4) == 0) {
            strv_push_take(&whiteouts, slash ? xasprintf("%.*s/%s", (int)(slash - path), path,
                                                         base + 4)
                                             : xstrdup(base + 4));
        } else {
            XGROW(adds, cap_adds, n_adds + 1);
            adds[n_adds].path = TAKE_PTR(path);
            adds[n_adds].idx = idx;
            adds[n_adds].is_dir = archive_entry_filetype(e) == AE_IFDIR;
            n_adds++;
        }
    }
    archive_read_free(a);
    close(fd);
    if (r == 0) {
        for (size_t i = 0; whiteouts[i]; i++)
            tree_remove(t, whiteouts[i]);
        for (size_t i = 0; opaques[i]; i++) {
            struct node *nd = opaques[i][0] ? tree_find(t, opaques[i]) : &t->root;
            if (nd && nd->present)
                remove_children(nd);
        }
        for (size_t i = 0; i < n_adds; i++) {
            struct node *nd = tree_find(t, adds[i].path);
            if (nd && nd->present && !(nd->is_dir && adds[i].is_dir))
                tree_remove(t, adds[i].path);
            nd = tree_put(t, adds[i].path);
            nd->is_dir = adds[i].is_dir;
            nd->layer = layer;
            nd->idx = adds[i].idx;
        }
    }
    for (size_t i = 0; i < n_adds; i++)
        free(adds[i].path);
    free(adds);
    strv_free(whiteouts);
    strv_free(opaques);
    return r;
}

/* Pass two: copies the winning entries of a layer. */
static int emit_layer(struct tree *t, struct store *s, const struct descriptor *d, int layer,
                      struct archive *out, struct kiln_error **err)
{
    struct archive *a = NULL;
    int fd = -1;
    if (open_layer(s, d, &a, &fd, err) < 0)
        return -1;
    int r = 0;
    _cleanup_free_ char *buf = xmalloc(COPY_BUF);
    for (uint64_t idx = 0;; idx++) {
        struct archive_entry *e = NULL;
        int rr = archive_read_next_header(a, &e);
        if (rr == ARCHIVE_EOF)
            break;
        if (rr < ARCHIVE_WARN) {
            r = kiln_error_set(err, 0, "layer %s: %s", d->digest, archive_error_string(a));
            break;
        }
        const char *raw = archive_entry_pathname(e);
        _cleanup_free_ char *path = raw ? archive_path_normalize(raw) : NULL;
        if (!path)
            continue;
        struct node *nd = tree_find(t, path);
        if (!nd || !nd->present || nd->layer != layer || nd->idx != idx)
            continue;
        archive_entry_set_pathname(e, path);
        const char *hl = archive_entry_hardlink(e);
        if (hl) {
            _cleanup_free_ char *nhl = archive_path_normalize(hl);
            if (!nhl)
                continue;
            archive_entry_set_hardlink(e, nhl);
        }
        if (archive_write_header(out, e) < ARCHIVE_WARN) {
            r = kiln_error_set(err, 0, "write tar: %s", archive_error_string(out));
            break;
        }
        if (archive_entry_filetype(e) != AE_IFREG || archive_entry_size(e) <= 0)
            continue;
        for (;;) {
            la_ssize_t n = archive_read_data(a, buf, COPY_BUF);
            if (n < 0) {
                r = kiln_error_set(err, 0, "layer %s: %s", d->digest, archive_error_string(a));
                break;
            }
            if (n == 0)
                break;
            if (archive_write_data(out, buf, (size_t)n) != n) {
                r = kiln_error_set(err, 0, "write tar: %s", archive_error_string(out));
                break;
            }
        }
        if (r < 0)
            break;
    }
    archive_read_free(a);
    close(fd);
    return r;
}

int image_export_rootfs(struct store *s, const struct descriptor *manifest, int fd,
                        struct kiln_error **err)
{
    int lockfd = -1;
    if (gc_lock_shared(s, &lockfd, err) < 0)
        return -1;
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    struct manifest m;
    memset(&m, 0, sizeof(m));
    int r = store_blob_read(s, manifest->digest, JSON_MAX_SIZE, &buf, &len, err);
    if (r == 0)
        r = manifest_parse(buf, len, &m, err);
    struct tree t;
    memset(&t, 0, sizeof(t));
    t.root.present = t.root.is_dir = true;
    for (size_t i = 0; r == 0 && i < m.n_layers; i++)
        r = apply_layer(&t, s, &m.layers[i], (int)i, err);
    if (r == 0) {
        _cleanup_archive_write_ struct archive *out = archive_write_new();
        archive_write_set_format_pax_restricted(out);
        if (archive_write_open_fd(out, fd) != ARCHIVE_OK)
            r = kiln_error_set(err, 0, "write tar: %s", archive_error_string(out));
        for (size_t i = 0; r == 0 && i < m.n_layers; i++)
            r = emit_layer(&t, s, &m.layers[i], (int)i, out, err);
        if (r == 0 && archive_write_close(out) != ARCHIVE_OK)
            r = kiln_error_set(err, 0, "write tar: %s", archive_error_string(out));
    }
    tree_free(&t);
    manifest_free(&m);
    gc_unlock(lockfd);
    if (r < 0)
        return kiln_error_wrap(err, "export %.19s", manifest->digest);
    return 0;
}
