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
#include "age/keys.h"
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

/* Build the header for file_key and write it, with the payload nonce, to dst. */
static int
write_header(struct encryptor *e, const uint8_t file_key[SBX_AGE_FILE_KEY_LEN],
             const uint8_t nonce[SBX_AGE_NONCE_LEN], sbx_recipient *const *recipients, size_t count,
             unsigned threads)
{
    sbx_age_header *hdr = NULL;
    sbx_buf bytes = SBX_BUF_INIT;
    int err;
    if ((err = sbx_age__header_new(&hdr)) < 0)
        return err;
    for (size_t i = 0; i < count; i++) {
        if ((err = recipients[i]->ops->wrap(recipients[i], hdr, file_key)) < 0)
            goto out;
    }
    if ((err = sbx_age__header_encode(&bytes, hdr, false)) < 0 ||
        (err = sbx_age__header_mac(hdr->mac, file_key, bytes.ptr, bytes.len)) < 0)
        goto out;
    bytes.len = 0;
    if ((err = sbx_age__header_encode(&bytes, hdr, true)) < 0 ||
        (err = sbx_buf_append(&bytes, nonce, SBX_AGE_NONCE_LEN)) < 0 ||
        (err = sbx_age__pipeline_new(&e->pipe, file_key, nonce, true, threads)) < 0)
        goto out;
    e->cap = sbx_age__slot_capacity(e->pipe);
    err = sbx_sink_write(e->dst, bytes.ptr, bytes.len);
out:
    sbx_buf_dispose(&bytes);
    sbx_age__header_free(hdr);
    return err;
}

static int
check_recipients(sbx_recipient *const *recipients, size_t count)
{
    if (count == 0)
        return sbx__error(SBX_EINVAL, "no recipients: give at least one recipient or a "
                                      "passphrase");
    for (size_t i = 0; i < count; i++) {
        if (recipients[i] == NULL)
            return sbx__error(SBX_EINVAL, "recipient %zu is NULL", i + 1);
        if (recipients[i]->ops->alone && count > 1)
            return sbx__error(SBX_EINVAL, "a passphrase cannot be combined with other "
                                          "recipients");
    }
    return 0;
}

int
sbx_age__encryptor_new_keyed(sbx_sink **out, sbx_sink *dst, sbx_recipient *const *recipients,
                             size_t count, const sbx_age_encrypt_options *opts,
                             const uint8_t file_key[SBX_AGE_FILE_KEY_LEN],
                             const uint8_t nonce[SBX_AGE_NONCE_LEN])
{
    int err;
    *out = NULL;
    if ((err = check_recipients(recipients, count)) < 0)
        return err;
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
    if ((err = write_header(e, file_key, nonce, recipients, count, opts ? opts->threads : 0)) < 0)
        goto fail;
    *out = &e->base;
    return 0;
fail:
    enc_free(&e->base);
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
