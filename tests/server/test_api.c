/*
 * tests/server/test_api.c - the key server's HTTP API (server/api.h) driven
 * in-process through kms_api_handle over the in-memory store: every endpoint
 * of docs/kms.md, every error status (400 naming the field, 401, 403, 404,
 * 405 with Allow, 409, 413, 415, 503 with a fail-closed audit log), JSON
 * strictness, context binding, batch forms, policies, client certificates,
 * the keas.kmi requests, and the audit lines (fields, and no secrets in them).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "api.h"
#include "audit.h"
#include "auth.h"
#include "keystore.h"
#include "metrics.h"
#include "store.h"
#include "strongbox/encoding.h"
#include "strongbox/memory.h"
#include "helpers.h"

#define ADMIN "sbxt_test-admin-token-for-the-api-tests"

typedef struct {
    char url[64];
    char dir[64];
    char log[96];
    kms_store *st;
    kms_keystore *ks;
    kms_auth *auth;
    kms_audit *audit;
    kms_api *api;
    kms_response r;
    json_t *j; /* parsed body of the last response, when JSON */
} fixture;

static void
open_api(fixture *f, bool fail_closed)
{
    kms_api_options opt = {.dev = false, .storage = "sqlite"};
    static const uint8_t audit_key[32] = {1, 2, 3};
    assert_sbx_ok(kms_audit_open(&f->audit, f->log, audit_key, fail_closed));
    assert_sbx_ok(kms_api_new(&f->api, f->ks, f->auth, f->audit, &opt));
}

