#include "layers/compress.h"

#include <errno.h>
#include <isa-l/crc.h>
#include <isa-l/igzip_lib.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "lib/cleanup.h"
#include "lib/xalloc.h"

/* ---- compression -------------------------------------------------------- */

#define CBLOCK_SIZE (256 * 1024)
#define CDICT_SIZE (32 * 1024)
#define MAX_WORKERS 32

enum cblock_state { CB_FREE = 0, CB_FILLING, CB_QUEUED, CB_BUSY, CB_DONE };

/* One block of input: [dictionary | data].  The dictionary (the previous
 * 32 KiB of the stream, gzip only) ends where the data starts. */
struct cblock {
    enum cblock_state state;
    uint64_t seq;
    uint8_t *buf; /* CDICT_SIZE + CBLOCK_SIZE */
    size_t dict_len;
    size_t len;
    bool last;
    uint8_t *out;
    size_t out_len, out_cap;
    uint32_t crc;
};

static inline uint8_t *cblock_data(struct cblock *b)
{
    return b->buf + CDICT_SIZE;
}

struct compressor {
    enum compression kind;
    int isal_level; /* -1: zlib at gzip_level */
    int gzip_level;
    int zstd_level;
    int nworkers;
    compress_sink_fn sink;
    void *opaque;

    pthread_mutex_t mu;
    pthread_cond_t changed;
    struct cblock *blocks;
    size_t nblocks;
    struct cblock *filling; /* producer side, not under the lock */
    uint64_t next_fill;
    uint64_t next_out;
    bool stop;
    bool finished;
    struct kiln_error *error; /* first failure of any thread */

    pthread_t *workers;
    int nstarted;
    pthread_t out_thread;
    bool out_started;

    uint64_t bytes_in;
    ZSTD_CCtx *zctx;
};

int compress_gzip_isal_level(int level)
{
    /* ISA-L has four levels, all far faster than zlib.  Level 3 is the
     * default: on text it is the closest to gzip -6 and still runs at
     * hundreds of MB/s a core.  gzip's 1..6 map onto 1..3; 7..9 use zlib
     * (slow, best ratio: -1 here). */
    if (level <= 0)
        return 3;
    if (level <= 2)
        return 1;
    if (level <= 4)
        return 2;
    if (level <= 6)
        return 3;
    return -1;
}

static uint32_t isal_level_buf_size(int lvl)
{
    switch (lvl) {
    case 1:
        return ISAL_DEF_LVL1_DEFAULT;
    case 2:
        return ISAL_DEF_LVL2_DEFAULT;
    case 3:
        return ISAL_DEF_LVL3_DEFAULT;
    default:
        return ISAL_DEF_LVL0_DEFAULT;
    }
}

static void set_error_locked(struct compressor *c, struct kiln_error *e)
{
    if (!c->error)
        c->error = e;
    else
        kiln_error_free(&e);
    c->stop = true;
    pthread_cond_broadcast(&c->changed);
}

static void fail(struct compressor *c, struct kiln_error *e)
{
    pthread_mutex_lock(&c->mu);
    set_error_locked(c, e);
    pthread_mutex_unlock(&c->mu);
}

/* Worst-case deflate output for n input bytes (stored blocks, sync marker). */
static size_t deflate_bound(size_t n)
{
    return n + n / 8 + 1024;
}

