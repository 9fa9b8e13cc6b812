/*
 * tests/server/test_store.c - the storage interface (server/store.h), the
 * same cases on every backend: a SQLite file, the shared in-memory SQLite
 * ("memory:NAME") and PostgreSQL (SBX_TEST_PG_URL, set by the ctest fixture
 * `pg` from scripts/pg.sh; the PostgreSQL group fails, never skips, when it
 * is unset or unreachable).
 *
 * Each case works in a fresh random namespace, so reruns against the same
 * PostgreSQL database do not see each other's rows.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/stat.h>

#include <libpq-fe.h>

#include "store.h"
#include "../helpers.h"

typedef enum { B_FILE, B_MEMORY, B_POSTGRES } backend_kind;

typedef struct {
    backend_kind kind;
    char url[600];
    char dir[64]; /* temporary directory of the SQLite file */
} backend;

static backend cur; // the backend of the group being run

/* ---- fixtures ---- */

static int
group_file(void **state)
{
    (void)state;
    memset(&cur, 0, sizeof(cur));
    cur.kind = B_FILE;
    snprintf(cur.dir, sizeof(cur.dir), "/tmp/sbx-test-store-XXXXXX");
    if (mkdtemp(cur.dir) == NULL)
        return -1;
    snprintf(cur.url, sizeof(cur.url), "sqlite:%s/kms.db", cur.dir);
    return 0;
}

