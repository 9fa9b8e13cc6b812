/*
 * fuzz/pem_key_fuzzer.c - PEM keys through the OpenSSL decoders
 * (src/age/pem.c): public key blocks in recipients files, private keys
 * (PKCS#1, PKCS#8, encrypted PKCS#8, legacy encrypted PEM) as identities.
 *
 * Input: arbitrary bytes, given to the parsers as they are and also wrapped
 * in PEM armor under each accepted label (so the fuzzer reaches the DER
 * decoders without having to discover base64 first). Properties:
 *  - nothing crashes or leaks; outputs are NULL on failure;
 *  - a passphrase callback is called at most once per parse;
 *  - parsed keys round-trip: an identity's to_string parses back to the same
 *    recipient, and a recipient's string parses again to the same string.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "strongbox/age.h"
#include "fuzz_util.h"

static const char *const labels[] = {"PUBLIC KEY", "RSA PUBLIC KEY", "PRIVATE KEY",
                                     "RSA PRIVATE KEY", "ENCRYPTED PRIVATE KEY"};

static int
passphrase(sbx_buf *out, void *payload)
{
    int *calls = payload;
    (*calls)++;
    return sbx_buf_append(out, "fuzz", 4);
}

/*
 * For an identity file that is an age file: no passphrase, so the scrypt
 * work factor the input names (up to 2^22, gigabytes) is never run; the
 * header and the stanza are still parsed up to the request.
 */
static int
no_passphrase(sbx_buf *out, void *payload)
{
    int *calls = payload;
    (void)out;
    (*calls)++;
    return SBX_ECANCELED;
}

static bool
looks_like_age_file(const char *text, size_t len)
{
    static const char intro[] = "age-encryption.org/v1";
    static const char armor[] = "-----BEGIN AGE ENCRYPTED FILE-----";
    return (len >= sizeof(intro) - 1 && memcmp(text, intro, sizeof(intro) - 1) == 0) ||
           memmem(text, len, armor, sizeof(armor) - 1) != NULL;
}

static void
same_recipient_string(const sbx_recipient *r)
{
    sbx_buf a = SBX_BUF_INIT, b = SBX_BUF_INIT;
    sbx_recipient *r2 = NULL;
    FUZZ_CHECK(sbx_recipient_to_string(r, &a) == 0 && sbx_buf_append(&a, "", 1) == 0,
               "recipient to_string");
    FUZZ_CHECK(sbx_recipient_parse(&r2, (const char *)a.ptr) == 0, "recipient string parses");
    FUZZ_CHECK(sbx_recipient_to_string(r2, &b) == 0 && b.len + 1 == a.len &&
                   memcmp(a.ptr, b.ptr, b.len) == 0,
               "recipient string is stable");
    sbx_recipient_free(r2);
    sbx_buf_dispose(&a);
    sbx_buf_dispose(&b);
}

static void
parse_all(const char *text, size_t len)
{
    sbx_recipient **rs = NULL;
    sbx_identity **ids = NULL;
    size_t n = 0;
    int calls = 0;
    if (sbx_recipients_parse(&rs, &n, text, len) == 0) {
        for (size_t i = 0; i < n; i++)
            same_recipient_string(rs[i]);
        sbx_recipients_free(rs, n);
    } else {
        FUZZ_CHECK(rs == NULL, "no recipients on failure");
    }
    n = 0;
    sbx_passphrase_cb cb = looks_like_age_file(text, len) ? no_passphrase : passphrase;
    if (sbx_identities_parse_ex(&ids, &n, text, len, cb, &calls) == 0) {
        for (size_t i = 0; i < n; i++) {
            sbx_recipient *r = NULL;
            FUZZ_CHECK(sbx_identity_to_recipient(&r, ids[i]) == 0, "identity's recipient");
            same_recipient_string(r);
            sbx_recipient_free(r);
        }
        sbx_identities_free(ids, n);
    } else {
        FUZZ_CHECK(ids == NULL, "no identities on failure");
    }
    FUZZ_CHECK(calls <= 1, "the passphrase is asked at most once");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parse_all((const char *)data, size);
    if (size > 8192)
        return 0;
    // Wrap the bytes as DER under each label (base64 with 64-column lines).
    size_t cap = 4 * ((size + 2) / 3) + size / 48 + 256;
    char *pem = malloc(cap);
    unsigned char *b64 = malloc(4 * ((size + 2) / 3) + 1);
    if (pem == NULL || b64 == NULL)
        abort();
    int blen = EVP_EncodeBlock(b64, data, (int)size);
    for (size_t l = 0; l < sizeof(labels) / sizeof(labels[0]); l++) {
        size_t off = (size_t)snprintf(pem, cap, "-----BEGIN %s-----\n", labels[l]);
        for (int i = 0; i < blen; i += 64) {
            int k = blen - i < 64 ? blen - i : 64;
            memcpy(pem + off, b64 + i, (size_t)k);
            off += (size_t)k;
            pem[off++] = '\n';
        }
        off += (size_t)snprintf(pem + off, cap - off, "-----END %s-----\n", labels[l]);
        parse_all(pem, off);
    }
    free(pem);
    free(b64);
    return 0;
}
