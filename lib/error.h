/* One error type for the whole program: a code (errno or 0) and a message.
 * Functions that can fail in several ways return int (0 ok, <0 failure) and
 * take `struct kiln_error **err` last.  Only cmd/ prints errors. */
#ifndef KILN_ERROR_H
#define KILN_ERROR_H

#include <stdarg.h>

struct kiln_error {
    int code;   /* errno value, or 0 when there is no system cause */
    int status; /* suggested exit status (0 = default for the command) */
    char *msg;
};

/* Sets *err (if err is not NULL) and returns -1.  A message already present
 * is replaced. */
int kiln_error_set(struct kiln_error **err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int kiln_error_setv(struct kiln_error **err, int code, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* Like kiln_error_set with an explicit exit status. */
int kiln_error_set_status(struct kiln_error **err, int status, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Prefixes the message with "context: " and returns -1. */
int kiln_error_wrap(struct kiln_error **err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void kiln_error_free(struct kiln_error **err);

/* The full text: "msg: strerror(code)" (or msg alone).  Caller frees. */
char *kiln_error_text(const struct kiln_error *err);

/* Documented exit codes (README "Exit codes"). */
enum kiln_exit {
    KILN_EXIT_OK = 0,
    KILN_EXIT_FAILURE = 1,   /* build failed, bad input, registry error */
    KILN_EXIT_USAGE = 2,     /* unknown flag, missing argument */
    KILN_EXIT_RUN_FAILED = 125, /* kiln run could not start the container */
    KILN_EXIT_NOT_EXEC = 126,   /* command found but not executable */
    KILN_EXIT_NOT_FOUND = 127,  /* command not found */
    KILN_EXIT_SIGINT = 130,
    KILN_EXIT_SIGTERM = 143,
};

#endif
