/* libFuzzer target: the runtime's owner log as the diff reads it
 * (layers/fsmeta.c, owner_table_load_log).  kiln writes the lines, but the
 * paths in them are names a RUN step chose.  The input goes through a
 * memfd (the loader reads a path); then a few lookups, since the table is
 * sorted and searched. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "layers/layer_internal.h"
#include "lib/error.h"
#include "lib/fsutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("owner-log", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (fs_write_all(fd, data, size) < 0) {
        close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    struct owner_table *t = NULL;
    struct kiln_error *err = NULL;
    if (owner_table_load_log(path, &t, &err) == 0) {
        static const char *const paths[] = {"a", "etc/shadow", "", "x/y", "\\", "a\nb"};
        uid_t u;
        gid_t g;
        for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
            owner_table_lookup(t, paths[i], &u, &g);
        owner_table_free(t);
    }
    kiln_error_free(&err);
    close(fd);
    return 0;
}
