/* kiln import SOURCE NAME[:TAG]: a rootfs tarball or directory as a
 * one-layer image, like `docker import`. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/cli.h"
#include "layers/image.h"
#include "layers/layer.h"
#include "layers/refs.h"
#include "lib/cleanup.h"
#include "lib/platform.h"
#include "lib/xalloc.h"

static void usage(FILE *f)
{
    fputs("Usage: kiln import [OPTIONS] SOURCE [NAME[:TAG]]\n\n"
          "Make a one-layer image from a root file system: a tarball (plain, gzip,\n"
          "bzip2, xz or zstd; '-' reads stdin) or a directory.\n\n"
          "Options:\n"
          "  -m, --message TEXT       history comment\n"
          "      --compression gzip|zstd|none\n"
          "  -q, --quiet              print only the image id\n"
          "  -h, --help               this help\n",
          f);
}

int cmd_import(int argc, char **argv)
{
    static const struct option longopts[] = {{"message", required_argument, NULL, 'm'},
                                             {"quiet", no_argument, NULL, 'q'},
                                             {"compression", required_argument, NULL, 'C'},
                                             {"help", no_argument, NULL, 'h'},
                                             CLI_GLOBAL_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    const char *message = NULL;
    bool quiet = false;
    struct layer_write_opts lw = {.compression = COMPRESSION_GZIP, .clamp_mtime = -1};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "m:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'm':
            message = optarg;
            break;
        case 'q':
            quiet = true;
            break;
        case 'C':
            if (strcmp(optarg, "gzip") == 0)
                lw.compression = COMPRESSION_GZIP;
            else if (strcmp(optarg, "zstd") == 0)
                lw.compression = COMPRESSION_ZSTD;
            else if (strcmp(optarg, "none") == 0)
                lw.compression = COMPRESSION_NONE;
            else
                return cli_usage_error("import", "--compression: expected gzip, zstd or none");
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            if (!cli_global_opt(c, optarg))
                return cli_bad_option("import", argv);
        }
    }
    int nargs = argc - optind;
    if (nargs < 1 || nargs > 2)
        return cli_usage_error("import", "requires SOURCE and optionally NAME[:TAG]");
    const char *source = argv[optind];
    const char *name = nargs == 2 ? argv[optind + 1] : NULL;
    struct kiln_error *err = NULL;
    if (name) {
        _cleanup_free_ char *norm = NULL;
        if (store_ref_name(name, &norm, &err) < 0) {
            int rc = cli_usage_error("import", "invalid name '%s': %s", name, err->msg);
            kiln_error_free(&err);
            return rc;
        }
    }
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    int64_t epoch = sde && *sde ? strtoll(sde, NULL, 10) : -1;
    lw.clamp_mtime = epoch;

    if (cli_enter_namespaces(&err) < 0)
        return cli_fail(&err);
    struct store *s = NULL;
    if (cli_open_store(&s, &err) < 0)
        return cli_fail(&err);
    if (cli_hold_gc_lock(s, &err) < 0) {
        store_close(s);
        return cli_fail(&err);
    }

    struct layer_result layer = {0};
    int r;
    struct stat st;
    if (strcmp(source, "-") == 0) {
        r = layer_import_tar_fd(s, STDIN_FILENO, &lw, &layer, &err);
    } else if (stat(source, &st) < 0) {
        r = kiln_error_set(&err, errno, "import '%s'", source);
    } else if (S_ISDIR(st.st_mode)) {
        r = layer_import_dir(s, source, &lw, &layer, &err);
    } else {
        int fd = open(source, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            r = kiln_error_set(&err, errno, "import '%s'", source);
        } else {
            r = layer_import_tar_fd(s, fd, &lw, &layer, &err);
            close(fd);
        }
    }
    if (r < 0) {
        kiln_error_wrap(&err, "import '%s'", source);
        store_close(s);
        return cli_fail(&err);
    }

    struct image_config cfg;
    image_config_init(&cfg);
    cfg.created = rfc3339_time(epoch);
    cfg.architecture = xstrdup(platform_arch());
    cfg.os = xstrdup("linux");
    cfg.diff_ids = strv_new();
    strv_push(&cfg.diff_ids, layer.diff_id);
    _cleanup_free_ char *comment =
        message ? xstrdup(message) : xasprintf("Imported from %s", source);
    image_config_add_history(&cfg, cfg.created, NULL, comment, false);
    struct descriptor mdesc;
    char id[DIGEST_STR_LEN];
    r = image_commit(s, &cfg, &layer.blob, 1, &mdesc, id, &err);
    if (r == 0 && name)
        r = store_tag(s, name, &mdesc, &err);
    else if (r == 0)
        r = store_add_untagged(s, &mdesc, &err);
    image_config_free(&cfg);
    layer_result_free(&layer);
    descriptor_free(&mdesc);
    store_close(s);
    if (r < 0)
        return cli_fail(&err);
    (void)quiet; /* nothing but the id is printed anyway */
    printf("%s\n", id);
    return 0;
}
