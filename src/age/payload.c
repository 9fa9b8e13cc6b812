/*
 * src/age/payload.c - STREAM chunks and the header MAC (age.md §4, §5).
 *
 * Implementation notes: the chunk nonce is the 11-byte big-endian counter
 * followed by the final flag (0x01 on the last chunk only). One cipher
 * context is keyed once per file; each chunk re-initialises only the nonce.
 */
#include "age/payload.h"
#include "strongbox/memory.h"
#include "core/crypto.h"
#include "core/error.h"

#include <string.h>

int
sbx_age__header_mac(uint8_t mac[32], const uint8_t file_key[SBX_AGE_FILE_KEY_LEN],
                    const uint8_t *header, size_t len)
{
    uint8_t key[32];
    int err = sbx__hkdf_sha256(key, file_key, SBX_AGE_FILE_KEY_LEN, NULL, 0, "header");
    if (err == 0)
        err = sbx__hmac_sha256(mac, key, header, len);
    SBX_WIPE_BUF(key);
    return err;
}

int
sbx_age__payload_ctx(EVP_CIPHER_CTX **out, const uint8_t file_key[SBX_AGE_FILE_KEY_LEN],
                     const uint8_t nonce[SBX_AGE_NONCE_LEN], bool enc)
{
    uint8_t key[32];
    int err;
    *out = NULL;
    if ((err = sbx__hkdf_sha256(key, file_key, SBX_AGE_FILE_KEY_LEN, nonce, SBX_AGE_NONCE_LEN,
                                "payload")) < 0)
        return err;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL ||
        EVP_CipherInit_ex2(ctx, sbx__chacha20_poly1305(), key, NULL, enc ? 1 : 0, NULL) != 1) {
        EVP_CIPHER_CTX_free(ctx);
        err = sbx__error_crypto("payload cipher set-up");
    } else {
        *out = ctx;
    }
    SBX_WIPE_BUF(key);
    return err;
}

static void
chunk_nonce(uint8_t nonce[12], uint64_t counter, bool final)
{
    memset(nonce, 0, 12);
    for (int i = 0; i < 8; i++)
        nonce[10 - i] = (uint8_t)(counter >> (8 * i));
    nonce[11] = final ? 1 : 0;
}

int
sbx_age__chunk_seal(EVP_CIPHER_CTX *ctx, uint8_t *out, const uint8_t *in, size_t len,
                    uint64_t counter, bool final)
{
    uint8_t nonce[12];
    int n = 0, n2 = 0;
    chunk_nonce(nonce, counter, final);
    if (EVP_CipherInit_ex2(ctx, NULL, NULL, nonce, 1, NULL) != 1 ||
        EVP_CipherUpdate(ctx, out, &n, in, (int)len) != 1 ||
        EVP_CipherFinal_ex(ctx, out + n, &n2) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, SBX_AGE_TAG_LEN, out + len) != 1)
        return sbx__error_crypto("chunk encryption");
    return 0;
}

int
sbx_age__chunk_open(EVP_CIPHER_CTX *ctx, uint8_t *out, const uint8_t *in, size_t in_len,
                    uint64_t counter, bool final)
{
    uint8_t nonce[12];
    size_t len = in_len - SBX_AGE_TAG_LEN;
    int n = 0, n2 = 0;
    chunk_nonce(nonce, counter, final);
    if (EVP_CipherInit_ex2(ctx, NULL, NULL, nonce, 0, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, SBX_AGE_TAG_LEN, (void *)(in + len)) != 1 ||
        EVP_CipherUpdate(ctx, out, &n, in, (int)len) != 1)
        return sbx__error_crypto("chunk decryption");
    if (EVP_CipherFinal_ex(ctx, out + n, &n2) != 1) {
        sbx_wipe(out, len);
        return SBX_EAUTH;
    }
    return 0;
}
