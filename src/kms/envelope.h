/*
 * src/kms/envelope.h - the sbx-kms stanza type, shared inside
 * libstrongbox-kms (envelope.c defines it; register.c registers it; the
 * key-server rotation rewraps its stanzas).
 */
#ifndef SBX_KMS_ENVELOPE_H
#define SBX_KMS_ENVELOPE_H

#include "strongbox/sys/age.h"

/* The rule of sbx-kms stanzas (registered when libstrongbox-kms is loaded). */
extern const sbx_age_stanza_type sbx_kms__stanza_type;

/* Register the sbx-kms stanza type (and the key-server record key source) once. */
void sbx_kms__register(void);

/* True when id is a key server identity (sbx_identity_kms_new()). */
bool sbx_kms__is_identity(const sbx_identity *id);

/*
 * Rewrap an sbx-kms stanza's ciphertext to the key's latest version through
 * the server (POST .../rewrap, same context), with id's credentials and trust
 * rule; the new body is appended to body. Returns 0, SBX_EDENIED (server not
 * allowed), SBX_EHEADER (a malformed stanza), or the client's error.
 */
int sbx_kms__stanza_rewrap(sbx_identity *id, const sbx_age_stanza *s, sbx_buf *body,
                           unsigned *version);

#endif
