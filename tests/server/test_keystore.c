/*
 * tests/server/test_keystore.c - the key server's key model (server/keystore.h)
 * over the in-memory store: control plane, data plane, ciphertext format and
 * tampering, seed KEKs, root key, caches, and races between threads and
 * between two keystores ("nodes") sharing one store.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>

#include "keystore.h"
#include "keystore_internal.h"
#include "store.h"
#include "util.h"
#include "strongbox/encoding.h"
#include "strongbox/memory.h"
#include "helpers.h"

typedef struct {
    char url[64];
    kms_store *st;
    kms_keystore *ks;
    uint8_t root[32];
} fixture;

static int
setup(void **state)
{
    static unsigned counter;
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->url, sizeof(f->url), "memory:keystore-%d-%u", (int)getpid(), counter++);
    assert_sbx_ok(kms_store_open(&f->st, f->url));
    test_rand_fill(f->root, 32);
    assert_sbx_ok(kms_keystore_new(&f->ks, f->root));
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture *f = *state;
    kms_keystore_free(f->ks);
    kms_store_close(f->st);
    free(f);
    return 0;
}

static kms_key_info
create(fixture *f, const char *name, int64_t period)
{
    kms_key_info info;
    kms_key_options opt = {period};
    assert_sbx_ok(kms_key_create(f->ks, f->st, name, &opt, &info));
    return info;
}

static void
rotate(fixture *f, const char *name, uint32_t want_latest)
{
    kms_key_info info;
    assert_sbx_ok(kms_key_rotate(f->ks, f->st, name, &info));
    assert_int_equal(info.latest_version, want_latest);
    kms_key_info_dispose(&info);
}

static char *
encrypt_text(fixture *f, const char *name, const uint8_t *ctx, size_t ctx_len, const char *msg,
             uint32_t want_version)
{
    char *ct = NULL;
    uint32_t v = 0;
    assert_sbx_ok(
        kms_encrypt(f->ks, f->st, name, ctx, ctx_len, (const uint8_t *)msg, strlen(msg), &ct, &v));
    assert_int_equal(v, want_version);
    return ct;
}

static void
decrypt_is(fixture *f, const char *name, const uint8_t *ctx, size_t ctx_len, const char *ct,
           const char *msg, uint32_t want_version)
{
    uint8_t *pt = NULL;
    size_t len = 0;
    uint32_t v = 0;
    assert_sbx_ok(kms_decrypt(f->ks, f->st, name, ctx, ctx_len, ct, &pt, &len, &v));
    assert_int_equal(len, strlen(msg));
    assert_memory_equal(pt, msg, len);
    assert_int_equal(pt[len], 0);
    assert_int_equal(v, want_version);
    sbx_secret_free(pt, len + 1);
}

static int
decrypt_rc(fixture *f, const char *name, const uint8_t *ctx, size_t ctx_len, const char *ct)
{
    uint8_t *pt = (uint8_t *)"x";
    size_t len = 7;
    int rc = kms_decrypt(f->ks, f->st, name, ctx, ctx_len, ct, &pt, &len, NULL);
    if (rc == 0)
        sbx_secret_free(pt, len + 1);
    else {
        assert_null(pt);
        assert_int_equal(len, 0);
    }
    return rc;
}

/* ---- names, create, get, list ---- */

static void
key_names_follow_the_rules(void **state)
{
    (void)state;
    char longest[KMS_NAME_MAX + 2];
    memset(longest, 'a', sizeof(longest));
    longest[KMS_NAME_MAX] = '\0';
    assert_true(sbx_kms_key_name_valid("billing"));
    assert_true(sbx_kms_key_name_valid("A-z_0.9"));
    assert_true(sbx_kms_key_name_valid(longest));
    longest[KMS_NAME_MAX] = 'a';
    longest[KMS_NAME_MAX + 1] = '\0';
    assert_false(sbx_kms_key_name_valid(longest));
    assert_false(sbx_kms_key_name_valid(""));
    assert_false(sbx_kms_key_name_valid(NULL));
    assert_false(sbx_kms_key_name_valid(".hidden"));
    assert_false(sbx_kms_key_name_valid("a/b"));
    assert_false(sbx_kms_key_name_valid("a b"));
    assert_false(sbx_kms_key_name_valid("caf\xc3\xa9"));
}

static int
collect_names(void *ctx, const kms_key_info *info)
{
    char *buf = ctx;
    strcat(buf, info->name);
    strcat(buf, ",");
    return 0;
}

static void
create_get_and_list_keys(void **state)
{
    fixture *f = *state;
    kms_key_info a = create(f, "app-1", 0), got;
    assert_string_equal(a.name, "app-1");
    assert_int_equal(a.latest_version, 1);
    assert_int_equal(a.min_decryption_version, 1);
    assert_int_equal(a.nversions, 1);
    assert_int_equal(a.versions[0].version, 1);
    assert_int_equal(a.versions[0].state, KMS_VERSION_ACTIVE);
    assert_int_equal(a.deletion_time, 0);
    assert_true(a.created > 1600000000 && a.rotated == a.created);
    assert_sbx_ok(kms_key_get(f->ks, f->st, "app-1", &got));
    assert_memory_equal(got.id, a.id, 16);
    assert_int_equal(got.created, a.created);
    kms_key_info_dispose(&got);

    kms_key_info b = create(f, "app-2", 7200);
    assert_int_equal(b.auto_rotate_period, 7200);
    assert_memory_not_equal(a.id, b.id, 16);
    kms_key_info c = create(f, "other", 0);
    kms_key_info_dispose(&a);
    kms_key_info_dispose(&b);
    kms_key_info_dispose(&c);

    char names[256] = "";
    assert_sbx_ok(kms_key_list(f->ks, f->st, "app-", collect_names, names));
    assert_string_equal(names, "app-1,app-2,");
    names[0] = '\0';
    assert_sbx_ok(kms_key_list(f->ks, f->st, "", collect_names, names));
    assert_string_equal(names, "app-1,app-2,other,");
    int64_t n = 0;
    assert_sbx_ok(kms_key_count(f->st, &n));
    assert_int_equal(n, 3);

    kms_key_options opt = {0};
    assert_sbx_err(kms_key_create(f->ks, f->st, "app-1", &opt, &got), SBX_EEXISTS);
    assert_true(test_contains(sbx_error_last()->message, "app-1"));
    assert_sbx_err(kms_key_create(f->ks, f->st, ".bad", &opt, &got), SBX_EINVAL);
    opt.auto_rotate_period = 3599;
    assert_sbx_err(kms_key_create(f->ks, f->st, "short-period", &opt, &got), SBX_EINVAL);
    opt.auto_rotate_period = -1;
    assert_sbx_err(kms_key_create(f->ks, f->st, "negative", &opt, &got), SBX_EINVAL);
    assert_sbx_err(kms_key_get(f->ks, f->st, "missing", &got), SBX_ENOTFOUND);
    assert_sbx_err(kms_key_get(f->ks, f->st, "a/b", &got), SBX_EINVAL);
    // The failed create of an existing name left no orphan version row.
    assert_sbx_ok(kms_store_count(f->st, "ver", &n));
    assert_int_equal(n, 3);
}

