/*
 * tests/kms/test_cache.c - the data-key cache over fake fetchers (no server):
 * hits, each limit, partitions, the LRU bound, errors never cached, single
 * flight (including a failed flight), the decryption cache, clear, and that
 * the caller's copies outlive the entries.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "helpers.h"
#include "kms/cache.h"
#include "strongbox/kms.h"
#include "strongbox/memory.h"

static bool secure_heap; // sbx_init() locked the secure heap: copies must live there

/* ---- fake fetchers ---- */

typedef struct fake {
    pthread_mutex_t lock;
    unsigned datakey_calls;
    unsigned decrypt_calls;
    unsigned fail_next; // that many next calls fail with SBX_EIO
    long sleep_ms;      // each call sleeps this long first
    unsigned version;   // key_version answered
} fake;

static void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* Count the call; true when it must fail. */
static bool
fake_enter(fake *f, unsigned *calls, unsigned *seq)
{
    pthread_mutex_lock(&f->lock);
    *seq = ++*calls;
    bool fail = f->fail_next > 0;
    if (fail)
        f->fail_next--;
    long ms = f->sleep_ms;
    pthread_mutex_unlock(&f->lock);
    if (ms > 0)
        sleep_ms(ms);
    return fail;
}

static int
fake_datakey(void *p, const char *name, const sbx_kms_pair *ctx, size_t n, unsigned bits,
             bool wrapped_only, sbx_kms_datakey *out)
{
    fake *f = p;
    (void)ctx;
    (void)n;
    assert_int_equal(bits, 256);
    assert_false(wrapped_only);
    unsigned seq;
    if (fake_enter(f, &f->datakey_calls, &seq))
        return sbx_error_set(SBX_EIO, "fake server https://fake.invalid is down");
    out->plaintext = sbx_secret_alloc(32);
    assert_non_null(out->plaintext);
    out->plaintext_len = 32;
    for (size_t i = 0; i < 32; i++)
        out->plaintext[i] = (uint8_t)(seq * 31 + i);
    char ct[128];
    snprintf(ct, sizeof ct, "sbx:v%u:fake-%u-%s", f->version, seq, name);
    out->ciphertext = strdup(ct);
    assert_non_null(out->ciphertext);
    out->key_version = f->version;
    return 0;
}

static int
fake_decrypt(void *p, const char *name, const char *ciphertext, const sbx_kms_pair *ctx, size_t n,
             sbx_buf *out, unsigned *key_version)
{
    fake *f = p;
    (void)name;
    (void)ctx;
    (void)n;
    unsigned seq;
    if (fake_enter(f, &f->decrypt_calls, &seq))
        return sbx_error_set(SBX_EIO, "fake server https://fake.invalid is down");
    uint8_t pt[32];
    size_t len = strlen(ciphertext);
    for (size_t i = 0; i < sizeof pt; i++)
        pt[i] = (uint8_t)(ciphertext[i % len] ^ i);
    *key_version = f->version;
    return sbx_buf_append(out, pt, sizeof pt);
}

static const sbx_kms__cache_fetch fake_fetch = {fake_datakey, fake_decrypt};

typedef struct fixture {
    fake f;
    sbx_kms_cache *cache;
} fixture;

static fixture *
fixture_new(uint64_t max_age_ms, uint64_t max_uses, uint64_t max_bytes, size_t max_entries)
{
    fixture *x = calloc(1, sizeof *x);
    assert_non_null(x);
    pthread_mutex_init(&x->f.lock, NULL);
    x->f.version = 1;
    sbx_kms_cache_limits lim = SBX_KMS_CACHE_LIMITS_INIT;
    lim.max_age_ms = max_age_ms;
    lim.max_uses = max_uses;
    lim.max_bytes = max_bytes;
    lim.max_entries = max_entries;
    assert_sbx_ok(sbx_kms__cache_new_with(&x->cache, &fake_fetch, &x->f, &lim));
    return x;
}

static void
fixture_free(fixture *x)
{
    sbx_kms_cache_free(x->cache);
    pthread_mutex_destroy(&x->f.lock);
    free(x);
}

