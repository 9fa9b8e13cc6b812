/*
 * tests/fileops/test_fileops.c - padding inside age files, pyFileSec
 * padding, rotation and inspection.
 *
 * PADME values: Nikitin et al., PETS 2019, Algorithm 1 (computed by hand:
 * L = 108 -> 112; L = 100008 -> 100352). pyFileSec behaviours: spec/seeds.md
 * §1.8 (128 'a' bytes padded to 38,400; empty file to 16,384; malformed
 * counts `abc0000000`, `-100000000`, `1000000000` read as unpadded).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "strongbox/strongbox.h"
#include "strongbox/sys/age.h"
#include "helpers.h"

static char workdir[256];

static int
setup_dir(void **state)
{
    (void)state;
    snprintf(workdir, sizeof(workdir), "/tmp/sbx-fileops-XXXXXX");
    return mkdtemp(workdir) == NULL ? -1 : 0;
}

static int
teardown_dir(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", workdir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *
path_in(const char *name)
{
    static char buf[4][300];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof(buf[k]), "%s/%s", workdir, name);
    return buf[k];
}

static void
write_file(const char *path, const void *data, size_t len)
{
    assert_sbx_ok(sbx_atomic_write_file(path, data, len, 0600));
}

static size_t
read_file(const char *path, uint8_t **out)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *out = malloc((size_t)n + 1);
    assert_int_equal(fread(*out, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return (size_t)n;
}

static size_t
count_dir_entries(void)
{
    DIR *d = opendir(workdir);
    struct dirent *e;
    size_t n = 0;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.' || (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."));
    closedir(d);
    return n;
}

struct keys {
    sbx_identity *id[2];
    sbx_recipient *r[2];
};

static void
keys_new(struct keys *k)
{
    for (int i = 0; i < 2; i++) {
        assert_sbx_ok(sbx_identity_generate(&k->id[i]));
        assert_sbx_ok(sbx_identity_to_recipient(&k->r[i], k->id[i]));
    }
}

static void
keys_free(struct keys *k)
{
    for (int i = 0; i < 2; i++) {
        sbx_identity_free(k->id[i]);
        sbx_recipient_free(k->r[i]);
    }
}

/* ---- padding inside age files ---- */

static void
pad_size_follows_padme_and_buckets(void **state)
{
    (void)state;
    uint64_t s;
    assert_sbx_ok(sbx_pad_size(&s, 100, 0));
    assert_int_equal(s, 112);
    assert_sbx_ok(sbx_pad_size(&s, 100000, 0));
    assert_int_equal(s, 100352);
    assert_sbx_ok(sbx_pad_size(&s, 0, 0));
    assert_int_equal(s, 8);
    assert_sbx_ok(sbx_pad_size(&s, 0, 4096));
    assert_int_equal(s, 4096);
    assert_sbx_ok(sbx_pad_size(&s, 4088, 4096));
    assert_int_equal(s, 4096);
    assert_sbx_ok(sbx_pad_size(&s, 4089, 4096));
    assert_int_equal(s, 8192);
    for (uint64_t len = 1; len < (UINT64_C(1) << 40); len = len * 3 + 7) {
        assert_sbx_ok(sbx_pad_size(&s, len, 0));
        assert_true(s >= len + 8);
        assert_true((s - len - 8) * 100 <= (len + 8) * 12); // PADME overhead <= 12%
    }
    assert_sbx_err(sbx_pad_size(&s, UINT64_MAX - 4, 0), SBX_ETOOBIG);
}

static void
encrypt_padded(sbx_buf *out, const uint8_t *data, size_t len, sbx_recipient *r, uint64_t bucket)
{
    sbx_sink *snk = NULL, *enc = NULL;
    sbx_pad_options po = SBX_PAD_OPTIONS_INIT;
    po.bucket = bucket;
    assert_sbx_ok(sbx_sink_buf_new(&snk, out));
    assert_sbx_ok(sbx_pad_encryptor_new(&enc, snk, &r, 1, NULL, &po));
    assert_sbx_ok(sbx_sink_write(enc, data, len));
    assert_sbx_ok(sbx_sink_finish(enc));
    sbx_sink_free(enc);
    sbx_sink_free(snk);
}

static int
decrypt_padded(sbx_buf *out, const uint8_t *file, size_t len, sbx_identity *id, bool *padded)
{
    sbx_source *src = NULL, *dec = NULL;
    sbx_sink *snk = NULL;
    int err;
    assert_sbx_ok(sbx_source_mem_new(&src, file, len));
    assert_sbx_ok(sbx_sink_buf_new(&snk, out));
    if ((err = sbx_pad_decryptor_new(&dec, src, &id, 1, NULL, padded)) == 0)
        err = sbx_stream_copy(snk, dec, NULL);
    sbx_source_free(dec);
    sbx_source_free(src);
    sbx_sink_free(snk);
    return err;
}

static void
padded_round_trips_at_bucket_boundaries(void **state)
{
    (void)state;
    static const size_t sizes[] = {0,    1,     7,     8,         4087,          4088,
                                   4089, 65528, 65536, 65536 + 1, 2 * 65536 - 8, 300000};
    static const uint64_t buckets[] = {0, 4096, 65536};
    struct keys k;
    keys_new(&k);
    for (size_t b = 0; b < 3; b++) {
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            uint8_t *data = test_malloc_rand(sizes[i]);
            if (sizes[i] > 10)
                memset(data + sizes[i] - 10, 0, 10); // data ending in zeros is the hard case
            sbx_buf file = SBX_BUF_INIT, plain = SBX_BUF_INIT, raw = SBX_BUF_INIT;
            bool padded = false;
            uint64_t want;
            encrypt_padded(&file, data, sizes[i], k.r[0], buckets[b]);
            assert_sbx_ok(decrypt_padded(&plain, file.ptr, file.len, k.id[0], &padded));
            assert_true(padded);
            assert_int_equal(plain.len, sizes[i]);
            assert_true(sizes[i] == 0 || memcmp(plain.ptr, data, sizes[i]) == 0);
            // A plain age decryption (what `age -d` does) sees the padded form.
            assert_sbx_ok(sbx_age_decrypt_buf(&raw, file.ptr, file.len, &k.id[0], 1, NULL));
            assert_sbx_ok(sbx_pad_size(&want, sizes[i], buckets[b]));
            assert_int_equal(raw.len, want);
            free(data);
            sbx_buf_dispose(&file);
            sbx_buf_dispose(&plain);
            sbx_buf_dispose(&raw);
        }
    }
    keys_free(&k);
}

