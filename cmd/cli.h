/* Shared pieces of the command line: global options, usage errors, the one
 * place that prints errors. */
#ifndef KILN_CLI_H
#define KILN_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

#include "layers/driver.h"
#include "lib/error.h"

struct global_opts {
    const char *root;           /* --root / KILN_ROOT */
    const char *userns;         /* --userns=auto|range|single / KILN_USERNS */
    const char *storage_driver; /* --storage-driver / KILN_STORAGE_DRIVER */
    int verbosity;              /* -v raises, -q lowers */
};
extern struct global_opts g_opts;

/* Long options every subcommand accepts as well (after its name). */
#define CLI_GLOBAL_LONGOPTS                                                                        \
    {"root", required_argument, NULL, 0x1001}, {"userns", required_argument, NULL, 0x1002},        \
        {"storage-driver", required_argument, NULL, 0x1003},                                       \
        {"debug", no_argument, NULL, 0x1004}

/* Handles a global option returned by getopt_long; true if it was one. */
bool cli_global_opt(int c, const char *arg);

/* "kiln CMD: MESSAGE" + "See 'kiln CMD --help'." on stderr; returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reports getopt's unknown option / missing argument in the same way. */
int cli_bad_option(const char *cmd, char *const *argv);
/* Prints "kiln: error: ..." and returns the exit status for it (err->status,
 * or 1).  Frees err. */
int cli_fail(struct kiln_error **err);

/* "64m", "1g", "512k", "100" (bytes) -> bytes; -1 if malformed. */
int cli_parse_size(const char *s, uint64_t *ret);

/* Enters kiln's user and mount namespaces (runtime/runtime.h) with the mode
 * from --userns; commands that build or run call it first. */
int cli_enter_namespaces(struct kiln_error **err);

struct store;
/* The storage driver from --storage-driver, resolved (auto -> the first that
 * works); after cli_enter_namespaces. */
int cli_storage_driver(struct store *s, enum storage_driver *ret, struct kiln_error **err);
/* Holds the store's gc lock shared until the process exits (layers/gc.h):
 * every command that writes into the store calls it after opening it. */
int cli_hold_gc_lock(struct store *s, struct kiln_error **err);
/* Opens the store named by --root / KILN_ROOT, or the default one. */
int cli_open_store(struct store **ret, struct kiln_error **err);

struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
};

/* Subcommands (cmd/<name>.c). */
int cmd_build(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_images(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_push(int argc, char **argv);
int cmd_login(int argc, char **argv);
int cmd_logout(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_history(int argc, char **argv);
int cmd_tag(int argc, char **argv);
int cmd_rmi(int argc, char **argv);
int cmd_image(int argc, char **argv);
int cmd_builder(int argc, char **argv);
int cmd_system(int argc, char **argv);
int cmd_save(int argc, char **argv);
int cmd_load(int argc, char **argv);
int cmd_export(int argc, char **argv);

#endif
