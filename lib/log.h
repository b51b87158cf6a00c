/* Messages for people, on stderr.  Modules outside cmd/ only use log_debug;
 * cmd/ reports warnings and errors.  Warnings are kept so that cmd/ can
 * repeat them at the end of a build. */
#ifndef KILN_LOG_H
#define KILN_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARNING = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* Warnings printed so far (NULL-terminated; owned by the logger). */
char *const *log_warnings(void);

#endif
