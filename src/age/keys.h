/*
 * src/age/keys.h - recipient and identity types behind the opaque
 * sbx_recipient / sbx_identity (internal).
 *
 * Each key type (X25519, scrypt; later ssh-ed25519, ssh-rsa, KMS) supplies
 * an ops table. A recipient wraps the file key into one new stanza; an
 * identity tries to unwrap one stanza at a time.
 */
#ifndef SBX_AGE_KEYS_H
#define SBX_AGE_KEYS_H

#include "strongbox/age.h"
#include "age/header.h"

/* Result of sbx_identity_ops.unwrap for a stanza that is not for this identity. */
#define SBX_AGE_NOT_MINE 1

struct sbx_recipient_ops {
    const char *type; /* stanza type written */
    bool alone;       /* must be the only recipient of a file (scrypt) */
    int (*wrap)(const sbx_recipient *r, sbx_age_header *hdr,
                const uint8_t file_key[SBX_AGE_FILE_KEY_LEN]);
    int (*to_string)(const sbx_recipient *r, sbx_buf *out);
    void (*free)(sbx_recipient *r);
};

struct sbx_recipient {
    const struct sbx_recipient_ops *ops;
};

struct sbx_identity_ops {
    /*
     * Try to unwrap one (structurally validated) stanza. Returns 0 with the
     * file key, SBX_AGE_NOT_MINE, or a negative error that fails the file.
     */
    int (*unwrap)(sbx_identity *id, const sbx_age_stanza *s,
                  uint8_t file_key[SBX_AGE_FILE_KEY_LEN]);
    int (*to_string)(const sbx_identity *id, sbx_buf *out);
    int (*to_recipient)(sbx_recipient **out, const sbx_identity *id);
    void (*free)(sbx_identity *id);
};

struct sbx_identity {
    const struct sbx_identity_ops *ops;
};

/*
 * Structural checks of the stanza types this library knows, run on every
 * stanza before any unwrapping (a malformed known stanza fails the file,
 * whoever it is for). Unknown types pass. Returns 0 or SBX_EHEADER.
 */
int sbx_age__x25519_check(const sbx_age_stanza *s, size_t index);
int sbx_age__scrypt_check(const sbx_age_stanza *s, size_t index, size_t count);

/* Type-specific constructors used by the generic parsers in keys.c. */
int sbx_age__x25519_recipient_from_bytes(sbx_recipient **out, const uint8_t pk[32]);
int sbx_age__x25519_identity_from_bytes(sbx_identity **out, const uint8_t sk[32]);

#endif
