/* kiln system df|prune|check|reset: the store as a whole. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/cli.h"
#include "cmd/format.h"
#include "cmd/imgutil.h"
#include "layers/fsck.h"
#include "layers/gc.h"
#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"

#define DF_FORMAT "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"

/* Parses the options every system subcommand shares: -a, -f, --format. */
struct sys_opts {
    bool all, force;
    const char *format;
};

static int parse_opts(const char *cmd, const char *help, bool takes_all, bool takes_format,
                      int argc, char **argv, struct sys_opts *o)
{
    static const struct option longopts[] = {{"all", no_argument, NULL, 'a'},
                                             {"force", no_argument, NULL, 'f'},
                                             {"format", required_argument, NULL, 'F'},
                                             {"help", no_argument, NULL, 'h'},
                                             CLI_GLOBAL_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    memset(o, 0, sizeof(*o));
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "afh", longopts, NULL)) != -1) {
        switch (c) {
        case 'a':
            if (!takes_all)
                return cli_usage_error(cmd, "unknown flag: --all");
            o->all = true;
            break;
        case 'f':
            o->force = true;
            break;
        case 'F':
            if (!takes_format)
                return cli_usage_error(cmd, "unknown flag: --format");
            o->format = optarg;
            break;
        case 'h':
            fputs(help, stdout);
            return -1;
        default:
            if (!cli_global_opt(c, optarg))
                return cli_bad_option(cmd, argv);
        }
    }
    if (optind < argc)
        return cli_usage_error(cmd, "takes no arguments");
    return 0;
}

/* ---- df ------------------------------------------------------------ */

static struct tval *df_row(const char *type, const struct gc_usage_row *r, bool percent)
{
    struct tval *v = tv_struct("diskUsage");
    tv_set(v, "Active", tv_str_take(xasprintf("%zu", r->active)));
    char *rec = format_size4(r->reclaimable);
    if (percent && r->size > 0) {
        char *p = xasprintf("%s (%llu%%)", rec, (unsigned long long)(100 * r->reclaimable / r->size));
        free(rec);
        rec = p;
    }
    tv_set(v, "Reclaimable", tv_str_take(rec));
    tv_set(v, "Size", tv_str_take(format_size4(r->size)));
    tv_set(v, "TotalCount", tv_str_take(xasprintf("%zu", r->total)));
    tv_set(v, "Type", tv_str(type));
    return v;
}

static int system_df(int argc, char **argv)
{
    struct sys_opts o;
    int r = parse_opts("system df",
                       "Usage: kiln system df [OPTIONS]\n\n"
                       "Show the store's disk usage: images, build cache, RUN cache mounts.\n"
                       "Sizes are as stored (layers compressed), layer trees included.\n\n"
                       "Options:\n"
                       "      --format FORMAT   'table', 'json' or a Go template: {{.Type}}\n"
                       "                        {{.TotalCount}} {{.Active}} {{.Size}} "
                       "{{.Reclaimable}}\n"
                       "  -h, --help            this help\n",
                       false, true, argc, argv, &o);
    if (r)
        return r < 0 ? 0 : r;
    struct kiln_error *err = NULL;
    struct output_format of;
    if (output_format_parse(o.format, DF_FORMAT, &of, &err) < 0)
        return cli_fail(&err);
    struct store *s = NULL;
    struct gc_usage u;
    int status = 0;
    /* layer trees may hold directories only kiln's namespace can read */
    int opened = cli_open_store(&s, &err);
    if (opened == 0)
        img_enter_namespace(s);
    if (opened < 0 || gc_usage(s, &u, &err) < 0) {
        status = cli_fail(&err);
    } else {
        struct tval *items[3] = {df_row("Images", &u.images, true),
                                 df_row("Build Cache", &u.cache, false),
                                 df_row("Cache mounts", &u.mounts, true)};
        struct tval *h = tv_struct("header");
        tv_set(h, "Active", tv_str("ACTIVE"));
        tv_set(h, "Reclaimable", tv_str("RECLAIMABLE"));
        tv_set(h, "Size", tv_str("SIZE"));
        tv_set(h, "TotalCount", tv_str("TOTAL"));
        tv_set(h, "Type", tv_str("TYPE"));
        if (output_format_print(&of, h, items, 3, stdout, &err) < 0)
            status = cli_fail(&err);
        tv_unref(h);
        for (int i = 0; i < 3; i++)
            tv_unref(items[i]);
    }
    output_format_free(&of);
    store_close(s);
    return status;
}

