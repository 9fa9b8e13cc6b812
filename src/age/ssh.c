/*
 * src/age/ssh.c - the ssh-ed25519 and ssh-rsa recipient types (age.md §6.3,
 * §6.4), as age 1.1.1 (Go agessh) writes and reads them.
 *
 * Implementation notes:
 *   pk_wire = the SSH public key blob; tag = base64(SHA-256(pk_wire)[:4]).
 *   ssh-ed25519:
 *     pk_mont = Montgomery u of the Ed25519 point, u = (1 + y) / (1 - y) mod
 *               2^255 - 19 (OpenSSL BIGNUM; y must be canonical, y != 1)
 *     scalar  = SHA-512(seed)[:32] (X25519 clamps it); identity's own
 *               pk_mont = X25519(scalar, 9), as Go computes it
 *     wrap:   share = X25519(eph, 9); ss = X25519(eph, pk_mont)
 *             tweak = HKDF(ikm = "", salt = pk_wire, info = LABEL)
 *             key = HKDF(ikm = X25519(tweak, ss), salt = share || pk_mont, LABEL)
 *             "-> ssh-ed25519 tag base64(share)" + ChaCha20-Poly1305(key, 0, file_key)
 *   ssh-rsa:  "-> ssh-rsa tag" + RSA-OAEP(SHA-256, MGF1-SHA-256,
 *             label "age-encryption.org/v1/ssh-rsa", file_key)
 *  - Unwrap: a stanza whose tag is not ours is "not mine"; a tag match that
 *    fails to decrypt is also "not mine" for ed25519 (AEAD) but an error for
 *    RSA (as Go: OAEP failure with a matching tag is a broken file).
 *  - Ed25519 public points are not checked to be on the curve (that needs a
 *    square root); a bogus key only yields files nobody can open, and a
 *    low-order result is caught by the all-zero check of sbx__x25519.
 *  - Line parsing: sbx_recipient_parse() takes "TYPE BLOB[ COMMENT]" with
 *    single spaces, so to_string() gives the input back; recipients files
 *    take authorized_keys lines (options, blank runs). Blobs are canonical
 *    padded base64 and must parse completely (no trailing bytes).
 */
#include "age/ssh.h"
#include "strongbox/encoding.h"
#include "strongbox/memory.h"
#include "strongbox/random.h"
#include "core/crypto.h"
#include "core/error.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#define ED25519_LABEL "age-encryption.org/v1/ssh-ed25519"
#define RSA_LABEL     "age-encryption.org/v1/ssh-rsa"
#define ED25519_WIRE  51 /* string "ssh-ed25519" + string(32 bytes) */
#define TAG_CHARS     12 /* 6 base64 characters + NUL (the encoder wants room for padding) */
#define MAX_COMMENT   1024

/* ---- SSH wire encoding ---- */

int
sbx_ssh__read_u32(sbx_ssh_reader *r, uint32_t *v)
{
    if (r->len < 4)
        return sbx__error(SBX_EFORMAT, "SSH key data is truncated");
    *v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 | r->p[3];
    r->p += 4;
    r->len -= 4;
    return 0;
}

int
sbx_ssh__read_string(sbx_ssh_reader *r, const uint8_t **s, size_t *len)
{
    uint32_t n = 0;
    int err;
    if ((err = sbx_ssh__read_u32(r, &n)) < 0)
        return err;
    if (n > r->len)
        return sbx__error(SBX_EFORMAT, "SSH key data is truncated (a length runs past the end)");
    *s = r->p;
    *len = n;
    r->p += n;
    r->len -= n;
    return 0;
}

int
sbx_ssh__read_mpint(sbx_ssh_reader *r, const uint8_t **s, size_t *len)
{
    int err;
    if ((err = sbx_ssh__read_string(r, s, len)) < 0)
        return err;
    if (*len == 0 || ((*s)[0] & 0x80) != 0)
        return sbx__error(SBX_EFORMAT, "SSH key has a zero or negative integer");
    if ((*s)[0] == 0) {
        if (*len == 1 || ((*s)[1] & 0x80) == 0)
            return sbx__error(SBX_EFORMAT, "SSH key has a non-minimal integer encoding");
        (*s)++;
        (*len)--;
    }
    return 0;
}

bool
sbx_ssh__string_is(const uint8_t *s, size_t len, const char *lit)
{
    return len == strlen(lit) && memcmp(s, lit, len) == 0;
}

