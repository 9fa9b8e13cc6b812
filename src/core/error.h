/*
 * src/core/error.h - recording errors (internal).
 *
 *     return sbx__error(SBX_EFORMAT, "stanza %zu: bad base64", i);
 *
 * sbx__error formats the per-thread message and returns the code, so a
 * failure is recorded and propagated in one statement.
 */
#ifndef SBX_CORE_ERROR_H
#define SBX_CORE_ERROR_H

#include "strongbox/error.h"

/* Record code with a printf-style message; returns code (the public sbx_error_set). */
#define sbx__error sbx_error_set

/* Like sbx__error, and also records errno and appends ": strerror(errno)". */
int sbx__error_sys(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Record an OpenSSL failure (drains the OpenSSL error queue); returns SBX_ECRYPTO. */
int sbx__error_crypto(const char *what);

/* Record SBX_ENOMEM with the static message; returns SBX_ENOMEM. */
int sbx__error_nomem(void);

#endif
