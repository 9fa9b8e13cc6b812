/*
 * src/sign/minisign.c - minisign keys and signatures (strongbox/sign.h).
 *
 * Implementation notes:
 *  - Layouts follow minisign 0.11 (src/minisign.h: PubkeyStruct,
 *    SeckeyStruct, SigStruct), base64 with '=' padding, one item per line.
 *    Lines end with "\n"; trailing "\r" are removed (minisign's trim()).
 *    Every parser bounds its input (SBX_SIGN_MAX_TEXT), refuses NUL bytes,
 *    and accepts only blank lines after the last expected line.
 *  - Key id: 8 random bytes, printed as the little-endian integer.
 *  - Secret key protection: libsodium's crypto_pwhash_scryptsalsa208sha256
 *    maps (opslimit, memlimit) to scrypt (N, r, p) with pickparams(); we
 *    replay that mapping and run scrypt through OpenSSL's EVP_KDF "SCRYPT",
 *    with 104 bytes of output XORed over keyid || sk || checksum.
 *  - Checksum "B2": BLAKE2b-256 (unkeyed, 32-byte output, which differs
 *    from truncated BLAKE2b-512) over "Ed" || keyid || sk, from libb2
 *    (linked statically: OpenSSL < 3.2 has no BLAKE2b-256). minisign stores
 *    it in protected keys only (zero in -W keys). A decrypted key is checked
 *    twice: its public half re-derived from the seed, and its checksum. A
 *    protected key with a zero checksum was written by sbx before libb2 was
 *    used; the public-half check alone still tells a wrong passphrase.
 *  - Signatures: "ED" = Ed25519 over BLAKE2b-512(file) (streamed); legacy
 *    "Ed" = Ed25519 over the whole file (verified, never produced). The
 *    global signature covers sig[64] || trusted comment.
 */
#include "strongbox/sign.h"
#include "strongbox/encoding.h"
#include "strongbox/memory.h"
#include "strongbox/random.h"
#include "core/error.h"
#include "sign/internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include <blake2.h>

#define KEYID_LEN     8
#define PK_STRUCT     (2 + KEYID_LEN + 32)                  // 42
#define SK_ENC_LEN    (KEYID_LEN + 64 + 32)                 // keyid || sk || chk = 104
#define SK_STRUCT     (2 + 2 + 2 + 32 + 8 + 8 + SK_ENC_LEN) // 158
#define SK_ENC_OFFSET (2 + 2 + 2 + 32 + 8 + 8)              // 54
#define SIG_STRUCT    (2 + KEYID_LEN + 64)                  // 74
#define CHUNK         65536

static const char comment_prefix[] = "untrusted comment: ";
static const char trusted_prefix[] = "trusted comment: ";
static const char default_comment[] = "signature from minisign secret key";
static const char seckey_comment[] = "minisign encrypted secret key";

struct sbx_minisign_pubkey {
    uint8_t keyid[KEYID_LEN];
    uint8_t pk[32];
    char b64[SBX_BASE64_PAD_LEN(PK_STRUCT) + 1];
};

struct sbx_minisign_seckey {
    uint8_t keyid[KEYID_LEN];
    uint8_t sk[64]; // seed || public key, as libsodium
};

/* ---- small helpers ---- */

static uint64_t
le64_load(const uint8_t b[8])
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | b[i];
    return v;
}

static void
le64_store(uint8_t b[8], uint64_t v)
{
    for (int i = 0; i < 8; i++, v >>= 8)
        b[i] = (uint8_t)(v & 0xff);
}

struct lines {
    const char *p;
    size_t left;
};

/* The next line without its "\n" and trailing "\r"s; false at the end of the text. */
static bool
next_line(struct lines *ls, const char **line, size_t *n)
{
    if (ls->left == 0)
        return false;
    const char *nl = memchr(ls->p, '\n', ls->left);
    size_t len = nl != NULL ? (size_t)(nl - ls->p) : ls->left;
    *line = ls->p;
    ls->p += len + (nl != NULL);
    ls->left -= len + (nl != NULL);
    while (len > 0 && (*line)[len - 1] == '\r')
        len--;
    *n = len;
    return true;
}

static bool
blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return false;
    }
    return true;
}

/* Only blank lines may follow the last expected line. */
static int
expect_end(struct lines *ls, const char *what)
{
    const char *l;
    size_t n;
    while (next_line(ls, &l, &n)) {
        if (!blank(l, n))
            return sbx__error(SBX_EFORMAT, "unexpected text after the %s", what);
    }
    return 0;
}

static int
check_text(const char *text, size_t len, const char *what)
{
    if (len > SBX_SIGN_MAX_TEXT)
        return sbx__error(SBX_ETOOBIG, "the %s is larger than %d bytes; is it the right file?",
                          what, SBX_SIGN_MAX_TEXT);
    if (len > 0 && memchr(text, '\0', len) != NULL)
        return sbx__error(SBX_EFORMAT, "the %s contains a NUL byte; is it the right file?", what);
    return 0;
}

