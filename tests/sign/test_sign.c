/*
 * tests/sign/test_sign.c - minisign and PEM signatures (strongbox/sign.h).
 *
 * Known answers come from the real minisign 0.11 and OpenSSL 3.0
 * (tests/vectors/sign/README.md says how each file was made). Ed25519 and
 * RSA PKCS#1 v1.5 are deterministic, so our signatures must equal theirs
 * byte for byte. Round trips use a seeded PRNG (SBX_TEST_SEED replays).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "strongbox/strongbox.h"
#include "helpers.h"

#ifndef SBX_SIGN_VECTORS
#error "SBX_SIGN_VECTORS must name tests/vectors/sign"
#endif

#define PASS "correct horse battery staple"

/* ---- helpers ---- */

static sbx_buf
slurp(const char *name)
{
    char path[1024];
    sbx_buf b = SBX_BUF_INIT;
    snprintf(path, sizeof(path), "%s/%s", SBX_SIGN_VECTORS, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        print_error("cannot open vector %s\n", path);
        fail();
    }
    uint8_t tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
        assert_int_equal(sbx_buf_append(&b, tmp, n), 0);
    fclose(f);
    assert_int_equal(sbx_buf_append(&b, "", 1), 0); // NUL for text use, not counted
    b.len--;
    return b;
}

static int
give_pass(sbx_buf *out, void *payload)
{
    const char *p = payload;
    return sbx_buf_append(out, p, strlen(p));
}

static int
count_calls(sbx_buf *out, void *payload)
{
    (*(int *)payload)++;
    (void)out;
    return SBX_ECANCELED;
}

static int
ms_verify_mem(const sbx_minisign_pubkey *pk, const void *msg, size_t len, const sbx_buf *sig,
              sbx_buf *tc)
{
    sbx_source *src = NULL;
    assert_sbx_ok(sbx_source_mem_new(&src, msg, len));
    int err = sbx_minisign_verify(pk, src, (const char *)sig->ptr, sig->len, tc);
    sbx_source_free(src);
    return err;
}

static void
ms_sign_mem(sbx_buf *sig, const sbx_minisign_seckey *sk, const void *msg, size_t len,
            const char *tc)
{
    sbx_source *src = NULL;
    sbx_minisign_sign_options o = SBX_MINISIGN_SIGN_OPTIONS_INIT;
    o.trusted_comment = tc;
    assert_sbx_ok(sbx_source_mem_new(&src, msg, len));
    assert_sbx_ok(sbx_minisign_sign(sig, sk, src, &o));
    sbx_source_free(src);
}

static sbx_minisign_seckey *
load_nopass(void)
{
    sbx_buf t = slurp("minisign_nopass.key");
    sbx_minisign_seckey *sk = NULL;
    assert_sbx_ok(sbx_minisign_seckey_parse(&sk, (const char *)t.ptr, t.len, NULL, NULL));
    sbx_buf_dispose(&t);
    return sk;
}

static sbx_minisign_pubkey *
load_pub(const char *name)
{
    sbx_buf t = slurp(name);
    sbx_minisign_pubkey *pk = NULL;
    assert_sbx_ok(sbx_minisign_pubkey_parse(&pk, (const char *)t.ptr, t.len));
    sbx_buf_dispose(&t);
    return pk;
}

/* Replace line `index` (0-based) of a signature text. */
static sbx_buf
replace_line(const sbx_buf *text, int index, const char *line)
{
    sbx_buf out = SBX_BUF_INIT;
    const char *p = (const char *)text->ptr, *end = p + text->len;
    for (int i = 0; p < end; i++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (i == index)
            assert_int_equal(sbx_buf_append(&out, line, strlen(line)), 0);
        else
            assert_int_equal(sbx_buf_append(&out, p, n), 0);
        assert_int_equal(sbx_buf_append(&out, "\n", 1), 0);
        p += n + (nl != NULL);
    }
    return out;
}

/* ---- minisign: known answers ---- */

static void
minisign_signature_matches_minisign_byte_for_byte(void **state)
{
    (void)state;
    sbx_minisign_seckey *sk = load_nopass();
    sbx_buf msg = slurp("msg.txt"), want = slurp("msg.txt.minisig"), got = SBX_BUF_INIT;
    ms_sign_mem(&got, sk, msg.ptr, msg.len, "strongbox KAT");
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.ptr, want.ptr, want.len);
    sbx_buf_dispose(&got);
    sbx_buf_dispose(&msg);
    sbx_buf_dispose(&want);
    sbx_minisign_seckey_free(sk);
}

static void
minisign_verifies_minisign_signatures(void **state)
{
    (void)state;
    sbx_minisign_pubkey *pk = load_pub("minisign_nopass.pub");
    sbx_minisign_pubkey *ppk = load_pub("minisign_pass.pub");
    sbx_buf msg = slurp("msg.txt"), tc = SBX_BUF_INIT;
    static const struct {
        const char *sig, *tc;
        int which;
    } cases[] = {{"msg.txt.minisig", "strongbox KAT", 0},
                 {"msg.txt.legacy.minisig", "strongbox legacy KAT", 0},
                 {"msg.txt.pass.minisig", "strongbox passphrase KAT", 1}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sbx_buf sig = slurp(cases[i].sig);
        assert_sbx_ok(ms_verify_mem(cases[i].which ? ppk : pk, msg.ptr, msg.len, &sig, &tc));
        assert_string_equal((const char *)tc.ptr, cases[i].tc);
        sbx_buf_dispose(&tc);
        // the other key: a different key id
        assert_sbx_err(ms_verify_mem(cases[i].which ? pk : ppk, msg.ptr, msg.len, &sig, &tc),
                       SBX_ENOKEY);
        assert_int_equal(tc.len, 0);
        sbx_buf_dispose(&sig);
    }
    sbx_buf_dispose(&msg);
    sbx_minisign_pubkey_free(pk);
    sbx_minisign_pubkey_free(ppk);
}

