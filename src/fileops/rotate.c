/*
 * src/fileops/rotate.c - key rotation of age files (rewrap or rekey).
 *
 * Implementation notes:
 *  - Rewrap (age.md §3-4): sbx_age__open_header() reads the old header,
 *    validates every known stanza, unwraps the file key and verifies the
 *    old MAC. The new header keeps only the file-describing stanzas
 *    ("sbx-pad", and the sealed metadata "sbx-meta"), gets one new stanza per recipient from the
 * recipients' own wrap(), and a MAC computed over its encoding with the same file key. Then the
 * payload is copied byte for byte: the bytes read past the header first, then the rest of the input
 * in 1 MiB blocks. The copy keeps the nonce and the last 65,552 bytes, and before the output is
 *    committed the last chunk must open as the final chunk at the index the
 *    size implies: one chunk of crypto detects truncation and appended data.
 *  - The padding detector (strongbox/pad.h) is put first in the identity
 *    list, which both tells us the file is padded and rejects a malformed
 *    sbx-pad stanza before anything is written.
 *  - Rekey: the public decryptor and encryptor, chained; the marker
 *    recipient keeps a padded file padded (the padded plaintext is copied
 *    as it is).
 *  - Key server rewrap (sbx_rotate_kms_rewrap): the file key is opened as in
 *    a rewrap (any identity, usually the key server one), every sbx-kms
 *    stanza's body is replaced by the server's rewrap of it (POST .../rewrap,
 *    never the plaintext), every other stanza is kept with its exact bytes,
 *    and the header gets a new MAC under the same file key. The payload is
 *    copied as in a rewrap.
 *  - Armor: the input goes through armor detection; armored input gets an
 *    armor encoder on the output, so the payload copy stays byte-exact in
 *    the binary form.
 */
#include "strongbox/rotate.h"
#include "strongbox/pad.h"
#include "strongbox/memory.h"
#include "age/decrypt.h"
#include "age/header.h"
#include "age/keys.h"
#include "age/payload.h"
#include "core/error.h"
#include "fileops/seal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define COPY_SIZE (1024 * 1024)

static int
check_recipients(sbx_recipient *const *recipients, size_t count)
{
    if (count == 0)
        return sbx__error(SBX_EINVAL, "no new recipients: give at least one");
    for (size_t i = 0; i < count; i++) {
        if (recipients[i] == NULL)
            return sbx__error(SBX_EINVAL, "new recipient %zu is NULL", i + 1);
        if (recipients[i]->ops->alone && count > 1)
            return sbx__error(SBX_EINVAL, "a passphrase cannot be combined with other "
                                          "recipients: age requires it to be alone");
    }
    return 0;
}

static int
refuse_padded_passphrase(sbx_recipient *const *recipients, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (recipients[i]->ops->alone)
            return sbx__error(SBX_EINVAL,
                              "the file is padded (sbx-pad stanza) and age requires a passphrase "
                              "stanza to be alone: rotate to a key (age1...), or decrypt and "
                              "re-encrypt without padding");
    }
    return 0;
}

/* identities with the padding detector in front; free the array and list[0] */
static int
with_detector(sbx_identity ***list, sbx_identity *const *ids, size_t nids, bool *padded)
{
    int err;
    if ((*list = calloc(nids + 1, sizeof(**list))) == NULL)
        return sbx__error_nomem();
    if ((err = sbx_pad_detector_new(&(*list)[0], padded)) < 0) {
        free(*list);
        *list = NULL;
        return err;
    }
    memcpy(*list + 1, ids, nids * sizeof(**list));
    return 0;
}

static void
free_detector_list(sbx_identity **list)
{
    if (list != NULL)
        sbx_identity_free(list[0]);
    free(list);
}

