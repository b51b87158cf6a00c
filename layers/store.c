#include "layers/store.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layers/descriptor.h"
#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"

#define EMPTY_INDEX_JSON "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[]}"

char *store_default_root(void)
{
    const char *e = getenv("KILN_ROOT");
    if (e && *e)
        return xstrdup(e);
    e = getenv("XDG_DATA_HOME");
    if (e && e[0] == '/')
        return path_join(e, "kiln");
    const char *home = getenv("HOME");
    if (!home || !*home) {
        struct passwd *pw = getpwuid(getuid());
        home = pw ? pw->pw_dir : "/";
    }
    return xasprintf("%s/.local/share/kiln", strcmp(home, "/") == 0 ? "" : home);
}

static int open_dir_at(int dirfd, const char *name, int *ret, struct kiln_error **err,
                       const char *root)
{
    if (mkdirat(dirfd, name, 0700) < 0 && errno != EEXIST)
        return kiln_error_set(err, errno, "store '%s': create '%s'", root, name);
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return kiln_error_set(err, errno, "store '%s': open '%s'", root, name);
    *ret = fd;
    return 0;
}

/* Marks a directory as the top of independent hierarchies (FS_TOPDIR_FL,
 * `chattr +T`): ext4's Orlov allocator then spreads the directories made in
 * it over block groups with free inodes, instead of packing them beside
 * the parent.  tmp/ holds whole trees (layer extractions, RUN upper
 * directories) that are made and removed in bulk; without the hint every
 * new tree lands in the groups the last one left full of recently freed
 * inodes, and on a file system without a journal ext4 steps over each of
 * those (recently_deleted()) for every file it creates: 20,000 files took
 * 13-20 s instead of 1 s on the test machines.  A hint only: file systems
 * without the flag (or that refuse it) are left alone. */
static void set_topdir_hint(int dfd)
{
    int flags = 0;
    if (ioctl(dfd, FS_IOC_GETFLAGS, &flags) < 0 || (flags & FS_TOPDIR_FL))
        return;
    flags |= FS_TOPDIR_FL;
    (void)ioctl(dfd, FS_IOC_SETFLAGS, &flags);
}