static void
minisign_pubkey_id_and_base64_match_the_file(void **state)
{
    (void)state;
    sbx_buf t = slurp("minisign_nopass.pub"), again = SBX_BUF_INIT;
    sbx_minisign_pubkey *pk = NULL, *pk2 = NULL;
    char id[24];
    assert_sbx_ok(sbx_minisign_pubkey_parse(&pk, (const char *)t.ptr, t.len));
    snprintf(id, sizeof(id), "key %" PRIX64 "\n", sbx_minisign_pubkey_keyid(pk));
    assert_non_null(strstr((const char *)t.ptr, id));
    assert_non_null(strstr((const char *)t.ptr, sbx_minisign_pubkey_base64(pk)));
    // the file we write is the file minisign wrote
    assert_sbx_ok(sbx_minisign_pubkey_to_file(pk, &again));
    assert_int_equal(again.len, t.len);
    assert_memory_equal(again.ptr, t.ptr, t.len);
    // bare base64 (minisign -P), with surrounding spaces
    char bare[80];
    snprintf(bare, sizeof(bare), "  %s \n", sbx_minisign_pubkey_base64(pk));
    assert_sbx_ok(sbx_minisign_pubkey_parse(&pk2, bare, strlen(bare)));
    assert_true(sbx_minisign_pubkey_keyid(pk2) == sbx_minisign_pubkey_keyid(pk));
    sbx_minisign_pubkey_free(pk);
    sbx_minisign_pubkey_free(pk2);
    sbx_buf_dispose(&t);
    sbx_buf_dispose(&again);
}

static void
minisign_unprotected_key_is_rewritten_identically(void **state)
{
    (void)state;
    sbx_buf t = slurp("minisign_nopass.key"), again = SBX_BUF_INIT;
    sbx_minisign_seckey *sk = load_nopass();
    assert_sbx_ok(sbx_minisign_seckey_to_file(sk, &again, NULL, 0, 0, 0));
    assert_int_equal(again.len, t.len);
    assert_memory_equal(again.ptr, t.ptr, t.len);
    sbx_minisign_pubkey *pk = NULL, *file_pk = load_pub("minisign_nopass.pub");
    assert_sbx_ok(sbx_minisign_seckey_public(&pk, sk));
    assert_string_equal(sbx_minisign_pubkey_base64(pk), sbx_minisign_pubkey_base64(file_pk));
    sbx_minisign_pubkey_free(pk);
    sbx_minisign_pubkey_free(file_pk);
    sbx_minisign_seckey_free(sk);
    sbx_buf_dispose(&t);
    sbx_buf_dispose(&again);
}

/* minisign's own protected key: scrypt with N = 2^20 (1 GiB), a few seconds each. */
static void
minisign_protected_key_from_minisign_opens_with_its_passphrase(void **state)
{
    (void)state;
    sbx_buf t = slurp("minisign_pass.key"), msg = slurp("msg.txt"), sig = SBX_BUF_INIT;
    sbx_minisign_seckey *sk = NULL;
    int calls = 0;
    assert_sbx_err(sbx_minisign_seckey_parse(&sk, (const char *)t.ptr, t.len, NULL, NULL),
                   SBX_ENOKEY);
    assert_sbx_err(sbx_minisign_seckey_parse(&sk, (const char *)t.ptr, t.len, count_calls, &calls),
                   SBX_ECANCELED);
    assert_int_equal(calls, 1);
    assert_null(sk);
    assert_sbx_err(sbx_minisign_seckey_parse(&sk, (const char *)t.ptr, t.len, give_pass,
                                             (void *)"wrong horse"),
                   SBX_EAUTH);
    assert_null(sk);
    assert_sbx_ok(
        sbx_minisign_seckey_parse(&sk, (const char *)t.ptr, t.len, give_pass, (void *)PASS));
    // same signature as minisign made with it
    sbx_buf want = slurp("msg.txt.pass.minisig");
    ms_sign_mem(&sig, sk, msg.ptr, msg.len, "strongbox passphrase KAT");
    assert_int_equal(sig.len, want.len);
    assert_memory_equal(sig.ptr, want.ptr, want.len);
    sbx_minisign_seckey_free(sk);
    sbx_buf_dispose(&t);
    sbx_buf_dispose(&msg);
    sbx_buf_dispose(&sig);
    sbx_buf_dispose(&want);
}

/* ---- minisign: round trips and refusals ---- */