/* The new header, encoded with its MAC, appended to out. */
static int
build_header(sbx_buf *out, const sbx_age_header *old, const uint8_t key[SBX_AGE_FILE_KEY_LEN],
             sbx_recipient *const *recipients, size_t count, size_t *nstanzas)
{
    sbx_age_header *hdr = NULL;
    int err;
    if ((err = sbx_age__header_new(&hdr)) < 0)
        return err;
    for (size_t i = 0; i < old->count && err == 0; i++) {
        const sbx_age_stanza *s = &old->stanzas[i];
        // Stanzas that describe the file, not a recipient, stay as they are: both are
        // bound to the file key, which a rewrap keeps.
        if (strcmp(s->type, SBX_PAD_STANZA_TYPE) == 0 || strcmp(s->type, SBX_META_STANZA_TYPE) == 0)
            err = sbx_age__header_add_stanza(hdr, s->type, (const char *const *)s->args, s->nargs,
                                             s->body, s->body_len);
    }
    for (size_t i = 0; i < count && err == 0; i++)
        err = recipients[i]->ops->wrap(recipients[i], hdr, key);
    if (err == 0 && (err = sbx_age__header_encode(out, hdr, false)) == 0 &&
        (err = sbx_age__header_mac(hdr->mac, key, out->ptr, out->len)) == 0) {
        out->len = 0;
        err = sbx_age__header_encode(out, hdr, true);
    }
    *nstanzas = hdr->count;
    sbx_age__header_free(hdr);
    return err;
}

/*
 * What the copy remembers: the payload nonce and the last sealed chunk's
 * worth of bytes, so the final chunk can be authenticated at the end.
 */
struct tail_window {
    uint8_t nonce[SBX_AGE_NONCE_LEN];
    uint8_t *buf; /* SBX_AGE_SEALED_CHUNK_SIZE bytes */
    size_t len;
    uint64_t total;
};

static void
window_update(struct tail_window *w, const uint8_t *p, size_t n)
{
    const size_t cap = SBX_AGE_SEALED_CHUNK_SIZE;
    for (size_t i = 0; w->total + i < SBX_AGE_NONCE_LEN && i < n; i++)
        w->nonce[w->total + i] = p[i];
    w->total += n;
    if (n >= cap) {
        memcpy(w->buf, p + n - cap, cap);
        w->len = cap;
    } else if (w->len + n <= cap) {
        memcpy(w->buf + w->len, p, n);
        w->len += n;
    } else {
        size_t keep = cap - n;
        memmove(w->buf, w->buf + w->len - keep, keep);
        memcpy(w->buf + keep, p, n);
        w->len = cap;
    }
}

/*
 * Authenticate the last chunk as the final one at the position the size
 * implies (age.md §5, random access): catches truncated and extended files
 * at the cost of one chunk. The other chunks are copied unverified.
 */
static int
check_last_chunk(const struct tail_window *w, const uint8_t key[SBX_AGE_FILE_KEY_LEN])
{
    uint64_t c = w->total - SBX_AGE_NONCE_LEN, chunks, last;
    EVP_CIPHER_CTX *ctx = NULL;
    uint8_t *plain;
    int err;
    chunks = (c + SBX_AGE_SEALED_CHUNK_SIZE - 1) / SBX_AGE_SEALED_CHUNK_SIZE;
    last = c - (chunks - 1) * SBX_AGE_SEALED_CHUNK_SIZE;
    if (last < SBX_AGE_TAG_LEN || (chunks > 1 && last == SBX_AGE_TAG_LEN))
        return sbx__error(SBX_EPAYLOAD, "the payload size is not a valid chunk layout: the file "
                                        "is truncated or has data appended; not rotating it");
    if ((plain = malloc(SBX_AGE_CHUNK_SIZE)) == NULL)
        return sbx__error_nomem();
    if ((err = sbx_age__payload_ctx(&ctx, key, w->nonce, false)) == 0)
        err =
            sbx_age__chunk_open(ctx, plain, w->buf + w->len - last, (size_t)last, chunks - 1, true);
    if (err == SBX_EAUTH)
        err = sbx__error(SBX_EPAYLOAD, "the last chunk does not verify as the final chunk: the "
                                       "file is truncated, extended or corrupted; not rotating "
                                       "it");
    sbx_wipe(plain, SBX_AGE_CHUNK_SIZE);
    free(plain);
    EVP_CIPHER_CTX_free(ctx);
    return err;
}

