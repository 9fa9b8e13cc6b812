/*
 * src/core/encoding.c - strict base64 and Bech32.
 *
 * Implementation notes:
 *  - Encoding base64 uses OpenSSL's EVP_EncodeBlock. Decoding is our own:
 *    OpenSSL's decoders skip whitespace and accept non-canonical trailing
 *    bits, while age requires exactly one encoding per value (age.md §2), so
 *    the decoder validates every character, the padding and the unused bits.
 *  - Bech32 follows BIP 173 with the original checksum constant 1, without
 *    the 90-character limit (age.md §8). Case must be uniform; the checksum
 *    covers the lower-cased HRP.
 */
#include "strongbox/encoding.h"
#include "core/encoding.h"
#include "core/error.h"

#include <string.h>

#include <openssl/evp.h>

/* see strongbox/encoding.h */
long
sbx_base64_encode(char *out, size_t out_cap, const uint8_t *in, size_t n, bool pad)
{
    size_t padded = SBX_BASE64_PAD_LEN(n);
    size_t want = pad ? padded : SBX_BASE64_NOPAD_LEN(n);
    if (out_cap < padded + 1 || n > INT32_MAX)
        return sbx__error(SBX_EINVAL, "base64: output buffer too small");
    EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    out[want] = '\0';
    return (long)want;
}

static int
b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* see strongbox/encoding.h */
int
sbx_base64_decode(uint8_t *out, size_t out_cap, size_t *out_len, const char *in, size_t len,
                  bool pad)
{
    *out_len = 0;
    if (pad) {
        if (len % 4 != 0)
            return sbx__error(SBX_EFORMAT, "base64: length is not a multiple of 4");
        if (len > 0 && in[len - 1] == '=')
            len -= (len >= 2 && in[len - 2] == '=') ? 2 : 1;
    } else if (len % 4 == 1) {
        return sbx__error(SBX_EFORMAT, "base64: impossible length");
    }
    if (out_cap < SBX_BASE64_DECODED_MAX(len))
        return sbx__error(SBX_EINVAL, "base64: output buffer too small");
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value((unsigned char)in[i]);
        if (v < 0)
            return sbx__error(SBX_EFORMAT, "base64: invalid character at offset %zu", i);
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    if (len % 4 == 1 || (acc & ((1u << bits) - 1)) != 0) {
        memset(out, 0, o);
        return sbx__error(SBX_EFORMAT, "base64: non-canonical encoding (unused bits set)");
    }
    *out_len = o;
    return 0;
}

/* ---- Bech32 (BIP 173) ---- */

