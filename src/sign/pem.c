/*
 * src/sign/pem.c - signatures with PEM keys, byte-compatible with
 * `openssl dgst -sha256 -sign/-verify` and `openssl pkeyutl -rawin`
 * (strongbox/sign.h).
 *
 * Implementation notes:
 *  - Keys are decoded by OSSL_DECODER ("PEM" input); the text must be one
 *    key block with only whitespace around it, except that an
 *    "EC PARAMETERS" block (as `openssl ecparam -genkey` writes) may come
 *    first and is skipped. Inputs are bounded by SBX_SIGN_MAX_TEXT.
 *  - The passphrase callback is asked at most once; with none, a protected
 *    key fails with SBX_ENOKEY and OpenSSL never prompts by itself.
 *  - RSA: EVP_DigestSign with "SHA256" fetched by name and the padding set
 *    explicitly to PKCS#1 v1.5 (what `openssl dgst -sign` produces); keys
 *    under 2048 bits are refused. ECDSA: P-256 only, DER signatures.
 *    Ed25519: pure (no prehash), so the message is needed whole.
 *  - Verification returns SBX_EAUTH for every invalid signature, including
 *    malformed encodings; only a return of 0 means valid.
 */
#include "strongbox/sign.h"
#include "strongbox/memory.h"
#include "core/crypto.h"
#include "core/error.h"
#include "core/pem.h"
#include "sign/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#define BEGIN SBX_PEM_BEGIN
#define CHUNK 65536

enum kind { KIND_RSA, KIND_EC, KIND_ED25519 };

struct sbx_pem_key {
    EVP_PKEY *pkey;
    enum kind kind;
    bool priv;
    char type[32];
};

/* see strongbox/sign.h */
bool
sbx_pem_text_is_pem(const char *text, size_t len)
{
    size_t b = 0;
    while (b < len && sbx__pem_space(text[b]))
        b++;
    return len - b >= strlen(BEGIN) && memcmp(text + b, BEGIN, strlen(BEGIN)) == 0;
}

/* Skip a leading "EC PARAMETERS" block. */
static void
skip_ec_params(const char **text, size_t *len)
{
    static const char end[] = "-----END EC PARAMETERS-----";
    size_t b = 0;
    while (b < *len && sbx__pem_space((*text)[b]))
        b++;
    static const char begin[] = "-----BEGIN EC PARAMETERS-----";
    if (*len - b < strlen(begin) || memcmp(*text + b, begin, strlen(begin)) != 0)
        return;
    const char *e = memmem(*text + b, *len - b, end, strlen(end));
    if (e == NULL)
        return;
    size_t skip = (size_t)(e - *text) + strlen(end);
    *text += skip;
    *len -= skip;
}

static bool
label_in(const char *label, const char *const *list)
{
    for (; *list != NULL; list++) {
        if (strcmp(label, *list) == 0)
            return true;
    }
    return false;
}

/* Classify and check a decoded key. */
static int
classify(sbx_pem_key *k)
{
    if (EVP_PKEY_is_a(k->pkey, "RSA")) {
        int bits = EVP_PKEY_get_bits(k->pkey);
        if (bits < 2048)
            return sbx__error(SBX_EUNSUPPORTED,
                              "RSA key of %d bits refused: at least 2048 bits are required", bits);
        int err = sbx__rsa_check_numbers(k->pkey); // with e = 1 anyone could forge signatures
        if (err < 0)
            return err;
        k->kind = KIND_RSA;
        snprintf(k->type, sizeof(k->type), "RSA-%d", bits);
        return 0;
    }
    if (EVP_PKEY_is_a(k->pkey, "EC")) {
        char group[64] = "";
        size_t n = 0;
        if (EVP_PKEY_get_utf8_string_param(k->pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                           sizeof(group), &n) != 1 ||
            (strcmp(group, "prime256v1") != 0 && strcmp(group, "P-256") != 0)) {
            ERR_clear_error();
            return sbx__error(SBX_EUNSUPPORTED,
                              "EC key on curve \"%s\" refused: only P-256 (prime256v1) is "
                              "supported",
                              group[0] ? group : "unknown");
        }
        k->kind = KIND_EC;
        snprintf(k->type, sizeof(k->type), "ECDSA-P256");
        return 0;
    }
    if (EVP_PKEY_is_a(k->pkey, "ED25519")) {
        k->kind = KIND_ED25519;
        snprintf(k->type, sizeof(k->type), "Ed25519");
        return 0;
    }
    return sbx__error(SBX_EUNSUPPORTED,
                      "unsupported key type %s (use RSA >= 2048, ECDSA P-256 "
                      "or Ed25519)",
                      EVP_PKEY_get0_type_name(k->pkey) ? EVP_PKEY_get0_type_name(k->pkey) : "?");
}