static int
setup(void **state)
{
    static unsigned counter;
    uint8_t root[32];
    char id[17];
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->url, sizeof(f->url), "memory:api-%d-%u", (int)getpid(), counter++);
    snprintf(f->dir, sizeof(f->dir), "/tmp/sbx-api-test.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->log, sizeof(f->log), "%s/audit.log", f->dir);
    assert_sbx_ok(kms_store_open(&f->st, f->url));
    test_rand_fill(root, 32);
    assert_sbx_ok(kms_keystore_new(&f->ks, root));
    assert_sbx_ok(kms_auth_new(&f->auth));
    assert_sbx_ok(kms_token_install(f->st, "admin", ADMIN, true, 0, id));
    open_api(f, false);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture *f = *state;
    char path[128];
    kms_response_dispose(&f->r);
    json_decref(f->j);
    kms_api_free(f->api);
    kms_audit_close(f->audit);
    kms_auth_free(f->auth);
    kms_keystore_free(f->ks);
    kms_store_close(f->st);
    unlink(f->log);
    snprintf(path, sizeof(path), "%s.head", f->log);
    unlink(path);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* ---- requests ---- */

typedef struct {
    const char *ctype; /* NULL: application/json when there is a body */
    const char *auth;  /* NULL: the admin token; "" none */
    const char *cn;
    size_t len; /* body length when the body is binary (0: strlen) */
} opts;

static int
req_full(fixture *f, const char *method, const char *target, const char *body, opts o)
{
    char path[65536];
    char authz[1024];
    const char *q = strchr(target, '?');
    size_t plen = q ? (size_t)(q - target) : strlen(target);
    assert_true(plen < sizeof(path));
    memcpy(path, target, plen);
    path[plen] = '\0';
    kms_response_dispose(&f->r);
    json_decref(f->j);
    f->j = NULL;
    const char *tok = o.auth ? o.auth : ADMIN;
    snprintf(authz, sizeof(authz), "Bearer %s", tok);
    kms_request req = {
        .method = method,
        .path = path,
        .query = q ? q + 1 : NULL,
        .content_type =
            o.ctype ? (o.ctype[0] ? o.ctype : NULL) : (body && body[0] ? "application/json" : NULL),
        .authorization = tok[0] ? (strchr(tok, ' ') ? tok : authz) : NULL,
        .client_cn = o.cn,
        .body = (const uint8_t *)body,
        .body_len = body ? (o.len ? o.len : strlen(body)) : 0,
        .remote = "127.0.0.1:40000",
        .request_id = "0123456789abcdef",
    };
    kms_api_handle(f->api, f->st, &req, &f->r);
    if (f->r.content_type != NULL && strcmp(f->r.content_type, "application/json") == 0 &&
        f->r.body_len > 0)
        f->j = json_loadb((const char *)f->r.body, f->r.body_len, JSON_REJECT_DUPLICATES, NULL);
    return f->r.status;
}

static int
req(fixture *f, const char *method, const char *target, const char *body)
{
    return req_full(f, method, target, body, (opts){0});
}

static int
req_as(fixture *f, const char *token, const char *method, const char *target, const char *body)
{
    return req_full(f, method, target, body, (opts){.auth = token});
}

/* The string field of the last JSON answer ("" when absent). */
static const char *
js(fixture *f, const char *field)
{
    const char *s = json_string_value(json_object_get(f->j, field));
    return s ? s : "";
}

static json_int_t
ji(fixture *f, const char *field)
{
    return json_integer_value(json_object_get(f->j, field));
}

/* Asserts an error answer with status and a message containing want (case-sensitive). */
#define assert_error(f, status, want)                                                              \
    do {                                                                                           \
        assert_int_equal((f)->r.status, (status));                                                 \
        if (!test_contains(js((f), "error"), (want))) {                                            \
            print_error("error \"%s\" does not contain \"%s\"\n", js((f), "error"), (want));       \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

static void
expect(fixture *f, int status, const char *method, const char *target, const char *body)
{
    int got = req(f, method, target, body);
    if (got != status) {
        print_error("%s %s: got %d, want %d: %.*s\n", method, target, got, status,
                    (int)f->r.body_len, f->r.body ? (const char *)f->r.body : "");
        fail();
    }
}

static void
expect_err(fixture *f, int status, const char *want, const char *method, const char *target,
           const char *body)
{
    expect(f, status, method, target, body);
    assert_error(f, status, want);
}

/* ---- the audit log ---- */

static char *
read_log(fixture *f)
{
    FILE *fp = fopen(f->log, "rb");
    assert_non_null(fp);
    char *buf = calloc(1, 1 << 22);
    assert_non_null(buf);
    size_t n = fread(buf, 1, (1 << 22) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    return buf;
}

/* The last audit line, parsed (json_decref it). */
static json_t *
last_audit(fixture *f)
{
    char *log = read_log(f);
    size_t n = strlen(log);
    assert_true(n > 0 && log[n - 1] == '\n');
    log[n - 1] = '\0';
    char *line = strrchr(log, '\n');
    json_t *j = json_loads(line ? line + 1 : log, 0, NULL);
    free(log);
    assert_non_null(j);
    return j;
}

static size_t
audit_lines(fixture *f)
{
    char *log = read_log(f);
    size_t n = 0;
    for (char *p = log; *p; p++)
        n += *p == '\n';
    free(log);
    return n;
}

static const char *
jstr(json_t *j, const char *field)
{
    const char *s = json_string_value(json_object_get(j, field));
    return s ? s : "";
}

static void
audit_is(fixture *f, const char *op, const char *key, int status, const char *outcome)
{
    json_t *a = last_audit(f);
    assert_string_equal(jstr(a, "op"), op);
    if (key != NULL)
        assert_string_equal(jstr(a, "key"), key);
    else
        assert_null(json_object_get(a, "key"));
    assert_int_equal(json_integer_value(json_object_get(a, "status")), status);
    assert_string_equal(jstr(a, "outcome"), outcome);
    assert_string_equal(jstr(a, "request_id"), "0123456789abcdef");
    assert_string_equal(jstr(a, "remote"), "127.0.0.1:40000");
    if (status >= 400)
        assert_true(strlen(jstr(a, "error")) > 0);
    else
        assert_null(json_object_get(a, "error"));
    json_decref(a);
}

static void
log_lacks(fixture *f, const char *secret)
{
    char *log = read_log(f);
    if (strstr(log, secret) != NULL) {
        print_error("the audit log contains a secret: %s\n", secret);
        free(log);
        fail();
    }
    free(log);
}

/* ---- health, routing, metrics ---- */

static void
health_needs_no_caller(void **state)
{
    fixture *f = *state;
    assert_int_equal(req_as(f, "", "GET", "/v1/health", NULL), 200);
    assert_string_equal(js(f, "status"), "ok");
    assert_string_equal(js(f, "storage"), "sqlite");
    assert_true(json_is_false(json_object_get(f->j, "dev")));
    assert_string_equal(js(f, "version"), SBX_VERSION_STRING);
    audit_is(f, "health", NULL, 200, "ok");
    json_t *a = last_audit(f);
    assert_string_equal(jstr(a, "caller"), "anonymous");
    assert_string_equal(jstr(a, "method"), "GET");
    assert_string_equal(jstr(a, "path"), "/v1/health");
    json_decref(a);
}

static void
unknown_routes_are_404_and_wrong_methods_405_with_allow(void **state)
{
    fixture *f = *state;
    expect_err(f, 404, "no such endpoint", "GET", "/v1/nope", NULL);
    audit_is(f, "other", NULL, 404, "error");
    expect(f, 404, "POST", "/v1/keys/app/bogus", "{}");
    expect(f, 404, "GET", "/v1/keys/app/versions/1", NULL);
    expect(f, 404, "GET", "/v1/keys/", NULL);
    expect(f, 404, "GET", "/v1//keys", NULL);
    expect(f, 404, "POST", "/v1/keys/a/b", "{}"); // a decoded %2F
    expect(f, 405, "PUT", "/v1/keys/app", "{}");
    assert_string_equal(f->r.allow, "GET, POST, DELETE");
    expect(f, 405, "GET", "/v1/keys/app/encrypt", NULL);
    assert_string_equal(f->r.allow, "POST");
    assert_int_equal(req_as(f, "", "POST", "/v1/health", "{}"), 405);
    assert_string_equal(f->r.allow, "GET");
    expect(f, 405, "PATCH", "/v1/tokens", "{}");
    assert_string_equal(f->r.allow, "GET, POST");
    expect(f, 405, "DELETE", "/v1/policies", NULL);
    assert_string_equal(f->r.allow, "GET");
    expect(f, 405, "GET", "/new", NULL);
    assert_string_equal(f->r.allow, "POST");
    expect(f, 200, "GET", "/v1/health", NULL); // a token does no harm
}

static void
metrics_are_prometheus_text_and_tick_sets_the_key_gauge(void **state)
{
    fixture *f = *state;
    expect(f, 201, "POST", "/v1/keys/k1", "{}");
    kms_api_tick(f->api, f->st);
    expect(f, 200, "GET", "/metrics", NULL);
    assert_string_equal(f->r.content_type, "text/plain; version=0.0.4; charset=utf-8");
    char *text = strndup((const char *)f->r.body, f->r.body_len);
    assert_true(test_contains(text, "sbx_kms_requests_total{op=\"create\",code=\"201\"} 1"));
    assert_true(test_contains(text, "sbx_kms_keys 1"));
    free(text);
    audit_is(f, "metrics", NULL, 200, "ok");
    assert_int_equal(req_as(f, "", "GET", "/metrics", NULL), 401);
    audit_is(f, "metrics", NULL, 401, "denied");
}

/* ---- authentication ---- */

static void
callers_without_a_valid_token_get_401(void **state)
{
    fixture *f = *state;
    assert_int_equal(req_as(f, "", "GET", "/v1/keys", NULL), 401);
    assert_non_null(f->r.www_authenticate);
    assert_true(test_contains(f->r.www_authenticate, "Bearer"));
    assert_int_equal(req_as(f, "", "POST", "/v1/keys/app-x/datakey", "{}"), 401);
    audit_is(f, "datakey", "app-x", 401, "denied");
    json_t *a = last_audit(f);
    assert_string_equal(jstr(a, "caller"), "anonymous");
    json_decref(a);
    const char *bad = "sbxt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    assert_int_equal(req_as(f, bad, "GET", "/v1/keys", NULL), 401);
    assert_false(test_contains(js(f, "error"), bad)); // the token is never echoed
    assert_true(test_contains(f->r.www_authenticate, "invalid_token"));
    assert_int_equal(req_as(f, ADMIN "x", "GET", "/v1/keys", NULL), 401);
    assert_int_equal(req_as(f, "Basic YTpi", "GET", "/v1/keys", NULL), 401);
    assert_int_equal(req_as(f, "Bearer ", "GET", "/v1/keys", NULL), 401);
    assert_int_equal(req_as(f, "bearer " ADMIN, "GET", "/v1/keys", NULL), 200);
    assert_int_equal(req_as(f, "BEARER  " ADMIN, "GET", "/v1/keys", NULL), 200);
    char huge[2048];
    memset(huge, 'a', sizeof(huge) - 1);
    huge[sizeof(huge) - 1] = '\0';
    assert_int_equal(req_as(f, huge, "GET", "/v1/keys", NULL), 401);
    log_lacks(f, ADMIN);
    log_lacks(f, bad);
    // an unknown CN without a token is 401 too
    assert_int_equal(req_full(f, "GET", "/v1/keys", NULL, (opts){.auth = "", .cn = "nobody"}), 401);
}

/* ---- keys ---- */

static void
key_lifecycle_through_the_api(void **state)
{
    fixture *f = *state;
    expect(f, 201, "POST", "/v1/keys/app-x", "{}");
    assert_string_equal(js(f, "name"), "app-x");
    assert_int_equal(strlen(js(f, "id")), 32);
    assert_int_equal(ji(f, "latest_version"), 1);
    assert_int_equal(ji(f, "min_decryption_version"), 1);
    assert_int_equal(ji(f, "auto_rotate_period"), 0);
    assert_int_equal(ji(f, "deletion_time"), 0);
    assert_int_equal(json_array_size(json_object_get(f->j, "versions")), 1);
    audit_is(f, "create", "app-x", 201, "ok");
    char id[33];
    snprintf(id, sizeof(id), "%s", js(f, "id"));
    expect_err(f, 409, "app-x", "POST", "/v1/keys/app-x", "{}");
    audit_is(f, "create", "app-x", 409, "error");
    expect(f, 201, "POST", "/v1/keys/app-y", NULL); // no body at all is {}
    expect(f, 201, "POST", "/v1/keys/other-z", "{\"auto_rotate_period\": 86400}");
    assert_int_equal(ji(f, "auto_rotate_period"), 86400);
    expect(f, 200, "GET", "/v1/keys/app-x", NULL);
    assert_string_equal(js(f, "id"), id);
    audit_is(f, "read", "app-x", 200, "ok");
    expect(f, 404, "GET", "/v1/keys/nope", NULL);
    audit_is(f, "read", "nope", 404, "error");

    expect(f, 200, "GET", "/v1/keys?prefix=app-", NULL);
    json_t *keys = json_object_get(f->j, "keys");
    assert_int_equal(json_array_size(keys), 2);
    assert_string_equal(json_string_value(json_array_get(keys, 0)), "app-x");
    expect(f, 200, "GET", "/v1/keys", NULL);
    assert_int_equal(json_array_size(json_object_get(f->j, "keys")), 3);
    expect(f, 200, "GET", "/v1/keys?prefix=zzz", NULL);
    assert_int_equal(json_array_size(json_object_get(f->j, "keys")), 0);
    expect(f, 400, "GET", "/v1/keys?colour=red", NULL);
    audit_is(f, "list", NULL, 400, "error");

    expect(f, 200, "POST", "/v1/keys/app-x/rotate", NULL);
    assert_int_equal(ji(f, "latest_version"), 2);
    audit_is(f, "rotate", "app-x", 200, "ok");
    expect(f, 200, "POST", "/v1/keys/app-x/rotate", "{}");
    assert_int_equal(ji(f, "latest_version"), 3);
    expect_err(f, 400, "unknown field", "POST", "/v1/keys/app-x/rotate", "{\"x\": 1}");
    expect(f, 404, "POST", "/v1/keys/nope/rotate", NULL);

    expect(f, 200, "POST", "/v1/keys/app-x/config", "{\"min_decryption_version\": 2}");
    assert_int_equal(ji(f, "min_decryption_version"), 2);
    audit_is(f, "config", "app-x", 200, "ok");
    expect_err(f, 400, "min_decryption_version", "POST", "/v1/keys/app-x/config",
               "{\"min_decryption_version\": 0}");
    req(f, "POST", "/v1/keys/app-x/config", "{\"min_decryption_version\": 9}");
    assert_true(f->r.status == 400 || f->r.status == 409);
    expect_err(f, 400, "auto_rotate_period", "POST", "/v1/keys/app-x/config",
               "{\"auto_rotate_period\": 10}");
    expect_err(f, 400, "auto_rotate_period", "POST", "/v1/keys/app-x/config",
               "{\"auto_rotate_period\": -1}");
    expect(f, 200, "POST", "/v1/keys/app-x/config", "{\"auto_rotate_period\": 7200}");
    assert_int_equal(ji(f, "auto_rotate_period"), 7200);
    expect_err(f, 400, "min_version", "POST", "/v1/keys/app-x/config", "{\"min_version\": 2}");
    expect(f, 404, "POST", "/v1/keys/nope/config", "{}");

    // destroy
    expect(f, 409, "POST", "/v1/keys/app-x/versions/3/destroy", NULL);
    audit_is(f, "destroy", "app-x", 409, "error");
    expect(f, 200, "POST", "/v1/keys/app-x/versions/1/destroy", NULL);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(f->j, "versions"), 0), "state")),
                        "destroyed");
    json_t *a = last_audit(f);
    assert_int_equal(json_integer_value(json_object_get(a, "key_version")), 1);
    json_decref(a);
    expect_err(f, 400, "version", "POST", "/v1/keys/app-x/versions/abc/destroy", NULL);
    expect_err(f, 400, "version", "POST", "/v1/keys/app-x/versions/0/destroy", NULL);
    expect_err(f, 400, "version", "POST", "/v1/keys/app-x/versions/99999999999/destroy", NULL);
    req(f, "POST", "/v1/keys/app-x/versions/9/destroy", NULL);
    assert_true(f->r.status == 400 || f->r.status == 404);

    // delete and restore
    int64_t now = (int64_t)time(NULL);
    expect(f, 200, "DELETE", "/v1/keys/app-y", NULL);
    assert_true(ji(f, "deletion_time") >= now + 604800 - 5);
    audit_is(f, "delete", "app-y", 200, "ok");
    expect(f, 409, "POST", "/v1/keys/app-y/encrypt", "{\"plaintext\": \"AAE=\"}");
    expect(f, 409, "POST", "/v1/keys/app-y/datakey", "{}");
    expect(f, 200, "POST", "/v1/keys/app-y/restore", NULL);
    assert_int_equal(ji(f, "deletion_time"), 0);
    audit_is(f, "delete", "app-y", 200, "ok");
    expect(f, 409, "POST", "/v1/keys/app-y/restore", "{}");
    expect(f, 200, "DELETE", "/v1/keys/app-y?delay=3600", NULL);
    assert_true(ji(f, "deletion_time") <= now + 3600 + 5);
    expect(f, 200, "POST", "/v1/keys/app-y/restore", NULL);
    expect_err(f, 400, "delay", "DELETE", "/v1/keys/app-y?delay=abc", NULL);
    expect_err(f, 400, "delay", "DELETE", "/v1/keys/app-y?delay=-5", NULL);
    expect(f, 200, "GET", "/v1/keys/app-y", NULL);
    assert_int_equal(ji(f, "deletion_time"), 0);
    expect(f, 404, "DELETE", "/v1/keys/nope", NULL);
}

