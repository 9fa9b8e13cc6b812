/*
 * tests/age/test_sys_age.c - the public stanza interface (strongbox/sys/age.h)
 * used the way an extension uses it: a recipient type and an identity type
 * defined here, outside src/age, with public headers only.
 *
 * The test type "sbx-test-pad1": the body is the file key XOR a 16-byte
 * secret both sides know, and the argument names the secret ("k1"). It is
 * not a real key type; it only has to travel through the interface.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <strongbox/strongbox.h>
#include <strongbox/sys/age.h>

#include "helpers.h"

#define TEST_TYPE "sbx-test-pad1"

static const uint8_t secret[SBX_AGE_FILE_KEY_LEN] = {1, 2,  3,  4,  5,  6,  7,  8,
                                                     9, 10, 11, 12, 13, 14, 15, 16};

/* ---- the recipient type ---- */

static int
test_wrap(const sbx_recipient *r, sbx_age_header *h, const uint8_t file_key[SBX_AGE_FILE_KEY_LEN])
{
    uint8_t body[SBX_AGE_FILE_KEY_LEN];
    const char *args[1] = {"k1"};
    (void)r;
    for (size_t i = 0; i < sizeof(body); i++)
        body[i] = file_key[i] ^ secret[i];
    return sbx_age_header_add_stanza(h, TEST_TYPE, args, 1, body, sizeof(body));
}

static void
test_recipient_free(sbx_recipient *r)
{
    free(r);
}

static const sbx_recipient_ops test_recipient_ops = {
    SBX_RECIPIENT_OPS_VERSION, TEST_TYPE, 0, test_wrap, NULL, test_recipient_free,
};

static const sbx_recipient_ops alone_recipient_ops = {
    SBX_RECIPIENT_OPS_VERSION, TEST_TYPE, SBX_AGE_STANZA_ALONE, test_wrap, NULL,
    test_recipient_free,
};

static sbx_recipient *
test_recipient(const sbx_recipient_ops *ops)
{
    sbx_recipient *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    r->ops = ops;
    return r;
}

/* ---- the identity type ---- */

struct test_identity {
    sbx_identity base;
    size_t calls;     /* unwrap() calls */
    size_t offered;   /* stanzas offered in the last call */
    const char *hint; /* what explain() says, or NULL */
};

static int
test_unwrap(sbx_identity *id, const sbx_age_stanza *const *stanzas, size_t count,
            uint8_t file_key[SBX_AGE_FILE_KEY_LEN])
{
    struct test_identity *t = (struct test_identity *)id;
    t->calls++;
    t->offered = count;
    for (size_t i = 0; i < count; i++) {
        const sbx_age_stanza *s = stanzas[i];
        assert_string_equal(s->type, TEST_TYPE); // only the types it consumes
        if (s->nargs != 1 || strcmp(s->args[0], "k1") != 0 || s->body_len != 16)
            continue;
        for (size_t k = 0; k < SBX_AGE_FILE_KEY_LEN; k++)
            file_key[k] = s->body[k] ^ secret[k];
        return 0;
    }
    return SBX_AGE_NOT_MINE;
}

static int
test_explain(sbx_identity *id)
{
    struct test_identity *t = (struct test_identity *)id;
    return t->hint != NULL ? sbx_error_set(SBX_ENOMATCH, "%s", t->hint) : 0;
}

static void
test_identity_free(sbx_identity *id)
{
    free(id);
}

static const char *const test_types[] = {TEST_TYPE, NULL};

static const sbx_identity_ops test_identity_ops = {
    SBX_IDENTITY_OPS_VERSION, test_types, test_unwrap, test_explain, NULL, NULL, test_identity_free,
};

static struct test_identity *
test_identity(void)
{
    struct test_identity *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    t->base.ops = &test_identity_ops;
    return t;
}

/* ---- the stanza type's rule ---- */

static int
test_check(const sbx_age_stanza *s, size_t index)
{
    if (s->nargs != 1 || s->body_len != 16)
        return sbx_error_set(SBX_EHEADER, "%s stanza %zu: one argument and a 16-byte body",
                             TEST_TYPE, index + 1);
    return 0;
}

static const sbx_age_stanza_type test_type = {
    SBX_AGE_STANZA_TYPE_VERSION, TEST_TYPE, 0, test_check, NULL,
};

