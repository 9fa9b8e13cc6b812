/*
 * server/keystore_meta.c - key metadata: the JSON document, and the control
 * plane (create, get, list, rotate, configure, delete, restore, destroy,
 * maintain).
 *
 * Implementation notes:
 *  - Metadata is parsed strictly (duplicate members, wrong types, a version
 *    list that is not exactly 1..latest_version are a corrupt row: SBX_EIO).
 *    It is not a secret and is not authenticated; what matters for security
 *    (key id and version) is bound into the AAD of every sealed secret.
 *  - Every change is: read fresh (bypassing the cache), edit a private copy,
 *    put it back if the revision is unchanged, else retry (KMS_RETRIES).
 *  - Creation writes version 1 then the metadata (put-if-absent); rotation
 *    writes version N+1 (put-if-absent, adopting an orphan left by a crash or
 *    by a racing node) then the metadata. A crash between the two leaves an
 *    unreachable version row, never a key without its secret.
 */
#include "keystore_internal.h"
#include "util.h"

#include "strongbox/error.h"
#include "strongbox/memory.h"
#include "strongbox/random.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#define PERIOD_MAX ((int64_t)100 * 366 * 86400) /* no overflow in rotated + period */

/* see keystore.h */
void
kms_key_info_dispose(kms_key_info *info)
{
    if (info == NULL)
        return;
    free(info->versions);
    memset(info, 0, sizeof(*info));
}

int
kms__info_copy(kms_key_info *out, const kms_key_info *in)
{
    *out = *in;
    out->versions = malloc((in->nversions ? in->nversions : 1) * sizeof(*in->versions));
    if (out->versions == NULL) {
        memset(out, 0, sizeof(*out));
        return sbx_error_set_nomem();
    }
    memcpy(out->versions, in->versions, in->nversions * sizeof(*in->versions));
    return 0;
}

int
kms__err_deleted(const kms_key_info *info)
{
    char when[32] = "?";
    struct tm tm;
    time_t t = (time_t)info->deletion_time;
    if (gmtime_r(&t, &tm) != NULL)
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return sbx_error_set(SBX_ECONFLICT, "key %s is scheduled for deletion at %s; restore it first",
                         info->name, when);
}

/* ---- the JSON document ---- */

