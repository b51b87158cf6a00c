#include "sha256.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sha256_init(struct sha256 *h)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
        fputs("kiln: error: libcrypto: cannot initialise SHA-256\n", stderr);
        abort();
    }
    h->ctx = c;
}

void sha256_update(struct sha256 *h, const void *data, size_t len)
{
    if (len)
        EVP_DigestUpdate(h->ctx, data, len);
}

void sha256_final_raw(struct sha256 *h, uint8_t out[32])
{
    unsigned int n = 0;
    EVP_DigestFinal_ex(h->ctx, out, &n);
    EVP_MD_CTX_free(h->ctx);
    h->ctx = NULL;
}

void sha256_hex(const uint8_t raw[32], char out[SHA256_HEX_LEN + 1])
{
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hx[raw[i] >> 4];
        out[2 * i + 1] = hx[raw[i] & 15];
    }
    out[SHA256_HEX_LEN] = '\0';
}

void sha256_final_digest(struct sha256 *h, char out[DIGEST_STR_LEN])
{
    uint8_t raw[32];
    sha256_final_raw(h, raw);
    memcpy(out, "sha256:", 7);
    sha256_hex(raw, out + 7);
}

void sha256_abort(struct sha256 *h)
{
    if (h->ctx)
        EVP_MD_CTX_free(h->ctx);
    h->ctx = NULL;
}

void sha256_digest_of(const void *data, size_t len, char out[DIGEST_STR_LEN])
{
    struct sha256 h;
    sha256_init(&h);
    sha256_update(&h, data, len);
    sha256_final_digest(&h, out);
}

bool digest_is_valid(const char *d)
{
    if (!d || strncmp(d, "sha256:", 7) != 0)
        return false;
    d += 7;
    size_t n = 0;
    for (; d[n]; n++)
        if (!((d[n] >= '0' && d[n] <= '9') || (d[n] >= 'a' && d[n] <= 'f')))
            return false;
    return n == SHA256_HEX_LEN;
}

const char *digest_hex(const char *digest)
{
    return digest + 7;
}
