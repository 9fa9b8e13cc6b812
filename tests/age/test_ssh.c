/*
 * tests/age/test_ssh.c - SSH and PEM keys as age recipients and identities
 * (src/age/ssh.c, sshkey.c, pem.c; age.md §6.3, §6.4).
 *
 * Known answers: tests/vectors/ssh/ (see its README.md): an ed25519 and an
 * RSA-2048 key made by ssh-keygen and files encrypted to them by age 1.1.1.
 * Decrypting those files is the interoperability proof; the other direction
 * is tests/interop/ssh_interop.sh. RSA keys of other sizes are generated
 * here with OpenSSL.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/encoder.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "strongbox/age.h"
#include "strongbox/encoding.h"
#include "strongbox/error.h"
#include "helpers.h"

#ifndef SBX_SSH_VECTORS
#define SBX_SSH_VECTORS "tests/vectors/ssh"
#endif

#define PLAINTEXT "strongbox ssh test vector: encrypted by age 1.1.1\n"
#define ED_TAG    "3f6jwA"

/* ---- helpers ---- */

static void
read_vector(sbx_buf *out, const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", SBX_SSH_VECTORS, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open test vector %s", path);
    uint8_t buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        assert_sbx_ok(sbx_buf_append(out, buf, n));
    fclose(f);
}

/* A vector as a NUL-terminated string without its final newline. */
static char *
vector_line(const char *name)
{
    sbx_buf b = SBX_BUF_INIT;
    read_vector(&b, name);
    while (b.len > 0 && (b.ptr[b.len - 1] == '\n' || b.ptr[b.len - 1] == '\r'))
        b.len--;
    char *s = test_malloc_rand(b.len + 1);
    memcpy(s, b.ptr, b.len);
    s[b.len] = '\0';
    sbx_buf_dispose(&b);
    return s;
}

static sbx_identity **
load_identities(const char *name, size_t *n)
{
    sbx_buf b = SBX_BUF_INIT;
    sbx_identity **ids = NULL;
    read_vector(&b, name);
    assert_sbx_ok(sbx_identities_parse(&ids, n, (const char *)b.ptr, b.len));
    assert_int_equal(*n, 1);
    sbx_buf_dispose(&b);
    return ids;
}

static void
decrypt_vector(const char *key, const char *file)
{
    size_t n;
    sbx_identity **ids = load_identities(key, &n);
    sbx_buf ct = SBX_BUF_INIT, pt = SBX_BUF_INIT;
    read_vector(&ct, file);
    assert_sbx_ok(sbx_age_decrypt_buf(&pt, ct.ptr, ct.len, ids, n, NULL));
    assert_int_equal(pt.len, strlen(PLAINTEXT));
    assert_memory_equal(pt.ptr, PLAINTEXT, pt.len);
    sbx_buf_dispose(&ct);
    sbx_buf_dispose(&pt);
    sbx_identities_free(ids, n);
}

/* Encrypt random data to r and decrypt it with ids. Returns the ciphertext in ct. */
static void
round_trip(sbx_recipient *r, sbx_identity **ids, size_t n, sbx_buf *ct)
{
    size_t len = test_rand_below(200000);
    uint8_t *msg = test_malloc_rand(len);
    sbx_buf pt = SBX_BUF_INIT;
    assert_sbx_ok(sbx_age_encrypt_buf(ct, msg, len, &r, 1, NULL));
    assert_sbx_ok(sbx_age_decrypt_buf(&pt, ct->ptr, ct->len, ids, n, NULL));
    assert_int_equal(pt.len, len);
    assert_memory_equal(pt.ptr, msg, len);
    sbx_buf_dispose(&pt);
    free(msg);
}

/* The first stanza line of an age file, NUL-terminated into line. */
static void
first_stanza(char *line, size_t cap, const sbx_buf *ct)
{
    const char *start = (const char *)memchr(ct->ptr, '\n', ct->len) + 1;
    const char *nl = memchr(start, '\n', ct->len - (size_t)(start - (const char *)ct->ptr));
    size_t n = (size_t)(nl - start);
    assert_true(n < cap);
    memcpy(line, start, n);
    line[n] = '\0';
}

static EVP_PKEY *
rsa_generate(unsigned bits)
{
    EVP_PKEY *k = EVP_RSA_gen(bits);
    assert_non_null(k);
    return k;
}

static void
pem_public(sbx_buf *out, EVP_PKEY *k, bool pkcs1)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data;
    if (pkcs1) {
        OSSL_ENCODER_CTX *ctx =
            OSSL_ENCODER_CTX_new_for_pkey(k, EVP_PKEY_PUBLIC_KEY, "PEM", "type-specific", NULL);
        assert_int_equal(OSSL_ENCODER_to_bio(ctx, b), 1);
        OSSL_ENCODER_CTX_free(ctx);
    } else {
        assert_int_equal(PEM_write_bio_PUBKEY(b, k), 1);
    }
    long n = BIO_get_mem_data(b, &data);
    assert_sbx_ok(sbx_buf_append(out, data, (size_t)n));
    BIO_free(b);
}

