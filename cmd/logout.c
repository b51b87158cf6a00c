/* kiln logout: forget a registry's credentials. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cmd/cli.h"
#include "cmd/registry_flags.h"
#include "layers/registry.h"

static void usage(FILE *f)
{
    fprintf(f, "Usage: kiln logout [OPTIONS] [REGISTRY]\n\n"
               "Remove a registry's credentials from the auth file (REGISTRY defaults to\n"
               "docker.io).\n\n"
               "Options:\n"
               "  -a, --all                 remove every registry's credentials\n"
               "      --authfile FILE       the auth file (default: $REGISTRY_AUTH_FILE,\n"
               "                            $XDG_RUNTIME_DIR/containers/auth.json)\n"
               "  -h, --help                this help\n");
}

int cmd_logout(int argc, char **argv)
{
    static const struct option longopts[] = {{"all", no_argument, NULL, 'a'},
                                             {"authfile", required_argument, NULL, 'A'},
                                             {"help", no_argument, NULL, 'h'},
                                             CLI_GLOBAL_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    struct registry_opts o = {.tls_verify = REGISTRY_TLS_DEFAULT};
    bool all = false;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "ah", longopts, NULL)) != -1) {
        switch (c) {
        case 'a':
            all = true;
            break;
        case 'A':
            o.authfile = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            if (!cli_global_opt(c, optarg))
                return cli_bad_option("logout", argv);
        }
    }
    if (argc - optind > 1)
        return cli_usage_error("logout", "too many arguments");
    if (all && argc - optind == 1)
        return cli_usage_error("logout", "--all takes no registry");
    const char *registry = all ? NULL : argc - optind == 1 ? argv[optind] : "docker.io";
    struct kiln_error *err = NULL;
    bool found = false;
    if (registry_logout(registry, &o, &found, &err) < 0)
        return cli_fail(&err);
    char *path = registry_authfile_path(&o);
    if (all) {
        fprintf(stderr, "Removed login credentials for all registries from '%s'\n", path);
    } else if (!found) {
        kiln_error_set(&err, 0, "not logged in to '%s' (in '%s')", registry, path);
        free(path);
        return cli_fail(&err);
    } else {
        fprintf(stderr, "Removed login credentials for '%s'\n", registry);
    }
    free(path);
    return 0;
}