static bool
starts_with(const char *s, size_t n, const char *prefix)
{
    size_t k = strlen(prefix);
    return n >= k && memcmp(s, prefix, k) == 0;
}

/* Decode exactly want bytes of padded base64 (want <= 160). */
static int
decode_exact(uint8_t *out, size_t want, const char *s, size_t n, const char *what)
{
    uint8_t tmp[168];
    size_t got = 0;
    int err = 0;
    if (n != SBX_BASE64_PAD_LEN(want) || want + 4 > sizeof(tmp))
        return sbx__error(SBX_EFORMAT,
                          "the %s line has %zu characters, expected %zu of base64; is it the "
                          "right file?",
                          what, n, (size_t)SBX_BASE64_PAD_LEN(want));
    if (sbx_base64_decode(tmp, sizeof(tmp), &got, s, n, true) != 0 || got != want)
        err = sbx__error(SBX_EFORMAT, "the %s line is not valid base64", what);
    else
        memcpy(out, tmp, want);
    SBX_WIPE_BUF(tmp);
    return err;
}

static int
append_b64_line(sbx_buf *out, const uint8_t *data, size_t n)
{
    char tmp[SBX_BASE64_PAD_LEN(SK_STRUCT) + 2];
    long k = sbx_base64_encode(tmp, sizeof(tmp), data, n, true);
    int err = k < 0 ? sbx__error(SBX_EINVAL, "base64 buffer too small") : 0;
    if (err == 0) {
        tmp[k] = '\n';
        err = sbx_buf_append(out, tmp, (size_t)k + 1);
    }
    SBX_WIPE_BUF(tmp);
    return err;
}

static int
append_str(sbx_buf *out, const char *s)
{
    return sbx_buf_append(out, s, strlen(s));
}

/* ---- primitives through OpenSSL ---- */

/* see sign/internal.h */
int
sbx_sign__ed25519_sign(uint8_t sig[64], const uint8_t seed[32], const uint8_t *msg, size_t len)
{
    EVP_PKEY *key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t siglen = 64;
    int err = 0;
    if (key == NULL || ctx == NULL ||
        EVP_DigestSignInit_ex(ctx, NULL, NULL, NULL, NULL, key, NULL) != 1 ||
        EVP_DigestSign(ctx, sig, &siglen, msg, len) != 1 || siglen != 64)
        err = sbx__error_crypto("Ed25519 signing");
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(key);
    return err;
}

/* see sign/internal.h */
int
sbx_sign__ed25519_verify(const uint8_t pk[32], const uint8_t sig[64], const uint8_t *msg,
                         size_t len)
{
    EVP_PKEY *key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pk, 32);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int err;
    if (key == NULL || ctx == NULL ||
        EVP_DigestVerifyInit_ex(ctx, NULL, NULL, NULL, NULL, key, NULL) != 1)
        err = sbx__error_crypto("Ed25519 verification setup");
    else if (EVP_DigestVerify(ctx, sig, 64, msg, len) == 1)
        err = 0;
    else
        err = SBX_EAUTH; // the caller words the message
    ERR_clear_error();
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(key);
    return err;
}

/* see sign/internal.h */
int
sbx_sign__read_all(sbx_buf *out, sbx_source *src, size_t limit, const char *what)
{
    for (;;) {
        size_t got = 0;
        int err;
        if ((err = sbx_buf_reserve(out, CHUNK)) < 0)
            return err;
        size_t room = out->cap - out->len;
        if ((err = sbx_source_read(src, out->ptr + out->len, room, &got)) < 0)
            return err;
        if (got == 0)
            return 0;
        out->len += got;
        if (out->len > limit)
            return sbx__error(SBX_ETOOBIG,
                              "%s: the message is larger than %zu bytes, the limit "
                              "for signatures that need it all in memory",
                              what, limit);
    }
}

/* BLAKE2b-512 of everything src produces. */
static int
blake2b512_source(uint8_t out[64], sbx_source *src)
{
    EVP_MD *md = EVP_MD_fetch(NULL, "BLAKE2B-512", NULL);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t *buf = malloc(CHUNK);
    unsigned outlen = 0;
    int err = 0;
    if (buf == NULL) {
        err = sbx__error_nomem();
        goto out;
    }
    if (md == NULL || ctx == NULL || EVP_DigestInit_ex2(ctx, md, NULL) != 1) {
        err = sbx__error_crypto("BLAKE2b-512");
        goto out;
    }
    for (;;) {
        size_t got = 0;
        if ((err = sbx_source_read(src, buf, CHUNK, &got)) < 0)
            goto out;
        if (got == 0)
            break;
        if (EVP_DigestUpdate(ctx, buf, got) != 1) {
            err = sbx__error_crypto("BLAKE2b-512");
            goto out;
        }
    }
    if (EVP_DigestFinal_ex(ctx, out, &outlen) != 1 || outlen != 64)
        err = sbx__error_crypto("BLAKE2b-512");
out:
    if (buf != NULL) {
        sbx_wipe(buf, CHUNK);
        free(buf);
    }
    EVP_MD_CTX_free(ctx);
    EVP_MD_free(md);
    return err;
}