static void
corrupt_metadata_is_an_io_error(void **state)
{
    fixture *f = *state;
    kms_key_info info;
    static const char *bad[] = {"not json", "{}", "[]",
                                "{\"id\":\"00\",\"created\":1,\"rotated\":1,\"latest_version\":1,"
                                "\"min_decryption_version\":1,\"auto_rotate_period\":0,"
                                "\"deletion_time\":0,\"versions\":[]}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_sbx_ok(
            kms_store_put(f->st, "key", "broken", bad[i], strlen(bad[i]), KMS_REV_ANY, NULL));
        assert_sbx_err(kms_key_get(f->ks, f->st, "broken", &info), SBX_EIO);
        assert_true(test_contains(sbx_error_last()->message, "corrupt"));
    }
}

/* ---- rotation, configuration ---- */

static void
rotation_adds_versions_and_old_ones_still_decrypt(void **state)
{
    fixture *f = *state;
    kms_key_info info = create(f, "k", 0);
    kms_key_info_dispose(&info);
    char *c1 = encrypt_text(f, "k", NULL, 0, "one", 1);
    rotate(f, "k", 2);
    char *c2 = encrypt_text(f, "k", NULL, 0, "two", 2);
    rotate(f, "k", 3);
    assert_sbx_ok(kms_key_get(f->ks, f->st, "k", &info));
    assert_int_equal(info.nversions, 3);
    for (uint32_t i = 0; i < 3; i++)
        assert_int_equal(info.versions[i].version, i + 1);
    assert_true(info.rotated >= info.created);
    kms_key_info_dispose(&info);
    decrypt_is(f, "k", NULL, 0, c1, "one", 1);
    decrypt_is(f, "k", NULL, 0, c2, "two", 2);
    assert_true(strncmp(c1, "sbx:v1:", 7) == 0);
    assert_true(strncmp(c2, "sbx:v2:", 7) == 0);
    assert_sbx_err(kms_key_rotate(f->ks, f->st, "nope", &info), SBX_ENOTFOUND);
    free(c1);
    free(c2);
}

/*
 * Two rotations finishing at once install their metadata in the shared cache in
 * either order; the older must not replace the newer (a read would then report
 * a stale latest version until the cache entry expires). The race, made
 * deterministic: the older rotation's result arrives last.
 */
static void
an_older_rotation_result_never_replaces_a_newer_one_in_the_cache(void **state)
{
    fixture *f = *state;
    kms_key_info info;
    uint8_t *val = NULL;
    size_t len = 0;
    int64_t rev = 0;
    kms_meta *old = NULL;
    info = create(f, "late", 0);
    kms_key_info_dispose(&info);
    assert_sbx_ok(kms_store_get(f->st, "key", "late", &val, &len, &rev));
    assert_sbx_ok(kms__meta_parse("late", val, len, rev, &old)); // version 1, revision 1
    free(val);
    rotate(f, "late", 2);          // the cache holds revision 2
    kms__meta_install(f->ks, old); // revision 1 installed after it
    kms__meta_release(old);
    assert_sbx_ok(kms_key_get(f->ks, f->st, "late", &info));
    assert_int_equal(info.latest_version, 2);
    kms_key_info_dispose(&info);
}

static void
rotation_adopts_an_orphan_version_left_by_a_crash(void **state)
{
    fixture *f = *state;
    kms_key_info info = create(f, "k", 0);
    uint8_t secret[32], sealed[KMS_VER_SEALED], got[32];
    char key[44];
    test_rand_fill(secret, 32);
    // A crash after writing version 2 but before the metadata: an unreachable orphan.
    assert_sbx_ok(kms__ver_seal(f->ks, sealed, info.id, 2, secret));
    kms__ver_key(key, info.id, 2);
    assert_sbx_ok(kms_store_put(f->st, "ver", key, sealed, sizeof(sealed), KMS_REV_ABSENT, NULL));
    rotate(f, "k", 2);
    assert_sbx_ok(kms__ver_secret(f->ks, f->st, info.id, 2, got));
    assert_memory_equal(got, secret, 32);
    // An orphan that does not open under the root key is refused, not adopted.
    kms__ver_key(key, info.id, 3);
    memset(sealed, 0x5a, sizeof(sealed));
    assert_sbx_ok(kms_store_put(f->st, "ver", key, sealed, sizeof(sealed), KMS_REV_ABSENT, NULL));
    kms_key_info out;
    assert_sbx_err(kms_key_rotate(f->ks, f->st, "k", &out), SBX_EIO);
    kms_key_info_dispose(&info);
    assert_sbx_ok(kms_key_get(f->ks, f->st, "k", &info));
    assert_int_equal(info.latest_version, 2);
    kms_key_info_dispose(&info);
}

static void
configure_checks_its_options(void **state)
{
    fixture *f = *state;
    kms_key_info info = create(f, "k", 0);
    kms_key_info_dispose(&info);
    char *c1 = encrypt_text(f, "k", NULL, 0, "old", 1);
    rotate(f, "k", 2);
    kms_key_config cfg = {.set_min_decryption_version = true, .min_decryption_version = 2};
    assert_sbx_ok(kms_key_configure(f->ks, f->st, "k", &cfg, &info));
    assert_int_equal(info.min_decryption_version, 2);
    kms_key_info_dispose(&info);
    assert_sbx_err(decrypt_rc(f, "k", NULL, 0, c1), SBX_ENOKEY);
    assert_true(test_contains(sbx_error_last()->message, "version 1"));
    assert_true(test_contains(sbx_error_last()->message, "retired"));
    char *out = NULL;
    assert_sbx_err(kms_rewrap(f->ks, f->st, "k", NULL, 0, c1, &out, NULL), SBX_ENOKEY);
    assert_null(out);

    cfg.min_decryption_version = 3;
    assert_sbx_err(kms_key_configure(f->ks, f->st, "k", &cfg, &info), SBX_EINVAL);
    cfg.min_decryption_version = 0;
    assert_sbx_err(kms_key_configure(f->ks, f->st, "k", &cfg, &info), SBX_EINVAL);
    cfg = (kms_key_config){.set_auto_rotate_period = true, .auto_rotate_period = 60};
    assert_sbx_err(kms_key_configure(f->ks, f->st, "k", &cfg, &info), SBX_EINVAL);
    cfg = (kms_key_config){.set_min_decryption_version = true,
                           .min_decryption_version = 1,
                           .set_auto_rotate_period = true,
                           .auto_rotate_period = 86400};
    assert_sbx_ok(kms_key_configure(f->ks, f->st, "k", &cfg, &info));
    assert_int_equal(info.min_decryption_version, 1);
    assert_int_equal(info.auto_rotate_period, 86400);
    kms_key_info_dispose(&info);
    decrypt_is(f, "k", NULL, 0, c1, "old", 1);
    free(c1);
}

/* ---- soft delete, restore, destroy ---- */

