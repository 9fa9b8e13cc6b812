/*
 * src/fileops/rotate.c - key rotation of age files (rewrap or rekey), and
 * header rewrites for stanza types that rotate themselves.
 *
 * Implementation notes (age.md §3-5; public stanza interface only,
 * strongbox/sys/age.h):
 *  - Every rotation opens the file once (fileops/age_file.h): armor
 *    detected, one sbx_age_header_read() (parse + every registered stanza
 *    rule: a malformed sbx-pad marker is refused before anything is
 *    written), one sbx_age_header_unwrap() (file key + one MAC check).
 *  - Rewrite (the rewrap and sbx_rotate_rewrite()): a new header is built
 *    stanza by stanza by a callback, then once more at the end; it is
 *    encoded with a new MAC under the same file key
 *    (sbx_age_header_encode()). For a rewrap the callback keeps the stanzas
 *    that describe the file ("sbx-pad", and "sbx-meta", which is bound to
 *    the file key) and, at the end, wraps the file key to the new
 *    recipients.
 *  - The payload (sbx_age_header_rest(), then the source) is copied byte for
 *    byte by sbx_age_payload_copy(), which authenticates the last chunk as
 *    the final one at the position the size implies before the output is
 *    committed: one chunk of crypto refuses a truncated or extended file.
 *  - Rekey: the decryptor over the opened header, chained to
 *    sbx_age_encryptor_new_with_header() under a fresh file key, with the
 *    padding marker kept.
 *  - Armor: armored input gets an armor encoder on the output, so the
 *    payload copy stays byte-exact in the binary form.
 */
#include "strongbox/rotate.h"
#include "strongbox/fileops.h"
#include "strongbox/memory.h"
#include "strongbox/pad.h"
#include "strongbox/random.h"
#include "strongbox/sys/age.h"
#include "fileops/age_file.h"
#include "fileops/stanza_types.h"
#include "core/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool
must_be_alone(const sbx_recipient *r)
{
    return (r->ops->flags & SBX_AGE_STANZA_ALONE) != 0;
}

static int
check_recipients(sbx_recipient *const *recipients, size_t count)
{
    if (count == 0)
        return sbx__error(SBX_EINVAL, "no new recipients: give at least one");
    for (size_t i = 0; i < count; i++) {
        if (recipients[i] == NULL)
            return sbx__error(SBX_EINVAL, "new recipient %zu is NULL", i + 1);
        if (must_be_alone(recipients[i]) && count > 1)
            return sbx__error(SBX_EINVAL, "a passphrase cannot be combined with other "
                                          "recipients: age requires it to be alone");
    }
    return 0;
}

/* A passphrase must be alone: refuse it when the new header keeps a stanza of type. */
static int
refuse_kept_passphrase(sbx_recipient *const *recipients, size_t count, const char *type)
{
    for (size_t i = 0; i < count; i++) {
        if (!must_be_alone(recipients[i]))
            continue;
        if (strcmp(type, SBX_PAD_STANZA_TYPE) == 0)
            return sbx__error(SBX_EINVAL,
                              "the file is padded (sbx-pad stanza) and age requires a passphrase "
                              "stanza to be alone: rotate to a key (age1...), or decrypt and "
                              "re-encrypt without padding");
        return sbx__error(SBX_EINVAL,
                          "the file carries sealed metadata (%s stanza) and age requires a "
                          "passphrase stanza to be alone: rotate to a key (age1...), or rekey "
                          "(--rekey drops the metadata)",
                          type);
    }
    return 0;
}

/* ---- the payload ---- */

/*
 * Copy the payload of the opened file f to dst unchanged; its final chunk is
 * authenticated at the position the size implies (sbx_age_payload_copy()).
 */
static int
copy_payload(sbx_sink *dst, const sbx_fileops__age_file *f, uint64_t *total)
{
    int err = sbx_age_payload_copy(dst, f->header, f->in, total);
    if (err == SBX_EPAYLOAD)
        err = sbx__error(SBX_EPAYLOAD, "%s; not rotating a damaged file",
                         sbx_error_last()->message); // formatted before it is replaced
    return err;
}