/* ---- prune ------------------------------------------------------------ */

static int system_prune(int argc, char **argv)
{
    struct sys_opts o;
    int r = parse_opts("system prune",
                       "Usage: kiln system prune [OPTIONS]\n\n"
                       "Remove untagged images, unused build cache and RUN cache mounts, then\n"
                       "unused blobs, layer trees and old tmp/ leftovers.\n\n"
                       "Options:\n"
                       "  -a, --all     remove all images and all build cache\n"
                       "  -f, --force   do not ask for confirmation\n"
                       "  -h, --help    this help\n",
                       true, false, argc, argv, &o);
    if (r)
        return r < 0 ? 0 : r;
    if (!o.force &&
        !img_confirm(o.all ? "WARNING! This will remove:\n  - all images\n  - all build cache\n"
                             "  - all RUN cache mounts\n"
                           : "WARNING! This will remove:\n  - all dangling images\n"
                             "  - unused build cache\n  - all RUN cache mounts\n"))
        return 1;
    struct kiln_error *err = NULL;
    struct store *s = NULL;
    struct gc_session *g = NULL;
    int status = 0;
    struct gc_result pi = {0}, pc = {0}, sw = {0};
    int opened = cli_open_store(&s, &err);
    if (opened == 0)
        img_enter_namespace(s);
    if (opened < 0 || gc_begin(s, false, &g, &err) < 0) {
        status = cli_fail(&err);
    } else {
        struct gc_image_filter f = {.all = o.all};
        if (gc_prune_images(g, &f, &pi, &err) < 0 ||
            gc_prune_cache(g, o.all, -1, &pc, &err) < 0 || gc_sweep(g, &sw, &err) < 0)
            status = cli_fail(&err);
        img_print_deleted_images(&pi, &sw);
        img_print_deleted_cache(&pc);
        if (status == 0)
            img_print_reclaimed(pi.bytes + pc.bytes + sw.bytes);
    }
    gc_result_free(&pi);
    gc_result_free(&pc);
    gc_result_free(&sw);
    gc_end(g);
    store_close(s);
    return status;
}

/* ---- check ------------------------------------------------------------ */

static int system_check(int argc, char **argv)
{
    struct sys_opts o;
    int r = parse_opts("system check",
                       "Usage: kiln system check\n\n"
                       "Validate the store: oci-layout and index.json, every blob against its\n"
                       "digest, every image's manifest, config and layers, every cache record,\n"
                       "and no tmp/ leftover older than a day.  Exits 1 and lists the problems\n"
                       "when there are any.\n",
                       false, false, argc, argv, &o);
    if (r)
        return r < 0 ? 0 : r;
    struct kiln_error *err = NULL;
    struct store *s = NULL;
    struct fsck_report rep;
    if (cli_open_store(&s, &err) < 0 || store_fsck(s, &rep, &err) < 0) {
        store_close(s);
        return cli_fail(&err);
    }
    size_t n = strv_len(rep.problems);
    int status = 0;
    if (n == 0) {
        printf("store '%s': ok (%zu images, %zu blobs, %zu cache records)\n", s->root, rep.images,
               rep.blobs, rep.records);
    } else {
        for (size_t i = 0; i < n; i++)
            printf("%s\n", rep.problems[i]);
        fprintf(stderr, "kiln: error: store '%s': %zu problem%s\n", s->root, n,
                n == 1 ? "" : "s");
        status = KILN_EXIT_FAILURE;
    }
    fsck_report_free(&rep);
    store_close(s);
    return status;
}

/* ---- reset ------------------------------------------------------------ */

/* The names a store holds; nothing else is removed. */
static bool store_owned(const char *name)
{
    static const char *const names[] = {"blobs", "trees", "cache", "mounts", "tmp",
                                        "index.json", "oci-layout", "lock", "gc.lock",
                                        "sources.json"};
    for (size_t i = 0; i < ARRAY_SIZE(names); i++)
        if (strcmp(name, names[i]) == 0)
            return true;
    return strncmp(name, "index.json.tmp-", 15) == 0 || strncmp(name, "oci-layout.tmp-", 15) == 0;
}

