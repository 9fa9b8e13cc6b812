/*
 * src/age/decrypt.c - the age decryptor: a source of plaintext over a source
 * of age ciphertext.
 *
 * Implementation notes:
 *  - Construction reads the header (bounded by SBX_AGE_MAX_HEADER_SIZE),
 *    validates every stanza of a known type, unwraps the file key, verifies
 *    the header MAC in constant time, then reads the 16-byte payload nonce.
 *    Bytes read past the header are kept in `pending` for the payload.
 *  - The payload is read ahead into pipeline slots that worker threads open;
 *    chunks are then taken in order and judged exactly as a serial reader
 *    would (age.md §5): a chunk shorter than 65,552 bytes is the last and
 *    must carry the final flag; a full one opens as non-final or else as
 *    final; an empty final chunk is valid only as the first chunk; after
 *    the final chunk any byte is trailing data; a non-final chunk followed
 *    by the end of input is a truncation.
 *  - Plaintext of a chunk is handed out only after its tag verified.
 */
#include "age/header.h"
#include "age/payload.h"
#include "age/pipeline.h"
#include "strongbox/memory.h"
#include "core/error.h"

#include <stdlib.h>
#include <string.h>

struct decryptor {
    sbx_source base;
    sbx_source *src;   /* ciphertext: the caller's source or our armor filter */
    sbx_source *armor; /* owned armor filter, or NULL */
    sbx_age_pipeline *pipe;
    size_t cap;
    bool input_eof;
    sbx_buf pending; /* bytes read past the header, consumed first */
    size_t pending_pos;
    sbx_age_slot *cur; /* slot whose chunks are being handed out */
    size_t chunk;      /* next chunk of cur */
    uint64_t counter;  /* chunks handed out so far */
    const uint8_t *out;
    size_t out_pos, out_len;
    bool final_seen, failed;
};

/* Read up to len bytes: pending bytes first, then the source, until full or EOF. */
static int
read_in(struct decryptor *d, uint8_t *buf, size_t len, size_t *got)
{
    size_t have = d->pending.len - d->pending_pos, n = have < len ? have : len, more = 0;
    int err = 0;
    if (n > 0) {
        memcpy(buf, d->pending.ptr + d->pending_pos, n);
        d->pending_pos += n;
    }
    if (n < len)
        err = sbx_source_read_full(d->src, buf + n, len - n, &more);
    *got = n + more;
    return err;
}

/* Start the payload of an opened header: its rest, then the nonce, then chunks. */
static int
start_payload(struct decryptor *d, const sbx_age_header *h, unsigned threads)
{
    uint8_t nonce[SBX_AGE_NONCE_LEN];
    const uint8_t *rest;
    size_t len, got;
    int err;
    if (h->file_key == NULL)
        return sbx__error(SBX_EINVAL, "the header is not opened: unwrap it first");
    rest = sbx_age_header_rest(h, &len);
    if ((err = sbx_buf_append(&d->pending, rest, len)) < 0 ||
        (err = read_in(d, nonce, sizeof(nonce), &got)) < 0)
        return err;
    if (got < sizeof(nonce))
        return sbx__error(SBX_EHEADER, "the file ends before the payload nonce: truncated file");
    if ((err = sbx_age__pipeline_new(&d->pipe, h->file_key, nonce, false, threads)) == 0)
        d->cap = sbx_age__slot_capacity(d->pipe);
    return err;
}

/* Read ciphertext into every free slot and queue it, until the input ends. */
static int
read_ahead(struct decryptor *d)
{
    sbx_age_slot *s;
    int err;
    while (!d->input_eof && (s = sbx_age__pipeline_next_free(d->pipe)) != NULL) {
        if ((err = read_in(d, s->in, d->cap, &s->in_len)) < 0) {
            s->in_len = 0;
            s->last = true;
            sbx_age__pipeline_submit(d->pipe, s);
            return err;
        }
        s->last = d->input_eof = s->in_len < d->cap;
        sbx_age__pipeline_submit(d->pipe, s);
    }
    return 0;
}

/*
 * The next chunk in order: *len its ciphertext size (0 at the end of input),
 * with its slot's verdict. Blocks until its slot is processed.
 */
static int
next_chunk(struct decryptor *d, size_t *len, bool *ok, bool *final)
{
    int err;
    *len = 0;
    for (;;) {
        if (d->cur != NULL && d->chunk < d->cur->nchunks) {
            size_t off = d->chunk * SBX_AGE_SEALED_CHUNK_SIZE, rest = d->cur->in_len - off;
            *len = rest < SBX_AGE_SEALED_CHUNK_SIZE ? rest : SBX_AGE_SEALED_CHUNK_SIZE;
            *ok = d->cur->chunk_ok[d->chunk];
            *final = d->cur->chunk_final[d->chunk];
            d->out = d->cur->out + d->chunk * SBX_AGE_CHUNK_SIZE;
            d->chunk++;
            return 0;
        }
        if (d->cur != NULL) {
            sbx_age__pipeline_release(d->pipe, d->cur);
            d->cur = NULL;
        }
        if ((err = read_ahead(d)) < 0)
            return err;
        if ((d->cur = sbx_age__pipeline_oldest(d->pipe)) == NULL)
            return 0;
        d->chunk = 0;
    }
}

static int
payload_error(struct decryptor *d, const char *what)
{
    d->failed = true;
    return sbx__error(SBX_EPAYLOAD, "payload chunk %llu: %s", (unsigned long long)d->counter + 1,
                      what);
}