static void
key_names_and_create_fields_are_checked(void **state)
{
    fixture *f = *state;
    char path[300], name[131];
    memset(name, 'k', 128);
    name[128] = '\0';
    snprintf(path, sizeof(path), "/v1/keys/%s", name);
    expect(f, 201, "POST", path, "{}");
    strcat(path, "k");
    expect_err(f, 400, "name", "POST", path, "{}");
    audit_is(f, "create", NULL, 400, "error");
    expect_err(f, 400, "name", "POST", "/v1/keys/.x", "{}");
    expect_err(f, 400, "name", "POST", "/v1/keys/a b", "{}");
    expect_err(f, 400, "name", "POST", "/v1/keys/caf\xc3\xa9", "{}");
    expect_err(f, 400, "name", "GET", "/v1/keys/.x", NULL);
    char *longpath = malloc(20100);
    assert_non_null(longpath);
    strcpy(longpath, "/v1/keys/");
    memset(longpath + 9, 'a', 20000);
    longpath[20009] = '\0';
    expect(f, 400, "GET", longpath, NULL);
    free(longpath);
    expect_err(f, 400, "auto_rotate_period", "POST", "/v1/keys/r", "{\"auto_rotate_period\": 10}");
    expect_err(f, 400, "auto_rotate_period", "POST", "/v1/keys/r",
               "{\"auto_rotate_period\": \"86400\"}");
    expect_err(f, 400, "auto_rotate_period", "POST", "/v1/keys/r",
               "{\"auto_rotate_period\": 3600.5}");
    expect_err(f, 400, "colour", "POST", "/v1/keys/r", "{\"colour\": \"red\"}");
    expect(f, 201, "POST", "/v1/keys/r", "{\"auto_rotate_period\": 3600}");
}

/* ---- request bodies ---- */

static void
bodies_must_be_strict_json_objects(void **state)
{
    fixture *f = *state;
    const char *p = "/v1/keys/app-x/datakey";
    expect(f, 201, "POST", "/v1/keys/app-x", "{}");
    expect_err(f, 400, "malformed JSON", "POST", p, "{\"bits\": 128");
    audit_is(f, "datakey", "app-x", 400, "error");
    expect_err(f, 400, "malformed JSON", "POST", p, "{\"bits\": 128} x");
    expect_err(f, 400, "duplicate", "POST", p, "{\"bits\": 128, \"bits\": 256}");
    expect_err(f, 400, "object", "POST", p, "[]");
    expect_err(f, 400, "malformed JSON", "POST", p, "\"x\"");
    expect_err(f, 400, "plaintext", "POST", "/v1/keys/app-x/encrypt", "");
    expect_err(f, 400, "UTF-8", "POST", "/v1/keys/app-x/encrypt", "{\"plaintext\": \"\xff\xfe\"}");
    expect_err(f, 400, "NUL", "POST", "/v1/keys/app-x/encrypt", "{\"plaintext\": \"AA\\u0000==\"}");
    expect_err(f, 400, "bitz", "POST", p, "{\"bitz\": 256}");
    expect_err(f, 400, "nonce", "POST", "/v1/keys/app-x/decrypt",
               "{\"ciphertext\": \"sbx:v1:AAAA\", \"nonce\": \"x\"}");
    expect_err(f, 400, "ciphertext", "POST", "/v1/keys/app-x/decrypt", "{\"ciphertext\": 5}");
    expect_err(f, 400, "ciphertext", "POST", "/v1/keys/app-x/decrypt", "{}");
    // nesting deeper than the limit is refused before jansson sees it
    char deep[256] = "{\"context\":";
    for (int i = 0; i < 40; i++)
        strcat(deep, "[");
    expect_err(f, 400, "nested", "POST", p, deep);
    // a body of a NUL byte and binary noise
    req_full(f, "POST", p, "\0\x01\x02", (opts){.len = 3, .ctype = "application/json"});
    assert_int_equal(f->r.status, 400);
    // a very long field name is truncated in the message
    char longname[400];
    snprintf(longname, sizeof(longname), "{\"%0300d\": 1}", 7);
    expect(f, 400, "POST", p, longname);
    assert_true(strlen(js(f, "error")) < 120);
}

