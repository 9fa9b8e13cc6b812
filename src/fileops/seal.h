/*
 * src/fileops/seal.h - seal internals shared with destroy.c and the tests
 * (internal). The sbx-meta stanza itself is public: strongbox/fileops.h.
 */
#ifndef SBX_FILEOPS_SEAL_H
#define SBX_FILEOPS_SEAL_H

#include "strongbox/fileops.h"

#include <sys/stat.h>

/*
 * The read-back check of a sealed file: read the header of path, open it
 * with file_key (one MAC check), decrypt every chunk and hash the plaintext
 * into digest (SHA-256); *size receives its length. Returns 0, SBX_EHEADER,
 * SBX_EMAC, SBX_EPAYLOAD, SBX_EIO.
 */
int sbx_seal__read_back(uint8_t digest[32], uint64_t *size, const char *path,
                        const uint8_t file_key[SBX_AGE_FILE_KEY_LEN]);

/*
 * sbx_destroy(), but only if path is still the file described by expect
 * (device, inode, size, modification time); otherwise SBX_EIO and nothing
 * is touched. Defined in destroy.c.
 */
int sbx_destroy__expect(sbx_destroy_report *report, const char *path,
                        const sbx_destroy_options *opts, const struct stat *expect);

#endif
