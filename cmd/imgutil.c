#include "cmd/imgutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cmd/cli.h"
#include "cmd/format.h"
#include "layers/reference.h"
#include "layers/refs.h"
#include "lib/xalloc.h"

int img_list_load(struct store *s, struct img_list *ret, struct kiln_error **err)
{
    memset(ret, 0, sizeof(*ret));
    struct store_index idx;
    if (store_index_read(s, &idx, err) < 0)
        return -1;
    ret->rows = xcalloc(idx.n + 1, sizeof(*ret->rows));
    for (size_t i = 0; i < idx.n; i++) {
        struct img_row *r = &ret->rows[ret->n++];
        descriptor_copy(&r->desc, &idx.entries[i].desc);
        const char *name = index_entry_name(&idx.entries[i]);
        r->name = name ? xstrdup(name) : NULL;
        struct kiln_error *e = NULL;
        if (image_load(s, &r->desc, &r->img, &e) == 0) {
            r->loaded = true;
        } else {
            fprintf(stderr, "kiln: warning: %s%s%s: %s (run 'kiln system check')\n",
                    name ? "'" : "", name ? name : r->desc.digest, name ? "'" : "", e->msg);
            kiln_error_free(&e);
        }
    }
    store_index_free(&idx);
    return 0;
}

void img_list_free(struct img_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        descriptor_free(&l->rows[i].desc);
        free(l->rows[i].name);
        if (l->rows[i].loaded)
            image_free(&l->rows[i].img);
    }
    free(l->rows);
    memset(l, 0, sizeof(*l));
}

char **img_names_of(const struct img_list *l, const char *id)
{
    char **v = strv_new();
    for (size_t i = 0; i < l->n; i++) {
        const struct img_row *r = &l->rows[i];
        if (r->loaded && r->name && strcmp(r->img.config_digest, id) == 0 &&
            !strv_contains(v, r->name))
            strv_push(&v, r->name);
    }
    return v;
}

static bool is_hex(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return false;
    return true;
}

const struct img_row *img_resolve(const struct img_list *l, const char *arg,
                                  struct kiln_error **err)
{
    struct image_ref ref;
    struct kiln_error *e = NULL;
    if (ref_parse(arg, &ref, &e) == 0) {
        char *fam = ref_familiar(&ref);
        const struct img_row *hit = NULL;
        for (size_t i = 0; i < l->n && !hit; i++) {
            const struct img_row *r = &l->rows[i];
            if ((r->name && strcmp(r->name, fam) == 0) ||
                (ref.digest && strcmp(r->desc.digest, ref.digest) == 0))
                hit = r;
        }
        free(fam);
        ref_free(&ref);
        if (hit)
            return hit;
    }
    kiln_error_free(&e);
    const char *hex = strncmp(arg, "sha256:", 7) == 0 ? arg + 7 : arg;
    size_t hl = strlen(hex);
    if (is_hex(hex) && hl >= 4 && hl <= 64) {
        const struct img_row *hit = NULL;
        const char *id = NULL;
        for (size_t i = 0; i < l->n; i++) {
            const struct img_row *r = &l->rows[i];
            bool by_manifest = strncmp(r->desc.digest + 7, hex, hl) == 0;
            bool by_id = r->loaded && strncmp(r->img.config_digest + 7, hex, hl) == 0;
            if (!by_manifest && !by_id)
                continue;
            const char *this_id = r->loaded ? r->img.config_digest : r->desc.digest;
            if (id && strcmp(id, this_id) != 0) {
                kiln_error_set(err, 0, "image id '%s' is ambiguous", arg);
                return NULL;
            }
            id = this_id;
            if (!hit || (!hit->name && r->name))
                hit = r;
        }
        if (hit)
            return hit;
    }
    kiln_error_set_status(err, KILN_EXIT_FAILURE, 0, "no such image: '%s'", arg);
    return NULL;
}

uint64_t img_size(const struct image *img)
{
    uint64_t size = 0;
    for (size_t k = 0; k < img->manifest.n_layers; k++)
        size += img->manifest.layers[k].size;
    return size;
}

