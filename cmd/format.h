/* Human-readable figures and table output in docker's style. */
#ifndef KILN_FORMAT_H
#define KILN_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cmd/template.h"
#include "lib/error.h"

/* "4.26MB": decimal units with 3 significant digits, as `docker images`
 * and `docker history` print sizes; caller frees. */
char *format_size(uint64_t bytes);
/* The same with 4 significant digits ("16.43MB"), as `docker system df`
 * and the prune commands print them. */
char *format_size4(uint64_t bytes);
/* "2 hours ago" for an RFC 3339 time; "N/A" if unknown; caller frees. */
char *format_ago(const char *rfc3339);
/* "2 hours" for seconds elapsed (docker's HumanDuration). */
char *format_duration(int64_t seconds);
/* "2024-01-15 10:30:00 +0000 UTC" (Go's time.String in the local zone);
 * "N/A" if unknown. */
char *format_time_local(const char *rfc3339);
/* Shortens s to at most max characters with a trailing "…" (docker's
 * stringutils.Ellipsis). */
char *format_ellipsis(const char *s, size_t max);

/* ---- tables ---------------------------------------------------------- */

/* Go's text/tabwriter as docker configures it (minwidth 10, padding 3):
 * cells end at '\t'; each column is as wide as its widest cell plus 3, and
 * at least 10; the last cell of a line is not padded. */
struct table {
    char **lines;
    size_t n, cap;
};

void table_add(struct table *t, const char *line); /* one line, no '\n' */
void table_flush(struct table *t, FILE *f);       /* prints and empties */

/* ---- --format ---------------------------------------------------------- */

/* A parsed --format: "table [TEMPLATE]", "json", or a template. */
struct output_format {
    bool table;      /* header line, tab-aligned */
    bool json;       /* "json": {{json .}} per item */
    struct template *tmpl;
};

/* Parses user (NULL or "" or "table" selects default_table, itself
 * "table ..."); `\t` and `\n` written literally become tabs and newlines,
 * as docker does. */
int output_format_parse(const char *user, const char *default_table, struct output_format *ret,
                        struct kiln_error **err);
void output_format_free(struct output_format *o);

/* Runs the format over items (and the header for tables) and prints to f.
 * header: a struct whose fields are the column titles. */
int output_format_print(const struct output_format *o, struct tval *header, struct tval **items,
                        size_t n, FILE *f, struct kiln_error **err);

#endif
