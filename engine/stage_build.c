/* One stage of a build: its base, the ONBUILD triggers of that base, then
 * each instruction in order, with the build cache in front of every step
 * that makes a layer (RUN, COPY, ADD, WORKDIR). */
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dockerfile/expand.h"
#include "engine/build_run.h"
#include "engine/copy.h"
#include "engine/history.h"
#include "engine/meta.h"
#include "engine/run_step.h"
#include "layers/reference.h"
#include "layers/refs.h"
#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/platform.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"
#include "runtime/runtime.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* ---- expansion ---------------------------------------------------------- */

struct expand_ctx {
    char *const *env;
    char escape;
};

static int expand_cb(void *ud, const char *word, enum df_expand_how how, char ***ret,
                     struct kiln_error **err)
{
    struct expand_ctx *x = ud;
    struct expand_env env = {x->env, strv_len(x->env)};
    struct expand_opts o = {.escape = x->escape};
    if (how == DF_EXPAND_WORDS)
        return expand_words(word, &env, &o, ret, err);
    if (how == DF_EXPAND_RAW) {
        o.escape = '\\';
        o.skip_quotes = true;
    }
    char *out = NULL;
    if (expand_word(word, &env, &o, &out, NULL, err) < 0)
        return -1;
    *ret = strv_new();
    strv_push_take(ret, out);
    return 0;
}

/* The instruction as progress shows it: its text with variables expanded
 * where they are set, the keyword in upper case. */
static char *display_text(const struct stage_state *st, const struct df_instruction *in,
                          char escape)
{
    const struct df_instr *node = in->node;
    _cleanup_free_ char *text = xstrndup(node->original, node->original_len);
    struct expand_env env = {st->env, strv_len(st->env)};
    struct expand_opts o = {.escape = escape, .skip_unset = true, .raw_quotes = true,
                            .raw_escapes = true};
    char *out = NULL;
    struct kiln_error *err = NULL;
    if (expand_word(text, &env, &o, &out, NULL, &err) < 0) {
        kiln_error_free(&err);
        out = xstrdup(text);
    }
    /* keyword in upper case */
    for (char *p = out; *p && *p != ' ' && *p != '\t'; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 'a' + 'A');
    return out;
}

/* "[builder 2/5] " */
static char *step_prefix(struct stage_state *st)
{
    st->step++;
    int width = 1;
    for (int t = st->total_steps; t >= 10; t /= 10)
        width++;
    return xasprintf("[%s%s%*d/%d]", st->display_name ? st->display_name : "",
                     st->display_name ? " " : "", width, st->step, st->total_steps);
}

static int step_vertex(struct build_run *br, struct stage_state *st,
                       const struct df_instruction *in, bool onbuild)
{
    _cleanup_free_ char *text = display_text(st, in, br->plan->escape);
    _cleanup_free_ char *prefix = step_prefix(st);
    return vertex_start(&br->bc, "%s %s%s", prefix, onbuild ? "ONBUILD " : "", text);
}

/* An image as BuildKit names it: "docker.io/library/busybox:latest@sha256:..." */
static char *image_display(const char *name, const char *manifest_digest)
{
    struct image_ref ref;
    struct kiln_error *e = NULL;
    if (ref_parse(name, &ref, &e) < 0) {
        kiln_error_free(&e);
        return xstrdup(name);
    }
    char *full = ref_full(&ref);
    bool has_digest = ref.digest != NULL;
    ref_free(&ref);
    if (has_digest || !manifest_digest || !*manifest_digest)
        return full;
    char *out = xasprintf("%s@%s", full, manifest_digest);
    free(full);
    return out;
}

/* Set while this thread runs an ONBUILD trigger of the base image. */
static __thread bool in_trigger;

/* "Dockerfile:12" for messages. */
static char *location(struct build_run *br, const struct df_instruction *in)
{
    if (in_trigger)
        return xstrdup("ONBUILD trigger of the base image");
    return xasprintf("%s:%d", br->ast->name, in->node->start_line);
}

/* BuildKit's source excerpt of lines [first, last] (1-based) of a
 * Dockerfile: a few lines around them, theirs marked ">>>". */
static char *source_excerpt(const char *name, const char *text, size_t len, int first, int last)
{
    /* the lines, as Go's strings.Split(text, "\n") has them */
    size_t n = 1;
    for (size_t i = 0; i < len; i++)
        n += text[i] == '\n';
    if (first < 1 || (size_t)first > n)
        return NULL;
    int end = last < first ? first : last, start = first;
    if ((size_t)end > n)
        end = (int)n;
    int pad = end == start ? 4 : 2;
    for (int p = 0; p < pad;) {
        if (start > 1) {
            start--;
            p++;
        }
        if ((size_t)end != n) {
            end++;
            p++;
        }
        p++;
    }
    struct strbuf sb = STRBUF_INIT;
    strbuf_addf(&sb, "%s:%d\n--------------------\n", name, first);
    const char *p = text;
    for (int line = 1; line <= end; line++) {
        const char *nl = memchr(p, '\n', (size_t)(text + len - p));
        size_t ll = nl ? (size_t)(nl - p) : (size_t)(text + len - p);
        if (line >= start)
            strbuf_addf(&sb, " %3d | %s %.*s\n", line,
                        line >= first && line <= last ? ">>>" : "   ", (int)ll, p);
        p = nl ? nl + 1 : text + len;
    }
    strbuf_adds(&sb, "--------------------");
    return strbuf_detach(&sb, NULL);
}