static int
put_string(sbx_buf *b, const void *s, size_t len)
{
    uint8_t n[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
    int err = sbx_buf_append(b, n, 4);
    return err < 0 ? err : sbx_buf_append(b, s, len);
}

static int
put_mpint(sbx_buf *b, const BIGNUM *bn)
{
    uint8_t tmp[SBX_SSH_MAX_BLOB + 1];
    int n = BN_num_bytes(bn);
    if (n <= 0 || n > SBX_SSH_MAX_BLOB)
        return sbx__error(SBX_EFORMAT, "RSA key component out of range");
    tmp[0] = 0;
    BN_bn2bin(bn, tmp + 1);
    bool pad = (tmp[1] & 0x80) != 0;
    return put_string(b, pad ? tmp : tmp + 1, (size_t)n + (pad ? 1 : 0));
}

static int
compute_tag(char tag[TAG_CHARS], const uint8_t *wire, size_t len)
{
    uint8_t md[32];
    if (EVP_Digest(wire, len, md, NULL, EVP_sha256(), NULL) != 1)
        return sbx__error_crypto("SHA-256");
    if (sbx_base64_encode(tag, TAG_CHARS, md, 4, false) != 6)
        return sbx__error(SBX_EINVAL, "SSH key tag encoding");
    return 0;
}

/* ---- Ed25519 -> X25519 ---- */

static int
ed25519_to_mont(uint8_t u_out[32], const uint8_t pk[32])
{
    uint8_t y_le[32];
    int err = 0;
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *p = BN_new(), *y = NULL, *num = BN_new(), *den = BN_new(), *u = BN_new();
    memcpy(y_le, pk, 32);
    y_le[31] &= 0x7f; // the top bit is the sign of x
    y = BN_lebin2bn(y_le, 32, NULL);
    if (ctx == NULL || p == NULL || y == NULL || num == NULL || den == NULL || u == NULL ||
        !BN_set_bit(p, 255) || !BN_sub_word(p, 19)) {
        err = sbx__error_crypto("Ed25519 key conversion");
        goto out;
    }
    if (BN_cmp(y, p) >= 0) {
        err = sbx__error(SBX_EFORMAT, "invalid Ed25519 public key (non-canonical point)");
        goto out;
    }
    if (!BN_copy(num, y) || !BN_add_word(num, 1) || !BN_set_word(den, 1) ||
        !BN_mod_sub(den, den, y, p, ctx)) {
        err = sbx__error_crypto("Ed25519 key conversion");
        goto out;
    }
    if (BN_is_zero(den) || BN_mod_inverse(den, den, p, ctx) == NULL ||
        !BN_mod_mul(u, num, den, p, ctx) || BN_is_zero(u)) {
        ERR_clear_error();
        err = sbx__error(SBX_EFORMAT, "invalid Ed25519 public key (low-order point)");
        goto out;
    }
    if (BN_bn2lebinpad(u, u_out, 32) != 32)
        err = sbx__error_crypto("Ed25519 key conversion");
out:
    BN_free(p);
    BN_free(y);
    BN_free(num);
    BN_free(den);
    BN_free(u);
    BN_CTX_free(ctx);
    return err;
}

/* HKDF of the X25519 result as age's ssh-ed25519 does (tweak, then wrap key). */
static int
ed25519_wrap_key(uint8_t key[32], const uint8_t ss[32], const uint8_t *wire,
                 const uint8_t share[32], const uint8_t pk_mont[32])
{
    uint8_t tweak[32], tweaked[32], salt[64];
    int err;
    memcpy(salt, share, 32);
    memcpy(salt + 32, pk_mont, 32);
    if ((err = sbx__hkdf_sha256(tweak, NULL, 0, wire, ED25519_WIRE, ED25519_LABEL)) == 0 &&
        (err = sbx__x25519(tweaked, tweak, ss)) == 0)
        err = sbx__hkdf_sha256(key, tweaked, 32, salt, sizeof(salt), ED25519_LABEL);
    SBX_WIPE_BUF(tweak);
    SBX_WIPE_BUF(tweaked);
    return err;
}

/* ---- RSA helpers ---- */

static int
rsa_check_bits(const EVP_PKEY *pkey, int min_bits)
{
    int bits = EVP_PKEY_get_bits(pkey);
    if (bits < min_bits)
        return sbx__error(SBX_EUNSUPPORTED,
                          "RSA key of %d bits refused: keys under %d bits are too weak (make a "
                          "new one: ssh-keygen -t ed25519, or ssh-keygen -t rsa -b 4096)",
                          bits, min_bits);
    if (bits > SBX_SSH_RSA_MAX_BITS)
        return sbx__error(SBX_EUNSUPPORTED, "RSA key of %d bits refused (at most %d bits)", bits,
                          SBX_SSH_RSA_MAX_BITS);
    return 0;
}

/* see ssh.h */
int
sbx_age__rsa_check_key(const EVP_PKEY *pkey, int min_bits)
{
    int err = rsa_check_bits(pkey, min_bits);
    return err < 0 ? err : sbx__rsa_check_numbers(pkey);
}

static int
rsa_ctx(EVP_PKEY_CTX **out, EVP_PKEY *pkey, bool enc, int padding, const char *md,
        const char *label)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    *out = NULL;
    if (ctx == NULL || (enc ? EVP_PKEY_encrypt_init(ctx) : EVP_PKEY_decrypt_init(ctx)) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx, padding) != 1)
        goto fail;
    if (padding == RSA_PKCS1_OAEP_PADDING) {
        if (EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx, md, NULL) != 1 ||
            EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx, md, NULL) != 1)
            goto fail;
        if (label != NULL) {
            // set0 takes ownership of an OPENSSL_malloc'd label
            void *copy = OPENSSL_memdup(label, strlen(label));
            if (copy == NULL ||
                EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, copy, (int)strlen(label)) != 1) {
                OPENSSL_free(copy);
                goto fail;
            }
        }
    }
    *out = ctx;
    return 0;
