/* Layer tar writing and reading: byte-identical rewrites, the format
 * (pax restricted, SCHILY xattrs, no uname/atime/ctime, clamped mtimes),
 * other readers (gzip, tar, python, umoci, skopeo), extraction into trees
 * (whiteouts, opaque dirs, owners, hard links), hostile layers refused with
 * nothing renamed into trees/, imports.
 *
 * Runs as root, or as an unprivileged user inside `unshare -r` (single id)
 * or `unshare --map-auto -r` (range): owners are checked through the
 * effective owner (chown, user.kiln.owner or the side table).  Run
 * unprivileged, it re-executes itself that way (userns_reexec.h).
 * kiln-test: as-users */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "userns_reexec.h"
#include "layers/compress.h"
#include "layers/layer.h"
#include "layers/layer_internal.h"
#include "layers/store.h"
#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

static char tmpdir[] = "/tmp/kiln-test-tar-XXXXXX";
static int store_counter;

static struct store *new_store(void)
{
    _cleanup_free_ char *root = xasprintf("%s/store%d", tmpdir, store_counter++);
    struct store *s = NULL;
    struct kiln_error *err = NULL;
    if (store_open(root, &s, &err) < 0) {
        fprintf(stderr, "store_open: %s\n", err->msg);
        exit(1);
    }
    return s;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *cmd = xvasprintf(fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int memfd_with(const void *data, size_t len)
{
    int fd = memfd_create("t", MFD_CLOEXEC);
    if (fd >= 0 && (fs_write_all(fd, data, len) < 0 || lseek(fd, 0, SEEK_SET) < 0)) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static bool is_single_mapped(void)
{
    _cleanup_free_ char *name = layer_tree_name("sha256:"
                                                "0000000000000000000000000000000000000000000000"
                                                "000000000000000000");
    return strstr(name, "-single") != NULL;
}

/* ---- the reference layer ---------------------------------------------------------- */

#define T_NEW 2000000000 /* 2033: clamped to T_CLAMP */
#define T_OLD 1600000000
#define T_CLAMP 1700000000

static char long_dir[200], long_file[400], long_target[300], long_name[220];

static void init_names(void)
{
    char l150[151];
    memset(l150, 'L', 150);
    l150[150] = '\0';
    snprintf(long_dir, sizeof(long_dir), "a/%s", l150);
    snprintf(long_file, sizeof(long_file), "%s/file-with-a-long-path", long_dir);
    char n200[201];
    memset(n200, 'n', 200);
    n200[200] = '\0';
    snprintf(long_name, sizeof(long_name), "a/%s", n200);
    char t250[251];
    memset(t250, 't', 250);
    t250[250] = '\0';
    snprintf(long_target, sizeof(long_target), "../%s", t250);
}

struct spec {
    const char *path;
    mode_t mode;
    uid_t uid;
    gid_t gid;
    int64_t mtime;
    const char *content; /* regular files */
    const char *link;    /* symlink target / hard-link target */
    bool hardlink;
    dev_t rdev;
    const char *xname, *xvalue; /* one xattr */
    const char *xname2, *xvalue2;
};

static struct spec specs[32];
static size_t nspecs;

static void init_specs(void)
{
    init_names();
#define D(p, m, u, g, t) {.path = p, .mode = m, .uid = u, .gid = g, .mtime = t}
#define F(p, m, u, g, t, c) {.path = p, .mode = m, .uid = u, .gid = g, .mtime = t, .content = c}
#define L(p, u, g, t, l) {.path = p, .mode = S_IFLNK | 0777, .uid = u, .gid = g, .mtime = t, .link = l}
    struct spec s[] = {
        D("a", S_IFDIR | 0755, 0, 0, T_OLD),
        D("a/empty", S_IFDIR | 0700, 0, 0, T_OLD),
        D("a/fifo", S_IFIFO | 0640, 0, 0, T_OLD),
        F("a/file", S_IFREG | 0644, 0, 0, T_NEW, "hello\n"),
        {.path = "a/hard", .mode = S_IFREG | 0644, .mtime = T_NEW, .link = "a/file",
         .hardlink = true},
        F("a/ids", S_IFREG | 0600, 3000000000u, 3000000001u, T_OLD, "big ids\n"),
        L("a/link", 0, 0, T_OLD, "../a/file"),
        L("a/longlink", 0, 0, T_OLD, long_target),
        {.path = "a/null", .mode = S_IFCHR | 0666, .mtime = T_OLD, .rdev = makedev(1, 3)},
        F("a/owned", S_IFREG | 0640, 1000, 33, T_OLD, "owned\n"),
        L("a/owned-link", 1000, 1000, T_OLD, "file"),
        F("a/setuid", S_IFREG | 04755, 0, 0, T_OLD, "#!/bin/sh\n"),
        D("a/setgid-dir", S_IFDIR | 02775, 0, 50, T_OLD),
        {.path = "a/xattr", .mode = S_IFREG | 0644, .mtime = T_OLD, .content = "x\n",
         .xname = "user.foo", .xvalue = "bar", .xname2 = "user.kiln.owner", .xvalue2 = "1:1"},
        D(long_dir, S_IFDIR | 0755, 0, 0, T_OLD),
        F(long_file, S_IFREG | 0644, 0, 0, T_OLD, "long path\n"),
        F(long_name, S_IFREG | 0644, 0, 0, T_OLD, "long name\n"),
        D("sp ace", S_IFDIR | 0755, 0, 0, T_OLD),
        F("sp ace/f i l e", S_IFREG | 0644, 0, 0, T_OLD, "spaces\n"),
        D("\xc3\xbc tf8", S_IFDIR | 0755, 0, 0, T_OLD),
        F("\xc3\xbc tf8/na\xc3\xafve \xe2\x9c\x93.txt", S_IFREG | 0644, 0, 0, T_OLD, "utf8\n"),
    };
    nspecs = ARRAY_SIZE(s);
    memcpy(specs, s, sizeof(s));
#undef D
#undef F
#undef L
}

static bool reference_tree; /* write_reference extracts the tree beside the blob */

static int write_reference(struct store *st, enum compression c, int64_t clamp,
                           struct layer_result *res)
{
    struct layer_write_opts o = {.compression = c, .level = 0, .clamp_mtime = clamp,
                                 .tree = reference_tree};
    struct layer_writer *w = NULL;
    struct kiln_error *err = NULL;
    if (layer_writer_begin(st, &o, &w, &err) < 0)
        goto fail;
    for (size_t i = 0; i < nspecs; i++) {
        const struct spec *p = &specs[i];
        struct layer_entry e = {.path = p->path, .link = p->link, .hardlink = p->hardlink,
                                .content_fd = -1};
        e.st.st_mode = p->mode;
        e.st.st_uid = p->uid;
        e.st.st_gid = p->gid;
        e.st.st_mtim.tv_sec = p->mtime;
        e.st.st_mtim.tv_nsec = 123456789;
        e.st.st_rdev = p->rdev;
        e.st.st_size = p->content ? (off_t)strlen(p->content) : 0;
        const char *names[2] = {p->xname, p->xname2};
        const void *values[2] = {p->xvalue, p->xvalue2};
        size_t sizes[2] = {p->xvalue ? strlen(p->xvalue) : 0, p->xvalue2 ? strlen(p->xvalue2) : 0};
        e.xattr_names = names;
        e.xattr_values = values;
        e.xattr_sizes = sizes;
        e.n_xattrs = p->xname2 ? 2 : p->xname ? 1 : 0;
        /* half the files from an fd, half streamed */
        _cleanup_close_ int fd = -1;
        if (p->content && i % 2 == 0) {
            fd = memfd_with(p->content, strlen(p->content));
            e.content_fd = fd;
        }
        if (layer_writer_add(w, &e, &err) < 0)
            goto fail;
        if (p->content && fd < 0 && layer_writer_write(w, p->content, strlen(p->content), &err) < 0)
            goto fail;
        if (strcmp(p->path, "a/empty") == 0 && layer_writer_add_opaque(w, "a/empty", &err) < 0)
            goto fail;
    }
    if (layer_writer_add_whiteout(w, "a/gone", &err) < 0)
        goto fail;
    if (layer_writer_add_whiteout(w, "top-gone", &err) < 0)
        goto fail;
    return layer_writer_finish(w, res, &err) < 0 ? (fprintf(stderr, "%s\n", err->msg),
                                                    kiln_error_free(&err), -1)
                                                 : 0;
fail:
    fprintf(stderr, "write_reference: %s\n", err ? err->msg : "?");
    kiln_error_free(&err);
    layer_writer_abort(w);
    return -1;
}

/* The uncompressed tar of a blob. */
static int blob_tar(struct store *st, const char *digest, struct strbuf *out)
{
    _cleanup_close_ int fd = -1;
    struct decompressor *d = NULL;
    if (store_blob_open(st, digest, &fd, NULL) < 0 || decompressor_open(fd, &d, NULL) < 0)
        return -1;
    strbuf_init(out);
    char buf[65536];
    for (;;) {
        size_t n = 0;
        if (decompressor_read(d, buf, sizeof(buf), &n, NULL) < 0) {
            decompressor_free(d);
            return -1;
        }
        if (n == 0)
            break;
        strbuf_add(out, buf, n);
    }
    decompressor_free(d);
    return 0;
}

struct tent {
    char *path;
    mode_t mode;
    int64_t uid, gid, size, mtime;
    char *link;
    bool hardlink;
    char *content;
    char *xattrs; /* "name=value;" ... */
    unsigned rmajor, rminor;
};

static size_t read_entries(const char *tar, size_t len, struct tent *out, size_t max)
{
    locale_t u = newlocale(LC_ALL_MASK, "C.UTF-8", (locale_t)0);
    locale_t old = uselocale(u);
    struct archive *a = archive_read_new();
    archive_read_support_format_tar(a);
    size_t n = 0;
    if (archive_read_open_memory(a, tar, len) == ARCHIVE_OK) {
        struct archive_entry *ae;
        while (n < max && archive_read_next_header(a, &ae) == ARCHIVE_OK) {
            struct tent *t = &out[n++];
            memset(t, 0, sizeof(*t));
            t->path = xstrdup(archive_entry_pathname(ae));
            t->mode = archive_entry_mode(ae);
            t->uid = archive_entry_uid(ae);
            t->gid = archive_entry_gid(ae);
            t->size = archive_entry_size(ae);
            t->mtime = archive_entry_mtime(ae);
            t->rmajor = archive_entry_rdevmajor(ae);
            t->rminor = archive_entry_rdevminor(ae);
            if (archive_entry_hardlink(ae)) {
                t->link = xstrdup(archive_entry_hardlink(ae));
                t->hardlink = true;
            } else if (archive_entry_symlink(ae)) {
                t->link = xstrdup(archive_entry_symlink(ae));
            }
            struct strbuf xs = STRBUF_INIT;
            strbuf_init(&xs);
            archive_entry_xattr_reset(ae);
            const char *xn;
            const void *xv;
            size_t xl;
            while (archive_entry_xattr_next(ae, &xn, &xv, &xl) == ARCHIVE_OK)
                strbuf_addf(&xs, "%s=%.*s;", xn, (int)xl, (const char *)xv);
            t->xattrs = strbuf_detach(&xs, NULL);
            if (t->size > 0) {
                t->content = xcalloc(1, (size_t)t->size + 1);
                archive_read_data(a, t->content, (size_t)t->size);
            }
        }
    }
    archive_read_free(a);
    uselocale(old);
    freelocale(u);
    return n;
}

static void free_entries(struct tent *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(t[i].path);
        free(t[i].link);
        free(t[i].content);
        free(t[i].xattrs);
    }
}

/* Walks the raw ustar headers: no uname/gname, no atime/ctime records, no
 * LIBARCHIVE.xattr records, ends with two zero blocks and nothing else. */
static int check_raw_format(const char *tar, size_t len, char **why)
{
    size_t off = 0;
    while (off + 512 <= len) {
        const char *h = tar + off;
        bool zero = true;
        for (int i = 0; i < 512; i++)
            if (h[i]) {
                zero = false;
                break;
            }
        if (zero) {
            if (len - off != 1024) {
                *why = xasprintf("%zu bytes after the first zero block, want 1024", len - off);
                return -1;
            }
            return 0;
        }
        if (memcmp(h + 257, "ustar", 5) != 0) {
            *why = xstrdup("not a ustar header");
            return -1;
        }
        if (h[265] || h[297]) {
            *why = xasprintf("uname/gname set in header at %zu", off);
            return -1;
        }
        unsigned long long size = strtoull(h + 124, NULL, 8);
        char type = h[156];
        off += 512;
        if (type == 'x' || type == 'g') {
            _cleanup_free_ char *rec = xstrndup(tar + off, (size_t)size);
            if (strstr(rec, " atime=") || strstr(rec, " ctime=") || strstr(rec, "LIBARCHIVE.") ||
                strstr(rec, "user.kiln") || strstr(rec, "overlay")) {
                *why = xasprintf("unwanted pax record: %s", rec);
                return -1;
            }
        }
        off += (size_t)((size + 511) / 512 * 512);
    }
    *why = xstrdup("no end-of-archive blocks");
    return -1;
}

TEST(write_is_reproducible_and_well_formed)
{
    struct store *st = new_store();
    struct layer_result r1 = {0}, r2 = {0}, rz = {0}, rn = {0};
    CHECK(write_reference(st, COMPRESSION_GZIP, T_CLAMP, &r1) == 0);
    CHECK(write_reference(st, COMPRESSION_GZIP, T_CLAMP, &r2) == 0);
    CHECK(write_reference(st, COMPRESSION_ZSTD, T_CLAMP, &rz) == 0);
    CHECK(write_reference(st, COMPRESSION_NONE, T_CLAMP, &rn) == 0);
    CHECK_STR_EQ(r1.blob.digest, r2.blob.digest);
    CHECK_STR_EQ(r1.diff_id, r2.diff_id);
    CHECK_STR_EQ(r1.diff_id, rz.diff_id);
    CHECK_STR_EQ(r1.diff_id, rn.diff_id);
    CHECK_STR_EQ(rn.blob.digest, rn.diff_id);
    CHECK_STR_EQ(r1.blob.media_type, MT_OCI_LAYER_GZIP);
    CHECK_STR_EQ(rz.blob.media_type, MT_OCI_LAYER_ZSTD);
    CHECK_STR_EQ(rn.blob.media_type, MT_OCI_LAYER_TAR);
    CHECK_INT_EQ(r1.entries, nspecs + 3);
    CHECK(store_has_blob(st, r1.blob.digest));

    /* The same layer with another locale in the caller gives the same bytes. */
    setlocale(LC_ALL, "C");
    struct layer_result r3 = {0};
    CHECK(write_reference(st, COMPRESSION_GZIP, T_CLAMP, &r3) == 0);
    CHECK_STR_EQ(r1.blob.digest, r3.blob.digest);
    /* and a different clamp gives a different layer */
    struct layer_result r4 = {0};
    CHECK(write_reference(st, COMPRESSION_GZIP, -1, &r4) == 0);
    CHECK(strcmp(r1.diff_id, r4.diff_id) != 0);

    struct strbuf tar;
    CHECK(blob_tar(st, r1.blob.digest, &tar) == 0);
    CHECK_INT_EQ(tar.len, r1.tar_size);
    char dg[DIGEST_STR_LEN];
    sha256_digest_of(tar.buf, tar.len, dg);
    CHECK_STR_EQ(dg, r1.diff_id);
    char *why = NULL;
    if (check_raw_format(tar.buf, tar.len, &why) < 0)
        H_FAIL("format: %s", why);
    free(why);

    struct tent ents[64];
    size_t n = read_entries(tar.buf, tar.len, ents, 64);
    CHECK_INT_EQ(n, nspecs + 3);
    for (size_t i = 0, si = 0; i < n && si < nspecs; i++) {
        struct tent *t = &ents[i];
        if (strstr(t->path, ".wh."))
            continue;
        const struct spec *p = &specs[si++];
        _cleanup_free_ char *want = S_ISDIR(p->mode) ? xasprintf("%s/", p->path) : xstrdup(p->path);
        CHECK_STR_EQ(t->path, want);
        CHECK_INT_EQ(t->mode & 07777, p->mode & 07777);
        if (!p->hardlink)
            CHECK_INT_EQ(t->mode & S_IFMT, p->mode & S_IFMT);
        CHECK_INT_EQ(t->uid, p->uid);
        CHECK_INT_EQ(t->gid, p->gid);
        CHECK_INT_EQ(t->mtime, p->mtime > T_CLAMP ? T_CLAMP : p->mtime);
        if (p->link)
            CHECK_STR_EQ(t->link, p->link);
        CHECK_INT_EQ(t->hardlink, p->hardlink);
        if (p->content && !p->hardlink)
            CHECK_STR_EQ(t->content, p->content);
        if (S_ISCHR(p->mode)) {
            CHECK_INT_EQ(t->rmajor, 1);
            CHECK_INT_EQ(t->rminor, 3);
        }
        if (p->xname)
            CHECK_STR_EQ(t->xattrs, "user.foo=bar;"); /* user.kiln.owner dropped */
    }
    CHECK_STR_EQ(ents[2].path, "a/empty/.wh..wh..opq");
    CHECK_STR_EQ(ents[n - 2].path, "a/.wh.gone");
    CHECK_STR_EQ(ents[n - 1].path, ".wh.top-gone");
    free_entries(ents, n);

    /* Other readers: gzip, GNU tar, python (zlib), zstd. */
    _cleanup_free_ char *gz = xasprintf("%s/blobs/sha256/%s", st->root, digest_hex(r1.blob.digest));
    _cleanup_free_ char *zs = xasprintf("%s/blobs/sha256/%s", st->root, digest_hex(rz.blob.digest));
    CHECK(sh("gzip -t '%s'", gz) == 0);
    CHECK(sh("zcat '%s' | tar tf - > /dev/null", gz) == 0);
    CHECK(sh("zcat '%s' | sha256sum | grep -q %s", gz, digest_hex(r1.diff_id)) == 0);
    CHECK(sh("python3 -c 'import gzip,hashlib,sys; "
             "sys.exit(0 if hashlib.sha256(gzip.open(sys.argv[1]).read()).hexdigest()==sys.argv[2] "
             "else 1)' '%s' %s",
             gz, digest_hex(r1.diff_id)) == 0);
    CHECK(sh("zstd -qdc '%s' | sha256sum | grep -q %s", zs, digest_hex(r1.diff_id)) == 0);
    strbuf_release(&tar);
    layer_result_free(&r1);
    layer_result_free(&r2);
    layer_result_free(&r3);
    layer_result_free(&r4);
    layer_result_free(&rz);
    layer_result_free(&rn);
    store_close(st);
}

TEST(writer_refuses_bad_entries)
{
    struct store *st = new_store();
    struct layer_writer *w = NULL;
    struct kiln_error *err = NULL;
    CHECK(layer_writer_begin(st, NULL, &w, &err) == 0);
    static const char *bad[] = {"../x", "/abs", "a/../b", "", "a//b", "./a"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        struct layer_entry e = {.path = bad[i], .content_fd = -1};
        e.st.st_mode = S_IFREG | 0644;
        CHECK(layer_writer_add(w, &e, &err) < 0);
        kiln_error_free(&err);
    }
    struct layer_entry sock = {.path = "sock", .content_fd = -1};
    sock.st.st_mode = S_IFSOCK | 0755;
    CHECK(layer_writer_add(w, &sock, &err) < 0);
    kiln_error_free(&err);
    struct layer_entry hl = {.path = "h", .link = "../etc/passwd", .hardlink = true,
                             .content_fd = -1};
    hl.st.st_mode = S_IFREG | 0644;
    CHECK(layer_writer_add(w, &hl, &err) < 0);
    kiln_error_free(&err);
    /* content owed but not given */
    struct layer_entry f = {.path = "f", .content_fd = -1};
    f.st.st_mode = S_IFREG | 0644;
    f.st.st_size = 10;
    CHECK(layer_writer_add(w, &f, &err) == 0);
    CHECK(layer_writer_write(w, "12345", 5, &err) == 0);
    CHECK(layer_writer_write(w, "1234567", 7, &err) < 0);
    kiln_error_free(&err);
    struct layer_result res;
    CHECK(layer_writer_finish(w, &res, &err) < 0);
    kiln_error_free(&err);
    /* nothing left in tmp/ */
    _cleanup_free_ char *tmp = xasprintf("%s/tmp", st->root);
    CHECK(sh("[ -z \"$(ls -A '%s')\" ]", tmp) == 0);
    store_close(st);
}

/* ---- extraction -------------------------------------------------------------------- */

/* The owner layers see for tree/rel. */
static int effective_owner(const char *tree, const char *rel, uid_t *u, gid_t *g)
{
    _cleanup_close_ int dfd = open(tree, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct file_meta m;
    if (meta_read_at(dfd, rel, -1, &m) < 0)
        return -1;
    *u = m.uid;
    *g = m.gid;
    bool from_xattr = m.owner_from_xattr;
    meta_free(&m);
    if (from_xattr)
        return 0;
    _cleanup_free_ char *tbl = xasprintf("%s.owners", tree);
    struct owner_table *t = NULL;
    if (owner_table_load(tbl, &t, NULL) < 0)
        return -1;
    owner_table_lookup(t, rel, u, g);
    owner_table_free(t);
    return 0;
}

static int file_is(const char *tree, const char *rel, const char *content)
{
    _cleanup_free_ char *p = xasprintf("%s/%s", tree, rel);
    char *data = NULL;
    size_t len = 0;
    if (fs_read_file_at(AT_FDCWD, p, 1 << 20, &data, &len) < 0)
        return 0;
    int ok = len == strlen(content) && memcmp(data, content, len) == 0;
    free(data);
    return ok;
}

TEST(extract_reference_layer)
{
    struct store *st = new_store();
    struct layer_result r = {0};
    CHECK(write_reference(st, COMPRESSION_GZIP, -1, &r) == 0);
    char *tree = NULL;
    struct kiln_error *err = NULL;
    CHECK(!store_has_tree(st, r.diff_id));
    if (store_tree_ensure(st, &r.blob, r.diff_id, &tree, &err) < 0) {
        H_FAIL("store_tree_ensure: %s", err->msg);
        kiln_error_free(&err);
        store_close(st);
        return;
    }
    CHECK(store_has_tree(st, r.diff_id));
    /* second call: no work, same path */
    char *again = NULL;
    CHECK(store_tree_ensure(st, &r.blob, r.diff_id, &again, &err) == 0);
    CHECK_STR_EQ(tree, again);
    free(again);

    struct stat sb;
    for (size_t i = 0; i < nspecs; i++) {
        const struct spec *p = &specs[i];
        _cleanup_free_ char *path = xasprintf("%s/%s", tree, p->path);
        if (S_ISCHR(p->mode)) {
            /* a device: made as real root, skipped in a user namespace */
            if (lstat(path, &sb) == 0)
                CHECK(S_ISCHR(sb.st_mode) && sb.st_rdev == makedev(1, 3));
            continue;
        }
        if (lstat(path, &sb) < 0) {
            H_FAIL("missing '%s'", p->path);
            continue;
        }
        CHECK_INT_EQ(sb.st_mode & S_IFMT, p->hardlink ? S_IFREG : (p->mode & S_IFMT));
        if (!S_ISLNK(p->mode) && !p->hardlink)
            CHECK_INT_EQ(sb.st_mode & 07777, p->mode & 07777);
        if (!p->hardlink)
            CHECK_INT_EQ(sb.st_mtim.tv_sec, p->mtime);
        uid_t u = 0;
        gid_t g = 0;
        CHECK(effective_owner(tree, p->path, &u, &g) == 0);
        if (!p->hardlink) {
            CHECK_INT_EQ(u, p->uid);
            CHECK_INT_EQ(g, p->gid);
        }
        if (p->content && !p->hardlink)
            CHECK(file_is(tree, p->path, p->content));
        if (S_ISLNK(p->mode)) {
            char t[512];
            ssize_t n = readlink(path, t, sizeof(t) - 1);
            CHECK(n > 0);
            if (n > 0) {
                t[n] = '\0';
                CHECK_STR_EQ(t, p->link);
            }
        }
    }
    /* hard link shares the inode */
    struct stat s1, s2;
    _cleanup_free_ char *f1 = xasprintf("%s/a/file", tree);
    _cleanup_free_ char *f2 = xasprintf("%s/a/hard", tree);
    CHECK(stat(f1, &s1) == 0 && stat(f2, &s2) == 0 && s1.st_ino == s2.st_ino);
    /* whiteouts: char devices 0/0 named after what they hide */
    _cleanup_free_ char *w1 = xasprintf("%s/a/gone", tree);
    _cleanup_free_ char *w2 = xasprintf("%s/top-gone", tree);
    CHECK(lstat(w1, &sb) == 0 && stat_is_whiteout(&sb));
    CHECK(lstat(w2, &sb) == 0 && stat_is_whiteout(&sb));
    _cleanup_free_ char *wh = xasprintf("%s/a/.wh.gone", tree);
    CHECK(lstat(wh, &sb) < 0);
    /* opaque dir: both xattrs, no marker file */
    _cleanup_free_ char *empty = xasprintf("%s/a/empty", tree);
    char v[8];
    CHECK(getxattr(empty, OVL_OPAQUE_XATTR, v, sizeof(v)) == 1 && v[0] == 'y');
    CHECK(getxattr(empty, FUSE_OPAQUE_XATTR, v, sizeof(v)) == 1 && v[0] == 'y');
    _cleanup_free_ char *opq = xasprintf("%s/a/empty/" WH_OPAQUE, tree);
    CHECK(lstat(opq, &sb) < 0);
    /* xattrs: user.foo kept; the layer's user.kiln.owner was not taken */
    _cleanup_free_ char *xf = xasprintf("%s/a/xattr", tree);
    CHECK(getxattr(xf, "user.foo", v, sizeof(v)) == 3 && memcmp(v, "bar", 3) == 0);
    uid_t u = 9;
    gid_t g = 9;
    CHECK(effective_owner(tree, "a/xattr", &u, &g) == 0 && u == 0 && g == 0);
    /* the tree root is 0755 and nothing was left in tmp/ */
    CHECK(stat(tree, &sb) == 0 && (sb.st_mode & 07777) == 0755);
    _cleanup_free_ char *tmp = xasprintf("%s/tmp", st->root);
    CHECK(sh("[ -z \"$(ls -A '%s')\" ]", tmp) == 0);

    /* A tree extracted and rewritten through layer_import_dir gives the same
     * entries (not the same bytes: whiteouts are devices there). */
    free(tree);
    layer_result_free(&r);
    store_close(st);
}

/* Every entry of a tree with type, mode, owner as kiln sees it, size,
 * mtime (not of whiteouts: they are made at extraction time), link target
 * and xattrs, plus the side table, into a file. */
static int describe_tree(const char *tree, const char *out)
{
    return sh("cd '%s' && { find . -mindepth 1 -printf '%%p %%y %%m %%U %%G %%s %%T@ %%l\\n' | "
              "awk '$2 == \"c\" { $7 = \"-\" } 1' | sort; getfattr -R -h -d -m - --absolute-names . 2>/dev/null | grep -v '^$' | "
              "sort; cat '%s.owners' 2>/dev/null | tr '\\0' '\\n'; } > '%s'",
              tree, tree, out);
}

TEST(tree_beside_the_blob)
{
    /* The tree made while writing equals the tree extracted from the blob. */
    struct store *a = new_store(), *b = new_store();
    struct layer_result ra = {0}, rb = {0};
    reference_tree = true;
    CHECK(write_reference(a, COMPRESSION_GZIP, -1, &ra) == 0);
    reference_tree = false;
    CHECK(store_has_tree(a, ra.diff_id));
    CHECK(write_reference(b, COMPRESSION_GZIP, -1, &rb) == 0);
    CHECK(!store_has_tree(b, rb.diff_id));
    CHECK_STR_EQ(ra.diff_id, rb.diff_id);
    CHECK_STR_EQ(ra.blob.digest, rb.blob.digest);
    char *ta = NULL, *tb = NULL;
    struct kiln_error *err = NULL;
    CHECK(store_tree_ensure(a, &ra.blob, ra.diff_id, &ta, &err) == 0);
    CHECK(store_tree_ensure(b, &rb.blob, rb.diff_id, &tb, &err) == 0);
    kiln_error_free(&err);
    if (ta && tb) {
        _cleanup_free_ char *da = xasprintf("%s/tree-a.txt", tmpdir);
        _cleanup_free_ char *db = xasprintf("%s/tree-b.txt", tmpdir);
        CHECK(describe_tree(ta, da) == 0);
        CHECK(describe_tree(tb, db) == 0);
        CHECK(sh("[ -s '%s' ] && diff '%s' '%s' >&2", da, da, db) == 0);
    }
    _cleanup_free_ char *tmp = xasprintf("%s/tmp", a->root);
    CHECK(sh("[ -z \"$(ls -A '%s')\" ]", tmp) == 0);
    /* an aborted writer leaves neither a tree nor a temporary directory */
    struct layer_write_opts o = {.compression = COMPRESSION_ZSTD, .clamp_mtime = -1, .tree = true};
    struct layer_writer *w = NULL;
    CHECK(layer_writer_begin(a, &o, &w, &err) == 0);
    if (w) {
        struct layer_entry e = {.path = "x", .content_fd = -1};
        e.st.st_mode = S_IFREG | 0644;
        e.st.st_size = 3;
        CHECK(layer_writer_add(w, &e, &err) == 0);
        CHECK(layer_writer_write(w, "abc", 3, &err) == 0);
        layer_writer_abort(w);
    }
    kiln_error_free(&err);
    CHECK(sh("[ -z \"$(ls -A '%s')\" ]", tmp) == 0);
    free(ta);
    free(tb);
    layer_result_free(&ra);
    layer_result_free(&rb);
    store_close(a);
    store_close(b);
}

static void *ensure_thread(void *arg)
{
    void **a = arg;
    struct store *st = a[0];
    struct layer_result *r = a[1];
    char *tree = NULL;
    struct kiln_error *err = NULL;
    intptr_t ok = store_tree_ensure(st, &r->blob, r->diff_id, &tree, &err) == 0;
    if (!ok) {
        fprintf(stderr, "ensure_thread: %s\n", err->msg);
        kiln_error_free(&err);
    }
    free(tree);
    return (void *)ok;
}

TEST(concurrent_extraction)
{
    struct store *st = new_store();
    struct layer_result r = {0};
    CHECK(write_reference(st, COMPRESSION_ZSTD, -1, &r) == 0);
    pthread_t th[4];
    void *args[2] = {st, &r};
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, ensure_thread, args);
    for (int i = 0; i < 4; i++) {
        void *ok = NULL;
        pthread_join(th[i], &ok);
        CHECK(ok != NULL);
    }
    _cleanup_free_ char *trees = xasprintf("%s/trees", st->root);
    _cleanup_free_ char *tmp = xasprintf("%s/tmp", st->root);
    CHECK(sh("[ $(ls '%s' | grep -v owners | wc -l) = 1 ]", trees) == 0);
    CHECK(sh("[ -z \"$(ls -A '%s')\" ]", tmp) == 0);
    layer_result_free(&r);
    store_close(st);
}

/* ---- hostile layers --------------------------------------------------------------- */

struct hostile {
    const char *name;
    const char *paths[4]; /* entries in order: "f:NAME", "d:NAME", "l:NAME>TARGET", "h:NAME>TARGET" */
};

static void add_raw_entry(struct archive *a, const char *spec)
{
    struct archive_entry *ae = archive_entry_new();
    char kind = spec[0];
    _cleanup_free_ char *name = xstrdup(spec + 2);
    char *gt = strchr(name, '>');
    if (gt)
        *gt++ = '\0';
    archive_entry_copy_pathname(ae, name);
    archive_entry_set_perm(ae, 0644);
    archive_entry_set_mtime(ae, 1, 0);
    switch (kind) {
    case 'f':
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_set_size(ae, 4);
        break;
    case 'd':
        archive_entry_set_filetype(ae, AE_IFDIR);
        break;
    case 'l':
        archive_entry_set_filetype(ae, AE_IFLNK);
        archive_entry_copy_symlink(ae, gt);
        break;
    case 'h':
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_copy_hardlink(ae, gt);
        break;
    case 'x': /* a file carrying an overlay xattr */
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_xattr_add_entry(ae, "user.overlay.redirect", "/etc", 4);
        archive_entry_xattr_add_entry(ae, "user.kiln.owner", "0:0", 3);
        break;
    }
    archive_write_header(a, ae);
    if (kind == 'f')
        archive_write_data(a, "evil", 4);
    archive_entry_free(ae);
}

static size_t build_tar(const char *const *specs_in, size_t n, char *buf, size_t cap)
{
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    archive_write_set_bytes_in_last_block(a, 1);
    size_t used = 0;
    archive_write_open_memory(a, buf, cap, &used);
    for (size_t i = 0; i < n && specs_in[i]; i++)
        add_raw_entry(a, specs_in[i]);
    archive_write_close(a);
    archive_write_free(a);
    return used;
}

/* A ustar header by hand, for what libarchive would not write. */
static void raw_header(char *h, const char *name, const char *size_field, char type)
{
    memset(h, 0, 512);
    snprintf(h, 100, "%s", name);
    memcpy(h + 100, "0000644", 8);
    memcpy(h + 108, "0000000", 8);
    memcpy(h + 116, "0000000", 8);
    memcpy(h + 124, size_field, 12);
    memcpy(h + 136, "00000000001", 12);
    h[156] = type;
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++)
        sum += (unsigned char)h[i];
    snprintf(h + 148, 8, "%06o", sum);
}

/* Puts a layer's bytes into a store as-is; fails extraction must leave
 * trees/ and tmp/ empty and write nothing outside. */
static void check_refused(const char *name, const void *tar, size_t len)
{
    struct store *st = new_store();
    char digest[DIGEST_STR_LEN];
    struct kiln_error *err = NULL;
    if (store_blob_put(st, tar, len, digest, &err) < 0) {
        harness_case(name, 0, err->msg);
        kiln_error_free(&err);
        store_close(st);
        return;
    }
    struct descriptor d = {.media_type = (char *)MT_OCI_LAYER_TAR, .size = len};
    memcpy(d.digest, digest, DIGEST_STR_LEN);
    char *tree = NULL;
    int r = store_tree_ensure(st, &d, digest, &tree, &err);
    _cleanup_free_ char *trees = xasprintf("%s/trees", st->root);
    _cleanup_free_ char *tmp = xasprintf("%s/tmp", st->root);
    bool clean = sh("[ -z \"$(ls -A '%s')\" ] && [ -z \"$(ls -A '%s')\" ]", trees, tmp) == 0;
    bool escaped = fs_exists("/tmp/kiln-escape") || fs_exists("/tmp/kiln-escape-dir/x");
    _cleanup_free_ char *why =
        xasprintf("%s%s%s", r == 0 ? "accepted" : "", clean ? "" : " left files in the store",
                  escaped ? " wrote outside the tree" : "");
    harness_case(name, r < 0 && clean && !escaped, why);
    if (getenv("KILN_TEST_VERBOSE") && err)
        fprintf(stderr, "  %s: %s\n", name, err->msg);
    kiln_error_free(&err);
    free(tree);
    store_close(st);
}

TEST(hostile_layers_refused)
{
    unlink("/tmp/kiln-escape");
    static const char *const cases[][5] = {
        {"dotdot", "f:../kiln-escape"},
        {"dotdot deep", "d:a", "f:a/../../kiln-escape"},
        {"absolute", "f:/tmp/kiln-escape"},
        {"symlink then write through", "l:link>/tmp", "f:link/kiln-escape"},
        {"symlink to parent then write", "l:up>..", "f:up/kiln-escape"},
        {"symlink dir chain", "d:d", "l:d/s>/tmp", "f:d/s/kiln-escape"},
        {"hardlink outside (dotdot)", "h:h>../../etc/passwd"},
        {"hardlink outside (absolute)", "h:h>/etc/passwd"},
        {"hardlink through symlink", "l:s>/etc", "h:h>s/passwd"},
        {"hardlink to missing", "h:h>nothing"},
        {"hardlink to itself", "h:h>h"},
        {"hardlink to directory", "d:dir", "h:h>dir"},
        {"whiteout of dotdot", "f:a/.wh..."},
        {"file under a file", "f:f", "f:f/g"},
    };
    char buf[65536];
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        size_t len = build_tar(&cases[i][1], 4, buf, sizeof(buf));
        check_refused(cases[i][0], buf, len);
    }
    /* a size field of 8 GiB with no data behind it */
    char raw[2048] = {0};
    raw_header(raw, "big", "77777777777", '0');
    check_refused("huge size, truncated", raw, sizeof(raw));
    /* base-256 size of 2^62 */
    raw_header(raw, "bigger", "00000000000", '0');
    memset(raw + 124, 0, 12);
    raw[124] = (char)0x80;
    raw[128] = 0x40;
    {
        memset(raw + 148, ' ', 8);
        unsigned sum = 0;
        for (int i = 0; i < 512; i++)
            sum += (unsigned char)raw[i];
        snprintf(raw + 148, 8, "%06o", sum);
    }
    check_refused("absurd size (base-256)", raw, sizeof(raw));
    /* a path of 5000 bytes through a pax header */
    {
        _cleanup_free_ char *longp = xmalloc(5001);
        for (int i = 0; i < 5000; i++)
            longp[i] = (i % 100 == 99) ? '/' : 'p';
        longp[5000] = '\0';
        _cleanup_free_ char *spec = xasprintf("f:%s", longp);
        const char *sp[1] = {spec};
        size_t len = build_tar(sp, 1, buf, sizeof(buf));
        check_refused("path too long", buf, len);
    }
    /* not a tar at all, and garbage after a gzip header */
    check_refused("not a tar", "hello world, this is not a tar file at all........", 50);
    static const unsigned char badgz[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 1, 2, 3, 4};
    check_refused("corrupt gzip", badgz, sizeof(badgz));
    CHECK(!fs_exists("/tmp/kiln-escape"));
}