static void
minisign_round_trips_over_many_sizes(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 63, 64, 65535, 65536, 65537, 300001};
    sbx_minisign_seckey *sk = NULL;
    sbx_minisign_pubkey *pk = NULL;
    assert_sbx_ok(sbx_minisign_seckey_generate(&sk));
    assert_sbx_ok(sbx_minisign_seckey_public(&pk, sk));
    assert_true(sbx_minisign_seckey_keyid(sk) == sbx_minisign_pubkey_keyid(pk));
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint8_t *msg = test_malloc_rand(sizes[i] + 1);
        sbx_buf sig = SBX_BUF_INIT, tc = SBX_BUF_INIT;
        ms_sign_mem(&sig, sk, msg, sizes[i], NULL);
        assert_sbx_ok(ms_verify_mem(pk, msg, sizes[i], &sig, &tc));
        assert_non_null(strstr((const char *)tc.ptr, "timestamp:"));
        assert_non_null(strstr((const char *)tc.ptr, "\thashed"));
        if (sizes[i] > 0) {
            size_t at = test_rand_below(sizes[i]);
            msg[at] ^= (uint8_t)(1u << test_rand_below(8));
            sbx_buf_dispose(&tc);
            assert_sbx_err(ms_verify_mem(pk, msg, sizes[i], &sig, &tc), SBX_EAUTH);
            assert_int_equal(tc.len, 0); // nothing released on failure
        }
        // one byte more or less
        assert_sbx_err(ms_verify_mem(pk, msg, sizes[i] + 1, &sig, NULL), SBX_EAUTH);
        free(msg);
        sbx_buf_dispose(&sig);
        sbx_buf_dispose(&tc);
    }
    sbx_minisign_pubkey_free(pk);
    sbx_minisign_seckey_free(sk);
}

static void
minisign_every_signature_character_is_checked(void **state)
{
    (void)state;
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    sbx_minisign_pubkey *pk = load_pub("minisign_nopass.pub");
    sbx_buf msg = slurp("msg.txt"), sig = slurp("msg.txt.minisig");
    size_t checked = 0;
    // Lines 2 and 4 (base64): change each character to another alphabet character.
    for (size_t i = 0; i < sig.len; i++) {
        char *s = (char *)sig.ptr;
        const char *line = s + i;
        while (line > s && line[-1] != '\n')
            line--;
        if (strncmp(line, "untrusted", 9) == 0 || strncmp(line, "trusted", 7) == 0 ||
            s[i] == '\n' || s[i] == '=')
            continue;
        char orig = s[i];
        s[i] = b64[(strchr(b64, orig) - b64 + 1 + (long)test_rand_below(62)) % 64];
        int err = ms_verify_mem(pk, msg.ptr, msg.len, &sig, NULL);
        if (err == 0)
            print_error("changed character %zu of the signature still verifies\n", i);
        assert_int_not_equal(err, 0);
        s[i] = orig;
        checked++;
    }
    assert_true(checked >= 180);
    assert_sbx_ok(ms_verify_mem(pk, msg.ptr, msg.len, &sig, NULL));
    sbx_buf_dispose(&msg);
    sbx_buf_dispose(&sig);
    sbx_minisign_pubkey_free(pk);
}

static void
minisign_trusted_comment_is_signed_untrusted_is_not(void **state)
{
    (void)state;
    sbx_minisign_pubkey *pk = load_pub("minisign_nopass.pub");
    sbx_buf msg = slurp("msg.txt"), sig = slurp("msg.txt.minisig");
    sbx_buf t1 = replace_line(&sig, 2, "trusted comment: strongbox KAT!");
    sbx_buf t2 = replace_line(&sig, 2, "trusted comment: strongbox KA");
    sbx_buf t3 = replace_line(&sig, 2, "trusted comment: strongbox KAT ");
    sbx_buf u1 = replace_line(&sig, 0, "untrusted comment: anything at all");
    assert_sbx_err(ms_verify_mem(pk, msg.ptr, msg.len, &t1, NULL), SBX_EAUTH);
    assert_sbx_err(ms_verify_mem(pk, msg.ptr, msg.len, &t2, NULL), SBX_EAUTH);
    assert_sbx_err(ms_verify_mem(pk, msg.ptr, msg.len, &t3, NULL), SBX_EAUTH);
    assert_sbx_ok(ms_verify_mem(pk, msg.ptr, msg.len, &u1, NULL));
    sbx_buf_dispose(&t1);
    sbx_buf_dispose(&t2);
    sbx_buf_dispose(&t3);
    sbx_buf_dispose(&u1);
    sbx_buf_dispose(&msg);
    sbx_buf_dispose(&sig);
    sbx_minisign_pubkey_free(pk);
}

static void
minisign_wrong_key_is_refused(void **state)
{
    (void)state;
    sbx_buf msg = slurp("msg.txt"), sig = slurp("msg.txt.minisig");
    sbx_minisign_seckey *other = NULL;
    sbx_minisign_pubkey *opk = NULL, *pk = load_pub("minisign_nopass.pub");
    assert_sbx_ok(sbx_minisign_seckey_generate(&other));
    assert_sbx_ok(sbx_minisign_seckey_public(&opk, other));
    assert_sbx_err(ms_verify_mem(opk, msg.ptr, msg.len, &sig, NULL), SBX_ENOKEY);
    assert_non_null(strstr(sbx_error_last()->message, "key id"));
    sbx_buf_dispose(&msg);
    sbx_buf_dispose(&sig);
    sbx_minisign_pubkey_free(opk);
    sbx_minisign_pubkey_free(pk);
    sbx_minisign_seckey_free(other);
}

