/* src/sign/internal.h - helpers shared by minisign.c and pem.c (internal). */
#ifndef SBX_SIGN_INTERNAL_H
#define SBX_SIGN_INTERNAL_H

#include "strongbox/sign.h"

/* Read src to its end into out; SBX_ETOOBIG (message names what) beyond limit bytes. */
int sbx_sign__read_all(sbx_buf *out, sbx_source *src, size_t limit, const char *what);

/* Pure Ed25519 (RFC 8032) through OpenSSL. sign: 0 or SBX_ECRYPTO; verify: 0 or SBX_EAUTH. */
int sbx_sign__ed25519_sign(uint8_t sig[64], const uint8_t seed[32], const uint8_t *msg, size_t len);
int sbx_sign__ed25519_verify(const uint8_t pk[32], const uint8_t sig[64], const uint8_t *msg,
                             size_t len);

#endif