static sbx_kms_cache_stats
stats(fixture *x)
{
    sbx_kms_cache_stats s;
    sbx_kms_cache_get_stats(x->cache, &s);
    return s;
}

/* Get a key for (name, ctx) and return its fake fetch sequence number (from the ciphertext). */
static unsigned
get_seq(fixture *x, const char *name, const sbx_kms_pair *ctx, size_t n, uint64_t bytes)
{
    sbx_kms_datakey dk;
    assert_sbx_ok(sbx_kms_cache_datakey(x->cache, name, ctx, n, bytes, &dk));
    assert_int_equal(dk.plaintext_len, 32);
    if (secure_heap)
        assert_true(sbx_secret_is_locked(dk.plaintext));
    unsigned seq = 0;
    const char *p = strstr(dk.ciphertext, "fake-");
    assert_non_null(p);
    seq = (unsigned)strtoul(p + 5, NULL, 10);
    assert_int_equal(dk.plaintext[0], (uint8_t)(seq * 31)); // plaintext matches the ciphertext
    sbx_kms_datakey_dispose(&dk);
    return seq;
}

/* ---- encryption cache ---- */

static void
datakey_hit_after_miss(void **state)
{
    (void)state;
    fixture *x = fixture_new(0, 0, 0, 0);
    sbx_kms_datakey a, b;
    assert_sbx_ok(sbx_kms_cache_datakey(x->cache, "billing", NULL, 0, 100, &a));
    assert_sbx_ok(sbx_kms_cache_datakey(x->cache, "billing", NULL, 0, 100, &b));
    assert_int_equal(x->f.datakey_calls, 1);
    assert_memory_equal(a.plaintext, b.plaintext, 32);
    assert_string_equal(a.ciphertext, b.ciphertext);
    assert_ptr_not_equal(a.plaintext, b.plaintext);
    assert_int_equal(b.key_version, 1);
    sbx_kms_cache_stats s = stats(x);
    assert_int_equal(s.hits, 1);
    assert_int_equal(s.misses, 1);
    assert_int_equal(s.entries, 1);
    sbx_kms_datakey_dispose(&a);
    sbx_kms_datakey_dispose(&b);
    fixture_free(x);
}

static void
datakey_max_age_forces_refetch(void **state)
{
    (void)state;
    fixture *x = fixture_new(300, 0, 0, 0);
    assert_int_equal(get_seq(x, "k", NULL, 0, 1), 1);
    sleep_ms(100);
    assert_int_equal(get_seq(x, "k", NULL, 0, 1), 1);
    sleep_ms(250); // 350 ms since the fetch
    assert_int_equal(get_seq(x, "k", NULL, 0, 1), 2);
    assert_int_equal(x->f.datakey_calls, 2);
    assert_int_equal(stats(x).expirations, 1);
    assert_int_equal(get_seq(x, "k", NULL, 0, 1), 2);
    fixture_free(x);
}

