/*
 * src/core/aead.c - AES-GCM (128/192/256) and ChaCha20-Poly1305 over whole buffers
 * (see strongbox/aead.h).
 *
 * Implementation notes: a context is one EVP_CIPHER_CTX keyed once; each
 * call re-initialises only the nonce and the direction (EVP_CipherInit_ex2
 * with a NULL cipher and key keeps the key schedule, and both AEADs use the
 * same schedule to encrypt and to decrypt). On decryption the plaintext is
 * written as it is decrypted, then wiped unless EVP_CipherFinal_ex confirms
 * the tag: the caller sees 0 only with verified bytes.
 */
#include "strongbox/aead.h"
#include "core/crypto.h"
#include "core/error.h"
#include "strongbox/memory.h"

#include <limits.h>
#include <stdlib.h>
#include <pthread.h>

#include <openssl/err.h>
#include <openssl/evp.h>

struct sbx_aead {
    EVP_CIPHER_CTX *ctx;
    const char *name; // for messages
};

static pthread_once_t gcm_once = PTHREAD_ONCE_INIT;
static EVP_CIPHER *aes_gcm[3]; // 128, 192, 256

static void
fetch_gcm(void)
{
    aes_gcm[0] = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
    aes_gcm[1] = EVP_CIPHER_fetch(NULL, "AES-192-GCM", NULL);
    aes_gcm[2] = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
}

static const char *
name_of(sbx_aead_alg alg)
{
    switch (alg) {
    case SBX_AEAD_AES_256_GCM:
        return "AES-256-GCM";
    case SBX_AEAD_CHACHA20_POLY1305:
        return "ChaCha20-Poly1305";
    case SBX_AEAD_AES_128_GCM:
        return "AES-128-GCM";
    case SBX_AEAD_AES_192_GCM:
        return "AES-192-GCM";
    }
    return NULL;
}

/* see strongbox/aead.h */
size_t
sbx_aead_key_len(sbx_aead_alg alg)
{
    switch (alg) {
    case SBX_AEAD_AES_128_GCM:
        return 16;
    case SBX_AEAD_AES_192_GCM:
        return 24;
    default:
        return name_of(alg) != NULL ? 32 : 0;
    }
}

static const EVP_CIPHER *
cipher_of(sbx_aead_alg alg)
{
    if (alg == SBX_AEAD_CHACHA20_POLY1305)
        return sbx__chacha20_poly1305();
    pthread_once(&gcm_once, fetch_gcm);
    return aes_gcm[sbx_aead_key_len(alg) / 8 - 2];
}

/* see strongbox/aead.h */
int
sbx_aead_new(sbx_aead **out, sbx_aead_alg alg, const uint8_t key[32])
{
    if (out == NULL)
        return sbx__error(SBX_EINVAL, "aead: NULL output");
    *out = NULL;
    if (key == NULL || name_of(alg) == NULL)
        return sbx__error(SBX_EINVAL, "aead: NULL key or unknown algorithm %d", (int)alg);
    sbx_aead *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return sbx__error_nomem();
    a->name = name_of(alg);
    const EVP_CIPHER *cipher = cipher_of(alg);
    a->ctx = cipher != NULL ? EVP_CIPHER_CTX_new() : NULL;
    if (a->ctx == NULL || EVP_CipherInit_ex2(a->ctx, cipher, key, NULL, 1, NULL) != 1) {
        int err = sbx__error_crypto(a->name);
        sbx_aead_free(a);
        return err;
    }
    *out = a;
    return 0;
}

/* see strongbox/aead.h */
void
sbx_aead_free(sbx_aead *a)
{
    if (a == NULL)
        return;
    EVP_CIPHER_CTX_free(a->ctx); // providers cleanse their key schedule on free
    free(a);
}

/* Set the nonce and direction, then feed the AAD parts. */
static bool
start(sbx_aead *a, int enc, const uint8_t nonce[12], const sbx_aead_part *aad, size_t naad)
{
    int n = 0;
    if (EVP_CipherInit_ex2(a->ctx, NULL, NULL, nonce, enc, NULL) != 1)
        return false;
    for (size_t i = 0; i < naad; i++) {
        if (aad[i].len > 0 && EVP_CipherUpdate(a->ctx, NULL, &n, aad[i].ptr, (int)aad[i].len) != 1)
            return false;
    }
    return true;
}

