/*
 * tests/kms/test_client.c - the key server client (strongbox/kms.h) against
 * real `sbx kms serve --dev` servers on loopback: every typed call, raw
 * requests, error mapping, TLS trust (CA and pin), failover, retries,
 * threads, key URLs and the environment.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

#include "helpers.h"
#include "kms_server.h"
#include "strongbox/kms.h"
#include "strongbox/memory.h"
#include "kms/client.h"

static test_kms_server srv_a, srv_b; // two independent dev servers

/* ---------------------------------------------------------------- helpers */

static sbx_kms_client *
client_for(const char *const *urls, size_t n, const char *token, const char *cacert,
           const char *pin)
{
    sbx_kms_client_options o = SBX_KMS_CLIENT_OPTIONS_INIT;
    o.urls = urls;
    o.url_count = n;
    o.token = token;
    o.cacert = cacert;
    o.fingerprint = pin;
    o.backoff_ms = 10;
    sbx_kms_client *c = NULL;
    assert_sbx_ok(sbx_kms_client_new(&c, &o));
    return c;
}

/* An admin client of server s, trusting its certificate. */
static sbx_kms_client *
admin_client(const test_kms_server *s)
{
    const char *urls[] = {s->url};
    return client_for(urls, 1, s->admin_token, s->cacert, NULL);
}

/* A loopback URL nobody listens on (a port just bound and released). */
static void
closed_url(char *out, size_t size)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    snprintf(out, size, "https://127.0.0.1:%d", ntohs(a.sin_port));
}

static json_t *
buf_json(const sbx_buf *b)
{
    json_error_t e;
    json_t *j = json_loadb((const char *)b->ptr, b->len, 0, &e);
    if (j == NULL)
        print_error("not JSON (%s): %.*s\n", e.text, (int)b->len, (const char *)b->ptr);
    assert_non_null(j);
    return j;
}

static long long
json_int_at(const sbx_buf *b, const char *key)
{
    json_t *j = buf_json(b);
    long long v = json_integer_value(json_object_get(j, key));
    json_decref(j);
    return v;
}

static double
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Creates a token for policy (created with rules) and returns it in out. */
static void
restricted_token(sbx_kms_client *admin, const char *policy, const char *rules, char *out,
                 size_t size)
{
    char path[128], body[512];
    sbx_buf resp = SBX_BUF_INIT;
    long status = 0;
    snprintf(path, sizeof path, "/v1/policies/%s", policy);
    snprintf(body, sizeof body, "{\"rules\": %s}", rules);
    assert_sbx_ok(sbx_kms_request(admin, "PUT", path, body, false, &status, NULL));
    snprintf(body, sizeof body, "{\"name\": \"t-%s\", \"policies\": [\"%s\"], \"ttl\": 3600}",
             policy, policy);
    assert_sbx_ok(sbx_kms_request(admin, "POST", "/v1/tokens", body, false, &status, &resp));
    assert_int_equal(status, 201);
    json_t *j = buf_json(&resp);
    const char *t = json_string_value(json_object_get(j, "token"));
    assert_non_null(t);
    assert_true(strncmp(t, "sbxt_", 5) == 0);
    snprintf(out, size, "%s", t);
    json_decref(j);
    sbx_buf_dispose(&resp);
}

/* ---------------------------------------------------------------- setup */

static int
group_setup(void **state)
{
    (void)state;
    if (test_kms_server_start(&srv_a, true, NULL) != 0)
        return -1;
    if (test_kms_server_start(&srv_b, true, NULL) != 0)
        return -1;
    return srv_a.fingerprint[0] && srv_b.fingerprint[0] ? 0 : -1;
}

static int
group_teardown(void **state)
{
    (void)state;
    test_kms_server_cleanup(&srv_a);
    test_kms_server_cleanup(&srv_b);
    return 0;
}

/* ---------------------------------------------------------------- key URLs, options */

static void
parse_key_url_splits_base_and_name(void **state)
{
    (void)state;
    static const char *const good[][3] = {
        {"https://kms1:8443/billing", "https://kms1:8443", "billing"},
        {"HTTPS://kms.example.com/a.b_c-D9", "https://kms.example.com", "a.b_c-D9"},
        {"https://127.0.0.1:1/x", "https://127.0.0.1:1", "x"},
        {"https://[::1]:8443/k", "https://[::1]:8443", "k"},
        {"https://[fe80::1]/k", "https://[fe80::1]", "k"},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char *base = NULL, *name = NULL;
        assert_sbx_ok(sbx_kms_parse_key_url(good[i][0], &base, &name));
        assert_string_equal(base, good[i][1]);
        assert_string_equal(name, good[i][2]);
        free(base);
        free(name);
    }
    char long_name[200] = "https://h/";
    memset(long_name + 10, 'a', 128);
    char *base, *name;
    assert_sbx_ok(sbx_kms_parse_key_url(long_name, &base, &name));
    assert_int_equal(strlen(name), 128);
    free(base);
    free(name);
}

static void
parse_key_url_rejects_bad_urls(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "http://kms:8443/k",
        "https://kms:8443",
        "https://kms:8443/",
        "https://kms/.hidden",
        "https://kms/a/b",
        "https://kms/k?x=1",
        "https://kms/k#frag",
        "https://kms:0/k",
        "https://kms:65536/k",
        "https://kms:/k",
        "https:///k",
        "https://user@kms/k",
        "https://[::1/k",
        "https://kms/a b",
        "https://kms/k%20",
        "ftp://kms/k",
        "kms/k",
        "",
        "https://kms:8443x/k",
        "https://kms/name$",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *base = (char *)1, *name = (char *)1;
        int rc = sbx_kms_parse_key_url(bad[i], &base, &name);
        if (rc != SBX_EINVAL)
            print_error("accepted bad key URL \"%s\"\n", bad[i]);
        assert_int_equal(rc, SBX_EINVAL);
        assert_null(base);
        assert_null(name);
        assert_true(strlen(sbx_error_last()->message) > 0);
    }
    char long_name[200] = "https://h/";
    memset(long_name + 10, 'a', 129);
    char *base, *name;
    assert_sbx_err(sbx_kms_parse_key_url(long_name, &base, &name), SBX_EINVAL);
}

