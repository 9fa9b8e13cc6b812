/*
 * server/keystore.c - the shared keystore: root key, AES-256-GCM sealing,
 * the version-secret and metadata caches (see keystore_internal.h for the
 * implementation notes, keystore.h for the model).
 */
#include "keystore_internal.h"
#include "util.h"

#include "strongbox/error.h"
#include "strongbox/aead.h"
#include "strongbox/kms_name.h"
#include "strongbox/memory.h"
#include "strongbox/random.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
kms__gcm_seal(uint8_t *out, const uint8_t key[32], const kms_aad *aad, size_t naad,
              const uint8_t *in, size_t len)
{
    int err = sbx_random_bytes(out, KMS_GCM_NONCE);
    if (err < 0)
        return err;
    return sbx_aead_gcm_seal(out + KMS_GCM_NONCE, out + KMS_GCM_NONCE + len, key, out, aad, naad,
                             in, len);
}

int
kms__gcm_open(uint8_t *out, const uint8_t key[32], const kms_aad *aad, size_t naad,
              const uint8_t *in, size_t in_len)
{
    if (in_len < KMS_GCM_NONCE + KMS_GCM_TAG)
        return sbx_error_set(SBX_EAUTH, "sealed value too short");
    size_t len = in_len - KMS_GCM_NONCE - KMS_GCM_TAG;
    return sbx_aead_gcm_open(out, key, in, aad, naad, in + KMS_GCM_NONCE, len,
                             in + in_len - KMS_GCM_TAG);
}

/* ---- keystore ---- */

/* see keystore.h */
int
kms_keystore_new(kms_keystore **out, const uint8_t root[32])
{
    *out = NULL;
    kms_keystore *ks = calloc(1, sizeof(*ks));
    if (ks == NULL)
        return sbx_error_set_nomem();
    ks->root = sbx_secret_alloc(32);
    ks->vsecrets = sbx_secret_alloc((size_t)KMS_VCACHE_SLOTS * 32);
    if (ks->root == NULL || ks->vsecrets == NULL || pthread_mutex_init(&ks->lock, NULL) != 0) {
        sbx_secret_free(ks->root, 32);
        sbx_secret_free(ks->vsecrets, (size_t)KMS_VCACHE_SLOTS * 32);
        free(ks);
        return sbx_error_set_nomem();
    }
    memcpy(ks->root, root, 32);
    ks->meta_ttl = 1000;
    *out = ks;
    return 0;
}

/* see keystore.h */
void
kms_keystore_free(kms_keystore *ks)
{
    if (ks == NULL)
        return;
    for (size_t i = 0; i < KMS_MCACHE_SLOTS; i++)
        kms__meta_release(ks->mslots[i].meta);
    sbx_secret_free(ks->vsecrets, (size_t)KMS_VCACHE_SLOTS * 32);
    sbx_secret_free(ks->root, 32);
    pthread_mutex_destroy(&ks->lock);
    free(ks);
}

/* see keystore.h */
void
kms_keystore_set_meta_ttl(kms_keystore *ks, unsigned ms)
{
    pthread_mutex_lock(&ks->lock);
    ks->meta_ttl = ms;
    if (ms == 0) {
        for (size_t i = 0; i < KMS_MCACHE_SLOTS; i++) {
            kms__meta_release(ks->mslots[i].meta);
            ks->mslots[i].meta = NULL;
        }
    }
    pthread_mutex_unlock(&ks->lock);
}

static const char seal_label[] = "sbx-kms-seal-v1";

/* see keystore.h */
int
kms_keystore_seal(kms_keystore *ks, const char *purpose, const uint8_t *in, size_t len,
                  uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (len > KMS_STORE_VALUE_MAX)
        return sbx_error_set(SBX_ETOOBIG, "value to seal is over %u bytes", KMS_STORE_VALUE_MAX);
    kms_aad aad[2] = {{seal_label, sizeof(seal_label)}, {purpose, strlen(purpose)}};
    uint8_t *buf = malloc(len + KMS_GCM_NONCE + KMS_GCM_TAG);
    if (buf == NULL)
        return sbx_error_set_nomem();
    int err = kms__gcm_seal(buf, ks->root, aad, 2, in, len);
    if (err < 0) {
        free(buf);
        return err;
    }
    *out = buf;
    *out_len = len + KMS_GCM_NONCE + KMS_GCM_TAG;
    return 0;
}

/* see keystore.h */
int
kms_keystore_open(kms_keystore *ks, const char *purpose, const uint8_t *in, size_t len,
                  uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (len < KMS_GCM_NONCE + KMS_GCM_TAG || len > KMS_STORE_VALUE_MAX)
        return sbx_error_set(SBX_EAUTH, "sealed %s value has an impossible length", purpose);
    size_t n = len - KMS_GCM_NONCE - KMS_GCM_TAG;
    kms_aad aad[2] = {{seal_label, sizeof(seal_label)}, {purpose, strlen(purpose)}};
    uint8_t *buf = sbx_secret_alloc(n);
    if (buf == NULL)
        return SBX_ENOMEM;
    int err = kms__gcm_open(buf, ks->root, aad, 2, in, len);
    if (err < 0) {
        sbx_secret_free(buf, n);
        return err == SBX_EAUTH ? sbx_error_set(SBX_EAUTH,
                                                "sealed %s value does not authenticate under the "
                                                "root key (tampered, or another root key)",
                                                purpose)
                                : err;
    }
    *out = buf;
    *out_len = n;
    return 0;
}