static const char charset[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

static uint32_t
polymod_step(uint32_t chk, uint8_t v)
{
    static const uint32_t gen[5] = {0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3};
    uint8_t top = (uint8_t)(chk >> 25);
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (int i = 0; i < 5; i++) {
        if ((top >> i) & 1)
            chk ^= gen[i];
    }
    return chk;
}

static char
lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

/* BIP 173 checksums the lower-cased prefix; only A-Z change case. */
static uint32_t
hrp_checksum(const char *hrp, size_t hrp_len)
{
    uint32_t chk = 1;
    for (size_t i = 0; i < hrp_len; i++)
        chk = polymod_step(chk, (uint8_t)((unsigned char)lower(hrp[i]) >> 5));
    chk = polymod_step(chk, 0);
    for (size_t i = 0; i < hrp_len; i++)
        chk = polymod_step(chk, (uint8_t)((unsigned char)lower(hrp[i]) & 31));
    return chk;
}

static char
upper(char c)
{
    return (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
}

/* see strongbox/encoding.h */
int
sbx_bech32_encode(char *out, size_t out_cap, const char *hrp, const uint8_t *data, size_t len,
                  bool up)
{
    size_t hrp_len = strlen(hrp);
    size_t n5 = (len * 8 + 4) / 5;
    if (hrp_len == 0 || out_cap < hrp_len + 1 + n5 + 6 + 1)
        return sbx__error(SBX_EINVAL, "bech32: empty prefix or output buffer too small");
    size_t o = 0;
    for (size_t i = 0; i < hrp_len; i++) {
        unsigned char c = (unsigned char)hrp[i];
        if (c < 33 || c > 126)
            return sbx__error(SBX_EINVAL, "bech32: invalid prefix character");
        out[o++] = up ? upper((char)c) : lower((char)c);
    }
    out[o++] = '1';
    uint32_t chk = hrp_checksum(hrp, hrp_len);
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < len; i++) {
        acc = (acc << 8) | data[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            uint8_t v = (acc >> bits) & 31;
            chk = polymod_step(chk, v);
            out[o++] = up ? upper(charset[v]) : charset[v];
        }
    }
    if (bits > 0) {
        uint8_t v = (acc << (5 - bits)) & 31;
        chk = polymod_step(chk, v);
        out[o++] = up ? upper(charset[v]) : charset[v];
    }
    for (int i = 0; i < 6; i++)
        chk = polymod_step(chk, 0);
    chk ^= 1;
    for (int i = 0; i < 6; i++) {
        char c = charset[(chk >> (5 * (5 - i))) & 31];
        out[o++] = up ? upper(c) : c;
    }
    out[o] = '\0';
    return 0;
}

static int
charset_value(char c)
{
    const char *p = strchr(charset, lower(c));
    return (p == NULL || c == '\0') ? -1 : (int)(p - charset);
}

/* see strongbox/encoding.h */
int
sbx_bech32_decode(char *hrp_out, size_t hrp_cap, uint8_t *data_out, size_t data_cap,
                  size_t *data_len, const char *str, size_t len)
{
    bool has_lower = false, has_upper = false;
    *data_len = 0;
    if (hrp_cap > 0)
        hrp_out[0] = '\0';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)str[i];
        if (c < 33 || c > 126)
            return sbx__error(SBX_EFORMAT, "bech32: invalid character at offset %zu", i);
        has_lower |= (c >= 'a' && c <= 'z');
        has_upper |= (c >= 'A' && c <= 'Z');
    }
    if (has_lower && has_upper)
        return sbx__error(SBX_EFORMAT, "bech32: mixed upper and lower case");
    size_t sep = len;
    while (sep > 0 && str[sep - 1] != '1')
        sep--;
    if (sep == 0)
        return sbx__error(SBX_EFORMAT, "bech32: no separator '1'");
    sep--; /* index of the separator */
    if (sep == 0 || len - sep - 1 < 6)
        return sbx__error(SBX_EFORMAT, "bech32: empty prefix or missing checksum");
    if (hrp_cap < sep + 1)
        return sbx__error(SBX_EINVAL, "bech32: prefix buffer too small");
    size_t n5 = len - sep - 1 - 6;
    if (data_cap < n5 * 5 / 8)
        return sbx__error(SBX_EINVAL, "bech32: data buffer too small");
    uint32_t chk = hrp_checksum(str, sep);
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = sep + 1; i < len; i++) {
        int v = charset_value(str[i]);
        if (v < 0)
            return sbx__error(SBX_EFORMAT, "bech32: invalid character at offset %zu", i);
        chk = polymod_step(chk, (uint8_t)v);
        if (i >= len - 6)
            continue;
        acc = ((acc << 5) | (uint32_t)v) & 0xfff;
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            data_out[o++] = (uint8_t)(acc >> bits);
        }
    }
    if (chk != 1) {
        memset(data_out, 0, o);
        return sbx__error(SBX_EFORMAT, "bech32: checksum mismatch (mistyped or truncated key?)");
    }
    if (bits >= 5 || (acc & ((1u << bits) - 1)) != 0) {
        memset(data_out, 0, o);
        return sbx__error(SBX_EFORMAT, "bech32: invalid padding");
    }
    for (size_t i = 0; i < sep; i++)
        hrp_out[i] = lower(str[i]);
    hrp_out[sep] = '\0';
    *data_len = o;
    return 0;
}

