/* kiln login: check credentials against a registry and keep them. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cmd/cli.h"
#include "cmd/registry_flags.h"
#include "layers/registry.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"

#define PASSWORD_MAX 65536

static void usage(FILE *f)
{
    fprintf(f, "Usage: kiln login [OPTIONS] REGISTRY\n\n"
               "Log in to a registry: the credentials are checked, then saved (mode 0600)\n"
               "in the auth file.\n\n"
               "Options:\n"
               "  -u, --username USER       user name (asked on a terminal when missing)\n"
               "  -p, --password PASSWORD   password (prefer --password-stdin)\n"
               "      --password-stdin      read the password from stdin\n" REGISTRY_FLAGS_HELP
               "  -h, --help                this help\n");
}

/* A line from the terminal, without echo when asked. */
static char *prompt(const char *what, bool echo)
{
    FILE *tty = fopen("/dev/tty", "r+e");
    if (!tty)
        return NULL;
    struct termios old, quiet;
    bool restore = false;
    if (!echo && tcgetattr(fileno(tty), &old) == 0) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        restore = tcsetattr(fileno(tty), TCSAFLUSH, &quiet) == 0;
    }
    fprintf(tty, "%s: ", what);
    fflush(tty);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, tty);
    if (restore) {
        tcsetattr(fileno(tty), TCSAFLUSH, &old);
        fputc('\n', tty);
    }
    fclose(tty);
    if (n < 0) {
        free(line);
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    return line;
}

int cmd_login(int argc, char **argv)
{
    static const struct option longopts[] = {{"username", required_argument, NULL, 'u'},
                                             {"password", required_argument, NULL, 'p'},
                                             {"password-stdin", no_argument, NULL, 'S'},
                                             {"help", no_argument, NULL, 'h'},
                                             REGISTRY_LONGOPTS,
                                             CLI_GLOBAL_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    struct registry_opts o = {.tls_verify = REGISTRY_TLS_DEFAULT};
    const char *user_arg = NULL, *pass_arg = NULL;
    bool pass_stdin = false;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "u:p:h", longopts, NULL)) != -1) {
        int r;
        switch (c) {
        case 'u':
            user_arg = optarg;
            break;
        case 'p':
            pass_arg = optarg;
            break;
        case 'S':
            pass_stdin = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            r = registry_flag("login", c, optarg, &o);
            if (r < 0)
                return KILN_EXIT_USAGE;
            if (r == 0 && !cli_global_opt(c, optarg))
                return cli_bad_option("login", argv);
        }
    }
    if (argc - optind != 1)
        return cli_usage_error("login", "want exactly one registry");
    if (pass_arg && pass_stdin)
        return cli_usage_error("login", "--password and --password-stdin exclude each other");
    if (o.creds)
        return cli_usage_error("login", "--creds is for pull and push; use -u and -p");
    const char *registry = argv[optind];

    struct kiln_error *err = NULL;
    char *user = user_arg ? xstrdup(user_arg) : NULL;
    char *pass = pass_arg ? xstrdup(pass_arg) : NULL;
    if (!user && !pass_stdin)
        user = prompt("Username", true);
    if (!user || !*user) {
        free(user);
        free(pass);
        return cli_usage_error("login", "a user name is required (-u)");
    }
    if (pass_stdin) {
        size_t len = 0;
        int r = fs_read_fd(STDIN_FILENO, PASSWORD_MAX, &pass, &len);
        if (r < 0) {
            free(user);
            kiln_error_set(&err, -r, "login: read the password from stdin");
            return cli_fail(&err);
        }
        while (len > 0 && (pass[len - 1] == '\n' || pass[len - 1] == '\r'))
            pass[--len] = '\0';
    } else if (!pass) {
        pass = prompt("Password", false);
    } else {
        fprintf(stderr, "kiln: warning: a password on the command line is visible to other "
                        "users; prefer --password-stdin\n");
    }
    if (!pass || !*pass) {
        free(user);
        free(pass);
        return cli_usage_error("login", "a password is required (-p or --password-stdin)");
    }
    int r = registry_login(registry, user, pass, &o, &err);
    explicit_bzero(pass, strlen(pass));
    free(pass);
    free(user);
    if (r < 0)
        return cli_fail(&err);
    fprintf(stderr, "Login Succeeded!\n");
    return 0;
}