static void
client_new_rejects_bad_options(void **state)
{
    (void)state;
    sbx_kms_client *c = (sbx_kms_client *)1;
    sbx_kms_client_options o = SBX_KMS_CLIENT_OPTIONS_INIT;
    assert_sbx_err(sbx_kms_client_new(&c, &o), SBX_EINVAL); // no URL
    assert_null(c);
    const char *http[] = {"http://127.0.0.1:1"};
    o.urls = http;
    o.url_count = 1;
    assert_sbx_err(sbx_kms_client_new(&c, &o), SBX_EINVAL);
    assert_non_null(strstr(sbx_error_last()->message, "https://"));
    const char *ok[] = {"https://127.0.0.1:1"};
    o.urls = ok;
    o.fingerprint = "AB:CD";
    assert_sbx_err(sbx_kms_client_new(&c, &o), SBX_EINVAL);
    o.fingerprint = NULL;
    o.client_cert = "/nonexistent/cert.pem";
    assert_sbx_err(sbx_kms_client_new(&c, &o), SBX_EINVAL);
    o.client_cert = NULL;
    o.token = "sbxt_with\nnewline";
    assert_sbx_err(sbx_kms_client_new(&c, &o), SBX_EINVAL);
    assert_null(strstr(sbx_error_last()->message, "sbxt_with"));
    o.token = "sbxt_ok";
    o.version = 99;
    assert_sbx_err(sbx_kms_client_new(&c, &o), SBX_EINVAL);
    o.version = SBX_KMS_CLIENT_OPTIONS_VERSION;
    assert_sbx_ok(sbx_kms_client_new(&c, &o));
    sbx_kms_client_free(c);
    sbx_kms_client_free(NULL);
}

static void
context_string_is_canonical(void **state)
{
    (void)state;
    sbx_kms_pair p1[] = {{"b", "2"}, {"a", "1"}, {"c", "\xc3\xa9"}};
    sbx_kms_pair p2[] = {{"c", "\xc3\xa9"}, {"a", "1"}, {"b", "2"}};
    char *s1, *s2, *s0;
    assert_sbx_ok(sbx_kms__context_string(&s1, p1, 3));
    assert_sbx_ok(sbx_kms__context_string(&s2, p2, 3));
    assert_sbx_ok(sbx_kms__context_string(&s0, NULL, 0));
    assert_string_equal(s1, s2);
    assert_string_equal(s1, "{\"a\":\"1\",\"b\":\"2\",\"c\":\"\xc3\xa9\"}");
    assert_string_equal(s0, "{}");
    free(s1);
    free(s2);
    free(s0);
    sbx_kms_pair dup[] = {{"a", "1"}, {"a", "2"}};
    assert_sbx_err(sbx_kms__context_string(&s1, dup, 2), SBX_EINVAL);
    sbx_kms_pair empty[] = {{"", "1"}};
    assert_sbx_err(sbx_kms__context_string(&s1, empty, 1), SBX_EINVAL);
    sbx_kms_pair nullv[] = {{"a", NULL}};
    assert_sbx_err(sbx_kms__context_string(&s1, nullv, 1), SBX_EINVAL);
    sbx_kms_pair badutf8[] = {{"a", "\xff"}};
    assert_sbx_err(sbx_kms__context_string(&s1, badutf8, 1), SBX_EINVAL);
}

static void
url_lists_split_on_commas_and_trim(void **state)
{
    (void)state;
    char **u = NULL;
    size_t n = 0;
    assert_sbx_ok(sbx_kms__urls_split(&u, &n, "https://first", "  https://a:1 , ,https://b\t,"));
    assert_int_equal(n, 3);
    assert_string_equal(u[0], "https://first");
    assert_string_equal(u[1], "https://a:1");
    assert_string_equal(u[2], "https://b");
    sbx_kms__urls_free(u, n);
    assert_sbx_ok(sbx_kms__urls_split(&u, &n, NULL, NULL));
    assert_int_equal(n, 0);
    sbx_kms__urls_free(u, n);
}

static void
origin_keeps_scheme_host_and_port(void **state)
{
    (void)state;
    char *o;
    assert_sbx_ok(sbx_kms__origin(&o, "HTTPS://KMS.Example:8443/billing"));
    assert_string_equal(o, "https://kms.example:8443");
    free(o);
    assert_sbx_ok(sbx_kms__origin(&o, "https://kms"));
    assert_string_equal(o, "https://kms:443");
    free(o);
    assert_sbx_ok(sbx_kms__origin(&o, "https://[::1]:9/x"));
    assert_string_equal(o, "https://[::1]:9");
    free(o);
    assert_sbx_err(sbx_kms__origin(&o, "http://kms"), SBX_EINVAL);
}

/* ---------------------------------------------------------------- keys */

static void
health_answers_ok(void **state)
{
    (void)state;
    sbx_kms_client *c = admin_client(&srv_a);
    sbx_buf j = SBX_BUF_INIT;
    assert_sbx_ok(sbx_kms_health(c, &j));
    assert_non_null(strstr((const char *)j.ptr, "\"ok\""));
    assert_int_equal(j.ptr[j.len], '\0');
    assert_sbx_ok(sbx_kms_health(c, NULL));
    sbx_buf_dispose(&j);
    sbx_kms_client_free(c);
}

