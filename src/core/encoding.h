/*
 * src/core/encoding.h - text decoding shared inside the library (the public
 * encoders are in strongbox/encoding.h).
 */
#ifndef SBX_CORE_ENCODING_H
#define SBX_CORE_ENCODING_H

#include <stddef.h>
#include <stdint.h>

/**
 * Decode the UTF-8 sequence at c (NUL-terminated text). Returns its length
 * (1-4) and stores the code point in *cp (cp may be NULL), or returns 0 when
 * c does not start a valid sequence: a stray or missing continuation byte,
 * an overlong form, a surrogate, a code point above U+10FFFF.
 */
size_t sbx__utf8_decode(const unsigned char *c, uint32_t *cp);

#endif
