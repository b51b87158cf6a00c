/* Stage planning: ARG scoping for FROM, base and dependency resolution,
 * --target pruning, build order.  See plan.h for the rules. */
#include "dockerfile/plan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>

#include "dockerfile/dockerfile.h"
#include "dockerfile/internal.h"
#include "lib/cleanup.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

static const char *const proxy_args[] = {
    "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
    "ftp_proxy",  "NO_PROXY",   "no_proxy",    "ALL_PROXY",   "all_proxy",
};

static const char *const platform_args[] = {
    "TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT",
    "BUILDPLATFORM",  "BUILDOS",  "BUILDARCH",  "BUILDVARIANT",
};

bool plan_is_proxy_arg(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(proxy_args); i++)
        if (strcmp(name, proxy_args[i]) == 0)
            return true;
    return false;
}

bool plan_is_platform_arg(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(platform_args); i++)
        if (strcmp(name, platform_args[i]) == 0)
            return true;
    return false;
}

/* ---- platforms ------------------------------------------------------------------ */

void plan_platform_clear(struct plan_platform *p)
{
    free(p->os);
    free(p->arch);
    free(p->variant);
    memset(p, 0, sizeof(*p));
}

void plan_host_platform(struct plan_platform *ret)
{
    struct utsname u;
    const char *arch = "amd64", *variant = "";
    if (uname(&u) == 0) {
        const char *m = u.machine;
        if (strcmp(m, "x86_64") == 0 || strcmp(m, "amd64") == 0)
            arch = "amd64";
        else if (strcmp(m, "aarch64") == 0 || strcmp(m, "arm64") == 0)
            arch = "arm64";
        else if (strncmp(m, "armv7", 5) == 0)
            arch = "arm", variant = "v7";
        else if (strncmp(m, "armv6", 5) == 0)
            arch = "arm", variant = "v6";
        else if (strncmp(m, "armv5", 5) == 0)
            arch = "arm", variant = "v5";
        else if (strcmp(m, "i386") == 0 || strcmp(m, "i486") == 0 || strcmp(m, "i586") == 0 ||
                 strcmp(m, "i686") == 0)
            arch = "386";
        else
            arch = m; /* ppc64le, s390x, riscv64, mips64 ... keep the kernel's name */
    }
    ret->os = xstrdup("linux");
    ret->arch = xstrdup(arch);
    ret->variant = xstrdup(variant);
}

/* "os/arch[/variant]", normalized a little the way containerd does. */
static int parse_platform(const char *s, struct plan_platform *ret)
{
    _cleanup_free_ char *copy = xstrdup(s);
    char *parts[4] = {0};
    size_t n = 0;
    for (char *tok = copy, *slash; tok && n < 4; tok = slash ? slash + 1 : NULL) {
        slash = strchr(tok, '/');
        if (slash)
            *slash = '\0';
        parts[n++] = tok;
    }
    if (n < 2 || n > 3 || !*parts[0] || !*parts[1] || (n == 3 && !*parts[2]))
        return -1;
    for (size_t i = 0; i < n; i++)
        for (char *c = parts[i]; *c; c++) {
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c + 32);
            if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == '-' ||
                  *c == '.'))
                return -1;
        }
    const char *arch = parts[1], *variant = n == 3 ? parts[2] : "";
    if (strcmp(arch, "x86_64") == 0 || strcmp(arch, "x86-64") == 0)
        arch = "amd64";
    else if (strcmp(arch, "aarch64") == 0)
        arch = "arm64";
    else if (strcmp(arch, "i386") == 0)
        arch = "386";
    if (strcmp(arch, "arm64") == 0 && (strcmp(variant, "v8") == 0 || strcmp(variant, "8") == 0))
        variant = "";
    if (strcmp(arch, "amd64") == 0 && strcmp(variant, "v1") == 0)
        variant = "";
    ret->os = xstrdup(parts[0]);
    ret->arch = xstrdup(arch);
    ret->variant = xstrdup(variant);
    return 0;
}

