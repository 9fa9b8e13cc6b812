/*
 * src/kms/cache.h - internals of the data-key cache (see strongbox/kms.h),
 * exposed so the tests can run it over fake fetchers instead of a server.
 * Not part of the public API.
 */
#ifndef SBX_KMS_CACHE_H
#define SBX_KMS_CACHE_H

#include "strongbox/kms.h"

/*
 * Where a cache gets what it does not hold: the shapes of
 * sbx_kms_datakey_new() and sbx_kms_decrypt(), with the client replaced by
 * fetch_ctx. Called without the cache's lock held, possibly from several
 * threads at once (for different partitions). The datakey result is owned
 * by the cache afterwards and released with sbx_kms_datakey_dispose(), so a
 * fake must allocate it as the client does: plaintext from
 * sbx_secret_alloc(plaintext_len), ciphertext from malloc().
 */
typedef struct sbx_kms__cache_fetch {
    int (*datakey)(void *fetch_ctx, const char *name, const sbx_kms_pair *ctx, size_t n,
                   unsigned bits, bool wrapped_only, sbx_kms_datakey *out);
    int (*decrypt)(void *fetch_ctx, const char *name, const char *ciphertext,
                   const sbx_kms_pair *ctx, size_t n, sbx_buf *out, unsigned *key_version);
} sbx_kms__cache_fetch;

/*
 * A cache over fetch (copied) and fetch_ctx (borrowed). limits as in
 * sbx_kms_cache_new(). 0, SBX_EINVAL, SBX_ENOMEM.
 */
int sbx_kms__cache_new_with(sbx_kms_cache **out, const sbx_kms__cache_fetch *fetch, void *fetch_ctx,
                            const sbx_kms_cache_limits *limits);

/*
 * The bucket hash: SipHash-2-4 (64-bit output, read little-endian) of len
 * bytes under the cache's key. 0 or SBX_ECRYPTO.
 */
int sbx_kms__cache_hash(const sbx_kms_cache *cache, const uint8_t *p, size_t len, uint64_t *out);
/* Replaces the cache's random hash key (tests only: known-answer checks). 0 or SBX_ECRYPTO. */
int sbx_kms__cache_set_hash_key(sbx_kms_cache *cache, const uint8_t key[16]);

#endif