TEST(private_xattrs_not_applied)
{
    struct store *st = new_store();
    char buf[8192];
    const char *sp[1] = {"x:file"};
    size_t len = build_tar(sp, 1, buf, sizeof(buf));
    char digest[DIGEST_STR_LEN];
    CHECK(store_blob_put(st, buf, len, digest, NULL) == 0);
    struct descriptor d = {.media_type = (char *)MT_OCI_LAYER_TAR, .size = len};
    memcpy(d.digest, digest, DIGEST_STR_LEN);
    char *tree = NULL;
    struct kiln_error *err = NULL;
    CHECK(store_tree_ensure(st, &d, digest, &tree, &err) == 0);
    if (tree) {
        _cleanup_free_ char *f = xasprintf("%s/file", tree);
        char v[16];
        CHECK(getxattr(f, "user.overlay.redirect", v, sizeof(v)) < 0);
        CHECK(getxattr(f, "user.kiln.owner", v, sizeof(v)) < 0 || geteuid() != 0);
    }
    kiln_error_free(&err);
    free(tree);
    store_close(st);
}

/* A root-level opaque marker is not kept: overlayfs ignores opacity on a
 * layer root, fuse-overlayfs would not; unmarked, all drivers agree. */
TEST(root_opaque_marker_ignored)
{
    struct store *st = new_store();
    char buf[8192];
    const char *sp[2] = {"f:.wh..wh..opq", "f:file"};
    size_t len = build_tar(sp, 2, buf, sizeof(buf));
    char digest[DIGEST_STR_LEN];
    CHECK(store_blob_put(st, buf, len, digest, NULL) == 0);
    struct descriptor d = {.media_type = (char *)MT_OCI_LAYER_TAR, .size = len};
    memcpy(d.digest, digest, DIGEST_STR_LEN);
    char *tree = NULL;
    CHECK(store_tree_ensure(st, &d, digest, &tree, NULL) == 0);
    if (tree) {
        char v[4];
        CHECK(getxattr(tree, OVL_OPAQUE_XATTR, v, sizeof(v)) < 0);
        CHECK(file_is(tree, "file", "evil"));
    }
    free(tree);
    store_close(st);
}

