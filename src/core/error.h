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

/* The public extension helpers (strongbox/error.h) under their internal names. */
#define sbx__error_sys    sbx_error_set_sys
#define sbx__error_crypto sbx_error_set_crypto
#define sbx__error_nomem  sbx_error_set_nomem
/* "<context>: <current message>" recorded with code (never formats onto the buffer it reads). */
#define sbx__error_prefix sbx_error_prefix

#endif