static void
scheduled_deletion_stops_data_operations_until_restored(void **state)
{
    fixture *f = *state;
    kms_key_info info = create(f, "k", 0);
    kms_key_info_dispose(&info);
    char *c1 = encrypt_text(f, "k", NULL, 0, "msg", 1), *out = NULL;
    assert_sbx_err(kms_key_restore(f->ks, f->st, "k", &info), SBX_ECONFLICT);
    assert_sbx_err(kms_key_schedule_delete(f->ks, f->st, "k", -1, &info), SBX_EINVAL);
    assert_sbx_ok(kms_key_schedule_delete(f->ks, f->st, "k", 3600, &info));
    assert_true(info.deletion_time >= kms_now() + 3590);
    kms_key_info_dispose(&info);

    uint8_t dek[32];
    assert_sbx_err(kms_encrypt(f->ks, f->st, "k", NULL, 0, (const uint8_t *)"x", 1, &out, NULL),
                   SBX_ECONFLICT);
    assert_true(test_contains(sbx_error_last()->message, "key k is scheduled for deletion at 20"));
    assert_true(test_contains(sbx_error_last()->message, "restore it first"));
    assert_sbx_err(decrypt_rc(f, "k", NULL, 0, c1), SBX_ECONFLICT);
    assert_sbx_err(kms_datakey(f->ks, f->st, "k", NULL, 0, 32, dek, &out, NULL), SBX_ECONFLICT);
    assert_sbx_err(kms_rewrap(f->ks, f->st, "k", NULL, 0, c1, &out, NULL), SBX_ECONFLICT);
    assert_sbx_err(kms_key_rotate(f->ks, f->st, "k", &info), SBX_ECONFLICT);
    kms_key_config cfg = {.set_auto_rotate_period = true, .auto_rotate_period = 0};
    assert_sbx_err(kms_key_configure(f->ks, f->st, "k", &cfg, &info), SBX_ECONFLICT);
    kms_key_options opt = {0};
    assert_sbx_err(kms_key_create(f->ks, f->st, "k", &opt, &info), SBX_EEXISTS);

    assert_sbx_ok(kms_key_restore(f->ks, f->st, "k", &info));
    assert_int_equal(info.deletion_time, 0);
    kms_key_info_dispose(&info);
    decrypt_is(f, "k", NULL, 0, c1, "msg", 1);
    free(c1);
}

static void
destroyed_versions_no_longer_decrypt(void **state)
{
    fixture *f = *state;
    kms_key_info info = create(f, "k", 0);
    kms_key_info_dispose(&info);
    char *c1 = encrypt_text(f, "k", NULL, 0, "v1", 1);
    assert_sbx_err(kms_key_destroy_version(f->ks, f->st, "k", 1, &info), SBX_ECONFLICT);
    assert_true(test_contains(sbx_error_last()->message, "latest"));
    rotate(f, "k", 2);
    char *c2 = encrypt_text(f, "k", NULL, 0, "v2", 2);
    assert_sbx_err(kms_key_destroy_version(f->ks, f->st, "k", 9, &info), SBX_ENOTFOUND);
    assert_sbx_err(kms_key_destroy_version(f->ks, f->st, "k", 0, &info), SBX_ENOTFOUND);
    assert_sbx_ok(kms_key_destroy_version(f->ks, f->st, "k", 1, &info));
    assert_int_equal(info.versions[0].state, KMS_VERSION_DESTROYED);
    assert_true(info.versions[0].destroyed > 0);
    assert_int_equal(info.versions[1].state, KMS_VERSION_ACTIVE);
    // The secret row is gone for good.
    char key[44];
    uint8_t *val = NULL;
    size_t len = 0;
    kms__ver_key(key, info.id, 1);
    assert_sbx_err(kms_store_get(f->st, "ver", key, &val, &len, NULL), SBX_ENOTFOUND);
    kms_key_info_dispose(&info);
    assert_sbx_err(decrypt_rc(f, "k", NULL, 0, c1), SBX_ENOKEY);
    assert_true(test_contains(sbx_error_last()->message, "version 1 of key k was destroyed"));
    decrypt_is(f, "k", NULL, 0, c2, "v2", 2);
    // Destroying again is harmless; the state survives a reload.
    assert_sbx_ok(kms_key_destroy_version(f->ks, f->st, "k", 1, &info));
    kms_key_info_dispose(&info);
    kms_keystore_set_meta_ttl(f->ks, 0);
    assert_sbx_ok(kms_key_get(f->ks, f->st, "k", &info));
    assert_int_equal(info.versions[0].state, KMS_VERSION_DESTROYED);
    kms_key_info_dispose(&info);
    free(c1);
    free(c2);
}

/* ---- maintenance ---- */

static void
maintain_rotates_keys_whose_period_passed(void **state)
{
    fixture *f = *state;
    kms_key_info a = create(f, "auto", 3600), b = create(f, "manual", 0);
    unsigned rotated = 99, purged = 99;
    int64_t t0 = a.rotated;
    assert_sbx_ok(kms_keystore_maintain(f->ks, f->st, t0 + 3599, &rotated, &purged));
    assert_int_equal(rotated, 0);
    assert_int_equal(purged, 0);
    assert_sbx_ok(kms_keystore_maintain(f->ks, f->st, t0 + 3600, &rotated, &purged));
    assert_int_equal(rotated, 1);
    kms_key_info info;
    assert_sbx_ok(kms_key_get(f->ks, f->st, "auto", &info));
    assert_int_equal(info.latest_version, 2);
    assert_int_equal(info.rotated, t0 + 3600);
    kms_key_info_dispose(&info);
    // Run again (as a second node would): not due any more.
    assert_sbx_ok(kms_keystore_maintain(f->ks, f->st, t0 + 3600, &rotated, NULL));
    assert_int_equal(rotated, 0);
    assert_sbx_ok(kms_keystore_maintain(f->ks, f->st, t0 + 7200, &rotated, NULL));
    assert_int_equal(rotated, 1);
    assert_sbx_ok(kms_key_get(f->ks, f->st, "manual", &info));
    assert_int_equal(info.latest_version, 1);
    kms_key_info_dispose(&info);
    kms_key_info_dispose(&a);
    kms_key_info_dispose(&b);
}

static void
maintain_purges_keys_after_their_deletion_time(void **state)
{
    fixture *f = *state;
    kms_key_info info = create(f, "gone", 0), keep = create(f, "keep", 0);
    uint8_t old_id[16];
    memcpy(old_id, info.id, 16);
    kms_key_info_dispose(&info);
    char *c1 = encrypt_text(f, "gone", NULL, 0, "msg", 1);
    rotate(f, "gone", 2);
    assert_sbx_ok(kms_key_schedule_delete(f->ks, f->st, "gone", 100, &info));
    int64_t when = info.deletion_time;
    kms_key_info_dispose(&info);
    unsigned purged = 9;
    assert_sbx_ok(kms_keystore_maintain(f->ks, f->st, when - 1, NULL, &purged));
    assert_int_equal(purged, 0);
    assert_sbx_ok(kms_keystore_maintain(f->ks, f->st, when, NULL, &purged));
    assert_int_equal(purged, 1);
    assert_sbx_err(kms_key_get(f->ks, f->st, "gone", &info), SBX_ENOTFOUND);
    int64_t n = 0;
    assert_sbx_ok(kms_store_count(f->st, "ver", &n));
    assert_int_equal(n, 1); // only "keep"'s version row is left
    assert_sbx_ok(kms_keystore_maintain(f->ks, f->st, when, NULL, &purged));
    assert_int_equal(purged, 0);

    // The name can be reused; the new key is another key.
    info = create(f, "gone", 0);
    assert_memory_not_equal(info.id, old_id, 16);
    kms_key_info_dispose(&info);
    assert_sbx_err(decrypt_rc(f, "gone", NULL, 0, c1), SBX_EAUTH);
    kms_key_info_dispose(&keep);
    free(c1);
}

