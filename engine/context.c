#include "engine/context.h"

#include <archive.h>
#include <archive_entry.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"

#define DOCKERFILE_MAX (16u << 20)

void build_input_free(struct build_input *in)
{
    free(in->context_dir);
    free(in->dockerfile_name);
    free(in->dockerfile_path);
    free(in->dockerfile);
    free(in->ignore_text);
    free(in->ignore_name);
    memset(in, 0, sizeof(*in));
}

int context_extract_tar(int fd, const char *dir, struct kiln_error **err)
{
    struct archive *a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    archive_read_support_format_gnutar(a);
    struct archive *w = archive_write_disk_new();
    archive_write_disk_set_options(w, ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM |
                                          ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                          ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                          ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS);
    int rc = -1;
    int cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cwd < 0 || chdir(dir) < 0) {
        kiln_error_set(err, errno, "enter '%s'", dir);
        goto out;
    }
    if (archive_read_open_fd(a, fd, 64 * 1024) != ARCHIVE_OK) {
        kiln_error_set(err, 0, "read context tar: %s", archive_error_string(a));
        goto out;
    }
    struct archive_entry *e;
    int r;
    while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        /* ownership inside the context does not matter: COPY sets its own */
        archive_entry_set_uid(e, getuid());
        archive_entry_set_gid(e, getgid());
        if (archive_entry_filetype(e) != AE_IFREG && archive_entry_filetype(e) != AE_IFDIR &&
            archive_entry_filetype(e) != AE_IFLNK)
            continue;
        if (archive_write_header(w, e) != ARCHIVE_OK) {
            kiln_error_set(err, 0, "context tar: '%s': %s", archive_entry_pathname(e),
                           archive_error_string(w));
            goto out;
        }
        const void *buf;
        size_t len;
        la_int64_t off;
        while ((r = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK) {
            if (archive_write_data_block(w, buf, len, off) != ARCHIVE_OK) {
                kiln_error_set(err, 0, "context tar: write '%s': %s", archive_entry_pathname(e),
                               archive_error_string(w));
                goto out;
            }
        }
        if (r != ARCHIVE_EOF) {
            kiln_error_set(err, 0, "context tar: read '%s': %s", archive_entry_pathname(e),
                           archive_error_string(a));
            goto out;
        }
    }
    if (r != ARCHIVE_EOF) {
        kiln_error_set(err, 0, "context tar: %s", archive_error_string(a));
        goto out;
    }
    if (archive_write_close(w) != ARCHIVE_OK) {
        kiln_error_set(err, 0, "context tar: %s", archive_error_string(w));
        goto out;
    }
    rc = 0;
out:
    if (cwd >= 0) {
        if (fchdir(cwd) < 0 && rc == 0)
            rc = kiln_error_set(err, errno, "return to the working directory");
        close(cwd);
    }
    archive_read_free(a);
    archive_write_free(w);
    return rc;
}

static size_t curl_to_fd(char *ptr, size_t size, size_t n, void *ud)
{
    int fd = *(int *)ud;
    return fs_write_all(fd, ptr, size * n) < 0 ? 0 : size * n;
}

/* Downloads a URL into a new file in dir; returns an fd positioned at 0. */
static int download(const char *url, const char *dir, int *ret_fd, struct kiln_error **err)
{
    _cleanup_free_ char *path = path_join(dir, "context-download");
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return kiln_error_set(err, errno, "create '%s'", path);
    CURL *c = curl_easy_init();
    char ebuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, curl_to_fd);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &fd);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode cr = curl_easy_perform(c);
    curl_easy_cleanup(c);
    if (cr != CURLE_OK) {
        close(fd);
        return kiln_error_set(err, 0, "download context '%s': %s", url,
                              ebuf[0] ? ebuf : curl_easy_strerror(cr));
    }
    lseek(fd, 0, SEEK_SET);
    *ret_fd = fd;
    return 0;
}

/* stdin into a file of dir, so that it can be looked at before it is read:
 * `kiln build - <Dockerfile` and `kiln build - <context.tar` both work. */
static int spool_stdin(const char *dir, int *ret_fd, struct kiln_error **err)
{
    _cleanup_free_ char *path = path_join(dir, "context-stdin");
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return kiln_error_set(err, errno, "create '%s'", path);
    char buf[64 * 1024];
    for (;;) {
        ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            return kiln_error_set(err, e, "read the build context from stdin");
        }
        if (n == 0)
            break;
        if (fs_write_all(fd, buf, (size_t)n) < 0) {
            int e = errno;
            close(fd);
            return kiln_error_set(err, e, "write '%s'", path);
        }
    }
    lseek(fd, 0, SEEK_SET);
    *ret_fd = fd;
    return 0;
}