static void
minisign_same_key_id_other_key_is_refused(void **state)
{
    (void)state;
    sbx_buf msg = slurp("msg.txt"), sig = slurp("msg.txt.minisig");
    sbx_minisign_pubkey *pk = load_pub("minisign_nopass.pub"), *forged = NULL, *opk = NULL;
    sbx_minisign_seckey *other = NULL;
    uint8_t raw[46], oraw[46];
    size_t n = 0;
    char text[80];
    assert_sbx_ok(sbx_minisign_seckey_generate(&other));
    assert_sbx_ok(sbx_minisign_seckey_public(&opk, other));
    const char *b = sbx_minisign_pubkey_base64(pk), *ob = sbx_minisign_pubkey_base64(opk);
    assert_sbx_ok(sbx_base64_decode(raw, sizeof(raw), &n, b, strlen(b), true));
    assert_sbx_ok(sbx_base64_decode(oraw, sizeof(oraw), &n, ob, strlen(ob), true));
    memcpy(oraw + 2, raw + 2, 8); // the signer's key id, another public key
    assert_true(sbx_base64_encode(text, sizeof(text), oraw, 42, true) > 0);
    assert_sbx_ok(sbx_minisign_pubkey_parse(&forged, text, strlen(text)));
    assert_sbx_err(ms_verify_mem(forged, msg.ptr, msg.len, &sig, NULL), SBX_EAUTH);
    sbx_buf_dispose(&msg);
    sbx_buf_dispose(&sig);
    sbx_minisign_pubkey_free(pk);
    sbx_minisign_pubkey_free(forged);
    sbx_minisign_pubkey_free(opk);
    sbx_minisign_seckey_free(other);
}

static void
minisign_malformed_signatures_are_refused(void **state)
{
    (void)state;
    sbx_minisign_pubkey *pk = load_pub("minisign_nopass.pub");
    sbx_buf msg = slurp("msg.txt"), sig = slurp("msg.txt.minisig");
    const char *s = (const char *)sig.ptr;
    // every truncation
    for (size_t cut = 0; cut + 1 < sig.len; cut++) {
        sbx_buf t = SBX_BUF_INIT;
        assert_int_equal(sbx_buf_append(&t, s, cut), 0);
        int err = ms_verify_mem(pk, msg.ptr, msg.len, &t, NULL);
        assert_int_not_equal(err, 0);
        sbx_buf_dispose(&t);
    }
    static const char *const bad[] = {
        "",
        "hello\n",
        "untrusted comment: x\nRUR6\ntrusted comment: x\nAAAA\n",
        "-----BEGIN PUBLIC KEY-----\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sbx_buf t = SBX_BUF_INIT;
        assert_int_equal(sbx_buf_append(&t, bad[i], strlen(bad[i])), 0);
        assert_sbx_err(ms_verify_mem(pk, msg.ptr, msg.len, &t, NULL), SBX_EFORMAT);
        sbx_buf_dispose(&t);
    }
    // trailing garbage, a NUL byte, an unknown algorithm, CRLF line ends (accepted)
    sbx_buf g = SBX_BUF_INIT, z = SBX_BUF_INIT, crlf = SBX_BUF_INIT;
    assert_int_equal(sbx_buf_append(&g, s, sig.len), 0);
    assert_int_equal(sbx_buf_append(&g, "extra\n", 6), 0);
    assert_sbx_err(ms_verify_mem(pk, msg.ptr, msg.len, &g, NULL), SBX_EFORMAT);
    assert_int_equal(sbx_buf_append(&z, s, sig.len), 0);
    z.ptr[25] = '\0';
    assert_sbx_err(ms_verify_mem(pk, msg.ptr, msg.len, &z, NULL), SBX_EFORMAT);
    for (size_t i = 0; i < sig.len; i++) {
        if (s[i] == '\n')
            assert_int_equal(sbx_buf_append(&crlf, "\r", 1), 0);
        assert_int_equal(sbx_buf_append(&crlf, s + i, 1), 0);
    }
    assert_sbx_ok(ms_verify_mem(pk, msg.ptr, msg.len, &crlf, NULL));
    sbx_buf_dispose(&g);
    sbx_buf_dispose(&z);
    sbx_buf_dispose(&crlf);
    // "XD" algorithm: re-encode the signature line with another tag
    uint8_t raw[80];
    size_t n = 0;
    char line[128] = "";
    const char *l2 = strchr(s, '\n') + 1;
    size_t l2n = (size_t)(strchr(l2, '\n') - l2);
    assert_sbx_ok(sbx_base64_decode(raw, sizeof(raw), &n, l2, l2n, true));
    raw[0] = 'X';
    assert_true(sbx_base64_encode(line, sizeof(line), raw, n, true) > 0);
    sbx_buf x = replace_line(&sig, 1, line);
    assert_sbx_err(ms_verify_mem(pk, msg.ptr, msg.len, &x, NULL), SBX_EUNSUPPORTED);
    sbx_buf_dispose(&x);
    sbx_buf_dispose(&msg);
    sbx_buf_dispose(&sig);
    sbx_minisign_pubkey_free(pk);
}