static int fail_step(struct build_run *br, int vertex, double started,
                     const struct df_instruction *in, struct kiln_error **err)
{
    if ((*err)->code == ECANCELED) {
        if (vertex > 0)
            vertex_canceled(&br->bc, vertex, started);
        return -1; /* another stage failed: that is the error to report */
    }
    _cleanup_free_ char *loc = location(br, in);
    _cleanup_free_ char *text = xstrndup(in->node->original, in->node->original_len);
    char *msg = kiln_error_text(*err);
    if (vertex > 0)
        vertex_error(&br->bc, vertex, started, msg);
    free(msg);
    /* a trigger's lines are not in the Dockerfile */
    if (vertex > 0 && !in_trigger && in->node->start_line > 0) {
        _cleanup_free_ char *ex = source_excerpt(br->in.dockerfile_name, br->in.dockerfile,
                                                 br->in.dockerfile_len, in->node->start_line,
                                                 in->node->end_line);
        if (ex)
            vertex_source(&br->bc, vertex, ex);
    }
    /* a step that could not start its command fails the build (status 1),
     * unlike `kiln run` */
    if ((*err)->status >= KILN_EXIT_RUN_FAILED && (*err)->status <= KILN_EXIT_NOT_FOUND)
        (*err)->status = KILN_EXIT_FAILURE;
    /* BuildKit's shape: the instruction with its place, then the cause */
    return kiln_error_wrap(err, "%s: %s", loc, text);
}

static char *now_rfc3339(struct build_ctx *bc)
{
    return rfc3339_time(bc->epoch);
}

/* Records a layer step's result: cache record, layer, history. */
static int finish_layer(struct build_run *br, struct stage_state *st, const char *key,
                        struct layer_result *res, bool cached, const char *created_by,
                        const char *created, struct kiln_error **err)
{
    char *when = created ? xstrdup(created) : now_rfc3339(&br->bc);
    if (!cached) {
        struct cache_record rec = {.layer = res->blob, .created = when};
        memcpy(rec.diff_id, res->diff_id, DIGEST_STR_LEN);
        if (cache_save(br->bc.store, key, &rec, err) < 0) {
            free(when);
            return -1;
        }
    }
    stage_add_layer(st, &res->blob, res->diff_id);
    history_add(&st->config, created_by, true, br->bc.epoch >= 0 ? NULL : when);
    if (br->bc.epoch >= 0) {
        char *t = rfc3339_time(br->bc.epoch);
        free(st->config.history[st->config.n_history - 1].created);
        st->config.history[st->config.n_history - 1].created = t;
    }
    memcpy(st->key, key, DIGEST_STR_LEN);
    build_note_key(br, key);
    if (!st->layer_keys)
        st->layer_keys = strv_new();
    strv_push(&st->layer_keys, key);
    free(when);
    return 0;
}

static int cached_result(struct build_run *br, const char *key, struct layer_result *res,
                         char **ret_created)
{
    if (br->bc.req->no_cache)
        return -1;
    struct cache_record rec;
    if (cache_lookup(br->bc.store, key, &rec) < 0)
        return -1;
    descriptor_copy(&res->blob, &rec.layer);
    memcpy(res->diff_id, rec.diff_id, DIGEST_STR_LEN);
    *ret_created = rec.created ? xstrdup(rec.created) : NULL;
    cache_record_free(&rec);
    return 0;
}

/* ---- ARG ---------------------------------------------------------------- */

static int do_arg(struct build_run *br, struct stage_state *st, const struct df_instruction *in,
                  struct kiln_error **err)
{
    struct strbuf msg = STRBUF_INIT;
    strbuf_adds(&msg, "ARG");
    for (size_t i = 0; i < in->u.args.n; i++) {
        const struct df_argdef *a = &in->u.args.v[i];
        struct expand_env env = {st->env, strv_len(st->env)};
        char *value = NULL;
        if (plan_arg_value(br->plan, in, a, &env, &value, NULL, err) < 0) {
            strbuf_release(&msg);
            return -1;
        }
        const char *name = a->name.text;
        if (value) {
            env_set(&st->env, name, value);
            env_set(&st->args, name, value);
            strbuf_addf(&msg, " %s=%s", name, value);
        } else {
            bool seen = false;
            for (size_t k = 0; st->args && st->args[k]; k++)
                seen |= strcmp(st->args[k], name) == 0 ||
                        (strncmp(st->args[k], name, strlen(name)) == 0 &&
                         st->args[k][strlen(name)] == '=');
            if (!seen)
                strv_push(&st->args, name);
            strbuf_addf(&msg, " %s", name);
        }
        free(value);
    }
    history_add(&st->config, msg.buf, false, NULL);
    strbuf_release(&msg);
    return 0;
}