static void
key_management_round_trip(void **state)
{
    (void)state;
    sbx_kms_client *c = admin_client(&srv_a);
    sbx_buf m = SBX_BUF_INIT;
    assert_sbx_ok(sbx_kms_key_create(c, "mgmt-1", 0, &m));
    assert_int_equal(json_int_at(&m, "latest_version"), 1);
    sbx_buf_dispose(&m);
    assert_sbx_ok(sbx_kms_key_create(c, "mgmt-2", 86400, &m));
    assert_int_equal(json_int_at(&m, "auto_rotate_period"), 86400);
    sbx_buf_dispose(&m);
    assert_sbx_err(sbx_kms_key_create(c, "mgmt-1", 0, NULL), SBX_ECONFLICT);
    assert_non_null(strstr(sbx_error_last()->message, srv_a.url));

    assert_sbx_ok(sbx_kms_key_read(c, "mgmt-1", &m));
    json_t *j = buf_json(&m);
    assert_string_equal(json_string_value(json_object_get(j, "name")), "mgmt-1");
    json_decref(j);
    sbx_buf_dispose(&m);
    assert_sbx_err(sbx_kms_key_read(c, "mgmt-missing", NULL), SBX_ENOTFOUND);
    assert_sbx_err(sbx_kms_key_read(c, "../v1/tokens", NULL), SBX_EINVAL);

    assert_sbx_ok(sbx_kms_key_list(c, "mgmt-", &m));
    j = buf_json(&m);
    assert_int_equal(json_array_size(json_object_get(j, "keys")), 2);
    json_decref(j);
    sbx_buf_dispose(&m);
    assert_sbx_ok(sbx_kms_key_list(c, NULL, &m));
    sbx_buf_dispose(&m);

    assert_sbx_ok(sbx_kms_key_rotate(c, "mgmt-1", &m));
    assert_int_equal(json_int_at(&m, "latest_version"), 2);
    sbx_buf_dispose(&m);
    assert_sbx_ok(sbx_kms_key_config(c, "mgmt-1", 2, -1, &m));
    assert_int_equal(json_int_at(&m, "min_decryption_version"), 2);
    sbx_buf_dispose(&m);
    assert_sbx_err(sbx_kms_key_config(c, "mgmt-1", -1, 5, NULL), SBX_EINVAL);

    assert_sbx_ok(sbx_kms_key_destroy_version(c, "mgmt-1", 1, &m));
    sbx_buf_dispose(&m);
    assert_sbx_err(sbx_kms_key_destroy_version(c, "mgmt-1", 2, NULL), SBX_ECONFLICT);

    assert_sbx_ok(sbx_kms_key_delete(c, "mgmt-2", 3600, &m));
    assert_true(json_int_at(&m, "deletion_time") > 0);
    sbx_buf_dispose(&m);
    sbx_kms_datakey dk;
    assert_sbx_err(sbx_kms_datakey_new(c, "mgmt-2", NULL, 0, 0, false, &dk), SBX_ECONFLICT);
    assert_null(dk.plaintext);
    assert_sbx_ok(sbx_kms_key_restore(c, "mgmt-2", &m));
    assert_int_equal(json_int_at(&m, "deletion_time"), 0);
    sbx_buf_dispose(&m);
    assert_sbx_err(sbx_kms_key_restore(c, "mgmt-2", NULL), SBX_ECONFLICT);
    assert_sbx_ok(sbx_kms_key_delete(c, "mgmt-2", -1, NULL));
    sbx_kms_client_free(c);
}

/* ---------------------------------------------------------------- data plane */

static void
datakey_gives_keys_of_each_size(void **state)
{
    (void)state;
    sbx_kms_client *c = admin_client(&srv_a);
    assert_sbx_ok(sbx_kms_key_create(c, "dk", 0, NULL));
    static const unsigned bits[] = {0, 128, 256, 512};
    for (size_t i = 0; i < 4; i++) {
        sbx_kms_datakey dk;
        assert_sbx_ok(sbx_kms_datakey_new(c, "dk", NULL, 0, bits[i], false, &dk));
        size_t want = (bits[i] ? bits[i] : 256) / 8;
        assert_int_equal(dk.plaintext_len, want);
        assert_non_null(dk.plaintext);
        if (sbx_init() == 0)
            assert_true(sbx_secret_is_locked(dk.plaintext));
        assert_int_equal(dk.key_version, 1);
        assert_true(strncmp(dk.ciphertext, "sbx:v1:", 7) == 0);
        sbx_buf pt = SBX_BUF_INIT;
        unsigned v = 0;
        assert_sbx_ok(sbx_kms_decrypt(c, "dk", dk.ciphertext, NULL, 0, &pt, &v));
        assert_int_equal(pt.len, want);
        assert_memory_equal(pt.ptr, dk.plaintext, want);
        assert_int_equal(v, 1);
        sbx_buf_dispose(&pt);
        sbx_kms_datakey_dispose(&dk);
        assert_null(dk.plaintext);
        assert_null(dk.ciphertext);
    }
    sbx_kms_datakey dk;
    assert_sbx_ok(sbx_kms_datakey_new(c, "dk", NULL, 0, 256, true, &dk));
    assert_null(dk.plaintext);
    assert_int_equal(dk.plaintext_len, 0);
    assert_non_null(dk.ciphertext);
    sbx_kms_datakey_dispose(&dk);
    sbx_kms_datakey_dispose(NULL);
    assert_sbx_err(sbx_kms_datakey_new(c, "dk", NULL, 0, 192, false, &dk), SBX_EINVAL);
    assert_sbx_err(sbx_kms_datakey_new(c, "dk-missing", NULL, 0, 0, false, &dk), SBX_ENOTFOUND);
    sbx_kms_client_free(c);
}

