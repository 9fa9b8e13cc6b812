/*
 * src/age/sshkey.c - OpenSSH private keys ("openssh-key-v1", OpenSSH's
 * PROTOCOL.key) as age identities.
 *
 * Implementation notes:
 *   "-----BEGIN OPENSSH PRIVATE KEY-----" PEM armor (read by OpenSSL's
 *   PEM_read_bio_ex into secure memory), then:
 *     "openssh-key-v1\0" string ciphername, string kdfname, string kdfoptions,
 *     uint32 nkeys (= 1), string publickey, string private section
 *   private section: uint32 check, uint32 check (equal), string type,
 *     ssh-ed25519: string pk(32), string seed||pk (64)
 *     ssh-rsa:     mpint n, e, d, iqmp, p, q
 *   then string comment and padding bytes 1, 2, 3, ... to a multiple of 8.
 *  - Everything is checked: magic, counts, no trailing bytes, padding, the
 *    public key blob equals the private key's public half, the Ed25519 seed
 *    derives the stored public key, the RSA key passes OpenSSL's pairwise
 *    check. Sizes are bounded by SBX_SSH_MAX_KEY_FILE.
 *  - Encrypted keys (ciphername other than "none") are refused with the
 *    command that removes the passphrase: their KDF, bcrypt-pbkdf, is not in
 *    OpenSSL and we do not hand-write it.
 *  - Decoded key bytes live in secure memory; RSA private numbers go into
 *    secure BIGNUMs and from there into the EVP_PKEY.
 */
#include "age/ssh.h"
#include "strongbox/memory.h"
#include "core/error.h"

#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#define MAGIC     "openssh-key-v1"
#define MAGIC_LEN 15 /* including the NUL */

/* A PEM block's decoded bytes in secure memory. */
static int
read_armor(uint8_t **data, size_t *len, const char *text, size_t text_len)
{
    BIO *bio = BIO_new_mem_buf(text, (int)text_len);
    char *name = NULL, *header = NULL;
    unsigned char *der = NULL;
    long der_len = 0;
    int err = 0;
    *data = NULL;
    *len = 0;
    if (bio == NULL)
        return sbx__error_nomem();
    if (PEM_read_bio_ex(bio, &name, &header, &der, &der_len, PEM_FLAG_SECURE | PEM_FLAG_ONLY_B64) !=
            1 ||
        strcmp(name, "OPENSSH PRIVATE KEY") != 0 || header[0] != '\0' || der_len <= 0) {
        ERR_clear_error();
        err = sbx__error(SBX_EFORMAT, "malformed OpenSSH private key (bad PEM armor)");
    } else if ((*data = sbx_secret_alloc((size_t)der_len)) == NULL) {
        err = SBX_ENOMEM;
    } else {
        memcpy(*data, der, (size_t)der_len);
        *len = (size_t)der_len;
    }
    OPENSSL_secure_clear_free(der, der_len > 0 ? (size_t)der_len : 0);
    OPENSSL_secure_free(name);
    OPENSSL_secure_free(header);
    BIO_free(bio);
    return err;
}

static int
bad(const char *what)
{
    return sbx__error(SBX_EFORMAT, "malformed OpenSSH private key (%s)", what);
}

/* The outer structure: returns the public blob and the private section. */
static int
parse_outer(sbx_ssh_reader *r, const uint8_t **pub, size_t *pub_len, sbx_ssh_reader *priv)
{
    const uint8_t *cipher, *kdf, *kdfopts;
    size_t cipher_len, kdf_len, kdfopts_len;
    uint32_t nkeys = 0;
    if (r->len < MAGIC_LEN || memcmp(r->p, MAGIC, MAGIC_LEN) != 0)
        return bad("not openssh-key-v1");
    r->p += MAGIC_LEN;
    r->len -= MAGIC_LEN;
    if (sbx_ssh__read_string(r, &cipher, &cipher_len) < 0 ||
        sbx_ssh__read_string(r, &kdf, &kdf_len) < 0 ||
        sbx_ssh__read_string(r, &kdfopts, &kdfopts_len) < 0 || sbx_ssh__read_u32(r, &nkeys) < 0)
        return bad("truncated");
    if (!sbx_ssh__string_is(cipher, cipher_len, "none"))
        return sbx__error(SBX_EUNSUPPORTED,
                          "this OpenSSH private key is protected by a passphrase, which sbx cannot "
                          "open (OpenSSH's bcrypt-pbkdf is not available in OpenSSL). Remove the "
                          "passphrase from a copy of the key and use the copy: cp KEY KEY.nopass "
                          "&& ssh-keygen -p -N \"\" -f KEY.nopass (keep KEY.nopass private)");
    if (!sbx_ssh__string_is(kdf, kdf_len, "none") || kdfopts_len != 0)
        return bad("unencrypted key with a KDF");
    if (nkeys != 1)
        return bad("expected exactly one key");
    if (sbx_ssh__read_string(r, pub, pub_len) < 0 ||
        sbx_ssh__read_string(r, &priv->p, &priv->len) < 0 || r->len != 0)
        return bad("truncated or trailing data");
    if (priv->len % 8 != 0)
        return bad("private section not padded");
    return 0;
}

