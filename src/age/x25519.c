/*
 * src/age/x25519.c - the native X25519 recipient type (age.md §6.1).
 *
 * Implementation notes:
 *   wrap:   eph random; share = X25519(eph, 9); ss = X25519(eph, pk)
 *           key = HKDF-SHA-256(ss, salt = share || pk, "age-encryption.org/v1/X25519")
 *           stanza "-> X25519 base64(share)", body = ChaCha20-Poly1305(key, 0, file_key)
 *   unwrap: share must be canonical base64 of 32 bytes and the body exactly
 *           32 bytes (checked before any crypto, against partitioning
 *           oracles); an all-zero ss fails the file; a tag failure only means
 *           the stanza is for someone else.
 */
#include "age/keys.h"
#include "strongbox/encoding.h"
#include "strongbox/memory.h"
#include "strongbox/random.h"
#include "core/crypto.h"
#include "core/error.h"

#include <stdlib.h>
#include <string.h>

#define X25519_INFO "age-encryption.org/v1/X25519"

struct x25519_recipient {
    sbx_recipient base;
    uint8_t pk[32];
};

struct x25519_identity {
    sbx_identity base;
    uint8_t sk[32];
    uint8_t pk[32];
};

static int
wrap_key(uint8_t key[32], const uint8_t ss[32], const uint8_t share[32], const uint8_t pk[32])
{
    uint8_t salt[64];
    memcpy(salt, share, 32);
    memcpy(salt + 32, pk, 32);
    return sbx__hkdf_sha256(key, ss, 32, salt, sizeof(salt), X25519_INFO);
}

static int
recipient_wrap(const sbx_recipient *r, sbx_age_header *hdr,
               const uint8_t file_key[SBX_AGE_FILE_KEY_LEN])
{
    const struct x25519_recipient *x = (const struct x25519_recipient *)r;
    uint8_t eph[32], share[32], ss[32], key[32], body[SBX_AGE_FILE_KEY_LEN + 16];
    char share_b64[48];
    int err;
    if ((err = sbx_random_bytes(eph, sizeof(eph))) < 0 || (err = sbx__x25519_base(share, eph)) < 0)
        goto out;
    if ((err = sbx__x25519(ss, eph, x->pk)) < 0) {
        err = sbx__error(SBX_EINVAL, "the X25519 recipient is a low-order point; it cannot "
                                     "receive files");
        goto out;
    }
    if ((err = wrap_key(key, ss, share, x->pk)) < 0 ||
        (err = sbx__seal_zero_nonce(body, key, file_key, SBX_AGE_FILE_KEY_LEN)) < 0)
        goto out;
    sbx_base64_encode(share_b64, sizeof(share_b64), share, 32, false);
    const char *args[1] = {share_b64};
    err = sbx_age_header_add_stanza(hdr, "X25519", args, 1, body, sizeof(body));
out:
    SBX_WIPE_BUF(eph);
    SBX_WIPE_BUF(ss);
    SBX_WIPE_BUF(key);
    return err;
}

static int
recipient_to_string(const sbx_recipient *r, sbx_buf *out)
{
    const struct x25519_recipient *x = (const struct x25519_recipient *)r;
    char s[80];
    int err = sbx_bech32_encode(s, sizeof(s), "age", x->pk, 32, false);
    return err < 0 ? err : sbx_buf_append(out, s, strlen(s));
}

static void
recipient_free(sbx_recipient *r)
{
    free(r);
}

static const sbx_recipient_ops recipient_ops = {
    SBX_RECIPIENT_OPS_VERSION, "X25519", 0, recipient_wrap, recipient_to_string, recipient_free,
};

int
sbx_age__x25519_recipient_from_bytes(sbx_recipient **out, const uint8_t pk[32])
{
    struct x25519_recipient *x = calloc(1, sizeof(*x));
    *out = NULL;
    if (x == NULL)
        return sbx__error_nomem();
    x->base.ops = &recipient_ops;
    memcpy(x->pk, pk, 32);
    *out = &x->base;
    return 0;
}