static void
content_type_must_be_json_on_v1_bodies(void **state)
{
    fixture *f = *state;
    const char *p = "/v1/keys/app-x/datakey", *b = "{\"wrapped_only\": true}";
    expect(f, 201, "POST", "/v1/keys/app-x", "{}");
    assert_int_equal(req_full(f, "POST", p, b, (opts){.ctype = "text/plain"}), 415);
    assert_true(strlen(js(f, "error")) > 0);
    audit_is(f, "datakey", "app-x", 415, "error");
    assert_int_equal(req_full(f, "POST", p, b, (opts){.ctype = ""}), 415);
    assert_int_equal(
        req_full(f, "POST", p, b, (opts){.ctype = "application/x-www-form-urlencoded"}), 415);
    assert_int_equal(req_full(f, "POST", p, b, (opts){.ctype = "application/jsonx"}), 415);
    assert_int_equal(req_full(f, "POST", p, b, (opts){.ctype = "application/json; charset=utf-8"}),
                     200);
    assert_int_equal(req_full(f, "POST", p, b, (opts){.ctype = "Application/JSON"}), 200);
    assert_int_equal(
        req_full(f, "PUT", "/v1/policies/x", "{\"rules\": []}", (opts){.ctype = "text/plain"}),
        415);
    // bodiless POSTs need no content type
    assert_int_equal(req_full(f, "POST", "/v1/keys/app-x/rotate", NULL, (opts){.ctype = ""}), 200);
    // the keas.kmi requests take any content type
    assert_int_equal(req_full(f, "POST", "/new", NULL, (opts){.ctype = "text/plain"}), 200);
}

/* ---- data plane ---- */

static void
encrypt_decrypt_round_trip_bound_to_context(void **state)
{
    fixture *f = *state;
    const char *ctx = "{\"tenant\": \"acme\", \"file\": \"ctx-secret-value-4711\"}";
    char body[1024], ct[512];
    expect(f, 201, "POST", "/v1/keys/app-x", "{}");
    expect(f, 201, "POST", "/v1/keys/app-y", "{}");
    // "this is the secret plaintext!"
    const char *pt = "dGhpcyBpcyB0aGUgc2VjcmV0IHBsYWludGV4dCE=";
    snprintf(body, sizeof(body), "{\"plaintext\": \"%s\", \"context\": %s}", pt, ctx);
    expect(f, 200, "POST", "/v1/keys/app-x/encrypt", body);
    assert_int_equal(ji(f, "key_version"), 1);
    assert_true(strncmp(js(f, "ciphertext"), "sbx:v1:", 7) == 0);
    snprintf(ct, sizeof(ct), "%s", js(f, "ciphertext"));
    audit_is(f, "encrypt", "app-x", 200, "ok");
    json_t *a = last_audit(f);
    assert_int_equal(json_integer_value(json_object_get(a, "key_version")), 1);
    json_decref(a);

    snprintf(body, sizeof(body), "{\"ciphertext\": \"%s\", \"context\": %s}", ct, ctx);
    expect(f, 200, "POST", "/v1/keys/app-x/decrypt", body);
    assert_string_equal(js(f, "plaintext"), pt);
    assert_int_equal(ji(f, "key_version"), 1);
    audit_is(f, "decrypt", "app-x", 200, "ok");
    snprintf(body, sizeof(body),
             "{\"ciphertext\": \"%s\", \"context\": {\"file\": \"ctx-secret-value-4711\", "
             "\"tenant\": \"acme\"}}",
             ct);
    expect(f, 200, "POST", "/v1/keys/app-x/decrypt", body);
    assert_string_equal(js(f, "plaintext"), pt);
    snprintf(body, sizeof(body), "{\"ciphertext\": \"%s\", \"context\": {\"tenant\": \"evil\"}}",
             ct);
    expect_err(f, 400, "does not authenticate", "POST", "/v1/keys/app-x/decrypt", body);
    audit_is(f, "decrypt", "app-x", 400, "error");
    snprintf(body, sizeof(body), "{\"ciphertext\": \"%s\"}", ct);
    expect_err(f, 400, "does not authenticate", "POST", "/v1/keys/app-x/decrypt", body);
    snprintf(body, sizeof(body), "{\"ciphertext\": \"%s\", \"context\": %s}", ct, ctx);
    expect_err(f, 400, "app-y", "POST", "/v1/keys/app-y/decrypt", body);
    ct[strlen(ct) - 3] ^= 1; // tampered
    snprintf(body, sizeof(body), "{\"ciphertext\": \"%s\", \"context\": %s}", ct, ctx);
    expect(f, 400, "POST", "/v1/keys/app-x/decrypt", body);
    expect(f, 400, "POST", "/v1/keys/app-x/decrypt", "{\"ciphertext\": \"hello\"}");

    // rewrap after a rotation: the new ciphertext is v2 and carries no plaintext
    ct[strlen(ct) - 3] ^= 1;
    snprintf(body, sizeof(body), "{\"ciphertext\": \"%s\"}", ct);
    expect(f, 404, "POST", "/v1/keys/nope/decrypt", body);
    expect(f, 200, "POST", "/v1/keys/app-x/rotate", NULL);
    snprintf(body, sizeof(body), "{\"ciphertext\": \"%s\", \"context\": %s}", ct, ctx);
    expect(f, 200, "POST", "/v1/keys/app-x/rewrap", body);
    assert_int_equal(ji(f, "key_version"), 2);
    assert_null(json_object_get(f->j, "plaintext"));
    assert_true(strncmp(js(f, "ciphertext"), "sbx:v2:", 7) == 0);
    audit_is(f, "rewrap", "app-x", 200, "ok");
    snprintf(body, sizeof(body), "{\"ciphertext\": \"%s\", \"context\": %s}", js(f, "ciphertext"),
             ctx);
    expect(f, 200, "POST", "/v1/keys/app-x/decrypt", body);
    assert_string_equal(js(f, "plaintext"), pt);
    snprintf(body, sizeof(body), "{\"ciphertext\": \"%s\", \"context\": {\"x\": \"y\"}}", ct);
    expect_err(f, 400, "does not authenticate", "POST", "/v1/keys/app-x/rewrap", body);

    // nothing of the plaintext, context values or ciphertexts reached the audit log
    log_lacks(f, pt);
    log_lacks(f, "ctx-secret-value-4711");
    log_lacks(f, "acme");
    log_lacks(f, ct + 7);
}