static int
decode_err(const struct sbx__pem_pass *st, const char *label)
{
    if (st->err == SBX_ENOKEY)
        return sbx__error(SBX_ENOKEY, "the private key is protected by a passphrase and none "
                                      "was supplied");
    if (st->err == SBX_ETOOBIG)
        return sbx__error(SBX_ETOOBIG, "the passphrase is too long");
    if (st->err < 0)
        return sbx__error(st->err, "no passphrase for the private key: %s", sbx_strerror(st->err));
    if (st->asked)
        return sbx__error(SBX_EAUTH, "cannot decrypt the private key: wrong passphrase (or a "
                                     "corrupted key)");
    return sbx__error(SBX_EFORMAT, "malformed \"%s\" PEM key (OpenSSL cannot decode it)", label);
}

static int
parse(sbx_pem_key **out, const char *text, size_t len, bool priv, sbx_passphrase_cb cb,
      void *payload)
{
    static const char *const priv_labels[] = {"PRIVATE KEY", "ENCRYPTED PRIVATE KEY",
                                              "RSA PRIVATE KEY", "EC PRIVATE KEY", NULL};
    static const char *const pub_labels[] = {"PUBLIC KEY", "RSA PUBLIC KEY", NULL};
    struct sbx__pem_pass st = {cb, payload, SBX_BUF_INIT, false, 0};
    char label[64];
    const char *block;
    size_t block_len;
    int err;
    *out = NULL;
    if (len > SBX_SIGN_MAX_TEXT)
        return sbx__error(SBX_ETOOBIG, "key file larger than %d bytes", SBX_SIGN_MAX_TEXT);
    skip_ec_params(&text, &len);
    if ((err = sbx__pem_one_block(text, len, label, &block, &block_len)) < 0)
        return err;
    if (!label_in(label, priv ? priv_labels : pub_labels)) {
        if (!priv && label_in(label, priv_labels))
            return sbx__error(SBX_EFORMAT, "this is a private key; verification needs the "
                                           "public key (openssl pkey -in KEY -pubout)");
        if (priv && label_in(label, pub_labels))
            return sbx__error(SBX_EFORMAT, "this is a public key; signing needs the private key");
        return sbx__error(SBX_EFORMAT, "unsupported PEM block \"%s\" (expected a %s key)", label,
                          priv ? "private" : "public");
    }
    if (strcmp(label, "ENCRYPTED PRIVATE KEY") == 0 &&
        (err = sbx__pem_check_kdf(block, block_len)) < 0)
        return err;
    sbx_pem_key *k = calloc(1, sizeof(*k));
    if (k == NULL)
        return sbx__error_nomem();
    k->priv = priv;
    const unsigned char *data = (const unsigned char *)text;
    size_t left = len;
    OSSL_DECODER_CTX *ctx = OSSL_DECODER_CTX_new_for_pkey(
        &k->pkey, "PEM", NULL, NULL, priv ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, NULL, NULL);
    bool ok = ctx != NULL && OSSL_DECODER_CTX_set_passphrase_cb(ctx, sbx__pem_pass_cb, &st) == 1 &&
              OSSL_DECODER_from_data(ctx, &data, &left) == 1 && k->pkey != NULL;
    OSSL_DECODER_CTX_free(ctx);
    ERR_clear_error();
    err = ok ? classify(k) : decode_err(&st, label);
    sbx_buf_dispose(&st.pass);
    if (err < 0) {
        sbx_pem_key_free(k);
        return err;
    }
    *out = k;
    return 0;
}

