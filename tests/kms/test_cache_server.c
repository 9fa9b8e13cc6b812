/*
 * tests/kms/test_cache_server.c - the data-key cache with the real client
 * against a real `sbx kms serve --dev`: every limit costs exactly one more
 * datakey request (counted by the server's /metrics), concurrent first use
 * makes one request, and what a cache means for an outage, a rotation and a
 * revoked token (all served from cache until max_age, not after).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>

#include "helpers.h"
#include "kms/kms_server.h"
#include "strongbox/kms.h"

static test_kms_server server;

static sbx_kms_client *
client_new(const char *token)
{
    const char *urls[] = {server.url};
    sbx_kms_client_options o = SBX_KMS_CLIENT_OPTIONS_INIT;
    o.urls = urls;
    o.url_count = 1;
    o.token = token;
    o.cacert = server.cacert;
    o.retries = 1;
    o.backoff_ms = 50;
    o.connect_timeout_ms = 1000;
    o.timeout_ms = 5000;
    sbx_kms_client *c = NULL;
    assert_sbx_ok(sbx_kms_client_new(&c, &o));
    return c;
}

static sbx_kms_cache *
cache_new(sbx_kms_client *c, uint64_t max_age_ms, uint64_t max_uses, uint64_t max_bytes)
{
    sbx_kms_cache_limits lim = SBX_KMS_CACHE_LIMITS_INIT;
    lim.max_age_ms = max_age_ms;
    lim.max_uses = max_uses;
    lim.max_bytes = max_bytes;
    sbx_kms_cache *cache = NULL;
    assert_sbx_ok(sbx_kms_cache_new(&cache, c, &lim));
    return cache;
}

static void
key_create(sbx_kms_client *admin, const char *name)
{
    int rc = sbx_kms_key_create(admin, name, 0, NULL);
    if (rc != SBX_ECONFLICT)
        assert_sbx_ok(rc);
}

static long
datakeys(void)
{
    long n = test_kms_server_requests(&server, "datakey");
    assert_true(n >= 0);
    return n;
}

/* One datakey through the cache; returns its key version, copies the key if want. */
static unsigned
get(sbx_kms_cache *cache, const char *name, uint64_t bytes, uint8_t key[32])
{
    sbx_kms_datakey dk;
    assert_sbx_ok(sbx_kms_cache_datakey(cache, name, NULL, 0, bytes, &dk));
    assert_int_equal(dk.plaintext_len, 32);
    if (key != NULL)
        memcpy(key, dk.plaintext, 32);
    unsigned v = dk.key_version;
    sbx_kms_datakey_dispose(&dk);
    return v;
}

static int
setup(void **state)
{
    (void)state;
    return test_kms_server_start(&server, true, NULL);
}

static int
teardown(void **state)
{
    (void)state;
    test_kms_server_cleanup(&server);
    return 0;
}

/* ---- limits ---- */

static void
max_age_costs_one_more_request(void **state)
{
    (void)state;
    sbx_kms_client *c = client_new(server.admin_token);
    key_create(c, "cache-age");
    sbx_kms_cache *cache = cache_new(c, 500, 0, 0);
    long before = datakeys();
    uint8_t k1[32], k2[32];
    get(cache, "cache-age", 1, k1);
    get(cache, "cache-age", 1, k2);
    assert_memory_equal(k1, k2, 32);
    assert_int_equal(datakeys(), before + 1);
    test_kms__sleep_ms(600);
    get(cache, "cache-age", 1, k2);
    assert_memory_not_equal(k1, k2, 32);
    get(cache, "cache-age", 1, NULL);
    assert_int_equal(datakeys(), before + 2);
    sbx_kms_cache_free(cache);
    sbx_kms_client_free(c);
}

static void
max_uses_costs_one_more_request(void **state)
{
    (void)state;
    sbx_kms_client *c = client_new(server.admin_token);
    key_create(c, "cache-uses");
    sbx_kms_cache *cache = cache_new(c, 0, 3, 0);
    long before = datakeys();
    for (int i = 0; i < 3; i++)
        get(cache, "cache-uses", 1, NULL);
    assert_int_equal(datakeys(), before + 1);
    for (int i = 0; i < 3; i++)
        get(cache, "cache-uses", 1, NULL);
    assert_int_equal(datakeys(), before + 2);
    sbx_kms_cache_free(cache);
    sbx_kms_client_free(c);
}

static void
max_bytes_costs_one_more_request(void **state)
{
    (void)state;
    sbx_kms_client *c = client_new(server.admin_token);
    key_create(c, "cache-bytes");
    sbx_kms_cache *cache = cache_new(c, 0, 0, 1000);
    long before = datakeys();
    get(cache, "cache-bytes", 600, NULL);
    get(cache, "cache-bytes", 400, NULL);
    assert_int_equal(datakeys(), before + 1);
    get(cache, "cache-bytes", 1, NULL);
    assert_int_equal(datakeys(), before + 2);
    get(cache, "cache-bytes", 2000, NULL); // over max_bytes alone: fetched, not cached
    assert_int_equal(datakeys(), before + 3);
    get(cache, "cache-bytes", 1, NULL);
    assert_int_equal(datakeys(), before + 3);
    sbx_kms_cache_free(cache);
    sbx_kms_client_free(c);
}