static void
encrypt_checks_plaintext_and_context(void **state)
{
    fixture *f = *state;
    const char *p = "/v1/keys/app-x/encrypt";
    expect(f, 201, "POST", "/v1/keys/app-x", "{}");
    expect_err(f, 400, "plaintext", "POST", p, "{\"plaintext\": \"c2VjcmV0LXZhbHVl!\"}");
    assert_false(test_contains(js(f, "error"), "c2VjcmV0LXZhbHVl")); // not echoed
    expect_err(f, 400, "plaintext", "POST", p, "{\"plaintext\": 12}");
    expect_err(f, 400, "plaintext", "POST", p, "{}");
    expect_err(f, 400, "plaintext", "POST", p, "{\"plaintext\": \"AAE\"}"); // no padding
    expect(f, 200, "POST", p, "{\"plaintext\": \"\"}");
    expect_err(f, 400, "context", "POST", p, "{\"plaintext\": \"AAE=\", \"context\": {\"n\": 1}}");
    // the message whole and once (it was formatted onto itself: "context: context: ust be ...")
    assert_string_equal(js(f, "error"), "context must be an object of string values");
    expect_err(f, 400, "context", "POST", p, "{\"plaintext\": \"AAE=\", \"context\": [\"a\"]}");
    expect_err(f, 400, "context", "POST", p, "{\"plaintext\": \"AAE=\", \"context\": null}");
    expect_err(f, 400, "context", "POST", p,
               "{\"plaintext\": \"AAE=\", \"context\": {\"\": \"x\"}}");
    assert_string_equal(js(f, "error"), "context keys must be 1 to 128 bytes");
    // 64 context pairs are fine, 65 are not
    char body[4096];
    for (int n = 64; n <= 65; n++) {
        size_t o = (size_t)snprintf(body, sizeof(body), "{\"plaintext\": \"AAE=\", \"context\": {");
        for (int i = 0; i < n; i++)
            o += (size_t)snprintf(body + o, sizeof(body) - o, "%s\"k%d\": \"v\"", i ? "," : "", i);
        snprintf(body + o, sizeof(body) - o, "}}");
        expect(f, n == 64 ? 200 : 400, "POST", p, body);
    }
    // a context value over the bound
    char *big = malloc(3000);
    assert_non_null(big);
    snprintf(big, 3000, "{\"plaintext\": \"AAE=\", \"context\": {\"k\": \"%02000d\"}}", 0);
    expect_err(f, 400, "context", "POST", p, big);
    free(big);

    // 32 KiB exactly is fine, one byte more is 413
    for (size_t n = KMS_ENCRYPT_MAX; n <= KMS_ENCRYPT_MAX + 1; n++) {
        uint8_t *raw = test_malloc_rand(n);
        size_t cap = SBX_BASE64_PAD_LEN(n) + 64;
        char *json = malloc(cap);
        assert_non_null(json);
        size_t o = (size_t)snprintf(json, cap, "{\"plaintext\": \"");
        long len = sbx_base64_encode(json + o, cap - o, raw, n, true);
        assert_true(len > 0);
        snprintf(json + o + (size_t)len, cap - o - (size_t)len, "\"}");
        expect(f, n == KMS_ENCRYPT_MAX ? 200 : 413, "POST", p, json);
        free(json);
        free(raw);
    }
    assert_true(test_contains(js(f, "error"), "plaintext"));
    audit_is(f, "encrypt", "app-x", 413, "error");
}

static void
datakeys_come_in_three_sizes_and_unwrap(void **state)
{
    fixture *f = *state;
    char body[512], dk[128];
    expect(f, 201, "POST", "/v1/keys/app-x", "{}");
    for (int bits = 128; bits <= 512; bits *= 2) {
        snprintf(body, sizeof(body), "{\"bits\": %d, \"context\": {\"a\": \"b\"}}", bits);
        expect(f, 200, "POST", "/v1/keys/app-x/datakey", body);
        assert_int_equal(strlen(js(f, "plaintext")), SBX_BASE64_PAD_LEN((size_t)bits / 8));
        assert_int_equal(ji(f, "key_version"), 1);
        snprintf(dk, sizeof(dk), "%s", js(f, "plaintext"));
        snprintf(body, sizeof(body), "{\"ciphertext\": \"%s\", \"context\": {\"a\": \"b\"}}",
                 js(f, "ciphertext"));
        expect(f, 200, "POST", "/v1/keys/app-x/decrypt", body);
        assert_string_equal(js(f, "plaintext"), dk);
        log_lacks(f, dk);
    }
    expect(f, 200, "POST", "/v1/keys/app-x/datakey", "{}");
    assert_int_equal(strlen(js(f, "plaintext")), 44);
    audit_is(f, "datakey", "app-x", 200, "ok");
    expect(f, 200, "POST", "/v1/keys/app-x/datakey", "{\"wrapped_only\": true}");
    assert_null(json_object_get(f->j, "plaintext"));
    assert_true(strncmp(js(f, "ciphertext"), "sbx:v1:", 7) == 0);
    audit_is(f, "datakey-wrapped", "app-x", 200, "ok");
    expect(f, 200, "POST", "/v1/keys/app-x/datakey", "{\"wrapped_only\": false}");
    assert_non_null(json_object_get(f->j, "plaintext"));
    const char *bad[] = {"0", "100", "257", "1024", "-256", "\"256\"", "256.5", "null", "true"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(body, sizeof(body), "{\"bits\": %s}", bad[i]);
        expect_err(f, 400, "bits", "POST", "/v1/keys/app-x/datakey", body);
    }
    expect_err(f, 400, "wrapped_only", "POST", "/v1/keys/app-x/datakey",
               "{\"wrapped_only\": \"yes\"}");
    expect(f, 404, "POST", "/v1/keys/nope/datakey", "{}");
}

/* ---- batch ---- */

static void
batches_answer_in_order_with_per_item_errors(void **state)
{
    fixture *f = *state;
    char body[2048], b0[256], b2[256];
    expect(f, 201, "POST", "/v1/keys/app-y", "{}");
    expect(f, 200, "POST", "/v1/keys/app-y/encrypt",
           "{\"batch_input\": [{\"plaintext\": \"AAE=\"}, {\"plaintext\": \"%%%\"},"
           " {\"plaintext\": \"AQI=\", \"context\": {\"t\": \"x\"}},"
           " {\"plaintext\": \"AAE=\", \"context\": {\"n\": 1}}, 7]}");
    json_t *res = json_object_get(f->j, "batch_results");
    assert_int_equal(json_array_size(res), 5);
    assert_non_null(json_object_get(json_array_get(res, 0), "ciphertext"));
    assert_null(json_object_get(json_array_get(res, 0), "error"));
    assert_int_equal(json_integer_value(json_object_get(json_array_get(res, 1), "status")), 400);
    assert_true(json_is_string(json_object_get(json_array_get(res, 1), "error")));
    assert_non_null(json_object_get(json_array_get(res, 2), "ciphertext"));
    assert_int_equal(json_integer_value(json_object_get(json_array_get(res, 3), "status")), 400);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(res, 4), "status")), 400);
    audit_is(f, "encrypt", "app-y", 200, "ok"); // the request's; each item has its own below
    // one line for the batch, its items array records each item's outcome in order
    json_t *line = last_audit(f), *items = json_object_get(line, "items");
    static const char *const want[] = {"ok", "error", "ok", "error", "error"};
    assert_int_equal(json_array_size(items), 5);
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(jstr(json_array_get(items, i), "outcome"), want[i]);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(items, 1), "status")), 400);
    json_decref(line);
    snprintf(b0, sizeof(b0), "%s",
             json_string_value(json_object_get(json_array_get(res, 0), "ciphertext")));
    snprintf(b2, sizeof(b2), "%s",
             json_string_value(json_object_get(json_array_get(res, 2), "ciphertext")));

    snprintf(body, sizeof(body),
             "{\"batch_input\": [{\"ciphertext\": \"%s\"}, {\"ciphertext\": \"garbage\"},"
             " {\"ciphertext\": \"%s\", \"context\": {\"t\": \"x\"}}, {\"ciphertext\": \"%s\"}]}",
             b0, b2, b2);
    expect(f, 200, "POST", "/v1/keys/app-y/decrypt", body);
    res = json_object_get(f->j, "batch_results");
    assert_int_equal(json_array_size(res), 4);
    assert_string_equal(json_string_value(json_object_get(json_array_get(res, 0), "plaintext")),
                        "AAE=");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(res, 1), "status")), 400);
    assert_string_equal(json_string_value(json_object_get(json_array_get(res, 2), "plaintext")),
                        "AQI=");
    assert_true(test_contains(json_string_value(json_object_get(json_array_get(res, 3), "error")),
                              "authenticate"));

    expect(f, 200, "POST", "/v1/keys/app-y/datakey",
           "{\"batch_input\": [{\"bits\": 128}, {\"bits\": 7}, {}, {\"wrapped_only\": true}]}");
    res = json_object_get(f->j, "batch_results");
    assert_int_equal(
        strlen(json_string_value(json_object_get(json_array_get(res, 0), "plaintext"))), 24);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(res, 1), "status")), 400);
    assert_int_equal(
        strlen(json_string_value(json_object_get(json_array_get(res, 2), "plaintext"))), 44);
    assert_null(json_object_get(json_array_get(res, 3), "plaintext"));
    assert_non_null(json_object_get(json_array_get(res, 3), "ciphertext"));

    snprintf(body, sizeof(body),
             "{\"batch_input\": [{\"ciphertext\": \"%s\"}, {\"ciphertext\": "
             "\"garbage\"}]}",
             b0);
    expect(f, 200, "POST", "/v1/keys/app-y/rewrap", body);
    res = json_object_get(f->j, "batch_results");
    assert_true(strncmp(json_string_value(json_object_get(json_array_get(res, 0), "ciphertext")),
                        "sbx:v1:", 7) == 0);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(res, 1), "status")), 400);

    expect(f, 200, "POST", "/v1/keys/app-y/encrypt", "{\"batch_input\": []}");
    assert_int_equal(json_array_size(json_object_get(f->j, "batch_results")), 0);
    expect_err(f, 400, "batch_input", "POST", "/v1/keys/app-y/encrypt", "{\"batch_input\": {}}");
    expect_err(f, 400, "batch_input", "POST", "/v1/keys/app-y/encrypt",
               "{\"batch_input\": [], \"plaintext\": \"AAE=\"}");
}

