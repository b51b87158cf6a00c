/* Storage drivers and the diff.  The key test: the same changes (create,
 * modify, chmod, chown, delete a lower file and dir, replace a lower dir,
 * make an opaque dir, hard links, symlinks, xattrs, atime-only and
 * mode-only-same changes) applied to the rootfs each driver mounts give the
 * same layer digest, and that layer, applied on top of the lowers, gives
 * back the rootfs the changes made.
 *
 * Needs a user and mount namespace (or root):
 *   unshare --map-root-user --mount build/tests/test_driver          single id
 *   unshare --map-auto --map-root-user --mount build/tests/test_driver  range
 * Run unprivileged, it re-executes itself that way (userns_reexec.h).
 * kiln-test: as-users */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "userns_reexec.h"
#include "layers/compress.h"
#include "layers/driver.h"
#include "layers/layer.h"
#include "layers/layer_internal.h"
#include "layers/store.h"
#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/sha256.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

#define T_OLD 1600000000
#define T_CLAMP 1700000000

static char tmpdir[] = "/tmp/kiln-test-driver-XXXXXX";
static struct store *st;
static char *tree1, *tree2; /* base layers: tree2 over tree1 */

/* ---- building the base layers ------------------------------------------------------ */

struct ent {
    const char *path;
    mode_t mode;
    uid_t uid;
    gid_t gid;
    const char *data; /* content, symlink target, or hard-link target */
    bool hardlink;
};

static int write_layer(const struct ent *ents, size_t n, const char *const *whiteouts,
                       const char *const *opaques, struct layer_result *res)
{
    struct layer_writer *w = NULL;
    struct kiln_error *err = NULL;
    struct layer_write_opts o = {.compression = COMPRESSION_GZIP, .clamp_mtime = -1};
    if (layer_writer_begin(st, &o, &w, &err) < 0)
        goto fail;
    for (size_t i = 0; opaques && opaques[i]; i++)
        if (layer_writer_add_opaque(w, opaques[i], &err) < 0)
            goto fail;
    for (size_t i = 0; i < n; i++) {
        const struct ent *e = &ents[i];
        struct layer_entry le = {.path = e->path, .content_fd = -1};
        le.st.st_mode = e->mode;
        le.st.st_uid = e->uid;
        le.st.st_gid = e->gid;
        le.st.st_mtim.tv_sec = T_OLD;
        if (S_ISLNK(e->mode) || e->hardlink) {
            le.link = e->data;
            le.hardlink = e->hardlink;
        } else if (S_ISREG(e->mode)) {
            le.st.st_size = (off_t)strlen(e->data);
        }
        if (layer_writer_add(w, &le, &err) < 0)
            goto fail;
        if (le.st.st_size && layer_writer_write(w, e->data, strlen(e->data), &err) < 0)
            goto fail;
    }
    for (size_t i = 0; whiteouts && whiteouts[i]; i++)
        if (layer_writer_add_whiteout(w, whiteouts[i], &err) < 0)
            goto fail;
    if (layer_writer_finish(w, res, &err) < 0) {
        w = NULL;
        goto fail;
    }
    return 0;
fail:
    fprintf(stderr, "write_layer: %s\n", err ? err->msg : "?");
    kiln_error_free(&err);
    layer_writer_abort(w);
    return -1;
}

static char *extract(const struct layer_result *r)
{
    char *tree = NULL;
    struct kiln_error *err = NULL;
    if (store_tree_ensure(st, &r->blob, r->diff_id, &tree, &err) < 0) {
        fprintf(stderr, "extract: %s\n", err->msg);
        kiln_error_free(&err);
        return NULL;
    }
    return tree;
}

#define DIR_(p) {p, S_IFDIR | 0755, 0, 0, NULL, false}
#define FILE_(p, d) {p, S_IFREG | 0644, 0, 0, d, false}

