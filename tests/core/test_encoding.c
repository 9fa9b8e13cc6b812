/*
 * tests/core/test_encoding.c - strict base64 and Bech32.
 *
 * Sources of the known answers:
 *  - base64: RFC 4648 §10 test vectors.
 *  - Bech32: BIP 173 "Test vectors" (valid and invalid Bech32 strings).
 *  - age key strings: the spec pair in spec/age.md §8.
 *  - Non-letter HRP characters, padding and long strings: computed with the
 *    BIP 173 Python reference code (segwit_addr.py: bech32_create_checksum,
 *    convertbits), which lower-cases nothing but ASCII letters.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "strongbox/encoding.h"
#include "helpers.h"

/* ---- base64 ---- */

struct b64_kat {
    const char *plain, *pad, *nopad;
};

/* RFC 4648 §10 */
static const struct b64_kat rfc4648[] = {
    {"", "", ""},
    {"f", "Zg==", "Zg"},
    {"fo", "Zm8=", "Zm8"},
    {"foo", "Zm9v", "Zm9v"},
    {"foob", "Zm9vYg==", "Zm9vYg"},
    {"fooba", "Zm9vYmE=", "Zm9vYmE"},
    {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
};

static void
base64_encodes_rfc4648_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
        const struct b64_kat *k = &rfc4648[i];
        char out[32];
        size_t n = strlen(k->plain);
        long len = sbx_base64_encode(out, sizeof(out), (const uint8_t *)k->plain, n, true);
        assert_int_equal(len, (long)strlen(k->pad));
        assert_string_equal(out, k->pad);
        assert_int_equal(SBX_BASE64_PAD_LEN(n), strlen(k->pad));
        len = sbx_base64_encode(out, sizeof(out), (const uint8_t *)k->plain, n, false);
        assert_int_equal(len, (long)strlen(k->nopad));
        assert_string_equal(out, k->nopad);
        assert_int_equal(SBX_BASE64_NOPAD_LEN(n), strlen(k->nopad));
    }
}

static void
base64_decodes_rfc4648_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
        const struct b64_kat *k = &rfc4648[i];
        uint8_t out[32];
        size_t n = 99;
        assert_sbx_ok(sbx_base64_decode(out, sizeof(out), &n, k->pad, strlen(k->pad), true));
        assert_int_equal(n, strlen(k->plain));
        assert_memory_equal(out, k->plain, n);
        n = 99;
        assert_sbx_ok(sbx_base64_decode(out, sizeof(out), &n, k->nopad, strlen(k->nopad), false));
        assert_int_equal(n, strlen(k->plain));
        assert_memory_equal(out, k->plain, n);
    }
}

static void
expect_b64_reject(const char *in, size_t len, bool pad)
{
    uint8_t out[64];
    size_t n = 77;
    int rc = sbx_base64_decode(out, sizeof(out), &n, in, len, pad);
    if (rc != SBX_EFORMAT) {
        print_error("base64 (%s) accepted or misclassified \"%.*s\": rc %d (%s)\n",
                    pad ? "pad" : "nopad", (int)len, in, rc, sbx_error_name(rc));
        fail();
    }
    assert_int_equal(n, 0); /* out_len set to 0 on error */
}

#define REJECT(s, pad) expect_b64_reject((s), sizeof(s) - 1, (pad))

static void
base64_nopad_rejects_padding_whitespace_and_bad_lengths(void **state)
{
    (void)state;
    REJECT("Zg==", false);   /* any '=' */
    REJECT("Zm8=", false);   /* any '=' */
    REJECT("Zm9v=", false);  /* any '=' */
    REJECT("Z", false);      /* len % 4 == 1 */
    REJECT("Zm9vY", false);  /* len % 4 == 1 */
    REJECT("Zm9v\n", false); /* whitespace */
    REJECT(" Zm9v", false);
    REJECT("Zm 9v", false);
    REJECT("Zm9v\r", false);
    REJECT("Zm\t9v", false);
    REJECT("Zm9-", false); /* URL-safe alphabet is not base64 */
    REJECT("Zm9_", false);
    REJECT("Zm9\0", false); /* NUL inside the given length */
    REJECT("Zm\xc3\xa9", false);
}

static void
base64_rejects_non_canonical_trailing_bits(void **state)
{
    (void)state;
    /* "f" is Zg; Zh..Zv differ only in the 4 unused bits. */
    REJECT("Zh", false);
    REJECT("Zv", false);
    REJECT("Zm9", false); /* "fo" is Zm8 */
    REJECT("Zh==", true);
    REJECT("Zm9=", true);
    /* 32 bytes = 43 chars, the last carries 2 unused bits (age shares and MACs). */
    REJECT("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB", false);
    REJECT("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=", true);
}