static int
group_file_done(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", cur.dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int
group_memory(void **state)
{
    (void)state;
    memset(&cur, 0, sizeof(cur));
    cur.kind = B_MEMORY;
    snprintf(cur.url, sizeof(cur.url), "memory:test-store-%d", (int)getpid());
    return 0;
}

static int
group_postgres(void **state)
{
    (void)state;
    memset(&cur, 0, sizeof(cur));
    cur.kind = B_POSTGRES;
    const char *url = getenv("SBX_TEST_PG_URL");
    if (url == NULL || *url == '\0') {
        fprintf(stderr, "SBX_TEST_PG_URL is unset: start PostgreSQL with scripts/pg.sh start and "
                        "set SBX_TEST_PG_URL=$(scripts/pg.sh url) (ctest does both)\n");
        return -1;
    }
    snprintf(cur.url, sizeof(cur.url), "%s", url);
    kms_store *st = NULL;
    if (kms_store_open(&st, cur.url) < 0) {
        fprintf(stderr, "PostgreSQL at SBX_TEST_PG_URL: %s\n", sbx_error_last()->message);
        return -1;
    }
    kms_store_close(st);
    return 0;
}

static int
group_none(void **state)
{
    (void)state;
    return 0;
}

static kms_store *
open_store(void)
{
    kms_store *st = NULL;
    assert_sbx_ok(kms_store_open(&st, cur.url));
    assert_non_null(st);
    return st;
}

/* A fresh namespace: "t" + 16 random hex chars. */
static void
fresh_ns(char ns[KMS_STORE_NS_MAX + 1])
{
    uint8_t r[8];
    test_rand_fill(r, sizeof(r));
    ns[0] = 't';
    test_hex(ns + 1, r, sizeof(r));
}

static void
assert_value(kms_store *st, const char *ns, const char *key, const void *want, size_t want_len,
             int64_t want_rev)
{
    uint8_t *val = NULL;
    size_t len = 0;
    int64_t rev = 0;
    assert_sbx_ok(kms_store_get(st, ns, key, &val, &len, &rev));
    assert_int_equal(len, want_len);
    assert_memory_equal(val, want_len ? want : "", want_len ? want_len : 1);
    assert_int_equal(val[len], 0); // NUL one past the end
    if (want_rev > 0)
        assert_int_equal(rev, want_rev);
    free(val);
}

static void
put_ok(kms_store *st, const char *ns, const char *key, const char *val)
{
    assert_sbx_ok(kms_store_put(st, ns, key, val, strlen(val), KMS_REV_ANY, NULL));
}

/* ---- basic operations ---- */

static void
backend_name_matches_the_url(void **state)
{
    (void)state;
    kms_store *st = open_store();
    assert_string_equal(kms_store_backend(st), cur.kind == B_POSTGRES ? "postgres" : "sqlite");
    kms_store_close(st);
    kms_store_close(NULL);
}

static void
put_get_delete_round_trip_with_revisions(void **state)
{
    char ns[33];
    int64_t rev = 0;
    uint8_t *val = (uint8_t *)"x";
    size_t len = 9;
    (void)state;
    fresh_ns(ns);
    kms_store *st = open_store();
    assert_sbx_err(kms_store_get(st, ns, "k", &val, &len, &rev), SBX_ENOTFOUND);
    assert_null(val);
    assert_int_equal(len, 0);
    assert_sbx_ok(kms_store_put(st, ns, "k", "one", 3, KMS_REV_ANY, &rev));
    assert_int_equal(rev, 1);
    assert_value(st, ns, "k", "one", 3, 1);
    assert_sbx_ok(kms_store_put(st, ns, "k", "two!", 4, KMS_REV_ANY, &rev));
    assert_int_equal(rev, 2);
    assert_value(st, ns, "k", "two!", 4, 2);
    assert_sbx_ok(kms_store_get(st, ns, "k", &val, &len, NULL)); // rev may be NULL
    free(val);
    assert_sbx_ok(kms_store_delete(st, ns, "k", KMS_REV_ANY));
    assert_sbx_err(kms_store_get(st, ns, "k", &val, &len, NULL), SBX_ENOTFOUND);
    assert_sbx_err(kms_store_delete(st, ns, "k", KMS_REV_ANY), SBX_ENOTFOUND);
    assert_sbx_ok(kms_store_put(st, ns, "k", "new", 3, KMS_REV_ABSENT, &rev));
    assert_int_equal(rev, 1); // a new row starts again at 1
    kms_store_close(st);
}

static void
put_if_absent_conflicts_when_the_row_exists(void **state)
{
    char ns[33];
    int64_t rev = 99;
    (void)state;
    fresh_ns(ns);
    kms_store *st = open_store();
    assert_sbx_ok(kms_store_put(st, ns, "k", "first", 5, KMS_REV_ABSENT, &rev));
    assert_int_equal(rev, 1);
    assert_sbx_err(kms_store_put(st, ns, "k", "second", 6, KMS_REV_ABSENT, &rev), SBX_ECONFLICT);
    assert_int_equal(rev, 0);
    assert_true(test_contains(sbx_error_last()->message, "exists"));
    assert_value(st, ns, "k", "first", 5, 1);
    kms_store_close(st);
}

static void
compare_and_set_conflicts_on_a_stale_revision(void **state)
{
    char ns[33];
    int64_t rev = 0;
    (void)state;
    fresh_ns(ns);
    kms_store *st = open_store();
    put_ok(st, ns, "k", "v1");
    assert_sbx_ok(kms_store_put(st, ns, "k", "v2", 2, 1, &rev));
    assert_int_equal(rev, 2);
    assert_sbx_err(kms_store_put(st, ns, "k", "stale", 5, 1, &rev), SBX_ECONFLICT);
    assert_sbx_err(kms_store_put(st, ns, "k", "ahead", 5, 3, &rev), SBX_ECONFLICT);
    assert_sbx_err(kms_store_put(st, ns, "absent", "x", 1, 1, &rev), SBX_ECONFLICT);
    assert_sbx_err(kms_store_get(st, ns, "absent", &(uint8_t *){NULL}, &(size_t){0}, NULL),
                   SBX_ENOTFOUND);
    assert_value(st, ns, "k", "v2", 2, 2);
    assert_sbx_ok(kms_store_put(st, ns, "k", "v3", 2, 2, &rev));
    assert_int_equal(rev, 3);
    assert_sbx_err(kms_store_put(st, ns, "k", "bad", 3, -2, NULL), SBX_EINVAL);
    kms_store_close(st);
}

static void
delete_with_a_revision_checks_it(void **state)
{
    char ns[33];
    (void)state;
    fresh_ns(ns);
    kms_store *st = open_store();
    put_ok(st, ns, "k", "v1");
    put_ok(st, ns, "k", "v2");
    assert_sbx_err(kms_store_delete(st, ns, "k", 1), SBX_ECONFLICT);
    assert_value(st, ns, "k", "v2", 2, 2);
    assert_sbx_err(kms_store_delete(st, ns, "k", KMS_REV_ABSENT), SBX_EINVAL);
    assert_sbx_err(kms_store_delete(st, ns, "k", -7), SBX_EINVAL);
    assert_sbx_ok(kms_store_delete(st, ns, "k", 2));
    assert_sbx_err(kms_store_delete(st, ns, "k", 2), SBX_ENOTFOUND);
    assert_sbx_err(kms_store_delete(st, ns, "never", 1), SBX_ENOTFOUND);
    kms_store_close(st);
}

/* ---- list and count ---- */

typedef struct {
    char keys[200][KMS_STORE_KEY_MAX + 1];
    size_t n;
    size_t stop_after; /* 0 = never */
    bool values_ok;
} listed;

/* Values are "v:" + key; checks that and collects the keys. */
static int
collect(void *ctx, const char *key, const uint8_t *val, size_t len, int64_t rev)
{
    listed *l = ctx;
    char want[KMS_STORE_KEY_MAX + 3];
    snprintf(want, sizeof(want), "v:%s", key);
    if (len != strlen(want) || memcmp(val, want, len) != 0 || rev != 1)
        l->values_ok = false;
    if (l->n < 200)
        snprintf(l->keys[l->n], sizeof(l->keys[0]), "%s", key);
    l->n++;
    return l->stop_after != 0 && l->n == l->stop_after ? 7 : 0;
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b); // unsigned bytes
}