fail:
    EVP_PKEY_CTX_free(ctx);
    return sbx__error_crypto("RSA set-up");
}

int
sbx_age__rsa_decrypt(uint8_t *out, size_t *out_len, size_t out_cap, EVP_PKEY *pkey, int padding,
                     const char *md, const char *label, const uint8_t *in, size_t in_len)
{
    EVP_PKEY_CTX *ctx;
    int err;
    *out_len = 0;
    if ((size_t)EVP_PKEY_get_size(pkey) != in_len)
        return sbx__error(SBX_EAUTH, "RSA ciphertext is %zu bytes, the key needs %d", in_len,
                          EVP_PKEY_get_size(pkey));
    if ((err = rsa_ctx(&ctx, pkey, false, padding, md, label)) < 0)
        return err;
    *out_len = out_cap;
    if (EVP_PKEY_decrypt(ctx, out, out_len, in, in_len) != 1) {
        ERR_clear_error();
        sbx_wipe(out, out_cap);
        *out_len = 0;
        err = sbx__error(SBX_EAUTH, "RSA decryption failed (wrong key or corrupted data)");
    }
    EVP_PKEY_CTX_free(ctx);
    return err;
}

/* An RSA public key from its modulus and exponent (big-endian magnitudes). */
static int
rsa_from_ne(EVP_PKEY **out, const uint8_t *n, size_t n_len, const uint8_t *e, size_t e_len)
{
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    BIGNUM *bn_n = BN_bin2bn(n, (int)n_len, NULL), *bn_e = BN_bin2bn(e, (int)e_len, NULL);
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    int err = 0;
    *out = NULL;
    if (bld == NULL || bn_n == NULL || bn_e == NULL || ctx == NULL ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) ||
        (params = OSSL_PARAM_BLD_to_param(bld)) == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) != 1)
        err = sbx__error_crypto("RSA public key");
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    EVP_PKEY_CTX_free(ctx);
    return err;
}

/* The ssh-rsa blob of an RSA key. */
static int
rsa_wire(sbx_buf *out, const EVP_PKEY *pkey)
{
    BIGNUM *n = NULL, *e = NULL;
    int err;
    if (!EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n) ||
        !EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e))
        err = sbx__error_crypto("RSA key parameters");
    else if ((err = put_string(out, "ssh-rsa", 7)) == 0 && (err = put_mpint(out, e)) == 0)
        err = put_mpint(out, n);
    BN_free(n);
    BN_free(e);
    return err;
}

/* ---- recipients ---- */

struct ssh_recipient {
    sbx_recipient base;
    uint8_t *wire;
    size_t wire_len;
    char tag[TAG_CHARS];
    char *comment;       /* NULL when none */
    uint8_t pk_mont[32]; /* ssh-ed25519 */
    EVP_PKEY *rsa;       /* ssh-rsa */
};

static int
ed25519_recipient_wrap(const sbx_recipient *r, sbx_age_header *hdr,
                       const uint8_t file_key[SBX_AGE_FILE_KEY_LEN])
{
    const struct ssh_recipient *x = (const struct ssh_recipient *)r;
    uint8_t eph[32], share[32], ss[32], key[32], body[SBX_AGE_FILE_KEY_LEN + 16];
    char share_b64[48];
    int err;
    if ((err = sbx_random_bytes(eph, sizeof(eph))) < 0 ||
        (err = sbx__x25519_base(share, eph)) < 0 || (err = sbx__x25519(ss, eph, x->pk_mont)) < 0 ||
        (err = ed25519_wrap_key(key, ss, x->wire, share, x->pk_mont)) < 0 ||
        (err = sbx__seal_zero_nonce(body, key, file_key, SBX_AGE_FILE_KEY_LEN)) < 0)
        goto out;
    sbx_base64_encode(share_b64, sizeof(share_b64), share, 32, false);
    const char *args[2] = {x->tag, share_b64};
    err = sbx_age_header_add_stanza(hdr, "ssh-ed25519", args, 2, body, sizeof(body));
out:
    SBX_WIPE_BUF(eph);
    SBX_WIPE_BUF(ss);
    SBX_WIPE_BUF(key);
    return err;
}