TEST(digest_mismatches_refused)
{
    struct store *st = new_store();
    struct layer_result r = {0};
    CHECK(write_reference(st, COMPRESSION_GZIP, -1, &r) == 0);
    char *tree = NULL;
    struct kiln_error *err = NULL;
    /* wrong diff_id */
    const char *wrong = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    CHECK(store_tree_ensure(st, &r.blob, wrong, &tree, &err) < 0);
    CHECK(err && strstr(err->msg, "diff_id mismatch"));
    kiln_error_free(&err);
    /* a blob whose content does not match its name */
    _cleanup_free_ char *bp = xasprintf("%s/blobs/sha256/%s", st->root, digest_hex(r.blob.digest));
    CHECK(sh("printf 'X' | dd of='%s' bs=1 seek=100 conv=notrunc status=none", bp) == 0);
    CHECK(store_tree_ensure(st, &r.blob, r.diff_id, &tree, &err) < 0);
    kiln_error_free(&err);
    _cleanup_free_ char *trees = xasprintf("%s/trees", st->root);
    CHECK(sh("[ -z \"$(ls -A '%s')\" ]", trees) == 0);
    layer_result_free(&r);
    store_close(st);
}

/* ---- imports ----------------------------------------------------------------------- */

TEST(import_tarballs_all_compressions)
{
    struct store *st = new_store();
    _cleanup_free_ char *src = xasprintf("%s/src", tmpdir);
    CHECK(sh("mkdir -p '%s/root/etc' '%s/root/usr/bin' && cd '%s/root' && echo hi > etc/motd && "
             "printf '#!/bin/sh\\n' > usr/bin/tool && chmod 4755 usr/bin/tool && ln -s tool "
             "usr/bin/alias && ln etc/motd etc/motd2 && touch -d @1500000000 etc/motd "
             "usr/bin/tool && cd .. && tar --sort=name --mtime=@1500000000 -cf plain.tar -C root . "
             "&& gzip -k plain.tar && bzip2 -k plain.tar && xz -k plain.tar && zstd -q plain.tar && "
             "tar -P --sort=name --mtime=@1500000000 --transform 's,^%s/root,,' -cf abs.tar "
             "'%s/root/etc'",
             src, src, src, src, src) == 0);
    static const char *files[] = {"plain.tar", "plain.tar.gz", "plain.tar.bz2", "plain.tar.xz",
                                  "plain.tar.zst"};
    char first[DIGEST_STR_LEN] = "";
    for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
        _cleanup_free_ char *p = xasprintf("%s/%s", src, files[i]);
        _cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC);
        struct layer_result r = {0};
        struct kiln_error *err = NULL;
        if (layer_import_tar_fd(st, fd, NULL, &r, &err) < 0) {
            H_FAIL("import %s: %s", files[i], err->msg);
            kiln_error_free(&err);
            continue;
        }
        if (!*first)
            memcpy(first, r.diff_id, DIGEST_STR_LEN);
        CHECK_STR_EQ(r.diff_id, first);
        /* an imported base has its tree already */
        CHECK(store_has_tree(st, r.diff_id));
        if (i == 0) {
            struct strbuf tar;
            CHECK(blob_tar(st, r.blob.digest, &tar) == 0);
            struct tent ents[16];
            size_t n = read_entries(tar.buf, tar.len, ents, 16);
            /* "./" dropped, "./etc/" -> "etc/", hard link kept as one */
            CHECK_INT_EQ(n, 7);
            bool saw_hl = false, saw_suid = false;
            for (size_t k = 0; k < n; k++) {
                CHECK(ents[k].path[0] != '.' && ents[k].path[0] != '/');
                if (ents[k].hardlink)
                    saw_hl = strcmp(ents[k].link, "etc/motd") == 0;
                if (strcmp(ents[k].path, "usr/bin/tool") == 0)
                    saw_suid = (ents[k].mode & 07777) == 04755;
            }
            CHECK(saw_hl);
            CHECK(saw_suid);
            free_entries(ents, n);
            strbuf_release(&tar);
        }
        layer_result_free(&r);
    }
    /* absolute names become relative */
    _cleanup_free_ char *abs = xasprintf("%s/abs.tar", src);
    _cleanup_close_ int fd = open(abs, O_RDONLY | O_CLOEXEC);
    struct layer_result r = {0};
    struct kiln_error *err = NULL;
    CHECK(layer_import_tar_fd(st, fd, NULL, &r, &err) == 0);
    kiln_error_free(&err);
    layer_result_free(&r);
    /* garbage is refused */
    int gfd = memfd_with("this is not an archive", 22);
    CHECK(layer_import_tar_fd(st, gfd, NULL, &r, &err) < 0);
    kiln_error_free(&err);
    close(gfd);
    store_close(st);
}

