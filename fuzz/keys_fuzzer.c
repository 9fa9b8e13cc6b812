/*
 * fuzz/keys_fuzzer.c - key strings, key files and Bech32 (src/age/keys.c,
 * src/age/x25519.c, src/core/encoding.c).
 *
 * Input: arbitrary bytes. Properties:
 *  - sbx_identity_parse / sbx_recipient_parse on a NUL-terminated copy,
 *    sbx_identities_parse / sbx_recipients_parse on the raw bytes (which may
 *    hold NULs, CRs, anything) and sbx_bech32_decode never crash or leak;
 *  - key strings have one accepted spelling (age.md §8: the HRP is compared
 *    exactly, so an identity is upper case and a recipient lower case; an
 *    OpenSSH public key line prints back as given, strongbox/age.h): a
 *    parsed key's to_string gives back the input, and parses again to the
 *    same string; an identity's recipient does too;
 *  - every key of a parsed identities or recipients file (age keys, SSH and
 *    PEM keys) prints as a string that parses back to the same string;
 *  - Bech32: re-encoding what was decoded (same HRP, same case) gives back
 *    the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strongbox/age.h"
#include "strongbox/encoding.h"
#include "fuzz_util.h"

/* A buffer's contents as a new NUL-terminated string. */
static char *
c_string(const sbx_buf *b)
{
    char *s = malloc(b->len + 1);
    if (s == NULL)
        abort();
    memcpy(s, b->ptr, b->len);
    s[b->len] = '\0';
    return s;
}

/* to_string, then parse, then to_string again: the same string. Returns the first string. */
static char *
recipient_round_trip(const sbx_recipient *r)
{
    sbx_buf a = SBX_BUF_INIT, b = SBX_BUF_INIT;
    sbx_recipient *again = NULL;
    FUZZ_CHECK(sbx_recipient_to_string(r, &a) == 0, "recipient to_string");
    char *str = c_string(&a);
    FUZZ_CHECK(strlen(str) == a.len, "recipient string has no NUL");
    FUZZ_CHECK(sbx_recipient_parse(&again, str) == 0, "to_string output parses");
    FUZZ_CHECK(sbx_recipient_to_string(again, &b) == 0, "recipient to_string again");
    FUZZ_CHECK(a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0, "recipient string is stable");
    FUZZ_CHECK(strcmp(sbx_recipient_type(r), sbx_recipient_type(again)) == 0, "same type");
    sbx_recipient_free(again);
    sbx_buf_dispose(&a);
    sbx_buf_dispose(&b);
    return str;
}

/* An identity's string form is an identity file that gives back the same identity. */
static void
identity_round_trip(const sbx_buf *str)
{
    sbx_identity **ids = NULL;
    sbx_buf again = SBX_BUF_INIT;
    size_t n = 0;
    int err = sbx_identities_parse(&ids, &n, (const char *)str->ptr, str->len);
    FUZZ_CHECK(err == 0 && n == 1, "identity to_string output parses as one identity");
    FUZZ_CHECK(sbx_identity_to_string(ids[0], &again) == 0, "identity to_string again");
    FUZZ_CHECK(again.len == str->len && memcmp(again.ptr, str->ptr, str->len) == 0,
               "identity string is stable");
    sbx_buf_dispose(&again);
    sbx_identities_free(ids, n);
}

static void
check_identity(const sbx_identity *id, const char *input)
{
    sbx_buf s = SBX_BUF_INIT;
    sbx_recipient *r = NULL;
    FUZZ_CHECK(sbx_identity_to_string(id, &s) == 0, "identity to_string");
    if (input != NULL)
        FUZZ_CHECK(s.len == strlen(input) && memcmp(s.ptr, input, s.len) == 0,
                   "identity to_string gives back the input");
    identity_round_trip(&s);
    sbx_buf_dispose(&s);
    FUZZ_CHECK(sbx_identity_to_recipient(&r, id) == 0, "identity to recipient");
    free(recipient_round_trip(r));
    sbx_recipient_free(r);
}

static void
check_strings(const uint8_t *data, size_t size)
{
    char *str = malloc(size + 1);
    sbx_identity *id = NULL;
    sbx_recipient *r = NULL;
    if (str == NULL)
        abort();
    memcpy(str, data, size);
    str[size] = '\0';
    if (sbx_identity_parse(&id, str) == 0) {
        check_identity(id, str);
        sbx_identity_free(id);
    } else {
        FUZZ_CHECK(id == NULL, "no identity on failure");
    }
    if (sbx_recipient_parse(&r, str) == 0) {
        char *back = recipient_round_trip(r);
        FUZZ_CHECK(strcmp(back, str) == 0, "recipient to_string gives back the input");
        free(back);
        sbx_recipient_free(r);
    } else {
        FUZZ_CHECK(r == NULL, "no recipient on failure");
    }
    free(str);
}

static void
check_files(const uint8_t *data, size_t size)
{
    sbx_identity **ids = NULL;
    sbx_recipient **rs = NULL;
    size_t n = 0;
    if (sbx_identities_parse(&ids, &n, (const char *)data, size) == 0) {
        FUZZ_CHECK(n >= 1 && ids != NULL, "an identity file holds at least one key");
        for (size_t i = 0; i < n; i++)
            check_identity(ids[i], NULL);
        sbx_identities_free(ids, n);
    }
    n = 0;
    if (sbx_recipients_parse(&rs, &n, (const char *)data, size) == 0) {
        FUZZ_CHECK(n >= 1 && rs != NULL, "a recipients file holds at least one key");
        for (size_t i = 0; i < n; i++)
            free(recipient_round_trip(rs[i]));
        sbx_recipients_free(rs, n);
    }
}

static void
check_bech32(const uint8_t *data, size_t size)
{
    const char *str = (const char *)data;
    char *hrp = malloc(size + 1), *again = malloc(size + 16);
    uint8_t *bytes = malloc(size + 1);
    size_t n = 0;
    bool upper = false;
    if (hrp == NULL || bytes == NULL || again == NULL)
        abort();
    if (sbx_bech32_decode(hrp, size + 1, bytes, size + 1, &n, str, size) == 0) {
        for (size_t i = 0; i < size; i++)
            upper |= (str[i] >= 'A' && str[i] <= 'Z');
        FUZZ_CHECK(sbx_bech32_encode(again, size + 16, hrp, bytes, n, upper) == 0,
                   "bech32 re-encodes what it decoded");
        FUZZ_CHECK(strlen(again) == size && memcmp(again, str, size) == 0,
                   "bech32 encode(decode(x)) == x");
    }
    free(hrp);
    free(bytes);
    free(again);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_strings(data, size);
    check_files(data, size);
    check_bech32(data, size);
    return 0;
}
