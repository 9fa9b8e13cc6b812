/*
 * src/fileops/stanza_types.c - the structural rules of the stanzas that
 * describe a file: "sbx-pad" (padding marker) and "sbx-meta" (sealed
 * metadata).
 *
 * Implementation notes:
 *  - The rules go through the public stanza interface (strongbox/sys/age.h),
 *    so every header read checks them, whoever reads it: the pad decryptor,
 *    rotate, inspect, a plain sbx_age_decryptor_new().
 *  - sbx-pad: "-> sbx-pad v1", one argument, empty body (docs/pad.md). An
 *    unknown version is refused: the payload layout would be misread.
 *  - sbx-meta: "-> sbx-meta v1 SALT" with 16 bytes of salt and an AEAD body
 *    of 16..SBX_META_MAX_SIZE + 16 bytes (docs/seal.md). Other versions are
 *    accepted here (age and this version of sbx can still decrypt the file;
 *    reading the metadata says the version is unknown).
 *  - Registration runs once (pthread_once): from a constructor when the
 *    library is loaded, and from the fileops entry points, which return its
 *    error if it failed.
 */
#include "fileops/stanza_types.h"
#include "strongbox/sys/age.h"
#include "strongbox/encoding.h"
#include "strongbox/fileops.h"
#include "strongbox/pad.h"
#include "core/error.h"

#include <pthread.h>
#include <string.h>

#define META_SALT_LEN 16

static int
pad_check(const sbx_age_stanza *s, size_t index)
{
    (void)index;
    if (s->nargs != 1 || s->body_len != 0)
        return sbx__error(SBX_EHEADER,
                          "malformed %s stanza: expected one argument and an empty "
                          "body",
                          SBX_PAD_STANZA_TYPE);
    if (strcmp(s->args[0], SBX_PAD_STANZA_VERSION) != 0)
        return sbx__error(SBX_EHEADER,
                          "the file is padded with an unknown padding version; upgrade sbx, or "
                          "decrypt with age and remove the padding by hand");
    return 0;
}

static int
meta_check(const sbx_age_stanza *s, size_t index)
{
    uint8_t salt[SBX_BASE64_DECODED_MAX(SBX_BASE64_NOPAD_LEN(META_SALT_LEN))];
    size_t salt_len = 0;
    if (s->nargs == 0)
        return sbx__error(SBX_EHEADER, "stanza %zu: malformed %s stanza: no version", index + 1,
                          SBX_META_STANZA_TYPE);
    if (strcmp(s->args[0], SBX_META_STANZA_VERSION) != 0)
        return 0; // a newer version: the metadata reader says so
    if (s->nargs != 2 ||
        sbx_base64_decode(salt, sizeof(salt), &salt_len, s->args[1], strlen(s->args[1]), false) <
            0 ||
        salt_len != META_SALT_LEN || s->body_len < 16 || s->body_len > SBX_META_MAX_SIZE + 16)
        return sbx__error(SBX_EHEADER,
                          "stanza %zu: malformed %s stanza: expected a 16-byte salt and an "
                          "encrypted body of at most %d bytes",
                          index + 1, SBX_META_STANZA_TYPE, SBX_META_MAX_SIZE + 16);
    return 0;
}

static const sbx_age_stanza_type pad_type = {
    SBX_AGE_STANZA_TYPE_VERSION, SBX_PAD_STANZA_TYPE, 0, pad_check, NULL,
};

static const sbx_age_stanza_type meta_type = {
    SBX_AGE_STANZA_TYPE_VERSION, SBX_META_STANZA_TYPE, 0, meta_check, NULL,
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int result;

static void
register_once(void)
{
    if ((result = sbx_age_stanza_type_register(&pad_type)) == 0)
        result = sbx_age_stanza_type_register(&meta_type);
}

/* see fileops/stanza_types.h */
int
sbx_fileops__stanza_types(void)
{
    pthread_once(&once, register_once);
    if (result < 0)
        return sbx__error(result, "cannot register the sbx-pad and sbx-meta stanza types");
    return 0;
}

__attribute__((constructor)) static void
register_at_load(void)
{
    (void)sbx_fileops__stanza_types();
}