static void
encrypt_decrypt_rewrap_bind_the_context(void **state)
{
    (void)state;
    sbx_kms_client *c = admin_client(&srv_a);
    assert_sbx_ok(sbx_kms_key_create(c, "ed", 0, NULL));
    sbx_kms_pair ctx[] = {{"tenant", "acme"}, {"table", "users"}};
    sbx_kms_pair ctx_swapped[] = {{"table", "users"}, {"tenant", "acme"}};
    sbx_kms_pair other[] = {{"tenant", "evil"}, {"table", "users"}};
    uint8_t msg[300];
    test_rand_fill(msg, sizeof msg);
    sbx_buf ct = SBX_BUF_INIT, pt = SBX_BUF_INIT, ct2 = SBX_BUF_INIT;
    unsigned v = 0;
    assert_sbx_ok(sbx_kms_encrypt(c, "ed", msg, sizeof msg, ctx, 2, &ct, &v));
    assert_int_equal(v, 1);
    assert_int_equal(strlen((const char *)ct.ptr), ct.len);
    assert_sbx_ok(sbx_kms_decrypt(c, "ed", (const char *)ct.ptr, ctx_swapped, 2, &pt, &v));
    assert_int_equal(pt.len, sizeof msg);
    assert_memory_equal(pt.ptr, msg, sizeof msg);
    sbx_buf_dispose(&pt);

    assert_sbx_err(sbx_kms_decrypt(c, "ed", (const char *)ct.ptr, other, 2, &pt, &v), SBX_EAUTH);
    assert_non_null(strstr(sbx_error_last()->message, "does not authenticate"));
    assert_null(strstr(sbx_error_last()->message, "evil"));
    assert_int_equal(pt.len, 0);
    assert_sbx_err(sbx_kms_decrypt(c, "ed", (const char *)ct.ptr, NULL, 0, &pt, &v), SBX_EAUTH);
    assert_sbx_err(sbx_kms_rewrap(c, "ed", (const char *)ct.ptr, other, 2, &ct2, &v), SBX_EAUTH);

    assert_sbx_ok(sbx_kms_key_rotate(c, "ed", NULL));
    assert_sbx_ok(sbx_kms_rewrap(c, "ed", (const char *)ct.ptr, ctx, 2, &ct2, &v));
    assert_int_equal(v, 2);
    assert_true(strncmp((const char *)ct2.ptr, "sbx:v2:", 7) == 0);
    assert_sbx_ok(sbx_kms_decrypt(c, "ed", (const char *)ct2.ptr, ctx, 2, &pt, &v));
    assert_int_equal(v, 2);
    assert_memory_equal(pt.ptr, msg, sizeof msg);
    sbx_buf_dispose(&pt);

    assert_sbx_ok(sbx_kms_encrypt(c, "ed", "", 0, NULL, 0, &ct2, &v)); // empty plaintext
    sbx_buf_dispose(&ct2);
    sbx_kms_pair dup[] = {{"a", "1"}, {"a", "1"}};
    assert_sbx_err(sbx_kms_encrypt(c, "ed", msg, 1, dup, 2, &ct2, &v), SBX_EINVAL);
    assert_sbx_err(sbx_kms_decrypt(c, "ed", "sbx:v1:AAAA", NULL, 0, &pt, &v), SBX_EINVAL);
    sbx_buf_dispose(&ct);
    sbx_buf_dispose(&ct2);
    sbx_kms_client_free(c);
}

static void
request_sends_batches_and_manages_tokens(void **state)
{
    (void)state;
    sbx_kms_client *c = admin_client(&srv_a);
    assert_sbx_ok(sbx_kms_key_create(c, "batch", 0, NULL));
    sbx_buf r = SBX_BUF_INIT;
    long status = 0;
    // A GET with a body would go out as a POST (a read that creates a key): refused.
    assert_sbx_err(sbx_kms_request(c, "GET", "/v1/keys/get-body", "{}", true, &status, &r),
                   SBX_EINVAL);
    assert_int_equal(status, 0);
    assert_sbx_err(sbx_kms_key_read(c, "get-body", NULL), SBX_ENOTFOUND);
    const char *batch = "{\"batch_input\": [{\"plaintext\": \"aGVsbG8=\"}, {\"plaintext\": \"!\"},"
                        " {\"plaintext\": \"d29ybGQ=\", \"context\": {\"k\": \"v\"}}]}";
    assert_sbx_ok(sbx_kms_request(c, "POST", "/v1/keys/batch/encrypt", batch, true, &status, &r));
    assert_int_equal(status, 200);
    json_t *j = buf_json(&r);
    json_t *res = json_object_get(j, "batch_results");
    assert_int_equal(json_array_size(res), 3);
    assert_non_null(json_object_get(json_array_get(res, 0), "ciphertext"));
    assert_non_null(json_object_get(json_array_get(res, 1), "error"));
    assert_non_null(json_object_get(json_array_get(res, 2), "ciphertext"));
    json_decref(j);
    sbx_buf_dispose(&r);

    assert_sbx_ok(sbx_kms_request(c, "POST", "/v1/tokens",
                                  "{\"name\": \"app1\", \"policies\": [], \"ttl\": 600}", false,
                                  &status, &r));
    assert_int_equal(status, 201);
    j = buf_json(&r);
    char id[64];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(j, "id")));
    json_decref(j);
    sbx_buf_dispose(&r);
    assert_sbx_ok(sbx_kms_request(c, "GET", "/v1/tokens", NULL, true, &status, &r));
    assert_non_null(strstr((const char *)r.ptr, id));
    sbx_buf_dispose(&r);
    char path[128];
    snprintf(path, sizeof path, "/v1/tokens/%s", id);
    assert_sbx_ok(sbx_kms_request(c, "DELETE", path, NULL, false, &status, NULL));
    assert_int_equal(status, 204);

    // Errors keep the body and the status.
    assert_sbx_err(sbx_kms_request(c, "GET", "/v1/keys/nope", NULL, true, &status, &r),
                   SBX_ENOTFOUND);
    assert_int_equal(status, 404);
    assert_non_null(strstr((const char *)r.ptr, "error"));
    sbx_buf_dispose(&r);
    assert_sbx_err(sbx_kms_request(c, "PATCH", "/v1/keys", NULL, true, &status, &r), SBX_EINVAL);
    assert_sbx_err(sbx_kms_request(c, "GET", "v1/keys", NULL, true, &status, &r), SBX_EINVAL);
    assert_sbx_err(sbx_kms_request(c, "GET", "/v1/keys\r\nX: y", NULL, true, &status, &r),
                   SBX_EINVAL);
    sbx_kms_client_free(c);
}