static int deflate_block(struct isal_zstream *zs, uint8_t *level_buf, uint32_t level_buf_size,
                         int level, struct cblock *b)
{
    isal_deflate_init(zs);
    zs->level = (uint32_t)level;
    zs->level_buf = level_buf;
    zs->level_buf_size = level_buf_size;
    zs->gzip_flag = IGZIP_DEFLATE;
    zs->flush = b->last ? NO_FLUSH : SYNC_FLUSH;
    zs->end_of_stream = b->last ? 1 : 0;
    if (b->dict_len > 0 && isal_deflate_set_dict(zs, cblock_data(b) - b->dict_len,
                                                 (uint32_t)b->dict_len) != COMP_OK)
        return -1;
    size_t need = deflate_bound(b->len);
    if (b->out_cap < need) {
        free(b->out);
        b->out = xmalloc(need);
        b->out_cap = need;
    }
    zs->next_in = cblock_data(b);
    zs->avail_in = (uint32_t)b->len;
    zs->next_out = b->out;
    zs->avail_out = (uint32_t)b->out_cap;
    /* With room left in the output buffer, isal_deflate has consumed and
     * flushed all input (the documented completion rule). */
    for (;;) {
        if (isal_deflate(zs) != COMP_OK)
            return -1;
        if (zs->avail_out > 0)
            break;
        size_t used = b->out_cap;
        b->out_cap *= 2;
        b->out = xrealloc(b->out, b->out_cap);
        zs->next_out = b->out + used;
        zs->avail_out = (uint32_t)(b->out_cap - used);
    }
    if (zs->avail_in != 0 || (b->last && zs->internal_state.state != ZSTATE_END))
        return -1;
    b->out_len = zs->total_out;
    b->crc = crc32_gzip_refl(0, cblock_data(b), b->len);
    return 0;
}

/* zlib for gzip levels 7..9: same framing (raw deflate, previous 32 KiB as
 * the dictionary, sync flush), as pigz does. */
static int zlib_block(z_stream *zs, struct cblock *b)
{
    if (deflateReset(zs) != Z_OK)
        return -1;
    if (b->dict_len > 0 &&
        deflateSetDictionary(zs, cblock_data(b) - b->dict_len, (uInt)b->dict_len) != Z_OK)
        return -1;
    size_t need = deflateBound(zs, (uLong)b->len) + 16;
    if (b->out_cap < need) {
        free(b->out);
        b->out = xmalloc(need);
        b->out_cap = need;
    }
    zs->next_in = cblock_data(b);
    zs->avail_in = (uInt)b->len;
    zs->next_out = b->out;
    zs->avail_out = (uInt)b->out_cap;
    int r = deflate(zs, b->last ? Z_FINISH : Z_SYNC_FLUSH);
    if (b->last ? r != Z_STREAM_END : (r != Z_OK || zs->avail_in != 0 || zs->avail_out == 0))
        return -1;
    b->out_len = b->out_cap - zs->avail_out;
    b->crc = crc32_gzip_refl(0, cblock_data(b), b->len);
    return 0;
}

