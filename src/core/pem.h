/*
 * src/core/pem.h - the parts of reading PEM keys that every key user shares
 * (internal): locating exactly one PEM block, and the OpenSSL decoder
 * passphrase callback that asks the caller's sbx_passphrase_cb once.
 */
#ifndef SBX_CORE_PEM_H
#define SBX_CORE_PEM_H

#include "strongbox/common.h"

#include <openssl/core.h>

#define SBX_PEM_BEGIN "-----BEGIN "
#define SBX_PEM_END   "-----END "

/* State for sbx__pem_pass_cb; dispose with sbx__pem_pass_dispose(). */
struct sbx__pem_pass {
    sbx_passphrase_cb cb; /* NULL: a protected key fails with err = SBX_ENOKEY */
    void *payload;
    sbx_buf pass; /* the answer, asked at most once, wiped on dispose */
    bool asked;
    int err; /* the callback's failure, if any */
};

/* Whitespace around PEM blocks. */
bool sbx__pem_space(char c);

/*
 * Check that text is exactly one PEM block with only whitespace around it,
 * whose label is upper-case letters, digits and spaces; give the label
 * (NUL-terminated) and the block's extent. Returns 0 or SBX_EFORMAT.
 */
int sbx__pem_one_block(const char *text, size_t len, char label[64], const char **start,
                       size_t *block_len);

/* OSSL_PASSPHRASE_CALLBACK for OSSL_DECODER_CTX_set_passphrase_cb; arg is a struct sbx__pem_pass.
 */
int sbx__pem_pass_cb(char *pass, size_t size, size_t *len, const OSSL_PARAM params[], void *arg);

/* Limits on the passphrase work factor of encrypted PKCS#8 keys (a hostile key must not hang us).
 */
#define SBX_PEM_PBKDF2_MAX_ITER 10000000
#define SBX_PEM_SCRYPT_MAX_N    (UINT64_C(1) << 20)

/*
 * For an "ENCRYPTED PRIVATE KEY" block: checks the PBES2 key derivation's
 * cost (PBKDF2 iterations, scrypt N/r/p) before any passphrase is asked or
 * derived. 0 when acceptable or not PBES2 (the decoder judges the rest);
 * SBX_EUNSUPPORTED naming the parameter when over the limit; SBX_EFORMAT
 * when the parameters are malformed.
 */
int sbx__pem_check_kdf(const char *block, size_t len);

/* Wipe the passphrase kept in st. */
void sbx__pem_pass_dispose(struct sbx__pem_pass *st);

#endif