static void
base64_pad_rejects_wrong_padding(void **state)
{
    (void)state;
    REJECT("Zg", true);        /* padding missing */
    REJECT("Zm8", true);       /* padding missing */
    REJECT("Zg=", true);       /* too short */
    REJECT("Zg===", true);     /* too long */
    REJECT("Z===", true);      /* three '=' */
    REJECT("====", true);      /* only padding */
    REJECT("Zg=A", true);      /* data after '=' */
    REJECT("Z=g=", true);      /* '=' in the middle */
    REJECT("=Zg=", true);      /* '=' first */
    REJECT("Zm9v====", true);  /* a block of padding */
    REJECT("Zg==Zg==", true);  /* padding not at the very end */
    REJECT("Zm9vYg=", true);   /* length not a multiple of 4 */
    REJECT("Zm9vYmE==", true); /* length not a multiple of 4 */
    REJECT("Zm9vYg=\n", true); /* whitespace */
    REJECT("Zm9v\nYmFy", true);
}

static void
base64_decode_checks_output_capacity(void **state)
{
    uint8_t out[8];
    size_t n = 5;
    char enc[8];
    (void)state;
    /* 12 characters need room for SBX_BASE64_DECODED_MAX(12) = 11 bytes. */
    assert_sbx_err(sbx_base64_decode(out, sizeof(out), &n, "Zm9vYmFyZm9v", 12, false), SBX_EINVAL);
    assert_int_equal(n, 0);
    /* The encoder needs padded length + NUL whatever pad says. */
    assert_true(sbx_base64_encode(enc, 4, (const uint8_t *)"foo", 3, false) < 0);
    assert_int_equal(sbx_base64_encode(enc, 5, (const uint8_t *)"foo", 3, false), 4);
    assert_true(sbx_base64_encode(enc, 4, (const uint8_t *)"f", 1, false) < 0);
}

static void
base64_round_trips_random_data(void **state)
{
    (void)state;
    for (size_t len = 0; len <= 200; len++) {
        uint8_t data[200], back[SBX_BASE64_DECODED_MAX(SBX_BASE64_PAD_LEN(200))];
        char enc[SBX_BASE64_PAD_LEN(200) + 1];
        size_t n;
        test_rand_fill(data, len);
        for (int pad = 0; pad <= 1; pad++) {
            long el = sbx_base64_encode(enc, sizeof(enc), data, len, pad);
            assert_int_equal(el,
                             pad ? (long)SBX_BASE64_PAD_LEN(len) : (long)SBX_BASE64_NOPAD_LEN(len));
            assert_int_equal(strlen(enc), (size_t)el);
            assert_true(SBX_BASE64_DECODED_MAX((size_t)el) <= sizeof(back));
            assert_sbx_ok(sbx_base64_decode(back, sizeof(back), &n, enc, (size_t)el, pad));
            assert_int_equal(n, len);
            assert_memory_equal(back, data, len);
            /* The other mode refuses the string when padding is involved. */
            if (len % 3 != 0) {
                int rc = sbx_base64_decode(back, sizeof(back), &n, enc, (size_t)el, !pad);
                assert_int_equal(rc, SBX_EFORMAT);
            }
        }
    }
}

/* ---- Bech32 ---- */

struct b32_valid {
    const char *str, *hrp, *hex;
};

/* BIP 173, "Test vectors: valid Bech32"; data decoded with the reference code. */
static const struct b32_valid bip173_valid[] = {
    {"A12UEL5L", "a", ""},
    {"a12uel5l", "a", ""},
    {"an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
     "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio", ""},
    {"abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw", "abcdef",
     "00443214c74254b635cf84653a56d7c675be77df"},
    {"11qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqc8247j",
     "1",
     "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
     "000000000000"},
    {"split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w", "split",
     "c5f38b70305f519bf66d85fb6cf03058f3dde463ecd7918f2dc743918f2d"},
    {"?1ezyfcl", "?", ""},
};

static void
check_b32_valid(const struct b32_valid *v)
{
    char hrp[128], hex[300], again[300];
    uint8_t data[128];
    size_t n = 0;
    bool upper = v->str[0] >= 'A' && v->str[0] <= 'Z';
    int rc = sbx_bech32_decode(hrp, sizeof(hrp), data, sizeof(data), &n, v->str, strlen(v->str));
    if (rc != 0) {
        print_error("bech32 rejected valid \"%s\": %s\n", v->str, sbx_error_last()->message);
        fail();
    }
    assert_string_equal(hrp, v->hrp);
    test_hex(hex, data, n);
    assert_string_equal(hex, v->hex);
    /* Re-encoding gives back the string (in its case). */
    assert_sbx_ok(sbx_bech32_encode(again, sizeof(again), v->hrp, data, n, upper));
    assert_string_equal(again, v->str);
}