static bool is_url(const char *s)
{
    return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

bool context_is_archive(int fd)
{
    struct archive *a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    archive_read_support_format_gnutar(a);
    struct archive_entry *e;
    bool ok = archive_read_open_fd(a, fd, 16384) == ARCHIVE_OK &&
              archive_read_next_header(a, &e) == ARCHIVE_OK;
    archive_read_free(a);
    lseek(fd, 0, SEEK_SET);
    return ok;
}

int context_prepare(struct build_ctx *bc, struct build_input *in, struct kiln_error **err)
{
    memset(in, 0, sizeof(*in));
    const struct build_request *req = bc->req;
    bool df_from_stdin = req->dockerfile && strcmp(req->dockerfile, "-") == 0;
    bool df_in_context = false; /* -f names a file inside a tar context */

    if (strcmp(req->context, "-") == 0 || is_url(req->context)) {
        in->context_dir = path_join(bc->scratch, "context");
        if (mkdir(in->context_dir, 0700) < 0) {
            kiln_error_set(err, errno, "create '%s'", in->context_dir);
            goto fail;
        }
        int fd = -1;
        if (is_url(req->context) ? download(req->context, bc->scratch, &fd, err) < 0
                                 : spool_stdin(bc->scratch, &fd, err) < 0)
            goto fail;
        if (!context_is_archive(fd)) {
            /* a plain Dockerfile (from a URL or stdin): an empty context */
            int r = fs_read_fd(fd, DOCKERFILE_MAX, &in->dockerfile, &in->dockerfile_len);
            close(fd);
            if (r < 0) {
                kiln_error_set(err, -r, "read the Dockerfile from '%s'", req->context);
                goto fail;
            }
            in->dockerfile_name = xstrdup("Dockerfile");
            return 0;
        }
        int r = context_extract_tar(fd, in->context_dir, err);
        close(fd);
        if (r < 0)
            goto fail;
        df_in_context = true;
    } else {
        char real[PATH_MAX];
        if (!realpath(req->context, real)) {
            kiln_error_set(err, errno, "context '%s'", req->context);
            goto fail;
        }
        if (!fs_is_dir(real)) {
            kiln_error_set(err, ENOTDIR, "context '%s'", req->context);
            goto fail;
        }
        in->context_dir = xstrdup(real);
    }

    if (df_from_stdin) {
        int r = fs_read_fd(STDIN_FILENO, DOCKERFILE_MAX, &in->dockerfile, &in->dockerfile_len);
        if (r < 0) {
            kiln_error_set(err, -r, "read the Dockerfile from stdin");
            goto fail;
        }
        in->dockerfile_name = xstrdup("Dockerfile");
    } else {
        if (!req->dockerfile)
            in->dockerfile_path = path_join(in->context_dir, "Dockerfile");
        else if (df_in_context)
            in->dockerfile_path = path_join(in->context_dir, req->dockerfile);
        else
            in->dockerfile_path = xstrdup(req->dockerfile);
        in->dockerfile_name = xstrdup(req->dockerfile ? req->dockerfile : "Dockerfile");
        int r = fs_read_file_at(AT_FDCWD, in->dockerfile_path, DOCKERFILE_MAX, &in->dockerfile,
                                &in->dockerfile_len);
        if (r < 0) {
            kiln_error_set(err, -r, "failed to read dockerfile '%s'", in->dockerfile_path);
            goto fail;
        }
    }

    /* <Dockerfile>.dockerignore beside the Dockerfile wins over the context's */
    if (in->dockerfile_path) {
        _cleanup_free_ char *specific = xasprintf("%s.dockerignore", in->dockerfile_path);
        if (fs_read_file_at(AT_FDCWD, specific, DOCKERFILE_MAX, &in->ignore_text, NULL) == 0)
            in->ignore_name = xstrdup(specific);
    }
    if (!in->ignore_text) {
        _cleanup_free_ char *ctx_ignore = path_join(in->context_dir, ".dockerignore");
        if (fs_read_file_at(AT_FDCWD, ctx_ignore, DOCKERFILE_MAX, &in->ignore_text, NULL) == 0)
            in->ignore_name = xstrdup(".dockerignore");
    }
    return 0;
fail:
    build_input_free(in);
    return -1;
}
