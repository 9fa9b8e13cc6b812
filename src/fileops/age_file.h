/*
 * src/fileops/age_file.h - an age file opened through the public stanza
 * interface (strongbox/sys/age.h), for pad, seal and rotate (internal).
 *
 * Opening reads the header once (armor decoded first, as the armor mode
 * says), checks every registered stanza rule, unwraps the file key and
 * verifies the header MAC once. What follows the header is then read from
 * `in`, starting with sbx_age_header_rest().
 */
#ifndef SBX_FILEOPS_AGE_FILE_H
#define SBX_FILEOPS_AGE_FILE_H

#include "strongbox/sys/age.h"

typedef struct sbx_fileops__age_file {
    sbx_age_header *header; /* opened: holds the file key */
    sbx_source *in;         /* the payload follows here: armor (owned) or the caller's source */
    sbx_source *armor;      /* owned armor filter, or NULL */
    bool armored;           /* the input was armored */
} sbx_fileops__age_file;

/*
 * Open the age file read from src. armor: enum sbx_armor_mode (SBX_ARMOR_AUTO
 * detects, SBX_ARMOR_ONLY requires armor, anything else reads binary).
 * Returns 0 or the errors of sbx_age_header_read() / _unwrap() and of the
 * armor filter; on error f is closed.
 */
int sbx_fileops__age_file_open(sbx_fileops__age_file *f, sbx_source *src, int armor,
                               sbx_identity *const *ids, size_t nids);

/* Free the header (wiping the file key) and the armor filter. */
void sbx_fileops__age_file_close(sbx_fileops__age_file *f);

/*
 * A source that reads top and, when freed, frees top and then each of
 * under[0..n) that is not NULL (the sources top reads from). Returns 0 or
 * SBX_ENOMEM; on error nothing is freed.
 */
int sbx_fileops__owning_source_new(sbx_source **out, sbx_source *top, sbx_source *const *under,
                                   size_t n);

#endif
