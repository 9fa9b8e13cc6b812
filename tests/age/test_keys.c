/*
 * tests/age/test_keys.c - age key strings: X25519 identities and recipients.
 *
 * Known answer: the spec pair of spec/age.md §8 (secret key 32 x 0x42 and
 * its X25519 public key, as printed by age-keygen).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "strongbox/age.h"
#include "strongbox/encoding.h"
#include "strongbox/error.h"
#include "helpers.h"

#define SPEC_SK "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX"
#define SPEC_PK "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj"

/* The recipient string of an identity, NUL-terminated in buf. */
static void
recipient_string_of(sbx_buf *buf, const sbx_identity *id)
{
    sbx_recipient *r = NULL;
    assert_sbx_ok(sbx_identity_to_recipient(&r, id));
    assert_sbx_ok(sbx_recipient_to_string(r, buf));
    assert_sbx_ok(sbx_buf_append(buf, "", 1));
    sbx_recipient_free(r);
}

static void
identity_spec_pair_derives_the_spec_recipient(void **state)
{
    sbx_identity *id = NULL;
    sbx_buf s = SBX_BUF_INIT;
    (void)state;
    assert_sbx_ok(sbx_identity_parse(&id, SPEC_SK));
    recipient_string_of(&s, id);
    assert_string_equal((const char *)s.ptr, SPEC_PK);
    sbx_buf_dispose(&s);
    sbx_identity_free(id);
}

static void
identity_to_string_reproduces_the_parsed_string(void **state)
{
    sbx_identity *id = NULL;
    sbx_buf s = SBX_BUF_INIT;
    (void)state;
    assert_sbx_ok(sbx_identity_parse(&id, SPEC_SK));
    assert_sbx_ok(sbx_identity_to_string(id, &s));
    assert_int_equal(s.len, strlen(SPEC_SK));
    assert_memory_equal(s.ptr, SPEC_SK, s.len);
    sbx_buf_dispose(&s);
    assert_null(s.ptr);
    assert_int_equal(s.len, 0);
    sbx_identity_free(id);
}

static void
recipient_parse_and_to_string_round_trip(void **state)
{
    sbx_recipient *r = NULL;
    sbx_buf s = SBX_BUF_INIT;
    (void)state;
    assert_sbx_ok(sbx_recipient_parse(&r, SPEC_PK));
    assert_string_equal(sbx_recipient_type(r), "X25519");
    assert_sbx_ok(sbx_recipient_to_string(r, &s));
    assert_int_equal(s.len, strlen(SPEC_PK));
    assert_memory_equal(s.ptr, SPEC_PK, s.len);
    sbx_buf_dispose(&s);
    sbx_recipient_free(r);
}

static void
generated_identities_round_trip_through_strings(void **state)
{
    (void)state;
    for (int i = 0; i < 16; i++) {
        sbx_identity *id = NULL, *again = NULL;
        sbx_buf s1 = SBX_BUF_INIT, s2 = SBX_BUF_INIT, r1 = SBX_BUF_INIT, r2 = SBX_BUF_INIT;
        assert_sbx_ok(sbx_identity_generate(&id));
        assert_sbx_ok(sbx_identity_to_string(id, &s1));
        assert_sbx_ok(sbx_buf_append(&s1, "", 1));
        assert_int_equal(strlen((const char *)s1.ptr), 74);
        assert_memory_equal(s1.ptr, "AGE-SECRET-KEY-1", 16);
        assert_sbx_ok(sbx_identity_parse(&again, (const char *)s1.ptr));
        assert_sbx_ok(sbx_identity_to_string(again, &s2));
        assert_sbx_ok(sbx_buf_append(&s2, "", 1));
        assert_string_equal((const char *)s1.ptr, (const char *)s2.ptr);
        recipient_string_of(&r1, id);
        recipient_string_of(&r2, again);
        assert_int_equal(strlen((const char *)r1.ptr), 62);
        assert_memory_equal(r1.ptr, "age1", 4);
        assert_string_equal((const char *)r1.ptr, (const char *)r2.ptr);
        sbx_buf_dispose(&s1);
        sbx_buf_dispose(&s2);
        sbx_buf_dispose(&r1);
        sbx_buf_dispose(&r2);
        sbx_identity_free(id);
        sbx_identity_free(again);
    }
}