static void
a_purge_in_progress_cannot_be_undone_by_restore(void **state)
{
    fixture *f = *state;
    kms_key_info info = create(f, "k", 0);
    kms_key_info_dispose(&info);
    assert_sbx_ok(kms_key_schedule_delete(f->ks, f->st, "k", 0, &info));
    int64_t when = info.deletion_time;
    kms_key_info_dispose(&info);
    // A purge that crashed after marking the key: restore must refuse, maintain finishes it.
    uint8_t *val = NULL;
    size_t len = 0;
    int64_t rev = 0;
    assert_sbx_ok(kms_store_get(f->st, "key", "k", &val, &len, &rev));
    char *marked = malloc(len + 32);
    assert_non_null(marked);
    snprintf(marked, len + 32, "{\"purging\":true,%s", (char *)val + 1);
    assert_sbx_ok(kms_store_put(f->st, "key", "k", marked, strlen(marked), rev, NULL));
    free(val);
    free(marked);
    kms_keystore_set_meta_ttl(f->ks, 0);
    assert_sbx_err(kms_key_restore(f->ks, f->st, "k", &info), SBX_ECONFLICT);
    assert_true(test_contains(sbx_error_last()->message, "purged"));
    unsigned purged = 0;
    assert_sbx_ok(kms_keystore_maintain(f->ks, f->st, when, NULL, &purged));
    assert_int_equal(purged, 1);
    assert_sbx_err(kms_key_get(f->ks, f->st, "k", &info), SBX_ENOTFOUND);
}

/* ---- data plane ---- */

static void
encrypt_and_decrypt_round_trip(void **state)
{
    fixture *f = *state;
    test_seed_init("keystore round trips");
    kms_key_info info = create(f, "k", 0);
    kms_key_info_dispose(&info);
    static const size_t sizes[] = {0, 1, 15, 16, 17, 1000, KMS_ENCRYPT_MAX};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint8_t *msg = test_malloc_rand(sizes[i]), *pt = NULL;
        char *ct = NULL;
        size_t len = 0;
        uint32_t v = 0;
        assert_sbx_ok(kms_encrypt(f->ks, f->st, "k", NULL, 0, msg, sizes[i], &ct, &v));
        assert_true(strlen(ct) <= KMS_CIPHERTEXT_MAX);
        assert_sbx_ok(kms_decrypt(f->ks, f->st, "k", NULL, 0, ct, &pt, &len, &v));
        assert_int_equal(len, sizes[i]);
        if (len > 0)
            assert_memory_equal(pt, msg, len);
        sbx_secret_free(pt, len + 1);
        free(ct);
        free(msg);
    }
    uint8_t *big = test_malloc_rand(KMS_ENCRYPT_MAX + 1);
    char *ct = (char *)"x";
    assert_sbx_err(kms_encrypt(f->ks, f->st, "k", NULL, 0, big, KMS_ENCRYPT_MAX + 1, &ct, NULL),
                   SBX_ETOOBIG);
    assert_null(ct);
    free(big);
    assert_sbx_err(
        kms_encrypt(f->ks, f->st, "missing", NULL, 0, (const uint8_t *)"x", 1, &ct, NULL),
        SBX_ENOTFOUND);
    // Two encryptions of one message differ (random nonce).
    char *a = encrypt_text(f, "k", NULL, 0, "same", 1),
         *b = encrypt_text(f, "k", NULL, 0, "same", 1);
    assert_string_not_equal(a, b);
    free(a);
    free(b);
}

static void
datakeys_come_in_three_sizes_and_unwrap(void **state)
{
    fixture *f = *state;
    kms_key_info info = create(f, "k", 0);
    kms_key_info_dispose(&info);
    static const size_t sizes[] = {16, 32, 64};
    for (size_t i = 0; i < 3; i++) {
        uint8_t dek[64] = {0}, *pt = NULL;
        char *ct = NULL;
        size_t len = 0;
        uint32_t v = 0;
        assert_sbx_ok(kms_datakey(f->ks, f->st, "k", NULL, 0, sizes[i], dek, &ct, &v));
        assert_int_equal(v, 1);
        assert_sbx_ok(kms_decrypt(f->ks, f->st, "k", NULL, 0, ct, &pt, &len, NULL));
        assert_int_equal(len, sizes[i]);
        assert_memory_equal(pt, dek, len);
        sbx_secret_free(pt, len + 1);
        free(ct);
    }
    char *ct = NULL;
    assert_sbx_ok(kms_datakey(f->ks, f->st, "k", NULL, 0, 32, NULL, &ct, NULL)); // wrapped only
    free(ct);
    uint8_t dek[64];
    assert_sbx_err(kms_datakey(f->ks, f->st, "k", NULL, 0, 24, dek, &ct, NULL), SBX_EINVAL);
    assert_sbx_err(kms_datakey(f->ks, f->st, "k", NULL, 0, 0, dek, &ct, NULL), SBX_EINVAL);
}

static void
rewrap_moves_a_ciphertext_to_the_latest_version(void **state)
{
    fixture *f = *state;
    kms_key_info info = create(f, "k", 0);
    kms_key_info_dispose(&info);
    const uint8_t ctx[] = "\x00\x00\x00\x01"
                          "a"
                          "\x00\x00\x00\x01"
                          "b";
    char *c1 = encrypt_text(f, "k", ctx, sizeof(ctx) - 1, "secret", 1), *c3 = NULL;
    rotate(f, "k", 2);
    rotate(f, "k", 3);
    uint32_t v = 0;
    assert_sbx_ok(kms_rewrap(f->ks, f->st, "k", ctx, sizeof(ctx) - 1, c1, &c3, &v));
    assert_int_equal(v, 3);
    assert_true(strncmp(c3, "sbx:v3:", 7) == 0);
    decrypt_is(f, "k", ctx, sizeof(ctx) - 1, c3, "secret", 3);
    char *bad = NULL;
    assert_sbx_err(kms_rewrap(f->ks, f->st, "k", NULL, 0, c1, &bad, &v), SBX_EAUTH);
    assert_null(bad);
    free(c1);
    free(c3);
}

static void
context_is_canonical(void **state)
{
    (void)state;
    const char *k1[] = {"b", "a"}, *v1[] = {"2", "1"};
    const char *k2[] = {"a", "b"}, *v2[] = {"1", "2"};
    uint8_t *x = NULL, *y = NULL;
    size_t xl = 0, yl = 0;
    assert_sbx_ok(kms_context_canonical(k1, v1, 2, &x, &xl));
    assert_sbx_ok(kms_context_canonical(k2, v2, 2, &y, &yl));
    static const uint8_t want[] = {0, 0, 0, 1, 'a', 0, 0, 0, 1, '1',
                                   0, 0, 0, 1, 'b', 0, 0, 0, 1, '2'};
    assert_int_equal(xl, sizeof(want));
    assert_memory_equal(x, want, sizeof(want));
    assert_int_equal(yl, xl);
    assert_memory_equal(x, y, xl);
    free(x);
    free(y);
    // Bytewise order: "B" (0x42) < "a" (0x61) < "\xc3..." (UTF-8).
    const char *k3[] = {"\xc3\xa9", "a", "B"}, *v3[] = {"", "", ""};
    assert_sbx_ok(kms_context_canonical(k3, v3, 3, &x, &xl));
    assert_int_equal(x[4], 'B');
    assert_int_equal(x[13], 'a');
    free(x);
    const char *dk[] = {"a", "b", "a"}, *dv[] = {"1", "2", "3"};
    assert_sbx_err(kms_context_canonical(dk, dv, 3, &x, &xl), SBX_EINVAL);
    assert_null(x);
    assert_sbx_ok(kms_context_canonical(NULL, NULL, 0, &x, &xl));
    assert_null(x);
    assert_int_equal(xl, 0);
    // "ab"="c" and "a"="bc" must differ (lengths are encoded).
    const char *ka[] = {"ab"}, *va[] = {"c"}, *kb[] = {"a"}, *vb[] = {"bc"};
    assert_sbx_ok(kms_context_canonical(ka, va, 1, &x, &xl));
    assert_sbx_ok(kms_context_canonical(kb, vb, 1, &y, &yl));
    assert_int_equal(xl, yl);
    assert_memory_not_equal(x, y, xl);
    free(x);
    free(y);
}

