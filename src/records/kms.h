/*
 * src/records/kms.h - the key server as a record key source (kms.c). Part
 * of libstrongbox-kms: nothing in libstrongbox may include this header.
 */
#ifndef SBX_RECORDS_KMS_H
#define SBX_RECORDS_KMS_H

/*
 * Register the "https://" key source of records (strongbox/sys/records.h).
 * Called once when libstrongbox-kms is loaded (its constructor); calling it
 * again is a no-op. @return 0, or SBX_EEXISTS when another source already
 * serves "https://".
 */
int sbx_record__kms_register(void);

#endif
