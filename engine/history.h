/* Image history the way BuildKit writes it: created_by texts (Go's %q and
 * %v of string slices, Go durations) and the filling-in of created times. */
#ifndef KILN_HISTORY_H
#define KILN_HISTORY_H

#include <stdint.h>

#include "layers/image.h"
#include "lib/strbuf.h"

#define HISTORY_COMMENT "buildkit.dockerfile.v0"

/* `["a" "b"]` (fmt %q of a []string). */
void go_quote_strv(struct strbuf *out, char *const *v);
/* `[a b]` (fmt %v of a []string). */
void go_plain_strv(struct strbuf *out, char *const *v);
/* Go's time.Duration.String(): "30s", "1m30s", "1.5s", "500ms", "0s". */
void go_duration(struct strbuf *out, int64_t ns);

/* Appends a history entry with BuildKit's comment; created may be NULL
 * (filled in by history_fill_created). */
void history_add(struct image_config *c, const char *created_by, bool with_layer,
                 const char *created);

/* BuildKit's normalisation: history entries without a time take the first
 * new layer's time (or the previous layer's); the image's time is the last
 * entry's.  first_new: index of the first entry this build added. */
void history_fill_created(struct image_config *c, size_t first_new);

/* Go's strconv.QuoteRune (fmt's %q of an integer): 'A', '\x04', '\u00a0'. */
void go_quote_rune(struct strbuf *out, int64_t r);

/* Sets every history time later than epoch (or missing) to epoch. */
void history_clamp_created(struct image_config *c, int64_t epoch);

#endif
