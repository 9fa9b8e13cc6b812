/*
 * fuzz/legacy_fuzzer.c - the seed archives' parsers (src/fileops/migrate.c):
 * member names, the data member's scan (base64 of "Salted__" || salt ||
 * CBC blocks), the metadata's recorded hash and the streamed decryptor.
 *
 * Input: byte 0 picks the piece size the data is fed in (1-256 bytes, or
 * all at once when 0); the rest is NAME '\0' DATA '\0' META (missing parts
 * are empty; no META part means no metadata member). The wrapped password
 * member is fixed: "#fuzz-session-password" under the test key below, with
 * RSA-OAEP (made with `openssl pkeyutl -encrypt -pkeyopt rsa_padding_mode:oaep`).
 * The corpus's data members are `openssl enc -aes-256-cbc -a -salt` of small
 * files with that password, so the decryption paths are reached.
 *
 * Properties:
 *  - nothing crashes or leaks;
 *  - an accepted member name has no '/', '\', "..", leading '.' or byte
 *    below 0x20;
 *  - the scan gives the same result whatever the piece size;
 *  - the decryptor fed in pieces and sbx_legacy_decrypt() over the whole
 *    data agree: same result, same plaintext;
 *  - a decrypted plaintext is shorter than the ciphertext by 1-16 bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strongbox/migrate.h"
#include "fuzz_util.h"

/* A 1024-bit RSA test key made for this target (openssl genpkey); never use it elsewhere. */
static const char test_key[] = "-----BEGIN PRIVATE KEY-----\n"
                               "MIICdgIBADANBgkqhkiG9w0BAQEFAASCAmAwggJcAgEAAoGBAMMJPJUE54NPqo/O\n"
                               "ZBACTDbJepTyZSVatnt1VSjgBOxQP/bgSqrxPW+CJ35A5LPl4DMzQtUdB/xEIcF+\n"
                               "NbGIdNbiZ1BbGmTE8nFYqoAtrShIyPPf7cc+mA2z6L4sxNlxZ9R9enxfbEGYY0qW\n"
                               "y1bljtk9HliHmENwVzHxWMbzpvZVAgMBAAECgYBOnDd13N8vdvnJMqf0J+juIDEv\n"
                               "Pa/06WYpxrYHXpu9X+8YI3kVA1z+x9gBNEi6FcpS+LNUUHo6fH+ajLM5lkV47ZH5\n"
                               "wrURQjUEku+3HfSO6Fn3rO2COeuNRuqc3e6YzTRbGALmUmem+hAxY7VwTQXfZTqb\n"
                               "ChMpD4V6hrZhNNeitQJBAPzOiffeAZF+oJ219PVitj68e1sa47L92FjJqF5DGrOh\n"
                               "8y9pavXnRP5dmc3SE59p4jPwcv4fvVjE/eB4Ei/RqUcCQQDFf+TNckDDuf5MzJ1O\n"
                               "rmUVKAX5+O+gXReWw4W36Vlys4z3Xe2DFfeh97OOya139PMNOvVHbmUYgYYfJ3lV\n"
                               "s3GDAkEAkiPfM889ftsBhEnUMin/CiMw+AiCSk1dzG2+i8ck32SmTOkWsNIhWx3G\n"
                               "tGlVeJjf74B3KRo1/ePakvE2Kjh8LwJAS7f62qFhHykhzAPuk4ndCz1q/SlphYvr\n"
                               "TUvs6lO2jXk1JGmIc+dqJ1i2KJo9vW3V+U6PVzGF5N1TtIIHzMmdTQJAYtbytbYQ\n"
                               "e0KpjHT2Kxx6Wh8+sAkxhPDQLCG3A9+k+Q/nOwIeHrND2sndPuP4ApT5VvyCo98q\n"
                               "PssAao/c6zN5KA==\n"
                               "-----END PRIVATE KEY-----\n";

static const uint8_t wrapped[128] = {
    0x3a, 0x84, 0xbf, 0x72, 0x73, 0x62, 0x38, 0x50, 0xce, 0xd6, 0xc9, 0xe7, 0xa1, 0xe0, 0x8b, 0x66,
    0xc8, 0xa9, 0x47, 0xd2, 0xd7, 0x8e, 0x65, 0x4f, 0x19, 0xe0, 0xd5, 0x61, 0x9f, 0x02, 0x0b, 0x1d,
    0xe1, 0xce, 0x5d, 0x3d, 0xe9, 0xa9, 0x92, 0xdb, 0xc0, 0x14, 0x9f, 0xcc, 0xe8, 0x7d, 0xa2, 0x90,
    0x65, 0x29, 0x9f, 0xad, 0x32, 0x7d, 0x15, 0x2d, 0xb8, 0xc9, 0x44, 0xa4, 0x53, 0x1c, 0x9a, 0x77,
    0x7c, 0x6f, 0xe2, 0xb3, 0x56, 0x57, 0xb2, 0x23, 0xd0, 0x0f, 0x0a, 0x27, 0x61, 0x7b, 0xc7, 0x01,
    0xc0, 0xcc, 0x78, 0xbe, 0x9e, 0xa5, 0x4a, 0xf4, 0xfd, 0xf6, 0xf2, 0xa9, 0x33, 0x99, 0x08, 0x65,
    0x62, 0xb5, 0xb8, 0xa7, 0xaa, 0xbc, 0xde, 0xcb, 0xf5, 0x3f, 0xe3, 0xe2, 0x79, 0x0b, 0x08, 0x79,
    0x10, 0x7c, 0xfa, 0x6b, 0xf3, 0xb6, 0xaf, 0xd3, 0x06, 0xef, 0x06, 0xe6, 0xc0, 0xda, 0xeb, 0x94,
};