int store_open(const char *root, struct store **ret, struct kiln_error **err)
{
    _cleanup_free_ char *abs = NULL;
    if (root[0] != '/') {
        _cleanup_free_ char *cwd = getcwd(NULL, 0);
        if (!cwd)
            return kiln_error_set(err, errno, "getcwd");
        abs = path_join(cwd, root);
    } else {
        abs = xstrdup(root);
    }
    int r = fs_mkdir_p(abs, 0700);
    if (r < 0)
        return kiln_error_set(err, -r, "store '%s': create", abs);
    struct store *s = xcalloc(1, sizeof(*s));
    s->root = TAKE_PTR(abs);
    s->root_fd = s->blobs_fd = s->tmp_fd = -1;
    s->root_fd = open(s->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->root_fd < 0) {
        kiln_error_set(err, errno, "store '%s': open", s->root);
        goto fail;
    }
    struct stat st;
    if (fstat(s->root_fd, &st) == 0 && st.st_uid == geteuid() && (st.st_mode & 077))
        fchmod(s->root_fd, 0700);

    int blobs_parent = -1;
    if (open_dir_at(s->root_fd, "blobs", &blobs_parent, err, s->root) < 0)
        goto fail;
    r = open_dir_at(blobs_parent, "sha256", &s->blobs_fd, err, s->root);
    close(blobs_parent);
    if (r < 0)
        goto fail;
    if (open_dir_at(s->root_fd, "tmp", &s->tmp_fd, err, s->root) < 0)
        goto fail;
    set_topdir_hint(s->tmp_fd);
    static const char *const dirs[] = {"trees", "cache", "mounts"};
    for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
        if (mkdirat(s->root_fd, dirs[i], 0700) < 0 && errno != EEXIST) {
            kiln_error_set(err, errno, "store '%s': create '%s'", s->root, dirs[i]);
            goto fail;
        }
    {
        /* RUN --mount=type=cache directories are hierarchies too */
        _cleanup_close_ int mfd = openat(s->root_fd, "mounts", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (mfd >= 0)
            set_topdir_hint(mfd);
    }
    if (faccessat(s->root_fd, "oci-layout", F_OK, 0) < 0) {
        r = fs_write_atomic_at(s->root_fd, "oci-layout", OCI_LAYOUT_JSON,
                               strlen(OCI_LAYOUT_JSON), 0644, true);
        if (r < 0) {
            kiln_error_set(err, -r, "store '%s': write oci-layout", s->root);
            goto fail;
        }
    }
    if (faccessat(s->root_fd, "index.json", F_OK, 0) < 0) {
        r = fs_write_atomic_at(s->root_fd, "index.json", EMPTY_INDEX_JSON,
                               strlen(EMPTY_INDEX_JSON), 0644, true);
        if (r < 0) {
            kiln_error_set(err, -r, "store '%s': write index.json", s->root);
            goto fail;
        }
    }
    *ret = s;
    return 0;
fail:
    store_close(s);
    return -1;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    if (s->root_fd >= 0)
        close(s->root_fd);
    if (s->blobs_fd >= 0)
        close(s->blobs_fd);
    if (s->tmp_fd >= 0)
        close(s->tmp_fd);
    free(s->root);
    free(s);
}

/* ---- blobs ---------------------------------------------------------- */

int store_blob_begin(struct store *s, struct blob_writer **ret, struct kiln_error **err)
{
    char name[] = "blob-XXXXXX";
    int fd = -1;
    /* There is no mkstempat: pick random names until one is free. */
    for (int tries = 0; tries < 100; tries++) {
        static const char alnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";
        uint64_t rnd = 0;
        if (getrandom(&rnd, sizeof(rnd), 0) < 0)
            rnd = 0;
        rnd ^= (uint64_t)getpid() << 32 ^ (uint64_t)tries;
        for (int i = 5; i < 11; i++) {
            name[i] = alnum[rnd % 36];
            rnd /= 36;
        }
        fd = openat(s->tmp_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0 || errno != EEXIST)
            break;
    }
    if (fd < 0)
        return kiln_error_set(err, errno, "store: create a blob in '%s/tmp'", s->root);
    struct blob_writer *w = xcalloc(1, sizeof(*w));
    w->store = s;
    w->fd = fd;
    w->tmp_name = xstrdup(name);
    sha256_init(&w->hash);
    *ret = w;
    return 0;
}

int blob_writer_write(struct blob_writer *w, const void *data, size_t len, struct kiln_error **err)
{
    sha256_update(&w->hash, data, len);
    int r = fs_write_all(w->fd, data, len);
    if (r < 0)
        return kiln_error_set(err, -r, "store: write blob");
    w->size += len;
    return 0;
}

static void blob_writer_free(struct blob_writer *w, bool unlink_tmp)
{
    if (w->fd >= 0)
        close(w->fd);
    if (unlink_tmp)
        unlinkat(w->store->tmp_fd, w->tmp_name, 0);
    sha256_abort(&w->hash);
    free(w->tmp_name);
    free(w);
}

void store_blob_abort(struct blob_writer *w)
{
    if (w)
        blob_writer_free(w, true);
}

int store_blob_commit(struct blob_writer *w, const char *expected_digest,
                      char ret_digest[DIGEST_STR_LEN], uint64_t *ret_size, struct kiln_error **err)
{
    char digest[DIGEST_STR_LEN];
    sha256_final_digest(&w->hash, digest);
    if (expected_digest && strcmp(expected_digest, digest) != 0) {
        kiln_error_set(err, 0, "blob digest mismatch: expected %s, got %s", expected_digest,
                       digest);
        blob_writer_free(w, true);
        return -1;
    }
    if (fsync(w->fd) < 0) {
        kiln_error_set(err, errno, "store: fsync blob");
        blob_writer_free(w, true);
        return -1;
    }
    if (renameat(w->store->tmp_fd, w->tmp_name, w->store->blobs_fd, digest_hex(digest)) < 0) {
        kiln_error_set(err, errno, "store: rename blob %s", digest);
        blob_writer_free(w, true);
        return -1;
    }
    if (ret_digest)
        memcpy(ret_digest, digest, DIGEST_STR_LEN);
    if (ret_size)
        *ret_size = w->size;
    blob_writer_free(w, false);
    return 0;
}

int store_blob_put(struct store *s, const void *data, size_t len, char ret_digest[DIGEST_STR_LEN],
                   struct kiln_error **err)
{
    char digest[DIGEST_STR_LEN];
    sha256_digest_of(data, len, digest);
    if (store_has_blob(s, digest)) {
        memcpy(ret_digest, digest, DIGEST_STR_LEN);
        return 0;
    }
    struct blob_writer *w = NULL;
    if (store_blob_begin(s, &w, err) < 0)
        return -1;
    if (blob_writer_write(w, data, len, err) < 0) {
        store_blob_abort(w);
        return -1;
    }
    return store_blob_commit(w, digest, ret_digest, NULL, err);
}

bool store_has_blob(struct store *s, const char *digest)
{
    if (!digest_is_valid(digest))
        return false;
    return faccessat(s->blobs_fd, digest_hex(digest), F_OK, 0) == 0;
}

int store_blob_open(struct store *s, const char *digest, int *ret_fd, struct kiln_error **err)
{
    if (!digest_is_valid(digest))
        return kiln_error_set(err, 0, "invalid digest '%s'", digest);
    int fd = openat(s->blobs_fd, digest_hex(digest), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return kiln_error_set(err, errno, "store: blob %s", digest);
    *ret_fd = fd;
    return 0;
}

int store_blob_read(struct store *s, const char *digest, size_t max, char **ret, size_t *ret_len,
                    struct kiln_error **err)
{
    _cleanup_close_ int fd = -1;
    if (store_blob_open(s, digest, &fd, err) < 0)
        return -1;
    char *buf = NULL;
    size_t len = 0;
    int r = fs_read_fd(fd, max, &buf, &len);
    if (r < 0)
        return kiln_error_set(err, -r, "store: read blob %s", digest);
    char got[DIGEST_STR_LEN];
    sha256_digest_of(buf, len, got);
    if (strcmp(got, digest) != 0) {
        free(buf);
        return kiln_error_set(err, 0, "store: blob %s is corrupt (content hashes to %s)", digest,
                              got);
    }
    *ret = buf;
    if (ret_len)
        *ret_len = len;
    return 0;
}

char *store_blob_relpath(const char *digest)
{
    return xasprintf("blobs/sha256/%s", digest_hex(digest));
}

int store_mkdtemp(struct store *s, const char *prefix, char **ret_path, struct kiln_error **err)
{
    char *p = xasprintf("%s/tmp/%s-XXXXXX", s->root, prefix);
    if (!mkdtemp(p)) {
        int e = errno;
        free(p);
        return kiln_error_set(err, e, "store: create a temporary directory");
    }
    *ret_path = p;
    return 0;
}

int store_lock(struct store *s, int *ret_lockfd, struct kiln_error **err)
{
    int fd = openat(s->root_fd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return kiln_error_set(err, errno, "store: open lock");
    while (flock(fd, LOCK_EX) < 0) {
        if (errno == EINTR)
            continue;
        int e = errno;
        close(fd);
        return kiln_error_set(err, e, "store: lock");
    }
    *ret_lockfd = fd;
    return 0;
}

void store_unlock(int lockfd)
{
    if (lockfd >= 0)
        close(lockfd);
}
