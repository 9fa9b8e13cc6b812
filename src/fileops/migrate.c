/*
 * src/fileops/migrate.c - decrypting the seed projects' archives for
 * migration (see strongbox/migrate.h; spec/seeds.md §1.3-1.5, §4).
 *
 * Implementation notes:
 *  - Data member: `openssl enc -aes-256-cbc -a -salt` output, i.e. base64
 *    (64-column lines, decoded with OpenSSL's EVP_Decode*) of "Salted__" ||
 *    salt(8) || CBC ciphertext. key || iv = EVP_BytesToKey(AES-256-CBC, md,
 *    salt, password, 1 iteration), md SHA-256 since OpenSSL 1.1.0, MD5 before.
 *  - Password member: `rsautl -oaep` = RSA-OAEP with SHA-1 and MGF1-SHA-1,
 *    no label; PKCS#1 v1.5 is tried too (rsautl's default). The password is
 *    the first line of the plaintext (openssl read it with -pass stdin/file:).
 *  - Metadata is untrusted text; we only look for the recorded SHA-256 of
 *    the data member and compare it (constant time) before decrypting.
 *  - Plaintext is built in a wiped buffer and appended to the caller's only
 *    after the CBC padding verified.
 */
#include "strongbox/migrate.h"
#include "strongbox/memory.h"
#include "age/ssh.h"
#include "core/error.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/rsa.h>

#define MAX_WRAPPED 2048
#define MAX_META    (1024 * 1024)
#define MAX_PASS    256

struct sbx_legacy_key {
    EVP_PKEY *pkey;
};

/* see strongbox/migrate.h */
int
sbx_legacy_key_parse(sbx_legacy_key **out, const char *pem, size_t len, sbx_passphrase_cb cb,
                     void *payload)
{
    EVP_PKEY *pkey = NULL;
    int err;
    *out = NULL;
    if ((err = sbx_age__pem_decode_private(&pkey, pem, len, cb, payload)) < 0)
        return err;
    if (!EVP_PKEY_is_a(pkey, "RSA")) {
        EVP_PKEY_free(pkey);
        return sbx__error(SBX_EUNSUPPORTED, "the seed formats use RSA keys; this is not one");
    }
    if ((err = sbx_age__rsa_check_key(pkey, 1024)) < 0) {
        EVP_PKEY_free(pkey);
        return err;
    }
    if ((*out = calloc(1, sizeof(**out))) == NULL) {
        EVP_PKEY_free(pkey);
        return sbx__error_nomem();
    }
    (*out)->pkey = pkey;
    return 0;
}

/* see strongbox/migrate.h */
int
sbx_legacy_key_bits(const sbx_legacy_key *key)
{
    return EVP_PKEY_get_bits(key->pkey);
}

/* see strongbox/migrate.h */
void
sbx_legacy_key_free(sbx_legacy_key *key)
{
    if (key == NULL)
        return;
    EVP_PKEY_free(key->pkey);
    free(key);
}

static int
hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/*
 * Compare the data member's SHA-256 with every hash recorded under a known
 * field name. *found: whether any was recorded. SBX_EAUTH when none matches.
 */
static int
check_hash(const sbx_legacy_members *m, bool *found)
{
    static const char *const fields[] = {"\"hash of cipher_text\": \"",
                                         "HMAC-sha256 of encrypted file: "};
    uint8_t digest[32], rec[32];
    bool match = false;
    *found = false;
    if (m->meta == NULL)
        return 0;
    if (m->meta_len > MAX_META)
        return sbx__error(SBX_ETOOBIG, "metadata member larger than %d bytes", MAX_META);
    if (EVP_Digest(m->data, m->data_len, digest, NULL, EVP_sha256(), NULL) != 1)
        return sbx__error_crypto("SHA-256");
    for (size_t f = 0; f < 2; f++) {
        const uint8_t *p = m->meta, *end = m->meta + m->meta_len;
        size_t flen = strlen(fields[f]);
        while ((p = memmem(p, (size_t)(end - p), fields[f], flen)) != NULL) {
            p += flen;
            bool ok = end - p >= 64;
            for (int i = 0; ok && i < 32; i++) {
                int hi = hexval(p[2 * i]), lo = hexval(p[2 * i + 1]);
                ok = hi >= 0 && lo >= 0;
                rec[i] = (uint8_t)(hi << 4 | lo);
            }
            if (!ok)
                continue;
            *found = true;
            match |= sbx_equal(rec, digest, 32);
        }
    }
    if (*found && !match)
        return sbx__error(SBX_EAUTH, "the data member does not match the SHA-256 recorded in the "
                                     "archive's metadata: the archive was modified or corrupted");
    return 0;
}

