/*
 * src/fileops/seal.h - the encrypted metadata stanza, for other tools that
 * rewrite headers (rotate) (internal).
 *
 * The stanza is "-> sbx-meta v1 SALT" (SALT: 16 random bytes, unpadded
 * base64); its body is ChaCha20-Poly1305 with a zero nonce under
 * HKDF-SHA-256(ikm = file key, salt = SALT, info = "sbx-meta v1") of the
 * metadata text (sbx_seal_meta_encode). A fresh salt per write gives a fresh
 * key, so the zero nonce is never reused.
 */
#ifndef SBX_FILEOPS_SEAL_H
#define SBX_FILEOPS_SEAL_H

#include "strongbox/fileops.h"
#include "age/header.h"

#include <sys/stat.h>

#define SBX_META_STANZA_TYPE    "sbx-meta"
#define SBX_META_STANZA_VERSION "v1"

/* Append an sbx-meta stanza holding meta, keyed from file_key. */
int sbx_seal__meta_stanza_add(sbx_age_header *hdr, const sbx_seal_meta *meta,
                              const uint8_t file_key[SBX_AGE_FILE_KEY_LEN]);

/* Decrypt and decode an sbx-meta stanza. 0, SBX_EFORMAT, SBX_EAUTH. */
int sbx_seal__meta_stanza_open(sbx_seal_meta *out, const sbx_age_stanza *s,
                               const uint8_t file_key[SBX_AGE_FILE_KEY_LEN]);

/*
 * sbx_destroy(), but only if path is still the file described by expect
 * (device, inode, size, modification time); otherwise SBX_EIO and nothing
 * is touched. Defined in destroy.c.
 */
int sbx_destroy__expect(sbx_destroy_report *report, const char *path,
                        const sbx_destroy_options *opts, const struct stat *expect);

#endif
