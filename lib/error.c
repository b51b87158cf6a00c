#include "error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

int kiln_error_setv(struct kiln_error **err, int code, const char *fmt, va_list ap)
{
    if (!err)
        return -1;
    char *msg = xvasprintf(fmt, ap);
    if (*err) {
        free((*err)->msg);
    } else {
        *err = xcalloc(1, sizeof(**err));
    }
    (*err)->code = code;
    (*err)->msg = msg;
    return -1;
}

int kiln_error_set(struct kiln_error **err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kiln_error_setv(err, code, fmt, ap);
    va_end(ap);
    return -1;
}

int kiln_error_set_status(struct kiln_error **err, int status, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kiln_error_setv(err, code, fmt, ap);
    va_end(ap);
    if (err && *err)
        (*err)->status = status;
    return -1;
}

int kiln_error_wrap(struct kiln_error **err, const char *fmt, ...)
{
    if (!err || !*err)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    char *ctx = xvasprintf(fmt, ap);
    va_end(ap);
    char *msg = xasprintf("%s: %s", ctx, (*err)->msg);
    free(ctx);
    free((*err)->msg);
    (*err)->msg = msg;
    return -1;
}

void kiln_error_free(struct kiln_error **err)
{
    if (!err || !*err)
        return;
    free((*err)->msg);
    free(*err);
    *err = NULL;
}

char *kiln_error_text(const struct kiln_error *err)
{
    if (!err)
        return xstrdup("unknown error");
    if (err->code > 0)
        return xasprintf("%s: %s", err->msg, strerror(err->code));
    return xstrdup(err->msg);
}