static void
unpadded_files_pass_through_the_pad_decryptor(void **state)
{
    (void)state;
    struct keys k;
    uint8_t data[1000];
    sbx_buf file = SBX_BUF_INIT, plain = SBX_BUF_INIT;
    bool padded = true;
    keys_new(&k);
    test_rand_fill(data, sizeof(data));
    memset(data + 900, 0, 100);
    assert_sbx_ok(sbx_age_encrypt_buf(&file, data, sizeof(data), &k.r[0], 1, NULL));
    assert_sbx_ok(decrypt_padded(&plain, file.ptr, file.len, k.id[0], &padded));
    assert_false(padded);
    assert_int_equal(plain.len, sizeof(data));
    assert_memory_equal(plain.ptr, data, sizeof(data));
    sbx_buf_dispose(&file);
    sbx_buf_dispose(&plain);
    keys_free(&k);
}

/* A source that hands out one byte per read. */
struct byte_source {
    sbx_source base;
    const uint8_t *p;
    size_t n;
};

static int
byte_read(sbx_source *self, uint8_t *buf, size_t len, size_t *nread)
{
    struct byte_source *s = (struct byte_source *)self;
    *nread = s->n > 0 && len > 0 ? 1 : 0;
    if (*nread) {
        buf[0] = *s->p++;
        s->n--;
    }
    return 0;
}

static int
unpad_bytes(sbx_buf *out, const uint8_t *in, size_t len, bool trickle)
{
    struct byte_source bs = {{byte_read, NULL}, in, len};
    sbx_source *mem = NULL, *un = NULL;
    sbx_sink *snk = NULL;
    int err;
    if (!trickle)
        assert_sbx_ok(sbx_source_mem_new(&mem, in, len));
    assert_sbx_ok(sbx_unpad_source_new(&un, trickle ? &bs.base : mem));
    assert_sbx_ok(sbx_sink_buf_new(&snk, out));
    err = sbx_stream_copy(snk, un, NULL);
    sbx_source_free(un);
    sbx_source_free(mem);
    sbx_sink_free(snk);
    return err;
}

static void
put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static void
unpad_source_holds_back_zero_runs_in_constant_memory(void **state)
{
    (void)state;
    // data = "ab" + 300000 zeros + "c" + 5 zeros; filler 1 MiB; trailer.
    size_t dlen = 2 + 300000 + 1 + 5, total = dlen + (1 << 20) + 8;
    uint8_t *in = calloc(1, total);
    in[0] = 'a';
    in[1] = 'b';
    in[300002] = 'c';
    put_be64(in + total - 8, dlen);
    sbx_buf out = SBX_BUF_INIT, out1 = SBX_BUF_INIT;
    assert_sbx_ok(unpad_bytes(&out, in, total, false));
    assert_int_equal(out.len, dlen);
    assert_memory_equal(out.ptr, in, dlen);
    assert_sbx_ok(unpad_bytes(&out1, in, total, true));
    assert_int_equal(out1.len, dlen);
    assert_memory_equal(out1.ptr, in, dlen);
    sbx_buf_dispose(&out);
    sbx_buf_dispose(&out1);
    free(in);
}

static void
unpad_source_refuses_malformed_padding(void **state)
{
    (void)state;
    uint8_t in[64] = {0};
    sbx_buf out = SBX_BUF_INIT;
    // length larger than the data + filler
    put_be64(in + 56, 57);
    assert_sbx_err(unpad_bytes(&out, in, sizeof(in), false), SBX_EFORMAT);
    sbx_buf_dispose(&out);
    // filler not zero: data says 3 bytes, byte 10 is non-zero
    memset(in, 0, sizeof(in));
    in[0] = in[1] = in[2] = 'x';
    in[10] = 1;
    put_be64(in + 56, 3);
    assert_sbx_err(unpad_bytes(&out, in, sizeof(in), true), SBX_EFORMAT);
    sbx_buf_dispose(&out);
    // shorter than the trailer
    assert_sbx_err(unpad_bytes(&out, in, 7, false), SBX_EFORMAT);
    sbx_buf_dispose(&out);
    // exactly valid: 56 bytes of data... with non-zero last data byte
    memset(in, 'y', 56);
    put_be64(in + 56, 56);
    assert_sbx_ok(unpad_bytes(&out, in, sizeof(in), false));
    assert_int_equal(out.len, 56);
    sbx_buf_dispose(&out);
}

