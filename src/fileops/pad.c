/*
 * src/fileops/pad.c - length-hiding padding inside age files.
 *
 * Implementation notes (format: strongbox/pad.h, docs/pad.md):
 *  - The marker is a stanza "-> sbx-pad v1" with an empty body. It is
 *    written by a pseudo-recipient (its wrap() adds the stanza and ignores
 *    the file key) and read by a pseudo-identity placed first in the list:
 *    the decryptor offers every stanza to the first identity before the
 *    others, so the detector sees the marker before any key unwraps. The
 *    decryptor verifies the header MAC afterwards, so once
 *    sbx_age_decryptor_new() succeeds the flag is authenticated.
 *  - Pad sink: counts bytes, and at finish writes zeros and the 8-byte
 *    big-endian length. PADME rounds L = len + 8 down to keep only the top
 *    floor(log2(floor(log2 L))) + 1 bits of L significant.
 *  - Unpad source: the stream is seen as [released][zero run][tail of 8].
 *    Each block read is appended after the tail; the last 8 bytes become
 *    the new tail; in the rest, everything up to the last non-zero byte is
 *    released (after the zeros held so far), the zeros after it are only
 *    counted. At the end the trailer's length L must satisfy
 *    released <= L <= released + zero run; L - released zeros are released.
 */
#include "strongbox/pad.h"
#include "strongbox/memory.h"
#include "age/keys.h"
#include "core/error.h"

#include <stdlib.h>
#include <string.h>

#define PAD_MAX   (UINT64_C(1) << 62)
#define READ_SIZE (64 * 1024)

static const uint8_t zeros[4096];

/* ---- sizes ---- */

static unsigned
log2_floor(uint64_t x)
{
    unsigned n = 0;
    while (x >>= 1)
        n++;
    return n;
}

static uint64_t
padme(uint64_t len)
{
    if (len < 2)
        return len;
    unsigned e = log2_floor(len), s = log2_floor(e) + 1;
    uint64_t mask = (UINT64_C(1) << (e - s)) - 1;
    return (len + mask) & ~mask;
}

/* see strongbox/pad.h */
int
sbx_pad_size(uint64_t *out, uint64_t len, uint64_t bucket)
{
    *out = 0;
    if (len > PAD_MAX - SBX_PAD_TRAILER_LEN || (bucket != 0 && bucket > PAD_MAX))
        return sbx__error(SBX_ETOOBIG, "padding %llu bytes would exceed 2^62 bytes",
                          (unsigned long long)len);
    uint64_t l = len + SBX_PAD_TRAILER_LEN, r;
    if (bucket == 0)
        r = padme(l);
    else
        r = (l + bucket - 1) / bucket * bucket;
    if (r > PAD_MAX)
        return sbx__error(SBX_ETOOBIG, "the padded size would exceed 2^62 bytes");
    *out = r;
    return 0;
}

/* ---- marker recipient and detector identity ---- */

static int
marker_wrap(const sbx_recipient *r, sbx_age_header *hdr, const uint8_t key[SBX_AGE_FILE_KEY_LEN])
{
    (void)r;
    (void)key;
    const char *args[] = {SBX_PAD_STANZA_VERSION};
    return sbx_age__header_add_stanza(hdr, SBX_PAD_STANZA_TYPE, args, 1, NULL, 0);
}

static int
marker_to_string(const sbx_recipient *r, sbx_buf *out)
{
    (void)r;
    (void)out;
    return sbx__error(SBX_EUNSUPPORTED, "the padding marker is not a key and has no string form");
}

static void
marker_free(sbx_recipient *r)
{
    free(r);
}

static const struct sbx_recipient_ops marker_ops = {
    SBX_PAD_STANZA_TYPE, false, marker_wrap, marker_to_string, marker_free,
};

/* see strongbox/pad.h */
int
sbx_pad_marker_recipient_new(sbx_recipient **out)
{
    *out = calloc(1, sizeof(**out));
    if (*out == NULL)
        return sbx__error_nomem();
    (*out)->ops = &marker_ops;
    return 0;
}

struct detector {
    sbx_identity base;
    bool *padded;
};