static void
datakey_max_uses_forces_refetch(void **state)
{
    (void)state;
    fixture *x = fixture_new(0, 3, 0, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(get_seq(x, "k", NULL, 0, 1), 1);
    assert_int_equal(get_seq(x, "k", NULL, 0, 1), 2); // a 4th use exceeds max_uses
    assert_int_equal(x->f.datakey_calls, 2);
    assert_int_equal(stats(x).expirations, 1);
    fixture_free(x);
}

static void
datakey_max_uses_one_never_reuses(void **state)
{
    (void)state;
    fixture *x = fixture_new(0, 1, 0, 0);
    assert_int_equal(get_seq(x, "k", NULL, 0, 1), 1);
    assert_int_equal(get_seq(x, "k", NULL, 0, 1), 2);
    assert_int_equal(stats(x).entries, 0);
    fixture_free(x);
}

static void
datakey_max_bytes_forces_refetch(void **state)
{
    (void)state;
    fixture *x = fixture_new(0, 0, 1000, 0);
    assert_int_equal(get_seq(x, "k", NULL, 0, 400), 1);
    assert_int_equal(get_seq(x, "k", NULL, 0, 400), 1);
    assert_int_equal(get_seq(x, "k", NULL, 0, 300), 2); // 800 + 300 > 1000
    assert_int_equal(get_seq(x, "k", NULL, 0, 700), 2); // 300 + 700 == 1000 still fits
    assert_int_equal(get_seq(x, "k", NULL, 0, 0), 2);   // nothing more to encrypt fits too
    assert_int_equal(get_seq(x, "k", NULL, 0, 1), 3);
    assert_int_equal(stats(x).expirations, 2);
    fixture_free(x);
}

static void
datakey_oversize_request_is_not_cached(void **state)
{
    (void)state;
    fixture *x = fixture_new(0, 0, 1000, 0);
    assert_int_equal(get_seq(x, "k", NULL, 0, 10), 1);
    assert_int_equal(get_seq(x, "k", NULL, 0, 1001), 2); // a key of its own
    assert_int_equal(get_seq(x, "k", NULL, 0, 1001), 3); // and another
    assert_int_equal(get_seq(x, "k", NULL, 0, 10), 1);   // the cached entry is untouched
    sbx_kms_cache_stats s = stats(x);
    assert_int_equal(s.entries, 1);
    assert_int_equal(s.misses, 3);
    assert_int_equal(s.hits, 1);
    fixture_free(x);
}

static void
datakey_partitions_by_name_and_context(void **state)
{
    (void)state;
    fixture *x = fixture_new(0, 0, 0, 0);
    const sbx_kms_pair c1[] = {{"tenant", "a"}, {"purpose", "backup"}};
    const sbx_kms_pair c1_reordered[] = {{"purpose", "backup"}, {"tenant", "a"}};
    const sbx_kms_pair c2[] = {{"tenant", "b"}, {"purpose", "backup"}};
    const sbx_kms_pair split1[] = {{"ab", "c"}};
    const sbx_kms_pair split2[] = {{"a", "bc"}};
    const sbx_kms_pair empty_value[] = {{"x", ""}};

    unsigned a = get_seq(x, "one", NULL, 0, 1);
    unsigned b = get_seq(x, "two", NULL, 0, 1);
    unsigned a1 = get_seq(x, "one", c1, 2, 1);
    unsigned a2 = get_seq(x, "one", c2, 2, 1);
    unsigned b1 = get_seq(x, "two", c1, 2, 1);
    unsigned s1 = get_seq(x, "one", split1, 1, 1);
    unsigned s2 = get_seq(x, "one", split2, 1, 1);
    unsigned e1 = get_seq(x, "one", empty_value, 1, 1);
    unsigned seqs[] = {a, b, a1, a2, b1, s1, s2, e1};
    for (size_t i = 0; i < 8; i++)
        for (size_t j = i + 1; j < 8; j++)
            assert_int_not_equal(seqs[i], seqs[j]);

    assert_int_equal(get_seq(x, "one", c1_reordered, 2, 1), a1); // same pairs, same partition
    assert_int_equal(get_seq(x, "one", c1, 0, 1), a);            // n 0: no context
    assert_int_equal(x->f.datakey_calls, 8);
    assert_int_equal(stats(x).entries, 8);
    fixture_free(x);
}

static void
lru_bound_evicts_least_recently_used(void **state)
{
    (void)state;
    fixture *x = fixture_new(0, 0, 0, 2);
    assert_int_equal(get_seq(x, "k1", NULL, 0, 1), 1);
    assert_int_equal(get_seq(x, "k2", NULL, 0, 1), 2);
    assert_int_equal(get_seq(x, "k1", NULL, 0, 1), 1); // k1 is now the most recent
    assert_int_equal(get_seq(x, "k3", NULL, 0, 1), 3); // evicts k2
    sbx_kms_cache_stats s = stats(x);
    assert_int_equal(s.entries, 2);
    assert_int_equal(s.evictions, 1);
    assert_int_equal(s.expirations, 0);
    assert_int_equal(get_seq(x, "k1", NULL, 0, 1), 1);
    assert_int_equal(get_seq(x, "k2", NULL, 0, 1), 4); // refetched, evicts k3
    assert_int_equal(get_seq(x, "k1", NULL, 0, 1), 1);
    assert_int_equal(stats(x).evictions, 2);
    assert_int_equal(stats(x).entries, 2);
    fixture_free(x);
}

static void
lru_bound_holds_under_many_partitions(void **state)
{
    (void)state;
    fixture *x = fixture_new(0, 0, 0, 50);
    char name[32];
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof name, "k%d", i);
        get_seq(x, name, NULL, 0, 1);
    }
    sbx_kms_cache_stats s = stats(x);
    assert_int_equal(s.entries, 50);
    assert_int_equal(s.evictions, 450);
    for (int i = 450; i < 500; i++) { // the 50 most recent are all there
        snprintf(name, sizeof name, "k%d", i);
        assert_int_equal(get_seq(x, name, NULL, 0, 1), (unsigned)i + 1);
    }
    assert_int_equal(x->f.datakey_calls, 500);
    fixture_free(x);
}