static int build_base(void)
{
    static const struct ent l1[] = {
        DIR_("data"),
        DIR_("data/a"),
        FILE_("data/a/x", "ax\n"),
        FILE_("data/a/y", "ay\n"),
        DIR_("data/b"),
        FILE_("data/b/1", "b1\n"),
        FILE_("data/b/2", "b2\n"),
        DIR_("dir-to-empty"),
        FILE_("dir-to-empty/c1", "c1\n"),
        FILE_("dir-to-empty/c2", "c2\n"),
        DIR_("etc"),
        {"etc/group", S_IFREG | 0644, 0, 0, "root:x:0:\n", false},
        FILE_("etc/hostname", "base\n"),
        FILE_("etc/passwd", "root:x:0:0::/root:/bin/sh\n"),
        {"etc/shadow", S_IFREG | 0640, 0, 42, "root:*:1::::::\n", false},
        FILE_("hl1", "linked\n"),
        {"hl2", S_IFREG | 0644, 0, 0, "hl1", true},
        DIR_("keep"),
        FILE_("keep/k1", "keep\n"),
        {"keep/owned-link", S_IFLNK | 0777, 1000, 1000, "k1", false},
        DIR_("opq"),
        FILE_("opq/old", "old\n"),
        DIR_("repl"),
        FILE_("repl/inner", "inner\n"),
        FILE_("rmme", "bye\n"),
        DIR_("rmdir"),
        FILE_("rmdir/f", "f\n"),
        DIR_("usr"),
        DIR_("usr/bin"),
        {"usr/bin/tool", S_IFREG | 0755, 0, 0, "#!/bin/sh\necho tool\n", false},
        {"usr/bin/tool-link", S_IFLNK | 0777, 0, 0, "tool", false},
        {"usr/bin/user-owned", S_IFREG | 0644, 1000, 1000, "mine\n", false},
    };
    static const struct ent l2[] = {
        DIR_("data"),
        DIR_("data/b"),
        FILE_("data/b/3", "b3\n"),
        DIR_("opq"),
        FILE_("opq/new", "new\n"),
    };
    static const char *const wh2[] = {"data/b/2", NULL};
    static const char *const opq2[] = {"opq", NULL};
    struct layer_result r1 = {0}, r2 = {0};
    if (write_layer(l1, ARRAY_SIZE(l1), NULL, NULL, &r1) < 0 ||
        write_layer(l2, ARRAY_SIZE(l2), wh2, opq2, &r2) < 0)
        return -1;
    tree1 = extract(&r1);
    tree2 = extract(&r2);
    layer_result_free(&r1);
    layer_result_free(&r2);
    return tree1 && tree2 ? 0 : -1;
}

/* ---- the changes a RUN makes ---------------------------------------------------- */

static int at(const char *root, const char *rel, char *buf, size_t n)
{
    int r = snprintf(buf, n, "%s/%s", root, rel);
    return r > 0 && (size_t)r < n ? 0 : -1;
}

#define P(rel) (at(root, rel, pb, sizeof(pb)) == 0 ? pb : "/nonexistent")
#define P2(rel) (at(root, rel, pb2, sizeof(pb2)) == 0 ? pb2 : "/nonexistent")

static int write_str(const char *path, const char *s, int flags)
{
    _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0644);
    return fd < 0 ? -1 : fs_write_all(fd, s, strlen(s));
}

/* chown where the id is mapped, else record it as root emulation would. */
static int chown_or_record(const char *path, uid_t u, gid_t g)
{
    if (lchown(path, u, g) == 0)
        return 0;
    if (errno != EINVAL && errno != EPERM)
        return -1;
    char v[32];
    int n = snprintf(v, sizeof(v), "%u:%u", (unsigned)u, (unsigned)g);
    return lsetxattr(path, KILN_OWNER_XATTR, v, (size_t)n, 0);
}

static int set_mtime(const char *path, time_t t)
{
    struct timespec ts[2] = {{t, 0}, {t, 0}};
    return utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW);
}

