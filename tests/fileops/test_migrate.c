/*
 * tests/fileops/test_migrate.c - reading the seed archives (strongbox/migrate.h):
 * member names, the scan, the streamed decryptor and the one-shot form.
 *
 * Archives are made here the way `openssl enc -aes-256-cbc -a -salt` and
 * `openssl rsautl -encrypt -oaep` made them (EVP_BytesToKey with one
 * iteration, 64-column base64, RSA-OAEP with SHA-1); tests/interop/migrate_test.sh
 * does the same with the openssl command itself. Plaintexts come from a
 * seeded PRNG (SBX_TEST_SEED replays).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "strongbox/strongbox.h"
#include "helpers.h"

static const char password[] = "#0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

struct fixture {
    sbx_legacy_key *key;
    uint8_t wrapped[256];
    size_t wrapped_len;
};

static struct fixture fx;

static int
setup(void **state)
{
    (void)state;
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    BIO *bio = BIO_new(BIO_s_mem());
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pkey, NULL);
    char *pem = NULL;
    assert_non_null(pkey);
    assert_int_equal(PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL), 1);
    long n = BIO_get_mem_data(bio, &pem);
    assert_sbx_ok(sbx_legacy_key_parse(&fx.key, pem, (size_t)n, NULL, NULL));
    fx.wrapped_len = sizeof(fx.wrapped);
    assert_int_equal(EVP_PKEY_encrypt_init(ctx), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING), 1); // SHA-1
    assert_int_equal(EVP_PKEY_encrypt(ctx, fx.wrapped, &fx.wrapped_len, (const uint8_t *)password,
                                      strlen(password)),
                     1);
    EVP_PKEY_CTX_free(ctx);
    BIO_free(bio);
    EVP_PKEY_free(pkey);
    test_seed_init("test_migrate");
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    sbx_legacy_key_free(fx.key);
    return 0;
}

/* Base64 in 64-column lines, as `openssl enc -a` writes it; replaces out's contents. */
static void
encode(sbx_buf *out, const uint8_t *raw, size_t len)
{
    EVP_ENCODE_CTX *e = EVP_ENCODE_CTX_new();
    int n = 0, fin = 0;
    out->len = 0;
    assert_sbx_ok(sbx_buf_reserve(out, len * 2 + 80));
    EVP_EncodeInit(e);
    assert_int_equal(EVP_EncodeUpdate(e, out->ptr, &n, raw, (int)len), 1);
    EVP_EncodeFinal(e, out->ptr + n, &fin);
    out->len = (size_t)(n + fin);
    EVP_ENCODE_CTX_free(e);
}

/* `openssl enc -aes-256-cbc -a -salt -md MD` of plain, as base64 text in out. */
static void
openssl_enc(sbx_buf *out, const uint8_t *plain, size_t len, const EVP_MD *md)
{
    uint8_t key[32], iv[16], *raw = malloc(len + 32);
    int n = 0, fin = 0;
    assert_non_null(raw);
    memcpy(raw, "Salted__", 8);
    test_rand_fill(raw + 8, 8);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    assert_int_equal(EVP_BytesToKey(EVP_aes_256_cbc(), md, raw + 8, (const uint8_t *)password,
                                    (int)strlen(password), 1, key, iv),
                     32);
    assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_256_cbc(), NULL, key, iv), 1);
    assert_int_equal(EVP_EncryptUpdate(c, raw + 16, &n, plain, (int)len), 1);
    assert_int_equal(EVP_EncryptFinal_ex(c, raw + 16 + n, &fin), 1);
    encode(out, raw, 16 + (size_t)n + (size_t)fin);
    EVP_CIPHER_CTX_free(c);
    free(raw);
}

/* The raw bytes of base64 text (raw has room for text->len bytes). */
static size_t
decode(uint8_t *raw, const sbx_buf *text)
{
    EVP_ENCODE_CTX *e = EVP_ENCODE_CTX_new();
    int n = 0, fin = 0;
    EVP_DecodeInit(e);
    assert_true(EVP_DecodeUpdate(e, raw, &n, text->ptr, (int)text->len) >= 0);
    assert_int_equal(EVP_DecodeFinal(e, raw + n, &fin), 1);
    EVP_ENCODE_CTX_free(e);
    return (size_t)(n + fin);
}

