/*
 * src/core/crypto.c - OpenSSL 3 wrappers (see crypto.h).
 *
 * Implementation notes: algorithms are fetched once per process
 * (pthread_once) to keep per-file set-up cheap; contexts are per call.
 */
#include "core/crypto.h"
#include "strongbox/aead.h"
#include "core/error.h"
#include "strongbox/memory.h"

#include <pthread.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;
static EVP_CIPHER *chacha;
static EVP_KDF *hkdf, *scrypt_kdf;
static EVP_MAC *hmac;

static void
fetch_all(void)
{
    chacha = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
    hkdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    scrypt_kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
    hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

EVP_CIPHER *
sbx__chacha20_poly1305(void)
{
    pthread_once(&fetch_once, fetch_all);
    return chacha;
}

static int
kdf_derive(EVP_KDF *kdf, uint8_t *out, size_t out_len, const OSSL_PARAM *params, const char *what)
{
    int err = 0;
    EVP_KDF_CTX *ctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
    if (ctx == NULL || EVP_KDF_derive(ctx, out, out_len, params) != 1) {
        sbx_wipe(out, out_len);
        err = sbx__error_crypto(what);
    }
    EVP_KDF_CTX_free(ctx);
    return err;
}

/* see strongbox/kdf.h */
int
sbx_hkdf_sha256(uint8_t out[32], const uint8_t *ikm, size_t ikm_len, const uint8_t *salt,
                size_t salt_len, const char *info)
{
    OSSL_PARAM params[5], *p = params;
    static const uint8_t empty[1] = {0};
    pthread_once(&fetch_once, fetch_all);
    *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)(ikm_len ? ikm : empty),
                                             ikm_len);
    if (salt_len > 0)
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, strlen(info));
    *p = OSSL_PARAM_construct_end();
    return kdf_derive(hkdf, out, 32, params, "HKDF-SHA-256");
}

/* see strongbox/kdf.h */
int
sbx_hmac_sha256(uint8_t out[32], const uint8_t key[32], const uint8_t *data, size_t len)
{
    OSSL_PARAM params[2];
    size_t out_len = 0;
    int err = 0;
    pthread_once(&fetch_once, fetch_all);
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    EVP_MAC_CTX *ctx = hmac != NULL ? EVP_MAC_CTX_new(hmac) : NULL;
    if (ctx == NULL || EVP_MAC_init(ctx, key, 32, params) != 1 ||
        EVP_MAC_update(ctx, data, len) != 1 || EVP_MAC_final(ctx, out, &out_len, 32) != 1 ||
        out_len != 32) {
        sbx_wipe(out, 32);
        err = sbx__error_crypto("HMAC-SHA-256");
    }
    EVP_MAC_CTX_free(ctx);
    return err;
}

/* ChaCha20-Poly1305 with an all-zero nonce and no AAD (a key used once), through strongbox/aead.h.
 */
static int
aead_zero_nonce(uint8_t *out, const uint8_t key[32], const uint8_t *in, size_t len, uint8_t *tag,
                bool enc)
{
    static const uint8_t nonce[12] = {0};
    sbx_aead *a = NULL;
    int err = sbx_aead_new(&a, SBX_AEAD_CHACHA20_POLY1305, key);
    if (err == 0)
        err = enc ? sbx_aead_seal(a, out, tag, nonce, NULL, 0, in, len)
                  : sbx_aead_open(a, out, nonce, NULL, 0, in, len, tag);
    else
        sbx_wipe(out, len);
    sbx_aead_free(a);
    return err;
}

int
sbx__seal_zero_nonce(uint8_t *out, const uint8_t key[32], const uint8_t *in, size_t len)
{
    return aead_zero_nonce(out, key, in, len, out + len, true);
}

int
sbx__open_zero_nonce(uint8_t *out, const uint8_t key[32], const uint8_t *in, size_t in_len)
{
    uint8_t tag[16];
    if (in_len < 16)
        return sbx__error(SBX_EAUTH, "ciphertext shorter than its tag");
    memcpy(tag, in + in_len - 16, 16);
    return aead_zero_nonce(out, key, in, in_len - 16, tag, false);
}