static void
padding_refuses_passphrases_and_bad_markers(void **state)
{
    (void)state;
    sbx_recipient *pass = NULL;
    sbx_sink *snk = NULL, *enc = NULL;
    sbx_buf file = SBX_BUF_INIT, plain = SBX_BUF_INIT;
    struct keys k;
    keys_new(&k);
    assert_sbx_ok(sbx_recipient_scrypt_new(&pass, "pw", 2, 10));
    assert_sbx_ok(sbx_sink_buf_new(&snk, &file));
    assert_sbx_err(sbx_pad_encryptor_new(&enc, snk, &pass, 1, NULL, NULL), SBX_EINVAL);
    assert_true(test_contains(sbx_error_last()->message, "passphrase"));
    assert_null(enc);
    sbx_sink_free(snk);
    // An unknown marker version is refused before anything is decrypted.
    encrypt_padded(&file, (const uint8_t *)"hello", 5, k.r[0], 0);
    uint8_t *v = memmem(file.ptr, file.len, "sbx-pad v1", 10);
    assert_non_null(v);
    v[9] = '2';
    assert_sbx_err(decrypt_padded(&plain, file.ptr, file.len, k.id[0], NULL), SBX_EHEADER);
    v[9] = '1';
    // A truncated padded file fails (the last chunk is gone).
    sbx_buf big = SBX_BUF_INIT;
    uint8_t *data = test_malloc_rand(200000);
    encrypt_padded(&big, data, 200000, k.r[0], 0);
    sbx_buf_dispose(&plain);
    assert_sbx_err(decrypt_padded(&plain, big.ptr, big.len - 1000, k.id[0], NULL), SBX_EPAYLOAD);
    sbx_buf_dispose(&plain);
    assert_sbx_err(
        decrypt_padded(&plain, big.ptr, 2 * SBX_AGE_SEALED_CHUNK_SIZE + 200, k.id[0], NULL),
        SBX_EPAYLOAD);
    free(data);
    sbx_buf_dispose(&big);
    sbx_buf_dispose(&plain);
    sbx_buf_dispose(&file);
    sbx_recipient_free(pass);
    keys_free(&k);
}

/* file with " x" inserted after its "sbx-pad v1" marker (a second argument) */
static void
add_marker_argument(sbx_buf *out, const sbx_buf *file)
{
    const uint8_t *v = memmem(file->ptr, file->len, "sbx-pad v1", 10);
    assert_non_null(v);
    size_t at = (size_t)(v - file->ptr) + 10;
    assert_sbx_ok(sbx_buf_append(out, file->ptr, at));
    assert_sbx_ok(sbx_buf_append(out, " x", 2));
    assert_sbx_ok(sbx_buf_append(out, file->ptr + at, file->len - at));
}

static void
malformed_markers_fail_every_reader_with_the_same_message(void **state)
{
    (void)state;
    struct keys k;
    sbx_buf file = SBX_BUF_INIT, bad = SBX_BUF_INIT, plain = SBX_BUF_INIT;
    sbx_inspect_info info;
    sbx_rotate_report rep;
    keys_new(&k);
    encrypt_padded(&file, (const uint8_t *)"hello", 5, k.r[0], 0);
    add_marker_argument(&bad, &file);
    // The registered rule runs on every header read: the pad decryptor, a plain decryptor,
    // rotate and inspect all refuse the file, before any key is tried.
    assert_sbx_err(decrypt_padded(&plain, bad.ptr, bad.len, k.id[0], NULL), SBX_EHEADER);
    assert_string_equal(sbx_error_last()->message,
                        "malformed sbx-pad stanza: expected one argument and an empty body");
    assert_sbx_err(sbx_age_decrypt_buf(&plain, bad.ptr, bad.len, &k.id[0], 1, NULL), SBX_EHEADER);
    assert_true(test_contains(sbx_error_last()->message, "malformed sbx-pad stanza"));
    write_file(path_in("bad.age"), bad.ptr, bad.len);
    assert_sbx_err(sbx_rotate_file(path_in("bad.age"), NULL, &k.id[0], 1, &k.r[1], 1, NULL, &rep),
                   SBX_EHEADER);
    assert_true(test_contains(sbx_error_last()->message, "malformed sbx-pad stanza"));
    assert_sbx_ok(sbx_inspect_mem(&info, bad.ptr, bad.len));
    assert_false(info.valid);
    assert_true(test_contains(info.error, "malformed sbx-pad stanza"));
    // An unknown version keeps its own message.
    uint8_t *v = memmem(file.ptr, file.len, "sbx-pad v1", 10);
    v[9] = '7';
    assert_sbx_err(decrypt_padded(&plain, file.ptr, file.len, k.id[0], NULL), SBX_EHEADER);
    assert_string_equal(sbx_error_last()->message,
                        "the file is padded with an unknown padding version; upgrade sbx, or "
                        "decrypt with age and remove the padding by hand");
    sbx_buf_dispose(&plain);
    sbx_buf_dispose(&bad);
    sbx_buf_dispose(&file);
    keys_free(&k);
}

static void
pad_reader_gives_the_true_size(void **state)
{
    (void)state;
    struct keys k;
    sbx_buf file = SBX_BUF_INIT;
    uint8_t *data = test_malloc_rand(70000), buf[100];
    sbx_age_reader *r = NULL;
    uint64_t size = 0;
    size_t got = 0;
    bool padded = false;
    keys_new(&k);
    for (int pad = 0; pad < 2; pad++) {
        if (pad)
            encrypt_padded(&file, data, 70000, k.r[0], 65536);
        else
            assert_sbx_ok(sbx_age_encrypt_buf(&file, data, 70000, &k.r[0], 1, NULL));
        write_file(path_in("ra.age"), file.ptr, file.len);
        int fd = open(path_in("ra.age"), O_RDONLY);
        assert_sbx_ok(sbx_pad_reader_open(&r, &size, &padded, fd, &k.id[0], 1));
        assert_int_equal(padded, pad);
        assert_int_equal(size, 70000);
        assert_sbx_ok(sbx_age_reader_pread(r, buf, sizeof(buf), 69950, &got));
        assert_true(got >= 50);
        assert_memory_equal(buf, data + 69950, 50);
        sbx_age_reader_free(r);
        close(fd);
        sbx_buf_dispose(&file);
    }
    free(data);
    keys_free(&k);
}

