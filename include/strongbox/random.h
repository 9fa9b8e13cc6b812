/*
 * strongbox/random.h - the CSPRNG (OpenSSL RAND_priv_bytes / RAND_bytes).
 */
#ifndef STRONGBOX_RANDOM_H
#define STRONGBOX_RANDOM_H

#include "strongbox/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief Fill buf with n bytes from the private CSPRNG, suitable for keys.
 * @return 0, or SBX_ECRYPTO if the generator failed (buf is then zeroed).
 */
SBX_EXTERN int sbx_random_bytes(void *buf, size_t n) SBX_WARN_UNUSED;

/**
 * @brief A uniformly distributed integer in [0, bound), without modulo bias
 *        (rejection sampling).
 * @param out receives the value (0 on error).
 * @param bound must be at least 1.
 * @return 0, SBX_EINVAL for bound 0, or SBX_ECRYPTO.
 */
SBX_EXTERN int sbx_random_uniform(uint64_t *out, uint64_t bound) SBX_WARN_UNUSED;

#ifdef __cplusplus
}
#endif
#endif
