/* Build checks: each rule with BuildKit's name, message and conditions.
 * The per-stage walk mirrors the build's dispatch (ARG values, ENV, the
 * words BuildKit expands) so that UndefinedVar and friends see what the
 * build would see. */
#include "dockerfile/lint.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dockerfile/dockerfile.h"
#include "dockerfile/internal.h"
#include "lib/cleanup.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

/* A child stage copies its parent's environment; beyond this many entries
 * it is treated as unknown instead (bounds the work on huge files). */
#define LINT_MAX_INHERITED_ENV 4096

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

enum rule_id {
    R_STAGE_NAME_CASING,
    R_FROM_AS_CASING,
    R_NO_EMPTY_CONTINUATION,
    R_CONSISTENT_INSTRUCTION_CASING,
    R_DUPLICATE_STAGE_NAME,
    R_RESERVED_STAGE_NAME,
    R_JSON_ARGS_RECOMMENDED,
    R_MAINTAINER_DEPRECATED,
    R_UNDEFINED_ARG_IN_FROM,
    R_WORKDIR_RELATIVE_PATH,
    R_UNDEFINED_VAR,
    R_MULTIPLE_INSTRUCTIONS_DISALLOWED,
    R_LEGACY_KEY_VALUE_FORMAT,
    R_REDUNDANT_TARGET_PLATFORM,
    R_SECRETS_USED_IN_ARG_OR_ENV,
    R_INVALID_DEFAULT_ARG_IN_FROM,
    R_FROM_PLATFORM_FLAG_CONST_DISALLOWED,
    R_EXPOSE_PROTO_CASING,
    R_EXPOSE_INVALID_FORMAT,
};

static const struct {
    const char *name;
    const char *url;
} rules[] = {
#define RULE(n, slug) {n, "https://docs.docker.com/go/dockerfile/rule/" slug "/"}
    RULE("StageNameCasing", "stage-name-casing"),
    RULE("FromAsCasing", "from-as-casing"),
    RULE("NoEmptyContinuation", "no-empty-continuation"),
    RULE("ConsistentInstructionCasing", "consistent-instruction-casing"),
    RULE("DuplicateStageName", "duplicate-stage-name"),
    RULE("ReservedStageName", "reserved-stage-name"),
    RULE("JSONArgsRecommended", "json-args-recommended"),
    RULE("MaintainerDeprecated", "maintainer-deprecated"),
    RULE("UndefinedArgInFrom", "undefined-arg-in-from"),
    RULE("WorkdirRelativePath", "workdir-relative-path"),
    RULE("UndefinedVar", "undefined-var"),
    RULE("MultipleInstructionsDisallowed", "multiple-instructions-disallowed"),
    RULE("LegacyKeyValueFormat", "legacy-key-value-format"),
    RULE("RedundantTargetPlatform", "redundant-target-platform"),
    RULE("SecretsUsedInArgOrEnv", "secrets-used-in-arg-or-env"),
    RULE("InvalidDefaultArgInFrom", "invalid-default-arg-in-from"),
    RULE("FromPlatformFlagConstDisallowed", "from-platform-flag-const-disallowed"),
    RULE("ExposeProtoCasing", "expose-proto-casing"),
    RULE("ExposeInvalidFormat", "expose-invalid-format"),
#undef RULE
};

struct linter {
    const struct df_file *file;
    const struct df_ast *ast;
    const struct plan *plan;
    const struct lint_opts *opts;
    struct lint_config cfg;
    struct lint_finding *v;
    size_t n, cap;
    struct kiln_error **err;
};

