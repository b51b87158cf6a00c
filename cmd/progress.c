#include "cmd/progress.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "lib/strbuf.h"
#include "lib/xalloc.h"

#define TTY_LOG_LINES 6  /* lines shown under a running step (tty) */
#define TAIL_LINES 10     /* lines shown again when a step fails */

enum vstate { V_RUNNING, V_DONE, V_CACHED, V_ERROR, V_CANCELED };

struct vertex {
    int id;
    char *name;
    enum vstate state;
    double start, end;
    char *logs[TAIL_LINES]; /* the last lines of output */
    double log_t[TAIL_LINES]; /* their times since the step started */
    size_t n_logs;
    char *source;           /* where it is in the Dockerfile (failed steps) */
    char **statuses;        /* "writing image sha256:..." (tty: shown under it) */
};

struct progress {
    enum progress_mode mode;
    struct build_progress cb;
    pthread_mutex_t lock;
    double t0;
    struct vertex *v;
    size_t n_v;
    char **warnings;
    /* tty */
    pthread_t ticker;
    bool ticking;
    bool stop;
    int drawn_lines;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct vertex *find(struct progress *p, int id)
{
    for (size_t i = p->n_v; i-- > 0;)
        if (p->v[i].id == id)
            return &p->v[i];
    return NULL;
}

static void tty_draw(struct progress *p, bool final);

static void plain(struct progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void plain(struct progress *p, const char *fmt, ...)
{
    if (p->mode != PROGRESS_PLAIN)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

static void on_start(void *ud, int id, const char *name)
{
    struct progress *p = ud;
    pthread_mutex_lock(&p->lock);
    p->v = xreallocarray(p->v, p->n_v + 1, sizeof(*p->v));
    struct vertex *v = &p->v[p->n_v++];
    memset(v, 0, sizeof(*v));
    v->id = id;
    v->name = xstrdup(name);
    v->start = now();
    plain(p, "#%d %s\n", id, name);
    pthread_mutex_unlock(&p->lock);
}

static void on_log(void *ud, int id, double elapsed, const char *line, size_t len)
{
    struct progress *p = ud;
    pthread_mutex_lock(&p->lock);
    plain(p, "#%d %.3f %.*s\n", id, elapsed, (int)len, line);
    struct vertex *v = find(p, id);
    if (v) {
        if (v->n_logs == TAIL_LINES) {
            free(v->logs[0]);
            memmove(v->logs, v->logs + 1, (TAIL_LINES - 1) * sizeof(char *));
            memmove(v->log_t, v->log_t + 1, (TAIL_LINES - 1) * sizeof(double));
            v->n_logs--;
        }
        v->log_t[v->n_logs] = elapsed;
        v->logs[v->n_logs++] = xstrndup(line, len);
    }
    pthread_mutex_unlock(&p->lock);
}

static void on_status(void *ud, int id, const char *text)
{
    struct progress *p = ud;
    pthread_mutex_lock(&p->lock);
    plain(p, "#%d %s\n", id, text);
    struct vertex *v = find(p, id);
    if (v) {
        /* tty rows say "writing image sha256:..." without the " done" */
        size_t n = strlen(text);
        if (n > 5 && strcmp(text + n - 5, " done") == 0)
            n -= 5;
        strv_push_take(&v->statuses, xstrndup(text, n));
    }
    pthread_mutex_unlock(&p->lock);
}

static void finish_vertex(struct progress *p, int id, enum vstate st)
{
    struct vertex *v = find(p, id);
    if (!v)
        return;
    v->state = st;
    v->end = now();
    if (st == V_ERROR)
        return; /* its output is shown again at the end */
    for (size_t i = 0; i < v->n_logs; i++)
        free(v->logs[i]);
    v->n_logs = 0;
}

static void on_cached(void *ud, int id)
{
    struct progress *p = ud;
    pthread_mutex_lock(&p->lock);
    plain(p, "#%d CACHED\n\n", id);
    finish_vertex(p, id, V_CACHED);
    pthread_mutex_unlock(&p->lock);
}

static void on_done(void *ud, int id, double secs)
{
    struct progress *p = ud;
    pthread_mutex_lock(&p->lock);
    plain(p, "#%d DONE %.1fs\n\n", id, secs);
    finish_vertex(p, id, V_DONE);
    pthread_mutex_unlock(&p->lock);
}

static void on_error(void *ud, int id, double secs, const char *msg)
{
    struct progress *p = ud;
    pthread_mutex_lock(&p->lock);
    plain(p, "#%d ERROR: %s\n\n", id, msg);
    finish_vertex(p, id, V_ERROR);
    pthread_mutex_unlock(&p->lock);
}

static void on_canceled(void *ud, int id, double secs)
{
    struct progress *p = ud;
    pthread_mutex_lock(&p->lock);
    plain(p, "#%d CANCELED %.1fs\n\n", id, secs);
    finish_vertex(p, id, V_CANCELED);
    pthread_mutex_unlock(&p->lock);
}

static void on_warning(void *ud, const char *msg)
{
    struct progress *p = ud;
    pthread_mutex_lock(&p->lock);
    strv_push(&p->warnings, msg);
    if (p->mode == PROGRESS_PLAIN)
        fprintf(stderr, "WARNING: %s\n", msg);
    pthread_mutex_unlock(&p->lock);
}

static void on_source(void *ud, int id, const char *excerpt)
{
    struct progress *p = ud;
    pthread_mutex_lock(&p->lock);
    struct vertex *v = find(p, id);
    if (v) {
        free(v->source);
        v->source = xstrdup(excerpt);
    }
    pthread_mutex_unlock(&p->lock);
}

static int term_width(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
        return ws.ws_col;
    return 80;
}

static int term_height(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 5)
        return ws.ws_row;
    return 24;
}

/* Appends s to sb cut or padded to `cols` terminal columns (UTF-8
 * sequences count one column; control characters are dropped). */
static void add_cols(struct strbuf *sb, const char *s, int cols, bool pad)
{
    int used = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t len = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 : 4;
        if (*p < 0x20 || *p == 0x7f) {
            p++;
            continue;
        }
        if (used >= cols)
            break;
        for (size_t k = 0; k < len && p[k]; k++)
            strbuf_addc(sb, (char)p[k]);
        p += len;
        while (len > 1 && *p && (*p & 0xc0) == 0x80)
            p++;
        used++;
    }
    while (pad && used++ < cols)
        strbuf_addc(sb, ' ');
}

/* Output lines shown under a vertex in tty mode: a running step's last few. */
static int tty_logs(const struct vertex *v)
{
    if (v->state != V_RUNNING)
        return 0;
    return (int)(v->n_logs < TTY_LOG_LINES ? v->n_logs : TTY_LOG_LINES);
}

/* Redraws the whole block; the caller holds the lock. */
static void tty_draw(struct progress *p, bool final)
{
    struct strbuf sb = STRBUF_INIT;
    int width = term_width();
    int lines = 0;
    if (p->drawn_lines > 0)
        strbuf_addf(&sb, "\033[%dA", p->drawn_lines);
    size_t finished = 0;
    for (size_t i = 0; i < p->n_v; i++)
        finished += p->v[i].state != V_RUNNING;
    double t = now();
    strbuf_addf(&sb, "\033[2K[+] Building %.1fs (%zu/%zu)%s\n", t - p->t0, finished, p->n_v,
                final ? " FINISHED" : "");
    lines++;
    /* keep the block within the terminal: show the last vertices */
    size_t first = 0;
    int room = term_height() - 2;
    int need = 0;
    for (size_t i = p->n_v; i-- > 0;) {
        need += 1 + tty_logs(&p->v[i]) + (int)strv_len(p->v[i].statuses);
        if (need > room) {
            first = i + 1;
            break;
        }
    }
    for (size_t i = first; i < p->n_v; i++) {
        struct vertex *v = &p->v[i];
        double el = (v->state == V_RUNNING ? t : v->end) - v->start;
        char timebuf[32];
        snprintf(timebuf, sizeof(timebuf), "%.1fs", el);
        const char *prefix = v->state == V_CACHED     ? "CACHED "
                             : v->state == V_ERROR    ? "ERROR "
                             : v->state == V_CANCELED ? "CANCELED "
                                                      : "";
        int avail = width - 4 - (int)strlen(prefix) - (int)strlen(timebuf) - 2;
        if (avail < 10)
            avail = 10;
        const char *color = v->state == V_ERROR ? "\033[31m" : v->state == V_RUNNING ? "\033[34m" : "";
        strbuf_addf(&sb, "\033[2K%s => %s", color, prefix);
        add_cols(&sb, v->name, avail, true);
        strbuf_addf(&sb, " %s%s\n", timebuf, *color ? "\033[0m" : "");
        lines++;
        for (size_t k = 0; v->statuses && v->statuses[k]; k++) {
            strbuf_adds(&sb, "\033[2K => => ");
            add_cols(&sb, v->statuses[k], width - 8 > 10 ? width - 8 : 10, false);
            strbuf_addc(&sb, '\n');
            lines++;
        }
        for (size_t k = v->n_logs - (size_t)tty_logs(v); k < v->n_logs; k++) {
            strbuf_adds(&sb, "\033[2K => => # ");
            add_cols(&sb, v->logs[k], width - 12 > 10 ? width - 12 : 10, false);
            strbuf_addc(&sb, '\n');
            lines++;
        }
    }
    for (int k = lines; k < p->drawn_lines; k++)
        strbuf_adds(&sb, "\033[2K\n");
    if (p->drawn_lines > lines) {
        strbuf_addf(&sb, "\033[%dA", p->drawn_lines - lines);
    }
    p->drawn_lines = lines;
    fwrite(sb.buf, 1, sb.len, stderr);
    fflush(stderr);
    strbuf_release(&sb);
}

static void *ticker_main(void *arg)
{
    struct progress *p = arg;
    for (;;) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&p->lock);
        if (p->stop) {
            pthread_mutex_unlock(&p->lock);
            break;
        }
        tty_draw(p, false);
        pthread_mutex_unlock(&p->lock);
    }
    return NULL;
}

