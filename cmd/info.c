/* kiln info: where the store is, which identity mode and storage driver a
 * build would use here, and the versions of what kiln is made of. */
#include <archive.h>
#include <getopt.h>
#include <openssl/crypto.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <yajl/yajl_version.h>
#include <zstd.h>

#include "cmd/cli.h"
#include "cmd/format.h"
#include "cmd/version.h"
#include "layers/refs.h"
#include "lib/platform.h"
#include "runtime/runtime.h"

static void usage(FILE *f)
{
    fputs("Usage: kiln info\n\n"
          "Show the store, the identity mode and the storage driver kiln uses here.\n",
          f);
}

int cmd_info(int argc, char **argv)
{
    static const struct option longopts[] = {{"help", no_argument, NULL, 'h'},
                                             CLI_GLOBAL_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c == 'h') {
            usage(stdout);
            return 0;
        }
        if (!cli_global_opt(c, optarg))
            return cli_bad_option("info", argv);
    }
    if (optind < argc)
        return cli_usage_error("info", "takes no arguments");
    struct kiln_error *err = NULL;
    if (cli_enter_namespaces(&err) < 0)
        return cli_fail(&err);
    const struct userns_info *ns = userns_current();
    struct store *s = NULL;
    if (cli_open_store(&s, &err) < 0)
        return cli_fail(&err);
    enum storage_driver driver;
    if (cli_storage_driver(s, &driver, &err) < 0) {
        store_close(s);
        return cli_fail(&err);
    }
    struct store_index idx = {0};
    size_t tagged = 0;
    if (store_index_read(s, &idx, &err) == 0) {
        for (size_t i = 0; i < idx.n; i++)
            tagged += index_entry_name(&idx.entries[i]) != NULL;
    } else {
        kiln_error_free(&err);
    }
    struct utsname u;
    uname(&u);
    const struct scmp_version *sv = seccomp_version();
    printf("kiln version:    %s\n", KILN_VERSION);
    printf("platform:        %s\n", platform_string());
    printf("kernel:          %s %s\n", u.sysname, u.release);
    printf("store:           %s\n", s->root);
    printf("images:          %zu (%zu tagged)\n", idx.n, tagged);
    printf("identity mode:   %s", userns_mode_name(ns->mode));
    if (ns->why)
        printf(" (%s)", ns->why);
    printf("\n");
    printf("ids mapped:      %u uids, %u gids (user %u:%u outside)\n", ns->uid_count,
           ns->gid_count, (unsigned)ns->host_uid, (unsigned)ns->host_gid);
    printf("storage driver:  %s\n", driver_name(driver));
    printf("libraries:       %s, yajl %d.%d.%d, libseccomp %u.%u.%u, %s, zstd %s\n",
           archive_version_string(), YAJL_MAJOR, YAJL_MINOR, YAJL_MICRO, sv->major, sv->minor,
           sv->micro, OpenSSL_version(OPENSSL_VERSION), ZSTD_versionString());
    store_index_free(&idx);
    store_close(s);
    return 0;
}
