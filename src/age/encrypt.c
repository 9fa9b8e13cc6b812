/*
 * src/age/encrypt.c - the age encryptor: a sink that takes plaintext and
 * writes header, nonce and STREAM chunks to the sink below it.
 *
 * Implementation notes: plaintext collects in pipeline slots (8 chunks
 * each). A full slot is submitted as non-final only once more plaintext
 * arrives, so that finish() can submit the last slot with the final flag on
 * its last chunk (possibly a full chunk, or the single empty chunk of an
 * empty file: age.md §5). Sealed slots are written to dst in order.
 */
#include "age/header.h"
#include "age/payload.h"
#include "age/pipeline.h"
#include "strongbox/memory.h"
#include "strongbox/random.h"
#include "core/error.h"

#include <stdlib.h>
#include <string.h>

struct encryptor {
    sbx_sink base;
    sbx_sink *dst;   /* where ciphertext goes: the caller's sink or our armor encoder */
    sbx_sink *armor; /* owned armor encoder, or NULL */
    sbx_age_pipeline *pipe;
    sbx_age_slot *cur; /* slot being filled */
    size_t cap;
    bool failed, finished;
};

/* Write the oldest sealed slot to dst and free it. */
static int
drain_one(struct encryptor *e)
{
    sbx_age_slot *s = sbx_age__pipeline_oldest(e->pipe);
    int err;
    if (s == NULL)
        return 0;
    if (s->err < 0)
        return sbx__error(s->err, "chunk encryption failed in OpenSSL");
    err = sbx_sink_write(e->dst, s->out, s->in_len + SBX_AGE_TAG_LEN * s->nchunks);
    sbx_age__pipeline_release(e->pipe, s);
    return err;
}

static int
get_slot(struct encryptor *e)
{
    int err;
    while ((e->cur = sbx_age__pipeline_next_free(e->pipe)) == NULL) {
        if ((err = drain_one(e)) < 0)
            return err;
    }
    return 0;
}

static int
enc_write(sbx_sink *self, const uint8_t *data, size_t len)
{
    struct encryptor *e = (struct encryptor *)self;
    int err = 0;
    if (e->failed || e->finished)
        return sbx__error(SBX_EINVAL, "write to a failed or finished encryptor");
    while (len > 0) {
        if (e->cur == NULL && (err = get_slot(e)) < 0)
            break;
        if (e->cur->in_len == e->cap) {
            sbx_age__pipeline_submit(e->pipe, e->cur);
            e->cur = NULL;
            continue;
        }
        size_t take = e->cap - e->cur->in_len < len ? e->cap - e->cur->in_len : len;
        memcpy(e->cur->in + e->cur->in_len, data, take);
        e->cur->in_len += take;
        data += take;
        len -= take;
    }
    e->failed = err < 0;
    return err;
}

static int
enc_finish(sbx_sink *self)
{
    struct encryptor *e = (struct encryptor *)self;
    int err = 0;
    if (e->failed || e->finished)
        return sbx__error(SBX_EINVAL, "finish on a failed or finished encryptor");
    if (e->cur == NULL && (err = get_slot(e)) < 0)
        goto out;
    e->cur->last = true;
    sbx_age__pipeline_submit(e->pipe, e->cur);
    e->cur = NULL;
    while (sbx_age__pipeline_oldest(e->pipe) != NULL) {
        if ((err = drain_one(e)) < 0)
            goto out;
    }
    err = sbx_sink_finish(e->dst);
out:
    e->failed = err < 0;
    e->finished = err == 0;
    return err;
}

static void
enc_free(sbx_sink *self)
{
    struct encryptor *e = (struct encryptor *)self;
    if (e == NULL)
        return;
    sbx_age__pipeline_free(e->pipe);
    sbx_sink_free(e->armor);
    free(e);
}

/* Write the header (with its MAC) and the payload nonce to dst; start the pipeline. */
static int
write_header(struct encryptor *e, const sbx_age_header *hdr,
             const uint8_t file_key[SBX_AGE_FILE_KEY_LEN], const uint8_t nonce[SBX_AGE_NONCE_LEN],
             unsigned threads)
{
    sbx_buf bytes = SBX_BUF_INIT;
    int err;
    if ((err = sbx_age_header_encode(&bytes, hdr, file_key)) < 0 ||
        (err = sbx_buf_append(&bytes, nonce, SBX_AGE_NONCE_LEN)) < 0 ||
        (err = sbx_age__pipeline_new(&e->pipe, file_key, nonce, true, threads)) < 0)
        goto out;
    e->cap = sbx_age__slot_capacity(e->pipe);
    err = sbx_sink_write(e->dst, bytes.ptr, bytes.len);
out:
    sbx_buf_dispose(&bytes);
    return err;
}

