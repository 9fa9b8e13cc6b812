/*
 * server/keystore_data.c - the data plane: encryption context, the
 * ciphertext text format, datakey/encrypt/decrypt/rewrap.
 *
 * Implementation notes (format in keystore.h):
 *  - Ciphertext text: "sbx:v" version ":" base64. The version is decimal,
 *    1..4294967295, without leading zeros (one spelling per value); the
 *    base64 is standard with padding and canonical (sbx_base64_decode); the
 *    whole text is at most KMS_CIPHERTEXT_MAX bytes. The version in the text
 *    is not trusted for anything but choosing the secret: it is part of the
 *    AAD, so a changed version fails authentication.
 *  - Order of checks on decrypt: parse, key state (scheduled for deletion),
 *    key id (another key: SBX_EAUTH), version known, not retired, not
 *    destroyed (SBX_ENOKEY), then GCM. Plaintext goes to the caller only
 *    after the tag verified.
 */
#include "keystore_internal.h"

#include "strongbox/error.h"
#include "strongbox/encoding.h"
#include "strongbox/memory.h"
#include "strongbox/random.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#define CT_PREFIX   "sbx:v"
#define CT_OVERHEAD (16 + KMS_GCM_NONCE + KMS_GCM_TAG) /* id || nonce || ... || tag */

static const char ct_label[] = "sbx-kms-ct-v1";

/* ---- encryption context ---- */

struct pair {
    const char *k, *v;
};

static int
pair_cmp(const void *a, const void *b)
{
    return strcmp(((const struct pair *)a)->k, ((const struct pair *)b)->k); // bytewise (unsigned)
}

static void
put_u32(uint8_t *p, size_t n)
{
    p[0] = (uint8_t)(n >> 24);
    p[1] = (uint8_t)(n >> 16);
    p[2] = (uint8_t)(n >> 8);
    p[3] = (uint8_t)n;
}

/* Sorted copy of the pairs and the canonical length; SBX_EINVAL on duplicates or huge items. */
static int
sort_pairs(struct pair *pairs, const char *const *keys, const char *const *values, size_t n,
           size_t *total)
{
    *total = 0;
    for (size_t i = 0; i < n; i++) {
        pairs[i] = (struct pair){keys[i], values[i]};
        size_t kl = strlen(keys[i]), vl = strlen(values[i]);
        if (kl > KMS_STORE_VALUE_MAX || vl > KMS_STORE_VALUE_MAX)
            return sbx_error_set(SBX_EINVAL, "encryption context item is over %u bytes",
                                 KMS_STORE_VALUE_MAX);
        *total += 8 + kl + vl;
    }
    qsort(pairs, n, sizeof(*pairs), pair_cmp);
    for (size_t i = 1; i < n; i++)
        if (strcmp(pairs[i - 1].k, pairs[i].k) == 0)
            return sbx_error_set(SBX_EINVAL, "encryption context has the key \"%s\" twice",
                                 pairs[i].k);
    return 0;
}

/* see keystore.h */
int
kms_context_canonical(const char *const *keys, const char *const *values, size_t n, uint8_t **out,
                      size_t *out_len)
{
    size_t total = 0, o = 0;
    *out = NULL;
    *out_len = 0;
    if (n == 0)
        return 0;
    struct pair *pairs = calloc(n, sizeof(*pairs));
    if (pairs == NULL)
        return sbx_error_set_nomem();
    int err = sort_pairs(pairs, keys, values, n, &total);
    uint8_t *buf = err == 0 ? malloc(total) : NULL;
    if (err == 0 && buf == NULL)
        err = sbx_error_set_nomem();
    for (size_t i = 0; err == 0 && i < n; i++) {
        const char *s[2] = {pairs[i].k, pairs[i].v};
        for (int j = 0; j < 2; j++) {
            size_t l = strlen(s[j]);
            put_u32(buf + o, l);
            memcpy(buf + o + 4, s[j], l);
            o += 4 + l;
        }
    }
    free(pairs);
    if (err == 0) {
        *out = buf;
        *out_len = total;
    }
    return err;
}