static void report(struct linter *l, enum rule_id r, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void report(struct linter *l, enum rule_id r, int line, const char *fmt, ...)
{
    if (l->cfg.skip_all || (l->cfg.skip && strv_contains(l->cfg.skip, rules[r].name)))
        return;
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    XGROW(l->v, l->cap, l->n + 1);
    l->v[l->n++] = (struct lint_finding){rules[r].name, rules[r].url, msg, line};
}

/* ---- configuration ------------------------------------------------------------------ */

static char *trim_dup(const char *s, size_t n)
{
    size_t lead = utf8_space_prefix(s, n);
    return xstrndup(s + lead, utf8_trim_right_len(s + lead, n - lead));
}

int lint_parse_config(const char *value, struct lint_config *ret, struct kiln_error **err)
{
    memset(ret, 0, sizeof(*ret));
    _cleanup_free_ char *v = trim_dup(value, strlen(value));
    if (!*v)
        return 0;
    /* At most two parts, split at the first ';' (BuildKit's SplitN). */
    char *parts[2] = {v, NULL};
    char *semi = strchr(v, ';');
    if (semi) {
        *semi = '\0';
        parts[1] = semi + 1;
    }
    for (size_t i = 0; i < 2 && parts[i]; i++) {
        char *eq = strchr(parts[i], '=');
        if (!eq) {
            lint_config_clear(ret);
            return kiln_error_set(err, 0, "invalid check option \"%s\"", parts[i]);
        }
        _cleanup_free_ char *k = trim_dup(parts[i], (size_t)(eq - parts[i]));
        _cleanup_free_ char *val = trim_dup(eq + 1, strlen(eq + 1));
        if (strcmp(k, "skip") == 0) {
            if (strcmp(val, "all") == 0) {
                ret->skip_all = true;
                continue;
            }
            strv_free(ret->skip);
            ret->skip = strv_new();
            for (char *p = val, *c; p; p = c ? c + 1 : NULL) {
                c = strchr(p, ',');
                strv_push_take(&ret->skip, trim_dup(p, c ? (size_t)(c - p) : strlen(p)));
            }
        } else if (strcmp(k, "error") == 0) {
            static const char *const t[] = {"1", "t", "T", "TRUE", "true", "True"};
            static const char *const f[] = {"0", "f", "F", "FALSE", "false", "False"};
            bool ok = false;
            for (size_t j = 0; j < ARRAY_SIZE(t); j++) {
                if (strcmp(val, t[j]) == 0)
                    ret->error = ok = true;
                if (strcmp(val, f[j]) == 0) {
                    ret->error = false;
                    ok = true;
                }
            }
            if (!ok) {
                kiln_error_set(err, 0, "failed to parse check option \"%s\": invalid boolean \"%s\"",
                               parts[i], val);
                lint_config_clear(ret);
                return -1;
            }
        } else {
            kiln_error_set(err, 0, "invalid check option \"%s\"", k);
            lint_config_clear(ret);
            return -1;
        }
    }
    return 0;
}

void lint_config_clear(struct lint_config *c)
{
    strv_free(c->skip);
    memset(c, 0, sizeof(*c));
}

/* ---- helpers ---------------------------------------------------------------------------- */

bool lint_is_secret_key(const char *name)
{
    static const char *const deny[] = {"apikey", "auth",   "credential", "credentials", "key",
                                       "password", "pword", "passwd",    "secret",      "token"};
    bool secret = false, allowed = false;
    for (const char *p = name;;) {
        size_t n = strcspn(p, "_");
        for (size_t k = 0; k < ARRAY_SIZE(deny); k++)
            if (strlen(deny[k]) == n && strncasecmp(p, deny[k], n) == 0)
                secret = true;
        if (n == 6 && strncasecmp(p, "public", 6) == 0)
            allowed = true;
        if (!p[n])
            break;
        p += n + 1;
    }
    return secret && !allowed;
}

static bool is_lower(const char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            return false;
    return true;
}

static bool is_upper(const char *s)
{
    for (; *s; s++)
        if (*s >= 'a' && *s <= 'z')
            return false;
    return true;
}

static char *lower_dup(const char *s)
{
    struct strbuf b = STRBUF_INIT;
    go_to_lower(&b, s, strlen(s));
    return strbuf_detach(&b, NULL);
}

static const char *env_get(char *const *env, const char *name)
{
    size_t nl = strlen(name);
    const char *found = NULL;
    for (size_t i = 0; env && env[i]; i++)
        if (strncmp(env[i], name, nl) == 0 && env[i][nl] == '=')
            found = env[i] + nl + 1;
    return found;
}

static void env_put(char ***env, const char *k, const char *v)
{
    strv_push_take(env, xasprintf("%s=%s", k, v));
}

/* The closest name (case-sensitive) among the keys of env or in names. */
static const char *suggest_name(const char *name, char *const *env, char *const *names,
                                char **ret_buf)
{
    _cleanup_strv_ char **cands = strv_new();
    for (size_t i = 0; env && env[i]; i++)
        strv_push_take(&cands, xstrndup(env[i], strcspn(env[i], "=")));
    for (size_t i = 0; names && names[i]; i++)
        strv_push(&cands, names[i]);
    size_t best_d = 3;
    const char *best = NULL;
    for (size_t i = 0; cands[i]; i++) {
        if (strcmp(cands[i], name) == 0)
            continue;
        size_t d = df_edit_distance(name, cands[i], 2);
        /* df_edit_distance ignores case; a case-only difference counts 1. */
        if (d == 0)
            d = 1;
        if (d < best_d && d < strlen(name)) {
            best_d = d;
            best = cands[i];
        }
    }
    *ret_buf = best ? xstrdup(best) : NULL;
    return *ret_buf;
}

/* ---- FROM ------------------------------------------------------------------------------------ */

static bool is_non_env_arg(const char *name)
{
    return plan_is_platform_arg(name) || plan_is_proxy_arg(name);
}

static void lint_from(struct linter *l, size_t i, char *const *default_env)
{
    const struct plan *p = l->plan;
    const struct df_stage *st = &l->file->stages[i];
    const struct df_instruction *in = st->from;
    const struct df_from *f = &in->u.from;
    int line = in->node->start_line;
    struct expand_env genv = {p->global_env, strv_len(p->global_env)};
    struct expand_opts o = {.escape = p->escape};

    if (f->stage_name) {
        if (strcmp(f->name.text, f->stage_name) != 0)
            report(l, R_STAGE_NAME_CASING, line, "Stage name '%s' should be lowercase",
                   f->name.text);
        const char *kw = in->node->keyword;
        bool from_lower = is_lower(kw), from_upper = is_upper(kw);
        if ((from_lower && !is_lower(f->as_keyword.text)) ||
            (!from_lower && from_upper && !is_upper(f->as_keyword.text)))
            report(l, R_FROM_AS_CASING, line, "'%s' and '%s' keywords' casing do not match",
                   f->as_keyword.text, kw);
        size_t earlier;
        if (i > 0 && plan_find_stage(p, f->stage_name, i, &earlier))
            report(l, R_DUPLICATE_STAGE_NAME, line,
                   "Duplicate stage name \"%s\", stage names should be unique", f->stage_name);
        if (strcmp(f->stage_name, "scratch") == 0 || strcmp(f->stage_name, "context") == 0)
            report(l, R_RESERVED_STAGE_NAME, line,
                   "Stage name should not use the same name as reserved stage \"%s\"",
                   f->stage_name);
    }

    /* Variables in FROM must be declared global ARGs (or platform ARGs). */
    const struct df_word *words[2] = {&f->image, &f->platform};
    for (size_t w = 0; w < 2; w++) {
        if (!words[w]->text)
            continue;
        _cleanup_free_ char *out = NULL;
        struct expand_matches m = {0};
        struct kiln_error *e = NULL;
        if (expand_word(words[w]->text, &genv, &o, &out, &m, &e) < 0) {
            kiln_error_free(&e);
            continue;
        }
        for (size_t k = 0; m.unmatched && m.unmatched[k]; k++) {
            const char *name = m.unmatched[k];
            if (strv_contains(p->global_names, name) || plan_is_platform_arg(name))
                continue;
            _cleanup_free_ char *sug = NULL;
            static char *const plat[] = {"TARGETPLATFORM", "TARGETOS",    "TARGETARCH",
                                         "TARGETVARIANT",  "BUILDPLATFORM", "BUILDOS",
                                         "BUILDARCH",      "BUILDVARIANT",  NULL};
            _cleanup_strv_ char **names = strv_copy(p->global_names);
            for (size_t q = 0; plat[q]; q++)
                strv_push(&names, plat[q]);
            if (suggest_name(name, NULL, names, &sug))
                report(l, R_UNDEFINED_ARG_IN_FROM, line,
                       "FROM argument '%s' is not declared (did you mean %s?)", name, sug);
            else
                report(l, R_UNDEFINED_ARG_IN_FROM, line, "FROM argument '%s' is not declared",
                       name);
        }
        bool has_vars = (m.matched && m.matched[0]) || (m.unmatched && m.unmatched[0]);
        if (w == 1) {
            const char *raw = f->platform.text;
            if (strcmp(raw, "$TARGETPLATFORM") == 0 || strcmp(raw, "${TARGETPLATFORM}") == 0)
                report(l, R_REDUNDANT_TARGET_PLATFORM, line,
                       "Setting platform to predefined %s in FROM is redundant as this is the "
                       "default behavior",
                       raw);
            if (!has_vars) {
                /* A constant platform is fine for a stage named after it. */
                _cleanup_free_ char *lp = lower_dup(out);
                const char *name = f->stage_name ? f->stage_name : "";
                bool named = false;
                for (char *tok = lp, *sl; tok && *tok; tok = sl ? sl + 1 : NULL) {
                    sl = strchr(tok, '/');
                    if (sl)
                        *sl = '\0';
                    if (*tok && strstr(name, tok))
                        named = true;
                }
                if (!named)
                    report(l, R_FROM_PLATFORM_FLAG_CONST_DISALLOWED, line,
                           "FROM --platform flag should not use constant value \"%s\"", out);
            }
        }
        expand_matches_free(&m);
        if (w == 0 && has_vars) {
            /* With the defaults only (no --build-arg), is it still a name? */
            struct expand_env denv = {default_env, strv_len(default_env)};
            _cleanup_free_ char *dv = NULL;
            struct kiln_error *de = NULL;
            if (expand_word(f->image.text, &denv, &o, &dv, NULL, &de) == 0 &&
                (!*dv || !plan_valid_image_ref(dv)))
                report(l, R_INVALID_DEFAULT_ARG_IN_FROM, line,
                       "Default value for ARG %s results in empty or invalid base image name",
                       f->image.text);
            kiln_error_free(&de);
        }
    }
}

/* Stable sort by line: findings of one line stay in the order found. */
static void sort_findings(struct lint_finding *v, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        struct lint_finding f = v[i];
        size_t j = i;
        while (j > 0 && v[j - 1].line > f.line) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = f;
    }
}