static int apply_changes(const char *root)
{
    char pb[4096], pb2[4096];
    int bad = 0;
#define DO(x)                                                                                      \
    do {                                                                                           \
        if ((x) < 0) {                                                                             \
            fprintf(stderr, "change failed: %s: %s\n", #x, strerror(errno));                       \
            bad++;                                                                                 \
        }                                                                                          \
    } while (0)
    /* create */
    DO(mkdir(P("new"), 0755));
    DO(write_str(P("new/file"), "fresh\n", O_EXCL));
    DO(symlink("file", P("new/link")));
    DO(mkfifo(P("new/fifo"), 0600));
    DO(chmod(P("new/file"), 04755));
    /* hard links: a new pair, and a new name for a lower file */
    DO(link(P("new/file"), P2("new/file-hl")));
    DO(link(P("usr/bin/tool"), P2("usr/bin/tool-hl")));
    /* modify, chmod, chown, xattr */
    DO(write_str(P("etc/passwd"), "app:x:1000:1000::/home/app:/bin/sh\n", O_APPEND));
    DO(chmod(P("etc/hostname"), 0600));
    DO(chown_or_record(P("etc/group"), 42, 42));
    DO(chown_or_record(P("usr/bin/user-owned"), 2000, 2000));
    DO(setxattr(P("etc/passwd"), "user.test", "1", 1, 0));
    /* mtime only */
    DO(set_mtime(P("usr/bin/tool"), T_OLD + 5));
    /* modify one name of a lower hard-linked pair */
    DO(write_str(P("hl1"), "changed\n", O_APPEND));
    /* delete a lower file and a lower dir */
    DO(unlink(P("rmme")));
    DO(fs_rm_rf(P("rmdir")));
    /* replace a lower dir with a file, a lower symlink with another */
    DO(fs_rm_rf(P("repl")));
    DO(write_str(P("repl"), "now a file\n", O_EXCL));
    DO(unlink(P("usr/bin/tool-link")));
    DO(symlink("tool-hl", P("usr/bin/tool-link")));
    /* an opaque dir: removed and made again */
    DO(fs_rm_rf(P("data/a")));
    DO(mkdir(P("data/a"), 0755));
    DO(write_str(P("data/a/z"), "az\n", O_EXCL));
    /* a dir whose lower children all go */
    DO(unlink(P("dir-to-empty/c1")));
    DO(unlink(P("dir-to-empty/c2")));
    /* a lower file deleted in a dir of two layers */
    DO(unlink(P("data/b/1")));
    /* not changes: reads, atime, chmod to the same mode, chown to the same owner */
    {
        char *data = NULL;
        size_t len = 0;
        DO(fs_read_file_at(AT_FDCWD, P("etc/group"), 4096, &data, &len));
        free(data);
    }
    {
        struct timespec ts[2] = {{T_OLD + 1000, 0}, {0, UTIME_OMIT}};
        DO(utimensat(AT_FDCWD, P("keep/k1"), ts, 0));
    }
    DO(chmod(P("keep/k1"), 0644));
    {
        struct stat sb;
        DO(lstat(P("keep/owned-link"), &sb));
        DO(lchown(P("keep/owned-link"), sb.st_uid, sb.st_gid));
    }
    return bad ? -1 : 0;
#undef DO
}

/* ---- a listing to compare views -------------------------------------------------------- */

static void list_tree(int dfd, const char *prefix, struct strbuf *out, const char *tree_for_owners)
{
    char **names = NULL;
    size_t n = 0;
    if (dir_list_names(dfd, true, &names, &n) < 0)
        return;
    for (size_t i = 0; i < n; i++) {
        _cleanup_free_ char *path = *prefix ? xasprintf("%s/%s", prefix, names[i]) : xstrdup(names[i]);
        struct file_meta m;
        if (meta_read_at(dfd, names[i], -1, &m) < 0) {
            strbuf_addf(out, "%s ?\n", path);
            free(names[i]);
            continue;
        }
        char hex[DIGEST_STR_LEN] = "";
        if (S_ISREG(m.st.st_mode)) {
            char *data = NULL;
            size_t len = 0;
            _cleanup_close_ int f = openat(dfd, names[i], O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
            if (f >= 0 && fs_read_fd(f, 1 << 24, &data, &len) == 0)
                sha256_digest_of(data, len, hex);
            free(data);
        }
        /* symlinks: owners from the merged root's side table are not known
         * here; list raw owners for them */
        strbuf_addf(out, "%s %o %u:%u %lld %s %s", path, (unsigned)m.st.st_mode,
                    (unsigned)m.uid, (unsigned)m.gid,
                    S_ISREG(m.st.st_mode) ? (long long)m.st.st_size : 0LL, m.link ? m.link : "",
                    hex + (hex[0] ? 7 : 0));
        for (size_t k = 0; k < m.xattrs.n; k++)
            strbuf_addf(out, " %s", m.xattrs.names[k]);
        strbuf_addc(out, '\n');
        if (S_ISDIR(m.st.st_mode)) {
            int sub = openat(dfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0) {
                list_tree(sub, path, out, tree_for_owners);
                close(sub);
            }
        }
        meta_free(&m);
        free(names[i]);
    }
    free(names);
}

static char *listing(const char *dir)
{
    struct strbuf sb = STRBUF_INIT;
    strbuf_init(&sb);
    _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0)
        list_tree(fd, "", &sb, NULL);
    return strbuf_detach(&sb, NULL);
}

/* ---- reading a layer ------------------------------------------------------------------- */

static char *layer_entries(const struct layer_result *r)
{
    _cleanup_close_ int fd = -1;
    struct decompressor *d = NULL;
    struct strbuf tar = STRBUF_INIT, out = STRBUF_INIT;
    strbuf_init(&tar);
    strbuf_init(&out);
    if (store_blob_open(st, r->blob.digest, &fd, NULL) < 0 || decompressor_open(fd, &d, NULL) < 0)
        return strbuf_detach(&out, NULL);
    char buf[65536];
    size_t n;
    while (decompressor_read(d, buf, sizeof(buf), &n, NULL) == 0 && n > 0)
        strbuf_add(&tar, buf, n);
    decompressor_free(d);
    struct archive *a = archive_read_new();
    archive_read_support_format_tar(a);
    archive_read_open_memory(a, tar.buf, tar.len);
    struct archive_entry *ae;
    while (archive_read_next_header(a, &ae) == ARCHIVE_OK) {
        strbuf_addf(&out, "%s %o %lld:%lld", archive_entry_pathname(ae),
                    (unsigned)archive_entry_mode(ae), (long long)archive_entry_uid(ae),
                    (long long)archive_entry_gid(ae));
        if (archive_entry_hardlink(ae))
            strbuf_addf(&out, " =>%s", archive_entry_hardlink(ae));
        if (archive_entry_symlink(ae))
            strbuf_addf(&out, " ->%s", archive_entry_symlink(ae));
        strbuf_addf(&out, " size=%lld mtime=%lld", (long long)archive_entry_size(ae),
                    (long long)archive_entry_mtime(ae));
        archive_entry_xattr_reset(ae);
        const char *xn;
        const void *xv;
        size_t xl;
        while (archive_entry_xattr_next(ae, &xn, &xv, &xl) == ARCHIVE_OK)
            strbuf_addf(&out, " %s=%.*s", xn, (int)xl, (const char *)xv);
        strbuf_addc(&out, '\n');
    }
    archive_read_free(a);
    strbuf_release(&tar);
    return strbuf_detach(&out, NULL);
}

/* Removes the line starting with prefix (in place). */
static void drop_line(char *text, const char *prefix)
{
    for (char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, prefix, strlen(prefix)) == 0) {
            char *nl = strchr(p, '\n');
            memmove(p, nl ? nl + 1 : p + strlen(p), strlen(nl ? nl + 1 : p + strlen(p)) + 1);
            return;
        }
    }
}