int
sbx__x25519_base(uint8_t out[32], const uint8_t scalar[32])
{
    size_t len = 32;
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, scalar, 32);
    int ok = k != NULL && EVP_PKEY_get_raw_public_key(k, out, &len) == 1 && len == 32;
    EVP_PKEY_free(k);
    return ok ? 0 : sbx__error_crypto("X25519 public key");
}

int
sbx__x25519(uint8_t out[32], const uint8_t scalar[32], const uint8_t point[32])
{
    static const uint8_t zero[32] = {0};
    size_t len = 32;
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, scalar, 32);
    EVP_PKEY *peer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, point, 32);
    EVP_PKEY_CTX *ctx = k != NULL ? EVP_PKEY_CTX_new(k, NULL) : NULL;
    int ok = ctx != NULL && peer != NULL && EVP_PKEY_derive_init(ctx) == 1 &&
             EVP_PKEY_derive_set_peer(ctx, peer) == 1;
    /* OpenSSL refuses to output an all-zero secret: that is a low-order point. */
    int derived = ok ? EVP_PKEY_derive(ctx, out, &len) : 0;
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(peer);
    EVP_PKEY_free(k);
    if (!ok) {
        sbx_wipe(out, 32);
        return sbx__error_crypto("X25519");
    }
    if (derived != 1 || len != 32 || sbx_equal(out, zero, 32)) {
        sbx_wipe(out, 32);
        ERR_clear_error();
        return sbx__error(SBX_EHEADER, "X25519 share is a low-order point (all-zero shared "
                                       "secret): the file is malformed or malicious");
    }
    return 0;
}

/* see strongbox/kdf.h */
int
sbx_scrypt(uint8_t out[32], const uint8_t *pass, size_t pass_len, const uint8_t *salt,
           size_t salt_len, unsigned log_n)
{
    OSSL_PARAM params[7], *p = params;
    uint64_t n = (uint64_t)1 << log_n;
    uint32_t r = 8, par = 1;
    /* scrypt needs 128 * r * N bytes; allow that plus slack. */
    uint64_t maxmem = 128 * (uint64_t)r * n + (64u << 20);
    static const uint8_t empty[1] = {0};
    pthread_once(&fetch_once, fetch_all);
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD,
                                             (void *)(pass_len ? pass : empty), pass_len);
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
    *p++ = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
    *p++ = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r);
    *p++ = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &par);
    *p++ = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem);
    *p = OSSL_PARAM_construct_end();
    return kdf_derive(scrypt_kdf, out, 32, params, "scrypt");
}

#define RSA_NOT_A_KEY                                                                              \
    "RSA key refused: %s (a valid key has an odd modulus and an odd public exponent from 3 to "    \
    "2^32-1; ask the key's owner for a new key)"

static int
rsa_numbers_ok(const BIGNUM *n, const BIGNUM *e)
{
    if (!BN_is_odd(n))
        return sbx__error(SBX_EFORMAT, RSA_NOT_A_KEY, "its modulus is even");
    if (BN_is_one(e))
        return sbx__error(SBX_EFORMAT, RSA_NOT_A_KEY,
                          "its public exponent is 1, which leaves what is encrypted to it in the "
                          "clear");
    if (!BN_is_odd(e))
        return sbx__error(SBX_EFORMAT, RSA_NOT_A_KEY, "its public exponent is even");
    if (BN_num_bits(e) > 32)
        return sbx__error(SBX_EUNSUPPORTED,
                          "RSA key refused: its public exponent is larger than 2^32-1 (%d bits); "
                          "ask the key's owner for a key with a usual exponent such as 65537",
                          BN_num_bits(e));
    return 0;
}

/* see crypto.h */
int
sbx__rsa_check_numbers(const EVP_PKEY *pkey)
{
    BIGNUM *n = NULL, *e = NULL;
    int err;
    if (!EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n) ||
        !EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e))
        err = sbx__error_crypto("RSA key parameters");
    else
        err = rsa_numbers_ok(n, e);
    BN_free(n);
    BN_free(e);
    return err;
}
