/* kiln image COMMAND: docker's `image` group -- prune, and the other image
 * commands under their docker names (ls, inspect, rm, tag, save, load,
 * history, import). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd/cli.h"
#include "cmd/format.h"
#include "cmd/imgutil.h"
#include "layers/gc.h"
#include "lib/json.h"
#include "lib/xalloc.h"

/* ---- prune ------------------------------------------------------------ */

struct prune_filter {
    int64_t until; /* keep images created at or after; -1: unset */
    char **labels;     /* KEY or KEY=VALUE: keep images that do not match */
    char **not_labels; /* label!=...: keep images that match */
};

/* "24h", "90m", "10s" or an RFC 3339 / unix time -> seconds since the epoch */
static int parse_until(const char *v, int64_t *ret)
{
    char *end = NULL;
    long long n = strtoll(v, &end, 10);
    if (end && end != v && *end && !end[1] && n >= 0) {
        int64_t mul = *end == 's' ? 1 : *end == 'm' ? 60 : *end == 'h' ? 3600 : 0;
        if (mul) {
            *ret = (int64_t)time(NULL) - (int64_t)n * mul;
            return 0;
        }
    }
    if (end && end != v && !*end) {
        *ret = n;
        return 0;
    }
    int64_t t = rfc3339_parse(v);
    if (t < 0)
        return -1;
    *ret = t;
    return 0;
}

static bool labels_match(const char *l, yajl_val labels)
{
    const char *eq = strchr(l, '=');
    char *key = eq ? xstrndup(l, (size_t)(eq - l)) : xstrdup(l);
    const char *have = json_get_str(labels, key);
    free(key);
    return have && (!eq || strcmp(have, eq + 1) == 0);
}

static bool prune_keep(void *ud, struct store *s, const char *manifest_digest,
                       const char *config_json, size_t config_len)
{
    (void)s;
    (void)manifest_digest;
    const struct prune_filter *f = ud;
    if (f->until < 0 && !f->labels[0] && !f->not_labels[0])
        return false;
    if (!config_json)
        return true; /* unreadable: filters cannot say, keep it */
    yajl_val root = NULL;
    struct kiln_error *e = NULL;
    if (json_parse(config_json, config_len, &root, &e) < 0) {
        kiln_error_free(&e);
        return true;
    }
    bool keep = false;
    if (f->until >= 0) {
        int64_t t = rfc3339_parse(json_get_str(root, "created"));
        keep |= t >= f->until;
    }
    yajl_val labels = json_get_obj(json_get_obj(root, "config"), "Labels");
    for (size_t i = 0; f->labels[i]; i++)
        keep |= !labels_match(f->labels[i], labels);
    for (size_t i = 0; f->not_labels[i]; i++)
        keep |= labels_match(f->not_labels[i], labels);
    yajl_tree_free(root);
    return keep;
}

static int image_prune(int argc, char **argv)
{
    static const struct option longopts[] = {{"all", no_argument, NULL, 'a'},
                                             {"force", no_argument, NULL, 'f'},
                                             {"filter", required_argument, NULL, 'F'},
                                             {"help", no_argument, NULL, 'h'},
                                             CLI_GLOBAL_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    bool all = false, force = false;
    struct prune_filter pf = {.until = -1, .labels = strv_new(), .not_labels = strv_new()};
    int c, status = 0;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "afh", longopts, NULL)) != -1 && status == 0) {
        switch (c) {
        case 'a':
            all = true;
            break;
        case 'f':
            force = true;
            break;
        case 'F':
            if (strncmp(optarg, "until=", 6) == 0) {
                if (parse_until(optarg + 6, &pf.until) < 0)
                    status = cli_usage_error("image prune", "bad time in filter '%s'", optarg);
            } else if (strncmp(optarg, "label!=", 7) == 0) {
                strv_push(&pf.not_labels, optarg + 7);
            } else if (strncmp(optarg, "label=", 6) == 0) {
                strv_push(&pf.labels, optarg + 6);
            } else {
                status = cli_usage_error("image prune", "invalid filter '%s' (until=, label=, "
                                                        "label!=)",
                                         optarg);
            }
            break;
        case 'h':
            printf("Usage: kiln image prune [OPTIONS]\n\n"
                   "Remove untagged images, then unused blobs, layer trees and old tmp/ "
                   "leftovers.\n\n"
                   "Options:\n"
                   "  -a, --all             remove all images, not only untagged ones\n"
                   "      --filter FILTER   until=DURATION|TIME, label=KEY[=VALUE], label!=...\n"
                   "  -f, --force           do not ask for confirmation\n"
                   "  -h, --help            this help\n");
            strv_free(pf.labels);
            strv_free(pf.not_labels);
            return 0;
        default:
            if (!cli_global_opt(c, optarg))
                status = cli_bad_option("image prune", argv);
        }
    }
    if (status == 0 && optind < argc)
        status = cli_usage_error("image prune", "takes no arguments");
    if (status == 0 && !force &&
        !img_confirm(all ? "WARNING! This will remove all images."
                         : "WARNING! This will remove all dangling images."))
        status = 1;
    if (status != 0) {
        strv_free(pf.labels);
        strv_free(pf.not_labels);
        return status;
    }
    struct kiln_error *err = NULL;
    struct store *s = NULL;
    struct gc_session *g = NULL;
    struct gc_result pr = {0}, sw = {0};
    int opened = cli_open_store(&s, &err);
    if (opened == 0)
        img_enter_namespace(s);
    if (opened < 0 || gc_begin(s, false, &g, &err) < 0) {
        status = cli_fail(&err);
    } else {
        struct gc_image_filter f = {.all = all, .keep = prune_keep, .ud = &pf};
        if (gc_prune_images(g, &f, &pr, &err) < 0 || gc_sweep(g, &sw, &err) < 0)
            status = cli_fail(&err);
        img_print_deleted_images(&pr, &sw);
        if (status == 0)
            img_print_reclaimed(pr.bytes + sw.bytes);
    }
    gc_result_free(&pr);
    gc_result_free(&sw);
    gc_end(g);
    store_close(s);
    strv_free(pf.labels);
    strv_free(pf.not_labels);
    return status;
}

/* ---- the group ------------------------------------------------------------ */

static const struct command image_commands[] = {
    {"history", cmd_history, "Show the history of an image"},
    {"import", cmd_import, "Make an image from a rootfs tarball"},
    {"inspect", cmd_inspect, "Show images as JSON"},
    {"load", cmd_load, "Load images from a tar archive"},
    {"ls", cmd_images, "List images"},
    {"list", cmd_images, NULL},
    {"prune", image_prune, "Remove unused images"},
    {"rm", cmd_rmi, "Remove images"},
    {"save", cmd_save, "Save images to a tar archive"},
    {"tag", cmd_tag, "Create a tag that refers to an image"},
};

static void usage(FILE *f)
{
    fprintf(f, "Usage: kiln image COMMAND\n\nManage images.\n\nCommands:\n");
    for (size_t i = 0; i < sizeof(image_commands) / sizeof(image_commands[0]); i++)
        if (image_commands[i].summary)
            fprintf(f, "  %-9s %s\n", image_commands[i].name, image_commands[i].summary);
}

int cmd_image(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return KILN_EXIT_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof(image_commands) / sizeof(image_commands[0]); i++)
        if (strcmp(argv[1], image_commands[i].name) == 0)
            return image_commands[i].fn(argc - 1, argv + 1);
    return cli_usage_error("image", "unknown command '%s'", argv[1]);
}