/* ---------------------------------------------------------------- errors */

static void
errors_map_http_statuses(void **state)
{
    (void)state;
    const char *urls[] = {srv_a.url};
    const char *bad_token = "sbxt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    sbx_kms_client *c = client_for(urls, 1, bad_token, srv_a.cacert, NULL);
    assert_sbx_err(sbx_kms_key_list(c, NULL, NULL), SBX_EDENIED);
    assert_non_null(strstr(sbx_error_last()->message, "401"));
    assert_non_null(strstr(sbx_error_last()->message, srv_a.url));
    assert_null(strstr(sbx_error_last()->message, "AAAAAAAAAA"));
    sbx_kms_client_free(c);

    c = client_for(urls, 1, NULL, srv_a.cacert, NULL); // no token at all
    assert_sbx_err(sbx_kms_key_read(c, "x", NULL), SBX_EDENIED);
    assert_sbx_ok(sbx_kms_health(c, NULL)); // health needs no caller
    sbx_kms_client_free(c);

    sbx_kms_client *admin = admin_client(&srv_a);
    assert_sbx_ok(sbx_kms_key_create(admin, "err-ro", 0, NULL));
    char token[128];
    restricted_token(admin, "readonly", "[{\"keys\": \"err-*\", \"ops\": [\"read\"]}]", token,
                     sizeof token);
    c = client_for(urls, 1, token, srv_a.cacert, NULL);
    assert_sbx_ok(sbx_kms_key_read(c, "err-ro", NULL));
    sbx_kms_datakey dk;
    assert_sbx_err(sbx_kms_datakey_new(c, "err-ro", NULL, 0, 0, false, &dk), SBX_EDENIED);
    assert_non_null(strstr(sbx_error_last()->message, "403"));
    assert_null(strstr(sbx_error_last()->message, token + 5));
    assert_sbx_err(sbx_kms_key_rotate(c, "err-ro", NULL), SBX_EDENIED);
    sbx_kms_client_free(c);

    assert_sbx_err(sbx_kms_key_rotate(admin, "err-none", NULL), SBX_ENOTFOUND);
    size_t big = (size_t)2 << 20; // over the server's --max-body: 413 from the HTTP layer
    uint8_t *p = calloc(1, big);
    sbx_buf out = SBX_BUF_INIT;
    assert_sbx_err(sbx_kms_encrypt(admin, "err-ro", p, big, NULL, 0, &out, NULL), SBX_ETOOBIG);
    assert_non_null(strstr(sbx_error_last()->message, "413"));
    assert_int_equal(sbx_kms__last_attempts(), 1);
    free(p);
    assert_sbx_err(sbx_kms_key_create(admin, "err-ro", 0, NULL), SBX_ECONFLICT);
    sbx_kms_client_free(admin);
}

/* ---------------------------------------------------------------- TLS */

static void
tls_refuses_a_server_the_ca_does_not_sign(void **state)
{
    (void)state;
    const char *urls[] = {srv_a.url};
    sbx_kms_client *c = client_for(urls, 1, srv_a.admin_token, srv_b.cacert, NULL);
    assert_sbx_err(sbx_kms_health(c, NULL), SBX_EIO);
    assert_non_null(strstr(sbx_error_last()->message, srv_a.url));
    sbx_kms_client_free(c);
    c = client_for(urls, 1, srv_a.admin_token, NULL, NULL); // the system store
    assert_sbx_err(sbx_kms_key_list(c, NULL, NULL), SBX_EIO);
    sbx_kms_client_free(c);
}

static void
tls_pin_accepts_the_server_and_refuses_another(void **state)
{
    (void)state;
    const char *urls[] = {srv_a.url};
    sbx_kms_client *c = client_for(urls, 1, srv_a.admin_token, NULL, srv_a.fingerprint);
    assert_sbx_ok(sbx_kms_key_list(c, NULL, NULL));
    assert_sbx_ok(sbx_kms_health(c, NULL));
    sbx_kms_client_free(c);

    // "sha256:" prefix, lower case, no colons; and a CA that would fail is ignored.
    char pin[128] = "sha256:";
    size_t n = strlen(pin);
    for (const char *p = srv_a.fingerprint; *p; p++)
        if (*p != ':')
            pin[n++] = (char)tolower((unsigned char)*p);
    pin[n] = '\0';
    c = client_for(urls, 1, srv_a.admin_token, srv_b.cacert, pin);
    assert_sbx_ok(sbx_kms_key_list(c, NULL, NULL));
    sbx_kms_client_free(c);

    c = client_for(urls, 1, srv_a.admin_token, NULL, srv_b.fingerprint);
    assert_sbx_err(sbx_kms_key_list(c, NULL, NULL), SBX_EIO);
    assert_non_null(strstr(sbx_error_last()->message,
                           "server certificate does not match the pinned fingerprint"));
    assert_non_null(strstr(sbx_error_last()->message, srv_a.url));
    assert_sbx_err(sbx_kms_key_create(c, "pin-never", 0, NULL), SBX_EIO);
    sbx_kms_client_free(c);
    c = admin_client(&srv_a);
    assert_sbx_err(sbx_kms_key_read(c, "pin-never", NULL), SBX_ENOTFOUND);
    sbx_kms_client_free(c);
}