static int
rsa_recipient_wrap(const sbx_recipient *r, sbx_age_header *hdr,
                   const uint8_t file_key[SBX_AGE_FILE_KEY_LEN])
{
    const struct ssh_recipient *x = (const struct ssh_recipient *)r;
    uint8_t body[SBX_SSH_RSA_MAX_BITS / 8];
    size_t len = sizeof(body);
    EVP_PKEY_CTX *ctx;
    int err;
    if ((err = rsa_ctx(&ctx, x->rsa, true, RSA_PKCS1_OAEP_PADDING, "SHA256", RSA_LABEL)) < 0)
        return err;
    if (EVP_PKEY_encrypt(ctx, body, &len, file_key, SBX_AGE_FILE_KEY_LEN) != 1)
        err = sbx__error_crypto("RSA-OAEP encryption");
    EVP_PKEY_CTX_free(ctx);
    if (err < 0)
        return err;
    const char *args[1] = {x->tag};
    return sbx_age_header_add_stanza(hdr, "ssh-rsa", args, 1, body, len);
}

static int
recipient_to_string(const sbx_recipient *r, sbx_buf *out)
{
    const struct ssh_recipient *x = (const struct ssh_recipient *)r;
    size_t cap = SBX_BASE64_PAD_LEN(x->wire_len) + 1;
    char *b64 = malloc(cap);
    const char *type = x->rsa != NULL ? "ssh-rsa " : "ssh-ed25519 ";
    int err;
    if (b64 == NULL)
        return sbx__error_nomem();
    sbx_base64_encode(b64, cap, x->wire, x->wire_len, true);
    if ((err = sbx_buf_append(out, type, strlen(type))) == 0 &&
        (err = sbx_buf_append(out, b64, strlen(b64))) == 0 && x->comment != NULL &&
        (err = sbx_buf_append(out, " ", 1)) == 0)
        err = sbx_buf_append(out, x->comment, strlen(x->comment));
    free(b64);
    return err;
}

static void
recipient_free(sbx_recipient *r)
{
    struct ssh_recipient *x = (struct ssh_recipient *)r;
    EVP_PKEY_free(x->rsa);
    free(x->wire);
    free(x->comment);
    free(x);
}

static const sbx_recipient_ops ed25519_recipient_ops = {
    SBX_RECIPIENT_OPS_VERSION, "ssh-ed25519",       0,
    ed25519_recipient_wrap,    recipient_to_string, recipient_free,
};

static const sbx_recipient_ops rsa_recipient_ops = {
    SBX_RECIPIENT_OPS_VERSION, "ssh-rsa",           0,
    rsa_recipient_wrap,        recipient_to_string, recipient_free,
};

static int
recipient_alloc(struct ssh_recipient **out, const sbx_recipient_ops *ops, const uint8_t *wire,
                size_t len, const char *comment)
{
    struct ssh_recipient *x = calloc(1, sizeof(*x));
    int err;
    *out = NULL;
    if (x == NULL || (x->wire = malloc(len)) == NULL ||
        (comment != NULL && (x->comment = strdup(comment)) == NULL)) {
        err = sbx__error_nomem();
        goto fail;
    }
    x->base.ops = ops;
    memcpy(x->wire, wire, len);
    x->wire_len = len;
    if ((err = compute_tag(x->tag, wire, len)) < 0)
        goto fail;
    *out = x;
    return 0;
fail:
    if (x != NULL)
        recipient_free(&x->base);
    return err;
}

static int
ed25519_recipient_new(sbx_recipient **out, const uint8_t pk[32], const char *comment)
{
    sbx_buf wire = SBX_BUF_INIT;
    struct ssh_recipient *x = NULL;
    int err;
    if ((err = put_string(&wire, "ssh-ed25519", 11)) < 0 || (err = put_string(&wire, pk, 32)) < 0)
        goto out;
    if ((err = recipient_alloc(&x, &ed25519_recipient_ops, wire.ptr, wire.len, comment)) < 0)
        goto out;
    if ((err = ed25519_to_mont(x->pk_mont, pk)) < 0) {
        recipient_free(&x->base);
        goto out;
    }
    *out = &x->base;
out:
    sbx_buf_dispose(&wire);
    return err;
}

/* Takes ownership of pkey on success. */
static int
rsa_recipient_new(sbx_recipient **out, EVP_PKEY *pkey, const uint8_t *wire, size_t len,
                  const char *comment)
{
    struct ssh_recipient *x;
    int err;
    if ((err = sbx_age__rsa_check_key(pkey, SBX_SSH_RSA_MIN_BITS)) < 0 ||
        (err = recipient_alloc(&x, &rsa_recipient_ops, wire, len, comment)) < 0)
        return err;
    x->rsa = pkey;
    *out = &x->base;
    return 0;
}