static void
pem_private(sbx_buf *out, EVP_PKEY *k, const char *pass)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data;
    const EVP_CIPHER *c = pass ? EVP_aes_256_cbc() : NULL;
    assert_int_equal(PEM_write_bio_PrivateKey(b, k, c, (unsigned char *)pass,
                                              pass ? (int)strlen(pass) : 0, NULL, NULL),
                     1);
    long n = BIO_get_mem_data(b, &data);
    assert_sbx_ok(sbx_buf_append(out, data, (size_t)n));
    BIO_free(b);
}

/* ---- known answers: files made by age 1.1.1 ---- */

static void
age_ssh_ed25519_file_decrypts_with_the_openssh_key(void **state)
{
    (void)state;
    decrypt_vector("ed25519", "ed25519.age");
}

static void
age_ssh_rsa_file_decrypts_with_the_openssh_key(void **state)
{
    (void)state;
    decrypt_vector("rsa2048", "rsa2048.age");
}

static void
age_armored_two_recipient_file_decrypts_with_either_key(void **state)
{
    (void)state;
    decrypt_vector("ed25519", "both.age.asc");
    decrypt_vector("rsa2048", "both.age.asc");
}

static void
ed25519_tag_matches_the_tag_age_wrote(void **state)
{
    char *line = vector_line("ed25519.pub"), stanza[256];
    sbx_recipient *r = NULL;
    sbx_buf ct = SBX_BUF_INIT;
    (void)state;
    assert_sbx_ok(sbx_recipient_parse(&r, line));
    assert_string_equal(sbx_recipient_type(r), "ssh-ed25519");
    assert_sbx_ok(sbx_age_encrypt_buf(&ct, "x", 1, &r, 1, NULL));
    first_stanza(stanza, sizeof(stanza), &ct);
    // "-> ssh-ed25519 3f6jwA <43 chars>"
    assert_int_equal(strlen(stanza), strlen("-> ssh-ed25519 " ED_TAG " ") + 43);
    assert_memory_equal(stanza, "-> ssh-ed25519 " ED_TAG " ", strlen("-> ssh-ed25519 " ED_TAG " "));
    sbx_buf_dispose(&ct);
    sbx_recipient_free(r);
    free(line);
}

static void
rsa_stanza_has_the_age_tag_and_a_modulus_sized_body(void **state)
{
    char *line = vector_line("rsa2048.pub"), stanza[256], age_stanza[256];
    sbx_recipient *r = NULL;
    sbx_buf ct = SBX_BUF_INIT, age_ct = SBX_BUF_INIT;
    (void)state;
    assert_sbx_ok(sbx_recipient_parse(&r, line));
    assert_sbx_ok(sbx_age_encrypt_buf(&ct, "x", 1, &r, 1, NULL));
    read_vector(&age_ct, "rsa2048.age");
    first_stanza(stanza, sizeof(stanza), &ct);
    first_stanza(age_stanza, sizeof(age_stanza), &age_ct);
    assert_string_equal(stanza, age_stanza); // "-> ssh-rsa <tag>"
    // 256-byte body: five full 64-column lines and one of 22 characters.
    const char *body = strchr((const char *)ct.ptr + 22, '\n') + 1;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(strchr(body, '\n') - body, 64);
        body = strchr(body, '\n') + 1;
    }
    assert_int_equal(strchr(body, '\n') - body, 22);
    sbx_buf_dispose(&ct);
    sbx_buf_dispose(&age_ct);
    sbx_recipient_free(r);
    free(line);
}

/* ---- round trips ---- */

static void
openssh_keys_round_trip(void **state)
{
    const char *keys[2] = {"ed25519", "rsa2048"};
    (void)state;
    for (int i = 0; i < 2; i++) {
        char pub[64];
        snprintf(pub, sizeof(pub), "%s.pub", keys[i]);
        char *line = vector_line(pub);
        size_t n;
        sbx_identity **ids = load_identities(keys[i], &n);
        sbx_recipient *r = NULL, *from_id = NULL;
        sbx_buf ct = SBX_BUF_INIT, a = SBX_BUF_INIT, b = SBX_BUF_INIT;
        assert_sbx_ok(sbx_recipient_parse(&r, line));
        round_trip(r, ids, n, &ct);
        // The identity's recipient is the same key (without the comment).
        assert_sbx_ok(sbx_identity_to_recipient(&from_id, ids[0]));
        assert_sbx_ok(sbx_recipient_to_string(r, &a));
        assert_sbx_ok(sbx_recipient_to_string(from_id, &b));
        assert_true(a.len > b.len && memcmp(a.ptr, b.ptr, b.len) == 0);
        assert_int_equal(a.ptr[b.len], ' ');
        sbx_buf_dispose(&a);
        sbx_buf_dispose(&b);
        sbx_buf_dispose(&ct);
        sbx_recipient_free(from_id);
        sbx_recipient_free(r);
        sbx_identities_free(ids, n);
        free(line);
    }
}

static void
recipient_string_round_trips_with_its_comment(void **state)
{
    char *line = vector_line("ed25519.pub");
    sbx_recipient *r = NULL;
    sbx_buf s = SBX_BUF_INIT;
    (void)state;
    assert_sbx_ok(sbx_recipient_parse(&r, line));
    assert_sbx_ok(sbx_recipient_to_string(r, &s));
    assert_int_equal(s.len, strlen(line));
    assert_memory_equal(s.ptr, line, s.len);
    sbx_buf_dispose(&s);
    sbx_recipient_free(r);
    free(line);
}