static void
minisign_malformed_keys_are_refused_with_clear_errors(void **state)
{
    (void)state;
    sbx_buf pub = slurp("minisign_nopass.pub"), sec = slurp("minisign_nopass.key");
    sbx_minisign_pubkey *pk = NULL;
    sbx_minisign_seckey *sk = NULL;
    // a secret key where a public key is expected, and the reverse
    assert_sbx_err(sbx_minisign_pubkey_parse(&pk, (const char *)sec.ptr, sec.len), SBX_EFORMAT);
    assert_non_null(strstr(sbx_error_last()->message, "secret key"));
    assert_sbx_err(sbx_minisign_seckey_parse(&sk, (const char *)pub.ptr, pub.len, NULL, NULL),
                   SBX_EFORMAT);
    assert_non_null(strstr(sbx_error_last()->message, "public key"));
    static const char *const bad_pub[] = {
        "",
        "\n\n",
        "untrusted comment: minisign public key\n",
        "untrusted comment: x\nRWQ!!!!\n",
        "untrusted comment: x\nRWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO\n",
        "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n",
    };
    for (size_t i = 0; i < sizeof(bad_pub) / sizeof(bad_pub[0]); i++) {
        assert_sbx_err(sbx_minisign_pubkey_parse(&pk, bad_pub[i], strlen(bad_pub[i])), SBX_EFORMAT);
        assert_null(pk);
    }
    // wrong algorithm "Ex"
    assert_sbx_err(sbx_minisign_pubkey_parse(
                       &pk, "RWxf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3", 56),
                   SBX_EUNSUPPORTED);
    // trailing text after the key
    sbx_buf t = SBX_BUF_INIT;
    assert_int_equal(sbx_buf_append(&t, pub.ptr, pub.len), 0);
    assert_int_equal(sbx_buf_append(&t, "junk\n", 5), 0);
    assert_sbx_err(sbx_minisign_pubkey_parse(&pk, (const char *)t.ptr, t.len), SBX_EFORMAT);
    sbx_buf_dispose(&t);
    // too large
    char *big = malloc(SBX_SIGN_MAX_TEXT + 10);
    memset(big, 'A', SBX_SIGN_MAX_TEXT + 10);
    assert_sbx_err(sbx_minisign_pubkey_parse(&pk, big, SBX_SIGN_MAX_TEXT + 10), SBX_ETOOBIG);
    assert_sbx_err(sbx_minisign_seckey_parse(&sk, big, SBX_SIGN_MAX_TEXT + 10, NULL, NULL),
                   SBX_ETOOBIG);
    free(big);
    // secret key: no comment line, changed algorithm fields, corrupted public half
    assert_sbx_err(sbx_minisign_seckey_parse(&sk, "RWQAAEIy\n", 9, NULL, NULL), SBX_EFORMAT);
    const char *line = strchr((const char *)sec.ptr, '\n') + 1;
    size_t ln = (size_t)(strchr(line, '\n') - line);
    uint8_t raw[170];
    size_t n = 0;
    assert_sbx_ok(sbx_base64_decode(raw, sizeof(raw), &n, line, ln, true));
    assert_int_equal(n, 158);
    static const struct {
        size_t off;
        uint8_t val;
        int code;
    } edits[] = {{0, 'X', SBX_EUNSUPPORTED},
                 {2, 'X', SBX_EUNSUPPORTED},
                 {4, 'X', SBX_EUNSUPPORTED},
                 {54 + 8 + 40, 0x55, SBX_EFORMAT},
                 {54 + 8 + 3, 0x01, SBX_EFORMAT}};
    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        uint8_t copy[158];
        char text[300] = "untrusted comment: x\n";
        memcpy(copy, raw, 158);
        copy[edits[i].off] ^= edits[i].val;
        assert_true(sbx_base64_encode(text + strlen(text), sizeof(text) - strlen(text), copy, 158,
                                      true) > 0);
        assert_sbx_err(sbx_minisign_seckey_parse(&sk, text, strlen(text), NULL, NULL),
                       edits[i].code);
        assert_null(sk);
    }
    sbx_buf_dispose(&pub);
    sbx_buf_dispose(&sec);
}

static void
minisign_protected_keys_round_trip_and_limits_hold(void **state)
{
    (void)state;
    sbx_minisign_seckey *sk = NULL, *back = NULL;
    sbx_buf file = SBX_BUF_INIT;
    const uint8_t *pw = (const uint8_t *)"pw";
    assert_sbx_ok(sbx_minisign_seckey_generate(&sk));
    // small scrypt limits keep the test fast (N = 2^10)
    assert_sbx_ok(sbx_minisign_seckey_to_file(sk, &file, pw, 2, 32768, 1 << 24));
    assert_sbx_err(sbx_minisign_seckey_to_file(sk, &file, pw, 0, 0, 0), SBX_EINVAL);
    // limits that could not be read back are refused as bad arguments, nothing written
    size_t before = file.len;
    assert_sbx_err(
        sbx_minisign_seckey_to_file(sk, &file, pw, 2, UINT64_C(1) << 40, UINT64_C(1) << 40),
        SBX_EINVAL);
    assert_non_null(strstr(sbx_error_last()->message, "out of range"));
    assert_int_equal(file.len, before);
    assert_non_null(strstr((const char *)file.ptr, "untrusted comment: "));
    assert_sbx_err(sbx_minisign_seckey_parse(&back, (const char *)file.ptr, file.len, NULL, NULL),
                   SBX_ENOKEY);
    assert_sbx_err(
        sbx_minisign_seckey_parse(&back, (const char *)file.ptr, file.len, give_pass, (void *)"pW"),
        SBX_EAUTH);
    assert_sbx_ok(sbx_minisign_seckey_parse(&back, (const char *)file.ptr, file.len, give_pass,
                                            (void *)"pw"));
    assert_true(sbx_minisign_seckey_keyid(back) == sbx_minisign_seckey_keyid(sk));
    // a signature from the reloaded key verifies with the original's public key
    sbx_minisign_pubkey *pk = NULL;
    sbx_buf sig = SBX_BUF_INIT;
    assert_sbx_ok(sbx_minisign_seckey_public(&pk, sk));
    ms_sign_mem(&sig, back, "abc", 3, "t");
    assert_sbx_ok(ms_verify_mem(pk, "abc", 3, &sig, NULL));
    // a hostile file asking for 2^40 bytes of scrypt memory is refused before any work
    const char *line = strchr((const char *)file.ptr, '\n') + 1;
    uint8_t raw[170];
    size_t n = 0;
    char text[300] = "untrusted comment: x\n";
    assert_sbx_ok(sbx_base64_decode(raw, sizeof(raw), &n, line, 212, true));
    memset(raw + 38, 0, 16);
    raw[38 + 5] = 1; // opslimit 2^40
    raw[46 + 5] = 1; // memlimit 2^40
    assert_true(
        sbx_base64_encode(text + strlen(text), sizeof(text) - strlen(text), raw, 158, true) > 0);
    int calls = 0;
    sbx_minisign_seckey_free(back);
    back = NULL;
    assert_sbx_err(sbx_minisign_seckey_parse(&back, text, strlen(text), count_calls, &calls),
                   SBX_ETOOBIG);
    assert_int_equal(calls, 0); // no passphrase prompt for a key that cannot be opened
    assert_null(back);
    assert_sbx_err(sbx_minisign_seckey_parse(&back, text, strlen(text), NULL, NULL), SBX_ETOOBIG);
    sbx_buf_dispose(&sig);
    sbx_minisign_pubkey_free(pk);
    sbx_minisign_seckey_free(sk);
    sbx_minisign_seckey_free(back);
    sbx_buf_dispose(&file);
}