/* see ssh.h */
int
sbx_age__ssh_unsupported_type(const uint8_t *type, size_t len)
{
    bool printable = len > 0 && len <= 64;
    for (size_t i = 0; printable && i < len; i++)
        printable = type[i] > 0x20 && type[i] < 0x7f && type[i] != '"';
    if (!printable)
        return sbx__error(SBX_EUNSUPPORTED, "unsupported SSH key type (use ssh-ed25519 or "
                                            "ssh-rsa)");
    return sbx__error(SBX_EUNSUPPORTED,
                      "unsupported SSH key type \"%.*s\" (use ssh-ed25519 or ssh-rsa)", (int)len,
                      (const char *)type);
}

/* see ssh.h */
int
sbx_age__ssh_recipient_from_wire(sbx_recipient **out, const uint8_t *wire, size_t len,
                                 const char *comment)
{
    sbx_ssh_reader r = {wire, len};
    const uint8_t *type, *a, *b;
    size_t type_len, a_len, b_len;
    EVP_PKEY *pkey = NULL;
    int err;
    *out = NULL;
    if ((err = sbx_ssh__read_string(&r, &type, &type_len)) < 0)
        return err;
    if (sbx_ssh__string_is(type, type_len, "ssh-ed25519")) {
        if ((err = sbx_ssh__read_string(&r, &a, &a_len)) < 0)
            return err;
        if (a_len != 32 || r.len != 0)
            return sbx__error(SBX_EFORMAT, "malformed ssh-ed25519 public key");
        return ed25519_recipient_new(out, a, comment);
    }
    if (!sbx_ssh__string_is(type, type_len, "ssh-rsa"))
        return sbx_age__ssh_unsupported_type(type, type_len);
    if ((err = sbx_ssh__read_mpint(&r, &a, &a_len)) < 0 || // e
        (err = sbx_ssh__read_mpint(&r, &b, &b_len)) < 0)   // n
        return err;
    if (r.len != 0)
        return sbx__error(SBX_EFORMAT, "malformed ssh-rsa public key");
    if ((err = rsa_from_ne(&pkey, b, b_len, a, a_len)) < 0)
        return err;
    if ((err = rsa_recipient_new(out, pkey, wire, len, comment)) < 0)
        EVP_PKEY_free(pkey);
    return err;
}

/* see ssh.h */
int
sbx_age__ssh_recipient_from_pkey(sbx_recipient **out, EVP_PKEY *pkey)
{
    sbx_buf wire = SBX_BUF_INIT;
    int err;
    *out = NULL;
    if (EVP_PKEY_is_a(pkey, "ED25519")) {
        uint8_t pk[32];
        size_t len = sizeof(pk);
        if (EVP_PKEY_get_raw_public_key(pkey, pk, &len) != 1 || len != 32)
            return sbx__error_crypto("Ed25519 public key");
        return ed25519_recipient_new(out, pk, NULL);
    }
    if (!EVP_PKEY_is_a(pkey, "RSA")) {
        const char *name = EVP_PKEY_get0_type_name(pkey);
        return sbx__error(SBX_EUNSUPPORTED, "unsupported key type %s (use Ed25519 or RSA)",
                          name != NULL ? name : "(unknown)");
    }
    if ((err = sbx_age__rsa_check_key(pkey, SBX_SSH_RSA_MIN_BITS)) < 0 ||
        (err = rsa_wire(&wire, pkey)) < 0)
        goto out;
    // A public-only copy, so a recipient never holds private key material.
    err = sbx_age__ssh_recipient_from_wire(out, wire.ptr, wire.len, NULL);
out:
    sbx_buf_dispose(&wire);
    return err;
}

/* ---- public key lines ---- */

static bool
is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* see ssh.h */
bool
sbx_age__ssh_type_token(const char *s)
{
    return strncmp(s, "ssh-", 4) == 0 || strncmp(s, "ecdsa-", 6) == 0 ||
           strncmp(s, "sk-", 3) == 0 || strncmp(s, "rsa-", 4) == 0;
}

/* see ssh.h */
bool
sbx_age__ssh_line_is_key(const char *line)
{
    return strncmp(line, "age1", 4) != 0 && strncmp(line, "AGE-", 4) != 0;
}

/* Skip an authorized_keys options field: up to the first unquoted blank. */
static int
skip_options(const char **p)
{
    const char *s = *p;
    bool quoted = false;
    for (; *s != '\0' && (quoted || !is_blank(*s)); s++) {
        if (*s == '\\' && quoted && s[1] != '\0')
            s++;
        else if (*s == '"')
            quoted = !quoted;
    }
    if (quoted)
        return sbx__error(SBX_EFORMAT, "unterminated quote in the key options");
    while (is_blank(*s))
        s++;
    *p = s;
    return 0;
}

static bool
comment_ok(const char *c)
{
    size_t n = strlen(c);
    if (n > MAX_COMMENT)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)c[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return false;
    }
    return true;
}

