/* kiln export: an image's flattened file system as a tar, like `docker
 * export` of a container made from it. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/cli.h"
#include "cmd/imgutil.h"
#include "layers/refs.h"
#include "layers/transport.h"
#include "lib/cleanup.h"
#include "lib/xalloc.h"

static void usage(FILE *f)
{
    fprintf(f, "Usage: kiln export [OPTIONS] IMAGE\n\n"
               "Write the file system of an image (its layers applied in order) as a tar\n"
               "to stdout.\n\n"
               "Options:\n"
               "  -o, --output FILE   write to FILE ('-': stdout)\n"
               "  -h, --help          this help\n");
}

int cmd_export(int argc, char **argv)
{
    static const struct option longopts[] = {{"output", required_argument, NULL, 'o'},
                                             {"help", no_argument, NULL, 'h'},
                                             CLI_GLOBAL_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    const char *out = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o':
            out = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            if (!cli_global_opt(c, optarg))
                return cli_bad_option("export", argv);
        }
    }
    if (argc - optind != 1)
        return cli_usage_error("export", "requires exactly 1 argument");
    bool to_stdout = !out || strcmp(out, "-") == 0;
    struct kiln_error *err = NULL;
    if (to_stdout && isatty(STDOUT_FILENO)) {
        kiln_error_set(&err, 0, "cowardly refusing to save to a terminal. Use the -o flag or "
                                "redirect");
        return cli_fail(&err);
    }
    struct store *s = NULL;
    struct img_list l = {0};
    const struct img_row *row = NULL;
    if (cli_open_store(&s, &err) < 0 || img_list_load(s, &l, &err) < 0 ||
        !(row = img_resolve(&l, argv[optind], &err))) {
        img_list_free(&l);
        store_close(s);
        return cli_fail(&err);
    }
    struct descriptor d;
    descriptor_copy(&d, &row->desc);
    img_list_free(&l);
    int status = 0;
    if (to_stdout) {
        if (image_export_rootfs(s, &d, STDOUT_FILENO, &err) < 0)
            status = cli_fail(&err);
    } else {
        /* beside the target, then renamed: no half-written file on failure */
        _cleanup_free_ char *tmp = xasprintf("%s.tmp-XXXXXX", out);
        int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0) {
            kiln_error_set(&err, errno, "create '%s'", out);
            status = cli_fail(&err);
        } else {
            mode_t um = umask(0);
            umask(um);
            if (fchmod(fd, 0666 & ~um) < 0) {
                /* stays 0600 */
            }
            int r = image_export_rootfs(s, &d, fd, &err);
            if (r == 0 && fsync(fd) < 0)
                r = kiln_error_set(&err, errno, "write '%s'", out);
            if (close(fd) < 0 && r == 0)
                r = kiln_error_set(&err, errno, "write '%s'", out);
            if (r == 0 && rename(tmp, out) < 0)
                r = kiln_error_set(&err, errno, "rename to '%s'", out);
            if (r < 0) {
                unlink(tmp);
                status = cli_fail(&err);
            }
        }
    }
    descriptor_free(&d);
    store_close(s);
    return status;
}
