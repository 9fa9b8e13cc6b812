/*
 * src/age/payload.h - the STREAM payload construction and the header MAC
 * (internal, shared by the encryptor and the decryptor).
 */
#ifndef SBX_AGE_PAYLOAD_H
#define SBX_AGE_PAYLOAD_H

#include "strongbox/age.h"

#include <openssl/evp.h>

#define SBX_AGE_NONCE_LEN 16
#define SBX_AGE_TAG_LEN   16

/* HMAC key = HKDF(file_key, "", "header"); mac = HMAC(key, header bytes). */
int sbx_age__header_mac(uint8_t mac[32], const uint8_t file_key[SBX_AGE_FILE_KEY_LEN],
                        const uint8_t *header, size_t len);

/*
 * A cipher context keyed with HKDF(file_key, salt = nonce, "payload").
 * enc selects sealing or opening.
 */
int sbx_age__payload_ctx(EVP_CIPHER_CTX **out, const uint8_t file_key[SBX_AGE_FILE_KEY_LEN],
                         const uint8_t nonce[SBX_AGE_NONCE_LEN], bool enc);

/* Seal chunk number counter: out gets len + 16 bytes. */
int sbx_age__chunk_seal(EVP_CIPHER_CTX *ctx, uint8_t *out, const uint8_t *in, size_t len,
                        uint64_t counter, bool final);

/*
 * Open chunk number counter (in_len >= 16): out gets in_len - 16 bytes,
 * released only when the tag verifies. Returns 0, SBX_EAUTH (out wiped) or
 * SBX_ECRYPTO.
 */
int sbx_age__chunk_open(EVP_CIPHER_CTX *ctx, uint8_t *out, const uint8_t *in, size_t in_len,
                        uint64_t counter, bool final);

/*
 * The encryptor with a caller-chosen file key and payload nonce (the public
 * constructor draws both from the CSPRNG). For tests that compare the
 * payload bytes of serial and parallel runs; never reuse a key and nonce.
 */
int sbx_age__encryptor_new_keyed(sbx_sink **out, sbx_sink *dst, sbx_recipient *const *recipients,
                                 size_t count, const sbx_age_encrypt_options *opts,
                                 const uint8_t file_key[SBX_AGE_FILE_KEY_LEN],
                                 const uint8_t nonce[SBX_AGE_NONCE_LEN]);

#endif
