/* kiln push: an image of the store to a registry. */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cli.h"
#include "cmd/registry_flags.h"
#include "layers/image.h"
#include "layers/refs.h"
#include "layers/registry.h"
#include "layers/store.h"
#include "layers/transport.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"

static void usage(FILE *f)
{
    fprintf(f, "Usage: kiln push [OPTIONS] IMAGE [DESTINATION]\n\n"
               "Push an image of the store to a registry.  DESTINATION is a Docker\n"
               "reference or docker://REFERENCE; it defaults to the image's name.\n"
               "The manifest digest is printed on stdout.  oci:DIR[:TAG],\n"
               "oci-archive:FILE[:TAG] and docker-archive:FILE[:NAME:TAG] write a layout\n"
               "or an archive instead.\n\n"
               "Options:\n"
               "      --creds USER[:PASSWORD]\n"
               "                            credentials for the registry\n" REGISTRY_FLAGS_HELP
               "      --digestfile FILE     write the manifest digest to FILE\n"
               "  -q, --quiet               no progress lines\n"
               "  -h, --help                this help\n");
}

/* Destinations other than docker:// (oci:, oci-archive:, docker-archive:),
 * through layers/transport.h.  Returns 1 when dest named one of them and the
 * image was written there, 0 when dest is a docker reference, -1 on
 * failure. */
static int push_other_transport(struct store *s, const struct descriptor *d, const char *name,
                                const char *dest, struct kiln_error **err)
{
    struct transport_ref tr;
    if (transport_parse(dest, &tr, err) < 0)
        return -1;
    int r = 0;
    if (tr.kind != TRANSPORT_DOCKER) {
        char *const names[] = {(char *)name, NULL};
        r = transport_export(s, d, names, 1, &tr, err) < 0 ? -1 : 1;
    }
    transport_ref_free(&tr);
    return r;
}

int cmd_push(int argc, char **argv)
{
    static const struct option longopts[] = {{"digestfile", required_argument, NULL, 'D'},
                                             {"quiet", no_argument, NULL, 'q'},
                                             {"help", no_argument, NULL, 'h'},
                                             REGISTRY_LONGOPTS,
                                             CLI_GLOBAL_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    struct registry_opts o = {.tls_verify = REGISTRY_TLS_DEFAULT};
    bool quiet = false;
    const char *digestfile = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
        int r;
        switch (c) {
        case 'D':
            digestfile = optarg;
            break;
        case 'q':
            quiet = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            r = registry_flag("push", c, optarg, &o);
            if (r < 0)
                return KILN_EXIT_USAGE;
            if (r == 0 && !cli_global_opt(c, optarg))
                return cli_bad_option("push", argv);
        }
    }
    int nargs = argc - optind;
    if (nargs < 1 || nargs > 2)
        return cli_usage_error("push", "want IMAGE [DESTINATION]");
    const char *image = argv[optind];
    const char *dest = nargs == 2 ? argv[optind + 1] : NULL;
    if (!quiet)
        o.status = registry_status_stderr;

    struct kiln_error *err = NULL;
    struct store *s = NULL;
    /* the blobs being sent must outlive a concurrent rmi and prune */
    if (cli_open_store(&s, &err) < 0 || cli_hold_gc_lock(s, &err) < 0) {
        store_close(s);
        return cli_fail(&err);
    }
    struct descriptor desc = {0};
    char *name = NULL;
    if (store_resolve(s, image, &desc, &name, &err) < 0) {
        store_close(s);
        return cli_fail(&err);
    }
    int r = 0;
    if (!dest && !name)
        r = kiln_error_set(&err, 0, "push '%s': the image has no name; give a destination",
                           image);
    int t = r == 0 ? push_other_transport(s, &desc, name, dest ? dest : name, &err) : -1;
    char digest[DIGEST_STR_LEN] = "";
    if (t < 0)
        r = -1;
    else if (t == 0)
        r = registry_push(s, &desc, dest ? dest : name, &o, digest, &err);
    if (r == 0 && t == 0 && digestfile) {
        char *line = xasprintf("%s", digest);
        int w = fs_write_atomic_at(AT_FDCWD, digestfile, line, strlen(line), 0644, false);
        free(line);
        if (w < 0)
            r = kiln_error_set(&err, -w, "write '%s'", digestfile);
    }
    if (r == 0 && t == 0)
        printf("%s\n", digest);
    free(name);
    descriptor_free(&desc);
    store_close(s);
    return r < 0 ? cli_fail(&err) : 0;
}
