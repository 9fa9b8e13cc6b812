/*
 * src/records/records.h - internals shared by the encrypted-records files
 * (see strongbox/records.h and docs/records.md).
 */
#ifndef SBX_RECORDS_RECORDS_H
#define SBX_RECORDS_RECORDS_H

#include "strongbox/records.h"
#include "strongbox/sys/records.h"

/* Bytes of a file key's id stored in file-kind records. */
#define SBX_RECORD__KEY_ID_LEN 8

/*
 * The held key of a key file and its id (the first 8 bytes of
 * HKDF-SHA-256(key, no salt, "sbx record key id v1")); both borrowed for the
 * process life (keyfile.c). named: the path comes from a record being
 * decrypted (untrusted: a planted record could name a file of known content
 * and forge values), so it must already be held (used to encrypt, or
 * sbx_record_key_hold()) or be listed in SBX_RECORD_KEYS; else SBX_EDENIED.
 */
int sbx_record__key_get(const uint8_t **key, const uint8_t **key_id, const char *path, bool named);

/*
 * Length of the lowercase URL scheme and "://" that start s (len bytes), or 0
 * when s does not start with one (key_source.c).
 */
size_t sbx_record__scheme_len(const char *s, size_t len);

/*
 * The registered key source whose prefix starts keyref (len bytes, longer
 * than the prefix), or NULL. Lock-free; the source is static (key_source.c).
 */
const sbx_record_key_source *sbx_record__source_find(const char *keyref, size_t len);

/* Free the key registry (keyfile.c); call every key source's cleanup (key_source.c). */
void sbx_record__keys_cleanup(void);
void sbx_record__sources_cleanup(void);

#endif
