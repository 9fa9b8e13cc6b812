/*
 * src/age/seek.c - random access into an age file (sbx_age_reader).
 *
 * Implementation notes (age.md §5, random access):
 *  - Chunk i of the payload starts at payload + i * 65,552, where payload =
 *    header size + 16 (the nonce).
 *  - The size is known only after the last chunk authenticates with the
 *    final flag at the position the file length implies: the payload must
 *    be non-empty, its last chunk 16..65,552 bytes, and an empty (16-byte)
 *    last chunk is valid only as the only chunk.
 *  - Every chunk is opened with final = (i == last): a chunk verifies with
 *    only one flag, so a truncation at a chunk boundary fails here too.
 *  - One decrypted chunk is cached, so sequential small reads decrypt each
 *    chunk once.
 */
#include "age/header.h"
#include "age/payload.h"
#include "strongbox/memory.h"
#include "core/error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct sbx_age_reader {
    int fd;
    EVP_CIPHER_CTX *ctx;
    uint64_t payload;  /* offset of chunk 0 */
    uint64_t nchunks;  /* 0 until the size is verified */
    uint64_t last_len; /* ciphertext length of the last chunk */
    uint64_t size;     /* plaintext size, once verified */
    uint8_t *ct;       /* one sealed chunk */
    uint8_t *pt;       /* the cached plaintext chunk */
    uint64_t cached;   /* index of the cached chunk, or UINT64_MAX */
    size_t cached_len;
};

/* A source reading the fd with pread from offset 0 (the fd offset is untouched). */
struct pread_source {
    sbx_source base;
    int fd;
    uint64_t off;
};

static int
pread_all(int fd, uint8_t *buf, size_t len, uint64_t off, size_t *got)
{
    size_t total = 0;
    while (total < len) {
        ssize_t n = pread(fd, buf + total, len - total, (off_t)(off + total));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return sbx__error_sys(SBX_EIO, "read failed");
        if (n == 0)
            break;
        total += (size_t)n;
    }
    *got = total;
    return 0;
}

static int
pread_source_read(sbx_source *self, uint8_t *buf, size_t len, size_t *nread)
{
    struct pread_source *p = (struct pread_source *)self;
    int err = pread_all(p->fd, buf, len, p->off, nread);
    p->off += *nread;
    return err;
}

/* The payload of an opened header: the nonce after the header, then chunks. */
static int
open_payload(sbx_age_reader *r, const sbx_age_header *h)
{
    uint8_t nonce[SBX_AGE_NONCE_LEN];
    size_t header_len, got;
    int err;
    if (h->file_key == NULL)
        return sbx__error(SBX_EINVAL, "the header is not opened: unwrap it first");
    (void)sbx_age_header_bytes(h, &header_len);
    if ((err = pread_all(r->fd, nonce, sizeof(nonce), header_len, &got)) < 0)
        return err;
    if (got < sizeof(nonce))
        return sbx__error(SBX_EHEADER, "the file ends before the payload nonce: truncated file");
    r->payload = header_len + SBX_AGE_NONCE_LEN;
    return sbx_age__payload_ctx(&r->ctx, h->file_key, nonce, false);
}

/* What random access needs of fd: a regular file holding the binary form. */
static int
check_seekable(int fd)
{
    struct stat st;
    uint8_t first;
    size_t got;
    int err;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        return sbx__error(SBX_EINVAL, "random access needs a regular file (not a pipe or device)");
    if ((err = pread_all(fd, &first, 1, 0, &got)) < 0)
        return err;
    if (got == 1 && first == '-')
        return sbx__error(SBX_EINVAL,
                          "random access needs a binary age file; armored files are "
                          "not seekable (decrypt them whole, or re-encrypt without -a)");
    return 0;
}

/* see strongbox/sys/age.h */
int
sbx_age_header_read_fd(sbx_age_header **out, int fd)
{
    struct pread_source src = {{pread_source_read, NULL}, fd, 0};
    int err;
    *out = NULL;
    if ((err = check_seekable(fd)) < 0)
        return err;
    return sbx_age_header_read(out, &src.base);
}

/* Check fd and allocate a reader; the payload is not opened yet. */
static int
reader_new(sbx_age_reader **out, int fd)
{
    int err;
    *out = NULL;
    if ((err = check_seekable(fd)) < 0)
        return err;
    sbx_age_reader *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return sbx__error_nomem();
    r->fd = fd;
    r->cached = UINT64_MAX;
    r->ct = malloc(SBX_AGE_SEALED_CHUNK_SIZE);
    r->pt = malloc(SBX_AGE_CHUNK_SIZE);
    if (r->ct == NULL || r->pt == NULL) {
        sbx_age_reader_free(r);
        return sbx__error_nomem();
    }
    *out = r;
    return 0;
}