/* ---- pyFileSec padding ---- */

static void
pfs_pad_and_unpad_restore_exact_bytes(void **state)
{
    (void)state;
    uint8_t a128[128], *got;
    uint64_t size, removed;
    memset(a128, 'a', sizeof(a128));
    write_file(path_in("a"), a128, sizeof(a128));
    assert_sbx_ok(sbx_pad_pfs_file(path_in("a"), path_in("a"), 38400, &size));
    assert_int_equal(size, 38400);
    size_t n = read_file(path_in("a"), &got);
    assert_int_equal(n, 38400);
    assert_memory_equal(got + n - 32, "pad=0000038272\0pyFileSec_padded\0", 32);
    free(got);
    // Re-padding is not cumulative.
    assert_sbx_ok(sbx_pad_pfs_file(path_in("a"), path_in("a"), 16384, &size));
    assert_int_equal(size, 16384);
    assert_sbx_ok(sbx_pad_pfs_unpad_file(path_in("a"), path_in("a"), true, &removed));
    assert_int_equal(removed, 16384 - 128);
    n = read_file(path_in("a"), &got);
    assert_int_equal(n, 128);
    assert_memory_equal(got, a128, 128);
    free(got);
    // Strict unpad of an unpadded file fails; lenient leaves it.
    assert_sbx_err(sbx_pad_pfs_unpad_file(path_in("a"), path_in("a"), true, NULL), SBX_EFORMAT);
    assert_sbx_ok(sbx_pad_pfs_unpad_file(path_in("a"), path_in("a"), false, &removed));
    assert_int_equal(removed, 0);
    // Empty file, default size; small targets raised to 128.
    write_file(path_in("e"), "", 0);
    assert_sbx_ok(sbx_pad_pfs_file(path_in("e"), path_in("e2"), SBX_PAD_PFS_DEFAULT_SIZE, &size));
    assert_int_equal(size, 16384);
    assert_sbx_ok(sbx_pad_pfs_file(path_in("e"), path_in("e3"), 5, &size));
    assert_int_equal(size, 128);
    assert_sbx_ok(sbx_pad_pfs_unpad_file(path_in("e2"), path_in("e4"), true, NULL));
    n = read_file(path_in("e4"), &got);
    assert_int_equal(n, 0);
    free(got);
}

static void
pfs_pad_refuses_targets_that_do_not_hide_the_length(void **state)
{
    (void)state;
    uint8_t data[200];
    memset(data, 7, sizeof(data));
    write_file(path_in("b"), data, sizeof(data));
    assert_sbx_err(sbx_pad_pfs_file(path_in("b"), path_in("b"), 232, NULL), SBX_ETOOBIG);
    assert_sbx_ok(sbx_pad_pfs_file(path_in("b"), path_in("b2"), 233, NULL));
    assert_sbx_err(sbx_pad_pfs_file(path_in("b"), path_in("b"), SBX_PAD_PFS_MAX_SIZE + 1, NULL),
                   SBX_EINVAL);
    uint8_t *got;
    size_t n = read_file(path_in("b"), &got);
    assert_int_equal(n, 200); // unchanged
    free(got);
}

static void
pfs_pad_refuses_a_fifo_without_waiting_for_a_writer(void **state)
{
    (void)state;
    const char *fifo = path_in("pfs-fifo");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    alarm(10); // before the fix, open() blocked here forever: SIGALRM fails the test
    assert_sbx_err(sbx_pad_pfs_file(fifo, path_in("pfs-fifo-out"), 0, NULL), SBX_EINVAL);
    assert_sbx_err(sbx_pad_pfs_unpad_file(fifo, path_in("pfs-fifo-out"), true, NULL), SBX_EINVAL);
    alarm(0);
    assert_int_equal(access(path_in("pfs-fifo-out"), F_OK), -1);
    assert_int_equal(unlink(fifo), 0);
}

static void
pfs_detection_is_strict(void **state)
{
    (void)state;
    uint8_t tail[32];
    uint64_t count;
    static const char *bad[] = {"abc0000000", "-100000000", "1000000000", "00000000a1"};
    for (size_t i = 0; i < 4; i++) {
        memcpy(tail, "pad=", 4);
        memcpy(tail + 4, bad[i], 10);
        memcpy(tail + 14, "\0pyFileSec_padded\0", 18);
        sbx_pad_pfs_detect(&count, tail, 32, 160);
        assert_int_equal(count, 0);
    }
    memcpy(tail + 4, "0000000100", 10);
    sbx_pad_pfs_detect(&count, tail, 32, 160);
    assert_int_equal(count, 100);
    tail[31] = 'x';
    sbx_pad_pfs_detect(&count, tail, 32, 160);
    assert_int_equal(count, 0);
    // A changed filler byte makes unpad fail and leaves the file alone.
    uint8_t data[10] = "0123456789", *got;
    write_file(path_in("c"), data, sizeof(data));
    assert_sbx_ok(sbx_pad_pfs_file(path_in("c"), path_in("c"), 1000, NULL));
    size_t n = read_file(path_in("c"), &got);
    got[500] = 'Z';
    write_file(path_in("c"), got, n);
    assert_sbx_err(sbx_pad_pfs_unpad_file(path_in("c"), path_in("c"), true, NULL), SBX_EFORMAT);
    free(got);
    n = read_file(path_in("c"), &got);
    assert_int_equal(n, 1000);
    free(got);
}

/* ---- rotate ---- */

