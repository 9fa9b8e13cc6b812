/*
 * fuzz/decrypt_fuzzer.c - whole-file age decryption (src/age/decrypt.c and
 * everything under it: armor detection, header, X25519 and scrypt unwrap,
 * header MAC, STREAM payload).
 *
 * Input: arbitrary bytes, read as an age file (binary or armored, detected).
 * Identities: the X25519 key of the CCTV age testkit (so its vectors reach
 * the payload), the passphrase "password" with scrypt log2(N) capped at 10,
 * which keeps each attempt around a millisecond, and the published test-only
 * OpenSSH ed25519 key of tests/vectors/ssh/ (ssh-ed25519 stanzas). Properties:
 *  - sbx_age_decrypt_buf never crashes or leaks, and every failure is one of
 *    the documented classes (armor, header, no match, MAC, payload);
 *  - the streaming decryptor read in small uneven steps gives the same code
 *    and the same released plaintext as the one-shot helper;
 *  - a file that decrypts re-encrypts to the same identity (binary or armor)
 *    and decrypts back to the same plaintext.
 */
#include <stdint.h>
#include <string.h>

#include "strongbox/age.h"
#include "strongbox/stream.h"
#include "fuzz_util.h"

#define TESTKIT_IDENTITY                                                                           \
    "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0"
#define PASSPHRASE     "password"
#define MAX_LOG_N      10
#define REENCRYPT_MAX  (256 * 1024)
#define NUM_IDENTITIES 3

/* tests/vectors/ssh/ed25519: a published test-only key (see its README). */
static const char ssh_ed25519_key[] =
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "QyNTUxOQAAACCz9EikC4irrUfTKuq8jxTS+Q2ZtWpcoOOGg8BHYWw+bwAAAJjg/y5d4P8u\n"
    "XQAAAAtzc2gtZWQyNTUxOQAAACCz9EikC4irrUfTKuq8jxTS+Q2ZtWpcoOOGg8BHYWw+bw\n"
    "AAAECD9QrjSj81uzCMCAU1SD0mSYhIXJg+gGV3ISX6xg6Y0LP0SKQLiKutR9Mq6ryPFNL5\n"
    "DZm1alyg44aDwEdhbD5vAAAAFXN0cm9uZ2JveC10ZXN0LXZlY3Rvcg==\n"
    "-----END OPENSSH PRIVATE KEY-----\n";

static sbx_identity *identities[NUM_IDENTITIES];
static sbx_recipient *recipient;
static sbx_identity **ssh_list; // owns identities[2] for the life of the process
static size_t ssh_count;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    FUZZ_CHECK(sbx_identity_parse(&identities[0], TESTKIT_IDENTITY) == 0, "testkit identity");
    int err = sbx_identity_scrypt_new(&identities[1], PASSPHRASE, strlen(PASSPHRASE), MAX_LOG_N);
    FUZZ_CHECK(err == 0, "passphrase identity");
    err = sbx_identities_parse(&ssh_list, &ssh_count, ssh_ed25519_key, sizeof(ssh_ed25519_key) - 1);
    FUZZ_CHECK(err == 0 && ssh_count == 1, "ssh-ed25519 identity");
    identities[2] = ssh_list[0];
    FUZZ_CHECK(sbx_identity_to_recipient(&recipient, identities[0]) == 0, "testkit recipient");
    return 0;
}

static bool
documented(int err)
{
    return err == SBX_EARMOR || err == SBX_EHEADER || err == SBX_ENOMATCH || err == SBX_EMAC ||
           err == SBX_EPAYLOAD;
}

/* The streaming path, read in steps of `step` bytes. */
static int
decrypt_stream(sbx_buf *out, const uint8_t *data, size_t size, size_t step)
{
    sbx_age_decrypt_options opts = SBX_AGE_DECRYPT_OPTIONS_INIT;
    sbx_source *mem = NULL, *dec = NULL;
    uint8_t buf[8192];
    int err;
    if (sbx_source_mem_new(&mem, data, size) < 0)
        abort();
    if ((err = sbx_age_decryptor_new(&dec, mem, identities, NUM_IDENTITIES, &opts)) == 0) {
        for (;;) {
            size_t got = 0;
            if ((err = sbx_source_read(dec, buf, step, &got)) < 0 || got == 0)
                break;
            if (sbx_buf_append(out, buf, got) < 0)
                abort();
        }
    }
    sbx_source_free(dec);
    sbx_source_free(mem);
    return err;
}

static void
check_reencrypt(const sbx_buf *plain)
{
    sbx_age_encrypt_options eopts = SBX_AGE_ENCRYPT_OPTIONS_INIT;
    sbx_buf file = SBX_BUF_INIT, back = SBX_BUF_INIT;
    eopts.armor = plain->len % 2 == 1;
    FUZZ_CHECK(sbx_age_encrypt_buf(&file, plain->ptr, plain->len, &recipient, 1, &eopts) == 0,
               "re-encrypt");
    FUZZ_CHECK(sbx_age_decrypt_buf(&back, file.ptr, file.len, identities, 1, NULL) == 0,
               "re-encrypted file decrypts");
    FUZZ_CHECK(back.len == plain->len &&
                   (plain->len == 0 || memcmp(back.ptr, plain->ptr, plain->len) == 0),
               "decrypt(encrypt(p)) == p");
    sbx_buf_dispose(&file);
    sbx_buf_dispose(&back);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sbx_age_decrypt_options opts = SBX_AGE_DECRYPT_OPTIONS_INIT;
    sbx_buf plain = SBX_BUF_INIT, streamed = SBX_BUF_INIT;
    int err = sbx_age_decrypt_buf(&plain, data, size, identities, NUM_IDENTITIES, &opts);
    FUZZ_CHECK(err == 0 || documented(err), "failures are classified");
    if (err != 0 && err != SBX_EPAYLOAD && err != SBX_EARMOR)
        FUZZ_CHECK(plain.len == 0, "no plaintext before the payload");

    int serr = decrypt_stream(&streamed, data, size, 1 + size % 4093);
    FUZZ_CHECK(serr == err, "streaming and one-shot agree on the outcome");
    FUZZ_CHECK(streamed.len == plain.len &&
                   (plain.len == 0 || memcmp(streamed.ptr, plain.ptr, plain.len) == 0),
               "streaming and one-shot release the same plaintext");

    if (err == 0 && plain.len <= REENCRYPT_MAX)
        check_reencrypt(&plain);
    sbx_buf_dispose(&plain);
    sbx_buf_dispose(&streamed);
    return 0;
}
