#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers/gc.h"
#include "layers/store.h"
#include "runtime/runtime.h"
#include "lib/log.h"
#include "lib/xalloc.h"

struct global_opts g_opts;

bool cli_global_opt(int c, const char *arg)
{
    switch (c) {
    case 0x1001:
        g_opts.root = arg;
        return true;
    case 0x1002:
        g_opts.userns = arg;
        return true;
    case 0x1003:
        g_opts.storage_driver = arg;
        return true;
    case 0x1004:
        log_set_level(LOG_DEBUG);
        return true;
    }
    return false;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    if (cmd) {
        fprintf(stderr, "kiln %s: %s\nSee 'kiln %s --help'.\n", cmd, msg, cmd);
    } else {
        fprintf(stderr, "kiln: %s\nSee 'kiln --help'.\n", msg);
    }
    free(msg);
    return KILN_EXIT_USAGE;
}

int cli_bad_option(const char *cmd, char *const *argv)
{
    extern int optind, optopt;
    const char *arg = argv[optind - 1];
    if (optopt && !(arg && arg[0] == '-' && arg[1] == '-'))
        return cli_usage_error(cmd, "unknown or incomplete flag '-%c'", optopt);
    return cli_usage_error(cmd, "unknown flag or missing value: '%s'", arg ? arg : "?");
}

int cli_fail(struct kiln_error **err)
{
    if (!err || !*err) {
        fprintf(stderr, "kiln: error: failed\n");
        return KILN_EXIT_FAILURE;
    }
    char *text = kiln_error_text(*err);
    fprintf(stderr, "kiln: error: %s\n", text);
    free(text);
    int status = (*err)->status ? (*err)->status : KILN_EXIT_FAILURE;
    kiln_error_free(err);
    return status;
}

int cli_open_store(struct store **ret, struct kiln_error **err)
{
    char *root = g_opts.root ? xstrdup(g_opts.root) : store_default_root();
    int r = store_open(root, ret, err);
    free(root);
    return r;
}

int cli_parse_size(const char *s, uint64_t *ret)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0)
        return -1;
    uint64_t mul = 1;
    switch (*end) {
    case '\0':
    case 'b':
    case 'B':
        break;
    case 'k':
    case 'K':
        mul = 1024;
        break;
    case 'm':
    case 'M':
        mul = 1024 * 1024;
        break;
    case 'g':
    case 'G':
        mul = 1024ull * 1024 * 1024;
        break;
    default:
        return -1;
    }
    if (*end && end[1] && !((end[1] == 'b' || end[1] == 'B') && !end[2]))
        return -1;
    *ret = (uint64_t)(v * (double)mul);
    return 0;
}

int cli_enter_namespaces(struct kiln_error **err)
{
    enum userns_mode mode = USERNS_AUTO;
    if (g_opts.userns && userns_mode_from_name(g_opts.userns, &mode) < 0)
        return kiln_error_set_status(err, KILN_EXIT_USAGE, 0,
                                     "--userns: expected auto, range or single, got '%s'",
                                     g_opts.userns);
    if (userns_enter(mode, NULL, err) < 0)
        return -1;
    runtime_install_signal_handlers();
    return 0;
}

int cli_storage_driver(struct store *s, enum storage_driver *ret, struct kiln_error **err)
{
    enum storage_driver want = DRIVER_AUTO;
    if (g_opts.storage_driver && driver_from_name(g_opts.storage_driver, &want) < 0)
        return kiln_error_set_status(err, KILN_EXIT_USAGE, 0,
                                     "--storage-driver: expected auto, overlay, fuse-overlayfs "
                                     "or copy, got '%s'",
                                     g_opts.storage_driver);
    return driver_resolve(s, want, ret, err);
}

int cli_hold_gc_lock(struct store *s, struct kiln_error **err)
{
    int fd = -1;
    /* released when the process (and any child holding the fd) exits */
    return gc_lock_shared(s, &fd, err);
}