/* A hard link in a rootfs tarball must name a file before it: the import
 * refuses the others and leaves no blob behind. */
TEST(import_refuses_dangling_hard_links)
{
    static const char *const cases[][4] = {
        {"accept", "f:a", "h:b>a"},
        {"accept", "l:s>a", "h:t>s"},
        {"refuse", "h:h>h"},
        {"refuse", "h:b>c", "f:c"},
        {"refuse", "h:b>c", "h:c>b"},
        {"refuse", "d:dir", "h:h>dir"},
        {"refuse", "f:x", "d:x", "h:h>x"},
    };
    char buf[65536];
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct store *st = new_store();
        size_t len = build_tar(&cases[i][1], 3, buf, sizeof(buf));
        int fd = memfd_with(buf, len);
        struct layer_result r = {0};
        struct kiln_error *err = NULL;
        int rc = layer_import_tar_fd(st, fd, NULL, &r, &err);
        close(fd);
        bool want = strcmp(cases[i][0], "accept") == 0;
        _cleanup_free_ char *name = xasprintf("import %s %s %s %s", cases[i][0], cases[i][1],
                                              cases[i][2] ? cases[i][2] : "",
                                              cases[i][3] ? cases[i][3] : "");
        _cleanup_free_ char *blobs = xasprintf("%s/blobs/sha256", st->root);
        bool empty = sh("[ -z \"$(ls -A '%s' 2>/dev/null)\" ]", blobs) == 0;
        harness_case(name, want ? rc == 0 : rc < 0 && empty && strstr(err->msg, "hard link"),
                     err ? err->msg : "accepted");
        kiln_error_free(&err);
        layer_result_free(&r);
        store_close(st);
    }
}

