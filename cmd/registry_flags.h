/* Flags the registry commands share (pull, push, login, logout):
 * --creds, --authfile, --tls-verify[=BOOL], --cert-dir, and the progress
 * lines they print on stderr. */
#ifndef KILN_CMD_REGISTRY_FLAGS_H
#define KILN_CMD_REGISTRY_FLAGS_H

#include <getopt.h>
#include <stdbool.h>

#include "layers/registry.h"

enum {
    REGFLAG_CREDS = 0x2001,
    REGFLAG_AUTHFILE,
    REGFLAG_TLS_VERIFY,
    REGFLAG_CERT_DIR,
};

#define REGISTRY_LONGOPTS                                                                          \
    {"creds", required_argument, NULL, REGFLAG_CREDS},                                             \
        {"authfile", required_argument, NULL, REGFLAG_AUTHFILE},                                   \
        {"tls-verify", optional_argument, NULL, REGFLAG_TLS_VERIFY},                               \
        {"cert-dir", required_argument, NULL, REGFLAG_CERT_DIR}

#define REGISTRY_FLAGS_HELP                                                                        \
    "      --authfile FILE       credentials file (default: $REGISTRY_AUTH_FILE,\n"                \
    "                            $XDG_RUNTIME_DIR/containers/auth.json, ~/.docker/config.json)\n"  \
    "      --cert-dir DIR        CA certificates (*.crt) for the registry's TLS\n"                 \
    "      --tls-verify=BOOL     true: https, verified; false: no verification, plain\n"          \
    "                            HTTP allowed (default: verified https; loopback\n"                \
    "                            registries may fall back to plain HTTP)\n"

/* Handles one of the shared flags.  1: handled, 0: not one of them,
 * -1: bad value (a usage error was printed; exit 2). */
int registry_flag(const char *cmd, int c, const char *arg, struct registry_opts *o);
/* Progress lines on stderr ("quiet" drops them). */
void registry_status_stderr(void *ud, const char *line);

#endif
