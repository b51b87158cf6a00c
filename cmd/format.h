/* Human-readable figures in docker's style. */
#ifndef KILN_FORMAT_H
#define KILN_FORMAT_H

#include <stdint.h>

/* "4.26MB" (decimal units, 3-4 significant digits); caller frees. */
char *format_size(uint64_t bytes);
/* "2 hours ago" for an RFC 3339 time; "N/A" if unknown; caller frees. */
char *format_ago(const char *rfc3339);
/* "2 hours" for seconds elapsed. */
char *format_duration(int64_t seconds);

#endif
