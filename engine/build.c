/* engine_build: the order of a build.
 *
 *   context + Dockerfile -> parse -> typed instructions -> plan (+ checks)
 *   -> cache import -> each needed stage, dependencies first
 *   -> the target's image: labels, history times, config + manifest
 *   -> names, outputs, cache export. */
#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "dockerfile/lint.h"
#include "engine/build_run.h"
#include "engine/history.h"
#include "engine/output.h"
#include "layers/gc.h"
#include "layers/reference.h"
#include "layers/refs.h"
#include "layers/registry.h"
#include "layers/transport.h"
#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/platform.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"
#include "runtime/runtime.h"

const char *build_named_dir(struct build_run *br, const char *name)
{
    for (size_t i = 0; i < br->bc.req->n_contexts; i++) {
        const struct build_context_arg *c = &br->bc.req->contexts[i];
        if (strcasecmp(c->name, name) == 0 && strncmp(c->value, "docker-image://", 15) != 0)
            return c->value;
    }
    return NULL;
}

/* --build-context NAME=docker-image://REF maps a name to an image. */
static const char *named_image(struct build_run *br, const char *name)
{
    for (size_t i = 0; i < br->bc.req->n_contexts; i++) {
        const struct build_context_arg *c = &br->bc.req->contexts[i];
        if (strcasecmp(c->name, name) == 0 && strncmp(c->value, "docker-image://", 15) == 0)
            return c->value + 15;
    }
    return NULL;
}

static void registry_status(void *ud, const char *line)
{
    struct build_run *br = ud;
    build_warn(&br->bc, "%s", line);
}

/* The image named by a FROM or --from: in the store, or pulled. */
static int resolve_image(struct build_run *br, const char *name, struct descriptor *ret,
                         struct kiln_error **err)
{
    const char *mapped = named_image(br, name);
    if (mapped)
        name = mapped;
    struct image_ref ref;
    if (ref_parse(name, &ref, err) < 0)
        return kiln_error_wrap(err, "base image '%s'", name);
    _cleanup_free_ char *familiar = ref_familiar(&ref);
    bool by_digest = ref.digest != NULL;
    ref_free(&ref);
    if (!br->bc.req->pull || by_digest) {
        struct kiln_error *e = NULL;
        if (store_resolve(br->bc.store, familiar, ret, NULL, &e) == 0)
            return 0;
        kiln_error_free(&e);
    }
    struct registry_opts o = {.status = NULL, .ud = br};
    (void)registry_status;
    if (registry_pull(br->bc.store, familiar, &o, ret, err) < 0)
        return kiln_error_wrap(err, "%s", name);
    return 0;
}

int build_image_state(struct build_run *br, const char *name, const struct stage_state **ret,
                      struct kiln_error **err)
{
    /* one resolution at a time: two stages naming one image pull it once */
    pthread_mutex_lock(&br->images_lock);
    int rc = -1;
    for (size_t i = 0; i < br->n_images; i++) {
        if (strcmp(br->images[i]->name, name) == 0) {
            *ret = &br->images[i]->state;
            rc = 0;
            goto out;
        }
    }
    struct descriptor desc;
    if (resolve_image(br, name, &desc, err) < 0)
        goto out;
    struct image img;
    int r = image_load(br->bc.store, &desc, &img, err);
    descriptor_free(&desc);
    if (r < 0)
        goto out;
    struct external_image *x = xcalloc(1, sizeof(*x));
    x->name = xstrdup(name);
    struct stage_state *st = &x->state;
    image_config_copy(&st->config, &img.config);
    st->n_layers = img.manifest.n_layers;
    st->layers = xcalloc(st->n_layers + 1, sizeof(*st->layers));
    for (size_t i = 0; i < st->n_layers; i++)
        descriptor_copy(&st->layers[i], &img.manifest.layers[i]);
    struct cache_key k;
    cache_key_begin(&k, NULL);
    cache_key_add_str(&k, "base", "image");
    cache_key_add_str(&k, "manifest", img.desc.digest);
    cache_key_end(&k, st->key);
    memcpy(st->manifest_digest, img.desc.digest, DIGEST_STR_LEN);
    st->env = strv_copy(st->config.env ? st->config.env : (char *[]){NULL});
    st->done = true;
    image_free(&img);
    pthread_mutex_lock(&br->lock);
    br->images = xreallocarray(br->images, br->n_images + 1, sizeof(*br->images));
    br->images[br->n_images++] = x;
    pthread_mutex_unlock(&br->lock);
    *ret = st;
    rc = 0;
out:
    pthread_mutex_unlock(&br->images_lock);
    return rc;
}