static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)); p++)
        if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == ' ' || p[n] == '\0'))
            return true;
    return false;
}

/* ---- the tests ------------------------------------------------------------------------------ */

static bool dir_is_empty(const char *path)
{
    _cleanup_dir_ DIR *d = opendir(path);
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            return false;
    return d != NULL;
}

static const enum storage_driver all_drivers[] = {DRIVER_OVERLAY, DRIVER_FUSE_OVERLAYFS,
                                                  DRIVER_COPY};
static bool works[4];

TEST(names_and_resolve)
{
    enum storage_driver d;
    for (int i = 0; i < 4; i++) {
        CHECK(driver_from_name(driver_name((enum storage_driver)i), &d) == 0);
        CHECK_INT_EQ(d, i);
    }
    CHECK(driver_from_name("vfs", &d) < 0);
    struct kiln_error *err = NULL;
    CHECK(driver_resolve(st, DRIVER_AUTO, &d, &err) == 0);
    printf("  auto resolves to %s\n", driver_name(d));
    for (size_t i = 0; i < ARRAY_SIZE(all_drivers); i++) {
        enum storage_driver got;
        works[all_drivers[i]] = driver_resolve(st, all_drivers[i], &got, &err) == 0;
        if (!works[all_drivers[i]]) {
            printf("  %s: %s\n", driver_name(all_drivers[i]), err->msg);
            kiln_error_free(&err);
        }
    }
    CHECK(works[DRIVER_COPY]);
    /* the answer is cached: a second call agrees */
    enum storage_driver again;
    CHECK(driver_resolve(st, DRIVER_AUTO, &again, NULL) == 0 && again == d);
    if (works[DRIVER_OVERLAY])
        CHECK_INT_EQ(d, DRIVER_OVERLAY);
    _cleanup_free_ char *tmp = xasprintf("%s/tmp", st->root);
    CHECK(dir_is_empty(tmp));
}

