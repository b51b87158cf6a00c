/* kiln images: list the images of the store, like `docker images`. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cli.h"
#include "cmd/format.h"
#include "layers/reference.h"
#include "layers/refs.h"
#include "lib/xalloc.h"

static void usage(FILE *f)
{
    fprintf(f, "Usage: kiln images [OPTIONS] [REPOSITORY[:TAG]]\n\n"
               "List images in the store.\n\n"
               "Options:\n"
               "  -a, --all         show untagged images too\n"
               "  -q, --quiet       only image ids\n"
               "      --digests     show manifest digests\n"
               "      --no-trunc    do not truncate ids\n"
               "  -h, --help        this help\n");
}

int cmd_images(int argc, char **argv)
{
    static const struct option longopts[] = {{"all", no_argument, NULL, 'a'},
                                             {"quiet", no_argument, NULL, 'q'},
                                             {"digests", no_argument, NULL, 'D'},
                                             {"no-trunc", no_argument, NULL, 'T'},
                                             {"help", no_argument, NULL, 'h'},
                                             CLI_GLOBAL_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    bool all = false, quiet = false, digests = false, no_trunc = false;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+aqh", longopts, NULL)) != -1) {
        switch (c) {
        case 'a':
            all = true;
            break;
        case 'q':
            quiet = true;
            break;
        case 'D':
            digests = true;
            break;
        case 'T':
            no_trunc = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            if (!cli_global_opt(c, optarg))
                return cli_bad_option("images", argv);
        }
    }
    if (argc - optind > 1)
        return cli_usage_error("images", "too many arguments");
    const char *filter = optind < argc ? argv[optind] : NULL;

    struct kiln_error *err = NULL;
    struct store *s = NULL;
    if (cli_open_store(&s, &err) < 0)
        return cli_fail(&err);
    struct store_index idx;
    if (store_index_read(s, &idx, &err) < 0) {
        store_close(s);
        return cli_fail(&err);
    }
    if (!quiet) {
        printf("%-30s %-15s ", "REPOSITORY", "TAG");
        if (digests)
            printf("%-72s ", "DIGEST");
        printf(no_trunc ? "%-71s " : "%-14s ", "IMAGE ID");
        printf("%-16s %s\n", "CREATED", "SIZE");
    }
    for (size_t i = 0; i < idx.n; i++) {
        const struct index_entry *e = &idx.entries[i];
        const char *name = index_entry_name(e);
        if (!name && !all)
            continue;
        char *repo = NULL, *tag = NULL;
        struct image_ref ref;
        struct kiln_error *perr = NULL;
        if (name && ref_parse(name, &ref, &perr) == 0) {
            repo = ref_familiar_name(&ref);
            tag = xstrdup(ref.tag ? ref.tag : "<none>");
            ref_free(&ref);
        } else {
            kiln_error_free(&perr);
            repo = xstrdup("<none>");
            tag = xstrdup("<none>");
        }
        if (filter) {
            char *want = NULL;
            bool match = false;
            if (strchr(filter, ':') || strchr(filter, '@')) {
                if (store_ref_name(filter, &want, &perr) == 0)
                    match = name && strcmp(want, name) == 0;
            } else {
                struct image_ref fr;
                if (ref_parse(filter, &fr, &perr) == 0) {
                    want = ref_familiar_name(&fr);
                    match = strcmp(want, repo) == 0;
                    ref_free(&fr);
                }
            }
            kiln_error_free(&perr);
            free(want);
            if (!match) {
                free(repo);
                free(tag);
                continue;
            }
        }
        struct image img;
        if (image_load(s, &e->desc, &img, &perr) < 0) {
            fprintf(stderr, "kiln: warning: %s, ignoring\n", perr->msg);
            kiln_error_free(&perr);
            free(repo);
            free(tag);
            continue;
        }
        const char *id = img.config_digest + 7;
        if (quiet) {
            printf("%.*s\n", no_trunc ? 64 : 12, id);
        } else {
            uint64_t size = img.manifest.config.size;
            for (size_t k = 0; k < img.manifest.n_layers; k++)
                size += img.manifest.layers[k].size;
            char *created = format_ago(img.config.created);
            char *sz = format_size(size);
            printf("%-30s %-15s ", repo, tag);
            if (digests)
                printf("%-72s ", e->desc.digest);
            if (no_trunc)
                printf("%-71s ", img.config_digest);
            else
                printf("%-14.12s ", id);
            printf("%-16s %s\n", created, sz);
            free(created);
            free(sz);
        }
        image_free(&img);
        free(repo);
        free(tag);
    }
    store_index_free(&idx);
    store_close(s);
    return 0;
}
