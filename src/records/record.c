/*
 * src/records/record.c - the record format: build, parse, seal and open
 * (see strongbox/records.h).
 *
 * Implementation notes (docs/records.md, "Format"):
 *
 *     "SBXR" | version 1 | kind | keyref_len u16be | keyref
 *     kind 1 (file): key_id[8] | salt[16]
 *     kind 2 (kms):  wrapped_len u16be | wrapped (from a key source: the key
 *                    server's "sbx:v<N>:...")
 *     nonce[12] | AES-256-GCM(type byte || value) | tag[16]
 *
 * AAD = every byte before the ciphertext (the header, nonce included) ||
 * u32be(context length) || context. Record key: file kind HKDF-SHA-256(file
 * key, salt, "sbx record v1"); kms kind the 256-bit data key itself (shared
 * across records by the cache; nonces are random, and the cache bounds the
 * uses per data key far below the 2^32 random-nonce limit). The plaintext is
 * released only after the tag verifies; every buffer that held it is wiped.
 *
 * Kind 2 keys come from the key source registered for the keyref's prefix
 * (strongbox/sys/records.h, key_source.c): "https://" is libstrongbox-kms's.
 * This file knows no source; it only names libstrongbox-kms when an https://
 * keyref finds none registered.
 */
#include "records/records.h"
#include "core/crypto.h"
#include "core/error.h"
#include "strongbox/aead.h"
#include "strongbox/memory.h"
#include "strongbox/random.h"

#include <string.h>

#define MAGIC       "SBXR"
#define VERSION     1
#define KIND_FILE   1
#define KIND_KMS    2
#define SALT_LEN    16
#define NONCE_LEN   12
#define TAG_LEN     16
#define MAX_WRAPPED SBX_RECORD_MAX_WRAPPED

/* A parsed record: pointers into the caller's bytes. */
typedef struct rec_view {
    int kind;
    const char *keyref;
    size_t keyref_len;
    const uint8_t *key_id, *salt; // file
    const char *wrapped;          // kms
    size_t wrapped_len;
    const uint8_t *nonce;
    size_t header_len; // bytes before the ciphertext
    const uint8_t *ct, *tag;
    size_t ct_len; // without the tag
} rec_view;

