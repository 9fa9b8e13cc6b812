/*
 * strongbox/kdf.h - key derivation and message authentication: HKDF-SHA-256,
 * HMAC-SHA-256 and scrypt, the one implementation the formats (age, records,
 * seal) and the key server share. OpenSSL 3 does the work; the algorithms
 * are fetched once per process.
 *
 * Every function writes exactly 32 bytes and returns 0, or SBX_ECRYPTO with
 * the output wiped (OpenSSL's reason in the message). Keys and passphrases
 * are read only; the caller wipes its copies.
 */
#ifndef STRONGBOX_KDF_H
#define STRONGBOX_KDF_H

#include "strongbox/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief HKDF-SHA-256 (RFC 5869): extract with salt, expand with info to 32 bytes.
 * @param out receives 32 bytes.
 * @param ikm input key material, ikm_len bytes (may be empty: NULL and 0).
 * @param salt salt_len bytes; empty (NULL, 0) means a string of zeros (RFC 5869 §2.2).
 * @param info a NUL-terminated label, used without its NUL.
 * @return 0 or SBX_ECRYPTO (out wiped).
 */
SBX_EXTERN int sbx_hkdf_sha256(uint8_t out[32], const uint8_t *ikm, size_t ikm_len,
                               const uint8_t *salt, size_t salt_len, const char *info);

/**
 * @brief HMAC-SHA-256 (RFC 2104) of len bytes of data under a 32-byte key.
 * @param out receives the 32-byte MAC; compare MACs with sbx_equal(), never memcmp.
 * @return 0 or SBX_ECRYPTO (out wiped).
 */
SBX_EXTERN int sbx_hmac_sha256(uint8_t out[32], const uint8_t key[32], const uint8_t *data,
                               size_t len);

/**
 * @brief scrypt (RFC 7914) with r = 8, p = 1 and N = 2^log_n, 32 bytes out.
 * @param pass the passphrase, pass_len bytes (may be empty).
 * @param log_n the work factor; memory used is 128 * 8 * 2^log_n bytes (log_n
 *        18 takes 256 MiB). The caller bounds it for untrusted input.
 * @return 0 or SBX_ECRYPTO (out wiped; also when the memory is not available).
 */
SBX_EXTERN int sbx_scrypt(uint8_t out[32], const uint8_t *pass, size_t pass_len,
                          const uint8_t *salt, size_t salt_len, unsigned log_n);

#ifdef __cplusplus
}
#endif
#endif