static void
put_listed(kms_store *st, const char *ns, const char *key)
{
    char v[KMS_STORE_KEY_MAX + 3];
    snprintf(v, sizeof(v), "v:%s", key);
    assert_sbx_ok(kms_store_put(st, ns, key, v, strlen(v), KMS_REV_ABSENT, NULL));
}

static void
expect_list(kms_store *st, const char *ns, const char *prefix, const char *const *want, size_t n)
{
    listed *l = calloc(1, sizeof(*l));
    assert_non_null(l);
    l->values_ok = true;
    assert_sbx_ok(kms_store_list(st, ns, prefix, collect, l));
    assert_true(l->values_ok);
    assert_int_equal(l->n, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(l->keys[i], want[i]);
    free(l);
}

static void
list_returns_prefix_matches_in_byte_order(void **state)
{
    static const char *const keys[] = {"b",
                                       "ab",
                                       "a",
                                       "ab\xff",
                                       "abc",
                                       "ac",
                                       "a\xff\xff",
                                       "\xff",
                                       "\xff\x01",
                                       "B",
                                       "a-1",
                                       "zz",
                                       "\xc3\xa9t\xc3\xa9",
                                       "ab\x01"};
    const size_t n = sizeof(keys) / sizeof(keys[0]);
    const char *sorted[sizeof(keys) / sizeof(keys[0])];
    char ns[33], other[33];
    (void)state;
    fresh_ns(ns);
    fresh_ns(other);
    kms_store *st = open_store();
    for (size_t i = 0; i < n; i++)
        put_listed(st, ns, keys[n - 1 - i]);
    put_listed(st, other, "ab"); // other namespaces never show
    memcpy(sorted, keys, sizeof(sorted));
    qsort(sorted, n, sizeof(sorted[0]), cmp_str);
    expect_list(st, ns, "", sorted, n);
    expect_list(st, ns, NULL, sorted, n);
    expect_list(st, ns, "ab", (const char *const[]){"ab", "ab\x01", "abc", "ab\xff"}, 4);
    expect_list(st, ns, "a\xff", (const char *const[]){"a\xff\xff"}, 1);
    expect_list(st, ns, "\xff", (const char *const[]){"\xff", "\xff\x01"}, 2);
    expect_list(st, ns, "\xc3", (const char *const[]){"\xc3\xa9t\xc3\xa9"}, 1);
    expect_list(st, ns, "abcd", NULL, 0);
    expect_list(st, ns, "q", NULL, 0);
    kms_store_close(st);
}

static void
list_stops_when_the_callback_says_so(void **state)
{
    char ns[33];
    (void)state;
    fresh_ns(ns);
    kms_store *st = open_store();
    for (int i = 0; i < 5; i++) {
        char k[8];
        snprintf(k, sizeof(k), "k%d", i);
        put_listed(st, ns, k);
    }
    listed *l = calloc(1, sizeof(*l));
    assert_non_null(l);
    l->values_ok = true;
    l->stop_after = 2;
    assert_int_equal(kms_store_list(st, ns, "", collect, l), 7);
    assert_int_equal(l->n, 2);
    assert_string_equal(l->keys[1], "k1");
    free(l);
    assert_sbx_err(kms_store_list(st, ns, "", NULL, NULL), SBX_EINVAL);
    kms_store_close(st);
}

static void
list_walks_many_rows_in_order(void **state)
{
    char ns[33];
    const size_t n = 150; // more than one PostgreSQL page
    const char *sorted[150];
    char(*keys)[16] = calloc(n, 16);
    (void)state;
    assert_non_null(keys);
    fresh_ns(ns);
    kms_store *st = open_store();
    for (size_t i = 0; i < n; i++) {
        snprintf(keys[i], 16, "key-%03zu", (i * 37) % n);
        put_listed(st, ns, keys[i]);
        sorted[i] = keys[i];
    }
    qsort(sorted, n, sizeof(sorted[0]), cmp_str);
    expect_list(st, ns, "key-", sorted, n);
    int64_t count = 0;
    assert_sbx_ok(kms_store_count(st, ns, &count));
    assert_int_equal(count, n);
    kms_store_close(st);
    free(keys);
}

static void
count_is_per_namespace(void **state)
{
    char ns[33], other[33];
    int64_t n = -1;
    (void)state;
    fresh_ns(ns);
    fresh_ns(other);
    kms_store *st = open_store();
    assert_sbx_ok(kms_store_count(st, ns, &n));
    assert_int_equal(n, 0);
    put_ok(st, ns, "a", "1");
    put_ok(st, ns, "b", "2");
    put_ok(st, ns, "b", "3"); // an update is not a new row
    put_ok(st, other, "a", "1");
    assert_sbx_ok(kms_store_count(st, ns, &n));
    assert_int_equal(n, 2);
    assert_sbx_ok(kms_store_delete(st, ns, "a", KMS_REV_ANY));
    assert_sbx_ok(kms_store_count(st, ns, &n));
    assert_int_equal(n, 1);
    assert_sbx_err(kms_store_count(st, ns, NULL), SBX_EINVAL);
    kms_store_close(st);
}

/* ---- values and arguments ---- */

static void
values_of_every_size_up_to_the_limit_round_trip(void **state)
{
    char ns[33];
    const size_t sizes[] = {0, 1, 255, 65536, KMS_STORE_VALUE_MAX};
    (void)state;
    fresh_ns(ns);
    kms_store *st = open_store();
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint8_t *v = test_malloc_rand(sizes[i]);
        char key[16];
        snprintf(key, sizeof(key), "s%zu", sizes[i]);
        assert_sbx_ok(kms_store_put(st, ns, key, v, sizes[i], KMS_REV_ANY, NULL));
        assert_value(st, ns, key, v, sizes[i], 1);
        free(v);
    }
    assert_sbx_ok(kms_store_put(st, ns, "null0", NULL, 0, KMS_REV_ANY, NULL));
    assert_value(st, ns, "null0", "", 0, 1);
    uint8_t *big = test_malloc_rand(KMS_STORE_VALUE_MAX + 1);
    assert_sbx_err(kms_store_put(st, ns, "big", big, KMS_STORE_VALUE_MAX + 1, KMS_REV_ANY, NULL),
                   SBX_ETOOBIG);
    assert_sbx_err(kms_store_get(st, ns, "big", &(uint8_t *){NULL}, &(size_t){0}, NULL),
                   SBX_ENOTFOUND);
    free(big);
    kms_store_close(st);
}