static void
bech32_decodes_bip173_valid_strings(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bip173_valid) / sizeof(bip173_valid[0]); i++)
        check_b32_valid(&bip173_valid[i]);
}

static void
expect_b32_reject(const char *s, size_t len, const char *why)
{
    char hrp[128];
    uint8_t data[128];
    size_t n = 42;
    int rc = sbx_bech32_decode(hrp, sizeof(hrp), data, sizeof(data), &n, s, len);
    if (rc != SBX_EFORMAT) {
        print_error("bech32 accepted or misclassified \"%.*s\" (%s): rc %d (%s)\n", (int)len, s,
                    why, rc, sbx_error_name(rc));
        fail();
    }
    assert_int_equal(n, 0);
}

#define B32_REJECT(s, why) expect_b32_reject((s), sizeof(s) - 1, (why))

static void
bech32_rejects_bip173_invalid_strings(void **state)
{
    (void)state;
    B32_REJECT("\x20"
               "1nwldj5",
               "HRP character out of range");
    B32_REJECT("\x7f"
               "1axkwrx",
               "HRP character out of range");
    B32_REJECT("\x80"
               "1eym55h",
               "HRP character out of range");
    B32_REJECT("pzry9x0s0muk", "no separator character");
    B32_REJECT("1pzry9x0s0muk", "empty HRP");
    B32_REJECT("x1b4n0q5v", "invalid data character");
    B32_REJECT("li1dgmt3", "too short checksum");
    B32_REJECT("de1lg7wt\xff", "invalid character in checksum");
    B32_REJECT("A1G7SGD8", "checksum calculated with uppercase form of HRP");
    B32_REJECT("10a06t8", "empty HRP");
    B32_REJECT("1qzzfhee", "empty HRP");
}

static void
bech32_rejects_mixed_case(void **state)
{
    (void)state;
    B32_REJECT("a12UEL5L", "mixed case");
    B32_REJECT("A12uel5l", "mixed case");
    B32_REJECT("abcdef1Qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw", "mixed case");
    B32_REJECT("AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPq4EGAEX",
               "one lower-case letter in a secret key");
}

static void
bech32_rejects_bad_checksum_and_bad_padding(void **state)
{
    (void)state;
    B32_REJECT("abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxx", "last character changed");
    B32_REJECT("abcdef1qqzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw", "data character changed");
    B32_REJECT("a12uel5", "truncated");
    B32_REJECT("", "empty");
    /* Checksums valid (reference code), 8-bit conversion invalid. */
    B32_REJECT("a1pv7wwwr", "5 bits of padding");
    B32_REJECT("a1qqqqqqqqqvgade4", "45 bits: 5 bits of padding");
    B32_REJECT("a1qpamnt9j", "non-zero padding bits");
}

static void
bech32_accepts_zero_padding_bits(void **state)
{
    static const struct b32_valid v = {"a1qqqd87cq", "a", "00"};
    (void)state;
    check_b32_valid(&v);
}

/* BIP 173 limits strings to 90 characters; age keys are longer (age.md §8). */
static void
bech32_accepts_strings_longer_than_90_characters(void **state)
{
    static const struct b32_valid over90 = {
        "an84characterslonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1569pv"
        "x",
        "an84characterslonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio", ""};
    static const struct b32_valid long_data = {
        "long1l3n0qgwx05ryc9ys5y445n2d9agk0jnf9gtv5yh37wjvmg56d75lcehsy8r86pjvzjg2z266f4xj75t8ef5j5"
        "9k2"
        "ztcl8fxd52dxl20uvmczr3naqexpfy9p9ddy6nf029nu56f2zm9p9u0n5nx69xn0487xduppce7svnq5jzsjkkjdf5"
        "h4z"
        "e72dy4pdjsj78e6fndznfh6jdgnxu5",
        "long",
        /* SHA-256("long") four times */
        "fc66f021c67d064c1490a12b5a4d4d2f5167ca692a16ca12f1f3a4cda29a6fa9fc66f021c67d064c1490a12b5a"
        "4d"
        "4d2f5167ca692a16ca12f1f3a4cda29a6fa9fc66f021c67d064c1490a12b5a4d4d2f5167ca692a16ca12f1f3a4"
        "cd"
        "a29a6fa9fc66f021c67d064c1490a12b5a4d4d2f5167ca692a16ca12f1f3a4cda29a6fa9"};
    (void)state;
    assert_true(strlen(over90.str) > 90);
    check_b32_valid(&over90);
    assert_int_equal(strlen(long_data.str), 216);
    check_b32_valid(&long_data);
}