static void take_error(struct linter *l, struct kiln_error *e)
{
    if (l->err && !*l->err)
        *l->err = e;
    else
        kiln_error_free(&e);
}

/* ---- the stage walk ---------------------------------------------------------------------------- */

struct stage_state {
    char **img_env; /* base image env + ENV: what a child stage starts from */
    bool env_known;
    bool workdir_set;
    bool shell_set;
    bool done;
};

struct walk {
    struct linter *l;
    struct stage_state *ss;
    char **run_env;     /* img_env + ARG values */
    char **declared;    /* ARGs declared in the stage */
    char **unmatched;   /* variables an instruction used that are unset */
};

static int lint_expand(void *ctx, const char *word, enum df_expand_how how, char ***ret,
                       struct kiln_error **err)
{
    struct walk *w = ctx;
    if (how == DF_EXPAND_RAW) {
        char **v = strv_new();
        strv_push(&v, word);
        *ret = v;
        return 0;
    }
    struct expand_env env = {w->run_env, strv_len(w->run_env)};
    struct expand_opts o = {.escape = w->l->plan->escape};
    char *out = NULL;
    struct expand_matches m = {0};
    if (expand_word(word, &env, &o, &out, &m, err) < 0)
        return -1;
    for (size_t k = 0; m.unmatched && m.unmatched[k]; k++)
        if (!strv_contains(w->unmatched, m.unmatched[k]))
            strv_push(&w->unmatched, m.unmatched[k]);
    expand_matches_free(&m);
    if (how == DF_EXPAND_WORDS) {
        free(out);
        return expand_words(word, &env, &o, ret, err);
    }
    char **v = strv_new();
    strv_push_take(&v, out);
    *ret = v;
    return 0;
}

