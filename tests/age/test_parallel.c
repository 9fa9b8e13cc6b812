/*
 * tests/age/test_parallel.c - the parallel STREAM pipeline gives exactly the
 * bytes of the serial path, for sizes around chunk and slot boundaries, and
 * keeps the serial release semantics on tampered or truncated input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "strongbox/strongbox.h"
#include "age/payload.h"
#include "age/pipeline.h"
#include "helpers.h"

#define CHUNK SBX_AGE_CHUNK_SIZE
#define SLOT  (SBX_AGE_SLOT_CHUNKS * CHUNK)

static const size_t sizes[] = {
    0,
    1,
    CHUNK - 1,
    CHUNK,
    CHUNK + 1,
    SLOT - 1,
    SLOT,
    SLOT + 1,
    2 * SLOT - 1,
    2 * SLOT,
    2 * SLOT + CHUNK,
    5 * SLOT + 7,
    9 * SLOT,
    150 * CHUNK + 3,
};
static const unsigned thread_counts[] = {2, 3, 4, 8};

static sbx_identity *id;
static sbx_recipient *rcpt;

static int
setup(void **state)
{
    (void)state;
    test_seed_init("age/parallel");
    if (sbx_identity_generate(&id) != 0 || sbx_identity_to_recipient(&rcpt, id) != 0)
        return -1;
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    sbx_recipient_free(rcpt);
    sbx_identity_free(id);
    return 0;
}

/* Offset of the payload (just past the MAC line) in an age file. */
static size_t
payload_offset(const sbx_buf *file)
{
    const uint8_t *p = file->ptr;
    for (size_t i = 0; i + 4 < file->len; i++) {
        if (p[i] == '\n' && memcmp(p + i + 1, "---", 3) == 0) {
            const uint8_t *nl = memchr(p + i + 1, '\n', file->len - i - 1);
            return (size_t)(nl - p) + 1;
        }
    }
    fail_msg("no MAC line");
    return 0;
}

/* Encrypt data with a fixed key and nonce, writing in pieces of `step` bytes. */
static void
encrypt_keyed(sbx_buf *out, const uint8_t *data, size_t len, unsigned threads, size_t step)
{
    static const uint8_t key[16] = "YELLOW SUBMARINE";
    static const uint8_t nonce[16] = "0123456789abcdef";
    sbx_age_encrypt_options opts = SBX_AGE_ENCRYPT_OPTIONS_INIT;
    sbx_sink *snk, *enc;
    opts.threads = threads;
    assert_sbx_ok(sbx_sink_buf_new(&snk, out));
    assert_sbx_ok(sbx_age__encryptor_new_keyed(&enc, snk, &rcpt, 1, &opts, key, nonce));
    for (size_t off = 0; off < len; off += step)
        assert_sbx_ok(sbx_sink_write(enc, data + off, len - off < step ? len - off : step));
    assert_sbx_ok(sbx_sink_finish(enc));
    sbx_sink_free(enc);
    sbx_sink_free(snk);
}

static void
decrypt_threads(sbx_buf *out, const sbx_buf *file, unsigned threads, int expect)
{
    sbx_age_decrypt_options opts = SBX_AGE_DECRYPT_OPTIONS_INIT;
    opts.threads = threads;
    assert_sbx_err(sbx_age_decrypt_buf(out, file->ptr, file->len, &id, 1, &opts), expect);
}

static void
parallel_output_equals_serial_output(void **state)
{
    (void)state;
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        uint8_t *data = test_malloc_rand(sizes[s]);
        sbx_buf serial = SBX_BUF_INIT;
        encrypt_keyed(&serial, data, sizes[s], 1, 1 << 20);
        size_t off = payload_offset(&serial);
        size_t chunks = sizes[s] == 0 ? 1 : (sizes[s] + CHUNK - 1) / CHUNK;
        assert_int_equal(serial.len - off, 16 + sizes[s] + 16 * chunks);
        for (size_t t = 0; t < sizeof(thread_counts) / sizeof(thread_counts[0]); t++) {
            sbx_buf par = SBX_BUF_INIT, plain = SBX_BUF_INIT;
            size_t step = t % 2 ? 65537 : 1000003; /* odd write sizes too */
            encrypt_keyed(&par, data, sizes[s], thread_counts[t], step);
            assert_int_equal(par.len, serial.len);
            if (memcmp(par.ptr + off, serial.ptr + off, serial.len - off) != 0)
                fail_msg("size %zu, %u threads: payload differs from the serial one", sizes[s],
                         thread_counts[t]);
            decrypt_threads(&plain, &par, thread_counts[t], 0);
            assert_int_equal(plain.len, sizes[s]);
            assert_memory_equal(plain.ptr ? plain.ptr : (uint8_t *)"", data, sizes[s]);
            sbx_buf_dispose(&plain);
            decrypt_threads(&plain, &par, 1, 0);
            assert_int_equal(plain.len, sizes[s]);
            sbx_buf_dispose(&plain);
            sbx_buf_dispose(&par);
        }
        sbx_buf_dispose(&serial);
        free(data);
    }
}

