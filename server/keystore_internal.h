/*
 * server/keystore_internal.h - what the keystore_*.c files share (internal to
 * the keystore; other modules use keystore.h only).
 *
 * Implementation notes:
 *  - Caches. Both caches are 4-way set-associative tables with LRU eviction
 *    inside a set, guarded by one mutex (critical sections are a few memcpys).
 *    * Version secrets: KMS_VCACHE_SLOTS entries; the secrets live in one
 *      sbx_secret_alloc block, wiped on eviction and on free. A cached secret
 *      is only used after the key's metadata (at most meta_ttl old) says the
 *      version is active, so a destroy on another node takes effect within
 *      meta_ttl.
 *    * Metadata: KMS_MCACHE_SLOTS immutable, reference-counted kms_meta
 *      objects keyed by name. A reader takes a reference and releases it, so
 *      nothing is copied on the data path. Every local write bumps wgen and
 *      installs its result; a reader that fetched from storage installs its
 *      result only when wgen did not move meanwhile (no stale overwrite).
 *  - Writes follow store.h's rule: no transactions, so the version row is
 *    written (put-if-absent) before the metadata that makes it reachable;
 *    the metadata changes by compare-and-swap on its revision.
 */
#ifndef SBX_SERVER_KEYSTORE_INTERNAL_H
#define SBX_SERVER_KEYSTORE_INTERNAL_H

#include "keystore.h"

#include "strongbox/aead.h"

#include <pthread.h>
#include <stdatomic.h>

#define KMS_VCACHE_SLOTS 1024 /* cached version secrets: 32 KiB of secure heap */
#define KMS_MCACHE_SLOTS 1024 /* cached metadata documents */
#define KMS_CACHE_WAYS   4
#define KMS_GCM_NONCE    12
#define KMS_GCM_TAG      16
#define KMS_VER_SEALED   (KMS_GCM_NONCE + 32 + KMS_GCM_TAG)
#define KMS_RETRIES      16 /* compare-and-swap attempts before SBX_ECONFLICT */

/* A parsed metadata document with its storage revision; immutable once shared. */
typedef struct kms_meta {
    atomic_int refs;
    int64_t rev;
    bool purging; /* a purge has started: restore is refused */
    kms_key_info info;
} kms_meta;

struct vslot {
    uint8_t id[16];
    uint32_t version;
    bool used;
    uint64_t tick;
};

struct mslot {
    kms_meta *meta; /* NULL when empty */
    int64_t stamp;  /* kms_mono_ms() when fetched */
    uint64_t tick;
};

struct kms_keystore {
    uint8_t *root; /* 32 bytes, sbx_secret_alloc */
    pthread_mutex_t lock;
    unsigned meta_ttl;
    uint64_t tick;
    uint64_t wgen;
    uint8_t *vsecrets; /* KMS_VCACHE_SLOTS * 32, sbx_secret_alloc */
    struct vslot vslots[KMS_VCACHE_SLOTS];
    struct mslot mslots[KMS_MCACHE_SLOTS];
};

/* One piece of associated data (strongbox/aead.h). */
typedef sbx_aead_part kms_aad;

/* scrypt cost (log2 N) for new unseal records; tests may lower it. */
extern unsigned kms__unseal_log_n;

/*
 * AES-256-GCM. seal: out gets nonce(12) || ct(len) || tag(16), random nonce.
 * open: in as above; out gets in_len - 28 bytes; SBX_EAUTH on mismatch (out
 * wiped). aad is naad pieces, concatenated.
 */
int kms__gcm_seal(uint8_t *out, const uint8_t key[32], const kms_aad *aad, size_t naad,
                  const uint8_t *in, size_t len);
int kms__gcm_open(uint8_t *out, const uint8_t key[32], const kms_aad *aad, size_t naad,
                  const uint8_t *in, size_t in_len);

/* Storage key of a version row: "<id hex>:<%010u>" (44 bytes with NUL). */
void kms__ver_key(char out[44], const uint8_t id[16], uint32_t version);
/* Seals a fresh version secret under the root key (out: KMS_VER_SEALED bytes). */
int kms__ver_seal(kms_keystore *ks, uint8_t out[KMS_VER_SEALED], const uint8_t id[16],
                  uint32_t version, const uint8_t secret[32]);
/* The secret of (id, version): cache, else storage. SBX_ENOTFOUND when its row is gone. */
int kms__ver_secret(kms_keystore *ks, kms_store *st, const uint8_t id[16], uint32_t version,
                    uint8_t secret[32]);
void kms__vcache_evict(kms_keystore *ks, const uint8_t id[16], uint32_t version);

/* Metadata: load (cache unless fresh), release, install after a local write, forget. */
int kms__meta_load(kms_keystore *ks, kms_store *st, const char *name, bool fresh, kms_meta **out);
void kms__meta_release(kms_meta *m);
void kms__meta_install(kms_keystore *ks, kms_meta *m);
void kms__meta_forget(kms_keystore *ks, const char *name);
int kms__meta_parse(const char *name, const uint8_t *val, size_t len, int64_t rev, kms_meta **out);
int kms__info_copy(kms_key_info *out, const kms_key_info *in);

/*
 * Read-edit-write with compare-and-swap: loads the key's metadata fresh, lets
 * edit change a private copy (or return KMS_NOCHANGE to write nothing, or an
 * error), writes it if the revision is unchanged, else retries with backoff
 * (KMS_RETRIES, then SBX_ECONFLICT). out (may be NULL) gets the result.
 */
#define KMS_NOCHANGE 1
typedef int (*kms_edit_fn)(kms_keystore *ks, kms_store *st, kms_meta *m, void *arg);
int kms__update(kms_keystore *ks, kms_store *st, const char *name, kms_edit_fn edit, void *arg,
                kms_key_info *out);

/* Rotation as an edit (arg: struct kms_rotate_arg). */
struct kms_rotate_arg {
    int64_t now;
    bool due_only; /* maintenance: rotate only if auto_rotate_period has passed */
};
int kms__edit_rotate(kms_keystore *ks, kms_store *st, kms_meta *m, void *arg);

/* "key NAME is scheduled for deletion at ...": SBX_ECONFLICT. */
int kms__err_deleted(const kms_key_info *info);

#endif
