/*
 * server/keystore_seed.c - keas.kmi compatibility: seed KEKs and their data keys.
 *
 * Implementation notes:
 *  - KEK text: "sbx-kek-1:" 32 lower-case hex (the id) ":" 43 base64url
 *    characters without padding (the 32-byte secret), 86 characters in all.
 *    Surrounding whitespace is ignored; anything else malformed is
 *    SBX_EFORMAT.
 *  - Stored row (namespace "seed", key = id hex), 88 bytes: the data key
 *    sealed under HKDF-SHA-256(secret, salt = id, "sbx-kms-seed-kek-v1")
 *    with AAD "sbx-kms-seed-v1" || id, and that sealed again under the root
 *    key with AAD "sbx-kms-seed-root-v1" || id. The database alone (without
 *    the KEK) and the KEK alone (without the root key) both give nothing.
 *  - An unknown id and a wrong secret give the same SBX_ENOTFOUND and
 *    message ("Key not found"), so the answer does not tell which part was
 *    wrong.
 */
#include "keystore_internal.h"
#include "util.h"

#include "strongbox/kdf.h"
#include "strongbox/error.h"
#include "strongbox/encoding.h"
#include "strongbox/memory.h"
#include "strongbox/random.h"

#include <stdlib.h>
#include <string.h>

#define KEK_PREFIX     "sbx-kek-1:"
#define KEK_PREFIX_LEN (sizeof(KEK_PREFIX) - 1)
#define KEK_TEXT_LEN   (KEK_PREFIX_LEN + 32 + 1 + 43)
#define SEED_INNER     (KMS_GCM_NONCE + 32 + KMS_GCM_TAG)
#define SEED_OUTER     (KMS_GCM_NONCE + SEED_INNER + KMS_GCM_TAG)

static const char inner_label[] = "sbx-kms-seed-v1";
static const char outer_label[] = "sbx-kms-seed-root-v1";

static int
not_found(void)
{
    return sbx_error_set(SBX_ENOTFOUND, "Key not found");
}

/* The two seals of a seed row: 0 = under the KEK, 1 = under the root key. */
static void
seed_aad(kms_aad aad[2], int layer, const uint8_t id[16])
{
    aad[0] = layer == 0 ? (kms_aad){inner_label, sizeof(inner_label) - 1}
                        : (kms_aad){outer_label, sizeof(outer_label) - 1};
    aad[1] = (kms_aad){id, 16};
}

static int
seed_seal(kms_keystore *ks, uint8_t out[SEED_OUTER], const uint8_t id[16], const uint8_t secret[32],
          const uint8_t dek[32])
{
    uint8_t kek[32], inner[SEED_INNER];
    kms_aad aad[2];
    int err = sbx_hkdf_sha256(kek, secret, 32, id, 16, "sbx-kms-seed-kek-v1");
    seed_aad(aad, 0, id);
    if (err == 0)
        err = kms__gcm_seal(inner, kek, aad, 2, dek, 32);
    seed_aad(aad, 1, id);
    if (err == 0)
        err = kms__gcm_seal(out, ks->root, aad, 2, inner, sizeof(inner));
    SBX_WIPE_BUF(kek);
    return err;
}

static int
seed_open(kms_keystore *ks, const uint8_t *row, size_t len, const uint8_t id[16],
          const uint8_t secret[32], uint8_t dek[32])
{
    uint8_t kek[32], inner[SEED_INNER];
    kms_aad aad[2];
    char idhex[33];
    kms_hex(idhex, id, 16);
    if (len != SEED_OUTER)
        return sbx_error_set(SBX_EIO, "stored seed key %s has a bad length", idhex);
    seed_aad(aad, 1, id);
    if (kms__gcm_open(inner, ks->root, aad, 2, row, len) < 0)
        return sbx_error_set(SBX_EIO,
                             "stored seed key %s does not authenticate under the root key "
                             "(tampered row, or another root key)",
                             idhex);
    int err = sbx_hkdf_sha256(kek, secret, 32, id, 16, "sbx-kms-seed-kek-v1");
    seed_aad(aad, 0, id);
    if (err == 0 && kms__gcm_open(dek, kek, aad, 2, inner, sizeof(inner)) < 0)
        err = not_found(); // wrong secret: same answer as an unknown id
    SBX_WIPE_BUF(kek);
    SBX_WIPE_BUF(inner);
    return err;
}