static char *
batch_of(size_t n)
{
    const char *item = "{\"plaintext\": \"AAE=\"}";
    size_t cap = 32 + n * (strlen(item) + 1);
    char *s = malloc(cap);
    assert_non_null(s);
    size_t o = (size_t)snprintf(s, cap, "{\"batch_input\": [");
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(s + o, cap - o, "%s%s", i ? "," : "", item);
    snprintf(s + o, cap - o, "]}");
    return s;
}

static void
batches_hold_at_most_1000_items(void **state)
{
    fixture *f = *state;
    expect(f, 201, "POST", "/v1/keys/app-y", "{}");
    char *b = batch_of(KMS_BATCH_MAX);
    expect(f, 200, "POST", "/v1/keys/app-y/encrypt", b);
    assert_int_equal(json_array_size(json_object_get(f->j, "batch_results")), KMS_BATCH_MAX);
    free(b);
    b = batch_of(KMS_BATCH_MAX + 1);
    expect_err(f, 413, "batch_input", "POST", "/v1/keys/app-y/encrypt", b);
    audit_is(f, "encrypt", "app-y", 413, "error");
    free(b);
}

/* ---- admin: tokens, policies, certificates; policy denial ---- */

static void
make_token(fixture *f, const char *name, const char *policies, char out[128])
{
    char body[512];
    snprintf(body, sizeof(body), "{\"name\": \"%s\", \"policies\": %s, \"ttl\": 3600}", name,
             policies);
    expect(f, 201, "POST", "/v1/tokens", body);
    snprintf(out, 128, "%s", js(f, "token"));
    assert_true(strncmp(out, "sbxt_", 5) == 0);
}

static void
tokens_are_created_listed_and_revoked(void **state)
{
    fixture *f = *state;
    char tok[128], id[17];
    int64_t now = (int64_t)time(NULL);
    expect(f, 201, "POST", "/v1/tokens",
           "{\"name\": \"t-plain\", \"policies\": [], \"ttl\": 3600, \"admin\": false}");
    snprintf(tok, sizeof(tok), "%s", js(f, "token"));
    snprintf(id, sizeof(id), "%s", js(f, "id"));
    assert_int_equal(strlen(tok), 48);
    assert_int_equal(strlen(id), 16);
    assert_true(ji(f, "expires") >= now + 3600 - 5 && ji(f, "expires") <= now + 3600 + 5);
    audit_is(f, "admin", NULL, 201, "ok");
    log_lacks(f, tok);
    expect(f, 200, "GET", "/v1/tokens", NULL);
    assert_false(test_contains((const char *)f->r.body, tok));
    json_t *t, *list = json_object_get(f->j, "tokens");
    size_t i, found = 0;
    json_array_foreach(list, i, t)
    {
        if (strcmp(json_string_value(json_object_get(t, "id")), id) == 0) {
            found++;
            assert_string_equal(json_string_value(json_object_get(t, "name")), "t-plain");
            assert_true(json_is_false(json_object_get(t, "admin")));
            assert_int_equal(json_array_size(json_object_get(t, "policies")), 0);
            assert_null(json_object_get(t, "token"));
        }
    }
    assert_int_equal(found, 1);
    assert_int_equal(req_as(f, tok, "GET", "/v1/keys", NULL), 200);
    assert_int_equal(json_array_size(json_object_get(f->j, "keys")), 0);
    assert_int_equal(req_as(f, tok, "GET", "/v1/tokens", NULL), 403);
    audit_is(f, "admin", NULL, 403, "denied");
    json_t *a = last_audit(f);
    assert_true(strncmp(jstr(a, "caller"), "token:", 6) == 0);
    assert_true(test_contains(jstr(a, "caller"), id));
    assert_true(test_contains(jstr(a, "caller"), ":t-plain"));
    json_decref(a);
    assert_int_equal(req_as(f, tok, "POST", "/v1/tokens", "{\"name\": \"esc\", \"admin\": true}"),
                     403);

    char path[64];
    snprintf(path, sizeof(path), "/v1/tokens/%s", id);
    expect(f, 204, "DELETE", path, NULL);
    assert_int_equal(f->r.body_len, 0);
    audit_is(f, "admin", NULL, 204, "ok");
    assert_int_equal(req_as(f, tok, "GET", "/v1/keys", NULL), 401);
    expect(f, 404, "DELETE", path, NULL);
    expect(f, 404, "DELETE", "/v1/tokens/zz", NULL);
    expect_err(f, 400, "admn", "POST", "/v1/tokens", "{\"name\": \"x\", \"admn\": true}");
    expect_err(f, 400, "ttl", "POST", "/v1/tokens", "{\"name\": \"x\", \"ttl\": \"60\"}");
    expect_err(f, 400, "ttl", "POST", "/v1/tokens", "{\"name\": \"x\", \"ttl\": -5}");
    expect_err(f, 400, "policies", "POST", "/v1/tokens", "{\"name\": \"x\", \"policies\": \"a\"}");
    expect_err(f, 400, "policies", "POST", "/v1/tokens", "{\"name\": \"x\", \"policies\": [1]}");
    expect_err(f, 400, "name", "POST", "/v1/tokens", "{}");
    expect(f, 201, "POST", "/v1/tokens", "{\"name\": \"never\"}");
    assert_int_equal(ji(f, "expires"), 0);

    // an expired token is 401, like an unknown one
    expect(f, 201, "POST", "/v1/tokens", "{\"name\": \"t-short\", \"ttl\": 1, \"admin\": true}");
    snprintf(tok, sizeof(tok), "%s", js(f, "token"));
    assert_int_equal(req_as(f, tok, "GET", "/v1/tokens", NULL), 200);
    usleep(2100 * 1000);
    assert_int_equal(req_as(f, tok, "GET", "/v1/tokens", NULL), 401);
    audit_is(f, "admin", NULL, 401, "denied");
}