/* ---- helpers ---- */

static void
encrypt_both(sbx_buf *file, sbx_identity **x25519, const void *pt, size_t len)
{
    sbx_recipient *rs[2];
    assert_sbx_ok(sbx_identity_generate(x25519));
    assert_sbx_ok(sbx_identity_to_recipient(&rs[0], *x25519));
    rs[1] = test_recipient(&test_recipient_ops);
    assert_sbx_ok(sbx_age_encrypt_buf(file, pt, len, rs, 2, NULL));
    sbx_recipient_free(rs[0]);
    sbx_recipient_free(rs[1]);
}

static void
stanza_of_its_own_type_round_trips_beside_x25519(void **state)
{
    (void)state;
    static const char msg[] = "lab data from human subjects";
    sbx_buf file = SBX_BUF_INIT, out = SBX_BUF_INIT;
    sbx_identity *x = NULL;
    encrypt_both(&file, &x, msg, sizeof(msg));
    assert_non_null(memmem(file.ptr, file.len, "-> " TEST_TYPE " k1\n", 18));

    struct test_identity *t = test_identity();
    sbx_identity *ids[1] = {&t->base};
    assert_sbx_ok(sbx_age_decrypt_buf(&out, file.ptr, file.len, ids, 1, NULL));
    assert_int_equal(out.len, sizeof(msg));
    assert_memory_equal(out.ptr, msg, sizeof(msg));
    assert_int_equal(t->calls, 1);
    assert_int_equal(t->offered, 1); // the X25519 stanza was not offered to it

    out.len = 0;
    assert_sbx_ok(sbx_age_decrypt_buf(&out, file.ptr, file.len, &x, 1, NULL));
    assert_memory_equal(out.ptr, msg, sizeof(msg));
    sbx_identity_free(&t->base);
    sbx_identity_free(x);
    sbx_buf_dispose(&out);
    sbx_buf_dispose(&file);
}

/* Run a shell command line; its exit status. */
static int
run(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    return system(cmd);
}

static void
age_opens_the_file_with_the_x25519_key(void **state)
{
    (void)state;
    static const char msg[] = "readable by the stock age";
    char dir[] = "/tmp/sbx-sys-age-XXXXXX", path[512];
    sbx_buf file = SBX_BUF_INIT, key = SBX_BUF_INIT;
    sbx_identity *x = NULL;
    FILE *f;
    encrypt_both(&file, &x, msg, sizeof(msg) - 1);
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/f.age", dir);
    assert_non_null(f = fopen(path, "wb"));
    assert_int_equal(fwrite(file.ptr, 1, file.len, f), file.len);
    fclose(f);
    assert_sbx_ok(sbx_identity_to_string(x, &key));
    snprintf(path, sizeof(path), "%s/key.txt", dir);
    assert_non_null(f = fopen(path, "w"));
    fprintf(f, "%.*s\n", (int)key.len, (const char *)key.ptr);
    fclose(f);
    // age is installed by scripts/deps.sh: its absence is a failure, not a skip.
    assert_int_equal(run("age -d -i %s/key.txt -o %s/out %s/f.age", dir, dir, dir), 0);
    snprintf(path, sizeof(path), "%s/out", dir);
    assert_non_null(f = fopen(path, "rb"));
    char buf[128];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    assert_int_equal(n, sizeof(msg) - 1);
    assert_memory_equal(buf, msg, n);
    assert_int_equal(run("rm -rf %s", dir), 0);
    sbx_identity_free(x);
    sbx_buf_dispose(&key);
    sbx_buf_dispose(&file);
}

