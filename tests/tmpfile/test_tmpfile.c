/*
 * tests/tmpfile/test_tmpfile.c - encrypted temporary files (issue 5).
 *
 *  - a differential test: thousands of random sequences of fwrite, fread,
 *    fseek (also past the end), ftell, fflush, rewind and truncate, run on
 *    sbx_tmpfile_open() and on a plain tmpfile(), every result compared; over
 *    both ciphers, block sizes 512..16384 and caches of 1..8 blocks. The seed
 *    is printed; SBX_TEST_SEED=<n> replays it.
 *  - no plaintext on disk (recognisable text and all-zero data);
 *  - tamper loops on the backing file (every byte of a block, swapped
 *    blocks, a block rolled back to an older version, a truncated backing
 *    file): the next read fails with EIO and returns no bytes;
 *  - fork: the child cannot use the file, the parent's file is unchanged;
 *  - the key is not in a core dump of a process using the file (gcore).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "strongbox/memory.h"
#include "strongbox/random.h"
#include "strongbox/tmpfile.h"
#include "tmpfile/tmpfile.h"
#include "helpers.h"

static const enum sbx_tmpfile_cipher ciphers[] = {SBX_TMPFILE_AES_256_GCM,
                                                  SBX_TMPFILE_CHACHA20_POLY1305};

static FILE *
open_with(enum sbx_tmpfile_cipher cipher, size_t block, unsigned cache)
{
    struct sbx_tmpfile_options o = SBX_TMPFILE_OPTIONS_INIT;
    o.cipher = cipher;
    o.block_size = block;
    o.cache_blocks = cache;
    FILE *f = sbx_tmpfile_open(&o);
    if (f == NULL)
        print_error("sbx_tmpfile_open: %s\n", sbx_error_last()->message);
    assert_non_null(f);
    return f;
}

/* The raw bytes on disk (also writes back and empties the block cache). */
static void
disk_bytes(FILE *f, sbx_buf *out)
{
    out->len = 0;
    assert_sbx_ok(sbx_tmpfile_read_ciphertext(f, out));
}

static void
evict(FILE *f)
{
    sbx_buf scratch = SBX_BUF_INIT;
    disk_bytes(f, &scratch);
    sbx_buf_dispose(&scratch);
}

/* fread of n bytes at off must fail with EIO and deliver nothing. */
static void
assert_read_fails(FILE *f, long off, size_t n)
{
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    clearerr(f);
    assert_int_equal(fseek(f, off, SEEK_SET), 0);
    errno = 0;
    assert_int_equal(fread(buf, 1, n, f), 0);
    assert_true(ferror(f));
    assert_int_equal(errno, EIO);
    clearerr(f);
    free(buf);
}

/*
 * fread of n bytes at off, over a damaged block at bad (>= off): stdio may
 * deliver the good blocks before it, never a byte from bad on, then EIO.
 */
static void
assert_read_stops_before(FILE *f, long off, size_t n, long bad, const uint8_t *want)
{
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    clearerr(f);
    assert_int_equal(fseek(f, off, SEEK_SET), 0);
    errno = 0;
    size_t got = fread(buf, 1, n, f);
    assert_true(got <= (size_t)(bad - off));
    assert_memory_equal(buf, want, got);
    assert_true(ferror(f));
    assert_int_equal(errno, EIO);
    clearerr(f);
    free(buf);
}

static void
assert_read_equals(FILE *f, long off, const uint8_t *want, size_t n)
{
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    clearerr(f);
    assert_int_equal(fseek(f, off, SEEK_SET), 0);
    assert_int_equal(fread(buf, 1, n, f), n);
    assert_memory_equal(buf, want, n);
    free(buf);
}

/* ---- basics ---- */

static void
tmpfile_round_trips_like_stdio(void **state)
{
    (void)state;
    char buf[64] = {0};
    FILE *f = sbx_tmpfile();
    assert_non_null(f);
    assert_true(sbx_tmpfile_is_encrypted(f));
    assert_false(sbx_tmpfile_is_encrypted(stdout));
    assert_int_equal(fputs("hello, encrypted world\n", f), 1);
    assert_int_equal(ftell(f), 23);
    rewind(f);
    assert_non_null(fgets(buf, sizeof buf, f));
    assert_string_equal(buf, "hello, encrypted world\n");
    assert_int_equal(fgetc(f), EOF);
    assert_true(feof(f));
    // Past the end: the gap reads as zeros.
    assert_int_equal(fseek(f, 10000, SEEK_SET), 0);
    assert_int_equal(fputc('Z', f), 'Z');
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    assert_int_equal(ftell(f), 10001);
    uint8_t hole[100];
    assert_int_equal(fseek(f, 5000, SEEK_SET), 0);
    assert_int_equal(fread(hole, 1, sizeof hole, f), sizeof hole);
    for (size_t i = 0; i < sizeof hole; i++)
        assert_int_equal(hole[i], 0);
    assert_int_equal(fclose(f), 0);
}

