/*
 * tests/kms/test_records.c - encrypted records (strongbox/records.h) with a
 * key file and with a real `sbx kms serve --dev`: round trips of every type,
 * context binding, a tamper loop over every byte, truncation, wrong and
 * permissive key files, the key holder, and the server trust rule; and the
 * key source interface (strongbox/sys/records.h) with a test source of its
 * own ("test://"): round trips, errors passed through, registration rules,
 * unregistered schemes, and sbx_record_cleanup() reaching every source.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "helpers.h"
#include "kms_server.h"
#include "strongbox/strongbox.h"
#include "strongbox/sys/records.h"
#include "records/kms.h" // what libstrongbox-kms's constructor calls

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>

static test_kms_server server;
static char dir[256], key_a[320], key_b[320], ref_a[330], ref_b[330], kms_ref[128];

/* ---- a test key source: "test://NAME", data keys wrapped as "t1:" + hex(key ^ mask) ---- */

enum {
    TEST_OK,
    TEST_DATAKEY_FAILS,
    TEST_WRAPPED_EMPTY,
    TEST_WRAPPED_NUL,
    TEST_RETURNS_POSITIVE,
    TEST_UNWRAP_FAILS
};

static atomic_int test_mode, test_datakeys, test_unwraps, test_cleanups;
static atomic_ullong test_last_bytes;
static const char test_payload[] = "payload";

static uint8_t
test_mask(size_t i)
{
    return (uint8_t)(0xa5 ^ i * 7);
}

static int
test_datakey(uint8_t key_out[32], sbx_buf *wrapped_out, const char *keyref, uint64_t bytes,
             void *payload)
{
    char text[3 + 64 + 1] = "t1:";
    int mode = atomic_load(&test_mode);
    assert_ptr_equal(payload, test_payload);
    assert_int_equal(strncmp(keyref, "test://", 7), 0);
    atomic_fetch_add(&test_datakeys, 1);
    atomic_store(&test_last_bytes, bytes);
    if (mode == TEST_DATAKEY_FAILS)
        return sbx_error_set(SBX_EIO, "test source: offline");
    if (mode == TEST_RETURNS_POSITIVE)
        return 1;
    if (sbx_random_bytes(key_out, 32) < 0)
        return sbx_error_last()->code;
    for (size_t i = 0; i < 32; i++)
        snprintf(text + 3 + 2 * i, 3, "%02x", key_out[i] ^ test_mask(i));
    if (mode == TEST_WRAPPED_EMPTY)
        return 0;
    if (mode == TEST_WRAPPED_NUL)
        text[5] = '\0';
    return sbx_buf_append(wrapped_out, text, sizeof text - 1);
}

static int
test_unwrap(uint8_t key_out[32], const char *keyref, const char *wrapped, void *payload)
{
    assert_ptr_equal(payload, test_payload);
    assert_int_equal(strncmp(keyref, "test://", 7), 0);
    atomic_fetch_add(&test_unwraps, 1);
    if (atomic_load(&test_mode) == TEST_UNWRAP_FAILS)
        return sbx_error_set(SBX_EDENIED, "test source: %s may not be unwrapped here", keyref);
    if (strlen(wrapped) != 3 + 64 || strncmp(wrapped, "t1:", 3) != 0)
        return sbx_error_set(SBX_EFORMAT, "test source: bad wrapped key");
    for (size_t i = 0; i < 32; i++) {
        unsigned v;
        if (sscanf(wrapped + 3 + 2 * i, "%2x", &v) != 1)
            return sbx_error_set(SBX_EFORMAT, "test source: bad wrapped key");
        key_out[i] = (uint8_t)(v ^ test_mask(i));
    }
    return 0;
}

static void
test_cleanup(void *payload)
{
    assert_ptr_equal(payload, test_payload);
    atomic_fetch_add(&test_cleanups, 1);
}

static const sbx_record_key_source test_source = {
    SBX_RECORD_KEY_SOURCE_VERSION, "test://", test_datakey, test_unwrap, test_cleanup,
    (void *)test_payload,
};

static const char test_ref[] = "test://records";

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
    if (sbx_record__kms_register() != 0 || sbx_record_key_source_register(&test_source) != 0)
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
    expect_context_bound(test_ref);
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
    expect_tamper_fails(test_ref);
}

