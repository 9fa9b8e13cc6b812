/*
 * tests/kms/test_records.c - encrypted records (strongbox/records.h) with a
 * key file and with a real `sbx kms serve --dev`: round trips of every type,
 * context binding, a tamper loop over every byte, truncation, wrong and
 * permissive key files, the key holder, and the server trust rule.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "helpers.h"
#include "kms_server.h"
#include "strongbox/strongbox.h"
#include "records/kms.h" // what libstrongbox-kms's constructor calls

#include <fcntl.h>
#include <pthread.h>

static test_kms_server server;
static char dir[256], key_a[320], key_b[320], ref_a[330], ref_b[330], kms_ref[128];

static void
write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static void
new_key_file(const char *path)
{
    sbx_buf k = SBX_BUF_INIT;
    assert_sbx_ok(sbx_record_key_generate(&k));
    assert_int_equal(k.len, 45);
    write_file(path, k.ptr, k.len, 0600);
    sbx_buf_dispose(&k);
}

static int
setup(void **state)
{
    (void)state;
    test_seed_init("kms/records");
    snprintf(dir, sizeof dir, "/tmp/sbx-records-test.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(key_a, sizeof key_a, "%s/keyA.key", dir);
    snprintf(key_b, sizeof key_b, "%s/keyB.key", dir);
    snprintf(ref_a, sizeof ref_a, "file:%s", key_a);
    snprintf(ref_b, sizeof ref_b, "file:%s", key_b);
    if (test_kms_server_start(&server, true, NULL) != 0)
        return -1;
    // libstrongbox-kms registers its source when loaded; a static link runs no
    // constructor of an object it does not otherwise need, so do what it does.
    if (sbx_record__kms_register() != 0)
        return -1;
    setenv("SBX_KMS_TOKEN", server.admin_token, 1);
    setenv("SBX_KMS_CACERT", server.cacert, 1);
    setenv("SBX_KMS_URL", server.url, 1); // only this server is trusted for decryption
    snprintf(kms_ref, sizeof kms_ref, "%s/records", server.url);
    sbx_kms_client *c = NULL;
    int err = sbx_kms_client_new_from_env(&c, server.url, NULL);
    if (err == 0)
        err = sbx_kms_key_create(c, "records", 0, NULL);
    sbx_kms_client_free(c);
    if (err != 0)
        fprintf(stderr, "cannot create the key: %s\n", sbx_error_last()->message);
    return err;
}

static int
teardown(void **state)
{
    (void)state;
    sbx_record_cleanup();
    test_kms_server_cleanup(&server);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Encrypt value, decrypt with the same context, compare type and bytes. */
static void
round_trip(const char *keyref, int type, const void *value, size_t len)
{
    sbx_buf rec = SBX_BUF_INIT, out = SBX_BUF_INIT;
    const char *ctx = "users.ssn.42";
    int got = -1;
    assert_sbx_ok(sbx_record_encrypt(keyref, type, value, len, ctx, strlen(ctx), &rec));
    assert_true(sbx_record_is_encrypted(rec.ptr, rec.len));
    if (len >= 4) // the plaintext is not in the record
        assert_null(memmem(rec.ptr, rec.len, value, len));
    assert_sbx_ok(sbx_record_decrypt(&got, &out, rec.ptr, rec.len, ctx, strlen(ctx)));
    assert_int_equal(got, type);
    assert_int_equal(out.len, len);
    if (len > 0)
        assert_memory_equal(out.ptr, value, len);
    sbx_buf_dispose(&rec);
    sbx_buf_dispose(&out);
}

static void
every_type(const char *keyref)
{
    uint8_t i64[8] = {0x80, 0, 0, 0, 0, 0, 0, 1},
            dbl[8] = {0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18};
    uint8_t blob[3000];
    for (size_t i = 0; i < sizeof blob; i++)
        blob[i] = (uint8_t)test_rand_u64();
    round_trip(keyref, SBX_RECORD_INTEGER, i64, 8);
    round_trip(keyref, SBX_RECORD_REAL, dbl, 8);
    round_trip(keyref, SBX_RECORD_TEXT, "123-45-6789", 11);
    round_trip(keyref, SBX_RECORD_TEXT, "", 0);
    round_trip(keyref, SBX_RECORD_BLOB, blob, sizeof blob);
    round_trip(keyref, SBX_RECORD_BLOB, NULL, 0);
}

static void
file_key_round_trips_every_type(void **state)
{
    (void)state;
    new_key_file(key_a);
    every_type(ref_a);
}

