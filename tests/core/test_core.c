/*
 * tests/core/test_core.c - errors, random numbers, secure memory, sbx_buf.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "strongbox/age.h"
#include "strongbox/common.h"
#include "strongbox/encoding.h"
#include "strongbox/error.h"
#include "strongbox/memory.h"
#include "strongbox/random.h"
#include "helpers.h"

/* ---- errors ---- */

static const struct {
    int code;
    const char *name;
} all_codes[] = {
    {SBX_OK, "SBX_OK"},
    {SBX_EINVAL, "SBX_EINVAL"},
    {SBX_ENOMEM, "SBX_ENOMEM"},
    {SBX_EIO, "SBX_EIO"},
    {SBX_EFORMAT, "SBX_EFORMAT"},
    {SBX_EAUTH, "SBX_EAUTH"},
    {SBX_ENOKEY, "SBX_ENOKEY"},
    {SBX_ENOTFOUND, "SBX_ENOTFOUND"},
    {SBX_ETOOBIG, "SBX_ETOOBIG"},
    {SBX_ECRYPTO, "SBX_ECRYPTO"},
    {SBX_EHEADER, "SBX_EHEADER"},
    {SBX_ENOMATCH, "SBX_ENOMATCH"},
    {SBX_EMAC, "SBX_EMAC"},
    {SBX_EPAYLOAD, "SBX_EPAYLOAD"},
    {SBX_EARMOR, "SBX_EARMOR"},
    {SBX_EEXISTS, "SBX_EEXISTS"},
    {SBX_ECANCELED, "SBX_ECANCELED"},
    {SBX_EUNSUPPORTED, "SBX_EUNSUPPORTED"},
};
#define NCODES (sizeof(all_codes) / sizeof(all_codes[0]))

static void
error_codes_have_stable_values(void **state)
{
    (void)state;
    /* The header promises stable values: 0, then -1 .. -17 in order. */
    for (size_t i = 0; i < NCODES; i++)
        assert_int_equal(all_codes[i].code, -(int)i);
}

static void
error_name_is_the_symbol_for_every_code(void **state)
{
    (void)state;
    for (size_t i = 0; i < NCODES; i++)
        assert_string_equal(sbx_error_name(all_codes[i].code), all_codes[i].name);
    assert_non_null(sbx_error_name(-1000));
    assert_non_null(sbx_error_name(7));
    for (size_t i = 0; i < NCODES; i++)
        assert_string_not_equal(sbx_error_name(-1000), all_codes[i].name);
}

static void
strerror_describes_every_code_distinctly(void **state)
{
    const char *unknown = sbx_strerror(-1000);
    (void)state;
    assert_non_null(unknown);
    assert_non_null(sbx_strerror(12345));
    for (size_t i = 0; i < NCODES; i++) {
        const char *s = sbx_strerror(all_codes[i].code);
        assert_non_null(s);
        assert_true(strlen(s) > 0);
        assert_string_not_equal(s, unknown);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(s, sbx_strerror(all_codes[j].code));
    }
}

/*
 * A message that wraps the previous one (the library does this: "malformed
 * recipient: %s" with sbx_error_last()->message) must not read the buffer it
 * is writing (found by valgrind under the Python package: overlapping
 * vsnprintf source and destination).
 */
static void
error_message_may_wrap_the_previous_message(void **state)
{
    (void)state;
    sbx_error_set(SBX_EFORMAT, "inner %d", 7);
    sbx_error_set(SBX_EFORMAT, "0123456789 outer: %s", sbx_error_last()->message);
    assert_string_equal(sbx_error_last()->message, "0123456789 outer: inner 7");
    sbx_error_clear();
}

static void
error_last_is_never_null(void **state)
{
    uint64_t v;
    (void)state;
    sbx_error_clear();
    const sbx_error *e = sbx_error_last();
    assert_non_null(e);
    assert_int_equal(e->code, SBX_OK);
    assert_int_equal(e->sys_errno, 0);
    assert_non_null(e->message);
    assert_string_equal(e->message, "no error");
    assert_sbx_err(sbx_random_uniform(&v, 0), SBX_EINVAL);
    e = sbx_error_last();
    assert_non_null(e);
    assert_int_equal(e->code, SBX_EINVAL);
    assert_non_null(e->message);
    assert_true(strlen(e->message) > 0);
    sbx_error_clear();
    e = sbx_error_last();
    assert_int_equal(e->code, SBX_OK);
    assert_non_null(e->message);
}