static void
two_generated_identities_differ(void **state)
{
    sbx_identity *a = NULL, *b = NULL;
    sbx_buf sa = SBX_BUF_INIT, sb = SBX_BUF_INIT;
    (void)state;
    assert_sbx_ok(sbx_identity_generate(&a));
    assert_sbx_ok(sbx_identity_generate(&b));
    assert_sbx_ok(sbx_identity_to_string(a, &sa));
    assert_sbx_ok(sbx_identity_to_string(b, &sb));
    assert_int_equal(sa.len, sb.len);
    assert_memory_not_equal(sa.ptr, sb.ptr, sa.len);
    sbx_buf_dispose(&sa);
    sbx_buf_dispose(&sb);
    sbx_identity_free(a);
    sbx_identity_free(b);
}

/* A corrupted secret key is refused, and the message never echoes key material. */
static void
identity_parse_errors_never_contain_the_key(void **state)
{
    static const char *bad[] = {
        /* last checksum character changed */
        "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEQ",
        /* one data character changed */
        "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFQYYSJZGFPYYSJZGFPQ4EGAEX",
        /* mixed case */
        "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPq4EGAEX",
        /* lower case prefix (age writes upper case only) */
        "age-secret-key-1gfpyysjzgfpyysjzgfpyysjzgfpyysjzgfpyysjzgfpyysjzgfpq4egaex",
        /* trailing space, leading space */
        (SPEC_SK " "),
        (" " SPEC_SK),
        /* truncated */
        "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAE",
        /* a public key where a secret key is expected */
        SPEC_PK,
        "",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sbx_identity *id = (sbx_identity *)&bad; /* must be reset to NULL */
        int rc = sbx_identity_parse(&id, bad[i]);
        if (rc != SBX_EFORMAT) {
            print_error("identity %zu: rc %d (%s), expected SBX_EFORMAT\n", i, rc,
                        sbx_error_name(rc));
            fail();
        }
        assert_null(id);
        const char *msg = sbx_error_last()->message;
        assert_non_null(msg);
        assert_false(test_contains(msg, "GFPYYSJZ"));
        assert_false(test_contains(msg, "gfpyysjz"));
        assert_false(test_contains(msg, "4EGAE"));
    }
}

static void
identity_parse_refuses_post_quantum_keys_as_unsupported(void **state)
{
    sbx_identity *id = NULL;
    (void)state;
    assert_sbx_err(sbx_identity_parse(&id, "AGE-SECRET-KEY-PQ-1HZLGZUPT4ETPKDEV8HSGFDCYZ4E522W0A7"
                                           "PU2LHT8EH9W6YLNC3SW78XKG"),
                   SBX_EUNSUPPORTED);
    assert_null(id);
    assert_false(test_contains(sbx_error_last()->message, "HZLGZUPT"));
}

/* The bech32 detail follows "malformed recipient: " once, whole (issue 14, item 8). */
static void
recipient_parse_names_a_bad_checksum_once(void **state)
{
    sbx_recipient *r = NULL;
    (void)state;
    assert_sbx_err(
        sbx_recipient_parse(&r, "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwq"),
        SBX_EFORMAT);
    assert_string_equal(sbx_error_last()->message,
                        "malformed recipient: bech32: checksum mismatch (mistyped or truncated "
                        "key?)");
}

static void
recipient_parse_rejects_malformed_strings(void **state)
{
    static const char *bad[] = {
        "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwq", /* checksum */
        "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujw",  /* truncated */
        "AGE1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj", /* mixed case */
        SPEC_SK,
        "hello world",
        "",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sbx_recipient *r = (sbx_recipient *)&bad;
        int rc = sbx_recipient_parse(&r, bad[i]);
        if (rc != SBX_EFORMAT) {
            print_error("recipient %zu \"%s\": rc %d (%s), expected SBX_EFORMAT\n", i, bad[i], rc,
                        sbx_error_name(rc));
            fail();
        }
        assert_null(r);
        assert_false(test_contains(sbx_error_last()->message, "GFPYYSJZ"));
    }
}