/* see core/encoding.h */
size_t
sbx__utf8_decode(const unsigned char *c, uint32_t *cp)
{
    size_t n = c[0] < 0x80             ? 1
               : (c[0] & 0xE0) == 0xC0 ? 2
               : (c[0] & 0xF0) == 0xE0 ? 3
               : (c[0] & 0xF8) == 0xF0 ? 4
                                       : 0;
    if (n == 0 || (n == 2 && c[0] < 0xC2) || (n == 4 && c[0] > 0xF4))
        return 0;
    uint32_t v = n == 1 ? c[0] : (uint32_t)(c[0] & (0x7F >> n));
    for (size_t i = 1; i < n; i++) {
        if ((c[i] & 0xC0) != 0x80)
            return 0; // also stops at the terminating NUL
        v = v << 6 | (c[i] & 0x3Fu);
    }
    if ((n == 3 && c[0] == 0xE0 && c[1] < 0xA0) || (n == 3 && c[0] == 0xED && c[1] >= 0xA0) ||
        (n == 4 && c[0] == 0xF0 && c[1] < 0x90) || (n == 4 && c[0] == 0xF4 && c[1] >= 0x90))
        return 0; // overlong, surrogate, above U+10FFFF
    if (cp != NULL)
        *cp = v;
    return n;
}

/* see strongbox/encoding.h */
int
sbx_json_quote(sbx_buf *out, const char *s, bool *lossless)
{
    static const char hex[] = "0123456789abcdef";
    bool all = true;
    int err = sbx_buf_append(out, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c && err == 0;) {
        size_t n = sbx__utf8_decode(c, NULL);
        if (n == 0) {
            err = sbx_buf_append(out, "\\ufffd", 6);
            all = false;
            n = 1;
        } else if (*c == '"' || *c == '\\') {
            char e[2] = {'\\', (char)*c};
            err = sbx_buf_append(out, e, 2);
        } else if (*c < 0x20 || *c == 0x7f) {
            char e[6] = {'\\', 'u', '0', '0', hex[*c >> 4], hex[*c & 15]};
            err = sbx_buf_append(out, e, 6);
        } else {
            err = sbx_buf_append(out, c, n);
        }
        c += n;
    }
    if (err == 0)
        err = sbx_buf_append(out, "\"", 1);
    if (lossless != NULL)
        *lossless = all;
    return err;
}

/* see strongbox/encoding.h */
int
sbx_json_member(sbx_buf *out, const char *name, const char *s, bool spaced)
{
    const char *colon = spaced ? ": " : ":";
    char b64[SBX_BASE64_PAD_LEN(48) + 1];
    bool utf8 = true;
    size_t n = strlen(s);
    int err = sbx_json_quote(out, name, NULL);
    if (err == 0 && (err = sbx_buf_append(out, colon, strlen(colon))) == 0)
        err = sbx_json_quote(out, s, &utf8);
    if (err < 0 || utf8)
        return err;
    // The sibling: the name's quoted form with "_base64" before its closing quote.
    if ((err = sbx_buf_append(out, spaced ? ", " : ",", spaced ? 2 : 1)) < 0 ||
        (err = sbx_json_quote(out, name, NULL)) < 0)
        return err;
    out->len--; // drop the closing quote
    if ((err = sbx_buf_append(out, "_base64\"", 8)) < 0 ||
        (err = sbx_buf_append(out, colon, strlen(colon))) < 0 ||
        (err = sbx_buf_append(out, "\"", 1)) < 0)
        return err;
    for (const uint8_t *p = (const uint8_t *)s; n > 0 && err == 0;) {
        size_t k = n < 48 ? n : 48; // a multiple of 3: the pieces concatenate
        long w = sbx_base64_encode(b64, sizeof(b64), p, k, true);
        err = w < 0 ? (int)w : sbx_buf_append(out, b64, (size_t)w);
        p += k;
        n -= k;
    }
    return err < 0 ? err : sbx_buf_append(out, "\"", 1);
}