static void
identity_to_string_is_a_pem_key_that_parses_back(void **state)
{
    size_t n, m;
    sbx_identity **ids = load_identities("ed25519", &n), **again = NULL;
    sbx_buf pem = SBX_BUF_INIT, ct = SBX_BUF_INIT;
    sbx_recipient *r = NULL;
    (void)state;
    assert_sbx_ok(sbx_identity_to_string(ids[0], &pem));
    assert_true(test_contains((const char *)pem.ptr, "-----BEGIN PRIVATE KEY-----"));
    assert_sbx_ok(sbx_identities_parse(&again, &m, (const char *)pem.ptr, pem.len));
    assert_sbx_ok(sbx_identity_to_recipient(&r, ids[0]));
    round_trip(r, again, m, &ct);
    sbx_buf_dispose(&ct);
    sbx_buf_dispose(&pem);
    sbx_recipient_free(r);
    sbx_identities_free(again, m);
    sbx_identities_free(ids, n);
}

/* ---- RSA sizes and PEM forms ---- */

/* k's public key as PEM SPKI and PKCS#1 recipients, its private key as the identity. */
static void
rsa_pem_round_trip_key(EVP_PKEY *k)
{
    for (int form = 0; form < 2; form++) {
        sbx_buf pub = SBX_BUF_INIT, priv = SBX_BUF_INIT, ct = SBX_BUF_INIT;
        sbx_recipient **rs = NULL;
        sbx_identity **ids = NULL;
        size_t nr, ni;
        pem_public(&pub, k, form == 1);
        pem_private(&priv, k, NULL);
        assert_sbx_ok(sbx_recipients_parse(&rs, &nr, (const char *)pub.ptr, pub.len));
        assert_int_equal(nr, 1);
        assert_string_equal(sbx_recipient_type(rs[0]), "ssh-rsa");
        assert_sbx_ok(sbx_identities_parse(&ids, &ni, (const char *)priv.ptr, priv.len));
        round_trip(rs[0], ids, ni, &ct);
        sbx_buf_dispose(&pub);
        sbx_buf_dispose(&priv);
        sbx_buf_dispose(&ct);
        sbx_recipients_free(rs, nr);
        sbx_identities_free(ids, ni);
    }
}

static void
rsa_pem_round_trip(unsigned bits)
{
    EVP_PKEY *k = rsa_generate(bits);
    rsa_pem_round_trip_key(k);
    EVP_PKEY_free(k);
}

static void
rsa_2048_pem_keys_work(void **state)
{
    (void)state;
    rsa_pem_round_trip(2048);
}

static void
rsa_4096_pem_keys_work(void **state)
{
    (void)state;
    rsa_pem_round_trip(4096);
}

static void
rsa_1024_keys_are_refused(void **state)
{
    EVP_PKEY *k = rsa_generate(1024);
    sbx_buf pub = SBX_BUF_INIT, priv = SBX_BUF_INIT;
    sbx_recipient **rs = NULL;
    sbx_identity **ids = NULL;
    size_t n;
    (void)state;
    pem_public(&pub, k, false);
    pem_private(&priv, k, NULL);
    assert_sbx_err(sbx_recipients_parse(&rs, &n, (const char *)pub.ptr, pub.len), SBX_EUNSUPPORTED);
    assert_true(test_contains(sbx_error_last()->message, "1024 bits"));
    assert_null(rs);
    assert_sbx_err(sbx_identities_parse(&ids, &n, (const char *)priv.ptr, priv.len),
                   SBX_EUNSUPPORTED);
    assert_true(test_contains(sbx_error_last()->message, "2048"));
    assert_null(ids);
    sbx_buf_dispose(&pub);
    sbx_buf_dispose(&priv);
    EVP_PKEY_free(k);
}

static int
give_passphrase(sbx_buf *out, void *payload)
{
    int *calls = payload;
    (*calls)++;
    return sbx_buf_append(out, "correct horse", 13);
}

static int
give_wrong_passphrase(sbx_buf *out, void *payload)
{
    (void)payload;
    return sbx_buf_append(out, "wrong", 5);
}

static void
encrypted_pkcs8_key_needs_its_passphrase(void **state)
{
    EVP_PKEY *k = rsa_generate(2048);
    sbx_buf priv = SBX_BUF_INIT;
    sbx_identity **ids = NULL;
    size_t n;
    int calls = 0;
    (void)state;
    pem_private(&priv, k, "correct horse");
    assert_true(test_contains((const char *)priv.ptr, "ENCRYPTED PRIVATE KEY"));
    assert_sbx_err(sbx_identities_parse(&ids, &n, (const char *)priv.ptr, priv.len), SBX_ENOKEY);
    assert_sbx_err(sbx_identities_parse_ex(&ids, &n, (const char *)priv.ptr, priv.len,
                                           give_wrong_passphrase, NULL),
                   SBX_EAUTH);
    assert_sbx_ok(sbx_identities_parse_ex(&ids, &n, (const char *)priv.ptr, priv.len,
                                          give_passphrase, &calls));
    assert_int_equal(calls, 1);
    assert_int_equal(n, 1);
    sbx_identities_free(ids, n);
    sbx_buf_dispose(&priv);
    EVP_PKEY_free(k);
}

