/* Scope-bound cleanup, in the style of systemd's cleanup-fundamental.h.
 * Initialise every cleanup variable where it is declared (NULL or -1). */
#ifndef KILN_CLEANUP_H
#define KILN_CLEANUP_H

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "xalloc.h"

static inline void cleanup_freep(void *p)
{
    free(*(void **)p);
}
static inline void cleanup_closep(int *fd)
{
    if (*fd >= 0) {
        int saved = errno;
        close(*fd);
        errno = saved;
    }
}
static inline void cleanup_fclosep(FILE **f)
{
    if (*f)
        fclose(*f);
}
static inline void cleanup_closedirp(DIR **d)
{
    if (*d)
        closedir(*d);
}
static inline void cleanup_strvp(char ***v)
{
    strv_free(*v);
}
/* Kills and reaps a child that an early return leaves behind. */
static inline void cleanup_pidp(pid_t *pid)
{
    if (*pid > 0) {
        int saved = errno;
        kill(*pid, SIGKILL);
        while (waitpid(*pid, NULL, 0) < 0 && errno == EINTR)
            ;
        errno = saved;
    }
}

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(cleanup_freep)
#define _cleanup_close_ _cleanup_(cleanup_closep)
#define _cleanup_fclose_ _cleanup_(cleanup_fclosep)
#define _cleanup_dir_ _cleanup_(cleanup_closedirp)
#define _cleanup_strv_ _cleanup_(cleanup_strvp)
#define _cleanup_pid_ _cleanup_(cleanup_pidp)

/* libarchive handles; include <archive.h> before this header to use it. */
#ifdef ARCHIVE_VERSION_NUMBER
static inline void cleanup_archive_readp(struct archive **a)
{
    if (*a)
        archive_read_free(*a);
}
static inline void cleanup_archive_writep(struct archive **a)
{
    if (*a)
        archive_write_free(*a);
}
#define _cleanup_archive_read_ _cleanup_(cleanup_archive_readp)
#define _cleanup_archive_write_ _cleanup_(cleanup_archive_writep)
#endif

/* Hands ownership out of a cleanup variable. */
#define TAKE_PTR(p)                                                                                \
    ({                                                                                             \
        __typeof__(p) _tp = (p);                                                                   \
        (p) = NULL;                                                                                \
        _tp;                                                                                       \
    })
#define TAKE_FD(fd)                                                                                \
    ({                                                                                             \
        int _tfd = (fd);                                                                           \
        (fd) = -1;                                                                                 \
        _tfd;                                                                                      \
    })

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
