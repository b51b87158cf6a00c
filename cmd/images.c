/* kiln images: list the images of the store, like `docker images`. */
#include <fnmatch.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cli.h"
#include "cmd/format.h"
#include "cmd/imgutil.h"
#include "layers/reference.h"
#include "layers/refs.h"
#include "lib/cleanup.h"
#include "lib/xalloc.h"

#define DEFAULT_FORMAT "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
#define DIGESTS_FORMAT                                                                             \
    "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
#define MAX_FILTERS 64

static void usage(FILE *f)
{
    fprintf(f, "Usage: kiln images [OPTIONS] [REPOSITORY[:TAG]]\n\n"
               "List images in the store.\n\n"
               "Options:\n"
               "  -a, --all             show all images (kiln keeps no intermediate images,\n"
               "                        so this is the default listing)\n"
               "      --digests         show manifest digests\n"
               "  -f, --filter FILTER   dangling=true|false, reference=PATTERN, label=KEY[=VALUE],\n"
               "                        before=IMAGE, since=IMAGE (repeatable)\n"
               "      --format FORMAT   'table', 'table TEMPLATE', 'json' or a Go template:\n"
               "                        {{.Repository}} {{.Tag}} {{.ID}} {{.Digest}}\n"
               "                        {{.CreatedSince}} {{.CreatedAt}} {{.Size}}\n"
               "      --no-trunc        do not truncate image ids\n"
               "  -q, --quiet           only image ids\n"
               "  -h, --help            this help\n");
}

struct filters {
    int dangling; /* -1 any, 0 named only, 1 untagged only */
    char **refs;
    char **labels;
    int64_t before, since; /* created times; -1 when unset */
};

struct row {
    const struct img_row *r;
    char *repo, *tag;
    int64_t created;
};

static int parse_filter(struct store *s, const char *f, struct filters *flt,
                        struct kiln_error **err)
{
    const char *eq = strchr(f, '=');
    if (!eq)
        return kiln_error_set(err, 0, "bad format of filter (expected name=value): '%s'", f);
    size_t kl = (size_t)(eq - f);
    const char *v = eq + 1;
    if (kl == 8 && strncmp(f, "dangling", 8) == 0) {
        if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
            flt->dangling = 1;
        else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
            flt->dangling = 0;
        else
            return kiln_error_set(err, 0, "invalid filter 'dangling=%s'", v);
        return 0;
    }
    if (kl == 9 && strncmp(f, "reference", 9) == 0) {
        strv_push(&flt->refs, v);
        return 0;
    }
    if (kl == 5 && strncmp(f, "label", 5) == 0) {
        strv_push(&flt->labels, v);
        return 0;
    }
    if ((kl == 6 && strncmp(f, "before", 6) == 0) || (kl == 5 && strncmp(f, "since", 5) == 0)) {
        struct descriptor d;
        if (store_resolve(s, v, &d, NULL, err) < 0)
            return -1;
        struct image img;
        int r = image_load(s, &d, &img, err);
        descriptor_free(&d);
        if (r < 0)
            return -1;
        int64_t t = rfc3339_parse(img.config.created);
        image_free(&img);
        if (f[0] == 'b')
            flt->before = t;
        else
            flt->since = t;
        return 0;
    }
    return kiln_error_set(err, 0, "invalid filter '%.*s'", (int)kl, f);
}

/* docker's reference filter: path.Match of the pattern against
 * "REPO:TAG", then against "REPO". */
static bool ref_matches(const char *pattern, const char *repo, const char *tag)
{
    char *full = xasprintf("%s:%s", repo, tag);
    bool m = fnmatch(pattern, full, FNM_PATHNAME) == 0 || fnmatch(pattern, repo, FNM_PATHNAME) == 0;
    free(full);
    return m;
}