static void
registered_rule_fails_a_malformed_stanza_whoever_opens_the_file(void **state)
{
    (void)state;
    sbx_buf file = SBX_BUF_INIT, out = SBX_BUF_INIT;
    sbx_identity *x = NULL;
    encrypt_both(&file, &x, "x", 1);
    // Rewrite the test stanza with an extra argument (and a valid new MAC: the
    // header is rebuilt with the file key, as a forger holding it could).
    sbx_source *src = NULL;
    sbx_age_header *h = NULL, *bad = NULL;
    uint8_t fk[SBX_AGE_FILE_KEY_LEN];
    assert_sbx_ok(sbx_source_mem_new(&src, file.ptr, file.len));
    assert_sbx_ok(sbx_age_header_read(&h, src));
    assert_sbx_ok(sbx_age_header_unwrap(h, &x, 1));
    assert_sbx_ok(sbx_age_header_file_key(h, fk));
    assert_sbx_ok(sbx_age_header_new(&bad));
    for (size_t i = 0; i < sbx_age_header_count(h); i++) {
        const sbx_age_stanza *s = sbx_age_header_stanza(h, i);
        const char *args[2] = {"k1", "extra"};
        if (strcmp(s->type, TEST_TYPE) == 0)
            assert_sbx_ok(sbx_age_header_add_stanza(bad, s->type, args, 2, s->body, s->body_len));
        else
            assert_sbx_ok(sbx_age_header_copy_stanza(bad, s));
    }
    sbx_buf forged = SBX_BUF_INIT;
    size_t rest_len;
    const uint8_t *rest = sbx_age_header_rest(h, &rest_len);
    assert_sbx_ok(sbx_age_header_encode(&forged, bad, fk));
    assert_sbx_ok(sbx_buf_append(&forged, rest, rest_len));

    // Unknown type: skipped, X25519 opens it (age does the same).
    assert_null(sbx_age_stanza_type_find(TEST_TYPE));
    assert_sbx_ok(sbx_age_decrypt_buf(&out, forged.ptr, forged.len, &x, 1, NULL));
    // Registered: the rule fails the file even for the X25519 key.
    assert_sbx_ok(sbx_age_stanza_type_register(&test_type));
    assert_ptr_equal(sbx_age_stanza_type_find(TEST_TYPE), &test_type);
    out.len = 0;
    assert_sbx_err(sbx_age_decrypt_buf(&out, forged.ptr, forged.len, &x, 1, NULL), SBX_EHEADER);
    assert_non_null(strstr(sbx_error_last()->message, TEST_TYPE " stanza 2"));
    // Encoding refuses a header that breaks a registered rule.
    forged.len = 0;
    assert_sbx_err(sbx_age_header_encode(&forged, bad, fk), SBX_EINVAL);

    sbx_wipe(fk, sizeof(fk));
    sbx_buf_dispose(&forged);
    sbx_age_header_free(bad);
    sbx_age_header_free(h);
    sbx_source_free(src);
    sbx_identity_free(x);
    sbx_buf_dispose(&out);
    sbx_buf_dispose(&file);
}

static void
registration_keeps_one_rule_per_type(void **state)
{
    (void)state;
    static const sbx_age_stanza_type other = {SBX_AGE_STANZA_TYPE_VERSION, TEST_TYPE, 0, NULL,
                                              NULL};
    static const sbx_age_stanza_type x25519 = {SBX_AGE_STANZA_TYPE_VERSION, "X25519", 0, NULL,
                                               NULL};
    static const sbx_age_stanza_type bad_version = {99, "sbx-test-v99", 0, NULL, NULL};
    assert_sbx_ok(sbx_age_stanza_type_register(&test_type));
    assert_sbx_ok(sbx_age_stanza_type_register(&test_type)); // the same one again
    assert_sbx_err(sbx_age_stanza_type_register(&other), SBX_EEXISTS);
    assert_sbx_err(sbx_age_stanza_type_register(&x25519), SBX_EEXISTS); // built in, registered
    assert_sbx_err(sbx_age_stanza_type_register(&bad_version), SBX_EINVAL);
    assert_non_null(sbx_age_stanza_type_find("scrypt"));
    assert_true(sbx_age_stanza_type_find("scrypt")->flags & SBX_AGE_STANZA_ALONE);
}

static void
alone_type_cannot_be_combined(void **state)
{
    (void)state;
    sbx_buf file = SBX_BUF_INIT;
    sbx_identity *x = NULL;
    sbx_recipient *rs[2];
    assert_sbx_ok(sbx_identity_generate(&x));
    assert_sbx_ok(sbx_identity_to_recipient(&rs[0], x));
    rs[1] = test_recipient(&alone_recipient_ops);
    assert_sbx_err(sbx_age_encrypt_buf(&file, "x", 1, rs, 2, NULL), SBX_EINVAL);
    assert_int_equal(file.len, 0);
    assert_sbx_ok(sbx_age_encrypt_buf(&file, "x", 1, &rs[1], 1, NULL)); // alone is fine
    sbx_recipient_free(rs[0]);
    sbx_recipient_free(rs[1]);
    sbx_identity_free(x);
    sbx_buf_dispose(&file);
}