static bool mounted(const char *dir)
{
    _cleanup_free_ char *mi = NULL;
    size_t len = 0;
    if (fs_read_file_at(AT_FDCWD, "/proc/self/mountinfo", 1 << 22, &mi, &len) < 0)
        return false;
    return strstr(mi, dir) != NULL;
}

struct run {
    char digest[DIGEST_STR_LEN];
    char diff_id[DIGEST_STR_LEN];
    char *entries;
    char *view;
    uint64_t n;
    bool ok;
};

static void run_sequence(enum storage_driver drv, struct run *out)
{
    memset(out, 0, sizeof(*out));
    char *lowers[] = {tree2, tree1, NULL};
    struct rootfs *r = NULL;
    struct kiln_error *err = NULL;
    if (rootfs_mount(st, drv, lowers, &r, &err) < 0) {
        H_FAIL("%s: mount: %s", driver_name(drv), err->msg);
        kiln_error_free(&err);
        return;
    }
    CHECK(r->driver == drv);
    /* the base is visible through the driver */
    _cleanup_free_ char *base_view = listing(r->merged);
    CHECK(has_line(base_view, "data/b/3"));
    CHECK(!has_line(base_view, "data/b/2"));
    CHECK(has_line(base_view, "opq/new") && !has_line(base_view, "opq/old"));

    /* no change: an empty layer */
    struct layer_write_opts o = {.compression = COMPRESSION_GZIP, .clamp_mtime = T_CLAMP};
    struct layer_result empty = {0};
    CHECK(rootfs_diff(st, r, &o, &empty, &err) == 0);
    kiln_error_free(&err);
    CHECK_INT_EQ(empty.entries, 0);
    layer_result_free(&empty);

    CHECK(apply_changes(r->merged) == 0);
    out->view = listing(r->merged);
    /* fuse-overlayfs shows a write through hl1 in hl2 too (it keeps lower
     * hard links together in memory) but its upper, like overlayfs's, has
     * hl1 alone: after a remount hl2 is the old file.  hl2 is left out of
     * its views. */
    if (drv == DRIVER_FUSE_OVERLAYFS)
        drop_line(out->view, "hl2 ");

    struct layer_result res = {0};
    if (rootfs_diff(st, r, &o, &res, &err) < 0) {
        H_FAIL("%s: diff: %s", driver_name(drv), err->msg);
        kiln_error_free(&err);
    } else {
        memcpy(out->digest, res.blob.digest, DIGEST_STR_LEN);
        memcpy(out->diff_id, res.diff_id, DIGEST_STR_LEN);
        out->n = res.entries;
        out->entries = layer_entries(&res);
        out->ok = true;
        /* the layer on top of the lowers gives back the view */
        char *tree = extract(&res);
        if (tree) {
            char *lowers3[] = {tree, tree2, tree1, NULL};
            struct rootfs *v = NULL;
            if (rootfs_mount(st, DRIVER_COPY, lowers3, &v, &err) == 0) {
                _cleanup_free_ char *again = listing(v->merged);
                if (drv == DRIVER_FUSE_OVERLAYFS)
                    drop_line(again, "hl2 ");
                if (strcmp(again, out->view) != 0)
                    H_FAIL("%s: layer applied on the lowers differs from the rootfs:\n--- "
                           "rootfs\n%s--- applied\n%s",
                           driver_name(drv), out->view, again);
                rootfs_release(v);
            } else {
                H_FAIL("verify mount: %s", err->msg);
                kiln_error_free(&err);
            }
            free(tree);
        }
    }
    layer_result_free(&res);
    _cleanup_free_ char *scratch = xstrdup(r->scratch);
    _cleanup_free_ char *merged = xstrdup(r->merged);
    pid_t fpid = r->fuse_pid;
    rootfs_release(r);
    CHECK(!fs_exists(scratch));
    CHECK(!mounted(merged));
    if (fpid > 0)
        CHECK(kill(fpid, 0) < 0 && waitpid(fpid, NULL, WNOHANG) < 0);
}