/*
 * BLAKE2b with a 32-byte output (unkeyed) over the parts, from libb2: OpenSSL
 * 3.0 and 3.1 have no BLAKE2b-256, and truncating BLAKE2b-512 gives other bytes.
 */
static int
blake2b256(uint8_t out[32], const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
           const uint8_t *c, size_t clen)
{
    blake2b_state st;
    int err = 0;
    if (blake2b_init(&st, 32) != 0 || blake2b_update(&st, a, alen) != 0 ||
        blake2b_update(&st, b, blen) != 0 || blake2b_update(&st, c, clen) != 0 ||
        blake2b_final(&st, out, 32) != 0)
        err = sbx__error(SBX_EINVAL, "BLAKE2b-256 failed");
    sbx_wipe(&st, sizeof(st));
    return err;
}

/* see strongbox/sign.h */
bool
sbx_minisign_checksum_supported(void)
{
    return true;
}

static int
checksum(uint8_t out[32], const sbx_minisign_seckey *sk)
{
    return blake2b256(out, (const uint8_t *)"Ed", 2, sk->keyid, KEYID_LEN, sk->sk, 64);
}

/*
 * libsodium's pickparams(): (opslimit, memlimit) -> (log2 N, r, p), then
 * our limits, so a hostile key file cannot ask for unbounded memory or time.
 */
static int
scrypt_params(uint64_t ops, uint64_t mem, unsigned *log_n, uint32_t *r, uint32_t *p)
{
    uint64_t max_n, maxrp;
    if (ops < 32768)
        ops = 32768;
    *r = 8;
    if (ops < mem / 32) {
        *p = 1;
        max_n = ops / (*r * 4);
    } else {
        max_n = mem / ((uint64_t)*r * 128);
    }
    for (*log_n = 1; *log_n < 63; *log_n += 1) {
        if (((uint64_t)1 << *log_n) > max_n / 2)
            break;
    }
    if (!(ops < mem / 32)) {
        maxrp = (ops / 4) / ((uint64_t)1 << *log_n);
        if (maxrp > 0x3fffffff)
            maxrp = 0x3fffffff;
        *p = (uint32_t)maxrp / *r;
    }
    uint64_t need = 128ULL * *r << *log_n;
    if (*log_n > 40 || need > SBX_MINISIGN_MEMLIMIT_MAX)
        return sbx__error(SBX_ETOOBIG,
                          "the secret key asks for more than %llu bytes of scrypt memory; "
                          "refusing (a minisign key needs 1 GiB)",
                          (unsigned long long)SBX_MINISIGN_MEMLIMIT_MAX);
    if (*p == 0 || ((uint64_t)*p << *log_n) > ((uint64_t)1 << 22))
        return sbx__error(SBX_ETOOBIG,
                          "the secret key asks for more scrypt work than allowed "
                          "(p = %u); refusing",
                          *p);
    return 0;
}

static int
scrypt_stream(uint8_t *out, size_t out_len, const uint8_t *pass, size_t pass_len,
              const uint8_t salt[32], uint64_t ops, uint64_t mem)
{
    unsigned log_n;
    uint32_t r, p;
    int err;
    if ((err = scrypt_params(ops, mem, &log_n, &r, &p)) < 0)
        return err;
    uint64_t n = (uint64_t)1 << log_n;
    uint64_t maxmem = 128ULL * r * (n + p + 2) + (64ULL << 20);
    static const uint8_t empty[1] = {0};
    OSSL_PARAM params[7], *q = params;
    *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD,
                                             (void *)(pass_len ? pass : empty), pass_len);
    *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, 32);
    *q++ = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
    *q++ = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r);
    *q++ = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p);
    *q++ = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem);
    *q = OSSL_PARAM_construct_end();
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
    EVP_KDF_CTX *ctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
    if (ctx == NULL || EVP_KDF_derive(ctx, out, out_len, params) != 1) {
        sbx_wipe(out, out_len);
        err = sbx__error_crypto("scrypt (the machine may lack the memory it needs)");
    }
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return err;
}