/* Copy the rest of the payload (pending bytes, then src to its end) and check its end. */
static int
copy_payload(sbx_sink *dst, const uint8_t *pending, size_t plen, sbx_source *src,
             const uint8_t key[SBX_AGE_FILE_KEY_LEN], uint64_t *total)
{
    struct tail_window w = {{0}, NULL, 0, 0};
    uint8_t *buf = malloc(COPY_SIZE);
    size_t got;
    int err;
    *total = 0;
    if (buf == NULL || (w.buf = malloc(SBX_AGE_SEALED_CHUNK_SIZE)) == NULL) {
        free(buf);
        return sbx__error_nomem();
    }
    window_update(&w, pending, plen);
    err = sbx_sink_write(dst, pending, plen);
    while (err == 0) {
        if ((err = sbx_source_read(src, buf, COPY_SIZE, &got)) < 0 || got == 0)
            break;
        window_update(&w, buf, got);
        err = sbx_sink_write(dst, buf, got);
    }
    *total = w.total;
    if (err == 0 && w.total < SBX_AGE_NONCE_LEN + SBX_AGE_TAG_LEN)
        err = sbx__error(SBX_EPAYLOAD,
                         "the payload is truncated (%llu bytes after the header); "
                         "not rotating a damaged file",
                         (unsigned long long)w.total);
    if (err == 0)
        err = check_last_chunk(&w, key);
    free(buf); // ciphertext only: nothing to wipe
    free(w.buf);
    return err;
}

/* The first key server identity of ids, or NULL. */
static sbx_identity *
kms_identity(sbx_identity *const *ids, size_t nids)
{
    for (size_t i = 0; i < nids; i++) {
        if (sbx_age__is_kms_identity(ids[i]))
            return ids[i];
    }
    return NULL;
}

/*
 * The header with every sbx-kms stanza's body rewrapped by the key server,
 * every other stanza kept as it is, and a new MAC, appended to out.
 */
static int
build_kms_header(sbx_buf *out, const sbx_age_header *old, const uint8_t key[SBX_AGE_FILE_KEY_LEN],
                 sbx_identity *kms)
{
    sbx_age_header *hdr = NULL;
    sbx_buf body = SBX_BUF_INIT;
    size_t rewrapped = 0;
    unsigned version;
    int err;
    if ((err = sbx_age__header_new(&hdr)) < 0)
        return err;
    for (size_t i = 0; i < old->count && err == 0; i++) {
        const sbx_age_stanza *s = &old->stanzas[i];
        const uint8_t *b = s->body;
        size_t blen = s->body_len;
        if (strcmp(s->type, "sbx-kms") == 0) {
            body.len = 0;
            if ((err = sbx_age__kms_rewrap(kms, s, &body, &version)) < 0)
                break;
            b = body.ptr;
            blen = body.len;
            rewrapped++;
        }
        err = sbx_age__header_add_stanza(hdr, s->type, (const char *const *)s->args, s->nargs, b,
                                         blen);
    }
    if (err == 0 && rewrapped == 0)
        err = sbx__error(SBX_EINVAL, "the file has no sbx-kms stanza: nothing to rewrap (it is "
                                     "not encrypted to a key server)");
    if (err == 0 && (err = sbx_age__header_encode(out, hdr, false)) == 0 &&
        (err = sbx_age__header_mac(hdr->mac, key, out->ptr, out->len)) == 0) {
        out->len = 0;
        err = sbx_age__header_encode(out, hdr, true);
    }
    sbx_buf_dispose(&body);
    sbx_age__header_free(hdr);
    return err;
}