static void
kms_key_round_trips_every_type(void **state)
{
    (void)state;
    every_type(kms_ref);
    // Data keys come from the cache: 100 more records, no datakey request.
    long before = test_kms_server_requests(&server, "datakey");
    sbx_buf rec = SBX_BUF_INIT;
    for (int i = 0; i < 100; i++) {
        rec.len = 0;
        assert_sbx_ok(sbx_record_encrypt(kms_ref, SBX_RECORD_TEXT, "v", 1, "c", 1, &rec));
    }
    sbx_buf_dispose(&rec);
    assert_true(before >= 1);
    assert_int_equal(test_kms_server_requests(&server, "datakey"), before);
}

/* A record moved to another row (other context) does not decrypt. */
static void
expect_context_bound(const char *keyref)
{
    sbx_buf rec = SBX_BUF_INIT, out = SBX_BUF_INIT;
    int type;
    assert_sbx_ok(sbx_record_encrypt(keyref, SBX_RECORD_TEXT, "secret", 6, "t.c.1", 5, &rec));
    assert_sbx_err(sbx_record_decrypt(&type, &out, rec.ptr, rec.len, "t.c.2", 5), SBX_EAUTH);
    assert_int_equal(type, 0);
    assert_int_equal(out.len, 0);
    assert_sbx_err(sbx_record_decrypt(&type, &out, rec.ptr, rec.len, "t.c.1x", 6), SBX_EAUTH);
    assert_sbx_err(sbx_record_decrypt(&type, &out, rec.ptr, rec.len, NULL, 0), SBX_EAUTH);
    assert_sbx_ok(sbx_record_decrypt(&type, &out, rec.ptr, rec.len, "t.c.1", 5));
    sbx_buf_dispose(&rec);
    sbx_buf_dispose(&out);
}

static void
context_mismatch_fails(void **state)
{
    (void)state;
    expect_context_bound(ref_a);
    expect_context_bound(kms_ref);
}

/* Flip one bit of every byte in turn: nothing may decrypt. */
static void
expect_tamper_fails(const char *keyref)
{
    sbx_buf rec = SBX_BUF_INIT, out = SBX_BUF_INIT;
    int type;
    assert_sbx_ok(sbx_record_encrypt(keyref, SBX_RECORD_TEXT, "tamper me", 9, "ctx", 3, &rec));
    for (size_t i = 0; i < rec.len; i++) {
        uint8_t bit = (uint8_t)(1u << (test_rand_u64() % 8));
        rec.ptr[i] ^= bit;
        int err = sbx_record_decrypt(&type, &out, rec.ptr, rec.len, "ctx", 3);
        if (err == 0)
            fail_msg("byte %zu of %zu flipped (bit %02x) still decrypts", i, rec.len, bit);
        assert_int_equal(out.len, 0);
        rec.ptr[i] ^= bit;
    }
    assert_sbx_ok(sbx_record_decrypt(&type, &out, rec.ptr, rec.len, "ctx", 3));
    sbx_buf_dispose(&rec);
    sbx_buf_dispose(&out);
}

static void
tamper_of_every_byte_fails(void **state)
{
    (void)state;
    expect_tamper_fails(ref_a);
    expect_tamper_fails(kms_ref);
}

static void
truncated_record_fails(void **state)
{
    (void)state;
    const char *refs[] = {ref_a, kms_ref};
    for (size_t r = 0; r < 2; r++) {
        sbx_buf rec = SBX_BUF_INIT, out = SBX_BUF_INIT;
        int type;
        assert_sbx_ok(sbx_record_encrypt(refs[r], SBX_RECORD_BLOB, "abc", 3, "c", 1, &rec));
        for (size_t n = 0; n < rec.len; n++) {
            int err = sbx_record_decrypt(&type, &out, rec.ptr, n, "c", 1);
            if (err != SBX_EFORMAT && err != SBX_EAUTH)
                fail_msg("%zu of %zu bytes: %s", n, rec.len, sbx_error_last()->message);
        }
        uint8_t extra = 0;
        assert_sbx_ok(sbx_buf_append(&rec, &extra, 1)); // trailing byte: tag moves
        assert_true(sbx_record_decrypt(&type, &out, rec.ptr, rec.len, "c", 1) < 0);
        assert_int_equal(out.len, 0);
        sbx_buf_dispose(&rec);
        sbx_buf_dispose(&out);
    }
}

