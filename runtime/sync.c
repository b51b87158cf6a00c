/* The sync socket: the child reports setup and exec failures as
 * (errno, exit status, message) and hands over descriptors; the parent
 * rebuilds an ordinary kiln_error from them.  The sending side runs in the
 * cloned child and only uses plain syscalls. */
#include "runtime/internal.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runtime/safe.h"

static int send_with_fd(int sock, const void *buf, size_t len, int pass_fd)
{
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (pass_fd >= 0) {
        memset(&u, 0, sizeof(u));
        mh.msg_control = u.buf;
        mh.msg_controllen = sizeof(u.buf);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    }
    for (;;) {
        ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);
        if (n >= 0)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
}

static int recv_with_fd(int sock, void *buf, size_t len, int *ret_fd)
{
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
    *ret_fd = -1;
    ssize_t n;
    do {
        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
            c->cmsg_len >= CMSG_LEN(sizeof(int)))
            memcpy(ret_fd, CMSG_DATA(c), sizeof(int));
    return (int)n;
}

int sync_send(int fd, const struct sync_msg *m, int pass_fd)
{
    return send_with_fd(fd, m, sizeof(*m), pass_fd);
}

void sync_error(int fd, int code, int status, const char *what, const char *arg)
{
    struct sync_msg m;
    memset(&m, 0, sizeof(m));
    m.type = SYNC_ERROR;
    m.code = code;
    m.status = status;
    struct sbuf b;
    sb_init(&b, m.text, sizeof(m.text));
    sb_str(&b, what);
    if (arg) {
        sb_str(&b, " '");
        sb_str(&b, arg);
        sb_chr(&b, '\'');
    }
    sync_send(fd, &m, -1);
}

int sync_recv(int fd, struct sync_msg *m, int *ret_fd)
{
    memset(m, 0, sizeof(*m));
    int n = recv_with_fd(fd, m, sizeof(*m), ret_fd);
    if (n <= 0)
        return n;
    if ((size_t)n != sizeof(*m)) {
        if (*ret_fd >= 0)
            close(*ret_fd);
        *ret_fd = -1;
        return -EPROTO;
    }
    m->text[sizeof(m->text) - 1] = '\0';
    return 1;
}

int fd_send(int sock, int fd)
{
    char byte = 'F';
    return send_with_fd(sock, &byte, 1, fd);
}

int fd_recv(int sock)
{
    char byte;
    int fd = -1;
    int n = recv_with_fd(sock, &byte, 1, &fd);
    if (n < 0)
        return n;
    if (n == 0 || fd < 0)
        return -ENODATA;
    return fd;
}
