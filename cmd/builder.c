/* kiln builder prune: the build cache (records and RUN cache mounts). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cli.h"
#include "cmd/imgutil.h"
#include "layers/gc.h"
#include "lib/xalloc.h"

static int builder_prune(int argc, char **argv)
{
    static const struct option longopts[] = {{"all", no_argument, NULL, 'a'},
                                             {"force", no_argument, NULL, 'f'},
                                             {"keep-storage", required_argument, NULL, 'K'},
                                             {"help", no_argument, NULL, 'h'},
                                             CLI_GLOBAL_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    bool all = false, force = false;
    int64_t keep = -1;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "afh", longopts, NULL)) != -1) {
        switch (c) {
        case 'a':
            all = true;
            break;
        case 'f':
            force = true;
            break;
        case 'K': {
            uint64_t v = 0;
            if (cli_parse_size(optarg, &v) < 0 || v > INT64_MAX)
                return cli_usage_error("builder prune", "bad size '%s' for --keep-storage",
                                       optarg);
            keep = (int64_t)v;
            break;
        }
        case 'h':
            printf("Usage: kiln builder prune [OPTIONS]\n\n"
                   "Remove build cache: records whose layers no image uses (all with -a),\n"
                   "RUN cache mounts, then unused blobs and layer trees.\n\n"
                   "Options:\n"
                   "  -a, --all                 remove all build cache\n"
                   "      --keep-storage SIZE   remove oldest first until the cache is at most "
                   "SIZE\n"
                   "                            (e.g. 512m, 2g)\n"
                   "  -f, --force               do not ask for confirmation\n"
                   "  -h, --help                this help\n");
            return 0;
        default:
            if (!cli_global_opt(c, optarg))
                return cli_bad_option("builder prune", argv);
        }
    }
    if (optind < argc)
        return cli_usage_error("builder prune", "takes no arguments");
    if (!force && !img_confirm(all ? "WARNING! This will remove all build cache."
                                   : "WARNING! This will remove all dangling build cache."))
        return 1;
    struct kiln_error *err = NULL;
    struct store *s = NULL;
    struct gc_session *g = NULL;
    int status = 0;
    struct gc_result pr = {0}, sw = {0};
    int opened = cli_open_store(&s, &err);
    if (opened == 0)
        img_enter_namespace(s);
    if (opened < 0 || gc_begin(s, false, &g, &err) < 0) {
        status = cli_fail(&err);
    } else {
        if (gc_prune_cache(g, all, keep, &pr, &err) < 0 || gc_sweep(g, &sw, &err) < 0)
            status = cli_fail(&err);
        img_print_deleted_cache(&pr);
        if (status == 0)
            img_print_reclaimed(pr.bytes + sw.bytes);
    }
    gc_result_free(&pr);
    gc_result_free(&sw);
    gc_end(g);
    store_close(s);
    return status;
}

int cmd_builder(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "prune") == 0)
        return builder_prune(argc - 1, argv + 1);
    FILE *f = argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)
                  ? stdout
                  : stderr;
    fprintf(f, "Usage: kiln builder COMMAND\n\nManage the build cache.\n\nCommands:\n"
               "  prune     Remove build cache\n");
    if (f == stdout)
        return 0;
    if (argc >= 2)
        return cli_usage_error("builder", "unknown command '%s'", argv[1]);
    return KILN_EXIT_USAGE;
}
