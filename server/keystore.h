/*
 * server/keystore.h - the key server's key model (internal).
 *
 * Root key -> named keys (KEKs) with versions -> data keys and ciphertexts
 * (DESIGN.md section 6).
 *
 * - The root key (32 bytes) never touches storage. It comes from a 0600 key
 *   file or from an unseal passphrase through scrypt; storage keeps only a
 *   check value (namespace "meta", key "root-check") so that a wrong root key
 *   or passphrase is refused at start instead of failing every request.
 * - A named key has a random 128-bit id (never derived from a secret) and
 *   versions 1..latest. Each version's 32-byte secret is stored (namespace
 *   "ver", key "<id hex>:<version as %010u>") as AES-256-GCM under the root
 *   key, AAD = "sbx-kms-ver-v1" || id || u32be(version). The metadata
 *   (namespace "key", key = name) is a JSON document: id, created,
 *   latest_version, min_decryption_version, auto_rotate_period,
 *   deletion_time, and per-version created/state.
 * - Ciphertexts are text: "sbx:v<version>:<base64 of id(16) || nonce(12) ||
 *   AES-256-GCM ciphertext || tag(16)>". The GCM key is the version secret;
 *   AAD = "sbx-kms-ct-v1" || id || u32be(version) || canonical context. A
 *   ciphertext therefore only decrypts under the same key (not merely the same
 *   name: a deleted and recreated name has a new id), the same version and
 *   the same encryption context.
 * - Seed compatibility (keas.kmi's POST /new and POST /key): a KEK is the text
 *   "sbx-kek-1:<id hex 32>:<secret, base64url 43>". The server stores only the
 *   data key (32 bytes), sealed under HKDF(secret, id) and then under the root
 *   key (namespace "seed", key = id hex). The id is random, not a hash.
 *
 * Caching: a kms_keystore is shared by all server threads. It caches unwrapped
 * version secrets in locked memory and key metadata for at most meta_ttl
 * (default 1 s), so a change made by another node takes effect within that
 * time. Changes made through this keystore take effect at once.
 *
 * Errors (negative SBX_E*, message set, never containing key material):
 *   SBX_ENOTFOUND  no such key, version or seed KEK
 *   SBX_EEXISTS    a key of that name exists
 *   SBX_ECONFLICT  the key's state forbids it (scheduled for deletion,
 *                  destroying the latest version, lowering min version below
 *                  a destroyed one is fine...) or a race that retries ran out
 *   SBX_EINVAL     bad name or option
 *   SBX_EFORMAT    malformed ciphertext or KEK text
 *   SBX_EAUTH      ciphertext does not authenticate under this key/context
 *   SBX_ENOKEY     the ciphertext's version is retired (below the minimum
 *                  decryption version) or destroyed
 *   SBX_ETOOBIG    plaintext over KMS_ENCRYPT_MAX
 *   SBX_EIO        storage failed
 */
#ifndef SBX_SERVER_KEYSTORE_H
#define SBX_SERVER_KEYSTORE_H

#include "store.h"

#include "strongbox/kms_name.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KMS_NAME_MAX             SBX_KMS_KEY_NAME_MAX /* the rule: strongbox/kms_name.h */
#define KMS_ENCRYPT_MAX          (32u << 10)          /* largest plaintext of /encrypt */
#define KMS_CIPHERTEXT_MAX       (64u << 10)
#define KMS_DEFAULT_DELETE_DELAY (7 * 86400) /* soft delete: purge after 7 days */

typedef struct kms_keystore kms_keystore;

/* ---- root key ---- */

/* Reads a root key file: 0600 (refused if group/other can read), 64 hex chars + optional newline.
 */
int kms_root_key_read(uint8_t root[32], const char *path);

/*
 * A 32-byte key in a file of 64 hex digits and a newline (the root key, an
 * exported audit key). Reading refuses a file group or others can read;
 * writing creates it 0600 at open (exclusive), fsyncs it and its directory.
 * what names the key in messages ("root key", "audit key").
 */
int kms_key_file_read(uint8_t key[32], const char *path, const char *what);
int kms_key_file_write(const uint8_t key[32], const char *path, const char *what);

/* Creates a new random root key file (0600 at open, exclusive, fsynced). */
int kms_root_key_create(uint8_t root[32], const char *path);

/*
 * Derives the root key from an unseal passphrase: scrypt (N=2^17, r=8, p=1)
 * with a random salt kept in storage (namespace "meta", key "unseal"),
 * created on first use.
 */
int kms_root_key_from_passphrase(uint8_t root[32], kms_store *st, const char *pass, size_t len);

/*
 * Checks root against storage's check value, creating it when absent.
 * SBX_EAUTH (message: "wrong root key or unseal passphrase for this
 * database") when it does not match.
 */
int kms_root_key_check(kms_store *st, const uint8_t root[32]);

/* ---- keystore ---- */

/* Creates the shared keystore; root is copied into locked memory. */
int kms_keystore_new(kms_keystore **out, const uint8_t root[32]);
void kms_keystore_free(kms_keystore *ks);
/* How long key metadata may be served from cache (milliseconds; 0 = never cache). */
void kms_keystore_set_meta_ttl(kms_keystore *ks, unsigned ms);
/* Seals/opens small secrets under the root key (TLS ticket keys, etc.): out gets len + 28 bytes. */
int kms_keystore_seal(kms_keystore *ks, const char *purpose, const uint8_t *in, size_t len,
                      uint8_t **out, size_t *out_len);