/* A record whose file: keyref names another key file: refused unless trusted, then SBX_ENOKEY. */
static void
wrong_key_file_fails_clearly(void **state)
{
    (void)state;
    sbx_buf rec = SBX_BUF_INIT, out = SBX_BUF_INIT;
    int type;
    new_key_file(key_b);
    assert_sbx_ok(sbx_record_encrypt(ref_a, SBX_RECORD_TEXT, "x", 1, "c", 1, &rec));
    uint8_t *p = memmem(rec.ptr, rec.len, "keyA.key", 8);
    assert_non_null(p);
    p[3] = 'B'; // same length: the record now names keyB.key
    // A key file named only by a record (untrusted) is not loaded: a planted record
    // could name a file of known content and forge values.
    assert_sbx_err(sbx_record_decrypt(&type, &out, rec.ptr, rec.len, "c", 1), SBX_EDENIED);
    assert_non_null(strstr(sbx_error_last()->message, "SBX_RECORD_KEYS"));
    assert_non_null(strstr(sbx_error_last()->message, key_b));
    // Listed in SBX_RECORD_KEYS, it is loaded, and its key id does not match.
    char list[700];
    snprintf(list, sizeof list, "/nonexistent/x.key:%s", key_b);
    assert_int_equal(setenv("SBX_RECORD_KEYS", list, 1), 0);
    assert_sbx_err(sbx_record_decrypt(&type, &out, rec.ptr, rec.len, "c", 1), SBX_ENOKEY);
    assert_int_equal(unsetenv("SBX_RECORD_KEYS"), 0);
    assert_non_null(strstr(sbx_error_last()->message, "another key"));
    assert_non_null(strstr(sbx_error_last()->message, key_b));
    sbx_buf_dispose(&rec);
    sbx_buf_dispose(&out);
}

static void
permissive_or_malformed_key_file_is_refused(void **state)
{
    (void)state;
    char path[340], ref[350];
    const uint8_t *k;
    sbx_buf rec = SBX_BUF_INIT;
    snprintf(path, sizeof path, "%s/open.key", dir);
    snprintf(ref, sizeof ref, "file:%s", path);
    sbx_buf text = SBX_BUF_INIT;
    assert_sbx_ok(sbx_record_key_generate(&text));
    write_file(path, text.ptr, text.len, 0640);
    assert_sbx_err(sbx_record_key_hold(&k, path), SBX_EDENIED);
    assert_null(k);
    assert_non_null(strstr(sbx_error_last()->message, "chmod 600"));
    assert_sbx_err(sbx_record_encrypt(ref, SBX_RECORD_TEXT, "x", 1, "c", 1, &rec), SBX_EDENIED);
    assert_int_equal(rec.len, 0);
    write_file(path, text.ptr, text.len, 0604);
    assert_sbx_err(sbx_record_key_hold(&k, path), SBX_EDENIED);
    write_file(path, text.ptr, text.len - 2, 0600); // base64 cut short
    assert_sbx_err(sbx_record_key_hold(&k, path), SBX_EFORMAT);
    write_file(path, "0123456789abcdef0123456789abcde", 31, 0600);
    assert_sbx_err(sbx_record_key_hold(&k, path), SBX_EFORMAT);
    snprintf(path, sizeof path, "%s/missing.key", dir);
    assert_sbx_err(sbx_record_key_hold(&k, path), SBX_EIO);
    assert_sbx_err(sbx_record_encrypt("ftp://x/y", SBX_RECORD_TEXT, "x", 1, "c", 1, &rec),
                   SBX_EINVAL);
    sbx_buf_dispose(&text);
}

static void
key_holder_loads_once(void **state)
{
    (void)state;
    char raw[340], link[340];
    uint8_t bytes[32], before[32];
    const uint8_t *k1, *k2, *k3;
    for (size_t i = 0; i < 32; i++)
        bytes[i] = (uint8_t)test_rand_u64();
    snprintf(raw, sizeof raw, "%s/raw.key", dir);
    snprintf(link, sizeof link, "%s/link.key", dir);
    write_file(raw, bytes, 32, 0600); // raw 32 bytes are accepted too
    assert_int_equal(symlink(raw, link), 0);
    assert_sbx_ok(sbx_record_key_hold(&k1, raw));
    assert_memory_equal(k1, bytes, 32);
    memcpy(before, k1, 32);
    assert_sbx_ok(sbx_record_key_hold(&k2, link)); // same file under another name
    assert_ptr_equal(k1, k2);
    // The file changes (or disappears): the process keeps the key it loaded.
    for (size_t i = 0; i < 32; i++)
        bytes[i] ^= 0xff;
    write_file(raw, bytes, 32, 0600);
    assert_sbx_ok(sbx_record_key_hold(&k3, raw));
    assert_ptr_equal(k1, k3);
    assert_memory_equal(k3, before, 32);
    printf("key holder: key in %s memory\n", sbx_secret_is_locked(k1) ? "locked" : "ordinary");
}