static int system_reset(int argc, char **argv)
{
    struct sys_opts o;
    int r = parse_opts("system reset",
                       "Usage: kiln system reset [OPTIONS]\n\n"
                       "Delete the whole store: every image, the build cache, RUN cache mounts.\n\n"
                       "Options:\n"
                       "  -f, --force   do not ask for confirmation\n"
                       "  -h, --help    this help\n",
                       false, false, argc, argv, &o);
    if (r)
        return r < 0 ? 0 : r;
    struct kiln_error *err = NULL;
    _cleanup_free_ char *root = g_opts.root ? xstrdup(g_opts.root) : store_default_root();
    struct stat st;
    if (stat(root, &st) < 0) {
        printf("store '%s' does not exist: nothing to remove\n", root);
        return 0;
    }
    _cleanup_free_ char *layout = path_join(root, "oci-layout");
    _cleanup_free_ char *blobs = path_join(root, "blobs");
    if (!fs_exists(layout) || !fs_is_dir(blobs)) {
        kiln_error_set(&err, 0, "'%s' does not look like a kiln store (no oci-layout or blobs/); "
                                "not touching it",
                       root);
        return cli_fail(&err);
    }
    _cleanup_free_ char *warn = xasprintf(
        "WARNING! This will remove the store '%s': all images, build cache and cache mounts.",
        root);
    if (!o.force && !img_confirm(warn))
        return 1;
    struct store *s = NULL;
    struct gc_session *g = NULL;
    int opened = cli_open_store(&s, &err);
    if (opened == 0)
        img_enter_namespace(s);
    if (opened < 0 || gc_begin(s, false, &g, &err) < 0) {
        store_close(s);
        return cli_fail(&err);
    }
    _cleanup_dir_ DIR *d = opendir(s->root);
    int status = 0;
    bool others = false;
    struct dirent *de;
    char **names = strv_new();
    while (d && (de = readdir(d)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            strv_push(&names, de->d_name);
    /* the lock goes with tmp/, last: gc_end then only closes it */
    for (int pass = 0; pass < 2 && status == 0; pass++) {
        for (size_t i = 0; names[i]; i++) {
            bool is_tmp = strcmp(names[i], "tmp") == 0;
            if ((pass == 0) == is_tmp)
                continue;
            if (!store_owned(names[i])) {
                others = true;
                continue;
            }
            int rr = fs_rm_rf_at(s->root_fd, names[i]);
            if (rr < 0) {
                kiln_error_set(&err, -rr, "remove '%s/%s'%s", s->root, names[i],
                               rr == -EACCES || rr == -EPERM
                                   ? " (files owned by subordinate ids need kiln's namespace)"
                                   : "");
                status = cli_fail(&err);
                break;
            }
        }
    }
    strv_free(names);
    gc_end(g);
    _cleanup_free_ char *where = xstrdup(s->root);
    store_close(s);
    if (status == 0) {
        if (others)
            fprintf(stderr, "kiln: warning: '%s' holds files kiln did not make; they were left\n",
                    where);
        else if (rmdir(where) < 0 && errno != ENOENT)
            fprintf(stderr, "kiln: warning: remove '%s': %s\n", where, strerror(errno));
        printf("Removed the store '%s'\n", where);
    }
    return status;
}

int cmd_system(int argc, char **argv)
{
    static const struct command sub[] = {
        {"check", system_check, "Validate the store"},
        {"df", system_df, "Show disk usage"},
        {"prune", system_prune, "Remove unused images, build cache and cache mounts"},
        {"reset", system_reset, "Delete the whole store"},
    };
    if (argc >= 2)
        for (size_t i = 0; i < ARRAY_SIZE(sub); i++)
            if (strcmp(argv[1], sub[i].name) == 0)
                return sub[i].fn(argc - 1, argv + 1);
    bool help = argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0);
    FILE *f = help ? stdout : stderr;
    fprintf(f, "Usage: kiln system COMMAND\n\nManage the store.\n\nCommands:\n");
    for (size_t i = 0; i < ARRAY_SIZE(sub); i++)
        fprintf(f, "  %-7s %s\n", sub[i].name, sub[i].summary);
    if (help)
        return 0;
    if (argc >= 2)
        return cli_usage_error("system", "unknown command '%s'", argv[1]);
    return KILN_EXIT_USAGE;
}
