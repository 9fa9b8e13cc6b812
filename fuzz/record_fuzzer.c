/*
 * fuzz/record_fuzzer.c - encrypted records (src/records/record.c), which
 * arrive from untrusted places: any cell of a database.
 *
 * Input: arbitrary bytes, read as a record and decrypted with the context
 * "fuzz". The seeds (fuzz/corpora/record/) are records made with the key
 * file /tmp/sbx-record-fuzz.key holding the bytes 1..32, which
 * LLVMFuzzerInitialize writes (0600). Key server records need no server:
 * with SBX_KMS_URL, SBX_KMS_CACERT and SBX_KMS_FINGERPRINT unset, no server
 * is trusted, so decryption stops before any request. Properties:
 *  - sbx_record_decrypt, sbx_record_keyref and sbx_record_is_encrypted never
 *    crash, leak or read out of bounds;
 *  - a failed decryption leaves the output empty;
 *  - a successful one gives a known type (8 bytes for integer and real), and
 *    the input is_encrypted and has a keyref;
 *  - the input, encrypted as a BLOB under the key file, decrypts to itself.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "strongbox/records.h"
#include "fuzz_util.h"

#define KEY_PATH "/tmp/sbx-record-fuzz.key"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    uint8_t key[32];
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)(i + 1);
    unsetenv("SBX_KMS_URL");
    unsetenv("SBX_KMS_CACERT");
    unsetenv("SBX_KMS_FINGERPRINT");
    int fd = open(KEY_PATH, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600);
    if (fd >= 0) {
        if (fchmod(fd, 0600) != 0 || write(fd, key, sizeof key) != (ssize_t)sizeof key)
            abort();
        close(fd);
    }
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    sbx_buf out = SBX_BUF_INIT, ref = SBX_BUF_INIT, rec = SBX_BUF_INIT;
    int type = -1;
    if (sbx_record_decrypt(&type, &out, data, size, "fuzz", 4) == 0) {
        FUZZ_CHECK(type >= SBX_RECORD_INTEGER && type <= SBX_RECORD_BLOB, "known type");
        FUZZ_CHECK(type > SBX_RECORD_REAL || out.len == 8, "numbers are 8 bytes");
        FUZZ_CHECK(sbx_record_is_encrypted(data, size), "a decrypted record is_encrypted");
        FUZZ_CHECK(sbx_record_keyref(&ref, data, size) == 0, "a decrypted record has a keyref");
    } else {
        FUZZ_CHECK(type == 0 && out.len == 0, "nothing released on failure");
        if (sbx_record_keyref(&ref, data, size) == 0)
            FUZZ_CHECK(ref.len > 1 && ref.ptr[ref.len - 1] == '\0', "keyref is a string");
    }
    (void)sbx_record_is_encrypted(data, size);

    sbx_buf_dispose(&out);
    FUZZ_CHECK(sbx_record_encrypt("file:" KEY_PATH, SBX_RECORD_BLOB, data, size, "ctx", 3, &rec) ==
                   0,
               "encrypt");
    FUZZ_CHECK(sbx_record_decrypt(&type, &out, rec.ptr, rec.len, "ctx", 3) == 0, "round trip");
    FUZZ_CHECK(type == SBX_RECORD_BLOB && out.len == size &&
                   (size == 0 || memcmp(out.ptr, data, size) == 0),
               "round trip gives the input back");
    sbx_buf_dispose(&out);
    sbx_buf_dispose(&ref);
    sbx_buf_dispose(&rec);
    return 0;
}