/* A sink that keeps what it gets and counts finish() calls. */
struct recorder {
    sbx_sink base;
    sbx_buf got;
    int finished;
};

static int
rec_write(sbx_sink *self, const uint8_t *buf, size_t len)
{
    return sbx_buf_append(&((struct recorder *)self)->got, buf, len);
}

static int
rec_finish(sbx_sink *self)
{
    ((struct recorder *)self)->finished++;
    return 0;
}

static void
rec_init(struct recorder *r)
{
    memset(r, 0, sizeof(*r));
    r->base.write = rec_write;
    r->base.finish = rec_finish;
}

static void
scan_all(sbx_legacy_scan **scan, const sbx_buf *text, size_t piece)
{
    assert_sbx_ok(sbx_legacy_scan_new(scan));
    for (size_t i = 0; i < text->len; i += piece)
        assert_sbx_ok(sbx_legacy_scan_update(*scan, text->ptr + i,
                                             text->len - i < piece ? text->len - i : piece));
    assert_sbx_ok(sbx_legacy_scan_finish(*scan));
}

static sbx_legacy_members
members(const sbx_buf *text, const char *meta)
{
    sbx_legacy_members m = {text->ptr,
                            text->len,
                            fx.wrapped,
                            fx.wrapped_len,
                            (const uint8_t *)meta,
                            meta != NULL ? strlen(meta) : 0};
    return m;
}

/* Write text into the decryptor in pieces; the result of finish(). */
static int
feed(sbx_sink *dec, const uint8_t *text, size_t len, size_t piece)
{
    int err = 0;
    for (size_t i = 0; err == 0 && i < len; i += piece)
        err = sbx_sink_write(dec, text + i, len - i < piece ? len - i : piece);
    return err == 0 ? sbx_sink_finish(dec) : err;
}

static void
legacy_streamed_decryption_equals_the_plaintext_for_any_piece_size(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 15, 16, 17, 48, 65536, 200001};
    static const size_t pieces[] = {1, 3, 64, 4096, 65536, 1 << 20};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        uint8_t *plain = malloc(sizes[s] + 1);
        sbx_buf text = SBX_BUF_INIT, one = SBX_BUF_INIT;
        test_rand_fill(plain, sizes[s]);
        openssl_enc(&text, plain, sizes[s], EVP_sha256());
        sbx_legacy_members m = members(&text, NULL);
        for (size_t p = 0; p < sizeof(pieces) / sizeof(pieces[0]); p++) {
            sbx_legacy_scan *scan = NULL;
            sbx_sink *dec = NULL;
            struct recorder r;
            sbx_legacy_report rep;
            rec_init(&r);
            scan_all(&scan, &text, pieces[p]);
            assert_sbx_ok(sbx_legacy_decryptor_new(&dec, &r.base, fx.key, scan, &m, NULL, &rep));
            sbx_legacy_scan_free(scan); // the decryptor does not need it any more
            assert_sbx_ok(feed(dec, text.ptr, text.len, pieces[p]));
            assert_int_equal(r.finished, 1);
            assert_int_equal(r.got.len, sizes[s]);
            if (sizes[s] > 0)
                assert_memory_equal(r.got.ptr, plain, sizes[s]);
            assert_true(rep.oaep);
            assert_false(rep.md5);
            assert_false(rep.hash_checked);
            sbx_sink_free(dec);
            sbx_buf_dispose(&r.got);
        }
        assert_sbx_ok(sbx_legacy_decrypt(&one, fx.key, &m, NULL, NULL));
        assert_int_equal(one.len, sizes[s]);
        sbx_buf_dispose(&one);
        sbx_buf_dispose(&text);
        free(plain);
    }
}