TEST(same_layer_whatever_the_driver)
{
    struct run runs[4];
    memset(runs, 0, sizeof(runs));
    int done = 0;
    const char *ref = NULL;
    for (size_t i = 0; i < ARRAY_SIZE(all_drivers); i++) {
        enum storage_driver drv = all_drivers[i];
        if (!works[drv]) {
            harness_skip(driver_name(drv), "driver does not work in this environment");
            runs[drv].ok = false;
            continue;
        }
        run_sequence(drv, &runs[drv]);
        if (!runs[drv].ok)
            continue;
        done++;
        printf("  %-15s %s (%llu entries)\n", driver_name(drv), runs[drv].digest,
               (unsigned long long)runs[drv].n);
        if (!ref) {
            ref = runs[drv].entries;
            printf("%s", ref);
        }
    }
    CHECK(done >= 2);
    enum storage_driver first = DRIVER_AUTO;
    for (size_t i = 0; i < ARRAY_SIZE(all_drivers); i++) {
        enum storage_driver drv = all_drivers[i];
        if (!runs[drv].ok)
            continue;
        if (first == DRIVER_AUTO) {
            first = drv;
            continue;
        }
        if (strcmp(runs[drv].digest, runs[first].digest) != 0)
            H_FAIL("%s and %s differ:\n--- %s\n%s--- %s\n%s", driver_name(first),
                   driver_name(drv), driver_name(first), runs[first].entries, driver_name(drv),
                   runs[drv].entries);
        /* views compared without hl2 (see run_sequence) */
        drop_line(runs[first].view, "hl2 ");
        drop_line(runs[drv].view, "hl2 ");
        if (strcmp(runs[drv].view, runs[first].view) != 0)
            H_FAIL("%s and %s show different rootfs views", driver_name(first), driver_name(drv));
    }
    /* What the layer must hold, and must not. */
    if (ref) {
        static const char *const must[] = {
            "new/ 40755", "new/file 104755", "new/file-hl 4755 0:0 =>new/file",
            "new/link 120777 0:0 ->file", "new/fifo 10600", "etc/passwd 100644",
            "etc/hostname 100600", "etc/group 100644 42:42", "usr/bin/user-owned 100644 2000:2000",
            "usr/bin/tool 100755", "usr/bin/tool-hl", "usr/bin/tool-link 120777 0:0 ->tool-hl",
            "hl1 100644", ".wh.rmme", ".wh.rmdir", "repl 100644", "data/a/ 40755",
            "data/a/.wh..wh..opq", "data/a/z", "dir-to-empty/.wh..wh..opq", "data/b/.wh.1",
        };
        static const char *const mustnot[] = {"keep/", "keep/k1", "keep/owned-link", "hl2",
                                              "etc/shadow", "opq/", "data/a/x", "rmme",
                                              ".wh.repl", "usr/bin/tool-hl =>"};
        for (size_t i = 0; i < ARRAY_SIZE(must); i++)
            if (!has_line(ref, must[i]))
                H_FAIL("layer lacks '%s'", must[i]);
        for (size_t i = 0; i < ARRAY_SIZE(mustnot); i++)
            if (has_line(ref, mustnot[i]))
                H_FAIL("layer has '%s'", mustnot[i]);
    }
    for (int i = 0; i < 4; i++) {
        free(runs[i].entries);
        free(runs[i].view);
    }
}

TEST(scratch_image_and_many_layers)
{
    /* 120 one-file layers, and none at all, with each driver */
    static char *many[121];
    for (int i = 0; i < 120; i++) {
        _cleanup_free_ char *name = xasprintf("f%03d", i);
        char data[16];
        snprintf(data, sizeof(data), "%d\n", i);
        struct ent e = {name, S_IFREG | 0644, 0, 0, data, false};
        struct layer_result r = {0};
        if (write_layer(&e, 1, NULL, NULL, &r) < 0)
            return;
        many[119 - i] = extract(&r);
        layer_result_free(&r);
    }
    many[120] = NULL;
    for (int legacy = 0; legacy < 2; legacy++) {
        if (legacy)
            setenv("KILN_OVERLAY_LEGACY", "1", 1);
        for (size_t i = 0; i < ARRAY_SIZE(all_drivers); i++) {
            enum storage_driver drv = all_drivers[i];
            if (!works[drv] || (legacy && drv != DRIVER_OVERLAY))
                continue;
            struct rootfs *r = NULL;
            struct kiln_error *err = NULL;
            if (rootfs_mount(st, drv, many, &r, &err) < 0) {
                H_FAIL("%s%s with 120 layers: %s", driver_name(drv), legacy ? " (legacy)" : "",
                       err->msg);
                kiln_error_free(&err);
                continue;
            }
            _cleanup_free_ char *f0 = xasprintf("%s/f000", r->merged);
            _cleanup_free_ char *f119 = xasprintf("%s/f119", r->merged);
            CHECK(fs_exists(f0) && fs_exists(f119));
            rootfs_release(r);
            char *none[] = {NULL};
            CHECK(rootfs_mount(st, drv, none, &r, &err) == 0);
            if (!r)
                continue;
            _cleanup_free_ char *nf = xasprintf("%s/hello", r->merged);
            CHECK(write_str(nf, "hi\n", O_EXCL) == 0);
            struct layer_result res = {0};
            struct layer_write_opts o = {.compression = COMPRESSION_ZSTD, .clamp_mtime = T_CLAMP};
            CHECK(rootfs_diff(st, r, &o, &res, &err) == 0);
            CHECK_INT_EQ(res.entries, 1);
            layer_result_free(&res);
            /* a busy mount is detached, and the scratch still goes */
            _cleanup_close_ int busy = open(nf, O_RDONLY | O_CLOEXEC);
            _cleanup_free_ char *scratch = xstrdup(r->scratch);
            rootfs_release(r);
            CHECK(!fs_exists(scratch));
        }
    }
    unsetenv("KILN_OVERLAY_LEGACY");
    for (int i = 0; i < 120; i++)
        free(many[i]);
}