static void
binary_values_keep_their_nul_bytes(void **state)
{
    char ns[33];
    static const uint8_t v[] = {0, 1, 0, 0, 0xff, 0, 'a', 0x80, 0};
    (void)state;
    fresh_ns(ns);
    kms_store *st = open_store();
    assert_sbx_ok(kms_store_put(st, ns, "bin", v, sizeof(v), KMS_REV_ANY, NULL));
    assert_value(st, ns, "bin", v, sizeof(v), 1);
    uint8_t all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    assert_sbx_ok(kms_store_put(st, ns, "all", all, sizeof(all), KMS_REV_ANY, NULL));
    assert_value(st, ns, "all", all, sizeof(all), 1);
    kms_store_close(st);
}

/* Counts rows seen by kms_store_list. */
static int
count_row(void *ctx, const char *key, const uint8_t *val, size_t len, int64_t rev)
{
    (void)key, (void)val, (void)len, (void)rev;
    ++*(int *)ctx;
    return 0;
}

static void
integrity_tags_detect_edited_planted_and_moved_rows(void **state)
{
    char ns[33];
    uint8_t mk[32], *val = NULL, *raw = NULL;
    size_t len = 0, raw_len = 0;
    int rows = 0;
    (void)state;
    fresh_ns(ns);
    test_rand_fill(mk, sizeof(mk));
    kms_store *st = open_store(), *plain = open_store(), *other = open_store();
    assert_sbx_ok(kms_store_set_integrity_key(st, mk));
    assert_sbx_ok(kms_store_copy_integrity_key(other, st));

    // Values written with the key read back as written, on this handle and a copy's.
    put_ok(st, ns, "a", "{\"min_decryption_version\":3}");
    put_ok(st, ns, "b", "second");
    assert_value(st, ns, "a", "{\"min_decryption_version\":3}", 28, 1);
    assert_value(other, ns, "b", "second", 6, 1);
    assert_sbx_ok(kms_store_list(st, ns, "", count_row, &rows));
    assert_int_equal(rows, 2);
    // At rest each row carries 32 more bytes (seen through a handle without the key).
    assert_sbx_ok(kms_store_get(plain, ns, "a", &raw, &raw_len, NULL));
    assert_int_equal(raw_len, 28 + 32);

    // Edited in the database: refused by get and by list, naming the row.
    raw[22] = '1';
    assert_sbx_ok(kms_store_put(plain, ns, "a", raw, raw_len, KMS_REV_ANY, NULL));
    assert_sbx_err(kms_store_get(st, ns, "a", &val, &len, NULL), SBX_EIO);
    assert_null(val);
    assert_true(test_contains(sbx_error_last()->message, "does not authenticate"));
    assert_true(test_contains(sbx_error_last()->message, "/a"));
    rows = 0; // a listing leaves the bad row out (and warns) instead of failing
    assert_sbx_ok(kms_store_list(st, ns, "", count_row, &rows));
    assert_int_equal(rows, 1);

    // Moved: b's valid bytes copied under key a.
    uint8_t *braw = NULL;
    size_t braw_len = 0;
    assert_sbx_ok(kms_store_get(plain, ns, "b", &braw, &braw_len, NULL));
    assert_sbx_ok(kms_store_put(plain, ns, "a", braw, braw_len, KMS_REV_ANY, NULL));
    assert_sbx_err(kms_store_get(st, ns, "a", &val, &len, NULL), SBX_EIO);

    // Planted without a tag (too short to carry one, and long enough to look like one).
    assert_sbx_ok(kms_store_put(plain, ns, "c", "short", 5, KMS_REV_ANY, NULL));
    assert_sbx_err(kms_store_get(st, ns, "c", &val, &len, NULL), SBX_EIO);
    assert_true(test_contains(sbx_error_last()->message, "no integrity tag"));
    static const char forty[] = "0123456789012345678901234567890123456789";
    assert_sbx_ok(kms_store_put(plain, ns, "d", forty, 40, KMS_REV_ANY, NULL));
    assert_sbx_err(kms_store_get(st, ns, "d", &val, &len, NULL), SBX_EIO);

    // Another root key (another integrity key) does not open the rows.
    mk[0] ^= 1;
    assert_sbx_ok(kms_store_set_integrity_key(other, mk));
    assert_sbx_err(kms_store_get(other, ns, "b", &val, &len, NULL), SBX_EIO);

    // The namespace "meta" (the root key's own records) is never tagged.
    put_ok(plain, "meta", "integrity-test", "x");
    assert_value(st, "meta", "integrity-test", "x", 1, 0);
    assert_sbx_ok(kms_store_delete(st, "meta", "integrity-test", KMS_REV_ANY));

    free(raw);
    free(braw);
    kms_store_close(st);
    kms_store_close(plain);
    kms_store_close(other);
}