/* The public key derived from the seed must equal the stored one (constant time). */
static int
check_public_half(const sbx_minisign_seckey *sk, bool *ok)
{
    uint8_t pk[32];
    size_t n = sizeof(pk);
    EVP_PKEY *key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, sk->sk, 32);
    *ok = false;
    if (key == NULL || EVP_PKEY_get_raw_public_key(key, pk, &n) != 1 || n != 32) {
        EVP_PKEY_free(key);
        return sbx__error_crypto("Ed25519 public key derivation");
    }
    EVP_PKEY_free(key);
    *ok = sbx_equal(pk, sk->sk + 32, 32);
    return 0;
}

/* ---- public keys ---- */

static int
pubkey_from_struct(sbx_minisign_pubkey **out, const uint8_t s[PK_STRUCT])
{
    if (memcmp(s, "Ed", 2) != 0)
        return sbx__error(SBX_EUNSUPPORTED,
                          "unsupported signature algorithm \"%c%c\" in the public key (only "
                          "minisign's Ed25519 \"Ed\" keys exist)",
                          (s[0] >= 0x20 && s[0] < 0x7f) ? s[0] : '?',
                          (s[1] >= 0x20 && s[1] < 0x7f) ? s[1] : '?');
    sbx_minisign_pubkey *pk = calloc(1, sizeof(*pk));
    if (pk == NULL)
        return sbx__error_nomem();
    memcpy(pk->keyid, s + 2, KEYID_LEN);
    memcpy(pk->pk, s + 2 + KEYID_LEN, 32);
    (void)sbx_base64_encode(pk->b64, sizeof(pk->b64), s, PK_STRUCT, true);
    *out = pk;
    return 0;
}

/* see strongbox/sign.h */
int
sbx_minisign_pubkey_parse(sbx_minisign_pubkey **out, const char *text, size_t len)
{
    struct lines ls = {text, len};
    const char *l;
    size_t n;
    uint8_t s[PK_STRUCT];
    int err;
    *out = NULL;
    if ((err = check_text(text, len, "public key")) < 0)
        return err;
    bool have;
    while ((have = next_line(&ls, &l, &n)) && blank(l, n))
        ; // skip leading blank lines
    if (!have)
        return sbx__error(SBX_EFORMAT, "the public key is empty");
    if (starts_with(l, n, "untrusted comment:")) {
        if (!next_line(&ls, &l, &n))
            return sbx__error(SBX_EFORMAT, "the public key file has a comment line but no key "
                                           "line after it");
    } else if (starts_with(l, n, "-----BEGIN")) {
        return sbx__error(SBX_EFORMAT, "this is a PEM key, not a minisign public key (sbx "
                                       "verify detects PEM key files; --pem forces it)");
    }
    while (n > 0 && (l[0] == ' ' || l[0] == '\t'))
        l++, n--;
    while (n > 0 && (l[n - 1] == ' ' || l[n - 1] == '\t'))
        n--;
    if (n == SBX_BASE64_PAD_LEN(SK_STRUCT))
        return sbx__error(SBX_EFORMAT, "this is a minisign secret key, not a public key");
    if ((err = decode_exact(s, PK_STRUCT, l, n, "public key")) < 0)
        return err;
    if ((err = expect_end(&ls, "public key")) < 0)
        return err;
    return pubkey_from_struct(out, s);
}

/* see strongbox/sign.h */
uint64_t
sbx_minisign_pubkey_keyid(const sbx_minisign_pubkey *pk)
{
    return le64_load(pk->keyid);
}

/* see strongbox/sign.h */
const char *
sbx_minisign_pubkey_base64(const sbx_minisign_pubkey *pk)
{
    return pk->b64;
}

/* see strongbox/sign.h */
int
sbx_minisign_pubkey_to_file(const sbx_minisign_pubkey *pk, sbx_buf *out)
{
    char line[128];
    // minisign 0.11 prints the id without zero padding here
    snprintf(line, sizeof(line), "%sminisign public key %" PRIX64 "\n%s\n", comment_prefix,
             le64_load(pk->keyid), pk->b64);
    return append_str(out, line);
}

/* see strongbox/sign.h */
void
sbx_minisign_pubkey_free(sbx_minisign_pubkey *pk)
{
    free(pk);
}

/* ---- secret keys ---- */

static sbx_minisign_seckey *
seckey_alloc(void)
{
    return sbx_secret_alloc(sizeof(sbx_minisign_seckey));
}

/* see strongbox/sign.h */
void
sbx_minisign_seckey_free(sbx_minisign_seckey *sk)
{
    sbx_secret_free(sk, sizeof(*sk));
}

/* see strongbox/sign.h */
int
sbx_minisign_seckey_generate(sbx_minisign_seckey **out)
{
    EVP_PKEY *key = NULL;
    size_t n1 = 32, n2 = 32;
    int err;
    *out = NULL;
    sbx_minisign_seckey *sk = seckey_alloc();
    if (sk == NULL)
        return SBX_ENOMEM;
    if ((err = sbx_random_bytes(sk->keyid, KEYID_LEN)) < 0)
        goto out;
    key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (key == NULL || EVP_PKEY_get_raw_private_key(key, sk->sk, &n1) != 1 ||
        EVP_PKEY_get_raw_public_key(key, sk->sk + 32, &n2) != 1 || n1 != 32 || n2 != 32) {
        err = sbx__error_crypto("Ed25519 key generation");
        goto out;
    }
    *out = sk;
    sk = NULL;
out:
    EVP_PKEY_free(key);
    sbx_minisign_seckey_free(sk);
    return err;
}

