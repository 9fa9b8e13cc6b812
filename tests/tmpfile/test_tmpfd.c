/*
 * tests/tmpfile/test_tmpfd.c - the descriptor-level encrypted temporary file
 * (sbx_tmpfd_*, issue 15), the C side of Python's strongbox.TemporaryFile.
 *
 *  - a differential test against a plain buffer: random pwrite/pread/truncate
 *    over every cipher (AES-128/192/256-GCM, ChaCha20-Poly1305) and several
 *    block sizes; the seed is printed, SBX_TEST_SEED=<n> replays it;
 *  - the descriptor is real, its bytes are ciphertext in the documented
 *    layout (slot = 12 + block + 16) with no plaintext marker;
 *  - a tampered byte on disk fails the read with SBX_EAUTH and returns nothing;
 *  - a child after fork gets SBX_EIO; bad arguments SBX_EINVAL.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/stat.h>
#include <sys/wait.h>

#include "strongbox/tmpfile.h"
#include "helpers.h"

static const enum sbx_tmpfile_cipher all_ciphers[] = {
    SBX_TMPFILE_AES_256_GCM, SBX_TMPFILE_CHACHA20_POLY1305, SBX_TMPFILE_AES_128_GCM,
    SBX_TMPFILE_AES_192_GCM};

static sbx_tmpfd *
new_with(enum sbx_tmpfile_cipher cipher, size_t block, unsigned cache)
{
    struct sbx_tmpfile_options o = SBX_TMPFILE_OPTIONS_INIT;
    sbx_tmpfd *t = NULL;
    o.cipher = cipher;
    o.block_size = block;
    o.cache_blocks = cache;
    assert_sbx_ok(sbx_tmpfd_new(&t, &o));
    return t;
}

#define MODEL_MAX (96 * 1024)

static void
check_all(sbx_tmpfd *t, const uint8_t *model, size_t size, uint8_t *scratch)
{
    size_t got = 0;
    assert_int_equal(sbx_tmpfd_size(t), size);
    assert_sbx_ok(sbx_tmpfd_pread(t, scratch, MODEL_MAX + 100, 0, &got));
    assert_int_equal(got, size);
    assert_memory_equal(scratch, model, size);
}

static void
one_random_op(sbx_tmpfd *t, uint8_t *model, size_t *size, uint8_t *scratch)
{
    size_t off = test_rand_below(MODEL_MAX / 2), len = test_rand_below(MODEL_MAX / 2), got = 0;
    switch (test_rand_below(4)) {
    case 0: // write
        test_rand_fill(scratch, len);
        assert_sbx_ok(sbx_tmpfd_pwrite(t, scratch, len, off, &got));
        assert_int_equal(got, len);
        if (off > *size)
            memset(model + *size, 0, off - *size);
        memcpy(model + off, scratch, len);
        if (len > 0 && off + len > *size)
            *size = off + len;
        break;
    case 1: // read
        assert_sbx_ok(sbx_tmpfd_pread(t, scratch, len, off, &got));
        assert_int_equal(got, off >= *size ? 0 : (len < *size - off ? len : *size - off));
        assert_memory_equal(scratch, model + off, got);
        break;
    case 2: // truncate (shrink or grow)
        assert_sbx_ok(sbx_tmpfd_truncate(t, off));
        if (off > *size)
            memset(model + *size, 0, off - *size);
        *size = off;
        break;
    default: // flush: the next reads verify from disk
        assert_sbx_ok(sbx_tmpfd_flush(t));
    }
}

static void
tmpfd_matches_a_plain_buffer_on_random_ops(void **state)
{
    (void)state;
    static const size_t blocks[] = {512, 4096, 16384};
    uint8_t *model = calloc(1, MODEL_MAX + 100), *scratch = malloc(MODEL_MAX + 100);
    assert_non_null(model);
    assert_non_null(scratch);
    for (size_t c = 0; c < 4; c++) {
        for (size_t b = 0; b < 3; b++) {
            sbx_tmpfd *t = new_with(all_ciphers[c], blocks[b], (unsigned)(1 + b * 3));
            size_t size = 0;
            assert_int_equal(sbx_tmpfd_block_size(t), blocks[b]);
            for (int i = 0; i < 300; i++)
                one_random_op(t, model, &size, scratch);
            check_all(t, model, size, scratch);
            sbx_tmpfd_free(t);
        }
    }
    free(model);
    free(scratch);
}

/* The raw bytes of the descriptor (its size, then its contents). */
static uint8_t *
disk_bytes(sbx_tmpfd *t, size_t *len)
{
    struct stat st;
    assert_sbx_ok(sbx_tmpfd_flush(t));
    assert_int_equal(fstat(sbx_tmpfd_fd(t), &st), 0);
    *len = (size_t)st.st_size;
    uint8_t *buf = malloc(*len + 1);
    assert_non_null(buf);
    assert_int_equal(pread(sbx_tmpfd_fd(t), buf, *len, 0), (ssize_t)*len);
    return buf;
}

