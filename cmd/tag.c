/* kiln tag SOURCE TARGET: another name for an image. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cli.h"
#include "cmd/imgutil.h"
#include "layers/reference.h"
#include "layers/refs.h"

static void usage(FILE *f)
{
    fprintf(f, "Usage: kiln tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]\n\n"
               "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.\n\n"
               "Options:\n"
               "  -h, --help   this help\n");
}

int cmd_tag(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'}, CLI_GLOBAL_LONGOPTS, {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'h':
            usage(stdout);
            return 0;
        default:
            if (!cli_global_opt(c, optarg))
                return cli_bad_option("tag", argv);
        }
    }
    if (argc - optind != 2)
        return cli_usage_error("tag", "requires exactly 2 arguments");
    const char *src = argv[optind], *dst = argv[optind + 1];
    struct kiln_error *err = NULL;
    struct image_ref r;
    if (ref_parse(dst, &r, &err) < 0)
        return cli_fail(&err);
    bool digest = r.digest != NULL;
    ref_free(&r);
    if (digest) {
        kiln_error_set(&err, 0, "refusing to create a tag with a digest reference: '%s'", dst);
        return cli_fail(&err);
    }
    struct store *s = NULL;
    struct img_list l = {0};
    const struct img_row *row = NULL;
    int status = 0;
    if (cli_open_store(&s, &err) < 0 || img_list_load(s, &l, &err) < 0 ||
        !(row = img_resolve(&l, src, &err)) || store_tag(s, dst, &row->desc, &err) < 0)
        status = cli_fail(&err);
    img_list_free(&l);
    store_close(s);
    return status;
}