/* After the key: string comment, then padding 1, 2, 3, ... (less than a block). */
static int
check_tail(sbx_ssh_reader *r)
{
    const uint8_t *comment;
    size_t comment_len;
    if (sbx_ssh__read_string(r, &comment, &comment_len) < 0)
        return bad("truncated comment");
    if (r->len >= 8)
        return bad("trailing data");
    for (size_t i = 0; i < r->len; i++) {
        if (r->p[i] != (uint8_t)(i + 1))
            return bad("bad padding");
    }
    return 0;
}

static int
ed25519_identity(sbx_identity **out, sbx_ssh_reader *r, const uint8_t *pub, size_t pub_len)
{
    const uint8_t *pk, *sk, *blob_type, *blob_pk;
    size_t pk_len, sk_len, bt_len, bpk_len;
    uint8_t derived[32];
    size_t derived_len = sizeof(derived);
    sbx_ssh_reader pr = {pub, pub_len};
    int err;
    if (sbx_ssh__read_string(r, &pk, &pk_len) < 0 || sbx_ssh__read_string(r, &sk, &sk_len) < 0 ||
        pk_len != 32 || sk_len != 64 || memcmp(sk + 32, pk, 32) != 0)
        return bad("ssh-ed25519 key");
    if ((err = check_tail(r)) < 0)
        return err;
    if (sbx_ssh__read_string(&pr, &blob_type, &bt_len) < 0 ||
        sbx_ssh__read_string(&pr, &blob_pk, &bpk_len) < 0 || pr.len != 0 ||
        !sbx_ssh__string_is(blob_type, bt_len, "ssh-ed25519") || bpk_len != 32 ||
        memcmp(blob_pk, pk, 32) != 0)
        return bad("the public key does not match the private key");
    EVP_PKEY *pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, sk, 32);
    int ok = pkey != NULL && EVP_PKEY_get_raw_public_key(pkey, derived, &derived_len) == 1 &&
             derived_len == 32;
    EVP_PKEY_free(pkey);
    if (!ok)
        return sbx__error_crypto("Ed25519 key");
    if (memcmp(derived, pk, 32) != 0)
        return bad("the Ed25519 seed does not derive the stored public key");
    return sbx_age__ssh_ed25519_identity_new(out, sk);
}

/* A secure BIGNUM from big-endian bytes. */
static BIGNUM *
secure_bn(const uint8_t *p, size_t len)
{
    BIGNUM *bn = BN_secure_new();
    if (bn != NULL && BN_bin2bn(p, (int)len, bn) == NULL) {
        BN_clear_free(bn);
        return NULL;
    }
    return bn;
}

enum { RSA_N, RSA_E, RSA_D, RSA_IQMP, RSA_P, RSA_Q, RSA_DMP1, RSA_DMQ1, RSA_NUMS };

/* The CRT exponents d mod (p - 1) and d mod (q - 1). */
static int
crt_exponents(BIGNUM **bn)
{
    BN_CTX *ctx = BN_CTX_secure_new();
    BIGNUM *t = BN_secure_new();
    bn[RSA_DMP1] = BN_secure_new();
    bn[RSA_DMQ1] = BN_secure_new();
    int ok = ctx != NULL && t != NULL && bn[RSA_DMP1] != NULL && bn[RSA_DMQ1] != NULL &&
             BN_sub(t, bn[RSA_P], BN_value_one()) && BN_mod(bn[RSA_DMP1], bn[RSA_D], t, ctx) &&
             BN_sub(t, bn[RSA_Q], BN_value_one()) && BN_mod(bn[RSA_DMQ1], bn[RSA_D], t, ctx);
    BN_clear_free(t);
    BN_CTX_free(ctx);
    return ok ? 0 : sbx__error_crypto("RSA key");
}

static int
rsa_pkey(EVP_PKEY **out, BIGNUM **bn)
{
    static const char *const names[RSA_NUMS] = {
        OSSL_PKEY_PARAM_RSA_N,         OSSL_PKEY_PARAM_RSA_E,
        OSSL_PKEY_PARAM_RSA_D,         OSSL_PKEY_PARAM_RSA_COEFFICIENT1,
        OSSL_PKEY_PARAM_RSA_FACTOR1,   OSSL_PKEY_PARAM_RSA_FACTOR2,
        OSSL_PKEY_PARAM_RSA_EXPONENT1, OSSL_PKEY_PARAM_RSA_EXPONENT2,
    };
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL), *check = NULL;
    int err = 0, ok = bld != NULL && ctx != NULL;
    for (int i = 0; ok && i < RSA_NUMS; i++)
        ok = OSSL_PARAM_BLD_push_BN(bld, names[i], bn[i]);
    if (!ok || (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
        EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, out, EVP_PKEY_KEYPAIR, params) != 1) {
        err = sbx__error_crypto("RSA private key");
        goto out;
    }
    check = EVP_PKEY_CTX_new_from_pkey(NULL, *out, NULL);
    if (check == NULL || EVP_PKEY_pairwise_check(check) != 1) {
        ERR_clear_error();
        EVP_PKEY_free(*out);
        *out = NULL;
        err = bad("inconsistent RSA key");
    }
