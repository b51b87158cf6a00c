/* libFuzzer target: layer extraction (decompression by magic, tar parsing,
 * every entry type, whiteouts, hostile paths) into a scratch directory.
 * Invariant checked beyond memory safety: nothing appears outside the
 * extraction directory. */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layers/layer_internal.h"
#include "lib/fsutil.h"
#include "lib/log.h"

static char parent[] = "/dev/shm/kiln-fuzz-tar-XXXXXX";
static char *target;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void cleanup(void)
{
    fs_rm_rf(parent);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (!mkdtemp(parent)) {
        /* no /dev/shm: fall back to /tmp */
        strcpy(parent, "/tmp/kiln-fuzz-tar-XXXXXX");
        if (!mkdtemp(parent))
            abort();
    }
    if (asprintf(&target, "%s/t", parent) < 0)
        abort();
    log_set_level(LOG_ERROR);
    atexit(cleanup);
    return 0;
}

/* Only "t" may exist beside the tree. */
static void check_nothing_escaped(void)
{
    DIR *d = opendir(parent);
    if (!d)
        abort();
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && strcmp(de->d_name, "t")) {
            fprintf(stderr, "entry written outside the tree: %s\n", de->d_name);
            abort();
        }
    closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("layer", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (fs_write_all(fd, data, size) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
        close(fd);
        return 0;
    }
    fs_rm_rf(target);
    if (mkdir(target, 0700) < 0)
        abort();
    int dfd = open(target, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        abort();
    struct tar_extract_result res;
    struct kiln_error *err = NULL;
    tar_extract(fd, dfd, &res, &err);
    kiln_error_free(&err);
    tar_extract_result_release(&res);
    close(dfd);
    close(fd);
    check_nothing_escaped();
    fs_rm_rf(target);
    return 0;
}