static void
tls_client_certificate_authenticates(void **state)
{
    (void)state;
    char dir[300], cmd[2400];
    snprintf(dir, sizeof dir, "%s/clientca", srv_a.dir);
    snprintf(cmd, sizeof cmd,
             "set -e; mkdir -p '%s'; cd '%s'; exec 2>/dev/null; "
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
             "-keyout ca.key -out ca.pem -subj /CN=test-ca -days 2; "
             "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
             "-keyout cl.key -out cl.csr -subj /CN=app-cert; "
             "openssl x509 -req -in cl.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
             "-out cl.pem -days 2",
             dir, dir);
    assert_int_equal(system(cmd), 0);
    char ca[400], cert[400], key[400];
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    snprintf(cert, sizeof cert, "%s/cl.pem", dir);
    snprintf(key, sizeof key, "%s/cl.key", dir);
    const char *extra[] = {"--client-ca", ca, NULL};
    test_kms_server s = {0};
    assert_int_equal(test_kms_server_start(&s, true, extra), 0);
    sbx_kms_client *admin = admin_client(&s);
    assert_sbx_ok(sbx_kms_request(admin, "PUT", "/v1/certs/app-cert",
                                  "{\"policies\": [], \"admin\": true}", false, NULL, NULL));
    sbx_kms_client_free(admin);

    sbx_kms_client_options o = SBX_KMS_CLIENT_OPTIONS_INIT;
    const char *urls[] = {s.url};
    o.urls = urls;
    o.url_count = 1;
    o.cacert = s.cacert;
    sbx_kms_client *c;
    assert_sbx_ok(sbx_kms_client_new(&c, &o)); // no token, no certificate
    assert_sbx_err(sbx_kms_key_create(c, "cert-key", 0, NULL), SBX_EDENIED);
    sbx_kms_client_free(c);
    o.client_cert = cert;
    o.client_key = key;
    assert_sbx_ok(sbx_kms_client_new(&c, &o));
    assert_sbx_ok(sbx_kms_key_create(c, "cert-key", 0, NULL));
    sbx_kms_datakey dk;
    assert_sbx_ok(sbx_kms_datakey_new(c, "cert-key", NULL, 0, 0, false, &dk));
    sbx_kms_datakey_dispose(&dk);
    sbx_kms_client_free(c);
    test_kms_server_cleanup(&s);
}

/* ---------------------------------------------------------------- failover, retries */

static void
failover_skips_a_closed_port(void **state)
{
    (void)state;
    char closed[64];
    closed_url(closed, sizeof closed);
    const char *urls[] = {closed, srv_a.url};
    sbx_kms_client *c = client_for(urls, 2, srv_a.admin_token, srv_a.cacert, NULL);
    sbx_kms_datakey dk;
    assert_sbx_ok(sbx_kms_key_create(c, "fo-closed", 0, NULL)); // nothing sent to the first
    assert_int_equal(sbx_kms__last_attempts(), 2);
    assert_sbx_ok(sbx_kms_datakey_new(c, "fo-closed", NULL, 0, 0, false, &dk));
    assert_int_equal(sbx_kms__last_attempts(), 1); // starts from the server that answered
    sbx_kms_datakey_dispose(&dk);
    sbx_kms_client_free(c);
}

static void
failover_moves_on_when_a_server_stops(void **state)
{
    (void)state;
    test_kms_server s = {0};
    assert_int_equal(test_kms_server_start(&s, true, NULL), 0);
    sbx_kms_client *a = admin_client(&s), *b = admin_client(&srv_b);
    assert_sbx_ok(sbx_kms_key_create(a, "fo-stop", 0, NULL));
    assert_sbx_ok(sbx_kms_key_create(b, "fo-stop", 0, NULL));
    sbx_kms_client_free(a);
    sbx_kms_client_free(b);

    // Both servers are dev servers with their own self-signed certificates: trust both.
    char bundle[400];
    snprintf(bundle, sizeof bundle, "%s/bundle.pem", s.dir);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cat '%s' '%s' > '%s'", s.cacert, srv_b.cacert, bundle);
    assert_int_equal(system(cmd), 0);
    const char *urls[] = {s.url, srv_b.url};
    sbx_kms_client *c = client_for(urls, 2, TEST_KMS_DEV_TOKEN, bundle, NULL);
    sbx_kms_datakey dk;
    long before = test_kms_server_requests(&srv_b, "datakey");
    assert_sbx_ok(sbx_kms_datakey_new(c, "fo-stop", NULL, 0, 0, false, &dk));
    sbx_kms_datakey_dispose(&dk);
    assert_int_equal(test_kms_server_requests(&srv_b, "datakey"), before);

    assert_int_equal(test_kms_server_stop(&s), 0);
    assert_sbx_ok(sbx_kms_datakey_new(c, "fo-stop", NULL, 0, 0, false, &dk));
    sbx_kms_datakey_dispose(&dk);
    assert_int_equal(test_kms_server_requests(&srv_b, "datakey"), before + 1);
    assert_sbx_ok(sbx_kms_key_read(c, "fo-stop", NULL)); // and stays there
    sbx_kms_client_free(c);
    test_kms_server_cleanup(&s);
}

