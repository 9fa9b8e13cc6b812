/*
 * fuzz/ssh_key_fuzzer.c - OpenSSH keys (src/age/ssh.c, src/age/sshkey.c):
 * public key lines, authorized_keys files, openssh-key-v1 private keys.
 *
 * Input: arbitrary bytes. Properties:
 *  - sbx_recipient_parse on a NUL-terminated copy, sbx_recipients_parse and
 *    sbx_identities_parse on the raw bytes never crash, leak or leave an
 *    output set on failure;
 *  - a parsed SSH recipient's to_string gives back the input (strict form),
 *    and parses again to the same string;
 *  - every parsed identity's recipient round-trips the same way, and the
 *    identity's to_string (PKCS#8 PEM) parses back to an identity with the
 *    same recipient;
 *  - an identity can unwrap what its own recipient wrapped.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strongbox/age.h"
#include "fuzz_util.h"

static void
recipient_string(const sbx_recipient *r, sbx_buf *out)
{
    sbx_buf again = SBX_BUF_INIT;
    sbx_recipient *r2 = NULL;
    FUZZ_CHECK(sbx_recipient_to_string(r, out) == 0, "recipient to_string");
    FUZZ_CHECK(sbx_buf_append(out, "", 1) == 0, "NUL");
    FUZZ_CHECK(sbx_recipient_parse(&r2, (const char *)out->ptr) == 0, "to_string output parses");
    FUZZ_CHECK(sbx_recipient_to_string(r2, &again) == 0, "to_string again");
    FUZZ_CHECK(again.len + 1 == out->len && memcmp(again.ptr, out->ptr, again.len) == 0,
               "recipient string is stable");
    sbx_recipient_free(r2);
    sbx_buf_dispose(&again);
}

static void
check_identity(const sbx_identity *id)
{
    sbx_recipient *r = NULL, *r2 = NULL;
    sbx_identity **back = NULL;
    sbx_buf a = SBX_BUF_INIT, b = SBX_BUF_INIT, pem = SBX_BUF_INIT, ct = SBX_BUF_INIT,
            pt = SBX_BUF_INIT;
    size_t n = 0;
    FUZZ_CHECK(sbx_identity_to_recipient(&r, id) == 0, "identity to recipient");
    recipient_string(r, &a);
    FUZZ_CHECK(sbx_identity_to_string(id, &pem) == 0, "identity to_string");
    FUZZ_CHECK(sbx_identities_parse(&back, &n, (const char *)pem.ptr, pem.len) == 0 && n == 1,
               "identity to_string parses back");
    FUZZ_CHECK(sbx_identity_to_recipient(&r2, back[0]) == 0, "parsed-back identity's recipient");
    recipient_string(r2, &b);
    FUZZ_CHECK(a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0, "same recipient after PEM");
    FUZZ_CHECK(sbx_age_encrypt_buf(&ct, "fuzz", 4, &r, 1, NULL) == 0, "encrypt to own recipient");
    FUZZ_CHECK(sbx_age_decrypt_buf(&pt, ct.ptr, ct.len, (sbx_identity *const *)&id, 1, NULL) == 0 &&
                   pt.len == 4,
               "identity decrypts its own recipient's file");
    sbx_identities_free(back, n);
    sbx_recipient_free(r);
    sbx_recipient_free(r2);
    sbx_buf_dispose(&a);
    sbx_buf_dispose(&b);
    sbx_buf_dispose(&pem);
    sbx_buf_dispose(&ct);
    sbx_buf_dispose(&pt);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *str = malloc(size + 1);
    sbx_recipient *r = NULL, **rs = NULL;
    sbx_identity **ids = NULL;
    size_t n = 0;
    if (str == NULL)
        abort();
    memcpy(str, data, size);
    str[size] = '\0';
    if (sbx_recipient_parse(&r, str) == 0) {
        sbx_buf s = SBX_BUF_INIT;
        recipient_string(r, &s);
        FUZZ_CHECK(strcmp((const char *)s.ptr, str) == 0, "to_string gives back the input");
        sbx_buf_dispose(&s);
        sbx_recipient_free(r);
    } else {
        FUZZ_CHECK(r == NULL, "no recipient on failure");
    }
    if (sbx_recipients_parse(&rs, &n, (const char *)data, size) == 0) {
        for (size_t i = 0; i < n; i++) {
            sbx_buf s = SBX_BUF_INIT;
            recipient_string(rs[i], &s);
            sbx_buf_dispose(&s);
        }
        sbx_recipients_free(rs, n);
    } else {
        FUZZ_CHECK(rs == NULL, "no recipients on failure");
    }
    n = 0;
    if (sbx_identities_parse(&ids, &n, (const char *)data, size) == 0) {
        for (size_t i = 0; i < n; i++)
            check_identity(ids[i]);
        sbx_identities_free(ids, n);
    } else {
        FUZZ_CHECK(ids == NULL && n == 0, "no identities on failure");
    }
    free(str);
    return 0;
}
