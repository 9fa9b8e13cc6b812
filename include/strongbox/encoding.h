/*
 * strongbox/encoding.h - strict text encodings used by key strings and
 * file formats: base64 (RFC 4648 standard alphabet) and Bech32 (BIP 173).
 *
 * Decoders are strict: they accept exactly one encoding of each value and
 * reject everything else (whitespace, non-canonical trailing bits, wrong
 * padding, mixed case), because the formats built on them rely on a unique
 * encoding (age re-serialises headers byte for byte).
 */
#ifndef STRONGBOX_ENCODING_H
#define STRONGBOX_ENCODING_H

#include "strongbox/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Characters needed to base64 n bytes without padding (age header form). */
#define SBX_BASE64_NOPAD_LEN(n) (((n) / 3) * 4 + (((n) % 3) ? ((n) % 3) + 1 : 0))
/** Characters needed to base64 n bytes with '=' padding. */
#define SBX_BASE64_PAD_LEN(n) ((((n) + 2) / 3) * 4)
/** Upper bound of bytes that len base64 characters decode to. */
#define SBX_BASE64_DECODED_MAX(len) (((len) / 4) * 3 + 2)

/**
 * @brief Encode n bytes as base64.
 * @param out receives SBX_BASE64_NOPAD_LEN(n) or SBX_BASE64_PAD_LEN(n)
 *        characters plus a NUL terminator; out_cap must allow for both.
 * @param pad true for '=' padding (armor), false for none (age header).
 * @return the number of characters written (without the NUL), or a negative
 *         SBX_EINVAL when out_cap is too small.
 */
SBX_EXTERN long sbx_base64_encode(char *out, size_t out_cap, const uint8_t *in, size_t n, bool pad);

/**
 * @brief Decode canonical base64.
 *
 * With pad false, '=' is refused and a length of 1 mod 4 is refused; with pad
 * true, the length must be a multiple of 4 with 0-2 '=' at the end only.
 * Either way the unused low bits of the last character must be zero and only
 * the standard alphabet is allowed (no whitespace).
 *
 * @param out receives the bytes; out_cap >= SBX_BASE64_DECODED_MAX(len).
 * @param out_len receives the decoded length (0 on error).
 * @return 0, SBX_EFORMAT for invalid or non-canonical input, SBX_EINVAL when
 *         out_cap is too small.
 */
SBX_EXTERN int sbx_base64_decode(uint8_t *out, size_t out_cap, size_t *out_len, const char *in,
                                 size_t len, bool pad) SBX_WARN_UNUSED;

/**
 * @brief Encode data as a Bech32 (BIP 173, checksum constant 1) string.
 * @param out receives the NUL-terminated string; lower case unless upper is true.
 * @param hrp human-readable part, printable ASCII (33-126), given in either case.
 * @return 0, or SBX_EINVAL (bad hrp, out_cap too small).
 */
SBX_EXTERN int sbx_bech32_encode(char *out, size_t out_cap, const char *hrp, const uint8_t *data,
                                 size_t len, bool upper);

/**
 * @brief Decode a Bech32 string. There is no length limit (age keys may be long).
 * @param hrp_out receives the human-readable part in lower case, NUL-terminated.
 * @param data_out receives the 8-bit data; *data_len its length.
 * @return 0, SBX_EFORMAT (mixed case, bad character, bad checksum, bad
 *         padding, no separator), SBX_EINVAL when a buffer is too small.
 */
SBX_EXTERN int sbx_bech32_decode(char *hrp_out, size_t hrp_cap, uint8_t *data_out, size_t data_cap,
                                 size_t *data_len, const char *str, size_t len) SBX_WARN_UNUSED;

/**
 * @brief Append s as a JSON string literal (quotes included), by the one
 *        rule every Strongbox JSON output follows for text that may not be
 *        UTF-8 (file names, above all): valid UTF-8 is written as it is;
 *        each byte that is not part of a valid UTF-8 sequence (overlong forms,
 *        surrogates and code points above U+10FFFF included) becomes U+FFFD.
 *        Quote and backslash are escaped, control characters and DEL written
 *        as \u00XX. A caller that writes a lossy string gives the exact bytes
 *        beside it, in base64, as a sibling member NAME_base64.
 * @param lossless receives false when some byte was replaced (may be NULL).
 * @return 0 or SBX_ENOMEM.
 */
SBX_EXTERN int sbx_json_quote(sbx_buf *out, const char *s, bool *lossless);

/**
 * @brief Append the object member "name": s by the rule of sbx_json_quote(),
 *        and, when s is not UTF-8, its sibling "name_base64": the exact bytes
 *        in padded base64. With spaced, ": " and ", " separate (else ":", ",").
 * @return 0 or SBX_ENOMEM.
 */
SBX_EXTERN int sbx_json_member(sbx_buf *out, const char *name, const char *s, bool spaced);

#ifdef __cplusplus
}
#endif
#endif