static void
ciphertexts_are_bound_to_key_version_and_context(void **state)
{
    fixture *f = *state;
    kms_key_info info = create(f, "k", 0);
    kms_key_info_dispose(&info);
    info = create(f, "other", 0);
    kms_key_info_dispose(&info);
    const char *keys[] = {"tenant"}, *v1[] = {"acme"}, *v2[] = {"evil"};
    uint8_t *ctx = NULL, *ctx2 = NULL;
    size_t cl = 0, cl2 = 0;
    assert_sbx_ok(kms_context_canonical(keys, v1, 1, &ctx, &cl));
    assert_sbx_ok(kms_context_canonical(keys, v2, 1, &ctx2, &cl2));
    char *ct = encrypt_text(f, "k", ctx, cl, "bound", 1);
    decrypt_is(f, "k", ctx, cl, ct, "bound", 1);
    assert_sbx_err(decrypt_rc(f, "k", ctx2, cl2, ct), SBX_EAUTH);
    assert_true(test_contains(sbx_error_last()->message,
                              "ciphertext does not authenticate under key k with this context"));
    assert_sbx_err(decrypt_rc(f, "k", NULL, 0, ct), SBX_EAUTH);
    assert_sbx_err(decrypt_rc(f, "other", ctx, cl, ct), SBX_EAUTH);
    assert_sbx_err(decrypt_rc(f, "missing", ctx, cl, ct), SBX_ENOTFOUND);

    // Claiming another version: v2 exists but the AAD binds v1.
    rotate(f, "k", 2);
    char *moved = strdup(ct);
    moved[5] = '2';
    assert_sbx_err(decrypt_rc(f, "k", ctx, cl, moved), SBX_EAUTH);
    moved[5] = '3'; // a version that does not exist
    assert_sbx_err(decrypt_rc(f, "k", ctx, cl, moved), SBX_EAUTH);
    free(moved);

    // A deleted and recreated name is another key.
    assert_sbx_ok(kms_key_schedule_delete(f->ks, f->st, "k", 0, &info));
    kms_key_info_dispose(&info);
    assert_sbx_ok(kms_keystore_maintain(f->ks, f->st, kms_now() + 1, NULL, NULL));
    info = create(f, "k", 0);
    kms_key_info_dispose(&info);
    assert_sbx_err(decrypt_rc(f, "k", ctx, cl, ct), SBX_EAUTH);
    free(ct);
    free(ctx);
    free(ctx2);
}

static bool
is_refusal(int rc)
{
    return rc == SBX_EFORMAT || rc == SBX_EAUTH || rc == SBX_ENOKEY || rc == SBX_ETOOBIG;
}

static void
every_tampered_ciphertext_is_refused(void **state)
{
    fixture *f = *state;
    kms_key_info info = create(f, "k", 0);
    kms_key_info_dispose(&info);
    rotate(f, "k", 2);
    char *ct = encrypt_text(f, "k", NULL, 0, "tamper me", 2);
    size_t n = strlen(ct);
    char *t = malloc(n + 1);
    assert_non_null(t);
    for (size_t i = 0; i < n; i++) { // each text byte, each bit
        for (int bit = 0; bit < 8; bit++) {
            memcpy(t, ct, n + 1);
            t[i] = (char)(t[i] ^ (1 << bit));
            if (t[i] == '\0')
                continue; // a shorter string: covered by truncation
            int rc = decrypt_rc(f, "k", NULL, 0, t);
            if (!is_refusal(rc))
                fail_msg("flip of bit %d at %zu gave %d", bit, i, rc);
        }
    }
    for (size_t len = 0; len < n; len++) { // truncations
        memcpy(t, ct, len);
        t[len] = '\0';
        assert_true(is_refusal(decrypt_rc(f, "k", NULL, 0, t)));
    }
    // Each byte of the binary changed, re-encoded canonically: authentication fails.
    uint8_t bin[128];
    size_t bl = 0;
    assert_sbx_ok(sbx_base64_decode(bin, sizeof(bin), &bl, ct + 7, n - 7, true));
    for (size_t i = 0; i < bl; i++) {
        char text[200] = "sbx:v2:";
        bin[i] ^= 0x80;
        sbx_base64_encode(text + 7, sizeof(text) - 7, bin, bl, true);
        assert_sbx_err(decrypt_rc(f, "k", NULL, 0, text), SBX_EAUTH);
        bin[i] ^= 0x80;
    }
    free(t);
    free(ct);
}

static void
malformed_ciphertexts_are_format_errors(void **state)
{
    fixture *f = *state;
    kms_key_info info = create(f, "k", 0);
    kms_key_info_dispose(&info);
    char *ct = encrypt_text(f, "k", NULL, 0, "hello", 1);
    const char *b64 = ct + 7;
    char buf[256];
    static const char *heads[] = {"sbx:v01:",
                                  "sbx:v0:",
                                  "sbx:v:",
                                  "sbx:v-1:",
                                  "sbx:v+1:",
                                  "sbx:v4294967296:",
                                  "sbx:v99999999999999999999:",
                                  "SBX:v1:",
                                  "sbx:V1:",
                                  "sbx:1:",
                                  "sbx:v1",
                                  "sbx:v1;",
                                  " sbx:v1:",
                                  "sbx:v 1:"};
    for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
        snprintf(buf, sizeof(buf), "%s%s", heads[i], b64);
        assert_sbx_err(decrypt_rc(f, "k", NULL, 0, buf), SBX_EFORMAT);
    }
    // Base64: missing padding, whitespace, URL alphabet, trailing garbage, too short.
    size_t bl = strlen(b64);
    snprintf(buf, sizeof(buf), "sbx:v1:%.*s", (int)(bl - 1), b64);
    assert_sbx_err(decrypt_rc(f, "k", NULL, 0, buf), SBX_EFORMAT);
    snprintf(buf, sizeof(buf), "sbx:v1:%s\n", b64);
    assert_sbx_err(decrypt_rc(f, "k", NULL, 0, buf), SBX_EFORMAT);
    snprintf(buf, sizeof(buf), "sbx:v1:%s====", b64);
    assert_sbx_err(decrypt_rc(f, "k", NULL, 0, buf), SBX_EFORMAT);
    snprintf(buf, sizeof(buf), "sbx:v1:%s", b64);
    bool changed = false;
    for (char *p = buf; *p; p++)
        if (*p == '+' || *p == '/') {
            *p = *p == '+' ? '-' : '_';
            changed = true;
        }
    if (changed)
        assert_sbx_err(decrypt_rc(f, "k", NULL, 0, buf), SBX_EFORMAT);
    assert_sbx_err(decrypt_rc(f, "k", NULL, 0, "sbx:v1:AAAA"), SBX_EFORMAT);
    assert_sbx_err(decrypt_rc(f, "k", NULL, 0, "sbx:v1:"), SBX_EFORMAT);
    assert_sbx_err(decrypt_rc(f, "k", NULL, 0, ""), SBX_EFORMAT);
    // Non-canonical base64 (unused bits set in the last character): 5-byte "hello" ct is 49
    // bytes, so the text ends in "=="; bump the character before the padding.
    snprintf(buf, sizeof(buf), "sbx:v1:%s", b64);
    char *pad = strchr(buf, '=');
    assert_non_null(pad);
    pad[-1] = (char)(pad[-1] == 'A' ? 'B' : pad[-1] == 'Q' ? 'R' : pad[-1] ^ 1);
    assert_true(is_refusal(decrypt_rc(f, "k", NULL, 0, buf)));
    // Oversized text: refused before any work.
    char *huge = malloc(KMS_CIPHERTEXT_MAX + 2);
    assert_non_null(huge);
    memcpy(huge, "sbx:v1:", 7);
    memset(huge + 7, 'A', KMS_CIPHERTEXT_MAX - 5);
    huge[KMS_CIPHERTEXT_MAX + 1] = '\0';
    assert_sbx_err(decrypt_rc(f, "k", NULL, 0, huge), SBX_ETOOBIG);
    free(huge);
    free(ct);
}

