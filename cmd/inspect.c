/* kiln inspect: images as JSON, in the shape of `docker image inspect`. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cli.h"
#include "cmd/format.h"
#include "cmd/imgutil.h"
#include "layers/reference.h"
#include "layers/refs.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

static struct tval *keys_map(const struct strmap *m, bool values)
{
    struct tval *v = tv_map(m->n == 0);
    for (size_t i = 0; i < m->n; i++)
        tv_set(v, m->keys[i], values ? tv_str(m->values[i]) : tv_struct("struct {}"));
    return v;
}

static struct tval *config_value(const struct image_config *c)
{
    struct tval *v = tv_struct("Config");
    tv_set(v, "Hostname", tv_str(""));
    tv_set(v, "Domainname", tv_str(""));
    tv_set(v, "User", tv_str(c->user));
    tv_set(v, "AttachStdin", tv_bool(false));
    tv_set(v, "AttachStdout", tv_bool(false));
    tv_set(v, "AttachStderr", tv_bool(false));
    tv_set(v, "ExposedPorts", tv_omitempty(keys_map(&c->exposed_ports, false)));
    tv_set(v, "Tty", tv_bool(false));
    tv_set(v, "OpenStdin", tv_bool(false));
    tv_set(v, "StdinOnce", tv_bool(false));
    tv_set(v, "Env", tv_strv(c->env));
    tv_set(v, "Cmd", tv_strv(c->cmd));
    if (c->healthcheck) {
        const struct healthcheck *h = c->healthcheck;
        struct tval *hv = tv_struct("HealthConfig");
        tv_set(hv, "Test", tv_omitempty(tv_strv(h->test)));
        tv_set(hv, "Interval", tv_omitempty(tv_int(h->interval)));
        tv_set(hv, "Timeout", tv_omitempty(tv_int(h->timeout)));
        tv_set(hv, "StartPeriod", tv_omitempty(tv_int(h->start_period)));
        tv_set(hv, "StartInterval", tv_omitempty(tv_int(h->start_interval)));
        tv_set(hv, "Retries", tv_omitempty(tv_int(h->retries)));
        tv_set(v, "Healthcheck", hv);
    } else {
        tv_set(v, "Healthcheck", tv_omitempty(tv_null()));
    }
    tv_set(v, "ArgsEscaped", tv_omitempty(tv_bool(c->args_escaped)));
    tv_set(v, "Image", tv_str(""));
    tv_set(v, "Volumes", keys_map(&c->volumes, false));
    tv_set(v, "WorkingDir", tv_str(c->working_dir));
    tv_set(v, "Entrypoint", tv_strv(c->entrypoint));
    tv_set(v, "OnBuild", tv_strv(c->onbuild));
    tv_set(v, "Labels", keys_map(&c->labels, true));
    tv_set(v, "StopSignal", tv_omitempty(tv_str(c->stop_signal)));
    tv_set(v, "Shell", tv_omitempty(tv_strv(c->shell)));
    return v;
}

struct tval *img_inspect_value(const struct img_list *l, const struct img_row *row)
{
    const struct image *img = &row->img;
    const struct image_config *c = &img->config;
    struct tval *v = tv_struct("image");
    tv_set(v, "Id", tv_str(img->config_digest));
    char **names = img_names_of(l, img->config_digest);
    struct tval *tags = tv_list(false), *digests = tv_list(false);
    for (size_t i = 0; names[i]; i++) {
        struct image_ref r;
        struct kiln_error *e = NULL;
        if (ref_parse(names[i], &r, &e) < 0) {
            kiln_error_free(&e);
            continue;
        }
        if (r.tag)
            tv_push(tags, tv_str(names[i]));
        char *repo = ref_familiar_name(&r);
        /* every manifest of this image under this repository */
        for (size_t k = 0; k < l->n; k++) {
            const struct img_row *o = &l->rows[k];
            if (!o->loaded || !o->name || strcmp(o->img.config_digest, img->config_digest) != 0 ||
                strcmp(o->name, names[i]) != 0)
                continue;
            char *rd = xasprintf("%s@%s", repo, o->desc.digest);
            bool dup = false;
            for (size_t d = 0; d < digests->n; d++)
                dup |= strcmp(digests->items[d]->s, rd) == 0;
            if (dup)
                free(rd);
            else
                tv_push(digests, tv_str_take(rd));
        }
        free(repo);
        ref_free(&r);
    }
    strv_free(names);
    tv_set(v, "RepoTags", tags);
    tv_set(v, "RepoDigests", digests);
    tv_set(v, "Parent", tv_str(""));
    tv_set(v, "Comment", tv_str(""));
    tv_set(v, "Created", tv_str(c->created));
    tv_set(v, "DockerVersion", tv_str(""));
    tv_set(v, "Author", tv_str(c->author));
    tv_set(v, "Config", config_value(c));
    tv_set(v, "Architecture", tv_str(c->architecture));
    tv_set(v, "Variant", tv_omitempty(tv_str(c->variant)));
    tv_set(v, "Os", tv_str(c->os));
    tv_set(v, "Size", tv_int((int64_t)img_size(img)));
    struct tval *rootfs = tv_struct("RootFS");
    tv_set(rootfs, "Type", tv_str("layers"));
    tv_set(rootfs, "Layers", tv_strv(c->diff_ids));
    tv_set(v, "RootFS", rootfs);
    struct tval *meta = tv_struct("Metadata");
    /* kiln does not record when an image was tagged: Go's zero time, as
     * docker shows for images never tagged locally */
    tv_set(meta, "LastTagTime", tv_str("0001-01-01T00:00:00Z"));
    tv_set(v, "Metadata", meta);
    struct tval *desc = tv_struct("Descriptor");
    tv_set(desc, "mediaType", tv_str(row->desc.media_type));
    tv_set(desc, "digest", tv_str(row->desc.digest));
    tv_set(desc, "size", tv_int((int64_t)row->desc.size));
    tv_set(v, "Descriptor", desc);
    return v;
}