static void
errors_are_not_cached(void **state)
{
    (void)state;
    fixture *x = fixture_new(0, 0, 0, 0);
    x->f.fail_next = 1;
    sbx_kms_datakey dk;
    assert_sbx_err(sbx_kms_cache_datakey(x->cache, "k", NULL, 0, 1, &dk), SBX_EIO);
    assert_null(dk.plaintext);
    assert_null(dk.ciphertext);
    assert_non_null(strstr(sbx_error_last()->message, "https://fake.invalid"));
    assert_int_equal(stats(x).entries, 0);
    assert_int_equal(get_seq(x, "k", NULL, 0, 1), 2); // fetched again, and now cached
    assert_int_equal(get_seq(x, "k", NULL, 0, 1), 2);

    uint8_t pt[64];
    size_t len = 99;
    x->f.fail_next = 1;
    assert_sbx_err(sbx_kms_cache_decrypt(x->cache, "k", "sbx:v1:abc", NULL, 0, pt, &len), SBX_EIO);
    assert_int_equal(len, 0);
    assert_sbx_ok(sbx_kms_cache_decrypt(x->cache, "k", "sbx:v1:abc", NULL, 0, pt, &len));
    assert_int_equal(x->f.decrypt_calls, 2);
    sbx_kms_cache_stats s = stats(x);
    assert_int_equal(s.misses, 4);
    assert_int_equal(s.entries, 2);
    fixture_free(x);
}

/* ---- single flight ---- */

typedef struct racer {
    fixture *x;
    pthread_barrier_t *start;
    int rc;
    uint8_t key[32];
    char ciphertext[128];
} racer;

static void *
race(void *p)
{
    racer *r = p;
    pthread_barrier_wait(r->start);
    sbx_kms_datakey dk;
    r->rc = sbx_kms_cache_datakey(r->x->cache, "shared", NULL, 0, 10, &dk);
    if (r->rc == 0) {
        memcpy(r->key, dk.plaintext, 32);
        snprintf(r->ciphertext, sizeof r->ciphertext, "%s", dk.ciphertext);
        sbx_kms_datakey_dispose(&dk);
    }
    return NULL;
}

static void
run_racers(fixture *x, racer *r, size_t n)
{
    pthread_t t[32];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)n);
    for (size_t i = 0; i < n; i++) {
        r[i].x = x;
        r[i].start = &start;
        assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
    }
    for (size_t i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&start);
}

static void
single_flight_makes_one_fetch_for_concurrent_misses(void **state)
{
    (void)state;
    fixture *x = fixture_new(0, 0, 0, 0);
    x->f.sleep_ms = 200;
    racer r[16];
    memset(r, 0, sizeof r);
    run_racers(x, r, 16);
    assert_int_equal(x->f.datakey_calls, 1);
    for (size_t i = 0; i < 16; i++) {
        assert_int_equal(r[i].rc, 0);
        assert_memory_equal(r[i].key, r[0].key, 32);
        assert_string_equal(r[i].ciphertext, r[0].ciphertext);
    }
    sbx_kms_cache_stats s = stats(x);
    assert_int_equal(s.misses, 1);
    assert_int_equal(s.hits, 15);
    fixture_free(x);
}