static void
recipient_parse_reports_other_age_types_as_unsupported(void **state)
{
    sbx_recipient *r = NULL;
    char s[128];
    static const uint8_t data[33] = {2};
    (void)state;
    /* A tagged (age1tag1...) recipient: valid Bech32, a type we do not implement. */
    assert_sbx_ok(sbx_bech32_encode(s, sizeof(s), "age1tag", data, sizeof(data), false));
    assert_sbx_err(sbx_recipient_parse(&r, s), SBX_EUNSUPPORTED);
    assert_null(r);
}

static void
recipient_parse_rejects_wrong_key_lengths(void **state)
{
    static const size_t lens[] = {0, 1, 16, 31, 33, 48};
    uint8_t data[48] = {0};
    char s[128];
    (void)state;
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        sbx_recipient *r = NULL;
        assert_sbx_ok(sbx_bech32_encode(s, sizeof(s), "age", data, lens[i], false));
        assert_sbx_err(sbx_recipient_parse(&r, s), SBX_EFORMAT);
        assert_null(r);
    }
}

/* A post-quantum recipient (age1pq1..., about 1,959 characters) is a known but unsupported kind. */
static void
recipient_parse_reports_post_quantum_keys_as_unsupported(void **state)
{
    static uint8_t data[1216];
    static char s[2100];
    sbx_recipient *r = NULL;
    (void)state;
    test_rand_fill(data, sizeof(data));
    assert_sbx_ok(sbx_bech32_encode(s, sizeof(s), "age1pq", data, sizeof(data), false));
    assert_true(strlen(s) > 1900);
    assert_sbx_err(sbx_recipient_parse(&r, s), SBX_EUNSUPPORTED);
    assert_null(r);
}

/* ---- keys in the wrong place, encrypted identity files (issue 14, item 12) ---- */

static void
public_keys_given_as_identities_are_named(void **state)
{
    static const char *const pubs[] = {
        SPEC_PK,
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN x",
    };
    sbx_identity *id = NULL, **ids = NULL;
    size_t n = 0;
    char file[256];
    (void)state;
    assert_sbx_err(sbx_identity_parse(&id, pubs[0]), SBX_EFORMAT);
    assert_true(test_contains(sbx_error_last()->message, "this is a recipient (an age1... public "
                                                         "key), not an identity"));
    assert_sbx_err(sbx_identity_parse(&id, pubs[1]), SBX_EFORMAT);
    assert_true(test_contains(sbx_error_last()->message, "an SSH public key"));
    snprintf(file, sizeof(file), "# public key\n%s\n", pubs[0]);
    assert_sbx_err(sbx_identities_parse(&ids, &n, file, strlen(file)), SBX_EFORMAT);
    assert_true(test_contains(sbx_error_last()->message, "line 2: this is a recipient"));
    assert_null(ids);
    assert_null(id);
}

/* An identity file encrypted to a passphrase, binary or armored, as `age -p key.txt` makes it. */
static void
encrypt_identity_file(sbx_buf *out, const char *text, bool armor)
{
    sbx_recipient *r = NULL;
    sbx_age_encrypt_options o = SBX_AGE_ENCRYPT_OPTIONS_INIT;
    o.armor = armor;
    assert_sbx_ok(sbx_recipient_scrypt_new(&r, "pw", 2, 2));
    assert_sbx_ok(sbx_age_encrypt_buf(out, text, strlen(text), &r, 1, &o));
    sbx_recipient_free(r);
}

struct pass_state {
    const char *pass;
    int calls;
};

static int
give_pass(sbx_buf *out, void *payload)
{
    struct pass_state *p = payload;
    p->calls++;
    return sbx_buf_append(out, p->pass, strlen(p->pass));
}