/* ---- RUN ---------------------------------------------------------------- */

/* BuildKit's runCommandString: "|N K=V ... " + the command. */
static char *run_history(const struct stage_state *st, char *const *argv)
{
    struct strbuf sb = STRBUF_INIT;
    strbuf_adds(&sb, "RUN ");
    size_t n = strv_len(st->args);
    if (n) {
        strbuf_addf(&sb, "|%zu", n);
        for (size_t i = 0; i < n; i++) {
            const char *a = st->args[i];
            const char *eq = strchr(a, '=');
            _cleanup_free_ char *name = eq ? xstrndup(a, (size_t)(eq - a)) : xstrdup(a);
            const char *v = env_get(st->env, name);
            strbuf_addf(&sb, " %s=%s", name, v ? v : (eq ? eq + 1 : ""));
        }
        strbuf_addc(&sb, ' ');
    }
    for (size_t i = 0; argv[i]; i++) {
        if (i)
            strbuf_addc(&sb, ' ');
        strbuf_adds(&sb, argv[i]);
    }
    strbuf_adds(&sb, " # buildkit");
    return strbuf_detach(&sb, NULL);
}

static char *joined(char *const *argv)
{
    struct strbuf sb = STRBUF_INIT;
    for (size_t i = 0; argv[i]; i++) {
        if (i)
            strbuf_addc(&sb, ' ');
        strbuf_adds(&sb, argv[i]);
    }
    return strbuf_detach(&sb, NULL);
}

static enum run_network run_network(struct build_run *br, const struct df_run *run)
{
    if (run->network_set && run->network == DF_NETWORK_NONE)
        return NET_NONE;
    if (run->network_set)
        return NET_HOST;
    return br->bc.req->network && strcmp(br->bc.req->network, "none") == 0 ? NET_NONE : NET_HOST;
}