/*
 * Rewrap: open the file key with ids, write a new header, copy the payload.
 * The new header is for recipients (count of them), or, with kms set, the
 * old header with its sbx-kms stanzas rewrapped by the key server.
 */
static int
rewrap(sbx_sink *out, sbx_source *in, sbx_identity *const *ids, size_t nids,
       sbx_recipient *const *recipients, size_t count, sbx_identity *kms, sbx_rotate_report *rep)
{
    uint8_t *key = sbx_secret_alloc(SBX_AGE_FILE_KEY_LEN);
    sbx_identity **list = NULL;
    sbx_age_header *old = NULL;
    sbx_buf pending = SBX_BUF_INIT, hdr = SBX_BUF_INIT;
    size_t hlen = 0, parsed = 0;
    int err;
    if (key == NULL)
        return SBX_ENOMEM;
    if ((err = with_detector(&list, ids, nids, &rep->padded)) < 0 ||
        (err = sbx_age__open_header(key, &pending, &hlen, in, list, nids + 1)) < 0 ||
        (err = sbx_age__header_parse(&old, pending.ptr, hlen, &parsed)) < 0)
        goto out;
    rep->old_stanzas = old->count;
    rep->old_header_len = hlen;
    if (kms != NULL) {
        rep->new_stanzas = old->count;
        err = build_kms_header(&hdr, old, key, kms);
    } else if ((err = rep->padded ? refuse_padded_passphrase(recipients, count) : 0) == 0) {
        err = build_header(&hdr, old, key, recipients, count, &rep->new_stanzas);
    }
    if (err < 0 || (err = sbx_sink_write(out, hdr.ptr, hdr.len)) < 0 ||
        (err = copy_payload(out, pending.ptr + hlen, pending.len - hlen, in, key,
                            &rep->payload_len)) < 0)
        goto out;
    rep->new_header_len = hdr.len;
    err = sbx_sink_finish(out);
out:
    sbx_secret_free(key, SBX_AGE_FILE_KEY_LEN);
    sbx_age__header_free(old);
    sbx_buf_dispose(&pending);
    sbx_buf_dispose(&hdr);
    free_detector_list(list);
    return err;
}

/* The recipients, plus the padding marker when padded. */
static int
rekey_recipients(sbx_recipient ***list, size_t *n, sbx_recipient *const *recipients, size_t count,
                 bool padded)
{
    int err;
    *n = count;
    if ((*list = calloc(count + 1, sizeof(**list))) == NULL)
        return sbx__error_nomem();
    memcpy(*list, recipients, count * sizeof(**list));
    if (!padded)
        return 0;
    if ((err = refuse_padded_passphrase(recipients, count)) < 0 ||
        (err = sbx_pad_marker_recipient_new(&(*list)[count])) < 0)
        return err;
    (*n)++;
    return 0;
}

static int
rekey(sbx_sink *out, sbx_source *in, sbx_identity *const *ids, size_t nids,
      sbx_recipient *const *recipients, size_t count, unsigned threads, sbx_rotate_report *rep)
{
    sbx_identity **list = NULL;
    sbx_recipient **rlist = NULL;
    size_t nr = 0;
    sbx_source *dec = NULL;
    sbx_sink *enc = NULL;
    sbx_age_decrypt_options dopts = SBX_AGE_DECRYPT_OPTIONS_INIT;
    sbx_age_encrypt_options eopts = SBX_AGE_ENCRYPT_OPTIONS_INIT;
    int err;
    dopts.armor = SBX_ARMOR_NONE; // armor, if any, is already decoded
    dopts.threads = eopts.threads = threads;
    if ((err = with_detector(&list, ids, nids, &rep->padded)) < 0 ||
        (err = sbx_age_decryptor_new(&dec, in, list, nids + 1, &dopts)) < 0 ||
        (err = rekey_recipients(&rlist, &nr, recipients, count, rep->padded)) < 0 ||
        (err = sbx_age_encryptor_new(&enc, out, rlist, nr, &eopts)) < 0 ||
        (err = sbx_stream_copy(enc, dec, &rep->payload_len)) < 0)
        goto out;
    rep->rekeyed = true;
    rep->new_stanzas = nr;
out:
    sbx_sink_free(enc);
    sbx_source_free(dec);
    if (rlist != NULL && nr > count)
        sbx_recipient_free(rlist[count]);
    free(rlist);
    free_detector_list(list);
    return err;
}