/*
 * The checksum of a protected key is minisign's BLAKE2b-256 and is checked.
 * KAT: hashlib.blake2b(b"Ed" + keyid + sk, digest_size=32) over the key of
 * minisign_nopass.key (Python 3.11). The checksum field is XORed over, so
 * XORing the expected checksum into it makes the decrypted one zero, which
 * only a right checksum does; a zero checksum (protected keys of sbx
 * releases without BLAKE2b-256) is read by the public key check alone.
 */
static void
minisign_protected_key_checksum_is_written_and_checked(void **state)
{
    (void)state;
    static const uint8_t kat[32] = {0xd5, 0x2c, 0x1a, 0x4e, 0xc5, 0x51, 0x91, 0xf1,
                                    0xd2, 0x56, 0x4a, 0x48, 0x55, 0x1a, 0x90, 0xe4,
                                    0x5f, 0xcc, 0x23, 0x03, 0x49, 0x85, 0xc0, 0x40,
                                    0x2e, 0xd9, 0xa1, 0x75, 0xff, 0x20, 0x1d, 0x5f};
    sbx_minisign_seckey *sk = load_nopass(), *back = NULL;
    sbx_buf file = SBX_BUF_INIT;
    uint8_t raw[170];
    size_t n = 0;
    char zeroed[300] = "untrusted comment: x\n", flipped[300] = "untrusted comment: x\n";
    assert_true(sbx_minisign_checksum_supported());
    assert_sbx_ok(sbx_minisign_seckey_to_file(sk, &file, (const uint8_t *)"pw", 2, 32768, 1 << 24));
    const char *line = strchr((const char *)file.ptr, '\n') + 1;
    assert_sbx_ok(sbx_base64_decode(raw, sizeof(raw), &n, line, 212, true));
    assert_int_equal(n, 158);
    for (size_t i = 0; i < 32; i++)
        raw[126 + i] ^= kat[i]; // decrypts to a zero checksum if sbx wrote the KAT
    size_t z = strlen(zeroed);
    assert_true(sbx_base64_encode(zeroed + z, sizeof(zeroed) - z, raw, 158, true) > 0);
    for (size_t i = 0; i < 32; i++)
        raw[126 + i] ^= kat[i];
    raw[126 + 31] ^= 1; // one bit of the checksum
    assert_true(sbx_base64_encode(flipped + z, sizeof(flipped) - z, raw, 158, true) > 0);

    assert_sbx_ok(sbx_minisign_seckey_parse(&back, (const char *)file.ptr, file.len, give_pass,
                                            (void *)"pw"));
    sbx_minisign_seckey_free(back);
    back = NULL;
    assert_sbx_ok(
        sbx_minisign_seckey_parse(&back, zeroed, strlen(zeroed), give_pass, (void *)"pw"));
    assert_true(sbx_minisign_seckey_keyid(back) == sbx_minisign_seckey_keyid(sk));
    sbx_minisign_seckey_free(back);
    back = NULL;
    assert_sbx_err(
        sbx_minisign_seckey_parse(&back, zeroed, strlen(zeroed), give_pass, (void *)"pW"),
        SBX_EAUTH);
    assert_sbx_err(
        sbx_minisign_seckey_parse(&back, flipped, strlen(flipped), give_pass, (void *)"pw"),
        SBX_EAUTH);
    assert_null(back);
    SBX_WIPE_BUF(raw);
    sbx_minisign_seckey_free(sk);
    sbx_buf_dispose(&file);
}

static void
minisign_comments_must_be_one_line(void **state)
{
    (void)state;
    sbx_minisign_seckey *sk = load_nopass();
    sbx_source *src = NULL;
    sbx_buf sig = SBX_BUF_INIT;
    sbx_minisign_sign_options o = SBX_MINISIGN_SIGN_OPTIONS_INIT;
    assert_sbx_ok(sbx_source_mem_new(&src, "x", 1));
    o.trusted_comment = "two\nlines";
    assert_sbx_err(sbx_minisign_sign(&sig, sk, src, &o), SBX_EINVAL);
    o.trusted_comment = "ok";
    o.untrusted_comment = "bad\r";
    assert_sbx_err(sbx_minisign_sign(&sig, sk, src, &o), SBX_EINVAL);
    assert_int_equal(sig.len, 0);
    o.version = 99;
    assert_sbx_err(sbx_minisign_sign(&sig, sk, src, &o), SBX_EINVAL);
    sbx_source_free(src);
    sbx_minisign_seckey_free(sk);
}