struct thread_result {
    int initial_code;
    int code_after;
    char message[256];
};

static void *
thread_main(void *arg)
{
    struct thread_result *res = arg;
    uint8_t out[8];
    size_t n;
    res->initial_code = sbx_error_last()->code;
    if (sbx_base64_decode(out, sizeof(out), &n, "Zg==", 4, false) == 0)
        return NULL;
    /* Give the main thread time to overwrite its own error if it were shared. */
    usleep(20000);
    res->code_after = sbx_error_last()->code;
    snprintf(res->message, sizeof(res->message), "%s", sbx_error_last()->message);
    return NULL;
}

static void
error_last_is_per_thread(void **state)
{
    pthread_t t;
    struct thread_result res;
    uint64_t v;
    (void)state;
    memset(&res, 0, sizeof(res));
    assert_sbx_err(sbx_random_uniform(&v, 0), SBX_EINVAL);
    char main_msg[256];
    snprintf(main_msg, sizeof(main_msg), "%s", sbx_error_last()->message);
    assert_int_equal(pthread_create(&t, NULL, thread_main, &res), 0);
    usleep(5000);
    sbx_error_clear(); /* must not touch the other thread's error */
    assert_sbx_err(sbx_random_uniform(&v, 0), SBX_EINVAL);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(res.initial_code, SBX_OK);
    assert_int_equal(res.code_after, SBX_EFORMAT);
    assert_string_not_equal(res.message, main_msg);
    /* The main thread still sees its own error. */
    assert_int_equal(sbx_error_last()->code, SBX_EINVAL);
    assert_string_equal(sbx_error_last()->message, main_msg);
}

/* ---- random ---- */

static void
random_bytes_are_not_constant(void **state)
{
    uint8_t a[64], b[64], zero[64] = {0};
    (void)state;
    assert_sbx_ok(sbx_random_bytes(a, sizeof(a)));
    assert_sbx_ok(sbx_random_bytes(b, sizeof(b)));
    assert_memory_not_equal(a, b, sizeof(a));
    assert_memory_not_equal(a, zero, sizeof(a));
    /* Every byte position takes more than one value over a few draws. */
    uint8_t first[16], seen_diff[16] = {0}, buf[16];
    assert_sbx_ok(sbx_random_bytes(first, sizeof(first)));
    for (int r = 0; r < 32; r++) {
        assert_sbx_ok(sbx_random_bytes(buf, sizeof(buf)));
        for (size_t i = 0; i < sizeof(buf); i++)
            seen_diff[i] |= (uint8_t)(buf[i] != first[i]);
    }
    for (size_t i = 0; i < sizeof(buf); i++)
        assert_int_equal(seen_diff[i], 1);
    assert_sbx_ok(sbx_random_bytes(a, 0));
}

static void
random_uniform_respects_bounds(void **state)
{
    uint64_t v = 99;
    (void)state;
    assert_sbx_err(sbx_random_uniform(&v, 0), SBX_EINVAL);
    assert_int_equal(v, 0);
    for (int i = 0; i < 100; i++) {
        v = 99;
        assert_sbx_ok(sbx_random_uniform(&v, 1));
        assert_int_equal(v, 0);
    }
    static const uint64_t bounds[] = {2, 3, 6, 7, 255, 256, 1000, (1ULL << 63) + 1, UINT64_MAX};
    for (size_t b = 0; b < sizeof(bounds) / sizeof(bounds[0]); b++) {
        for (int i = 0; i < 200; i++) {
            assert_sbx_ok(sbx_random_uniform(&v, bounds[b]));
            assert_true(v < bounds[b]);
        }
    }
}