static size_t
header_end(const uint8_t *f, size_t n)
{
    const uint8_t *m = memmem(f, n, "\n---", 4);
    assert_non_null(m);
    const uint8_t *nl = memchr(m + 1, '\n', n - (size_t)(m + 1 - f));
    return (size_t)(nl - f) + 1;
}

static void
rotate_rewraps_and_keeps_the_payload(void **state)
{
    (void)state;
    struct keys k;
    sbx_buf file = SBX_BUF_INIT, plain = SBX_BUF_INIT;
    uint8_t *data = test_malloc_rand(150000), *after;
    sbx_rotate_report rep;
    keys_new(&k);
    assert_sbx_ok(sbx_age_encrypt_buf(&file, data, 150000, &k.r[0], 1, NULL));
    write_file(path_in("r.age"), file.ptr, file.len);
    size_t entries = count_dir_entries();
    assert_sbx_ok(sbx_rotate_file(path_in("r.age"), NULL, &k.id[0], 1, &k.r[1], 1, NULL, &rep));
    assert_false(rep.rekeyed);
    assert_int_equal(rep.old_stanzas, 1);
    assert_int_equal(rep.new_stanzas, 1);
    assert_int_equal(count_dir_entries(), entries); // no temporary file left
    size_t n = read_file(path_in("r.age"), &after);
    size_t h0 = header_end(file.ptr, file.len), h1 = header_end(after, n);
    assert_int_equal(n - h1, file.len - h0);
    assert_memory_equal(after + h1, file.ptr + h0, n - h1); // payload bytes unchanged
    assert_true(h0 != h1 || memcmp(after, file.ptr, h1) != 0);
    assert_sbx_err(sbx_age_decrypt_buf(&plain, after, n, &k.id[0], 1, NULL), SBX_ENOMATCH);
    assert_sbx_ok(sbx_age_decrypt_buf(&plain, after, n, &k.id[1], 1, NULL));
    assert_int_equal(plain.len, 150000);
    assert_memory_equal(plain.ptr, data, 150000);
    free(after);
    // Rotating again with the old key fails and changes nothing.
    assert_sbx_err(sbx_rotate_file(path_in("r.age"), NULL, &k.id[0], 1, &k.r[0], 1, NULL, NULL),
                   SBX_ENOMATCH);
    assert_int_equal(count_dir_entries(), entries);
    free(data);
    sbx_buf_dispose(&file);
    sbx_buf_dispose(&plain);
    keys_free(&k);
}

static void
rotate_rekey_changes_the_payload(void **state)
{
    (void)state;
    struct keys k;
    sbx_buf file = SBX_BUF_INIT, plain = SBX_BUF_INIT;
    uint8_t *data = test_malloc_rand(70000), *after;
    sbx_rotate_options o = SBX_ROTATE_OPTIONS_INIT;
    sbx_rotate_report rep;
    o.rekey = true;
    keys_new(&k);
    assert_sbx_ok(sbx_age_encrypt_buf(&file, data, 70000, &k.r[0], 1, NULL));
    write_file(path_in("k.age"), file.ptr, file.len);
    assert_sbx_ok(
        sbx_rotate_file(path_in("k.age"), path_in("k2.age"), &k.id[0], 1, &k.r[1], 1, &o, &rep));
    assert_true(rep.rekeyed);
    size_t n = read_file(path_in("k2.age"), &after);
    size_t h0 = header_end(file.ptr, file.len), h1 = header_end(after, n);
    assert_int_equal(n - h1, file.len - h0);
    assert_memory_not_equal(after + h1, file.ptr + h0, 32); // new nonce, new chunks
    assert_sbx_err(sbx_age_decrypt_buf(&plain, after, n, &k.id[0], 1, NULL), SBX_ENOMATCH);
    assert_sbx_ok(sbx_age_decrypt_buf(&plain, after, n, &k.id[1], 1, NULL));
    assert_memory_equal(plain.ptr, data, 70000);
    free(after);
    // The input of -o is untouched.
    size_t m = read_file(path_in("k.age"), &after);
    assert_int_equal(m, file.len);
    assert_memory_equal(after, file.ptr, m);
    free(after);
    free(data);
    sbx_buf_dispose(&file);
    sbx_buf_dispose(&plain);
    keys_free(&k);
}

static void
rotate_keeps_padding_and_armor(void **state)
{
    (void)state;
    struct keys k;
    sbx_buf file = SBX_BUF_INIT, plain = SBX_BUF_INIT, armored = SBX_BUF_INIT;
    uint8_t data[5000], *after;
    sbx_rotate_report rep;
    bool padded = false;
    keys_new(&k);
    test_rand_fill(data, sizeof(data));
    for (int rekey = 0; rekey < 2; rekey++) {
        sbx_rotate_options o = SBX_ROTATE_OPTIONS_INIT;
        o.rekey = rekey;
        encrypt_padded(&file, data, sizeof(data), k.r[0], 0);
        write_file(path_in("p.age"), file.ptr, file.len);
        assert_sbx_ok(sbx_rotate_file(path_in("p.age"), NULL, &k.id[0], 1, &k.r[1], 1, &o, &rep));
        assert_true(rep.padded);
        size_t n = read_file(path_in("p.age"), &after);
        assert_sbx_ok(decrypt_padded(&plain, after, n, k.id[1], &padded));
        assert_true(padded);
        assert_int_equal(plain.len, sizeof(data));
        assert_memory_equal(plain.ptr, data, sizeof(data));
        free(after);
        sbx_buf_dispose(&file);
        sbx_buf_dispose(&plain);
    }
    // Armored in, armored out.
    sbx_age_encrypt_options eo = SBX_AGE_ENCRYPT_OPTIONS_INIT;
    eo.armor = true;
    assert_sbx_ok(sbx_age_encrypt_buf(&armored, data, sizeof(data), &k.r[0], 1, &eo));
    write_file(path_in("a.age"), armored.ptr, armored.len);
    assert_sbx_ok(sbx_rotate_file(path_in("a.age"), NULL, &k.id[0], 1, &k.r[1], 1, NULL, &rep));
    assert_true(rep.armored);
    size_t n = read_file(path_in("a.age"), &after);
    assert_memory_equal(after, "-----BEGIN AGE ENCRYPTED FILE-----\n", 35);
    assert_sbx_ok(sbx_age_decrypt_buf(&plain, after, n, &k.id[1], 1, NULL));
    assert_memory_equal(plain.ptr, data, sizeof(data));
    free(after);
    sbx_buf_dispose(&armored);
    sbx_buf_dispose(&plain);
    keys_free(&k);
}