/* ---- seal/open under the root key ---- */

static void
sealed_values_open_only_for_their_purpose(void **state)
{
    fixture *f = *state;
    uint8_t msg[40], *sealed = NULL, *opened = NULL;
    size_t sl = 0, ol = 0;
    test_rand_fill(msg, sizeof(msg));
    assert_sbx_ok(kms_keystore_seal(f->ks, "tls-ticket", msg, sizeof(msg), &sealed, &sl));
    assert_int_equal(sl, sizeof(msg) + 28);
    assert_sbx_ok(kms_keystore_open(f->ks, "tls-ticket", sealed, sl, &opened, &ol));
    assert_int_equal(ol, sizeof(msg));
    assert_memory_equal(opened, msg, ol);
    sbx_secret_free(opened, ol);
    assert_sbx_err(kms_keystore_open(f->ks, "other", sealed, sl, &opened, &ol), SBX_EAUTH);
    assert_null(opened);
    for (size_t i = 0; i < sl; i++) {
        sealed[i] ^= 1;
        assert_sbx_err(kms_keystore_open(f->ks, "tls-ticket", sealed, sl, &opened, &ol), SBX_EAUTH);
        sealed[i] ^= 1;
    }
    assert_sbx_err(kms_keystore_open(f->ks, "tls-ticket", sealed, 27, &opened, &ol), SBX_EAUTH);
    free(sealed);
}

static void
another_root_key_cannot_use_the_database(void **state)
{
    fixture *f = *state;
    kms_key_info info = create(f, "k", 0);
    kms_key_info_dispose(&info);
    char *ct = encrypt_text(f, "k", NULL, 0, "x", 1), *seed = NULL;
    assert_sbx_ok(kms_seed_new(f->ks, f->st, &seed));
    uint8_t other[32], dek[32];
    memcpy(other, f->root, 32);
    other[0] ^= 1;
    kms_keystore *ks2 = NULL;
    assert_sbx_ok(kms_keystore_new(&ks2, other));
    uint8_t *pt = NULL;
    size_t len = 0;
    assert_sbx_err(kms_decrypt(ks2, f->st, "k", NULL, 0, ct, &pt, &len, NULL), SBX_EIO);
    assert_true(test_contains(sbx_error_last()->message, "root key"));
    assert_sbx_err(kms_seed_key(ks2, f->st, seed, strlen(seed), dek), SBX_EIO);
    kms_keystore_free(ks2);
    free(ct);
    free(seed);
}

/* ---- seed compatibility ---- */

static void
seed_keks_give_back_their_data_key(void **state)
{
    fixture *f = *state;
    char *kek = NULL;
    uint8_t d1[32], d2[32];
    assert_sbx_ok(kms_seed_new(f->ks, f->st, &kek));
    assert_int_equal(strlen(kek), 86);
    assert_true(strncmp(kek, "sbx-kek-1:", 10) == 0);
    assert_int_equal(kek[42], ':');
    assert_true(strspn(kek + 10, "0123456789abcdef") == 32);
    assert_true(
        strspn(kek + 43, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == 43);
    assert_sbx_ok(kms_seed_key(f->ks, f->st, kek, strlen(kek), d1));
    char padded[128];
    snprintf(padded, sizeof(padded), " \t%s\r\n", kek);
    assert_sbx_ok(kms_seed_key(f->ks, f->st, padded, strlen(padded), d2));
    assert_memory_equal(d1, d2, 32);

    char *kek2 = NULL;
    assert_sbx_ok(kms_seed_new(f->ks, f->st, &kek2));
    assert_sbx_ok(kms_seed_key(f->ks, f->st, kek2, strlen(kek2), d2));
    assert_memory_not_equal(d1, d2, 32);
    kms_key_info info = create(f, "named", 0);
    kms_key_info_dispose(&info);
    int64_t n = 0;
    assert_sbx_ok(kms_key_count(f->st, &n));
    assert_int_equal(n, 3);
    sbx_wipe(kek2, strlen(kek2));
    free(kek2);
    sbx_wipe(kek, strlen(kek));
    free(kek);
}

static void
seed_wrong_secret_and_unknown_id_look_the_same(void **state)
{
    fixture *f = *state;
    char *kek = NULL, t[100];
    uint8_t dek[32];
    assert_sbx_ok(kms_seed_new(f->ks, f->st, &kek));
    // Wrong secret, valid id: every secret position changed.
    for (size_t i = 43; i < 85; i++) {
        snprintf(t, sizeof(t), "%s", kek);
        t[i] = t[i] == 'A' ? 'B' : 'A';
        assert_sbx_err(kms_seed_key(f->ks, f->st, t, strlen(t), dek), SBX_ENOTFOUND);
        assert_string_equal(sbx_error_last()->message, "Key not found");
    }
    // Unknown id, right secret.
    snprintf(t, sizeof(t), "%s", kek);
    t[10] = t[10] == '0' ? '1' : '0';
    assert_sbx_err(kms_seed_key(f->ks, f->st, t, strlen(t), dek), SBX_ENOTFOUND);
    assert_string_equal(sbx_error_last()->message, "Key not found");
    free(kek);
}

static void
malformed_seed_keks_are_format_errors(void **state)
{
    fixture *f = *state;
    char *kek = NULL, t[200];
    uint8_t dek[32];
    assert_sbx_ok(kms_seed_new(f->ks, f->st, &kek));
    assert_sbx_err(kms_seed_key(f->ks, f->st, "", 0, dek), SBX_EFORMAT);
    assert_sbx_err(kms_seed_key(f->ks, f->st, kek, strlen(kek) - 1, dek), SBX_EFORMAT);
    snprintf(t, sizeof(t), "%sA", kek);
    assert_sbx_err(kms_seed_key(f->ks, f->st, t, strlen(t), dek), SBX_EFORMAT);
    static const struct {
        size_t at;
        char c;
    } edits[] = {{0, 'S'},  {8, '2'},  {9, ';'},  {10, 'g'}, {11, 'A'},
                 {42, '-'}, {50, '+'}, {50, '/'}, {84, '='}, {60, '.'}};
    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        snprintf(t, sizeof(t), "%s", kek);
        t[edits[i].at] = edits[i].c;
        assert_sbx_err(kms_seed_key(f->ks, f->st, t, strlen(t), dek), SBX_EFORMAT);
    }
    // Non-canonical last character (43 chars carry 258 bits: the last has 2 unused).
    snprintf(t, sizeof(t), "%s", kek);
    t[85] = (char)(t[85] == 'A'   ? 'B'
                   : t[85] == 'Q' ? 'R'
                   : t[85] == 'g' ? 'h'
                   : t[85] == 'w' ? 'x'
                                  : 'B');
    assert_true(kms_seed_key(f->ks, f->st, t, strlen(t), dek) < 0);
    snprintf(t, sizeof(t), "%s", kek);
    t[20] = '\0';
    assert_sbx_err(kms_seed_key(f->ks, f->st, t, 86, dek), SBX_EFORMAT);
    free(kek);
}

