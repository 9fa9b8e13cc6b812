/*
 * src/age/payload_copy.c - copying the payload of an opened header unchanged
 * (sbx_age_payload_copy, strongbox/sys/age.h): what a rewrap writes after
 * its new header.
 *
 * Implementation notes (age.md §5, random access):
 *  - The bytes are copied in 1 MiB blocks: the header's rest first, then the
 *    source to its end. The copy remembers the payload nonce and the last
 *    65,552 bytes (a tail window).
 *  - At the end, the last chunk must open as the final chunk at the index
 *    the size implies: one chunk of crypto detects a truncated or extended
 *    file (a chunk opens with one final flag and one counter only). Chunks
 *    before it are copied unverified; they stay under the same file key and
 *    every reader verifies them.
 */
#include "age/header.h"
#include "age/payload.h"
#include "strongbox/memory.h"
#include "core/error.h"

#include <stdlib.h>
#include <string.h>

#define COPY_SIZE (1024 * 1024)

/* The payload nonce and the last sealed chunk's worth of bytes seen so far. */
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

/* The last chunk must open as the final one at the position the size implies. */
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
                                        "is truncated or has data appended");
    if ((plain = malloc(SBX_AGE_CHUNK_SIZE)) == NULL)
        return sbx__error_nomem();
    if ((err = sbx_age__payload_ctx(&ctx, key, w->nonce, false)) == 0)
        err =
            sbx_age__chunk_open(ctx, plain, w->buf + w->len - last, (size_t)last, chunks - 1, true);
    if (err == SBX_EAUTH)
        err = sbx__error(SBX_EPAYLOAD, "the last chunk does not verify as the final chunk: the "
                                       "file is truncated, extended or corrupted");
    sbx_wipe(plain, SBX_AGE_CHUNK_SIZE);
    free(plain);
    EVP_CIPHER_CTX_free(ctx);
    return err;
}

/* see strongbox/sys/age.h */
int
sbx_age_payload_copy(sbx_sink *dst, const sbx_age_header *h, sbx_source *src, uint64_t *total)
{
    struct tail_window w = {{0}, NULL, 0, 0};
    const uint8_t *rest;
    uint8_t *buf;
    size_t rlen, got;
    int err;
    *total = 0;
    if (h->file_key == NULL)
        return sbx__error(SBX_EINVAL, "the header is not opened: unwrap it first");
    if ((buf = malloc(COPY_SIZE)) == NULL || (w.buf = malloc(SBX_AGE_SEALED_CHUNK_SIZE)) == NULL) {
        free(buf);
        return sbx__error_nomem();
    }
    rest = sbx_age_header_rest(h, &rlen);
    window_update(&w, rest, rlen);
    err = sbx_sink_write(dst, rest, rlen);
    while (err == 0) {
        if ((err = sbx_source_read(src, buf, COPY_SIZE, &got)) < 0 || got == 0)
            break;
        window_update(&w, buf, got);
        err = sbx_sink_write(dst, buf, got);
    }
    *total = w.total;
    if (err == 0 && w.total < SBX_AGE_NONCE_LEN + SBX_AGE_TAG_LEN)
        err = sbx__error(SBX_EPAYLOAD, "the payload is truncated (%llu bytes after the header)",
                         (unsigned long long)w.total);
    if (err == 0)
        err = check_last_chunk(&w, h->file_key);
    free(buf); // ciphertext only: nothing to wipe
    free(w.buf);
    return err;
}