/* ---- PEM ---- */

static sbx_pem_key *
pem_priv(const char *name, const char *pass)
{
    sbx_buf t = slurp(name);
    sbx_pem_key *k = NULL;
    assert_sbx_ok(sbx_pem_key_parse_private(&k, (const char *)t.ptr, t.len, pass ? give_pass : NULL,
                                            (void *)pass));
    sbx_buf_dispose(&t);
    return k;
}

static sbx_pem_key *
pem_pub(const char *name)
{
    sbx_buf t = slurp(name);
    sbx_pem_key *k = NULL;
    assert_sbx_ok(sbx_pem_key_parse_public(&k, (const char *)t.ptr, t.len));
    sbx_buf_dispose(&t);
    return k;
}

static int
pem_verify_stream(const sbx_pem_key *k, const void *msg, size_t len, const sbx_buf *sig)
{
    sbx_source *src = NULL;
    assert_sbx_ok(sbx_source_mem_new(&src, msg, len));
    int err = sbx_pem_verify(k, src, sig->ptr, sig->len);
    sbx_source_free(src);
    return err;
}

static void
pem_openssl_signatures_verify_and_deterministic_ones_match(void **state)
{
    (void)state;
    static const struct {
        const char *priv, *pub, *sig, *type;
        bool deterministic;
    } cases[] = {{"rsa2048.pem", "rsa2048.pub.pem", "msg.txt.rsa.sig", "RSA-2048", true},
                 {"p256.pem", "p256.pub.pem", "msg.txt.p256.sig", "ECDSA-P256", false},
                 {"ed25519.pem", "ed25519.pub.pem", "msg.txt.ed25519.sig", "Ed25519", true}};
    sbx_buf msg = slurp("msg.txt");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sbx_pem_key *priv = pem_priv(cases[i].priv, NULL), *pub = pem_pub(cases[i].pub);
        sbx_buf want = slurp(cases[i].sig), got = SBX_BUF_INIT;
        assert_string_equal(sbx_pem_key_type(pub), cases[i].type);
        assert_true(sbx_pem_key_is_private(priv));
        assert_false(sbx_pem_key_is_private(pub));
        assert_sbx_ok(sbx_pem_verify_mem(pub, msg.ptr, msg.len, want.ptr, want.len));
        assert_sbx_ok(pem_verify_stream(pub, msg.ptr, msg.len, &want));
        assert_sbx_ok(sbx_pem_sign_mem(&got, priv, msg.ptr, msg.len));
        if (cases[i].deterministic) {
            assert_int_equal(got.len, want.len);
            assert_memory_equal(got.ptr, want.ptr, want.len);
        }
        assert_sbx_ok(pem_verify_stream(pub, msg.ptr, msg.len, &got));
        // changed message
        msg.ptr[0] ^= 1;
        assert_sbx_err(sbx_pem_verify_mem(pub, msg.ptr, msg.len, want.ptr, want.len), SBX_EAUTH);
        assert_sbx_err(pem_verify_stream(pub, msg.ptr, msg.len, &want), SBX_EAUTH);
        msg.ptr[0] ^= 1;
        sbx_buf_dispose(&want);
        sbx_buf_dispose(&got);
        sbx_pem_key_free(priv);
        sbx_pem_key_free(pub);
    }
    sbx_buf_dispose(&msg);
}

static void
pem_round_trips_tamper_and_wrong_keys(void **state)
{
    (void)state;
    static const char *const privs[] = {"rsa2048.pem", "p256.pem", "p256_sec1.pem", "ed25519.pem"};
    static const char *const pubs[] = {"rsa2048.pub.pem", "p256.pub.pem", "ed25519.pub.pem"};
    size_t len = 100000 + test_rand_below(100000);
    uint8_t *msg = test_malloc_rand(len);
    for (size_t i = 0; i < sizeof(privs) / sizeof(privs[0]); i++) {
        sbx_pem_key *k = pem_priv(privs[i], NULL);
        sbx_buf sig = SBX_BUF_INIT, sig2 = SBX_BUF_INIT;
        sbx_source *src = NULL;
        assert_sbx_ok(sbx_source_mem_new(&src, msg, len));
        assert_sbx_ok(sbx_pem_sign(&sig, k, src));
        sbx_source_free(src);
        assert_sbx_ok(sbx_pem_sign_mem(&sig2, k, msg, len));
        assert_sbx_ok(sbx_pem_verify_mem(k, msg, len, sig.ptr, sig.len));
        assert_sbx_ok(pem_verify_stream(k, msg, len, &sig2));
        // every other public key refuses it
        size_t own = i == 0 ? 0 : i == 3 ? 2 : 1;
        for (size_t j = 0; j < sizeof(pubs) / sizeof(pubs[0]); j++) {
            sbx_pem_key *p = pem_pub(pubs[j]);
            int err = sbx_pem_verify_mem(p, msg, len, sig.ptr, sig.len);
            if (j == own && i != 2)
                assert_sbx_ok(err);
            else
                assert_sbx_err(err, SBX_EAUTH);
            sbx_pem_key_free(p);
        }
        // flipped signature bits, truncated and empty signatures
        for (int t = 0; t < 16; t++) {
            size_t at = test_rand_below(sig.len);
            uint8_t mask = (uint8_t)(1u << test_rand_below(8));
            sig.ptr[at] ^= mask;
            assert_sbx_err(sbx_pem_verify_mem(k, msg, len, sig.ptr, sig.len), SBX_EAUTH);
            sig.ptr[at] ^= mask;
        }
        assert_sbx_err(sbx_pem_verify_mem(k, msg, len, sig2.ptr, sig2.len - 1), SBX_EAUTH);
        assert_sbx_err(sbx_pem_verify_mem(k, msg, len, sig2.ptr, 0), SBX_EAUTH);
        // changed message
        msg[test_rand_below(len)] ^= 0x80;
        assert_sbx_err(pem_verify_stream(k, msg, len, &sig2), SBX_EAUTH);
        test_rand_fill(msg, len);
        sbx_buf_dispose(&sig);
        sbx_buf_dispose(&sig2);
        sbx_pem_key_free(k);
    }
    free(msg);
}