static void
explain_hint_reaches_the_no_match_message(void **state)
{
    (void)state;
    sbx_buf file = SBX_BUF_INIT, out = SBX_BUF_INIT;
    sbx_identity *x = NULL;
    sbx_recipient *r;
    struct test_identity *t = test_identity();
    t->hint = "the test server was not asked";
    assert_sbx_ok(sbx_identity_generate(&x));
    assert_sbx_ok(sbx_identity_to_recipient(&r, x));
    assert_sbx_ok(sbx_age_encrypt_buf(&file, "x", 1, &r, 1, NULL));
    sbx_identity *ids[1] = {&t->base};
    assert_sbx_err(sbx_age_decrypt_buf(&out, file.ptr, file.len, ids, 1, NULL), SBX_ENOMATCH);
    assert_int_equal(t->calls, 0); // no stanza of its type: never called
    assert_non_null(strstr(sbx_error_last()->message, "no identity matched"));
    assert_non_null(strstr(sbx_error_last()->message, "the test server was not asked"));
    sbx_identity_free(&t->base);
    sbx_recipient_free(r);
    sbx_identity_free(x);
    sbx_buf_dispose(&out);
    sbx_buf_dispose(&file);
}

static void
header_opens_once_and_payload_follows(void **state)
{
    (void)state;
    static const char msg[] = "payload after an opened header";
    sbx_buf file = SBX_BUF_INIT, out = SBX_BUF_INIT;
    sbx_identity *x = NULL;
    sbx_source *src = NULL, *dec = NULL;
    sbx_sink *snk = NULL;
    sbx_age_header *h = NULL;
    uint8_t fk[SBX_AGE_FILE_KEY_LEN], wrong[SBX_AGE_FILE_KEY_LEN] = {0};
    size_t hlen, rlen;
    encrypt_both(&file, &x, msg, sizeof(msg));
    assert_sbx_ok(sbx_source_mem_new(&src, file.ptr, file.len));
    assert_sbx_ok(sbx_age_header_read(&h, src));
    assert_int_equal(sbx_age_header_count(h), 2);
    assert_non_null(sbx_age_header_find(h, "X25519"));
    assert_null(sbx_age_header_find(h, "scrypt"));
    assert_non_null(sbx_age_header_bytes(h, &hlen));
    assert_non_null(sbx_age_header_rest(h, &rlen));
    assert_true(hlen + rlen <= file.len);
    assert_sbx_err(sbx_age_header_file_key(h, fk), SBX_EINVAL); // not opened yet
    assert_sbx_err(sbx_age_header_set_file_key(h, wrong), SBX_EMAC);
    assert_sbx_err(sbx_age_decryptor_new_opened(&dec, h, src, NULL), SBX_EINVAL);
    assert_sbx_ok(sbx_age_header_unwrap(h, &x, 1));
    assert_sbx_ok(sbx_age_header_file_key(h, fk));
    assert_sbx_ok(sbx_age_decryptor_new_opened(&dec, h, src, NULL));
    sbx_age_header_free(h); // the decryptor keeps what it needs
    assert_sbx_ok(sbx_sink_buf_new(&snk, &out));
    assert_sbx_ok(sbx_stream_copy(snk, dec, NULL));
    assert_int_equal(out.len, sizeof(msg));
    assert_memory_equal(out.ptr, msg, sizeof(msg));
    sbx_wipe(fk, sizeof(fk));
    sbx_sink_free(snk);
    sbx_source_free(dec);
    sbx_source_free(src);
    sbx_identity_free(x);
    sbx_buf_dispose(&out);
    sbx_buf_dispose(&file);
}

