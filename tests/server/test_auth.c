/*
 * tests/server/test_auth.c - callers, tokens, policies (server/auth.h) over
 * the in-memory store: token format and storage by hash, malformed and
 * over-long tokens, expiry, revocation (at once on this node, within a
 * second on another), strict policy validation, the authorization matrix
 * (patterns, ops, "*", admin, key-less ops, deleted policies), certificate
 * mappings, and concurrent lookups.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <pthread.h>

#include "auth.h"
#include "store.h"
#include "strongbox/common.h"
#include "strongbox/memory.h"
#include "helpers.h"

typedef struct {
    char url[64];
    kms_store *st;
    kms_auth *a;
    kms_auth *b; /* a second node's cache over the same storage */
} fixture;

static int
setup(void **state)
{
    static unsigned counter;
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->url, sizeof(f->url), "memory:auth-%d-%u", (int)getpid(), counter++);
    assert_sbx_ok(kms_store_open(&f->st, f->url));
    assert_sbx_ok(kms_auth_new(&f->a));
    assert_sbx_ok(kms_auth_new(&f->b));
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture *f = *state;
    kms_auth_free(f->a);
    kms_auth_free(f->b);
    kms_store_close(f->st);
    free(f);
    return 0;
}

static void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void
expect_err_msg(int got, int code, const char *needle)
{
    if (got != code || (needle != NULL && !test_contains(sbx_error_last()->message, needle))) {
        print_error("got %s, want %s with \"%s\": %s\n", sbx_error_name(got), sbx_error_name(code),
                    needle ? needle : "", sbx_error_last()->message);
        fail();
    }
}

static char *
mint(fixture *f, const char *name, const char *const *pol, size_t n, bool admin, int64_t ttl,
     char id[17])
{
    char *tok = NULL;
    assert_sbx_ok(kms_token_create(f->st, name, pol, n, admin, ttl, &tok, id, NULL));
    assert_non_null(tok);
    return tok;
}

static void
burn(char *tok)
{
    sbx_wipe(tok, strlen(tok));
    free(tok);
}

/* ---- ops ---- */

static void
op_names_round_trip(void **state)
{
    (void)state;
    for (int op = 0; op < KMS_OP_COUNT; op++) {
        const char *n = kms_op_name((kms_op)op);
        assert_non_null(n);
        if (op == KMS_OP_HEALTH || op == KMS_OP_OTHER)
            assert_int_equal(kms_op_parse(n), -1);
        else
            assert_int_equal(kms_op_parse(n), op);
    }
    assert_string_equal(kms_op_name(KMS_OP_DATAKEY_WRAPPED), "datakey-wrapped");
    assert_string_equal(kms_op_name(KMS_OP_COUNT), "other");
    assert_int_equal(kms_op_parse("fly"), -1);
    assert_int_equal(kms_op_parse("*"), -1);
    assert_int_equal(kms_op_parse("Read"), -1);
}

/* ---- tokens ---- */

static void
tokens_are_minted_in_the_format_and_stored_by_hash(void **state)
{
    fixture *f = *state;
    const char *pol[] = {"apps", "ops"};
    char id[17], id2[17], hex[65];
    uint8_t md[32];
    unsigned mdlen;
    kms_principal p;
    char *tok = mint(f, "app1", pol, 2, false, 3600, id);
    char *tok2 = mint(f, "app2", NULL, 0, false, 0, id2);
    assert_int_equal(strlen(tok), 48);
    assert_true(strncmp(tok, "sbxt_", 5) == 0);
    assert_int_equal(
        strspn(tok + 5, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), 43);
    assert_int_equal(strlen(id), 16);
    assert_int_equal(strspn(id, "0123456789abcdef"), 16);
    assert_string_not_equal(tok, tok2);
    assert_string_not_equal(id, id2);

    assert_sbx_ok(kms_auth_token(f->a, f->st, tok, &p));
    assert_string_equal(p.kind, "token");
    assert_string_equal(p.id, id);
    assert_string_equal(p.name, "app1");
    assert_false(p.admin);
    assert_int_equal(p.npolicies, 2);
    assert_string_equal(p.policies[0], "apps");
    assert_string_equal(p.policies[1], "ops");
    assert_true(p.expires >= (int64_t)time(NULL) + 3590 && p.expires <= (int64_t)time(NULL) + 3601);
    assert_sbx_ok(kms_auth_token(f->a, f->st, tok2, &p)); // and again from the cache
    assert_sbx_ok(kms_auth_token(f->a, f->st, tok2, &p));
    assert_string_equal(p.name, "app2");
    assert_int_equal(p.expires, 0);

    // the row is keyed by hex(SHA-256(token)) and holds nothing of the token
    assert_int_equal(EVP_Digest(tok, strlen(tok), md, &mdlen, EVP_sha256(), NULL), 1);
    test_hex(hex, md, 32);
    uint8_t *val = NULL;
    size_t len = 0;
    assert_sbx_ok(kms_store_get(f->st, "token", hex, &val, &len, NULL));
    assert_false(test_contains((const char *)val, tok + 5));
    assert_false(test_contains((const char *)val, "sbxt_"));
    assert_true(test_contains((const char *)val, id));
    free(val);
    burn(tok);
    burn(tok2);
}