/* The session password: first line of the RSA plaintext. */
static int
unwrap_password(uint8_t pass[MAX_PASS], size_t *pass_len, const sbx_legacy_key *key,
                const sbx_legacy_members *m, bool *oaep)
{
    size_t cap = (size_t)EVP_PKEY_get_size(key->pkey), len = 0;
    uint8_t *plain = sbx_secret_alloc(cap);
    int err;
    if (plain == NULL)
        return SBX_ENOMEM;
    if (m->wrapped_len > MAX_WRAPPED)
        err = sbx__error(SBX_ETOOBIG, "the wrapped password member is too large");
    else if ((err = sbx_age__rsa_decrypt(plain, &len, cap, key->pkey, RSA_PKCS1_OAEP_PADDING,
                                         "SHA1", NULL, m->wrapped, m->wrapped_len)) == 0)
        *oaep = true;
    else if ((err = sbx_age__rsa_decrypt(plain, &len, cap, key->pkey, RSA_PKCS1_PADDING, NULL, NULL,
                                         m->wrapped, m->wrapped_len)) == 0)
        *oaep = false;
    if (err == SBX_EAUTH)
        err = sbx__error(SBX_EAUTH, "this private key does not open the archive's session "
                                    "password: wrong key (or a corrupted archive)");
    if (err == 0) {
        uint8_t *nl = memchr(plain, '\n', len);
        len = nl != NULL ? (size_t)(nl - plain) : len;
        if (len > 0 && plain[len - 1] == '\r')
            len--;
        if (len == 0 || len > MAX_PASS)
            err = sbx__error(SBX_EFORMAT, "the session password has an unexpected length");
        else
            memcpy(pass, plain, len);
        *pass_len = len;
    }
    sbx_secret_free(plain, cap);
    return err;
}

/* Base64 text (with line breaks) to bytes, with OpenSSL's line decoder. */
static int
decode_b64(sbx_buf *out, const uint8_t *in, size_t len)
{
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
    int n = 0, fin = 0, err = 0;
    if (ctx == NULL)
        return sbx__error_nomem();
    if (len > SBX_LEGACY_MAX_DATA || (err = sbx_buf_reserve(out, len / 4 * 3 + 3)) < 0)
        goto out;
    EVP_DecodeInit(ctx);
    if (EVP_DecodeUpdate(ctx, out->ptr, &n, in, (int)len) < 0 ||
        EVP_DecodeFinal(ctx, out->ptr + n, &fin) != 1) {
        ERR_clear_error();
        err = sbx__error(SBX_EFORMAT, "the data member is not base64 (not an `openssl enc -a` "
                                      "file)");
        goto out;
    }
    out->len = (size_t)n + (size_t)fin;
out:
    if (len > SBX_LEGACY_MAX_DATA)
        err =
            sbx__error(SBX_ETOOBIG, "the data member is larger than %u bytes", SBX_LEGACY_MAX_DATA);
    EVP_ENCODE_CTX_free(ctx);
    return err;
}

/* AES-256-CBC with EVP_BytesToKey(md); SBX_EAUTH on bad padding. */
static int
cbc_decrypt(sbx_buf *plain, const sbx_buf *raw, const uint8_t *pass, size_t pass_len,
            const EVP_MD *md)
{
    uint8_t key[32], iv[16];
    int n = 0, fin = 0, err = 0;
    const EVP_CIPHER *cipher = EVP_aes_256_cbc();
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        return sbx__error_nomem();
    if (EVP_BytesToKey(cipher, md, raw->ptr + 8, pass, (int)pass_len, 1, key, iv) != 32) {
        err = sbx__error_crypto("EVP_BytesToKey");
        goto out;
    }
    plain->len = 0;
    if ((err = sbx_buf_reserve(plain, raw->len)) < 0)
        goto out;
    if (EVP_DecryptInit_ex(ctx, cipher, NULL, key, iv) != 1 ||
        EVP_DecryptUpdate(ctx, plain->ptr, &n, raw->ptr + 16, (int)(raw->len - 16)) != 1 ||
        EVP_DecryptFinal_ex(ctx, plain->ptr + n, &fin) != 1) {
        ERR_clear_error();
        sbx_wipe(plain->ptr, raw->len);
        err = SBX_EAUTH;
        goto out;
    }
    plain->len = (size_t)n + (size_t)fin;
out:
    SBX_WIPE_BUF(key);
    SBX_WIPE_BUF(iv);
    EVP_CIPHER_CTX_free(ctx);
    return err;
}