static void
rotate_follows_the_passphrase_rules(void **state)
{
    (void)state;
    struct keys k;
    sbx_recipient *pr = NULL, *both[2];
    sbx_identity *pid = NULL;
    sbx_buf file = SBX_BUF_INIT, plain = SBX_BUF_INIT;
    uint8_t *after;
    keys_new(&k);
    assert_sbx_ok(sbx_recipient_scrypt_new(&pr, "correct horse", 13, 10));
    assert_sbx_ok(sbx_identity_scrypt_new(&pid, "correct horse", 13, 0));
    // passphrase -> key
    assert_sbx_ok(sbx_age_encrypt_buf(&file, "secret", 6, &pr, 1, NULL));
    write_file(path_in("s.age"), file.ptr, file.len);
    assert_sbx_ok(sbx_rotate_file(path_in("s.age"), NULL, &pid, 1, &k.r[0], 1, NULL, NULL));
    size_t n = read_file(path_in("s.age"), &after);
    assert_sbx_ok(sbx_age_decrypt_buf(&plain, after, n, &k.id[0], 1, NULL));
    assert_memory_equal(plain.ptr, "secret", 6);
    free(after);
    // key -> passphrase (alone) works; passphrase plus a key does not.
    assert_sbx_ok(sbx_rotate_file(path_in("s.age"), NULL, &k.id[0], 1, &pr, 1, NULL, NULL));
    both[0] = pr;
    both[1] = k.r[1];
    assert_sbx_err(sbx_rotate_file(path_in("s.age"), NULL, &pid, 1, both, 2, NULL, NULL),
                   SBX_EINVAL);
    // A padded file cannot go to a passphrase.
    sbx_buf_dispose(&file);
    encrypt_padded(&file, (const uint8_t *)"x", 1, k.r[0], 0);
    write_file(path_in("pp.age"), file.ptr, file.len);
    assert_sbx_err(sbx_rotate_file(path_in("pp.age"), NULL, &k.id[0], 1, &pr, 1, NULL, NULL),
                   SBX_EINVAL);
    sbx_buf_dispose(&file);
    sbx_buf_dispose(&plain);
    sbx_recipient_free(pr);
    sbx_identity_free(pid);
    keys_free(&k);
}

static void
rotate_refuses_tampered_and_truncated_files(void **state)
{
    (void)state;
    struct keys k;
    sbx_buf file = SBX_BUF_INIT;
    uint8_t data[3000], *after;
    keys_new(&k);
    test_rand_fill(data, sizeof(data));
    assert_sbx_ok(sbx_age_encrypt_buf(&file, data, sizeof(data), &k.r[0], 1, NULL));
    size_t h = header_end(file.ptr, file.len);
    // Tampered MAC (another valid base64 character, not the last one)
    uint8_t saved = file.ptr[h - 5];
    file.ptr[h - 5] = saved == 'A' ? 'B' : 'A';
    write_file(path_in("t.age"), file.ptr, file.len);
    assert_sbx_err(sbx_rotate_file(path_in("t.age"), NULL, &k.id[0], 1, &k.r[1], 1, NULL, NULL),
                   SBX_EMAC);
    file.ptr[h - 5] = saved;
    // Truncated right after the header: no payload
    write_file(path_in("t.age"), file.ptr, h + 10);
    assert_sbx_err(sbx_rotate_file(path_in("t.age"), NULL, &k.id[0], 1, &k.r[1], 1, NULL, NULL),
                   SBX_EPAYLOAD);
    size_t n = read_file(path_in("t.age"), &after);
    assert_int_equal(n, h + 10);
    free(after);
    // Rekey verifies the payload: a flipped payload byte fails it.
    file.ptr[h + 100] ^= 1;
    write_file(path_in("t.age"), file.ptr, file.len);
    sbx_rotate_options o = SBX_ROTATE_OPTIONS_INIT;
    o.rekey = true;
    assert_sbx_err(sbx_rotate_file(path_in("t.age"), NULL, &k.id[0], 1, &k.r[1], 1, &o, NULL),
                   SBX_EPAYLOAD);
    n = read_file(path_in("t.age"), &after);
    assert_int_equal(n, file.len);
    assert_memory_equal(after, file.ptr, n);
    free(after);
    // Truncated at a chunk boundary, or extended: the last chunk does not verify as final.
    sbx_buf big = SBX_BUF_INIT;
    uint8_t *bdata = test_malloc_rand(200000);
    assert_sbx_ok(sbx_age_encrypt_buf(&big, bdata, 200000, &k.r[0], 1, NULL));
    write_file(path_in("t.age"), big.ptr, big.len - SBX_AGE_SEALED_CHUNK_SIZE);
    assert_sbx_err(sbx_rotate_file(path_in("t.age"), NULL, &k.id[0], 1, &k.r[1], 1, NULL, NULL),
                   SBX_EPAYLOAD);
    assert_sbx_ok(sbx_buf_append(&big, "x", 1));
    write_file(path_in("t.age"), big.ptr, big.len);
    assert_sbx_err(sbx_rotate_file(path_in("t.age"), NULL, &k.id[0], 1, &k.r[1], 1, NULL, NULL),
                   SBX_EPAYLOAD);
    write_file(path_in("t.age"), big.ptr, big.len - 1);
    assert_sbx_ok(sbx_rotate_file(path_in("t.age"), NULL, &k.id[0], 1, &k.r[1], 1, NULL, NULL));
    free(bdata);
    sbx_buf_dispose(&big);
    assert_sbx_err(
        sbx_rotate_file(path_in("missing.age"), NULL, &k.id[0], 1, &k.r[1], 1, NULL, NULL),
        SBX_ENOTFOUND);
    sbx_buf_dispose(&file);
    keys_free(&k);
}