/* A hostile key cannot make us run 10^7+ PBKDF2 iterations: refused before asking. */
static void
encrypted_pkcs8_key_with_huge_work_factor_is_refused_before_the_prompt(void **state)
{
    sbx_buf priv = SBX_BUF_INIT;
    sbx_identity **ids = NULL;
    size_t n;
    int calls = 0;
    (void)state;
    read_vector(&priv, "rsa2048-pbkdf2-over-limit.p8.pem");
    assert_sbx_err(sbx_identities_parse_ex(&ids, &n, (const char *)priv.ptr, priv.len,
                                           give_passphrase, &calls),
                   SBX_EUNSUPPORTED);
    assert_int_equal(calls, 0);
    assert_true(test_contains(sbx_error_last()->message, "10000001"));
    sbx_buf_dispose(&priv);
}

/* ---- recipients files ---- */

static void
authorized_keys_lines_with_options_and_comments_parse(void **state)
{
    char *ed = vector_line("ed25519.pub"), *rsa = vector_line("rsa2048.pub");
    char text[4096];
    sbx_recipient **rs = NULL;
    size_t n;
    (void)state;
    snprintf(text, sizeof(text),
             "# authorized_keys\n"
             "from=\"10.0.0.1,host \\\"x\\\"\",no-pty %s\n"
             "\n"
             "  %s\r\n"
             "command=\"echo a b\"\t%s\n",
             ed, rsa, ed);
    assert_sbx_ok(sbx_recipients_parse(&rs, &n, text, strlen(text)));
    assert_int_equal(n, 3);
    assert_string_equal(sbx_recipient_type(rs[0]), "ssh-ed25519");
    assert_string_equal(sbx_recipient_type(rs[1]), "ssh-rsa");
    assert_string_equal(sbx_recipient_type(rs[2]), "ssh-ed25519");
    sbx_recipients_free(rs, n);
    free(ed);
    free(rsa);
}

static void
recipients_file_mixes_age_ssh_and_pem_keys(void **state)
{
    EVP_PKEY *k = rsa_generate(2048);
    sbx_buf text = SBX_BUF_INIT, pem = SBX_BUF_INIT;
    sbx_recipient **rs = NULL;
    size_t n;
    char *ed = vector_line("ed25519.pub");
    const char *age = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj\n";
    (void)state;
    pem_public(&pem, k, false);
    assert_sbx_ok(sbx_buf_append(&text, age, strlen(age)));
    assert_sbx_ok(sbx_buf_append(&text, pem.ptr, pem.len));
    assert_sbx_ok(sbx_buf_append(&text, ed, strlen(ed)));
    assert_sbx_ok(sbx_buf_append(&text, "\n", 1));
    assert_sbx_ok(sbx_recipients_parse(&rs, &n, (const char *)text.ptr, text.len));
    assert_int_equal(n, 3);
    assert_string_equal(sbx_recipient_type(rs[0]), "X25519");
    assert_string_equal(sbx_recipient_type(rs[1]), "ssh-rsa");
    assert_string_equal(sbx_recipient_type(rs[2]), "ssh-ed25519");
    sbx_recipients_free(rs, n);
    sbx_buf_dispose(&text);
    sbx_buf_dispose(&pem);
    EVP_PKEY_free(k);
    free(ed);
}

/* ---- malformed keys ---- */

static void
malformed_public_key_lines_are_refused(void **state)
{
    char *ed = vector_line("ed25519.pub");
    char bad[512];
    sbx_recipient *r = NULL;
    (void)state;
    // Truncated key data.
    snprintf(bad, sizeof(bad), "%.*s", 40, ed);
    assert_sbx_err(sbx_recipient_parse(&r, bad), SBX_EFORMAT);
    // Type on the line differs from the type inside the blob.
    snprintf(bad, sizeof(bad), "ssh-rsa %s", ed + strlen("ssh-ed25519 "));
    assert_sbx_err(sbx_recipient_parse(&r, bad), SBX_EFORMAT);
    // Two spaces (the strict single-key form), missing data.
    snprintf(bad, sizeof(bad), "ssh-ed25519  %s", ed + strlen("ssh-ed25519 "));
    assert_sbx_err(sbx_recipient_parse(&r, bad), SBX_EFORMAT);
    assert_sbx_err(sbx_recipient_parse(&r, "ssh-ed25519"), SBX_EFORMAT);
    // Not base64; non-canonical base64 (last character changed in its unused bits).
    assert_sbx_err(sbx_recipient_parse(&r, "ssh-ed25519 AAAA!AAA"), SBX_EFORMAT);
    // Trailing bytes after the key inside the blob.
    const char *blob = ed + strlen("ssh-ed25519 ");
    snprintf(bad, sizeof(bad), "ssh-ed25519 %.*sAAAA", (int)(strchr(blob, ' ') - blob), blob);
    assert_sbx_err(sbx_recipient_parse(&r, bad), SBX_EFORMAT);
    // Padding where none belongs (non-canonical).
    snprintf(bad, sizeof(bad), "ssh-ed25519 %.*s==", (int)(strchr(blob, ' ') - blob), blob);
    assert_sbx_err(sbx_recipient_parse(&r, bad), SBX_EFORMAT);
    // Unknown types are reported by name.
    assert_sbx_err(sbx_recipient_parse(&r, "ssh-dss AAAAB3NzaC1kc3MAAAA="), SBX_EUNSUPPORTED);
    assert_true(test_contains(sbx_error_last()->message, "ssh-dss"));
    // Control characters in the comment.
    snprintf(bad, sizeof(bad), "%s\x01", ed);
    assert_sbx_err(sbx_recipient_parse(&r, bad), SBX_EFORMAT);
    assert_null(r);
    free(ed);
}

