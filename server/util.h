/*
 * server/util.h - small helpers shared by the key server's modules (internal).
 */
#ifndef SBX_SERVER_UTIL_H
#define SBX_SERVER_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* The value of a hex digit (either case), or -1. */
int kms_hex_digit(char c);
/* Lower-case hex of n bytes into out (2n + 1 bytes, NUL-terminated). */
void kms_hex(char *out, const uint8_t *in, size_t n);
/* Parses exactly 2n hex chars (either case) into out. 0 or SBX_EFORMAT. */
int kms_unhex(uint8_t *out, size_t n, const char *hex);
/* Wall-clock time: unix seconds, and milliseconds. */
int64_t kms_now(void);
int64_t kms_now_ms(void);
/* Monotonic milliseconds (for caches and timeouts). */
int64_t kms_mono_ms(void);

#endif