/* Split "TYPE SEP BLOB [SEP COMMENT]"; strict means single spaces, comment verbatim. */
static int
split_line(const char *line, bool strict, size_t *type_len, const char **blob, size_t *blob_len,
           char **comment)
{
    const char *p = line, *c;
    *comment = NULL;
    while (*p != '\0' && !is_blank(*p))
        p++;
    *type_len = (size_t)(p - line);
    if (*p == '\0' || (strict && *p != ' ') || (strict && is_blank(p[1])))
        return sbx__error(SBX_EFORMAT, "an SSH public key line is \"TYPE BASE64 [COMMENT]\"");
    while (is_blank(*p))
        p++;
    *blob = p;
    while (*p != '\0' && !is_blank(*p))
        p++;
    *blob_len = (size_t)(p - *blob);
    if (*p == '\0')
        return 0;
    if (strict && *p != ' ')
        return sbx__error(SBX_EFORMAT, "an SSH public key line is \"TYPE BASE64 [COMMENT]\"");
    c = strict ? p + 1 : p;
    if (!strict) {
        while (is_blank(*c))
            c++;
        size_t n = strlen(c);
        while (n > 0 && is_blank(c[n - 1]))
            n--;
        if (n == 0)
            return 0;
        *comment = strndup(c, n);
    } else {
        *comment = strdup(c);
    }
    if (*comment == NULL)
        return sbx__error_nomem();
    if (!comment_ok(*comment)) {
        free(*comment);
        *comment = NULL;
        return sbx__error(SBX_EFORMAT, "the key comment is too long or has control characters");
    }
    return 0;
}

/* see ssh.h */
int
sbx_age__ssh_recipient_parse_line(sbx_recipient **out, const char *line, bool strict)
{
    const char *p = line, *blob = NULL;
    size_t type_len = 0, blob_len = 0, wire_len = 0;
    char *comment = NULL;
    uint8_t *wire = NULL;
    int err;
    *out = NULL;
    if (!strict) {
        while (is_blank(*p))
            p++;
        if (!sbx_age__ssh_type_token(p) && (err = skip_options(&p)) < 0)
            return err;
    }
    if ((err = split_line(p, strict, &type_len, &blob, &blob_len, &comment)) < 0)
        return err;
    if (!(type_len == 7 && memcmp(p, "ssh-rsa", 7) == 0) &&
        !(type_len == 11 && memcmp(p, "ssh-ed25519", 11) == 0)) {
        err = sbx_age__ssh_unsupported_type((const uint8_t *)p, type_len);
        goto out;
    }
    if (blob_len > SBX_BASE64_PAD_LEN(SBX_SSH_MAX_BLOB)) {
        err = sbx__error(SBX_ETOOBIG, "SSH public key too large");
        goto out;
    }
    if ((wire = malloc(SBX_BASE64_DECODED_MAX(blob_len) + 1)) == NULL) {
        err = sbx__error_nomem();
        goto out;
    }
    if (sbx_base64_decode(wire, SBX_BASE64_DECODED_MAX(blob_len) + 1, &wire_len, blob, blob_len,
                          true) < 0) {
        err = sbx__error(SBX_EFORMAT, "SSH public key: the key data is not valid base64");
        goto out;
    }
    sbx_ssh_reader r = {wire, wire_len};
    const uint8_t *t;
    size_t t_len;
    if ((err = sbx_ssh__read_string(&r, &t, &t_len)) < 0)
        goto out;
    if (t_len != type_len || memcmp(t, p, type_len) != 0) {
        err = sbx__error(SBX_EFORMAT, "SSH public key: the key type does not match the key data");
        goto out;
    }
    err = sbx_age__ssh_recipient_from_wire(out, wire, wire_len, comment);
out:
    free(wire);
    free(comment);
    return err;
}

/* ---- stanza checks ---- */

static int
check_b64(const char *arg, size_t want)
{
    uint8_t buf[40];
    size_t len;
    size_t n = strlen(arg);
    if (n > 64 || sbx_base64_decode(buf, sizeof(buf), &len, arg, n, false) < 0)
        return -1;
    return len == want ? 0 : -1;
}

/* see ssh.h */
static int
ed25519_check(const sbx_age_stanza *s, size_t index)
{
    if (s->nargs != 2 || check_b64(s->args[0], 4) < 0 || check_b64(s->args[1], 32) < 0 ||
        s->body_len != SBX_AGE_FILE_KEY_LEN + 16)
        return sbx__error(SBX_EHEADER,
                          "ssh-ed25519 stanza %zu is malformed (expected a 4-byte tag, a "
                          "32-byte share and a 32-byte body)",
                          index + 1);
    return 0;
}