/*
 * Whether the last CBC block has valid padding under md's key: a wrong key
 * passes that check about once in 256 tries, so in auto mode a SHA-256 success
 * must not also open under MD5. CBC lets the last block be decrypted alone,
 * with the block before it (or the IV) as its IV.
 */
static int
last_block_opens(bool *opens, const sbx_buf *raw, const uint8_t *pass, size_t pass_len,
                 const EVP_MD *md)
{
    uint8_t key[32], iv[16], out[32];
    int n = 0, fin = 0, err = 0;
    const EVP_CIPHER *cipher = EVP_aes_256_cbc();
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    *opens = false;
    if (ctx == NULL)
        return sbx__error_nomem();
    if (EVP_BytesToKey(cipher, md, raw->ptr + 8, pass, (int)pass_len, 1, key, iv) != 32) {
        err = sbx__error_crypto("EVP_BytesToKey");
        goto out;
    }
    const uint8_t *prev = raw->len > 32 ? raw->ptr + raw->len - 32 : iv;
    if (EVP_DecryptInit_ex(ctx, cipher, NULL, key, prev) != 1 ||
        EVP_DecryptUpdate(ctx, out, &n, raw->ptr + raw->len - 16, 16) != 1) {
        err = sbx__error_crypto("AES-256-CBC");
        goto out;
    }
    *opens = EVP_DecryptFinal_ex(ctx, out + n, &fin) == 1;
    ERR_clear_error();
out:
    SBX_WIPE_BUF(key);
    SBX_WIPE_BUF(iv);
    SBX_WIPE_BUF(out);
    EVP_CIPHER_CTX_free(ctx);
    return err;
}

/* see strongbox/migrate.h */
int
sbx_legacy_decrypt(sbx_buf *out, const sbx_legacy_key *key, const sbx_legacy_members *m,
                   const sbx_legacy_options *opts, sbx_legacy_report *report)
{
    sbx_legacy_report rep = {false, false, false};
    sbx_buf raw = SBX_BUF_INIT, plain = SBX_BUF_INIT;
    uint8_t pass[MAX_PASS];
    size_t pass_len = 0;
    int digest = opts != NULL ? opts->digest : SBX_LEGACY_DIGEST_AUTO, err;
    if (report != NULL)
        *report = rep;
    if (opts != NULL && opts->version != SBX_LEGACY_OPTIONS_VERSION)
        return sbx__error(SBX_EINVAL, "unknown sbx_legacy_options version");
    if ((err = check_hash(m, &rep.hash_checked)) < 0 ||
        (err = decode_b64(&raw, m->data, m->data_len)) < 0)
        goto out;
    if (raw.len < 32 || memcmp(raw.ptr, "Salted__", 8) != 0 || (raw.len - 16) % 16 != 0) {
        err = sbx__error(SBX_EFORMAT, "the data member is not `openssl enc -salt` output (no "
                                      "\"Salted__\" header or a partial block)");
        goto out;
    }
    if ((err = unwrap_password(pass, &pass_len, key, m, &rep.oaep)) < 0)
        goto out;
    err = SBX_EAUTH;
    if (digest != SBX_LEGACY_DIGEST_MD5)
        err = cbc_decrypt(&plain, &raw, pass, pass_len, EVP_sha256());
    if (err == 0 && digest == SBX_LEGACY_DIGEST_AUTO) {
        bool md5_too = false;
        if ((err = last_block_opens(&md5_too, &raw, pass, pass_len, EVP_md5())) == 0 && md5_too)
            err = sbx__error(SBX_EFORMAT,
                             "the data decrypts with both the SHA-256 and the MD5 key derivation, "
                             "so the right one is unknown: say which (sbx migrate --md sha256 for "
                             "archives made with OpenSSL 1.1.0 or later, --md md5 for older ones)");
    }
    if (err == SBX_EAUTH && digest != SBX_LEGACY_DIGEST_SHA256) {
        err = cbc_decrypt(&plain, &raw, pass, pass_len, EVP_md5());
        rep.md5 = err == 0;
    }
    if (err == SBX_EAUTH)
        err = sbx__error(SBX_EAUTH, "the data does not decrypt (bad CBC padding): the archive was "
                                    "modified or corrupted");
    if (err == 0)
        err = sbx_buf_append(out, plain.ptr, plain.len);
out:
    SBX_WIPE_BUF(pass);
    sbx_buf_dispose(&plain);
    sbx_buf_dispose(&raw);
    if (report != NULL)
        *report = rep;
    return err;
}