/* ---- the schedule: stages in parallel threads -------------------------- */

/* Is this thread working on a stage (holding one of br->slots)? */
static __thread bool holds_slot;

bool build_cancelled(struct build_run *br)
{
    if (runtime_interrupted())
        return true;
    pthread_mutex_lock(&br->lock);
    bool f = br->failed;
    pthread_mutex_unlock(&br->lock);
    return f;
}

void build_note_key(struct build_run *br, const char *key)
{
    pthread_mutex_lock(&br->lock);
    strv_push(&br->used_keys, key);
    pthread_mutex_unlock(&br->lock);
}

/* Does stage a need stage b, directly or through other stages? */
static bool stage_needs(const struct plan *p, size_t a, size_t b, size_t depth)
{
    if (a == b)
        return true;
    if (depth > p->n_stages)
        return false;
    const struct plan_stage *ps = &p->stages[a];
    for (size_t i = 0; i < ps->n_deps; i++)
        if (stage_needs(p, ps->deps[i], b, depth + 1))
            return true;
    if (ps->base == PLAN_BASE_STAGE && stage_needs(p, ps->base_stage, b, depth + 1))
        return true;
    return false;
}

static int cancelled_error(struct kiln_error **err)
{
    if (runtime_interrupted())
        return kiln_error_set_status(err, runtime_interrupted() == SIGTERM ? KILN_EXIT_SIGTERM
                                                                          : KILN_EXIT_SIGINT,
                                     0, "interrupted");
    return kiln_error_set(err, ECANCELED, "cancelled: another stage failed");
}

/* Marks stage idx finished (lock held). */
static void stage_finished(struct build_run *br, size_t idx, int r)
{
    br->status[idx] = r == 0 ? STAGE_DONE : STAGE_FAILED;
    if (r < 0 && !br->failed) {
        br->failed = true;
        /* stop the containers other stages are running (never drained) */
        if (br->cancel_pipe[1] >= 0)
            (void)!write(br->cancel_pipe[1], "x", 1);
    }
    pthread_cond_broadcast(&br->cond);
}

int build_wait_stage(struct build_run *br, size_t from, size_t idx, struct kiln_error **err)
{
    if (from != SIZE_MAX && from != idx && stage_needs(br->plan, idx, from, 0))
        return kiln_error_set(err, 0, "circular dependency detected on stage: %s",
                              br->plan->stages[idx].name ? br->plan->stages[idx].name
                                                         : "(unnamed)");
    if (from == idx)
        return kiln_error_set(err, 0, "a stage cannot use itself");
    pthread_mutex_lock(&br->lock);
    for (;;) {
        switch (br->status[idx]) {
        case STAGE_DONE:
            pthread_mutex_unlock(&br->lock);
            return 0;
        case STAGE_FAILED:
            pthread_mutex_unlock(&br->lock);
            return cancelled_error(err);
        case STAGE_IDLE: {
            /* nobody scheduled it: build it here, in this thread's slot */
            br->status[idx] = STAGE_RUNNING;
            pthread_mutex_unlock(&br->lock);
            const struct plan_stage *ps = &br->plan->stages[idx];
            int r = 0;
            for (size_t i = 0; i < ps->n_deps && r == 0; i++)
                r = build_wait_stage(br, idx, ps->deps[i], err);
            if (r == 0 && ps->base == PLAN_BASE_STAGE)
                r = build_wait_stage(br, idx, ps->base_stage, err);
            if (r == 0)
                r = stage_build(br, idx, err);
            pthread_mutex_lock(&br->lock);
            stage_finished(br, idx, r);
            pthread_mutex_unlock(&br->lock);
            return r;
        }
        case STAGE_QUEUED:
        case STAGE_RUNNING:
            if (br->failed) {
                pthread_mutex_unlock(&br->lock);
                return cancelled_error(err);
            }
            /* give our slot to others while we wait */
            if (holds_slot) {
                br->slots++;
                pthread_cond_broadcast(&br->cond);
            }
            pthread_cond_wait(&br->cond, &br->lock);
            if (holds_slot) {
                while (br->slots == 0)
                    pthread_cond_wait(&br->cond, &br->lock);
                br->slots--;
            }
            break;
        }
    }
}

