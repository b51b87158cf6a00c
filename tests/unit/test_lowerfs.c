/* The overlay view of layer trees: whiteouts, opaque directories, symlinks
 * resolved inside the image root, merged directory listings. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "harness.h"
#include "layers/lowerfs.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"

static char base[64];

static void mk(const char *tree, const char *path, const char *content)
{
    char *p = xasprintf("%s/%s/%s", base, tree, path);
    char *slash = strrchr(p, '/');
    *slash = '\0';
    fs_mkdir_p(p, 0755);
    *slash = '/';
    if (content) {
        fs_write_atomic_at(AT_FDCWD, p, content, strlen(content), 0644, false);
    } else {
        mkdir(p, 0755);
    }
    free(p);
}

static int whiteout(const char *tree, const char *path)
{
    char *p = xasprintf("%s/%s/%s", base, tree, path);
    int r = mknod(p, S_IFCHR | 0600, makedev(0, 0));
    free(p);
    return r;
}

static void lnk(const char *tree, const char *path, const char *target)
{
    char *p = xasprintf("%s/%s/%s", base, tree, path);
    if (symlink(target, p) < 0)
        perror(p);
    free(p);
}

static char *readf(struct lowerfs *l, const char *path)
{
    char *buf = NULL;
    size_t len;
    if (lowerfs_read_file(l, path, 1024, &buf, &len) < 0)
        return NULL;
    return buf;
}

TEST(overlay_view)
{
    snprintf(base, sizeof(base), "/tmp/kiln-lowerfs-XXXXXX");
    if (!mkdtemp(base)) {
        H_FAIL("mkdtemp: %s", strerror(errno));
        return;
    }
    /* bottom layer */
    mk("l0", "etc/passwd", "root:x:0:0::/root:/bin/sh\n");
    mk("l0", "etc/old", "old\n");
    mk("l0", "opt/app/a", "a0\n");
    mk("l0", "opt/app/b", "b0\n");
    mk("l0", "data/x", "x0\n");
    mk("l0", "usr/lib/libz.so", "z\n");
    lnk("l0", "lib", "usr/lib");
    lnk("l0", "abs", "/opt/app");
    lnk("l0", "escape", "../../../../etc");
    /* middle: replaces /data with an opaque dir, deletes /etc/old */
    mk("l1", "data/y", "y1\n");
    char *opq = xasprintf("%s/l1/data", base);
    CHECK_INT_EQ(setxattr(opq, "user.overlay.opaque", "y", 1, 0), 0);
    free(opq);
    mk("l1", "opt/app/b", "b1\n");
    mk("l1", "etc", NULL);
    int wo = whiteout("l1", "etc/old");
    /* top */
    mk("l2", "opt/app/c", "c2\n");

    char *trees[3];
    trees[0] = xasprintf("%s/l2", base);
    trees[1] = xasprintf("%s/l1", base);
    trees[2] = xasprintf("%s/l0", base);
    struct lowerfs l;
    struct kiln_error *err = NULL;
    CHECK_INT_EQ(lowerfs_init(&l, trees, 3, &err), 0);

    char *s;
    CHECK_STR_EQ((s = readf(&l, "/opt/app/a")), "a0\n");
    free(s);
    CHECK_STR_EQ((s = readf(&l, "/opt/app/b")), "b1\n");
    free(s);
    CHECK_STR_EQ((s = readf(&l, "opt/app/c")), "c2\n");
    free(s);
    CHECK_STR_EQ((s = readf(&l, "/data/y")), "y1\n");
    free(s);
    CHECK(readf(&l, "/data/x") == NULL); /* hidden by the opaque dir */
    if (wo == 0) {
        CHECK(readf(&l, "/etc/old") == NULL); /* whited out */
    } else {
        harness_skip("whiteout", "mknod of a 0/0 character device needs root or a user "
                                 "namespace");
    }
    CHECK_STR_EQ((s = readf(&l, "/etc/passwd")), "root:x:0:0::/root:/bin/sh\n");
    free(s);
    /* symlinks resolve inside the image root */
    CHECK_STR_EQ((s = readf(&l, "/lib/libz.so")), "z\n");
    free(s);
    CHECK_STR_EQ((s = readf(&l, "/abs/c")), "c2\n");
    free(s);
    CHECK_STR_EQ((s = readf(&l, "/escape/passwd")), "root:x:0:0::/root:/bin/sh\n");
    free(s);
    CHECK_STR_EQ((s = readf(&l, "/opt/../opt/./app/a")), "a0\n");
    free(s);

    struct lower_node n = {0};
    CHECK_INT_EQ(lowerfs_resolve(&l, "/abs", false, &n), 0);
    CHECK(S_ISLNK(n.st.st_mode));
    lower_node_free(&n);
    CHECK_INT_EQ(lowerfs_resolve(&l, "/abs", true, &n), 0);
    CHECK(S_ISDIR(n.st.st_mode));
    CHECK_STR_EQ(n.path, "opt/app");
    lower_node_free(&n);
    CHECK_INT_EQ(lowerfs_resolve(&l, "/nope/x", true, &n), -ENOENT);
    CHECK_INT_EQ(lowerfs_resolve(&l, "/etc/passwd/x", true, &n), -ENOTDIR);

    /* merged listing */
    CHECK_INT_EQ(lowerfs_resolve(&l, "/opt/app", true, &n), 0);
    struct lower_dirent *d = NULL;
    size_t nd = 0;
    CHECK_INT_EQ(lowerfs_readdir(&l, &n, &d, &nd), 0);
    CHECK_INT_EQ(nd, 3);
    if (nd == 3) {
        CHECK_STR_EQ(d[0].name, "a");
        CHECK_STR_EQ(d[2].name, "c");
        CHECK_INT_EQ(d[2].node.tree, 0);
        CHECK_INT_EQ(d[0].node.tree, 2);
    }
    lower_dirents_free(d, nd);
    lower_node_free(&n);
    CHECK_INT_EQ(lowerfs_resolve(&l, "/etc", true, &n), 0);
    CHECK_INT_EQ(lowerfs_readdir(&l, &n, &d, &nd), 0);
    CHECK_INT_EQ(nd, wo == 0 ? 1 : 2);
    lower_dirents_free(d, nd);
    lower_node_free(&n);

    /* loops */
    lnk("l2", "loop", "loop");
    CHECK_INT_EQ(lowerfs_resolve(&l, "/loop/x", true, &n), -ELOOP);

    lowerfs_close(&l);
    for (int i = 0; i < 3; i++)
        free(trees[i]);
    fs_rm_rf(base);
}

