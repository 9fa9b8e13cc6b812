/*
 * src/kms/rotate_kms.c - rewrapping the sbx-kms stanzas of an age file to
 * their keys' latest versions (strongbox/rotate.h, sbx_rotate_kms_rewrap).
 *
 * Implementation notes:
 *  - Built on sbx_rotate_rewrite() (libstrongbox): the file is opened once
 *    (any of ids unwraps the file key; one header MAC check); the callback
 *    below replaces each sbx-kms stanza's body with the key server's rewrap
 *    of it (POST .../rewrap: the server never returns the file key) and
 *    copies every other stanza with its exact bytes; rotate encodes the new
 *    header with a new MAC under the same file key and copies the payload.
 *  - The end call (old == NULL) refuses a file without sbx-kms stanzas, so
 *    nothing is written for it.
 */
#include "strongbox/rotate.h"
#include "strongbox/kms.h"
#include "strongbox/sys/age.h"
#include "kms/envelope.h"
#include "core/error.h"

#include <string.h>

struct kms_rewrap {
    sbx_identity *kms; /* the key server identity that rewraps */
    size_t rewrapped;
};

static int
rewrap_stanza(sbx_age_header *h, const sbx_age_stanza *s, void *payload)
{
    struct kms_rewrap *k = payload;
    sbx_buf body = SBX_BUF_INIT;
    unsigned version;
    int err;
    if (s == NULL)
        return k->rewrapped > 0 ? 0
                                : sbx__error(SBX_EINVAL, "the file has no sbx-kms stanza: nothing "
                                                         "to rewrap (it is not encrypted to a key "
                                                         "server)");
    if (strcmp(s->type, sbx_kms__stanza_type.type) != 0)
        return sbx_age_header_copy_stanza(h, s);
    if ((err = sbx_kms__stanza_rewrap(k->kms, s, &body, &version)) == 0 &&
        (err = sbx_age_header_add_stanza(h, s->type, s->args, s->nargs, body.ptr, body.len)) == 0)
        k->rewrapped++;
    sbx_buf_dispose(&body);
    return err;
}

/* The first key server identity of ids, or NULL. */
static sbx_identity *
kms_identity(sbx_identity *const *ids, size_t nids)
{
    for (size_t i = 0; i < nids; i++) {
        if (sbx_kms__is_identity(ids[i]))
            return ids[i];
    }
    return NULL;
}

static int
no_kms_identity(sbx_rotate_report *report)
{
    if (report != NULL)
        memset(report, 0, sizeof(*report));
    return sbx__error(SBX_EINVAL, "no key server identity: give one made with "
                                  "sbx_identity_kms_new() to rewrap sbx-kms stanzas");
}

/* see strongbox/rotate.h */
int
sbx_rotate_kms_rewrap(sbx_sink *dst, sbx_source *src, sbx_identity *const *ids, size_t nids,
                      sbx_rotate_report *report)
{
    struct kms_rewrap k = {kms_identity(ids, nids), 0};
    if (k.kms == NULL)
        return no_kms_identity(report);
    sbx_kms__register();
    return sbx_rotate_rewrite(dst, src, ids, nids, rewrap_stanza, &k, report);
}

/* see strongbox/rotate.h */
int
sbx_rotate_kms_rewrap_file(const char *path, const char *out, sbx_identity *const *ids, size_t nids,
                           sbx_rotate_report *report)
{
    struct kms_rewrap k = {kms_identity(ids, nids), 0};
    if (k.kms == NULL)
        return no_kms_identity(report);
    sbx_kms__register();
    return sbx_rotate_rewrite_file(path, out, ids, nids, rewrap_stanza, &k, report);
}
