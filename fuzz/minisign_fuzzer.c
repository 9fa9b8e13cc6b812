/*
 * fuzz/minisign_fuzzer.c - minisign public keys, secret keys and signature
 * files (src/sign/minisign.c), and PEM signing keys (src/sign/pem.c).
 *
 * Input: arbitrary bytes, given to every parser. Properties:
 *  - nothing crashes or leaks; outputs are NULL on failure;
 *  - the passphrase callback is asked at most once, and only for a key
 *    whose kdf is scrypt (it refuses, so no scrypt runs with hostile limits);
 *  - a parsed public key writes a key file that parses back to the same key;
 *    a parsed secret key writes an unprotected file that parses back to the
 *    same key id, and its public key verifies what it signs;
 *  - a signature file: sbx_minisign_signature_keyid() and
 *    sbx_minisign_verify() agree on whether it is well formed, and verify
 *    succeeds only with the key of the corpus (the one that signed "msg"),
 *    returning a trusted comment within the documented limit.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strongbox/sign.h"
#include "fuzz_util.h"

/* tests/vectors/sign/minisign_nopass.pub; the corpus signs "msg" with it. */
static const char corpus_pub[] = "RWR6Wb/TYRtuCzgUrqgKZT9fKi/R1iwFnBtjg3TPUdQqspgXwfRhaxU7";

static int
refuse_passphrase(sbx_buf *out, void *payload)
{
    (void)out;
    (*(int *)payload)++;
    return SBX_ECANCELED;
}

static void
fuzz_pubkey(const char *text, size_t len)
{
    sbx_minisign_pubkey *pk = NULL, *again = NULL;
    sbx_buf file = SBX_BUF_INIT;
    if (sbx_minisign_pubkey_parse(&pk, text, len) != 0) {
        FUZZ_CHECK(pk == NULL, "no public key on failure");
        return;
    }
    FUZZ_CHECK(sbx_minisign_pubkey_to_file(pk, &file) == 0, "public key file");
    FUZZ_CHECK(sbx_minisign_pubkey_parse(&again, (const char *)file.ptr, file.len) == 0,
               "public key file parses back");
    FUZZ_CHECK(sbx_minisign_pubkey_keyid(pk) == sbx_minisign_pubkey_keyid(again) &&
                   strcmp(sbx_minisign_pubkey_base64(pk), sbx_minisign_pubkey_base64(again)) == 0,
               "public key round trip");
    sbx_minisign_pubkey_free(pk);
    sbx_minisign_pubkey_free(again);
    sbx_buf_dispose(&file);
}

static void
fuzz_seckey(const char *text, size_t len)
{
    sbx_minisign_seckey *sk = NULL, *again = NULL;
    sbx_minisign_pubkey *pk = NULL;
    sbx_source *src = NULL;
    sbx_buf file = SBX_BUF_INIT, sig = SBX_BUF_INIT;
    int calls = 0;
    int err = sbx_minisign_seckey_parse(&sk, text, len, refuse_passphrase, &calls);
    FUZZ_CHECK(calls <= 1, "the passphrase is asked at most once");
    if (err != 0) {
        FUZZ_CHECK(sk == NULL, "no secret key on failure");
        return;
    }
    FUZZ_CHECK(calls == 0, "an unprotected key never asks for a passphrase");
    FUZZ_CHECK(sbx_minisign_seckey_to_file(sk, &file, NULL, 0, 0, 0) == 0, "secret key file");
    FUZZ_CHECK(sbx_minisign_seckey_parse(&again, (const char *)file.ptr, file.len, NULL, NULL) == 0,
               "secret key file parses back");
    FUZZ_CHECK(sbx_minisign_seckey_keyid(sk) == sbx_minisign_seckey_keyid(again),
               "secret key round trip");
    FUZZ_CHECK(sbx_minisign_seckey_public(&pk, sk) == 0, "public half");
    FUZZ_CHECK(sbx_source_mem_new(&src, "abc", 3) == 0, "source");
    FUZZ_CHECK(sbx_minisign_sign(&sig, sk, src, NULL) == 0, "sign");
    sbx_source_free(src);
    FUZZ_CHECK(sbx_source_mem_new(&src, "abc", 3) == 0, "source");
    FUZZ_CHECK(sbx_minisign_verify(pk, src, (const char *)sig.ptr, sig.len, NULL) == 0,
               "a parsed key verifies its own signature");
    sbx_source_free(src);
    sbx_minisign_pubkey_free(pk);
    sbx_minisign_seckey_free(sk);
    sbx_minisign_seckey_free(again);
    sbx_buf_dispose(&file);
    sbx_buf_dispose(&sig);
}

static void
fuzz_signature(const char *text, size_t len)
{
    sbx_minisign_pubkey *pk = NULL;
    sbx_source *src = NULL;
    sbx_buf tc = SBX_BUF_INIT;
    uint64_t id = 0;
    int parsed = sbx_minisign_signature_keyid(&id, text, len);
    FUZZ_CHECK(sbx_minisign_pubkey_parse(&pk, corpus_pub, strlen(corpus_pub)) == 0, "corpus key");
    FUZZ_CHECK(sbx_source_mem_new(&src, "msg", 3) == 0, "source");
    int err = sbx_minisign_verify(pk, src, text, len, &tc);
    if (parsed != 0)
        FUZZ_CHECK(err == parsed, "verify and keyid agree on malformed input");
    else if (id != sbx_minisign_pubkey_keyid(pk))
        FUZZ_CHECK(err == SBX_ENOKEY, "another key id is refused as such");
    if (err == 0) {
        FUZZ_CHECK(tc.ptr != NULL && tc.ptr[tc.len] == '\0' &&
                       tc.len <= SBX_MINISIGN_MAX_TRUSTED_COMMENT,
                   "trusted comment returned");
    } else {
        FUZZ_CHECK(tc.len == 0, "no trusted comment on failure");
    }
    sbx_source_free(src);
    sbx_minisign_pubkey_free(pk);
    sbx_buf_dispose(&tc);
}

static void
fuzz_pem(const char *text, size_t len)
{
    sbx_pem_key *k = NULL;
    int calls = 0;
    if (sbx_pem_key_parse_public(&k, text, len) == 0)
        FUZZ_CHECK(!sbx_pem_key_is_private(k), "public key");
    else
        FUZZ_CHECK(k == NULL, "no key on failure");
    sbx_pem_key_free(k);
    k = NULL;
    if (sbx_pem_key_parse_private(&k, text, len, refuse_passphrase, &calls) == 0)
        FUZZ_CHECK(sbx_pem_key_is_private(k), "private key");
    else
        FUZZ_CHECK(k == NULL, "no key on failure");
    FUZZ_CHECK(calls <= 1, "the passphrase is asked at most once");
    sbx_pem_key_free(k);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    fuzz_pubkey(text, size);
    fuzz_seckey(text, size);
    fuzz_signature(text, size);
    if (sbx_pem_text_is_pem(text, size))
        fuzz_pem(text, size);
    return 0;
}