static void
legacy_md5_archives_and_recorded_hashes_are_reported(void **state)
{
    (void)state;
    uint8_t plain[1000], digest[32];
    sbx_buf text = SBX_BUF_INIT, out = SBX_BUF_INIT;
    char meta[200] = "HMAC-sha256 of encrypted file: ";
    sbx_legacy_report rep;
    test_rand_fill(plain, sizeof(plain));
    openssl_enc(&text, plain, sizeof(plain), EVP_md5());
    assert_int_equal(EVP_Digest(text.ptr, text.len, digest, NULL, EVP_sha256(), NULL), 1);
    for (int i = 0; i < 32; i++)
        snprintf(meta + strlen(meta), 3, "%02x", digest[i]);
    sbx_legacy_members m = members(&text, meta);
    sbx_legacy_options o = SBX_LEGACY_OPTIONS_INIT;
    o.digest = SBX_LEGACY_DIGEST_MD5; // AUTO may find both digests plausible (1 in 256)
    assert_sbx_ok(sbx_legacy_decrypt(&out, fx.key, &m, &o, &rep));
    assert_int_equal(out.len, sizeof(plain));
    assert_memory_equal(out.ptr, plain, sizeof(plain));
    assert_true(rep.md5 && rep.hash_checked && rep.oaep);
    o.digest = SBX_LEGACY_DIGEST_SHA256; // the wrong derivation fails on its padding, mostly
    int err = sbx_legacy_decrypt(&out, fx.key, &m, &o, NULL);
    assert_true(err == SBX_EAUTH || err == 0);
    sbx_buf_dispose(&out);
    sbx_buf_dispose(&text);
}

static void
legacy_scan_refuses_a_bad_format_at_its_first_bytes(void **state)
{
    (void)state;
    sbx_legacy_scan *scan = NULL;
    // base64 of twelve zero bytes: no "Salted__", refused before any more data
    assert_sbx_ok(sbx_legacy_scan_new(&scan));
    assert_sbx_err(sbx_legacy_scan_update(scan, (const uint8_t *)"AAAAAAAAAAAAAAAA", 16),
                   SBX_EFORMAT);
    assert_non_null(strstr(sbx_error_last()->message, "Salted__"));
    assert_sbx_err(sbx_legacy_scan_finish(scan), SBX_EINVAL);
    sbx_legacy_scan_free(scan);
    assert_sbx_ok(sbx_legacy_scan_new(&scan));
    assert_sbx_err(sbx_legacy_scan_update(scan, (const uint8_t *)"U2Fsd*GVkX1\n", 12), SBX_EFORMAT);
    assert_non_null(strstr(sbx_error_last()->message, "not base64"));
    sbx_legacy_scan_free(scan);
    // "Salted__" and a salt but a partial block
    assert_sbx_ok(sbx_legacy_scan_new(&scan));
    const char *partial = "U2FsdGVkX18AAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"; // 16 + 13 bytes
    assert_sbx_ok(sbx_legacy_scan_update(scan, (const uint8_t *)partial, strlen(partial)));
    assert_sbx_err(sbx_legacy_scan_finish(scan), SBX_EFORMAT);
    sbx_legacy_scan_free(scan);
    // '-' and base64 after the padding are refused however the text is cut (OpenSSL's
    // decoder alone would stop at '-' and miss text after padding in a later piece)
    uint8_t one = 7;
    sbx_buf text = SBX_BUF_INIT;
    openssl_enc(&text, &one, 1, EVP_sha256()); // 32 bytes: 43 characters and one '='
    assert_int_equal(text.ptr[text.len - 2], '=');
    size_t plain_len = text.len;
    // 48 more bytes after the padding: still whole blocks when decoded past the '='
    assert_sbx_ok(sbx_buf_append(
        &text, "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\n", 65));
    for (size_t cut = 1; cut <= text.len; cut++) {
        for (int dash = 0; dash < 2; dash++) {
            sbx_buf t = SBX_BUF_INIT;
            int err = 0;
            assert_sbx_ok(sbx_buf_append(&t, text.ptr, dash ? plain_len : text.len));
            if (dash) // a PEM-like end line after the data
                assert_sbx_ok(sbx_buf_append(&t, "-----END-----\n", 14));
            assert_sbx_ok(sbx_legacy_scan_new(&scan));
            for (size_t i = 0; err == 0 && i < t.len; i += cut)
                err = sbx_legacy_scan_update(scan, t.ptr + i, t.len - i < cut ? t.len - i : cut);
            if (err == 0)
                err = sbx_legacy_scan_finish(scan);
            assert_int_equal(err, SBX_EFORMAT);
            sbx_legacy_scan_free(scan);
            sbx_buf_dispose(&t);
        }
    }
    sbx_buf_dispose(&text);
    // a decryptor refuses an unfinished scan
    sbx_legacy_members m = {NULL, 0, fx.wrapped, fx.wrapped_len, NULL, 0};
    struct recorder r;
    sbx_sink *dec = NULL;
    rec_init(&r);
    assert_sbx_ok(sbx_legacy_scan_new(&scan));
    assert_sbx_err(sbx_legacy_decryptor_new(&dec, &r.base, fx.key, scan, &m, NULL, NULL),
                   SBX_EINVAL);
    assert_null(dec);
    sbx_legacy_scan_free(scan);
}

