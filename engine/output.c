#include "engine/output.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"

typedef int (*visit_fn)(void *ud, struct lowerfs *l, const struct lower_node *n, const char *path,
                        struct kiln_error **err);

/* Depth-first, sorted walk of the merged view; directories before their
 * contents, and `post` (if any) after them. */
static int walk(struct lowerfs *l, const struct lower_node *dir, const char *path, visit_fn pre,
                visit_fn post, void *ud, struct kiln_error **err)
{
    struct lower_dirent *ents = NULL;
    size_t n = 0;
    int r = lowerfs_readdir(l, dir, &ents, &n);
    if (r < 0)
        return kiln_error_set(err, -r, "read '/%s'", path);
    for (size_t i = 0; i < n && r == 0; i++) {
        _cleanup_free_ char *child =
            *path ? xasprintf("%s/%s", path, ents[i].name) : xstrdup(ents[i].name);
        r = pre(ud, l, &ents[i].node, child, err);
        if (r == 0 && S_ISDIR(ents[i].node.st.st_mode))
            r = walk(l, &ents[i].node, child, pre, post, ud, err);
        if (r == 0 && post)
            r = post(ud, l, &ents[i].node, child, err);
    }
    lower_dirents_free(ents, n);
    return r;
}

static int copy_fd(int in, int out)
{
    char buf[128 * 1024];
    for (;;) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return 0;
        int r = fs_write_all(out, buf, (size_t)n);
        if (r < 0)
            return r;
    }
}

struct local_ctx {
    int dirfd;
    bool owners; /* keep owners (where the ids are mapped) */
};

static int local_pre(void *ud, struct lowerfs *l, const struct lower_node *n, const char *path,
                     struct kiln_error **err)
{
    struct local_ctx *c = ud;
    mode_t mode = n->st.st_mode & 07777;
    if (S_ISDIR(n->st.st_mode)) {
        if (mkdirat(c->dirfd, path, 0700) < 0 && errno != EEXIST)
            return kiln_error_set(err, errno, "output: create '%s'", path);
        return 0;
    }
    unlinkat(c->dirfd, path, 0);
    if (S_ISREG(n->st.st_mode)) {
        int in = lowerfs_open(l, n, O_RDONLY);
        if (in < 0)
            return kiln_error_set(err, -in, "output: read '/%s'", path);
        int out = openat(c->dirfd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
                         0600);
        if (out < 0) {
            close(in);
            return kiln_error_set(err, errno, "output: create '%s'", path);
        }
        int r = copy_fd(in, out);
        close(in);
        if (r == 0 && fchmod(out, mode) < 0)
            r = -errno;
        if (c->owners)
            (void)!fchown(out, n->uid, n->gid);
        if (c->owners && r == 0 && (mode & 07000))
            (void)!fchmod(out, mode); /* chown clears setuid and setgid */
        struct timespec ts[2] = {n->st.st_mtim, n->st.st_mtim};
        futimens(out, ts);
        close(out);
        if (r < 0)
            return kiln_error_set(err, -r, "output: write '%s'", path);
    } else if (S_ISLNK(n->st.st_mode)) {
        _cleanup_free_ char *target = NULL;
        int r = lowerfs_readlink(l, n, &target);
        if (r < 0 || symlinkat(target, c->dirfd, path) < 0)
            return kiln_error_set(err, r < 0 ? -r : errno, "output: symlink '%s'", path);
        if (c->owners)
            (void)!fchownat(c->dirfd, path, n->uid, n->gid, AT_SYMLINK_NOFOLLOW);
    } else if (S_ISFIFO(n->st.st_mode)) {
        if (mkfifoat(c->dirfd, path, mode) < 0)
            return kiln_error_set(err, errno, "output: fifo '%s'", path);
    }
    /* device nodes and sockets cannot be made by an ordinary user: skipped */
    return 0;
}

static int local_post(void *ud, struct lowerfs *l, const struct lower_node *n, const char *path,
                      struct kiln_error **err)
{
    struct local_ctx *c = ud;
    if (!S_ISDIR(n->st.st_mode))
        return 0;
    if (c->owners)
        (void)!fchownat(c->dirfd, path, n->uid, n->gid, AT_SYMLINK_NOFOLLOW);
    (void)!fchmodat(c->dirfd, path, (n->st.st_mode & 07777) | (c->owners ? 0 : 0200), 0);
    struct timespec ts[2] = {n->st.st_mtim, n->st.st_mtim};
    utimensat(c->dirfd, path, ts, AT_SYMLINK_NOFOLLOW);
    return 0;
}

static int stage_view(struct build_ctx *bc, const struct stage_state *st, struct lowerfs *l,
                      struct lower_node *root, struct kiln_error **err)
{
    if (stage_lowerfs(bc, st, l, err) < 0)
        return -1;
    int r = lowerfs_resolve(l, "/", true, root);
    if (r < 0) {
        lowerfs_close(l);
        return kiln_error_set(err, -r, "output: root of the image");
    }
    return 0;
}

