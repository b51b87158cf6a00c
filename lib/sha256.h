/* SHA-256 through libcrypto's EVP interface, with "sha256:<hex>" helpers. */
#ifndef KILN_SHA256_H
#define KILN_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHA256_HEX_LEN 64
/* "sha256:" + 64 hex + NUL */
#define DIGEST_STR_LEN 72

struct sha256 {
    void *ctx; /* EVP_MD_CTX */
};

void sha256_init(struct sha256 *h);
void sha256_update(struct sha256 *h, const void *data, size_t len);
/* Writes "sha256:<hex>" into out (DIGEST_STR_LEN bytes) and frees the state. */
void sha256_final_digest(struct sha256 *h, char out[DIGEST_STR_LEN]);
void sha256_final_raw(struct sha256 *h, uint8_t out[32]);
/* Frees the state without a result (for error paths). */
void sha256_abort(struct sha256 *h);

void sha256_digest_of(const void *data, size_t len, char out[DIGEST_STR_LEN]);
void sha256_hex(const uint8_t raw[32], char out[SHA256_HEX_LEN + 1]);

/* True for "sha256:" followed by exactly 64 lower-case hex digits. */
bool digest_is_valid(const char *digest);
/* The hex part of a valid digest (pointer into it). */
const char *digest_hex(const char *digest);

#endif