struct progress *progress_new(enum progress_mode mode)
{
    struct progress *p = xcalloc(1, sizeof(*p));
    if (mode == PROGRESS_AUTO)
        mode = isatty(STDERR_FILENO) && getenv("TERM") && strcmp(getenv("TERM"), "dumb") != 0
                   ? PROGRESS_TTY
                   : PROGRESS_PLAIN;
    p->mode = mode;
    pthread_mutex_init(&p->lock, NULL);
    p->t0 = now();
    p->warnings = strv_new();
    p->cb = (struct build_progress){
        .ud = p,
        .start = on_start,
        .log = on_log,
        .status = on_status,
        .cached = on_cached,
        .done = on_done,
        .error = on_error,
        .canceled = on_canceled,
        .warning = on_warning,
        .source = on_source,
    };
    return p;
}

const struct build_progress *progress_callbacks(struct progress *p)
{
    if (p->mode == PROGRESS_TTY && !p->ticking) {
        /* started lazily so that kiln's namespaces are entered single-threaded */
        p->ticking = pthread_create(&p->ticker, NULL, ticker_main, p) == 0;
    }
    return &p->cb;
}

void progress_finish(struct progress *p, bool ok)
{
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_mutex_unlock(&p->lock);
    if (p->ticking)
        pthread_join(p->ticker, NULL);
    p->ticking = false;
    if (p->mode == PROGRESS_TTY)
        tty_draw(p, ok);
    /* BuildKit's error block: each failed step, its last output lines, and
     * where it is in the Dockerfile (in every mode: it says why) */
    for (size_t i = 0; !ok && i < p->n_v; i++) {
        struct vertex *v = &p->v[i];
        if (v->state != V_ERROR)
            continue;
        fprintf(stderr, "------\n > %s:\n", v->name);
        for (size_t k = 0; k < v->n_logs; k++)
            fprintf(stderr, "%.3f %s\n", v->log_t[k], v->logs[k]);
        fprintf(stderr, "------\n");
        if (v->source)
            fprintf(stderr, "%s\n", v->source);
    }
    size_t n = strv_len(p->warnings);
    if (n && p->mode != PROGRESS_QUIET) {
        fprintf(stderr, "\n %zu warning%s found:\n", n, n == 1 ? "" : "s");
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " - %s\n", p->warnings[i]);
    }
}

void progress_free(struct progress *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_v; i++) {
        free(p->v[i].name);
        free(p->v[i].source);
        strv_free(p->v[i].statuses);
        for (size_t k = 0; k < p->v[i].n_logs; k++)
            free(p->v[i].logs[k]);
    }
    free(p->v);
    strv_free(p->warnings);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
