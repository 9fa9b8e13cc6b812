/*
 * src/fileops/migrate.c - decrypting the seed projects' archives for
 * migration (see strongbox/migrate.h; spec/seeds.md §1.3-1.5, §4).
 *
 * Implementation notes:
 *  - Data member: `openssl enc -aes-256-cbc -a -salt` output, i.e. base64
 *    (64-column lines, decoded with OpenSSL's EVP_Decode*, which keeps its
 *    state across calls) of "Salted__" || salt(8) || CBC ciphertext.
 *    key || iv = EVP_BytesToKey(AES-256-CBC, md, salt, password, 1
 *    iteration), md SHA-256 since OpenSSL 1.1.0, MD5 before.
 *  - Constant memory whatever the size: the data member is read twice. The
 *    scan keeps the SHA-256 of the text, the lengths, the 16-byte header and
 *    the last 32 bytes (the last cipher block and the one before it, or the
 *    IV). That is enough to check the metadata hash and to try the CBC
 *    padding under each key derivation before decrypting anything (CBC
 *    decrypts a block from it and its predecessor alone). The decryptor
 *    re-hashes the text and refuses, before its last block, any text that
 *    is not the scanned one.
 *  - Password member: `rsautl -oaep` = RSA-OAEP with SHA-1 and MGF1-SHA-1,
 *    no label; PKCS#1 v1.5 is tried too (rsautl's default). The password is
 *    the first line of the plaintext (openssl read it with -pass stdin/file:).
 *  - Metadata is untrusted text; we only look for the recorded SHA-256 of
 *    the data member and compare it (constant time) before decrypting.
 *  - The decryptor's plaintext buffer is wiped after each write; EVP keeps
 *    the last block back until the padding is checked in finish().
 *  - Member names: UTF-8 decoded with core/encoding.h's decoder.
 */
#include "strongbox/migrate.h"
#include "strongbox/memory.h"
#include "age/ssh.h"
#include "core/encoding.h"
#include "core/error.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/rsa.h>

#define MAX_WRAPPED 2048
#define MAX_META    (1024 * 1024)
#define MAX_PASS    256
#define CHUNK       65536
#define MAX_NAME    256

/* ---- member names ---- */

/* Characters that reorder or break displayed text: a name must read as it is. */
static bool
invisible_control(uint32_t cp)
{
    return cp == 0x061C || cp == 0x200E || cp == 0x200F || (cp >= 0x202A && cp <= 0x202E) ||
           (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 || cp == 0x2029;
}

/* see strongbox/migrate.h */
int
sbx_legacy_member_name_check(const char *name)
{
    if (name == NULL || name[0] == '\0')
        return sbx__error(SBX_EFORMAT, "an archive member has no name");
    if (strlen(name) >= MAX_NAME)
        return sbx__error(SBX_EFORMAT, "an archive member name is %d bytes or longer", MAX_NAME);
    if (name[0] == '.' || strstr(name, "..") != NULL)
        return sbx__error(SBX_EFORMAT, "an archive member name starts with '.' or holds \"..\" "
                                       "(hidden names and parent directories are refused)");
    for (const unsigned char *c = (const unsigned char *)name; *c;) {
        uint32_t cp = 0;
        size_t n = sbx__utf8_decode(c, &cp);
        if (n == 0)
            return sbx__error(SBX_EFORMAT,
                              "an archive member name is not UTF-8 (byte 0x%02x at "
                              "offset %zu); rename the members and pack the archive "
                              "again",
                              *c, (size_t)(c - (const unsigned char *)name));
        if (cp == '/' || cp == '\\')
            return sbx__error(SBX_EFORMAT, "an archive member name is a path ('/' or '\\'); these "
                                           "archives hold plain file names only");
        if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || invisible_control(cp))
            return sbx__error(SBX_EFORMAT,
                              "an archive member name holds the control character U+%04X",
                              (unsigned)cp);
        c += n;
    }
    return 0;
}

