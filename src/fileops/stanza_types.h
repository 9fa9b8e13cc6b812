/*
 * src/fileops/stanza_types.h - the stanza types that describe a file rather
 * than a recipient: "sbx-pad" (strongbox/pad.h) and "sbx-meta"
 * (strongbox/fileops.h), registered with the age layer (internal).
 */
#ifndef SBX_FILEOPS_STANZA_TYPES_H
#define SBX_FILEOPS_STANZA_TYPES_H

/*
 * Register the rules of sbx-pad and sbx-meta (sbx_age_stanza_type_register),
 * once per process. A constructor does it when the library is loaded; the
 * entry points of pad, seal, rotate and inspect call it too, so a failed
 * registration is reported instead of silently leaving the rules out.
 * Returns 0 or the registration's error (the same one on every call).
 */
int sbx_fileops__stanza_types(void);

#endif
