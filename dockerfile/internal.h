/* Shared pieces of the dockerfile module; not part of its interface. */
#ifndef KILN_DOCKERFILE_INTERNAL_H
#define KILN_DOCKERFILE_INTERNAL_H

#include "dockerfile/unicode.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/strbuf.h"

/* Owns every allocation of a parse tree or typed file: one free releases it
 * all.  Each allocation is its own malloc, so ASan sees overruns. */
struct df_pool {
    void **ptrs;
    size_t n;
    size_t cap;
};

struct df_pool *pool_new(void);
void pool_free(struct df_pool *pool);
void *pool_alloc(struct df_pool *pool, size_t n);           /* zeroed */
void *pool_adopt(struct df_pool *pool, void *p);            /* takes a malloc'ed p */
char *pool_strndup(struct df_pool *pool, const char *s, size_t n);
char *pool_strdup(struct df_pool *pool, const char *s);
/* Copies a NULL-terminated vector (and its strings) into the pool. */
char **pool_strv(struct df_pool *pool, char *const *v);

/* ---- UTF-8 as Go decodes it ------------------------------------------ */

#define RUNE_ERROR 0xFFFD

/* Decodes one rune at s (n > 0 bytes available): Go's utf8.DecodeRune
 * (invalid, overlong, surrogate or truncated sequences give RUNE_ERROR with
 * width 1). */
/* One UTF-8 sequence, Go's rules (unicode.c does the decoding). */
static inline uint32_t utf8_decode(const char *s, size_t n, size_t *ret_width)
{
    return uni_decode(s, n, ret_width);
}
/* Appends the UTF-8 encoding of r. */
void utf8_encode(struct strbuf *sb, uint32_t r);
/* Go's unicode.IsSpace. */
bool rune_is_space(uint32_t r);
/* Length of the run of Unicode white space at the start of s (Go's
 * bytes.TrimLeftFunc(s, unicode.IsSpace)). */
size_t utf8_space_prefix(const char *s, size_t n);
/* Length of s without trailing Unicode white space. */
size_t utf8_trim_right_len(const char *s, size_t n);
/* Go's unicode.IsSpace applied to one byte taken as a rune (BuildKit does
 * this in places: 0x85 and 0xA0 count). */
static inline bool byte_is_space_rune(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r') || c == 0x85 || c == 0xA0;
}
/* BuildKit's reWhitespace: [\t\v\f\r ]. */
static inline bool is_re_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r';
}
/* Go's strconv.IsPrint (Unicode 15 categories, dockerfile/unicode.h). */
bool rune_is_print(uint32_t r);
/* Go's strings.ToLower (Unicode simple case mapping, invalid bytes become
 * U+FFFD), appended to out. */
void go_to_lower(struct strbuf *out, const char *s, size_t n);
/* The instruction kind of a keyword, matched the way BuildKit does
 * (strings.ToLower(keyword) == "run" ...). */
int df_kind_lookup(const char *keyword, size_t n);

/* ---- the shell-word splitter used to find heredocs --------------------- */

/* BuildKit's shell.Lex ProcessWords over `s` with an empty environment,
 * escape '\\' and SkipUnsetEnv; raw_quotes/raw_escapes keep quotes and
 * escapes in the words.  Returns 0 and the words, or -1 when the text does
 * not lex (unterminated quote, bad ${...}); *ret_msg then says why. */
int shellwords_split(const char *s, size_t n, bool raw_quotes, bool raw_escapes, char ***ret,
                     const char **ret_msg);

/* Levenshtein distance, capped: returns cap + 1 when larger. */
size_t df_edit_distance(const char *a, const char *b, size_t cap);
/* The closest candidate (case-insensitive) within distance 2, or NULL. */
const char *df_suggest(const char *word, const char *const *candidates, size_t n);

#endif