static void
retries_are_counted_and_the_error_names_the_server(void **state)
{
    (void)state;
    char closed1[64], closed2[64];
    closed_url(closed1, sizeof closed1);
    closed_url(closed2, sizeof closed2);
    sbx_kms_client_options o = SBX_KMS_CLIENT_OPTIONS_INIT;
    const char *one[] = {closed1};
    o.urls = one;
    o.url_count = 1;
    o.token = "sbxt_x";
    o.retries = 2;
    o.backoff_ms = 100;
    sbx_kms_client *c;
    assert_sbx_ok(sbx_kms_client_new(&c, &o));
    double t0 = now_ms();
    assert_sbx_err(sbx_kms_key_read(c, "k", NULL), SBX_EIO);
    double dt = now_ms() - t0;
    assert_int_equal(sbx_kms__last_attempts(), 3);
    assert_true(dt >= 150.0); // backoff with equal jitter: [50,100] + [100,200] ms
    assert_non_null(strstr(sbx_error_last()->message, closed1));
    assert_null(strstr(sbx_error_last()->message, "sbxt_x"));
    assert_sbx_err(sbx_kms_key_rotate(c, "k", NULL), SBX_EIO); // not idempotent: one try
    assert_int_equal(sbx_kms__last_attempts(), 1);
    sbx_kms_client_free(c);

    const char *two[] = {closed1, closed2};
    o.urls = two;
    o.url_count = 2;
    o.backoff_ms = 1;
    assert_sbx_ok(sbx_kms_client_new(&c, &o));
    sbx_kms_datakey dk;
    assert_sbx_err(sbx_kms_datakey_new(c, "k", NULL, 0, 0, false, &dk), SBX_EIO);
    assert_int_equal(sbx_kms__last_attempts(), 6);
    assert_sbx_err(sbx_kms_key_create(c, "k", 0, NULL), SBX_EIO); // each server, once
    assert_int_equal(sbx_kms__last_attempts(), 2);
    sbx_kms_client_free(c);

    o.url_count = 1;
    o.retries = 0;
    assert_sbx_ok(sbx_kms_client_new(&c, &o));
    assert_sbx_err(sbx_kms_health(c, NULL), SBX_EIO);
    assert_int_equal(sbx_kms__last_attempts(), 1);
    sbx_kms_client_free(c);
}

/* ---------------------------------------------------------------- 5xx answers */

/* A scripted HTTPS server (tests/kms/fake_kms.py) using srv_a's certificate. */
typedef struct fake {
    pid_t pid;
    char dir[300], url[64];
} fake;

static void
fake_start(fake *f)
{
    snprintf(f->dir, sizeof f->dir, "%s/fake", srv_a.dir);
    mkdir(f->dir, 0700);
    char cert[320], key[320], script[400], port[340];
    snprintf(cert, sizeof cert, "%s/tls/cert.pem", srv_a.dir);
    snprintf(key, sizeof key, "%s/tls/key.pem", srv_a.dir);
    snprintf(script, sizeof script, "%s/fake_kms.py", SBX_TEST_SOURCE_DIR);
    snprintf(port, sizeof port, "%s/port", f->dir);
    f->pid = fork();
    assert_true(f->pid >= 0);
    if (f->pid == 0) {
        execlp("python3", "python3", script, cert, key, f->dir, (char *)NULL);
        _exit(127);
    }
    char line[16] = "";
    for (int i = 0; i < 200 && line[0] == '\0'; i++) {
        test_kms__sleep_ms(50);
        test_kms__read_line(port, line, sizeof line);
    }
    assert_true(line[0] != '\0');
    snprintf(f->url, sizeof f->url, "https://127.0.0.1:%s", line);
}

/* Script the next answers (space-separated statuses) and forget the request log. */
static void
fake_plan(fake *f, const char *statuses)
{
    char path[340];
    snprintf(path, sizeof path, "%s/log", f->dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/plan", f->dir);
    FILE *p = fopen(path, "w");
    assert_non_null(p);
    fputs(statuses, p);
    fclose(p);
}

/* Requests the fake server saw since the last plan. */
static int
fake_requests(fake *f)
{
    char path[340], line[256];
    snprintf(path, sizeof path, "%s/log", f->dir);
    FILE *p = fopen(path, "r");
    int n = 0;
    while (p != NULL && fgets(line, sizeof line, p) != NULL)
        n++;
    if (p != NULL)
        fclose(p);
    return n;
}

static void
retries_follow_5xx_only_for_idempotent_calls(void **state)
{
    (void)state;
    fake f;
    fake_start(&f);
    const char *urls[] = {f.url};
    sbx_kms_client *c = client_for(urls, 1, "sbxt_x", srv_a.cacert, NULL);

    fake_plan(&f, "503 502");
    assert_sbx_ok(sbx_kms_health(c, NULL)); // idempotent: 503, 502, then 200
    assert_int_equal(fake_requests(&f), 3);
    assert_int_equal(sbx_kms__last_attempts(), 3);

    fake_plan(&f, "503 503 503 503");
    assert_sbx_err(sbx_kms_key_read(c, "k", NULL), SBX_EIO); // retries 2: three tries
    assert_int_equal(fake_requests(&f), 3);
    assert_non_null(strstr(sbx_error_last()->message, "scripted 503"));

    fake_plan(&f, "503");
    assert_sbx_err(sbx_kms_key_create(c, "k", 0, NULL), SBX_EIO); // sent once, never again
    assert_int_equal(fake_requests(&f), 1);
    fake_plan(&f, "500");
    assert_sbx_err(sbx_kms_key_read(c, "k", NULL), SBX_EIO); // 500 is not retried
    assert_int_equal(fake_requests(&f), 1);
    sbx_kms_client_free(c);

    kill(f.pid, SIGTERM);
    waitpid(f.pid, NULL, 0);
}

/* ---------------------------------------------------------------- threads */

#define THREADS    8
#define PER_THREAD 25

typedef struct worker {
    sbx_kms_client *c;
    int failures;
} worker;

static void *
worker_run(void *arg)
{
    worker *w = arg;
    sbx_kms_pair ctx[] = {{"thread", "yes"}};
    for (int i = 0; i < PER_THREAD; i++) {
        sbx_kms_datakey dk;
        if (sbx_kms_datakey_new(w->c, "threads", ctx, 1, 256, false, &dk) != 0) {
            fprintf(stderr, "datakey: %s\n", sbx_error_last()->message);
            w->failures++;
            continue;
        }
        if (dk.plaintext_len != 32)
            w->failures++;
        if (i % 5 == 0) {
            sbx_buf pt = SBX_BUF_INIT;
            if (sbx_kms_decrypt(w->c, "threads", dk.ciphertext, ctx, 1, &pt, NULL) != 0 ||
                pt.len != 32 || memcmp(pt.ptr, dk.plaintext, 32) != 0)
                w->failures++;
            sbx_buf_dispose(&pt);
        }
        sbx_kms_datakey_dispose(&dk);
    }
    return NULL;
}

static void
threads_share_one_client(void **state)
{
    (void)state;
    sbx_kms_client *c = admin_client(&srv_a);
    assert_sbx_ok(sbx_kms_key_create(c, "threads", 0, NULL));
    pthread_t t[THREADS];
    worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){c, 0};
        assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
    }
    int failures = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        failures += w[i].failures;
    }
    assert_int_equal(failures, 0);
    sbx_kms_client_free(c);
}