/*
 * HRP characters that are not letters are used as they are in the checksum;
 * only A-Z are lower-cased (BIP 173). age plugin names may contain '_'
 * (age.md §9), e.g. AGE-PLUGIN-MY_PLUGIN-1...
 */
static void
bech32_checksums_non_letter_hrp_characters_as_is(void **state)
{
    static const struct b32_valid kats[] = {
        {"a_b1qqqsyqcyq5rqwzqfm030hs", "a_b", "00010203040506070809"},
        {"x@[\\]^_y1qrlscgztdq", "x@[\\]^_y", "00ff"},
        {"AGE-PLUGIN-MY_PLUGIN-1QQQSYQCYQ5RQWZQFPG9SCRGWPUGPZYSNZS23V9CCRYDPK8QARC0SA7HZWG",
         "age-plugin-my_plugin-",
         "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(kats) / sizeof(kats[0]); i++)
        check_b32_valid(&kats[i]);
}

static void
bech32_round_trips_random_data(void **state)
{
    (void)state;
    for (size_t len = 0; len <= 100; len++) {
        uint8_t data[100], back[100];
        char str[256], hrp[16];
        size_t n;
        bool upper = (len % 2) == 1;
        test_rand_fill(data, len);
        assert_sbx_ok(sbx_bech32_encode(str, sizeof(str), "age", data, len, upper));
        assert_sbx_ok(
            sbx_bech32_decode(hrp, sizeof(hrp), back, sizeof(back), &n, str, strlen(str)));
        assert_string_equal(hrp, "age");
        assert_int_equal(n, len);
        assert_memory_equal(back, data, len);
        /* Any single substituted character is caught by the checksum or the charset. */
        size_t pos = 4 + test_rand_below(strlen(str) - 4);
        str[pos] = str[pos] == (upper ? 'Q' : 'q') ? (upper ? 'P' : 'p') : (upper ? 'Q' : 'q');
        int rc = sbx_bech32_decode(hrp, sizeof(hrp), back, sizeof(back), &n, str, strlen(str));
        assert_int_equal(rc, SBX_EFORMAT);
    }
}

static void
bech32_checks_buffer_sizes_and_hrp(void **state)
{
    const char *s = "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw";
    char hrp[16], out[64];
    uint8_t data[32];
    size_t n = 9;
    (void)state;
    assert_sbx_err(sbx_bech32_decode(hrp, 6, data, sizeof(data), &n, s, strlen(s)), SBX_EINVAL);
    assert_int_equal(n, 0);
    assert_sbx_err(sbx_bech32_decode(hrp, sizeof(hrp), data, 19, &n, s, strlen(s)), SBX_EINVAL);
    assert_sbx_ok(sbx_bech32_decode(hrp, 7, data, 20, &n, s, strlen(s)));
    assert_int_equal(n, 20);
    assert_sbx_err(sbx_bech32_encode(out, sizeof(out), "", data, 4, false), SBX_EINVAL);
    assert_sbx_err(sbx_bech32_encode(out, sizeof(out), "a b", data, 4, false), SBX_EINVAL);
    assert_sbx_err(sbx_bech32_encode(out, 10, "abcdef", data, 20, false), SBX_EINVAL);
    assert_sbx_ok(sbx_bech32_encode(out, strlen(s) + 1, "abcdef", data, 20, false));
    assert_string_equal(out, s);
}

/* age.md §8: the spec's test pair; the secret key decodes to 32 bytes of 0x42. */
static void
bech32_decodes_age_spec_key_strings(void **state)
{
    static const struct b32_valid sk = {
        "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX",
        "age-secret-key-", "4242424242424242424242424242424242424242424242424242424242424242"};
    static const struct b32_valid pk = {
        "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj", "age",
        "132c442be010fbd57e72603328aa76e71fccc1503aae219327d14d9c9993f472"};
    (void)state;
    assert_int_equal(strlen(sk.str), 74);
    assert_int_equal(strlen(pk.str), 62);
    check_b32_valid(&sk);
    check_b32_valid(&pk);
}

static void
json_quote_keeps_utf8_and_replaces_other_bytes(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
        bool lossless;
    } cases[] = {
        {"plain", "\"plain\"", true},
        {"caf\xc3\xa9", "\"caf\xc3\xa9\"", true},                        // é, valid UTF-8: as is
        {"caf\xe9", "\"caf\\ufffd\"", false},                            // Latin-1 é: replaced
        {"q\"b\\n\n\x7f", "\"q\\\"b\\\\n\\u000a\\u007f\"", true},        // escapes
        {"\xc0\xaf", "\"\\ufffd\\ufffd\"", false},                       // overlong
        {"\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"", false},            // surrogate
        {"\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"", false}, // > U+10FFFF
        {"\xf0\x9f\x94\x92", "\"\xf0\x9f\x94\x92\"", true},              // a 4-byte character
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sbx_buf b = SBX_BUF_INIT;
        bool lossless = !cases[i].lossless;
        assert_sbx_ok(sbx_json_quote(&b, cases[i].in, &lossless));
        assert_int_equal(lossless, cases[i].lossless);
        assert_int_equal(b.len, strlen(cases[i].out));
        assert_memory_equal(b.ptr, cases[i].out, b.len);
        sbx_buf_dispose(&b);
    }
}

static void
json_member_adds_the_base64_sibling_only_when_lossy(void **state)
{
    (void)state;
    static const struct {
        const char *name, *value;
        bool spaced;
        const char *out;
    } cases[] = {
        {"path", "caf\xc3\xa9", false, "\"path\":\"caf\xc3\xa9\""},
        {"path", "caf\xc3\xa9", true, "\"path\": \"caf\xc3\xa9\""},
        {"path", "caf\xe9", false, "\"path\":\"caf\\ufffd\",\"path_base64\":\"Y2Fm6Q==\""},
        {"path", "caf\xe9", true, "\"path\": \"caf\\ufffd\", \"path_base64\": \"Y2Fm6Q==\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sbx_buf b = SBX_BUF_INIT;
        assert_sbx_ok(sbx_json_member(&b, cases[i].name, cases[i].value, cases[i].spaced));
        assert_int_equal(b.len, strlen(cases[i].out));
        assert_memory_equal(b.ptr, cases[i].out, b.len);
        sbx_buf_dispose(&b);
    }
    // Longer than one 48-byte base64 piece: the pieces join into one padded encoding.
    char name[101];
    memset(name, 'a', 100);
    name[0] = (char)0xff;
    name[100] = '\0';
    sbx_buf b = SBX_BUF_INIT;
    assert_sbx_ok(sbx_json_member(&b, "f", name, false));
    assert_sbx_ok(sbx_buf_append(&b, "", 1));
    const char *sib = strstr((const char *)b.ptr, "\"f_base64\":\"");
    assert_non_null(sib);
    uint8_t back[128];
    size_t n = 0;
    sib += 12;
    assert_sbx_ok(sbx_base64_decode(back, sizeof(back), &n, sib, strlen(sib) - 1, true));
    assert_int_equal(n, 100);
    assert_memory_equal(back, name, 100);
    sbx_buf_dispose(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_quote_keeps_utf8_and_replaces_other_bytes),
        cmocka_unit_test(json_member_adds_the_base64_sibling_only_when_lossy),
        cmocka_unit_test(base64_encodes_rfc4648_vectors),
        cmocka_unit_test(base64_decodes_rfc4648_vectors),
        cmocka_unit_test(base64_nopad_rejects_padding_whitespace_and_bad_lengths),
        cmocka_unit_test(base64_rejects_non_canonical_trailing_bits),
        cmocka_unit_test(base64_pad_rejects_wrong_padding),
        cmocka_unit_test(base64_decode_checks_output_capacity),
        cmocka_unit_test(base64_round_trips_random_data),
        cmocka_unit_test(bech32_decodes_bip173_valid_strings),
        cmocka_unit_test(bech32_rejects_bip173_invalid_strings),
        cmocka_unit_test(bech32_rejects_mixed_case),
        cmocka_unit_test(bech32_rejects_bad_checksum_and_bad_padding),
        cmocka_unit_test(bech32_accepts_zero_padding_bits),
        cmocka_unit_test(bech32_accepts_strings_longer_than_90_characters),
        cmocka_unit_test(bech32_checksums_non_letter_hrp_characters_as_is),
        cmocka_unit_test(bech32_round_trips_random_data),
        cmocka_unit_test(bech32_checks_buffer_sizes_and_hrp),
        cmocka_unit_test(bech32_decodes_age_spec_key_strings),
    };
    test_seed_init("core/encoding");
    return cmocka_run_group_tests_name("core/encoding", tests, NULL, NULL);
}