/* ---- rewriting the header ---- */

/*
 * The new header, built by fn from the stanzas of the opened old one and
 * encoded with its MAC under the same file key, appended to out.
 */
static int
encode_new_header(sbx_buf *out, size_t *nstanzas, const sbx_age_header *old,
                  sbx_rotate_stanza_fn fn, void *payload)
{
    uint8_t *key = sbx_secret_alloc(SBX_AGE_FILE_KEY_LEN);
    sbx_age_header *h = NULL;
    int err;
    *nstanzas = 0;
    if (key == NULL)
        return sbx__error_nomem();
    if ((err = sbx_age_header_new(&h)) < 0)
        goto out;
    for (size_t i = 0; i < sbx_age_header_count(old) && err == 0; i++)
        err = fn(h, sbx_age_header_stanza(old, i), payload);
    if (err == 0 && (err = fn(h, NULL, payload)) == 0 &&
        (err = sbx_age_header_file_key(old, key)) == 0 &&
        (err = sbx_age_header_encode(out, h, key)) == 0)
        *nstanzas = sbx_age_header_count(h);
out:
    sbx_age_header_free(h);
    sbx_secret_free(key, SBX_AGE_FILE_KEY_LEN);
    return err;
}

/* Write the rewritten header of the opened file f to out, copy the payload, finish out. */
static int
rewrite_opened(sbx_sink *out, const sbx_fileops__age_file *f, sbx_rotate_stanza_fn fn,
               void *payload, sbx_rotate_report *rep)
{
    sbx_buf hdr = SBX_BUF_INIT;
    size_t hlen = 0;
    int err;
    (void)sbx_age_header_bytes(f->header, &hlen);
    rep->old_stanzas = sbx_age_header_count(f->header);
    rep->old_header_len = hlen;
    if ((err = encode_new_header(&hdr, &rep->new_stanzas, f->header, fn, payload)) < 0 ||
        (err = sbx_sink_write(out, hdr.ptr, hdr.len)) < 0 ||
        (err = copy_payload(out, f, &rep->payload_len)) < 0)
        goto out;
    rep->new_header_len = hdr.len;
    err = sbx_sink_finish(out);
out:
    sbx_buf_dispose(&hdr);
    return err;
}

/* A rewrap: the file-describing stanzas kept, then the file key wrapped to new recipients. */
struct rewrap {
    const sbx_age_header *old; /* opened: its file key is wrapped again */
    sbx_recipient *const *recipients;
    size_t count;
};

static int
rewrap_stanza(sbx_age_header *h, const sbx_age_stanza *s, void *payload)
{
    const struct rewrap *w = payload;
    uint8_t *key;
    int err;
    if (s != NULL) {
        // Both are bound to the file key, which a rewrap keeps; recipient stanzas are dropped.
        if (strcmp(s->type, SBX_PAD_STANZA_TYPE) != 0 && strcmp(s->type, SBX_META_STANZA_TYPE) != 0)
            return 0;
        if ((err = refuse_kept_passphrase(w->recipients, w->count, s->type)) < 0)
            return err;
        return sbx_age_header_copy_stanza(h, s);
    }
    if ((key = sbx_secret_alloc(SBX_AGE_FILE_KEY_LEN)) == NULL)
        return sbx__error_nomem();
    if ((err = sbx_age_header_file_key(w->old, key)) == 0)
        err = sbx_age_header_wrap(h, w->recipients, w->count, key);
    sbx_secret_free(key, SBX_AGE_FILE_KEY_LEN);
    return err;
}

/* ---- rekey ---- */

/* The new header of a rekey: the recipients, then the padding marker if the file had one. */
static int
rekey_header(sbx_age_header **h, const sbx_age_header *old, sbx_recipient *const *recipients,
             size_t count, const uint8_t key[SBX_AGE_FILE_KEY_LEN])
{
    const sbx_age_stanza *pad = sbx_age_header_find(old, SBX_PAD_STANZA_TYPE);
    int err;
    if ((pad != NULL && (err = refuse_kept_passphrase(recipients, count, pad->type)) < 0) ||
        (err = sbx_age_header_new(h)) < 0 ||
        (err = sbx_age_header_wrap(*h, recipients, count, key)) < 0)
        return err;
    return pad != NULL ? sbx_age_header_copy_stanza(*h, pad) : 0;
}