static void
encryptor_with_a_built_header_and_key(void **state)
{
    (void)state;
    static const char msg[] = "a header built by hand";
    sbx_buf file = SBX_BUF_INIT, out = SBX_BUF_INIT;
    sbx_identity *x = NULL;
    sbx_recipient *r = NULL;
    sbx_sink *snk = NULL, *enc = NULL;
    sbx_age_header *h = NULL;
    uint8_t fk[SBX_AGE_FILE_KEY_LEN];
    const char *args[1] = {"v1"};
    assert_sbx_ok(sbx_identity_generate(&x));
    assert_sbx_ok(sbx_identity_to_recipient(&r, x));
    assert_sbx_ok(sbx_random_bytes(fk, sizeof(fk)));
    assert_sbx_ok(sbx_age_header_new(&h));
    assert_sbx_err(sbx_age_header_encode(&file, h, fk), SBX_EINVAL); // no stanza
    // A built header was not read from a file: nothing to unwrap or authenticate.
    assert_sbx_err(sbx_age_header_unwrap(h, &x, 1), SBX_EINVAL);
    assert_sbx_err(sbx_age_header_set_file_key(h, fk), SBX_EINVAL);
    size_t none = 1;
    assert_null(sbx_age_header_bytes(h, &none));
    assert_int_equal(none, 0);
    assert_sbx_ok(sbx_age_header_wrap(h, &r, 1, fk));
    assert_sbx_ok(sbx_age_header_add_stanza(h, "sbx-test-note", args, 1, NULL, 0));
    assert_sbx_err(sbx_age_header_add_stanza(h, "has space", args, 1, NULL, 0), SBX_EINVAL);
    const char *bad_args[1] = {""};
    assert_sbx_err(sbx_age_header_add_stanza(h, "t", bad_args, 1, NULL, 0), SBX_EINVAL);
    assert_int_equal(sbx_age_header_count(h), 2);
    assert_sbx_ok(sbx_sink_buf_new(&snk, &file));
    assert_sbx_ok(sbx_age_encryptor_new_with_header(&enc, snk, h, fk, NULL));
    sbx_age_header_free(h);
    assert_sbx_ok(sbx_sink_write(enc, (const uint8_t *)msg, sizeof(msg)));
    assert_sbx_ok(sbx_sink_finish(enc));
    assert_non_null(memmem(file.ptr, file.len, "-> sbx-test-note v1\n", 20));
    assert_sbx_ok(sbx_age_decrypt_buf(&out, file.ptr, file.len, &x, 1, NULL));
    assert_memory_equal(out.ptr, msg, sizeof(msg));
    sbx_wipe(fk, sizeof(fk));
    sbx_sink_free(enc);
    sbx_sink_free(snk);
    sbx_recipient_free(r);
    sbx_identity_free(x);
    sbx_buf_dispose(&out);
    sbx_buf_dispose(&file);
}

/* Copy the payload of file (len bytes) after its opened header: the result code. */
static int
copy_payload_of(const uint8_t *file, size_t len, sbx_identity *x, sbx_buf *out)
{
    sbx_source *src = NULL;
    sbx_sink *snk = NULL;
    sbx_age_header *h = NULL;
    uint64_t total = 0;
    int err;
    assert_sbx_ok(sbx_source_mem_new(&src, file, len));
    assert_sbx_ok(sbx_sink_buf_new(&snk, out));
    assert_sbx_ok(sbx_age_header_read(&h, src));
    assert_sbx_ok(sbx_age_header_unwrap(h, &x, 1));
    err = sbx_age_payload_copy(snk, h, src, &total);
    if (err == 0)
        assert_int_equal(total, out->len);
    sbx_age_header_free(h);
    sbx_sink_free(snk);
    sbx_source_free(src);
    return err;
}