/* A flipped byte in chunk k: the chunks before it, and nothing else, are released. */
static void
parallel_decrypt_releases_only_verified_prefix(void **state)
{
    (void)state;
    size_t len = 3 * SLOT + 1234;
    uint8_t *data = test_malloc_rand(len);
    sbx_buf file = SBX_BUF_INIT;
    encrypt_keyed(&file, data, len, 2, 1 << 20);
    size_t off = payload_offset(&file) + 16;
    size_t nchunks = (len + CHUNK - 1) / CHUNK;
    for (int round = 0; round < 6; round++) {
        size_t k = test_rand_below(nchunks);
        size_t pos =
            off + k * SBX_AGE_SEALED_CHUNK_SIZE +
            test_rand_below(k == nchunks - 1 ? (len % CHUNK) + 16 : SBX_AGE_SEALED_CHUNK_SIZE);
        for (unsigned t = 1; t <= 4; t++) {
            sbx_buf plain = SBX_BUF_INIT;
            file.ptr[pos] ^= 0x20;
            decrypt_threads(&plain, &file, t, SBX_EPAYLOAD);
            file.ptr[pos] ^= 0x20;
            assert_int_equal(plain.len, k * CHUNK);
            if (plain.len > 0)
                assert_memory_equal(plain.ptr, data, plain.len);
            sbx_buf_dispose(&plain);
        }
    }
    sbx_buf_dispose(&file);
    free(data);
}

/* Cut the file after a whole chunk: every chunk is released, then the truncation is reported. */
static void
parallel_decrypt_detects_truncation_at_chunk_boundary(void **state)
{
    (void)state;
    size_t len = 2 * SLOT + 10;
    uint8_t *data = test_malloc_rand(len);
    sbx_buf file = SBX_BUF_INIT;
    encrypt_keyed(&file, data, len, 2, 1 << 20);
    size_t off = payload_offset(&file) + 16;
    size_t cuts[] = {SBX_AGE_SLOT_CHUNKS, 2 * SBX_AGE_SLOT_CHUNKS, 5};
    for (size_t c = 0; c < 3; c++) {
        sbx_buf cut = SBX_BUF_INIT, plain = SBX_BUF_INIT;
        assert_sbx_ok(sbx_buf_append(&cut, file.ptr, off + cuts[c] * SBX_AGE_SEALED_CHUNK_SIZE));
        decrypt_threads(&plain, &cut, 2, SBX_EPAYLOAD);
        assert_int_equal(plain.len, cuts[c] * CHUNK);
        assert_memory_equal(plain.ptr, data, plain.len);
        assert_non_null(strstr(sbx_error_last()->message, "truncated"));
        sbx_buf_dispose(&plain);
        sbx_buf_dispose(&cut);
    }
    sbx_buf_dispose(&file);
    free(data);
}

/* Bytes after a full final chunk: everything is released, then the error. */
static void
parallel_decrypt_reports_trailing_data_after_release(void **state)
{
    (void)state;
    size_t len = 2 * SLOT;
    uint8_t *data = test_malloc_rand(len);
    sbx_buf file = SBX_BUF_INIT, plain = SBX_BUF_INIT;
    encrypt_keyed(&file, data, len, 2, 1 << 20);
    assert_sbx_ok(sbx_buf_append(&file, "x", 1));
    decrypt_threads(&plain, &file, 3, SBX_EPAYLOAD);
    assert_int_equal(plain.len, len);
    assert_memory_equal(plain.ptr, data, len);
    assert_non_null(strstr(sbx_error_last()->message, "trailing"));
    sbx_buf_dispose(&plain);
    sbx_buf_dispose(&file);
    free(data);
}

static void
default_threads_is_positive_and_bounded(void **state)
{
    (void)state;
    unsigned n = sbx_age__default_threads();
    assert_true(n >= 1 && n <= SBX_AGE_MAX_THREADS);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parallel_output_equals_serial_output),
        cmocka_unit_test(parallel_decrypt_releases_only_verified_prefix),
        cmocka_unit_test(parallel_decrypt_detects_truncation_at_chunk_boundary),
        cmocka_unit_test(parallel_decrypt_reports_trailing_data_after_release),
        cmocka_unit_test(default_threads_is_positive_and_bounded),
    };
    return cmocka_run_group_tests_name("age/parallel", tests, setup, teardown);
}