static void
malformed_and_unknown_tokens_are_refused(void **state)
{
    fixture *f = *state;
    kms_principal p;
    static const char *const bad[] = {
        "",
        "sbxt_",
        "sbxt_short",
        "SBXT_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "sbxt-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "sbxt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+",
        "sbxt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "sbxt_AAAAAAAAAAAAAAAAAAAAA AAAAAAAAAAAAAAAAAAAAAA",
        "sbxt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
        "sbxt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\xc3\xa9",
        " sbxt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect_err_msg(kms_auth_token(f->a, f->st, bad[i], &p), SBX_EAUTH, "malformed");
        assert_int_equal(p.name[0], '\0');
    }
    // over-long: refused by the format check, never hashed or read to its end
    size_t n = 1 << 20;
    char *huge = malloc(n + 1);
    memcpy(huge, "sbxt_", 5);
    memset(huge + 5, 'A', n - 5);
    huge[n] = '\0';
    expect_err_msg(kms_auth_token(f->a, f->st, huge, &p), SBX_EAUTH, "malformed");
    huge[5 + 129] = '\0';
    expect_err_msg(kms_auth_token(f->a, f->st, huge, &p), SBX_EAUTH, "malformed");
    huge[5 + 128] = '\0'; // the longest accepted shape: unknown, not malformed
    expect_err_msg(kms_auth_token(f->a, f->st, huge, &p), SBX_EAUTH, "unknown or revoked");
    free(huge);
    expect_err_msg(
        kms_auth_token(f->a, f->st, "sbxt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &p),
        SBX_EAUTH, "unknown or revoked token");
    // the message never echoes the token
    assert_false(test_contains(sbx_error_last()->message, "AAAAAAAA"));
}

static void
tokens_expire(void **state)
{
    fixture *f = *state;
    char id[17], hex[65], rec[256];
    uint8_t md[32];
    unsigned mdlen;
    kms_principal p;
    // a record whose expiry has passed
    const char *old = "sbxt_an-old-token-that-has-expired-long-ago";
    assert_int_equal(EVP_Digest(old, strlen(old), md, &mdlen, EVP_sha256(), NULL), 1);
    test_hex(hex, md, 32);
    snprintf(rec, sizeof(rec),
             "{\"id\":\"00112233aabbccdd\",\"name\":\"old\",\"policies\":[],\"admin\":true,"
             "\"created\":%lld,\"expires\":%lld}",
             (long long)time(NULL) - 100, (long long)time(NULL) - 10);
    assert_sbx_ok(kms_store_put(f->st, "token", hex, rec, strlen(rec), KMS_REV_ABSENT, NULL));
    expect_err_msg(kms_auth_token(f->a, f->st, old, &p), SBX_EAUTH, "token expired");
    assert_false(p.admin);
    // ttl 1: works now, not after it has passed (also when cached). Expiry counts from
    // the next whole second, so a ttl-1 token lives 1 to 2 s.
    char *tok = mint(f, "short", NULL, 0, true, 1, id);
    assert_sbx_ok(kms_auth_token(f->a, f->st, tok, &p));
    assert_true(p.admin);
    sleep_ms(2100);
    expect_err_msg(kms_auth_token(f->a, f->st, tok, &p), SBX_EAUTH, "token expired");
    expect_err_msg(kms_auth_token(f->b, f->st, tok, &p), SBX_EAUTH, "token expired");
    burn(tok);
}

static void
revocation_is_immediate_here_and_within_a_second_elsewhere(void **state)
{
    fixture *f = *state;
    char id[17], id2[17];
    kms_principal p;
    char *tok = mint(f, "victim", NULL, 0, false, 0, id);
    char *keep = mint(f, "bystander", NULL, 0, false, 0, id2);
    assert_sbx_ok(kms_auth_token(f->a, f->st, tok, &p));
    assert_sbx_ok(kms_auth_token(f->b, f->st, tok, &p)); // node b caches it
    int64_t t0 = (int64_t)time(NULL);
    struct timespec s0, s1;
    clock_gettime(CLOCK_MONOTONIC, &s0);
    assert_sbx_ok(kms_token_revoke(f->a, f->st, id));
    expect_err_msg(kms_auth_token(f->a, f->st, tok, &p), SBX_EAUTH, "unknown or revoked");
    int rb = kms_auth_token(f->b, f->st, tok, &p);
    clock_gettime(CLOCK_MONOTONIC, &s1);
    long el = (s1.tv_sec - s0.tv_sec) * 1000 + (s1.tv_nsec - s0.tv_nsec) / 1000000;
    if (el < 500)
        assert_int_equal(rb, 0); // still cached on the other node, for under a second
    sleep_ms(1100);
    expect_err_msg(kms_auth_token(f->b, f->st, tok, &p), SBX_EAUTH, "unknown or revoked");
    assert_sbx_ok(kms_auth_token(f->a, f->st, keep, &p)); // others unaffected
    expect_err_msg(kms_token_revoke(f->a, f->st, id), SBX_ENOTFOUND, id);
    expect_err_msg(kms_token_revoke(f->a, f->st, "zz"), SBX_ENOTFOUND, NULL);
    expect_err_msg(kms_token_revoke(f->a, f->st, "0123456789ABCDEF"), SBX_ENOTFOUND, NULL);
    (void)t0;
    burn(tok);
    burn(keep);
}

static void
installed_tokens_may_have_other_lengths_and_install_twice(void **state)
{
    fixture *f = *state;
    char id[17], id2[17];
    kms_principal p;
    const char *dev = "sbxt_dev-insecure-admin-token";
    assert_sbx_ok(kms_token_install(f->st, "admin", dev, true, 0, id));
    assert_int_equal(strlen(id), 16);
    assert_sbx_ok(kms_auth_token(f->a, f->st, dev, &p));
    assert_true(p.admin);
    assert_string_equal(p.name, "admin");
    assert_string_equal(p.id, id);
    assert_sbx_ok(kms_token_install(f->st, "admin", dev, true, 0, id2)); // a second start
    assert_string_equal(id, id2);
    assert_sbx_err(kms_token_install(f->st, "admin", "sbxt_short", true, 0, id), SBX_EINVAL);
    assert_string_equal(id, "");
    assert_sbx_err(kms_token_install(f->st, "admin", "not-a-token-at-all-really", true, 0, id),
                   SBX_EINVAL);
    assert_sbx_err(kms_token_install(f->st, "", "sbxt_another-good-token-here", true, 0, id),
                   SBX_EINVAL);
}

static void
token_arguments_are_checked(void **state)
{
    fixture *f = *state;
    char id[17], *tok = (char *)"x", name[200];
    const char *bad_pol[] = {"ok", "bad\nname"};
    const char *long_pol[] = {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    const char *many[33];
    for (int i = 0; i < 33; i++)
        many[i] = "p";
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    assert_sbx_err(kms_token_create(f->st, "", NULL, 0, false, 0, &tok, id, NULL), SBX_EINVAL);
    assert_null(tok);
    assert_sbx_err(kms_token_create(f->st, name, NULL, 0, false, 0, &tok, id, NULL), SBX_EINVAL);
    assert_sbx_err(kms_token_create(f->st, "x", NULL, 0, false, -1, &tok, id, NULL), SBX_EINVAL);
    assert_sbx_err(kms_token_create(f->st, "x", bad_pol, 2, false, 0, &tok, id, NULL), SBX_EINVAL);
    assert_sbx_err(kms_token_create(f->st, "x", long_pol, 1, false, 0, &tok, id, NULL), SBX_EINVAL);
    assert_sbx_err(kms_token_create(f->st, "x", many, 33, false, 0, &tok, id, NULL), SBX_EINVAL);
    assert_null(tok);
    assert_string_equal(id, "");
    int64_t n = -1;
    assert_sbx_ok(kms_store_count(f->st, "token", &n));
    assert_int_equal(n, 0);
}

struct seen {
    int n;
    int stop_at;
    char ids[8][17];
    int64_t created[8];
};

static int
collect(void *ctx, const kms_principal *p, int64_t created)
{
    struct seen *s = ctx;
    if (s->n < 8) {
        memcpy(s->ids[s->n], p->id, 17);
        s->created[s->n] = created;
    }
    s->n++;
    return s->n == s->stop_at ? 7 : 0;
}

static void
tokens_are_listed_without_their_secrets(void **state)
{
    fixture *f = *state;
    char id[3][17];
    char *tok[3];
    struct seen s = {0};
    for (int i = 0; i < 3; i++)
        tok[i] = mint(f, "lister", NULL, 0, i == 1, 60, id[i]);
    assert_sbx_ok(kms_token_list(f->st, collect, &s));
    assert_int_equal(s.n, 3);
    for (int i = 0; i < 3; i++) {
        int found = 0;
        for (int j = 0; j < 3; j++)
            found += strcmp(s.ids[j], id[i]) == 0;
        assert_int_equal(found, 1);
        assert_true(s.created[i] > (int64_t)time(NULL) - 60);
    }
    struct seen stop = {.stop_at = 2};
    assert_int_equal(kms_token_list(f->st, collect, &stop), 7); // a callback's stop is passed on
    assert_int_equal(stop.n, 2);
    for (int i = 0; i < 3; i++)
        burn(tok[i]);
}

/* ---- policies ---- */

static void
policy_documents_are_validated_strictly(void **state)
{
    static const struct {
        const char *doc, *needle;
    } bad[] = {
        {"{\"rules\": [", "not valid JSON"},
        {"[]", "object"},
        {"{}", "rules"},
        {"{\"rules\": \"x\"}", "rules"},
        {"{\"rules\": [], \"extra\": 1}", "unknown field \"extra\""},
        {"{\"rules\": [], \"rules\": []}", "duplicate"},
        {"{\"rules\": [1]}", "rule 1"},
        {"{\"rules\": [{\"ops\": [\"read\"]}]}", "keys"},
        {"{\"rules\": [{\"keys\": \"\", \"ops\": [\"read\"]}]}", "keys"},
        {"{\"rules\": [{\"keys\": 5, \"ops\": [\"read\"]}]}", "keys"},
        {"{\"rules\": [{\"keys\": \"a\\u0000b\", \"ops\": [\"read\"]}]}", "u0000"},
        {"{\"rules\": [{\"keys\": \"a\"}]}", "ops"},
        {"{\"rules\": [{\"keys\": \"a\", \"ops\": []}]}", "ops"},
        {"{\"rules\": [{\"keys\": \"a\", \"ops\": \"read\"}]}", "ops"},
        {"{\"rules\": [{\"keys\": \"a\", \"ops\": [1]}]}", "ops"},
        {"{\"rules\": [{\"keys\": \"a\", \"ops\": [\"fly\"]}]}", "unknown op \"fly\""},
        {"{\"rules\": [{\"keys\": \"a\", \"ops\": [\"health\"]}]}", "health"},
        {"{\"rules\": [{\"keys\": \"a\", \"ops\": [\"admin\"]}]}", "admin"},
        {"{\"rules\": [{\"keys\": \"a\", \"ops\": [\"read\"]}, {\"keys\": \"b\", \"ops\": "
         "[\"read\"], \"kes\": 1}]}",
         "rule 2: unknown field \"kes\""},
    };
    fixture *f = *state;
    char *doc = NULL;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect_err_msg(kms_policy_put(f->a, f->st, "p", bad[i].doc, strlen(bad[i].doc)),
                       SBX_EFORMAT, bad[i].needle);
        assert_sbx_err(kms_policy_get(f->st, "p", &doc), SBX_ENOTFOUND); // nothing was stored
    }
    // oversized documents are refused before parsing
    size_t n = 70 * 1024;
    char *big = malloc(n + 1);
    memset(big, ' ', n);
    memcpy(big, "{\"rules\": []}", 13);
    expect_err_msg(kms_policy_put(f->a, f->st, "p", big, n), SBX_EFORMAT, "over");
    free(big);
    assert_sbx_err(kms_policy_put(f->a, f->st, "", "{\"rules\": []}", 13), SBX_EINVAL);
    // a good one is stored in canonical form and can be read back
    const char *good = "{ \"rules\" : [ {\"ops\": [\"read\", \"*\"], \"keys\": \"app-*\"} ] }";
    assert_sbx_ok(kms_policy_put(f->a, f->st, "p", good, strlen(good)));
    assert_sbx_ok(kms_policy_get(f->st, "p", &doc));
    assert_string_equal(doc, "{\"rules\":[{\"ops\":[\"read\",\"*\"],\"keys\":\"app-*\"}]}");
    free(doc);
    assert_sbx_ok(kms_policy_put(f->a, f->st, "empty", "{\"rules\": []}", 13));
}

static int
count_names(void *ctx, const char *name)
{
    (void)name;
    (*(int *)ctx)++;
    return 0;
}

static void
put_policy(fixture *f, const char *name, const char *doc)
{
    assert_sbx_ok(kms_policy_put(f->a, f->st, name, doc, strlen(doc)));
}

static kms_principal
principal(bool admin, const char *p1, const char *p2)
{
    kms_principal p = {.kind = "token", .id = "0011223344556677", .name = "tester", .admin = admin};
    if (p1 != NULL)
        strcpy(p.policies[p.npolicies++], p1);
    if (p2 != NULL)
        strcpy(p.policies[p.npolicies++], p2);
    return p;
}

#define ALLOW(p, op, key) assert_sbx_ok(kms_authorize(f->a, f->st, &(p), (op), (key)))
#define DENY(p, op, key)  assert_sbx_err(kms_authorize(f->a, f->st, &(p), (op), (key)), SBX_EDENIED)

static void
the_authorization_matrix(void **state)
{
    fixture *f = *state;
    put_policy(f, "apps",
               "{\"rules\": [{\"keys\": \"app-*\", \"ops\": [\"datakey\", \"decrypt\"]}]}");
    put_policy(f, "star", "{\"rules\": [{\"keys\": \"*\", \"ops\": [\"*\"]}]}");
    put_policy(f, "lister", "{\"rules\": [{\"keys\": \"app-*\", \"ops\": [\"list\"]}]}");
    put_policy(f, "metrics",
               "{\"rules\": [{\"keys\": \"nothing-matches\", \"ops\": [\"metrics\"]}]}");
    put_policy(f, "seeder", "{\"rules\": [{\"keys\": \"nothing-matches\", \"ops\": [\"seed\"]}]}");
    put_policy(f, "sets",
               "{\"rules\": [{\"keys\": \"[ab]?-v[0-9]\", \"ops\": [\"read\"]},"
               "{\"keys\": \"exact\", \"ops\": [\"rotate\", \"config\"]}]}");
    int n = 0;
    assert_sbx_ok(kms_policy_list(f->st, count_names, &n));
    assert_int_equal(n, 6);

    kms_principal apps = principal(false, "apps", NULL);
    ALLOW(apps, KMS_OP_DATAKEY, "app-x");
    ALLOW(apps, KMS_OP_DECRYPT, "app-");
    DENY(apps, KMS_OP_DATAKEY, "other-z");
    DENY(apps, KMS_OP_DATAKEY, "xapp-1"); // patterns are anchored
    DENY(apps, KMS_OP_DATAKEY_WRAPPED, "app-x");
    DENY(apps, KMS_OP_ENCRYPT, "app-x");
    assert_true(test_contains(sbx_error_last()->message, "encrypt"));
    assert_true(test_contains(sbx_error_last()->message, "app-x"));
    assert_true(test_contains(sbx_error_last()->message, "tester"));
    DENY(apps, KMS_OP_LIST, NULL);
    DENY(apps, KMS_OP_ADMIN, NULL);
    DENY(apps, KMS_OP_METRICS, NULL);
    ALLOW(apps, KMS_OP_HEALTH, NULL);

    kms_principal star = principal(false, "star", NULL);
    for (int op = KMS_OP_CREATE; op <= KMS_OP_REWRAP; op++)
        ALLOW(star, (kms_op)op, "anything.at-all_1");
    ALLOW(star, KMS_OP_LIST, NULL);
    ALLOW(star, KMS_OP_SEED, NULL);
    DENY(star, KMS_OP_METRICS, NULL); // "*" never covers metrics or admin
    DENY(star, KMS_OP_ADMIN, NULL);
    DENY(star, KMS_OP_OTHER, NULL);

    kms_principal lister = principal(false, "lister", NULL);
    ALLOW(lister, KMS_OP_LIST, "app-1");
    ALLOW(lister, KMS_OP_LIST, NULL); // key-less: the pattern does not apply
    DENY(lister, KMS_OP_LIST, "b");
    DENY(lister, KMS_OP_READ, "app-1");

    kms_principal ms = principal(false, "metrics", "seeder");
    ALLOW(ms, KMS_OP_METRICS, NULL);
    ALLOW(ms, KMS_OP_SEED, NULL);
    DENY(ms, KMS_OP_READ, "nothing-matches");

    kms_principal sets = principal(false, "sets", NULL);
    ALLOW(sets, KMS_OP_READ, "a1-v7");
    ALLOW(sets, KMS_OP_READ, "bz-v0");
    DENY(sets, KMS_OP_READ, "c1-v7");
    DENY(sets, KMS_OP_READ, "a1-vx");
    ALLOW(sets, KMS_OP_CONFIG, "exact");
    DENY(sets, KMS_OP_CONFIG, "exactly");

    kms_principal admin = principal(true, NULL, NULL);
    for (int op = 0; op < KMS_OP_COUNT; op++) {
        ALLOW(admin, (kms_op)op, "whatever");
        ALLOW(admin, (kms_op)op, NULL);
    }
    kms_principal none = principal(false, NULL, NULL);
    DENY(none, KMS_OP_READ, "app-x");
    DENY(none, KMS_OP_LIST, NULL);
    kms_principal missing = principal(false, "no-such-policy", "apps");
    ALLOW(missing, KMS_OP_DATAKEY, "app-x"); // a missing policy just grants nothing
    missing = principal(false, "no-such-policy", NULL);
    DENY(missing, KMS_OP_DATAKEY, "app-x");
}

static void
policy_changes_apply_here_at_once_and_elsewhere_within_a_second(void **state)
{
    fixture *f = *state;
    char *doc = NULL;
    put_policy(f, "apps", "{\"rules\": [{\"keys\": \"app-*\", \"ops\": [\"datakey\"]}]}");
    kms_principal p = principal(false, "apps", NULL);
    ALLOW(p, KMS_OP_DATAKEY, "app-x");
    assert_sbx_ok(kms_authorize(f->b, f->st, &p, KMS_OP_DATAKEY, "app-x")); // node b caches
    DENY(p, KMS_OP_ENCRYPT, "app-x");
    put_policy(f, "apps", "{\"rules\": [{\"keys\": \"app-*\", \"ops\": [\"encrypt\"]}]}");
    ALLOW(p, KMS_OP_ENCRYPT, "app-x"); // at once on this node
    DENY(p, KMS_OP_DATAKEY, "app-x");
    assert_sbx_ok(kms_policy_delete(f->a, f->st, "apps"));
    DENY(p, KMS_OP_ENCRYPT, "app-x"); // a deleted policy grants nothing
    assert_sbx_err(kms_policy_get(f->st, "apps", &doc), SBX_ENOTFOUND);
    assert_sbx_err(kms_policy_delete(f->a, f->st, "apps"), SBX_ENOTFOUND);
    sleep_ms(1100);
    assert_sbx_err(kms_authorize(f->b, f->st, &p, KMS_OP_DATAKEY, "app-x"), SBX_EDENIED);
}

/* ---- certificates ---- */

static int
collect_certs(void *ctx, const kms_principal *p)
{
    int *n = ctx;
    assert_string_equal(p->kind, "cert");
    assert_true(strcmp(p->name, "client1") == 0 || strcmp(p->name, "admin-cn") == 0);
    (*n)++;
    return 0;
}

static void
certificates_map_to_principals(void **state)
{
    fixture *f = *state;
    const char *pol[] = {"apps"};
    const char *bad[] = {"bad\x01"};
    kms_principal p;
    char cn[200];
    memset(cn, 'c', sizeof(cn) - 1);
    cn[sizeof(cn) - 1] = '\0';
    put_policy(f, "apps", "{\"rules\": [{\"keys\": \"app-*\", \"ops\": [\"datakey\"]}]}");
    expect_err_msg(kms_auth_cert(f->a, f->st, "client1", &p), SBX_EAUTH, "no mapping");
    assert_sbx_ok(kms_cert_map(f->a, f->st, "client1", pol, 1, false));
    assert_sbx_ok(kms_cert_map(f->a, f->st, "admin-cn", NULL, 0, true));
    assert_sbx_ok(kms_auth_cert(f->a, f->st, "client1", &p)); // no stale "absent" entry
    assert_string_equal(p.kind, "cert");
    assert_string_equal(p.id, "");
    assert_string_equal(p.name, "client1");
    assert_false(p.admin);
    assert_int_equal(p.npolicies, 1);
    assert_int_equal(p.expires, 0);
    ALLOW(p, KMS_OP_DATAKEY, "app-1");
    DENY(p, KMS_OP_DATAKEY, "zzz");
    assert_sbx_ok(kms_auth_cert(f->a, f->st, "admin-cn", &p));
    assert_true(p.admin);
    ALLOW(p, KMS_OP_ADMIN, NULL);
    int n = 0;
    assert_sbx_ok(kms_cert_list(f->st, collect_certs, &n));
    assert_int_equal(n, 2);
    assert_sbx_err(kms_auth_cert(f->a, f->st, cn, &p), SBX_EAUTH);
    assert_sbx_err(kms_auth_cert(f->a, f->st, "", &p), SBX_EAUTH);
    assert_sbx_err(kms_cert_map(f->a, f->st, cn, pol, 1, false), SBX_EINVAL);
    assert_sbx_err(kms_cert_map(f->a, f->st, "x", bad, 1, false), SBX_EINVAL);
    // remapping and unmapping apply at once on this node
    assert_sbx_ok(kms_cert_map(f->a, f->st, "client1", NULL, 0, false));
    assert_sbx_ok(kms_auth_cert(f->a, f->st, "client1", &p));
    assert_int_equal(p.npolicies, 0);
    assert_sbx_ok(kms_cert_unmap(f->a, f->st, "client1"));
    assert_sbx_err(kms_auth_cert(f->a, f->st, "client1", &p), SBX_EAUTH);
    assert_sbx_err(kms_cert_unmap(f->a, f->st, "client1"), SBX_ENOTFOUND);
}

/* ---- concurrency ---- */

#define THREADS 8
#define ROUNDS  2000

struct worker {
    const char *url;
    const char *tok;
    kms_auth *a;
    int failures;
};

static void *
work(void *arg)
{
    struct worker *w = arg;
    kms_store *st;
    kms_principal p;
    char name[32];
    if (kms_store_open(&st, w->url) != 0) {
        w->failures = -1;
        return NULL;
    }
    for (int i = 0; i < ROUNDS; i++) {
        snprintf(name, sizeof(name), "app-%d", i % 50);
        w->failures += kms_auth_token(w->a, st, w->tok, &p) != 0;
        w->failures += kms_authorize(w->a, st, &p, KMS_OP_DATAKEY, name) != 0;
        w->failures += kms_authorize(w->a, st, &p, KMS_OP_ENCRYPT, name) != SBX_EDENIED;
    }
    kms_store_close(st);
    return NULL;
}

static void
concurrent_lookups_share_the_cache(void **state)
{
    fixture *f = *state;
    const char *pol[] = {"apps"};
    char id[17];
    pthread_t th[THREADS];
    struct worker w[THREADS];
    put_policy(f, "apps", "{\"rules\": [{\"keys\": \"app-*\", \"ops\": [\"datakey\"]}]}");
    char *tok = mint(f, "busy", pol, 1, false, 0, id);
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){f->url, tok, f->a, 0};
        assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    burn(tok);
}

int
main(void)
{
    (void)sbx_init();
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(op_names_round_trip),
        T(tokens_are_minted_in_the_format_and_stored_by_hash),
        T(malformed_and_unknown_tokens_are_refused),
        T(tokens_expire),
        T(revocation_is_immediate_here_and_within_a_second_elsewhere),
        T(installed_tokens_may_have_other_lengths_and_install_twice),
        T(token_arguments_are_checked),
        T(tokens_are_listed_without_their_secrets),
        T(policy_documents_are_validated_strictly),
        T(the_authorization_matrix),
        T(policy_changes_apply_here_at_once_and_elsewhere_within_a_second),
        T(certificates_map_to_principals),
        T(concurrent_lookups_share_the_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