static void
bad_keys_and_namespaces_are_refused(void **state)
{
    char ns[33], key[KMS_STORE_KEY_MAX + 2], longns[KMS_STORE_NS_MAX + 2];
    uint8_t *val = NULL;
    size_t len = 0;
    (void)state;
    fresh_ns(ns);
    kms_store *st = open_store();
    memset(key, 'k', sizeof(key) - 1);
    key[KMS_STORE_KEY_MAX] = '\0'; // exactly the limit: fine
    assert_sbx_ok(kms_store_put(st, ns, key, "v", 1, KMS_REV_ANY, NULL));
    assert_value(st, ns, key, "v", 1, 1);
    key[KMS_STORE_KEY_MAX] = 'k';
    key[KMS_STORE_KEY_MAX + 1] = '\0'; // one over
    assert_sbx_err(kms_store_put(st, ns, key, "v", 1, KMS_REV_ANY, NULL), SBX_EINVAL);
    assert_true(test_contains(sbx_error_last()->message, "longer than 256"));
    assert_sbx_err(kms_store_get(st, ns, key, &val, &len, NULL), SBX_EINVAL);
    assert_sbx_err(kms_store_delete(st, ns, key, KMS_REV_ANY), SBX_EINVAL);
    assert_sbx_err(kms_store_list(st, ns, key, collect, NULL), SBX_EINVAL);
    assert_sbx_err(kms_store_put(st, ns, "", "v", 1, KMS_REV_ANY, NULL), SBX_EINVAL);
    memset(longns, 'n', sizeof(longns) - 1);
    longns[sizeof(longns) - 1] = '\0';
    assert_sbx_err(kms_store_put(st, longns, "k", "v", 1, KMS_REV_ANY, NULL), SBX_EINVAL);
    assert_sbx_err(kms_store_put(st, "", "k", "v", 1, KMS_REV_ANY, NULL), SBX_EINVAL);
    assert_sbx_err(kms_store_put(st, "a b", "k", "v", 1, KMS_REV_ANY, NULL), SBX_EINVAL);
    assert_sbx_err(kms_store_put(st, "x'; DROP TABLE sbx_kv; --", "k", "v", 1, KMS_REV_ANY, NULL),
                   SBX_EINVAL);
    assert_sbx_err(kms_store_put(st, NULL, "k", "v", 1, KMS_REV_ANY, NULL), SBX_EINVAL);
    assert_sbx_err(kms_store_put(st, ns, NULL, "v", 1, KMS_REV_ANY, NULL), SBX_EINVAL);
    assert_sbx_err(kms_store_put(st, ns, "k", NULL, 1, KMS_REV_ANY, NULL), SBX_EINVAL);
    assert_sbx_err(kms_store_put(NULL, ns, "k", "v", 1, KMS_REV_ANY, NULL), SBX_EINVAL);
    assert_sbx_err(kms_store_get(st, ns, "k", NULL, &len, NULL), SBX_EINVAL);
    // SQL metacharacters in keys are plain data
    put_ok(st, ns, "k'; DROP TABLE sbx_kv; --", "still here");
    assert_value(st, ns, "k'; DROP TABLE sbx_kv; --", "still here", 10, 1);
    kms_store_close(st);
}

/* ---- several handles ---- */

static void
handles_see_each_others_writes_at_once(void **state)
{
    char ns[33];
    (void)state;
    fresh_ns(ns);
    kms_store *a = open_store(), *b = open_store();
    put_ok(a, ns, "k", "from a");
    assert_value(b, ns, "k", "from a", 6, 1);
    assert_sbx_ok(kms_store_put(b, ns, "k", "from b", 6, 1, NULL));
    assert_value(a, ns, "k", "from b", 6, 2);
    assert_sbx_ok(kms_store_delete(a, ns, "k", 2));
    assert_sbx_err(kms_store_get(b, ns, "k", &(uint8_t *){NULL}, &(size_t){0}, NULL),
                   SBX_ENOTFOUND);
    kms_store_close(a);
    kms_store_close(b);
}