static int
kek_format(char **out, const uint8_t id[16], const uint8_t secret[32])
{
    char *s = malloc(KEK_TEXT_LEN + 1);
    char b64[SBX_BASE64_PAD_LEN(32) + 1];
    if (s == NULL)
        return sbx_error_set_nomem();
    memcpy(s, KEK_PREFIX, KEK_PREFIX_LEN);
    kms_hex(s + KEK_PREFIX_LEN, id, 16);
    s[KEK_PREFIX_LEN + 32] = ':';
    sbx_base64_encode(b64, sizeof(b64), secret, 32, false);
    for (size_t i = 0; i < 43; i++)
        s[KEK_PREFIX_LEN + 33 + i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
    s[KEK_TEXT_LEN] = '\0';
    SBX_WIPE_BUF(b64);
    *out = s;
    return 0;
}

/* see keystore.h */
int
kms_seed_new(kms_keystore *ks, kms_store *st, char **kek_text)
{
    uint8_t id[16], secret[32], dek[32], row[SEED_OUTER];
    char idhex[33];
    *kek_text = NULL;
    int err = sbx_random_bytes(id, 16);
    if (err == 0)
        err = sbx_random_bytes(secret, 32);
    if (err == 0)
        err = sbx_random_bytes(dek, 32);
    if (err == 0)
        err = seed_seal(ks, row, id, secret, dek);
    kms_hex(idhex, id, 16);
    if (err == 0)
        err = kms_store_put(st, "seed", idhex, row, sizeof(row), KMS_REV_ABSENT, NULL);
    if (err == SBX_ECONFLICT)
        err = sbx_error_set(SBX_EIO, "random seed key id collided; the random generator is broken");
    if (err == 0)
        err = kek_format(kek_text, id, secret);
    SBX_WIPE_BUF(secret);
    SBX_WIPE_BUF(dek);
    return err;
}

static bool
is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Parses KEK text into id and secret. */
static int
kek_parse(const char *text, size_t len, uint8_t id[16], uint8_t secret[32])
{
    char idhex[33], b64[44];
    size_t got = 0;
    while (len > 0 && is_space(*text))
        text++, len--;
    while (len > 0 && is_space(text[len - 1]))
        len--;
    if (len != KEK_TEXT_LEN || memcmp(text, KEK_PREFIX, KEK_PREFIX_LEN) != 0 ||
        text[KEK_PREFIX_LEN + 32] != ':')
        return sbx_error_set(SBX_EFORMAT,
                             "not a key encrypting key (want sbx-kek-1:<id>:<secret>)");
    memcpy(idhex, text + KEK_PREFIX_LEN, 32);
    idhex[32] = '\0';
    int err = strspn(idhex, "0123456789abcdef") == 32 ? kms_unhex(id, 16, idhex) : SBX_EFORMAT;
    for (size_t i = 0; err == 0 && i < 43; i++) {
        char c = text[KEK_PREFIX_LEN + 33 + i];
        if (c == '+' || c == '/' || c == '=')
            err = SBX_EFORMAT;
        b64[i] = c == '-' ? '+' : c == '_' ? '/' : c;
    }
    if (err == 0 && (sbx_base64_decode(secret, 32, &got, b64, 43, false) < 0 || got != 32))
        err = SBX_EFORMAT;
    SBX_WIPE_BUF(b64);
    if (err < 0) {
        sbx_wipe(secret, 32);
        return sbx_error_set(SBX_EFORMAT, "key encrypting key has a bad id or secret encoding");
    }
    return 0;
}

/* see keystore.h */
int
kms_seed_key(kms_keystore *ks, kms_store *st, const char *kek_text, size_t len, uint8_t dek[32])
{
    uint8_t id[16], secret[32];
    uint8_t *row = NULL;
    size_t row_len = 0;
    char idhex[33];
    int err = kek_parse(kek_text, len, id, secret);
    if (err < 0)
        return err;
    kms_hex(idhex, id, 16);
    err = kms_store_get(st, "seed", idhex, &row, &row_len, NULL);
    if (err == SBX_ENOTFOUND)
        err = not_found();
    if (err == 0)
        err = seed_open(ks, row, row_len, id, secret, dek);
    free(row);
    SBX_WIPE_BUF(secret);
    if (err < 0)
        sbx_wipe(dek, 32);
    return err;
}

/* see keystore.h */
int
kms_key_count(kms_store *st, int64_t *n)
{
    int64_t seeds = 0, keys = 0;
    *n = 0;
    int err = kms_store_count(st, "seed", &seeds);
    if (err == 0)
        err = kms_store_count(st, "key", &keys);
    if (err == 0)
        *n = seeds + keys;
    return err;
}