static void
ecdsa_key_lines_are_reported_by_type(void **state)
{
    // An ecdsa-sha2-nistp256 authorized_keys line (public test key).
    const char *ec = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBE"
                     "x8rVbGZmd8+uHzVPYIQzpcmhMuUmXDh6x/e1pHJ8VJ1pS2V8zqsx3ZrUi17dEPmYzrGUaWX8"
                     "GfTgXP03tjMdXD8= comment\n";
    sbx_recipient **rs = NULL;
    size_t n;
    (void)state;
    assert_sbx_err(sbx_recipients_parse(&rs, &n, ec, strlen(ec)), SBX_EUNSUPPORTED);
    assert_true(test_contains(sbx_error_last()->message, "ecdsa-sha2-nistp256"));
    assert_true(test_contains(sbx_error_last()->message, "line 1"));
}

/* Flip one byte of the OpenSSH key's base64 body and expect a clean refusal. */
static void
tampered_openssh_keys_are_refused(void **state)
{
    sbx_buf key = SBX_BUF_INIT;
    (void)state;
    read_vector(&key, "ed25519");
    const char *body = strchr((const char *)key.ptr, '\n') + 1;
    size_t body_off = (size_t)(body - (const char *)key.ptr);
    size_t body_len = key.len - body_off - strlen("-----END OPENSSH PRIVATE KEY-----\n");
    for (size_t i = 0; i < body_len; i += 3) {
        sbx_buf t = SBX_BUF_INIT;
        sbx_identity **ids = NULL;
        size_t n = 0;
        char c = (char)key.ptr[body_off + i];
        if (c == '\n')
            continue;
        assert_sbx_ok(sbx_buf_append(&t, key.ptr, key.len));
        t.ptr[body_off + i] = (uint8_t)(c == 'A' ? 'B' : 'A');
        int rc = sbx_identities_parse(&ids, &n, (const char *)t.ptr, t.len);
        // A change in the comment or check bytes may still be a valid key; anything else fails.
        if (rc == 0)
            sbx_identities_free(ids, n);
        else
            assert_true(rc == SBX_EFORMAT || rc == SBX_EUNSUPPORTED);
        sbx_buf_dispose(&t);
    }
    // Truncations.
    for (size_t cut = 0; cut < key.len - 1; cut += 7) {
        sbx_identity **ids = NULL;
        size_t n = 0;
        assert_true(sbx_identities_parse(&ids, &n, (const char *)key.ptr, cut) < 0);
    }
    sbx_buf_dispose(&key);
}

/* One SSH wire string at *p (a u32 length, then the bytes); *p moves past it. */
static const uint8_t *
take_string(const uint8_t **p, size_t *len)
{
    const uint8_t *s = *p;
    *len = (size_t)s[0] << 24 | (size_t)s[1] << 16 | (size_t)s[2] << 8 | s[3];
    *p = s + 4 + *len;
    return s + 4;
}

static void
append_string(sbx_buf *b, const uint8_t *s, size_t len)
{
    uint8_t n[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
    assert_sbx_ok(sbx_buf_append(b, n, 4));
    assert_sbx_ok(sbx_buf_append(b, s, len));
}

/*
 * The rsa2048 OpenSSH key with its prime p replaced by a 4000-byte number:
 * the public half still matches, so only a bound on the private numbers stops
 * the pairwise check from testing a 32000-bit "prime" (a CPU sink).
 */
static void
openssh_rsa_key_with_an_oversized_prime_is_refused(void **state)
{
    sbx_buf key = SBX_BUF_INIT, priv = SBX_BUF_INIT, out = SBX_BUF_INIT;
    char *name = NULL, *header = NULL;
    unsigned char *der = NULL;
    long der_len = 0;
    uint8_t big[4000];
    sbx_identity **ids = NULL;
    size_t n = 0, len;
    (void)state;
    read_vector(&key, "rsa2048");
    BIO *in = BIO_new_mem_buf(key.ptr, (int)key.len), *pem = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_read_bio(in, &name, &header, &der, &der_len), 1);
    const uint8_t *p = der + 15; // "openssh-key-v1\0"
    for (int i = 0; i < 3; i++)
        take_string(&p, &len); // cipher, kdf, kdf options
    p += 4;                    // nkeys
    take_string(&p, &len);     // public key
    assert_sbx_ok(sbx_buf_append(&out, der, (size_t)(p - der)));
    const uint8_t *sec = take_string(&p, &len), *q = sec + 8;
    assert_sbx_ok(sbx_buf_append(&priv, sec, 8)); // the two check words
    for (int i = 0; i < 8; i++) {                 // type, n, e, d, iqmp, p, q, comment
        const uint8_t *f = take_string(&q, &len);
        if (i == 5) {
            test_rand_fill(big, sizeof(big));
            big[0] = 0x7f;
            append_string(&priv, big, sizeof(big));
        } else {
            append_string(&priv, f, len);
        }
    }
    for (uint8_t pad = 1; priv.len % 8 != 0; pad++)
        assert_sbx_ok(sbx_buf_append(&priv, &pad, 1));
    append_string(&out, priv.ptr, priv.len);
    assert_int_equal(PEM_write_bio(pem, "OPENSSH PRIVATE KEY", "", out.ptr, (long)out.len) > 0, 1);
    char *text;
    long text_len = BIO_get_mem_data(pem, &text);
    assert_sbx_err(sbx_identities_parse(&ids, &n, text, (size_t)text_len), SBX_EFORMAT);
    assert_true(test_contains(sbx_error_last()->message, "too large for the modulus"));
    assert_null(ids);
    BIO_free(in);
    BIO_free(pem);
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(der);
    sbx_buf_dispose(&key);
    sbx_buf_dispose(&priv);
    sbx_buf_dispose(&out);
}

