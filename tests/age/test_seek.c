/*
 * tests/age/test_seek.c - random access with sbx_age_reader: random ranges
 * (across chunk boundaries, the last chunk, empty and past-the-end ranges)
 * equal the plaintext; tampering, truncation and extension are detected and
 * release nothing from the bad chunk.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "strongbox/strongbox.h"
#include "helpers.h"

#define CHUNK  SBX_AGE_CHUNK_SIZE
#define SEALED SBX_AGE_SEALED_CHUNK_SIZE

static sbx_identity *id;
static sbx_recipient *rcpt;
static char dir[] = "/tmp/sbx-seek-XXXXXX";

static int
setup(void **state)
{
    (void)state;
    test_seed_init("age/seek");
    if (mkdtemp(dir) == NULL)
        return -1;
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
    rmdir(dir);
    return 0;
}

/* Encrypt data into a new file; returns an fd open for reading (file already unlinked). */
static int
encrypted_fd(const uint8_t *data, size_t len, bool armor, sbx_buf *file_out)
{
    sbx_age_encrypt_options opts = SBX_AGE_ENCRYPT_OPTIONS_INIT;
    sbx_buf file = SBX_BUF_INIT;
    char path[64];
    opts.armor = armor;
    assert_sbx_ok(sbx_age_encrypt_buf(&file, data, len, &rcpt, 1, &opts));
    snprintf(path, sizeof(path), "%s/f.age", dir);
    assert_sbx_ok(sbx_atomic_write_file(path, file.ptr, file.len, 0600));
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    unlink(path);
    if (file_out != NULL)
        *file_out = file;
    else
        sbx_buf_dispose(&file);
    return fd;
}

static void
check_range(sbx_age_reader *r, const uint8_t *data, size_t size, uint64_t off, size_t len)
{
    uint8_t *buf = malloc(len + 1);
    size_t got = 99;
    assert_sbx_ok(sbx_age_reader_pread(r, buf, len, off, &got));
    size_t want = off >= size ? 0 : (size - off < len ? size - off : len);
    if (got != want)
        fail_msg("range %llu+%zu of %zu: got %zu bytes, want %zu", (unsigned long long)off, len,
                 size, got, want);
    if (want > 0 && memcmp(buf, data + off, want) != 0)
        fail_msg("range %llu+%zu of %zu: wrong bytes", (unsigned long long)off, len, size);
    free(buf);
}

static void
random_ranges_equal_plaintext(void **state)
{
    (void)state;
    const size_t sizes[] = {0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 100, 20 * CHUNK};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        size_t size = sizes[s];
        uint8_t *data = test_malloc_rand(size);
        sbx_age_reader *r;
        uint64_t got_size;
        int fd = encrypted_fd(data, size, false, NULL);
        assert_sbx_ok(sbx_age_reader_open(&r, fd, &id, 1));
        assert_sbx_ok(sbx_age_reader_size(r, &got_size));
        assert_int_equal(got_size, size);
        /* Fixed edge cases: empty ranges, chunk boundaries, the end, past the end. */
        check_range(r, data, size, 0, 0);
        check_range(r, data, size, 0, size + 10);
        check_range(r, data, size, size, 5);
        check_range(r, data, size, size + 1000, 5);
        if (size > CHUNK) {
            check_range(r, data, size, CHUNK - 3, 6);
            check_range(r, data, size, CHUNK, 1);
            check_range(r, data, size, size - 1, 1);
        }
        for (int i = 0; i < 200; i++) {
            uint64_t off = test_rand_below(size + 2);
            size_t len = test_rand_below(i % 4 == 0 ? 3 * CHUNK : 300);
            check_range(r, data, size, off, len);
        }
        sbx_age_reader_free(r);
        close(fd);
        free(data);
    }
}