/* ---- root key ---- */

static void
root_key_files_are_private(void **state)
{
    (void)state;
    char dir[] = "/tmp/sbx-ks-XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/root.key", dir);
    uint8_t a[32], b[32];
    assert_sbx_err(kms_root_key_read(a, path), SBX_ENOTFOUND);
    assert_sbx_ok(kms_root_key_create(a, path));
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(sb.st_size, 65);
    assert_sbx_ok(kms_root_key_read(b, path));
    assert_memory_equal(a, b, 32);
    assert_sbx_err(kms_root_key_create(b, path), SBX_EEXISTS);
    assert_sbx_ok(kms_root_key_read(b, path));
    assert_memory_equal(a, b, 32);

    assert_int_equal(chmod(path, 0640), 0);
    assert_sbx_err(kms_root_key_read(b, path), SBX_EINVAL);
    assert_true(test_contains(sbx_error_last()->message, "chmod 600"));
    assert_int_equal(chmod(path, 0604), 0);
    assert_sbx_err(kms_root_key_read(b, path), SBX_EINVAL);
    assert_int_equal(chmod(path, 0600), 0);

    static const char *bad[] = {
        "", "00", "zz00000000000000000000000000000000000000000000000000000000000000\n",
        "000000000000000000000000000000000000000000000000000000000000000000\n",
        "0000000000000000000000000000000000000000000000000000000000000000\n\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int fd = open(path, O_WRONLY | O_TRUNC);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, bad[i], strlen(bad[i])), (ssize_t)strlen(bad[i]));
        close(fd);
        assert_sbx_err(kms_root_key_read(b, path), SBX_EFORMAT);
    }
    int fd = open(path, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, "AB", 2), 2);
    for (int i = 0; i < 31; i++)
        assert_int_equal(write(fd, "cd", 2), 2);
    close(fd);
    assert_sbx_ok(kms_root_key_read(b, path)); // no newline, upper case: fine
    assert_int_equal(b[0], 0xab);
    assert_int_equal(b[31], 0xcd);
    unlink(path);
    rmdir(dir);
}

static void
root_check_refuses_another_root_key(void **state)
{
    fixture *f = *state;
    uint8_t other[32];
    assert_sbx_ok(kms_root_key_check(f->st, f->root)); // creates
    assert_sbx_ok(kms_root_key_check(f->st, f->root)); // matches
    memcpy(other, f->root, 32);
    other[31] ^= 0x80;
    assert_sbx_err(kms_root_key_check(f->st, other), SBX_EAUTH);
    assert_string_equal(sbx_error_last()->message,
                        "wrong root key or unseal passphrase for this database");
    // The check value is not the root key, nor contains it.
    uint8_t *val = NULL;
    size_t len = 0;
    char hex[65];
    assert_sbx_ok(kms_store_get(f->st, "meta", "root-check", &val, &len, NULL));
    test_hex(hex, f->root, 32);
    assert_false(test_contains((char *)val, hex));
    free(val);
}

static void
unseal_passphrase_derives_a_stable_root(void **state)
{
    fixture *f = *state;
    unsigned saved = kms__unseal_log_n;
    kms__unseal_log_n = 10; // keep the test fast; the default (17) is read back from storage
    uint8_t r1[32], r2[32], r3[32];
    assert_sbx_ok(kms_root_key_from_passphrase(r1, f->st, "correct horse", 13));
    assert_sbx_ok(kms_root_key_from_passphrase(r2, f->st, "correct horse", 13));
    assert_memory_equal(r1, r2, 32);
    assert_sbx_ok(kms_root_key_check(f->st, r1));
    assert_sbx_ok(kms_root_key_from_passphrase(r3, f->st, "correct horsf", 13));
    assert_memory_not_equal(r1, r3, 32);
    assert_sbx_err(kms_root_key_check(f->st, r3), SBX_EAUTH);
    assert_sbx_err(kms_root_key_from_passphrase(r3, f->st, "", 0), SBX_EINVAL);
    kms__unseal_log_n = 17;
    // The stored cost wins over the current default: same root.
    assert_sbx_ok(kms_root_key_from_passphrase(r2, f->st, "correct horse", 13));
    assert_memory_equal(r1, r2, 32);
    kms__unseal_log_n = saved;
    // A corrupt unseal record is refused.
    assert_sbx_ok(kms_store_put(f->st, "meta", "unseal", "scrypt:5:00", 11, KMS_REV_ANY, NULL));
    assert_sbx_err(kms_root_key_from_passphrase(r2, f->st, "correct horse", 13), SBX_EIO);
}

static void
unseal_uses_scrypt_2_17_by_default(void **state)
{
    fixture *f = *state;
    uint8_t root[32], *val = NULL;
    size_t len = 0;
    assert_int_equal(kms__unseal_log_n, 17);
    assert_sbx_ok(kms_root_key_from_passphrase(root, f->st, "pass", 4));
    assert_sbx_ok(kms_store_get(f->st, "meta", "unseal", &val, &len, NULL));
    assert_int_equal(len, 10 + 64);
    assert_memory_equal(val, "scrypt:17:", 10);
    assert_true(strspn((char *)val + 10, "0123456789abcdef") == 64);
    free(val);
}

/* ---- caches and several nodes ---- */

static void
another_node_sees_changes_within_the_cache_ttl(void **state)
{
    fixture *f = *state;
    kms_keystore *ks2 = NULL;
    assert_sbx_ok(kms_keystore_new(&ks2, f->root));
    kms_keystore_set_meta_ttl(ks2, 100);
    kms_key_info info = create(f, "k", 0);
    kms_key_info_dispose(&info);
    fixture f2 = *f;
    f2.ks = ks2;
    char *c1 = encrypt_text(&f2, "k", NULL, 0, "one", 1); // node 2 caches version 1
    rotate(f, "k", 2);
    char *c2 = encrypt_text(f, "k", NULL, 0, "two", 2);
    decrypt_is(&f2, "k", NULL, 0, c2, "two", 2); // a newer version forces a reload
    assert_sbx_ok(kms_key_destroy_version(f->ks, f->st, "k", 1, &info));
    kms_key_info_dispose(&info);
    usleep(150 * 1000);
    assert_sbx_err(decrypt_rc(&f2, "k", NULL, 0, c1), SBX_ENOKEY); // cached secret not used
    assert_sbx_ok(kms_key_schedule_delete(f->ks, f->st, "k", 60, &info));
    kms_key_info_dispose(&info);
    usleep(150 * 1000);
    assert_sbx_err(decrypt_rc(&f2, "k", NULL, 0, c2), SBX_ECONFLICT);
    kms_keystore_free(ks2);
    free(c1);
    free(c2);
}

