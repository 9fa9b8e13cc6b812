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

#include <stdio.h>
#include <string.h>

#include <openssl/decoder.h>
#include <openssl/err.h>

#define BEGIN "-----BEGIN "
#define END   "-----END "

struct pw_state {
    sbx_passphrase_cb cb;
    void *payload;
    sbx_buf pass;
    bool asked;
    int err;
};

static bool
space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * Check that text is one PEM block with only whitespace around it; give its
 * label (NUL-terminated) and extent.
 */
static int
one_block(const char *text, size_t len, char label[64], const char **start, size_t *block_len)
{
    size_t b = 0, e = len;
    while (b < len && space(text[b]))
        b++;
    while (e > b && space(text[e - 1]))
        e--;
    if (e - b < strlen(BEGIN) || memcmp(text + b, BEGIN, strlen(BEGIN)) != 0)
        return sbx__error(SBX_EFORMAT, "not a PEM key (no \"-----BEGIN\" line)");
    const char *l = text + b + strlen(BEGIN), *dash = memchr(l, '-', e - b - strlen(BEGIN));
    if (dash == NULL || dash - l >= 64 || dash == l)
        return sbx__error(SBX_EFORMAT, "malformed PEM BEGIN line");
    memcpy(label, l, (size_t)(dash - l));
    label[dash - l] = '\0';
    for (const char *c = label; *c; c++) {
        if (!(*c == ' ' || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')))
            return sbx__error(SBX_EFORMAT, "malformed PEM BEGIN line");
    }
    // The last line must be the matching END line.
    char end_line[96];
    int n = snprintf(end_line, sizeof(end_line), "%s%s-----", END, label);
    if ((size_t)n > e - b || memcmp(text + e - (size_t)n, end_line, (size_t)n) != 0)
        return sbx__error(SBX_EFORMAT,
                          "the PEM block \"%s\" does not end with its END line (or "
                          "has text after it)",
                          label);
    if (memmem(text + b, e - b - (size_t)n, END, strlen(END)) != NULL)
        return sbx__error(SBX_EFORMAT, "more than one PEM block in a key file");
    *start = text + b;
    *block_len = e - b;
    return 0;
}

static int
pw_cb(char *pass, size_t size, size_t *len, const OSSL_PARAM params[], void *arg)
{
    struct pw_state *st = arg;
    (void)params;
    *len = 0;
    if (!st->asked) {
        st->asked = true;
        if (st->cb == NULL) {
            st->err = SBX_ENOKEY;
            return 0;
        }
        int err = st->cb(&st->pass, st->payload);
        if (err < 0) {
            st->err = err;
            sbx_buf_dispose(&st->pass);
            return 0;
        }
    }
    if (st->err < 0)
        return 0;
    if (st->pass.len > size) {
        st->err = SBX_ETOOBIG;
        return 0;
    }
    if (st->pass.len > 0)
        memcpy(pass, st->pass.ptr, st->pass.len);
    *len = st->pass.len;
    return 1;
}

static int
decode(EVP_PKEY **out, const char *block, size_t len, int selection, struct pw_state *st)
{
    const unsigned char *data = (const unsigned char *)block;
    size_t left = len;
    OSSL_DECODER_CTX *ctx =
        OSSL_DECODER_CTX_new_for_pkey(out, "PEM", NULL, NULL, selection, NULL, NULL);
    int ok = ctx != NULL && OSSL_DECODER_CTX_set_passphrase_cb(ctx, pw_cb, st) == 1 &&
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
    return sbx__error(SBX_EFORMAT, "unsupported PEM block \"%s\" (expected a private key)", label);
}

/* see ssh.h */
int
sbx_age__pem_decode_private(EVP_PKEY **out, const char *text, size_t len, sbx_passphrase_cb cb,
                            void *payload)
{
    struct pw_state st = {cb, payload, SBX_BUF_INIT, false, 0};
    char label[64];
    const char *block;
    size_t block_len;
    int err;
    *out = NULL;
    if (len > SBX_SSH_MAX_KEY_FILE)
        return sbx__error(SBX_ETOOBIG, "key file larger than %d bytes", SBX_SSH_MAX_KEY_FILE);
    if ((err = one_block(text, len, label, &block, &block_len)) < 0)
        return err;
    if (!private_label(label))
        return label_error(label);
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
    struct pw_state st = {NULL, NULL, SBX_BUF_INIT, false, 0};
    EVP_PKEY *pkey = NULL;
    char label[64];
    const char *block;
    size_t block_len;
    int err;
    *out = NULL;
    if (len > SBX_SSH_MAX_KEY_FILE)
        return sbx__error(SBX_ETOOBIG, "PEM block larger than %d bytes", SBX_SSH_MAX_KEY_FILE);
    if ((err = one_block(text, len, label, &block, &block_len)) < 0)
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