static void
legacy_checks_run_before_anything_is_decrypted(void **state)
{
    (void)state;
    uint8_t plain[5000];
    sbx_buf text = SBX_BUF_INIT;
    sbx_legacy_scan *scan = NULL;
    sbx_sink *dec = NULL;
    struct recorder r;
    rec_init(&r);
    test_rand_fill(plain, sizeof(plain));
    openssl_enc(&text, plain, sizeof(plain), EVP_sha256());
    scan_all(&scan, &text, 1000);
    // a recorded hash that differs
    char meta[200];
    snprintf(meta, sizeof(meta), "{\"m\": {\"hash of cipher_text\": \"%064d\"}}", 0);
    sbx_legacy_members m = members(&text, meta);
    assert_sbx_err(sbx_legacy_decryptor_new(&dec, &r.base, fx.key, scan, &m, NULL, NULL),
                   SBX_EAUTH);
    assert_non_null(strstr(sbx_error_last()->message, "modified"));
    // another key's password
    uint8_t other[256];
    memcpy(other, fx.wrapped, fx.wrapped_len);
    other[10] ^= 1;
    m = members(&text, NULL);
    m.wrapped = other;
    assert_sbx_err(sbx_legacy_decryptor_new(&dec, &r.base, fx.key, scan, &m, NULL, NULL),
                   SBX_EAUTH);
    assert_non_null(strstr(sbx_error_last()->message, "wrong key"));
    sbx_legacy_scan_free(scan);
    // a last block with bad padding under both derivations: refused at once
    sbx_buf bad = SBX_BUF_INIT;
    int tries = 0, err = 0;
    do { // about 1 in 128 damaged last blocks still has valid padding under one derivation
        uint8_t raw[6000];
        size_t n = decode(raw, &text);
        raw[n - 1 - test_rand_below(16)] ^= (uint8_t)(1 + test_rand_below(255));
        encode(&bad, raw, n);
        scan_all(&scan, &bad, 4096);
        m = members(&bad, NULL);
        err = sbx_legacy_decryptor_new(&dec, &r.base, fx.key, scan, &m, NULL, NULL);
        sbx_legacy_scan_free(scan);
        sbx_sink_free(dec);
        dec = NULL;
    } while (err != SBX_EAUTH && ++tries < 20);
    assert_int_equal(err, SBX_EAUTH);
    assert_non_null(strstr(sbx_error_last()->message, "padding"));
    assert_int_equal(r.got.len, 0); // nothing reached the plaintext sink
    assert_int_equal(r.finished, 0);
    sbx_buf_dispose(&bad);
    sbx_buf_dispose(&text);
}

