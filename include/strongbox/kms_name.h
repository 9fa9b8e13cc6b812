/*
 * strongbox/kms_name.h - the key server's key-name rule, shared by the
 * client (libstrongbox-kms) and the server program, which links only the
 * core library.
 *
 * A key name is 1 to 128 characters of A-Z a-z 0-9 . _ - (ASCII only, so
 * the rule does not follow the locale) and does not start with '.'. Names
 * are case-sensitive and appear as is in URL paths (/v1/keys/NAME), which
 * is why no other character is allowed. A name prefix (for listing keys) is
 * 0 to 128 of the same characters, and may start with '.'.
 */
#ifndef STRONGBOX_KMS_NAME_H
#define STRONGBOX_KMS_NAME_H

#include "strongbox/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Longest key name, in bytes. */
#define SBX_KMS_KEY_NAME_MAX 128

/**
 * @brief Whether name is a valid key name (see above).
 * @return false for NULL, "", a name starting with '.', longer than
 *         SBX_KMS_KEY_NAME_MAX or holding any other character.
 */
SBX_EXTERN bool sbx_kms_key_name_valid(const char *name);

/**
 * @brief As sbx_kms_key_name_valid(), recording why a name is refused.
 * @return 0, or SBX_EINVAL with the rule in the message ("bad key name: use
 *         1-128 of A-Z a-z 0-9 . _ - not starting with '.'"; "no key name
 *         given" for NULL).
 */
SBX_EXTERN int sbx_kms_key_name_check(const char *name);

/**
 * @brief Whether prefix is a valid key-name prefix: 0 to SBX_KMS_KEY_NAME_MAX
 *        characters of A-Z a-z 0-9 . _ - (NULL is not).
 */
SBX_EXTERN bool sbx_kms_key_prefix_valid(const char *prefix);

#ifdef __cplusplus
}
#endif
#endif