static void report_unmatched(struct walk *w, int line)
{
    if (w->ss->env_known) {
        for (size_t k = 0; w->unmatched[k]; k++) {
            const char *name = w->unmatched[k];
            if (strv_contains(w->declared, name) || is_non_env_arg(name))
                continue;
            _cleanup_free_ char *sug = NULL;
            if (suggest_name(name, w->run_env, NULL, &sug))
                report(w->l, R_UNDEFINED_VAR, line,
                       "Usage of undefined variable '$%s' (did you mean $%s?)", name, sug);
            else
                report(w->l, R_UNDEFINED_VAR, line, "Usage of undefined variable '$%s'", name);
        }
    }
    strv_free(w->unmatched);
    w->unmatched = strv_new();
}

static void check_secret(struct linter *l, const char *what, const char *key, int line)
{
    if (lint_is_secret_key(key))
        report(l, R_SECRETS_USED_IN_ARG_OR_ENV, line,
               "Do not use ARG or ENV instructions for sensitive data (%s \"%s\")", what, key);
}

static int walk_stage(struct linter *l, size_t i, struct stage_state *states)
{
    const struct plan *p = l->plan;
    const struct plan_stage *ps = &p->stages[i];
    const struct df_stage *st = &l->file->stages[i];
    struct stage_state *ss = &states[i];
    bool needed = ps->needed;

    if (ps->base == PLAN_BASE_SCRATCH) {
        ss->img_env = strv_new();
        env_put(&ss->img_env, "PATH", DEFAULT_PATH);
        ss->env_known = true;
    } else if (ps->base == PLAN_BASE_STAGE && states[ps->base_stage].done &&
               strv_len(states[ps->base_stage].img_env) <= LINT_MAX_INHERITED_ENV) {
        const struct stage_state *parent = &states[ps->base_stage];
        ss->img_env = strv_copy(parent->img_env);
        ss->env_known = parent->env_known;
        ss->workdir_set = parent->workdir_set;
        ss->shell_set = parent->shell_set;
    } else {
        ss->img_env = strv_new();
        char **env = NULL, **shell = NULL;
        if (ps->base == PLAN_BASE_IMAGE && l->opts && l->opts->image_config &&
            l->opts->image_config(l->opts->image_ctx, ps->base_image, ps->platform, &env,
                                  &shell) > 0) {
            for (size_t k = 0; env && env[k]; k++)
                strv_push(&ss->img_env, env[k]);
            ss->env_known = true;
            ss->shell_set = shell && shell[0];
        }
        strv_free(env);
        strv_free(shell);
    }

    struct walk w = {.l = l, .ss = ss, .run_env = strv_copy(ss->img_env),
                     .declared = strv_new(), .unmatched = strv_new()};
    const struct df_instruction *last_once[3] = {NULL, NULL, NULL}; /* CMD ENTRYPOINT HEALTHCHECK */
    int ret = 0;

    for (size_t c = 0; c < st->n_cmds; c++) {
        const struct df_instruction *in = st->cmds[c];
        int line = in->node->start_line;
        const char *kw = in->node->keyword;

        if (in->kind == DF_ARG) {
            for (size_t k = 0; k < in->u.args.n; k++) {
                const struct df_argdef *a = &in->u.args.v[k];
                check_secret(l, "ARG", a->name.text, line);
                struct expand_env env = {w.run_env, strv_len(w.run_env)};
                char *v = NULL;
                struct expand_matches m = {0};
                struct kiln_error *e = NULL;
                if (plan_arg_value(p, in, a, &env, &v, &m, &e) < 0) {
                    if (needed) {
                        take_error(l, e);
                        ret = -1;
                        goto out;
                    }
                    kiln_error_free(&e);
                    continue;
                }
                for (size_t q = 0; m.unmatched && m.unmatched[q]; q++)
                    strv_push(&w.unmatched, m.unmatched[q]);
                expand_matches_free(&m);
                report_unmatched(&w, line);
                strv_push(&w.declared, a->name.text);
                if (v && !env_get(ss->img_env, a->name.text))
                    env_put(&w.run_env, a->name.text, v);
                free(v);
            }
            continue;
        }

        struct df_instruction *x = NULL;
        struct kiln_error *e = NULL;
        if (df_instruction_expand(l->ast, in, lint_expand, &w, &x, &e) < 0) {
            strv_free(w.unmatched);
            w.unmatched = strv_new();
            if (needed) {
                take_error(l, e);
                ret = -1;
                goto out;
            }
            kiln_error_free(&e);
            continue;
        }
        report_unmatched(&w, line);

        switch (in->kind) {
        case DF_ENV:
        case DF_LABEL:
            for (size_t k = 0; k < x->u.kvs.n; k++) {
                if (in->kind == DF_ENV) {
                    check_secret(l, "ENV", x->u.kvs.v[k].key.text, line);
                    env_put(&ss->img_env, x->u.kvs.v[k].key.text, x->u.kvs.v[k].value.text);
                    env_put(&w.run_env, x->u.kvs.v[k].key.text, x->u.kvs.v[k].value.text);
                }
                if (x->u.kvs.v[k].legacy)
                    report(l, R_LEGACY_KEY_VALUE_FORMAT, line,
                           "\"%s key=value\" should be used instead of legacy \"%s key value\" "
                           "format",
                           kw, kw);
            }
            break;
        case DF_MAINTAINER:
            report(l, R_MAINTAINER_DEPRECATED, line,
                   "Maintainer instruction is deprecated in favor of using label");
            break;
        case DF_SHELL:
            ss->shell_set = true;
            break;
        case DF_CMD:
        case DF_ENTRYPOINT:
        case DF_HEALTHCHECK: {
            int slot = in->kind == DF_CMD ? 0 : in->kind == DF_ENTRYPOINT ? 1 : 2;
            if (last_once[slot])
                report(l, R_MULTIPLE_INSTRUCTIONS_DISALLOWED, last_once[slot]->node->start_line,
                       "Multiple %s instructions should not be used in the same stage because "
                       "only the last one will be used",
                       kw);
            last_once[slot] = in;
            if (in->kind != DF_HEALTHCHECK && in->u.cmd.shell_form && !ss->shell_set)
                report(l, R_JSON_ARGS_RECOMMENDED, line,
                       "JSON arguments recommended for %s to prevent unintended behavior related "
                       "to OS signals",
                       kw);
            break;
        }
        case DF_WORKDIR:
            if (x->u.word.text[0] != '/' && !ss->workdir_set)
                report(l, R_WORKDIR_RELATIVE_PATH, line,
                       "Relative workdir \"%s\" can have unexpected results if the base image "
                       "changes",
                       x->u.word.text);
            ss->workdir_set = true;
            break;
        case DF_EXPOSE:
            for (size_t k = 0; k < x->u.words.n; k++) {
                const char *port = x->u.words.v[k].text;
                const char *slash = strrchr(port, '/');
                if (strchr(port, ':'))
                    report(l, R_EXPOSE_INVALID_FORMAT, line,
                           "EXPOSE instruction should not define an IP address or host-port "
                           "mapping, found '%s'",
                           port);
                if (slash && !is_lower(slash + 1))
                    report(l, R_EXPOSE_PROTO_CASING, line,
                           "Defined protocol '%s' in EXPOSE instruction should be lowercase",
                           port);
            }
            break;
        default:
            break;
        }
        df_instruction_free(x);
    }
out:
    strv_free(w.run_env);
    strv_free(w.declared);
    strv_free(w.unmatched);
    ss->done = true;
    return ret;
}