/* ---- version secrets ---- */

static const char ver_label[] = "sbx-kms-ver-v1";

void
kms__ver_key(char out[44], const uint8_t id[16], uint32_t version)
{
    kms_hex(out, id, 16);
    snprintf(out + 32, 12, ":%010u", version);
}

static void
ver_aad(kms_aad aad[3], uint8_t be[4], const uint8_t id[16], uint32_t version)
{
    be[0] = (uint8_t)(version >> 24);
    be[1] = (uint8_t)(version >> 16);
    be[2] = (uint8_t)(version >> 8);
    be[3] = (uint8_t)version;
    aad[0] = (kms_aad){ver_label, sizeof(ver_label) - 1};
    aad[1] = (kms_aad){id, 16};
    aad[2] = (kms_aad){be, 4};
}

int
kms__ver_seal(kms_keystore *ks, uint8_t out[KMS_VER_SEALED], const uint8_t id[16], uint32_t version,
              const uint8_t secret[32])
{
    kms_aad aad[3];
    uint8_t be[4];
    ver_aad(aad, be, id, version);
    return kms__gcm_seal(out, ks->root, aad, 3, secret, 32);
}

static size_t
vset(const uint8_t id[16], uint32_t version)
{
    uint64_t h;
    memcpy(&h, id, 8);
    h ^= (uint64_t)version * 0x9e3779b97f4a7c15ULL;
    return (size_t)(h % (KMS_VCACHE_SLOTS / KMS_CACHE_WAYS)) * KMS_CACHE_WAYS;
}

/* Under lock: the slot holding (id, version), or -1. */
static long
vfind(kms_keystore *ks, const uint8_t id[16], uint32_t version)
{
    size_t base = vset(id, version);
    for (size_t i = base; i < base + KMS_CACHE_WAYS; i++) {
        struct vslot *s = &ks->vslots[i];
        if (s->used && s->version == version && memcmp(s->id, id, 16) == 0)
            return (long)i;
    }
    return -1;
}

static bool
vcache_get(kms_keystore *ks, const uint8_t id[16], uint32_t version, uint8_t secret[32])
{
    pthread_mutex_lock(&ks->lock);
    long i = vfind(ks, id, version);
    if (i >= 0) {
        memcpy(secret, ks->vsecrets + (size_t)i * 32, 32);
        ks->vslots[i].tick = ++ks->tick;
    }
    pthread_mutex_unlock(&ks->lock);
    return i >= 0;
}

static void
vcache_put(kms_keystore *ks, const uint8_t id[16], uint32_t version, const uint8_t secret[32])
{
    pthread_mutex_lock(&ks->lock);
    long i = vfind(ks, id, version);
    if (i < 0) {
        size_t base = vset(id, version), victim = base;
        for (size_t j = base; j < base + KMS_CACHE_WAYS; j++) {
            if (!ks->vslots[j].used) {
                victim = j;
                break;
            }
            if (ks->vslots[j].tick < ks->vslots[victim].tick)
                victim = j;
        }
        i = (long)victim;
        memcpy(ks->vslots[i].id, id, 16);
        ks->vslots[i].version = version;
        ks->vslots[i].used = true;
    }
    memcpy(ks->vsecrets + (size_t)i * 32, secret, 32);
    ks->vslots[i].tick = ++ks->tick;
    pthread_mutex_unlock(&ks->lock);
}

void
kms__vcache_evict(kms_keystore *ks, const uint8_t id[16], uint32_t version)
{
    pthread_mutex_lock(&ks->lock);
    long i = vfind(ks, id, version);
    if (i >= 0) {
        sbx_wipe(ks->vsecrets + (size_t)i * 32, 32);
        memset(&ks->vslots[i], 0, sizeof(ks->vslots[i]));
    }
    pthread_mutex_unlock(&ks->lock);
}

static int
ver_unseal(kms_keystore *ks, const uint8_t id[16], uint32_t version, const uint8_t *val, size_t len,
           uint8_t secret[32])
{
    kms_aad aad[3];
    uint8_t be[4];
    char idhex[33];
    if (len != KMS_VER_SEALED)
        return sbx_error_set(SBX_EIO, "stored secret of a key version has a bad length (%zu)", len);
    ver_aad(aad, be, id, version);
    if (kms__gcm_open(secret, ks->root, aad, 3, val, len) == 0)
        return 0;
    kms_hex(idhex, id, 16);
    return sbx_error_set(SBX_EIO,
                         "stored secret of key id %s version %u does not authenticate under the "
                         "root key (tampered or moved row, or another root key)",
                         idhex, version);
}