static void
tampered_chunk_releases_nothing_from_it(void **state)
{
    (void)state;
    size_t size = 4 * CHUNK + 500;
    uint8_t *data = test_malloc_rand(size), *buf = malloc(3 * CHUNK);
    sbx_buf file = SBX_BUF_INIT;
    sbx_age_reader *r;
    size_t got;
    int fd = encrypted_fd(data, size, false, &file);
    size_t payload = file.len - (size + 5 * 16); /* start of chunk 0 */
    uint8_t flip = (uint8_t)(file.ptr[payload + 2 * SEALED + 7] ^ 0x01);
    assert_int_equal(pwrite(fd, &flip, 1, (off_t)(payload + 2 * SEALED + 7)), 1);
    assert_sbx_ok(sbx_age_reader_open(&r, fd, &id, 1));
    /* Ranges that avoid chunk 2 still work. */
    check_range(r, data, size, 0, 2 * CHUNK);
    check_range(r, data, size, 3 * CHUNK, CHUNK + 500);
    /* A range across chunks 1-3 fails and returns nothing. */
    memset(buf, 0xAA, 3 * CHUNK);
    assert_sbx_err(sbx_age_reader_pread(r, buf, 2 * CHUNK, CHUNK + 10, &got), SBX_EPAYLOAD);
    assert_int_equal(got, 0);
    for (size_t i = 0; i < 2 * CHUNK; i++) {
        if (buf[i] != 0 && buf[i] != 0xAA)
            fail_msg("byte %zu of a failed read was left in the buffer", i);
    }
    memset(buf, 0xAA, 3 * CHUNK);
    assert_sbx_err(sbx_age_reader_pread(r, buf, 1, 2 * CHUNK + 5, &got), SBX_EPAYLOAD);
    assert_int_equal(got, 0);
    assert_true(buf[0] == 0xAA);
    sbx_age_reader_free(r);
    close(fd);
    sbx_buf_dispose(&file);
    free(buf);
    free(data);
}

static void
truncated_or_extended_file_fails_size_check(void **state)
{
    (void)state;
    size_t size = 3 * CHUNK; /* the final chunk is full: a cut at a boundary looks plausible */
    uint8_t *data = test_malloc_rand(size), one = 0;
    sbx_age_reader *r;
    uint64_t got_size;
    size_t got;
    struct stat st;
    int fd = encrypted_fd(data, size, false, NULL);
    assert_int_equal(fstat(fd, &st), 0);
    const off_t full = st.st_size;
    const off_t cuts[] = {full - SEALED, full - 1, full - SEALED + 15};
    for (size_t c = 0; c < 3; c++) {
        assert_int_equal(ftruncate(fd, cuts[c]), 0);
        assert_sbx_ok(sbx_age_reader_open(&r, fd, &id, 1));
        assert_sbx_err(sbx_age_reader_size(r, &got_size), SBX_EPAYLOAD);
        assert_sbx_err(sbx_age_reader_pread(r, &one, 1, 0, &got), SBX_EPAYLOAD);
        sbx_age_reader_free(r);
    }
    /* Restore, then extend by one byte and by one fake chunk. */
    sbx_age_reader_free(NULL);
    close(fd);
    fd = encrypted_fd(data, size, false, NULL);
    assert_int_equal(pwrite(fd, "z", 1, full), 1);
    assert_sbx_ok(sbx_age_reader_open(&r, fd, &id, 1));
    assert_sbx_err(sbx_age_reader_size(r, &got_size), SBX_EPAYLOAD);
    sbx_age_reader_free(r);
    close(fd);
    free(data);
}

static void
reader_refuses_armor_pipes_and_wrong_keys(void **state)
{
    (void)state;
    uint8_t data[100] = {1, 2, 3};
    sbx_age_reader *r = NULL;
    sbx_identity *other;
    int fd = encrypted_fd(data, sizeof(data), true, NULL);
    assert_sbx_err(sbx_age_reader_open(&r, fd, &id, 1), SBX_EINVAL);
    assert_null(r);
    close(fd);
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_sbx_err(sbx_age_reader_open(&r, p[0], &id, 1), SBX_EINVAL);
    close(p[0]);
    close(p[1]);
    fd = encrypted_fd(data, sizeof(data), false, NULL);
    assert_sbx_ok(sbx_identity_generate(&other));
    assert_sbx_err(sbx_age_reader_open(&r, fd, &other, 1), SBX_ENOMATCH);
    sbx_identity_free(other);
    close(fd);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(random_ranges_equal_plaintext),
        cmocka_unit_test(tampered_chunk_releases_nothing_from_it),
        cmocka_unit_test(truncated_or_extended_file_fails_size_check),
        cmocka_unit_test(reader_refuses_armor_pipes_and_wrong_keys),
    };
    return cmocka_run_group_tests_name("age/seek", tests, setup, teardown);
}