static void *gzip_worker(void *arg)
{
    struct compressor *c = arg;
    struct isal_zstream zs;
    bool use_zlib = c->isal_level < 0;
    uint32_t lbsize = use_zlib ? 0 : isal_level_buf_size(c->isal_level);
    _cleanup_free_ uint8_t *level_buf = lbsize ? xmalloc(lbsize) : NULL;
    z_stream zz;
    memset(&zz, 0, sizeof(zz));
    if (use_zlib && deflateInit2(&zz, c->gzip_level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        struct kiln_error *e = NULL;
        kiln_error_set(&e, ENOMEM, "gzip: zlib initialisation failed");
        fail(c, e);
        return NULL;
    }

    pthread_mutex_lock(&c->mu);
    for (;;) {
        struct cblock *pick = NULL;
        for (size_t i = 0; i < c->nblocks; i++) {
            struct cblock *b = &c->blocks[i];
            if (b->state == CB_QUEUED && (!pick || b->seq < pick->seq))
                pick = b;
        }
        if (c->stop)
            break;
        if (!pick) {
            pthread_cond_wait(&c->changed, &c->mu);
            continue;
        }
        pick->state = CB_BUSY;
        pthread_mutex_unlock(&c->mu);
        int r = use_zlib ? zlib_block(&zz, pick)
                         : deflate_block(&zs, level_buf, lbsize, c->isal_level, pick);
        pthread_mutex_lock(&c->mu);
        if (r < 0) {
            struct kiln_error *e = NULL;
            kiln_error_set(&e, 0, "gzip: compression failed (%s)", use_zlib ? "zlib" : "isa-l");
            set_error_locked(c, e);
            break;
        }
        pick->state = CB_DONE;
        pthread_cond_broadcast(&c->changed);
    }
    pthread_mutex_unlock(&c->mu);
    if (use_zlib)
        deflateEnd(&zz);
    return NULL;
}

static int sink_call(struct compressor *c, const void *data, size_t len)
{
    if (len == 0)
        return 0;
    struct kiln_error *e = NULL;
    if (c->sink(c->opaque, data, len, &e) < 0) {
        if (!e)
            kiln_error_set(&e, 0, "compressed stream: write failed");
        fail(c, e);
        return -1;
    }
    return 0;
}

static int zstd_block(struct compressor *c, struct cblock *b)
{
    size_t outsz = ZSTD_CStreamOutSize();
    if (b->out_cap < outsz) {
        free(b->out);
        b->out = xmalloc(outsz);
        b->out_cap = outsz;
    }
    ZSTD_inBuffer in = {cblock_data(b), b->len, 0};
    ZSTD_EndDirective mode = b->last ? ZSTD_e_end : ZSTD_e_continue;
    for (;;) {
        ZSTD_outBuffer out = {b->out, b->out_cap, 0};
        size_t r = ZSTD_compressStream2(c->zctx, &out, &in, mode);
        if (ZSTD_isError(r)) {
            struct kiln_error *e = NULL;
            kiln_error_set(&e, 0, "zstd: %s", ZSTD_getErrorName(r));
            fail(c, e);
            return -1;
        }
        if (sink_call(c, b->out, out.pos) < 0)
            return -1;
        if (b->last ? r == 0 : in.pos == in.size)
            break;
    }
    return 0;
}

static void *output_thread(void *arg)
{
    struct compressor *c = arg;
    uint32_t crc = 0;
    uint64_t isize = 0;

    if (c->kind == COMPRESSION_GZIP) {
        /* ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=0 OS=unknown: what Go's
         * compress/gzip writes, so layers do not depend on the host. */
        static const uint8_t hdr[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
        if (sink_call(c, hdr, sizeof(hdr)) < 0)
            return NULL;
    }
    enum cblock_state ready = c->kind == COMPRESSION_GZIP ? CB_DONE : CB_QUEUED;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        struct cblock *b = &c->blocks[c->next_out % c->nblocks];
        while (!c->stop && !(b->seq == c->next_out && b->state == ready))
            pthread_cond_wait(&c->changed, &c->mu);
        if (c->stop) {
            pthread_mutex_unlock(&c->mu);
            return NULL;
        }
        b->state = CB_BUSY;
        pthread_mutex_unlock(&c->mu);

        int r = 0;
        switch (c->kind) {
        case COMPRESSION_GZIP:
            r = sink_call(c, b->out, b->out_len);
            crc = (uint32_t)crc32_combine(crc, b->crc, (z_off_t)b->len);
            isize += b->len;
            break;
        case COMPRESSION_ZSTD:
            r = zstd_block(c, b);
            break;
        case COMPRESSION_NONE:
            r = sink_call(c, cblock_data(b), b->len);
            break;
        }
        if (r < 0)
            return NULL;
        bool last = b->last;
        pthread_mutex_lock(&c->mu);
        b->state = CB_FREE;
        c->next_out++;
        pthread_cond_broadcast(&c->changed);
        pthread_mutex_unlock(&c->mu);
        if (last)
            break;
    }
    if (c->kind == COMPRESSION_GZIP) {
        uint8_t trailer[8];
        uint32_t sz = (uint32_t)isize;
        for (int i = 0; i < 4; i++) {
            trailer[i] = (uint8_t)(crc >> (8 * i));
            trailer[4 + i] = (uint8_t)(sz >> (8 * i));
        }
        sink_call(c, trailer, sizeof(trailer));
    }
    return NULL;
}

static int online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > MAX_WORKERS ? MAX_WORKERS : (int)n;
}

