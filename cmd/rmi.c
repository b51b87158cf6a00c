/* kiln rmi: untag and remove images, like `docker rmi`; their blobs and
 * layer trees go in a gc at the end. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cli.h"
#include "cmd/imgutil.h"
#include "layers/reference.h"
#include "layers/refs.h"
#include "lib/cleanup.h"
#include "lib/xalloc.h"

static void usage(FILE *f)
{
    fprintf(f, "Usage: kiln rmi [OPTIONS] IMAGE [IMAGE...]\n\n"
               "Remove images: a name removes that name (and the image with its last name);\n"
               "an image id removes the image with all its names.\n\n"
               "Options:\n"
               "  -f, --force      remove an image named in several repositories\n"
               "      --no-prune   keep unused blobs and layer trees (no gc)\n"
               "  -h, --help       this help\n");
}

/* The name an argument gives, when an index entry carries it. */
static char *given_name(const struct img_list *l, const char *arg)
{
    char *nm = NULL;
    struct kiln_error *e = NULL;
    if (store_ref_name(arg, &nm, &e) < 0) {
        kiln_error_free(&e);
        return NULL;
    }
    for (size_t i = 0; i < l->n; i++)
        if (l->rows[i].name && strcmp(l->rows[i].name, nm) == 0)
            return nm;
    free(nm);
    return NULL;
}

static size_t repo_count(char *const *names)
{
    char **repos = strv_new();
    for (size_t i = 0; names[i]; i++) {
        struct image_ref r;
        struct kiln_error *e = NULL;
        if (ref_parse(names[i], &r, &e) < 0) {
            kiln_error_free(&e);
            continue;
        }
        char *repo = ref_familiar_name(&r);
        if (!strv_contains(repos, repo))
            strv_push(&repos, repo);
        free(repo);
        ref_free(&r);
    }
    size_t n = strv_len(repos);
    strv_free(repos);
    return n;
}

/* Drops every entry of image `id` (named or not) from index.json, noting
 * its layers. */
static int forget_image(struct store *s, const struct img_list *l, const char *id, char ***layers,
                        struct kiln_error **err)
{
    for (size_t i = 0; i < l->n; i++) {
        const struct img_row *r = &l->rows[i];
        if (!r->loaded || strcmp(r->img.config_digest, id) != 0)
            continue;
        for (size_t k = 0; k < r->img.manifest.n_layers; k++)
            if (!strv_contains(*layers, r->img.manifest.layers[k].digest))
                strv_push(layers, r->img.manifest.layers[k].digest);
        if (store_forget_manifest(s, r->desc.digest, err) < 0)
            return -1;
    }
    printf("Deleted: %s\n", id);
    return 0;
}

static int remove_one(struct store *s, const char *arg, bool force, char ***layers,
                      struct kiln_error **err)
{
    struct img_list l;
    if (img_list_load(s, &l, err) < 0)
        return -1;
    int r = 0;
    _cleanup_free_ char *name = given_name(&l, arg);
    if (name) {
        const struct img_row *named = NULL;
        for (size_t i = 0; i < l.n && !named; i++)
            if (l.rows[i].name && strcmp(l.rows[i].name, name) == 0)
                named = &l.rows[i];
        bool found = false;
        r = store_untag(s, name, &found, err);
        if (r == 0)
            printf("Untagged: %s\n", name);
        /* other names of the same manifest, and of the same image */
        size_t same_manifest = 0, same_image = 0;
        for (size_t i = 0; i < l.n; i++) {
            const struct img_row *o = &l.rows[i];
            if (!o->name || strcmp(o->name, name) == 0)
                continue;
            same_manifest += strcmp(o->desc.digest, named->desc.digest) == 0;
            same_image += o->loaded && named->loaded &&
                          strcmp(o->img.config_digest, named->img.config_digest) == 0;
        }
        if (r == 0 && named->loaded && same_image == 0)
            r = forget_image(s, &l, named->img.config_digest, layers, err);
        else if (r == 0 && same_manifest == 0)
            r = store_forget_manifest(s, named->desc.digest, err);
        img_list_free(&l);
        return r;
    }
    const struct img_row *row = img_resolve(&l, arg, err);
    if (!row) {
        img_list_free(&l);
        return -1;
    }
    if (!row->loaded) {
        /* unreadable: drop the entry itself */
        r = store_forget_manifest(s, row->desc.digest, err);
        if (r == 0)
            printf("Deleted: %s\n", row->desc.digest);
        img_list_free(&l);
        return r;
    }
    const char *id = row->img.config_digest;
    char **names = img_names_of(&l, id);
    if (!force && repo_count(names) > 1) {
        _cleanup_free_ char *sid = img_short_id(id);
        r = kiln_error_set(err, 0,
                           "conflict: unable to delete %s (must be forced) - image is "
                           "referenced in multiple repositories",
                           sid);
    }
    for (size_t i = 0; r == 0 && names[i]; i++) {
        bool found = false;
        r = store_untag(s, names[i], &found, err);
        if (r == 0)
            printf("Untagged: %s\n", names[i]);
    }
    if (r == 0)
        r = forget_image(s, &l, id, layers, err);
    strv_free(names);
    img_list_free(&l);
    return r;
}

int cmd_rmi(int argc, char **argv)
{
    static const struct option longopts[] = {{"force", no_argument, NULL, 'f'},
                                             {"no-prune", no_argument, NULL, 'P'},
                                             {"help", no_argument, NULL, 'h'},
                                             CLI_GLOBAL_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    bool force = false, prune = true;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "fh", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            force = true;
            break;
        case 'P':
            prune = false;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            if (!cli_global_opt(c, optarg))
                return cli_bad_option("rmi", argv);
        }
    }
    if (optind >= argc)
        return cli_usage_error("rmi", "requires at least 1 argument");
    struct kiln_error *err = NULL;
    struct store *s = NULL;
    if (cli_open_store(&s, &err) < 0)
        return cli_fail(&err);
    if (prune)
        img_enter_namespace(s);
    int status = 0;
    char **layers = strv_new();
    bool removed = false;
    for (int i = optind; i < argc; i++) {
        if (remove_one(s, argv[i], force, &layers, &err) < 0)
            status = cli_fail(&err);
        else
            removed = true;
    }
    if (prune && removed) {
        struct gc_result res = {0};
        if (img_gc(s, NULL, &res, &err) < 0)
            status = cli_fail(&err);
        for (size_t i = 0; i < res.n; i++)
            if (strcmp(res.items[i].kind, "blob") == 0 && strv_contains(layers, res.items[i].name))
                printf("Deleted: %s\n", res.items[i].name);
        gc_result_free(&res);
    }
    strv_free(layers);
    store_close(s);
    return status;
}
