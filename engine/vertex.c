/* Progress vertices ("#N ...") of a build, numbered in start order. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/internal.h"
#include "lib/xalloc.h"

double monotonic_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int vertex_start(struct build_ctx *bc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *name = xvasprintf(fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&bc->lock);
    int id = ++bc->next_vertex;
    pthread_mutex_unlock(&bc->lock);
    if (bc->progress && bc->progress->start)
        bc->progress->start(bc->progress->ud, id, name);
    free(name);
    return id;
}

void vertex_done(struct build_ctx *bc, int id, double started)
{
    if (bc->progress && bc->progress->done)
        bc->progress->done(bc->progress->ud, id, monotonic_now() - started);
}

void vertex_cached(struct build_ctx *bc, int id)
{
    if (bc->progress && bc->progress->cached)
        bc->progress->cached(bc->progress->ud, id);
}

void vertex_error(struct build_ctx *bc, int id, double started, const char *msg)
{
    if (bc->progress && bc->progress->error)
        bc->progress->error(bc->progress->ud, id, monotonic_now() - started, msg);
}

void vertex_canceled(struct build_ctx *bc, int id, double started)
{
    if (bc->progress && bc->progress->canceled)
        bc->progress->canceled(bc->progress->ud, id, monotonic_now() - started);
}

void vertex_log(struct build_ctx *bc, int id, double started, const char *line, size_t len)
{
    if (bc->progress && bc->progress->log)
        bc->progress->log(bc->progress->ud, id, monotonic_now() - started, line, len);
}

void vertex_source(struct build_ctx *bc, int id, const char *excerpt)
{
    if (bc->progress && bc->progress->source)
        bc->progress->source(bc->progress->ud, id, excerpt);
}

void vertex_status(struct build_ctx *bc, int id, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = xvasprintf(fmt, ap);
    va_end(ap);
    if (bc->progress && bc->progress->status)
        bc->progress->status(bc->progress->ud, id, text);
    free(text);
}

void build_warn(struct build_ctx *bc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = xvasprintf(fmt, ap);
    va_end(ap);
    if (bc->progress && bc->progress->warning)
        bc->progress->warning(bc->progress->ud, text);
    free(text);
}
