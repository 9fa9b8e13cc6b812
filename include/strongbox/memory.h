/*
 * strongbox/memory.h - memory for secrets.
 *
 * Long-lived keys (identities, file keys) live in the OpenSSL secure heap:
 * pages locked in RAM (never swapped), excluded from core dumps, and wiped
 * when freed. The heap is small and serialised by one lock, so use it for
 * keys, not for bulk data; bulk buffers that held plaintext are wiped with
 * sbx_wipe() before they are freed.
 */
#ifndef STRONGBOX_MEMORY_H
#define STRONGBOX_MEMORY_H

#include "strongbox/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief Overwrite n bytes at p with zeros in a way the compiler cannot remove
 *        (OPENSSL_cleanse). NULL-safe when n is 0.
 */
SBX_EXTERN void sbx_wipe(void *p, size_t n);

/**
 * Wipe a fixed-size array or a struct variable. Refuses pointers at compile
 * time, so sizeof can never silently be the size of a pointer.
 */
#define SBX_WIPE_BUF(arr)                                                                          \
    do {                                                                                           \
        _Static_assert(!__builtin_types_compatible_p(__typeof__(arr), __typeof__(&(arr)[0])),      \
                       "SBX_WIPE_BUF needs an array, not a pointer");                              \
        sbx_wipe((arr), sizeof(arr));                                                              \
    } while (0)

/** Wipe the object a pointer points to (sizeof *ptr bytes). */
#define SBX_WIPE_CTX(ptr) sbx_wipe((ptr), sizeof(*(ptr)))

/**
 * @brief Allocate n zeroed bytes of secure memory.
 * @return the memory, or NULL when out of memory (the error is recorded).
 *         Free with sbx_secret_free().
 */
SBX_EXTERN void *sbx_secret_alloc(size_t n);

/** @brief Wipe and free memory from sbx_secret_alloc(). n must be the size allocated. NULL-safe. */
SBX_EXTERN void sbx_secret_free(void *p, size_t n);

/** @brief True when p was allocated from the locked secure heap. */
SBX_EXTERN bool sbx_secret_is_locked(const void *p);

/**
 * @brief Compare two byte strings in constant time (CRYPTO_memcmp).
 * @return true when equal.
 */
SBX_EXTERN bool sbx_equal(const void *a, const void *b, size_t n);

#ifdef __cplusplus
}
#endif
#endif