static json_t *
versions_json(const kms_key_info *info)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < info->nversions; i++) {
        const kms_version_info *v = &info->versions[i];
        bool gone = v->state == KMS_VERSION_DESTROYED;
        json_t *o = json_pack("{s:I, s:I, s:s}", "version", (json_int_t)v->version, "created",
                              (json_int_t)v->created, "state", gone ? "destroyed" : "active");
        if (o != NULL && gone)
            json_object_set_new(o, "destroyed", json_integer(v->destroyed));
        if (o == NULL || json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static char *
meta_dump(const kms_meta *m)
{
    const kms_key_info *in = &m->info;
    char id[33];
    kms_hex(id, in->id, 16);
    json_t *doc = json_pack(
        "{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:o?}", "id", id, "created", (json_int_t)in->created,
        "rotated", (json_int_t)in->rotated, "latest_version", (json_int_t)in->latest_version,
        "min_decryption_version", (json_int_t)in->min_decryption_version, "auto_rotate_period",
        (json_int_t)in->auto_rotate_period, "deletion_time", (json_int_t)in->deletion_time,
        "versions", versions_json(in));
    if (doc != NULL && m->purging)
        json_object_set_new(doc, "purging", json_true());
    char *s = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    return s;
}

static int
corrupt(const char *name, const char *what)
{
    return sbx_error_set(SBX_EIO, "stored metadata of key %s is corrupt (%s)", name, what);
}

static int
parse_versions(kms_key_info *info, json_t *arr)
{
    if (!json_is_array(arr) || json_array_size(arr) != info->latest_version)
        return corrupt(info->name, "version list does not match latest_version");
    info->versions = calloc(info->latest_version, sizeof(*info->versions));
    if (info->versions == NULL)
        return sbx_error_set_nomem();
    info->nversions = info->latest_version;
    for (size_t i = 0; i < info->nversions; i++) {
        json_int_t ver, created, destroyed = 0;
        const char *state;
        kms_version_info *v = &info->versions[i];
        if (json_unpack(json_array_get(arr, i), "{s:I, s:I, s:s, s?I !}", "version", &ver,
                        "created", &created, "state", &state, "destroyed", &destroyed) != 0 ||
            ver != (json_int_t)i + 1)
            return corrupt(info->name, "bad version entry");
        v->version = (uint32_t)ver;
        v->created = created;
        v->destroyed = destroyed;
        if (strcmp(state, "destroyed") == 0)
            v->state = KMS_VERSION_DESTROYED;
        else if (strcmp(state, "active") != 0)
            return corrupt(info->name, "unknown version state");
    }
    return 0;
}

static int
parse_doc(kms_meta *m, json_t *doc)
{
    kms_key_info *info = &m->info;
    const char *id;
    json_int_t created, rotated, latest, min, period, deletion;
    int purging = 0;
    json_t *versions;
    if (json_unpack(doc, "{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s?b !}", "id", &id, "created",
                    &created, "rotated", &rotated, "latest_version", &latest,
                    "min_decryption_version", &min, "auto_rotate_period", &period, "deletion_time",
                    &deletion, "versions", &versions, "purging", &purging) != 0)
        return corrupt(info->name, "missing or mistyped field");
    if (strlen(id) != 32 || kms_unhex(info->id, 16, id) < 0)
        return corrupt(info->name, "bad id");
    if (latest < 1 || latest > UINT32_MAX || min < 1 || min > latest || period < 0 || deletion < 0)
        return corrupt(info->name, "value out of range");
    info->created = created;
    info->rotated = rotated;
    info->latest_version = (uint32_t)latest;
    info->min_decryption_version = (uint32_t)min;
    info->auto_rotate_period = period;
    info->deletion_time = deletion;
    m->purging = purging != 0;
    return parse_versions(info, versions);
}

static kms_meta *
meta_alloc(const char *name)
{
    kms_meta *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    atomic_init(&m->refs, 1);
    snprintf(m->info.name, sizeof(m->info.name), "%s", name);
    return m;
}

int
kms__meta_parse(const char *name, const uint8_t *val, size_t len, int64_t rev, kms_meta **out)
{
    json_error_t jerr;
    *out = NULL;
    kms_meta *m = meta_alloc(name);
    if (m == NULL)
        return sbx_error_set_nomem();
    m->rev = rev;
    json_t *doc = json_loadb((const char *)val, len, JSON_REJECT_DUPLICATES, &jerr);
    int err = doc != NULL ? parse_doc(m, doc) : corrupt(name, "not JSON");
    json_decref(doc);
    if (err < 0) {
        kms__meta_release(m);
        return err;
    }
    *out = m;
    return 0;
}

/* A private, editable copy of m (one reference). */
static int
meta_dup(kms_meta **out, const kms_meta *m)
{
    *out = meta_alloc(m->info.name);
    if (*out == NULL)
        return sbx_error_set_nomem();
    int err = kms__info_copy(&(*out)->info, &m->info);
    if (err < 0) {
        free(*out);
        *out = NULL;
        return err;
    }
    (*out)->rev = m->rev;
    (*out)->purging = m->purging;
    return 0;
}

/* Writes m if the row is still at expect_rev (KMS_REV_ABSENT: absent); installs it in the cache. */
static int
meta_put(kms_keystore *ks, kms_store *st, kms_meta *m, int64_t expect_rev)
{
    int64_t rev = 0;
    char *s = meta_dump(m);
    if (s == NULL)
        return sbx_error_set_nomem();
    int err = kms_store_put(st, "key", m->info.name, s, strlen(s), expect_rev, &rev);
    free(s);
    if (err < 0)
        return err;
    m->rev = rev;
    kms__meta_install(ks, m);
    return 0;
}

static int
copy_out(kms_key_info *out, const kms_meta *m)
{
    return out != NULL ? kms__info_copy(out, &m->info) : 0;
}

/* ---- version rows ---- */

/* Writes a new random secret for (id, version) unless a row exists; an existing row is adopted. */
static int
ver_create(kms_keystore *ks, kms_store *st, const uint8_t id[16], uint32_t version)
{
    uint8_t secret[32], sealed[KMS_VER_SEALED];
    char key[44];
    kms__ver_key(key, id, version);
    int err = sbx_random_bytes(secret, 32);
    if (err == 0)
        err = kms__ver_seal(ks, sealed, id, version, secret);
    if (err == 0)
        err = kms_store_put(st, "ver", key, sealed, sizeof(sealed), KMS_REV_ABSENT, NULL);
    if (err == SBX_ECONFLICT) // an orphan (crash) or a racing rotation's row: adopt it if it opens
        err = kms__ver_secret(ks, st, id, version, secret);
    SBX_WIPE_BUF(secret);
    return err;
}

static int
append_version(kms_key_info *info, int64_t now)
{
    kms_version_info *v = realloc(info->versions, (info->nversions + 1) * sizeof(*v));
    if (v == NULL)
        return sbx_error_set_nomem();
    info->versions = v;
    v[info->nversions] = (kms_version_info){info->latest_version + 1, now, 0, KMS_VERSION_ACTIVE};
    info->nversions++;
    info->latest_version++;
    info->rotated = now;
    return 0;
}

static int
check_period(int64_t period)
{
    if (period == 0 || (period >= 3600 && period <= PERIOD_MAX))
        return 0;
    return sbx_error_set(SBX_EINVAL, "auto_rotate_period must be 0 (off) or 3600..%lld seconds",
                         (long long)PERIOD_MAX);
}

/* ---- create, get, list ---- */

/* see keystore.h */
int
kms_key_create(kms_keystore *ks, kms_store *st, const char *name, const kms_key_options *opt,
               kms_key_info *out)
{
    if (out != NULL)
        memset(out, 0, sizeof(*out));
    int err = sbx_kms_key_name_check(name);
    if (err < 0)
        return err;
    int64_t period = opt != NULL ? opt->auto_rotate_period : 0, now = kms_now();
    err = check_period(period);
    kms_meta *m = err == 0 ? meta_alloc(name) : NULL;
    if (err == 0 && m == NULL)
        err = sbx_error_set_nomem();
    if (err == 0) {
        m->info.created = now;
        m->info.min_decryption_version = 1;
        m->info.auto_rotate_period = period;
        err = sbx_random_bytes(m->info.id, 16);
    }
    if (err == 0)
        err = append_version(&m->info, now);
    if (err == 0)
        err = ver_create(ks, st, m->info.id, 1);
    if (err == 0) {
        err = meta_put(ks, st, m, KMS_REV_ABSENT);
        if (err < 0) { // the name is taken (or storage failed): drop our orphan version row
            char key[44];
            kms__ver_key(key, m->info.id, 1);
            (void)kms_store_delete(st, "ver", key, KMS_REV_ANY);
        }
        if (err == SBX_ECONFLICT)
            err = sbx_error_set(SBX_EEXISTS,
                                "a key named %s exists (maybe scheduled for "
                                "deletion: restore it, or pick another name)",
                                name);
    }
    if (err == 0)
        err = copy_out(out, m);
    kms__meta_release(m);
    return err;
}

/* see keystore.h */
int
kms_key_get(kms_keystore *ks, kms_store *st, const char *name, kms_key_info *out)
{
    kms_meta *m = NULL;
    memset(out, 0, sizeof(*out));
    int err = kms__meta_load(ks, st, name, false, &m);
    if (err == 0)
        err = copy_out(out, m);
    kms__meta_release(m);
    return err;
}

struct list_ctx {
    int (*cb)(void *ctx, const kms_key_info *info);
    void *ctx;
};

static int
list_one(void *arg, const char *key, const uint8_t *val, size_t len, int64_t rev)
{
    struct list_ctx *lc = arg;
    kms_meta *m = NULL;
    int err = kms__meta_parse(key, val, len, rev, &m);
    if (err == 0)
        err = lc->cb(lc->ctx, &m->info);
    kms__meta_release(m);
    return err;
}

/* see keystore.h */
int
kms_key_list(kms_keystore *ks, kms_store *st, const char *prefix,
             int (*cb)(void *ctx, const kms_key_info *info), void *ctx)
{
    (void)ks;
    struct list_ctx lc = {cb, ctx};
    return kms_store_list(st, "key", prefix != NULL ? prefix : "", list_one, &lc);
}

/* ---- read, edit, compare-and-swap ---- */

/* One attempt of update(): SBX_ECONFLICT from the write itself comes back as *lost. */
static int
update_once(kms_keystore *ks, kms_store *st, const char *name, kms_edit_fn edit, void *arg,
            kms_key_info *out, bool *lost)
{
    kms_meta *cur = NULL, *m = NULL;
    int err = kms__meta_load(ks, st, name, true, &cur);
    if (err == 0)
        err = meta_dup(&m, cur);
    kms__meta_release(cur);
    if (err == 0)
        err = edit(ks, st, m, arg);
    if (err == 0) {
        err = meta_put(ks, st, m, m->rev);
        *lost = err == SBX_ECONFLICT;
    }
    if ((err == 0 || err == KMS_NOCHANGE) && copy_out(out, m) < 0)
        err = SBX_ENOMEM;
    kms__meta_release(m);
    return err;
}

/* Sleeps a random 0..(attempt + 1) ms so that racing writers spread out. */
static void
backoff(int attempt)
{
    uint64_t us = 0;
    if (sbx_random_uniform(&us, 1000 * (uint64_t)(attempt + 1)) == 0) {
        struct timespec ts = {0, (long)us * 1000};
        nanosleep(&ts, NULL);
    }
}

/* see keystore_internal.h */
int
kms__update(kms_keystore *ks, kms_store *st, const char *name, kms_edit_fn edit, void *arg,
            kms_key_info *out)
{
    if (out != NULL)
        memset(out, 0, sizeof(*out));
    for (int attempt = 0; attempt < KMS_RETRIES; attempt++) {
        bool lost = false;
        int err = update_once(ks, st, name, edit, arg, out, &lost);
        if (!lost)
            return err;
        backoff(attempt);
    }
    return sbx_error_set(SBX_ECONFLICT, "key %s kept changing while we wrote it; try again", name);
}

/* see keystore_internal.h */
int
kms__edit_rotate(kms_keystore *ks, kms_store *st, kms_meta *m, void *arg)
{
    struct kms_rotate_arg *ra = arg;
    kms_key_info *info = &m->info;
    if (info->deletion_time != 0)
        return kms__err_deleted(info);
    if (ra->due_only &&
        (info->auto_rotate_period == 0 || info->rotated + info->auto_rotate_period > ra->now))
        return KMS_NOCHANGE;
    if (info->latest_version == UINT32_MAX)
        return sbx_error_set(SBX_ECONFLICT, "key %s has the largest possible version", info->name);
    int err = ver_create(ks, st, info->id, info->latest_version + 1);
    return err < 0 ? err : append_version(info, ra->now);
}

/* see keystore.h */
int
kms_key_rotate(kms_keystore *ks, kms_store *st, const char *name, kms_key_info *out)
{
    struct kms_rotate_arg ra = {kms_now(), false};
    return kms__update(ks, st, name, kms__edit_rotate, &ra, out);
}

static int
edit_config(kms_keystore *ks, kms_store *st, kms_meta *m, void *arg)
{
    const kms_key_config *cfg = arg;
    kms_key_info *info = &m->info;
    (void)ks;
    (void)st;
    if (info->deletion_time != 0)
        return kms__err_deleted(info);
    if (cfg->set_min_decryption_version &&
        (cfg->min_decryption_version < 1 || cfg->min_decryption_version > info->latest_version))
        return sbx_error_set(SBX_EINVAL,
                             "min_decryption_version %u is out of range for key %s (1..%u, the "
                             "latest version)",
                             cfg->min_decryption_version, info->name, info->latest_version);
    if (cfg->set_auto_rotate_period && check_period(cfg->auto_rotate_period) < 0)
        return SBX_EINVAL;
    if (cfg->set_min_decryption_version)
        info->min_decryption_version = cfg->min_decryption_version;
    if (cfg->set_auto_rotate_period)
        info->auto_rotate_period = cfg->auto_rotate_period;
    return 0;
}

/* see keystore.h */
int
kms_key_configure(kms_keystore *ks, kms_store *st, const char *name, const kms_key_config *cfg,
                  kms_key_info *out)
{
    return kms__update(ks, st, name, edit_config, (void *)cfg, out);
}

static int
edit_delete(kms_keystore *ks, kms_store *st, kms_meta *m, void *arg)
{
    (void)ks;
    (void)st;
    if (m->purging)
        return sbx_error_set(SBX_ECONFLICT, "key %s is being purged", m->info.name);
    m->info.deletion_time = kms_now() + *(int64_t *)arg;
    return 0;
}

/* see keystore.h */
int
kms_key_schedule_delete(kms_keystore *ks, kms_store *st, const char *name, int64_t delay,
                        kms_key_info *out)
{
    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (delay < 0 || delay > PERIOD_MAX)
        return sbx_error_set(SBX_EINVAL, "deletion delay must be 0..%lld seconds",
                             (long long)PERIOD_MAX);
    return kms__update(ks, st, name, edit_delete, &delay, out);
}

static int
edit_restore(kms_keystore *ks, kms_store *st, kms_meta *m, void *arg)
{
    (void)ks;
    (void)st;
    (void)arg;
    if (m->purging)
        return sbx_error_set(SBX_ECONFLICT, "key %s is being purged; it cannot be restored",
                             m->info.name);
    if (m->info.deletion_time == 0)
        return sbx_error_set(SBX_ECONFLICT, "key %s is not scheduled for deletion", m->info.name);
    m->info.deletion_time = 0;
    return 0;
}

/* see keystore.h */
int
kms_key_restore(kms_keystore *ks, kms_store *st, const char *name, kms_key_info *out)
{
    return kms__update(ks, st, name, edit_restore, NULL, out);
}

static int
edit_destroy(kms_keystore *ks, kms_store *st, kms_meta *m, void *arg)
{
    uint32_t v = *(uint32_t *)arg;
    kms_key_info *info = &m->info;
    char key[44];
    if (v < 1 || v > info->latest_version)
        return sbx_error_set(SBX_ENOTFOUND, "key %s has no version %u", info->name, v);
    if (v == info->latest_version)
        return sbx_error_set(SBX_ECONFLICT,
                             "version %u is the latest version of key %s; rotate the key first", v,
                             info->name);
    // The secret goes first: a crash after this leaves a version marked active whose
    // secret is gone (decrypt says so; destroying again finishes), never the reverse.
    kms__ver_key(key, info->id, v);
    int err = kms_store_delete(st, "ver", key, KMS_REV_ANY);
    kms__vcache_evict(ks, info->id, v);
    if (err < 0 && err != SBX_ENOTFOUND)
        return err;
    kms_version_info *vi = &info->versions[v - 1];
    if (vi->state == KMS_VERSION_DESTROYED)
        return KMS_NOCHANGE;
    vi->state = KMS_VERSION_DESTROYED;
    vi->destroyed = kms_now();
    return 0;
}

/* see keystore.h */
int
kms_key_destroy_version(kms_keystore *ks, kms_store *st, const char *name, uint32_t version,
                        kms_key_info *out)
{
    int err = kms__update(ks, st, name, edit_destroy, &version, out);
    return err == KMS_NOCHANGE ? 0 : err;
}