static int
detector_unwrap(sbx_identity *id, const sbx_age_stanza *s, uint8_t key[SBX_AGE_FILE_KEY_LEN])
{
    (void)key;
    if (strcmp(s->type, SBX_PAD_STANZA_TYPE) != 0)
        return SBX_AGE_NOT_MINE;
    if (s->nargs != 1 || s->body_len != 0)
        return sbx__error(SBX_EHEADER,
                          "malformed %s stanza: expected one argument and an empty "
                          "body",
                          SBX_PAD_STANZA_TYPE);
    if (strcmp(s->args[0], SBX_PAD_STANZA_VERSION) != 0)
        return sbx__error(SBX_EHEADER,
                          "the file is padded with an unknown padding version; upgrade sbx, or "
                          "decrypt with age and remove the padding by hand");
    *((struct detector *)id)->padded = true;
    return SBX_AGE_NOT_MINE;
}

static int
detector_to_string(const sbx_identity *id, sbx_buf *out)
{
    (void)id;
    (void)out;
    return sbx__error(SBX_EUNSUPPORTED, "the padding detector is not a key");
}

static int
detector_to_recipient(sbx_recipient **out, const sbx_identity *id)
{
    (void)id;
    return sbx_pad_marker_recipient_new(out);
}

static void
detector_free(sbx_identity *id)
{
    free(id);
}

static const struct sbx_identity_ops detector_ops = {
    detector_unwrap,
    detector_to_string,
    detector_to_recipient,
    detector_free,
};

/* see strongbox/pad.h */
int
sbx_pad_detector_new(sbx_identity **out, bool *padded)
{
    struct detector *d = calloc(1, sizeof(*d));
    *out = NULL;
    if (d == NULL)
        return sbx__error_nomem();
    d->base.ops = &detector_ops;
    d->padded = padded;
    *padded = false;
    *out = &d->base;
    return 0;
}

/* ---- pad sink ---- */

struct pad_sink {
    sbx_sink base;
    sbx_sink *dst;
    sbx_sink *owned; /* freed with us (the inner encryptor), or NULL */
    uint64_t bucket, len;
};

static int
pad_write(sbx_sink *self, const uint8_t *buf, size_t n)
{
    struct pad_sink *p = (struct pad_sink *)self;
    if (n > PAD_MAX - p->len)
        return sbx__error(SBX_ETOOBIG, "more than 2^62 bytes of data");
    p->len += n;
    return sbx_sink_write(p->dst, buf, n);
}

static int
pad_finish(sbx_sink *self)
{
    struct pad_sink *p = (struct pad_sink *)self;
    uint64_t total, fill;
    uint8_t trailer[SBX_PAD_TRAILER_LEN];
    int err;
    if ((err = sbx_pad_size(&total, p->len, p->bucket)) < 0)
        return err;
    for (fill = total - p->len - SBX_PAD_TRAILER_LEN; fill > 0;) {
        size_t k = fill < sizeof(zeros) ? (size_t)fill : sizeof(zeros);
        if ((err = sbx_sink_write(p->dst, zeros, k)) < 0)
            return err;
        fill -= k;
    }
    for (int i = 0; i < SBX_PAD_TRAILER_LEN; i++)
        trailer[i] = (uint8_t)(p->len >> (8 * (SBX_PAD_TRAILER_LEN - 1 - i)));
    if ((err = sbx_sink_write(p->dst, trailer, sizeof(trailer))) < 0)
        return err;
    return sbx_sink_finish(p->dst);
}

static void
pad_free(sbx_sink *self)
{
    struct pad_sink *p = (struct pad_sink *)self;
    if (p == NULL)
        return;
    sbx_sink_free(p->owned);
    free(p);
}

static int
check_opts(const sbx_pad_options *opts)
{
    if (opts != NULL && opts->version != SBX_PAD_OPTIONS_VERSION)
        return sbx__error(SBX_EINVAL, "unknown sbx_pad_options version");
    if (opts != NULL && opts->bucket > PAD_MAX)
        return sbx__error(SBX_EINVAL, "padding bucket larger than 2^62 bytes");
    return 0;
}

/* see strongbox/pad.h */
int
sbx_pad_sink_new(sbx_sink **out, sbx_sink *dst, const sbx_pad_options *opts)
{
    int err;
    *out = NULL;
    if ((err = check_opts(opts)) < 0)
        return err;
    struct pad_sink *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return sbx__error_nomem();
    p->base.write = pad_write;
    p->base.finish = pad_finish;
    p->base.free = pad_free;
    p->dst = dst;
    p->bucket = opts ? opts->bucket : 0;
    *out = &p->base;
    return 0;
}

/* ---- unpad source ---- */