static int
rsa_check(const sbx_age_stanza *s, size_t index)
{
    if (s->nargs != 1 || check_b64(s->args[0], 4) < 0 || s->body_len == 0)
        return sbx__error(SBX_EHEADER,
                          "ssh-rsa stanza %zu is malformed (expected a 4-byte tag and a body)",
                          index + 1);
    return 0;
}

const sbx_age_stanza_type sbx_age__ssh_ed25519_type = {
    SBX_AGE_STANZA_TYPE_VERSION, "ssh-ed25519", 0, ed25519_check, NULL,
};

const sbx_age_stanza_type sbx_age__ssh_rsa_type = {
    SBX_AGE_STANZA_TYPE_VERSION, "ssh-rsa", 0, rsa_check, NULL,
};

/* ---- identities ---- */

struct ed25519_identity { /* secure memory */
    sbx_identity base;
    uint8_t seed[32];
    uint8_t scalar[32];
    uint8_t pk_mont[32];
    uint8_t pk[32];
    uint8_t wire[ED25519_WIRE];
    char tag[TAG_CHARS];
};

struct rsa_identity {
    sbx_identity base;
    EVP_PKEY *pkey; /* private parts on OpenSSL's secure heap */
    uint8_t *wire;
    size_t wire_len;
    char tag[TAG_CHARS];
};

static int
ed25519_unwrap_one(const sbx_identity *id, const sbx_age_stanza *s,
                   uint8_t file_key[SBX_AGE_FILE_KEY_LEN])
{
    const struct ed25519_identity *x = (const struct ed25519_identity *)id;
    uint8_t share[34], ss[32], key[32];
    size_t len;
    int err;
    if (strcmp(s->args[0], x->tag) != 0)
        return SBX_AGE_NOT_MINE;
    if (sbx_base64_decode(share, sizeof(share), &len, s->args[1], strlen(s->args[1]), false) < 0 ||
        len != 32)
        return sbx__error(SBX_EHEADER, "ssh-ed25519 stanza: bad share");
    if ((err = sbx__x25519(ss, x->scalar, share)) < 0 ||
        (err = ed25519_wrap_key(key, ss, x->wire, share, x->pk_mont)) < 0)
        goto out;
    err = sbx__open_zero_nonce(file_key, key, s->body, s->body_len);
    if (err == SBX_EAUTH)
        err = SBX_AGE_NOT_MINE;
out:
    SBX_WIPE_BUF(ss);
    SBX_WIPE_BUF(key);
    return err;
}

static int
ed25519_unwrap(sbx_identity *id, const sbx_age_stanza *const *stanzas, size_t count,
               uint8_t file_key[SBX_AGE_FILE_KEY_LEN])
{
    return sbx_age__unwrap_each(id, stanzas, count, file_key, ed25519_unwrap_one);
}

/* PKCS#8 PEM of a private key, through a secure-memory BIO. */
static int
pkey_to_pem(const EVP_PKEY *pkey, sbx_buf *out)
{
    BIO *bio = BIO_new(BIO_s_secmem());
    char *data;
    int err = 0;
    if (bio == NULL || PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) != 1) {
        err = sbx__error_crypto("writing the private key");
    } else {
        long n = BIO_get_mem_data(bio, &data);
        err = sbx_buf_append(out, data, (size_t)n);
    }
    BIO_free(bio);
    return err;
}

static int
ed25519_to_string(const sbx_identity *id, sbx_buf *out)
{
    const struct ed25519_identity *x = (const struct ed25519_identity *)id;
    EVP_PKEY *pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, x->seed, 32);
    int err = pkey != NULL ? pkey_to_pem(pkey, out) : sbx__error_crypto("Ed25519 key");
    EVP_PKEY_free(pkey);
    return err;
}

static int
ed25519_to_recipient(sbx_recipient **out, const sbx_identity *id)
{
    return ed25519_recipient_new(out, ((const struct ed25519_identity *)id)->pk, NULL);
}

static void
ed25519_free(sbx_identity *id)
{
    sbx_secret_free(id, sizeof(struct ed25519_identity));
}

static const char *const ed25519_types[] = {"ssh-ed25519", NULL};

static const sbx_identity_ops ed25519_identity_ops = {
    SBX_IDENTITY_OPS_VERSION, ed25519_types,        ed25519_unwrap, NULL,
    ed25519_to_string,        ed25519_to_recipient, ed25519_free,
};

