/*
 * cli/kms_dl.h - the key-server client library (libstrongbox-kms), loaded
 * only when a command needs it (--kms, a file with an sbx-kms stanza,
 * rotate --kms-rewrap), so that sbx starts with libstrongbox and libcrypto
 * alone, as fast as age.
 *
 * The library is libstrongbox-kms.so.0 beside the libstrongbox that sbx runs
 * with (the build tree, or PREFIX/LIBDIR when installed), else wherever the
 * loader finds it, else at its installed path. SBX_KMS_LIBRARY names another
 * file instead (for packagers and tests).
 * Loading it registers its sbx-kms stanza type into the libstrongbox that
 * sbx itself uses (sbx links the shared library: one copy per process).
 */
#ifndef SBX_CLI_KMS_DL_H
#define SBX_CLI_KMS_DL_H

#include "cli.h"

#include <strongbox/kms.h>
#include <strongbox/rotate.h>

/* The functions sbx calls in libstrongbox-kms. */
struct kms_dl {
    __typeof__(sbx_identity_kms_new_from_env) *identity_new_from_env;
    __typeof__(sbx_kms_client_new_from_env) *client_new_from_env;
    __typeof__(sbx_kms_client_free) *client_free;
    __typeof__(sbx_kms_parse_key_url) *parse_key_url;
    __typeof__(sbx_recipient_kms_new) *recipient_new;
    __typeof__(sbx_rotate_kms_rewrap_file) *rotate_rewrap_file;
    /* the sbx kms client commands (cli/kms_client.c) */
    __typeof__(sbx_kms_client_url) *client_url;
    __typeof__(sbx_kms_request) *request;
    __typeof__(sbx_kms_json_parse) *json_parse;
    __typeof__(sbx_kms_json_text) *json_text;
    __typeof__(sbx_kms_json_count) *json_count;
    __typeof__(sbx_kms_json_free) *json_free;
    __typeof__(sbx_kms_age_recipient) *age_recipient;
    __typeof__(sbx_kms_age_identity) *age_identity;
};

/**
 * The loaded library's functions, loading it on first use.
 * @return NULL when it cannot be loaded; sbx_error_last() then names the
 *         library, where it was looked for and how to get it (SBX_EUNSUPPORTED).
 */
const struct kms_dl *kms_dl_get(void);

/**
 * An identity that opens sbx-kms stanzas by loading libstrongbox-kms when a
 * file first offers it one, then making the key server identity with
 * make(payload) and handing every call to it. Files without sbx-kms stanzas
 * never load the library.
 * @return 0 or SBX_ENOMEM.
 */
int kms_dl_lazy_identity(sbx_identity **out, int (*make)(sbx_identity **out, void *payload),
                         void *payload);

#endif