static bool keep_row(const struct filters *flt, const struct row *w)
{
    bool named = w->r->name != NULL;
    if (flt->dangling == 1 && named)
        return false;
    if (flt->dangling == 0 && !named)
        return false;
    if (flt->refs[0]) {
        bool any = false;
        for (size_t i = 0; flt->refs[i] && !any; i++)
            any = named && ref_matches(flt->refs[i], w->repo, w->tag);
        if (!any)
            return false;
    }
    for (size_t i = 0; flt->labels[i]; i++) {
        const char *l = flt->labels[i];
        const char *eq = strchr(l, '=');
        _cleanup_free_ char *key = eq ? xstrndup(l, (size_t)(eq - l)) : xstrdup(l);
        const char *have = strmap_get(&w->r->img.config.labels, key);
        if (!have || (eq && strcmp(have, eq + 1) != 0))
            return false;
    }
    if (flt->before >= 0 && !(w->created < flt->before))
        return false;
    if (flt->since >= 0 && !(w->created > flt->since))
        return false;
    return true;
}

static int cmp_rows(const void *a, const void *b)
{
    const struct row *x = a, *y = b;
    if (x->created != y->created)
        return x->created > y->created ? -1 : 1;
    int c = strcmp(x->repo, y->repo);
    return c ? c : strcmp(x->tag, y->tag);
}

static struct tval *header(void)
{
    struct tval *h = tv_struct("header");
    tv_set(h, "Containers", tv_str("CONTAINERS"));
    tv_set(h, "CreatedAt", tv_str("CREATED AT"));
    tv_set(h, "CreatedSince", tv_str("CREATED"));
    tv_set(h, "Digest", tv_str("DIGEST"));
    tv_set(h, "ID", tv_str("IMAGE ID"));
    tv_set(h, "Repository", tv_str("REPOSITORY"));
    tv_set(h, "SharedSize", tv_str("SHARED SIZE"));
    tv_set(h, "Size", tv_str("SIZE"));
    tv_set(h, "Tag", tv_str("TAG"));
    tv_set(h, "UniqueSize", tv_str("UNIQUE SIZE"));
    tv_set(h, "VirtualSize", tv_str("VIRTUAL SIZE"));
    return h;
}

/* One row as docker's image formatter shows it (fields sorted, as its
 * JSON is). */
static struct tval *row_value(const struct row *w, bool no_trunc)
{
    const struct image *img = &w->r->img;
    struct tval *v = tv_struct("image");
    tv_set(v, "Containers", tv_str("N/A"));
    tv_set(v, "CreatedAt", tv_str_take(format_time_local(img->config.created)));
    tv_set(v, "CreatedSince", tv_str_take(format_ago(img->config.created)));
    tv_set(v, "Digest", tv_str(w->r->desc.digest));
    tv_set(v, "ID",
           no_trunc ? tv_str(img->config_digest) : tv_str_take(img_short_id(img->config_digest)));
    tv_set(v, "Repository", tv_str(w->repo));
    tv_set(v, "SharedSize", tv_str("N/A"));
    tv_set(v, "Size", tv_str_take(format_size(img_size(img))));
    tv_set(v, "Tag", tv_str(w->tag));
    tv_set(v, "UniqueSize", tv_str("N/A"));
    tv_set(v, "VirtualSize", tv_str_take(format_size(img_size(img))));
    return v;
}