/* A stanza function for sbx_rotate_rewrite(): copies every stanza, and adds a note at the end. */
static int
copy_and_note(sbx_age_header *h, const sbx_age_stanza *old, void *payload)
{
    size_t *calls = payload;
    static const char *const args[] = {"v1"};
    (*calls)++;
    return old != NULL ? sbx_age_header_copy_stanza(h, old)
                       : sbx_age_header_add_stanza(h, "x-note", args, 1, NULL, 0);
}

static void
rotate_rewrite_keeps_the_key_and_the_payload(void **state)
{
    (void)state;
    struct keys k;
    sbx_buf file = SBX_BUF_INIT, plain = SBX_BUF_INIT;
    uint8_t data[1000], *after;
    sbx_rotate_report rep;
    size_t calls = 0;
    keys_new(&k);
    test_rand_fill(data, sizeof(data));
    assert_sbx_ok(sbx_age_encrypt_buf(&file, data, sizeof(data), k.r, 2, NULL));
    write_file(path_in("w.age"), file.ptr, file.len);
    assert_sbx_ok(
        sbx_rotate_rewrite_file(path_in("w.age"), NULL, &k.id[1], 1, copy_and_note, &calls, &rep));
    assert_int_equal(calls, 3); // two stanzas, then the end
    assert_int_equal(rep.old_stanzas, 2);
    assert_int_equal(rep.new_stanzas, 3);
    size_t n = read_file(path_in("w.age"), &after);
    assert_non_null(memmem(after, n, "-> x-note v1\n", 13));
    size_t h0 = header_end(file.ptr, file.len), h1 = header_end(after, n);
    assert_memory_equal(after + h1, file.ptr + h0, n - h1); // payload bytes unchanged
    assert_sbx_ok(sbx_age_decrypt_buf(&plain, after, n, &k.id[0], 1, NULL));
    assert_memory_equal(plain.ptr, data, sizeof(data));
    free(after);
    assert_sbx_err(sbx_rotate_rewrite_file(path_in("w.age"), NULL, &k.id[0], 1, NULL, NULL, NULL),
                   SBX_EINVAL);
    sbx_buf_dispose(&plain);
    sbx_buf_dispose(&file);
    keys_free(&k);
}

/* ---- inspect ---- */

static void
inspect_reports_header_facts(void **state)
{
    (void)state;
    struct keys k;
    sbx_buf file = SBX_BUF_INIT, json = SBX_BUF_INIT;
    sbx_inspect_info info;
    uint8_t *data = test_malloc_rand(65536 * 2);
    keys_new(&k);
    assert_sbx_ok(sbx_age_encrypt_buf(&file, data, 65536 * 2, k.r, 2, NULL));
    assert_sbx_ok(sbx_inspect_mem(&info, file.ptr, file.len));
    assert_int_equal(info.format, SBX_INSPECT_AGE);
    assert_true(info.valid);
    assert_int_equal(info.stanzas, 2);
    assert_int_equal(info.ntypes, 1);
    assert_string_equal(info.types[0].name, "X25519");
    assert_int_equal(info.types[0].count, 2);
    assert_int_equal(info.chunks, 2);
    assert_int_equal(info.plaintext_size, 65536 * 2);
    assert_false(info.padded);
    assert_sbx_ok(sbx_inspect_to_json(&info, "x\"y.age", &json));
    assert_sbx_ok(sbx_buf_append(&json, "", 1)); // a C string for test_contains
    assert_true(test_contains((char *)json.ptr, "\"file\":\"x\\\"y.age\""));
    assert_false(test_contains((char *)json.ptr, "file_base64")); // UTF-8: no sibling
    json.len = 0;
    // Not UTF-8 (byte 0xE9 alone): U+FFFD in "file", the exact bytes in "file_base64".
    assert_sbx_ok(sbx_inspect_to_json(&info, "caf\xe9.age", &json));
    assert_sbx_ok(sbx_buf_append(&json, "", 1));
    assert_true(test_contains((char *)json.ptr, "\"file\":\"caf\\ufffd.age\","));
    assert_true(test_contains((char *)json.ptr, "\"file_base64\":\"Y2Fm6S5hZ2U=\""));
    // No secret: the stanza bodies never appear.
    sbx_buf_dispose(&json);
    // Truncated: layout not valid.
    assert_sbx_ok(sbx_inspect_mem(&info, file.ptr, file.len - 100000));
    assert_true(info.layout_ok);
    assert_sbx_ok(sbx_inspect_mem(&info, file.ptr, header_end(file.ptr, file.len) + 20));
    assert_false(info.layout_ok);
    assert_false(info.valid);
    sbx_buf_dispose(&file);
    // Passphrase: work factor.
    sbx_recipient *pr = NULL;
    assert_sbx_ok(sbx_recipient_scrypt_new(&pr, "pw", 2, 12));
    assert_sbx_ok(sbx_age_encrypt_buf(&file, "", 0, &pr, 1, NULL));
    assert_sbx_ok(sbx_inspect_mem(&info, file.ptr, file.len));
    assert_int_equal(info.scrypt_log_n, 12);
    assert_int_equal(info.chunks, 1);
    assert_int_equal(info.plaintext_size, 0);
    sbx_buf_dispose(&file);
    // Padded and armored.
    encrypt_padded(&file, data, 1000, k.r[0], 4096);
    assert_sbx_ok(sbx_inspect_mem(&info, file.ptr, file.len));
    assert_true(info.padded);
    assert_int_equal(info.plaintext_size, 4096);
    sbx_buf_dispose(&file);
    sbx_age_encrypt_options eo = SBX_AGE_ENCRYPT_OPTIONS_INIT;
    eo.armor = true;
    assert_sbx_ok(sbx_age_encrypt_buf(&file, data, 100, &k.r[0], 1, &eo));
    assert_sbx_ok(sbx_inspect_mem(&info, file.ptr, file.len));
    assert_int_equal(info.format, SBX_INSPECT_AGE_ARMORED);
    assert_true(info.valid);
    assert_int_equal(info.plaintext_size, 100);
    file.ptr[40] = '*';
    assert_sbx_ok(sbx_inspect_mem(&info, file.ptr, file.len));
    assert_false(info.valid);
    assert_true(test_contains(info.error, "armor"));
    sbx_buf_dispose(&file);
    sbx_recipient_free(pr);
    free(data);
    keys_free(&k);
}

