/*
 * tests/packaging/static_link.c - a program outside the build, compiled by
 * install_test.sh against an installed tree with
 *     cc static_link.c $(pkg-config --cflags strongbox) ... $(pkg-config --static --libs strongbox)
 * and linked with libstrongbox.a. It uses age and tmpfile calls only, so it
 * must link with nothing but libstrongbox.a and what strongbox.pc lists
 * (libcrypto): a symbol from the key-server client would fail the link.
 *
 * Round trip: a new X25519 identity, sbx_age_encrypt_buf to its recipient,
 * sbx_age_decrypt_buf back, compare; then the age file through sbx_tmpfile()
 * and back. Prints "static_link: ok" and exits 0, or names the failed step.
 */
#include <stdio.h>
#include <string.h>

#include <strongbox/age.h>
#include <strongbox/error.h>
#include <strongbox/tmpfile.h>

static int
fail(const char *step)
{
    fprintf(stderr, "static_link: %s failed: %s\n", step, sbx_error_last()->message);
    return 1;
}

static int
tmpfile_round_trip(const sbx_buf *file)
{
    FILE *f = sbx_tmpfile();
    if (f == NULL)
        return fail("sbx_tmpfile");
    uint8_t back[4096];
    int bad = fwrite(file->ptr, 1, file->len, f) != file->len || fflush(f) != 0;
    rewind(f);
    bad = bad || file->len > sizeof(back) || fread(back, 1, sizeof(back), f) != file->len ||
          memcmp(back, file->ptr, file->len) != 0;
    fclose(f);
    if (bad)
        fprintf(stderr, "static_link: the tmpfile did not give back what was written\n");
    return bad;
}

int
main(void)
{
    static const char msg[] = "strongbox static link test: age and tmpfile only";
    sbx_identity *id = NULL;
    sbx_recipient *rcpt = NULL;
    sbx_buf file = SBX_BUF_INIT, plain = SBX_BUF_INIT;
    int rc = 1;

    if (sbx_identity_generate(&id) < 0) {
        rc = fail("sbx_identity_generate");
        goto out;
    }
    if (sbx_identity_to_recipient(&rcpt, id) < 0) {
        rc = fail("sbx_identity_to_recipient");
        goto out;
    }
    if (sbx_age_encrypt_buf(&file, msg, sizeof(msg), &rcpt, 1, NULL) < 0) {
        rc = fail("sbx_age_encrypt_buf");
        goto out;
    }
    if (sbx_age_decrypt_buf(&plain, file.ptr, file.len, &id, 1, NULL) < 0) {
        rc = fail("sbx_age_decrypt_buf");
        goto out;
    }
    if (plain.len != sizeof(msg) || memcmp(plain.ptr, msg, sizeof(msg)) != 0) {
        fprintf(stderr, "static_link: decryption did not give back the plaintext\n");
        goto out;
    }
    if (tmpfile_round_trip(&file) != 0)
        goto out;
    printf("static_link: ok (age file of %zu bytes, round trip and tmpfile)\n", file.len);
    rc = 0;
out:
    sbx_buf_dispose(&plain);
    sbx_buf_dispose(&file);
    sbx_recipient_free(rcpt);
    sbx_identity_free(id);
    return rc;
}