static int
stanza_check(const sbx_age_stanza *s, size_t index)
{
    uint8_t share[34];
    size_t len;
    if (s->nargs != 1)
        return sbx__error(SBX_EHEADER, "X25519 stanza %zu: expected 1 argument, got %zu", index + 1,
                          s->nargs);
    if (sbx_base64_decode(share, sizeof(share), &len, s->args[0], strlen(s->args[0]), false) < 0 ||
        len != 32)
        return sbx__error(SBX_EHEADER,
                          "X25519 stanza %zu: share is not 32 bytes of canonical "
                          "base64",
                          index + 1);
    if (s->body_len != SBX_AGE_FILE_KEY_LEN + 16)
        return sbx__error(SBX_EHEADER, "X25519 stanza %zu: body is %zu bytes, expected 32",
                          index + 1, s->body_len);
    return 0;
}

const sbx_age_stanza_type sbx_age__x25519_type = {
    SBX_AGE_STANZA_TYPE_VERSION, "X25519", 0, stanza_check, NULL,
};

static int
unwrap_one(const sbx_identity *id, const sbx_age_stanza *s, uint8_t file_key[SBX_AGE_FILE_KEY_LEN])
{
    const struct x25519_identity *x = (const struct x25519_identity *)id;
    uint8_t share[34], ss[32], key[32];
    size_t len;
    int err;
    if ((err = sbx_base64_decode(share, sizeof(share), &len, s->args[0], strlen(s->args[0]),
                                 false)) < 0)
        return sbx__error(SBX_EHEADER, "X25519 stanza: bad share");
    if ((err = sbx__x25519(ss, x->sk, share)) < 0 || (err = wrap_key(key, ss, share, x->pk)) < 0)
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
identity_unwrap(sbx_identity *id, const sbx_age_stanza *const *stanzas, size_t count,
                uint8_t file_key[SBX_AGE_FILE_KEY_LEN])
{
    return sbx_age__unwrap_each(id, stanzas, count, file_key, unwrap_one);
}

static int
identity_to_string(const sbx_identity *id, sbx_buf *out)
{
    const struct x25519_identity *x = (const struct x25519_identity *)id;
    char s[96];
    int err = sbx_bech32_encode(s, sizeof(s), "AGE-SECRET-KEY-", x->sk, 32, true);
    if (err == 0)
        err = sbx_buf_append(out, s, strlen(s));
    SBX_WIPE_BUF(s);
    return err;
}

static int
identity_to_recipient(sbx_recipient **out, const sbx_identity *id)
{
    return sbx_age__x25519_recipient_from_bytes(out, ((const struct x25519_identity *)id)->pk);
}

static void
identity_free(sbx_identity *id)
{
    sbx_secret_free(id, sizeof(struct x25519_identity));
}

static const char *const identity_types[] = {"X25519", NULL};

static const sbx_identity_ops identity_ops = {
    SBX_IDENTITY_OPS_VERSION, identity_types,        identity_unwrap, NULL,
    identity_to_string,       identity_to_recipient, identity_free,
};

int
sbx_age__x25519_identity_from_bytes(sbx_identity **out, const uint8_t sk[32])
{
    int err;
    struct x25519_identity *x = sbx_secret_alloc(sizeof(*x));
    *out = NULL;
    if (x == NULL)
        return SBX_ENOMEM;
    x->base.ops = &identity_ops;
    memcpy(x->sk, sk, 32);
    if ((err = sbx__x25519_base(x->pk, x->sk)) < 0) {
        identity_free(&x->base);
        return err;
    }
    *out = &x->base;
    return 0;
}

/* see strongbox/age.h */
int
sbx_identity_generate(sbx_identity **out)
{
    uint8_t sk[32];
    int err = sbx_random_bytes(sk, sizeof(sk));
    *out = NULL;
    if (err == 0)
        err = sbx_age__x25519_identity_from_bytes(out, sk);
    SBX_WIPE_BUF(sk);
    return err;
}