#define RACERS     6
#define RACE_KEYS  20
#define INCREMENTS 40

typedef struct {
    const char *ns;
    int id;
    int wins;
    int failures; /* unexpected errors */
    char message[256];
    pthread_barrier_t *go;
} racer;

static void
racer_fail(racer *r)
{
    if (r->failures++ == 0)
        snprintf(r->message, sizeof(r->message), "%s", sbx_error_last()->message);
}

static void *
race_absent(void *arg)
{
    racer *r = arg;
    kms_store *st = NULL;
    int err = kms_store_open(&st, cur.url);
    pthread_barrier_wait(r->go);
    if (err < 0) {
        racer_fail(r);
        return NULL;
    }
    for (int k = 0; k < RACE_KEYS; k++) {
        char key[16], val[16];
        snprintf(key, sizeof(key), "race-%d", k);
        snprintf(val, sizeof(val), "winner %d", r->id);
        err = kms_store_put(st, r->ns, key, val, strlen(val), KMS_REV_ABSENT, NULL);
        if (err == 0)
            r->wins++;
        else if (err != SBX_ECONFLICT)
            racer_fail(r);
    }
    kms_store_close(st);
    return NULL;
}

static void *
race_increment(void *arg)
{
    racer *r = arg;
    kms_store *st = NULL;
    int err = kms_store_open(&st, cur.url);
    pthread_barrier_wait(r->go);
    if (err < 0) {
        racer_fail(r);
        return NULL;
    }
    for (int i = 0; i < INCREMENTS && r->failures == 0;) {
        uint8_t *val = NULL;
        size_t len = 0;
        int64_t rev = 0;
        if (kms_store_get(st, r->ns, "counter", &val, &len, &rev) < 0) {
            racer_fail(r);
            break;
        }
        char next[24];
        snprintf(next, sizeof(next), "%ld", strtol((const char *)val, NULL, 10) + 1);
        free(val);
        err = kms_store_put(st, r->ns, "counter", next, strlen(next), rev, NULL);
        if (err == 0)
            i++;
        else if (err != SBX_ECONFLICT)
            racer_fail(r);
    }
    kms_store_close(st);
    return NULL;
}

static void
run_racers(const char *ns, void *(*fn)(void *), racer *r)
{
    pthread_t t[RACERS];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, RACERS);
    for (int i = 0; i < RACERS; i++) {
        r[i] = (racer){.ns = ns, .id = i, .go = &go};
        assert_int_equal(pthread_create(&t[i], NULL, fn, &r[i]), 0);
    }
    for (int i = 0; i < RACERS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&go);
    for (int i = 0; i < RACERS; i++) {
        if (r[i].failures != 0)
            print_error("racer %d: %d unexpected errors, first: %s\n", i, r[i].failures,
                        r[i].message);
        assert_int_equal(r[i].failures, 0);
    }
}

static void
racing_put_if_absent_has_exactly_one_winner(void **state)
{
    char ns[33];
    racer r[RACERS];
    (void)state;
    fresh_ns(ns);
    kms_store *keep = open_store(); // keeps a memory: database alive between racers
    run_racers(ns, race_absent, r);
    int wins = 0;
    for (int i = 0; i < RACERS; i++)
        wins += r[i].wins;
    assert_int_equal(wins, RACE_KEYS);
    for (int k = 0; k < RACE_KEYS; k++) { // the stored value is a winner's
        char key[16];
        uint8_t *val = NULL;
        size_t len = 0;
        int64_t rev = 0;
        snprintf(key, sizeof(key), "race-%d", k);
        assert_sbx_ok(kms_store_get(keep, ns, key, &val, &len, &rev));
        assert_int_equal(rev, 1);
        int id = atoi((const char *)val + strlen("winner "));
        assert_true(id >= 0 && id < RACERS && r[id].wins > 0);
        free(val);
    }
    kms_store_close(keep);
}

static void
racing_compare_and_set_loses_no_update(void **state)
{
    char ns[33];
    racer r[RACERS];
    (void)state;
    fresh_ns(ns);
    kms_store *keep = open_store();
    put_ok(keep, ns, "counter", "0");
    run_racers(ns, race_increment, r);
    char want[16];
    snprintf(want, sizeof(want), "%d", RACERS * INCREMENTS);
    assert_value(keep, ns, "counter", want, strlen(want), 1 + RACERS * INCREMENTS);
    kms_store_close(keep);
}

/* ---- persistence and files ---- */