/* see ssh.h */
int
sbx_age__ssh_ed25519_identity_new(sbx_identity **out, const uint8_t seed[32])
{
    uint8_t digest[64];
    size_t len = 32;
    sbx_buf wire = SBX_BUF_INIT;
    int err;
    struct ed25519_identity *x = sbx_secret_alloc(sizeof(*x));
    EVP_PKEY *pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
    *out = NULL;
    if (x == NULL) {
        err = SBX_ENOMEM;
        goto out;
    }
    x->base.ops = &ed25519_identity_ops;
    memcpy(x->seed, seed, 32);
    if (pkey == NULL || EVP_PKEY_get_raw_public_key(pkey, x->pk, &len) != 1 || len != 32 ||
        EVP_Digest(seed, 32, digest, NULL, EVP_sha512(), NULL) != 1) {
        err = sbx__error_crypto("Ed25519 key");
        goto out;
    }
    memcpy(x->scalar, digest, 32);
    if ((err = sbx__x25519_base(x->pk_mont, x->scalar)) < 0 ||
        (err = put_string(&wire, "ssh-ed25519", 11)) < 0 ||
        (err = put_string(&wire, x->pk, 32)) < 0)
        goto out;
    memcpy(x->wire, wire.ptr, ED25519_WIRE);
    if ((err = compute_tag(x->tag, x->wire, ED25519_WIRE)) < 0)
        goto out;
    *out = &x->base;
    x = NULL;
out:
    SBX_WIPE_BUF(digest);
    sbx_buf_dispose(&wire);
    EVP_PKEY_free(pkey);
    if (x != NULL)
        ed25519_free(&x->base);
    return err;
}

static int
rsa_unwrap_one(const sbx_identity *id, const sbx_age_stanza *s,
               uint8_t file_key[SBX_AGE_FILE_KEY_LEN])
{
    const struct rsa_identity *x = (const struct rsa_identity *)id;
    size_t cap = (size_t)EVP_PKEY_get_size(x->pkey), len;
    uint8_t *plain;
    int err;
    if (strcmp(s->args[0], x->tag) != 0)
        return SBX_AGE_NOT_MINE;
    if ((plain = sbx_secret_alloc(cap)) == NULL)
        return SBX_ENOMEM;
    err = sbx_age__rsa_decrypt(plain, &len, cap, x->pkey, RSA_PKCS1_OAEP_PADDING, "SHA256",
                               RSA_LABEL, s->body, s->body_len);
    if (err == 0 && len != SBX_AGE_FILE_KEY_LEN)
        err =
            sbx__error(SBX_EHEADER, "ssh-rsa stanza: the file key is %zu bytes, expected 16", len);
    else if (err == SBX_EAUTH)
        err = sbx__error(SBX_EHEADER, "ssh-rsa stanza with our key's tag does not decrypt: the "
                                      "file is corrupted");
    if (err == 0)
        memcpy(file_key, plain, SBX_AGE_FILE_KEY_LEN);
    sbx_secret_free(plain, cap);
    return err;
}

static int
rsa_unwrap(sbx_identity *id, const sbx_age_stanza *const *stanzas, size_t count,
           uint8_t file_key[SBX_AGE_FILE_KEY_LEN])
{
    return sbx_age__unwrap_each(id, stanzas, count, file_key, rsa_unwrap_one);
}

static int
rsa_to_string(const sbx_identity *id, sbx_buf *out)
{
    return pkey_to_pem(((const struct rsa_identity *)id)->pkey, out);
}

static int
rsa_to_recipient(sbx_recipient **out, const sbx_identity *id)
{
    const struct rsa_identity *x = (const struct rsa_identity *)id;
    return sbx_age__ssh_recipient_from_wire(out, x->wire, x->wire_len, NULL);
}

static void
rsa_free(sbx_identity *id)
{
    struct rsa_identity *x = (struct rsa_identity *)id;
    EVP_PKEY_free(x->pkey);
    free(x->wire);
    free(x);
}

static const char *const rsa_types[] = {"ssh-rsa", NULL};

static const sbx_identity_ops rsa_identity_ops = {
    SBX_IDENTITY_OPS_VERSION, rsa_types, rsa_unwrap, NULL, rsa_to_string,
    rsa_to_recipient,         rsa_free,
};

/* see ssh.h */
int
sbx_age__ssh_rsa_identity_new(sbx_identity **out, EVP_PKEY *pkey)
{
    sbx_buf wire = SBX_BUF_INIT;
    struct rsa_identity *x = NULL;
    int err;
    *out = NULL;
    if (!EVP_PKEY_is_a(pkey, "RSA"))
        return sbx__error(SBX_EINVAL, "not an RSA key");
    if ((err = sbx_age__rsa_check_key(pkey, SBX_SSH_RSA_MIN_BITS)) < 0 ||
        (err = rsa_wire(&wire, pkey)) < 0)
        goto out;
    if ((x = calloc(1, sizeof(*x))) == NULL) {
        err = sbx__error_nomem();
        goto out;
    }
    x->base.ops = &rsa_identity_ops;
    x->wire = wire.ptr;
    x->wire_len = wire.len;
    wire.ptr = NULL;
    wire.len = wire.cap = 0;
    if ((err = compute_tag(x->tag, x->wire, x->wire_len)) < 0) {
        free(x->wire);
        free(x);
        goto out;
    }
    x->pkey = pkey;
    *out = &x->base;
out:
    sbx_buf_dispose(&wire);
    return err;
}
