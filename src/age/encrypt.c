/*
 * src/age/encrypt.c - the age encryptor: a sink that takes plaintext and
 * writes header, nonce and STREAM chunks to the sink below it.
 *
 * Implementation notes: a full 64 KiB buffer is sealed as a non-final chunk
 * only once more plaintext arrives, so that finish() can seal the last chunk
 * (possibly a full one, or the single empty chunk of an empty file) with the
 * final flag (age.md §5).
 */
#include "age/header.h"
#include "age/keys.h"
#include "age/payload.h"
#include "strongbox/memory.h"
#include "strongbox/random.h"
#include "core/error.h"

#include <stdlib.h>
#include <string.h>

struct encryptor {
    sbx_sink base;
    sbx_sink *dst;   /* where ciphertext goes: the caller's sink or our armor encoder */
    sbx_sink *armor; /* owned armor encoder, or NULL */
    EVP_CIPHER_CTX *ctx;
    uint64_t counter;
    uint8_t *pt; /* SBX_AGE_CHUNK_SIZE */
    uint8_t *ct; /* SBX_AGE_SEALED_CHUNK_SIZE */
    size_t fill;
    bool failed, finished;
};

static int
seal_chunk(struct encryptor *e, bool final)
{
    int err = sbx_age__chunk_seal(e->ctx, e->ct, e->pt, e->fill, e->counter, final);
    if (err == 0)
        err = sbx_sink_write(e->dst, e->ct, e->fill + SBX_AGE_TAG_LEN);
    e->counter++;
    e->fill = 0;
    return err;
}

static int
enc_write(sbx_sink *self, const uint8_t *data, size_t len)
{
    struct encryptor *e = (struct encryptor *)self;
    int err;
    if (e->failed || e->finished)
        return sbx__error(SBX_EINVAL, "write to a failed or finished encryptor");
    while (len > 0) {
        if (e->fill == SBX_AGE_CHUNK_SIZE && (err = seal_chunk(e, false)) < 0) {
            e->failed = true;
            return err;
        }
        size_t take = SBX_AGE_CHUNK_SIZE - e->fill < len ? SBX_AGE_CHUNK_SIZE - e->fill : len;
        memcpy(e->pt + e->fill, data, take);
        e->fill += take;
        data += take;
        len -= take;
    }
    return 0;
}

static int
enc_finish(sbx_sink *self)
{
    struct encryptor *e = (struct encryptor *)self;
    int err;
    if (e->failed || e->finished)
        return sbx__error(SBX_EINVAL, "finish on a failed or finished encryptor");
    if ((err = seal_chunk(e, true)) < 0 || (err = sbx_sink_finish(e->dst)) < 0) {
        e->failed = true;
        return err;
    }
    e->finished = true;
    return 0;
}

static void
enc_free(sbx_sink *self)
{
    struct encryptor *e = (struct encryptor *)self;
    if (e == NULL)
        return;
    EVP_CIPHER_CTX_free(e->ctx);
    sbx_wipe(e->pt, SBX_AGE_CHUNK_SIZE);
    free(e->pt);
    free(e->ct);
    sbx_sink_free(e->armor);
    free(e);
}

/* Build the header for file_key and write it, with the payload nonce, to dst. */
static int
write_header(struct encryptor *e, const uint8_t file_key[SBX_AGE_FILE_KEY_LEN],
             sbx_recipient *const *recipients, size_t count)
{
    sbx_age_header *hdr = NULL;
    sbx_buf bytes = SBX_BUF_INIT;
    uint8_t nonce[SBX_AGE_NONCE_LEN];
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
        (err = sbx_random_bytes(nonce, sizeof(nonce))) < 0 ||
        (err = sbx_buf_append(&bytes, nonce, sizeof(nonce))) < 0 ||
        (err = sbx_age__payload_ctx(&e->ctx, file_key, nonce, true)) < 0)
        goto out;
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

/* see strongbox/age.h */
int
sbx_age_encryptor_new(sbx_sink **out, sbx_sink *dst, sbx_recipient *const *recipients, size_t count,
                      const sbx_age_encrypt_options *opts)
{
    uint8_t *file_key = NULL;
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
    e->pt = malloc(SBX_AGE_CHUNK_SIZE);
    e->ct = malloc(SBX_AGE_SEALED_CHUNK_SIZE);
    file_key = sbx_secret_alloc(SBX_AGE_FILE_KEY_LEN);
    if (e->pt == NULL || e->ct == NULL || file_key == NULL) {
        err = sbx__error_nomem();
        goto fail;
    }
    if (opts != NULL && opts->armor) {
        if ((err = sbx_armor_encoder_new(&e->armor, dst)) < 0)
            goto fail;
        e->dst = e->armor;
    }
    if ((err = sbx_random_bytes(file_key, SBX_AGE_FILE_KEY_LEN)) < 0 ||
        (err = write_header(e, file_key, recipients, count)) < 0)
        goto fail;
    sbx_secret_free(file_key, SBX_AGE_FILE_KEY_LEN);
    *out = &e->base;
    return 0;
fail:
    sbx_secret_free(file_key, SBX_AGE_FILE_KEY_LEN);
    enc_free(&e->base);
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