TEST(import_dir_sorted_links_owner_xattr)
{
    struct store *st = new_store();
    _cleanup_free_ char *d = xasprintf("%s/impdir", tmpdir);
    CHECK(sh("mkdir -p '%s/b/sub' '%s/a' && cd '%s' && echo 1 > b/z && echo 2 > b/a && "
             "ln b/z a/zz && ln -s ../b a/lnk && mkfifo b/fifo && "
             "truncate -s 3M sparse && printf x | dd of=sparse bs=1 seek=1000000 conv=notrunc "
             "status=none",
             d, d, d) == 0);
    _cleanup_free_ char *owned = xasprintf("%s/b/a", d);
    bool have_xattr = setxattr(owned, KILN_OWNER_XATTR, "1000:1000", 9, 0) == 0;
    struct layer_result r = {0};
    struct kiln_error *err = NULL;
    CHECK(layer_import_dir(st, d, NULL, &r, &err) == 0);
    if (err)
        H_FAIL("%s", err->msg);
    kiln_error_free(&err);
    struct strbuf tar;
    CHECK(blob_tar(st, r.blob.digest, &tar) == 0);
    struct tent ents[16];
    size_t n = read_entries(tar.buf, tar.len, ents, 16);
    static const char *order[] = {"a/", "a/lnk", "a/zz", "b/", "b/a", "b/fifo", "b/sub/", "b/z",
                                  "sparse"};
    CHECK_INT_EQ(n, ARRAY_SIZE(order));
    for (size_t i = 0; i < n && i < ARRAY_SIZE(order); i++)
        CHECK_STR_EQ(ents[i].path, order[i]);
    if (n == ARRAY_SIZE(order)) {
        CHECK(!ents[2].hardlink); /* a/zz comes first: it carries the data */
        CHECK(ents[7].hardlink && strcmp(ents[7].link, "a/zz") == 0);
        if (have_xattr) {
            CHECK_INT_EQ(ents[4].uid, 1000);
            CHECK_STR_EQ(ents[4].xattrs, "");
        }
        CHECK_INT_EQ(ents[8].size, 3 << 20); /* sparse written dense */
        CHECK(ents[8].content && ents[8].content[1000000] == 'x');
    }
    free_entries(ents, n);
    strbuf_release(&tar);
    layer_result_free(&r);
    store_close(st);
}