/* ---------------------------------------------------------------- environment */

static void
env_clear(void)
{
    static const char *const vars[] = {
        "SBX_KMS_TOKEN",       "SBX_KMS_TOKEN_FILE", "SBX_KMS_CACERT",  "SBX_KMS_FINGERPRINT",
        "SBX_KMS_CLIENT_CERT", "SBX_KMS_CLIENT_KEY", "SBX_KMS_FAILOVER"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
}

static void
from_env_reads_token_file_trust_and_failover(void **state)
{
    (void)state;
    env_clear();
    char path[400];
    snprintf(path, sizeof path, "%s/token-file", srv_a.dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%s\nsecond line ignored\n", srv_a.admin_token);
    fclose(f);
    char closed[64], failover[200];
    closed_url(closed, sizeof closed);
    snprintf(failover, sizeof failover, " %s/ ,, ", srv_a.url);
    setenv("SBX_KMS_TOKEN_FILE", path, 1);
    setenv("SBX_KMS_CACERT", srv_a.cacert, 1);
    setenv("SBX_KMS_FAILOVER", failover, 1);
    sbx_kms_client *c;
    assert_sbx_ok(sbx_kms_client_new_from_env(&c, closed, NULL));
    assert_string_equal(sbx_kms_client_url(c, 1), srv_a.url);
    assert_null(sbx_kms_client_url(c, 2));
    assert_sbx_ok(sbx_kms_key_create(c, "env-key", 0, NULL));
    sbx_kms_client_free(c);

    // Overrides win over the environment (a bad token: 401).
    sbx_kms_client_options ov = SBX_KMS_CLIENT_OPTIONS_INIT;
    ov.token = "sbxt_wrong";
    assert_sbx_ok(sbx_kms_client_new_from_env(&c, srv_a.url, &ov));
    assert_sbx_err(sbx_kms_key_read(c, "env-key", NULL), SBX_EDENIED);
    sbx_kms_client_free(c);

    // SBX_KMS_TOKEN wins over the file; the pin replaces the CA.
    setenv("SBX_KMS_TOKEN", srv_a.admin_token, 1);
    setenv("SBX_KMS_TOKEN_FILE", "/nonexistent/token", 1);
    unsetenv("SBX_KMS_CACERT");
    setenv("SBX_KMS_FINGERPRINT", srv_a.fingerprint, 1);
    assert_sbx_ok(sbx_kms_client_new_from_env(&c, srv_a.url, NULL));
    assert_sbx_ok(sbx_kms_key_read(c, "env-key", NULL));
    sbx_kms_client_free(c);

    unsetenv("SBX_KMS_TOKEN");
    assert_sbx_err(sbx_kms_client_new_from_env(&c, srv_a.url, NULL), SBX_EIO);
    assert_non_null(strstr(sbx_error_last()->message, "/nonexistent/token"));
    f = fopen(path, "w");
    fputs("\n", f);
    fclose(f);
    setenv("SBX_KMS_TOKEN_FILE", path, 1);
    assert_sbx_err(sbx_kms_client_new_from_env(&c, srv_a.url, NULL), SBX_EINVAL);
    setenv("SBX_KMS_CLIENT_CERT", srv_a.cacert, 1); // without a key
    unsetenv("SBX_KMS_TOKEN_FILE");
    assert_sbx_err(sbx_kms_client_new_from_env(&c, srv_a.url, NULL), SBX_EINVAL);
    env_clear();
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_key_url_splits_base_and_name),
        cmocka_unit_test(parse_key_url_rejects_bad_urls),
        cmocka_unit_test(client_new_rejects_bad_options),
        cmocka_unit_test(context_string_is_canonical),
        cmocka_unit_test(url_lists_split_on_commas_and_trim),
        cmocka_unit_test(origin_keeps_scheme_host_and_port),
        cmocka_unit_test(health_answers_ok),
        cmocka_unit_test(key_management_round_trip),
        cmocka_unit_test(datakey_gives_keys_of_each_size),
        cmocka_unit_test(encrypt_decrypt_rewrap_bind_the_context),
        cmocka_unit_test(request_sends_batches_and_manages_tokens),
        cmocka_unit_test(errors_map_http_statuses),
        cmocka_unit_test(tls_refuses_a_server_the_ca_does_not_sign),
        cmocka_unit_test(tls_pin_accepts_the_server_and_refuses_another),
        cmocka_unit_test(tls_client_certificate_authenticates),
        cmocka_unit_test(failover_skips_a_closed_port),
        cmocka_unit_test(failover_moves_on_when_a_server_stops),
        cmocka_unit_test(retries_are_counted_and_the_error_names_the_server),
        cmocka_unit_test(retries_follow_5xx_only_for_idempotent_calls),
        cmocka_unit_test(threads_share_one_client),
        cmocka_unit_test(from_env_reads_token_file_trust_and_failover),
    };
    test_seed_init("kms/client");
    return cmocka_run_group_tests_name("kms/client", tests, group_setup, group_teardown);
}