int compressor_new(enum compression kind, int level, int threads, compress_sink_fn sink,
                   void *opaque, struct compressor **ret, struct kiln_error **err)
{
    if (kind != COMPRESSION_GZIP && kind != COMPRESSION_ZSTD && kind != COMPRESSION_NONE)
        return kiln_error_set(err, EINVAL, "compressor: unknown compression %d", (int)kind);
    if (level < 0 || (kind == COMPRESSION_GZIP && level > 9) ||
        (kind == COMPRESSION_ZSTD && level > 19))
        return kiln_error_set(err, EINVAL, "compressor: level %d out of range for %s", level,
                              kind == COMPRESSION_GZIP ? "gzip (1-9)" : "zstd (1-19)");
    if (threads <= 0)
        threads = online_cpus();
    if (threads > MAX_WORKERS)
        threads = MAX_WORKERS;

    struct compressor *c = xcalloc(1, sizeof(*c));
    c->kind = kind;
    c->sink = sink;
    c->opaque = opaque;
    c->isal_level = compress_gzip_isal_level(level);
    c->gzip_level = level;
    c->zstd_level = level > 0 ? level : 3;
    c->nworkers = kind == COMPRESSION_GZIP ? threads : 0;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->changed, NULL);
    c->nblocks = (size_t)(kind == COMPRESSION_GZIP ? 2 * threads + 2 : 4);
    c->blocks = xcalloc(c->nblocks, sizeof(*c->blocks));
    for (size_t i = 0; i < c->nblocks; i++) {
        c->blocks[i].buf = xmalloc(CDICT_SIZE + CBLOCK_SIZE);
        c->blocks[i].seq = UINT64_MAX;
    }

    if (kind == COMPRESSION_ZSTD) {
        c->zctx = ZSTD_createCCtx();
        if (!c->zctx) {
            compressor_free(c);
            return kiln_error_set(err, ENOMEM, "zstd: create context");
        }
        ZSTD_CCtx_setParameter(c->zctx, ZSTD_c_compressionLevel, c->zstd_level);
        ZSTD_CCtx_setParameter(c->zctx, ZSTD_c_checksumFlag, 1);
        /* Without multithread support in libzstd this fails: one thread then. */
        if (threads > 1 && !ZSTD_isError(ZSTD_CCtx_setParameter(c->zctx, ZSTD_c_nbWorkers,
                                                                  threads)))
            /* Smaller jobs than the default (4 windows): memory stays
             * around 20 MiB instead of 60+ for any layer size. */
            ZSTD_CCtx_setParameter(c->zctx, ZSTD_c_jobSize, 2 << 20);
    }

    c->workers = xcalloc((size_t)(c->nworkers ? c->nworkers : 1), sizeof(pthread_t));
    for (int i = 0; i < c->nworkers; i++) {
        int r = pthread_create(&c->workers[i], NULL, gzip_worker, c);
        if (r != 0) {
            compressor_free(c);
            return kiln_error_set(err, r, "compressor: start a thread");
        }
        c->nstarted++;
    }
    int r = pthread_create(&c->out_thread, NULL, output_thread, c);
    if (r != 0) {
        compressor_free(c);
        return kiln_error_set(err, r, "compressor: start a thread");
    }
    c->out_started = true;
    *ret = c;
    return 0;
}

static int take_error(struct compressor *c, struct kiln_error **err)
{
    pthread_mutex_lock(&c->mu);
    int r = 0;
    if (c->error) {
        r = kiln_error_set(err, c->error->code, "%s", c->error->msg);
    } else if (c->stop) {
        r = kiln_error_set(err, 0, "compressor: stopped");
    }
    pthread_mutex_unlock(&c->mu);
    return r;
}