static void
encrypted_identity_files_open_with_their_passphrase(void **state)
{
    const char *text = "# created: today\n# public key: " SPEC_PK "\n" SPEC_SK "\n";
    (void)state;
    for (int armor = 0; armor < 2; armor++) {
        sbx_buf file = SBX_BUF_INIT, pk = SBX_BUF_INIT;
        sbx_identity **ids = NULL;
        size_t n = 0;
        struct pass_state good = {"pw", 0}, bad = {"wrong", 0};
        encrypt_identity_file(&file, text, armor == 1);
        assert_sbx_ok(
            sbx_identities_parse_ex(&ids, &n, (const char *)file.ptr, file.len, give_pass, &good));
        assert_int_equal(n, 1);
        assert_int_equal(good.calls, 1);
        recipient_string_of(&pk, ids[0]);
        assert_string_equal((const char *)pk.ptr, SPEC_PK);
        sbx_identities_free(ids, n);
        ids = NULL;
        assert_sbx_err(
            sbx_identities_parse_ex(&ids, &n, (const char *)file.ptr, file.len, give_pass, &bad),
            SBX_EAUTH);
        assert_true(test_contains(sbx_error_last()->message, "wrong passphrase"));
        assert_null(ids);
        // without a callback: the file says what it is
        assert_sbx_err(sbx_identities_parse(&ids, &n, (const char *)file.ptr, file.len),
                       SBX_ENOKEY);
        assert_true(test_contains(sbx_error_last()->message, "encrypted with a passphrase"));
        sbx_buf_dispose(&file);
        sbx_buf_dispose(&pk);
    }
}

static void
encrypted_identity_files_refuse_what_they_cannot_open(void **state)
{
    sbx_buf inner = SBX_BUF_INIT, outer = SBX_BUF_INIT, to_key = SBX_BUF_INIT;
    sbx_identity *id = NULL, **ids = NULL;
    sbx_recipient *r = NULL;
    size_t n = 0;
    struct pass_state good = {"pw", 0};
    (void)state;
    // an encrypted file inside an encrypted file: one level only
    encrypt_identity_file(&inner, SPEC_SK "\n", false);
    assert_sbx_ok(sbx_buf_append(&inner, "", 1));
    sbx_recipient *pr = NULL;
    assert_sbx_ok(sbx_recipient_scrypt_new(&pr, "pw", 2, 2));
    assert_sbx_ok(sbx_age_encrypt_buf(&outer, inner.ptr, inner.len - 1, &pr, 1, NULL));
    assert_sbx_err(
        sbx_identities_parse_ex(&ids, &n, (const char *)outer.ptr, outer.len, give_pass, &good),
        SBX_EFORMAT);
    assert_true(test_contains(sbx_error_last()->message, "another encrypted file"));
    // an age file encrypted to a key, not a passphrase: the callback is never asked
    good.calls = 0;
    assert_sbx_ok(sbx_identity_parse(&id, SPEC_SK));
    assert_sbx_ok(sbx_identity_to_recipient(&r, id));
    assert_sbx_ok(sbx_age_encrypt_buf(&to_key, SPEC_SK "\n", strlen(SPEC_SK) + 1, &r, 1, NULL));
    assert_sbx_err(
        sbx_identities_parse_ex(&ids, &n, (const char *)to_key.ptr, to_key.len, give_pass, &good),
        SBX_EUNSUPPORTED);
    assert_true(test_contains(sbx_error_last()->message, "not with a passphrase"));
    assert_int_equal(good.calls, 0);
    // a bad line inside is reported with its number, never its content
    sbx_buf bad = SBX_BUF_INIT;
    encrypt_identity_file(&bad, "# ok\nAGE-SECRET-KEY-1NOTAKEY\n", false);
    assert_sbx_err(
        sbx_identities_parse_ex(&ids, &n, (const char *)bad.ptr, bad.len, give_pass, &good),
        SBX_EFORMAT);
    assert_true(test_contains(sbx_error_last()->message, "encrypted identity file: line 2: "));
    assert_false(test_contains(sbx_error_last()->message, "NOTAKEY"));
    // truncated: the payload does not verify
    assert_sbx_err(
        sbx_identities_parse_ex(&ids, &n, (const char *)bad.ptr, bad.len - 1, give_pass, &good),
        SBX_EPAYLOAD);
    assert_true(test_contains(sbx_error_last()->message, "encrypted identity file: "));
    assert_null(ids);
    sbx_recipient_free(pr);
    sbx_recipient_free(r);
    sbx_identity_free(id);
    sbx_buf_dispose(&inner);
    sbx_buf_dispose(&outer);
    sbx_buf_dispose(&to_key);
    sbx_buf_dispose(&bad);
}