static void
context_partitions_reach_the_server(void **state)
{
    (void)state;
    sbx_kms_client *c = client_new(server.admin_token);
    key_create(c, "cache-ctx");
    sbx_kms_cache *cache = cache_new(c, 0, 0, 0);
    const sbx_kms_pair a[] = {{"tenant", "a"}, {"app", "x"}};
    const sbx_kms_pair a2[] = {{"app", "x"}, {"tenant", "a"}};
    const sbx_kms_pair b[] = {{"tenant", "b"}, {"app", "x"}};
    long before = datakeys();
    sbx_kms_datakey d1, d2, d3;
    assert_sbx_ok(sbx_kms_cache_datakey(cache, "cache-ctx", a, 2, 1, &d1));
    assert_sbx_ok(sbx_kms_cache_datakey(cache, "cache-ctx", a2, 2, 1, &d2));
    assert_sbx_ok(sbx_kms_cache_datakey(cache, "cache-ctx", b, 2, 1, &d3));
    assert_memory_equal(d1.plaintext, d2.plaintext, 32);
    assert_memory_not_equal(d1.plaintext, d3.plaintext, 32);
    assert_int_equal(datakeys(), before + 2);

    // The decryption cache unwraps it once, under the right context only.
    uint8_t pt[64];
    size_t len;
    long dec = test_kms_server_requests(&server, "decrypt");
    assert_sbx_ok(sbx_kms_cache_decrypt(cache, "cache-ctx", d1.ciphertext, a2, 2, pt, &len));
    assert_int_equal(len, 32);
    assert_memory_equal(pt, d1.plaintext, 32);
    assert_sbx_ok(sbx_kms_cache_decrypt(cache, "cache-ctx", d1.ciphertext, a, 2, pt, &len));
    assert_memory_equal(pt, d1.plaintext, 32);
    assert_int_equal(test_kms_server_requests(&server, "decrypt"), dec + 1);
    assert_sbx_err(sbx_kms_cache_decrypt(cache, "cache-ctx", d1.ciphertext, b, 2, pt, &len),
                   SBX_EAUTH);
    assert_sbx_err(sbx_kms_cache_decrypt(cache, "cache-ctx", d1.ciphertext, b, 2, pt, &len),
                   SBX_EAUTH); // errors are not cached: asked again
    assert_int_equal(test_kms_server_requests(&server, "decrypt"), dec + 3);
    sbx_kms_datakey_dispose(&d1);
    sbx_kms_datakey_dispose(&d2);
    sbx_kms_datakey_dispose(&d3);
    sbx_kms_cache_free(cache);
    sbx_kms_client_free(c);
}

/* ---- concurrency ---- */

typedef struct racer {
    sbx_kms_cache *cache;
    pthread_barrier_t *start;
    int rc;
    uint8_t key[32];
} racer;

static void *
race(void *p)
{
    racer *r = p;
    pthread_barrier_wait(r->start);
    sbx_kms_datakey dk;
    r->rc = sbx_kms_cache_datakey(r->cache, "cache-race", NULL, 0, 1, &dk);
    if (r->rc == 0) {
        memcpy(r->key, dk.plaintext, 32);
        sbx_kms_datakey_dispose(&dk);
    }
    return NULL;
}

static void
concurrent_first_use_makes_one_request(void **state)
{
    (void)state;
    sbx_kms_client *c = client_new(server.admin_token);
    key_create(c, "cache-race");
    sbx_kms_cache *cache = cache_new(c, 0, 0, 0);
    long before = datakeys();
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 8);
    racer r[8];
    pthread_t t[8];
    for (int i = 0; i < 8; i++) {
        r[i] = (racer){cache, &start, -1, {0}};
        assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
    }
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&start);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(r[i].rc, 0);
        assert_memory_equal(r[i].key, r[0].key, 32);
    }
    assert_int_equal(datakeys(), before + 1);
    sbx_kms_cache_stats s;
    sbx_kms_cache_get_stats(cache, &s);
    assert_int_equal(s.misses, 1);
    assert_int_equal(s.hits, 7);
    sbx_kms_cache_free(cache);
    sbx_kms_client_free(c);
}

/* ---- rotation and revocation ---- */

static void
rotation_is_picked_up_after_max_age(void **state)
{
    (void)state;
    sbx_kms_client *c = client_new(server.admin_token);
    key_create(c, "cache-rotate");
    sbx_kms_cache *cache = cache_new(c, 800, 0, 0);
    long before = datakeys();
    unsigned v1 = get(cache, "cache-rotate", 1, NULL);
    assert_sbx_ok(sbx_kms_key_rotate(c, "cache-rotate", NULL));
    assert_int_equal(get(cache, "cache-rotate", 1, NULL), v1); // cached: not before expiry
    assert_int_equal(datakeys(), before + 1);
    test_kms__sleep_ms(900);
    assert_int_equal(get(cache, "cache-rotate", 1, NULL), v1 + 1);
    assert_int_equal(get(cache, "cache-rotate", 1, NULL), v1 + 1);
    assert_int_equal(datakeys(), before + 2);
    sbx_kms_cache_free(cache);
    sbx_kms_client_free(c);
}

