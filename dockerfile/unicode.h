/* UTF-8 and Unicode classes with Go's semantics, for the parts of kiln that
 * must agree with BuildKit (a Go program) byte for byte: the word expander
 * and the .dockerignore matcher.
 *
 * Decoding follows Go's utf8.DecodeRune: an invalid or truncated sequence
 * decodes as U+FFFD with width 1.  Classes follow Go's unicode package
 * (IsSpace = White_Space, IsLetter = category L, IsDigit = category Nd), with
 * the general categories of Unicode 15.0 (unicode_table.h). */
#ifndef KILN_UNICODE_H
#define KILN_UNICODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UNI_ERROR 0xFFFDu
#define UNI_MAX 0x10FFFFu

/* Decodes the rune at s[0..len).  len must be > 0. */
uint32_t uni_decode(const char *s, size_t len, size_t *ret_width);
/* Decodes the rune that ends at s[len) (Go's DecodeLastRune); len > 0. */
uint32_t uni_decode_last(const char *s, size_t len, size_t *ret_width);
/* Encodes r (U+FFFD for surrogates and values above U+10FFFF); returns the
 * number of bytes written to out (1..4). */
size_t uni_encode(uint32_t r, char out[4]);

bool uni_is_space(uint32_t r);
bool uni_is_letter(uint32_t r);
bool uni_is_digit(uint32_t r);

/* General categories, as Go names them ("Lu", "Nd", ...), or the one-letter
 * groups ("L", "N", ...).  Returns false when `name` is not a category. */
bool uni_category_known(const char *name, size_t len);
bool uni_in_category(uint32_t r, const char *name, size_t len);

#endif