static void
caches_evict_and_still_answer(void **state)
{
    fixture *f = *state;
    enum { NKEYS = KMS_VCACHE_SLOTS + KMS_MCACHE_SLOTS / 2 };
    char **cts = calloc(NKEYS, sizeof(*cts));
    assert_non_null(cts);
    for (int i = 0; i < NKEYS; i++) {
        char name[32], msg[32];
        snprintf(name, sizeof(name), "key-%05d", i);
        snprintf(msg, sizeof(msg), "msg %d", i);
        kms_key_info info = create(f, name, 0);
        kms_key_info_dispose(&info);
        cts[i] = encrypt_text(f, name, NULL, 0, msg, 1);
    }
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < NKEYS; i++) {
            char name[32], msg[32];
            snprintf(name, sizeof(name), "key-%05d", i);
            snprintf(msg, sizeof(msg), "msg %d", i);
            decrypt_is(f, name, NULL, 0, cts[i], msg, 1);
        }
    }
    for (int i = 0; i < NKEYS; i++)
        free(cts[i]);
    free(cts);
}

#define WORKERS 4
#define ROUNDS  40

struct worker {
    fixture *f;
    kms_keystore *ks;
    int rounds;
    int failures;
    uint32_t results[ROUNDS];
};

static void *
crypt_worker(void *arg)
{
    struct worker *w = arg;
    kms_store *st = NULL;
    if (kms_store_open(&st, w->f->url) < 0) {
        w->failures++;
        return NULL;
    }
    for (int i = 0; i < w->rounds; i++) {
        char msg[32], *ct = NULL;
        uint8_t *pt = NULL;
        size_t len = 0;
        snprintf(msg, sizeof(msg), "message %d", i);
        if (kms_encrypt(w->ks, st, "hot", NULL, 0, (const uint8_t *)msg, strlen(msg), &ct, NULL) <
                0 ||
            kms_decrypt(w->ks, st, "hot", NULL, 0, ct, &pt, &len, NULL) < 0 || len != strlen(msg) ||
            memcmp(pt, msg, len) != 0) {
            fprintf(stderr, "worker: %s\n", sbx_error_last()->message);
            w->failures++;
        }
        sbx_secret_free(pt, len + 1);
        free(ct);
    }
    kms_store_close(st);
    return NULL;
}

static void *
rotate_worker(void *arg)
{
    struct worker *w = arg;
    kms_store *st = NULL;
    if (kms_store_open(&st, w->f->url) < 0) {
        w->failures++;
        return NULL;
    }
    for (int i = 0; i < w->rounds; i++) {
        kms_key_info info;
        if (kms_key_rotate(w->ks, st, "hot", &info) < 0) {
            fprintf(stderr, "rotate: %s\n", sbx_error_last()->message);
            w->failures++;
            continue;
        }
        w->results[i] = info.latest_version;
        kms_key_info_dispose(&info);
    }
    kms_store_close(st);
    return NULL;
}

static void
threads_encrypt_and_decrypt_while_the_key_rotates(void **state)
{
    fixture *f = *state;
    kms_key_info info = create(f, "hot", 0);
    kms_key_info_dispose(&info);
    kms_keystore_set_meta_ttl(f->ks, 5); // let workers see rotations
    struct worker w[WORKERS + 1];
    pthread_t t[WORKERS + 1];
    for (int i = 0; i <= WORKERS; i++) {
        w[i] = (struct worker){.f = f, .ks = f->ks, .rounds = i == WORKERS ? 20 : 200};
        assert_int_equal(
            pthread_create(&t[i], NULL, i == WORKERS ? rotate_worker : crypt_worker, &w[i]), 0);
    }
    for (int i = 0; i <= WORKERS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    assert_sbx_ok(kms_key_get(f->ks, f->st, "hot", &info));
    assert_int_equal(info.latest_version, 21);
    kms_key_info_dispose(&info);
}

static void
two_nodes_racing_rotation_lose_no_version(void **state)
{
    fixture *f = *state;
    kms_key_info info = create(f, "hot", 0);
    kms_key_info_dispose(&info);
    kms_keystore *node[2] = {f->ks, NULL};
    assert_sbx_ok(kms_keystore_new(&node[1], f->root));
    struct worker w[WORKERS];
    pthread_t t[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        w[i] = (struct worker){.f = f, .ks = node[i % 2], .rounds = 10};
        assert_int_equal(pthread_create(&t[i], NULL, rotate_worker, &w[i]), 0);
    }
    bool seen[WORKERS * 10 + 2] = {false};
    for (int i = 0; i < WORKERS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failures, 0);
        for (int r = 0; r < 10; r++) { // each rotation made its own, distinct version
            uint32_t v = w[i].results[r];
            assert_true(v >= 2 && v <= WORKERS * 10 + 1);
            assert_false(seen[v]);
            seen[v] = true;
        }
    }
    kms_keystore_set_meta_ttl(f->ks, 0);
    assert_sbx_ok(kms_key_get(f->ks, f->st, "hot", &info));
    assert_int_equal(info.latest_version, WORKERS * 10 + 1);
    assert_int_equal(info.nversions, WORKERS * 10 + 1);
    // Every version has its secret and no orphan was left behind.
    int64_t rows = 0;
    assert_sbx_ok(kms_store_count(f->st, "ver", &rows));
    assert_int_equal(rows, WORKERS * 10 + 1);
    uint8_t secret[32];
    for (uint32_t v = 1; v <= info.latest_version; v++)
        assert_sbx_ok(kms__ver_secret(node[1], f->st, info.id, v, secret));
    kms_key_info_dispose(&info);
    kms_keystore_free(node[1]);
}

int
main(void)
{
    (void)sbx_init();
    test_seed_init("keystore");
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(key_names_follow_the_rules),
        T(create_get_and_list_keys),
        T(corrupt_metadata_is_an_io_error),
        T(rotation_adds_versions_and_old_ones_still_decrypt),
        T(an_older_rotation_result_never_replaces_a_newer_one_in_the_cache),
        T(rotation_adopts_an_orphan_version_left_by_a_crash),
        T(configure_checks_its_options),
        T(scheduled_deletion_stops_data_operations_until_restored),
        T(destroyed_versions_no_longer_decrypt),
        T(maintain_rotates_keys_whose_period_passed),
        T(maintain_purges_keys_after_their_deletion_time),
        T(a_purge_in_progress_cannot_be_undone_by_restore),
        T(encrypt_and_decrypt_round_trip),
        T(datakeys_come_in_three_sizes_and_unwrap),
        T(rewrap_moves_a_ciphertext_to_the_latest_version),
        T(context_is_canonical),
        T(ciphertexts_are_bound_to_key_version_and_context),
        T(every_tampered_ciphertext_is_refused),
        T(malformed_ciphertexts_are_format_errors),
        T(sealed_values_open_only_for_their_purpose),
        T(another_root_key_cannot_use_the_database),
        T(seed_keks_give_back_their_data_key),
        T(seed_wrong_secret_and_unknown_id_look_the_same),
        T(malformed_seed_keks_are_format_errors),
        T(root_key_files_are_private),
        T(root_check_refuses_another_root_key),
        T(unseal_passphrase_derives_a_stable_root),
        T(unseal_uses_scrypt_2_17_by_default),
        T(another_node_sees_changes_within_the_cache_ttl),
        T(caches_evict_and_still_answer),
        T(threads_encrypt_and_decrypt_while_the_key_rotates),
        T(two_nodes_racing_rotation_lose_no_version),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