static void
jansson_frees_are_wiped_once_the_api_exists(void **state)
{
    (void)state;
    json_malloc_t m = NULL;
    json_free_t fr = NULL;
    json_get_alloc_funcs(&m, &fr);
    assert_true(fr != NULL && fr != free); // request bodies may hold plaintexts
}

static void
policies_grant_operations_on_key_patterns(void **state)
{
    fixture *f = *state;
    char ta[128], tw[128], tl[128], ts[128];
    expect(f, 201, "POST", "/v1/keys/app-x", "{}");
    expect(f, 201, "POST", "/v1/keys/app-y", "{}");
    expect(f, 201, "POST", "/v1/keys/other-z", "{}");
    expect(f, 200, "PUT", "/v1/policies/apps",
           "{\"rules\": [{\"keys\": \"app-*\", \"ops\": [\"datakey\", \"decrypt\"]}]}");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(f->j, "rules"), 0), "keys")),
                        "app-*");
    audit_is(f, "admin", NULL, 200, "ok");
    expect(f, 200, "PUT", "/v1/policies/wrapped",
           "{\"rules\": [{\"keys\": \"app-*\", \"ops\": [\"datakey-wrapped\"]}]}");
    expect(f, 200, "PUT", "/v1/policies/lister",
           "{\"rules\": [{\"keys\": \"app-*\", \"ops\": [\"list\", \"read\"]}]}");
    expect(f, 200, "PUT", "/v1/policies/seeder",
           "{\"rules\": [{\"keys\": \"*\", \"ops\": [\"seed\"]}]}");
    expect(f, 200, "GET", "/v1/policies", NULL);
    assert_int_equal(json_array_size(json_object_get(f->j, "policies")), 4);
    expect(f, 200, "GET", "/v1/policies/apps", NULL);
    assert_non_null(json_object_get(f->j, "rules"));
    expect(f, 404, "GET", "/v1/policies/nope", NULL);
    expect_err(f, 400, "rules", "PUT", "/v1/policies/bad", "{\"rules\": \"x\"}");
    expect_err(f, 400, "fly", "PUT", "/v1/policies/bad",
               "{\"rules\": [{\"keys\": \"*\", \"ops\": [\"fly\"]}]}");
    expect(f, 400, "PUT", "/v1/policies/bad", "{\"rules\": [");
    expect(f, 400, "PUT", "/v1/policies/bad", "{\"rules\": [], \"rules\": []}");
    expect(f, 404, "GET", "/v1/policies/bad", NULL);
    expect_err(f, 400, "policy name", "PUT", "/v1/policies/.bad", "{\"rules\": []}");

    make_token(f, "t-apps", "[\"apps\"]", ta);
    make_token(f, "t-wrapped", "[\"wrapped\"]", tw);
    make_token(f, "t-lister", "[\"lister\"]", tl);
    make_token(f, "t-seeder", "[\"seeder\"]", ts);
    assert_int_equal(req_as(f, ta, "POST", "/v1/keys/app-x/datakey", "{}"), 200);
    json_t *a = last_audit(f);
    assert_true(test_contains(jstr(a, "caller"), ":t-apps"));
    json_decref(a);
    assert_int_equal(req_as(f, ta, "POST", "/v1/keys/other-z/datakey", "{}"), 403);
    assert_null(json_object_get(f->j, "plaintext"));
    audit_is(f, "datakey", "other-z", 403, "denied");
    assert_int_equal(req_as(f, ta, "POST", "/v1/keys/app-x/encrypt", "{\"plaintext\": \"AA==\"}"),
                     403);
    audit_is(f, "encrypt", "app-x", 403, "denied");
    assert_int_equal(req_as(f, ta, "POST", "/v1/keys/app-new", "{}"), 403);
    assert_int_equal(req_as(f, ta, "POST", "/v1/keys/app-x/rotate", NULL), 403);
    assert_int_equal(req_as(f, ta, "DELETE", "/v1/keys/app-x", NULL), 403);
    assert_int_equal(req_as(f, ta, "GET", "/v1/keys/app-x", NULL), 403);
    assert_int_equal(req_as(f, ta, "GET", "/metrics", NULL), 403);
    assert_int_equal(req_as(f, ta, "GET", "/", NULL), 403);
    assert_int_equal(req_as(f, ta, "PUT", "/v1/certs/x", "{\"policies\": []}"), 403);
    assert_int_equal(req_as(f, ta, "POST", "/v1/keys/app-missing/datakey", "{}"), 404);
    // the 403 wins over a bad body only once the body is read; either way no key leaves
    assert_int_equal(req_as(f, tw, "POST", "/v1/keys/app-x/datakey", "{\"wrapped_only\": true}"),
                     200);
    assert_null(json_object_get(f->j, "plaintext"));
    assert_int_equal(req_as(f, tw, "POST", "/v1/keys/app-x/datakey", "{}"), 403);
    audit_is(f, "datakey", "app-x", 403, "denied");
    assert_int_equal(req_as(f, tw, "POST", "/v1/keys/app-x/datakey",
                            "{\"batch_input\": [{}, {\"wrapped_only\": true}]}"),
                     200);
    json_t *res = json_object_get(f->j, "batch_results");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(res, 0), "status")), 403);
    assert_null(json_object_get(json_array_get(res, 0), "plaintext"));
    assert_non_null(json_object_get(json_array_get(res, 1), "ciphertext"));
    assert_int_equal(req_as(f, ta, "POST", "/v1/keys/other-z/datakey",
                            "{\"batch_input\": [{}, {\"wrapped_only\": true}]}"),
                     403); // allowed no kind of data key on other-z: the whole batch is refused
    audit_is(f, "datakey", "other-z", 403, "denied");
    assert_int_equal(req_as(f, tl, "GET", "/v1/keys", NULL), 200);
    assert_int_equal(json_array_size(json_object_get(f->j, "keys")), 2);
    assert_int_equal(req_as(f, tl, "GET", "/v1/keys/app-x", NULL), 200);
    assert_int_equal(req_as(f, ts, "GET", "/", NULL), 200);

    expect(f, 204, "DELETE", "/v1/policies/apps", NULL);
    assert_int_equal(f->r.body_len, 0);
    expect(f, 404, "DELETE", "/v1/policies/apps", NULL);
    expect(f, 404, "GET", "/v1/policies/apps", NULL);
}