/* see strongbox/sign.h */
uint64_t
sbx_minisign_seckey_keyid(const sbx_minisign_seckey *sk)
{
    return le64_load(sk->keyid);
}

/* see strongbox/sign.h */
int
sbx_minisign_seckey_public(sbx_minisign_pubkey **out, const sbx_minisign_seckey *sk)
{
    uint8_t s[PK_STRUCT];
    *out = NULL;
    memcpy(s, "Ed", 2);
    memcpy(s + 2, sk->keyid, KEYID_LEN);
    memcpy(s + 2 + KEYID_LEN, sk->sk + 32, 32);
    return pubkey_from_struct(out, s);
}

static int
decrypt_seckey(uint8_t s[SK_STRUCT], sbx_passphrase_cb cb, void *payload)
{
    sbx_buf pass = SBX_BUF_INIT;
    uint8_t *stream = NULL;
    unsigned log_n;
    uint32_t r, p;
    int err;
    // a hostile key's limits are refused before anyone is asked for a passphrase
    if ((err = scrypt_params(le64_load(s + 38), le64_load(s + 46), &log_n, &r, &p)) < 0)
        return err;
    if (cb == NULL)
        return sbx__error(SBX_ENOKEY, "the secret key is protected by a passphrase and none was "
                                      "supplied");
    if ((err = cb(&pass, payload)) < 0) {
        sbx_buf_dispose(&pass);
        return sbx__error(err, "no passphrase for the secret key: %s", sbx_strerror(err));
    }
    if ((stream = sbx_secret_alloc(SK_ENC_LEN)) == NULL) {
        err = SBX_ENOMEM;
        goto out;
    }
    if ((err = scrypt_stream(stream, SK_ENC_LEN, pass.ptr, pass.len, s + 6, le64_load(s + 38),
                             le64_load(s + 46))) < 0)
        goto out;
    for (size_t i = 0; i < SK_ENC_LEN; i++)
        s[SK_ENC_OFFSET + i] ^= stream[i];
out:
    sbx_secret_free(stream, SK_ENC_LEN);
    sbx_buf_dispose(&pass);
    return err;
}

static bool
all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

/*
 * Check a decrypted key: its public half, and the checksum of a protected key
 * (zero only in protected keys written by sbx before it had BLAKE2b-256).
 */
static int
check_seckey(const sbx_minisign_seckey *sk, const uint8_t chk[32], bool encrypted)
{
    uint8_t want[32];
    bool ok;
    int err;
    if ((err = check_public_half(sk, &ok)) < 0)
        return err;
    if (ok && encrypted && !all_zero(chk, 32)) {
        err = checksum(want, sk);
        ok = err == 0 && sbx_equal(want, chk, 32);
        SBX_WIPE_BUF(want);
        if (err < 0)
            return err;
    }
    if (ok)
        return 0;
    if (encrypted)
        return sbx__error(SBX_EAUTH, "wrong passphrase for the secret key (or the key file is "
                                     "corrupted)");
    return sbx__error(SBX_EFORMAT, "the secret key is corrupted: its public half does not match "
                                   "its seed");
}

static int
parse_seckey_struct(sbx_minisign_seckey *sk, uint8_t s[SK_STRUCT], sbx_passphrase_cb cb,
                    void *payload)
{
    bool encrypted;
    int err;
    if (memcmp(s, "Ed", 2) != 0)
        return sbx__error(SBX_EUNSUPPORTED, "unsupported signature algorithm in the secret key "
                                            "(only Ed25519 \"Ed\" keys exist)");
    if (memcmp(s + 4, "B2", 2) != 0)
        return sbx__error(SBX_EUNSUPPORTED, "unsupported checksum algorithm in the secret key "
                                            "(expected BLAKE2b \"B2\")");
    if (memcmp(s + 2, "Sc", 2) == 0)
        encrypted = true;
    else if (s[2] == 0 && s[3] == 0)
        encrypted = false;
    else
        return sbx__error(SBX_EUNSUPPORTED, "unsupported key derivation function in the secret "
                                            "key (expected scrypt \"Sc\" or none)");
    if (encrypted && (err = decrypt_seckey(s, cb, payload)) < 0)
        return err;
    memcpy(sk->keyid, s + SK_ENC_OFFSET, KEYID_LEN);
    memcpy(sk->sk, s + SK_ENC_OFFSET + KEYID_LEN, 64);
    return check_seckey(sk, s + SK_ENC_OFFSET + KEYID_LEN + 64, encrypted);
}