struct stage_job {
    struct build_run *br;
    size_t idx;
    pthread_t thread;
    bool started;
    int rc;
    struct kiln_error *err;
    double failed_at; /* when it failed (the first failure is the one reported) */
};

static void *stage_thread(void *arg)
{
    struct stage_job *job = arg;
    struct build_run *br = job->br;
    const struct plan_stage *ps = &br->plan->stages[job->idx];
    int r = 0;
    for (size_t i = 0; i < ps->n_deps && r == 0; i++)
        r = build_wait_stage(br, SIZE_MAX, ps->deps[i], &job->err);
    if (r == 0 && ps->base == PLAN_BASE_STAGE)
        r = build_wait_stage(br, SIZE_MAX, ps->base_stage, &job->err);
    pthread_mutex_lock(&br->lock);
    if (r == 0) {
        while (br->slots == 0 && !br->failed)
            pthread_cond_wait(&br->cond, &br->lock);
        if (br->failed) {
            pthread_mutex_unlock(&br->lock);
            r = cancelled_error(&job->err);
            pthread_mutex_lock(&br->lock);
        } else {
            br->slots--;
            holds_slot = true;
            br->status[job->idx] = STAGE_RUNNING;
            pthread_mutex_unlock(&br->lock);
            r = stage_build(br, job->idx, &job->err);
            pthread_mutex_lock(&br->lock);
            holds_slot = false;
            br->slots++;
        }
    }
    if (r < 0)
        job->failed_at = monotonic_now();
    stage_finished(br, job->idx, r);
    pthread_mutex_unlock(&br->lock);
    job->rc = r;
    return NULL;
}