static void
scrypt_keys_have_no_string_form(void **state)
{
    sbx_recipient *r = NULL, *r2 = NULL;
    sbx_identity *id = NULL;
    sbx_buf s = SBX_BUF_INIT;
    (void)state;
    assert_sbx_ok(sbx_recipient_scrypt_new(&r, "hunter2", 7, 10));
    assert_string_equal(sbx_recipient_type(r), "scrypt");
    assert_sbx_err(sbx_recipient_to_string(r, &s), SBX_EUNSUPPORTED);
    assert_int_equal(s.len, 0);
    assert_sbx_ok(sbx_identity_scrypt_new(&id, "hunter2", 7, 0));
    assert_sbx_err(sbx_identity_to_string(id, &s), SBX_EUNSUPPORTED);
    assert_int_equal(s.len, 0);
    assert_sbx_err(sbx_identity_to_recipient(&r2, id), SBX_EUNSUPPORTED);
    assert_null(r2);
    assert_false(test_contains(sbx_error_last()->message, "hunter2"));
    sbx_identity_free(id);
    sbx_recipient_free(r);
}

static void
scrypt_constructors_validate_arguments(void **state)
{
    sbx_recipient *r = NULL;
    sbx_identity *id = NULL;
    (void)state;
    assert_sbx_err(sbx_recipient_scrypt_new(&r, "", 0, 10), SBX_EINVAL);
    assert_null(r);
    assert_sbx_err(sbx_recipient_scrypt_new(&r, "x", 1, -1), SBX_EINVAL);
    assert_sbx_err(sbx_recipient_scrypt_new(&r, "x", 1, SBX_AGE_SCRYPT_MAX_LOG_N + 1), SBX_EINVAL);
    assert_null(r);
    assert_sbx_err(sbx_identity_scrypt_new(&id, "", 0, 0), SBX_EINVAL);
    assert_null(id);
    sbx_recipient_free(NULL);
    sbx_identity_free(NULL);
    sbx_recipients_free(NULL, 0);
    sbx_identities_free(NULL, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(identity_spec_pair_derives_the_spec_recipient),
        cmocka_unit_test(identity_to_string_reproduces_the_parsed_string),
        cmocka_unit_test(recipient_parse_and_to_string_round_trip),
        cmocka_unit_test(generated_identities_round_trip_through_strings),
        cmocka_unit_test(two_generated_identities_differ),
        cmocka_unit_test(identity_parse_errors_never_contain_the_key),
        cmocka_unit_test(identity_parse_refuses_post_quantum_keys_as_unsupported),
        cmocka_unit_test(recipient_parse_names_a_bad_checksum_once),
        cmocka_unit_test(recipient_parse_rejects_malformed_strings),
        cmocka_unit_test(recipient_parse_reports_other_age_types_as_unsupported),
        cmocka_unit_test(recipient_parse_rejects_wrong_key_lengths),
        cmocka_unit_test(recipient_parse_reports_post_quantum_keys_as_unsupported),
        cmocka_unit_test(public_keys_given_as_identities_are_named),
        cmocka_unit_test(encrypted_identity_files_open_with_their_passphrase),
        cmocka_unit_test(encrypted_identity_files_refuse_what_they_cannot_open),
        cmocka_unit_test(scrypt_keys_have_no_string_form),
        cmocka_unit_test(scrypt_constructors_validate_arguments),
    };
    test_seed_init("age/keys");
    return cmocka_run_group_tests_name("age/keys", tests, NULL, NULL);
}