/* Deleting everything at the root: whiteouts, never an opaque root (which
 * overlayfs would ignore in a tree). */
TEST(root_deletions_are_whiteouts)
{
    static const struct ent base[] = {FILE_("a", "a\n"), DIR_("d"), FILE_("d/x", "x\n")};
    struct layer_result r = {0};
    if (write_layer(base, ARRAY_SIZE(base), NULL, NULL, &r) < 0)
        return;
    _cleanup_free_ char *tree = extract(&r);
    layer_result_free(&r);
    char *lowers[] = {tree, NULL};
    for (size_t i = 0; i < ARRAY_SIZE(all_drivers); i++) {
        enum storage_driver drv = all_drivers[i];
        if (!works[drv] || !tree)
            continue;
        struct rootfs *rf = NULL;
        struct kiln_error *err = NULL;
        if (rootfs_mount(st, drv, lowers, &rf, &err) < 0) {
            H_FAIL("%s: %s", driver_name(drv), err->msg);
            kiln_error_free(&err);
            continue;
        }
        _cleanup_free_ char *a = xasprintf("%s/a", rf->merged);
        _cleanup_free_ char *d = xasprintf("%s/d", rf->merged);
        CHECK(unlink(a) == 0 && fs_rm_rf(d) == 0);
        struct layer_write_opts o = {.compression = COMPRESSION_NONE, .clamp_mtime = T_CLAMP};
        struct layer_result res = {0};
        CHECK(rootfs_diff(st, rf, &o, &res, &err) == 0);
        _cleanup_free_ char *ents = res.blob.media_type ? layer_entries(&res) : xstrdup("");
        CHECK(has_line(ents, ".wh.a") && has_line(ents, ".wh.d"));
        CHECK(!strstr(ents, WH_OPAQUE));
        CHECK_INT_EQ(res.entries, 2);
        layer_result_free(&res);
        rootfs_release(rf);
    }
}

/* Owners the diff cannot read off the files: a file renamed over an owned
 * one (single-ID mode: it takes the old file's owner), the runtime's owner
 * log (symlinks, fifos), and a tree listed twice among the lowers. */