static void
legacy_decryptor_refuses_data_that_changed_after_the_scan(void **state)
{
    (void)state;
    uint8_t plain[100000];
    sbx_buf text = SBX_BUF_INIT;
    sbx_legacy_scan *scan = NULL;
    sbx_sink *dec = NULL;
    test_rand_fill(plain, sizeof(plain));
    openssl_enc(&text, plain, sizeof(plain), EVP_sha256());
    sbx_legacy_members m = members(&text, NULL);
    scan_all(&scan, &text, 65536);
    for (int round = 0; round < 3; round++) {
        struct recorder r;
        rec_init(&r);
        uint8_t *changed = malloc(text.len + 70);
        size_t len = text.len;
        memcpy(changed, text.ptr, text.len);
        if (round == 0) { // one character in the middle, still base64
            size_t i = text.len / 2 + (text.ptr[text.len / 2] == '\n');
            changed[i] = text.ptr[i] == 'A' ? 'B' : 'A';
        } else if (round == 1) { // a line more
            memcpy(changed + len, "AAAAAAAAAAAAAAAA\n", 17);
            len += 17;
        } else { // a line less
            len -= 65;
        }
        assert_sbx_ok(sbx_legacy_decryptor_new(&dec, &r.base, fx.key, scan, &m, NULL, NULL));
        int err = feed(dec, changed, len, 4096);
        assert_true(err == SBX_EAUTH || err == SBX_EFORMAT);
        if (round < 2)
            assert_non_null(strstr(sbx_error_last()->message, "changed"));
        // CBC releases blocks as they come; the sink is never finished, so an atomic file
        // sink below it discards them
        assert_int_equal(r.finished, 0);
        sbx_sink_free(dec);
        sbx_buf_dispose(&r.got);
        free(changed);
    }
    sbx_legacy_scan_free(scan);
    sbx_buf_dispose(&text);
}

static void
legacy_member_names_are_plain_utf8(void **state)
{
    (void)state;
    static const char *const good[] = {
        " \xc2\xa1pathol\xe2\x98\xa2gical filename!  .aes256", // pyFileSec's test name
        "data.csv.aes256",
        "\xc3\xbcn\xc3\xaf.meta",
        "a b.aes256.pwdrsa",
        "x.aes256pwd.rsa",
        "\xf0\x9f\x94\x91.meta",
    };
    static const struct {
        const char *name, *why;
    } bad[] = {
        {"", "no name"},
        {"../x", ".."},
        {"a/b.aes256", "path"},
        {"/etc/x.aes256", "path"},
        {"a\\b.aes256", "path"},
        {".hidden", "'.'"},
        {"a..b", ".."},
        {"x\x01y", "U+0001"},
        {"x\ny", "U+000A"},
        {"x\x7fy", "U+007F"},
        {"a\xc2\x9b[2J.aes256", "U+009B"},
        {"x\xe2\x80\xaegpj.aes256", "U+202E"},
        {"x\xe2\x81\xa6y", "U+2066"},
        {"x\xe2\x80\xa8y", "U+2028"},
        {"caf\xe9.aes256", "not UTF-8"},
        {"\xc0\xaf.aes256", "not UTF-8"},   // overlong '/'
        {"\xed\xa0\x80.meta", "not UTF-8"}, // surrogate
        {"x\xc3", "not UTF-8"},             // cut sequence
    };
    char longname[300];
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_sbx_ok(sbx_legacy_member_name_check(good[i]));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_sbx_err(sbx_legacy_member_name_check(bad[i].name), SBX_EFORMAT);
        if (strstr(sbx_error_last()->message, bad[i].why) == NULL) {
            print_error("name %zu: message \"%s\" lacks \"%s\"\n", i, sbx_error_last()->message,
                        bad[i].why);
            fail();
        }
    }
    assert_sbx_err(sbx_legacy_member_name_check(NULL), SBX_EFORMAT);
    memset(longname, 'a', 256);
    longname[256] = '\0';
    assert_sbx_err(sbx_legacy_member_name_check(longname), SBX_EFORMAT);
    longname[255] = '\0'; // 255 bytes: the longest accepted
    assert_sbx_ok(sbx_legacy_member_name_check(longname));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(legacy_streamed_decryption_equals_the_plaintext_for_any_piece_size),
        cmocka_unit_test(legacy_md5_archives_and_recorded_hashes_are_reported),
        cmocka_unit_test(legacy_scan_refuses_a_bad_format_at_its_first_bytes),
        cmocka_unit_test(legacy_checks_run_before_anything_is_decrypted),
        cmocka_unit_test(legacy_decryptor_refuses_data_that_changed_after_the_scan),
        cmocka_unit_test(legacy_member_names_are_plain_utf8),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