/* Judge the next chunk and make its plaintext current. */
static int
advance(struct decryptor *d)
{
    size_t len;
    bool ok = false, final = false;
    int err;
    if ((err = next_chunk(d, &len, &ok, &final)) < 0) {
        d->failed = true;
        return err;
    }
    if (d->final_seen) {
        if (len == 0)
            return 0;
        d->failed = true;
        return sbx__error(SBX_EPAYLOAD, "trailing data after the end of the payload");
    }
    if (len == 0)
        return payload_error(d, d->counter == 0 ? "the payload is empty (no chunks): truncated "
                                                  "file"
                                                : "the file ends before the final chunk: "
                                                  "truncated file");
    if (len < SBX_AGE_TAG_LEN)
        return payload_error(d, "chunk shorter than its tag: truncated file");
    if (len == SBX_AGE_TAG_LEN && d->counter > 0)
        return payload_error(d, "empty final chunk after data");
    if (!ok)
        return payload_error(d, "authentication failed: the file was truncated or modified");
    d->out_pos = 0;
    d->out_len = len - SBX_AGE_TAG_LEN;
    d->final_seen = final;
    d->counter++;
    return 0;
}

static int
dec_read(sbx_source *self, uint8_t *buf, size_t len, size_t *nread)
{
    struct decryptor *d = (struct decryptor *)self;
    int err;
    *nread = 0;
    if (d->failed)
        return sbx__error(SBX_EINVAL, "read from a failed decryptor");
    while (d->out_pos == d->out_len) {
        bool was_final = d->final_seen;
        if ((err = advance(d)) < 0)
            return err;
        if (was_final)
            return 0; /* end of data, verified */
    }
    size_t n = d->out_len - d->out_pos < len ? d->out_len - d->out_pos : len;
    memcpy(buf, d->out + d->out_pos, n);
    d->out_pos += n;
    *nread = n;
    return 0;
}

static void
dec_free(sbx_source *self)
{
    struct decryptor *d = (struct decryptor *)self;
    if (d == NULL)
        return;
    sbx_age__pipeline_free(d->pipe);
    sbx_buf_dispose(&d->pending);
    sbx_source_free(d->armor);
    free(d);
}

static struct decryptor *
decryptor_alloc(sbx_source *src)
{
    struct decryptor *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    d->base.read = dec_read;
    d->base.free = dec_free;
    d->src = src;
    return d;
}

static int
check_opts(const sbx_age_decrypt_options *opts)
{
    if (opts != NULL && opts->version != SBX_AGE_DECRYPT_OPTIONS_VERSION)
        return sbx__error(SBX_EINVAL, "unknown sbx_age_decrypt_options version");
    return 0;
}

/* see strongbox/sys/age.h */
int
sbx_age_decryptor_new_opened(sbx_source **out, const sbx_age_header *h, sbx_source *src,
                             const sbx_age_decrypt_options *opts)
{
    struct decryptor *d;
    int err;
    *out = NULL;
    if ((err = check_opts(opts)) < 0)
        return err;
    if ((d = decryptor_alloc(src)) == NULL)
        return sbx__error_nomem();
    if ((err = start_payload(d, h, opts ? opts->threads : 0)) < 0) {
        dec_free(&d->base);
        return err;
    }
    *out = &d->base;
    return 0;
}

/* see strongbox/age.h */
int
sbx_age_decryptor_new(sbx_source **out, sbx_source *src, sbx_identity *const *identities,
                      size_t count, const sbx_age_decrypt_options *opts)
{
    int mode = opts != NULL ? opts->armor : SBX_ARMOR_AUTO, err = 0;
    sbx_age_header *h = NULL;
    struct decryptor *d;
    *out = NULL;
    if ((err = check_opts(opts)) < 0)
        return err;
    for (size_t i = 0; i < count; i++) {
        if (identities[i] == NULL)
            return sbx__error(SBX_EINVAL, "identity %zu is NULL", i + 1);
    }
    if ((d = decryptor_alloc(src)) == NULL)
        return sbx__error_nomem();
    if (mode == SBX_ARMOR_AUTO)
        err = sbx_armor_detect_new(&d->armor, NULL, src);
    else if (mode == SBX_ARMOR_ONLY)
        err = sbx_armor_decoder_new(&d->armor, src);
    if (err < 0)
        goto fail;
    if (d->armor != NULL)
        d->src = d->armor;
    if ((err = sbx_age_header_read(&h, d->src)) < 0 ||
        (err = sbx_age_header_unwrap(h, identities, count)) < 0 ||
        (err = start_payload(d, h, opts ? opts->threads : 0)) < 0)
        goto fail;
    sbx_age_header_free(h);
    *out = &d->base;
    return 0;
fail:
    sbx_age_header_free(h);
    dec_free(&d->base);
    return err;
}

/* see strongbox/age.h */
int
sbx_age_decrypt_buf(sbx_buf *out, const void *file, size_t len, sbx_identity *const *identities,
                    size_t count, const sbx_age_decrypt_options *opts)
{
    sbx_source *src = NULL, *dec = NULL;
    sbx_sink *snk = NULL;
    int err;
    if ((err = sbx_source_mem_new(&src, file, len)) < 0)
        return err;
    if ((err = sbx_sink_buf_new(&snk, out)) == 0 &&
        (err = sbx_age_decryptor_new(&dec, src, identities, count, opts)) == 0)
        err = sbx_stream_copy(snk, dec, NULL);
    sbx_source_free(dec);
    sbx_sink_free(snk);
    sbx_source_free(src);
    return err;
}
