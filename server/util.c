/*
 * server/util.c - small helpers shared by the key server's modules.
 */
#include "util.h"

#include "strongbox/error.h"

#include <time.h>

void
kms_hex(char *out, const uint8_t *in, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

/* see util.h */
int
kms_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int
kms_unhex(uint8_t *out, size_t n, const char *hex)
{
    for (size_t i = 0; i < n; i++) {
        if (hex[2 * i] == '\0' || hex[2 * i + 1] == '\0')
            return sbx_error_set(SBX_EFORMAT, "hex value too short (want %zu digits)", 2 * n);
        int hi = kms_hex_digit(hex[2 * i]), lo = kms_hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return sbx_error_set(SBX_EFORMAT, "not a hex digit at position %zu", 2 * i);
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    if (hex[2 * n] != '\0')
        return sbx_error_set(SBX_EFORMAT, "hex value too long (want %zu digits)", 2 * n);
    return 0;
}

static int64_t
clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
kms_now(void)
{
    return (int64_t)time(NULL);
}

int64_t
kms_now_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}

int64_t
kms_mono_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}
