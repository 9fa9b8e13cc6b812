/*
 * src/core/random.c - CSPRNG helpers over OpenSSL RAND.
 */
#include "strongbox/random.h"
#include "strongbox/memory.h"
#include "core/error.h"

#include <openssl/rand.h>

/* see strongbox/random.h */
int
sbx_random_bytes(void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n > 0) {
        int chunk = n > (1u << 30) ? (1 << 30) : (int)n;
        if (RAND_priv_bytes(p, chunk) != 1) {
            sbx_wipe(buf, (size_t)(p - (uint8_t *)buf));
            return sbx__error_crypto("random number generation");
        }
        p += chunk;
        n -= (size_t)chunk;
    }
    return 0;
}

/* see strongbox/random.h */
int
sbx_random_uniform(uint64_t *out, uint64_t bound)
{
    int err;
    *out = 0;
    if (bound == 0)
        return sbx__error(SBX_EINVAL, "sbx_random_uniform: bound must be at least 1");
    /* Reject values in the incomplete last block of size 2^64 mod bound. */
    uint64_t limit = UINT64_MAX - (UINT64_MAX % bound + 1) % bound;
    uint64_t v;
    do {
        if ((err = sbx_random_bytes(&v, sizeof(v))) < 0)
            return err;
    } while (v > limit);
    *out = v % bound;
    return 0;
}