static void
tmpfd_descriptor_holds_only_ciphertext_in_the_documented_layout(void **state)
{
    (void)state;
    static const char marker[] = "MARKER-plaintext-that-must-never-reach-the-disk";
    for (size_t c = 0; c < 4; c++) {
        sbx_tmpfd *t = new_with(all_ciphers[c], 4096, 0);
        assert_true(sbx_tmpfd_fd(t) >= 0);
        for (uint64_t off = 0; off < 3 * 4096; off += sizeof marker - 1)
            assert_sbx_ok(sbx_tmpfd_pwrite(t, marker, sizeof marker - 1, off, NULL));
        size_t len = 0;
        uint8_t *disk = disk_bytes(t, &len);
        assert_int_equal(len, 4 * (12 + 4096 + 16)); // the last write crosses into block 3
        assert_int_equal(sbx_tmpfd_disk_offset(t, 4096 * 2 + 5), 2 * (12 + 4096 + 16));
        assert_null(memmem(disk, len, marker, 8));
        sbx_buf raw = SBX_BUF_INIT;
        assert_sbx_ok(sbx_tmpfd_read_ciphertext(t, &raw));
        assert_int_equal(raw.len, len);
        assert_memory_equal(raw.ptr, disk, len);
        sbx_buf_dispose(&raw);
        free(disk);
        sbx_tmpfd_free(t);
    }
}

static void
tmpfd_detects_a_tampered_byte_and_returns_nothing(void **state)
{
    (void)state;
    uint8_t data[4096], back[4096];
    for (size_t c = 0; c < 4; c++) {
        sbx_tmpfd *t = new_with(all_ciphers[c], 4096, 0);
        size_t got = 1;
        test_rand_fill(data, sizeof data);
        assert_sbx_ok(sbx_tmpfd_pwrite(t, data, sizeof data, 0, NULL));
        assert_sbx_ok(sbx_tmpfd_flush(t));
        size_t pos = test_rand_below(12 + 4096 + 16);
        uint8_t byte;
        assert_int_equal(pread(sbx_tmpfd_fd(t), &byte, 1, (off_t)pos), 1);
        byte ^= 0x01;
        assert_int_equal(pwrite(sbx_tmpfd_fd(t), &byte, 1, (off_t)pos), 1);
        memset(back, 0xAA, sizeof back);
        assert_sbx_err(sbx_tmpfd_pread(t, back, sizeof back, 0, &got), SBX_EAUTH);
        assert_int_equal(got, 0);
        for (size_t i = 0; i < sizeof back; i++)
            assert_int_equal(back[i], 0);
        sbx_tmpfd_free(t);
    }
}

static void
tmpfd_refuses_misuse_and_a_forked_child(void **state)
{
    (void)state;
    struct sbx_tmpfile_options o = SBX_TMPFILE_OPTIONS_INIT;
    sbx_tmpfd *t = NULL;
    size_t got = 0;
    o.cipher = (enum sbx_tmpfile_cipher)9;
    assert_sbx_err(sbx_tmpfd_new(&t, &o), SBX_EINVAL);
    assert_null(t);
    assert_sbx_err(sbx_tmpfd_new(NULL, NULL), SBX_EINVAL);
    assert_sbx_ok(sbx_tmpfd_new(&t, NULL));
    assert_sbx_err(sbx_tmpfd_pread(t, NULL, 5, 0, &got), SBX_EINVAL);
    assert_sbx_err(sbx_tmpfd_pwrite(t, "x", 1, SBX_TMPFILE_MAX_SIZE, NULL), SBX_ETOOBIG);
    assert_sbx_ok(sbx_tmpfd_pwrite(t, "abc", 3, 0, NULL));
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char c;
        int a = sbx_tmpfd_pread(t, &c, 1, 0, &got) == SBX_EIO;
        int b = sbx_tmpfd_pwrite(t, "z", 1, 0, NULL) == SBX_EIO;
        _exit(a && b ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char back[3];
    assert_sbx_ok(sbx_tmpfd_pread(t, back, 3, 0, &got));
    assert_memory_equal(back, "abc", 3);
    sbx_tmpfd_free(t);
    sbx_tmpfd_free(NULL);
    assert_int_equal(sbx_tmpfd_fd(NULL), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tmpfd_matches_a_plain_buffer_on_random_ops),
        cmocka_unit_test(tmpfd_descriptor_holds_only_ciphertext_in_the_documented_layout),
        cmocka_unit_test(tmpfd_detects_a_tampered_byte_and_returns_nothing),
        cmocka_unit_test(tmpfd_refuses_misuse_and_a_forked_child),
    };
    test_seed_init("tmpfd");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