static int
check_args(const sbx_aead *a, const void *out, const void *tag, const uint8_t *nonce,
           const sbx_aead_part *aad, size_t naad, const void *in, size_t len)
{
    if (a == NULL || tag == NULL || nonce == NULL || (naad > 0 && aad == NULL) ||
        (len > 0 && (out == NULL || in == NULL)))
        return sbx__error(SBX_EINVAL, "aead: NULL argument");
    if (len > INT_MAX)
        return sbx__error(SBX_EINVAL, "aead: %zu bytes is more than one call takes", len);
    for (size_t i = 0; i < naad; i++) {
        if (aad[i].len > INT_MAX || (aad[i].len > 0 && aad[i].ptr == NULL))
            return sbx__error(SBX_EINVAL, "aead: associated data part %zu is invalid", i);
    }
    return 0;
}

/* see strongbox/aead.h */
int
sbx_aead_seal(sbx_aead *a, uint8_t *out, uint8_t tag[16], const uint8_t nonce[12],
              const sbx_aead_part *aad, size_t naad, const uint8_t *in, size_t len)
{
    uint8_t fin[16];
    int n = 0, err = check_args(a, out, tag, nonce, aad, naad, in, len);
    if (err < 0) {
        if (out != NULL)
            sbx_wipe(out, len); // it may hold plaintext (sealing in place)
        return err;
    }
    if (start(a, 1, nonce, aad, naad) &&
        (len == 0 || (EVP_CipherUpdate(a->ctx, out, &n, in, (int)len) == 1 && (size_t)n == len)) &&
        EVP_CipherFinal_ex(a->ctx, fin, &n) == 1 &&
        EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_AEAD_GET_TAG, SBX_AEAD_TAG_LEN, tag) == 1)
        return 0;
    sbx_wipe(out, len);
    sbx_wipe(tag, SBX_AEAD_TAG_LEN);
    return sbx__error_crypto(a->name);
}

/* see strongbox/aead.h */
int
sbx_aead_open(sbx_aead *a, uint8_t *out, const uint8_t nonce[12], const sbx_aead_part *aad,
              size_t naad, const uint8_t *in, size_t len, const uint8_t tag[16])
{
    uint8_t fin[16];
    int n = 0, err = check_args(a, out, tag, nonce, aad, naad, in, len);
    if (err < 0) {
        if (out != NULL)
            sbx_wipe(out, len);
        return err;
    }
    bool ok =
        start(a, 0, nonce, aad, naad) &&
        EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_AEAD_SET_TAG, SBX_AEAD_TAG_LEN, (void *)tag) == 1 &&
        (len == 0 || (EVP_CipherUpdate(a->ctx, out, &n, in, (int)len) == 1 && (size_t)n == len));
    if (ok && EVP_CipherFinal_ex(a->ctx, fin, &n) == 1)
        return 0;
    sbx_wipe(out, len);
    if (!ok)
        return sbx__error_crypto(a->name);
    ERR_clear_error();
    return sbx__error(SBX_EAUTH, "authentication tag mismatch");
}

/* see strongbox/aead.h */
int
sbx_aead_gcm_seal(uint8_t *out, uint8_t tag[16], const uint8_t key[32], const uint8_t nonce[12],
                  const sbx_aead_part *aad, size_t naad, const uint8_t *in, size_t len)
{
    sbx_aead *a = NULL;
    int err = sbx_aead_new(&a, SBX_AEAD_AES_256_GCM, key);
    if (err == 0)
        err = sbx_aead_seal(a, out, tag, nonce, aad, naad, in, len);
    sbx_aead_free(a);
    return err;
}

/* see strongbox/aead.h */
int
sbx_aead_gcm_open(uint8_t *out, const uint8_t key[32], const uint8_t nonce[12],
                  const sbx_aead_part *aad, size_t naad, const uint8_t *in, size_t len,
                  const uint8_t tag[16])
{
    sbx_aead *a = NULL;
    int err = sbx_aead_new(&a, SBX_AEAD_AES_256_GCM, key);
    if (err == 0)
        err = sbx_aead_open(a, out, nonce, aad, naad, in, len, tag);
    else if (out != NULL)
        sbx_wipe(out, len);
    sbx_aead_free(a);
    return err;
}
