/*
 * tests/core/test_stream.c - sources, sinks, stream_copy, SHA-256 sink and
 * atomic file replacement.
 *
 * SHA-256 known answers: FIPS 180-2, appendix B ("abc" and the 448-bit
 * message), and the hash of the empty string.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>

#include "strongbox/common.h"
#include "strongbox/stream.h"
#include "helpers.h"

/* ---- a source that hands out at most `step` bytes per read ---- */

struct trickle_source {
    sbx_source base;
    const uint8_t *data;
    size_t len, pos, step;
    int reads;
};

static int
trickle_read(sbx_source *self, uint8_t *buf, size_t len, size_t *nread)
{
    struct trickle_source *t = (struct trickle_source *)self;
    size_t n = t->len - t->pos;
    if (n > t->step)
        n = t->step;
    if (n > len)
        n = len;
    memcpy(buf, t->data + t->pos, n);
    t->pos += n;
    *nread = n;
    t->reads++;
    return 0;
}

static void
trickle_init(struct trickle_source *t, const void *data, size_t len, size_t step)
{
    memset(t, 0, sizeof(*t));
    t->base.read = trickle_read;
    t->base.free = NULL;
    t->data = data;
    t->len = len;
    t->step = step;
}

/* ---- a sink that counts writes and finishes ---- */

struct count_sink {
    sbx_sink base;
    sbx_buf data;
    int writes, finishes;
};

static int
count_write(sbx_sink *self, const uint8_t *buf, size_t len)
{
    struct count_sink *c = (struct count_sink *)self;
    c->writes++;
    return sbx_buf_append(&c->data, buf, len);
}

static int
count_finish(sbx_sink *self)
{
    ((struct count_sink *)self)->finishes++;
    return 0;
}

static void
count_init(struct count_sink *c)
{
    memset(c, 0, sizeof(*c));
    c->base.write = count_write;
    c->base.finish = count_finish;
    c->base.free = NULL;
}

/* ---- sources and sinks ---- */

static void
mem_source_reads_everything_then_reports_end(void **state)
{
    uint8_t data[1000], out[1000];
    sbx_source *src = NULL;
    size_t got, total = 0;
    (void)state;
    test_rand_fill(data, sizeof(data));
    assert_sbx_ok(sbx_source_mem_new(&src, data, sizeof(data)));
    for (size_t step = 1; total < sizeof(data); step = step * 3 + 1) {
        size_t want = step < sizeof(data) - total ? step : sizeof(data) - total;
        assert_sbx_ok(sbx_source_read(src, out + total, want, &got));
        assert_int_equal(got, want);
        total += got;
    }
    assert_memory_equal(out, data, sizeof(data));
    for (int i = 0; i < 3; i++) {
        got = 77;
        assert_sbx_ok(sbx_source_read(src, out, sizeof(out), &got));
        assert_int_equal(got, 0);
    }
    sbx_source_free(src);
    sbx_source_free(NULL);
}

static void
mem_source_of_nothing_is_at_end(void **state)
{
    sbx_source *src = NULL;
    uint8_t b[4];
    size_t got = 9;
    (void)state;
    assert_sbx_ok(sbx_source_mem_new(&src, "", 0));
    assert_sbx_ok(sbx_source_read(src, b, sizeof(b), &got));
    assert_int_equal(got, 0);
    sbx_source_free(src);
}

static void
buf_sink_appends_to_the_callers_buffer(void **state)
{
    sbx_buf buf = SBX_BUF_INIT;
    sbx_sink *snk = NULL;
    (void)state;
    assert_sbx_ok(sbx_buf_append(&buf, "pre:", 4));
    assert_sbx_ok(sbx_sink_buf_new(&snk, &buf));
    assert_sbx_ok(sbx_sink_write(snk, (const uint8_t *)"hello", 5));
    assert_sbx_ok(sbx_sink_write(snk, (const uint8_t *)"", 0));
    assert_sbx_ok(sbx_sink_write(snk, (const uint8_t *)" world", 6));
    assert_sbx_ok(sbx_sink_finish(snk));
    sbx_sink_free(snk);
    assert_int_equal(buf.len, 15);
    assert_memory_equal(buf.ptr, "pre:hello world", 15);
    sbx_buf_dispose(&buf);
    sbx_sink_free(NULL);
}