static char *platform_string(const struct plan_platform *p)
{
    if (p->variant && *p->variant)
        return xasprintf("%s/%s/%s", p->os, p->arch, p->variant);
    return xasprintf("%s/%s", p->os, p->arch);
}

/* ---- image references -------------------------------------------------------------- */

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/* path-component: [a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)* */
static bool valid_path_component(const char *s, size_t n)
{
    size_t i = 0;
    if (n == 0 || !is_lower_alnum(s[0]))
        return false;
    while (i < n) {
        while (i < n && is_lower_alnum(s[i]))
            i++;
        if (i == n)
            return true;
        size_t sep = i;
        if (s[i] == '.')
            i++;
        else if (s[i] == '_')
            i += (i + 1 < n && s[i + 1] == '_') ? 2 : 1;
        else if (s[i] == '-')
            while (i < n && s[i] == '-')
                i++;
        else
            return false;
        if (i == sep || i >= n || !is_lower_alnum(s[i]))
            return false;
    }
    return true;
}

/* host[:port], host = domain-component(.domain-component)* | [ipv6] */
static bool valid_domain(const char *s, size_t n)
{
    size_t i = 0;
    if (n > 0 && s[0] == '[') {
        i = 1;
        while (i < n && (s[i] == ':' || (s[i] >= '0' && s[i] <= '9') ||
                         ((s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'f')))
            i++;
        if (i == 1 || i >= n || s[i] != ']')
            return false;
        i++;
    } else {
        for (;;) {
            size_t start = i;
            while (i < n && (is_alnum(s[i]) || s[i] == '-'))
                i++;
            if (i == start || !is_alnum(s[start]) || !is_alnum(s[i - 1]))
                return false;
            if (i < n && s[i] == '.') {
                i++;
                continue;
            }
            break;
        }
    }
    if (i < n && s[i] == ':') {
        size_t start = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == start)
            return false;
    }
    return i == n;
}

bool plan_valid_image_ref(const char *ref)
{
    size_t len = strlen(ref);
    if (len == 0)
        return false;
    if (len == 64) {
        size_t k = 0;
        while (k < 64 && ((ref[k] >= '0' && ref[k] <= '9') || (ref[k] >= 'a' && ref[k] <= 'f')))
            k++;
        if (k == 64)
            return false;
    }
    const char *at = strchr(ref, '@');
    size_t nt_len = at ? (size_t)(at - ref) : len;
    if (at) {
        /* algorithm:hex, a known algorithm with its length, lower-case hex */
        const char *d = at + 1;
        const char *colon = strchr(d, ':');
        if (!colon)
            return false;
        size_t al = (size_t)(colon - d);
        const char *hex = colon + 1;
        size_t hl = strlen(hex);
        size_t want = 0;
        if (al == 6 && memcmp(d, "sha256", 6) == 0)
            want = 64;
        else if (al == 6 && memcmp(d, "sha384", 6) == 0)
            want = 96;
        else if (al == 6 && memcmp(d, "sha512", 6) == 0)
            want = 128;
        if (!want || hl != want)
            return false;
        for (size_t k = 0; k < hl; k++)
            if (!((hex[k] >= '0' && hex[k] <= '9') || (hex[k] >= 'a' && hex[k] <= 'f')))
                return false;
    }
    /* A tag is after the last ':' that follows the last '/'. */
    const char *last_slash = NULL;
    for (size_t k = 0; k < nt_len; k++)
        if (ref[k] == '/')
            last_slash = ref + k;
    const char *tag = NULL;
    for (const char *p = last_slash ? last_slash : ref; p < ref + nt_len; p++)
        if (*p == ':')
            tag = p;
    size_t name_len = tag ? (size_t)(tag - ref) : nt_len;
    if (tag) {
        const char *t = tag + 1;
        size_t tl = (size_t)(ref + nt_len - t);
        if (tl == 0 || tl > 128 || !(is_alnum(t[0]) || t[0] == '_'))
            return false;
        for (size_t k = 1; k < tl; k++)
            if (!(is_alnum(t[k]) || t[k] == '_' || t[k] == '.' || t[k] == '-'))
                return false;
    }
    /* The domain: the first component when it has '.' or ':', is localhost,
     * or has upper case (splitDockerDomain). */
    const char *slash = memchr(ref, '/', name_len);
    const char *path = ref;
    size_t path_len = name_len;
    size_t full_len = 0;
    if (slash) {
        size_t dl = (size_t)(slash - ref);
        bool is_domain = memchr(ref, '.', dl) || memchr(ref, ':', dl) ||
                         (dl == 9 && memcmp(ref, "localhost", 9) == 0);
        for (size_t k = 0; k < dl && !is_domain; k++)
            if (ref[k] >= 'A' && ref[k] <= 'Z')
                is_domain = true;
        if (is_domain) {
            if (!valid_domain(ref, dl))
                return false;
            path = slash + 1;
            path_len = name_len - dl - 1;
            full_len = name_len;
        }
    }
    if (!full_len)
        full_len = strlen("docker.io/") + (memchr(path, '/', path_len) ? 0 : strlen("library/")) +
                   path_len;
    if (full_len > 255)
        return false;
    for (size_t i = 0; i < path_len;) {
        const char *c = memchr(path + i, '/', path_len - i);
        size_t cl = c ? (size_t)(c - (path + i)) : path_len - i;
        if (!valid_path_component(path + i, cl))
            return false;
        i += cl + 1;
        if (c && i == path_len)
            return false;
    }
    return true;
}