static void
payload_copy_keeps_bytes_and_refuses_a_bad_end(void **state)
{
    (void)state;
    sbx_buf file = SBX_BUF_INIT, out = SBX_BUF_INIT, ext = SBX_BUF_INIT;
    sbx_identity *x = NULL;
    uint8_t *big = calloc(1, 200000);
    size_t hlen;
    assert_non_null(big);
    encrypt_both(&file, &x, big, 200000); // four chunks
    {
        sbx_source *src = NULL;
        sbx_age_header *h = NULL;
        assert_sbx_ok(sbx_source_mem_new(&src, file.ptr, file.len));
        assert_sbx_ok(sbx_age_header_read(&h, src));
        (void)sbx_age_header_bytes(h, &hlen);
        sbx_age_header_free(h);
        sbx_source_free(src);
    }
    assert_sbx_ok(copy_payload_of(file.ptr, file.len, x, &out));
    assert_int_equal(out.len, file.len - hlen);
    assert_memory_equal(out.ptr, file.ptr + hlen, out.len);
    // Cut at a chunk boundary (the last full chunk then ends the file) and mid-chunk.
    out.len = 0;
    assert_sbx_err(copy_payload_of(file.ptr, hlen + 16 + 3 * 65552, x, &out), SBX_EPAYLOAD);
    out.len = 0;
    assert_sbx_err(copy_payload_of(file.ptr, file.len - 1, x, &out), SBX_EPAYLOAD);
    // Bytes appended.
    assert_sbx_ok(sbx_buf_append(&ext, file.ptr, file.len));
    assert_sbx_ok(sbx_buf_append(&ext, "x", 1));
    out.len = 0;
    assert_sbx_err(copy_payload_of(ext.ptr, ext.len, x, &out), SBX_EPAYLOAD);
    free(big);
    sbx_identity_free(x);
    sbx_buf_dispose(&ext);
    sbx_buf_dispose(&out);
    sbx_buf_dispose(&file);
}

static void
header_read_fd_checks_the_file_and_reads_with_pread(void **state)
{
    (void)state;
    static const char msg[] = "random access after an opened header";
    char path[] = "/tmp/sbx-sys-age-fd-XXXXXX";
    sbx_buf file = SBX_BUF_INIT, armored = SBX_BUF_INIT;
    sbx_identity *x = NULL;
    sbx_age_header *h = NULL;
    sbx_age_reader *r = NULL;
    sbx_age_encrypt_options ao = SBX_AGE_ENCRYPT_OPTIONS_INIT;
    sbx_recipient *rc = NULL;
    char got[64];
    size_t n = 0;
    int fds[2];
    encrypt_both(&file, &x, msg, sizeof(msg));
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, file.ptr, file.len), (ssize_t)file.len);
    assert_sbx_ok(sbx_age_header_read_fd(&h, fd));
    assert_int_equal(lseek(fd, 0, SEEK_CUR), (off_t)file.len); // the fd offset is untouched
    assert_sbx_ok(sbx_age_header_unwrap(h, &x, 1));
    assert_sbx_ok(sbx_age_reader_open_opened(&r, fd, h));
    assert_sbx_ok(sbx_age_reader_pread(r, got, sizeof(got), 0, &n));
    assert_int_equal(n, sizeof(msg));
    assert_memory_equal(got, msg, n);
    sbx_age_reader_free(r);
    sbx_age_header_free(h);
    // Armored: refused before anything is parsed.
    ao.armor = true;
    assert_sbx_ok(sbx_identity_to_recipient(&rc, x));
    assert_sbx_ok(sbx_age_encrypt_buf(&armored, msg, sizeof(msg), &rc, 1, &ao));
    assert_int_equal(ftruncate(fd, 0), 0);
    assert_int_equal(pwrite(fd, armored.ptr, armored.len, 0), (ssize_t)armored.len);
    assert_sbx_err(sbx_age_header_read_fd(&h, fd), SBX_EINVAL);
    assert_null(h);
    // A pipe is not seekable.
    assert_int_equal(pipe(fds), 0);
    assert_sbx_err(sbx_age_header_read_fd(&h, fds[0]), SBX_EINVAL);
    close(fds[0]);
    close(fds[1]);
    close(fd);
    unlink(path);
    sbx_recipient_free(rc);
    sbx_identity_free(x);
    sbx_buf_dispose(&armored);
    sbx_buf_dispose(&file);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stanza_of_its_own_type_round_trips_beside_x25519),
        cmocka_unit_test(age_opens_the_file_with_the_x25519_key),
        // before registration_keeps_one_rule_per_type: it needs the type unregistered first
        cmocka_unit_test(registered_rule_fails_a_malformed_stanza_whoever_opens_the_file),
        cmocka_unit_test(registration_keeps_one_rule_per_type),
        cmocka_unit_test(alone_type_cannot_be_combined),
        cmocka_unit_test(explain_hint_reaches_the_no_match_message),
        cmocka_unit_test(header_opens_once_and_payload_follows),
        cmocka_unit_test(encryptor_with_a_built_header_and_key),
        cmocka_unit_test(payload_copy_keeps_bytes_and_refuses_a_bad_end),
        cmocka_unit_test(header_read_fd_checks_the_file_and_reads_with_pread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