static void
client_certificates_map_to_policies(void **state)
{
    fixture *f = *state;
    expect(f, 201, "POST", "/v1/keys/app-x", "{}");
    expect(f, 201, "POST", "/v1/keys/other-z", "{}");
    expect(f, 200, "PUT", "/v1/policies/apps",
           "{\"rules\": [{\"keys\": \"app-*\", \"ops\": [\"datakey\"]}]}");
    expect(f, 200, "PUT", "/v1/certs/client1", "{\"policies\": [\"apps\"], \"admin\": false}");
    assert_string_equal(js(f, "cn"), "client1");
    audit_is(f, "admin", NULL, 200, "ok");
    expect(f, 200, "PUT", "/v1/certs/admin-cn", "{\"policies\": [], \"admin\": true}");
    expect_err(f, 400, "polices", "PUT", "/v1/certs/x", "{\"polices\": []}");
    expect_err(f, 400, "CN", "PUT",
               "/v1/certs/client\xe3"
               "1",
               "{}"); // not UTF-8: refused, and the answer is still JSON
    expect_err(f, 400, "policies", "PUT", "/v1/certs/x", "{\"policies\": [\".bad\"]}");
    expect(f, 200, "GET", "/v1/certs", NULL);
    assert_int_equal(json_array_size(json_object_get(f->j, "certs")), 2);
    opts cert = {.auth = "", .cn = "client1"};
    assert_int_equal(req_full(f, "POST", "/v1/keys/app-x/datakey", "{}", cert), 200);
    json_t *a = last_audit(f);
    assert_string_equal(jstr(a, "caller"), "cert:client1");
    json_decref(a);
    assert_int_equal(req_full(f, "POST", "/v1/keys/other-z/datakey", "{}", cert), 403);
    assert_int_equal(req_full(f, "GET", "/v1/tokens", NULL, cert), 403);
    assert_int_equal(req_full(f, "GET", "/v1/tokens", NULL, (opts){.auth = "", .cn = "admin-cn"}),
                     200);
    assert_int_equal(req_full(f, "GET", "/v1/keys", NULL, (opts){.auth = "", .cn = "client2"}),
                     401);
    expect(f, 204, "DELETE", "/v1/certs/client1", NULL);
    expect(f, 404, "DELETE", "/v1/certs/client1", NULL);
    assert_int_equal(req_full(f, "POST", "/v1/keys/app-x/datakey", "{}", cert), 401);
}

/* ---- keas.kmi compatibility ---- */

static void
seed_requests_answer_like_keas_kmi(void **state)
{
    fixture *f = *state;
    char kek[256], dk[32];
    expect(f, 200, "GET", "/", NULL);
    assert_string_equal(f->r.content_type, "text/plain");
    assert_int_equal(f->r.body_len, strlen("KMS server holding 0 keys"));
    assert_memory_equal(f->r.body, "KMS server holding 0 keys", f->r.body_len);
    audit_is(f, "seed", NULL, 200, "ok");
    assert_int_equal(req_full(f, "POST", "/new", NULL, (opts){.ctype = "text/plain"}), 200);
    assert_string_equal(f->r.content_type, "text/plain");
    assert_true(f->r.body_len > 12 && f->r.body_len < sizeof(kek));
    assert_int_equal(f->r.body[f->r.body_len - 1], '\n');
    memcpy(kek, f->r.body, f->r.body_len - 1);
    kek[f->r.body_len - 1] = '\0';
    assert_true(strncmp(kek, "sbx-kek-1:", 10) == 0);
    expect(f, 200, "GET", "/", NULL);
    assert_memory_equal(f->r.body, "KMS server holding 1 keys", f->r.body_len);

    assert_int_equal(req_full(f, "POST", "/key", kek, (opts){.ctype = "text/plain"}), 200);
    assert_string_equal(f->r.content_type, "application/octet-stream");
    assert_int_equal(f->r.body_len, 32);
    memcpy(dk, f->r.body, 32);
    char spaced[300];
    snprintf(spaced, sizeof(spaced), "  \n%s \r\n\n", kek);
    assert_int_equal(req_full(f, "POST", "/key", spaced, (opts){.ctype = ""}), 200);
    assert_memory_equal(f->r.body, dk, 32);

    char wrong[256];
    snprintf(wrong, sizeof(wrong), "%s", kek);
    wrong[strlen(wrong) - 2] = wrong[strlen(wrong) - 2] == 'A' ? 'B' : 'A';
    assert_int_equal(req_full(f, "POST", "/key", wrong, (opts){.ctype = "text/plain"}), 404);
    assert_string_equal(f->r.content_type, "text/plain");
    assert_int_equal(f->r.body_len, strlen("Key not found"));
    assert_memory_equal(f->r.body, "Key not found", f->r.body_len);
    audit_is(f, "seed", NULL, 404, "error");
    const char *bad[] = {"hello", "sbx-kek-1:abc", "", "sbx-kek-2:00:00"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(req_full(f, "POST", "/key", bad[i], (opts){.ctype = "text/plain"}), 400);
    assert_int_equal(req_full(f, "POST", "/key", kek, (opts){.ctype = "text/plain", .auth = ""}),
                     401);
    assert_true(f->r.body_len != 32 || memcmp(f->r.body, dk, 32) != 0);
    log_lacks(f, strrchr(kek, ':') + 1);
}

/* ---- the audit log ---- */

static void
every_request_writes_one_audit_line(void **state)
{
    fixture *f = *state;
    size_t before = audit_lines(f);
    req(f, "GET", "/v1/health", NULL);
    req(f, "POST", "/v1/keys/k", "{}");
    req(f, "POST", "/v1/keys/k", "{}");
    req_as(f, "", "GET", "/v1/keys", NULL);
    req(f, "PUT", "/v1/keys/k", "{}");
    req(f, "GET", "/nowhere", NULL);
    req(f, "POST", "/v1/keys/k/datakey", "{\"batch_input\": [{}, {}, {}]}");
    assert_int_equal(audit_lines(f) - before, 7);
    json_t *a = last_audit(f);
    assert_string_equal(jstr(a, "op"), "datakey");
    assert_int_equal(json_integer_value(json_object_get(a, "key_version")), 1);
    assert_string_equal(jstr(a, "method"), "POST");
    assert_string_equal(jstr(a, "path"), "/v1/keys/k/datakey");
    assert_true(strncmp(jstr(a, "caller"), "token:", 6) == 0);
    json_decref(a);
}

static void
a_failing_fail_closed_audit_log_withholds_the_answer(void **state)
{
    fixture *f = *state;
    kms_api_free(f->api);
    kms_audit_close(f->audit);
    open_api(f, true);
    expect(f, 201, "POST", "/v1/keys/k", "{}");
    // make every further write of the log fail: a file size limit at its current size
    struct stat sb;
    struct rlimit old, lim;
    assert_int_equal(stat(f->log, &sb), 0);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = (rlim_t)sb.st_size;
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int status = req(f, "POST", "/v1/keys/k/datakey", "{}");
    uint8_t copy[512];
    size_t len = f->r.body_len < sizeof(copy) ? f->r.body_len : sizeof(copy);
    memcpy(copy, f->r.body, len);
    req(f, "GET", "/v1/health", NULL);
    int health = f->r.status;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_DFL);
    assert_int_equal(status, 503);
    assert_true(len > 0 && memmem(copy, len, "audit log unavailable", 21) != NULL);
    assert_null(memmem(copy, len, "plaintext", 9));
    assert_int_equal(health, 503);
    expect(f, 200, "POST", "/v1/keys/k/datakey", "{}"); // writable again
}

int
main(void)
{
    (void)sbx_init();
    test_seed_init("api");
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(health_needs_no_caller),
        T(unknown_routes_are_404_and_wrong_methods_405_with_allow),
        T(metrics_are_prometheus_text_and_tick_sets_the_key_gauge),
        T(callers_without_a_valid_token_get_401),
        T(key_lifecycle_through_the_api),
        T(key_names_and_create_fields_are_checked),
        T(bodies_must_be_strict_json_objects),
        T(content_type_must_be_json_on_v1_bodies),
        T(encrypt_decrypt_round_trip_bound_to_context),
        T(encrypt_checks_plaintext_and_context),
        T(datakeys_come_in_three_sizes_and_unwrap),
        T(batches_answer_in_order_with_per_item_errors),
        T(batches_hold_at_most_1000_items),
        T(tokens_are_created_listed_and_revoked),
        T(jansson_frees_are_wiped_once_the_api_exists),
        T(policies_grant_operations_on_key_patterns),
        T(client_certificates_map_to_policies),
        T(seed_requests_answer_like_keas_kmi),
        T(every_request_writes_one_audit_line),
        T(a_failing_fail_closed_audit_log_withholds_the_answer),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
