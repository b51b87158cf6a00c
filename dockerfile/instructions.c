/* Parse tree -> typed instructions (BuildKit's instructions.Parse): each
 * instruction declares its flags, checks its arguments, and the file is cut
 * into stages at each FROM. */
#include "dockerfile/instructions.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dockerfile/dockerfile.h"
#include "dockerfile/internal.h"
#include "lib/cleanup.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

struct conv {
    const struct df_ast *ast;
    struct df_pool *pool;
    const struct df_instr *node;
    struct kiln_error **err;
};

/* An argument of the node, flattened like BuildKit's nodeArgs (ONBUILD's
 * trigger contributes its keyword and its arguments). */
struct arg {
    const char *value;
    size_t len;
    uint32_t off;
    uint32_t rawlen;
};

static void collect_args(const struct df_instr *ins, struct arg **v, size_t *n, size_t *cap)
{
    for (size_t i = 0; i < ins->n_args; i++) {
        const struct df_node *a = &ins->args[i];
        if (a->sub) {
            XGROW(*v, *cap, *n + 1);
            (*v)[(*n)++] = (struct arg){a->sub->keyword, strlen(a->sub->keyword),
                                        a->sub->keyword_off, (uint32_t)strlen(a->sub->keyword)};
            collect_args(a->sub, v, n, cap);
            continue;
        }
        XGROW(*v, *cap, *n + 1);
        (*v)[(*n)++] = (struct arg){a->value, a->value_len, a->off, a->len};
    }
}