/* ---- other tools read a layout made of these blobs ------------------------------ */

static int put_json(struct store *st, const char *json, char out[DIGEST_STR_LEN])
{
    return store_blob_put(st, json, strlen(json), out, NULL);
}

TEST(umoci_and_skopeo_read_the_layout)
{
    if (sh("command -v umoci >/dev/null && command -v skopeo >/dev/null") != 0) {
        harness_skip("umoci_and_skopeo_read_the_layout", "umoci or skopeo not installed");
        return;
    }
    struct store *st = new_store();
    struct layer_result r = {0};
    CHECK(write_reference(st, COMPRESSION_GZIP, T_CLAMP, &r) == 0);
    _cleanup_free_ char *config = xasprintf(
        "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{},\"rootfs\":{\"type\":\"layers\","
        "\"diff_ids\":[\"%s\"]}}",
        r.diff_id);
    char cdg[DIGEST_STR_LEN], mdg[DIGEST_STR_LEN];
    CHECK(put_json(st, config, cdg) == 0);
    _cleanup_free_ char *manifest = xasprintf(
        "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\",\"config\":{\"mediaType\":\"" MT_OCI_CONFIG
        "\",\"digest\":\"%s\",\"size\":%zu},\"layers\":[{\"mediaType\":\"%s\",\"digest\":\"%s\","
        "\"size\":%llu}]}",
        cdg, strlen(config), r.blob.media_type, r.blob.digest, (unsigned long long)r.blob.size);
    CHECK(put_json(st, manifest, mdg) == 0);
    _cleanup_free_ char *index = xasprintf(
        "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\"%s\","
        "\"size\":%zu,\"annotations\":{\"" ANNOT_REF_NAME "\":\"t\"}}]}",
        mdg, strlen(manifest));
    CHECK(fs_write_atomic_at(st->root_fd, "index.json", index, strlen(index), 0644, false) == 0);
    _cleanup_free_ char *bundle = xasprintf("%s/bundle", tmpdir);
    _cleanup_free_ char *out = xasprintf("%s/copied", tmpdir);
    CHECK(sh("umoci unpack --rootless --image '%s:t' '%s' >/dev/null 2>&1", st->root, bundle) == 0);
    _cleanup_free_ char *rootfs = xasprintf("%s/rootfs", bundle);
    CHECK(file_is(rootfs, "a/file", "hello\n"));
    CHECK(file_is(rootfs, "\xc3\xbc tf8/na\xc3\xafve \xe2\x9c\x93.txt", "utf8\n"));
    CHECK(file_is(rootfs, long_file, "long path\n"));
    /* docker-archive stores layers uncompressed, named by diff_id: Go's
     * gzip reader decompressed the blob and the hash matched. */
    CHECK(sh("skopeo copy -q 'oci:%s:t' 'docker-archive:%s.tar:x:y' >/dev/null 2>&1 && "
             "tar tf '%s.tar' | grep -qx '%s.tar'",
             st->root, out, out, digest_hex(r.diff_id)) == 0);
    layer_result_free(&r);
    store_close(st);
}