/* Owners kept beside the files: user.kiln.owner on regular files and
 * directories, the tree's side table (<tree>.owners) for symlinks and
 * fifos; the last record of a path wins. */
TEST(owners_beside_the_files)
{
    char dir[] = "/tmp/kiln-lowerfs-owners-XXXXXX";
    if (!mkdtemp(dir)) {
        H_FAIL("mkdtemp: %s", strerror(errno));
        return;
    }
    char *tree = xasprintf("%s/t", dir);
    char *f = xasprintf("%s/t/f", dir);
    char *link = xasprintf("%s/t/sub/link", dir);
    char *fifo = xasprintf("%s/t/fifo", dir);
    char *table = xasprintf("%s/t.owners", dir);
    fs_mkdir_p(tree, 0755);
    char *sub = xasprintf("%s/t/sub", dir);
    mkdir(sub, 0755);
    fs_write_atomic_at(AT_FDCWD, f, "x", 1, 0644, false);
    bool have_xattr = setxattr(f, "user.kiln.owner", "3:4", 3, 0) == 0;
    CHECK_INT_EQ(symlink("../f", link), 0);
    CHECK_INT_EQ(mkfifo(fifo, 0600), 0);
    /* records for the link, oldest first, and padding around them */
    static const char recs[] = "1:1 sub/link\0" "9:9 fifo\0" "2:2 sub/link\0" "1000:1001 sub/link\0"
                               "5:5 other\0";
    CHECK_INT_EQ(fs_write_atomic_at(AT_FDCWD, table, recs, sizeof(recs) - 1, 0644, false), 0);

    struct lowerfs l;
    struct kiln_error *err = NULL;
    CHECK_INT_EQ(lowerfs_init(&l, &tree, 1, &err), 0);
    struct lower_node n = {0};
    CHECK_INT_EQ(lowerfs_resolve(&l, "/sub/link", false, &n), 0);
    CHECK(S_ISLNK(n.st.st_mode));
    CHECK_INT_EQ(n.uid, 1000);
    CHECK_INT_EQ(n.gid, 1001);
    lower_node_free(&n);
    CHECK_INT_EQ(lowerfs_resolve(&l, "/fifo", false, &n), 0);
    CHECK_INT_EQ(n.uid, 9);
    lower_node_free(&n);
    /* through the link: the file, with its xattr */
    CHECK_INT_EQ(lowerfs_resolve(&l, "/sub/link", true, &n), 0);
    CHECK(S_ISREG(n.st.st_mode));
    if (have_xattr) {
        CHECK_INT_EQ(n.uid, 3);
        CHECK_INT_EQ(n.gid, 4);
    } else {
        harness_skip("user.kiln.owner", "user xattrs are not supported on this /tmp");
    }
    lower_node_free(&n);
    /* the listing reports the same owners */
    CHECK_INT_EQ(lowerfs_resolve(&l, "/sub", true, &n), 0);
    struct lower_dirent *d = NULL;
    size_t nd = 0;
    CHECK_INT_EQ(lowerfs_readdir(&l, &n, &d, &nd), 0);
    CHECK(nd == 1 && d[0].node.uid == 1000 && d[0].node.gid == 1001);
    lower_dirents_free(d, nd);
    lower_node_free(&n);
    lowerfs_close(&l);

    /* a corrupt table is an error, not a silent default */
    CHECK_INT_EQ(fs_write_atomic_at(AT_FDCWD, table, "junk", 4, 0644, false), 0);
    CHECK(lowerfs_init(&l, &tree, 1, &err) < 0);
    kiln_error_free(&err);
    free(tree);
    free(f);
    free(link);
    free(fifo);
    free(table);
    free(sub);
    fs_rm_rf(dir);
}

int main(void)
{
    RUN(overlay_view);
    RUN(owners_beside_the_files);
    return harness_done();
}