/* see strongbox/sign.h */
int
sbx_minisign_seckey_parse(sbx_minisign_seckey **out, const char *text, size_t len,
                          sbx_passphrase_cb cb, void *payload)
{
    struct lines ls = {text, len};
    const char *l;
    size_t n;
    uint8_t s[SK_STRUCT];
    int err;
    *out = NULL;
    if ((err = check_text(text, len, "secret key")) < 0)
        return err;
    if (!next_line(&ls, &l, &n) || blank(l, n))
        return sbx__error(SBX_EFORMAT, "the secret key file is empty or starts with a blank line");
    if (starts_with(l, n, "-----BEGIN"))
        return sbx__error(SBX_EFORMAT, "this is a PEM key, not a minisign secret key");
    if (!starts_with(l, n, comment_prefix))
        return sbx__error(SBX_EFORMAT, "not a minisign secret key: the first line should start "
                                       "with \"untrusted comment: \"");
    if (!next_line(&ls, &l, &n))
        return sbx__error(SBX_EFORMAT, "the secret key file has no key line");
    if (n == SBX_BASE64_PAD_LEN(PK_STRUCT))
        return sbx__error(SBX_EFORMAT, "this is a minisign public key, not a secret key (use "
                                       "it with verify -p)");
    if ((err = decode_exact(s, SK_STRUCT, l, n, "secret key")) < 0)
        return err;
    if ((err = expect_end(&ls, "secret key")) < 0)
        goto out;
    sbx_minisign_seckey *sk = seckey_alloc();
    if (sk == NULL) {
        err = SBX_ENOMEM;
        goto out;
    }
    if ((err = parse_seckey_struct(sk, s, cb, payload)) < 0)
        sbx_minisign_seckey_free(sk);
    else
        *out = sk;
out:
    SBX_WIPE_BUF(s);
    return err;
}

static int
encrypt_seckey(uint8_t s[SK_STRUCT], const uint8_t *pass, size_t pass_len, uint64_t ops,
               uint64_t mem)
{
    uint8_t *stream = sbx_secret_alloc(SK_ENC_LEN);
    int err;
    if (stream == NULL)
        return SBX_ENOMEM;
    if ((err = sbx_random_bytes(s + 6, 32)) < 0)
        goto out;
    le64_store(s + 38, ops);
    le64_store(s + 46, mem);
    if ((err = scrypt_stream(stream, SK_ENC_LEN, pass, pass_len, s + 6, ops, mem)) < 0)
        goto out;
    for (size_t i = 0; i < SK_ENC_LEN; i++)
        s[SK_ENC_OFFSET + i] ^= stream[i];
out:
    sbx_secret_free(stream, SK_ENC_LEN);
    return err;
}

/* see strongbox/sign.h */
int
sbx_minisign_seckey_to_file(const sbx_minisign_seckey *sk, sbx_buf *out, const uint8_t *pass,
                            size_t pass_len, uint64_t opslimit, uint64_t memlimit)
{
    uint8_t s[SK_STRUCT] = {0};
    int err = 0;
    if (pass != NULL && pass_len == 0)
        return sbx__error(SBX_EINVAL, "empty passphrase: give one, or none for an unprotected "
                                      "key");
    if (opslimit == 0)
        opslimit = SBX_MINISIGN_OPSLIMIT_DEFAULT;
    if (memlimit == 0)
        memlimit = SBX_MINISIGN_MEMLIMIT_DEFAULT;
    if (pass != NULL) {
        unsigned log_n;
        uint32_t r, p;
        if (scrypt_params(opslimit, memlimit, &log_n, &r, &p) < 0)
            return sbx__error(SBX_EINVAL,
                              "opslimit %llu / memlimit %llu are out of range: a key written with "
                              "them could not be read back (memory at most %llu bytes)",
                              (unsigned long long)opslimit, (unsigned long long)memlimit,
                              (unsigned long long)SBX_MINISIGN_MEMLIMIT_MAX);
    }
    memcpy(s, "Ed", 2);
    memcpy(s + 4, "B2", 2);
    memcpy(s + SK_ENC_OFFSET, sk->keyid, KEYID_LEN);
    memcpy(s + SK_ENC_OFFSET + KEYID_LEN, sk->sk, 64);
    if (pass != NULL) {
        memcpy(s + 2, "Sc", 2);
        // minisign stores the checksum only for protected keys
        if ((err = checksum(s + SK_ENC_OFFSET + KEYID_LEN + 64, sk)) < 0 ||
            (err = encrypt_seckey(s, pass, pass_len, opslimit, memlimit)) < 0)
            goto out;
    }
    if ((err = append_str(out, comment_prefix)) < 0 ||
        (err = append_str(out, seckey_comment)) < 0 || (err = append_str(out, "\n")) < 0 ||
        (err = append_b64_line(out, s, SK_STRUCT)) < 0)
        goto out;
out:
    SBX_WIPE_BUF(s);
    return err;
}