static void
read_full_fills_the_buffer_from_a_trickling_source(void **state)
{
    uint8_t data[500], out[600];
    struct trickle_source t;
    size_t got;
    (void)state;
    test_rand_fill(data, sizeof(data));
    trickle_init(&t, data, sizeof(data), 3);
    assert_sbx_ok(sbx_source_read_full(&t.base, out, 100, &got));
    assert_int_equal(got, 100);
    assert_memory_equal(out, data, 100);
    assert_true(t.reads >= 34);
    /* Asking for more than is left returns the rest: end of data. */
    assert_sbx_ok(sbx_source_read_full(&t.base, out + 100, 500, &got));
    assert_int_equal(got, 400);
    assert_memory_equal(out, data, sizeof(data));
    assert_sbx_ok(sbx_source_read_full(&t.base, out, 10, &got));
    assert_int_equal(got, 0);
    assert_sbx_ok(sbx_source_read_full(&t.base, out, 0, &got));
    assert_int_equal(got, 0);
}

static void
stream_copy_moves_all_bytes_and_finishes_once(void **state)
{
    static uint8_t data[200000];
    struct trickle_source t;
    struct count_sink c;
    uint64_t total = 0;
    (void)state;
    test_rand_fill(data, sizeof(data));
    trickle_init(&t, data, sizeof(data), 4093);
    count_init(&c);
    assert_sbx_ok(sbx_stream_copy(&c.base, &t.base, &total));
    assert_int_equal(total, sizeof(data));
    assert_int_equal(c.finishes, 1);
    assert_int_equal(c.data.len, sizeof(data));
    assert_memory_equal(c.data.ptr, data, sizeof(data));
    sbx_buf_dispose(&c.data);

    /* Empty input: no write needed, still one finish. total may be NULL. */
    trickle_init(&t, data, 0, 1);
    count_init(&c);
    assert_sbx_ok(sbx_stream_copy(&c.base, &t.base, NULL));
    assert_int_equal(c.finishes, 1);
    assert_int_equal(c.data.len, 0);
    sbx_buf_dispose(&c.data);
}

static int
failing_read(sbx_source *self, uint8_t *buf, size_t len, size_t *nread)
{
    (void)self;
    (void)buf;
    (void)len;
    *nread = 0;
    return SBX_EIO;
}

static void
stream_copy_stops_at_a_source_error_without_finishing(void **state)
{
    sbx_source bad = {failing_read, NULL};
    struct count_sink c;
    uint64_t total = 5;
    (void)state;
    count_init(&c);
    assert_sbx_err(sbx_stream_copy(&c.base, &bad, &total), SBX_EIO);
    assert_int_equal(c.finishes, 0);
    assert_int_equal(total, 0);
    sbx_buf_dispose(&c.data);
}

struct pipe_writer {
    int fd;
    const uint8_t *data;
    size_t len;
    int rc_write, rc_finish;
};

static void *
pipe_writer_main(void *arg)
{
    struct pipe_writer *w = arg;
    sbx_sink *snk = NULL;
    w->rc_write = sbx_sink_fd_new(&snk, w->fd, true);
    if (w->rc_write == 0) {
        /* Odd write sizes, larger than the pipe buffer in total. */
        size_t off = 0, step = 1;
        while (off < w->len && w->rc_write == 0) {
            size_t n = step < w->len - off ? step : w->len - off;
            w->rc_write = sbx_sink_write(snk, w->data + off, n);
            off += n;
            step = step * 7 + 3;
        }
        w->rc_finish = sbx_sink_finish(snk);
    }
    sbx_sink_free(snk); /* closes the write end */
    return NULL;
}

