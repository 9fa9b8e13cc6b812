/*
 * src/age/pem.c - PEM public and private keys as age recipients and
 * identities, through the OpenSSL 3 decoders.
 *
 * Implementation notes:
 *  - Accepted labels. Public: "PUBLIC KEY" (SPKI, RSA or Ed25519) and
 *    "RSA PUBLIC KEY" (PKCS#1). Private: "PRIVATE KEY" (PKCS#8),
 *    "ENCRYPTED PRIVATE KEY" (PKCS#8 with a passphrase), "RSA PRIVATE KEY"
 *    (PKCS#1, also legacy "Proc-Type: 4,ENCRYPTED" PEM). RSA keys become
 *    ssh-rsa recipients/identities, Ed25519 keys ssh-ed25519 ones, as age
 *    does with keys it reads through golang.org/x/crypto/ssh.
 *  - The text must be exactly one PEM block with optional surrounding
 *    whitespace; only that block is handed to OpenSSL. Inputs are bounded
 *    by SBX_SSH_MAX_KEY_FILE.
 *  - Passphrases: the decoder asks our callback, which asks the caller's
 *    sbx_passphrase_cb at most once and keeps the answer in a wiped buffer.
 *    With no callback a protected key fails with SBX_ENOKEY, never with a
 *    prompt from OpenSSL itself.
 *  - Private key numbers stay inside EVP_PKEY (OpenSSL's decoders keep RSA
 *    private components in secure BIGNUMs); an Ed25519 seed is copied into
 *    our secure identity and the temporary copy wiped.
 */
#include "age/ssh.h"
#include "strongbox/memory.h"
#include "core/error.h"
#include "core/pem.h"

#include <stdio.h>
#include <string.h>

#include <openssl/decoder.h>
#include <openssl/err.h>

static int
decode(EVP_PKEY **out, const char *block, size_t len, int selection, struct sbx__pem_pass *st)
{
    const unsigned char *data = (const unsigned char *)block;
    size_t left = len;
    OSSL_DECODER_CTX *ctx =
        OSSL_DECODER_CTX_new_for_pkey(out, "PEM", NULL, NULL, selection, NULL, NULL);
    int ok = ctx != NULL && OSSL_DECODER_CTX_set_passphrase_cb(ctx, sbx__pem_pass_cb, st) == 1 &&
             OSSL_DECODER_from_data(ctx, &data, &left) == 1 && *out != NULL;
    OSSL_DECODER_CTX_free(ctx);
    ERR_clear_error();
    return ok ? 0 : -1;
}

static bool
private_label(const char *label)
{
    return strcmp(label, "PRIVATE KEY") == 0 || strcmp(label, "ENCRYPTED PRIVATE KEY") == 0 ||
           strcmp(label, "RSA PRIVATE KEY") == 0;
}

static int
label_error(const char *label)
{
    if (strcmp(label, "EC PRIVATE KEY") == 0 || strcmp(label, "DSA PRIVATE KEY") == 0) {
        size_t n = strlen(label) - strlen(" PRIVATE KEY");
        return sbx__error(SBX_EUNSUPPORTED,
                          "unsupported key type %.*s (use an Ed25519 or RSA "
                          "key)",
                          (int)n, label);
    }
    if (strcmp(label, "PUBLIC KEY") == 0 || strcmp(label, "RSA PUBLIC KEY") == 0)
        return sbx__error(SBX_EFORMAT, "this is a recipient (a PEM public key), not an identity: "
                                       "use the private key file");
    return sbx__error(SBX_EFORMAT, "unsupported PEM block \"%s\" (expected a private key)", label);
}

