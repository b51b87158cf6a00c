/* struct build_request: defaults and release. */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "engine/engine.h"
#include "lib/xalloc.h"

void build_request_init(struct build_request *r)
{
    memset(r, 0, sizeof(*r));
    r->timestamp = -1;
    r->compression = COMPRESSION_GZIP;
    r->tags = strv_new();
    r->build_args = strv_new();
    r->labels = strv_new();
    r->add_hosts = strv_new();
    r->security_opts = strv_new();
}

static void cache_specs_free(struct cache_spec *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(c[i].type);
        free(c[i].ref);
        free(c[i].dir);
        free(c[i].mode);
    }
    free(c);
}

void build_request_free(struct build_request *r)
{
    free(r->store_root);
    free(r->context);
    free(r->dockerfile);
    strv_free(r->tags);
    strv_free(r->build_args);
    free(r->target);
    strv_free(r->labels);
    free(r->iidfile);
    for (size_t i = 0; i < r->n_secrets; i++) {
        free(r->secrets[i].id);
        free(r->secrets[i].src);
        free(r->secrets[i].env);
    }
    free(r->secrets);
    for (size_t i = 0; i < r->n_ssh; i++) {
        free(r->ssh[i].id);
        strv_free(r->ssh[i].paths);
    }
    free(r->ssh);
    for (size_t i = 0; i < r->n_outputs; i++) {
        free(r->outputs[i].dest);
        free(r->outputs[i].name);
    }
    free(r->outputs);
    for (size_t i = 0; i < r->n_contexts; i++) {
        free(r->contexts[i].name);
        free(r->contexts[i].value);
    }
    free(r->contexts);
    free(r->network);
    strv_free(r->add_hosts);
    for (size_t i = 0; i < r->n_ulimits; i++)
        free(r->ulimits[i].name);
    free(r->ulimits);
    free(r->platform);
    strv_free(r->security_opts);
    cache_specs_free(r->cache_from, r->n_cache_from);
    cache_specs_free(r->cache_to, r->n_cache_to);
    memset(r, 0, sizeof(*r));
}

int ulimit_from_name(const char *name)
{
    static const struct {
        const char *name;
        int res;
    } map[] = {
        {"core", RLIMIT_CORE},       {"cpu", RLIMIT_CPU},
        {"data", RLIMIT_DATA},       {"fsize", RLIMIT_FSIZE},
        {"locks", RLIMIT_LOCKS},     {"memlock", RLIMIT_MEMLOCK},
        {"msgqueue", RLIMIT_MSGQUEUE}, {"nice", RLIMIT_NICE},
        {"nofile", RLIMIT_NOFILE},   {"nproc", RLIMIT_NPROC},
        {"rss", RLIMIT_RSS},         {"rtprio", RLIMIT_RTPRIO},
        {"rttime", RLIMIT_RTTIME},   {"sigpending", RLIMIT_SIGPENDING},
        {"stack", RLIMIT_STACK},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(map[i].name, name) == 0)
            return map[i].res;
    return -1;
}