int cmd_images(int argc, char **argv)
{
    static const struct option longopts[] = {{"all", no_argument, NULL, 'a'},
                                             {"quiet", no_argument, NULL, 'q'},
                                             {"digests", no_argument, NULL, 'D'},
                                             {"no-trunc", no_argument, NULL, 'T'},
                                             {"filter", required_argument, NULL, 'f'},
                                             {"format", required_argument, NULL, 'F'},
                                             {"help", no_argument, NULL, 'h'},
                                             CLI_GLOBAL_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    bool quiet = false, digests = false, no_trunc = false;
    const char *format = NULL;
    _cleanup_strv_ char **filter_args = strv_new();
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "aqf:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'a':
            break;
        case 'q':
            quiet = true;
            break;
        case 'D':
            digests = true;
            break;
        case 'T':
            no_trunc = true;
            break;
        case 'f':
            if (strv_len(filter_args) >= MAX_FILTERS)
                return cli_usage_error("images", "too many filters");
            strv_push(&filter_args, optarg);
            break;
        case 'F':
            format = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            if (!cli_global_opt(c, optarg))
                return cli_bad_option("images", argv);
        }
    }
    if (argc - optind > 1)
        return cli_usage_error("images", "too many arguments");
    const char *positional = optind < argc ? argv[optind] : NULL;

    struct kiln_error *err = NULL;
    struct output_format of;
    if (quiet)
        format = "{{.ID}}";
    if (output_format_parse(format, digests ? DIGESTS_FORMAT : DEFAULT_FORMAT, &of, &err) < 0)
        return cli_fail(&err);
    struct store *s = NULL;
    if (cli_open_store(&s, &err) < 0) {
        output_format_free(&of);
        return cli_fail(&err);
    }
    struct filters flt = {.dangling = -1, .refs = strv_new(), .labels = strv_new(),
                          .before = -1, .since = -1};
    int status = 0;
    for (size_t i = 0; filter_args[i] && status == 0; i++)
        if (parse_filter(s, filter_args[i], &flt, &err) < 0)
            status = cli_fail(&err);
    if (positional && status == 0) {
        /* "app" lists every tag of app; "app:1" that tag */
        struct image_ref pr;
        if (ref_parse(positional, &pr, &err) < 0) {
            status = cli_fail(&err);
        } else {
            char *repo = ref_familiar_name(&pr);
            const char *last = strrchr(positional, '/');
            bool tagged = strchr(last ? last : positional, ':') != NULL;
            strv_push_take(&flt.refs, tagged && pr.tag ? xasprintf("%s:%s", repo, pr.tag)
                                                       : xstrdup(repo));
            free(repo);
            ref_free(&pr);
        }
    }
    struct img_list l = {0};
    if (status == 0 && img_list_load(s, &l, &err) < 0)
        status = cli_fail(&err);
    struct row *rows = xcalloc(l.n + 1, sizeof(*rows));
    size_t n = 0;
    for (size_t i = 0; i < l.n && status == 0; i++) {
        const struct img_row *r = &l.rows[i];
        if (!r->loaded)
            continue;
        struct row w = {.r = r, .created = rfc3339_parse(r->img.config.created)};
        struct image_ref ref;
        struct kiln_error *perr = NULL;
        if (r->name && ref_parse(r->name, &ref, &perr) == 0) {
            w.repo = ref_familiar_name(&ref);
            w.tag = xstrdup(ref.tag ? ref.tag : "<none>");
            ref_free(&ref);
        } else {
            kiln_error_free(&perr);
            w.repo = xstrdup("<none>");
            w.tag = xstrdup("<none>");
        }
        if (keep_row(&flt, &w)) {
            rows[n++] = w;
        } else {
            free(w.repo);
            free(w.tag);
        }
    }
    if (status == 0) {
        qsort(rows, n, sizeof(*rows), cmp_rows);
        struct tval **items = xcalloc(n + 1, sizeof(*items));
        for (size_t i = 0; i < n; i++)
            items[i] = row_value(&rows[i], no_trunc);
        struct tval *h = header();
        if (output_format_print(&of, h, items, n, stdout, &err) < 0)
            status = cli_fail(&err);
        tv_unref(h);
        for (size_t i = 0; i < n; i++)
            tv_unref(items[i]);
        free(items);
    }
    for (size_t i = 0; i < n; i++) {
        free(rows[i].repo);
        free(rows[i].tag);
    }
    free(rows);
    img_list_free(&l);
    strv_free(flt.refs);
    strv_free(flt.labels);
    output_format_free(&of);
    store_close(s);
    return status;
}