static void
inspect_recognises_legacy_formats(void **state)
{
    (void)state;
    sbx_inspect_info info;
    static const uint8_t gz[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0};
    assert_sbx_ok(sbx_inspect_mem(&info, gz, sizeof(gz)));
    assert_string_equal(info.name, "gzip");
    assert_sbx_ok(sbx_inspect_mem(&info, (const uint8_t *)"Salted__12345678", 16));
    assert_int_equal(info.format, SBX_INSPECT_OPENSSL_ENC);
    assert_sbx_ok(sbx_inspect_mem(&info, (const uint8_t *)"U2FsdGVkX19hYmNk\n", 17));
    assert_int_equal(info.format, SBX_INSPECT_OPENSSL_ENC);
    assert_sbx_ok(sbx_inspect_mem(&info, (const uint8_t *)"", 0));
    assert_int_equal(info.format, SBX_INSPECT_EMPTY);
    assert_sbx_ok(sbx_inspect_mem(&info, (const uint8_t *)"hello\n", 6));
    assert_int_equal(info.format, SBX_INSPECT_UNKNOWN);
    assert_sbx_ok(sbx_inspect_mem(&info, (const uint8_t *)"age-encryption.org/v2\n", 22));
    assert_int_equal(info.format, SBX_INSPECT_AGE);
    assert_false(info.valid);
    uint8_t pfs[200] = "abc";
    memcpy(pfs + 168, "pad=0000000197\0pyFileSec_padded\0", 32);
    assert_sbx_ok(sbx_inspect_mem(&info, pfs, sizeof(pfs)));
    assert_int_equal(info.format, SBX_INSPECT_PFS_PADDED);
    assert_int_equal(info.pfs_pad_bytes, 197);
    write_file(path_in("pfs"), pfs, sizeof(pfs));
    assert_sbx_ok(sbx_inspect_file(&info, path_in("pfs")));
    assert_int_equal(info.format, SBX_INSPECT_PFS_PADDED);
    assert_sbx_err(sbx_inspect_file(&info, "/nonexistent/x"), SBX_ENOTFOUND);
}

static void
inspect_refuses_a_fifo_without_waiting_for_a_writer(void **state)
{
    (void)state;
    sbx_inspect_info info;
    const char *fifo = path_in("fifo");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    alarm(10); // before the fix, open() blocked here forever: SIGALRM fails the test
    assert_sbx_err(sbx_inspect_file(&info, fifo), SBX_EINVAL);
    alarm(0);
    assert_true(test_contains(sbx_error_last()->message, "not a regular file"));
    assert_int_equal(unlink(fifo), 0);
}

int
main(void)
{
    test_seed_init("fileops");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pad_size_follows_padme_and_buckets),
        cmocka_unit_test(malformed_markers_fail_every_reader_with_the_same_message),
        cmocka_unit_test(padded_round_trips_at_bucket_boundaries),
        cmocka_unit_test(unpadded_files_pass_through_the_pad_decryptor),
        cmocka_unit_test(unpad_source_holds_back_zero_runs_in_constant_memory),
        cmocka_unit_test(unpad_source_refuses_malformed_padding),
        cmocka_unit_test(padding_refuses_passphrases_and_bad_markers),
        cmocka_unit_test(pad_reader_gives_the_true_size),
        cmocka_unit_test(pfs_pad_and_unpad_restore_exact_bytes),
        cmocka_unit_test(pfs_pad_refuses_targets_that_do_not_hide_the_length),
        cmocka_unit_test(pfs_pad_refuses_a_fifo_without_waiting_for_a_writer),
        cmocka_unit_test(pfs_detection_is_strict),
        cmocka_unit_test(rotate_rewraps_and_keeps_the_payload),
        cmocka_unit_test(rotate_rekey_changes_the_payload),
        cmocka_unit_test(rotate_keeps_padding_and_armor),
        cmocka_unit_test(rotate_follows_the_passphrase_rules),
        cmocka_unit_test(rotate_refuses_tampered_and_truncated_files),
        cmocka_unit_test(rotate_rewrite_keeps_the_key_and_the_payload),
        cmocka_unit_test(inspect_reports_header_facts),
        cmocka_unit_test(inspect_recognises_legacy_formats),
        cmocka_unit_test(inspect_refuses_a_fifo_without_waiting_for_a_writer),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
