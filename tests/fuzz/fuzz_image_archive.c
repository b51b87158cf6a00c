/* libFuzzer: `kiln load` of an untrusted archive (tar reading, OCI index,
 * docker manifest.json, manifests, configs, verification), into a scratch
 * store that is emptied after every input; also the reference parsers. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "layers/archive.h"
#include "layers/transport.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *root;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!root) {
        root = xstrdup("/tmp/kiln-fuzz-archive-XXXXXX");
        if (!mkdtemp(root))
            abort();
    }
    /* the reference parsers on the same bytes */
    char *s = xstrndup((const char *)data, size < 4096 ? size : 4096);
    struct transport_ref r;
    struct kiln_error *err = NULL;
    if (transport_parse(s, &r, &err) == 0)
        transport_ref_free(&r);
    kiln_error_free(&err);
    free(archive_path_normalize(s));
    struct docker_entry *de = NULL;
    size_t n = 0;
    if (docker_manifest_parse((const char *)data, size, &de, &n, &err) == 0)
        docker_entries_free(de, n);
    kiln_error_free(&err);
    free(s);

    char *storedir = path_join(root, "store");
    struct store *st = NULL;
    if (store_open(storedir, &st, &err) < 0)
        abort();
    int fd = memfd_create("archive", MFD_CLOEXEC);
    if (fd < 0 || fs_write_all(fd, data, size) < 0 || lseek(fd, 0, SEEK_SET) < 0)
        abort();
    struct transport_image *imgs = NULL;
    size_t ni = 0;
    if (transport_load_fd(st, fd, "fuzz.tar", &imgs, &ni, &err) == 0)
        transport_images_free(imgs, ni);
    kiln_error_free(&err);
    close(fd);
    store_close(st);
    fs_rm_rf(storedir);
    free(storedir);
    return 0;
}