/* ---- signatures ---- */

struct parsed_sig {
    uint8_t raw[SIG_STRUCT]; // alg || keyid || sig
    uint8_t global[64];
    const char *tc; // trusted comment (points into the text)
    size_t tc_len;
};

static int
parse_sig(struct parsed_sig *ps, const char *text, size_t len)
{
    struct lines ls = {text, len};
    const char *l;
    size_t n;
    int err;
    if ((err = check_text(text, len, "signature file")) < 0)
        return err;
    if (!next_line(&ls, &l, &n) || !starts_with(l, n, comment_prefix))
        return sbx__error(SBX_EFORMAT, "not a minisign signature: the first line should start "
                                       "with \"untrusted comment: \"");
    if (n - strlen(comment_prefix) > SBX_MINISIGN_MAX_COMMENT)
        return sbx__error(SBX_EFORMAT, "the untrusted comment is longer than %d bytes",
                          SBX_MINISIGN_MAX_COMMENT);
    if (!next_line(&ls, &l, &n))
        return sbx__error(SBX_EFORMAT, "the signature file is truncated (no signature line)");
    if ((err = decode_exact(ps->raw, SIG_STRUCT, l, n, "signature")) < 0)
        return err;
    if (memcmp(ps->raw, "ED", 2) != 0 && memcmp(ps->raw, "Ed", 2) != 0)
        return sbx__error(SBX_EUNSUPPORTED, "unsupported signature algorithm (expected minisign "
                                            "\"ED\" or legacy \"Ed\")");
    if (!next_line(&ls, &l, &n) || !starts_with(l, n, trusted_prefix))
        return sbx__error(SBX_EFORMAT, "the signature file has no \"trusted comment: \" line "
                                       "(truncated or not a minisign signature)");
    ps->tc = l + strlen(trusted_prefix);
    ps->tc_len = n - strlen(trusted_prefix);
    if (ps->tc_len > SBX_MINISIGN_MAX_TRUSTED_COMMENT)
        return sbx__error(SBX_EFORMAT, "the trusted comment is longer than %d bytes",
                          SBX_MINISIGN_MAX_TRUSTED_COMMENT);
    if (!next_line(&ls, &l, &n))
        return sbx__error(SBX_EFORMAT, "the signature file is truncated (no global signature "
                                       "line)");
    if ((err = decode_exact(ps->global, 64, l, n, "global signature")) < 0)
        return err;
    return expect_end(&ls, "signature");
}

/* see strongbox/sign.h */
int
sbx_minisign_signature_keyid(uint64_t *keyid, const char *sig_text, size_t sig_len)
{
    struct parsed_sig ps;
    int err;
    *keyid = 0;
    if ((err = parse_sig(&ps, sig_text, sig_len)) == 0)
        *keyid = le64_load(ps.raw + 2);
    return err;
}

static int
check_comment(const char *c, size_t max, const char *what)
{
    if (strpbrk(c, "\r\n") != NULL)
        return sbx__error(SBX_EINVAL, "the %s must be a single line (no line breaks)", what);
    if (strlen(c) > max)
        return sbx__error(SBX_EINVAL, "the %s is longer than %zu bytes", what, max);
    return 0;
}

/* sig || trusted comment, the message of the global signature. */
static int
global_message(sbx_buf *m, const uint8_t sig[64], const char *tc, size_t tc_len)
{
    int err = sbx_buf_append(m, sig, 64);
    if (err == 0 && tc_len > 0)
        err = sbx_buf_append(m, tc, tc_len);
    return err;
}

static int
write_sig(sbx_buf *out, const char *comment, const uint8_t raw[SIG_STRUCT], const char *tc,
          const uint8_t global[64])
{
    int err;
    if ((err = append_str(out, comment_prefix)) < 0 || (err = append_str(out, comment)) < 0 ||
        (err = append_str(out, "\n")) < 0 || (err = append_b64_line(out, raw, SIG_STRUCT)) < 0 ||
        (err = append_str(out, trusted_prefix)) < 0 || (err = append_str(out, tc)) < 0 ||
        (err = append_str(out, "\n")) < 0 || (err = append_b64_line(out, global, 64)) < 0)
        return err;
    return 0;
}