static void
fd_source_and_sink_carry_data_over_a_pipe(void **state)
{
    static uint8_t data[300000], out[300000 + 10];
    int fds[2];
    pthread_t t;
    struct pipe_writer w;
    sbx_source *src = NULL;
    size_t got;
    (void)state;
    test_rand_fill(data, sizeof(data));
    assert_int_equal(pipe(fds), 0);
    w.fd = fds[1];
    w.data = data;
    w.len = sizeof(data);
    w.rc_write = w.rc_finish = -99;
    assert_int_equal(pthread_create(&t, NULL, pipe_writer_main, &w), 0);
    assert_sbx_ok(sbx_source_fd_new(&src, fds[0], true));
    assert_sbx_ok(sbx_source_read_full(src, out, sizeof(out), &got));
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(w.rc_write, 0);
    assert_int_equal(w.rc_finish, 0);
    assert_int_equal(got, sizeof(data));
    assert_memory_equal(out, data, sizeof(data));
    sbx_source_free(src); /* closes the read end */
    errno = 0;
    assert_int_equal(fcntl(fds[0], F_GETFD), -1);
    assert_int_equal(errno, EBADF);
}

static void
fd_sink_does_not_close_when_not_asked(void **state)
{
    int fds[2];
    sbx_sink *snk = NULL;
    char b[4];
    (void)state;
    assert_int_equal(pipe(fds), 0);
    assert_sbx_ok(sbx_sink_fd_new(&snk, fds[1], false));
    assert_sbx_ok(sbx_sink_write(snk, (const uint8_t *)"abc", 3));
    assert_sbx_ok(sbx_sink_finish(snk));
    sbx_sink_free(snk);
    assert_int_equal(write(fds[1], "d", 1), 1); /* still open */
    close(fds[1]);
    assert_int_equal(read(fds[0], b, sizeof(b)), 4);
    assert_memory_equal(b, "abcd", 4);
    close(fds[0]);
}

static void
file_source_reports_a_missing_file(void **state)
{
    sbx_source *src = (sbx_source *)state;
    assert_sbx_err(sbx_source_file_new(&src, "/nonexistent-sbx-dir/none.age"), SBX_ENOTFOUND);
    assert_null(src);
    assert_true(test_contains(sbx_error_last()->message, "/nonexistent-sbx-dir/none.age"));
}

/* ---- SHA-256 sink ---- */

static void
check_sha256(const uint8_t *data, size_t len, size_t step, const char *hex)
{
    sbx_sink *snk = NULL;
    uint8_t digest[32];
    char got[65];
    assert_sbx_ok(sbx_sink_sha256_new(&snk, digest));
    for (size_t off = 0; off < len; off += step) {
        size_t n = step < len - off ? step : len - off;
        assert_sbx_ok(sbx_sink_write(snk, data + off, n));
    }
    assert_sbx_ok(sbx_sink_finish(snk));
    sbx_sink_free(snk);
    test_hex(got, digest, 32);
    assert_string_equal(got, hex);
}