/* ---- optional benchmark -------------------------------------------------------------- */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* KILN_BENCH_DIR=DIR: writes DIR as a layer with each codec and reports
 * time, sizes and peak RSS. */
static void bench(const char *dir)
{
    static const enum compression cs[] = {COMPRESSION_GZIP, COMPRESSION_ZSTD, COMPRESSION_NONE};
    static const char *names[] = {"gzip", "zstd", "none"};
    const char *only = getenv("KILN_BENCH_CODEC");
    for (size_t i = 0; i < ARRAY_SIZE(cs); i++) {
        if (only && strcmp(only, names[i]) != 0)
            continue;
        struct store *st = new_store();
        struct layer_write_opts o = {.compression = cs[i], .clamp_mtime = -1};
        struct layer_result r = {0};
        struct kiln_error *err = NULL;
        double t0 = now();
        int rc = layer_import_dir(st, dir, &o, &r, &err);
        double t = now() - t0;
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        if (rc < 0) {
            printf("bench %s: %s\n", names[i], err->msg);
            kiln_error_free(&err);
        } else {
            printf("bench %s: %.2f s, tar %llu bytes (%.0f MB/s), blob %llu bytes, %llu entries, "
                   "peak RSS %ld MiB\n",
                   names[i], t, (unsigned long long)r.tar_size, (double)r.tar_size / 1e6 / t,
                   (unsigned long long)r.blob.size, (unsigned long long)r.entries,
                   ru.ru_maxrss / 1024);
            if (getenv("KILN_BENCH_EXTRACT")) {
                char *tree = NULL;
                t0 = now();
                rc = store_tree_ensure(st, &r.blob, r.diff_id, &tree, &err);
                printf("bench %s extract: %.2f s%s\n", names[i], now() - t0,
                       rc < 0 ? " FAILED" : "");
                kiln_error_free(&err);
                free(tree);
            }
        }
        layer_result_free(&r);
        _cleanup_free_ char *root = xstrdup(st->root);
        store_close(st);
        fs_rm_rf(root);
    }
}

int main(void)
{
    userns_reexec();
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    init_specs();
    if (getenv("KILN_BENCH_DIR")) {
        bench(getenv("KILN_BENCH_DIR"));
        fs_rm_rf(tmpdir);
        return 0;
    }
    printf("  running as uid %d, %s mapping\n", (int)geteuid(),
           is_single_mapped() ? "single-id" : "full or range");
    RUN(write_is_reproducible_and_well_formed);
    RUN(writer_refuses_bad_entries);
    RUN(extract_reference_layer);
    RUN(tree_beside_the_blob);
    RUN(concurrent_extraction);
    RUN(hostile_layers_refused);
    RUN(private_xattrs_not_applied);
    RUN(root_opaque_marker_ignored);
    RUN(digest_mismatches_refused);
    RUN(import_tarballs_all_compressions);
    RUN(import_refuses_dangling_hard_links);
    RUN(import_dir_sorted_links_owner_xattr);
    RUN(umoci_and_skopeo_read_the_layout);
    fs_rm_rf(tmpdir);
    return harness_done();
}
