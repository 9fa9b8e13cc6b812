/*
 * src/age/keys.h - the built-in recipient and identity types (internal).
 *
 * Each type is defined through the public stanza interface
 * (strongbox/sys/age.h), exactly as an extension would define one: an ops
 * table for its recipients and identities, and a stanza type with its rule,
 * listed in registry.c from the start.
 */
#ifndef SBX_AGE_KEYS_H
#define SBX_AGE_KEYS_H

#include "strongbox/sys/age.h"
#include "age/header.h"

/* The built-in stanza types (registry.c lists them). */
extern const sbx_age_stanza_type sbx_age__x25519_type;
extern const sbx_age_stanza_type sbx_age__scrypt_type;
extern const sbx_age_stanza_type sbx_age__ssh_ed25519_type;
extern const sbx_age_stanza_type sbx_age__ssh_rsa_type;

/*
 * An unwrap() that tries its stanzas one at a time: one() answers for one
 * stanza (0, SBX_AGE_NOT_MINE or an error); the first answer that is not
 * SBX_AGE_NOT_MINE is the result.
 */
typedef int (*sbx_age__unwrap_one_fn)(const sbx_identity *id, const sbx_age_stanza *s,
                                      uint8_t file_key[SBX_AGE_FILE_KEY_LEN]);
int sbx_age__unwrap_each(const sbx_identity *id, const sbx_age_stanza *const *stanzas, size_t count,
                         uint8_t file_key[SBX_AGE_FILE_KEY_LEN], sbx_age__unwrap_one_fn one);

/* Type-specific constructors used by the generic parsers in keys.c. */
int sbx_age__x25519_recipient_from_bytes(sbx_recipient **out, const uint8_t pk[32]);
int sbx_age__x25519_identity_from_bytes(sbx_identity **out, const uint8_t sk[32]);

#endif