/* see strongbox/sign.h */
int
sbx_pem_key_parse_private(sbx_pem_key **out, const char *text, size_t len, sbx_passphrase_cb cb,
                          void *payload)
{
    return parse(out, text, len, true, cb, payload);
}

/* see strongbox/sign.h */
int
sbx_pem_key_parse_public(sbx_pem_key **out, const char *text, size_t len)
{
    return parse(out, text, len, false, NULL, NULL);
}

/* see strongbox/sign.h */
const char *
sbx_pem_key_type(const sbx_pem_key *key)
{
    return key->type;
}

/* see strongbox/sign.h */
bool
sbx_pem_key_is_private(const sbx_pem_key *key)
{
    return key->priv;
}

/* see strongbox/sign.h */
void
sbx_pem_key_free(sbx_pem_key *key)
{
    if (key == NULL)
        return;
    EVP_PKEY_free(key->pkey);
    free(key);
}

/* A digest-sign or digest-verify context over SHA-256 (RSA with PKCS#1 v1.5). */
static int
init_ctx(EVP_MD_CTX **out, const sbx_pem_key *key, bool sign)
{
    EVP_PKEY_CTX *pctx = NULL;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    const char *md = key->kind == KIND_ED25519 ? NULL : "SHA256";
    int ok = ctx != NULL &&
             (sign ? EVP_DigestSignInit_ex(ctx, &pctx, md, NULL, NULL, key->pkey, NULL)
                   : EVP_DigestVerifyInit_ex(ctx, &pctx, md, NULL, NULL, key->pkey, NULL)) == 1;
    if (ok && key->kind == KIND_RSA)
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1;
    if (!ok) {
        EVP_MD_CTX_free(ctx);
        *out = NULL;
        return sbx__error_crypto(sign ? "signature setup" : "verification setup");
    }
    *out = ctx;
    return 0;
}

/* Feed everything src produces to a digest-sign/verify context. */
static int
feed(EVP_MD_CTX *ctx, sbx_source *src, bool sign)
{
    uint8_t *buf = malloc(CHUNK);
    int err = 0;
    if (buf == NULL)
        return sbx__error_nomem();
    for (;;) {
        size_t got = 0;
        if ((err = sbx_source_read(src, buf, CHUNK, &got)) < 0 || got == 0)
            break;
        if ((sign ? EVP_DigestSignUpdate(ctx, buf, got) : EVP_DigestVerifyUpdate(ctx, buf, got)) !=
            1) {
            err = sbx__error_crypto("SHA-256");
            break;
        }
    }
    sbx_wipe(buf, CHUNK);
    free(buf);
    return err;
}

static int
sign_final(sbx_buf *out, EVP_MD_CTX *ctx, const uint8_t *msg, size_t len, bool oneshot)
{
    size_t n = 0;
    int err;
    if ((oneshot ? EVP_DigestSign(ctx, NULL, &n, msg, len) : EVP_DigestSignFinal(ctx, NULL, &n)) !=
        1)
        return sbx__error_crypto("signing");
    if ((err = sbx_buf_reserve(out, n)) < 0)
        return err;
    if ((oneshot ? EVP_DigestSign(ctx, out->ptr + out->len, &n, msg, len)
                 : EVP_DigestSignFinal(ctx, out->ptr + out->len, &n)) != 1)
        return sbx__error_crypto("signing");
    out->len += n;
    return 0;
}