/* ---- planning ----------------------------------------------------------------------- */

struct planner {
    struct plan *p;
    bool lenient;
    const struct df_ast *ast;
    char *const *contexts;
    struct kiln_error **err;
};

static void env_set(char ***env, const char *k, const char *v)
{
    strv_push_take(env, xasprintf("%s=%s", k, v));
}

const char *plan_build_arg(const struct plan *p, const char *name)
{
    size_t nl = strlen(name);
    const char *found = NULL;
    for (size_t i = 0; p->build_args && p->build_args[i]; i++)
        if (strncmp(p->build_args[i], name, nl) == 0 && p->build_args[i][nl] == '=')
            found = p->build_args[i] + nl + 1;
    return found;
}

static const char *env_lookup(char *const *env, const char *name)
{
    size_t nl = strlen(name);
    const char *found = NULL;
    for (size_t i = 0; env && env[i]; i++)
        if (strncmp(env[i], name, nl) == 0 && env[i][nl] == '=')
            found = env[i] + nl + 1;
    return found;
}

static struct expand_env env_of(char *const *v)
{
    return (struct expand_env){.vars = v, .n_vars = strv_len(v)};
}

static int expand_at(struct planner *pl, const struct df_instruction *in, const struct df_word *w,
                     char **ret, struct expand_matches *m)
{
    struct expand_env env = env_of(pl->p->global_env);
    struct expand_opts o = {.escape = pl->p->escape};
    struct kiln_error *e = NULL;
    if (expand_word(w->text, &env, &o, ret, m, &e) < 0) {
        dockerfile_error_at(pl->ast, in->node, w->off, w->len, pl->err, "%s", e->msg);
        kiln_error_free(&e);
        return -1;
    }
    return 0;
}

int plan_arg_value(const struct plan *p, const struct df_instruction *arg_instr,
                   const struct df_argdef *a, const struct expand_env *env, char **ret_value,
                   struct expand_matches *ret_matches, struct kiln_error **err)
{
    *ret_value = NULL;
    const char *bv = plan_build_arg(p, a->name.text);
    if (bv) {
        *ret_value = xstrdup(bv);
        return 0;
    }
    if (a->value.text) {
        struct expand_opts o = {.escape = p->escape};
        struct kiln_error *e = NULL;
        if (expand_word(a->value.text, env, &o, ret_value, ret_matches, &e) < 0) {
            dockerfile_error_at(p->file->ast, arg_instr->node, a->value.off, a->value.len, err,
                                "%s", e->msg);
            kiln_error_free(&e);
            return -1;
        }
        return 0;
    }
    const char *g = env_lookup(p->global_env, a->name.text);
    if (g && (strv_contains(p->global_names, a->name.text) || plan_is_platform_arg(a->name.text)))
        *ret_value = xstrdup(g);
    return 0;
}

