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
                rec[i] = (uint8_t)(ok ? hi << 4 | lo : 0); // no shift of -1 (undefined)
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

/*
 * The data member's text as it is read, by the scan and by the decryptor
 * alike: its SHA-256, its length, and its bytes decoded in pieces handed to
 * a consumer (raw has room for what CHUNK / 2 bytes of text decode to).
 */
struct text {
    EVP_ENCODE_CTX *b64;
    EVP_MD_CTX *sha;
    uint64_t len, limit;
    int (*too_long)(void); // the error past limit
    uint8_t *raw;
    unsigned pad; // '=' seen so far
};

/*
 * OpenSSL's decoder stops at '-' (a PEM end line) and looks for base64 after
 * the '=' padding only within one call, so its result would depend on how
 * the text is cut into pieces. `openssl enc -a` writes neither: refuse '-',
 * and after the padding allow only more padding (two at most) and blanks.
 */
static int
text_check(struct text *t, const uint8_t *p, size_t n)
{
    if (t->pad == 0) {
        const uint8_t *eq = memchr(p, '=', n);
        if (memchr(p, '-', n) != NULL)
            return not_base64();
        if (eq == NULL)
            return 0;
        n -= (size_t)(eq - p);
        p = eq;
    }
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '=' ? ++t->pad > 2
                        : p[i] != '\n' && p[i] != '\r' && p[i] != ' ' && p[i] != '\t')
            return not_base64();
    }
    return 0;
}

typedef int (*raw_consumer)(void *ctx, const uint8_t *raw, size_t n);

static int
text_init(struct text *t, uint64_t limit, int (*too_long)(void))
{
    t->limit = limit;
    t->too_long = too_long;
    if ((t->b64 = EVP_ENCODE_CTX_new()) == NULL || (t->sha = EVP_MD_CTX_new()) == NULL ||
        (t->raw = malloc(CHUNK)) == NULL)
        return sbx__error_nomem();
    EVP_DecodeInit(t->b64);
    if (EVP_DigestInit_ex(t->sha, EVP_sha256(), NULL) != 1)
        return sbx__error_crypto("SHA-256");
    return 0;
}

static void
text_dispose(struct text *t)
{
    EVP_ENCODE_CTX_free(t->b64);
    EVP_MD_CTX_free(t->sha);
    free(t->raw);
}

static int
text_update(struct text *t, const uint8_t *buf, size_t len, raw_consumer fn, void *ctx)
{
    int err = 0;
    while (err == 0 && len > 0) {
        size_t piece = len < CHUNK / 2 ? len : CHUNK / 2;
        int got = 0;
        if (t->len + piece > t->limit)
            err = t->too_long();
        else if (EVP_DigestUpdate(t->sha, buf, piece) != 1)
            err = sbx__error_crypto("SHA-256");
        else if ((err = text_check(t, buf, piece)) == 0)
            err = EVP_DecodeUpdate(t->b64, t->raw, &got, buf, (int)piece) < 0
                      ? not_base64()
                      : fn(ctx, t->raw, (size_t)got);
        t->len += piece;
        buf += piece;
        len -= piece;
    }
    return err;
}

static int
text_final(struct text *t, uint8_t digest[32], raw_consumer fn, void *ctx)
{
    int got = 0, err;
    if (EVP_DecodeFinal(t->b64, t->raw, &got) != 1)
        return not_base64();
    if ((err = fn(ctx, t->raw, (size_t)got)) < 0)
        return err;
    if (EVP_DigestFinal_ex(t->sha, digest, NULL) != 1)
        return sbx__error_crypto("SHA-256");
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
    struct text text;
    uint8_t digest[32]; // of the text
    uint64_t raw_len;
    uint8_t head[16]; // "Salted__" || salt
    uint8_t tail[32]; // the last 32 raw bytes
    bool finished, failed;
};

static int
too_big(void)
{
    return sbx__error(SBX_ETOOBIG, "the data member is larger than %llu bytes",
                      (unsigned long long)SBX_LEGACY_MAX_DATA);
}

/* see strongbox/migrate.h */
int
sbx_legacy_scan_new(sbx_legacy_scan **out)
{
    sbx_legacy_scan *s = calloc(1, sizeof(*s));
    int err;
    *out = NULL;
    if (s == NULL)
        return sbx__error_nomem();
    if ((err = text_init(&s->text, SBX_LEGACY_MAX_DATA, too_big)) < 0) {
        sbx_legacy_scan_free(s);
        return err;
    }
    *out = s;
    return 0;
}

/* Record decoded bytes: the header (checked as soon as it is there) and the tail. */
static int
scan_raw(void *ctx, const uint8_t *raw, size_t n)
{
    sbx_legacy_scan *s = ctx;
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
    if (s->finished || s->failed)
        return sbx__error(SBX_EINVAL, "sbx_legacy_scan_update after finish or an error");
    int err = text_update(&s->text, buf, len, scan_raw, s);
    s->failed = err < 0;
    return err;
}

/* see strongbox/migrate.h */
int
sbx_legacy_scan_finish(sbx_legacy_scan *s)
{
    int err;
    if (s->finished || s->failed)
        return sbx__error(SBX_EINVAL, "sbx_legacy_scan_finish called twice or after an error");
    if ((err = text_final(&s->text, s->digest, scan_raw, s)) == 0 &&
        (s->raw_len < 32 || (s->raw_len - 16) % 16 != 0))
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
    text_dispose(&s->text);
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
    struct text text;
    EVP_CIPHER_CTX *cbc;
    uint8_t want_digest[32];
    uint64_t raw_len;
    uint8_t *out; // CHUNK + 16 bytes
    bool failed;
};

/* Decrypt decoded bytes (after the 16-byte header) and pass the plaintext on. */
static int
dec_raw(void *ctx, const uint8_t *raw, size_t n)
{
    struct decryptor *d = ctx;
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
    if (d->failed)
        return sbx__error(SBX_EINVAL, "write after an error");
    int err = text_update(&d->text, buf, len, dec_raw, d);
    d->failed = err < 0;
    return err;
}

static int
dec_finish(sbx_sink *self)
{
    struct decryptor *d = (struct decryptor *)self;
    uint8_t digest[32];
    int fin = 0, err = d->failed ? sbx__error(SBX_EINVAL, "finish after an error") : 0;
    if (err == 0)
        err = text_final(&d->text, digest, dec_raw, d);
    if (err == 0 && (d->text.len != d->text.limit || !sbx_equal(digest, d->want_digest, 32)))
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
    text_dispose(&d->text);
    EVP_CIPHER_CTX_free(d->cbc); // wipes the key schedule
    if (d->out != NULL) {
        sbx_wipe(d->out, CHUNK + 16);
        free(d->out);
    }
    free(d);
}

/* The text must be the scanned one: its length is the limit, its hash is checked at the end. */
static int
dec_alloc(struct decryptor **out, sbx_sink *plain, const sbx_legacy_scan *s)
{
    struct decryptor *d = calloc(1, sizeof(*d));
    int err;
    *out = NULL;
    if (d == NULL)
        return sbx__error_nomem();
    d->base.write = dec_write;
    d->base.finish = dec_finish;
    d->base.free = dec_free;
    d->plain = plain;
    if ((err = text_init(&d->text, s->text.len, not_scanned)) < 0 ||
        (d->cbc = EVP_CIPHER_CTX_new()) == NULL || (d->out = malloc(CHUNK + 16)) == NULL) {
        dec_free(&d->base);
        return err < 0 ? err : sbx__error_nomem();
    }
    memcpy(d->want_digest, s->digest, 32);
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
