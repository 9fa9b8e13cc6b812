/*
 * src/core/stream.c - dispatch helpers and the basic sources and sinks
 * (memory, file descriptors, sbx_buf, SHA-256).
 */
#include "strongbox/stream.h"
#include "strongbox/memory.h"
#include "core/error.h"
#include "core/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

/* see strongbox/stream.h */
int
sbx_source_read(sbx_source *src, uint8_t *buf, size_t len, size_t *nread)
{
    *nread = 0;
    return src->read(src, buf, len, nread);
}

/* see strongbox/stream.h */
int
sbx_source_read_full(sbx_source *src, uint8_t *buf, size_t len, size_t *nread)
{
    size_t total = 0, got;
    int err;
    *nread = 0;
    while (total < len) {
        if ((err = src->read(src, buf + total, len - total, &got)) < 0)
            return err;
        if (got == 0)
            break;
        total += got;
    }
    *nread = total;
    return 0;
}

/* see strongbox/stream.h */
void
sbx_source_free(sbx_source *src)
{
    if (src != NULL && src->free != NULL)
        src->free(src);
}

/* see strongbox/stream.h */
int
sbx_sink_write(sbx_sink *snk, const uint8_t *buf, size_t len)
{
    return len == 0 ? 0 : snk->write(snk, buf, len);
}

/* see strongbox/stream.h */
int
sbx_sink_finish(sbx_sink *snk)
{
    return snk->finish != NULL ? snk->finish(snk) : 0;
}

/* see strongbox/stream.h */
void
sbx_sink_free(sbx_sink *snk)
{
    if (snk != NULL && snk->free != NULL)
        snk->free(snk);
}

#define COPY_BUF 65536

/* see strongbox/stream.h */
int
sbx_stream_copy(sbx_sink *dst, sbx_source *src, uint64_t *total)
{
    uint8_t *buf = malloc(COPY_BUF);
    uint64_t sum = 0;
    size_t got;
    int err;
    if (total != NULL)
        *total = 0;
    if (buf == NULL)
        return sbx__error_nomem();
    for (;;) {
        if ((err = sbx_source_read(src, buf, COPY_BUF, &got)) < 0)
            goto out;
        if (got == 0)
            break;
        if ((err = sbx_sink_write(dst, buf, got)) < 0)
            goto out;
        sum += got;
    }
    err = sbx_sink_finish(dst);
out:
    sbx_wipe(buf, COPY_BUF);
    free(buf);
    if (total != NULL)
        *total = sum;
    return err;
}

/* ---- memory source ---- */

struct mem_source {
    sbx_source base;
    const uint8_t *data;
    size_t len, pos;
};

static int
mem_read(sbx_source *self, uint8_t *buf, size_t len, size_t *nread)
{
    struct mem_source *m = (struct mem_source *)self;
    size_t n = m->len - m->pos < len ? m->len - m->pos : len;
    if (n > 0)
        memcpy(buf, m->data + m->pos, n);
    m->pos += n;
    *nread = n;
    return 0;
}

static void
plain_free(sbx_source *self)
{
    free(self);
}

/* see strongbox/stream.h */
int
sbx_source_mem_new(sbx_source **out, const void *data, size_t len)
{
    struct mem_source *m = calloc(1, sizeof(*m));
    *out = NULL;
    if (m == NULL)
        return sbx__error_nomem();
    m->base.read = mem_read;
    m->base.free = plain_free;
    m->data = data;
    m->len = len;
    *out = &m->base;
    return 0;
}

/* ---- file descriptor source ---- */

struct fd_source {
    sbx_source base;
    int fd;
    bool close_fd;
};