/* see strongbox/sign.h */
int
sbx_minisign_sign(sbx_buf *sig_out, const sbx_minisign_seckey *sk, sbx_source *msg,
                  const sbx_minisign_sign_options *opts)
{
    static const sbx_minisign_sign_options defaults = SBX_MINISIGN_SIGN_OPTIONS_INIT;
    uint8_t hash[64], raw[SIG_STRUCT], global[64];
    sbx_buf gm = SBX_BUF_INIT;
    char *tc_default = NULL;
    int err;
    if (opts == NULL)
        opts = &defaults;
    if (opts->version != SBX_MINISIGN_SIGN_OPTIONS_VERSION)
        return sbx__error(SBX_EINVAL, "unknown sbx_minisign_sign_options version %d",
                          opts->version);
    const char *comment = opts->untrusted_comment ? opts->untrusted_comment : default_comment;
    const char *tc = opts->trusted_comment;
    if (tc == NULL) {
        const char *name = opts->file_name;
        size_t cap = 64 + (name ? strlen(name) : 0);
        if ((tc_default = malloc(cap)) == NULL)
            return sbx__error_nomem();
        if (name != NULL)
            snprintf(tc_default, cap, "timestamp:%lu\tfile:%s\thashed", (unsigned long)time(NULL),
                     name);
        else
            snprintf(tc_default, cap, "timestamp:%lu\thashed", (unsigned long)time(NULL));
        tc = tc_default;
    }
    if ((err = check_comment(comment, SBX_MINISIGN_MAX_COMMENT, "untrusted comment")) < 0 ||
        (err = check_comment(tc, SBX_MINISIGN_MAX_TRUSTED_COMMENT, "trusted comment")) < 0)
        goto out;
    if ((err = blake2b512_source(hash, msg)) < 0)
        goto out;
    memcpy(raw, "ED", 2);
    memcpy(raw + 2, sk->keyid, KEYID_LEN);
    if ((err = sbx_sign__ed25519_sign(raw + 2 + KEYID_LEN, sk->sk, hash, sizeof(hash))) < 0)
        goto out;
    if ((err = global_message(&gm, raw + 2 + KEYID_LEN, tc, strlen(tc))) < 0 ||
        (err = sbx_sign__ed25519_sign(global, sk->sk, gm.ptr, gm.len)) < 0)
        goto out;
    err = write_sig(sig_out, comment, raw, tc, global);
out:
    free(tc_default);
    sbx_buf_dispose(&gm);
    SBX_WIPE_BUF(hash);
    return err;
}

static int
verify_message(const struct parsed_sig *ps, const sbx_minisign_pubkey *pk, sbx_source *msg)
{
    const uint8_t *sig = ps->raw + 2 + KEYID_LEN;
    int err;
    if (memcmp(ps->raw, "ED", 2) == 0) {
        uint8_t hash[64];
        if ((err = blake2b512_source(hash, msg)) < 0)
            return err;
        err = sbx_sign__ed25519_verify(pk->pk, sig, hash, sizeof(hash));
    } else {
        sbx_buf all = SBX_BUF_INIT;
        err = sbx_sign__read_all(&all, msg, SBX_SIGN_MAX_IN_MEMORY, "legacy minisign signature");
        if (err == 0)
            err = sbx_sign__ed25519_verify(pk->pk, sig, all.len ? all.ptr : (const uint8_t *)"",
                                           all.len);
        sbx_buf_dispose(&all);
    }
    if (err == SBX_EAUTH)
        return sbx__error(SBX_EAUTH, "signature verification failed: the file does not match "
                                     "the signature (changed, or signed with another key)");
    return err;
}

/* see strongbox/sign.h */
int
sbx_minisign_verify(const sbx_minisign_pubkey *pk, sbx_source *msg, const char *sig_text,
                    size_t sig_len, sbx_buf *trusted_comment)
{
    struct parsed_sig ps;
    sbx_buf gm = SBX_BUF_INIT;
    int err;
    if ((err = parse_sig(&ps, sig_text, sig_len)) < 0)
        return err;
    if (memcmp(ps.raw + 2, pk->keyid, KEYID_LEN) != 0)
        return sbx__error(SBX_ENOKEY,
                          "the signature was made by key id %016" PRIX64
                          ", but the public key has id %016" PRIX64 " (wrong public key?)",
                          le64_load(ps.raw + 2), le64_load(pk->keyid));
    if ((err = verify_message(&ps, pk, msg)) < 0)
        return err;
    if ((err = global_message(&gm, ps.raw + 2 + KEYID_LEN, ps.tc, ps.tc_len)) < 0)
        goto out;
    if (sbx_sign__ed25519_verify(pk->pk, ps.global, gm.ptr, gm.len) != 0) {
        err = sbx__error(SBX_EAUTH, "comment signature verification failed: the trusted "
                                    "comment was changed");
        goto out;
    }
    if (trusted_comment != NULL) {
        if ((err = sbx_buf_append(trusted_comment, ps.tc, ps.tc_len)) < 0 ||
            (err = sbx_buf_append(trusted_comment, "", 1)) < 0)
            goto out;
        trusted_comment->len--; // NUL-terminated, not counted
    }
out:
    sbx_buf_dispose(&gm);
    return err;
}