static int
rekey(sbx_sink *out, const sbx_fileops__age_file *f, sbx_recipient *const *recipients, size_t count,
      unsigned threads, sbx_rotate_report *rep)
{
    uint8_t *key = sbx_secret_alloc(SBX_AGE_FILE_KEY_LEN);
    sbx_age_header *h = NULL;
    sbx_source *dec = NULL;
    sbx_sink *enc = NULL;
    sbx_age_decrypt_options dopts = SBX_AGE_DECRYPT_OPTIONS_INIT;
    sbx_age_encrypt_options eopts = SBX_AGE_ENCRYPT_OPTIONS_INIT;
    int err;
    if (key == NULL)
        return sbx__error_nomem();
    dopts.threads = eopts.threads = threads;
    if ((err = sbx_age_decryptor_new_opened(&dec, f->header, f->in, &dopts)) < 0 ||
        (err = sbx_random_bytes(key, SBX_AGE_FILE_KEY_LEN)) < 0 ||
        (err = rekey_header(&h, f->header, recipients, count, key)) < 0 ||
        (err = sbx_age_encryptor_new_with_header(&enc, out, h, key, &eopts)) < 0 ||
        (err = sbx_stream_copy(enc, dec, &rep->payload_len)) < 0)
        goto out;
    rep->rekeyed = true;
    rep->new_stanzas = sbx_age_header_count(h);
out:
    sbx_sink_free(enc);
    sbx_source_free(dec);
    sbx_age_header_free(h);
    sbx_secret_free(key, SBX_AGE_FILE_KEY_LEN);
    return err;
}

/* ---- streams and files ---- */

/* What one rotation does with an opened file. */
struct job {
    sbx_recipient *const *recipients; /* rewrap / rekey */
    size_t count;
    bool rekey;
    unsigned threads;
    sbx_rotate_stanza_fn fn; /* a rewrite, when set */
    void *payload;
};

static int
run_job(sbx_sink *out, const sbx_fileops__age_file *f, const struct job *j, sbx_rotate_report *rep)
{
    if (j->fn != NULL)
        return rewrite_opened(out, f, j->fn, j->payload, rep);
    if (j->rekey)
        return rekey(out, f, j->recipients, j->count, j->threads, rep);
    struct rewrap w = {f->header, j->recipients, j->count};
    return rewrite_opened(out, f, rewrap_stanza, &w, rep);
}

/* Every rotation as a stream: armored input gives armored output. */
static int
rotate_stream(sbx_sink *dst, sbx_source *src, sbx_identity *const *ids, size_t nids,
              const struct job *j, sbx_rotate_report *report)
{
    sbx_fileops__age_file f;
    sbx_rotate_report rep;
    sbx_sink *armor = NULL;
    int err;
    memset(&rep, 0, sizeof(rep));
    if ((err = sbx_fileops__stanza_types()) < 0 ||
        (err = sbx_fileops__age_file_open(&f, src, SBX_ARMOR_AUTO, ids, nids)) < 0)
        goto out;
    rep.armored = f.armored;
    rep.padded = sbx_age_header_find(f.header, SBX_PAD_STANZA_TYPE) != NULL;
    if (!f.armored || (err = sbx_armor_encoder_new(&armor, dst)) == 0)
        err = run_job(armor != NULL ? armor : dst, &f, j, &rep);
    sbx_sink_free(armor);
    sbx_fileops__age_file_close(&f);
out:
    if (report != NULL)
        *report = rep;
    return err;
}