/* A write far past the end costs memory for the blocks written, not for the hole skipped. */
static void
tmpfile_sparse_write_far_past_the_end_stays_small(void **state)
{
    (void)state;
    struct rusage before, after;
    const off_t far = (off_t)1 << 38; // 256 GiB: a counter per block would be 512 MiB
    FILE *f = sbx_tmpfile();
    assert_non_null(f);
    assert_int_equal(getrusage(RUSAGE_SELF, &before), 0);
    assert_int_equal(fseeko(f, far, SEEK_SET), 0);
    assert_int_equal(fputc('Q', f), 'Q');
    assert_int_equal(fflush(f), 0);
    assert_int_equal(getrusage(RUSAGE_SELF, &after), 0);
    assert_true(after.ru_maxrss - before.ru_maxrss < 64 * 1024); // KiB
    assert_int_equal(fseeko(f, far - 3, SEEK_SET), 0);
    uint8_t back[4];
    assert_int_equal(fread(back, 1, 4, f), 4);
    assert_memory_equal(back, "\0\0\0Q", 4);
    assert_int_equal(fseeko(f, 0, SEEK_END), 0);
    assert_true(ftello(f) == far + 1);
    // Truncating back drops the far block: growing again reads zeros there.
    assert_sbx_ok(sbx_tmpfile_truncate(f, 10));
    assert_sbx_ok(sbx_tmpfile_truncate(f, far + 1));
    assert_int_equal(fseeko(f, far, SEEK_SET), 0);
    assert_int_equal(fgetc(f), 0);
    assert_int_equal(fclose(f), 0);
}

static void
tmpfile_truncate_shrinks_and_grows_with_zeros(void **state)
{
    (void)state;
    uint8_t data[10000], back[10000];
    test_rand_fill(data, sizeof data);
    FILE *f = open_with(SBX_TMPFILE_AES_256_GCM, 1024, 2);
    assert_int_equal(fwrite(data, 1, sizeof data, f), sizeof data);
    assert_sbx_ok(sbx_tmpfile_truncate(f, 3000));
    assert_int_equal(ftell(f), 10000); // like ftruncate(2): the position stays
    assert_sbx_ok(sbx_tmpfile_truncate(f, 7000));
    rewind(f);
    assert_int_equal(fread(back, 1, sizeof back, f), 7000);
    assert_memory_equal(back, data, 3000);
    for (size_t i = 3000; i < 7000; i++)
        assert_int_equal(back[i], 0);
    sbx_buf disk = SBX_BUF_INIT;
    disk_bytes(f, &disk);
    assert_int_equal(disk.len, 3 * SBX_TMPFILE__SLOT(1024)); // blocks 3.. are holes, not stored
    assert_sbx_ok(sbx_tmpfile_truncate(f, 0));
    disk_bytes(f, &disk);
    assert_int_equal(disk.len, 0);
    sbx_buf_dispose(&disk);
    assert_sbx_err(sbx_tmpfile_truncate(f, SBX_TMPFILE_MAX_SIZE + 1), SBX_ETOOBIG);
    assert_sbx_err(sbx_tmpfile_truncate(stdout, 0), SBX_EINVAL);
    sbx_buf other = SBX_BUF_INIT;
    assert_sbx_err(sbx_tmpfile_read_ciphertext(stdin, &other), SBX_EINVAL);
    fclose(f);
}

static void
tmpfile_rejects_bad_options(void **state)
{
    (void)state;
    struct sbx_tmpfile_options o = SBX_TMPFILE_OPTIONS_INIT;
    o.block_size = 1000;
    errno = 0;
    assert_null(sbx_tmpfile_open(&o));
    assert_int_equal(errno, EINVAL);
    assert_int_equal(sbx_error_last()->code, SBX_EINVAL);
    o.block_size = 256;
    assert_null(sbx_tmpfile_open(&o));
    o.block_size = 2 * 1024 * 1024;
    assert_null(sbx_tmpfile_open(&o));
    o.block_size = 0;
    o.version = 99;
    assert_null(sbx_tmpfile_open(&o));
    o.version = SBX_TMPFILE_OPTIONS_VERSION;
    o.cipher = (enum sbx_tmpfile_cipher)7;
    assert_null(sbx_tmpfile_open(&o));
    o.cipher = SBX_TMPFILE_AES_256_GCM;
    o.cache_blocks = SBX_TMPFILE_MAX_CACHE + 1;
    assert_null(sbx_tmpfile_open(&o));
    o.cache_blocks = 0;
    o.dir = "/nonexistent/strongbox";
    assert_null(sbx_tmpfile_open(&o));
    assert_int_equal(sbx_error_last()->code, SBX_EIO);
    assert_true(test_contains(sbx_error_last()->message, "/nonexistent/strongbox"));
}

