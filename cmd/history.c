/* kiln history: the history of an image, like `docker history`. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd/cli.h"
#include "cmd/format.h"
#include "cmd/imgutil.h"
#include "layers/refs.h"
#include "lib/xalloc.h"

#define DEFAULT_FORMAT "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
#define CREATED_BY_MAX 45

static void usage(FILE *f)
{
    fprintf(f, "Usage: kiln history [OPTIONS] IMAGE\n\n"
               "Show the history of an image.\n\n"
               "Options:\n"
               "      --format FORMAT   'table', 'table TEMPLATE', 'json' or a Go template:\n"
               "                        {{.ID}} {{.CreatedSince}} {{.CreatedAt}} {{.CreatedBy}}\n"
               "                        {{.Size}} {{.Comment}}\n"
               "  -H, --human[=true]    human-readable sizes and times (default true)\n"
               "      --no-trunc        do not truncate the output\n"
               "  -q, --quiet           only image ids\n"
               "  -h, --help            this help\n");
}

static struct tval *header(void)
{
    struct tval *h = tv_struct("header");
    tv_set(h, "Comment", tv_str("COMMENT"));
    tv_set(h, "CreatedAt", tv_str("CREATED AT"));
    tv_set(h, "CreatedBy", tv_str("CREATED BY"));
    tv_set(h, "CreatedSince", tv_str("CREATED"));
    tv_set(h, "ID", tv_str("IMAGE"));
    tv_set(h, "Size", tv_str("SIZE"));
    return h;
}

static char *created_at(const char *rfc3339)
{
    int64_t t = rfc3339_parse(rfc3339);
    if (t < 0)
        return xstrdup("N/A");
    time_t tt = (time_t)t;
    struct tm tm;
    char buf[64];
    if (!localtime_r(&tt, &tm) || strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S%z", &tm) == 0)
        return xstrdup("N/A");
    /* Go's RFC 3339: "+01:00", or "Z" for UTC */
    size_t n = strlen(buf);
    if (n >= 5 && strcmp(buf + n - 5, "+0000") == 0)
        return xasprintf("%.*sZ", (int)(n - 5), buf);
    return xasprintf("%.*s:%s", (int)(n - 2), buf, buf + n - 2);
}

int cmd_history(int argc, char **argv)
{
    static const struct option longopts[] = {{"format", required_argument, NULL, 'F'},
                                             {"human", optional_argument, NULL, 'H'},
                                             {"no-trunc", no_argument, NULL, 'T'},
                                             {"quiet", no_argument, NULL, 'q'},
                                             {"help", no_argument, NULL, 'h'},
                                             CLI_GLOBAL_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    const char *format = NULL;
    bool human = true, no_trunc = false, quiet = false;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "H::qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'F':
            format = optarg;
            break;
        case 'H':
            if (optarg && optarg[0] == '=')
                optarg++;
            if (!optarg || strcmp(optarg, "true") == 0 || strcmp(optarg, "1") == 0)
                human = true;
            else if (strcmp(optarg, "false") == 0 || strcmp(optarg, "0") == 0)
                human = false;
            else
                return cli_usage_error("history", "--human takes true or false, not '%s'",
                                       optarg);
            break;
        case 'T':
            no_trunc = true;
            break;
        case 'q':
            quiet = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            if (!cli_global_opt(c, optarg))
                return cli_bad_option("history", argv);
        }
    }
    if (argc - optind != 1)
        return cli_usage_error("history", "requires exactly 1 argument");
    struct kiln_error *err = NULL;
    struct output_format of;
    if (output_format_parse(quiet ? "{{.ID}}" : format, DEFAULT_FORMAT, &of, &err) < 0)
        return cli_fail(&err);
    struct store *s = NULL;
    struct img_list l = {0};
    const struct img_row *row = NULL;
    if (cli_open_store(&s, &err) < 0 || img_list_load(s, &l, &err) < 0 ||
        !(row = img_resolve(&l, argv[optind], &err))) {
        img_list_free(&l);
        store_close(s);
        output_format_free(&of);
        return cli_fail(&err);
    }
    if (!row->loaded) {
        kiln_error_set(&err, 0, "image '%s' cannot be read (run 'kiln system check')",
                       argv[optind]);
        img_list_free(&l);
        store_close(s);
        output_format_free(&of);
        return cli_fail(&err);
    }
    const struct image img = row->img;
    const struct image_config *cfg = &img.config;
    /* rows newest first; each non-empty entry owns the next layer */
    size_t n_hist = cfg->n_history;
    bool synthetic = n_hist == 0;
    if (synthetic)
        n_hist = img.manifest.n_layers;
    struct tval **items = xcalloc(n_hist + 1, sizeof(*items));
    uint64_t *sizes = xcalloc(n_hist + 1, sizeof(*sizes));
    size_t layer = 0;
    for (size_t i = 0; i < n_hist; i++) {
        bool empty = !synthetic && cfg->history[i].empty_layer;
        if (!empty && layer < img.manifest.n_layers)
            sizes[i] = img.manifest.layers[layer++].size;
    }
    for (size_t k = 0; k < n_hist; k++) {
        size_t i = n_hist - 1 - k;
        const struct history_entry *h = synthetic ? NULL : &cfg->history[i];
        struct tval *v = tv_struct("history");
        tv_set(v, "Comment", tv_str(h ? h->comment : ""));
        const char *created = h ? h->created : cfg->created;
        char *at = created_at(created);
        tv_set(v, "CreatedAt", tv_str(at));
        char *by = xstrdup(h && h->created_by ? h->created_by : "");
        for (char *p = by; *p; p++)
            if (*p == '\t')
                *p = ' ';
        if (!no_trunc) {
            char *t = format_ellipsis(by, CREATED_BY_MAX);
            free(by);
            by = t;
        }
        tv_set(v, "CreatedBy", tv_str_take(by));
        tv_set(v, "CreatedSince", human ? tv_str_take(format_ago(created)) : tv_str(at));
        free(at);
        if (k == 0)
            tv_set(v, "ID", no_trunc ? tv_str(img.config_digest)
                                     : tv_str_take(img_short_id(img.config_digest)));
        else
            tv_set(v, "ID", tv_str("<missing>"));
        tv_set(v, "Size", human ? tv_str_take(format_size(sizes[i]))
                                : tv_str_take(xasprintf("%" PRIu64, sizes[i])));
        items[k] = v;
    }
    struct tval *hd = header();
    int status = 0;
    if (output_format_print(&of, hd, items, n_hist, stdout, &err) < 0)
        status = cli_fail(&err);
    tv_unref(hd);
    for (size_t i = 0; i < n_hist; i++)
        tv_unref(items[i]);
    free(items);
    free(sizes);
    img_list_free(&l);
    output_format_free(&of);
    store_close(s);
    return status;
}
