/*
 * src/core/kms_name.c - the key-name rule (see strongbox/kms_name.h).
 */
#include "strongbox/kms_name.h"
#include "core/error.h"

#include <string.h>

/* ASCII classes by hand: <ctype.h> follows the locale (a Latin-1 locale would
 * take bytes >= 0x80 as letters). */
static bool
name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

/* see strongbox/kms_name.h */
bool
sbx_kms_key_prefix_valid(const char *prefix)
{
    if (prefix == NULL)
        return false;
    size_t n = strnlen(prefix, SBX_KMS_KEY_NAME_MAX + 1);
    if (n > SBX_KMS_KEY_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!name_char(prefix[i]))
            return false;
    }
    return true;
}

/* see strongbox/kms_name.h */
bool
sbx_kms_key_name_valid(const char *name)
{
    return name != NULL && name[0] != '\0' && name[0] != '.' && sbx_kms_key_prefix_valid(name);
}

/* see strongbox/kms_name.h */
int
sbx_kms_key_name_check(const char *name)
{
    if (name == NULL)
        return sbx__error(SBX_EINVAL, "no key name given");
    if (!sbx_kms_key_name_valid(name))
        return sbx__error(SBX_EINVAL,
                          "bad key name: use 1-%d of A-Z a-z 0-9 . _ - not starting with '.'",
                          SBX_KMS_KEY_NAME_MAX);
    return 0;
}