static void
pem_keys_are_checked(void **state)
{
    (void)state;
    sbx_pem_key *k = NULL;
    int calls = 0;
    struct {
        const char *name;
        bool priv;
        int code;
    } cases[] = {
        {"rsa1024.pem", true, SBX_EUNSUPPORTED}, {"p384.pem", true, SBX_EUNSUPPORTED},
        {"rsa2048.pub.pem", true, SBX_EFORMAT},  {"rsa2048.pem", false, SBX_EFORMAT},
        {"rsa2048_enc.pem", true, SBX_ENOKEY},   {"minisign_nopass.key", true, SBX_EFORMAT},
        {"msg.txt", false, SBX_EFORMAT}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sbx_buf t = slurp(cases[i].name);
        int err = cases[i].priv
                      ? sbx_pem_key_parse_private(&k, (const char *)t.ptr, t.len, NULL, NULL)
                      : sbx_pem_key_parse_public(&k, (const char *)t.ptr, t.len);
        if (err != cases[i].code)
            print_error("%s: got %s\n", cases[i].name, sbx_error_name(err));
        assert_int_equal(err, cases[i].code);
        assert_null(k);
        sbx_buf_dispose(&t);
    }
    assert_non_null(strstr(sbx_error_last()->message, "PEM"));
    // an RSA public key with e = 1 (anyone could make its signatures): refused, saying why
    sbx_buf e1 = slurp("rsa2048_e1.pub.pem");
    assert_int_equal(sbx_pem_key_parse_public(&k, (const char *)e1.ptr, e1.len), SBX_EFORMAT);
    assert_non_null(strstr(sbx_error_last()->message, "public exponent is 1"));
    assert_null(k);
    sbx_buf_dispose(&e1);
    // the encrypted key: wrong passphrase, canceled, right passphrase
    sbx_buf t = slurp("rsa2048_enc.pem");
    assert_sbx_err(
        sbx_pem_key_parse_private(&k, (const char *)t.ptr, t.len, give_pass, (void *)"nope"),
        SBX_EAUTH);
    assert_sbx_err(sbx_pem_key_parse_private(&k, (const char *)t.ptr, t.len, count_calls, &calls),
                   SBX_ECANCELED);
    assert_int_equal(calls, 1);
    sbx_buf_dispose(&t);
    k = pem_priv("rsa2048_enc.pem", "pem-pass");
    sbx_buf msg = slurp("msg.txt"), want = slurp("msg.txt.rsa.sig"), got = SBX_BUF_INIT;
    assert_sbx_ok(sbx_pem_sign_mem(&got, k, msg.ptr, msg.len));
    assert_memory_equal(got.ptr, want.ptr, want.len);
    // a public key cannot sign
    sbx_pem_key *pub = pem_pub("rsa2048.pub.pem");
    assert_sbx_err(sbx_pem_sign_mem(&got, pub, msg.ptr, msg.len), SBX_EINVAL);
    sbx_pem_key_free(pub);
    sbx_pem_key_free(k);
    sbx_buf_dispose(&msg);
    sbx_buf_dispose(&want);
    sbx_buf_dispose(&got);
}

int
main(void)
{
    test_seed_init("sign");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(minisign_signature_matches_minisign_byte_for_byte),
        cmocka_unit_test(minisign_verifies_minisign_signatures),
        cmocka_unit_test(minisign_pubkey_id_and_base64_match_the_file),
        cmocka_unit_test(minisign_unprotected_key_is_rewritten_identically),
        cmocka_unit_test(minisign_protected_key_from_minisign_opens_with_its_passphrase),
        cmocka_unit_test(minisign_round_trips_over_many_sizes),
        cmocka_unit_test(minisign_every_signature_character_is_checked),
        cmocka_unit_test(minisign_trusted_comment_is_signed_untrusted_is_not),
        cmocka_unit_test(minisign_wrong_key_is_refused),
        cmocka_unit_test(minisign_same_key_id_other_key_is_refused),
        cmocka_unit_test(minisign_malformed_signatures_are_refused),
        cmocka_unit_test(minisign_malformed_keys_are_refused_with_clear_errors),
        cmocka_unit_test(minisign_protected_keys_round_trip_and_limits_hold),
        cmocka_unit_test(minisign_protected_key_checksum_is_written_and_checked),
        cmocka_unit_test(minisign_comments_must_be_one_line),
        cmocka_unit_test(pem_openssl_signatures_verify_and_deterministic_ones_match),
        cmocka_unit_test(pem_round_trips_tamper_and_wrong_keys),
        cmocka_unit_test(pem_keys_are_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