struct unpad_source {
    sbx_source base;
    sbx_source *src;
    sbx_source *owned;
    uint8_t work[SBX_PAD_TRAILER_LEN + READ_SIZE];
    uint8_t tail[SBX_PAD_TRAILER_LEN];
    size_t tail_len;
    const uint8_t *lit; /* literal bytes ready to release */
    size_t lit_len;
    uint64_t zeros_out;  /* zero bytes ready to release */
    uint64_t zeros_held; /* trailing zero run, not yet known to be data */
    uint64_t released;   /* bytes committed to the output so far */
    bool done, failed;
};

static uint64_t
be64(const uint8_t b[8])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | b[i];
    return v;
}

static int
unpad_end(struct unpad_source *u)
{
    if (u->tail_len < SBX_PAD_TRAILER_LEN)
        return sbx__error(SBX_EFORMAT, "malformed padding: the plaintext is shorter than the "
                                       "8-byte length trailer");
    uint64_t len = be64(u->tail);
    if (len < u->released || len - u->released > u->zeros_held)
        return sbx__error(SBX_EFORMAT,
                          "malformed padding: the length trailer (%llu) does not match the "
                          "padded data (the filler must be zero bytes)",
                          (unsigned long long)len);
    u->zeros_out = len - u->released;
    u->released = len;
    u->done = true;
    return 0;
}

/* Take one block from src; sets up bytes to release or finishes. */
static int
unpad_fill(struct unpad_source *u)
{
    uint8_t *start = u->work + SBX_PAD_TRAILER_LEN - u->tail_len;
    size_t got;
    int err;
    memcpy(start, u->tail, u->tail_len);
    if ((err = sbx_source_read(u->src, u->work + SBX_PAD_TRAILER_LEN, READ_SIZE, &got)) < 0)
        return err;
    if (got == 0)
        return unpad_end(u);
    size_t m = u->tail_len + got;
    if (m <= SBX_PAD_TRAILER_LEN) {
        memcpy(u->tail, start, m);
        u->tail_len = m;
        return 0;
    }
    size_t body = m - SBX_PAD_TRAILER_LEN;
    memcpy(u->tail, start + body, SBX_PAD_TRAILER_LEN);
    u->tail_len = SBX_PAD_TRAILER_LEN;
    size_t k = body;
    while (k > 0 && start[k - 1] == 0)
        k--;
    if (k == 0) {
        u->zeros_held += body;
        return 0;
    }
    u->zeros_out = u->zeros_held;
    u->lit = start;
    u->lit_len = k;
    u->released += u->zeros_held + k;
    u->zeros_held = body - k;
    return 0;
}

static int
unpad_read(sbx_source *self, uint8_t *buf, size_t len, size_t *nread)
{
    struct unpad_source *u = (struct unpad_source *)self;
    int err;
    *nread = 0;
    if (u->failed)
        return sbx__error(SBX_EINVAL, "read after a failed read");
    while (len > 0) {
        if (u->zeros_out > 0) {
            size_t k = u->zeros_out < len ? (size_t)u->zeros_out : len;
            memset(buf, 0, k);
            u->zeros_out -= k;
            *nread = k;
            return 0;
        }
        if (u->lit_len > 0) {
            size_t k = u->lit_len < len ? u->lit_len : len;
            memcpy(buf, u->lit, k);
            u->lit += k;
            u->lit_len -= k;
            *nread = k;
            return 0;
        }
        if (u->done)
            return 0;
        if ((err = unpad_fill(u)) < 0) {
            u->failed = true;
            return err;
        }
    }
    return 0;
}

static void
unpad_free(sbx_source *self)
{
    struct unpad_source *u = (struct unpad_source *)self;
    if (u == NULL)
        return;
    sbx_source_free(u->owned);
    sbx_wipe(u, sizeof(*u));
    free(u);
}

/* see strongbox/pad.h */
int
sbx_unpad_source_new(sbx_source **out, sbx_source *src)
{
    struct unpad_source *u = calloc(1, sizeof(*u));
    *out = NULL;
    if (u == NULL)
        return sbx__error_nomem();
    u->base.read = unpad_read;
    u->base.free = unpad_free;
    u->src = src;
    *out = &u->base;
    return 0;
}

/* ---- padded encryptor / unpadding decryptor ---- */

