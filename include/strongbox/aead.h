/*
 * strongbox/aead.h - authenticated encryption of whole buffers: AES-256-GCM
 * (and ChaCha20-Poly1305), the one implementation every format uses.
 *
 * Every user of AES-256-GCM in Strongbox seals a buffer it holds in memory
 * under a 32-byte key and a 12-byte nonce, binds some associated data (AAD)
 * and stores the 16-byte tag next to the ciphertext. Only the framing
 * differs (where the nonce and the tag go, what the AAD is), so that stays
 * with each format and the cipher call lives here:
 *
 *     tmpfile blocks   nonce[12] || ct || tag[16], AAD = file id || index
 *     records          header (nonce inside) || ct || tag[16],
 *                      AAD = header || u32be(context length) || context
 *     key server       nonce[12] || ct || tag[16], AAD = key id, version...
 *
 * Two ways to call it:
 *
 *   - one shot, sbx_aead_gcm_seal() / sbx_aead_gcm_open(): a fresh cipher
 *     context per call, for a value sealed now and then (a record, a key);
 *   - a keyed context, sbx_aead_new() then sbx_aead_seal() / sbx_aead_open()
 *     any number of times then sbx_aead_free(): the key schedule is computed
 *     once, for many small buffers under one key (4 KiB file blocks).
 *
 * The AAD is a list of parts (sbx_aead_part) authenticated as their
 * concatenation, so a caller never copies its header and context into one
 * buffer. A part of length 0 may have a NULL pointer.
 *
 * Decryption writes plaintext into the caller's buffer, but the call
 * returns 0 only once the tag has verified; on SBX_EAUTH the whole output is
 * wiped, so no unauthenticated byte is ever left for the caller to use.
 * Nonces are the caller's: never seal twice under one key with one nonce
 * (use a counter, or 96 random bits for fewer than 2^32 messages per key).
 */
#ifndef STRONGBOX_AEAD_H
#define STRONGBOX_AEAD_H

#include "strongbox/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SBX_AEAD_KEY_LEN   32 /**< bytes of key (AES-256, ChaCha20) */
#define SBX_AEAD_NONCE_LEN 12 /**< bytes of nonce */
#define SBX_AEAD_TAG_LEN   16 /**< bytes of authentication tag */

/**
 * The algorithms: same nonce and tag sizes; the key is 32 bytes except for
 * AES-128-GCM (16) and AES-192-GCM (24), which exist for formats that chose
 * them (the Python EphemeralFile's key_size) and read only that many bytes.
 */
typedef enum sbx_aead_alg {
    SBX_AEAD_AES_256_GCM = 0,       /**< the default; fastest with AES-NI/VAES */
    SBX_AEAD_CHACHA20_POLY1305 = 1, /**< RFC 8439; constant time without AES hardware */
    SBX_AEAD_AES_128_GCM = 2,       /**< 16-byte key */
    SBX_AEAD_AES_192_GCM = 3        /**< 24-byte key */
} sbx_aead_alg;

/** @brief The key length of alg in bytes (16, 24 or 32), or 0 for an unknown alg. */
SBX_EXTERN size_t sbx_aead_key_len(sbx_aead_alg alg);

/** One piece of associated data; the AAD is the concatenation of the parts in order. */
typedef struct sbx_aead_part {
    const void *ptr; /**< may be NULL when len is 0 */
    size_t len;
} sbx_aead_part;

/** A key schedule for one key, reused across calls (opaque; not shared between threads). */
typedef struct sbx_aead sbx_aead;

/**
 * @brief Make a context for key: the key schedule is computed once here.
 * @param out receives the context (NULL on error); free it with sbx_aead_free().
 * @param alg one of sbx_aead_alg.
 * @param key sbx_aead_key_len(alg) bytes (32 unless AES-128/192); the caller keeps its own copy
 * (the context holds only OpenSSL's key schedule, cleansed when freed).
 * @return 0, SBX_EINVAL (unknown alg, NULL argument), SBX_ENOMEM or SBX_ECRYPTO.
 */
SBX_EXTERN int sbx_aead_new(sbx_aead **out, sbx_aead_alg alg, const uint8_t key[32]);

/** @brief Free a context, cleansing its key schedule. NULL is allowed. */
SBX_EXTERN void sbx_aead_free(sbx_aead *a);

/**
 * @brief Encrypt len bytes of in into out and write the tag.
 * @param out len bytes; may be in itself (in place) but must not otherwise overlap it.
 * @param tag receives 16 bytes; may point just past the ciphertext (out + len).
 * @param nonce 12 bytes, never used before with this key.
 * @param aad naad parts of associated data (aad may be NULL when naad is 0).
 * @return 0, SBX_EINVAL (len or a part over INT_MAX bytes, NULL argument) or
 *         SBX_ECRYPTO; on error out and tag are wiped.
 */
SBX_EXTERN int sbx_aead_seal(sbx_aead *a, uint8_t *out, uint8_t tag[16], const uint8_t nonce[12],
                             const sbx_aead_part *aad, size_t naad, const uint8_t *in, size_t len);

/**
 * @brief Decrypt len bytes of in into out and verify the tag.
 * @param out len bytes; may be in itself (in place) but must not otherwise overlap it.
 * @param tag the 16 bytes stored with the ciphertext (compared in constant time by OpenSSL).
 * @return 0 once the tag verifies; SBX_EAUTH when it does not ("authentication
 *         tag mismatch": wrong key, nonce, AAD, or modified data), SBX_EINVAL
 *         or SBX_ECRYPTO. On any error all len bytes of out are wiped.
 */
SBX_EXTERN int sbx_aead_open(sbx_aead *a, uint8_t *out, const uint8_t nonce[12],
                             const sbx_aead_part *aad, size_t naad, const uint8_t *in, size_t len,
                             const uint8_t tag[16]) SBX_WARN_UNUSED;

/**
 * @brief One-shot AES-256-GCM encryption: sbx_aead_seal() with a context made
 *        and freed for this call.
 * @param key 32 bytes. Other parameters and return codes as sbx_aead_seal().
 */
SBX_EXTERN int sbx_aead_gcm_seal(uint8_t *out, uint8_t tag[16], const uint8_t key[32],
                                 const uint8_t nonce[12], const sbx_aead_part *aad, size_t naad,
                                 const uint8_t *in, size_t len);

/**
 * @brief One-shot AES-256-GCM decryption: sbx_aead_open() with a context made
 *        and freed for this call.
 * @param key 32 bytes. Other parameters and return codes as sbx_aead_open():
 *        SBX_EAUTH with out wiped when the tag does not verify.
 */
SBX_EXTERN int sbx_aead_gcm_open(uint8_t *out, const uint8_t key[32], const uint8_t nonce[12],
                                 const sbx_aead_part *aad, size_t naad, const uint8_t *in,
                                 size_t len, const uint8_t tag[16]) SBX_WARN_UNUSED;

#ifdef __cplusplus
}
#endif
#endif