static void
reopening_keeps_the_data(void **state)
{
    char ns[33];
    (void)state;
    fresh_ns(ns);
    kms_store *st = open_store();
    put_ok(st, ns, "k", "kept");
    put_ok(st, ns, "k", "kept2");
    kms_store_close(st);
    st = open_store();
    if (cur.kind == B_MEMORY) // gone with the last handle, as store.h says
        assert_sbx_err(kms_store_get(st, ns, "k", &(uint8_t *){NULL}, &(size_t){0}, NULL),
                       SBX_ENOTFOUND);
    else
        assert_value(st, ns, "k", "kept2", 5, 2);
    kms_store_close(st);
}

static void
memory_databases_are_separate_by_name(void **state)
{
    char ns[33];
    (void)state;
    fresh_ns(ns);
    kms_store *a = NULL, *b = NULL;
    assert_sbx_ok(kms_store_open(&a, "memory:store-test-a"));
    assert_sbx_ok(kms_store_open(&b, "memory:store-test-b"));
    put_ok(a, ns, "k", "in a");
    assert_sbx_err(kms_store_get(b, ns, "k", &(uint8_t *){NULL}, &(size_t){0}, NULL),
                   SBX_ENOTFOUND);
    kms_store_close(a);
    kms_store_close(b);
}

static void
database_files_are_created_0600(void **state)
{
    char path[128], wal[140], url[140];
    struct stat sb;
    (void)state;
    if (cur.kind != B_FILE)
        skip();
    snprintf(path, sizeof(path), "%s/perm.db", cur.dir);
    snprintf(wal, sizeof(wal), "%s-wal", path);
    snprintf(url, sizeof(url), "sqlite:%s", path);
    mode_t old = umask(0); // the mode must not come from the umask
    kms_store *st = NULL;
    int err = kms_store_open(&st, url);
    umask(old);
    assert_sbx_ok(err);
    put_ok(st, "ns", "k", "v");
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(stat(wal, &sb), 0); // WAL mode: the log exists while open
    assert_int_equal(sb.st_mode & 0777, 0600);
    kms_store_close(st);
    // "sqlite:///abs" and a plain path name the same file
    char url3[140];
    snprintf(url3, sizeof(url3), "sqlite://%s", path);
    assert_sbx_ok(kms_store_open(&st, url3));
    assert_value(st, "ns", "k", "v", 1, 1);
    kms_store_close(st);
    assert_sbx_ok(kms_store_open(&st, path));
    assert_value(st, "ns", "k", "v", 1, 1);
    kms_store_close(st);
}

/* Kills the server side of every strongbox-kms session of the database. */
static void
terminate_sessions(void)
{
    PGconn *c = PQconnectdb(cur.url);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *res = PQexec(c, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                              "WHERE application_name = 'strongbox-kms' "
                              "AND datname = current_database() AND pid <> pg_backend_pid()");
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    assert_true(atoi(PQgetvalue(res, 0, 0)) >= 1);
    PQclear(res);
    PQfinish(c);
}

static void
postgres_reconnects_after_the_connection_drops(void **state)
{
    char ns[33];
    (void)state;
    if (cur.kind != B_POSTGRES)
        skip();
    fresh_ns(ns);
    kms_store *st = open_store();
    put_ok(st, ns, "k", "before");
    terminate_sessions();
    usleep(100 * 1000);
    assert_value(st, ns, "k", "before", 6, 1); // reconnected once, transparently
    terminate_sessions();
    usleep(100 * 1000);
    put_ok(st, ns, "k", "after");
    assert_value(st, ns, "k", "after", 5, 2);
    kms_store_close(st);
}

/* ---- URLs (no backend needed, except a reachable PostgreSQL for one case) ---- */

static void
expect_open_error(const char *url, int code, const char *needle)
{
    kms_store *st = (kms_store *)&st; // must be reset to NULL
    assert_sbx_err(kms_store_open(&st, url), code);
    assert_null(st);
    if (needle != NULL && !test_contains(sbx_error_last()->message, needle)) {
        print_error("message for '%s' lacks '%s': %s\n", url, needle, sbx_error_last()->message);
        fail();
    }
}

static void
bad_urls_give_clear_errors(void **state)
{
    char path[200];
    (void)state;
    expect_open_error("", SBX_EINVAL, "empty");
    expect_open_error(NULL, SBX_EINVAL, "empty");
    assert_sbx_err(kms_store_open(NULL, "memory:x"), SBX_EINVAL);
    expect_open_error("memory:", SBX_EINVAL, "the name must be");
    expect_open_error("memory:a/b", SBX_EINVAL, "name");
    expect_open_error("memory:x?vfs=unix", SBX_EINVAL, "name");
    expect_open_error("mysql://db/x", SBX_EINVAL, "'mysql' is not supported");
    expect_open_error("sqlite:", SBX_EINVAL, "sqlite:PATH");
    expect_open_error("sqlite:/nonexistent-dir-sbx/kms.db", SBX_EIO, "/nonexistent-dir-sbx/kms.db");
    expect_open_error("postgres://u:pw@[::1/db", SBX_EINVAL, "PostgreSQL URL");
    // a file that is not a database
    snprintf(path, sizeof(path), "/tmp/sbx-test-store-garbage-%d.db", (int)getpid());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 64; i++)
        fputs("this is not a SQLite database file\n", f);
    fclose(f);
    char url[220];
    snprintf(url, sizeof(url), "sqlite:%s", path);
    expect_open_error(url, SBX_EIO, "not a database");
    unlink(path);
}