/* ---- differential test against tmpfile(3) ---- */

struct pair {
    FILE *s, *p;
    int dir; // 0 none, 1 reading, 2 writing
    size_t block;
};

static char diff_where[160]; // the sequence and operation being compared, for failure messages

/* sbx_value must equal plain_value; on failure print where, then fail. */
#define diff_assert(sbx_value, plain_value)                                                        \
    do {                                                                                           \
        long s_ = (long)(sbx_value), p_ = (long)(plain_value);                                     \
        if (s_ != p_) {                                                                            \
            print_error("%s: %s gives %ld, tmpfile(3) gives %ld (last error: %s; replay with "     \
                        "SBX_TEST_SEED=%" PRIu64 ")\n",                                            \
                        diff_where, #sbx_value, s_, p_, sbx_error_last()->message, test_rng_seed); \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

#define diff_assert_mem(a, b, n)                                                                   \
    do {                                                                                           \
        if (memcmp((a), (b), (n)) != 0) {                                                          \
            print_error("%s: bytes differ (replay with SBX_TEST_SEED=%" PRIu64 ")\n", diff_where,  \
                        test_rng_seed);                                                            \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

static void diff_check_contents(struct pair *x, uint8_t *a, uint8_t *b);

static void
switch_dir(struct pair *x, int dir)
{
    if (x->dir != 0 && x->dir != dir) { // C11 7.21.5.3: seek between reading and writing
        diff_assert(fseek(x->s, 0, SEEK_CUR), fseek(x->p, 0, SEEK_CUR));
    }
    x->dir = dir;
}

static long
cur_size(FILE *f)
{
    long pos = ftell(f), end;
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    end = ftell(f);
    assert_int_equal(fseek(f, pos, SEEK_SET), 0);
    return end;
}

static size_t
rand_len(size_t block)
{
    switch (test_rand_below(6)) {
    case 0:
        return test_rand_below(16);
    case 1:
        return block; // exactly one block
    case 2:
        return block * (1 + test_rand_below(3)) + test_rand_below(3) - 1;
    case 3:
        return test_rand_below(8 * block);
    default:
        return test_rand_below(2 * block);
    }
}

static void
diff_write(struct pair *x, uint8_t *a, size_t n)
{
    switch_dir(x, 2);
    test_rand_fill(a, n);
    if (ftell(x->p) + (long)n > 40 * (long)x->block) { // keep files small
        diff_assert(fseek(x->s, 0, SEEK_SET), fseek(x->p, 0, SEEK_SET));
    }
    diff_assert(fwrite(a, 1, n, x->s), fwrite(a, 1, n, x->p));
}

static void
diff_read(struct pair *x, uint8_t *a, uint8_t *b, size_t n)
{
    switch_dir(x, 1);
    size_t ns = fread(a, 1, n, x->s), np = fread(b, 1, n, x->p);
    if (getenv("SBX_TEST_TRACE") != NULL && ns == np && memcmp(a, b, ns) != 0) {
        for (size_t i = 0; i < ns && i < 16; i++)
            print_message("%02x/%02x ", a[i], b[i]);
        print_message("\n");
        diff_check_contents(x, a, b);
    }
    diff_assert(ns, np);
    diff_assert_mem(a, b, ns);
    diff_assert(!!feof(x->s), !!feof(x->p));
    diff_assert(!!ferror(x->s), !!ferror(x->p));
}

static void
diff_seek(struct pair *x)
{
    int whence = (int)test_rand_below(3);
    long pos = ftell(x->p), size = cur_size(x->p);
    long off = (long)test_rand_below((size_t)size + 3 * x->block);
    if (whence == SEEK_CUR)
        off -= pos;
    if (whence == SEEK_END)
        off -= size;
    snprintf(diff_where + strlen(diff_where), 40, " (%ld, %d)", off, whence);
    diff_assert(fseek(x->s, off, whence), fseek(x->p, off, whence));
    x->dir = 0;
}

static void
diff_truncate(struct pair *x)
{
    long size = cur_size(x->p); // seeks, so clears EOF: do the same on both
    diff_assert(cur_size(x->s), size);
    uint64_t to = test_rand_below((size_t)size + 2 * x->block);
    snprintf(diff_where + strlen(diff_where), 40, " (%llu)", (unsigned long long)to);
    assert_int_equal(fflush(x->p), 0);
    assert_int_equal(ftruncate(fileno(x->p), (off_t)to), 0);
    assert_sbx_ok(sbx_tmpfile_truncate(x->s, to));
}

static void
diff_misc(struct pair *x)
{
    diff_assert(ftell(x->s), ftell(x->p));
    if (test_rand_below(2) == 0) {
        strcat(diff_where, " (fflush)");
        diff_assert(fflush(x->s), fflush(x->p));
    } else if (test_rand_below(2) == 0) {
        strcat(diff_where, " (rewind)");
        rewind(x->s);
        rewind(x->p);
        x->dir = 0;
    } else {
        strcat(diff_where, " (evict)");
        evict(x->s); // flushes stdio, writes back and empties the cache
        assert_int_equal(fflush(x->p), 0);
    }
}

/* Flush both and compare the whole contents through the block layer (trace mode). */
static void
diff_check_contents(struct pair *x, uint8_t *a, uint8_t *b)
{
    assert_int_equal(fflush(x->s), 0);
    assert_int_equal(fflush(x->p), 0);
    struct stat st;
    assert_int_equal(fstat(fileno(x->p), &st), 0);
    long n = sbx_tmpfile__pread(x->s, a, (size_t)st.st_size + 1, 0);
    diff_assert(n, st.st_size);
    assert_int_equal(pread(fileno(x->p), b, (size_t)n, 0), n);
    for (long i = 0; i < n; i++) {
        if (a[i] != b[i]) {
            print_error("contents differ first at byte %ld (block %ld)\n", i, i / (long)x->block);
            fail();
        }
    }
}

static void
diff_op(struct pair *x, uint8_t *a, uint8_t *b, size_t cap, int seq, int op)
{
    static const char *const names[] = {"fwrite", "fwrite", "fwrite", "fread",    "fread",
                                        "fread",  "fseek",  "fseek",  "truncate", "misc"};
    size_t n = rand_len(x->block), kind = test_rand_below(10);
    if (n > cap)
        n = cap;
    snprintf(diff_where, sizeof diff_where, "sequence %d (block %zu) op %d: %s of %zu at %ld", seq,
             x->block, op, names[kind], n, ftell(x->p));
    if (kind < 3)
        diff_write(x, a, n);
    else if (kind < 6)
        diff_read(x, a, b, n);
    else if (kind < 8)
        diff_seek(x);
    else if (kind == 8)
        diff_truncate(x);
    else
        diff_misc(x);
    if (getenv("SBX_TEST_TRACE") != NULL) { // replay aid: print every operation, check contents
        print_message("%s -> %ld eof %d/%d\n", diff_where, ftell(x->p), !!feof(x->s), !!feof(x->p));
        if (strcmp(getenv("SBX_TEST_TRACE"), "2") != 0)
            diff_check_contents(x, a, b);
    }
    diff_assert(ftell(x->s), ftell(x->p));
}

static void
diff_compare_all(struct pair *x, uint8_t *a, uint8_t *b)
{
    long size = cur_size(x->p);
    snprintf(diff_where, sizeof diff_where, "final comparison of %ld bytes", size);
    diff_assert(cur_size(x->s), size);
    rewind(x->s);
    rewind(x->p);
    diff_assert(fread(a, 1, (size_t)size, x->s), (size_t)size);
    diff_assert(fread(b, 1, (size_t)size, x->p), (size_t)size);
    diff_assert_mem(a, b, (size_t)size);
}

static void
tmpfile_matches_plain_tmpfile_on_random_ops(void **state)
{
    (void)state;
    static const size_t blocks[] = {512, 1024, 4096, 16384};
    static const unsigned caches[] = {1, 2, 8};
    const int sequences = 2400, ops = 40;
    size_t cap = 64 * 16384;
    uint8_t *a = malloc(cap), *b = malloc(cap);
    assert_true(a != NULL && b != NULL);
    for (int s = 0; s < sequences; s++) {
        struct pair x = {0};
        x.block = blocks[test_rand_below(4)];
        x.s = open_with(ciphers[test_rand_below(2)], x.block, caches[test_rand_below(3)]);
        x.p = tmpfile();
        assert_non_null(x.p);
        for (int i = 0; i < ops; i++)
            diff_op(&x, a, b, cap, s, i);
        diff_compare_all(&x, a, b);
        fclose(x.s);
        fclose(x.p);
    }
    print_message("[ INFO     ] %d random sequences of %d operations matched tmpfile(3)\n",
                  sequences, ops);
    free(a);
    free(b);
}

/* Large transfers cross the bulk path's staging limit (256 KiB per system call). */
static void
tmpfile_handles_large_transfers(void **state)
{
    (void)state;
    size_t len = 3 * 1024 * 1024 + 777;
    uint8_t *data = test_malloc_rand(len), *back = malloc(len);
    for (size_t c = 0; c < 2; c++) {
        FILE *f = open_with(ciphers[c], c ? 512 : 65536, 0);
        assert_int_equal(fwrite(data, 1, len, f), len);
        assert_read_equals(f, 0, data, len);
        rewind(f);
        size_t got = 0, step = 1;
        while (got < len) { // odd-sized reads through stdio's buffer
            size_t n = fread(back + got, 1, step, f);
            got += n;
            step = step * 3 + 1;
            if (n == 0)
                break;
        }
        assert_int_equal(got, len);
        assert_memory_equal(back, data, len);
        fclose(f);
    }
    free(data);
    free(back);
}

/* ---- what reaches the disk ---- */

static void
tmpfile_writes_no_plaintext_to_disk(void **state)
{
    (void)state;
    for (size_t c = 0; c < 2; c++) {
        FILE *f = open_with(ciphers[c], 0, 0);
        for (int i = 0; i < 5000; i++)
            fprintf(f, "SECRET-LINE-%06d: the quick brown fox jumps over the lazy dog\n", i);
        static const uint8_t zeros[65536];
        assert_int_equal(fwrite(zeros, 1, sizeof zeros, f), sizeof zeros);
        long size = ftell(f);
        sbx_buf disk = SBX_BUF_INIT;
        disk_bytes(f, &disk);
        size_t blocks = ((size_t)size + 4095) / 4096;
        assert_int_equal(disk.len, blocks * SBX_TMPFILE__SLOT(4096));
        assert_null(memmem(disk.ptr, disk.len, "SECRET", 6));
        assert_null(memmem(disk.ptr, disk.len, "quick brown", 11));
        assert_null(memmem(disk.ptr, disk.len, zeros, 24)); // zero blocks are encrypted too
        // Every block carries its own nonce: no two slots start alike.
        for (size_t i = 1; i < blocks; i++)
            assert_memory_not_equal(disk.ptr, disk.ptr + i * SBX_TMPFILE__SLOT(4096), 12);
        // Rewriting a block uses a fresh nonce (never the same keystream twice).
        uint8_t first[4096 + 28];
        memcpy(first, disk.ptr, sizeof first);
        assert_int_equal(fseek(f, 0, SEEK_SET), 0);
        assert_int_equal(fputs("SECRET-LINE-000000", f), 1);
        disk_bytes(f, &disk);
        assert_memory_not_equal(first, disk.ptr, 12);
        assert_memory_not_equal(first + 12, disk.ptr + 12, 16);
        sbx_buf_dispose(&disk);
        fclose(f);
    }
}

static int
dir_entries(const char *path)
{
    int n = 0;
    DIR *d = opendir(path);
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static void
tmpfile_backing_file_is_nameless_and_private(void **state)
{
    (void)state;
    char dir[] = "/tmp/sbx-tmpfile-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    for (int fallback = 0; fallback < 2; fallback++) {
        sbx_tmpfile__force_fallback(fallback);
        struct sbx_tmpfile_options o = SBX_TMPFILE_OPTIONS_INIT;
        o.dir = dir;
        FILE *f = sbx_tmpfile_open(&o);
        assert_non_null(f);
        assert_int_equal(fileno(f), -1);
        fputs("data", f);
        evict(f);
        struct stat st;
        int fd = sbx_tmpfile__fd(f);
        assert_true(fd >= 0);
        assert_int_equal(fstat(fd, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(st.st_nlink, 0);
        assert_int_equal(dir_entries(dir), 0);
        assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        fclose(f);
    }
    sbx_tmpfile__force_fallback(false);
    // $TMPDIR is the default directory.
    char *old = getenv("TMPDIR") ? strdup(getenv("TMPDIR")) : NULL;
    setenv("TMPDIR", dir, 1);
    sbx_tmpfile__force_fallback(true);
    FILE *f = sbx_tmpfile();
    assert_non_null(f);
    char link[64], target[512] = {0};
    snprintf(link, sizeof link, "/proc/self/fd/%d", sbx_tmpfile__fd(f));
    assert_true(readlink(link, target, sizeof target - 1) > 0);
    assert_true(strncmp(target, dir, strlen(dir)) == 0);
    assert_true(test_contains(target, "(deleted)"));
    fclose(f);
    sbx_tmpfile__force_fallback(false);
    if (old != NULL)
        setenv("TMPDIR", old, 1);
    else
        unsetenv("TMPDIR");
    free(old);
    assert_int_equal(rmdir(dir), 0);
}

/* ---- tampering ---- */

static void
flip_disk_byte(FILE *f, off_t off)
{
    uint8_t c;
    int fd = sbx_tmpfile__fd(f);
    assert_int_equal(pread(fd, &c, 1, off), 1);
    c ^= 0x01;
    assert_int_equal(pwrite(fd, &c, 1, off), 1);
}

static void
tmpfile_detects_every_tampered_byte(void **state)
{
    (void)state;
    const size_t block = 512, slot = SBX_TMPFILE__SLOT(512);
    uint8_t data[4 * 512];
    test_rand_fill(data, sizeof data);
    for (size_t c = 0; c < 2; c++) {
        FILE *f = open_with(ciphers[c], block, 2);
        assert_int_equal(fwrite(data, 1, sizeof data, f), sizeof data);
        evict(f);
        for (size_t i = 0; i < slot; i++) { // nonce, ciphertext and tag of block 2
            off_t off = (off_t)(2 * slot + i);
            flip_disk_byte(f, off);
            assert_read_fails(f, 2 * 512, 512);     // the whole block, bulk path
            assert_read_fails(f, 2 * 512 + 100, 1); // one byte, cache path
            assert_read_stops_before(f, 0, sizeof data, 2 * 512, data); // a read across it
            assert_read_equals(f, 512, data + 512, 512);                // other blocks are fine
            flip_disk_byte(f, off);
            assert_read_equals(f, 0, data, sizeof data);
            evict(f);
        }
        fclose(f);
    }
}

static void
tmpfile_detects_swapped_blocks(void **state)
{
    (void)state;
    const size_t slot = SBX_TMPFILE__SLOT(1024);
    uint8_t data[3 * 1024], s0[SBX_TMPFILE__SLOT(1024)], s1[SBX_TMPFILE__SLOT(1024)];
    test_rand_fill(data, sizeof data);
    for (size_t c = 0; c < 2; c++) {
        FILE *f = open_with(ciphers[c], 1024, 0);
        int fd = sbx_tmpfile__fd(f);
        assert_int_equal(fwrite(data, 1, sizeof data, f), sizeof data);
        evict(f);
        assert_int_equal(pread(fd, s0, slot, 0), (ssize_t)slot);
        assert_int_equal(pread(fd, s1, slot, (off_t)slot), (ssize_t)slot);
        assert_int_equal(pwrite(fd, s1, slot, 0), (ssize_t)slot);
        assert_int_equal(pwrite(fd, s0, slot, (off_t)slot), (ssize_t)slot);
        assert_read_fails(f, 0, 1024);
        assert_read_fails(f, 1024, 1024);
        assert_read_equals(f, 2048, data + 2048, 1024);
        // Even the nonce of block 1 copied into block 0's slot does not help.
        memcpy(s1, s0, 12);
        assert_int_equal(pwrite(fd, s0, slot, 0), (ssize_t)slot);
        assert_int_equal(pwrite(fd, s1, slot, (off_t)slot), (ssize_t)slot);
        assert_read_fails(f, 1024, 1024);
        fclose(f);
    }
}

static void
tmpfile_detects_rollback_to_an_older_block(void **state)
{
    (void)state;
    const size_t slot = SBX_TMPFILE__SLOT(4096);
    uint8_t v1[8192], v2[4096], old[SBX_TMPFILE__SLOT(4096)];
    test_rand_fill(v1, sizeof v1);
    test_rand_fill(v2, sizeof v2);
    for (size_t c = 0; c < 2; c++) {
        FILE *f = open_with(ciphers[c], 4096, 0);
        int fd = sbx_tmpfile__fd(f);
        assert_int_equal(fwrite(v1, 1, sizeof v1, f), sizeof v1);
        evict(f);
        assert_int_equal(pread(fd, old, slot, (off_t)slot), (ssize_t)slot); // block 1, version 1
        assert_int_equal(fseek(f, 4096, SEEK_SET), 0);
        assert_int_equal(fwrite(v2, 1, sizeof v2, f), sizeof v2); // block 1, version 2
        evict(f);
        assert_int_equal(pwrite(fd, old, slot, (off_t)slot), (ssize_t)slot);
        assert_read_fails(f, 4096, 4096);
        assert_true(test_contains(sbx_error_last()->message, "rolled back"));
        assert_read_equals(f, 0, v1, 4096);
        fclose(f);
    }
}

static void
tmpfile_detects_truncated_backing_file(void **state)
{
    (void)state;
    uint8_t data[3 * 4096];
    test_rand_fill(data, sizeof data);
    FILE *f = open_with(SBX_TMPFILE_AES_256_GCM, 4096, 0);
    assert_int_equal(fwrite(data, 1, sizeof data, f), sizeof data);
    evict(f);
    assert_int_equal(ftruncate(sbx_tmpfile__fd(f), (off_t)(2 * SBX_TMPFILE__SLOT(4096) + 100)), 0);
    assert_read_fails(f, 2 * 4096, 4096);
    assert_read_stops_before(f, 0, sizeof data, 2 * 4096, data);
    assert_read_equals(f, 0, data, 8192);
    fclose(f);
}

/* A slot written into a hole is ignored: holes are known in memory, not on disk. */
static void
tmpfile_ignores_data_planted_in_holes(void **state)
{
    (void)state;
    const size_t slot = SBX_TMPFILE__SLOT(512);
    uint8_t data[512], stolen[SBX_TMPFILE__SLOT(512)], zeros[512] = {0};
    test_rand_fill(data, sizeof data);
    FILE *f = open_with(SBX_TMPFILE_CHACHA20_POLY1305, 512, 0);
    int fd = sbx_tmpfile__fd(f);
    assert_int_equal(fseek(f, 3 * 512, SEEK_SET), 0);
    assert_int_equal(fwrite(data, 1, sizeof data, f), sizeof data);
    evict(f);
    assert_int_equal(pread(fd, stolen, slot, (off_t)(3 * slot)), (ssize_t)slot);
    assert_int_equal(pwrite(fd, stolen, slot, (off_t)slot), (ssize_t)slot);
    assert_read_equals(f, 512, zeros, 512);
    assert_read_equals(f, 3 * 512, data, 512);
    fclose(f);
}

/*
 * A bulk write that fails part way (here at RLIMIT_FSIZE) may already have
 * committed some blocks; they must count in the size, so that growing the
 * file afterwards shows zeros past the size, never data from the failed write.
 */
static void
tmpfile_failed_write_leaves_no_data_past_the_end(void **state)
{
    (void)state;
    const size_t total = 128 * 4096;
    uint8_t *data = malloc(total), *zeros = calloc(1, total);
    struct rlimit old, lim;
    assert_true(data != NULL && zeros != NULL);
    test_rand_fill(data, total);
    FILE *f = open_with(SBX_TMPFILE_AES_256_GCM, 4096, 0);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 100 * SBX_TMPFILE__SLOT(4096); // the first staging batch fits, not the second
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    size_t n = fwrite(data, 1, total, f);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    assert_true(n < total);
    clearerr(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    assert_true(size >= 0 && (size_t)size < total);
    assert_sbx_ok(sbx_tmpfile_truncate(f, total));
    assert_read_equals(f, 0, data, (size_t)size);
    assert_read_equals(f, size, zeros, total - (size_t)size);
    fclose(f);
    free(data);
    free(zeros);
}

/* ---- fork ---- */

static void
tmpfile_is_unusable_in_a_forked_child(void **state)
{
    (void)state;
    FILE *f = sbx_tmpfile();
    assert_non_null(f);
    assert_int_equal(fputs("parent data", f), 1);
    sbx_buf before = SBX_BUF_INIT, after = SBX_BUF_INIT;
    disk_bytes(f, &before);
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int bad = 0;
        errno = 0;
        bad |= fseek(f, 0, SEEK_SET) == 0 || errno != EIO;
        clearerr(f);
        errno = 0;
        bad |= (fwrite("child!", 1, 6, f) == 6 && fflush(f) == 0) << 1;
        bad |= (errno != EIO) << 2;
        bad |= (sbx_tmpfile_truncate(f, 0) != SBX_EIO) << 3;
        sbx_buf raw = SBX_BUF_INIT;
        bad |= (sbx_tmpfile_read_ciphertext(f, &raw) != SBX_EIO) << 4;
        fclose(f); // must not write anything
        _exit(bad);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    disk_bytes(f, &after);
    assert_int_equal(after.len, before.len);
    assert_memory_equal(after.ptr, before.ptr, before.len);
    char buf[32] = {0};
    rewind(f);
    assert_non_null(fgets(buf, sizeof buf, f));
    assert_string_equal(buf, "parent data");
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    assert_int_equal(fputs(" and more", f), 1);
    rewind(f);
    assert_non_null(fgets(buf, sizeof buf, f));
    assert_string_equal(buf, "parent data and more");
    sbx_buf_dispose(&before);
    sbx_buf_dispose(&after);
    fclose(f);
}

/* ---- the key and core dumps ---- */

static void
tmpfile_key_lives_in_locked_memory(void **state)
{
    (void)state;
    if (sbx_init() != 0) {
        print_message("[ SKIPPED  ] secure heap not locked here: %s\n", sbx_error_last()->message);
        skip();
    }
    FILE *f = sbx_tmpfile();
    assert_true(sbx_tmpfile__key_is_locked(f));
    fclose(f);
}

static uint8_t *
read_whole(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    rewind(f);
    uint8_t *p = malloc(*len ? *len : 1);
    if (p != NULL && fread(p, 1, *len, f) != *len) {
        free(p);
        p = NULL;
    }
    fclose(f);
    return p;
}

/* The child: use a file, hand its key and a heap canary to the parent, wait to be dumped. */
static void
core_child(int wfd, enum sbx_tmpfile_cipher cipher)
{
    uint8_t back[100];
    uint8_t *canary = malloc(32); // ordinary heap: must show up in the dump
    FILE *f = open_with(cipher, 0, 0);
    if (canary == NULL || f == NULL || sbx_random_bytes(canary, 32) != 0)
        _exit(2);
    for (int i = 0; i < 2000; i++)
        fprintf(f, "core dump test line %d\n", i);
    rewind(f);
    sbx_buf raw = SBX_BUF_INIT;
    if (sbx_tmpfile_read_ciphertext(f, &raw) != 0) // seals every block...
        _exit(3);
    sbx_buf_dispose(&raw);
    rewind(f);
    if (fread(back, 1, sizeof back, f) != sizeof back) // ...and opens one from disk
        _exit(3);
    if (sbx_tmpfile__write_key(f, wfd) != 0 || write(wfd, canary, 32) != 32)
        _exit(4);
    close(wfd);
    for (;;)
        pause();
}

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

static void
tmpfile_key_is_not_in_a_core_dump(void **state)
{
    (void)state;
#ifdef UNDER_ASAN
    print_message("[ SKIPPED  ] under AddressSanitizer a core dump holds the whole shadow memory "
                  "(terabytes of mappings): this check runs in the normal build of the suite\n");
    skip();
#endif
    if (system("command -v gcore >/dev/null 2>&1") != 0) {
        print_message("[ SKIPPED  ] gcore (gdb) not installed; the key is protected by the "
                      "secure heap's MADV_DONTDUMP and by freeing cipher contexts per call\n");
        skip();
    }
    char dir[] = "/tmp/sbx-core-XXXXXX";
    assert_non_null(mkdtemp(dir));
    for (size_t c = 0; c < 2; c++) {
        int p[2];
        uint8_t got[64];
        assert_int_equal(pipe(p), 0);
        fflush(stdout);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            core_child(p[1], ciphers[c]);
        }
        close(p[1]);
        size_t n = 0;
        for (ssize_t r; n < sizeof got && (r = read(p[0], got + n, sizeof got - n)) > 0;)
            n += (size_t)r;
        close(p[0]);
        assert_int_equal(n, sizeof got);
        char cmd[256], core[128];
        snprintf(cmd, sizeof cmd, "gcore -o %s/core %d >/dev/null 2>&1", dir, (int)pid);
        int rc = system(cmd);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        snprintf(core, sizeof core, "%s/core.%d", dir, (int)pid);
        size_t len = 0;
        uint8_t *dump = rc == 0 ? read_whole(core, &len) : NULL;
        unlink(core);
        if (dump == NULL || memmem(dump, len, got + 32, 32) == NULL) {
            free(dump);
            rmdir(dir);
            print_message("[ SKIPPED  ] gcore cannot dump a child here (ptrace refused?)\n");
            skip();
        }
        print_message("[ INFO     ] core dump of %zu bytes: heap canary found, key searched\n",
                      len);
        assert_null(memmem(dump, len, got, 32));
        assert_null(memmem(dump, len, got, 16)); // nor half of it (a key schedule's first word)
        assert_null(memmem(dump, len, got + 16, 16));
        free(dump);
    }
    assert_int_equal(rmdir(dir), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tmpfile_round_trips_like_stdio),
        cmocka_unit_test(tmpfile_truncate_shrinks_and_grows_with_zeros),
        cmocka_unit_test(tmpfile_sparse_write_far_past_the_end_stays_small),
        cmocka_unit_test(tmpfile_rejects_bad_options),
        cmocka_unit_test(tmpfile_matches_plain_tmpfile_on_random_ops),
        cmocka_unit_test(tmpfile_handles_large_transfers),
        cmocka_unit_test(tmpfile_writes_no_plaintext_to_disk),
        cmocka_unit_test(tmpfile_backing_file_is_nameless_and_private),
        cmocka_unit_test(tmpfile_detects_every_tampered_byte),
        cmocka_unit_test(tmpfile_detects_swapped_blocks),
        cmocka_unit_test(tmpfile_detects_rollback_to_an_older_block),
        cmocka_unit_test(tmpfile_detects_truncated_backing_file),
        cmocka_unit_test(tmpfile_ignores_data_planted_in_holes),
        cmocka_unit_test(tmpfile_failed_write_leaves_no_data_past_the_end),
        cmocka_unit_test(tmpfile_is_unusable_in_a_forked_child),
        cmocka_unit_test(tmpfile_key_lives_in_locked_memory),
        cmocka_unit_test(tmpfile_key_is_not_in_a_core_dump),
    };
    test_seed_init("tmpfile");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
