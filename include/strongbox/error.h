/*
 * strongbox/error.h - the error model of libstrongbox.
 *
 * Every fallible function returns an int: 0 on success, or one of the
 * negative SBX_E* codes below. The codes are stable: scripts and bindings may
 * depend on their values. Alongside the code, the library records a detail
 * message for the calling thread; read it with sbx_error_last() right after
 * the failing call. Messages name the problem and, where there is one, the
 * fix. They never contain key material.
 *
 *     if (sbx_age_decryptor_new(&dec, src, ids, n, NULL) < 0)
 *         fprintf(stderr, "sbx: %s\n", sbx_error_last()->message);
 */
#ifndef STRONGBOX_ERROR_H
#define STRONGBOX_ERROR_H

#include "strongbox/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Error codes. Values never change once released. */
enum sbx_error_code {
    SBX_OK = 0,
    SBX_EINVAL = -1,        /**< invalid argument or API misuse */
    SBX_ENOMEM = -2,        /**< out of memory */
    SBX_EIO = -3,           /**< read/write/open failed (see sys_errno) */
    SBX_EFORMAT = -4,       /**< malformed input (key string, encoding, file) */
    SBX_EAUTH = -5,         /**< authentication failed (bad tag, bad MAC) */
    SBX_ENOKEY = -6,        /**< a needed key or passphrase is missing */
    SBX_ENOTFOUND = -7,     /**< a named thing does not exist */
    SBX_ETOOBIG = -8,       /**< input exceeds a size limit */
    SBX_ECRYPTO = -9,       /**< the crypto library failed unexpectedly */
    SBX_EHEADER = -10,      /**< age: the header is malformed or unacceptable */
    SBX_ENOMATCH = -11,     /**< age: no identity matched any recipient stanza */
    SBX_EMAC = -12,         /**< age: the header MAC does not verify (tampered) */
    SBX_EPAYLOAD = -13,     /**< age: the payload is truncated, tampered or has trailing data */
    SBX_EARMOR = -14,       /**< age: the ASCII armor is malformed */
    SBX_EEXISTS = -15,      /**< the target already exists */
    SBX_ECANCELED = -16,    /**< the operation was canceled (e.g. no passphrase entered) */
    SBX_EUNSUPPORTED = -17, /**< a valid but unsupported feature was requested */
    SBX_ECONFLICT = -18,    /**< a concurrent change or the object's state conflicts; retry */
    SBX_EDENIED = -19       /**< the caller is not allowed to do this */
};

/** Detail of the last error on the calling thread. */
typedef struct sbx_error {
    int code;            /**< one of enum sbx_error_code */
    int sys_errno;       /**< errno at the time of the error, or 0 */
    const char *message; /**< human-readable detail; never NULL */
} sbx_error;

/**
 * @brief The last error recorded on this thread.
 * @return never NULL. When no error happened, code is SBX_OK and the message
 *         is "no error". The pointer stays valid until the next library call
 *         on this thread.
 */
SBX_EXTERN const sbx_error *sbx_error_last(void);

/**
 * @brief Record an error for the calling thread, for code that runs inside
 *        the library's callbacks (e.g. a passphrase callback explaining why
 *        it gave no passphrase). The library returns the callback's code
 *        unchanged, so the caller then sees this code and message.
 *        The arguments may include sbx_error_last()->message: the new message
 *        is formatted in full before the old one is replaced. To add context
 *        in front of the current message, sbx_error_prefix() says it shorter.
 * @param code a negative enum sbx_error_code value.
 * @return code, so a callback can write `return sbx_error_set(...)`.
 */
SBX_EXTERN int sbx_error_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/**
 * @brief As sbx_error_set(), and also records errno (sys_errno) and appends
 *        ": " and its description to the message. For extensions (key types
 *        through strongbox/sys/age.h, the key server) that fail on a system call.
 * @return code.
 */
SBX_EXTERN int sbx_error_set_sys(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/**
 * @brief Put context in front of this thread's current message: it becomes
 *        "<context>: <previous message>", recorded with code. For a caller
 *        (an extension, a key server) that passes a library failure on and
 *        says what it was doing:
 *
 *            if ((err = sbx_recipient_parse(&r, line)) < 0)
 *                return sbx_error_prefix(err, "line %zu", lineno);
 *
 *        sys_errno is kept (the previous message already describes it). The
 *        result is cut at the message size limit (511 bytes), losing the end
 *        of the previous message first.
 * @param code the code to record: the previous code to pass it on
 *        (sbx_error_last()->code, or the value the failing call returned), or
 *        another negative enum sbx_error_code value to reclassify it.
 * @param fmt printf-style context; its arguments may point into the current
 *        message (sbx_error_last()->message), as may sbx_error_set()'s.
 * @return code.
 */
SBX_EXTERN int sbx_error_prefix(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/**
 * @brief Record an OpenSSL failure: SBX_ECRYPTO with what and the first entry
 *        of OpenSSL's error queue, which is then emptied.
 * @return SBX_ECRYPTO.
 */
SBX_EXTERN int sbx_error_set_crypto(const char *what);

/** @brief Record SBX_ENOMEM with a static message (allocates nothing). @return SBX_ENOMEM. */
SBX_EXTERN int sbx_error_set_nomem(void);

/** @brief Forget the last error on this thread. */
SBX_EXTERN void sbx_error_clear(void);

/**
 * @brief A short, static description of an error code ("header MAC mismatch").
 * @param code a value of enum sbx_error_code (unknown values are described as such).
 * @return a static string, never NULL.
 */
SBX_EXTERN const char *sbx_strerror(int code);

/**
 * @brief A stable symbolic name for an error code ("SBX_EMAC").
 * @return a static string, never NULL.
 */
SBX_EXTERN const char *sbx_error_name(int code);

#ifdef __cplusplus
}
#endif
#endif