static void
single_flight_failure_wakes_waiters_and_one_refetches(void **state)
{
    (void)state;
    fixture *x = fixture_new(0, 0, 0, 0);
    x->f.sleep_ms = 200;
    x->f.fail_next = 1;
    racer r[8];
    memset(r, 0, sizeof r);
    run_racers(x, r, 8);
    assert_int_equal(x->f.datakey_calls, 2); // the failed fetch and exactly one retry
    int failed = 0, ok = -1;
    for (size_t i = 0; i < 8; i++) {
        if (r[i].rc != 0) {
            assert_int_equal(r[i].rc, SBX_EIO);
            failed++;
        } else if (ok < 0) {
            ok = (int)i;
        } else {
            assert_memory_equal(r[i].key, r[ok].key, 32);
        }
    }
    assert_int_equal(failed, 1); // only the first fetcher sees the error
    assert_non_null(strstr(r[ok].ciphertext, "fake-2-"));
    sbx_kms_cache_stats s = stats(x);
    assert_int_equal(s.misses, 2);
    assert_int_equal(s.hits, 6);
    fixture_free(x);
}

static void *
slow_get(void *p)
{
    fixture *x = p;
    get_seq(x, "k", NULL, 0, 1);
    return NULL;
}

static void
clear_during_fetch_does_not_store_the_result(void **state)
{
    (void)state;
    fixture *x = fixture_new(0, 0, 0, 0);
    x->f.sleep_ms = 200;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, slow_get, x), 0);
    sleep_ms(80);
    sbx_kms_cache_clear(x->cache);
    pthread_join(t, NULL);
    assert_int_equal(stats(x).entries, 0);
    x->f.sleep_ms = 0;
    assert_int_equal(get_seq(x, "k", NULL, 0, 1), 2);
    fixture_free(x);
}

/* ---- decryption cache ---- */

static void
decrypt_cache_hits_and_expires(void **state)
{
    (void)state;
    fixture *x = fixture_new(300, 1, 1, 0); // uses and bytes do not apply to decryption
    const sbx_kms_pair c1[] = {{"a", "1"}, {"b", "2"}};
    const sbx_kms_pair c1_reordered[] = {{"b", "2"}, {"a", "1"}};
    const sbx_kms_pair c2[] = {{"a", "1"}, {"b", "3"}};
    uint8_t p1[64], p2[64];
    size_t l1, l2;
    assert_sbx_ok(sbx_kms_cache_decrypt(x->cache, "k", "sbx:v1:AAAA", c1, 2, p1, &l1));
    assert_int_equal(l1, 32);
    for (int i = 0; i < 5; i++) {
        memset(p2, 0, sizeof p2);
        assert_sbx_ok(
            sbx_kms_cache_decrypt(x->cache, "k", "sbx:v1:AAAA", c1_reordered, 2, p2, &l2));
        assert_int_equal(l2, 32);
        assert_memory_equal(p1, p2, 32);
    }
    assert_int_equal(x->f.decrypt_calls, 1);
    assert_int_equal(stats(x).hits, 5);

    assert_sbx_ok(sbx_kms_cache_decrypt(x->cache, "k", "sbx:v1:AAAB", c1, 2, p2, &l2));
    assert_sbx_ok(sbx_kms_cache_decrypt(x->cache, "k", "sbx:v1:AAAA", c2, 2, p2, &l2));
    assert_sbx_ok(sbx_kms_cache_decrypt(x->cache, "other", "sbx:v1:AAAA", c1, 2, p2, &l2));
    assert_int_equal(x->f.decrypt_calls, 4);
    assert_int_equal(stats(x).entries, 4);

    sleep_ms(350);
    assert_sbx_ok(sbx_kms_cache_decrypt(x->cache, "k", "sbx:v1:AAAA", c1, 2, p2, &l2));
    assert_memory_equal(p1, p2, 32);
    assert_int_equal(x->f.decrypt_calls, 5);
    sbx_kms_cache_stats s = stats(x);
    assert_int_equal(s.expirations, 4); // the three others are swept as well
    assert_int_equal(s.entries, 1);
    fixture_free(x);
}

