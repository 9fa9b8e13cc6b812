/*
 * strongbox/common.h - definitions shared by every public header:
 * export macros, the library version, initialisation, and sbx_buf.
 */
#ifndef STRONGBOX_COMMON_H
#define STRONGBOX_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define SBX_EXTERN      __attribute__((visibility("default")))
#define SBX_WARN_UNUSED __attribute__((warn_unused_result))
#else
#define SBX_EXTERN
#define SBX_WARN_UNUSED
#endif

#define SBX_VERSION_STRING "0.1.0"

/**
 * @brief Initialise the library: the OpenSSL secure heap for long-lived keys.
 *
 * Safe to call more than once and from several threads; the first call does
 * the work. Every other entry point calls it implicitly, so calling it is
 * optional, but doing so early lets a program see whether key memory can be
 * locked (the secure heap is created before the process grows).
 *
 * @return 0 when the secure heap is active and locked; SBX_EUNSUPPORTED when it
 *         works but its pages could not be locked (mlock limit) or it could not
 *         be created at all, in which case keys fall back to ordinary memory
 *         that is still wiped on free. The detail message says which.
 */
SBX_EXTERN int sbx_init(void);

/**
 * @brief Turn off core dumps for this process (RLIMIT_CORE = 0 and
 *        PR_SET_DUMPABLE = 0), so that keys in memory never reach a core file.
 * @return 0, or SBX_EIO when the kernel refused.
 */
SBX_EXTERN int sbx_disable_core_dumps(void);

/**
 * A growable byte buffer owned by the caller. Initialise with SBX_BUF_INIT;
 * release with sbx_buf_dispose(), which wipes the contents first, so an
 * sbx_buf may safely hold secrets (such as an encoded secret key).
 */
typedef struct sbx_buf {
    uint8_t *ptr; /**< data, or NULL when empty */
    size_t len;   /**< bytes used */
    size_t cap;   /**< bytes allocated */
} sbx_buf;

#define SBX_BUF_INIT                                                                               \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

/** @brief Append len bytes. @return 0 or SBX_ENOMEM. */
SBX_EXTERN int sbx_buf_append(sbx_buf *buf, const void *data, size_t len);

/** @brief Make room for at least extra more bytes. @return 0 or SBX_ENOMEM. */
SBX_EXTERN int sbx_buf_reserve(sbx_buf *buf, size_t extra);

/** @brief Wipe and free the contents; buf is left empty and reusable. NULL-safe. */
SBX_EXTERN void sbx_buf_dispose(sbx_buf *buf);

/**
 * Passphrase callback: append the passphrase to out (an empty sbx_buf) and
 * return 0, or return a negative code (e.g. SBX_ECANCELED), ideally recorded
 * with sbx_error_set() (error.h) to explain why. The operation then fails with exactly
 * that code and message. The library wipes out after use.
 */
typedef int (*sbx_passphrase_cb)(sbx_buf *out, void *payload);

#ifdef __cplusplus
}
#endif
#endif
