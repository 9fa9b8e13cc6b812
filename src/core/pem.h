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

/* Wipe the passphrase kept in st. */
void sbx__pem_pass_dispose(struct sbx__pem_pass *st);

#endif