static int
fd_read(sbx_source *self, uint8_t *buf, size_t len, size_t *nread)
{
    struct fd_source *f = (struct fd_source *)self;
    ssize_t n;
    do {
        n = read(f->fd, buf, len);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return sbx__error_sys(SBX_EIO, "read failed");
    *nread = (size_t)n;
    return 0;
}

static void
fd_source_free(sbx_source *self)
{
    struct fd_source *f = (struct fd_source *)self;
    if (f->close_fd)
        close(f->fd);
    free(f);
}

/* see strongbox/stream.h */
int
sbx_source_fd_new(sbx_source **out, int fd, bool close_fd)
{
    struct fd_source *f = calloc(1, sizeof(*f));
    *out = NULL;
    if (f == NULL)
        return sbx__error_nomem();
    f->base.read = fd_read;
    f->base.free = fd_source_free;
    f->fd = fd;
    f->close_fd = close_fd;
    *out = &f->base;
    return 0;
}

/* see strongbox/stream.h */
int
sbx_source_file_new(sbx_source **out, const char *path)
{
    int err;
    *out = NULL;
    if (strcmp(path, "-") == 0)
        return sbx_source_fd_new(out, STDIN_FILENO, false);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sbx__error_sys(errno == ENOENT ? SBX_ENOTFOUND : SBX_EIO, "cannot open %s", path);
    if ((err = sbx_source_fd_new(out, fd, true)) < 0)
        close(fd);
    return err;
}

/* ---- sbx_buf sink ---- */

struct buf_sink {
    sbx_sink base;
    sbx_buf *buf;
};

static int
buf_write(sbx_sink *self, const uint8_t *data, size_t len)
{
    return sbx_buf_append(((struct buf_sink *)self)->buf, data, len);
}

static void
plain_sink_free(sbx_sink *self)
{
    free(self);
}

/* see strongbox/stream.h */
int
sbx_sink_buf_new(sbx_sink **out, sbx_buf *buf)
{
    struct buf_sink *b = calloc(1, sizeof(*b));
    *out = NULL;
    if (b == NULL)
        return sbx__error_nomem();
    b->base.write = buf_write;
    b->base.free = plain_sink_free;
    b->buf = buf;
    *out = &b->base;
    return 0;
}

/* ---- file descriptor sink ---- */

struct fd_sink {
    sbx_sink base;
    int fd;
    bool close_fd;
};

int
sbx__write_all(int fd, const uint8_t *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return sbx__error_sys(SBX_EIO, "write failed");
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static int
fd_write(sbx_sink *self, const uint8_t *data, size_t len)
{
    return sbx__write_all(((struct fd_sink *)self)->fd, data, len);
}

static void
fd_sink_free(sbx_sink *self)
{
    struct fd_sink *f = (struct fd_sink *)self;
    if (f->close_fd)
        close(f->fd);
    free(f);
}

/* see strongbox/stream.h */
int
sbx_sink_fd_new(sbx_sink **out, int fd, bool close_fd)
{
    struct fd_sink *f = calloc(1, sizeof(*f));
    *out = NULL;
    if (f == NULL)
        return sbx__error_nomem();
    f->base.write = fd_write;
    f->base.free = fd_sink_free;
    f->fd = fd;
    f->close_fd = close_fd;
    *out = &f->base;
    return 0;
}

/* ---- SHA-256 sink ---- */

struct sha_sink {
    sbx_sink base;
    EVP_MD_CTX *ctx;
    uint8_t *digest;
};

static int
sha_write(sbx_sink *self, const uint8_t *data, size_t len)
{
    struct sha_sink *s = (struct sha_sink *)self;
    if (EVP_DigestUpdate(s->ctx, data, len) != 1)
        return sbx__error_crypto("SHA-256");
    return 0;
}

static int
sha_finish(sbx_sink *self)
{
    struct sha_sink *s = (struct sha_sink *)self;
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(s->ctx, s->digest, &n) != 1)
        return sbx__error_crypto("SHA-256");
    return 0;
}

static void
sha_free(sbx_sink *self)
{
    struct sha_sink *s = (struct sha_sink *)self;
    EVP_MD_CTX_free(s->ctx);
    free(s);
}

/* see strongbox/stream.h */
int
sbx_sink_sha256_new(sbx_sink **out, uint8_t digest[32])
{
    struct sha_sink *s = calloc(1, sizeof(*s));
    *out = NULL;
    if (s == NULL)
        return sbx__error_nomem();
    s->base.write = sha_write;
    s->base.finish = sha_finish;
    s->base.free = sha_free;
    s->digest = digest;
    s->ctx = EVP_MD_CTX_new();
    if (s->ctx == NULL || EVP_DigestInit_ex(s->ctx, EVP_sha256(), NULL) != 1) {
        sha_free(&s->base);
        return sbx__error_crypto("SHA-256 init");
    }
    *out = &s->base;
    return 0;
}