int
kms__ver_secret(kms_keystore *ks, kms_store *st, const uint8_t id[16], uint32_t version,
                uint8_t secret[32])
{
    char key[44];
    uint8_t *val = NULL;
    size_t len = 0;
    if (vcache_get(ks, id, version, secret))
        return 0;
    kms__ver_key(key, id, version);
    int err = kms_store_get(st, "ver", key, &val, &len, NULL);
    if (err == 0)
        err = ver_unseal(ks, id, version, val, len, secret);
    free(val);
    if (err == 0)
        vcache_put(ks, id, version, secret);
    return err;
}

/* ---- metadata cache ---- */

void
kms__meta_release(kms_meta *m)
{
    if (m == NULL || atomic_fetch_sub(&m->refs, 1) != 1)
        return;
    kms_key_info_dispose(&m->info);
    free(m);
}

static size_t
mset(const char *name)
{
    uint64_t h = 1469598103934665603ULL; // FNV-1a
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return (size_t)(h % (KMS_MCACHE_SLOTS / KMS_CACHE_WAYS)) * KMS_CACHE_WAYS;
}

/* Under lock: slot of name, or the victim to replace when absent (*found false). */
static struct mslot *
mfind(kms_keystore *ks, const char *name, bool *found)
{
    size_t base = mset(name);
    struct mslot *victim = NULL;
    for (size_t i = base; i < base + KMS_CACHE_WAYS; i++) {
        struct mslot *s = &ks->mslots[i];
        if (s->meta != NULL && strcmp(s->meta->info.name, name) == 0) {
            *found = true;
            return s;
        }
        if (victim == NULL || (victim->meta != NULL && (s->meta == NULL || s->tick < victim->tick)))
            victim = s;
    }
    *found = false;
    return victim;
}

/*
 * Under lock: puts m (taking a new reference) into the cache, unless the cache
 * already holds a newer revision of the same key: two threads that rotate at
 * once may install their results in either order, and the older one must not
 * replace the newer (a read would then see a stale latest version until
 * meta_ttl). Revisions only grow for a key id; a re-created key has a new id.
 */
static void
minstall_locked(kms_keystore *ks, kms_meta *m)
{
    bool found;
    if (ks->meta_ttl == 0)
        return;
    struct mslot *s = mfind(ks, m->info.name, &found);
    if (found && s->meta != NULL && s->meta->rev > m->rev &&
        memcmp(s->meta->info.id, m->info.id, 16) == 0)
        return; // a concurrent writer or reader already installed something newer
    kms__meta_release(s->meta);
    atomic_fetch_add(&m->refs, 1);
    s->meta = m;
    s->stamp = kms_mono_ms();
    s->tick = ++ks->tick;
}

void
kms__meta_install(kms_keystore *ks, kms_meta *m)
{
    pthread_mutex_lock(&ks->lock);
    ks->wgen++;
    minstall_locked(ks, m);
    pthread_mutex_unlock(&ks->lock);
}

void
kms__meta_forget(kms_keystore *ks, const char *name)
{
    bool found;
    pthread_mutex_lock(&ks->lock);
    ks->wgen++;
    struct mslot *s = mfind(ks, name, &found);
    if (found) {
        kms__meta_release(s->meta);
        s->meta = NULL;
    }
    pthread_mutex_unlock(&ks->lock);
}

/* A cached entry younger than meta_ttl, with a reference taken; or NULL. *gen gets wgen. */
static kms_meta *
mcache_get(kms_keystore *ks, const char *name, uint64_t *gen)
{
    bool found;
    kms_meta *m = NULL;
    pthread_mutex_lock(&ks->lock);
    *gen = ks->wgen;
    if (ks->meta_ttl > 0) {
        struct mslot *s = mfind(ks, name, &found);
        if (found && kms_mono_ms() - s->stamp < (int64_t)ks->meta_ttl) {
            m = s->meta;
            atomic_fetch_add(&m->refs, 1);
            s->tick = ++ks->tick;
        }
    }
    pthread_mutex_unlock(&ks->lock);
    return m;
}

int
kms__meta_load(kms_keystore *ks, kms_store *st, const char *name, bool fresh, kms_meta **out)
{
    uint64_t gen;
    uint8_t *val = NULL;
    size_t len = 0;
    int64_t rev = 0;
    *out = NULL;
    int err = sbx_kms_key_name_check(name);
    if (err < 0)
        return err;
    kms_meta *m = mcache_get(ks, name, &gen);
    if (m != NULL && !fresh) {
        *out = m;
        return 0;
    }
    kms__meta_release(m);
    err = kms_store_get(st, "key", name, &val, &len, &rev);
    if (err == SBX_ENOTFOUND) {
        kms__meta_forget(ks, name);
        return sbx_error_set(SBX_ENOTFOUND, "no key named %s", name);
    }
    if (err == 0)
        err = kms__meta_parse(name, val, len, rev, &m);
    free(val);
    if (err < 0)
        return err;
    pthread_mutex_lock(&ks->lock);
    if (ks->wgen == gen) // no local write since we looked: ours is not older than the cache
        minstall_locked(ks, m);
    pthread_mutex_unlock(&ks->lock);
    *out = m;
    return 0;
}
