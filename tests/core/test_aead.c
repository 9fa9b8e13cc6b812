/*
 * tests/core/test_aead.c - AES-256-GCM and ChaCha20-Poly1305 (strongbox/aead.h).
 *
 * Sources of the known answers:
 *  - AES-256-GCM: McGrew and Viega, "The Galois/Counter Mode of Operation
 *    (GCM)", test case 16 (256-bit key, 60-byte plaintext, 20-byte AAD).
 *  - ChaCha20-Poly1305: RFC 8439 §2.8.2 (the tag of the "sunscreen" example).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "strongbox/aead.h"
#include "helpers.h"

static size_t
unhex(uint8_t *out, const char *hex)
{
    size_t n = strlen(hex) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
    return n;
}

static bool
all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != 0)
            return false;
    }
    return true;
}

static void
gcm_matches_gcm_spec_test_case_16(void **state)
{
    (void)state;
    uint8_t key[32], nonce[12], aad[20], pt[60], ct[60], want[60], tag[16], want_tag[16], back[60];
    unhex(key, "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
    unhex(nonce, "cafebabefacedbaddecaf888");
    unhex(aad, "feedfacedeadbeeffeedfacedeadbeefabaddad2");
    unhex(pt, "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
              "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
    unhex(want, "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
                "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662");
    unhex(want_tag, "76fc6ece0f4e1768cddf8853bb2d551b");
    // The AAD in two parts authenticates as their concatenation.
    sbx_aead_part parts[3] = {{aad, 7}, {NULL, 0}, {aad + 7, 13}};
    assert_sbx_ok(sbx_aead_gcm_seal(ct, tag, key, nonce, parts, 3, pt, sizeof pt));
    assert_memory_equal(ct, want, sizeof ct);
    assert_memory_equal(tag, want_tag, sizeof tag);
    sbx_aead_part one = {aad, sizeof aad};
    assert_sbx_ok(sbx_aead_gcm_open(back, key, nonce, &one, 1, ct, sizeof ct, tag));
    assert_memory_equal(back, pt, sizeof pt);
}

static void
chacha20_poly1305_matches_rfc8439_tag(void **state)
{
    (void)state;
    static const char sunscreen[] =
        "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for "
        "the future, sunscreen would be it.";
    size_t len = sizeof sunscreen - 1;
    uint8_t key[32], nonce[12], aad[12], want_tag[16], tag[16], ct[sizeof sunscreen];
    unhex(key, "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
    unhex(nonce, "070000004041424344454647");
    unhex(aad, "50515253c0c1c2c3c4c5c6c7");
    unhex(want_tag, "1ae10b594f09e26a7e902ecbd0600691");
    sbx_aead *a = NULL;
    sbx_aead_part part = {aad, sizeof aad};
    assert_sbx_ok(sbx_aead_new(&a, SBX_AEAD_CHACHA20_POLY1305, key));
    assert_sbx_ok(sbx_aead_seal(a, ct, tag, nonce, &part, 1, (const uint8_t *)sunscreen, len));
    assert_memory_equal(tag, want_tag, sizeof tag);
    assert_int_equal(ct[0], 0xd3);
    sbx_aead_free(a);
}

/* One context seals and opens alternately, in place and not, for sizes 0 .. 4 KiB. */
static void
context_round_trips_in_both_directions(void **state)
{
    (void)state;
    static uint8_t pt[4100], ct[4100], back[4100];
    uint8_t key[32], nonce[12], aad[24], tag[16];
    for (int alg = SBX_AEAD_AES_256_GCM; alg <= SBX_AEAD_AES_192_GCM; alg++) {
        sbx_aead *a = NULL;
        test_rand_fill(key, sizeof key);
        assert_sbx_ok(sbx_aead_new(&a, (sbx_aead_alg)alg, key));
        for (int i = 0; i < 64; i++) {
            size_t len = i == 0 ? 0 : test_rand_below(sizeof pt);
            sbx_aead_part part = {aad, test_rand_below(sizeof aad)};
            test_rand_fill(pt, len);
            test_rand_fill(nonce, sizeof nonce);
            test_rand_fill(aad, sizeof aad);
            assert_sbx_ok(sbx_aead_seal(a, ct, tag, nonce, &part, 1, pt, len));
            assert_sbx_ok(sbx_aead_open(a, back, nonce, &part, 1, ct, len, tag));
            assert_memory_equal(back, pt, len);
            memcpy(back, pt, len); // in place: both ways
            assert_sbx_ok(sbx_aead_seal(a, back, tag, nonce, &part, 1, back, len));
            assert_memory_equal(back, ct, len);
            assert_sbx_ok(sbx_aead_open(a, back, nonce, &part, 1, back, len, tag));
            assert_memory_equal(back, pt, len);
        }
        sbx_aead_free(a);
    }
}