/* Every rotation as a stream: armored input gives armored output. */
static int
rotate_stream(sbx_sink *dst, sbx_source *src, sbx_identity *const *ids, size_t nids,
              sbx_recipient *const *recipients, size_t count, const sbx_rotate_options *opts,
              sbx_identity *kms, sbx_rotate_report *report)
{
    sbx_rotate_report rep;
    sbx_source *in = NULL;
    sbx_sink *armor = NULL;
    int err;
    memset(&rep, 0, sizeof(rep));
    if ((err = sbx_armor_detect_new(&in, &rep.armored, src)) < 0)
        return err;
    if (rep.armored && (err = sbx_armor_encoder_new(&armor, dst)) < 0)
        goto out;
    if (opts != NULL && opts->rekey)
        err = rekey(armor ? armor : dst, in, ids, nids, recipients, count, opts->threads, &rep);
    else
        err = rewrap(armor ? armor : dst, in, ids, nids, recipients, count, kms, &rep);
out:
    sbx_sink_free(armor);
    sbx_source_free(in);
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
    int err;
    if (report != NULL)
        memset(report, 0, sizeof(*report));
    if (opts != NULL && opts->version != SBX_ROTATE_OPTIONS_VERSION)
        return sbx__error(SBX_EINVAL, "unknown sbx_rotate_options version");
    if (nids == 0)
        return sbx__error(SBX_EINVAL, "no identities: give the identity that opens the file");
    if ((err = check_recipients(recipients, count)) < 0)
        return err;
    return rotate_stream(dst, src, ids, nids, recipients, count, opts, NULL, report);
}

/* see strongbox/rotate.h */
int
sbx_rotate_kms_rewrap(sbx_sink *dst, sbx_source *src, sbx_identity *const *ids, size_t nids,
                      sbx_rotate_report *report)
{
    if (report != NULL)
        memset(report, 0, sizeof(*report));
    sbx_identity *kms = kms_identity(ids, nids);
    if (kms == NULL)
        return sbx__error(SBX_EINVAL, "no key server identity: give one made with "
                                      "sbx_identity_kms_new() to rewrap sbx-kms stanzas");
    return rotate_stream(dst, src, ids, nids, NULL, 0, NULL, kms, report);
}

/* A rotation of the file at path, replaced atomically (or written to out). */
static int
rotate_file(const char *path, const char *out, sbx_identity *const *ids, size_t nids,
            sbx_recipient *const *recipients, size_t count, const sbx_rotate_options *opts,
            bool kms, sbx_rotate_report *report)
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
    if ((err = sbx_source_file_new(&src, path)) < 0 ||
        (err = sbx_sink_atomic_file_new(&dst, out != NULL ? out : path,
                                        (unsigned)st.st_mode & 0777)) < 0)
        goto out;
    err = kms ? sbx_rotate_kms_rewrap(dst, src, ids, nids, report)
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
    return rotate_file(path, out, ids, nids, recipients, count, opts, false, report);
}

/* see strongbox/rotate.h */
int
sbx_rotate_kms_rewrap_file(const char *path, const char *out, sbx_identity *const *ids, size_t nids,
                           sbx_rotate_report *report)
{
    return rotate_file(path, out, ids, nids, NULL, 0, NULL, true, report);
}