int lint_run(const struct df_file *file, const struct plan *plan, const struct lint_opts *opts,
             struct lint_result *ret, struct kiln_error **err)
{
    struct linter l = {.file = file, .ast = file->ast, .plan = plan, .opts = opts, .err = err};
    memset(ret, 0, sizeof(*ret));
    const struct df_ast *ast = file->ast;
    int r = 0;

    if (opts && opts->config) {
        l.cfg.skip_all = opts->config->skip_all;
        l.cfg.error = opts->config->error;
        l.cfg.skip = opts->config->skip ? strv_copy(opts->config->skip) : NULL;
    } else {
        _cleanup_free_ char *value = NULL;
        int line = 0;
        if (dockerfile_find_directive("check", ast->source, ast->source_len, false, &value, NULL,
                                      &line)) {
            struct kiln_error *e = NULL;
            if (lint_parse_config(value, &l.cfg, &e) < 0) {
                dockerfile_error_line(ast, line, 1, 0, err, "failed to parse check options: %s",
                                      e->msg);
                kiln_error_free(&e);
                return -1;
            }
        }
    }

    for (size_t i = 0; i < ast->n_warnings; i++)
        report(&l, R_NO_EMPTY_CONTINUATION, ast->warnings[i].line, "Empty continuation line");

    /* Instruction casing: the majority decides. */
    size_t lower = 0, upper = 0;
    for (size_t i = 0; i < ast->n_instrs; i++) {
        const char *kw = ast->instrs[i].keyword;
        if (is_lower(kw))
            lower++;
        else if (is_upper(kw))
            upper++;
    }
    bool majority_lower = lower > upper;
    for (size_t i = 0; i < ast->n_instrs; i++) {
        const char *kw = ast->instrs[i].keyword;
        const char *want = NULL;
        if (majority_lower && !is_lower(kw))
            want = "lowercase";
        else if (!majority_lower && !is_upper(kw))
            want = "uppercase";
        if (want)
            report(&l, R_CONSISTENT_INSTRUCTION_CASING, ast->instrs[i].start_line,
                   "Command '%s' should match the case of the command majority (%s)", kw, want);
    }