/* see strongbox/rotate.h */
int
sbx_rotate(sbx_sink *dst, sbx_source *src, sbx_identity *const *ids, size_t nids,
           sbx_recipient *const *recipients, size_t count, const sbx_rotate_options *opts,
           sbx_rotate_report *report)
{
    struct job j = {recipients, count, opts != NULL && opts->rekey, opts ? opts->threads : 0,
                    NULL,       NULL};
    int err;
    if (report != NULL)
        memset(report, 0, sizeof(*report));
    if (opts != NULL && opts->version != SBX_ROTATE_OPTIONS_VERSION)
        return sbx__error(SBX_EINVAL, "unknown sbx_rotate_options version");
    if (nids == 0)
        return sbx__error(SBX_EINVAL, "no identities: give the identity that opens the file");
    if ((err = check_recipients(recipients, count)) < 0)
        return err;
    return rotate_stream(dst, src, ids, nids, &j, report);
}

/* see strongbox/rotate.h */
int
sbx_rotate_rewrite(sbx_sink *dst, sbx_source *src, sbx_identity *const *ids, size_t nids,
                   sbx_rotate_stanza_fn fn, void *payload, sbx_rotate_report *report)
{
    struct job j = {NULL, 0, false, 0, fn, payload};
    if (report != NULL)
        memset(report, 0, sizeof(*report));
    if (nids == 0)
        return sbx__error(SBX_EINVAL, "no identities: give the identity that opens the file");
    if (fn == NULL)
        return sbx__error(SBX_EINVAL, "sbx_rotate_rewrite: no stanza function");
    return rotate_stream(dst, src, ids, nids, &j, report);
}

/* A rotation of the file at path, replaced atomically (or written to out). */
static int
rotate_file(const char *path, const char *out, sbx_identity *const *ids, size_t nids,
            sbx_recipient *const *recipients, size_t count, const sbx_rotate_options *opts,
            sbx_rotate_stanza_fn fn, void *payload, sbx_rotate_report *report)
{
    struct stat st;
    sbx_source *src = NULL;
    sbx_sink *dst = NULL;
    int err;
    if (report != NULL)
        memset(report, 0, sizeof(*report));
    if (stat(path, &st) != 0)
        return sbx__error_sys(errno == ENOENT ? SBX_ENOTFOUND : SBX_EIO, "cannot open %s", path);
    if (!S_ISREG(st.st_mode))
        return sbx__error(SBX_EINVAL,
                          "%s is not a regular file; rotate reads and replaces "
                          "files (use sbx_rotate() for streams)",
                          path);
    // in place, the file an input link names is replaced; a link at another out is refused
    unsigned out_flags = out == NULL || strcmp(out, path) == 0 ? SBX_ATOMIC_FOLLOW : 0;
    if ((err = sbx_source_file_new(&src, path)) < 0 ||
        (err = sbx_sink_atomic_file_new_ex(&dst, out != NULL ? out : path,
                                           (unsigned)st.st_mode & 0777, out_flags)) < 0)
        goto out;
    err = fn != NULL ? sbx_rotate_rewrite(dst, src, ids, nids, fn, payload, report)
                     : sbx_rotate(dst, src, ids, nids, recipients, count, opts, report);
out:
    sbx_sink_free(dst); // unfinished: the temporary file is removed, the target untouched
    sbx_source_free(src);
    return err;
}

/* see strongbox/rotate.h */
int
sbx_rotate_file(const char *path, const char *out, sbx_identity *const *ids, size_t nids,
                sbx_recipient *const *recipients, size_t count, const sbx_rotate_options *opts,
                sbx_rotate_report *report)
{
    return rotate_file(path, out, ids, nids, recipients, count, opts, NULL, NULL, report);
}

/* see strongbox/rotate.h */
int
sbx_rotate_rewrite_file(const char *path, const char *out, sbx_identity *const *ids, size_t nids,
                        sbx_rotate_stanza_fn fn, void *payload, sbx_rotate_report *report)
{
    if (fn == NULL) {
        if (report != NULL)
            memset(report, 0, sizeof(*report));
        return sbx__error(SBX_EINVAL, "sbx_rotate_rewrite_file: no stanza function");
    }
    return rotate_file(path, out, ids, nids, NULL, 0, NULL, fn, payload, report);
}
