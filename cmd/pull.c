/* kiln pull: an image from a registry (or, through layers/transport.h, an
 * OCI layout or archive) into the store. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cli.h"
#include "cmd/registry_flags.h"
#include "layers/image.h"
#include "layers/registry.h"
#include "layers/store.h"
#include "layers/transport.h"

static void usage(FILE *f)
{
    fprintf(f, "Usage: kiln pull [OPTIONS] REFERENCE\n\n"
               "Pull an image from a registry into the store.  REFERENCE is a Docker\n"
               "reference (\"alpine\" = docker.io/library/alpine:latest), NAME@sha256:...\n"
               "to pin a digest, or docker://REFERENCE; oci:DIR[:TAG], oci-archive:FILE[:TAG]\n"
               "and docker-archive:FILE[:NAME:TAG] import from a layout or an archive.\n\n"
               "Options:\n"
               "      --platform OS/ARCH[/VARIANT]\n"
               "                            image to pick from a manifest list\n"
               "      --creds USER[:PASSWORD]\n"
               "                            credentials for the registry\n" REGISTRY_FLAGS_HELP
               "  -q, --quiet               no progress lines; only the image id\n"
               "  -h, --help                this help\n");
}

/* Transports other than docker:// (oci:, oci-archive:, docker-archive:),
 * through layers/transport.h.  Returns 1 when ref named one of them and it
 * was imported, 0 when ref is a docker reference, -1 on failure. */
static int pull_other_transport(struct store *s, const char *ref, struct descriptor *ret,
                                struct kiln_error **err)
{
    struct transport_ref tr;
    if (transport_parse(ref, &tr, err) < 0)
        return -1;
    int r = 0;
    if (tr.kind != TRANSPORT_DOCKER)
        r = transport_import(s, &tr, ret, err) < 0 ? -1 : 1;
    transport_ref_free(&tr);
    return r;
}

int cmd_pull(int argc, char **argv)
{
    static const struct option longopts[] = {{"platform", required_argument, NULL, 'P'},
                                             {"quiet", no_argument, NULL, 'q'},
                                             {"help", no_argument, NULL, 'h'},
                                             REGISTRY_LONGOPTS,
                                             CLI_GLOBAL_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    struct registry_opts o = {.tls_verify = REGISTRY_TLS_DEFAULT};
    bool quiet = false;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
        int r;
        switch (c) {
        case 'P':
            o.platform = optarg;
            break;
        case 'q':
            quiet = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            r = registry_flag("pull", c, optarg, &o);
            if (r < 0)
                return KILN_EXIT_USAGE;
            if (r == 0 && !cli_global_opt(c, optarg))
                return cli_bad_option("pull", argv);
        }
    }
    if (argc - optind != 1)
        return cli_usage_error("pull", "want exactly one image reference");
    const char *ref = argv[optind];
    if (!quiet)
        o.status = registry_status_stderr;

    struct kiln_error *err = NULL;
    struct store *s = NULL;
    /* layers are extracted (checked) as they come in: kiln's namespace owns them */
    if (cli_enter_namespaces(&err) < 0 || cli_open_store(&s, &err) < 0)
        return cli_fail(&err);
    if (cli_hold_gc_lock(s, &err) < 0) {
        store_close(s);
        return cli_fail(&err);
    }
    struct descriptor desc = {0};
    int r = pull_other_transport(s, ref, &desc, &err);
    if (r == 0)
        r = registry_pull(s, ref, &o, &desc, &err);
    else if (r > 0)
        r = 0;
    if (r < 0) {
        store_close(s);
        return cli_fail(&err);
    }
    struct image img;
    if (image_load(s, &desc, &img, &err) < 0) {
        descriptor_free(&desc);
        store_close(s);
        return cli_fail(&err);
    }
    printf("%s\n", img.config_digest);
    image_free(&img);
    descriptor_free(&desc);
    store_close(s);
    return 0;
}
