/*
 * src/age/decrypt.c - the age decryptor: a source of plaintext over a source
 * of age ciphertext.
 *
 * Implementation notes:
 *  - Construction reads the header (bounded by SBX_AGE_MAX_HEADER_SIZE),
 *    validates every stanza of a known type, unwraps the file key, verifies
 *    the header MAC in constant time, then reads the 16-byte payload nonce.
 *    Bytes read past the header are kept in `pending` for the payload.
 *  - Chunks (age.md §5): read up to 65,552 bytes; a short read is the last
 *    chunk and must open with the final flag; a full one opens as non-final,
 *    or else as final (a full last chunk). An empty final chunk is valid only
 *    as the first chunk. After the final chunk, any byte is trailing data.
 *  - Plaintext of a chunk is handed out only after its tag verified.
 */
#include "age/header.h"
#include "age/keys.h"
#include "age/payload.h"
#include "strongbox/memory.h"
#include "core/error.h"

#include <stdlib.h>
#include <string.h>

#define READ_STEP 4096

struct decryptor {
    sbx_source base;
    sbx_source *src;   /* ciphertext: the caller's source or our armor filter */
    sbx_source *armor; /* owned armor filter, or NULL */
    EVP_CIPHER_CTX *ctx;
    uint64_t counter;
    sbx_buf pending; /* bytes read past the header, consumed first */
    size_t pending_pos;
    uint8_t *in;  /* SBX_AGE_SEALED_CHUNK_SIZE */
    uint8_t *out; /* SBX_AGE_CHUNK_SIZE */
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

/* Index just past the MAC line if buf holds a complete header, else 0. */
static size_t
find_header_end(const sbx_buf *buf, size_t *scan)
{
    while (*scan < buf->len) {
        const uint8_t *nl = memchr(buf->ptr + *scan, '\n', buf->len - *scan);
        if (nl == NULL)
            return 0;
        size_t start = *scan;
        *scan = (size_t)(nl - buf->ptr) + 1;
        if (*scan - start >= 4 && memcmp(buf->ptr + start, "---", 3) == 0)
            return *scan;
    }
    return 0;
}

/* Read the whole header from d->src into d->pending and parse it. */
static int
read_header(struct decryptor *d, sbx_age_header **hdr)
{
    size_t scan = 0, end = 0, got;
    int err;
    for (;;) {
        if ((err = sbx_buf_reserve(&d->pending, READ_STEP)) < 0)
            return err;
        if ((err = sbx_source_read(d->src, d->pending.ptr + d->pending.len, READ_STEP, &got)) < 0)
            return err;
        d->pending.len += got;
        if ((end = find_header_end(&d->pending, &scan)) > 0 || got == 0)
            break;
        size_t check = d->pending.len < 22 ? d->pending.len : 22;
        if (memcmp(d->pending.ptr, SBX_AGE_VERSION_LINE, check) != 0)
            break; /* not age: let the parser name the problem */
        if (d->pending.len > SBX_AGE_MAX_HEADER_SIZE)
            return sbx__error(SBX_EHEADER, "header larger than %d bytes; refusing to read more",
                              SBX_AGE_MAX_HEADER_SIZE);
    }
    if ((err = sbx_age__header_parse(hdr, d->pending.ptr, d->pending.len, &end)) < 0)
        return err;
    d->pending_pos = end;
    return 0;
}

static int
validate_stanzas(const sbx_age_header *hdr)
{
    int err;
    for (size_t i = 0; i < hdr->count; i++) {
        if ((err = sbx_age__x25519_check(&hdr->stanzas[i], i)) < 0 ||
            (err = sbx_age__scrypt_check(&hdr->stanzas[i], i, hdr->count)) < 0)
            return err;
    }
    return 0;
}

static int
no_match(const sbx_age_header *hdr, size_t nids)
{
    bool scrypt = hdr->count == 1 && strcmp(hdr->stanzas[0].type, "scrypt") == 0;
    if (scrypt)
        return sbx__error(SBX_ENOMATCH, "the passphrase is wrong (or no passphrase identity was "
                                        "given for this passphrase-encrypted file)");
    return sbx__error(SBX_ENOMATCH,
                      "no identity matched any of the file's %zu recipient "
                      "stanza(s) (%zu identit%s tried): wrong key?",
                      hdr->count, nids, nids == 1 ? "y" : "ies");
}

static int
unwrap_file_key(uint8_t file_key[SBX_AGE_FILE_KEY_LEN], const sbx_age_header *hdr,
                sbx_identity *const *ids, size_t nids)
{
    int err;
    if ((err = validate_stanzas(hdr)) < 0)
        return err;
    for (size_t i = 0; i < nids; i++) {
        for (size_t s = 0; s < hdr->count; s++) {
            err = ids[i]->ops->unwrap(ids[i], &hdr->stanzas[s], file_key);
            if (err <= 0)
                return err;
        }
    }
    return no_match(hdr, nids);
}

static int
open_payload(struct decryptor *d, sbx_identity *const *ids, size_t nids)
{
    sbx_age_header *hdr = NULL;
    uint8_t *file_key = sbx_secret_alloc(SBX_AGE_FILE_KEY_LEN);
    uint8_t mac[32], nonce[SBX_AGE_NONCE_LEN];
    size_t got;
    int err;
    if (file_key == NULL)
        return SBX_ENOMEM;
    if ((err = read_header(d, &hdr)) < 0 || (err = unwrap_file_key(file_key, hdr, ids, nids)) < 0)
        goto out;
    if ((err = sbx_age__header_mac(mac, file_key, d->pending.ptr, hdr->mac_input_len)) < 0)
        goto out;
    if (!sbx_equal(mac, hdr->mac, sizeof(mac))) {
        err = sbx__error(SBX_EMAC, "header MAC mismatch: the header was tampered with or "
                                   "corrupted");
        goto out;
    }
    if ((err = read_in(d, nonce, sizeof(nonce), &got)) < 0)
        goto out;
    if (got < sizeof(nonce)) {
        err = sbx__error(SBX_EHEADER, "the file ends before the payload nonce: truncated file");
        goto out;
    }
    err = sbx_age__payload_ctx(&d->ctx, file_key, nonce, false);
out:
    sbx_secret_free(file_key, SBX_AGE_FILE_KEY_LEN);
    sbx_age__header_free(hdr);
    return err;
}

static int
payload_error(struct decryptor *d, const char *what)
{
    d->failed = true;
    return sbx__error(SBX_EPAYLOAD, "payload chunk %llu: %s", (unsigned long long)d->counter + 1,
                      what);
}

/* Decrypt the next chunk into d->out. */
static int
next_chunk(struct decryptor *d)
{
    size_t got;
    int err;
    if ((err = read_in(d, d->in, SBX_AGE_SEALED_CHUNK_SIZE, &got)) < 0)
        return err;
    if (got == 0 && d->counter == 0)
        return payload_error(d, "the payload is empty (no chunks): truncated file");
    if (got == 0)
        return payload_error(d, "the file ends before the final chunk: truncated file");
    if (got <= SBX_AGE_TAG_LEN && !(got == SBX_AGE_TAG_LEN && d->counter == 0))
        return payload_error(d, got < SBX_AGE_TAG_LEN ? "chunk shorter than its tag: truncated "
                                                        "file"
                                                      : "empty final chunk after data");
    bool final = got < SBX_AGE_SEALED_CHUNK_SIZE;
    err = sbx_age__chunk_open(d->ctx, d->out, d->in, got, d->counter, final);
    if (err == SBX_EAUTH && !final) {
        final = true;
        err = sbx_age__chunk_open(d->ctx, d->out, d->in, got, d->counter, true);
    }
    if (err == SBX_EAUTH)
        return payload_error(d, "authentication failed: the file was truncated or modified");
    if (err < 0)
        return err;
    d->out_pos = 0;
    d->out_len = got - SBX_AGE_TAG_LEN;
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
        if (d->final_seen) {
            uint8_t extra;
            size_t got;
            if ((err = read_in(d, &extra, 1, &got)) < 0)
                return err;
            if (got != 0) {
                d->failed = true;
                return sbx__error(SBX_EPAYLOAD, "trailing data after the end of the payload");
            }
            return 0;
        }
        if ((err = next_chunk(d)) < 0)
            return err;
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
    EVP_CIPHER_CTX_free(d->ctx);
    sbx_wipe(d->out, SBX_AGE_CHUNK_SIZE);
    free(d->out);
    free(d->in);
    sbx_buf_dispose(&d->pending);
    sbx_source_free(d->armor);
    free(d);
}

/* see strongbox/age.h */
int
sbx_age_decryptor_new(sbx_source **out, sbx_source *src, sbx_identity *const *identities,
                      size_t count, const sbx_age_decrypt_options *opts)
{
    int mode = opts != NULL ? opts->armor : SBX_ARMOR_AUTO, err;
    *out = NULL;
    if (opts != NULL && opts->version != SBX_AGE_DECRYPT_OPTIONS_VERSION)
        return sbx__error(SBX_EINVAL, "unknown sbx_age_decrypt_options version");
    for (size_t i = 0; i < count; i++) {
        if (identities[i] == NULL)
            return sbx__error(SBX_EINVAL, "identity %zu is NULL", i + 1);
    }
    struct decryptor *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return sbx__error_nomem();
    d->base.read = dec_read;
    d->base.free = dec_free;
    d->src = src;
    d->in = malloc(SBX_AGE_SEALED_CHUNK_SIZE);
    d->out = malloc(SBX_AGE_CHUNK_SIZE);
    if (d->in == NULL || d->out == NULL) {
        err = sbx__error_nomem();
        goto fail;
    }
    if (mode == SBX_ARMOR_AUTO)
        err = sbx_armor_detect_new(&d->armor, NULL, src);
    else if (mode == SBX_ARMOR_ONLY)
        err = sbx_armor_decoder_new(&d->armor, src);
    else
        err = 0;
    if (err < 0)
        goto fail;
    if (d->armor != NULL)
        d->src = d->armor;
    if ((err = open_payload(d, identities, count)) < 0)
        goto fail;
    *out = &d->base;
    return 0;
fail:
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