static void
untrusted_server_is_not_contacted(void **state)
{
    (void)state;
    sbx_buf rec = SBX_BUF_INIT, out = SBX_BUF_INIT;
    int type;
    assert_sbx_ok(sbx_record_encrypt(kms_ref, SBX_RECORD_TEXT, "x", 1, "c", 1, &rec));
    uint8_t *p = memmem(rec.ptr, rec.len, "127.0.0.1", 9);
    assert_non_null(p);
    p[8] = '2'; // https://127.0.0.2:PORT/records: not in SBX_KMS_URL
    assert_sbx_err(sbx_record_decrypt(&type, &out, rec.ptr, rec.len, "c", 1), SBX_EDENIED);
    assert_non_null(strstr(sbx_error_last()->message, "SBX_KMS_URL"));
    sbx_buf_dispose(&rec);
    sbx_buf_dispose(&out);
}

/* Many threads encrypt and decrypt at once with both kinds of key. */
static void *
thread_loop(void *arg)
{
    const char *keyref = arg;
    sbx_buf rec = SBX_BUF_INIT, out = SBX_BUF_INIT;
    char value[64], ctx[32];
    int type;
    for (int i = 0; i < 200; i++) {
        snprintf(value, sizeof value, "value %d of %p", i, (void *)&rec);
        snprintf(ctx, sizeof ctx, "t.c.%d", i);
        rec.len = out.len = 0;
        if (sbx_record_encrypt(keyref, SBX_RECORD_TEXT, value, strlen(value), ctx, strlen(ctx),
                               &rec) < 0 ||
            sbx_record_decrypt(&type, &out, rec.ptr, rec.len, ctx, strlen(ctx)) < 0 ||
            out.len != strlen(value) || memcmp(out.ptr, value, out.len) != 0)
            return strdup(sbx_error_last()->message); // thread-local: copy it
    }
    sbx_buf_dispose(&rec);
    sbx_buf_dispose(&out);
    return NULL;
}

static void
parallel_threads_share_keys_and_caches(void **state)
{
    (void)state;
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&t[i], NULL, thread_loop, i % 2 ? ref_a : kms_ref), 0);
    for (int i = 0; i < 8; i++) {
        void *msg = NULL;
        assert_int_equal(pthread_join(t[i], &msg), 0);
        if (msg != NULL)
            fail_msg("thread %d: %s", i, (const char *)msg);
    }
}

static void
is_encrypted_checks_the_prefix(void **state)
{
    (void)state;
    sbx_buf rec = SBX_BUF_INIT;
    assert_false(sbx_record_is_encrypted("123-45-6789", 11));
    assert_false(sbx_record_is_encrypted(NULL, 0));
    assert_sbx_ok(sbx_record_encrypt(ref_a, SBX_RECORD_TEXT, "x", 1, "c", 1, &rec));
    assert_true(sbx_record_is_encrypted(rec.ptr, rec.len));
    sbx_buf keyref = SBX_BUF_INIT;
    assert_sbx_ok(sbx_record_keyref(&keyref, rec.ptr, rec.len));
    assert_string_equal((const char *)keyref.ptr, ref_a);
    sbx_buf_dispose(&keyref);
    sbx_buf_dispose(&rec);
}

int
main(void)
{
    (void)test_kms_server_restart;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(file_key_round_trips_every_type),
        cmocka_unit_test(kms_key_round_trips_every_type),
        cmocka_unit_test(context_mismatch_fails),
        cmocka_unit_test(tamper_of_every_byte_fails),
        cmocka_unit_test(truncated_record_fails),
        cmocka_unit_test(wrong_key_file_fails_clearly),
        cmocka_unit_test(permissive_or_malformed_key_file_is_refused),
        cmocka_unit_test(key_holder_loads_once),
        cmocka_unit_test(untrusted_server_is_not_contacted),
        cmocka_unit_test(is_encrypted_checks_the_prefix),
        cmocka_unit_test(parallel_threads_share_keys_and_caches),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
