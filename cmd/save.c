/* kiln save: images to a docker-archive (default) or oci-archive tar. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cli.h"
#include "cmd/imgutil.h"
#include "layers/refs.h"
#include "layers/transport.h"
#include "lib/xalloc.h"

static void usage(FILE *f)
{
    fprintf(f, "Usage: kiln save [OPTIONS] IMAGE [IMAGE...]\n\n"
               "Save images to a tar archive (stdout by default).\n\n"
               "Options:\n"
               "  -o, --output FILE    write to FILE ('-': stdout)\n"
               "      --format FORMAT  docker-archive (default; loads with docker load and\n"
               "                       podman load) or oci-archive\n"
               "  -h, --help           this help\n");
}

int cmd_save(int argc, char **argv)
{
    static const struct option longopts[] = {{"output", required_argument, NULL, 'o'},
                                             {"format", required_argument, NULL, 'F'},
                                             {"help", no_argument, NULL, 'h'},
                                             CLI_GLOBAL_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    const char *out = NULL;
    enum transport_kind kind = TRANSPORT_DOCKER_ARCHIVE;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o':
            out = optarg;
            break;
        case 'F':
            if (strcmp(optarg, "docker-archive") == 0)
                kind = TRANSPORT_DOCKER_ARCHIVE;
            else if (strcmp(optarg, "oci-archive") == 0)
                kind = TRANSPORT_OCI_ARCHIVE;
            else
                return cli_usage_error("save", "unknown format '%s' (docker-archive, "
                                               "oci-archive)",
                                       optarg);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            if (!cli_global_opt(c, optarg))
                return cli_bad_option("save", argv);
        }
    }
    if (optind >= argc)
        return cli_usage_error("save", "requires at least 1 argument");
    bool to_stdout = !out || strcmp(out, "-") == 0;
    struct kiln_error *err = NULL;
    if (to_stdout && isatty(STDOUT_FILENO)) {
        kiln_error_set(&err, 0, "cowardly refusing to save to a terminal. Use the -o flag or "
                                "redirect");
        return cli_fail(&err);
    }
    struct store *s = NULL;
    if (cli_open_store(&s, &err) < 0)
        return cli_fail(&err);
    size_t n = (size_t)(argc - optind);
    struct descriptor *ds = xcalloc(n + 1, sizeof(*ds));
    char **names = xcalloc(n + 1, sizeof(*names));
    int status = 0;
    struct img_list l = {0};
    if (img_list_load(s, &l, &err) < 0)
        status = cli_fail(&err);
    for (size_t i = 0; i < n && status == 0; i++) {
        const char *arg = argv[optind + (int)i];
        const struct img_row *row = img_resolve(&l, arg, &err);
        if (!row) {
            status = cli_fail(&err);
            break;
        }
        descriptor_copy(&ds[i], &row->desc);
        /* given by name: that name goes into the archive; by id: none (as docker) */
        char *nm = NULL;
        struct kiln_error *e = NULL;
        if (row->name && store_ref_name(arg, &nm, &e) == 0 && strcmp(nm, row->name) == 0)
            names[i] = nm;
        else
            free(nm);
        kiln_error_free(&e);
    }
    img_list_free(&l);
    if (status == 0) {
        int r;
        if (to_stdout) {
            r = transport_export_fd(s, ds, names, n, kind, STDOUT_FILENO, &err);
        } else {
            struct transport_ref dst = {.kind = kind, .path = (char *)out, .index = -1};
            r = transport_export(s, ds, names, n, &dst, &err);
        }
        if (r < 0)
            status = cli_fail(&err);
    }
    for (size_t i = 0; i < n; i++) {
        descriptor_free(&ds[i]);
        free(names[i]);
    }
    free(ds);
    free(names);
    store_close(s);
    return status;
}