/* ---- ciphertext text ---- */

static int
ct_format(char **out, uint32_t version, const uint8_t *bin, size_t n)
{
    char head[24];
    int hl = snprintf(head, sizeof(head), CT_PREFIX "%u:", version);
    size_t cap = (size_t)hl + SBX_BASE64_PAD_LEN(n) + 1;
    char *s = malloc(cap);
    if (s == NULL)
        return sbx_error_set_nomem();
    memcpy(s, head, (size_t)hl);
    if (sbx_base64_encode(s + hl, cap - (size_t)hl, bin, n, true) < 0) {
        free(s);
        return SBX_EINVAL;
    }
    *out = s;
    return 0;
}

/* Parses "<digits>:" with no leading zero, 1..UINT32_MAX; returns the length consumed or -1. */
static long
parse_version(const char *s, size_t len, uint32_t *version)
{
    uint64_t v = 0;
    size_t i = 0;
    if (len == 0 || s[0] < '1' || s[0] > '9')
        return -1;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
        v = v * 10 + (uint64_t)(s[i] - '0');
        if (v > UINT32_MAX)
            return -1;
    }
    if (i == len || s[i] != ':')
        return -1;
    *version = (uint32_t)v;
    return (long)i + 1;
}

/* Strict parse of a ciphertext text into version and binary (malloc'd). */
static int
ct_parse(const char *text, uint32_t *version, uint8_t **bin, size_t *n)
{
    *bin = NULL;
    *n = 0;
    size_t len = strnlen(text, KMS_CIPHERTEXT_MAX + 1);
    if (len > KMS_CIPHERTEXT_MAX)
        return sbx_error_set(SBX_ETOOBIG, "ciphertext is over %u bytes", KMS_CIPHERTEXT_MAX);
    size_t pl = sizeof(CT_PREFIX) - 1;
    if (len < pl || memcmp(text, CT_PREFIX, pl) != 0)
        return sbx_error_set(SBX_EFORMAT, "ciphertext does not start with \"sbx:v\"");
    long vl = parse_version(text + pl, len - pl, version);
    if (vl < 0)
        return sbx_error_set(SBX_EFORMAT, "ciphertext has a bad version number (want sbx:v<1 to "
                                          "4294967295, no leading zeros>:...)");
    const char *b64 = text + pl + (size_t)vl;
    size_t blen = len - pl - (size_t)vl, cap = SBX_BASE64_DECODED_MAX(blen);
    uint8_t *buf = malloc(cap ? cap : 1);
    if (buf == NULL)
        return sbx_error_set_nomem();
    int err = sbx_base64_decode(buf, cap, n, b64, blen, true);
    if (err == 0 && *n < CT_OVERHEAD)
        err = sbx_error_set(SBX_EFORMAT, "ciphertext is too short (%zu bytes, at least %d)", *n,
                            CT_OVERHEAD);
    else if (err < 0)
        err = sbx_error_prefix(SBX_EFORMAT, "ciphertext is not valid base64");
    if (err < 0) {
        free(buf);
        *n = 0;
        return err;
    }
    *bin = buf;
    return 0;
}

/* ---- sealing under a version ---- */

static void
ct_aad(kms_aad aad[4], uint8_t be[4], const uint8_t id[16], uint32_t version, const uint8_t *ctx,
       size_t ctx_len)
{
    put_u32(be, version);
    aad[0] = (kms_aad){ct_label, sizeof(ct_label) - 1};
    aad[1] = (kms_aad){id, 16};
    aad[2] = (kms_aad){be, 4};
    aad[3] = (kms_aad){ctx, ctx_len};
}

/* Loads usable metadata for a data operation (not scheduled for deletion). */
static int
load_live(kms_keystore *ks, kms_store *st, const char *name, bool fresh, kms_meta **m)
{
    int err = kms__meta_load(ks, st, name, fresh, m);
    if (err == 0 && (*m)->info.deletion_time != 0) {
        err = kms__err_deleted(&(*m)->info);
        kms__meta_release(*m);
        *m = NULL;
    }
    return err;
}

