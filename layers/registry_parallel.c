/* Several blob transfers at once: clones of a client (one curl handle
 * each, the same settings and tokens) on a few threads.  Progress lines
 * are serialised, the first error stops the others from taking new work. */
#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "layers/registry_internal.h"
#include "lib/xalloc.h"

#define PARALLEL_MAX 8
#define PARALLEL_DEFAULT 3

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

struct reg_client *reg_client_clone(const struct reg_client *c)
{
    struct reg_client *n = xcalloc(1, sizeof(*n));
    n->registry = xstrdup(c->registry);
    n->host = xstrdup(c->host);
    n->base = dup_or_null(c->base);
    n->insecure = c->insecure;
    n->loopback = c->loopback;
    if (c->ca_blob) {
        n->ca_blob = xmemdup(c->ca_blob, c->ca_len);
        n->ca_len = c->ca_len;
    }
    n->client_cert = dup_or_null(c->client_cert);
    n->client_key = dup_or_null(c->client_key);
    n->user = dup_or_null(c->user);
    n->pass = dup_or_null(c->pass);
    n->scheme = c->scheme;
    n->realm = dup_or_null(c->realm);
    n->service = dup_or_null(c->service);
    n->tokens = xcalloc(c->n_tokens + 1, sizeof(*n->tokens));
    for (size_t i = 0; i < c->n_tokens; i++) {
        n->tokens[i].scope = xstrdup(c->tokens[i].scope);
        n->tokens[i].token = xstrdup(c->tokens[i].token);
        n->tokens[i].expires = c->tokens[i].expires;
    }
    n->n_tokens = c->n_tokens;
    n->pinged = c->pinged;
    n->opts = c->opts;
    n->backoff_ms = c->backoff_ms;
    n->curl = curl_easy_init();
    if (!n->curl)
        abort(); /* out of memory */
    return n;
}

unsigned reg_parallelism(void)
{
    const char *e = getenv("KILN_REGISTRY_PARALLEL");
    if (e && *e) {
        char *end = NULL;
        long v = strtol(e, &end, 10);
        if (end && !*end && v >= 1)
            return v > PARALLEL_MAX ? PARALLEL_MAX : (unsigned)v;
    }
    return PARALLEL_DEFAULT;
}

struct par {
    pthread_mutex_t lock;
    size_t next, n;
    bool failed;
    struct kiln_error *err;
    reg_job_fn fn;
    void *ud;
    const struct registry_opts *orig;
    struct registry_opts opts; /* status goes through locked_status */
};

struct worker {
    struct par *p;
    struct reg_client *c;
    pthread_t tid;
};

static void locked_status(void *ud, const char *line)
{
    struct par *p = ud;
    pthread_mutex_lock(&p->lock);
    p->orig->status(p->orig->ud, line);
    pthread_mutex_unlock(&p->lock);
}

static void *work(void *arg)
{
    struct worker *w = arg;
    struct par *p = w->p;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        size_t i = p->next;
        bool stop = p->failed || i >= p->n;
        if (!stop)
            p->next++;
        pthread_mutex_unlock(&p->lock);
        if (stop)
            return NULL;
        struct kiln_error *e = NULL;
        if (p->fn(w->c, i, p->ud, &e) < 0) {
            pthread_mutex_lock(&p->lock);
            if (!p->failed) {
                p->failed = true;
                p->err = e;
                e = NULL;
            }
            pthread_mutex_unlock(&p->lock);
            kiln_error_free(&e);
            return NULL;
        }
    }
}

int reg_parallel(struct reg_client *c, const char *scope, size_t n, reg_job_fn fn, void *ud,
                 struct kiln_error **err)
{
    unsigned k = reg_parallelism();
    if (k > n)
        k = (unsigned)n;
    if (k <= 1) {
        for (size_t i = 0; i < n; i++)
            if (fn(c, i, ud, err) < 0)
                return -1;
        return 0;
    }
    /* the scheme and the token are learnt once, not by every clone */
    if (!c->base && reg_client_ping(c, err) < 0)
        return -1;
    const char *tok = NULL;
    if (c->scheme == REG_AUTH_BEARER && scope && reg_client_token(c, scope, false, &tok, err) < 0)
        return -1;
    struct par p = {.n = n, .fn = fn, .ud = ud, .orig = c->opts};
    pthread_mutex_init(&p.lock, NULL);
    if (c->opts) {
        p.opts = *c->opts;
        if (c->opts->status) {
            p.opts.status = locked_status;
            p.opts.ud = &p;
        }
    }
    struct worker w[PARALLEL_MAX];
    unsigned started = 0;
    for (unsigned i = 0; i < k; i++) {
        w[i].p = &p;
        w[i].c = reg_client_clone(c);
        w[i].c->opts = c->opts ? &p.opts : NULL;
        if (pthread_create(&w[i].tid, NULL, work, &w[i]) != 0) {
            reg_client_free(w[i].c);
            break;
        }
        started++;
    }
    if (started == 0) {
        /* no thread could start: do the work here */
        pthread_mutex_destroy(&p.lock);
        for (size_t i = 0; i < n; i++)
            if (fn(c, i, ud, err) < 0)
                return -1;
        return 0;
    }
    for (unsigned i = 0; i < started; i++) {
        pthread_join(w[i].tid, NULL);
        reg_client_free(w[i].c);
    }
    pthread_mutex_destroy(&p.lock);
    if (p.failed) {
        if (err) {
            kiln_error_free(err);
            *err = p.err;
        } else {
            kiln_error_free(&p.err);
        }
        return -1;
    }
    return 0;
}