    /* Global ARGs, and their values with defaults only (no --build-arg). */
    _cleanup_strv_ char **default_env = strv_new();
    for (size_t k = 0; plan->global_env[k]; k++) {
        size_t nl = strcspn(plan->global_env[k], "=");
        _cleanup_free_ char *name = xstrndup(plan->global_env[k], nl);
        if (plan_is_platform_arg(name))
            strv_push(&default_env, plan->global_env[k]);
    }
    for (size_t i = 0; i < file->n_meta_args; i++) {
        const struct df_instruction *in = file->meta_args[i];
        for (size_t k = 0; k < in->u.args.n; k++) {
            const struct df_argdef *a = &in->u.args.v[k];
            check_secret(&l, "ARG", a->name.text, in->node->start_line);
            if (!a->value.text)
                continue;
            struct expand_env env = {default_env, strv_len(default_env)};
            struct expand_opts o = {.escape = plan->escape};
            char *v = NULL;
            struct kiln_error *e = NULL;
            if (expand_word(a->value.text, &env, &o, &v, NULL, &e) == 0)
                env_put(&default_env, a->name.text, v);
            free(v);
            kiln_error_free(&e);
        }
    }

    struct stage_state *states = xcalloc(file->n_stages + 1, sizeof(*states));
    for (size_t i = 0; i < file->n_stages && r == 0; i++) {
        lint_from(&l, i, default_env);
        r = walk_stage(&l, i, states);
    }
    for (size_t i = 0; i < file->n_stages; i++)
        strv_free(states[i].img_env);
    free(states);

    if (r < 0) {
        for (size_t i = 0; i < l.n; i++)
            free(l.v[i].message);
        free(l.v);
        lint_config_clear(&l.cfg);
        return -1;
    }
    sort_findings(l.v, l.n);
    ret->findings = l.v;
    ret->n_findings = l.n;
    ret->config = l.cfg;
    return 0;
}

void lint_result_clear(struct lint_result *r)
{
    for (size_t i = 0; i < r->n_findings; i++)
        free(r->findings[i].message);
    free(r->findings);
    lint_config_clear(&r->config);
    memset(r, 0, sizeof(*r));
}