/* A loose chi-square check: 60,000 draws over 6 buckets, 5 degrees of freedom. */
static void
random_uniform_is_roughly_uniform(void **state)
{
    enum { BUCKETS = 6, DRAWS = 60000 };
    unsigned long count[BUCKETS] = {0};
    (void)state;
    for (int i = 0; i < DRAWS; i++) {
        uint64_t v;
        assert_sbx_ok(sbx_random_uniform(&v, BUCKETS));
        assert_true(v < BUCKETS);
        count[v]++;
    }
    double expected = (double)DRAWS / BUCKETS, chi2 = 0;
    for (int i = 0; i < BUCKETS; i++) {
        double d = (double)count[i] - expected;
        chi2 += d * d / expected;
    }
    /* P(chi2 > 40 | 5 dof) is about 1.5e-7: a failure means a real bias. */
    if (chi2 > 40.0) {
        print_error("chi-square %.1f over 6 buckets: %lu %lu %lu %lu %lu %lu\n", chi2, count[0],
                    count[1], count[2], count[3], count[4], count[5]);
        fail();
    }
}

/* ---- secure memory ---- */

static void
init_reports_the_secure_heap_state(void **state)
{
    (void)state;
    int rc = sbx_init();
    assert_true(rc == 0 || rc == SBX_EUNSUPPORTED);
    int rc2 = sbx_init(); /* idempotent */
    assert_int_equal(rc, rc2);
}

static void
secret_alloc_returns_zeroed_memory(void **state)
{
    (void)state;
    for (size_t n = 1; n <= 4096; n *= 4) {
        uint8_t *p = sbx_secret_alloc(n);
        assert_non_null(p);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(p[i], 0);
        memset(p, 0xa5, n);
        (void)sbx_secret_is_locked(p);
        sbx_secret_free(p, n);
    }
    sbx_secret_free(NULL, 0);
    sbx_secret_free(NULL, 16);
}

static void
secret_alloc_gives_distinct_blocks(void **state)
{
    uint8_t *p[32];
    (void)state;
    for (int i = 0; i < 32; i++) {
        p[i] = sbx_secret_alloc(48);
        assert_non_null(p[i]);
        memset(p[i], i, 48);
    }
    for (int i = 0; i < 32; i++) {
        for (int k = 0; k < 48; k++)
            assert_int_equal(p[i][k], i);
    }
    for (int i = 0; i < 32; i++)
        sbx_secret_free(p[i], 48);
}

static void
wipe_zeroes_and_wipe_buf_takes_arrays(void **state)
{
    uint8_t arr[40];
    struct {
        uint64_t a;
        uint8_t b[24];
    } ctx;
    (void)state;
    memset(arr, 0xff, sizeof(arr));
    SBX_WIPE_BUF(arr);
    for (size_t i = 0; i < sizeof(arr); i++)
        assert_int_equal(arr[i], 0);
    memset(&ctx, 0xff, sizeof(ctx));
    SBX_WIPE_CTX(&ctx);
    assert_int_equal(ctx.a, 0);
    for (size_t i = 0; i < sizeof(ctx.b); i++)
        assert_int_equal(ctx.b[i], 0);
    sbx_wipe(NULL, 0);
}

static void
equal_compares_contents(void **state)
{
    uint8_t a[33], b[33];
    (void)state;
    test_rand_fill(a, sizeof(a));
    memcpy(b, a, sizeof(b));
    assert_true(sbx_equal(a, b, sizeof(a)));
    assert_true(sbx_equal(a, b, 0));
    for (size_t i = 0; i < sizeof(a); i++) {
        for (int bit = 0; bit < 8; bit++) {
            b[i] ^= (uint8_t)(1u << bit);
            assert_false(sbx_equal(a, b, sizeof(a)));
            b[i] ^= (uint8_t)(1u << bit);
        }
    }
    assert_true(sbx_equal(a, b, sizeof(a)));
}

/* ---- sbx_buf ---- */