static void
decrypt_and_datakey_partitions_are_separate(void **state)
{
    (void)state;
    fixture *x = fixture_new(0, 0, 0, 0);
    sbx_kms_datakey dk;
    assert_sbx_ok(sbx_kms_cache_datakey(x->cache, "k", NULL, 0, 1, &dk));
    uint8_t pt[64];
    size_t len;
    assert_sbx_ok(sbx_kms_cache_decrypt(x->cache, "k", dk.ciphertext, NULL, 0, pt, &len));
    assert_int_equal(x->f.decrypt_calls, 1);
    assert_int_equal(stats(x).entries, 2);
    sbx_kms_datakey_dispose(&dk);
    fixture_free(x);
}

static void
expired_entries_are_swept_without_a_lookup(void **state)
{
    (void)state;
    fixture *x = fixture_new(300, 0, 0, 0);
    get_seq(x, "a", NULL, 0, 1);
    get_seq(x, "b", NULL, 0, 1);
    assert_int_equal(stats(x).entries, 2);
    sleep_ms(350);
    sbx_kms_cache_stats s = stats(x);
    assert_int_equal(s.entries, 0);
    assert_int_equal(s.expirations, 2);
    fixture_free(x);
}

/* ---- clear, copies ---- */

static void
clear_drops_every_entry(void **state)
{
    (void)state;
    fixture *x = fixture_new(0, 0, 0, 0);
    get_seq(x, "a", NULL, 0, 1);
    get_seq(x, "b", NULL, 0, 1);
    uint8_t pt[64];
    size_t len;
    assert_sbx_ok(sbx_kms_cache_decrypt(x->cache, "a", "sbx:v1:x", NULL, 0, pt, &len));
    assert_int_equal(stats(x).entries, 3);
    sbx_kms_cache_clear(x->cache);
    sbx_kms_cache_stats s = stats(x);
    assert_int_equal(s.entries, 0);
    assert_int_equal(s.evictions, 0);
    assert_int_equal(s.expirations, 0);
    assert_int_equal(get_seq(x, "a", NULL, 0, 1), 3);
    assert_sbx_ok(sbx_kms_cache_decrypt(x->cache, "a", "sbx:v1:x", NULL, 0, pt, &len));
    assert_int_equal(x->f.decrypt_calls, 2);
    fixture_free(x);
}

static void
copies_outlive_their_entry(void **state)
{
    (void)state;
    fixture *x = fixture_new(0, 0, 0, 1);
    sbx_kms_datakey a, b;
    assert_sbx_ok(sbx_kms_cache_datakey(x->cache, "a", NULL, 0, 1, &a)); // fetched
    assert_sbx_ok(sbx_kms_cache_datakey(x->cache, "a", NULL, 0, 1, &b)); // a copy of the entry
    uint8_t want[32];
    memcpy(want, b.plaintext, 32);
    char want_ct[128];
    snprintf(want_ct, sizeof want_ct, "%s", b.ciphertext);
    get_seq(x, "other", NULL, 0, 1); // evicts "a"
    assert_int_equal(stats(x).evictions, 1);
    sbx_kms_cache_clear(x->cache);
    assert_memory_equal(a.plaintext, want, 32);
    assert_memory_equal(b.plaintext, want, 32);
    assert_string_equal(b.ciphertext, want_ct);
    sbx_kms_datakey_dispose(&a);
    sbx_kms_datakey_dispose(&b);
    assert_null(b.plaintext);

    // Freeing the cache leaves earlier copies valid too.
    assert_sbx_ok(sbx_kms_cache_datakey(x->cache, "a", NULL, 0, 1, &a));
    assert_sbx_ok(sbx_kms_cache_datakey(x->cache, "a", NULL, 0, 1, &b));
    fixture_free(x);
    assert_memory_equal(a.plaintext, b.plaintext, 32);
    sbx_kms_datakey_dispose(&a);
    sbx_kms_datakey_dispose(&b);
}