/* see ssh.h */
int
sbx_age__pem_decode_private(EVP_PKEY **out, const char *text, size_t len, sbx_passphrase_cb cb,
                            void *payload)
{
    struct sbx__pem_pass st = {cb, payload, SBX_BUF_INIT, false, 0};
    char label[64];
    const char *block;
    size_t block_len;
    int err;
    *out = NULL;
    if (len > SBX_SSH_MAX_KEY_FILE)
        return sbx__error(SBX_ETOOBIG, "key file larger than %d bytes", SBX_SSH_MAX_KEY_FILE);
    if ((err = sbx__pem_one_block(text, len, label, &block, &block_len)) < 0)
        return err;
    if (!private_label(label))
        return label_error(label);
    if (strcmp(label, "ENCRYPTED PRIVATE KEY") == 0 &&
        (err = sbx__pem_check_kdf(block, block_len)) < 0)
        return err;
    if (decode(out, block, block_len, EVP_PKEY_KEYPAIR, &st) == 0)
        err = 0;
    else if (st.err == SBX_ENOKEY)
        err = sbx__error(SBX_ENOKEY, "the private key is protected by a passphrase and none was "
                                     "supplied");
    else if (st.err == SBX_ETOOBIG)
        err = sbx__error(SBX_ETOOBIG, "the passphrase is too long");
    else if (st.err < 0)
        err = sbx__error(st.err, "no passphrase for the private key: %s", sbx_strerror(st.err));
    else if (st.asked)
        err = sbx__error(SBX_EAUTH, "cannot decrypt the private key: wrong passphrase (or a "
                                    "corrupted key)");
    else
        err = sbx__error(SBX_EFORMAT, "malformed \"%s\" PEM key (OpenSSL cannot decode it)", label);
    sbx_buf_dispose(&st.pass);
    return err;
}

/* see ssh.h */
int
sbx_age__pem_identity_parse(sbx_identity **out, const char *text, size_t len, sbx_passphrase_cb cb,
                            void *payload)
{
    EVP_PKEY *pkey = NULL;
    int err;
    *out = NULL;
    if ((err = sbx_age__pem_decode_private(&pkey, text, len, cb, payload)) < 0)
        return err;
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        if ((err = sbx_age__ssh_rsa_identity_new(out, pkey)) == 0)
            return 0;
    } else if (EVP_PKEY_is_a(pkey, "ED25519")) {
        uint8_t *seed = sbx_secret_alloc(32);
        size_t seed_len = 32;
        if (seed == NULL)
            err = SBX_ENOMEM;
        else if (EVP_PKEY_get_raw_private_key(pkey, seed, &seed_len) != 1 || seed_len != 32)
            err = sbx__error_crypto("Ed25519 private key");
        else
            err = sbx_age__ssh_ed25519_identity_new(out, seed);
        sbx_secret_free(seed, 32);
    } else {
        const char *name = EVP_PKEY_get0_type_name(pkey);
        err = sbx__error(SBX_EUNSUPPORTED, "unsupported key type %s (use an Ed25519 or RSA key)",
                         name != NULL ? name : "(unknown)");
    }
    EVP_PKEY_free(pkey);
    return err;
}

/* see ssh.h */
int
sbx_age__pem_recipient_parse(sbx_recipient **out, const char *text, size_t len)
{
    struct sbx__pem_pass st = {NULL, NULL, SBX_BUF_INIT, false, 0};
    EVP_PKEY *pkey = NULL;
    char label[64];
    const char *block;
    size_t block_len;
    int err;
    *out = NULL;
    if (len > SBX_SSH_MAX_KEY_FILE)
        return sbx__error(SBX_ETOOBIG, "PEM block larger than %d bytes", SBX_SSH_MAX_KEY_FILE);
    if ((err = sbx__pem_one_block(text, len, label, &block, &block_len)) < 0)
        return err;
    if (strcmp(label, "PUBLIC KEY") != 0 && strcmp(label, "RSA PUBLIC KEY") != 0) {
        if (strstr(label, "PRIVATE KEY") != NULL)
            return sbx__error(SBX_EFORMAT, "a private key is not a recipient: give its public key "
                                           "(openssl pkey -pubout, or ssh-keygen -y)");
        return sbx__error(SBX_EFORMAT,
                          "unsupported PEM block \"%s\" (expected PUBLIC KEY or RSA "
                          "PUBLIC KEY)",
                          label);
    }
    if (decode(&pkey, block, block_len, EVP_PKEY_PUBLIC_KEY, &st) < 0)
        return sbx__error(SBX_EFORMAT, "malformed \"%s\" PEM block (OpenSSL cannot decode it)",
                          label);
    err = sbx_age__ssh_recipient_from_pkey(out, pkey);
    EVP_PKEY_free(pkey);
    return err;
}