static void
buf_append_grows_and_dispose_resets(void **state)
{
    sbx_buf buf = SBX_BUF_INIT;
    uint8_t data[1000];
    (void)state;
    test_rand_fill(data, sizeof(data));
    assert_null(buf.ptr);
    assert_sbx_ok(sbx_buf_append(&buf, data, 0));
    assert_int_equal(buf.len, 0);
    size_t total = 0;
    for (size_t step = 1; total + step <= sizeof(data); step += 7) {
        assert_sbx_ok(sbx_buf_append(&buf, data + total, step));
        total += step;
        assert_int_equal(buf.len, total);
        assert_true(buf.cap >= buf.len);
        assert_memory_equal(buf.ptr, data, total);
    }
    sbx_buf_dispose(&buf);
    assert_null(buf.ptr);
    assert_int_equal(buf.len, 0);
    assert_int_equal(buf.cap, 0);
    /* Reusable after dispose. */
    assert_sbx_ok(sbx_buf_append(&buf, "abc", 3));
    assert_int_equal(buf.len, 3);
    assert_memory_equal(buf.ptr, "abc", 3);
    sbx_buf_dispose(&buf);
    sbx_buf_dispose(&buf);
    sbx_buf_dispose(NULL);
}

static void
buf_reserve_makes_room_without_changing_len(void **state)
{
    sbx_buf buf = SBX_BUF_INIT;
    (void)state;
    assert_sbx_ok(sbx_buf_append(&buf, "xy", 2));
    assert_sbx_ok(sbx_buf_reserve(&buf, 5000));
    assert_int_equal(buf.len, 2);
    assert_true(buf.cap >= 5002);
    assert_memory_equal(buf.ptr, "xy", 2);
    uint8_t *before = buf.ptr;
    memset(buf.ptr + 2, 'z', 5000);
    buf.len += 5000;
    assert_ptr_equal(buf.ptr, before);
    assert_int_equal(buf.ptr[5001], 'z');
    sbx_buf_dispose(&buf);
}

static void
buf_append_refuses_absurd_sizes(void **state)
{
    sbx_buf buf = SBX_BUF_INIT;
    (void)state;
    assert_sbx_ok(sbx_buf_append(&buf, "a", 1));
    /* len + extra overflows size_t: must fail cleanly, not wrap around. */
    int rc = sbx_buf_reserve(&buf, SIZE_MAX);
    assert_int_equal(rc, SBX_ENOMEM);
    assert_int_equal(buf.len, 1);
    assert_memory_equal(buf.ptr, "a", 1);
    sbx_buf_dispose(&buf);
}

/* Code in callbacks records its reason with sbx_error_set; the caller sees it. */
static int
failing_passphrase(sbx_buf *out, void *payload)
{
    (void)out;
    (void)payload;
    return sbx_error_set(SBX_ECANCELED, "no terminal to ask for the passphrase of %s", "x.age");
}

static void
error_set_from_a_callback_reaches_the_caller(void **state)
{
    (void)state;
    sbx_recipient *r;
    sbx_identity *id;
    sbx_buf file = SBX_BUF_INIT, plain = SBX_BUF_INIT;
    assert_sbx_ok(sbx_recipient_scrypt_new(&r, "pw", 2, 2));
    assert_sbx_ok(sbx_age_encrypt_buf(&file, "hi", 2, &r, 1, NULL));
    assert_sbx_ok(sbx_identity_scrypt_new_cb(&id, failing_passphrase, NULL, 0));
    assert_sbx_err(sbx_age_decrypt_buf(&plain, file.ptr, file.len, &id, 1, NULL), SBX_ECANCELED);
    assert_string_equal(sbx_error_last()->message,
                        "no terminal to ask for the passphrase of x.age");
    assert_int_equal(sbx_error_last()->code, SBX_ECANCELED);
    assert_int_equal(plain.len, 0);
    sbx_identity_free(id);
    sbx_recipient_free(r);
    sbx_buf_dispose(&file);
}

/* A message long enough that formatting onto itself visibly corrupted it (issue 14, item 8). */
#define INNER_MESSAGE                                                                              \
    "bech32: checksum mismatch (mistyped or truncated key?) and a tail long enough to show it"