/* Waits for the slot of the next block and starts filling it. */
static int start_block(struct compressor *c, struct kiln_error **err)
{
    struct cblock *b = &c->blocks[c->next_fill % c->nblocks];
    pthread_mutex_lock(&c->mu);
    while (!c->stop && b->state != CB_FREE)
        pthread_cond_wait(&c->changed, &c->mu);
    bool stopped = c->stop;
    if (!stopped) {
        b->state = CB_FILLING;
        b->seq = c->next_fill;
    }
    pthread_mutex_unlock(&c->mu);
    if (stopped)
        return take_error(c, err);
    b->len = 0;
    b->last = false;
    b->dict_len = 0;
    if (c->kind == COMPRESSION_GZIP && c->next_fill > 0) {
        /* The previous block is queued or being compressed: reading it is
         * safe, nobody writes it until the producer comes round again. */
        struct cblock *p = &c->blocks[(c->next_fill - 1) % c->nblocks];
        size_t avail = p->dict_len + p->len;
        size_t n = avail < CDICT_SIZE ? avail : CDICT_SIZE;
        memcpy(b->buf + CDICT_SIZE - n, cblock_data(p) + p->len - n, n);
        b->dict_len = n;
    }
    c->filling = b;
    return 0;
}

static void queue_block(struct compressor *c)
{
    pthread_mutex_lock(&c->mu);
    c->filling->state = CB_QUEUED;
    c->filling = NULL;
    c->next_fill++;
    pthread_cond_broadcast(&c->changed);
    pthread_mutex_unlock(&c->mu);
}

int compressor_write(struct compressor *c, const void *data, size_t len, struct kiln_error **err)
{
    const uint8_t *p = data;
    if (c->finished)
        return kiln_error_set(err, EINVAL, "compressor: write after finish");
    while (len > 0) {
        if (!c->filling && start_block(c, err) < 0)
            return -1;
        struct cblock *b = c->filling;
        size_t n = CBLOCK_SIZE - b->len;
        if (n > len)
            n = len;
        memcpy(cblock_data(b) + b->len, p, n);
        b->len += n;
        p += n;
        len -= n;
        c->bytes_in += n;
        if (b->len == CBLOCK_SIZE)
            queue_block(c);
    }
    /* A failure in another thread surfaces at the next write. */
    if (__atomic_load_n(&c->stop, __ATOMIC_RELAXED))
        return take_error(c, err);
    return 0;
}

int compressor_finish(struct compressor *c, struct kiln_error **err)
{
    if (c->finished)
        return kiln_error_set(err, EINVAL, "compressor: finished twice");
    if (!c->filling && start_block(c, err) < 0)
        return -1;
    c->filling->last = true;
    queue_block(c);
    c->finished = true;
    pthread_join(c->out_thread, NULL);
    c->out_started = false;
    if (take_error(c, err) < 0)
        return -1;
    pthread_mutex_lock(&c->mu);
    c->stop = true; /* the workers are idle: let them go */
    pthread_cond_broadcast(&c->changed);
    pthread_mutex_unlock(&c->mu);
    for (int i = 0; i < c->nstarted; i++)
        pthread_join(c->workers[i], NULL);
    c->nstarted = 0;
    return 0;
}

uint64_t compressor_bytes_in(const struct compressor *c)
{
    return c->bytes_in;
}