static void usage(FILE *f)
{
    fprintf(f, "Usage: kiln inspect [OPTIONS] IMAGE [IMAGE...]\n\n"
               "Show images as JSON, like 'docker image inspect'.\n\n"
               "Options:\n"
               "  -f, --format FORMAT   Go template ('{{.Config.Env}}', '{{json .RootFS}}'),\n"
               "                        or 'json' (the default)\n"
               "      --type image      accepted for docker compatibility\n"
               "  -h, --help            this help\n");
}

int cmd_inspect(int argc, char **argv)
{
    static const struct option longopts[] = {{"format", required_argument, NULL, 'f'},
                                             {"type", required_argument, NULL, 'T'},
                                             {"help", no_argument, NULL, 'h'},
                                             CLI_GLOBAL_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    const char *format = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "f:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            format = optarg;
            break;
        case 'T':
            if (strcmp(optarg, "image") != 0)
                return cli_usage_error("inspect", "kiln only has images: --type '%s'", optarg);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            if (!cli_global_opt(c, optarg))
                return cli_bad_option("inspect", argv);
        }
    }
    if (optind >= argc)
        return cli_usage_error("inspect", "requires at least 1 argument");
    struct kiln_error *err = NULL;
    struct template *tmpl = NULL;
    if (format && *format && strcmp(format, "json") != 0) {
        if (template_parse(format, strlen(format), &tmpl, &err) < 0) {
            kiln_error_wrap(&err, "--format");
            return cli_fail(&err);
        }
    }
    struct store *s = NULL;
    if (cli_open_store(&s, &err) < 0) {
        template_free(tmpl);
        return cli_fail(&err);
    }
    struct img_list l;
    if (img_list_load(s, &l, &err) < 0) {
        template_free(tmpl);
        store_close(s);
        return cli_fail(&err);
    }
    int status = 0;
    struct tval *all = tv_list(false);
    struct strbuf out = STRBUF_INIT;
    for (int i = optind; i < argc; i++) {
        const struct img_row *row = img_resolve(&l, argv[i], &err);
        if (!row) {
            status = cli_fail(&err);
            continue;
        }
        if (!row->loaded) {
            kiln_error_set(&err, 0, "image '%s' cannot be read (run 'kiln system check')",
                           argv[i]);
            status = cli_fail(&err);
            continue;
        }
        struct tval *v = img_inspect_value(&l, row);
        if (tmpl) {
            strbuf_reset(&out);
            if (template_exec(tmpl, v, &out, &err) < 0) {
                tv_unref(v);
                kiln_error_wrap(&err, "--format");
                status = cli_fail(&err);
                continue;
            }
            printf("%s\n", strbuf_str(&out));
            tv_unref(v);
        } else {
            tv_push(all, v);
        }
    }
    if (!tmpl) {
        strbuf_reset(&out);
        tv_json(&out, all, true);
        printf("%s\n", strbuf_str(&out));
    }
    strbuf_release(&out);
    tv_unref(all);
    template_free(tmpl);
    img_list_free(&l);
    store_close(s);
    return status;
}