/* Every flipped bit of nonce, AAD, ciphertext or tag fails, and leaves no plaintext. */
static void
open_rejects_every_tampered_byte_and_wipes_output(void **state)
{
    (void)state;
    uint8_t key[32], nonce[12], aad[16], pt[48], ct[48], tag[16], out[48];
    test_rand_fill(key, sizeof key);
    test_rand_fill(nonce, sizeof nonce);
    test_rand_fill(aad, sizeof aad);
    test_rand_fill(pt, sizeof pt);
    sbx_aead_part part = {aad, sizeof aad};
    assert_sbx_ok(sbx_aead_gcm_seal(ct, tag, key, nonce, &part, 1, pt, sizeof pt));
    uint8_t *fields[] = {nonce, aad, ct, tag};
    size_t lens[] = {sizeof nonce, sizeof aad, sizeof ct, sizeof tag};
    for (size_t f = 0; f < 4; f++) {
        for (size_t i = 0; i < lens[f]; i++) {
            uint8_t bit = (uint8_t)(1u << test_rand_below(8));
            fields[f][i] ^= bit;
            memset(out, 0xaa, sizeof out);
            assert_sbx_err(sbx_aead_gcm_open(out, key, nonce, &part, 1, ct, sizeof ct, tag),
                           SBX_EAUTH);
            assert_true(all_zero(out, sizeof out));
            fields[f][i] ^= bit;
        }
    }
    sbx_aead_part shorter = {aad, sizeof aad - 1};
    assert_sbx_err(sbx_aead_gcm_open(out, key, nonce, &shorter, 1, ct, sizeof ct, tag), SBX_EAUTH);
    assert_sbx_ok(sbx_aead_gcm_open(out, key, nonce, &part, 1, ct, sizeof ct, tag));
    assert_memory_equal(out, pt, sizeof pt);
}

/*
 * AES-128-GCM and AES-192-GCM: test cases 2 and 8 of McGrew and Viega, "The
 * Galois/Counter Mode of Operation (GCM)", zero key, zero nonce, one zero block.
 */
static void
aes_128_and_192_gcm_match_the_gcm_paper_vectors(void **state)
{
    (void)state;
    static const uint8_t ct128[16] = {0x03, 0x88, 0xda, 0xce, 0x60, 0xb6, 0xa3, 0x92,
                                      0xf3, 0x28, 0xc2, 0xb9, 0x71, 0xb2, 0xfe, 0x78};
    static const uint8_t tag128[16] = {0xab, 0x6e, 0x47, 0xd4, 0x2c, 0xec, 0x13, 0xbd,
                                       0xf5, 0x3a, 0x67, 0xb2, 0x12, 0x57, 0xbd, 0xdf};
    static const uint8_t ct192[16] = {0x98, 0xe7, 0x24, 0x7c, 0x07, 0xf0, 0xfe, 0x41,
                                      0x1c, 0x26, 0x7e, 0x43, 0x84, 0xb0, 0xf6, 0x00};
    static const uint8_t tag192[16] = {0x2f, 0xf5, 0x8d, 0x80, 0x03, 0x39, 0x27, 0xab,
                                       0x8e, 0xf4, 0xd4, 0x58, 0x75, 0x14, 0xf0, 0xfb};
    uint8_t key[32] = {0}, nonce[12] = {0}, pt[16] = {0}, ct[16], tag[16];
    sbx_aead *a = NULL;
    assert_int_equal(sbx_aead_key_len(SBX_AEAD_AES_128_GCM), 16);
    assert_int_equal(sbx_aead_key_len(SBX_AEAD_AES_192_GCM), 24);
    assert_int_equal(sbx_aead_key_len(SBX_AEAD_AES_256_GCM), 32);
    assert_int_equal(sbx_aead_key_len((sbx_aead_alg)7), 0);
    assert_sbx_ok(sbx_aead_new(&a, SBX_AEAD_AES_128_GCM, key));
    assert_sbx_ok(sbx_aead_seal(a, ct, tag, nonce, NULL, 0, pt, sizeof pt));
    assert_memory_equal(ct, ct128, 16);
    assert_memory_equal(tag, tag128, 16);
    sbx_aead_free(a);
    assert_sbx_ok(sbx_aead_new(&a, SBX_AEAD_AES_192_GCM, key));
    assert_sbx_ok(sbx_aead_seal(a, ct, tag, nonce, NULL, 0, pt, sizeof pt));
    assert_memory_equal(ct, ct192, 16);
    assert_memory_equal(tag, tag192, 16);
    sbx_aead_free(a);
}

static void
new_rejects_unknown_algorithm_and_null_key(void **state)
{
    (void)state;
    uint8_t key[32] = {0};
    sbx_aead *a = (sbx_aead *)key;
    assert_sbx_err(sbx_aead_new(&a, (sbx_aead_alg)7, key), SBX_EINVAL);
    assert_null(a);
    assert_sbx_err(sbx_aead_new(&a, SBX_AEAD_AES_256_GCM, NULL), SBX_EINVAL);
    sbx_aead_free(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gcm_matches_gcm_spec_test_case_16),
        cmocka_unit_test(chacha20_poly1305_matches_rfc8439_tag),
        cmocka_unit_test(context_round_trips_in_both_directions),
        cmocka_unit_test(open_rejects_every_tampered_byte_and_wipes_output),
        cmocka_unit_test(aes_128_and_192_gcm_match_the_gcm_paper_vectors),
        cmocka_unit_test(new_rejects_unknown_algorithm_and_null_key),
    };
    test_seed_init("core/aead");
    return cmocka_run_group_tests_name("core/aead", tests, NULL, NULL);
}
