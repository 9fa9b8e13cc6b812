/*
 * tests/helpers.h - shared helpers for the cmocka tests.
 *
 *  - assert_sbx_ok(expr): expr must return 0; on failure prints the code and
 *    sbx_error_last()->message (clar's cl_git_pass).
 *  - assert_sbx_err(expr, code): expr must return exactly code; prints the
 *    message when it does not.
 *  - A seeded PRNG (xoshiro256**) for test data. test_seed_init() prints the
 *    seed; set SBX_TEST_SEED=<n> to replay a failed run with the same data.
 *
 * Include after <cmocka.h> and its prerequisites.
 */
#ifndef SBX_TESTS_HELPERS_H
#define SBX_TESTS_HELPERS_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "strongbox/error.h"

#define assert_sbx_ok(expr)                                                                        \
    do {                                                                                           \
        long rc_ = (long)(expr);                                                                   \
        if (rc_ != 0) {                                                                            \
            print_error("%s:%d: %s returned %ld (%s): %s\n", __FILE__, __LINE__, #expr, rc_,       \
                        sbx_error_name((int)rc_), sbx_error_last()->message);                      \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

#define assert_sbx_err(expr, code)                                                                 \
    do {                                                                                           \
        long rc_ = (long)(expr);                                                                   \
        if (rc_ != (long)(code)) {                                                                 \
            print_error("%s:%d: %s returned %ld (%s), expected %s: %s\n", __FILE__, __LINE__,      \
                        #expr, rc_, sbx_error_name((int)rc_), sbx_error_name((int)(code)),         \
                        sbx_error_last()->message);                                                \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

/* ---- seeded PRNG (xoshiro256**, seeded by splitmix64) ---- */

static uint64_t test_rng_state[4];
static uint64_t test_rng_seed;

static inline uint64_t
test_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Seed from SBX_TEST_SEED or the clock; prints the seed so a run can be replayed. */
static inline void
test_seed_init(const char *who)
{
    const char *env = getenv("SBX_TEST_SEED");
    uint64_t seed;
    if (env != NULL && *env != '\0') {
        seed = strtoull(env, NULL, 0);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed =
            (uint64_t)ts.tv_sec * 1000000007ULL ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
    }
    test_rng_seed = seed;
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        test_rng_state[i] = test_splitmix64(&x);
    printf("[ SEED     ] %s: seed %" PRIu64 " (replay with SBX_TEST_SEED=%" PRIu64 ")\n", who, seed,
           seed);
    fflush(stdout);
}

static inline uint64_t
test_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t
test_rand_u64(void)
{
    uint64_t *s = test_rng_state;
    uint64_t result = test_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = test_rotl(s[3], 45);
    return result;
}

/* A value in [0, bound) (tiny modulo bias is fine for test data). */
static inline size_t
test_rand_below(size_t bound)
{
    return bound == 0 ? 0 : (size_t)(test_rand_u64() % bound);
}

static inline void
test_rand_fill(void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n > 0) {
        uint64_t v = test_rand_u64();
        size_t k = n < 8 ? n : 8;
        memcpy(p, &v, k);
        p += k;
        n -= k;
    }
}

/* malloc that never returns NULL for a test (n may be 0). */
static inline void *
test_malloc_rand(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "out of memory\n");
        abort();
    }
    test_rand_fill(p, n);
    return p;
}

/* Lower-case hex of n bytes into out (2n+1 chars). */
static inline void
test_hex(char *out, const uint8_t *in, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Decode hex (no separators); returns the byte count or (size_t)-1. */
static inline size_t
test_unhex(uint8_t *out, size_t cap, const char *hex)
{
    size_t n = strlen(hex);
    if (n % 2 != 0 || n / 2 > cap)
        return (size_t)-1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return (size_t)-1;
        out[i] = (uint8_t)v;
    }
    return n / 2;
}

/* True when the memory [hay, hay+n) contains the NUL-terminated needle. */
static inline int
test_contains(const char *hay, const char *needle)
{
    return hay != NULL && needle != NULL && strstr(hay, needle) != NULL;
}

#endif