/* see strongbox/sys/age.h */
int
sbx_age_reader_open_opened(sbx_age_reader **out, int fd, const sbx_age_header *h)
{
    int err = reader_new(out, fd);
    if (err == 0 && (err = open_payload(*out, h)) < 0) {
        sbx_age_reader_free(*out);
        *out = NULL;
    }
    return err;
}

/* see strongbox/age.h */
int
sbx_age_reader_open(sbx_age_reader **out, int fd, sbx_identity *const *identities, size_t count)
{
    sbx_age_header *h = NULL;
    int err;
    *out = NULL;
    if ((err = sbx_age_header_read_fd(&h, fd)) == 0 &&
        (err = sbx_age_header_unwrap(h, identities, count)) == 0)
        err = sbx_age_reader_open_opened(out, fd, h);
    sbx_age_header_free(h);
    return err;
}

static int
chunk_error(uint64_t i, const char *what)
{
    return sbx__error(SBX_EPAYLOAD, "payload chunk %llu: %s", (unsigned long long)i + 1, what);
}

/* Decrypt chunk i (of a file whose layout was verified, or the last chunk) into the cache. */
static int
load_chunk(sbx_age_reader *r, uint64_t i, uint64_t len, bool final)
{
    size_t got;
    int err;
    if (r->cached == i)
        return 0;
    r->cached = UINT64_MAX;
    if ((err = pread_all(r->fd, r->ct, (size_t)len, r->payload + i * SBX_AGE_SEALED_CHUNK_SIZE,
                         &got)) < 0)
        return err;
    if (got != len)
        return chunk_error(i, "the file shrank while being read");
    err = sbx_age__chunk_open(r->ctx, r->pt, r->ct, (size_t)len, i, final);
    if (err == SBX_EAUTH)
        return chunk_error(i, final ? "the final chunk does not verify: the file was truncated, "
                                      "extended or modified"
                                    : "authentication failed: the file was modified");
    if (err < 0)
        return err;
    r->cached = i;
    r->cached_len = (size_t)len - SBX_AGE_TAG_LEN;
    return 0;
}

/* see strongbox/age.h */
int
sbx_age_reader_size(sbx_age_reader *r, uint64_t *size)
{
    struct stat st;
    int err;
    *size = 0;
    if (r->nchunks > 0) {
        *size = r->size;
        return 0;
    }
    if (fstat(r->fd, &st) != 0)
        return sbx__error_sys(SBX_EIO, "cannot stat the file");
    if ((uint64_t)st.st_size <= r->payload)
        return sbx__error(SBX_EPAYLOAD, "the payload is empty (no chunks): truncated file");
    uint64_t p = (uint64_t)st.st_size - r->payload;
    uint64_t n = (p + SBX_AGE_SEALED_CHUNK_SIZE - 1) / SBX_AGE_SEALED_CHUNK_SIZE;
    uint64_t last = p - (n - 1) * SBX_AGE_SEALED_CHUNK_SIZE;
    if (last < SBX_AGE_TAG_LEN)
        return chunk_error(n - 1, "chunk shorter than its tag: truncated file");
    if (last == SBX_AGE_TAG_LEN && n > 1)
        return chunk_error(n - 1, "empty final chunk after data");
    if ((err = load_chunk(r, n - 1, last, true)) < 0)
        return err;
    r->nchunks = n;
    r->last_len = last;
    r->size = (n - 1) * SBX_AGE_CHUNK_SIZE + last - SBX_AGE_TAG_LEN;
    *size = r->size;
    return 0;
}

/* see strongbox/age.h */
int
sbx_age_reader_pread(sbx_age_reader *r, void *buf, size_t len, uint64_t offset, size_t *nread)
{
    uint64_t size;
    size_t done = 0;
    int err;
    *nread = 0;
    if ((err = sbx_age_reader_size(r, &size)) < 0)
        return err;
    if (offset >= size || len == 0)
        return 0;
    if (len > size - offset)
        len = (size_t)(size - offset);
    while (done < len) {
        uint64_t pos = offset + done, i = pos / SBX_AGE_CHUNK_SIZE;
        bool final = i == r->nchunks - 1;
        uint64_t clen = final ? r->last_len : SBX_AGE_SEALED_CHUNK_SIZE;
        if ((err = load_chunk(r, i, clen, final)) < 0) {
            sbx_wipe(buf, done);
            return err;
        }
        size_t in_chunk = (size_t)(pos % SBX_AGE_CHUNK_SIZE);
        size_t n = r->cached_len - in_chunk < len - done ? r->cached_len - in_chunk : len - done;
        memcpy((uint8_t *)buf + done, r->pt + in_chunk, n);
        done += n;
    }
    *nread = done;
    return 0;
}

/* see strongbox/age.h */
void
sbx_age_reader_free(sbx_age_reader *r)
{
    if (r == NULL)
        return;
    EVP_CIPHER_CTX_free(r->ctx);
    sbx_wipe(r->pt, r->pt ? SBX_AGE_CHUNK_SIZE : 0);
    free(r->pt);
    free(r->ct);
    free(r);
}