/* ---- RSA exponent and modulus rules (issue 14, item 1) ---- */

/* An SSH mpint of a big-endian magnitude: a zero byte in front when its top bit is set. */
static void
append_mpint(sbx_buf *b, const uint8_t *mag, size_t len)
{
    uint8_t tmp[1024];
    size_t pad = (mag[0] & 0x80) ? 1 : 0;
    assert_true(len + pad <= sizeof(tmp));
    tmp[0] = 0;
    memcpy(tmp + pad, mag, len);
    append_string(b, tmp, len + pad);
}

/* The real 2048-bit modulus of the rsa2048.pub vector (big-endian, no sign byte). */
static size_t
vector_modulus(uint8_t n[512])
{
    char *line = vector_line("rsa2048.pub");
    const char *b64 = line + strlen("ssh-rsa ");
    size_t b64_len = (size_t)(strchr(b64, ' ') - b64), len, e_len, n_len;
    uint8_t blob[1024];
    assert_sbx_ok(sbx_base64_decode(blob, sizeof(blob), &len, b64, b64_len, true));
    const uint8_t *p = blob;
    take_string(&p, &len); // "ssh-rsa"
    take_string(&p, &e_len);
    const uint8_t *mod = take_string(&p, &n_len);
    if (mod[0] == 0) {
        mod++;
        n_len--;
    }
    assert_int_equal(n_len, 256);
    memcpy(n, mod, n_len);
    free(line);
    return n_len;
}

/* "ssh-rsa BASE64" of the exponent e and the modulus n (magnitudes). */
static void
ssh_rsa_line(char *out, size_t cap, const uint8_t *e, size_t e_len, const uint8_t *n, size_t n_len)
{
    sbx_buf wire = SBX_BUF_INIT;
    append_string(&wire, (const uint8_t *)"ssh-rsa", 7);
    append_mpint(&wire, e, e_len);
    append_mpint(&wire, n, n_len);
    int w = snprintf(out, cap, "ssh-rsa ");
    assert_true(sbx_base64_encode(out + w, cap - (size_t)w, wire.ptr, wire.len, true) > 0);
    sbx_buf_dispose(&wire);
}

/* An RSA public key of any numbers, through OpenSSL's import (which does not check them). */
static EVP_PKEY *
rsa_from_numbers(const uint8_t *e, size_t e_len, const uint8_t *n, size_t n_len)
{
    BIGNUM *bn_n = BN_bin2bn(n, (int)n_len, NULL), *bn_e = BN_bin2bn(e, (int)e_len, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    EVP_PKEY *k = NULL;
    assert_true(bn_n && bn_e && bld && ctx);
    assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n), 1);
    assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e), 1);
    assert_non_null(params = OSSL_PARAM_BLD_to_param(bld));
    assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
    assert_int_equal(EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params), 1);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(ctx);
    BN_free(bn_n);
    BN_free(bn_e);
    return k;
}

struct rsa_case {
    const char *what;
    uint8_t e[8];
    size_t e_len;
    bool even_modulus;
    int want;           /* 0 or the code */
    const char *needle; /* in the message of a refusal */
};

static const struct rsa_case rsa_cases[] = {
    {"e = 1", {1}, 1, false, SBX_EFORMAT, "public exponent is 1"},
    {"e = 2", {2}, 1, false, SBX_EFORMAT, "public exponent is even"},
    {"e = 65536", {1, 0, 0}, 3, false, SBX_EFORMAT, "public exponent is even"},
    {"e = 2^32 + 1", {1, 0, 0, 0, 1}, 5, false, SBX_EUNSUPPORTED, "larger than 2^32-1"},
    {"e = 2^56 + 1", {1, 0, 0, 0, 0, 0, 0, 1}, 8, false, SBX_EUNSUPPORTED, "larger than 2^32-1"},
    {"even modulus", {1, 0, 1}, 3, true, SBX_EFORMAT, "modulus is even"},
    {"e = 3", {3}, 1, false, 0, NULL},
    {"e = 35 (old OpenSSH)", {35}, 1, false, 0, NULL},
    {"e = 65537", {1, 0, 1}, 3, false, 0, NULL},
    {"e = 2^32 - 1", {0xff, 0xff, 0xff, 0xff}, 4, false, 0, NULL},
};