static void
limits_are_checked(void **state)
{
    (void)state;
    fake f = {0};
    sbx_kms_cache *c = (sbx_kms_cache *)1;
    sbx_kms_cache_limits lim = SBX_KMS_CACHE_LIMITS_INIT;
    lim.version = 99;
    assert_sbx_err(sbx_kms__cache_new_with(&c, &fake_fetch, &f, &lim), SBX_EINVAL);
    assert_null(c);
    assert_sbx_ok(sbx_kms__cache_new_with(&c, &fake_fetch, &f, NULL)); // defaults
    sbx_kms_cache_free(c);
    sbx_kms_cache_free(NULL);
}

/*
 * The bucket hash is SipHash-2-4 under the cache's key: the known answer of
 * the SipHash paper (Aumasson and Bernstein, 2012, appendix A: key 00..0f,
 * message 00..0e, 64-bit output a129ca6149be45e5), and two caches (two random
 * keys) hash the same bytes differently, so colliding partition keys cannot
 * be chosen in advance.
 */
static void
bucket_hash_is_keyed_siphash(void **state)
{
    (void)state;
    fake f = {0};
    sbx_kms_cache *c = NULL, *d = NULL;
    uint8_t key[16], msg[15];
    uint64_t h = 0, h2 = 0;
    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (uint8_t)i;
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)i;
    assert_sbx_ok(sbx_kms__cache_new_with(&c, &fake_fetch, &f, NULL));
    assert_sbx_ok(sbx_kms__cache_new_with(&d, &fake_fetch, &f, NULL));
    assert_sbx_ok(sbx_kms__cache_hash(c, msg, sizeof msg, &h));
    assert_sbx_ok(sbx_kms__cache_hash(d, msg, sizeof msg, &h2));
    assert_true(h != h2); // equal with probability 2^-64
    assert_sbx_ok(sbx_kms__cache_set_hash_key(c, key));
    assert_sbx_ok(sbx_kms__cache_hash(c, msg, sizeof msg, &h));
    assert_true(h == 0xa129ca6149be45e5u);
    sbx_kms_cache_free(c);
    sbx_kms_cache_free(d);
}

int
main(void)
{
    secure_heap = sbx_init() == 0;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(datakey_hit_after_miss),
        cmocka_unit_test(datakey_max_age_forces_refetch),
        cmocka_unit_test(datakey_max_uses_forces_refetch),
        cmocka_unit_test(datakey_max_uses_one_never_reuses),
        cmocka_unit_test(datakey_max_bytes_forces_refetch),
        cmocka_unit_test(datakey_oversize_request_is_not_cached),
        cmocka_unit_test(datakey_partitions_by_name_and_context),
        cmocka_unit_test(lru_bound_evicts_least_recently_used),
        cmocka_unit_test(lru_bound_holds_under_many_partitions),
        cmocka_unit_test(errors_are_not_cached),
        cmocka_unit_test(single_flight_makes_one_fetch_for_concurrent_misses),
        cmocka_unit_test(single_flight_failure_wakes_waiters_and_one_refetches),
        cmocka_unit_test(clear_during_fetch_does_not_store_the_result),
        cmocka_unit_test(decrypt_cache_hits_and_expires),
        cmocka_unit_test(decrypt_and_datakey_partitions_are_separate),
        cmocka_unit_test(expired_entries_are_swept_without_a_lookup),
        cmocka_unit_test(clear_drops_every_entry),
        cmocka_unit_test(copies_outlive_their_entry),
        cmocka_unit_test(limits_are_checked),
        cmocka_unit_test(bucket_hash_is_keyed_siphash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
