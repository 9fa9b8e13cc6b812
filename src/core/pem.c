/*
 * src/core/pem.c - shared PEM key helpers (see pem.h).
 */
#include "core/pem.h"
#include "core/error.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#define BEGIN SBX_PEM_BEGIN
#define END   SBX_PEM_END

bool
sbx__pem_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * Check that text is one PEM block with only whitespace around it; give its
 * label (NUL-terminated) and extent.
 */
int
sbx__pem_one_block(const char *text, size_t len, char label[64], const char **start,
                   size_t *block_len)
{
    size_t b = 0, e = len;
    while (b < len && sbx__pem_space(text[b]))
        b++;
    while (e > b && sbx__pem_space(text[e - 1]))
        e--;
    if (e - b < strlen(BEGIN) || memcmp(text + b, BEGIN, strlen(BEGIN)) != 0)
        return sbx__error(SBX_EFORMAT, "not a PEM key (no \"-----BEGIN\" line)");
    const char *l = text + b + strlen(BEGIN), *dash = memchr(l, '-', e - b - strlen(BEGIN));
    if (dash == NULL || dash - l >= 64 || dash == l)
        return sbx__error(SBX_EFORMAT, "malformed PEM BEGIN line");
    memcpy(label, l, (size_t)(dash - l));
    label[dash - l] = '\0';
    for (const char *c = label; *c; c++) {
        if (!(*c == ' ' || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')))
            return sbx__error(SBX_EFORMAT, "malformed PEM BEGIN line");
    }
    // The last line must be the matching END line.
    char end_line[96];
    int n = snprintf(end_line, sizeof(end_line), "%s%s-----", END, label);
    if ((size_t)n > e - b || memcmp(text + e - (size_t)n, end_line, (size_t)n) != 0)
        return sbx__error(SBX_EFORMAT,
                          "the PEM block \"%s\" does not end with its END line (or "
                          "has text after it)",
                          label);
    if (memmem(text + b, e - b - (size_t)n, END, strlen(END)) != NULL)
        return sbx__error(SBX_EFORMAT, "more than one PEM block in a key file");
    *start = text + b;
    *block_len = e - b;
    return 0;
}

int
sbx__pem_pass_cb(char *pass, size_t size, size_t *len, const OSSL_PARAM params[], void *arg)
{
    struct sbx__pem_pass *st = arg;
    (void)params;
    *len = 0;
    if (!st->asked) {
        st->asked = true;
        if (st->cb == NULL) {
            st->err = SBX_ENOKEY;
            return 0;
        }
        int err = st->cb(&st->pass, st->payload);
        if (err < 0) {
            st->err = err;
            sbx_buf_dispose(&st->pass);
            return 0;
        }
    }
    if (st->err < 0)
        return 0;
    if (st->pass.len > size) {
        st->err = SBX_ETOOBIG;
        return 0;
    }
    if (st->pass.len > 0)
        memcpy(pass, st->pass.ptr, st->pass.len);
    *len = st->pass.len;
    return 1;
}

void
sbx__pem_pass_dispose(struct sbx__pem_pass *st)
{
    sbx_buf_dispose(&st->pass);
}

/* ---- work factor of encrypted PKCS#8 ---- */

/* Iteration count of a PBKDF2 AlgorithmIdentifier's parameters, or -1. */
static long
pbkdf2_iterations(const ASN1_TYPE *param)
{
    PBKDF2PARAM *kdf = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM), param);
    long iter = kdf != NULL ? ASN1_INTEGER_get(kdf->iter) : -1;
    PBKDF2PARAM_free(kdf);
    return iter;
}

/* Checks scrypt parameters (RFC 7914 section 7) against the limits. */
static int
check_scrypt(const ASN1_TYPE *param)
{
    SCRYPT_PARAMS *sp = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(SCRYPT_PARAMS), param);
    int err = 0;
    if (sp == NULL)
        return sbx__error(SBX_EFORMAT, "encrypted PKCS#8 key: malformed scrypt parameters");
    uint64_t n = 0, r = 0, p = 0;
    if (ASN1_INTEGER_get_uint64(&n, sp->costParameter) != 1 ||
        ASN1_INTEGER_get_uint64(&r, sp->blockSize) != 1 ||
        ASN1_INTEGER_get_uint64(&p, sp->parallelizationParameter) != 1)
        err = sbx__error(SBX_EFORMAT, "encrypted PKCS#8 key: malformed scrypt parameters");
    else if (n > SBX_PEM_SCRYPT_MAX_N || r > 32 || p > 16 || n * r * p > SBX_PEM_SCRYPT_MAX_N * 8)
        err = sbx__error(SBX_EUNSUPPORTED,
                         "encrypted PKCS#8 key: scrypt work factor N=%llu r=%llu p=%llu is over "
                         "the limit (N*r*p <= 2^23); re-encrypt the key with lower settings",
                         (unsigned long long)n, (unsigned long long)r, (unsigned long long)p);
    SCRYPT_PARAMS_free(sp);
    return err;
}

/* see core/pem.h */
int
sbx__pem_check_kdf(const char *block, size_t len)
{
    BIO *bio = BIO_new_mem_buf(block, len > INT32_MAX ? -1 : (int)len);
    X509_SIG *p8 = bio != NULL ? PEM_read_bio_PKCS8(bio, NULL, NULL, NULL) : NULL;
    const X509_ALGOR *alg = NULL;
    PBE2PARAM *pbe2 = NULL;
    int err = 0;
    BIO_free(bio);
    if (p8 == NULL) {
        ERR_clear_error();
        return 0; // not decodable here: the decoder reports it
    }
    X509_SIG_get0(p8, &alg, NULL);
    if (OBJ_obj2nid(alg->algorithm) == NID_pbes2 &&
        (pbe2 = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM), alg->parameter)) != NULL) {
        int kdf = OBJ_obj2nid(pbe2->keyfunc->algorithm);
        long iter = kdf == NID_id_pbkdf2 ? pbkdf2_iterations(pbe2->keyfunc->parameter) : 0;
        if (kdf == NID_id_pbkdf2 && (iter < 1 || iter > SBX_PEM_PBKDF2_MAX_ITER))
            err = sbx__error(SBX_EUNSUPPORTED,
                             "encrypted PKCS#8 key: PBKDF2 iteration count %ld is out of range "
                             "(1 to %d); re-encrypt the key with openssl pkcs8 -topk8 -iter N",
                             iter, SBX_PEM_PBKDF2_MAX_ITER);
        else if (kdf == NID_id_scrypt)
            err = check_scrypt(pbe2->keyfunc->parameter);
    } else if (OBJ_obj2nid(alg->algorithm) == NID_pbes2) {
        err = sbx__error(SBX_EFORMAT, "encrypted PKCS#8 key: malformed PBES2 parameters");
    }
    PBE2PARAM_free(pbe2);
    X509_SIG_free(p8);
    ERR_clear_error();
    return err;
}