static void
expect_rsa_result(const struct rsa_case *c, const char *form, int rc)
{
    if (rc != c->want ||
        (c->needle != NULL && !test_contains(sbx_error_last()->message, c->needle))) {
        print_error("%s as %s: rc %s (%s), want %s with \"%s\"\n", c->what, form,
                    sbx_error_name(rc), rc < 0 ? sbx_error_last()->message : "",
                    sbx_error_name(c->want), c->needle ? c->needle : "");
        fail();
    }
}

/* One case as a -r string, a recipients file line, and PEM SPKI and PKCS#1 blocks. */
static void
check_rsa_case(const struct rsa_case *c, const uint8_t *mod, size_t mod_len)
{
    uint8_t n[512];
    char line[1024], file[1100];
    sbx_recipient *r = NULL, **rs = NULL;
    size_t count = 0;
    memcpy(n, mod, mod_len);
    if (c->even_modulus)
        n[mod_len - 1] &= 0xfe;
    ssh_rsa_line(line, sizeof(line), c->e, c->e_len, n, mod_len);
    expect_rsa_result(c, "an ssh-rsa string", sbx_recipient_parse(&r, line));
    sbx_recipient_free(r);
    snprintf(file, sizeof(file), "# keys\n%s someone@example\n", line);
    expect_rsa_result(c, "a recipients file",
                      sbx_recipients_parse(&rs, &count, file, strlen(file)));
    sbx_recipients_free(rs, count);
    EVP_PKEY *k = rsa_from_numbers(c->e, c->e_len, n, mod_len);
    for (int pkcs1 = 0; pkcs1 < 2; pkcs1++) {
        sbx_buf pem = SBX_BUF_INIT;
        pem_public(&pem, k, pkcs1 == 1);
        expect_rsa_result(c, pkcs1 ? "PEM RSA PUBLIC KEY" : "PEM PUBLIC KEY",
                          sbx_recipients_parse(&rs, &count, (const char *)pem.ptr, pem.len));
        if (c->want < 0)
            assert_null(rs);
        sbx_recipients_free(rs, count);
        rs = NULL;
        count = 0;
        sbx_buf_dispose(&pem);
    }
    EVP_PKEY_free(k);
}

static void
rsa_keys_with_a_bad_exponent_or_an_even_modulus_are_refused(void **state)
{
    uint8_t n[512];
    size_t n_len = vector_modulus(n);
    (void)state;
    for (size_t i = 0; i < sizeof(rsa_cases) / sizeof(rsa_cases[0]); i++)
        check_rsa_case(&rsa_cases[i], n, n_len);
}

/* With e = 1 the RSA step would be the identity: the stanza body would end in the file key. */
static void
rsa_exponent_one_never_reaches_a_stanza(void **state)
{
    uint8_t n[512], one = 1;
    char line[1024];
    sbx_recipient *r = NULL;
    size_t n_len = vector_modulus(n);
    (void)state;
    ssh_rsa_line(line, sizeof(line), &one, 1, n, n_len);
    assert_sbx_err(sbx_recipient_parse(&r, line), SBX_EFORMAT);
    assert_null(r);
    assert_true(test_contains(sbx_error_last()->message, "in the clear"));
}

/* A real key with e = 35 (as old OpenSSH made them) round-trips as PEM and as an ssh-rsa string. */
static void
rsa_keys_with_exponent_35_keep_working(void **state)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    BIGNUM *e = BN_new();
    EVP_PKEY *k = NULL;
    sbx_buf priv = SBX_BUF_INIT, text = SBX_BUF_INIT, ct = SBX_BUF_INIT;
    sbx_identity **ids = NULL;
    sbx_recipient *r = NULL, *back = NULL;
    size_t ni;
    (void)state;
    assert_true(ctx && e && BN_set_word(e, 35));
    assert_int_equal(EVP_PKEY_keygen_init(ctx), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 2048), 1);
    assert_int_equal(EVP_PKEY_CTX_set1_rsa_keygen_pubexp(ctx, e), 1);
    assert_int_equal(EVP_PKEY_generate(ctx, &k), 1);
    pem_private(&priv, k, NULL);
    assert_sbx_ok(sbx_identities_parse(&ids, &ni, (const char *)priv.ptr, priv.len));
    assert_sbx_ok(sbx_identity_to_recipient(&r, ids[0]));
    assert_sbx_ok(sbx_recipient_to_string(r, &text));
    assert_sbx_ok(sbx_buf_append(&text, "", 1));
    assert_sbx_ok(sbx_recipient_parse(&back, (const char *)text.ptr));
    round_trip(back, ids, ni, &ct);
    sbx_buf_dispose(&ct);
    rsa_pem_round_trip_key(k);
    sbx_recipient_free(back);
    sbx_recipient_free(r);
    sbx_identities_free(ids, ni);
    sbx_buf_dispose(&priv);
    sbx_buf_dispose(&text);
    EVP_PKEY_free(k);
    EVP_PKEY_CTX_free(ctx);
    BN_free(e);
}