/* sbx_error_set may take the current message as an argument: it is read before it is replaced. */
static void
error_set_may_format_the_current_message(void **state)
{
    (void)state;
    sbx_error_set(SBX_EINVAL, "%s", INNER_MESSAGE);
    assert_int_equal(
        sbx_error_set(SBX_EFORMAT, "malformed recipient: %s", sbx_error_last()->message),
        SBX_EFORMAT);
    assert_string_equal(sbx_error_last()->message, "malformed recipient: " INNER_MESSAGE);
    sbx_error_set(SBX_EFORMAT, "%s", INNER_MESSAGE);
    sbx_error_set(SBX_EFORMAT, "%s; and after", sbx_error_last()->message);
    assert_string_equal(sbx_error_last()->message, INNER_MESSAGE "; and after");
}

/* sbx_error_prefix puts context in front, with the code given; sys_errno is kept. */
static void
error_prefix_puts_context_in_front(void **state)
{
    (void)state;
    sbx_error_set(SBX_EINVAL, "%s", INNER_MESSAGE);
    assert_int_equal(sbx_error_prefix(SBX_EFORMAT, "line %d", 7), SBX_EFORMAT);
    assert_string_equal(sbx_error_last()->message, "line 7: " INNER_MESSAGE);
    assert_int_equal(sbx_error_last()->code, SBX_EFORMAT);
    /* context twice, as nested callers add it */
    sbx_error_prefix(SBX_EFORMAT, "context");
    assert_string_equal(sbx_error_last()->message, "context: line 7: " INNER_MESSAGE);
    /* the context may itself come from the current message */
    sbx_error_set(SBX_EIO, "short");
    sbx_error_prefix(SBX_EIO, "%s", sbx_error_last()->message);
    assert_string_equal(sbx_error_last()->message, "short: short");
    /* a system error keeps its errno, described once */
    errno = ENOENT;
    sbx_error_set_sys(SBX_EIO, "cannot open x");
    sbx_error_prefix(SBX_EIO, "recipients file");
    assert_int_equal(sbx_error_last()->sys_errno, ENOENT);
    assert_true(test_contains(sbx_error_last()->message, "recipients file: cannot open x: "));
    assert_string_equal(sbx_error_last()->message + strlen(sbx_error_last()->message) -
                            strlen(strerror(ENOENT)),
                        strerror(ENOENT));
}

/* A message at the size limit is cut, never overrun, with the context kept whole. */
static void
error_prefix_cuts_a_long_message_at_the_limit(void **state)
{
    char big[600];
    (void)state;
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    sbx_error_set(SBX_EFORMAT, "%s", big);
    sbx_error_prefix(SBX_EFORMAT, "ctx");
    const char *m = sbx_error_last()->message;
    assert_int_equal(strlen(m), 511);
    assert_memory_equal(m, "ctx: xxx", 8);
    assert_int_equal(strspn(m + 5, "x"), 506);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(error_set_from_a_callback_reaches_the_caller),
        cmocka_unit_test(error_message_may_wrap_the_previous_message),
        cmocka_unit_test(error_codes_have_stable_values),
        cmocka_unit_test(error_name_is_the_symbol_for_every_code),
        cmocka_unit_test(strerror_describes_every_code_distinctly),
        cmocka_unit_test(error_last_is_never_null),
        cmocka_unit_test(error_last_is_per_thread),
        cmocka_unit_test(error_set_may_format_the_current_message),
        cmocka_unit_test(error_prefix_puts_context_in_front),
        cmocka_unit_test(error_prefix_cuts_a_long_message_at_the_limit),
        cmocka_unit_test(random_bytes_are_not_constant),
        cmocka_unit_test(random_uniform_respects_bounds),
        cmocka_unit_test(random_uniform_is_roughly_uniform),
        cmocka_unit_test(init_reports_the_secure_heap_state),
        cmocka_unit_test(secret_alloc_returns_zeroed_memory),
        cmocka_unit_test(secret_alloc_gives_distinct_blocks),
        cmocka_unit_test(wipe_zeroes_and_wipe_buf_takes_arrays),
        cmocka_unit_test(equal_compares_contents),
        cmocka_unit_test(buf_append_grows_and_dispose_resets),
        cmocka_unit_test(buf_reserve_makes_room_without_changing_len),
        cmocka_unit_test(buf_append_refuses_absurd_sizes),
    };
    test_seed_init("core/core");
    return cmocka_run_group_tests_name("core/core", tests, NULL, NULL);
}
