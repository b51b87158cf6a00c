/* kiln: dispatch to subcommands; exit codes are documented in README.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cli.h"
#include "cmd/version.h"
#include "lib/log.h"

static const struct command commands[] = {
    {"build", cmd_build, "Build an image from a Dockerfile"},
    {"builder", cmd_builder, "Manage the build cache (prune)"},
    {"check", cmd_check, "Check a Dockerfile without building it"},
    {"export", cmd_export, "Write an image's file system as a tar"},
    {"history", cmd_history, "Show the history of an image"},
    {"image", cmd_image, "Manage images (ls, inspect, rm, tag, prune, ...)"},
    {"images", cmd_images, "List images in the store"},
    {"import", cmd_import, "Make an image from a rootfs tarball or directory"},
    {"info", cmd_info, "Show the store, identity mode and storage driver"},
    {"inspect", cmd_inspect, "Show images as JSON"},
    {"load", cmd_load, "Load images from a tar archive"},
    {"login", cmd_login, "Log in to a registry"},
    {"logout", cmd_logout, "Log out of a registry"},
    {"pull", cmd_pull, "Pull an image from a registry"},
    {"push", cmd_push, "Push an image to a registry"},
    {"rmi", cmd_rmi, "Remove images"},
    {"run", cmd_run, "Run a command in a new container from an image"},
    {"save", cmd_save, "Save images to a tar archive"},
    {"system", cmd_system, "Manage the store (df, prune, check, reset)"},
    {"tag", cmd_tag, "Create a tag that refers to an image"},
};

static void usage(FILE *f)
{
    fprintf(f, "Usage: kiln [OPTIONS] COMMAND [ARG...]\n\n"
               "Build OCI container images from Dockerfiles as an ordinary user:\n"
               "no root, no daemon, no setuid helper required.\n\n"
               "Commands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nOptions:\n"
               "  --root DIR                store directory (default $XDG_DATA_HOME/kiln)\n"
               "  --userns auto|range|single  identity mapping mode (default auto)\n"
               "  --storage-driver auto|overlay|fuse-overlayfs|copy\n"
               "  --debug                   print debug messages\n"
               "  -h, --help                this help\n"
               "  --version                 print the version\n\n"
               "Run 'kiln COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    const char *e;
    if ((e = getenv("KILN_ROOT")) && *e)
        g_opts.root = e;
    if ((e = getenv("KILN_USERNS")) && *e)
        g_opts.userns = e;
    if ((e = getenv("KILN_STORAGE_DRIVER")) && *e)
        g_opts.storage_driver = e;
    if ((e = getenv("KILN_DEBUG")) && *e && strcmp(e, "0") != 0)
        log_set_level(LOG_DEBUG);

    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-')
            break;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
            printf("kiln version %s\n", KILN_VERSION);
            return 0;
        }
        if (strcmp(a, "--debug") == 0) {
            log_set_level(LOG_DEBUG);
            continue;
        }
        const char *val = NULL;
        int code = 0;
        static const struct {
            const char *name;
            int code;
        } with_value[] = {{"--root", 0x1001}, {"--userns", 0x1002}, {"--storage-driver", 0x1003}};
        for (size_t k = 0; k < sizeof(with_value) / sizeof(with_value[0]); k++) {
            size_t n = strlen(with_value[k].name);
            if (strncmp(a, with_value[k].name, n) == 0 && (a[n] == '=' || a[n] == '\0')) {
                code = with_value[k].code;
                if (a[n] == '=')
                    val = a + n + 1;
                else if (i + 1 < argc)
                    val = argv[++i];
                else
                    return cli_usage_error(NULL, "flag '%s' needs a value", a);
            }
        }
        if (!code)
            return cli_usage_error(NULL, "unknown flag '%s'", a);
        cli_global_opt(code, val);
    }
    if (i >= argc) {
        usage(stderr);
        return KILN_EXIT_USAGE;
    }
    for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
        if (strcmp(argv[i], commands[k].name) == 0)
            return commands[k].fn(argc - i, argv + i);
    return cli_usage_error(NULL, "unknown command '%s'", argv[i]);
}