static bool is_context(struct planner *pl, const char *name)
{
    return pl->contexts && strv_contains(pl->contexts, name);
}

/* Stage names, sorted (name, then index), for lookups in O(log n). */
static int cmp_named(const void *a, const void *b, void *arg)
{
    const struct plan *p = arg;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    int c = strcmp(p->file->stages[x].from->u.from.stage_name,
                   p->file->stages[y].from->u.from.stage_name);
    if (c)
        return c;
    return x < y ? -1 : x > y;
}

static void build_name_index(struct plan *p)
{
    p->name_index = xcalloc(p->n_stages + 1, sizeof(size_t));
    for (size_t i = 0; i < p->n_stages; i++)
        if (p->file->stages[i].from->u.from.stage_name)
            p->name_index[p->n_named++] = i;
    qsort_r(p->name_index, p->n_named, sizeof(size_t), cmp_named, p);
}

/* A stage by name (case-insensitive) among stages [0, limit); the last such. */
bool plan_find_stage(const struct plan *p, const char *name, size_t limit, size_t *ret)
{
    struct strbuf lb = STRBUF_INIT;
    go_to_lower(&lb, name, strlen(name));
    const char *key = lb.buf ? lb.buf : "";
    size_t lo = 0, hi = p->n_named;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(p->file->stages[p->name_index[mid]].from->u.from.stage_name, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    bool found = false;
    for (size_t k = lo; k < p->n_named; k++) {
        size_t idx = p->name_index[k];
        if (strcmp(p->file->stages[idx].from->u.from.stage_name, key) != 0 || idx >= limit)
            break;
        *ret = idx;
        found = true;
    }
    strbuf_release(&lb);
    return found;
}

/* The first stage (in file order) whose name an earlier stage has. */
static bool first_duplicate(const struct plan *p, size_t *ret_stage, size_t *ret_first)
{
    bool found = false;
    for (size_t k = 1; k < p->n_named; k++) {
        size_t a = p->name_index[k - 1], b = p->name_index[k];
        if (strcmp(p->file->stages[a].from->u.from.stage_name,
                   p->file->stages[b].from->u.from.stage_name) != 0)
            continue;
        /* b is the second of its group only when the one before a differs. */
        if (k >= 2 && strcmp(p->file->stages[p->name_index[k - 2]].from->u.from.stage_name,
                             p->file->stages[a].from->u.from.stage_name) == 0)
            continue;
        if (!found || b < *ret_stage) {
            *ret_stage = b;
            *ret_first = a;
            found = true;
        }
    }
    return found;
}

static void add_ref(struct plan_stage *st, enum plan_ref_kind kind, size_t stage, const char *name,
                    const struct df_instruction *by)
{
    st->refs = xreallocarray(st->refs, st->n_refs + 1, sizeof(*st->refs));
    st->refs[st->n_refs++] = (struct plan_ref){kind, stage, name, by};
    if (kind != PLAN_REF_STAGE)
        return;
    for (size_t i = 0; i < st->n_deps; i++)
        if (st->deps[i] == stage)
            return;
    st->deps = xreallocarray(st->deps, st->n_deps + 1, sizeof(*st->deps));
    st->deps[st->n_deps++] = stage;
}

/* Go's strconv.Atoi for a stage index. */
static bool parse_index(const char *s, long *ret)
{
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (!*p)
        return false;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9')
            return false;
    errno = 0;
    long v = strtol(s, NULL, 10);
    if (errno)
        return false;
    *ret = v;
    return true;
}

static int resolve_copy_from(struct planner *pl, struct plan_stage *st,
                             const struct df_instruction *in)
{
    const struct df_word *w = &in->u.copy.from;
    /* A variable (or a quote or an escape) would need expanding: refused. */
    struct expand_env empty = {0};
    struct expand_opts o = {.escape = pl->p->escape};
    _cleanup_free_ char *out = NULL;
    struct kiln_error *e = NULL;
    int r = expand_word(w->text, &empty, &o, &out, NULL, &e);
    kiln_error_free(&e);
    if (r < 0 || strcmp(out, w->text) != 0)
        return dockerfile_error_at(pl->ast, in->node, w->off, w->len, pl->err,
                                   "variable expansion is not supported for --from, define a new "
                                   "stage with FROM using ARG from global scope as a workaround");
    long idx;
    size_t s;
    if (parse_index(w->text, &idx)) {
        if (idx < 0 || (size_t)idx >= pl->p->n_stages)
            return dockerfile_error_at(pl->ast, in->node, w->off, w->len, pl->err,
                                       "invalid stage index %ld (the Dockerfile has %zu stages)",
                                       idx, pl->p->n_stages);
        add_ref(st, PLAN_REF_STAGE, (size_t)idx, w->text, in);
    } else if (plan_find_stage(pl->p, w->text, pl->p->n_stages, &s)) {
        add_ref(st, PLAN_REF_STAGE, s, w->text, in);
    } else if (is_context(pl, w->text)) {
        add_ref(st, PLAN_REF_CONTEXT, 0, w->text, in);
    } else if (!pl->lenient && !plan_valid_image_ref(w->text)) {
        return dockerfile_error_at(pl->ast, in->node, w->off, w->len, pl->err,
                                   "invalid --from value \"%s\": not a stage of this Dockerfile "
                                   "and not a valid image reference",
                                   w->text);
    } else {
        add_ref(st, PLAN_REF_IMAGE, 0, w->text, in);
    }
    return 0;
}

static int resolve_mounts(struct planner *pl, struct plan_stage *st,
                          const struct df_instruction *in)
{
    const struct df_run *run = &in->u.run;
    for (size_t k = 0; k < run->n_mounts; k++) {
        const char *from = run->mounts[k].from;
        size_t s;
        if (!from || !*from)
            continue;
        if (plan_find_stage(pl->p, from, pl->p->n_stages, &s))
            add_ref(st, PLAN_REF_STAGE, s, from, in);
        else if (is_context(pl, from))
            add_ref(st, PLAN_REF_CONTEXT, 0, from, in);
        else if (!pl->lenient && !plan_valid_image_ref(from))
            return dockerfile_error_at(pl->ast, in->node, run->mount_words[k].off,
                                       run->mount_words[k].len, pl->err,
                                       "invalid mount from \"%s\": not a stage of this Dockerfile "
                                       "and not a valid image reference",
                                       from);
        else
            add_ref(st, PLAN_REF_IMAGE, 0, from, in);
    }
    return 0;
}

static int global_args(struct planner *pl)
{
    struct plan *p = pl->p;
    const struct df_file *f = p->file;
    for (size_t i = 0; i < f->n_meta_args; i++) {
        const struct df_instruction *in = f->meta_args[i];
        for (size_t k = 0; k < in->u.args.n; k++) {
            const struct df_argdef *a = &in->u.args.v[k];
            strv_push(&p->global_names, a->name.text);
            const char *bv = plan_build_arg(p, a->name.text);
            if (bv) {
                env_set(&p->global_env, a->name.text, bv);
                continue;
            }
            if (!a->value.text)
                continue;
            _cleanup_free_ char *v = NULL;
            if (expand_at(pl, in, &a->value, &v, NULL) < 0)
                return -1;
            env_set(&p->global_env, a->name.text, v);
        }
    }
    return 0;
}

static int resolve_stages(struct planner *pl)
{
    struct plan *p = pl->p;
    const struct df_file *f = p->file;
    build_name_index(p);
    size_t dup_stage = 0, dup_first = 0;
    bool has_dup = first_duplicate(p, &dup_stage, &dup_first);
    for (size_t i = 0; i < p->n_stages; i++) {
        struct plan_stage *st = &p->stages[i];
        const struct df_instruction *from = f->stages[i].from;
        const struct df_from *fr = &from->u.from;
        st->stage = &f->stages[i];
        st->index = i;
        st->name = fr->stage_name;

        if (has_dup && i == dup_stage)
            return dockerfile_error_at(
                pl->ast, from->node, fr->name.off, fr->name.len, pl->err,
                "duplicate stage name \"%s\": stage %zu on line %d has it already",
                fr->stage_name, dup_first, f->stages[dup_first].from->node->start_line);

        if (expand_at(pl, from, &fr->image, &st->base_image, NULL) < 0)
            return -1;
        if (!*st->base_image && !pl->lenient)
            return dockerfile_error_at(pl->ast, from->node, fr->image.off, fr->image.len,
                                       pl->err, "base name (%s) should not be blank",
                                       fr->image.text);
        if (fr->platform.text) {
            if (expand_at(pl, from, &fr->platform, &st->platform, NULL) < 0)
                return -1;
            struct plan_platform pp = {0};
            if (parse_platform(st->platform, &pp) < 0)
                return dockerfile_error_at(pl->ast, from->node, fr->platform.off,
                                           fr->platform.len, pl->err,
                                           "failed to parse platform \"%s\": expected "
                                           "os/arch[/variant]",
                                           st->platform);
            plan_platform_clear(&pp);
        }

        size_t s;
        if (strcmp(st->base_image, "scratch") == 0) {
            st->base = PLAN_BASE_SCRATCH;
        } else if (plan_find_stage(p, st->base_image, i, &s)) {
            st->base = PLAN_BASE_STAGE;
            st->base_stage = s;
            add_ref(st, PLAN_REF_STAGE, s, st->base_image, from);
        } else if (is_context(pl, st->base_image)) {
            st->base = PLAN_BASE_CONTEXT;
            add_ref(st, PLAN_REF_CONTEXT, 0, st->base_image, from);
        } else if (!pl->lenient && !plan_valid_image_ref(st->base_image)) {
            return dockerfile_error_at(pl->ast, from->node, fr->image.off, fr->image.len, pl->err,
                                       "invalid base image \"%s\": not a valid image reference "
                                       "(names are lower case)",
                                       st->base_image);
        } else {
            st->base = PLAN_BASE_IMAGE;
            add_ref(st, PLAN_REF_IMAGE, 0, st->base_image, from);
        }
    }
    /* COPY --from and RUN --mount=from see every stage, later ones too. */
    for (size_t i = 0; i < p->n_stages; i++) {
        struct plan_stage *st = &p->stages[i];
        for (size_t k = 0; k < st->stage->n_cmds; k++) {
            const struct df_instruction *in = st->stage->cmds[k];
            if (in->kind == DF_COPY && in->u.copy.from.text) {
                if (resolve_copy_from(pl, st, in) < 0)
                    return -1;
            } else if (in->kind == DF_RUN) {
                if (resolve_mounts(pl, st, in) < 0)
                    return -1;
            }
        }
    }
    return 0;
}

enum { WHITE, GREY, BLACK };

/* Depth-first: the order (dependencies first) and cycles. */
static int visit(struct planner *pl, size_t i, unsigned char *color, size_t *path, size_t depth)
{
    struct plan *p = pl->p;
    color[i] = GREY;
    path[depth] = i;
    struct plan_stage *st = &p->stages[i];
    for (size_t r = 0; r < st->n_refs; r++) {
        if (st->refs[r].kind != PLAN_REF_STAGE)
            continue;
        size_t d = st->refs[r].stage;
        if (color[d] == GREY) {
            struct strbuf cyc = STRBUF_INIT;
            size_t from = 0;
            while (path[from] != d)
                from++;
            for (size_t k = from; k <= depth; k++) {
                const struct plan_stage *s2 = &p->stages[path[k]];
                if (s2->name)
                    strbuf_addf(&cyc, "%s -> ", s2->name);
                else
                    strbuf_addf(&cyc, "stage %zu -> ", path[k]);
            }
            if (p->stages[d].name)
                strbuf_addf(&cyc, "%s", p->stages[d].name);
            else
                strbuf_addf(&cyc, "stage %zu", d);
            const struct df_instruction *by = st->refs[r].by;
            uint32_t off = by->node->keyword_off, len = (uint32_t)strlen(by->node->keyword);
            if (by->kind == DF_COPY) {
                off = by->u.copy.from.off;
                len = by->u.copy.from.len;
            } else if (by->kind == DF_RUN) {
                for (size_t k = 0; k < by->u.run.n_mounts; k++)
                    if (by->u.run.mounts[k].from && plan_find_stage(p, by->u.run.mounts[k].from,
                                                               p->n_stages, &(size_t){0})) {
                        off = by->u.run.mount_words[k].off;
                        len = by->u.run.mount_words[k].len;
                    }
            }
            dockerfile_error_at(pl->ast, by->node, off, len, pl->err,
                                "circular dependency detected between stages: %s", cyc.buf);
            strbuf_release(&cyc);
            return -1;
        }
        if (color[d] == WHITE && visit(pl, d, color, path, depth + 1) < 0)
            return -1;
    }
    color[i] = BLACK;
    return 0;
}

static int order_stages(struct planner *pl)
{
    struct plan *p = pl->p;
    _cleanup_free_ unsigned char *color = xcalloc(p->n_stages + 1, 1);
    _cleanup_free_ size_t *path = xcalloc(p->n_stages + 1, sizeof(size_t));
    /* Cycles anywhere are errors, as in BuildKit. */
    for (size_t i = 0; i < p->n_stages; i++)
        if (color[i] == WHITE && visit(pl, i, color, path, 0) < 0)
            return -1;
    /* The needed stages, post-order from the target (iterative). */
    memset(color, WHITE, p->n_stages);
    p->order = xcalloc(p->n_stages + 1, sizeof(size_t));
    _cleanup_free_ size_t *stack = xcalloc(p->n_stages + 1, sizeof(size_t));
    _cleanup_free_ size_t *next = xcalloc(p->n_stages + 1, sizeof(size_t));
    size_t sp = 0;
    stack[sp++] = p->target;
    color[p->target] = GREY;
    while (sp > 0) {
        size_t cur = stack[sp - 1];
        struct plan_stage *st = &p->stages[cur];
        if (next[cur] < st->n_deps) {
            size_t d = st->deps[next[cur]++];
            if (color[d] == WHITE) {
                color[d] = GREY;
                stack[sp++] = d;
            }
            continue;
        }
        sp--;
        color[cur] = BLACK;
        st->needed = true;
        p->order[p->n_order++] = cur;
    }
    return 0;
}

static int strcmp_ptr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void unused_build_args(struct plan *p)
{
    _cleanup_strv_ char **unused = strv_new();
    for (size_t i = 0; p->build_args && p->build_args[i]; i++) {
        const char *kv = p->build_args[i];
        _cleanup_free_ char *k = xstrndup(kv, strcspn(kv, "="));
        if (plan_is_proxy_arg(k) || plan_is_platform_arg(k) || strv_contains(p->global_names, k) ||
            strv_contains(unused, k))
            continue;
        bool used = false;
        for (size_t s = 0; s < p->n_stages && !used; s++) {
            if (!p->stages[s].needed)
                continue;
            const struct df_stage *st = p->stages[s].stage;
            for (size_t c = 0; c < st->n_cmds && !used; c++) {
                const struct df_instruction *in = st->cmds[c];
                if (in->kind != DF_ARG)
                    continue;
                for (size_t a = 0; a < in->u.args.n; a++)
                    if (strcmp(in->u.args.v[a].name.text, k) == 0)
                        used = true;
            }
        }
        if (!used)
            strv_push(&unused, k);
    }
    size_t n = strv_len(unused);
    if (n == 0)
        return;
    qsort(unused, n, sizeof(char *), strcmp_ptr);
    struct strbuf m = STRBUF_INIT;
    strbuf_adds(&m, "One or more build-args [");
    for (size_t i = 0; i < n; i++)
        strbuf_addf(&m, "%s%s", i ? " " : "", unused[i]);
    strbuf_adds(&m, "] were not consumed");
    strv_push_take(&p->warnings, strbuf_detach(&m, NULL));
}

int plan_create(const struct df_file *file, const struct plan_opts *opts, struct plan **ret,
                struct kiln_error **err)
{
    struct plan *p = xcalloc(1, sizeof(*p));
    _cleanup_free_ char *tp = NULL, *bp = NULL;
    p->file = file;
    p->escape = file->ast->escape;
    p->global_env = strv_new();
    p->global_names = strv_new();
    p->build_args = strv_new();
    p->warnings = strv_new();
    struct planner pl = {.p = p, .ast = file->ast, .contexts = opts ? opts->named_contexts : NULL,
                         .lenient = opts && opts->lenient, .err = err};

    if (file->n_stages == 0) {
        dockerfile_error_line(file->ast, file->ast->end_line, 0, 0, err,
                              "the Dockerfile has no FROM: no build stage");
        goto fail;
    }

    for (size_t i = 0; opts && opts->build_args && opts->build_args[i]; i++) {
        const char *a = opts->build_args[i];
        if (strchr(a, '=')) {
            strv_push(&p->build_args, a);
        } else if (*a) {
            const char *v = getenv(a);
            if (v)
                env_set(&p->build_args, a, v);
        }
    }

    plan_host_platform(&p->build_platform);
    if (opts && opts->platform) {
        if (parse_platform(opts->platform, &p->target_platform) < 0) {
            kiln_error_set(err, 0, "invalid platform \"%s\": expected os/arch[/variant]",
                           opts->platform);
            goto fail;
        }
    } else {
        plan_host_platform(&p->target_platform);
    }
    tp = platform_string(&p->target_platform);
    bp = platform_string(&p->build_platform);
    env_set(&p->global_env, "TARGETPLATFORM", tp);
    env_set(&p->global_env, "TARGETOS", p->target_platform.os);
    env_set(&p->global_env, "TARGETARCH", p->target_platform.arch);
    env_set(&p->global_env, "TARGETVARIANT", p->target_platform.variant);
    env_set(&p->global_env, "BUILDPLATFORM", bp);
    env_set(&p->global_env, "BUILDOS", p->build_platform.os);
    env_set(&p->global_env, "BUILDARCH", p->build_platform.arch);
    env_set(&p->global_env, "BUILDVARIANT", p->build_platform.variant);

    p->n_stages = file->n_stages;
    p->stages = xcalloc(p->n_stages, sizeof(*p->stages));
    if (global_args(&pl) < 0 || resolve_stages(&pl) < 0)
        goto fail;

    p->target = p->n_stages - 1;
    if (opts && opts->target && *opts->target) {
        size_t t;
        if (!plan_find_stage(p, opts->target, p->n_stages, &t)) {
            kiln_error_set(err, 0, "target stage \"%s\" could not be found", opts->target);
            goto fail;
        }
        p->target = t;
    }
    if (order_stages(&pl) < 0)
        goto fail;
    unused_build_args(p);
    *ret = p;
    return 0;
fail:
    plan_free(p);
    return -1;
}

void plan_free(struct plan *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_stages; i++) {
        free(p->stages[i].base_image);
        free(p->stages[i].platform);
        free(p->stages[i].refs);
        free(p->stages[i].deps);
    }
    free(p->stages);
    free(p->order);
    free(p->name_index);
    strv_free(p->global_env);
    strv_free(p->global_names);
    strv_free(p->build_args);
    strv_free(p->warnings);
    plan_platform_clear(&p->target_platform);
    plan_platform_clear(&p->build_platform);
    free(p);
}