out:
    EVP_PKEY_CTX_free(check);
    OSSL_PARAM_free(params); // the secure part of a built array is cleared and freed
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(ctx);
    return err;
}

static int
rsa_identity(sbx_identity **out, sbx_ssh_reader *r, const uint8_t *pub, size_t pub_len)
{
    const uint8_t *num[6], *blob_type, *blob_e, *blob_n;
    size_t num_len[6], bt_len, be_len, bn_len;
    BIGNUM *bn[RSA_NUMS] = {NULL};
    EVP_PKEY *pkey = NULL;
    sbx_ssh_reader pr = {pub, pub_len};
    int err = 0;
    for (int i = 0; i < 6 && err == 0; i++)
        err = sbx_ssh__read_mpint(r, &num[i], &num_len[i]);
    if (err < 0)
        return bad("ssh-rsa key numbers");
    if ((err = check_tail(r)) < 0)
        return err;
    if (sbx_ssh__read_string(&pr, &blob_type, &bt_len) < 0 ||
        sbx_ssh__read_mpint(&pr, &blob_e, &be_len) < 0 ||
        sbx_ssh__read_mpint(&pr, &blob_n, &bn_len) < 0 || pr.len != 0 ||
        !sbx_ssh__string_is(blob_type, bt_len, "ssh-rsa") || be_len != num_len[RSA_E] ||
        bn_len != num_len[RSA_N] || memcmp(blob_e, num[RSA_E], be_len) != 0 ||
        memcmp(blob_n, num[RSA_N], bn_len) != 0)
        return bad("the public key does not match the private key");
    if (num_len[RSA_N] * 8 > SBX_SSH_RSA_MAX_BITS || num_len[RSA_E] > 8)
        return sbx__error(SBX_EUNSUPPORTED, "RSA key too large (at most %d bits)",
                          SBX_SSH_RSA_MAX_BITS);
    // The pairwise check tests p and q for primality: bound them (and d, iqmp) by the modulus.
    if (num_len[RSA_D] > num_len[RSA_N] || num_len[RSA_P] > num_len[RSA_N] / 2 + 1 ||
        num_len[RSA_Q] > num_len[RSA_N] / 2 + 1 || num_len[RSA_IQMP] > num_len[RSA_N] / 2 + 1)
        return bad("ssh-rsa private numbers too large for the modulus");
    for (int i = 0; i < 6; i++) {
        if ((bn[i] = secure_bn(num[i], num_len[i])) == NULL) {
            err = sbx__error_crypto("RSA key");
            goto out;
        }
    }
    if ((err = crt_exponents(bn)) < 0 || (err = rsa_pkey(&pkey, bn)) < 0)
        goto out;
    if ((err = sbx_age__ssh_rsa_identity_new(out, pkey)) < 0)
        EVP_PKEY_free(pkey);
out:
    for (int i = 0; i < RSA_NUMS; i++)
        BN_clear_free(bn[i]);
    return err;
}

/* see ssh.h */
int
sbx_age__openssh_identity_parse(sbx_identity **out, const char *text, size_t len)
{
    uint8_t *data = NULL;
    size_t data_len = 0;
    const uint8_t *pub, *type;
    size_t pub_len, type_len;
    uint32_t check1 = 0, check2 = 1;
    sbx_ssh_reader priv;
    int err;
    *out = NULL;
    if (len > SBX_SSH_MAX_KEY_FILE)
        return sbx__error(SBX_ETOOBIG, "key file larger than %d bytes", SBX_SSH_MAX_KEY_FILE);
    if ((err = read_armor(&data, &data_len, text, len)) < 0)
        return err;
    sbx_ssh_reader r = {data, data_len};
    if ((err = parse_outer(&r, &pub, &pub_len, &priv)) < 0)
        goto out;
    if (sbx_ssh__read_u32(&priv, &check1) < 0 || sbx_ssh__read_u32(&priv, &check2) < 0 ||
        check1 != check2 || sbx_ssh__read_string(&priv, &type, &type_len) < 0) {
        err = bad("private section header");
        goto out;
    }
    if (sbx_ssh__string_is(type, type_len, "ssh-ed25519"))
        err = ed25519_identity(out, &priv, pub, pub_len);
    else if (sbx_ssh__string_is(type, type_len, "ssh-rsa"))
        err = rsa_identity(out, &priv, pub, pub_len);
    else
        err = sbx_age__ssh_unsupported_type(type, type_len);
out:
    sbx_secret_free(data, data_len);
    return err;
}
