/* kiln load: images from a docker-archive or oci-archive tar (maybe
 * compressed), as `docker load` does. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cli.h"
#include "layers/transport.h"
#include "lib/cleanup.h"

static void usage(FILE *f)
{
    fprintf(f, "Usage: kiln load [OPTIONS]\n\n"
               "Load images from a tar archive (stdin by default): docker-archive or\n"
               "oci-archive, plain or compressed (gzip, bzip2, xz, zstd).\n\n"
               "Options:\n"
               "  -i, --input FILE   read FILE instead of stdin\n"
               "  -q, --quiet        print nothing\n"
               "  -h, --help         this help\n");
}

int cmd_load(int argc, char **argv)
{
    static const struct option longopts[] = {{"input", required_argument, NULL, 'i'},
                                             {"quiet", no_argument, NULL, 'q'},
                                             {"help", no_argument, NULL, 'h'},
                                             CLI_GLOBAL_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    const char *in = NULL;
    bool quiet = false;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "i:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'i':
            in = optarg;
            break;
        case 'q':
            quiet = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            if (!cli_global_opt(c, optarg))
                return cli_bad_option("load", argv);
        }
    }
    if (optind < argc)
        return cli_usage_error("load", "takes no arguments (use -i FILE)");
    struct kiln_error *err = NULL;
    _cleanup_close_ int fd = -1;
    if (!in || strcmp(in, "-") == 0) {
        if (isatty(STDIN_FILENO)) {
            kiln_error_set(&err, 0, "requested load from stdin, but stdin is a terminal; use -i "
                                    "FILE or redirect");
            return cli_fail(&err);
        }
        fd = dup(STDIN_FILENO);
    } else {
        fd = open(in, O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0) {
        kiln_error_set(&err, errno, "open '%s'", in ? in : "stdin");
        return cli_fail(&err);
    }
    struct store *s = NULL;
    /* layers are extracted (checked) as they come in: kiln's namespace owns them */
    if (cli_enter_namespaces(&err) < 0 || cli_open_store(&s, &err) < 0) {
        close(fd);
        return cli_fail(&err);
    }
    struct transport_image *imgs = NULL;
    size_t n = 0;
    int status = 0;
    if (transport_load_fd(s, fd, in && strcmp(in, "-") != 0 ? in : NULL, &imgs, &n, &err) < 0) {
        status = cli_fail(&err);
    } else if (!quiet) {
        for (size_t i = 0; i < n; i++) {
            if (!imgs[i].names[0])
                printf("Loaded image ID: %s\n", imgs[i].config_digest);
            for (size_t k = 0; imgs[i].names[k]; k++)
                printf("Loaded image: %s\n", imgs[i].names[k]);
        }
    }
    transport_images_free(imgs, n);
    store_close(s);
    return status;
}
