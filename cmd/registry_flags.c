#include "cmd/registry_flags.h"

#include <stdio.h>
#include <string.h>

#include "cmd/cli.h"

int registry_flag(const char *cmd, int c, const char *arg, struct registry_opts *o)
{
    switch (c) {
    case REGFLAG_CREDS:
        if (!arg || !*arg || arg[0] == ':') {
            cli_usage_error(cmd, "--creds wants USER[:PASSWORD]");
            return -1;
        }
        o->creds = arg;
        return 1;
    case REGFLAG_AUTHFILE:
        o->authfile = arg;
        return 1;
    case REGFLAG_CERT_DIR:
        o->cert_dir = arg;
        return 1;
    case REGFLAG_TLS_VERIFY:
        if (!arg || strcmp(arg, "true") == 0 || strcmp(arg, "1") == 0) {
            o->tls_verify = REGISTRY_TLS_VERIFY;
        } else if (strcmp(arg, "false") == 0 || strcmp(arg, "0") == 0) {
            o->tls_verify = REGISTRY_TLS_SKIP_VERIFY;
        } else {
            cli_usage_error(cmd, "--tls-verify wants true or false, not '%s'", arg);
            return -1;
        }
        return 1;
    }
    return 0;
}

void registry_status_stderr(void *ud, const char *line)
{
    (void)ud;
    fprintf(stderr, "%s\n", line);
}