static int do_run(struct build_run *br, struct stage_state *st, const struct df_instruction *in,
                  bool onbuild, struct kiln_error **err)
{
    const struct df_run *run = &in->u.run;
    char **args = NULL;
    char *script = NULL;
    const char *script_name = NULL;
    struct mount_prep mp = {0};
    bool have_mp = false;
    char *script_file = NULL;
    _cleanup_free_ char *display = NULL;
    _cleanup_free_ char *loc = NULL;
    int rc = -1;
    int vertex = 0;
    double started = monotonic_now();

    enum df_run_script mode = df_run_script(run, &script, &script_name);
    switch (mode) {
    case DF_RUN_SCRIPT_NONE:
        args = strv_copy(run->cmd.argv);
        break;
    case DF_RUN_SCRIPT_FILE: {
        /* a heredoc with a shebang: a file at /dev/pipes/NAME, run as a program */
        args = strv_new();
        strv_push_take(&args, xasprintf("/dev/pipes/%s", script_name));
        break;
    }
    case DF_RUN_SCRIPT_SHELL:
    case DF_RUN_SCRIPT_FULL:
        args = strv_new();
        strv_push(&args, script);
        break;
    }
    if (run->cmd.shell_form || mode != DF_RUN_SCRIPT_NONE) {
        char **withsh = meta_with_shell(&st->config, args);
        strv_free(args);
        args = withsh;
    }
    _cleanup_free_ char *history = run_history(st, args);
    struct cache_key key;
    cache_key_begin(&key, st->key);
    cache_key_add_str(&key, "step", "RUN");
    cache_key_add_strv(&key, "argv", args);
    if (mode == DF_RUN_SCRIPT_FILE)
        cache_key_add_str(&key, "script", script);
    cache_key_add_strv(&key, "env", st->env);
    cache_key_add_str(&key, "user", st->config.user);
    cache_key_add_str(&key, "cwd", st->config.working_dir);
    cache_key_add_int(&key, "network", run_network(br, run));
    cache_key_add_int(&key, "security", run->security);
    cache_key_add_strv(&key, "hosts", br->bc.req->add_hosts);
    if (run_mounts_prepare(br, st, run, &mp, &key, err) < 0) {
        sha256_abort(&key.h);
        vertex = step_vertex(br, st, in, onbuild);
        goto out;
    }
    have_mp = true;
    char keyd[DIGEST_STR_LEN];
    cache_key_end(&key, keyd);

    struct layer_result res = {0};
    char *created = NULL;
    bool hit = cached_result(br, keyd, &res, &created) == 0;
    /* the first step that runs settles the storage driver, and says so before
     * its own lines */
    if (!hit && build_settle_driver(&br->bc, err) < 0) {
        vertex = step_vertex(br, st, in, onbuild);
        goto out;
    }
    vertex = step_vertex(br, st, in, onbuild);
    started = monotonic_now();
    if (hit) {
        vertex_cached(&br->bc, vertex);
        rc = finish_layer(br, st, keyd, &res, true, history, created, err);
        free(created);
        layer_result_free(&res);
        goto out;
    }

    if (run_mounts_materialize(br, st, &mp, err) < 0)
        goto fail;
    /* the environment: the stage's, proxies from --build-arg, mounts' */
    char **env = strv_copy(st->env);
    for (size_t i = 0; br->plan->build_args && br->plan->build_args[i]; i++) {
        const char *kv = br->plan->build_args[i];
        const char *eq = strchr(kv, '=');
        _cleanup_free_ char *name = eq ? xstrndup(kv, (size_t)(eq - kv)) : xstrdup(kv);
        if (plan_is_proxy_arg(name) && !env_get(env, name))
            env_set(&env, name, eq ? eq + 1 : "");
    }
    for (size_t i = 0; mp.env_add && mp.env_add[i]; i++) {
        const char *eq = strchr(mp.env_add[i], '=');
        _cleanup_free_ char *name = xstrndup(mp.env_add[i], (size_t)(eq - mp.env_add[i]));
        env_set(&env, name, eq + 1);
    }
    if (mode == DF_RUN_SCRIPT_FILE) {
        /* the script, read-only at /dev/pipes/NAME */
        script_file = xasprintf("%s/script-%d", br->bc.scratch, vertex);
        int fd = open(script_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
        if (fd < 0 || fs_write_all(fd, script, strlen(script)) < 0) {
            if (fd >= 0)
                close(fd);
            strv_free(env);
            kiln_error_set(err, errno, "write the heredoc script");
            goto fail;
        }
        close(fd);
        mp.mounts = xreallocarray(mp.mounts, mp.n + 1, sizeof(*mp.mounts));
        struct run_mount *m = &mp.mounts[mp.n++];
        memset(m, 0, sizeof(*m));
        m->type = RUN_MOUNT_BIND;
        m->source = script_file;
        m->target = args[strv_len(args) - 1];
        m->readonly = true;
    }
    display = joined(args);
    loc = location(br, in);
    struct run_request rq = {
        .argv = args,
        .env = env,
        .cwd = st->config.working_dir,
        .user = st->config.user,
        .network = run_network(br, run),
        .mounts = mp.mounts,
        .n_mounts = mp.n,
        .display = display,
        .location = loc,
    };
    int r = run_step(&br->bc, st, vertex, started, &rq, &res, err);
    strv_free(env);
    if (r < 0 && build_cancelled(br) && !runtime_interrupted()) {
        /* killed because another stage failed: that one's error is reported */
        kiln_error_free(err);
        kiln_error_set(err, ECANCELED, "cancelled: another stage failed");
    }
    if (r < 0)
        goto fail;
    vertex_done(&br->bc, vertex, started);
    rc = finish_layer(br, st, keyd, &res, false, history, NULL, err);
    layer_result_free(&res);
    goto out;
fail:
    fail_step(br, vertex, started, in, err);
    vertex = 0;
out:
    if (rc < 0 && vertex > 0)
        fail_step(br, vertex, started, in, err);
    if (have_mp)
        run_mounts_release(br, &mp);
    if (script_file) {
        unlink(script_file);
        free(script_file);
    }
    free(script);
    strv_free(args);
    return rc;
}

/* ---- WORKDIR ------------------------------------------------------------- */


/* mkdir -p of the WORKDIR as a layer: the directories that do not exist,
 * owned by USER, and their existing parents as they are. */
static int workdir_layer(struct build_run *br, struct stage_state *st, const char *wd,
                         struct layer_result *ret, struct kiln_error **err)
{
    struct lowerfs l = {0};
    bool have = false;
    if (st->n_layers) {
        if (stage_lowerfs(&br->bc, st, &l, err) < 0)
            return -1;
        have = true;
    }
    uid_t uid = 0;
    gid_t gid = 0;
    if (st->config.user && *st->config.user) {
        char *passwd = NULL, *group = NULL;
        size_t len;
        if (have) {
            if (lowerfs_read_file(&l, "/etc/passwd", 16 << 20, &passwd, &len) < 0)
                passwd = NULL;
            if (lowerfs_read_file(&l, "/etc/group", 16 << 20, &group, &len) < 0)
                group = NULL;
        }
        struct run_user u;
        int r = runtime_user_resolve_db(passwd, group, st->config.user, &u, err);
        free(passwd);
        free(group);
        if (r < 0) {
            if (have)
                lowerfs_close(&l);
            return -1;
        }
        uid = u.uid;
        gid = u.gid;
        run_user_free(&u);
    }
    struct layer_writer *w = NULL;
    if (layer_writer_begin(br->bc.store, &br->bc.lw, &w, err) < 0) {
        if (have)
            lowerfs_close(&l);
        return -1;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (br->bc.epoch >= 0) {
        now.tv_sec = br->bc.epoch;
        now.tv_nsec = 0;
    }
    /* walk the components, following symlinks inside the image */
    _cleanup_free_ char *path = xstrdup(wd + 1);
    int rc = 0;
    bool created_any = false;
    struct strbuf done = STRBUF_INIT;
    char *save = NULL;
    for (char *c = strtok_r(path, "/", &save); c && rc == 0; c = strtok_r(NULL, "/", &save)) {
        _cleanup_free_ char *prefix = done.len ? xasprintf("%s/%s", done.buf, c) : xstrdup(c);
        struct lower_node n = {0};
        bool exists = have && !created_any && lowerfs_resolve(&l, prefix, true, &n) == 0;
        if (exists && S_ISDIR(n.st.st_mode)) {
            strbuf_reset(&done);
            strbuf_adds(&done, n.path);
            lower_node_free(&n);
            continue;
        }
        lower_node_free(&n);
        if (exists) {
            rc = kiln_error_set(err, ENOTDIR, "WORKDIR '%s': '/%s' is not a directory", wd,
                                prefix);
            break;
        }
        /* the parent, as it is, then the new directory */
        if (!created_any && done.len) {
            struct lower_node p = {0};
            if (have && lowerfs_resolve(&l, done.buf, false, &p) == 0) {
                _cleanup_free_ char *tmp = xstrdup(done.buf);
                char *s = tmp;
                /* every ancestor of the parent too, so the layer stands alone */
                for (char *slash = strchr(s, '/'); rc == 0; slash = strchr(slash + 1, '/')) {
                    if (slash)
                        *slash = '\0';
                    struct lower_node a = {0};
                    if (lowerfs_resolve(&l, tmp, false, &a) == 0) {
                        struct layer_entry e = {.path = tmp, .st = a.st, .content_fd = -1};
                        e.st.st_uid = a.uid;
                        e.st.st_gid = a.gid;
                        rc = layer_writer_add(w, &e, err);
                    }
                    lower_node_free(&a);
                    if (!slash)
                        break;
                    *slash = '/';
                }
            }
            lower_node_free(&p);
        }
        if (rc < 0)
            break;
        struct layer_entry e = {.path = prefix, .content_fd = -1};
        e.st.st_mode = S_IFDIR | 0755;
        e.st.st_uid = uid;
        e.st.st_gid = gid;
        e.st.st_mtim = now;
        rc = layer_writer_add(w, &e, err);
        created_any = true;
        strbuf_reset(&done);
        strbuf_adds(&done, prefix);
    }
    strbuf_release(&done);
    if (have)
        lowerfs_close(&l);
    if (rc < 0) {
        layer_writer_abort(w);
        return -1;
    }
    return layer_writer_finish(w, ret, err);
}

static int do_workdir(struct build_run *br, struct stage_state *st,
                      const struct df_instruction *in, bool onbuild, struct kiln_error **err)
{
    const char *p = in->u.word.text;
    if (!p || !*p)
        return kiln_error_set(err, 0, "WORKDIR requires exactly one argument");
    const char *cur = st->config.working_dir && *st->config.working_dir
                          ? st->config.working_dir
                          : "/";
    _cleanup_free_ char *joinedp = p[0] == '/' ? xstrdup(p) : xasprintf("%s/%s", cur, p);
    _cleanup_free_ char *wd = path_clean_abs(joinedp);
    free(st->config.working_dir);
    st->config.working_dir = xstrdup(wd);
    _cleanup_free_ char *history = xasprintf("WORKDIR %s", wd);
    if (strcmp(wd, "/") == 0) {
        history_add(&st->config, history, false, NULL);
        return 0;
    }
    int vertex = step_vertex(br, st, in, onbuild);
    double started = monotonic_now();
    struct cache_key key;
    cache_key_begin(&key, st->key);
    cache_key_add_str(&key, "step", "WORKDIR");
    cache_key_add_str(&key, "dir", wd);
    cache_key_add_str(&key, "user", st->config.user);
    char keyd[DIGEST_STR_LEN];
    cache_key_end(&key, keyd);
    struct layer_result res = {0};
    char *created = NULL;
    if (cached_result(br, keyd, &res, &created) == 0) {
        vertex_cached(&br->bc, vertex);
        int r = finish_layer(br, st, keyd, &res, true, history, created, err);
        free(created);
        layer_result_free(&res);
        return r;
    }
    if (workdir_layer(br, st, wd, &res, err) < 0)
        return fail_step(br, vertex, started, in, err);
    vertex_done(&br->bc, vertex, started);
    int r = finish_layer(br, st, keyd, &res, false, history, NULL, err);
    layer_result_free(&res);
    return r;
}

/* ---- COPY and ADD -------------------------------------------------------- */

static const struct plan_ref *ref_of(struct build_run *br, size_t stage,
                                     const struct df_instruction *orig)
{
    const struct plan_stage *ps = &br->plan->stages[stage];
    for (size_t i = 0; i < ps->n_refs; i++)
        if (ps->refs[i].by == orig)
            return &ps->refs[i];
    return NULL;
}

/* The stage an ONBUILD trigger's --from names (by name or index), or
 * SIZE_MAX for an image. */
static size_t trigger_stage(struct build_run *br, const char *name)
{
    size_t k;
    if (plan_find_stage(br->plan, name, br->plan->n_stages, &k))
        return k;
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(name, &end, 10);
    if (*name >= '0' && *name <= '9' && !*end && errno == 0 && v < br->plan->n_stages)
        return (size_t)v;
    return SIZE_MAX;
}

static char *copy_history(const struct df_instruction *in)
{
    const struct df_copy *c = &in->u.copy;
    struct strbuf sb = STRBUF_INIT;
    strbuf_adds(&sb, in->kind == DF_ADD ? "ADD" : "COPY");
    if (c->parents)
        strbuf_adds(&sb, " --parents");
    if (c->chown.text)
        strbuf_addf(&sb, " --chown=%s", c->chown.text);
    if (c->chmod.text)
        strbuf_addf(&sb, " --chmod=%s", c->chmod.text);
    for (size_t i = 0; i < c->n_srcs; i++)
        strbuf_addf(&sb, " %s", c->srcs[i].text);
    for (size_t i = 0; i < c->n_contents; i++)
        strbuf_addf(&sb, " <<%s", c->contents[i].name);
    strbuf_addf(&sb, " %s # buildkit", c->dest.text ? c->dest.text : "");
    return strbuf_detach(&sb, NULL);
}

static int do_copy(struct build_run *br, size_t stage_idx, struct stage_state *st,
                   const struct df_instruction *orig, const struct df_instruction *in,
                   bool onbuild, struct kiln_error **err)
{
    int vertex = step_vertex(br, st, in, onbuild);
    double started = monotonic_now();
    _cleanup_free_ char *history = copy_history(in);
    struct copy_request rq = {
        .c = &in->u.copy,
        .is_add = in->kind == DF_ADD,
        .workdir = st->config.working_dir,
        .context_fd = br->context_fd,
        .ignore = br->ignore,
        .history = history,
    };
    struct copy_from from = {0};
    int ctx_fd = -1;
    if (in->u.copy.from.text) {
        const struct plan_ref *ref = ref_of(br, stage_idx, orig);
        const char *name = in->u.copy.from.text;
        size_t k = SIZE_MAX;
        if (ref && ref->kind == PLAN_REF_STAGE)
            k = ref->stage;
        else if (!ref)
            k = trigger_stage(br, name); /* an ONBUILD trigger: the plan never saw it */
        if (k != SIZE_MAX) {
            if (build_wait_stage(br, stage_idx, k, err) < 0)
                return fail_step(br, vertex, started, in, err);
            from.stage = &br->states[k];
        } else if (build_named_dir(br, name)) {
            ctx_fd = open(build_named_dir(br, name), O_PATH | O_DIRECTORY | O_CLOEXEC);
            if (ctx_fd < 0)
                return kiln_error_set(err, errno, "build context '%s'", name);
            rq.context_fd = ctx_fd;
            rq.ignore = NULL;
        } else if (build_image_state(br, ref && ref->name ? ref->name : name, &from.stage, err) <
                   0) {
            return fail_step(br, vertex, started, in, err);
        }
        if (from.stage)
            rq.from = &from;
    }
    char key[DIGEST_STR_LEN];
    struct layer_result res = {0};
    bool cached = false;
    int r = copy_step(&br->bc, st, &rq, key, &res, &cached, err);
    if (ctx_fd >= 0)
        close(ctx_fd);
    if (r < 0)
        return fail_step(br, vertex, started, in, err);
    char *created = NULL;
    if (cached) {
        vertex_cached(&br->bc, vertex);
        struct cache_record rec;
        if (cache_lookup(br->bc.store, key, &rec) == 0) {
            created = rec.created ? xstrdup(rec.created) : NULL;
            cache_record_free(&rec);
        }
    } else {
        vertex_done(&br->bc, vertex, started);
    }
    r = finish_layer(br, st, key, &res, cached, history, created, err);
    free(created);
    layer_result_free(&res);
    return r;
}

/* ---- stage setup ----------------------------------------------------------- */

static int count_steps(const struct df_stage *stage, char *const *triggers, bool image_base)
{
    int n = image_base ? 1 : 0;
    for (size_t i = 0; i < stage->n_cmds; i++) {
        enum df_kind k = stage->cmds[i]->kind;
        n += k == DF_RUN || k == DF_COPY || k == DF_ADD || k == DF_WORKDIR;
    }
    return n + (int)strv_len(triggers);
}

static void copy_stage_state(struct stage_state *dst, const struct stage_state *src)
{
    image_config_copy(&dst->config, &src->config);
    dst->layers = xcalloc(src->n_layers + 1, sizeof(*dst->layers));
    for (size_t i = 0; i < src->n_layers; i++)
        descriptor_copy(&dst->layers[i], &src->layers[i]);
    dst->n_layers = src->n_layers;
    memcpy(dst->key, src->key, DIGEST_STR_LEN);
    dst->env = strv_copy(src->env);
    dst->args = strv_copy(src->args);
    dst->layer_keys = strv_copy(src->layer_keys);
}

static void scratch_state(struct build_run *br, struct stage_state *st)
{
    image_config_init(&st->config);
    st->config.os = xstrdup(br->plan->target_platform.os);
    st->config.architecture = xstrdup(br->plan->target_platform.arch);
    if (br->plan->target_platform.variant && *br->plan->target_platform.variant)
        st->config.variant = xstrdup(br->plan->target_platform.variant);
    st->config.diff_ids = strv_new();
    struct cache_key k;
    cache_key_begin(&k, NULL);
    cache_key_add_str(&k, "base", "scratch");
    cache_key_add_str(&k, "platform", platform_string());
    cache_key_end(&k, st->key);
    st->env = strv_new();
}

/* FROM NAME where --build-context NAME=DIR: the directory is the stage's
 * file system (BuildKit's local source), one layer, owned by root. */
static int context_stage(struct build_run *br, struct stage_state *st, const char *name,
                         struct kiln_error **err)
{
    const char *dir = build_named_dir(br, name);
    scratch_state(br, st);
    int vertex = vertex_start(&br->bc, "[context %s] load from client", name);
    double started = monotonic_now();
    int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        kiln_error_set(err, errno, "build context '%s': '%s'", name, dir);
        vertex_error(&br->bc, vertex, started, (*err)->msg);
        return -1;
    }
    struct df_word src = {.text = (char *)"."};
    struct df_copy c = {.srcs = &src, .n_srcs = 1, .dest = {.text = (char *)"/"}};
    _cleanup_free_ char *history = xasprintf("context %s", name);
    struct copy_request rq = {
        .c = &c,
        .workdir = "/",
        .context_fd = fd,
        .history = history,
    };
    char key[DIGEST_STR_LEN];
    struct layer_result res = {0};
    bool cached = false;
    int r = copy_step(&br->bc, st, &rq, key, &res, &cached, err);
    close(fd);
    if (r < 0) {
        vertex_error(&br->bc, vertex, started, (*err)->msg);
        return -1;
    }
    char *created = NULL;
    if (cached) {
        struct cache_record rec;
        if (cache_lookup(br->bc.store, key, &rec) == 0) {
            created = rec.created ? xstrdup(rec.created) : NULL;
            cache_record_free(&rec);
        }
        vertex_cached(&br->bc, vertex);
    } else {
        vertex_done(&br->bc, vertex, started);
    }
    char *when = created ? created : rfc3339_time(br->bc.epoch);
    if (!cached) {
        struct cache_record rec = {.layer = res.blob, .created = when};
        memcpy(rec.diff_id, res.diff_id, DIGEST_STR_LEN);
        r = cache_save(br->bc.store, key, &rec, err);
    }
    if (r == 0) {
        stage_add_layer(st, &res.blob, res.diff_id);
        _cleanup_free_ char *t = br->bc.epoch >= 0 ? rfc3339_time(br->bc.epoch) : NULL;
        image_config_add_history(&st->config, t ? t : when, NULL, "buildkit.exporter.image.v0",
                                 false);
        memcpy(st->key, key, DIGEST_STR_LEN);
        build_note_key(br, key);
    }
    free(when);
    layer_result_free(&res);
    return r;
}

static int stage_init(struct build_run *br, size_t idx, struct stage_state *st, char ***triggers,
                      struct kiln_error **err)
{
    const struct plan_stage *ps = &br->plan->stages[idx];
    st->index = (int)idx;
    st->name = ps->name ? xstrdup(ps->name) : NULL;
    *triggers = strv_new();
    switch (ps->base) {
    case PLAN_BASE_SCRATCH:
        scratch_state(br, st);
        break;
    case PLAN_BASE_STAGE: {
        const struct stage_state *base = &br->states[ps->base_stage];
        copy_stage_state(st, base);
        /* the base stage's ONBUILD instructions run here, and stop here */
        strv_free(*triggers);
        *triggers = strv_copy(base->config.onbuild ? base->config.onbuild : (char *[]){NULL});
        if (!*triggers)
            *triggers = strv_new();
        strv_free(st->config.onbuild);
        st->config.onbuild = NULL;
        break;
    }
    case PLAN_BASE_CONTEXT:
        if (build_named_dir(br, ps->base_image)) {
            if (context_stage(br, st, ps->base_image, err) < 0)
                return -1;
            break;
        }
        /* a name for an image (docker-image://) */
        __attribute__((fallthrough));
    case PLAN_BASE_IMAGE: {
        const struct stage_state *img = NULL;
        _cleanup_free_ char *shown = image_display(ps->base_image, NULL);
        /* once per image, as BuildKit */
        pthread_mutex_lock(&br->lock);
        bool first = !strv_contains(br->metadata_shown, shown);
        if (first)
            strv_push(&br->metadata_shown, shown);
        pthread_mutex_unlock(&br->lock);
        int vertex = first ? vertex_start(&br->bc, "[internal] load metadata for %s", shown) : 0;
        double started = monotonic_now();
        if (build_image_state(br, ps->base_image, &img, err) < 0) {
            if (vertex)
                vertex_error(&br->bc, vertex, started, (*err)->msg);
            return -1;
        }
        if (vertex)
            vertex_done(&br->bc, vertex, started);
        memcpy(st->manifest_digest, img->manifest_digest, DIGEST_STR_LEN);
        copy_stage_state(st, img);
        free(st->config.created);
        st->config.created = NULL;
        strv_free(*triggers);
        *triggers = strv_copy(st->config.onbuild ? st->config.onbuild : (char *[]){NULL});
        if (!*triggers)
            *triggers = strv_new();
        strv_free(st->config.onbuild);
        st->config.onbuild = NULL;
        strv_free(st->args);
        st->args = NULL;
        break;
    }
    }
    if (!st->args)
        st->args = strv_new();
    /* BuildKit makes sure PATH is always set */
    if (!image_config_getenv(&st->config, "PATH"))
        image_config_setenv(&st->config, "PATH", DEFAULT_PATH);
    strv_free(st->env);
    st->env = strv_copy(st->config.env);
    st->cmd_set = false;
    return 0;
}

/* Parses an ONBUILD trigger ("RUN make") into an instruction. */
static int parse_trigger(const char *text, struct df_ast **ret_ast, struct df_file **ret_file,
                         struct kiln_error **err)
{
    _cleanup_free_ char *doc = xasprintf("FROM scratch\n%s\n", text);
    if (dockerfile_parse("ONBUILD trigger", doc, strlen(doc), ret_ast, err) < 0)
        return -1;
    if (df_file_from_ast(*ret_ast, ret_file, err) < 0) {
        dockerfile_free(*ret_ast);
        return -1;
    }
    if ((*ret_file)->n_stages != 1 || (*ret_file)->stages[0].n_cmds != 1) {
        df_file_free(*ret_file);
        dockerfile_free(*ret_ast);
        return kiln_error_set(err, 0, "onbuild trigger should be a single expression: %s", text);
    }
    return 0;
}

static int dispatch(struct build_run *br, size_t idx, struct stage_state *st,
                    const struct df_ast *ast, const struct df_instruction *orig, bool onbuild,
                    struct kiln_error **err)
{
    if (orig->kind == DF_ARG)
        return do_arg(br, st, orig, err);
    struct expand_ctx x = {st->env, br->plan->escape};
    struct df_instruction *in = NULL;
    if (df_instruction_expand(ast, orig, expand_cb, &x, &in, err) < 0)
        return -1;
    int r;
    switch (in->kind) {
    case DF_RUN:
        r = do_run(br, st, in, onbuild, err);
        break;
    case DF_COPY:
    case DF_ADD:
        r = do_copy(br, idx, st, orig, in, onbuild, err);
        break;
    case DF_WORKDIR:
        r = do_workdir(br, st, in, onbuild, err);
        break;
    case DF_FROM:
        r = kiln_error_set(err, 0, "internal: FROM inside a stage");
        break;
    default:
        r = meta_dispatch(st, in, err);
        if (r < 0) {
            _cleanup_free_ char *loc = location(br, orig);
            kiln_error_wrap(err, "%s", loc);
        }
        break;
    }
    df_instruction_free(in);
    return r;
}

int stage_build(struct build_run *br, size_t idx, struct kiln_error **err)
{
    const struct plan_stage *ps = &br->plan->stages[idx];
    struct stage_state *st = &br->states[idx];
    char **triggers = NULL;
    if (stage_init(br, idx, st, &triggers, err) < 0) {
        strv_free(triggers);
        return -1;
    }
    free(st->display_name);
    st->display_name = NULL;
    if (br->plan->n_stages > 1)
        st->display_name = ps->name ? xstrdup(ps->name) : xasprintf("stage-%zu", idx);
    bool image_base = ps->base == PLAN_BASE_IMAGE ||
                      (ps->base == PLAN_BASE_CONTEXT && !build_named_dir(br, ps->base_image));
    st->total_steps = count_steps(ps->stage, triggers, image_base);
    st->step = 0;
    if (image_base) {
        _cleanup_free_ char *prefix = step_prefix(st);
        _cleanup_free_ char *shown = image_display(ps->base_image, st->manifest_digest);
        int v = vertex_start(&br->bc, "%s FROM %s", prefix, shown);
        vertex_cached(&br->bc, v);
    }
    int r = 0;
    for (size_t i = 0; triggers[i] && r == 0; i++) {
        struct df_ast *tast = NULL;
        struct df_file *tfile = NULL;
        r = parse_trigger(triggers[i], &tast, &tfile, err);
        if (r == 0) {
            in_trigger = true;
            r = dispatch(br, idx, st, tast, tfile->stages[0].cmds[0], true, err);
            in_trigger = false;
            df_file_free(tfile);
            dockerfile_free(tast);
        }
    }
    strv_free(triggers);
    for (size_t i = 0; i < ps->stage->n_cmds && r == 0; i++) {
        if (runtime_interrupted())
            return kiln_error_set_status(err, runtime_interrupted() == SIGTERM
                                                  ? KILN_EXIT_SIGTERM
                                                  : KILN_EXIT_SIGINT,
                                         0, "interrupted");
        if (build_cancelled(br))
            return kiln_error_set(err, ECANCELED, "cancelled: another stage failed");
        r = dispatch(br, idx, st, br->ast, ps->stage->cmds[i], false, err);
    }
    if (r == 0)
        st->done = true;
    return r;
}