/* Encrypts pt under m's latest version into text. */
static int
seal_latest(kms_keystore *ks, kms_store *st, const kms_meta *m, const uint8_t *ctx, size_t ctx_len,
            const uint8_t *pt, size_t pt_len, char **out, uint32_t *version)
{
    uint8_t secret[32], be[4];
    kms_aad aad[4];
    uint32_t v = m->info.latest_version;
    if (pt_len > KMS_ENCRYPT_MAX)
        return sbx_error_set(SBX_ETOOBIG, "plaintext is over %u bytes; encrypt a data key instead",
                             KMS_ENCRYPT_MAX);
    size_t n = CT_OVERHEAD + pt_len;
    uint8_t *bin = malloc(n);
    if (bin == NULL)
        return sbx_error_set_nomem();
    int err = kms__ver_secret(ks, st, m->info.id, v, secret);
    if (err == SBX_ENOTFOUND)
        err = sbx_error_set(SBX_EIO,
                            "the secret of version %u (the latest) of key %s is missing "
                            "from storage",
                            v, m->info.name);
    if (err == 0) {
        memcpy(bin, m->info.id, 16);
        ct_aad(aad, be, m->info.id, v, ctx, ctx_len);
        err = kms__gcm_seal(bin + 16, secret, aad, 4, pt, pt_len);
    }
    SBX_WIPE_BUF(secret);
    if (err == 0)
        err = ct_format(out, v, bin, n);
    free(bin);
    if (err == 0 && version != NULL)
        *version = v;
    return err;
}

static int
not_authentic(const char *name)
{
    return sbx_error_set(SBX_EAUTH,
                         "ciphertext does not authenticate under key %s with this context", name);
}

/* May version v decrypt? */
static int
check_version(kms_keystore *ks, const kms_key_info *in, uint32_t v)
{
    if (v < in->min_decryption_version)
        return sbx_error_set(SBX_ENOKEY,
                             "version %u of key %s is retired (minimum decryption version %u); "
                             "lower min_decryption_version to use it",
                             v, in->name, in->min_decryption_version);
    if (in->versions[v - 1].state == KMS_VERSION_DESTROYED) {
        kms__vcache_evict(ks, in->id, v); // destroyed on another node: drop our copy
        return sbx_error_set(SBX_ENOKEY,
                             "version %u of key %s was destroyed; its ciphertexts "
                             "cannot be decrypted",
                             v, in->name);
    }
    return 0;
}

/* GCM-opens bin (id || nonce || ct || tag) under version v into a new secret buffer. */
static int
open_bin(kms_keystore *ks, kms_store *st, const kms_key_info *in, uint32_t v, const uint8_t *ctx,
         size_t ctx_len, const uint8_t *bin, size_t n, uint8_t **pt, size_t *pt_len)
{
    uint8_t secret[32], be[4];
    kms_aad aad[4];
    size_t len = n - CT_OVERHEAD;
    int err = kms__ver_secret(ks, st, in->id, v, secret);
    if (err == SBX_ENOTFOUND)
        return sbx_error_set(SBX_ENOKEY, "the secret of version %u of key %s is gone (destroyed)",
                             v, in->name);
    if (err < 0)
        return err;
    uint8_t *buf = sbx_secret_alloc(len + 1);
    if (buf == NULL)
        err = SBX_ENOMEM;
    if (err == 0) {
        ct_aad(aad, be, in->id, v, ctx, ctx_len);
        err = kms__gcm_open(buf, secret, aad, 4, bin + 16, n - 16);
    }
    SBX_WIPE_BUF(secret);
    if (err < 0) {
        sbx_secret_free(buf, len + 1);
        return err == SBX_EAUTH ? not_authentic(in->name) : err;
    }
    *pt = buf;
    *pt_len = len;
    return 0;
}