int output_local(struct build_ctx *bc, const struct stage_state *st, const char *dir,
                 struct kiln_error **err)
{
    int r = fs_mkdir_p(dir, 0755);
    if (r < 0)
        return kiln_error_set(err, -r, "output: create '%s'", dir);
    struct local_ctx c = {.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
    if (c.dirfd < 0)
        return kiln_error_set(err, errno, "output: open '%s'", dir);
    struct lowerfs l;
    struct lower_node root = {0};
    if (stage_view(bc, st, &l, &root, err) < 0) {
        close(c.dirfd);
        return -1;
    }
    r = walk(&l, &root, "", local_pre, local_post, &c, err);
    lower_node_free(&root);
    lowerfs_close(&l);
    close(c.dirfd);
    return r;
}

int output_copy_subtree(struct build_ctx *bc, const struct stage_state *st, const char *path,
                        const char *dir, struct kiln_error **err)
{
    int r = fs_mkdir_p(dir, 0755);
    if (r < 0)
        return kiln_error_set(err, -r, "create '%s'", dir);
    struct local_ctx c = {.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), .owners = true};
    if (c.dirfd < 0)
        return kiln_error_set(err, errno, "open '%s'", dir);
    struct lowerfs l;
    if (st->n_layers == 0) {
        close(c.dirfd);
        return strcmp(path, "/") == 0 ? 0 : kiln_error_set(err, ENOENT, "'%s': not found", path);
    }
    if (stage_lowerfs(bc, st, &l, err) < 0) {
        close(c.dirfd);
        return -1;
    }
    struct lower_node n = {0};
    r = lowerfs_resolve(&l, path, true, &n);
    if (r < 0) {
        r = kiln_error_set(err, -r, "'%s'", path);
    } else if (S_ISDIR(n.st.st_mode)) {
        r = walk(&l, &n, "", local_pre, local_post, &c, err);
        if (r == 0) {
            (void)!fchown(c.dirfd, n.uid, n.gid);
            (void)!fchmod(c.dirfd, n.st.st_mode & 07777);
        }
    } else {
        const char *slash = strrchr(n.path, '/');
        r = local_pre(&c, &l, &n, slash ? slash + 1 : n.path, err);
    }
    lower_node_free(&n);
    lowerfs_close(&l);
    close(c.dirfd);
    return r;
}

struct tar_ctx {
    struct archive *a;
    struct archive_entry_linkresolver *links;
};

static int tar_pre(void *ud, struct lowerfs *l, const struct lower_node *n, const char *path,
                   struct kiln_error **err)
{
    struct tar_ctx *c = ud;
    struct archive_entry *e = archive_entry_new();
    archive_entry_copy_stat(e, &n->st);
    archive_entry_set_uid(e, n->uid);
    archive_entry_set_gid(e, n->gid);
    archive_entry_unset_atime(e);
    archive_entry_unset_ctime(e);
    archive_entry_unset_birthtime(e);
    archive_entry_set_ino64(e, n->st.st_ino + ((int64_t)n->tree << 48));
    archive_entry_set_dev(e, 0);
    archive_entry_set_nlink(e, S_ISDIR(n->st.st_mode) ? 2 : n->st.st_nlink);
    if (S_ISDIR(n->st.st_mode)) {
        _cleanup_free_ char *p = xasprintf("%s/", path);
        archive_entry_copy_pathname(e, p);
    } else {
        archive_entry_copy_pathname(e, path);
    }
    if (S_ISLNK(n->st.st_mode)) {
        _cleanup_free_ char *target = NULL;
        if (lowerfs_readlink(l, n, &target) == 0)
            archive_entry_copy_symlink(e, target);
    }
    struct archive_entry *sparse = NULL;
    archive_entry_linkify(c->links, &e, &sparse);
    int r = 0;
    if (e) {
        if (archive_write_header(c->a, e) != ARCHIVE_OK) {
            r = kiln_error_set(err, 0, "output: tar '%s': %s", path, archive_error_string(c->a));
        } else if (S_ISREG(n->st.st_mode) && archive_entry_size(e) > 0) {
            int in = lowerfs_open(l, n, O_RDONLY);
            if (in < 0)
                return kiln_error_set(err, -in, "output: read '/%s'", path);
            char buf[128 * 1024];
            ssize_t got;
            while ((got = read(in, buf, sizeof(buf))) > 0)
                if (archive_write_data(c->a, buf, (size_t)got) < 0) {
                    r = kiln_error_set(err, 0, "output: tar: %s", archive_error_string(c->a));
                    break;
                }
            close(in);
        }
        archive_entry_free(e);
    }
    return r;
}

int output_tar(struct build_ctx *bc, const struct stage_state *st, int fd,
               struct kiln_error **err)
{
    struct tar_ctx c = {.a = archive_write_new(), .links = archive_entry_linkresolver_new()};
    archive_write_set_format_pax_restricted(c.a);
    archive_entry_linkresolver_set_strategy(c.links, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
    archive_write_set_bytes_in_last_block(c.a, 1);
    int r = -1;
    struct lowerfs l;
    struct lower_node root = {0};
    if (archive_write_open_fd(c.a, fd) != ARCHIVE_OK) {
        kiln_error_set(err, 0, "output: tar: %s", archive_error_string(c.a));
        goto out;
    }
    if (stage_view(bc, st, &l, &root, err) < 0)
        goto out;
    r = walk(&l, &root, "", tar_pre, NULL, &c, err);
    lower_node_free(&root);
    lowerfs_close(&l);
    if (r == 0 && archive_write_close(c.a) != ARCHIVE_OK)
        r = kiln_error_set(err, 0, "output: tar: %s", archive_error_string(c.a));
out:
    archive_write_free(c.a);
    archive_entry_linkresolver_free(c.links);
    return r;
}
