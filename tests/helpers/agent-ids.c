/* agent-ids: lists the identities an ssh-agent at $SSH_AUTH_SOCK (or
 * argv[1]) holds, one comment per line, after a first line "N keys".  A
 * static stand-in for `ssh-add -l` inside images that have no ssh client
 * (RUN --mount=type=ssh tests).  Exit status: 0 when the agent answered,
 * 1 otherwise. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define AGENTC_REQUEST_IDENTITIES 11
#define AGENT_IDENTITIES_ANSWER 12

static int read_full(int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, (char *)buf + got, len - got);
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return 0;
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return ntohl(v);
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : getenv("SSH_AUTH_SOCK");
    if (!path) {
        fprintf(stderr, "agent-ids: SSH_AUTH_SOCK is not set\n");
        return 1;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "agent-ids: socket path too long\n");
        return 1;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        perror("agent-ids: connect");
        return 1;
    }
    unsigned char req[5] = {0, 0, 0, 1, AGENTC_REQUEST_IDENTITIES};
    if (write(fd, req, sizeof(req)) != (ssize_t)sizeof(req)) {
        perror("agent-ids: write");
        return 1;
    }
    unsigned char hdr[4];
    if (read_full(fd, hdr, 4) < 0) {
        fprintf(stderr, "agent-ids: no answer\n");
        return 1;
    }
    uint32_t len = get_u32(hdr);
    if (len < 5 || len > (1u << 20)) {
        fprintf(stderr, "agent-ids: bad answer length %u\n", len);
        return 1;
    }
    unsigned char *msg = malloc(len);
    if (!msg || read_full(fd, msg, len) < 0 || msg[0] != AGENT_IDENTITIES_ANSWER) {
        fprintf(stderr, "agent-ids: bad answer\n");
        return 1;
    }
    uint32_t n = get_u32(msg + 1);
    printf("%u keys\n", n);
    size_t off = 5;
    for (uint32_t i = 0; i < n; i++) {
        if (off + 4 > len)
            return 1;
        uint32_t blob = get_u32(msg + off);
        off += 4;
        if (blob > len - off)
            return 1;
        off += blob;
        if (off + 4 > len)
            return 1;
        uint32_t clen = get_u32(msg + off);
        off += 4;
        if (clen > len - off)
            return 1;
        printf("%.*s\n", (int)clen, (const char *)msg + off);
        off += clen;
    }
    free(msg);
    close(fd);
    return 0;
}