static sbx_legacy_key *
key(void)
{
    static sbx_legacy_key *k;
    if (k == NULL)
        FUZZ_CHECK(sbx_legacy_key_parse(&k, test_key, strlen(test_key), NULL, NULL) == 0,
                   "the test key parses");
    return k;
}

static void
fuzz_name(const uint8_t *p, size_t n)
{
    char name[300];
    if (n >= sizeof(name))
        return;
    memcpy(name, p, n);
    name[n] = '\0';
    if (sbx_legacy_member_name_check(name) != 0)
        return;
    FUZZ_CHECK(strchr(name, '/') == NULL && strchr(name, '\\') == NULL &&
                   strstr(name, "..") == NULL && name[0] != '.' && name[0] != '\0',
               "accepted names are plain");
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK((unsigned char)name[i] >= 0x20 && name[i] != 0x7f, "no C0 control or DEL");
}

static int
scan_in_pieces(sbx_legacy_scan **out, const uint8_t *p, size_t n, size_t piece)
{
    int err = sbx_legacy_scan_new(out);
    for (size_t i = 0; err == 0 && i < n; i += piece)
        err = sbx_legacy_scan_update(*out, p + i, n - i < piece ? n - i : piece);
    return err == 0 ? sbx_legacy_scan_finish(*out) : err;
}

static int
decrypt_in_pieces(sbx_buf *plain, const sbx_legacy_scan *scan, const sbx_legacy_members *m,
                  size_t piece)
{
    sbx_sink *buf = NULL, *dec = NULL;
    int err = sbx_sink_buf_new(&buf, plain);
    if (err == 0)
        err = sbx_legacy_decryptor_new(&dec, buf, key(), scan, m, NULL, NULL);
    for (size_t i = 0; err == 0 && i < m->data_len; i += piece)
        err = sbx_sink_write(dec, m->data + i, m->data_len - i < piece ? m->data_len - i : piece);
    if (err == 0)
        err = sbx_sink_finish(dec);
    sbx_sink_free(dec);
    sbx_sink_free(buf);
    return err;
}

static void
fuzz_data(const sbx_legacy_members *m, size_t piece)
{
    sbx_legacy_scan *whole = NULL, *pieces = NULL;
    sbx_buf a = SBX_BUF_INIT, b = SBX_BUF_INIT;
    int e1 = scan_in_pieces(&whole, m->data, m->data_len, m->data_len ? m->data_len : 1);
    int e2 = scan_in_pieces(&pieces, m->data, m->data_len, piece);
    FUZZ_CHECK(e1 == e2, "the scan does not depend on the piece size");
    if (e1 == 0) {
        int d1 = decrypt_in_pieces(&a, pieces, m, piece);
        int d2 = sbx_legacy_decrypt(&b, key(), m, NULL, NULL);
        FUZZ_CHECK(d1 == d2, "streamed and one-shot decryption agree");
        FUZZ_CHECK(d1 != 0 || (a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0)),
                   "same plaintext");
        FUZZ_CHECK(d2 == 0 || b.len == 0, "nothing released by a failed one-shot decryption");
    }
    sbx_legacy_scan_free(whole);
    sbx_legacy_scan_free(pieces);
    sbx_buf_dispose(&a);
    sbx_buf_dispose(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t piece = data[0] == 0 ? SIZE_MAX : data[0], rest = size - 1;
    const uint8_t *p = data + 1, *end = p + rest;
    const uint8_t *z1 = memchr(p, 0, rest);
    const uint8_t *d = z1 != NULL ? z1 + 1 : end;
    const uint8_t *z2 = memchr(d, 0, (size_t)(end - d));
    sbx_legacy_members m = {d,
                            (size_t)((z2 != NULL ? z2 : end) - d),
                            wrapped,
                            sizeof(wrapped),
                            z2 != NULL ? z2 + 1 : NULL,
                            z2 != NULL ? (size_t)(end - z2 - 1) : 0};
    fuzz_name(p, (size_t)((z1 != NULL ? z1 : end) - p));
    fuzz_data(&m, piece);
    return 0;
}