/* ---- the key ---- */

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
    if ((err = sbx_age__rsa_check_bits(pkey, 1024)) < 0) {
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

/* ---- checks before decryption ---- */

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
check_hash(const uint8_t digest[32], const sbx_legacy_members *m, bool *found)
{
    static const char *const fields[] = {"\"hash of cipher_text\": \"",
                                         "HMAC-sha256 of encrypted file: "};
    uint8_t rec[32];
    bool match = false;
    *found = false;
    if (m->meta == NULL)
        return 0;
    if (m->meta_len > MAX_META)
        return sbx__error(SBX_ETOOBIG, "metadata member larger than %d bytes", MAX_META);
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
    if (m->wrapped == NULL || m->wrapped_len == 0)
        err = sbx__error(SBX_EFORMAT, "the archive has no wrapped password member");
    else if (m->wrapped_len > MAX_WRAPPED)
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

/* ---- base64 text, in pieces ---- */

static int
not_base64(void)
{
    ERR_clear_error();
    return sbx__error(SBX_EFORMAT, "the data member is not base64 (not an `openssl enc -a` file)");
}

/* Decode up to CHUNK bytes of text; raw has room for CHUNK bytes. */
static int
b64_update(EVP_ENCODE_CTX *ctx, uint8_t *raw, size_t *raw_len, const uint8_t *in, size_t n)
{
    int got = 0;
    *raw_len = 0;
    if (EVP_DecodeUpdate(ctx, raw, &got, in, (int)n) < 0)
        return not_base64();
    *raw_len = (size_t)got;
    return 0;
}

static int
b64_final(EVP_ENCODE_CTX *ctx, uint8_t *raw, size_t *raw_len)
{
    int got = 0;
    *raw_len = 0;
    if (EVP_DecodeFinal(ctx, raw, &got) != 1)
        return not_base64();
    *raw_len = (size_t)got;
    return 0;
}

static int
not_salted(void)
{
    return sbx__error(SBX_EFORMAT, "the data member is not `openssl enc -salt` output (no "
                                   "\"Salted__\" header, or not a whole number of cipher blocks)");
}

/* ---- the scan ---- */

struct sbx_legacy_scan {
    EVP_ENCODE_CTX *b64;
    EVP_MD_CTX *sha; // of the text
    uint8_t digest[32];
    uint64_t text_len, raw_len;
    uint8_t head[16]; // "Salted__" || salt
    uint8_t tail[32]; // the last 32 raw bytes
    uint8_t *raw;
    bool finished, failed;
};

/* see strongbox/migrate.h */
int
sbx_legacy_scan_new(sbx_legacy_scan **out)
{
    sbx_legacy_scan *s = calloc(1, sizeof(*s));
    *out = NULL;
    if (s == NULL || (s->b64 = EVP_ENCODE_CTX_new()) == NULL ||
        (s->sha = EVP_MD_CTX_new()) == NULL || (s->raw = malloc(CHUNK)) == NULL) {
        sbx_legacy_scan_free(s);
        return sbx__error_nomem();
    }
    EVP_DecodeInit(s->b64);
    if (EVP_DigestInit_ex(s->sha, EVP_sha256(), NULL) != 1) {
        sbx_legacy_scan_free(s);
        return sbx__error_crypto("SHA-256");
    }
    *out = s;
    return 0;
}

/* Record decoded bytes: the header (checked as soon as it is there) and the tail. */
static int
scan_raw(sbx_legacy_scan *s, const uint8_t *raw, size_t n)
{
    for (size_t i = 0; i < n && s->raw_len + i < 16; i++)
        s->head[s->raw_len + i] = raw[i];
    if (s->raw_len < 8 && s->raw_len + n >= 8 && memcmp(s->head, "Salted__", 8) != 0)
        return not_salted();
    if (n >= 32) {
        memcpy(s->tail, raw + n - 32, 32);
    } else {
        memmove(s->tail, s->tail + n, 32 - n);
        memcpy(s->tail + 32 - n, raw, n);
    }
    s->raw_len += n;
    return 0;
}

/* see strongbox/migrate.h */
int
sbx_legacy_scan_update(sbx_legacy_scan *s, const uint8_t *buf, size_t len)
{
    int err = 0;
    if (s->finished || s->failed)
        return sbx__error(SBX_EINVAL, "sbx_legacy_scan_update after finish or an error");
    while (err == 0 && len > 0) {
        size_t piece = len < CHUNK / 2 ? len : CHUNK / 2, n = 0;
        if (s->text_len + piece > SBX_LEGACY_MAX_DATA)
            err = sbx__error(SBX_ETOOBIG, "the data member is larger than %llu bytes",
                             (unsigned long long)SBX_LEGACY_MAX_DATA);
        else if (EVP_DigestUpdate(s->sha, buf, piece) != 1)
            err = sbx__error_crypto("SHA-256");
        else if ((err = b64_update(s->b64, s->raw, &n, buf, piece)) == 0)
            err = scan_raw(s, s->raw, n);
        s->text_len += piece;
        buf += piece;
        len -= piece;
    }
    s->failed = err < 0;
    return err;
}

/* see strongbox/migrate.h */
int
sbx_legacy_scan_finish(sbx_legacy_scan *s)
{
    size_t n = 0;
    int err;
    if (s->finished || s->failed)
        return sbx__error(SBX_EINVAL, "sbx_legacy_scan_finish called twice or after an error");
    if ((err = b64_final(s->b64, s->raw, &n)) == 0 && (err = scan_raw(s, s->raw, n)) == 0 &&
        EVP_DigestFinal_ex(s->sha, s->digest, NULL) != 1)
        err = sbx__error_crypto("SHA-256");
    if (err == 0 && (s->raw_len < 32 || (s->raw_len - 16) % 16 != 0))
        err = not_salted();
    s->finished = err == 0;
    s->failed = err < 0;
    return err;
}

/* see strongbox/migrate.h */
void
sbx_legacy_scan_free(sbx_legacy_scan *s)
{
    if (s == NULL)
        return;
    EVP_ENCODE_CTX_free(s->b64);
    EVP_MD_CTX_free(s->sha);
    free(s->raw);
    free(s);
}

/* ---- the key derivation ---- */

/* key || iv from EVP_BytesToKey(md) over the scanned salt. */
static int
derive(uint8_t key[32], uint8_t iv[16], const sbx_legacy_scan *s, const uint8_t *pass,
       size_t pass_len, const EVP_MD *md)
{
    if (EVP_BytesToKey(EVP_aes_256_cbc(), md, s->head + 8, pass, (int)pass_len, 1, key, iv) != 32)
        return sbx__error_crypto("EVP_BytesToKey");
    return 0;
}

/*
 * Whether the last CBC block has valid padding under md's key: a wrong key
 * passes that check about once in 256 tries, so in auto mode a SHA-256 success
 * must not also open under MD5. CBC lets the last block be decrypted alone,
 * with the block before it (or the IV) as its IV.
 */
static int
last_block_opens(bool *opens, const sbx_legacy_scan *s, const uint8_t *pass, size_t pass_len,
                 const EVP_MD *md)
{
    uint8_t key[32], iv[16], out[32];
    int n = 0, fin = 0, err = 0;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    *opens = false;
    if (ctx == NULL)
        return sbx__error_nomem();
    if ((err = derive(key, iv, s, pass, pass_len, md)) < 0)
        goto out;
    const uint8_t *prev = s->raw_len > 32 ? s->tail : iv;
    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, key, prev) != 1 ||
        EVP_DecryptUpdate(ctx, out, &n, s->tail + 16, 16) != 1) {
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

static int
bad_padding(void)
{
    return sbx__error(SBX_EAUTH, "the data does not decrypt (bad CBC padding): the archive was "
                                 "modified or corrupted, or the key derivation is not the one "
                                 "given with --md");
}

/* The digest whose key opens the last block; *md5 tells which. */
static int
choose_digest(const EVP_MD **md, bool *md5, const sbx_legacy_scan *s, const uint8_t *pass,
              size_t pass_len, int digest)
{
    bool sha_ok = false, md5_ok = false;
    int err;
    if (digest != SBX_LEGACY_DIGEST_MD5 &&
        (err = last_block_opens(&sha_ok, s, pass, pass_len, EVP_sha256())) < 0)
        return err;
    if (digest != SBX_LEGACY_DIGEST_SHA256 &&
        (err = last_block_opens(&md5_ok, s, pass, pass_len, EVP_md5())) < 0)
        return err;
    if (sha_ok && md5_ok)
        return sbx__error(SBX_EFORMAT,
                          "the data decrypts with both the SHA-256 and the MD5 key derivation, "
                          "so the right one is unknown: say which (sbx migrate --md sha256 for "
                          "archives made with OpenSSL 1.1.0 or later, --md md5 for older ones)");
    if (!sha_ok && !md5_ok)
        return bad_padding();
    *md = sha_ok ? EVP_sha256() : EVP_md5();
    *md5 = md5_ok;
    return 0;
}

/* ---- the decryptor ---- */

struct decryptor {
    sbx_sink base;
    sbx_sink *plain;
    EVP_ENCODE_CTX *b64;
    EVP_CIPHER_CTX *cbc;
    EVP_MD_CTX *sha;
    uint8_t want_digest[32];
    uint64_t want_text_len, text_len, raw_len;
    uint8_t *raw, *out; // CHUNK and CHUNK + 16 bytes
    bool failed;
};

/* Decrypt decoded bytes (after the 16-byte header) and pass the plaintext on. */
static int
dec_raw(struct decryptor *d, const uint8_t *raw, size_t n)
{
    int got = 0, err = 0;
    size_t skip = d->raw_len < 16 ? (size_t)(16 - d->raw_len) : 0;
    skip = skip < n ? skip : n;
    d->raw_len += n;
    if (n == skip)
        return 0;
    if (EVP_DecryptUpdate(d->cbc, d->out, &got, raw + skip, (int)(n - skip)) != 1)
        return sbx__error_crypto("AES-256-CBC");
    err = sbx_sink_write(d->plain, d->out, (size_t)got);
    sbx_wipe(d->out, (size_t)got);
    return err;
}

static int
not_scanned(void)
{
    return sbx__error(SBX_EAUTH, "the data member differs from the first reading of the archive: "
                                 "the archive changed while it was read");
}

static int
dec_write(sbx_sink *self, const uint8_t *buf, size_t len)
{
    struct decryptor *d = (struct decryptor *)self;
    int err = d->failed ? sbx__error(SBX_EINVAL, "write after an error") : 0;
    while (err == 0 && len > 0) {
        size_t piece = len < CHUNK / 2 ? len : CHUNK / 2, n = 0;
        if (d->text_len + piece > d->want_text_len)
            err = not_scanned();
        else if (EVP_DigestUpdate(d->sha, buf, piece) != 1)
            err = sbx__error_crypto("SHA-256");
        else if ((err = b64_update(d->b64, d->raw, &n, buf, piece)) == 0)
            err = dec_raw(d, d->raw, n);
        d->text_len += piece;
        buf += piece;
        len -= piece;
    }
    d->failed = err < 0;
    return err;
}

static int
dec_finish(sbx_sink *self)
{
    struct decryptor *d = (struct decryptor *)self;
    uint8_t digest[32];
    size_t n = 0;
    int fin = 0, err = d->failed ? sbx__error(SBX_EINVAL, "finish after an error") : 0;
    if (err == 0 && (err = b64_final(d->b64, d->raw, &n)) == 0)
        err = dec_raw(d, d->raw, n);
    if (err == 0 && EVP_DigestFinal_ex(d->sha, digest, NULL) != 1)
        err = sbx__error_crypto("SHA-256");
    if (err == 0 && (d->text_len != d->want_text_len || !sbx_equal(digest, d->want_digest, 32)))
        err = not_scanned();
    if (err == 0 && EVP_DecryptFinal_ex(d->cbc, d->out, &fin) != 1) {
        ERR_clear_error();
        err = bad_padding();
    }
    if (err == 0 && (err = sbx_sink_write(d->plain, d->out, (size_t)fin)) == 0)
        err = sbx_sink_finish(d->plain);
    sbx_wipe(d->out, 16);
    d->failed = err < 0;
    return err;
}

static void
dec_free(sbx_sink *self)
{
    struct decryptor *d = (struct decryptor *)self;
    EVP_ENCODE_CTX_free(d->b64);
    EVP_CIPHER_CTX_free(d->cbc); // wipes the key schedule
    EVP_MD_CTX_free(d->sha);
    free(d->raw);
    if (d->out != NULL) {
        sbx_wipe(d->out, CHUNK + 16);
        free(d->out);
    }
    free(d);
}

static int
dec_alloc(struct decryptor **out, sbx_sink *plain, const sbx_legacy_scan *s)
{
    struct decryptor *d = calloc(1, sizeof(*d));
    *out = NULL;
    if (d == NULL)
        return sbx__error_nomem();
    d->base.write = dec_write;
    d->base.finish = dec_finish;
    d->base.free = dec_free;
    d->plain = plain;
    if ((d->b64 = EVP_ENCODE_CTX_new()) == NULL || (d->cbc = EVP_CIPHER_CTX_new()) == NULL ||
        (d->sha = EVP_MD_CTX_new()) == NULL || (d->raw = malloc(CHUNK)) == NULL ||
        (d->out = malloc(CHUNK + 16)) == NULL) {
        dec_free(&d->base);
        return sbx__error_nomem();
    }
    EVP_DecodeInit(d->b64);
    if (EVP_DigestInit_ex(d->sha, EVP_sha256(), NULL) != 1) {
        dec_free(&d->base);
        return sbx__error_crypto("SHA-256");
    }
    memcpy(d->want_digest, s->digest, 32);
    d->want_text_len = s->text_len;
    *out = d;
    return 0;
}

/* see strongbox/migrate.h */
int
sbx_legacy_decryptor_new(sbx_sink **out, sbx_sink *plain, const sbx_legacy_key *key,
                         const sbx_legacy_scan *s, const sbx_legacy_members *m,
                         const sbx_legacy_options *opts, sbx_legacy_report *report)
{
    sbx_legacy_report rep = {false, false, false};
    struct decryptor *d = NULL;
    uint8_t pass[MAX_PASS], k[32], iv[16];
    size_t pass_len = 0;
    const EVP_MD *md = NULL;
    int digest = opts != NULL ? opts->digest : SBX_LEGACY_DIGEST_AUTO, err;
    *out = NULL;
    if (report != NULL)
        *report = rep;
    if (opts != NULL && opts->version != SBX_LEGACY_OPTIONS_VERSION)
        return sbx__error(SBX_EINVAL, "unknown sbx_legacy_options version");
    if (!s->finished)
        return sbx__error(SBX_EINVAL, "the scan of the data member is not finished");
    if ((err = check_hash(s->digest, m, &rep.hash_checked)) < 0 ||
        (err = unwrap_password(pass, &pass_len, key, m, &rep.oaep)) < 0 ||
        (err = choose_digest(&md, &rep.md5, s, pass, pass_len, digest)) < 0 ||
        (err = derive(k, iv, s, pass, pass_len, md)) < 0 || (err = dec_alloc(&d, plain, s)) < 0)
        goto out;
    if (EVP_DecryptInit_ex(d->cbc, EVP_aes_256_cbc(), NULL, k, iv) != 1) {
        err = sbx__error_crypto("AES-256-CBC");
        goto out;
    }
    *out = &d->base;
    d = NULL;
    if (report != NULL)
        *report = rep;
out:
    if (d != NULL)
        dec_free(&d->base);
    SBX_WIPE_BUF(pass);
    SBX_WIPE_BUF(k);
    SBX_WIPE_BUF(iv);
    return err;
}

/* see strongbox/migrate.h */
int
sbx_legacy_decrypt(sbx_buf *out, const sbx_legacy_key *key, const sbx_legacy_members *m,
                   const sbx_legacy_options *opts, sbx_legacy_report *report)
{
    sbx_legacy_scan *scan = NULL;
    sbx_sink *buf = NULL, *dec = NULL;
    sbx_buf plain = SBX_BUF_INIT;
    int err;
    if (report != NULL)
        *report = (sbx_legacy_report){false, false, false};
    if ((err = sbx_legacy_scan_new(&scan)) < 0 ||
        (err = sbx_legacy_scan_update(scan, m->data, m->data_len)) < 0 ||
        (err = sbx_legacy_scan_finish(scan)) < 0 || (err = sbx_sink_buf_new(&buf, &plain)) < 0 ||
        (err = sbx_legacy_decryptor_new(&dec, buf, key, scan, m, opts, report)) < 0 ||
        (err = sbx_sink_write(dec, m->data, m->data_len)) < 0 || (err = sbx_sink_finish(dec)) < 0)
        goto out;
    err = sbx_buf_append(out, plain.ptr, plain.len);
out:
    if (err < 0 && report != NULL)
        *report = (sbx_legacy_report){false, false, false};
    sbx_sink_free(dec);
    sbx_sink_free(buf);
    sbx_legacy_scan_free(scan);
    sbx_buf_dispose(&plain);
    return err;
}