/* see strongbox/sign.h */
int
sbx_pem_sign_mem(sbx_buf *sig_out, const sbx_pem_key *key, const uint8_t *msg, size_t len)
{
    EVP_MD_CTX *ctx = NULL;
    int err;
    if (!key->priv)
        return sbx__error(SBX_EINVAL, "signing needs a private key");
    if ((err = init_ctx(&ctx, key, true)) < 0)
        return err;
    if (len == 0)
        msg = (const uint8_t *)"";
    if (key->kind != KIND_ED25519 && EVP_DigestSignUpdate(ctx, msg, len) != 1)
        err = sbx__error_crypto("SHA-256");
    else
        err = sign_final(sig_out, ctx, msg, len, key->kind == KIND_ED25519);
    EVP_MD_CTX_free(ctx);
    return err;
}

/* see strongbox/sign.h */
int
sbx_pem_sign(sbx_buf *sig_out, const sbx_pem_key *key, sbx_source *msg)
{
    EVP_MD_CTX *ctx = NULL;
    int err;
    if (!key->priv)
        return sbx__error(SBX_EINVAL, "signing needs a private key");
    if (key->kind == KIND_ED25519) {
        sbx_buf all = SBX_BUF_INIT;
        err = sbx_sign__read_all(&all, msg, SBX_SIGN_MAX_IN_MEMORY, "Ed25519 signature");
        if (err == 0)
            err = sbx_pem_sign_mem(sig_out, key, all.ptr, all.len);
        sbx_buf_dispose(&all);
        return err;
    }
    if ((err = init_ctx(&ctx, key, true)) < 0)
        return err;
    if ((err = feed(ctx, msg, true)) == 0)
        err = sign_final(sig_out, ctx, NULL, 0, false);
    EVP_MD_CTX_free(ctx);
    return err;
}

static int
bad_signature(const sbx_pem_key *key)
{
    ERR_clear_error();
    return sbx__error(SBX_EAUTH,
                      "signature verification failed (%s%s): the file was changed, the "
                      "signature is corrupted, or it was made with another key",
                      key->type, key->kind == KIND_ED25519 ? "" : ", SHA-256");
}

/* see strongbox/sign.h */
int
sbx_pem_verify_mem(const sbx_pem_key *key, const uint8_t *msg, size_t len, const uint8_t *sig,
                   size_t sig_len)
{
    EVP_MD_CTX *ctx = NULL;
    int err;
    if (sig_len == 0 || sig_len > 4096)
        return bad_signature(key);
    if ((err = init_ctx(&ctx, key, false)) < 0)
        return err;
    if (len == 0)
        msg = (const uint8_t *)"";
    int ok = key->kind == KIND_ED25519 ? EVP_DigestVerify(ctx, sig, sig_len, msg, len)
                                       : (EVP_DigestVerifyUpdate(ctx, msg, len) == 1
                                              ? EVP_DigestVerifyFinal(ctx, sig, sig_len)
                                              : -1);
    EVP_MD_CTX_free(ctx);
    return ok == 1 ? 0 : bad_signature(key);
}

/* see strongbox/sign.h */
int
sbx_pem_verify(const sbx_pem_key *key, sbx_source *msg, const uint8_t *sig, size_t sig_len)
{
    EVP_MD_CTX *ctx = NULL;
    int err;
    if (key->kind == KIND_ED25519) {
        sbx_buf all = SBX_BUF_INIT;
        err = sbx_sign__read_all(&all, msg, SBX_SIGN_MAX_IN_MEMORY, "Ed25519 verification");
        if (err == 0)
            err = sbx_pem_verify_mem(key, all.ptr, all.len, sig, sig_len);
        sbx_buf_dispose(&all);
        return err;
    }
    if (sig_len == 0 || sig_len > 4096)
        return bad_signature(key);
    if ((err = init_ctx(&ctx, key, false)) < 0)
        return err;
    if ((err = feed(ctx, msg, false)) == 0)
        err = EVP_DigestVerifyFinal(ctx, sig, sig_len) == 1 ? 0 : bad_signature(key);
    EVP_MD_CTX_free(ctx);
    return err;
}