static int cerr(struct conv *c, uint32_t off, uint32_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int cerr(struct conv *c, uint32_t off, uint32_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    return dockerfile_error_at(c->ast, c->node, off, len, c->err, "%s", msg);
}

static int cerr_keyword(struct conv *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int cerr_keyword(struct conv *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    return cerr(c, c->node->keyword_off, (uint32_t)strlen(c->node->keyword), "%s", msg);
}

static struct df_word word_of(struct conv *c, const struct arg *a)
{
    return (struct df_word){pool_strndup(c->pool, a->value, a->len), a->off, a->rawlen};
}

/* ---- flags (BuildKit's BFlags) ------------------------------------------------ */

enum flag_type { FL_BOOL, FL_STRING, FL_STRINGS };

struct flagdef {
    const char *name;
    enum flag_type type;
};

struct flagval {
    bool used;
    bool bool_value;
    struct df_word value;    /* FL_STRING */
    struct df_word *values;  /* FL_STRINGS */
    size_t n_values;
};

static int parse_flags(struct conv *c, const struct flagdef *defs, size_t ndefs,
                       struct flagval *vals)
{
    const struct df_instr *ins = c->node;
    const char *names[16];
    for (size_t k = 0; k < ndefs && k < ARRAY_SIZE(names); k++)
        names[k] = defs[k].name;
    for (size_t i = 0; i < ins->n_flags; i++) {
        const struct df_flag *f = &ins->flags[i];
        const char *text = f->text;
        if (strcmp(text, "--") == 0)
            return 0;
        const char *name = text + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        size_t k;
        for (k = 0; k < ndefs; k++)
            if (strlen(defs[k].name) == nlen && memcmp(defs[k].name, name, nlen) == 0)
                break;
        if (k == ndefs) {
            _cleanup_free_ char *fname = xstrndup(name, nlen);
            const char *s = df_suggest(fname, names, ndefs < ARRAY_SIZE(names) ? ndefs : ARRAY_SIZE(names));
            if (s)
                return cerr(c, f->off, f->len, "unknown flag: --%s (did you mean --%s?)", fname, s);
            return cerr(c, f->off, f->len, "unknown flag: --%s", fname);
        }
        struct flagval *v = &vals[k];
        if (v->used && defs[k].type != FL_STRINGS)
            return cerr(c, f->off, f->len, "duplicate flag specified: --%s", defs[k].name);
        v->used = true;
        const char *value = eq ? eq + 1 : NULL;
        /* The value's place in the line: after "--name=" in the raw word. */
        uint32_t voff = f->off == DF_NOPOS ? DF_NOPOS : f->off + (uint32_t)(2 + nlen + 1);
        uint32_t vlen = f->len > 2 + nlen + 1 ? f->len - (uint32_t)(2 + nlen + 1) : 0;
        switch (defs[k].type) {
        case FL_BOOL:
            if (eq && !*value)
                return cerr(c, f->off, f->len, "missing a value on flag: --%s", defs[k].name);
            if (!eq || strcasecmp(value, "true") == 0)
                v->bool_value = true;
            else if (strcasecmp(value, "false") == 0)
                v->bool_value = false;
            else
                return cerr(c, f->off, f->len, "expecting boolean value for flag --%s, not: %s",
                            defs[k].name, value);
            break;
        case FL_STRING:
            if (!eq)
                return cerr(c, f->off, f->len, "missing a value on flag: --%s", defs[k].name);
            v->value = (struct df_word){pool_strdup(c->pool, value), voff, vlen};
            break;
        case FL_STRINGS:
            if (!eq)
                return cerr(c, f->off, f->len, "missing a value on flag: --%s", defs[k].name);
            v->n_values++; /* collect_strings() gathers them */
            break;
        }
    }
    return 0;
}

/* FL_STRINGS values, in order (parse_flags only counts them). */
static void collect_strings(struct conv *c, const char *name, struct df_word **ret, size_t *ret_n)
{
    const struct df_instr *ins = c->node;
    size_t nlen = strlen(name), n = 0;
    struct df_word *v = NULL;
    for (size_t i = 0; i < ins->n_flags; i++) {
        const char *t = ins->flags[i].text;
        if (strcmp(t, "--") == 0)
            break;
        if (strncmp(t + 2, name, nlen) != 0 || t[2 + nlen] != '=')
            continue;
        v = xreallocarray(v, n + 1, sizeof(*v));
        uint32_t off = ins->flags[i].off;
        uint32_t skip = (uint32_t)(2 + nlen + 1);
        v[n++] = (struct df_word){pool_strdup(c->pool, t + 2 + nlen + 1),
                                  off == DF_NOPOS ? DF_NOPOS : off + skip,
                                  ins->flags[i].len > skip ? ins->flags[i].len - skip : 0};
    }
    *ret = pool_adopt(c->pool, v);
    *ret_n = n;
}

static int no_flags(struct conv *c)
{
    return parse_flags(c, NULL, 0, NULL);
}

/* ---- per instruction ----------------------------------------------------------- */

static int exactly_one(struct conv *c, size_t n)
{
    if (n != 1)
        return cerr_keyword(c, "%s requires exactly one argument", df_kind_name(c->node->kind));
    return 0;
}

static int at_least_one(struct conv *c, size_t n)
{
    if (n == 0)
        return cerr_keyword(c, "%s requires at least one argument", df_kind_name(c->node->kind));
    return 0;
}

static void cmdline_of(struct conv *c, const struct arg *args, size_t n, bool json,
                       struct df_cmdline *out)
{
    out->argv = pool_alloc(c->pool, (n + 1) * sizeof(char *));
    for (size_t i = 0; i < n; i++)
        out->argv[i] = pool_strndup(c->pool, args[i].value, args[i].len);
    out->argc = n;
    out->shell_form = !json;
}

static int conv_kvs(struct conv *c, struct df_instruction *in, const struct arg *args, size_t n)
{
    if (no_flags(c) < 0)
        return -1;
    const char *what = df_kind_name(c->node->kind);
    if (n == 0)
        return cerr_keyword(c, "%s requires at least one argument", what);
    if (n % 3 != 0)
        return cerr_keyword(c, "Bad input to %s, too many arguments", what);
    in->u.kvs.n = n / 3;
    in->u.kvs.v = pool_alloc(c->pool, (n / 3 + 1) * sizeof(struct df_kv));
    for (size_t i = 0; i < n; i += 3) {
        if (args[i].len == 0)
            return cerr(c, args[i].off, args[i].rawlen + 1, "%s names can not be blank", what);
        struct df_kv *kv = &in->u.kvs.v[i / 3];
        kv->key = word_of(c, &args[i]);
        kv->value = word_of(c, &args[i + 1]);
        kv->legacy = args[i + 2].len == 0;
    }
    return 0;
}

static int conv_copy(struct conv *c, struct df_instruction *in, const struct arg *args, size_t n)
{
    bool add = c->node->kind == DF_ADD;
    const char *what = add ? "ADD" : "COPY";
    if (n < 2)
        return cerr_keyword(c, "%s requires at least two arguments, but only one was provided. "
                               "Destination could not be determined",
                            what);
    static const struct flagdef copy_flags[] = {
        {"chown", FL_STRING}, {"chmod", FL_STRING}, {"link", FL_BOOL},
        {"exclude", FL_STRINGS}, {"from", FL_STRING}, {"parents", FL_BOOL},
    };
    static const struct flagdef add_flags[] = {
        {"chown", FL_STRING},   {"chmod", FL_STRING},    {"link", FL_BOOL},
        {"exclude", FL_STRINGS}, {"keep-git-dir", FL_BOOL}, {"checksum", FL_STRING},
        {"unpack", FL_BOOL},
    };
    struct flagval v[8] = {0};
    if (parse_flags(c, add ? add_flags : copy_flags, add ? ARRAY_SIZE(add_flags)
                                                          : ARRAY_SIZE(copy_flags),
                    v) < 0)
        return -1;
    struct df_copy *cp = &in->u.copy;
    cp->chown = v[0].value;
    cp->chmod = v[1].value;
    cp->link = v[2].used && v[2].bool_value;
    collect_strings(c, "exclude", &cp->excludes, &cp->n_excludes);
    cp->unpack = -1;
    if (add) {
        cp->keep_git_dir = v[4].used && v[4].bool_value;
        cp->checksum = v[5].value;
        if (v[6].used)
            cp->unpack = v[6].bool_value;
    } else {
        cp->from = v[4].value;
        cp->parents = v[5].used && v[5].bool_value;
    }

    const struct arg *dest = &args[n - 1];
    char *hname = NULL;
    uint32_t fd;
    bool expand, chomp;
    _cleanup_free_ char *dest_s = xstrndup(dest->value, dest->len);
    if (dockerfile_parse_heredoc(dest_s, &hname, &fd, &expand, &chomp, NULL) == 1) {
        free(hname);
        return cerr(c, dest->off, dest->rawlen, "%s cannot accept a heredoc as a destination",
                    what);
    }
    cp->dest = word_of(c, dest);
    cp->srcs = pool_alloc(c->pool, n * sizeof(struct df_word));
    cp->contents = pool_alloc(c->pool, n * sizeof(struct df_inline_file));
    for (size_t i = 0; i + 1 < n; i++) {
        _cleanup_free_ char *s = xstrndup(args[i].value, args[i].len);
        hname = NULL;
        if (dockerfile_parse_heredoc(s, &hname, &fd, &expand, &chomp, NULL) == 1) {
            /* The body is the last heredoc of that name (BuildKit's lookup map). */
            const struct df_heredoc *body = NULL;
            for (size_t k = 0; k < c->node->n_heredocs; k++)
                if (strcmp(c->node->heredocs[k].name, hname) == 0)
                    body = &c->node->heredocs[k];
            struct df_inline_file *f = &cp->contents[cp->n_contents++];
            f->name = pool_adopt(c->pool, hname);
            f->expand = expand;
            f->chomp = chomp;
            f->fd = fd;
            if (body && chomp) {
                f->data = pool_adopt(c->pool,
                                     dockerfile_chomp_heredoc(body->content, body->content_len,
                                                              &f->len));
            } else {
                f->data = pool_strndup(c->pool, body ? body->content : "",
                                       body ? body->content_len : 0);
                f->len = body ? body->content_len : 0;
            }
            continue;
        }
        cp->srcs[cp->n_srcs++] = word_of(c, &args[i]);
    }
    return 0;
}

static bool valid_stage_name(const char *s)
{
    if (!(*s >= 'a' && *s <= 'z'))
        return false;
    for (s++; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' ||
              *s == '.'))
            return false;
    return true;
}

static int conv_from(struct conv *c, struct df_instruction *in, const struct arg *args, size_t n)
{
    struct df_from *f = &in->u.from;
    if (n == 3 && args[1].len == 2 && strncasecmp(args[1].value, "as", 2) == 0) {
        struct strbuf lb = STRBUF_INIT;
        go_to_lower(&lb, args[2].value, args[2].len);
        char *name = pool_adopt(c->pool, strbuf_detach(&lb, NULL));
        if (!valid_stage_name(name)) {
            struct strbuf q = STRBUF_INIT;
            dockerfile_go_quote(&q, args[2].value, args[2].len);
            int r = cerr(c, args[2].off, args[2].rawlen,
                         "invalid name for build stage: %s, name can't start with a number or "
                         "contain symbols",
                         q.buf);
            strbuf_release(&q);
            return r;
        }
        f->stage_name = name;
        f->as_keyword = word_of(c, &args[1]);
        f->name = word_of(c, &args[2]);
    } else if (n != 1) {
        return cerr_keyword(c, "%s", "FROM requires either one or three arguments");
    }
    static const struct flagdef defs[] = {{"platform", FL_STRING}};
    struct flagval v[1] = {0};
    if (parse_flags(c, defs, 1, v) < 0)
        return -1;
    f->platform = v[0].value;
    f->image = word_of(c, &args[0]);
    return 0;
}

static int conv_onbuild(struct conv *c, struct df_instruction *in, const struct arg *args,
                        size_t n)
{
    if (at_least_one(c, n) < 0 || no_flags(c) < 0)
        return -1;
    struct strbuf up = STRBUF_INIT;
    for (size_t i = 0; i < args[0].len; i++)
        strbuf_addc(&up, (char)((args[0].value[i] >= 'a' && args[0].value[i] <= 'z')
                                    ? args[0].value[i] - 32
                                    : args[0].value[i]));
    const char *t = up.buf ? up.buf : "";
    int r = 0;
    if (strcmp(t, "ONBUILD") == 0)
        r = cerr(c, args[0].off, args[0].rawlen,
                 "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
    else if (strcmp(t, "MAINTAINER") == 0 || strcmp(t, "FROM") == 0)
        r = cerr(c, args[0].off, args[0].rawlen, "%s isn't allowed as an ONBUILD trigger", t);
    strbuf_release(&up);
    if (r < 0)
        return -1;

    /* The original text without the leading ONBUILD, heredocs appended. */
    const char *o = c->node->original;
    size_t on = c->node->original_len;
    size_t i = utf8_space_prefix(o, on);
    if (on - i >= 7 && strncasecmp(o + i, "onbuild", 7) == 0) {
        i += 7;
        i += utf8_space_prefix(o + i, on - i);
    }
    struct strbuf e = STRBUF_INIT;
    strbuf_add(&e, o + i, on - i);
    for (size_t k = 0; k < c->node->n_heredocs; k++) {
        strbuf_addc(&e, '\n');
        strbuf_add(&e, c->node->heredocs[k].content, c->node->heredocs[k].content_len);
        strbuf_adds(&e, c->node->heredocs[k].name);
    }
    in->u.onbuild.expression = pool_adopt(c->pool, strbuf_detach(&e, NULL));
    return 0;
}

static int conv_run(struct conv *c, struct df_instruction *in, const struct arg *args, size_t n)
{
    static const struct flagdef defs[] = {
        {"mount", FL_STRINGS}, {"network", FL_STRING}, {"security", FL_STRING}};
    struct flagval v[3] = {0};
    if (parse_flags(c, defs, 3, v) < 0)
        return -1;
    struct df_run *run = &in->u.run;
    cmdline_of(c, args, n, c->node->json, &run->cmd);

    run->n_files = c->node->n_heredocs;
    run->files = pool_alloc(c->pool, (run->n_files + 1) * sizeof(struct df_inline_file));
    for (size_t k = 0; k < run->n_files; k++) {
        const struct df_heredoc *h = &c->node->heredocs[k];
        run->files[k] = (struct df_inline_file){
            .name = h->name, .data = h->content, .len = h->content_len,
            .expand = h->expand, .chomp = h->chomp, .fd = h->fd,
        };
    }

    if (v[1].used) {
        const char *net = v[1].value.text;
        run->network_set = true;
        if (strcmp(net, "default") == 0)
            run->network = DF_NETWORK_DEFAULT;
        else if (strcmp(net, "none") == 0)
            run->network = DF_NETWORK_NONE;
        else if (strcmp(net, "host") == 0)
            run->network = DF_NETWORK_HOST;
        else
            return cerr(c, v[1].value.off, v[1].value.len, "unsupported network mode \"%s\"", net);
    }
    if (v[2].used) {
        const char *sec = v[2].value.text;
        if (strcmp(sec, "sandbox") == 0)
            run->security = DF_SECURITY_SANDBOX;
        else if (strcmp(sec, "insecure") == 0)
            run->security = DF_SECURITY_INSECURE;
        else
            return cerr(c, v[2].value.off, v[2].value.len, "unsupported security mode \"%s\"", sec);
    }

    collect_strings(c, "mount", &run->mount_words, &run->n_mounts);
    run->mounts = pool_alloc(c->pool, (run->n_mounts + 1) * sizeof(struct df_mount));
    for (size_t k = 0; k < run->n_mounts; k++) {
        struct kiln_error *merr = NULL;
        struct df_mount *m = &run->mounts[k];
        if (df_mount_parse(run->mount_words[k].text, NULL, NULL, m, &merr) < 0) {
            int r = cerr(c, run->mount_words[k].off, run->mount_words[k].len, "--mount: %s",
                         merr->msg);
            kiln_error_free(&merr);
            run->n_mounts = k;
            return r;
        }
        /* The strings now belong to the file. */
        pool_adopt(c->pool, m->from);
        pool_adopt(c->pool, m->source);
        pool_adopt(c->pool, m->target);
        pool_adopt(c->pool, m->id);
        pool_adopt(c->pool, m->env);
        pool_adopt(c->pool, m->spec);
    }
    return 0;
}

static int conv_duration(struct conv *c, const struct flagval *v, const char *name, int64_t *ret)
{
    *ret = 0;
    if (!v->used || !*v->value.text)
        return 0;
    int64_t d;
    if (go_parse_duration(v->value.text, &d) < 0)
        return cerr(c, v->value.off, v->value.len, "invalid duration \"%s\" for --%s",
                    v->value.text, name);
    if (d != 0 && d < 1000000)
        return cerr(c, v->value.off, v->value.len, "--%s cannot be less than 1ms", name);
    *ret = d;
    return 0;
}

static int conv_healthcheck(struct conv *c, struct df_instruction *in, const struct arg *args,
                            size_t n)
{
    if (at_least_one(c, n) < 0)
        return -1;
    struct df_healthcheck *h = &in->u.healthcheck;
    struct strbuf up = STRBUF_INIT;
    for (size_t i = 0; i < args[0].len; i++) {
        char ch = args[0].value[i];
        strbuf_addc(&up, (char)((ch >= 'a' && ch <= 'z') ? ch - 32 : ch));
    }
    _cleanup_free_ char *typ = strbuf_detach(&up, NULL);
    if (strcmp(typ, "NONE") == 0) {
        /* BuildKit does not look at the flags of HEALTHCHECK NONE. */
        if (n != 1)
            return cerr(c, args[1].off, args[1].rawlen, "HEALTHCHECK NONE takes no arguments");
        h->none = true;
        return 0;
    }
    static const struct flagdef defs[] = {
        {"interval", FL_STRING},       {"timeout", FL_STRING}, {"start-period", FL_STRING},
        {"start-interval", FL_STRING}, {"retries", FL_STRING},
    };
    struct flagval v[5] = {0};
    if (parse_flags(c, defs, 5, v) < 0)
        return -1;
    if (strcmp(typ, "CMD") != 0) {
        struct strbuf q = STRBUF_INIT;
        dockerfile_go_quote(&q, typ, strlen(typ));
        int r = cerr(c, args[0].off, args[0].rawlen, "Unknown type %s in HEALTHCHECK (try CMD)",
                     q.buf);
        strbuf_release(&q);
        return r;
    }
    if (n < 2)
        return cerr(c, args[0].off, args[0].rawlen, "Missing command after HEALTHCHECK CMD");
    cmdline_of(c, args + 1, n - 1, c->node->json, &h->cmd);
    if (conv_duration(c, &v[0], "interval", &h->interval_ns) < 0 ||
        conv_duration(c, &v[1], "timeout", &h->timeout_ns) < 0 ||
        conv_duration(c, &v[2], "start-period", &h->start_period_ns) < 0 ||
        conv_duration(c, &v[3], "start-interval", &h->start_interval_ns) < 0)
        return -1;
    if (v[4].used && *v[4].value.text) {
        const char *s = v[4].value.text;
        char *end = NULL;
        errno = 0;
        long long r = strtoll(s, &end, 10);
        bool digits_only = true;
        for (const char *p = (*s == '+' || *s == '-') ? s + 1 : s; *p; p++)
            if (*p < '0' || *p > '9')
                digits_only = false;
        if (errno || *end || !digits_only || end == s || r > INT32_MAX || r < INT32_MIN)
            return cerr(c, v[4].value.off, v[4].value.len, "invalid value \"%s\" for --retries",
                        s);
        if (r < 0)
            return cerr(c, v[4].value.off, v[4].value.len, "--retries cannot be negative (%lld)",
                        r);
        h->retries = (int)r;
    }
    return 0;
}

static int convert(struct conv *c, struct df_instruction *in)
{
    const struct df_instr *node = c->node;
    _cleanup_free_ struct arg *args = NULL;
    size_t n = 0, cap = 0;
    collect_args(node, &args, &n, &cap);

    in->kind = node->kind;
    in->node = node;
    switch (node->kind) {
    case DF_ENV:
    case DF_LABEL:
        return conv_kvs(c, in, args, n);
    case DF_MAINTAINER:
    case DF_USER:
    case DF_WORKDIR:
        if (exactly_one(c, n) < 0 || no_flags(c) < 0)
            return -1;
        in->u.word = word_of(c, &args[0]);
        return 0;
    case DF_STOPSIGNAL:
        /* BuildKit does not look at the flags of STOPSIGNAL. */
        if (exactly_one(c, n) < 0)
            return -1;
        in->u.word = word_of(c, &args[0]);
        return 0;
    case DF_ADD:
    case DF_COPY:
        return conv_copy(c, in, args, n);
    case DF_FROM:
        return conv_from(c, in, args, n);
    case DF_ONBUILD:
        return conv_onbuild(c, in, args, n);
    case DF_RUN:
        return conv_run(c, in, args, n);
    case DF_CMD:
    case DF_ENTRYPOINT:
        if (no_flags(c) < 0)
            return -1;
        cmdline_of(c, args, n, node->json, &in->u.cmd);
        return 0;
    case DF_HEALTHCHECK:
        return conv_healthcheck(c, in, args, n);
    case DF_EXPOSE:
    case DF_VOLUME:
        if (at_least_one(c, n) < 0 || no_flags(c) < 0)
            return -1;
        in->u.words.v = pool_alloc(c->pool, (n + 1) * sizeof(struct df_word));
        in->u.words.n = n;
        for (size_t i = 0; i < n; i++) {
            in->u.words.v[i] = word_of(c, &args[i]);
            if (node->kind == DF_VOLUME) {
                size_t lead = utf8_space_prefix(args[i].value, args[i].len);
                size_t len = utf8_trim_right_len(args[i].value + lead, args[i].len - lead);
                if (len == 0)
                    return cerr(c, args[i].off, args[i].rawlen,
                                "VOLUME specified can not be an empty string");
                in->u.words.v[i].text = pool_strndup(c->pool, args[i].value + lead, len);
            }
        }
        return 0;
    case DF_ARG:
        if (at_least_one(c, n) < 0 || no_flags(c) < 0)
            return -1;
        in->u.args.v = pool_alloc(c->pool, (n + 1) * sizeof(struct df_argdef));
        in->u.args.n = n;
        for (size_t i = 0; i < n; i++) {
            struct df_argdef *a = &in->u.args.v[i];
            const char *eq = memchr(args[i].value, '=', args[i].len);
            if (!eq) {
                a->name = word_of(c, &args[i]);
                continue;
            }
            size_t kl = (size_t)(eq - args[i].value);
            if (kl == 0)
                return cerr(c, args[i].off, args[i].rawlen, "ARG names can not be blank");
            a->name = (struct df_word){pool_strndup(c->pool, args[i].value, kl), args[i].off,
                                       (uint32_t)kl};
            a->value = (struct df_word){pool_strndup(c->pool, eq + 1, args[i].len - kl - 1),
                                        args[i].off + (uint32_t)kl + 1,
                                        args[i].rawlen > kl + 1 ? args[i].rawlen - (uint32_t)kl - 1
                                                                : 0};
        }
        return 0;
    case DF_SHELL:
        if (no_flags(c) < 0)
            return -1;
        if (n == 0)
            return cerr_keyword(c, "%s requires at least one argument", "SHELL");
        if (!node->json)
            return cerr(c, args[0].off, args[0].rawlen,
                        "SHELL requires the arguments to be in JSON form");
        cmdline_of(c, args, n, true, &in->u.shell);
        in->u.shell.shell_form = false;
        return 0;
    default: {
        const char *names[DF_KIND_COUNT];
        for (int k = 1; k < DF_KIND_COUNT; k++)
            names[k - 1] = df_kind_name((enum df_kind)k);
        const char *s = df_suggest(node->keyword, names, DF_KIND_COUNT - 1);
        if (s)
            return cerr(c, node->keyword_off, (uint32_t)strlen(node->keyword),
                        "unknown instruction: %s (did you mean %s?)", node->keyword, s);
        return cerr(c, node->keyword_off, (uint32_t)strlen(node->keyword),
                    "unknown instruction: %s", node->keyword);
    }
    }
}

int df_file_from_ast(const struct df_ast *ast, struct df_file **ret, struct kiln_error **err)
{
    struct df_file *f = xcalloc(1, sizeof(*f));
    f->ast = ast;
    f->pool = pool_new();
    f->all = pool_alloc(f->pool, (ast->n_instrs + 1) * sizeof(struct df_instruction));
    f->meta_args = pool_alloc(f->pool, (ast->n_instrs + 1) * sizeof(struct df_instruction *));
    size_t cap_stages = 0;
    struct df_stage *stages = NULL;
    /* How many instructions each stage has, to size its array once. */
    size_t n_from = 0;
    for (size_t i = 0; i < ast->n_instrs; i++)
        if (ast->instrs[i].kind == DF_FROM)
            n_from++;
    size_t *stage_len = pool_alloc(f->pool, (n_from + 1) * sizeof(size_t));
    for (size_t i = 0, s = 0; i < ast->n_instrs; i++) {
        if (ast->instrs[i].kind == DF_FROM)
            s++;
        else if (s > 0)
            stage_len[s - 1]++;
    }

    for (size_t i = 0; i < ast->n_instrs; i++) {
        struct conv c = {.ast = ast, .pool = f->pool, .node = &ast->instrs[i], .err = err};
        struct df_instruction *in = &f->all[f->n_all];
        if (convert(&c, in) < 0)
            goto fail;
        f->n_all++;
        if (in->kind == DF_FROM) {
            XGROW(stages, cap_stages, f->n_stages + 1);
            struct df_stage *st = &stages[f->n_stages];
            memset(st, 0, sizeof(*st));
            st->index = f->n_stages++;
            st->from = in;
            st->cmds = pool_alloc(f->pool, (stage_len[st->index] + 1) * sizeof(*st->cmds));
            continue;
        }
        if (f->n_stages == 0) {
            if (in->kind == DF_ARG) {
                f->meta_args[f->n_meta_args++] = in;
                continue;
            }
            dockerfile_error_at(ast, c.node, c.node->keyword_off,
                                (uint32_t)strlen(c.node->keyword), err,
                                "%s before the first FROM: no build stage in current context",
                                c.node->keyword);
            goto fail;
        }
        struct df_stage *st = &stages[f->n_stages - 1];
        st->cmds[st->n_cmds++] = in;
    }
    f->stages = pool_adopt(f->pool, stages);
    *ret = f;
    return 0;
fail:
    free(stages);
    df_file_free(f);
    return -1;
}

void df_file_free(struct df_file *f)
{
    if (!f)
        return;
    pool_free(f->pool);
    free(f);
}

/* ---- expansion --------------------------------------------------------------------- */

struct xctx {
    const struct df_ast *ast;
    const struct df_instruction *in;
    struct df_pool *pool;
    df_expand_fn fn;
    void *ctx;
    struct kiln_error **err;
};

static int expand_one(struct xctx *x, struct df_word *w, enum df_expand_how how)
{
    if (!w->text)
        return 0;
    _cleanup_strv_ char **out = NULL;
    struct kiln_error *e = NULL;
    if (x->fn(x->ctx, w->text, how, &out, &e) < 0) {
        dockerfile_error_at(x->ast, x->in->node, w->off, w->len, x->err, "%s",
                            e ? e->msg : "expansion failed");
        kiln_error_free(&e);
        return -1;
    }
    w->text = pool_strdup(x->pool, out && out[0] ? out[0] : "");
    return 0;
}

static int expand_words(struct xctx *x, struct df_word **v, size_t *n, enum df_expand_how how)
{
    struct df_word *copy = pool_alloc(x->pool, (*n + 1) * sizeof(struct df_word));
    size_t m = 0, cap = *n + 1;
    for (size_t i = 0; i < *n; i++) {
        struct df_word w = (*v)[i];
        if (how != DF_EXPAND_WORDS) {
            if (expand_one(x, &w, how) < 0)
                return -1;
            copy[m++] = w;
            continue;
        }
        _cleanup_strv_ char **out = NULL;
        struct kiln_error *e = NULL;
        if (x->fn(x->ctx, w.text, how, &out, &e) < 0) {
            dockerfile_error_at(x->ast, x->in->node, w.off, w.len, x->err, "%s",
                                e ? e->msg : "expansion failed");
            kiln_error_free(&e);
            return -1;
        }
        for (size_t k = 0; out && out[k]; k++) {
            if (m + 1 >= cap) {
                struct df_word *bigger = pool_alloc(x->pool, 2 * cap * sizeof(struct df_word));
                memcpy(bigger, copy, m * sizeof(struct df_word));
                copy = bigger;
                cap *= 2;
            }
            copy[m++] = (struct df_word){pool_strdup(x->pool, out[k]), w.off, w.len};
        }
    }
    *v = copy;
    *n = m;
    return 0;
}

int df_instruction_expand(const struct df_ast *ast, const struct df_instruction *in,
                          df_expand_fn fn, void *ctx, struct df_instruction **ret,
                          struct kiln_error **err)
{
    struct df_instruction *out = xcalloc(1, sizeof(*out));
    *out = *in;
    out->own_pool = pool_new();
    struct xctx x = {.ast = ast, .in = in, .pool = out->own_pool, .fn = fn, .ctx = ctx, .err = err};
    int r = 0;
    switch (in->kind) {
    case DF_ENV:
    case DF_LABEL: {
        struct df_kv *kv = pool_alloc(x.pool, (in->u.kvs.n + 1) * sizeof(*kv));
        memcpy(kv, in->u.kvs.v, in->u.kvs.n * sizeof(*kv));
        out->u.kvs.v = kv;
        for (size_t i = 0; r == 0 && i < in->u.kvs.n; i++)
            if (expand_one(&x, &kv[i].key, DF_EXPAND_WORD) < 0 ||
                expand_one(&x, &kv[i].value, DF_EXPAND_WORD) < 0)
                r = -1;
        break;
    }
    case DF_ADD:
    case DF_COPY: {
        struct df_copy *cp = &out->u.copy;
        if (expand_words(&x, &cp->srcs, &cp->n_srcs, DF_EXPAND_WORD) < 0 ||
            expand_one(&x, &cp->dest, DF_EXPAND_WORD) < 0 ||
            expand_one(&x, &cp->chown, DF_EXPAND_WORD) < 0 ||
            expand_one(&x, &cp->chmod, DF_EXPAND_WORD) < 0 ||
            expand_one(&x, &cp->checksum, DF_EXPAND_WORD) < 0 ||
            expand_words(&x, &cp->excludes, &cp->n_excludes, DF_EXPAND_WORD) < 0) {
            r = -1;
            break;
        }
        struct df_inline_file *files = pool_alloc(x.pool, (cp->n_contents + 1) * sizeof(*files));
        memcpy(files, in->u.copy.contents, cp->n_contents * sizeof(*files));
        cp->contents = files;
        for (size_t i = 0; i < cp->n_contents; i++) {
            if (!files[i].expand)
                continue;
            struct df_word w = {files[i].data, DF_NOPOS, 0};
            if (expand_one(&x, &w, DF_EXPAND_RAW) < 0) {
                r = -1;
                break;
            }
            files[i].data = w.text;
            files[i].len = strlen(w.text);
        }
        break;
    }
    case DF_RUN: {
        struct df_run *run = &out->u.run;
        struct df_mount *m = pool_alloc(x.pool, (run->n_mounts + 1) * sizeof(*m));
        run->mounts = m;
        for (size_t i = 0; i < run->n_mounts; i++) {
            struct kiln_error *e = NULL;
            if (df_mount_parse(in->u.run.mounts[i].spec, fn, ctx, &m[i], &e) < 0) {
                dockerfile_error_at(ast, in->node, run->mount_words[i].off,
                                    run->mount_words[i].len, err, "--mount: %s", e->msg);
                kiln_error_free(&e);
                run->n_mounts = i;
                r = -1;
                break;
            }
            pool_adopt(x.pool, m[i].from);
            pool_adopt(x.pool, m[i].source);
            pool_adopt(x.pool, m[i].target);
            pool_adopt(x.pool, m[i].id);
            pool_adopt(x.pool, m[i].env);
            pool_adopt(x.pool, m[i].spec);
        }
        break;
    }
    case DF_EXPOSE:
        r = expand_words(&x, &out->u.words.v, &out->u.words.n, DF_EXPAND_WORDS);
        break;
    case DF_VOLUME:
        r = expand_words(&x, &out->u.words.v, &out->u.words.n, DF_EXPAND_WORD);
        break;
    case DF_USER:
    case DF_WORKDIR:
    case DF_STOPSIGNAL:
        r = expand_one(&x, &out->u.word, DF_EXPAND_WORD);
        break;
    default:
        break;
    }
    if (r < 0) {
        df_instruction_free(out);
        return -1;
    }
    *ret = out;
    return 0;
}

void df_instruction_free(struct df_instruction *in)
{
    if (!in || !in->own_pool)
        return;
    pool_free(in->own_pool);
    free(in);
}

/* ---- RUN heredocs ------------------------------------------------------------------- */

enum df_run_script df_run_script(const struct df_run *run, char **ret_text, const char **ret_name)
{
    *ret_text = NULL;
    if (ret_name)
        *ret_name = NULL;
    if (run->n_files == 0)
        return DF_RUN_SCRIPT_NONE;
    const char *cmd = run->cmd.argc > 0 ? run->cmd.argv[0] : "";
    char *name = NULL;
    uint32_t fd;
    bool expand, chomp;
    if (run->cmd.argc == 1 && dockerfile_parse_heredoc(cmd, &name, &fd, &expand, &chomp, NULL) == 1) {
        free(name);
        const struct df_inline_file *f = &run->files[0];
        size_t len = f->len;
        char *data = f->chomp ? dockerfile_chomp_heredoc(f->data, f->len, &len)
                              : xstrndup(f->data, f->len);
        *ret_text = data;
        if (len >= 2 && data[0] == '#' && data[1] == '!') {
            if (ret_name)
                *ret_name = f->name;
            return DF_RUN_SCRIPT_FILE;
        }
        return DF_RUN_SCRIPT_SHELL;
    }
    struct strbuf full = STRBUF_INIT;
    strbuf_adds(&full, cmd);
    for (size_t i = 0; i < run->n_files; i++) {
        strbuf_addc(&full, '\n');
        strbuf_add(&full, run->files[i].data, run->files[i].len);
        strbuf_adds(&full, run->files[i].name);
    }
    *ret_text = strbuf_detach(&full, NULL);
    return DF_RUN_SCRIPT_FULL;
}

/* ---- Go's time.ParseDuration ------------------------------------------------------- */

int go_parse_duration(const char *s, int64_t *ret)
{
    static const struct {
        const char *name;
        uint64_t ns;
    } units[] = {
        {"ns", 1},         {"us", 1000},          {"\xc2\xb5s", 1000}, /* µs (micro sign) */
        {"\xce\xbcs", 1000}, /* μs (Greek mu) */ {"ms", 1000000}, {"s", 1000000000ull},
        {"m", 60000000000ull}, {"h", 3600000000000ull},
    };
    const uint64_t max = (uint64_t)1 << 63;
    uint64_t d = 0;
    bool neg = false;
    if (*s == '-' || *s == '+') {
        neg = *s == '-';
        s++;
    }
    if (strcmp(s, "0") == 0) {
        *ret = 0;
        return 0;
    }
    if (!*s)
        return -1;
    while (*s) {
        if (!(*s == '.' || (*s >= '0' && *s <= '9')))
            return -1;
        uint64_t v = 0, f = 0;
        double scale = 1;
        const char *start = s;
        while (*s >= '0' && *s <= '9') {
            if (v > (max - 1) / 10)
                return -1;
            v = v * 10 + (uint64_t)(*s - '0');
            if (v > max)
                return -1;
            s++;
        }
        bool pre = s != start;
        bool post = false;
        if (*s == '.') {
            s++;
            const char *fs = s;
            bool overflow = false;
            while (*s >= '0' && *s <= '9') {
                if (!overflow) {
                    if (f > (max - 1) / 10) {
                        overflow = true;
                    } else {
                        uint64_t y = f * 10 + (uint64_t)(*s - '0');
                        if (y > max)
                            overflow = true;
                        else {
                            f = y;
                            scale *= 10;
                        }
                    }
                }
                s++;
            }
            post = s != fs;
        }
        if (!pre && !post)
            return -1;
        const char *us = s;
        while (*s && *s != '.' && !(*s >= '0' && *s <= '9'))
            s++;
        size_t ul = (size_t)(s - us);
        if (ul == 0)
            return -1;
        uint64_t unit = 0;
        for (size_t k = 0; k < ARRAY_SIZE(units); k++)
            if (strlen(units[k].name) == ul && memcmp(units[k].name, us, ul) == 0)
                unit = units[k].ns;
        if (!unit)
            return -1;
        if (v > max / unit)
            return -1;
        v *= unit;
        if (f > 0) {
            v += (uint64_t)((double)f * ((double)unit / scale));
            if (v > max)
                return -1;
        }
        d += v;
        if (d > max)
            return -1;
    }
    if (neg) {
        *ret = d == max ? INT64_MIN : -(int64_t)d;
        return 0;
    }
    if (d > max - 1)
        return -1;
    *ret = (int64_t)d;
    return 0;
}