void compressor_free(struct compressor *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->stop = true;
    pthread_cond_broadcast(&c->changed);
    pthread_mutex_unlock(&c->mu);
    if (c->out_started)
        pthread_join(c->out_thread, NULL);
    for (int i = 0; i < c->nstarted; i++)
        pthread_join(c->workers[i], NULL);
    for (size_t i = 0; i < c->nblocks; i++) {
        free(c->blocks[i].buf);
        free(c->blocks[i].out);
    }
    free(c->blocks);
    free(c->workers);
    if (c->zctx)
        ZSTD_freeCCtx(c->zctx);
    kiln_error_free(&c->error);
    pthread_cond_destroy(&c->changed);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* ---- decompression -------------------------------------------------------- */

#define DIN_SIZE (256 * 1024)

struct decompressor {
    int fd;
    enum compression fmt;
    struct sha256 raw_hash;
    bool hash_done;
    char raw_digest[DIGEST_STR_LEN];
    uint64_t raw_bytes;
    uint8_t *in;
    size_t in_pos, in_len;
    bool in_eof;
    bool done;
    struct inflate_state *gz;
    bool gz_member; /* inside a gzip member */
    ZSTD_DStream *zd;
    size_t zret; /* last ZSTD_decompressStream result: 0 at a frame end */
};

enum compression compression_detect(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    if (len >= 2 && p[0] == 0x1f && p[1] == 0x8b)
        return COMPRESSION_GZIP;
    if (len >= 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd)
        return COMPRESSION_ZSTD;
    return COMPRESSION_NONE;
}

/* Moves unread input to the front and reads more; sets in_eof at the end. */
static int din_fill(struct decompressor *d, struct kiln_error **err)
{
    if (d->in_pos > 0) {
        memmove(d->in, d->in + d->in_pos, d->in_len - d->in_pos);
        d->in_len -= d->in_pos;
        d->in_pos = 0;
    }
    while (!d->in_eof && d->in_len < DIN_SIZE) {
        ssize_t n = read(d->fd, d->in + d->in_len, DIN_SIZE - d->in_len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return kiln_error_set(err, errno, "read compressed stream");
        }
        if (n == 0) {
            d->in_eof = true;
            break;
        }
        sha256_update(&d->raw_hash, d->in + d->in_len, (size_t)n);
        d->raw_bytes += (uint64_t)n;
        d->in_len += (size_t)n;
        break;
    }
    return 0;
}

int decompressor_open(int fd, struct decompressor **ret, struct kiln_error **err)
{
    struct decompressor *d = xcalloc(1, sizeof(*d));
    d->fd = fd;
    d->in = xmalloc(DIN_SIZE);
    sha256_init(&d->raw_hash);
    /* Enough bytes for the magic (short reads from pipes included). */
    while (!d->in_eof && d->in_len < 4)
        if (din_fill(d, err) < 0) {
            decompressor_free(d);
            return -1;
        }
    d->fmt = compression_detect(d->in, d->in_len);
    if (d->fmt == COMPRESSION_GZIP) {
        d->gz = xmalloc(sizeof(*d->gz));
        isal_inflate_init(d->gz);
        d->gz->crc_flag = ISAL_GZIP;
        d->gz_member = true;
    } else if (d->fmt == COMPRESSION_ZSTD) {
        d->zd = ZSTD_createDStream();
        if (!d->zd) {
            decompressor_free(d);
            return kiln_error_set(err, ENOMEM, "zstd: create context");
        }
        /* Cap the window (memory) a hostile frame can ask for: 128 MiB. */
        ZSTD_DCtx_setParameter(d->zd, ZSTD_d_windowLogMax, 27);
    }
    *ret = d;
    return 0;
}

static void finish_hash(struct decompressor *d)
{
    if (!d->hash_done) {
        sha256_final_digest(&d->raw_hash, d->raw_digest);
        d->hash_done = true;
    }
}

static int gzip_read(struct decompressor *d, uint8_t *buf, size_t len, size_t *ret_n,
                     struct kiln_error **err)
{
    for (;;) {
        if (!d->gz_member) {
            /* Between members: another member, or the end. */
            if (d->in_len - d->in_pos < 2 && !d->in_eof && din_fill(d, err) < 0)
                return -1;
            size_t avail = d->in_len - d->in_pos;
            if (avail == 0 && d->in_eof) {
                d->done = true;
                *ret_n = 0;
                return 0;
            }
            if (avail < 2 || d->in[d->in_pos] != 0x1f || d->in[d->in_pos + 1] != 0x8b)
                return kiln_error_set(err, 0, "gzip: trailing garbage after the compressed data");
            isal_inflate_reset(d->gz);
            d->gz->crc_flag = ISAL_GZIP;
            d->gz_member = true;
        }
        if (d->in_pos == d->in_len && !d->in_eof && din_fill(d, err) < 0)
            return -1;
        struct inflate_state *s = d->gz;
        s->next_in = d->in + d->in_pos;
        s->avail_in = (uint32_t)(d->in_len - d->in_pos);
        s->next_out = buf;
        s->avail_out = (uint32_t)(len > UINT32_MAX ? UINT32_MAX : len);
        int r = isal_inflate(s);
        d->in_pos = (size_t)(s->next_in - d->in);
        size_t produced = (size_t)(s->next_out - buf);
        if (r < 0) {
            const char *why = r == ISAL_INCORRECT_CHECKSUM ? "CRC or length mismatch"
                              : r == ISAL_INVALID_WRAPPER  ? "invalid header"
                                                           : "invalid deflate data";
            return kiln_error_set(err, 0, "gzip: %s", why);
        }
        if (s->block_state == ISAL_BLOCK_FINISH)
            d->gz_member = false;
        if (produced > 0) {
            *ret_n = produced;
            return 0;
        }
        if (!d->gz_member)
            continue;
        if (d->in_pos == d->in_len && d->in_eof)
            return kiln_error_set(err, 0, "gzip: unexpected end of compressed data");
    }
}

static int zstd_read(struct decompressor *d, uint8_t *buf, size_t len, size_t *ret_n,
                     struct kiln_error **err)
{
    for (;;) {
        if (d->in_pos == d->in_len) {
            if (d->in_eof) {
                if (d->zret != 0)
                    return kiln_error_set(err, 0, "zstd: unexpected end of compressed data");
                d->done = true;
                *ret_n = 0;
                return 0;
            }
            if (din_fill(d, err) < 0)
                return -1;
            continue;
        }
        ZSTD_inBuffer in = {d->in + d->in_pos, d->in_len - d->in_pos, 0};
        ZSTD_outBuffer out = {buf, len, 0};
        size_t r = ZSTD_decompressStream(d->zd, &out, &in);
        d->in_pos += in.pos;
        if (ZSTD_isError(r))
            return kiln_error_set(err, 0, "zstd: %s", ZSTD_getErrorName(r));
        d->zret = r;
        if (out.pos > 0) {
            *ret_n = out.pos;
            return 0;
        }
    }
}

int decompressor_read(struct decompressor *d, void *buf, size_t len, size_t *ret_n,
                      struct kiln_error **err)
{
    *ret_n = 0;
    if (d->done || len == 0)
        return 0;
    int r;
    switch (d->fmt) {
    case COMPRESSION_GZIP:
        r = gzip_read(d, buf, len, ret_n, err);
        break;
    case COMPRESSION_ZSTD:
        r = zstd_read(d, buf, len, ret_n, err);
        break;
    default:
        if (d->in_pos == d->in_len && !d->in_eof && din_fill(d, err) < 0)
            return -1;
        size_t n = d->in_len - d->in_pos;
        if (n > len)
            n = len;
        memcpy(buf, d->in + d->in_pos, n);
        d->in_pos += n;
        if (n == 0)
            d->done = true;
        *ret_n = n;
        r = 0;
        break;
    }
    if (r == 0 && d->done)
        finish_hash(d);
    return r;
}

enum compression decompressor_format(const struct decompressor *d)
{
    return d->fmt;
}

void decompressor_raw_digest(struct decompressor *d, char out[DIGEST_STR_LEN])
{
    finish_hash(d);
    memcpy(out, d->raw_digest, DIGEST_STR_LEN);
}

uint64_t decompressor_raw_bytes(const struct decompressor *d)
{
    return d->raw_bytes;
}

void decompressor_free(struct decompressor *d)
{
    if (!d)
        return;
    if (!d->hash_done)
        sha256_abort(&d->raw_hash);
    free(d->in);
    free(d->gz);
    if (d->zd)
        ZSTD_freeDStream(d->zd);
    free(d);
}
