/*
 * src/core/crypto.h - thin wrappers over OpenSSL 3 for the primitives the
 * formats need (internal). Every function returns 0 or a negative SBX_E*
 * code with the error recorded; outputs are wiped on failure.
 */
#ifndef SBX_CORE_CRYPTO_H
#define SBX_CORE_CRYPTO_H

#include "strongbox/common.h"
#include "strongbox/kdf.h"

#include <openssl/evp.h>

/* The fetched ChaCha20-Poly1305 implementation (fetched once, never freed). */
EVP_CIPHER *sbx__chacha20_poly1305(void);

/* HKDF-SHA-256, HMAC-SHA-256 and scrypt are public (strongbox/kdf.h); internal names: */
#define sbx__hkdf_sha256 sbx_hkdf_sha256
#define sbx__hmac_sha256 sbx_hmac_sha256
#define sbx__scrypt      sbx_scrypt

/*
 * ChaCha20-Poly1305 with an all-zero nonce and no AAD (age stanza bodies).
 * seal: out gets len + 16 bytes. open: in_len >= 16, out gets in_len - 16
 * bytes; returns SBX_EAUTH on tag mismatch (out wiped).
 */
int sbx__seal_zero_nonce(uint8_t *out, const uint8_t key[32], const uint8_t *in, size_t len);
int sbx__open_zero_nonce(uint8_t *out, const uint8_t key[32], const uint8_t *in, size_t in_len);

/* X25519 of scalar and the base point. */
int sbx__x25519_base(uint8_t out[32], const uint8_t scalar[32]);

/*
 * X25519(scalar, point). Returns SBX_EHEADER when the result is all zeros
 * (the point has low order), so a malicious share cannot force a known key.
 */
int sbx__x25519(uint8_t out[32], const uint8_t scalar[32], const uint8_t point[32]);

/*
 * The numbers of an RSA key, which OpenSSL loads without checking: an odd
 * modulus and an odd public exponent from 3 to 2^32-1 (with e = 1 RSA does
 * nothing: what is encrypted to the key is in the clear and anyone can make
 * its signatures). 0, SBX_EFORMAT naming the fault, SBX_EUNSUPPORTED for a
 * larger exponent. The size is the caller's policy.
 */
int sbx__rsa_check_numbers(const EVP_PKEY *pkey);

#endif