static void
sha256_sink_matches_fips180_vectors(void **state)
{
    static const char msg448[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    (void)state;
    check_sha256((const uint8_t *)"abc", 3, 3,
                 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    check_sha256((const uint8_t *)"abc", 3, 1,
                 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    check_sha256((const uint8_t *)"", 0, 1,
                 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    for (size_t step = 1; step <= 56; step += 5)
        check_sha256((const uint8_t *)msg448, sizeof(msg448) - 1, step,
                     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

/* ---- atomic file sink ---- */

struct tmpdir {
    char path[256];
};

static int
tmpdir_setup(void **state)
{
    struct tmpdir *d = calloc(1, sizeof(*d));
    const char *base = getenv("TMPDIR");
    if (d == NULL)
        return -1;
    snprintf(d->path, sizeof(d->path), "%s/sbx-stream-XXXXXX", base ? base : "/tmp");
    if (mkdtemp(d->path) == NULL)
        return -1;
    *state = d;
    return 0;
}

static int
tmpdir_teardown(void **state)
{
    struct tmpdir *d = *state;
    DIR *dir = opendir(d->path);
    struct dirent *e;
    char p[600];
    while (dir != NULL && (e = readdir(dir)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", d->path, e->d_name);
        unlink(p);
    }
    if (dir != NULL)
        closedir(dir);
    rmdir(d->path);
    free(d);
    return 0;
}

/* Names in the directory, sorted, joined with '|'. */
static void
list_dir(const char *path, char *out, size_t cap)
{
    char names[16][256];
    size_t n = 0;
    DIR *dir = opendir(path);
    struct dirent *e;
    assert_non_null(dir);
    while ((e = readdir(dir)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        assert_true(n < 16);
        snprintf(names[n++], sizeof(names[0]), "%s", e->d_name);
    }
    closedir(dir);
    for (size_t i = 1; i < n; i++) {
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char tmp[256];
            memcpy(tmp, names[j], sizeof(tmp));
            memcpy(names[j], names[j - 1], sizeof(tmp));
            memcpy(names[j - 1], tmp, sizeof(tmp));
        }
    }
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            strncat(out, "|", cap - strlen(out) - 1);
        strncat(out, names[i], cap - strlen(out) - 1);
    }
}

static size_t
read_file(const char *path, uint8_t *buf, size_t cap)
{
    int fd = open(path, O_RDONLY);
    ssize_t n;
    size_t total = 0;
    assert_true(fd >= 0);
    while ((n = read(fd, buf + total, cap - total)) > 0)
        total += (size_t)n;
    close(fd);
    return total;
}

static void
atomic_sink_finish_creates_the_file_with_the_requested_mode(void **state)
{
    struct tmpdir *d = *state;
    static const unsigned modes[] = {0600, 0644, 0640};
    mode_t old = umask(0);
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        char path[512], listing[1024], want[64];
        uint8_t back[64];
        struct stat st;
        sbx_sink *snk = NULL;
        snprintf(path, sizeof(path), "%s/out%zu.age", d->path, i);
        assert_sbx_ok(sbx_sink_atomic_file_new(&snk, path, modes[i]));
        assert_sbx_ok(sbx_sink_write(snk, (const uint8_t *)"secret", 6));
        /* Not visible under its final name before finish(). */
        assert_int_equal(stat(path, &st), -1);
        assert_sbx_ok(sbx_sink_finish(snk));
        sbx_sink_free(snk);
        assert_int_equal(stat(path, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 07777, modes[i]);
        assert_int_equal(read_file(path, back, sizeof(back)), 6);
        assert_memory_equal(back, "secret", 6);
        list_dir(d->path, listing, sizeof(listing));
        want[0] = '\0';
        for (size_t k = 0; k <= i; k++) {
            char one[16];
            snprintf(one, sizeof(one), "%sout%zu.age", k ? "|" : "", k);
            strncat(want, one, sizeof(want) - strlen(want) - 1);
        }
        assert_string_equal(listing, want); /* no temporary file left over */
    }
    umask(old);
}

static void
atomic_sink_free_without_finish_leaves_no_trace(void **state)
{
    struct tmpdir *d = *state;
    char path[512], listing[1024];
    sbx_sink *snk = NULL;
    (void)state;
    snprintf(path, sizeof(path), "%s/never.age", d->path);
    assert_sbx_ok(sbx_sink_atomic_file_new(&snk, path, 0600));
    assert_sbx_ok(sbx_sink_write(snk, (const uint8_t *)"partial", 7));
    list_dir(d->path, listing, sizeof(listing));
    assert_string_equal(listing, ""); /* unnamed (O_TMPFILE) until finished */
    sbx_sink_free(snk);
    list_dir(d->path, listing, sizeof(listing));
    assert_string_equal(listing, "");
}

static void
atomic_sink_free_without_finish_keeps_the_existing_target(void **state)
{
    struct tmpdir *d = *state;
    char path[512], listing[1024];
    uint8_t back[64];
    sbx_sink *snk = NULL;
    snprintf(path, sizeof(path), "%s/target", d->path);
    assert_sbx_ok(sbx_atomic_write_file(path, "old content", 11, 0644));
    assert_sbx_ok(sbx_sink_atomic_file_new(&snk, path, 0600));
    assert_sbx_ok(sbx_sink_write(snk, (const uint8_t *)"new content that is longer", 26));
    sbx_sink_free(snk);
    list_dir(d->path, listing, sizeof(listing));
    assert_string_equal(listing, "target");
    assert_int_equal(read_file(path, back, sizeof(back)), 11);
    assert_memory_equal(back, "old content", 11);
}

static void
atomic_write_file_replaces_content(void **state)
{
    struct tmpdir *d = *state;
    char path[512], listing[1024];
    static uint8_t big[100000], back[100001];
    snprintf(path, sizeof(path), "%s/file.txt", d->path);
    assert_sbx_ok(sbx_atomic_write_file(path, "first version, long", 19, 0600));
    assert_sbx_ok(sbx_atomic_write_file(path, "v2", 2, 0600));
    assert_int_equal(read_file(path, back, sizeof(back)), 2);
    assert_memory_equal(back, "v2", 2);
    test_rand_fill(big, sizeof(big));
    assert_sbx_ok(sbx_atomic_write_file(path, big, sizeof(big), 0600));
    assert_int_equal(read_file(path, back, sizeof(back)), sizeof(big));
    assert_memory_equal(back, big, sizeof(big));
    assert_sbx_ok(sbx_atomic_write_file(path, "", 0, 0600));
    assert_int_equal(read_file(path, back, sizeof(back)), 0);
    list_dir(d->path, listing, sizeof(listing));
    assert_string_equal(listing, "file.txt");
}

static void
atomic_sink_in_a_missing_directory_fails_with_eio(void **state)
{
    struct tmpdir *d = *state;
    char path[512];
    sbx_sink *snk = (sbx_sink *)d;
    snprintf(path, sizeof(path), "%s/no/such/dir/f", d->path);
    assert_sbx_err(sbx_sink_atomic_file_new(&snk, path, 0600), SBX_EIO);
    assert_null(snk);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mem_source_reads_everything_then_reports_end),
        cmocka_unit_test(mem_source_of_nothing_is_at_end),
        cmocka_unit_test(buf_sink_appends_to_the_callers_buffer),
        cmocka_unit_test(read_full_fills_the_buffer_from_a_trickling_source),
        cmocka_unit_test(stream_copy_moves_all_bytes_and_finishes_once),
        cmocka_unit_test(stream_copy_stops_at_a_source_error_without_finishing),
        cmocka_unit_test(fd_source_and_sink_carry_data_over_a_pipe),
        cmocka_unit_test(fd_sink_does_not_close_when_not_asked),
        cmocka_unit_test(file_source_reports_a_missing_file),
        cmocka_unit_test(sha256_sink_matches_fips180_vectors),
        cmocka_unit_test_setup_teardown(atomic_sink_finish_creates_the_file_with_the_requested_mode,
                                        tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(atomic_sink_free_without_finish_leaves_no_trace,
                                        tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(atomic_sink_free_without_finish_keeps_the_existing_target,
                                        tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(atomic_write_file_replaces_content, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test_setup_teardown(atomic_sink_in_a_missing_directory_fails_with_eio,
                                        tmpdir_setup, tmpdir_teardown),
    };
    test_seed_init("core/stream");
    return cmocka_run_group_tests_name("core/stream", tests, NULL, NULL);
}