static void
put16(uint8_t *p, size_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static size_t
get16(const uint8_t *p)
{
    return (size_t)p[0] << 8 | p[1];
}

/* ------------------------------------------------------------------ AEAD */

/* The AAD parts: header (nonce included) || u32be(ctx_len) || context. */
static void
rec_aad(sbx_aead_part aad[3], uint8_t len_be[4], const uint8_t *header, size_t header_len,
        const void *context, size_t ctx_len)
{
    len_be[0] = (uint8_t)(ctx_len >> 24);
    len_be[1] = (uint8_t)(ctx_len >> 16);
    len_be[2] = (uint8_t)(ctx_len >> 8);
    len_be[3] = (uint8_t)ctx_len;
    aad[0] = (sbx_aead_part){header, header_len};
    aad[1] = (sbx_aead_part){len_be, 4};
    aad[2] = (sbx_aead_part){context, ctx_len};
}

/* Seal type || value after the header already in out (v describes it). */
static int
seal(sbx_buf *out, size_t start, const uint8_t key[32], rec_view *v, int type, const void *value,
     size_t len, const void *context, size_t ctx_len)
{
    sbx_aead_part aad[3];
    uint8_t len_be[4];
    int err;
    if ((err = sbx_buf_reserve(out, 1 + len + TAG_LEN)) < 0)
        return err;
    v->nonce = out->ptr + start + v->header_len - NONCE_LEN; // out may have moved
    rec_aad(aad, len_be, out->ptr + start, v->header_len, context, ctx_len);
    uint8_t *ct = out->ptr + out->len; // type || value, sealed in place
    ct[0] = (uint8_t)type;
    if (len > 0)
        memcpy(ct + 1, value, len);
    if ((err = sbx_aead_gcm_seal(ct, ct + 1 + len, key, v->nonce, aad, 3, ct, 1 + len)) < 0)
        return err;
    out->len += 1 + len + TAG_LEN;
    return 0;
}

/* Open v's ciphertext; on success *type and the value appended to out. */
static int
open_rec(int *type, sbx_buf *out, const uint8_t key[32], const rec_view *v, const uint8_t *header,
         const void *context, size_t ctx_len)
{
    sbx_aead_part aad[3];
    uint8_t len_be[4];
    int err;
    if ((err = sbx_buf_reserve(out, v->ct_len)) < 0)
        return err;
    rec_aad(aad, len_be, header, v->header_len, context, ctx_len);
    uint8_t *p = out->ptr + out->len; // scratch: out->len moves only after the tag verifies
    err = sbx_aead_gcm_open(p, key, v->nonce, aad, 3, v->ct, v->ct_len, v->tag);
    if (err == SBX_EAUTH)
        err = sbx__error(SBX_EAUTH, "record does not authenticate with this context: a value "
                                    "copied from another row or column, or tampered with");
    if (err == 0) {
        *type = p[0];
        size_t len = v->ct_len - 1;
        if (*type < SBX_RECORD_INTEGER || *type > SBX_RECORD_BLOB ||
            ((*type == SBX_RECORD_INTEGER || *type == SBX_RECORD_REAL) && len != 8)) {
            err = sbx__error(SBX_EFORMAT, "record: bad value type %d", *type);
            *type = 0;
        } else {
            memmove(p, p + 1, len);
            out->len += len;
            p[len] = 0;
            return 0;
        }
    }
    sbx_wipe(p, v->ct_len);
    return err;
}

/* ------------------------------------------------------------------ format */

/* Parse a record's framing (no crypto). */
static int
parse(rec_view *v, const uint8_t *p, size_t len)
{
    memset(v, 0, sizeof *v);
    size_t off = 8;
    if (len < off || memcmp(p, MAGIC, 4) != 0)
        return sbx__error(SBX_EFORMAT, "not an encrypted record (no SBXR prefix)");
    if (p[4] != VERSION)
        return sbx__error(SBX_EFORMAT, "record version %u is not supported (this library reads 1)",
                          p[4]);
    v->kind = p[5];
    v->keyref_len = get16(p + 6);
    v->keyref = (const char *)p + off;
    if (v->kind != KIND_FILE && v->kind != KIND_KMS)
        return sbx__error(SBX_EFORMAT, "record: unknown key kind %d", v->kind);
    if (v->keyref_len == 0 || v->keyref_len > SBX_RECORD_MAX_KEYREF || len - off < v->keyref_len ||
        memchr(v->keyref, '\0', v->keyref_len) != NULL)
        return sbx__error(SBX_EFORMAT, "record: truncated or bad key reference");
    off += v->keyref_len;
    if (v->kind == KIND_FILE) {
        if (len - off < SBX_RECORD__KEY_ID_LEN + SALT_LEN)
            return sbx__error(SBX_EFORMAT, "record: truncated");
        v->key_id = p + off;
        v->salt = p + off + SBX_RECORD__KEY_ID_LEN;
        off += SBX_RECORD__KEY_ID_LEN + SALT_LEN;
    } else {
        if (len - off < 2 || (v->wrapped_len = get16(p + off)) == 0 ||
            v->wrapped_len > MAX_WRAPPED || len - off - 2 < v->wrapped_len)
            return sbx__error(SBX_EFORMAT, "record: truncated or bad data key");
        v->wrapped = (const char *)p + off + 2;
        if (memchr(v->wrapped, '\0', v->wrapped_len) != NULL)
            return sbx__error(SBX_EFORMAT, "record: bad data key");
        off += 2 + v->wrapped_len;
    }
    if (len - off < NONCE_LEN + 1 + TAG_LEN)
        return sbx__error(SBX_EFORMAT, "record: truncated");
    v->nonce = p + off;
    v->header_len = off + NONCE_LEN;
    v->ct = p + v->header_len;
    v->ct_len = len - v->header_len - TAG_LEN;
    v->tag = v->ct + v->ct_len;
    return 0;
}

/* Append the header (through the nonce) to out and describe it in v. */
static int
build_header(sbx_buf *out, rec_view *v)
{
    uint8_t fixed[8] = {'S', 'B', 'X', 'R', VERSION, (uint8_t)v->kind, 0, 0};
    uint8_t wl[2], nonce[NONCE_LEN];
    size_t start = out->len;
    int err;
    put16(fixed + 6, v->keyref_len);
    put16(wl, v->wrapped_len);
    if ((err = sbx_random_bytes(nonce, sizeof nonce)) < 0 ||
        (err = sbx_buf_append(out, fixed, sizeof fixed)) < 0 ||
        (err = sbx_buf_append(out, v->keyref, v->keyref_len)) < 0)
        return err;
    if (v->kind == KIND_FILE) {
        if ((err = sbx_buf_append(out, v->key_id, SBX_RECORD__KEY_ID_LEN)) < 0 ||
            (err = sbx_buf_append(out, v->salt, SALT_LEN)) < 0)
            return err;
    } else {
        if ((err = sbx_buf_append(out, wl, 2)) < 0 ||
            (err = sbx_buf_append(out, v->wrapped, v->wrapped_len)) < 0)
            return err;
    }
    err = sbx_buf_append(out, nonce, sizeof nonce);
    v->header_len = out->len - start;
    return err;
}

/* ------------------------------------------------------------------ keys */

static bool
is_file_ref(const char *keyref, size_t len)
{
    return len > 5 && memcmp(keyref, "file:", 5) == 0;
}

static bool
is_kms_ref(const char *keyref, size_t len)
{
    return len > 8 && memcmp(keyref, "https://", 8) == 0;
}

/*
 * The per-record key of a file-kind record. key_id_in (decryption) must match
 * the file's key id; key_id_out (encryption) receives it.
 */
static int
file_record_key(uint8_t rkey[32], const uint8_t **key_id_out, const char *keyref,
                const uint8_t *key_id_in, const uint8_t *salt)
{
    const uint8_t *key = NULL, *key_id = NULL;
    const char *path = keyref + 5;
    int err;
    if ((err = sbx_record__key_get(&key, &key_id, path, key_id_in != NULL)) < 0)
        return err;
    if (key_id_in != NULL && !sbx_equal(key_id, key_id_in, SBX_RECORD__KEY_ID_LEN))
        return sbx__error(SBX_ENOKEY,
                          "key file %s holds another key than the one this record was made with "
                          "(key id %02x%02x%02x%02x..., the file's is %02x%02x%02x%02x...)",
                          path, key_id_in[0], key_id_in[1], key_id_in[2], key_id_in[3], key_id[0],
                          key_id[1], key_id[2], key_id[3]);
    if (key_id_out != NULL)
        *key_id_out = key_id;
    return sbx__hkdf_sha256(rkey, key, SBX_RECORD_KEY_LEN, salt, SALT_LEN, "sbx record v1");
}

static int
check_args(const char *keyref, int type, const void *value, size_t len, const void *context,
           size_t ctx_len)
{
    if (keyref == NULL || (value == NULL && len > 0) || (context == NULL && ctx_len > 0))
        return sbx__error(SBX_EINVAL, "sbx_record_encrypt: NULL argument");
    if (type < SBX_RECORD_INTEGER || type > SBX_RECORD_BLOB)
        return sbx__error(SBX_EINVAL, "sbx_record_encrypt: bad type %d", type);
    if ((type == SBX_RECORD_INTEGER || type == SBX_RECORD_REAL) && len != 8)
        return sbx__error(SBX_EINVAL, "sbx_record_encrypt: integers and reals are 8 bytes");
    if (len > SBX_RECORD_MAX_VALUE)
        return sbx__error(SBX_ETOOBIG, "value of %zu bytes is over the record limit of %zu", len,
                          SBX_RECORD_MAX_VALUE);
    if (ctx_len > SBX_RECORD_MAX_CONTEXT)
        return sbx__error(SBX_ETOOBIG, "context of %zu bytes is over the limit of %d", ctx_len,
                          SBX_RECORD_MAX_CONTEXT);
    size_t klen = strlen(keyref), slen = sbx_record__scheme_len(keyref, klen);
    if (klen <= SBX_RECORD_MAX_KEYREF && (is_file_ref(keyref, klen) || is_kms_ref(keyref, klen) ||
                                          sbx_record__source_find(keyref, klen) != NULL))
        return 0;
    if (klen <= SBX_RECORD_MAX_KEYREF && slen > 0 && klen > slen)
        return sbx__error(SBX_EINVAL,
                          "key reference must be file:PATH or https://host:port/NAME, or start "
                          "with the prefix of a registered key source (strongbox/sys/records.h): "
                          "none is registered for %.*s",
                          (int)slen, keyref);
    return sbx__error(SBX_EINVAL,
                      "key reference must be file:PATH or https://host:port/NAME (at most "
                      "%d bytes)",
                      SBX_RECORD_MAX_KEYREF);
}

/* The error for a keyref of len bytes with a scheme that no registered source serves. */
static int
no_source(const char *keyref, size_t len)
{
    if (is_kms_ref(keyref, len))
        return sbx__error(SBX_EUNSUPPORTED,
                          "key-server keys (https://) need libstrongbox-kms, which is not loaded: "
                          "link with -lstrongbox-kms (pkg-config strongbox-kms); it registers "
                          "itself when loaded");
    return sbx__error(SBX_EUNSUPPORTED,
                      "no record key source is registered for %.*s (strongbox/sys/records.h)",
                      (int)sbx_record__scheme_len(keyref, len), keyref);
}

/* A key source's callback result: 0 or its negative code (a positive one is its bug). */
static int
source_result(const sbx_record_key_source *src, const char *what, int err)
{
    if (err > 0)
        return sbx__error(SBX_EINVAL, "record key source %s: %s returned %d", src->prefix, what,
                          err);
    return err;
}

/* A data key and its wrapped form from the key source of keyref (len bytes). */
static int
source_datakey(uint8_t key[32], sbx_buf *wrapped, const char *keyref, size_t len, uint64_t bytes)
{
    const sbx_record_key_source *src = sbx_record__source_find(keyref, len);
    int err;
    if (src == NULL)
        return no_source(keyref, len);
    if ((err = source_result(src, "datakey",
                             src->datakey(key, wrapped, keyref, bytes, src->payload))) < 0)
        return err;
    if (wrapped->len == 0 || wrapped->len > MAX_WRAPPED)
        return sbx__error(SBX_EFORMAT, "key server %s: data key ciphertext of %zu bytes", keyref,
                          wrapped->len);
    if (memchr(wrapped->ptr, '\0', wrapped->len) != NULL)
        return sbx__error(SBX_EFORMAT, "key source %s: data key ciphertext holds a NUL byte",
                          src->prefix);
    return 0;
}

/* The data key of a kind-2 record from the key source of its keyref (len bytes). */
static int
source_unwrap(uint8_t key[32], const char *keyref, size_t len, const char *wrapped)
{
    const sbx_record_key_source *src = sbx_record__source_find(keyref, len);
    size_t slen = sbx_record__scheme_len(keyref, len);
    if (src != NULL)
        return source_result(src, "unwrap", src->unwrap(key, keyref, wrapped, src->payload));
    if (slen == 0 || slen == len)
        return sbx__error(SBX_EFORMAT, "record: key server reference without https://");
    return no_source(keyref, len);
}

/* ------------------------------------------------------------------ API */

/* see strongbox/records.h */
int
sbx_record_encrypt(const char *keyref, int type, const void *value, size_t len, const void *context,
                   size_t ctx_len, sbx_buf *out)
{
    uint8_t rkey[32], salt[SALT_LEN];
    sbx_buf wrapped = SBX_BUF_INIT;
    rec_view v = {0};
    int err;
    if (out == NULL)
        return sbx__error(SBX_EINVAL, "sbx_record_encrypt: NULL argument");
    size_t start = out->len;
    if ((err = check_args(keyref, type, value, len, context, ctx_len)) < 0)
        return err;
    v.keyref = keyref;
    v.keyref_len = strlen(keyref);
    if (is_file_ref(keyref, v.keyref_len)) {
        v.kind = KIND_FILE;
        v.salt = salt;
        if ((err = sbx_random_bytes(salt, sizeof salt)) < 0 ||
            (err = file_record_key(rkey, &v.key_id, keyref, NULL, salt)) < 0)
            goto out;
    } else {
        v.kind = KIND_KMS;
        if ((err = source_datakey(rkey, &wrapped, keyref, v.keyref_len, (uint64_t)len + 1)) < 0)
            goto out;
        v.wrapped = (const char *)wrapped.ptr;
        v.wrapped_len = wrapped.len;
    }
    if ((err = build_header(out, &v)) < 0)
        goto out;
    err = seal(out, start, rkey, &v, type, value, len, context, ctx_len);
out:
    if (err < 0 && out->ptr != NULL) {
        sbx_wipe(out->ptr + start, out->len - start);
        out->len = start;
    }
    sbx_buf_dispose(&wrapped);
    SBX_WIPE_BUF(rkey);
    return err;
}

/* see strongbox/records.h */
int
sbx_record_decrypt(int *type_out, sbx_buf *out, const void *record, size_t len, const void *context,
                   size_t ctx_len)
{
    uint8_t rkey[32];
    char keyref[SBX_RECORD_MAX_KEYREF + 1], wrapped[MAX_WRAPPED + 1];
    rec_view v;
    int err;
    if (type_out != NULL)
        *type_out = 0;
    if (type_out == NULL || out == NULL || (record == NULL && len > 0) ||
        (context == NULL && ctx_len > 0))
        return sbx__error(SBX_EINVAL, "sbx_record_decrypt: NULL argument");
    if (ctx_len > SBX_RECORD_MAX_CONTEXT)
        return sbx__error(SBX_ETOOBIG, "context of %zu bytes is over the limit of %d", ctx_len,
                          SBX_RECORD_MAX_CONTEXT);
    if ((err = parse(&v, record, len)) < 0)
        return err;
    memcpy(keyref, v.keyref, v.keyref_len);
    keyref[v.keyref_len] = '\0';
    if (v.kind == KIND_FILE) {
        if (!is_file_ref(keyref, v.keyref_len))
            return sbx__error(SBX_EFORMAT, "record: file key reference without file:");
        err = file_record_key(rkey, NULL, keyref, v.key_id, v.salt);
    } else {
        memcpy(wrapped, v.wrapped, v.wrapped_len);
        wrapped[v.wrapped_len] = '\0';
        err = source_unwrap(rkey, keyref, v.keyref_len, wrapped);
    }
    if (err == 0)
        err = open_rec(type_out, out, rkey, &v, record, context, ctx_len);
    SBX_WIPE_BUF(rkey);
    return err;
}

/* see strongbox/records.h */
bool
sbx_record_is_encrypted(const void *data, size_t len)
{
    const uint8_t *p = data;
    return p != NULL && len >= 8 + NONCE_LEN + 1 + TAG_LEN && memcmp(p, MAGIC, 4) == 0 &&
           p[4] == VERSION && (p[5] == KIND_FILE || p[5] == KIND_KMS);
}

/* see strongbox/records.h */
int
sbx_record_keyref(sbx_buf *out, const void *record, size_t len)
{
    rec_view v;
    int err;
    if (out == NULL || (record == NULL && len > 0))
        return sbx__error(SBX_EINVAL, "sbx_record_keyref: NULL argument");
    if ((err = parse(&v, record, len)) < 0 ||
        (err = sbx_buf_append(out, v.keyref, v.keyref_len)) < 0)
        return err;
    return sbx_buf_append(out, "", 1);
}

/* see strongbox/records.h */
void
sbx_record_cleanup(void)
{
    sbx_record__sources_cleanup();
    sbx_record__keys_cleanup();
}