/* A token allowed datakey and decrypt on every key; its id in id_out. */
static char *
token_create(sbx_kms_client *admin, char id_out[64])
{
    assert_sbx_ok(sbx_kms_request(admin, "PUT", "/v1/policies/cache-test",
                                  "{\"rules\": [{\"keys\": \"cache-*\", \"ops\": "
                                  "[\"datakey\", \"decrypt\"]}]}",
                                  true, NULL, NULL));
    sbx_buf body = SBX_BUF_INIT;
    assert_sbx_ok(sbx_kms_request(admin, "POST", "/v1/tokens",
                                  "{\"name\": \"cache-revoke\", \"policies\": [\"cache-test\"], "
                                  "\"ttl\": 3600, \"admin\": false}",
                                  false, NULL, &body));
    json_error_t jerr;
    json_t *j = json_loadb((const char *)body.ptr, body.len, 0, &jerr);
    assert_non_null(j);
    const char *token = json_string_value(json_object_get(j, "token"));
    const char *id = json_string_value(json_object_get(j, "id"));
    assert_non_null(token);
    assert_non_null(id);
    snprintf(id_out, 64, "%s", id);
    char *copy = strdup(token);
    json_decref(j);
    sbx_buf_dispose(&body);
    return copy;
}

static void
revoked_token_works_from_cache_until_max_age(void **state)
{
    (void)state;
    sbx_kms_client *admin = client_new(server.admin_token);
    key_create(admin, "cache-revoke");
    char id[64], path[128];
    char *token = token_create(admin, id);
    sbx_kms_client *c = client_new(token);
    sbx_kms_cache *cache = cache_new(c, 1500, 0, 0);
    uint8_t k1[32], k2[32];
    get(cache, "cache-revoke", 1, k1);

    snprintf(path, sizeof path, "/v1/tokens/%s", id);
    long status = 0;
    assert_sbx_ok(sbx_kms_request(admin, "DELETE", path, NULL, false, &status, NULL));
    assert_int_equal(status, 204);
    get(cache, "cache-revoke", 1, k2); // the cache does not ask the server
    assert_memory_equal(k1, k2, 32);

    test_kms__sleep_ms(1600); // past max_age, and over a second after the deletion
    sbx_kms_datakey dk;
    assert_sbx_err(sbx_kms_cache_datakey(cache, "cache-revoke", NULL, 0, 1, &dk), SBX_EDENIED);
    assert_null(dk.plaintext);
    sbx_kms_cache_stats s;
    sbx_kms_cache_get_stats(cache, &s);
    assert_int_equal(s.entries, 0);
    sbx_kms_cache_free(cache);
    sbx_kms_client_free(c);
    sbx_kms_client_free(admin);
    free(token);
}

/* Last: stops the server. */
static void
outage_is_bridged_until_max_age(void **state)
{
    (void)state;
    sbx_kms_client *c = client_new(server.admin_token);
    key_create(c, "cache-outage");
    sbx_kms_cache *cache = cache_new(c, 1500, 0, 0);
    uint8_t k1[32], k2[32];
    get(cache, "cache-outage", 1, k1);
    test_kms_server_stop(&server);
    assert_int_equal(server.pid, 0);
    get(cache, "cache-outage", 1, k2);
    assert_memory_equal(k1, k2, 32);

    test_kms__sleep_ms(1600);
    sbx_kms_datakey dk;
    assert_sbx_err(sbx_kms_cache_datakey(cache, "cache-outage", NULL, 0, 1, &dk), SBX_EIO);
    assert_non_null(strstr(sbx_error_last()->message, server.url));
    assert_null(dk.plaintext);
    // And again: the failure was not cached either, the server is asked (and down) again.
    assert_sbx_err(sbx_kms_cache_datakey(cache, "cache-outage", NULL, 0, 1, &dk), SBX_EIO);
    sbx_kms_cache_stats s;
    sbx_kms_cache_get_stats(cache, &s);
    assert_int_equal(s.misses, 3);
    assert_int_equal(s.entries, 0);
    sbx_kms_cache_free(cache);
    sbx_kms_client_free(c);
}

int
main(void)
{
    (void)sbx_init();
    (void)test_kms_server_restart; // the helper header's, unused here
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(max_age_costs_one_more_request),
        cmocka_unit_test(max_uses_costs_one_more_request),
        cmocka_unit_test(max_bytes_costs_one_more_request),
        cmocka_unit_test(context_partitions_reach_the_server),
        cmocka_unit_test(concurrent_first_use_makes_one_request),
        cmocka_unit_test(rotation_is_picked_up_after_max_age),
        cmocka_unit_test(revoked_token_works_from_cache_until_max_age),
        cmocka_unit_test(outage_is_bridged_until_max_age),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