/* Builds the stages the target needs, independent ones at the same time. */
static int build_stages(struct build_run *br, struct kiln_error **err)
{
    const struct plan *p = br->plan;
    br->status = xcalloc(p->n_stages + 1, sizeof(*br->status));
    if (p->n_order == 1) {
        br->status[p->order[0]] = STAGE_RUNNING;
        int r = stage_build(br, p->order[0], err);
        br->status[p->order[0]] = r == 0 ? STAGE_DONE : STAGE_FAILED;
        return r;
    }
    if (pipe2(br->cancel_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        return kiln_error_set(err, errno, "pipe");
    br->bc.cancel_fd = br->cancel_pipe[0];
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    br->slots = cpus > 2 ? 2 * (int)cpus : 4; /* steps wait on I/O and processes too */
    struct stage_job *jobs = xcalloc(p->n_order, sizeof(*jobs));
    for (size_t i = 0; i < p->n_order; i++)
        br->status[p->order[i]] = STAGE_QUEUED;
    int rc = 0;
    for (size_t i = 0; i < p->n_order; i++) {
        jobs[i].br = br;
        jobs[i].idx = p->order[i];
        if (pthread_create(&jobs[i].thread, NULL, stage_thread, &jobs[i]) != 0) {
            rc = kiln_error_set(err, errno, "start a thread for stage %zu", p->order[i]);
            pthread_mutex_lock(&br->lock);
            for (size_t k = i; k < p->n_order; k++)
                br->status[p->order[k]] = STAGE_FAILED;
            br->failed = true;
            pthread_cond_broadcast(&br->cond);
            pthread_mutex_unlock(&br->lock);
            break;
        }
        jobs[i].started = true;
    }
    struct stage_job *first = NULL;
    for (size_t i = 0; i < p->n_order; i++) {
        if (!jobs[i].started)
            continue;
        pthread_join(jobs[i].thread, NULL);
        if (jobs[i].rc < 0 && jobs[i].err) {
            bool cancel = jobs[i].err->code == ECANCELED;
            if (!cancel && (!first || jobs[i].failed_at < first->failed_at))
                first = &jobs[i];
        }
    }
    if (rc == 0) {
        for (size_t i = 0; i < p->n_order && !first; i++)
            if (jobs[i].rc < 0)
                first = &jobs[i]; /* only cancellations (an interrupted build) */
    }
    if (rc == 0 && first) {
        *err = first->err;
        first->err = NULL;
        rc = -1;
    }
    for (size_t i = 0; i < p->n_order; i++)
        kiln_error_free(&jobs[i].err);
    free(jobs);
    return rc;
}

/* /etc/hosts and /etc/resolv.conf for RUN steps, once per build. */
static int write_network_files(struct build_ctx *bc, struct kiln_error **err)
{
    struct strbuf hosts = STRBUF_INIT;
    strbuf_addf(&hosts, "127.0.0.1\tlocalhost %s\n::1\tlocalhost ip6-localhost ip6-loopback\n",
                bc->hostname);
    for (size_t i = 0; bc->req->add_hosts && bc->req->add_hosts[i]; i++) {
        const char *h = bc->req->add_hosts[i];
        const char *colon = strchr(h, ':');
        strbuf_addf(&hosts, "%s\t%.*s\n", colon + 1, (int)(colon - h), h);
    }
    bc->hosts_file = path_join(bc->scratch, "hosts");
    bc->resolv_file = path_join(bc->scratch, "resolv.conf");
    int r = fs_write_atomic_at(AT_FDCWD, bc->hosts_file, hosts.buf, hosts.len, 0644, false);
    strbuf_release(&hosts);
    char *resolv = NULL;
    size_t len = 0;
    if (r == 0 && fs_read_file_at(AT_FDCWD, "/etc/resolv.conf", 1 << 20, &resolv, &len) < 0) {
        resolv = xstrdup("");
        len = 0;
    }
    if (r == 0)
        r = fs_write_atomic_at(AT_FDCWD, bc->resolv_file, resolv, len, 0644, false);
    free(resolv);
    if (r < 0)
        return kiln_error_set(err, -r, "write /etc/hosts and /etc/resolv.conf for RUN");
    return 0;
}

static int parse_and_plan(struct build_run *br, struct kiln_error **err)
{
    struct build_ctx *bc = &br->bc;
    int v = vertex_start(bc, "[internal] load build definition from %s", br->in.dockerfile_name);
    double started = monotonic_now();
    vertex_status(bc, v, "transferring dockerfile: %zuB done", br->in.dockerfile_len);
    if (dockerfile_parse(br->in.dockerfile_name, br->in.dockerfile, br->in.dockerfile_len,
                         &br->ast, err) < 0 ||
        df_file_from_ast(br->ast, &br->file, err) < 0) {
        vertex_error(bc, v, started, "failed to parse the Dockerfile");
        return -1;
    }
    vertex_done(bc, v, started);
    for (size_t i = 0; i < br->ast->n_warnings; i++)
        build_warn(bc, "%s (line %d)", br->ast->warnings[i].msg, br->ast->warnings[i].line);

    char **names = strv_new();
    for (size_t i = 0; i < bc->req->n_contexts; i++)
        strv_push(&names, bc->req->contexts[i].name);
    struct plan_opts po = {
        .target = bc->req->target,
        .build_args = bc->req->build_args,
        .platform = bc->req->platform,
        .named_contexts = names,
    };
    int r = plan_create(br->file, &po, &br->plan, err);
    strv_free(names);
    if (r < 0)
        return -1;
    if (bc->req->platform) {
        struct plan_platform host;
        plan_host_platform(&host);
        bool same = strcmp(host.os, br->plan->target_platform.os) == 0 &&
                    strcmp(host.arch, br->plan->target_platform.arch) == 0;
        plan_platform_clear(&host);
        if (!same)
            return kiln_error_set(err, 0, "--platform %s: kiln builds for the machine it runs "
                                          "on (%s) only",
                                  bc->req->platform, platform_string());
    }
    /* FROM --platform: the build machine's only (no emulation) */
    for (size_t i = 0; i < br->plan->n_order; i++) {
        const struct plan_stage *ps = &br->plan->stages[br->plan->order[i]];
        if (!ps->platform || !*ps->platform)
            continue;
        _cleanup_free_ char *want = xstrdup(ps->platform);
        char *os = want, *arch = strchr(want, '/');
        if (arch)
            *arch++ = '\0';
        char *variant = arch ? strchr(arch, '/') : NULL;
        if (variant)
            *variant = '\0';
        struct plan_platform host;
        plan_host_platform(&host);
        bool same = arch && strcmp(host.os, os) == 0 && strcmp(host.arch, arch) == 0;
        plan_platform_clear(&host);
        if (!same)
            return kiln_error_set(err, 0,
                                  "%s:%d: FROM --platform=%s: kiln builds for the machine it runs "
                                  "on (%s) only",
                                  br->in.dockerfile_name, ps->stage->from->node->start_line,
                                  ps->platform, platform_string());
    }
    for (size_t i = 0; br->plan->warnings && br->plan->warnings[i]; i++)
        build_warn(bc, "%s", br->plan->warnings[i]);
    /* BuildKit's build checks run with every build and report warnings */
    struct lint_result lr = {0};
    struct lint_opts lo = {0};
    if (lint_run(br->file, br->plan, &lo, &lr, err) < 0)
        return -1;
    for (size_t i = 0; i < lr.n_findings; i++)
        build_warn(bc, "%s: %s (line %d)", lr.findings[i].rule, lr.findings[i].message,
                   lr.findings[i].line);
    bool lint_error = lr.config.error && lr.n_findings;
    lint_result_clear(&lr);
    if (lint_error)
        return kiln_error_set(err, 0, "lint violation found for rules (check=error=true)");
    return 0;
}

static int load_context(struct build_run *br, struct kiln_error **err)
{
    struct build_ctx *bc = &br->bc;
    if (context_prepare(bc, &br->in, err) < 0)
        return -1;
    bc->context_dir = xstrdup(br->in.context_dir);
    br->context_fd = open(br->in.context_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (br->context_fd < 0)
        return kiln_error_set(err, errno, "open the build context '%s'", br->in.context_dir);
    return 0;
}

static int load_ignore(struct build_run *br, struct kiln_error **err)
{
    struct build_ctx *bc = &br->bc;
    int v = vertex_start(bc, "[internal] load .dockerignore");
    double started = monotonic_now();
    const char *text = br->in.ignore_text ? br->in.ignore_text : "";
    if (ignore_parse(text, strlen(text), &br->ignore, err) < 0) {
        kiln_error_wrap(err, "%s", br->in.ignore_name ? br->in.ignore_name : ".dockerignore");
        vertex_error(bc, v, started, (*err)->msg);
        return -1;
    }
    vertex_status(bc, v, "transferring context: %zuB done", strlen(text));
    vertex_done(bc, v, started);
    return 0;
}

/* The target's image into the store (config, manifest) and its names. */
static int commit_image(struct build_run *br, struct stage_state *st, struct build_result *ret,
                        struct kiln_error **err)
{
    struct build_ctx *bc = &br->bc;
    int v = vertex_start(bc, "exporting to image");
    double started = monotonic_now();
    for (size_t i = 0; bc->req->labels && bc->req->labels[i]; i++) {
        const char *eq = strchr(bc->req->labels[i], '=');
        _cleanup_free_ char *k = xstrndup(bc->req->labels[i], (size_t)(eq - bc->req->labels[i]));
        strmap_set(&st->config.labels, k, eq + 1);
    }
    history_fill_created(&st->config, 0);
    if (bc->epoch >= 0) {
        /* SOURCE_DATE_EPOCH: nothing in the config is later than it (base
         * image history that is older stays as it is), as BuildKit */
        history_clamp_created(&st->config, bc->epoch);
        free(st->config.created);
        st->config.created = rfc3339_time(bc->epoch);
    } else if (!st->config.created) {
        st->config.created = rfc3339_time(-1);
    }
    vertex_status(bc, v, "exporting layers %.1fs done", monotonic_now() - started);
    struct descriptor desc;
    if (image_commit(bc->store, &st->config, st->layers, st->n_layers, &desc, ret->image_id,
                     err) < 0) {
        vertex_error(bc, v, started, (*err)->msg);
        return -1;
    }
    vertex_status(bc, v, "writing image %s done", ret->image_id);
    int r = 0;
    for (size_t i = 0; bc->req->tags && bc->req->tags[i] && r == 0; i++) {
        r = store_tag(bc->store, bc->req->tags[i], &desc, err);
        if (r == 0) {
            struct image_ref ref;
            struct kiln_error *e = NULL;
            if (ref_parse(bc->req->tags[i], &ref, &e) == 0) {
                _cleanup_free_ char *full = ref_full(&ref);
                vertex_status(bc, v, "naming to %s done", full);
                ref_free(&ref);
            }
            kiln_error_free(&e);
        }
    }
    if (r == 0 && (!bc->req->tags || !bc->req->tags[0]))
        r = store_add_untagged(bc->store, &desc, err);
    if (r < 0) {
        descriptor_free(&desc);
        vertex_error(bc, v, started, (*err)->msg);
        return -1;
    }
    ret->manifest = desc;
    vertex_done(bc, v, started);
    return 0;
}

static int export_outputs(struct build_run *br, struct stage_state *st,
                          const struct build_result *res, struct kiln_error **err)
{
    struct build_ctx *bc = &br->bc;
    for (size_t i = 0; i < bc->req->n_outputs; i++) {
        const struct build_output *o = &bc->req->outputs[i];
        if (o->type == OUTPUT_IMAGE)
            continue;
        int v = vertex_start(bc, "exporting to %s", o->dest);
        double started = monotonic_now();
        int r = 0;
        if (o->type == OUTPUT_LOCAL) {
            r = output_local(bc, st, o->dest, err);
        } else if (o->type == OUTPUT_TAR) {
            int fd = strcmp(o->dest, "-") == 0
                         ? STDOUT_FILENO
                         : open(o->dest, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (fd < 0) {
                r = kiln_error_set(err, errno, "--output: create '%s'", o->dest);
            } else {
                r = output_tar(bc, st, fd, err);
                if (fd != STDOUT_FILENO)
                    close(fd);
            }
        } else {
            struct transport_ref dst = {
                .kind = o->type == OUTPUT_OCI ? TRANSPORT_OCI_ARCHIVE : TRANSPORT_DOCKER_ARCHIVE,
                .path = o->dest,
                .ref = o->name ? o->name
                               : (bc->req->tags && bc->req->tags[0] ? bc->req->tags[0] : NULL),
                .index = -1,
            };
            char *name = dst.ref ? (char *)dst.ref : NULL;
            char *names[] = {name, NULL};
            r = transport_export(bc->store, &res->manifest, names, 1, &dst, err);
        }
        if (r < 0) {
            vertex_error(bc, v, started, (*err)->msg);
            return -1;
        }
        vertex_done(bc, v, started);
    }
    return 0;
}

static void build_run_free(struct build_run *br)
{
    if (br->states) {
        for (size_t i = 0; br->plan && i < br->plan->n_stages; i++)
            stage_state_free(&br->states[i]);
        free(br->states);
    }
    for (size_t i = 0; i < br->n_images; i++) {
        free(br->images[i]->name);
        stage_state_free(&br->images[i]->state);
        free(br->images[i]);
    }
    free(br->images);
    free(br->status);
    for (int i = 0; i < 2; i++)
        if (br->cancel_pipe[i] >= 0)
            close(br->cancel_pipe[i]);
    plan_free(br->plan);
    df_file_free(br->file);
    dockerfile_free(br->ast);
    ignore_free(br->ignore);
    if (br->context_fd >= 0)
        close(br->context_fd);
    build_input_free(&br->in);
    strv_free(br->used_keys);
    strv_free(br->metadata_shown);
    struct build_ctx *bc = &br->bc;
    filehash_close(bc->filehash);
    if (bc->scratch) {
        fs_rm_rf(bc->scratch);
        free(bc->scratch);
    }
    free(bc->hosts_file);
    free(bc->resolv_file);
    free(bc->hostname);
    free(bc->context_dir);
    gc_unlock(bc->gc_lockfd);
    store_close(bc->store);
    pthread_mutex_destroy(&bc->lock);
    pthread_mutex_destroy(&br->lock);
    pthread_mutex_destroy(&br->images_lock);
    pthread_cond_destroy(&br->cond);
}

static int64_t build_epoch(const struct build_request *req)
{
    if (req->timestamp >= 0)
        return req->timestamp;
    for (size_t i = 0; req->build_args && req->build_args[i]; i++)
        if (strncmp(req->build_args[i], "SOURCE_DATE_EPOCH=", 18) == 0)
            return strtoll(req->build_args[i] + 18, NULL, 10);
    return -1;
}

int engine_build(const struct build_request *req, const struct build_progress *progress,
                 struct build_result *ret, struct kiln_error **err)
{
    struct build_run br;
    memset(&br, 0, sizeof(br));
    br.context_fd = -1;
    br.cancel_pipe[0] = br.cancel_pipe[1] = -1;
    br.used_keys = strv_new();
    struct build_ctx *bc = &br.bc;
    bc->gc_lockfd = -1;
    bc->req = req;
    bc->progress = progress;
    bc->epoch = build_epoch(req);
    bc->t0 = monotonic_now();
    pthread_mutex_init(&bc->lock, NULL);
    pthread_mutex_init(&br.lock, NULL);
    pthread_mutex_init(&br.images_lock, NULL);
    pthread_cond_init(&br.cond, NULL);
    /* curl's global state, before any thread may download */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    bc->lw.compression = req->compression;
    bc->lw.level = req->compression_level;
    bc->lw.clamp_mtime = bc->epoch;
    memset(ret, 0, sizeof(*ret));
    int rc = -1;

    /* Until the image is named, what the build writes is reachable from
     * nothing: a prune must wait (layers/gc.h, the contract). */
    if (store_open(req->store_root, &bc->store, err) < 0 ||
        gc_lock_shared(bc->store, &bc->gc_lockfd, err) < 0)
        goto out;
    /* resolved when a step first needs a rootfs: a fully cached build mounts nothing */
    bc->driver = req->storage_driver;
    const struct userns_info *ns = userns_current();
    if (ns)
        vertex_status(bc, 0, "building as uid %u in %s identity mode (%s)", (unsigned)ns->host_uid,
                      userns_mode_name(ns->mode), ns->why ? ns->why : "forced");
    if (store_mkdtemp(bc->store, "build", &bc->scratch, err) < 0)
        goto out;
    /* a per-build hostname, like BuildKit's sandbox name */
    const char *suffix = strrchr(bc->scratch, '-');
    bc->hostname = xasprintf("kiln-%s", suffix ? suffix + 1 : "build");
    if (write_network_files(bc, err) < 0)
        goto out;
    bc->filehash = filehash_open(bc->store);
    if (load_context(&br, err) < 0)
        goto out;
    if (parse_and_plan(&br, err) < 0)
        goto out;
    if (load_ignore(&br, err) < 0)
        goto out;
    for (size_t i = 0; i < req->n_cache_from; i++) {
        struct registry_opts o = {0};
        int v = vertex_start(bc, "importing cache manifest from %s",
                             req->cache_from[i].ref ? req->cache_from[i].ref : req->cache_from[i].dir);
        double started = monotonic_now();
        struct kiln_error *e = NULL;
        if (cache_remote_import(bc->store, &req->cache_from[i], &o, &e) < 0) {
            /* a missing cache is not an error for the build (as BuildKit) */
            build_warn(bc, "importing cache: %s", e->msg);
            vertex_error(bc, v, started, e->msg);
            kiln_error_free(&e);
        } else {
            vertex_done(bc, v, started);
        }
    }
    br.states = xcalloc(br.plan->n_stages + 1, sizeof(*br.states));
    if (build_stages(&br, err) < 0)
        goto out;
    struct stage_state *target = &br.states[br.plan->target];
    if (commit_image(&br, target, ret, err) < 0)
        goto out;
    if (export_outputs(&br, target, ret, err) < 0)
        goto out;
    for (size_t i = 0; i < req->n_cache_to; i++) {
        struct registry_opts o = {0};
        const struct cache_spec *c = &req->cache_to[i];
        int v = vertex_start(bc, "exporting cache to %s", c->ref ? c->ref : c->dir);
        double started = monotonic_now();
        /* mode=max: every step of every stage; min: the target image's layers */
        char **keys = c->mode && strcmp(c->mode, "max") == 0
                          ? br.used_keys
                          : (target->layer_keys ? target->layer_keys : (char *[]){NULL});
        if (cache_remote_export(bc->store, c, keys, &o, err) < 0) {
            vertex_error(bc, v, started, (*err)->msg);
            goto out;
        }
        vertex_done(bc, v, started);
    }
    rc = 0;
out:
    if (rc < 0 && ret->manifest.media_type) {
        free(ret->manifest.media_type);
        ret->manifest.media_type = NULL;
    }
    build_run_free(&br);
    return rc;
}