static void
truncated_record_fails(void **state)
{
    (void)state;
    const char *refs[] = {ref_a, kms_ref, test_ref};
    for (size_t r = 0; r < 3; r++) {
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
        assert_int_equal(pthread_create(&t[i], NULL, thread_loop,
                                        (void *)(i % 3 == 0   ? ref_a
                                                 : i % 3 == 1 ? kms_ref
                                                              : test_ref)),
                         0);
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

/* ---- key sources (strongbox/sys/records.h) ---- */

static void
key_source_round_trips_every_type(void **state)
{
    (void)state;
    int datakeys = atomic_load(&test_datakeys), unwraps = atomic_load(&test_unwraps);
    every_type(test_ref);
    assert_int_equal(atomic_load(&test_datakeys), datakeys + 6);
    assert_int_equal(atomic_load(&test_unwraps), unwraps + 6);
    // Kind 2, the keyref and the source's wrapped key as they are; bytes = type byte + value.
    sbx_buf rec = SBX_BUF_INIT, ref = SBX_BUF_INIT;
    assert_sbx_ok(sbx_record_encrypt(test_ref, SBX_RECORD_TEXT, "123-45-6789", 11, "c", 1, &rec));
    assert_int_equal(atomic_load(&test_last_bytes), 12);
    assert_int_equal(rec.ptr[5], 2);
    size_t kl = strlen(test_ref);
    assert_int_equal(rec.ptr[6] << 8 | rec.ptr[7], kl);
    assert_memory_equal(rec.ptr + 8, test_ref, kl);
    assert_int_equal(rec.ptr[8 + kl] << 8 | rec.ptr[9 + kl], 67);
    assert_memory_equal(rec.ptr + 10 + kl, "t1:", 3);
    assert_int_equal(rec.len, 10 + kl + 67 + 12 + 1 + 11 + 16); // docs/records.md, Size
    assert_sbx_ok(sbx_record_keyref(&ref, rec.ptr, rec.len));
    assert_string_equal((const char *)ref.ptr, test_ref);
    sbx_buf_dispose(&ref);
    sbx_buf_dispose(&rec);
}

/* Encryption under test_ref in mode fails with code; out keeps its earlier bytes only. */
static void
expect_datakey_error(int mode, int code, const char *needle)
{
    sbx_buf out = SBX_BUF_INIT;
    assert_sbx_ok(sbx_buf_append(&out, "keep", 4));
    atomic_store(&test_mode, mode);
    int err = sbx_record_encrypt(test_ref, SBX_RECORD_TEXT, "x", 1, "c", 1, &out);
    atomic_store(&test_mode, TEST_OK);
    assert_sbx_err(err, code);
    assert_non_null(strstr(sbx_error_last()->message, needle));
    assert_int_equal(out.len, 4);
    assert_memory_equal(out.ptr, "keep", 4);
    sbx_buf_dispose(&out);
}

static void
key_source_errors_pass_through(void **state)
{
    (void)state;
    expect_datakey_error(TEST_DATAKEY_FAILS, SBX_EIO, "test source: offline");
    expect_datakey_error(TEST_WRAPPED_EMPTY, SBX_EFORMAT, "0 bytes");
    expect_datakey_error(TEST_WRAPPED_NUL, SBX_EFORMAT, "NUL");
    expect_datakey_error(TEST_RETURNS_POSITIVE, SBX_EINVAL, "test://");
    sbx_buf rec = SBX_BUF_INIT, out = SBX_BUF_INIT;
    int type;
    assert_sbx_ok(sbx_record_encrypt(test_ref, SBX_RECORD_TEXT, "x", 1, "c", 1, &rec));
    atomic_store(&test_mode, TEST_UNWRAP_FAILS);
    int err = sbx_record_decrypt(&type, &out, rec.ptr, rec.len, "c", 1);
    atomic_store(&test_mode, TEST_OK);
    assert_sbx_err(err, SBX_EDENIED);
    assert_non_null(strstr(sbx_error_last()->message, "may not be unwrapped"));
    assert_int_equal(type, 0);
    assert_int_equal(out.len, 0);
    sbx_buf_dispose(&rec);
    sbx_buf_dispose(&out);
}

static int
other_datakey(uint8_t key_out[32], sbx_buf *wrapped_out, const char *keyref, uint64_t bytes,
              void *payload)
{
    (void)key_out, (void)wrapped_out, (void)keyref, (void)bytes, (void)payload;
    return sbx_error_set(SBX_EIO, "other source");
}

static int
other_unwrap(uint8_t key_out[32], const char *keyref, const char *wrapped, void *payload)
{
    (void)key_out, (void)keyref, (void)wrapped, (void)payload;
    return sbx_error_set(SBX_EIO, "other source");
}

static void
expect_refused(unsigned version, const char *prefix, bool callbacks)
{
    sbx_record_key_source s = {
        version, prefix, callbacks ? other_datakey : NULL, callbacks ? other_unwrap : NULL,
        NULL,    NULL};
    int err = sbx_record_key_source_register(&s);
    if (err != SBX_EINVAL)
        fail_msg("prefix \"%s\" version %u: %d, not SBX_EINVAL", prefix ? prefix : "(null)",
                 version, err);
}

static void
key_source_registration_rules(void **state)
{
    (void)state;
    static const sbx_record_key_source twin = {
        SBX_RECORD_KEY_SOURCE_VERSION, "test://", other_datakey, other_unwrap, NULL, NULL};
    static const sbx_record_key_source https = {
        SBX_RECORD_KEY_SOURCE_VERSION, "https://", other_datakey, other_unwrap, NULL, NULL};
    static const sbx_record_key_source bare = {
        SBX_RECORD_KEY_SOURCE_VERSION, "bare+v1.x-y://", other_datakey, other_unwrap, NULL, NULL};
    // The same source again is a no-op; another one for a taken prefix is refused.
    assert_sbx_ok(sbx_record_key_source_register(&test_source));
    assert_sbx_ok(sbx_record__kms_register());
    assert_sbx_err(sbx_record_key_source_register(&twin), SBX_EEXISTS);
    assert_non_null(strstr(sbx_error_last()->message, "test://"));
    assert_sbx_err(sbx_record_key_source_register(&https), SBX_EEXISTS);
    round_trip(test_ref, SBX_RECORD_TEXT, "still mine", 10); // test_source still serves
    // A source without cleanup is fine; sbx_record_cleanup() skips it.
    sbx_buf rec = SBX_BUF_INIT;
    assert_sbx_ok(sbx_record_key_source_register(&bare));
    assert_sbx_err(sbx_record_encrypt("bare+v1.x-y://k", SBX_RECORD_TEXT, "x", 1, "c", 1, &rec),
                   SBX_EIO);
    assert_string_equal(sbx_error_last()->message, "other source");
    assert_int_equal(rec.len, 0);
    // Malformed sources.
    assert_sbx_err(sbx_record_key_source_register(NULL), SBX_EINVAL);
    expect_refused(2, "v2://", true);
    expect_refused(0, "v0://", true);
    expect_refused(SBX_RECORD_KEY_SOURCE_VERSION, "nocallbacks://", false);
    const char *bad[] = {NULL,
                         "",
                         "test:",
                         "test:/",
                         "://",
                         "Test://",
                         "1x://",
                         "te st://",
                         "x_y://",
                         "file://",
                         "abcdefghijklmnopqrstuvwxyzabcd://"}; // the last: 33 bytes
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        expect_refused(SBX_RECORD_KEY_SOURCE_VERSION, bad[i], true);
    static const sbx_record_key_source longest = {SBX_RECORD_KEY_SOURCE_VERSION,
                                                  "abcdefghijklmnopqrstuvwxyzabc://",
                                                  other_datakey,
                                                  other_unwrap,
                                                  NULL,
                                                  NULL};
    assert_sbx_ok(sbx_record_key_source_register(&longest)); // 32 bytes
}

/* A scheme nobody registered: refused when encrypting, unsupported when decrypting. */
static void
unregistered_scheme_is_refused(void **state)
{
    (void)state;
    sbx_buf rec = SBX_BUF_INIT, out = SBX_BUF_INIT;
    int type;
    assert_sbx_err(sbx_record_encrypt("nope://k", SBX_RECORD_TEXT, "x", 1, "c", 1, &rec),
                   SBX_EINVAL);
    assert_non_null(strstr(sbx_error_last()->message, "none is registered for nope://"));
    assert_int_equal(rec.len, 0);
    assert_sbx_err(sbx_record_encrypt("nope:k", SBX_RECORD_TEXT, "x", 1, "c", 1, &rec), SBX_EINVAL);
    assert_string_equal(sbx_error_last()->message, "key reference must be file:PATH or "
                                                   "https://host:port/NAME (at most 1024 bytes)");
    assert_sbx_err(sbx_record_encrypt("test://", SBX_RECORD_TEXT, "x", 1, "c", 1, &rec),
                   SBX_EINVAL); // nothing after the prefix
    // A record made by a source this process does not have.
    assert_sbx_ok(sbx_record_encrypt(test_ref, SBX_RECORD_TEXT, "x", 1, "c", 1, &rec));
    memcpy(rec.ptr + 8, "nope", 4); // same length: "nope://records"
    assert_sbx_err(sbx_record_decrypt(&type, &out, rec.ptr, rec.len, "c", 1), SBX_EUNSUPPORTED);
    assert_non_null(strstr(sbx_error_last()->message, "no record key source is registered for "
                                                      "nope://"));
    memcpy(rec.ptr + 8, "file", 4); // "file://records" in a kind-2 record
    assert_true(sbx_record_decrypt(&type, &out, rec.ptr, rec.len, "c", 1) < 0);
    memcpy(rec.ptr + 8, "te:x", 4); // no scheme at all: the message of before
    assert_sbx_err(sbx_record_decrypt(&type, &out, rec.ptr, rec.len, "c", 1), SBX_EFORMAT);
    assert_string_equal(sbx_error_last()->message, "record: key server reference without https://");
    assert_int_equal(out.len, 0);
    sbx_buf_dispose(&rec);
    sbx_buf_dispose(&out);
}

static void *
register_race(void *arg)
{
    static const sbx_record_key_source shared = {
        SBX_RECORD_KEY_SOURCE_VERSION, "shared://", other_datakey, other_unwrap, NULL, NULL};
    if (sbx_record_key_source_register(&shared) != 0)
        return (void *)"shared";
    return (void *)(intptr_t)sbx_record_key_source_register(arg);
}

/* Threads register at once: the same source, and rivals for one prefix. */
static void
concurrent_registration_has_one_winner(void **state)
{
    (void)state;
    static sbx_record_key_source rivals[8];
    pthread_t t[8];
    int winners = 0;
    for (int i = 0; i < 8; i++) {
        rivals[i] = (sbx_record_key_source){
            SBX_RECORD_KEY_SOURCE_VERSION, "race://", other_datakey, other_unwrap, NULL, NULL};
        assert_int_equal(pthread_create(&t[i], NULL, register_race, &rivals[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        void *r = NULL;
        assert_int_equal(pthread_join(t[i], &r), 0);
        if ((intptr_t)r == 0)
            winners++;
        else if ((intptr_t)r != SBX_EEXISTS)
            fail_msg("thread %d: %p", i, r);
    }
    assert_int_equal(winners, 1);
}

/* At most SBX_RECORD_MAX_KEY_SOURCES: the rest is refused (SBX_ETOOBIG). */
static void
registry_is_bounded(void **state)
{
    (void)state;
    static sbx_record_key_source many[SBX_RECORD_MAX_KEY_SOURCES];
    static char prefixes[SBX_RECORD_MAX_KEY_SOURCES][16];
    int err = 0;
    size_t i;
    for (i = 0; i < SBX_RECORD_MAX_KEY_SOURCES && err == 0; i++) {
        snprintf(prefixes[i], sizeof prefixes[i], "many%zu://", i);
        many[i] = (sbx_record_key_source){
            SBX_RECORD_KEY_SOURCE_VERSION, prefixes[i], other_datakey, other_unwrap, NULL, NULL};
        err = sbx_record_key_source_register(&many[i]);
    }
    assert_sbx_err(err, SBX_ETOOBIG);
    assert_true(i > 1 && i < SBX_RECORD_MAX_KEY_SOURCES);    // some were registered before
    assert_sbx_ok(sbx_record_key_source_register(&many[0])); // already there: still a no-op
    round_trip(test_ref, SBX_RECORD_TEXT, "full", 4);
}

/* sbx_record_cleanup() calls each source's cleanup; sources then work again. */
static void
cleanup_reaches_every_source(void **state)
{
    (void)state;
    int before = atomic_load(&test_cleanups);
    sbx_record_cleanup();
    assert_int_equal(atomic_load(&test_cleanups), before + 1);
    round_trip(test_ref, SBX_RECORD_TEXT, "again", 5);
    round_trip(kms_ref, SBX_RECORD_TEXT, "again", 5); // a new client and cache
    round_trip(ref_a, SBX_RECORD_TEXT, "again", 5);   // the key file read again
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
        cmocka_unit_test(key_source_round_trips_every_type),
        cmocka_unit_test(key_source_errors_pass_through),
        cmocka_unit_test(key_source_registration_rules),
        cmocka_unit_test(unregistered_scheme_is_refused),
        cmocka_unit_test(concurrent_registration_has_one_winner),
        cmocka_unit_test(registry_is_bounded),
        cmocka_unit_test(cleanup_reaches_every_source),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