/* see strongbox/sys/age.h */
int
sbx_age_header_wrap(sbx_age_header *hdr, sbx_recipient *const *recipients, size_t count,
                    const uint8_t file_key[SBX_AGE_FILE_KEY_LEN])
{
    int err;
    if (count == 0)
        return sbx__error(SBX_EINVAL, "no recipients: give at least one recipient or a "
                                      "passphrase");
    for (size_t i = 0; i < count; i++) {
        if (recipients[i] == NULL || recipients[i]->ops->version != SBX_RECIPIENT_OPS_VERSION)
            return sbx__error(SBX_EINVAL,
                              "recipient %zu is NULL or of an unknown interface "
                              "version",
                              i + 1);
        if ((recipients[i]->ops->flags & SBX_AGE_STANZA_ALONE) && count > 1)
            return sbx__error(SBX_EINVAL, "a passphrase cannot be combined with other "
                                          "recipients");
    }
    for (size_t i = 0; i < count; i++) {
        if ((err = recipients[i]->ops->wrap(recipients[i], hdr, file_key)) < 0)
            return err;
    }
    return 0;
}

/* The encryptor for a built header, with the given file key and nonce. */
static int
encryptor_start(sbx_sink **out, sbx_sink *dst, const sbx_age_header *hdr,
                const uint8_t file_key[SBX_AGE_FILE_KEY_LEN],
                const uint8_t nonce[SBX_AGE_NONCE_LEN], const sbx_age_encrypt_options *opts)
{
    int err;
    *out = NULL;
    if (opts != NULL && opts->version != SBX_AGE_ENCRYPT_OPTIONS_VERSION)
        return sbx__error(SBX_EINVAL, "unknown sbx_age_encrypt_options version");
    struct encryptor *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return sbx__error_nomem();
    e->base.write = enc_write;
    e->base.finish = enc_finish;
    e->base.free = enc_free;
    e->dst = dst;
    if (opts != NULL && opts->armor) {
        if ((err = sbx_armor_encoder_new(&e->armor, dst)) < 0)
            goto fail;
        e->dst = e->armor;
    }
    if ((err = write_header(e, hdr, file_key, nonce, opts ? opts->threads : 0)) < 0)
        goto fail;
    *out = &e->base;
    return 0;
fail:
    enc_free(&e->base);
    return err;
}

/* see strongbox/sys/age.h */
int
sbx_age_encryptor_new_with_header(sbx_sink **out, sbx_sink *dst, const sbx_age_header *hdr,
                                  const uint8_t file_key[SBX_AGE_FILE_KEY_LEN],
                                  const sbx_age_encrypt_options *opts)
{
    uint8_t nonce[SBX_AGE_NONCE_LEN];
    int err;
    *out = NULL;
    if ((err = sbx_random_bytes(nonce, sizeof(nonce))) < 0)
        return err;
    return encryptor_start(out, dst, hdr, file_key, nonce, opts);
}

int
sbx_age__encryptor_new_keyed(sbx_sink **out, sbx_sink *dst, sbx_recipient *const *recipients,
                             size_t count, const sbx_age_encrypt_options *opts,
                             const uint8_t file_key[SBX_AGE_FILE_KEY_LEN],
                             const uint8_t nonce[SBX_AGE_NONCE_LEN])
{
    sbx_age_header *hdr = NULL;
    int err;
    *out = NULL;
    if ((err = sbx_age_header_new(&hdr)) == 0 &&
        (err = sbx_age_header_wrap(hdr, recipients, count, file_key)) == 0)
        err = encryptor_start(out, dst, hdr, file_key, nonce, opts);
    sbx_age_header_free(hdr);
    return err;
}

/* see strongbox/age.h */
int
sbx_age_encryptor_new(sbx_sink **out, sbx_sink *dst, sbx_recipient *const *recipients, size_t count,
                      const sbx_age_encrypt_options *opts)
{
    struct {
        uint8_t file_key[SBX_AGE_FILE_KEY_LEN];
        uint8_t nonce[SBX_AGE_NONCE_LEN];
    } *fresh = sbx_secret_alloc(sizeof(*fresh));
    int err;
    *out = NULL;
    if (fresh == NULL)
        return SBX_ENOMEM;
    if ((err = sbx_random_bytes(fresh, sizeof(*fresh))) == 0)
        err = sbx_age__encryptor_new_keyed(out, dst, recipients, count, opts, fresh->file_key,
                                           fresh->nonce);
    sbx_secret_free(fresh, sizeof(*fresh));
    return err;
}

/* see strongbox/age.h */
int
sbx_age_encrypt_buf(sbx_buf *out, const void *plaintext, size_t len,
                    sbx_recipient *const *recipients, size_t count,
                    const sbx_age_encrypt_options *opts)
{
    sbx_sink *snk = NULL, *enc = NULL;
    int err;
    if ((err = sbx_sink_buf_new(&snk, out)) < 0)
        return err;
    if ((err = sbx_age_encryptor_new(&enc, snk, recipients, count, opts)) == 0 &&
        (err = sbx_sink_write(enc, plaintext, len)) == 0)
        err = sbx_sink_finish(enc);
    sbx_sink_free(enc);
    sbx_sink_free(snk);
    return err;
}
