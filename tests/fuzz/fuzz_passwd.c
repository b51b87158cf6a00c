/* libFuzzer target: USER resolution against an image's /etc/passwd and
 * /etc/group (runtime/user.c), both untrusted.  The input is split at the
 * first NUL byte into passwd and group; the USER value tried comes from its
 * last bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/error.h"
#include "lib/xalloc.h"
#include "runtime/internal.h"
#include "runtime/runtime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = xmalloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = '\0';
    const char *passwd = buf;
    size_t plen = strlen(buf);
    const char *group = plen < size ? buf + plen + 1 : NULL;
    static const char *const users[] = {"root", "app", "0", "1234", "app:app", "1:2", "x:0",
                                        "app:staff", "", "nobody:nogroup"};
    const char *user = users[size % (sizeof(users) / sizeof(users[0]))];
    struct run_user u;
    struct kiln_error *err = NULL;
    if (runtime_user_resolve_db(passwd, group, user, &u, &err) == 0)
        run_user_free(&u);
    kiln_error_free(&err);
    free(buf);
    return 0;
}