static void
malformed_ssh_stanzas_fail_the_file_before_unwrapping(void **state)
{
    sbx_buf ct = SBX_BUF_INIT, pt = SBX_BUF_INIT, bad = SBX_BUF_INIT;
    sbx_identity *other = NULL;
    (void)state;
    assert_sbx_ok(sbx_identity_generate(&other)); // not the file's recipient
    read_vector(&ct, "ed25519.age");
    // Add an argument to the ssh-ed25519 stanza line.
    const char *nl = memchr(ct.ptr + 22, '\n', ct.len - 22);
    size_t at = (size_t)(nl - (const char *)ct.ptr);
    assert_sbx_ok(sbx_buf_append(&bad, ct.ptr, at));
    assert_sbx_ok(sbx_buf_append(&bad, " extra", 6));
    assert_sbx_ok(sbx_buf_append(&bad, ct.ptr + at, ct.len - at));
    assert_sbx_err(sbx_age_decrypt_buf(&pt, bad.ptr, bad.len, &other, 1, NULL), SBX_EHEADER);
    // An ssh-rsa stanza with two arguments.
    const char *hdr = "age-encryption.org/v1\n-> ssh-rsa AAAAAA extra\nAAAA\n--- "
                      "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n0123456789abcdef";
    assert_sbx_err(sbx_age_decrypt_buf(&pt, hdr, strlen(hdr), &other, 1, NULL), SBX_EHEADER);
    // Without a stanza of a known type it is just "no match".
    hdr = "age-encryption.org/v1\n-> ssh-Rsa AAAAAA extra\nAAAA\n--- "
          "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n0123456789abcdef";
    assert_sbx_err(sbx_age_decrypt_buf(&pt, hdr, strlen(hdr), &other, 1, NULL), SBX_ENOMATCH);
    sbx_identity_free(other);
    sbx_buf_dispose(&ct);
    sbx_buf_dispose(&bad);
    sbx_buf_dispose(&pt);
}

static void
wrong_ssh_key_gives_no_match(void **state)
{
    size_t n;
    sbx_identity **ids = load_identities("rsa2048", &n);
    sbx_buf ct = SBX_BUF_INIT, pt = SBX_BUF_INIT;
    (void)state;
    read_vector(&ct, "ed25519.age");
    assert_sbx_err(sbx_age_decrypt_buf(&pt, ct.ptr, ct.len, ids, n, NULL), SBX_ENOMATCH);
    sbx_buf_dispose(&ct);
    sbx_identities_free(ids, n);
}

static void
tampered_ssh_ed25519_body_gives_no_match(void **state)
{
    size_t n;
    sbx_identity **ids = load_identities("ed25519", &n);
    sbx_buf ct = SBX_BUF_INIT, pt = SBX_BUF_INIT;
    (void)state;
    read_vector(&ct, "ed25519.age");
    // The body line follows the stanza line; change its first character.
    uint8_t *body = (uint8_t *)memchr(ct.ptr + 22, '\n', ct.len - 22) + 1;
    *body = (uint8_t)(*body == 'A' ? 'B' : 'A');
    assert_sbx_err(sbx_age_decrypt_buf(&pt, ct.ptr, ct.len, ids, n, NULL), SBX_ENOMATCH);
    sbx_buf_dispose(&ct);
    sbx_buf_dispose(&pt);
    sbx_identities_free(ids, n);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(age_ssh_ed25519_file_decrypts_with_the_openssh_key),
        cmocka_unit_test(age_ssh_rsa_file_decrypts_with_the_openssh_key),
        cmocka_unit_test(age_armored_two_recipient_file_decrypts_with_either_key),
        cmocka_unit_test(ed25519_tag_matches_the_tag_age_wrote),
        cmocka_unit_test(rsa_stanza_has_the_age_tag_and_a_modulus_sized_body),
        cmocka_unit_test(openssh_keys_round_trip),
        cmocka_unit_test(recipient_string_round_trips_with_its_comment),
        cmocka_unit_test(identity_to_string_is_a_pem_key_that_parses_back),
        cmocka_unit_test(rsa_2048_pem_keys_work),
        cmocka_unit_test(rsa_4096_pem_keys_work),
        cmocka_unit_test(rsa_1024_keys_are_refused),
        cmocka_unit_test(encrypted_pkcs8_key_needs_its_passphrase),
        cmocka_unit_test(encrypted_pkcs8_key_with_huge_work_factor_is_refused_before_the_prompt),
        cmocka_unit_test(authorized_keys_lines_with_options_and_comments_parse),
        cmocka_unit_test(recipients_file_mixes_age_ssh_and_pem_keys),
        cmocka_unit_test(malformed_public_key_lines_are_refused),
        cmocka_unit_test(ecdsa_key_lines_are_reported_by_type),
        cmocka_unit_test(tampered_openssh_keys_are_refused),
        cmocka_unit_test(openssh_rsa_key_with_an_oversized_prime_is_refused),
        cmocka_unit_test(rsa_keys_with_a_bad_exponent_or_an_even_modulus_are_refused),
        cmocka_unit_test(rsa_exponent_one_never_reaches_a_stanza),
        cmocka_unit_test(rsa_keys_with_exponent_35_keep_working),
        cmocka_unit_test(malformed_ssh_stanzas_fail_the_file_before_unwrapping),
        cmocka_unit_test(wrong_ssh_key_gives_no_match),
        cmocka_unit_test(tampered_ssh_ed25519_body_gives_no_match),
    };
    test_seed_init("age/ssh");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
