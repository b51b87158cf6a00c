#include "engine/filehash.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "lib/sha256.h"
#include "lib/xalloc.h"

#define FILEHASH_PATH "cache/filehash"
#define FILEHASH_MAGIC "KILNFH1\n"
#define FILEHASH_MAX_ENTRIES (1u << 20)

struct fh_entry {
    uint64_t dev, ino, size;
    int64_t mtime_ns, ctime_ns;
    uint8_t sha[32];
    uint8_t used; /* in memory only: 0 empty, 1 loaded, 2 used this run */
};

struct filehash {
    pthread_mutex_t lock; /* stages run in parallel threads */
    struct store *store;
    struct fh_entry *slots;
    size_t cap, n;
    bool dirty;
};

#define RECORD_SIZE (5 * 8 + 32)

static size_t slot_of(struct filehash *fh, uint64_t dev, uint64_t ino)
{
    uint64_t h = (dev * 0x9E3779B97F4A7C15ull) ^ (ino * 0xC2B2AE3D27D4EB4Full);
    h ^= h >> 31;
    size_t i = (size_t)(h & (fh->cap - 1));
    while (fh->slots[i].used && !(fh->slots[i].dev == dev && fh->slots[i].ino == ino))
        i = (i + 1) & (fh->cap - 1);
    return i;
}

static void fh_insert(struct filehash *fh, const struct fh_entry *e);

static void fh_grow(struct filehash *fh)
{
    struct fh_entry *old = fh->slots;
    size_t oldcap = fh->cap;
    fh->cap = oldcap ? oldcap * 2 : 1024;
    fh->slots = xcalloc(fh->cap, sizeof(*fh->slots));
    fh->n = 0;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].used)
            fh_insert(fh, &old[i]);
    free(old);
}

static void fh_insert(struct filehash *fh, const struct fh_entry *e)
{
    if ((fh->n + 1) * 2 > fh->cap)
        fh_grow(fh);
    size_t i = slot_of(fh, e->dev, e->ino);
    if (!fh->slots[i].used)
        fh->n++;
    fh->slots[i] = *e;
}

struct filehash *filehash_open(struct store *s)
{
    struct filehash *fh = xcalloc(1, sizeof(*fh));
    pthread_mutex_init(&fh->lock, NULL);
    fh->store = s;
    fh_grow(fh);
    char *buf = NULL;
    size_t len = 0;
    if (fs_read_file_at(s->root_fd, FILEHASH_PATH, (size_t)FILEHASH_MAX_ENTRIES * RECORD_SIZE + 64,
                        &buf, &len) < 0)
        return fh;
    size_t ml = strlen(FILEHASH_MAGIC);
    if (len >= ml && memcmp(buf, FILEHASH_MAGIC, ml) == 0) {
        for (size_t off = ml; off + RECORD_SIZE <= len; off += RECORD_SIZE) {
            struct fh_entry e;
            memcpy(&e.dev, buf + off, 8);
            memcpy(&e.ino, buf + off + 8, 8);
            memcpy(&e.size, buf + off + 16, 8);
            memcpy(&e.mtime_ns, buf + off + 24, 8);
            memcpy(&e.ctime_ns, buf + off + 32, 8);
            memcpy(e.sha, buf + off + 40, 32);
            e.used = 1;
            fh_insert(fh, &e);
        }
    }
    free(buf);
    return fh;
}

static int64_t ns_of(const struct timespec *t)
{
    return (int64_t)t->tv_sec * 1000000000LL + t->tv_nsec;
}

int filehash_get(struct filehash *fh, int fd, const struct stat *st, uint8_t out[32])
{
    int64_t m = ns_of(&st->st_mtim), c = ns_of(&st->st_ctim);
    pthread_mutex_lock(&fh->lock);
    size_t i = slot_of(fh, (uint64_t)st->st_dev, (uint64_t)st->st_ino);
    struct fh_entry *e = &fh->slots[i];
    if (e->used && e->size == (uint64_t)st->st_size && e->mtime_ns == m && e->ctime_ns == c) {
        memcpy(out, e->sha, 32);
        e->used = 2;
        pthread_mutex_unlock(&fh->lock);
        return 0;
    }
    pthread_mutex_unlock(&fh->lock);
    struct sha256 h;
    sha256_init(&h);
    char buf[128 * 1024];
    off_t off = 0;
    for (;;) {
        ssize_t n = pread(fd, buf, sizeof(buf), off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int err = errno;
            sha256_abort(&h);
            return -err;
        }
        if (n == 0)
            break;
        sha256_update(&h, buf, (size_t)n);
        off += n;
    }
    sha256_final_raw(&h, out);
    /* A file changed within the last two seconds may change again within the
     * same timestamp: do not remember it (git's "racy" rule). */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (ns_of(&now) - (m > c ? m : c) < 2000000000LL)
        return 0;
    struct fh_entry ne = {(uint64_t)st->st_dev, (uint64_t)st->st_ino, (uint64_t)st->st_size, m, c,
                          {0}, 2};
    memcpy(ne.sha, out, 32);
    pthread_mutex_lock(&fh->lock);
    fh_insert(fh, &ne);
    fh->dirty = true;
    pthread_mutex_unlock(&fh->lock);
    return 0;
}

void filehash_close(struct filehash *fh)
{
    if (!fh)
        return;
    if (fh->dirty) {
        /* past the size cap, keep only what this run used */
        bool only_used = fh->n > FILEHASH_MAX_ENTRIES;
        size_t ml = strlen(FILEHASH_MAGIC);
        size_t cap = ml + fh->n * RECORD_SIZE;
        char *buf = xmalloc(cap);
        memcpy(buf, FILEHASH_MAGIC, ml);
        size_t off = ml;
        for (size_t i = 0; i < fh->cap; i++) {
            struct fh_entry *e = &fh->slots[i];
            if (!e->used || (only_used && e->used != 2))
                continue;
            memcpy(buf + off, &e->dev, 8);
            memcpy(buf + off + 8, &e->ino, 8);
            memcpy(buf + off + 16, &e->size, 8);
            memcpy(buf + off + 24, &e->mtime_ns, 8);
            memcpy(buf + off + 32, &e->ctime_ns, 8);
            memcpy(buf + off + 40, e->sha, 32);
            off += RECORD_SIZE;
        }
        fs_write_atomic_at(fh->store->root_fd, FILEHASH_PATH, buf, off, 0600, false);
        free(buf);
    }
    free(fh->slots);
    pthread_mutex_destroy(&fh->lock);
    free(fh);
}
