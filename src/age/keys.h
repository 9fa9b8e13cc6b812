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
/* sbx-kms (src/kms/envelope.c): one argument, a key URL https://host:port/NAME; the body a
 * printable key server ciphertext "sbx:v<N>:..." of at most 1024 bytes. */
int sbx_age__kms_check(const sbx_age_stanza *s, size_t index);

/* Key server identities (src/kms/envelope.c). */
bool sbx_age__is_kms_identity(const sbx_identity *id);
/*
 * Why a key server identity skipped a stanza (its server is not allowed), with
 * how to allow it; NULL when it skipped none or id is not a key server identity.
 * Borrowed: valid until id is freed.
 */
const char *sbx_age__kms_skipped(const sbx_identity *id);
/* Forget what the last file's stanzas left (skipped servers, failures): called per file. */
void sbx_age__kms_begin(sbx_identity *id);
/*
 * The first key server failure in the current file (a negative code, with its
 * message: server down, token refused, ciphertext refused), or 0. A failing
 * sbx-kms stanza does not fail the file at once: another stanza (another
 * server) may still open it; this is reported when none does.
 */
int sbx_age__kms_failure(const sbx_identity *id, const char **message);
/*
 * Rewrap an sbx-kms stanza's ciphertext to the key's latest version through
 * the server (POST .../rewrap, same context), with id's credentials and trust
 * rule; the new body is appended to body. Returns 0, SBX_EDENIED (server not
 * allowed), or the client's error.
 */
int sbx_age__kms_rewrap(sbx_identity *id, const sbx_age_stanza *s, sbx_buf *body,
                        unsigned *version);

/* Type-specific constructors used by the generic parsers in keys.c. */
int sbx_age__x25519_recipient_from_bytes(sbx_recipient **out, const uint8_t pk[32]);
int sbx_age__x25519_identity_from_bytes(sbx_identity **out, const uint8_t sk[32]);

#endif
