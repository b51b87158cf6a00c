#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "xalloc.h"

static enum log_level current = LOG_INFO;
static char **warnings;

void log_set_level(enum log_level level)
{
    current = level;
}

enum log_level log_get_level(void)
{
    return current;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level == LOG_WARNING && !warnings)
        warnings = strv_new();
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    if (level == LOG_WARNING)
        strv_push(&warnings, msg);
    if (level <= current) {
        static const char *const names[] = {"error: ", "warning: ", "", "debug: "};
        fprintf(stderr, "kiln: %s%s\n", names[level], msg);
    }
    free(msg);
}

char *const *log_warnings(void)
{
    return warnings;
}
