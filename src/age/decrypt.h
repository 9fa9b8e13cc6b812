/* src/age/decrypt.h - header opening shared by the decryptors (internal). */
#ifndef SBX_AGE_DECRYPT_H
#define SBX_AGE_DECRYPT_H

#include "strongbox/age.h"

/*
 * Read the header from src into pending (which then also holds whatever was
 * read past it), validate its stanzas, unwrap the file key with the
 * identities and verify the header MAC. *header_len receives the header's
 * size; bytes pending->ptr[*header_len..pending->len) are payload.
 * Returns 0, SBX_EHEADER, SBX_ENOMATCH, SBX_EMAC, SBX_EIO, SBX_ENOMEM.
 */
int sbx_age__open_header(uint8_t file_key[SBX_AGE_FILE_KEY_LEN], sbx_buf *pending,
                         size_t *header_len, sbx_source *src, sbx_identity *const *ids,
                         size_t nids);

#endif