static void
postgres_errors_never_show_the_password(void **state)
{
    (void)state;
    // nothing listens on port 1
    expect_open_error("postgres://sbx:Sup3rSecretPw@127.0.0.1:1/db", SBX_EIO, "cannot connect");
    assert_false(test_contains(sbx_error_last()->message, "Sup3rSecretPw"));
    expect_open_error("postgresql://sbx:Sup3r%53ecretPw@127.0.0.1:1/db?connect_timeout=2", SBX_EIO,
                      "127.0.0.1:1");
    assert_false(test_contains(sbx_error_last()->message, "Sup3rSecretPw"));
    assert_false(test_contains(sbx_error_last()->message, "Sup3r%53ecretPw"));
    expect_open_error("postgres://sbx:Sup3rSecretPw@127.0.0.1/db?nosuchoption=Sup3rSecretPw",
                      SBX_EINVAL, "nosuchoption");
    assert_false(test_contains(sbx_error_last()->message, "Sup3rSecretPw"));
    expect_open_error("postgres://127.0.0.1:1/db?password=Sup3rSecretPw&connect_timeout=2", SBX_EIO,
                      NULL);
    assert_false(test_contains(sbx_error_last()->message, "Sup3rSecretPw"));
    // a real server, a database that does not exist
    const char *pg = getenv("SBX_TEST_PG_URL");
    assert_non_null(pg);
    const char *at = strchr(strstr(pg, "://") + 3, '@');
    const char *slash = strchr(strstr(pg, "://") + 3, '/');
    assert_non_null(at);
    assert_non_null(slash);
    char url[600];
    snprintf(url, sizeof(url), "postgres://postgres:Sup3rSecretPw@%.*s/no_such_db_sbx",
             (int)(slash - at - 1), at + 1);
    expect_open_error(url, SBX_EIO, "no_such_db_sbx");
    assert_false(test_contains(sbx_error_last()->message, "Sup3rSecretPw"));
}

#define BACKEND_TESTS                                                                              \
    cmocka_unit_test(backend_name_matches_the_url),                                                \
        cmocka_unit_test(put_get_delete_round_trip_with_revisions),                                \
        cmocka_unit_test(put_if_absent_conflicts_when_the_row_exists),                             \
        cmocka_unit_test(compare_and_set_conflicts_on_a_stale_revision),                           \
        cmocka_unit_test(delete_with_a_revision_checks_it),                                        \
        cmocka_unit_test(list_returns_prefix_matches_in_byte_order),                               \
        cmocka_unit_test(list_stops_when_the_callback_says_so),                                    \
        cmocka_unit_test(list_walks_many_rows_in_order), cmocka_unit_test(count_is_per_namespace), \
        cmocka_unit_test(values_of_every_size_up_to_the_limit_round_trip),                         \
        cmocka_unit_test(binary_values_keep_their_nul_bytes),                                      \
        cmocka_unit_test(integrity_tags_detect_edited_planted_and_moved_rows),                     \
        cmocka_unit_test(bad_keys_and_namespaces_are_refused),                                     \
        cmocka_unit_test(handles_see_each_others_writes_at_once),                                  \
        cmocka_unit_test(racing_put_if_absent_has_exactly_one_winner),                             \
        cmocka_unit_test(racing_compare_and_set_loses_no_update),                                  \
        cmocka_unit_test(reopening_keeps_the_data),                                                \
        cmocka_unit_test(database_files_are_created_0600),                                         \
        cmocka_unit_test(postgres_reconnects_after_the_connection_drops)

int
main(void)
{
    const struct CMUnitTest on_file[] = {BACKEND_TESTS};
    const struct CMUnitTest on_memory[] = {BACKEND_TESTS,
                                           cmocka_unit_test(memory_databases_are_separate_by_name)};
    const struct CMUnitTest on_postgres[] = {BACKEND_TESTS};
    const struct CMUnitTest urls[] = {
        cmocka_unit_test(bad_urls_give_clear_errors),
        cmocka_unit_test(postgres_errors_never_show_the_password),
    };
    test_seed_init("store");
    int failed = cmocka_run_group_tests_name("store/urls", urls, group_none, NULL);
    failed +=
        cmocka_run_group_tests_name("store/sqlite-file", on_file, group_file, group_file_done);
    failed += cmocka_run_group_tests_name("store/sqlite-memory", on_memory, group_memory, NULL);
    failed += cmocka_run_group_tests_name("store/postgres", on_postgres, group_postgres, NULL);
    return failed != 0;
}