TEST(owner_rules_and_repeated_lowers)
{
    static const struct ent base[] = {
        DIR_("etc"),
        {"etc/shadow", S_IFREG | 0640, 0, 42, "root:*:1::::::\n", false},
        FILE_("plain", "plain\n"),
        DIR_("var"),
        FILE_("var/kept", "kept\n"),
    };
    struct layer_result r = {0};
    if (write_layer(base, ARRAY_SIZE(base), NULL, NULL, &r) < 0)
        return;
    _cleanup_free_ char *tree = extract(&r);
    layer_result_free(&r);
    if (!tree)
        return;
    bool single = layers_single_id();
    char *lowers[] = {tree, tree2, tree, NULL};
    char first[DIGEST_STR_LEN] = "";
    for (size_t i = 0; i < ARRAY_SIZE(all_drivers); i++) {
        enum storage_driver drv = all_drivers[i];
        if (!works[drv])
            continue;
        struct rootfs *rf = NULL;
        struct kiln_error *err = NULL;
        if (rootfs_mount(st, drv, lowers, &rf, &err) < 0) {
            H_FAIL("%s with a tree listed twice: %s", driver_name(drv), err->msg);
            kiln_error_free(&err);
            continue;
        }
        CHECK_INT_EQ(strv_len(rf->lowers), 2);
        char pb[4096], pb2[4096];
        const char *root = rf->merged;
        CHECK(fs_exists(P("var/kept")) && fs_exists(P("data/b/3")));
        /* useradd's way: a new file, chowned to what stat showed, renamed over */
        CHECK(write_str(P("etc/shadow+"), "root:*:1::::::\napp:!:1::::::\n", O_EXCL) == 0);
        CHECK(chmod(P("etc/shadow+"), 0640) == 0);
        CHECK(rename(P("etc/shadow+"), P2("etc/shadow")) == 0);
        CHECK(write_str(P("plain.new"), "new\n", O_EXCL) == 0);
        CHECK(rename(P("plain.new"), P2("plain")) == 0);
        CHECK(symlink("plain", P("nl")) == 0);
        CHECK(mkfifo(P("ff"), 0644) == 0);
        CHECK(symlink("plain", P("back\\slash")) == 0);
        static const char log[] = "5:6 /nl\n1:1 /ff\n7:8 /ff\n9:10 /back\\\\slash\n"
                                  "3:3 /no-such-entry\n";
        /* the engine puts the RUN's owner log in the scratch directory */
        rf->owner_log = xasprintf("%s/owners.log", rf->scratch);
        CHECK(fs_write_atomic_at(AT_FDCWD, rf->owner_log, log, strlen(log), 0600, false) == 0);
        struct layer_write_opts o = {.compression = COMPRESSION_GZIP, .clamp_mtime = T_CLAMP};
        struct layer_result res = {0};
        if (rootfs_diff(st, rf, &o, &res, &err) < 0) {
            H_FAIL("%s: diff: %s", driver_name(drv), err->msg);
            kiln_error_free(&err);
            rootfs_release(rf);
            continue;
        }
        _cleanup_free_ char *ents = layer_entries(&res);
        char name[64];
        snprintf(name, sizeof(name), "%s: etc/shadow keeps 0:42", driver_name(drv));
        harness_case(name, has_line(ents, single ? "etc/shadow 100640 0:42" : "etc/shadow 100640 0:0"),
                     ents);
        snprintf(name, sizeof(name), "%s: owners from the log", driver_name(drv));
        harness_case(name,
                     has_line(ents, "nl 120777 5:6 ->plain") && has_line(ents, "ff 10644 7:8") &&
                         has_line(ents, "back\\slash 120777 9:10 ->plain") &&
                         has_line(ents, "plain 100644 0:0"),
                     ents);
        if (!first[0])
            memcpy(first, res.blob.digest, DIGEST_STR_LEN);
        else if (strcmp(first, res.blob.digest) != 0)
            H_FAIL("%s gives another layer: %s", driver_name(drv), ents);
        layer_result_free(&res);
        rootfs_release(rf);
    }
}

static bool in_namespace_or_root(void)
{
    if (geteuid() != 0)
        return false;
    /* root: try a private mount namespace of our own for the mounts */
    return true;
}

int main(void)
{
    userns_reexec();
    if (!in_namespace_or_root()) {
        harness_skip("drivers", "needs a user and mount namespace: run under "
                                "'unshare --map-root-user --mount'");
        return harness_done();
    }
    /* Mounts made here must not leak into the caller's namespace. */
    if (unshare(CLONE_NEWNS) == 0)
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    _cleanup_free_ char *root = xasprintf("%s/store", tmpdir);
    struct kiln_error *err = NULL;
    if (store_open(root, &st, &err) < 0 || build_base() < 0) {
        fprintf(stderr, "setup failed%s%s\n", err ? ": " : "", err ? err->msg : "");
        return 1;
    }
    printf("  uid %d, trees: %s\n", (int)geteuid(), strrchr(tree1, '/') + 1);
    RUN(names_and_resolve);
    RUN(same_layer_whatever_the_driver);
    RUN(scratch_image_and_many_layers);
    RUN(root_deletions_are_whiteouts);
    RUN(owner_rules_and_repeated_lowers);
    store_close(st);
    fs_rm_rf(tmpdir);
    return harness_done();
}