char *img_short_id(const char *digest)
{
    const char *hex = strncmp(digest, "sha256:", 7) == 0 ? digest + 7 : digest;
    return xstrndup(hex, 12);
}

bool img_confirm(const char *warning)
{
    fprintf(stderr, "%s\nAre you sure you want to continue? [y/N] ", warning);
    fflush(stderr);
    char line[64];
    bool yes = false;
    if (fgets(line, sizeof(line), stdin)) {
        line[strcspn(line, "\r\n")] = '\0';
        yes = strcasecmp(line, "y") == 0 || strcasecmp(line, "yes") == 0;
    } else {
        fputc('\n', stderr);
    }
    if (!yes)
        fprintf(stderr, "kiln: error: cancelled; nothing was removed\n");
    return yes;
}

static bool has_entries(struct store *s, const char *dir)
{
    int fd = openat(s->root_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return false;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return false;
    }
    bool any = false;
    struct dirent *de;
    while (!any && (de = readdir(d)))
        any = strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(d);
    return any;
}

void img_enter_namespace(struct store *s)
{
    if (!has_entries(s, "trees") && !has_entries(s, "mounts"))
        return;
    struct kiln_error *e = NULL;
    if (cli_enter_namespaces(&e) < 0) {
        char *t = kiln_error_text(e);
        fprintf(stderr, "kiln: warning: cannot enter kiln's user namespace: %s; layer trees "
                        "owned by subordinate ids cannot be removed\n",
                t);
        free(t);
        kiln_error_free(&e);
    }
}

int img_gc(struct store *s, struct gc_session *g, struct gc_result *res, struct kiln_error **err)
{
    struct gc_session *own = NULL;
    if (!g) {
        struct kiln_error *e = NULL;
        if (gc_begin(s, false, &own, &e) < 0) {
            if (e->code == EBUSY) {
                fprintf(stderr, "kiln: warning: %s; unused blobs stay until the next prune\n",
                        e->msg);
                kiln_error_free(&e);
                return 0;
            }
            *err = e;
            return -1;
        }
        g = own;
    }
    int r = gc_sweep(g, res, err);
    gc_end(own);
    return r;
}

void img_print_reclaimed(uint64_t bytes)
{
    char *sz = format_size4(bytes);
    printf("Total reclaimed space: %s\n", sz);
    free(sz);
}

void img_print_deleted_images(const struct gc_result *pr, const struct gc_result *sweep)
{
    bool any = false;
    for (size_t i = 0; i < pr->n; i++) {
        const char *k = pr->items[i].kind;
        if (strcmp(k, "untagged") != 0 && strcmp(k, "image") != 0)
            continue;
        if (!any)
            printf("Deleted Images:\n");
        any = true;
        printf("%s: %s\n", strcmp(k, "untagged") == 0 ? "untagged" : "deleted",
               pr->items[i].name);
    }
    for (size_t i = 0; sweep && i < sweep->n; i++) {
        if (strcmp(sweep->items[i].kind, "blob") != 0)
            continue;
        bool printed = false;
        for (size_t k = 0; k < pr->n; k++)
            printed |= strcmp(pr->items[k].kind, "image") == 0 &&
                       strcmp(pr->items[k].name, sweep->items[i].name) == 0;
        if (printed)
            continue;
        if (!any)
            printf("Deleted Images:\n");
        any = true;
        printf("deleted: %s\n", sweep->items[i].name);
    }
    if (any)
        printf("\n");
}

/* docker's "Deleted build cache objects:" list. */
void img_print_deleted_cache(const struct gc_result *pr)
{
    bool any = false;
    for (size_t i = 0; i < pr->n; i++) {
        const char *k = pr->items[i].kind;
        bool rec = strcmp(k, "record") == 0;
        if (!rec && strcmp(k, "mount") != 0)
            continue;
        if (!any)
            printf("Deleted build cache objects:\n");
        any = true;
        if (rec)
            printf("%.12s\n", pr->items[i].name);
        else
            printf("mount:%s\n", pr->items[i].name);
    }
    if (any)
        printf("\n");
}