/* Parses and decrypts text under name; *m gets the metadata used. */
static int
open_text(kms_keystore *ks, kms_store *st, const char *name, const uint8_t *ctx, size_t ctx_len,
          const char *text, uint8_t **pt, size_t *pt_len, uint32_t *version, kms_meta **m)
{
    uint8_t *bin = NULL;
    size_t n = 0;
    uint32_t v = 0;
    int err = ct_parse(text, &v, &bin, &n);
    if (err == 0)
        err = load_live(ks, st, name, false, m);
    if (err == 0 && v > (*m)->info.latest_version) { // rotated on another node since cached?
        kms__meta_release(*m);
        err = load_live(ks, st, name, true, m);
    }
    if (err == 0 && (CRYPTO_memcmp(bin, (*m)->info.id, 16) != 0 || v > (*m)->info.latest_version))
        err = not_authentic(name);
    if (err == 0)
        err = check_version(ks, &(*m)->info, v);
    if (err == 0)
        err = open_bin(ks, st, &(*m)->info, v, ctx, ctx_len, bin, n, pt, pt_len);
    free(bin);
    if (err == 0 && version != NULL)
        *version = v;
    if (err < 0) {
        kms__meta_release(*m);
        *m = NULL;
    }
    return err;
}

/* ---- the operations ---- */

/* see keystore.h */
int
kms_encrypt(kms_keystore *ks, kms_store *st, const char *name, const uint8_t *ctx, size_t ctx_len,
            const uint8_t *pt, size_t pt_len, char **ciphertext, uint32_t *version)
{
    kms_meta *m = NULL;
    *ciphertext = NULL;
    if (version != NULL)
        *version = 0;
    if (pt_len > KMS_ENCRYPT_MAX)
        return sbx_error_set(SBX_ETOOBIG, "plaintext is over %u bytes; encrypt a data key instead",
                             KMS_ENCRYPT_MAX);
    int err = load_live(ks, st, name, false, &m);
    if (err == 0)
        err = seal_latest(ks, st, m, ctx, ctx_len, pt, pt_len, ciphertext, version);
    kms__meta_release(m);
    return err;
}

/* see keystore.h */
int
kms_datakey(kms_keystore *ks, kms_store *st, const char *name, const uint8_t *ctx, size_t ctx_len,
            size_t bytes, uint8_t *dek, char **ciphertext, uint32_t *version)
{
    uint8_t key[64];
    *ciphertext = NULL;
    if (version != NULL)
        *version = 0;
    if (bytes != 16 && bytes != 32 && bytes != 64)
        return sbx_error_set(SBX_EINVAL, "data key size must be 128, 256 or 512 bits");
    int err = sbx_random_bytes(key, bytes);
    if (err == 0)
        err = kms_encrypt(ks, st, name, ctx, ctx_len, key, bytes, ciphertext, version);
    if (err == 0 && dek != NULL)
        memcpy(dek, key, bytes);
    SBX_WIPE_BUF(key);
    return err;
}

/* see keystore.h */
int
kms_decrypt(kms_keystore *ks, kms_store *st, const char *name, const uint8_t *ctx, size_t ctx_len,
            const char *ciphertext, uint8_t **pt, size_t *pt_len, uint32_t *version)
{
    kms_meta *m = NULL;
    *pt = NULL;
    *pt_len = 0;
    if (version != NULL)
        *version = 0;
    int err = open_text(ks, st, name, ctx, ctx_len, ciphertext, pt, pt_len, version, &m);
    kms__meta_release(m);
    return err;
}

/* see keystore.h */
int
kms_rewrap(kms_keystore *ks, kms_store *st, const char *name, const uint8_t *ctx, size_t ctx_len,
           const char *ciphertext, char **out, uint32_t *version)
{
    kms_meta *m = NULL;
    uint8_t *pt = NULL;
    size_t pt_len = 0;
    *out = NULL;
    if (version != NULL)
        *version = 0;
    int err = open_text(ks, st, name, ctx, ctx_len, ciphertext, &pt, &pt_len, NULL, &m);
    if (err == 0)
        err = seal_latest(ks, st, m, ctx, ctx_len, pt, pt_len, out, version);
    sbx_secret_free(pt, pt_len + 1);
    kms__meta_release(m);
    return err;
}