/* see strongbox/pad.h */
int
sbx_pad_encryptor_new(sbx_sink **out, sbx_sink *dst, sbx_recipient *const *recipients, size_t count,
                      const sbx_age_encrypt_options *opts, const sbx_pad_options *pad)
{
    sbx_recipient **list = NULL, *marker = NULL;
    sbx_sink *enc = NULL, *ps = NULL;
    int err;
    *out = NULL;
    if ((err = check_opts(pad)) < 0)
        return err;
    for (size_t i = 0; i < count; i++) {
        if (recipients[i] != NULL && recipients[i]->ops->alone)
            return sbx__error(SBX_EINVAL,
                              "padding cannot be used with a passphrase: age requires a "
                              "passphrase (scrypt) stanza to be the only stanza of a file; "
                              "encrypt to a key (age1...), or pad the plaintext first "
                              "(sbx pad)");
    }
    if ((list = calloc(count + 1, sizeof(*list))) == NULL)
        return sbx__error_nomem();
    if ((err = sbx_pad_marker_recipient_new(&marker)) < 0)
        goto out;
    memcpy(list, recipients, count * sizeof(*list));
    list[count] = marker;
    if ((err = sbx_age_encryptor_new(&enc, dst, list, count + 1, opts)) < 0 ||
        (err = sbx_pad_sink_new(&ps, enc, pad)) < 0)
        goto out;
    ((struct pad_sink *)ps)->owned = enc;
    enc = NULL;
    *out = ps;
out:
    sbx_sink_free(enc);
    sbx_recipient_free(marker);
    free(list);
    return err;
}

/* see strongbox/pad.h */
int
sbx_pad_decryptor_new(sbx_source **out, sbx_source *src, sbx_identity *const *identities,
                      size_t count, const sbx_age_decrypt_options *opts, bool *padded)
{
    sbx_identity **list = NULL, *det = NULL;
    sbx_source *dec = NULL, *un = NULL;
    bool is_padded = false;
    int err;
    *out = NULL;
    if (padded != NULL)
        *padded = false;
    if ((list = calloc(count + 1, sizeof(*list))) == NULL)
        return sbx__error_nomem();
    if ((err = sbx_pad_detector_new(&det, &is_padded)) < 0)
        goto out;
    list[0] = det;
    memcpy(list + 1, identities, count * sizeof(*list));
    if ((err = sbx_age_decryptor_new(&dec, src, list, count + 1, opts)) < 0)
        goto out;
    if (is_padded) {
        if ((err = sbx_unpad_source_new(&un, dec)) < 0)
            goto out;
        ((struct unpad_source *)un)->owned = dec;
        dec = un;
    }
    if (padded != NULL)
        *padded = is_padded;
    *out = dec;
    dec = NULL;
out:
    sbx_source_free(dec);
    sbx_identity_free(det);
    free(list);
    return err;
}

/* see strongbox/pad.h */
int
sbx_pad_reader_open(sbx_age_reader **out, uint64_t *size, bool *padded, int fd,
                    sbx_identity *const *identities, size_t count)
{
    sbx_identity **list = NULL, *det = NULL;
    sbx_age_reader *r = NULL;
    bool is_padded = false;
    uint8_t trailer[SBX_PAD_TRAILER_LEN];
    uint64_t total = 0, len;
    size_t got = 0;
    int err;
    *out = NULL;
    *size = 0;
    if (padded != NULL)
        *padded = false;
    if ((list = calloc(count + 1, sizeof(*list))) == NULL)
        return sbx__error_nomem();
    if ((err = sbx_pad_detector_new(&det, &is_padded)) < 0)
        goto out;
    list[0] = det;
    memcpy(list + 1, identities, count * sizeof(*list));
    if ((err = sbx_age_reader_open(&r, fd, list, count + 1)) < 0 ||
        (err = sbx_age_reader_size(r, &total)) < 0)
        goto out;
    len = total;
    if (is_padded) {
        if (total < SBX_PAD_TRAILER_LEN) {
            err = sbx__error(SBX_EFORMAT, "malformed padding: the plaintext is shorter than the "
                                          "8-byte length trailer");
            goto out;
        }
        if ((err = sbx_age_reader_pread(r, trailer, sizeof(trailer), total - SBX_PAD_TRAILER_LEN,
                                        &got)) < 0)
            goto out;
        len = be64(trailer);
        if (got != sizeof(trailer) || len > total - SBX_PAD_TRAILER_LEN) {
            err = sbx__error(SBX_EFORMAT,
                             "malformed padding: the length trailer (%llu) is "
                             "larger than the padded data",
                             (unsigned long long)len);
            goto out;
        }
    }
    *size = len;
    if (padded != NULL)
        *padded = is_padded;
    *out = r;
    r = NULL;
out:
    sbx_age_reader_free(r);
    sbx_identity_free(det);
    free(list);
    return err;
}