int kms_keystore_open(kms_keystore *ks, const char *purpose, const uint8_t *in, size_t len,
                      uint8_t **out, size_t *out_len); /* *out from sbx_secret_alloc(*out_len) */

enum kms_version_state { KMS_VERSION_ACTIVE = 0, KMS_VERSION_DESTROYED = 1 };

typedef struct {
    uint32_t version;
    int64_t created;   /* unix seconds */
    int64_t destroyed; /* unix seconds, 0 if not destroyed */
    enum kms_version_state state;
} kms_version_info;

typedef struct {
    char name[KMS_NAME_MAX + 1];
    uint8_t id[16];
    int64_t created;
    int64_t rotated; /* when the latest version was made */
    uint32_t latest_version;
    uint32_t min_decryption_version; /* >= 1 */
    int64_t auto_rotate_period;      /* seconds; 0 = off */
    int64_t deletion_time;           /* unix seconds when it will be purged; 0 = not scheduled */
    size_t nversions;
    kms_version_info *versions; /* ascending by version; malloc'd */
} kms_key_info;

void kms_key_info_dispose(kms_key_info *info);

typedef struct {
    int64_t auto_rotate_period; /* seconds; 0 = off; otherwise >= 3600 */
} kms_key_options;

int kms_key_create(kms_keystore *ks, kms_store *st, const char *name, const kms_key_options *opt,
                   kms_key_info *out);
int kms_key_get(kms_keystore *ks, kms_store *st, const char *name, kms_key_info *out);
/* Calls cb for every key name (soft-deleted ones too) whose name starts with prefix. */
int kms_key_list(kms_keystore *ks, kms_store *st, const char *prefix,
                 int (*cb)(void *ctx, const kms_key_info *info), void *ctx);
int kms_key_rotate(kms_keystore *ks, kms_store *st, const char *name, kms_key_info *out);

typedef struct {
    bool set_min_decryption_version;
    uint32_t min_decryption_version; /* 1..latest */
    bool set_auto_rotate_period;
    int64_t auto_rotate_period;
} kms_key_config;
int kms_key_configure(kms_keystore *ks, kms_store *st, const char *name, const kms_key_config *cfg,
                      kms_key_info *out);

/* Soft delete: data operations stop at once; the key is purged delay seconds later. */
int kms_key_schedule_delete(kms_keystore *ks, kms_store *st, const char *name, int64_t delay,
                            kms_key_info *out);
/* Cancels a scheduled deletion. SBX_ECONFLICT if none is scheduled. */
int kms_key_restore(kms_keystore *ks, kms_store *st, const char *name, kms_key_info *out);
/* Crypto-shredding: deletes the version's secret for good. The latest version cannot be destroyed.
 */
int kms_key_destroy_version(kms_keystore *ks, kms_store *st, const char *name, uint32_t version,
                            kms_key_info *out);
/*
 * Housekeeping, run periodically by one thread: rotates keys whose
 * auto_rotate_period has passed and purges keys whose deletion_time has
 * passed (all versions' secrets, then the metadata). *rotated and *purged (may be
 * NULL) get counts. Safe to run on several nodes at once.
 */
int kms_keystore_maintain(kms_keystore *ks, kms_store *st, int64_t now, unsigned *rotated,
                          unsigned *purged);

/* ---- encryption context ---- */

/*
 * Canonical bytes of an encryption context: pairs sorted by key (bytewise),
 * each as u32be(len) || key || u32be(len) || value. Duplicate keys are
 * SBX_EINVAL. n = 0 gives an empty buffer (*out may be NULL, *out_len 0).
 */
int kms_context_canonical(const char *const *keys, const char *const *values, size_t n,
                          uint8_t **out, size_t *out_len);

/* ---- data plane ---- */

/*
 * Generates a data key of bytes (16, 32 or 64) and wraps it under the key's
 * latest version. dek (may be NULL for wrapped only) gets the plaintext key;
 * *ciphertext (malloc'd text) the wrapped form; *version the version used.
 */
int kms_datakey(kms_keystore *ks, kms_store *st, const char *name, const uint8_t *ctx,
                size_t ctx_len, size_t bytes, uint8_t *dek, char **ciphertext, uint32_t *version);
int kms_encrypt(kms_keystore *ks, kms_store *st, const char *name, const uint8_t *ctx,
                size_t ctx_len, const uint8_t *pt, size_t pt_len, char **ciphertext,
                uint32_t *version);
/* *pt is from sbx_secret_alloc(*pt_len + 1) (NUL-terminated); free with sbx_secret_free. */
int kms_decrypt(kms_keystore *ks, kms_store *st, const char *name, const uint8_t *ctx,
                size_t ctx_len, const char *ciphertext, uint8_t **pt, size_t *pt_len,
                uint32_t *version);
/* Decrypts and re-encrypts under the latest version without returning plaintext. */
int kms_rewrap(kms_keystore *ks, kms_store *st, const char *name, const uint8_t *ctx,
               size_t ctx_len, const char *ciphertext, char **out, uint32_t *version);

/* ---- seed compatibility ---- */

/* Makes a new seed KEK; *kek_text (malloc'd, to be wiped) gets its text. */
int kms_seed_new(kms_keystore *ks, kms_store *st, char **kek_text);
/* Returns the data key of a seed KEK. SBX_ENOTFOUND for unknown id or wrong secret; SBX_EFORMAT for
 * malformed text. */
int kms_seed_key(kms_keystore *ks, kms_store *st, const char *kek_text, size_t len,
                 uint8_t dek[32]);
/* Number of keys held: seed KEKs plus named keys. */
int kms_key_count(kms_store *st, int64_t *n);

#endif
