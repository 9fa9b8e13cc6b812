/*
 * src/fileops/pad.c - length-hiding padding inside age files.
 *
 * Implementation notes (format: strongbox/pad.h, docs/pad.md):
 *  - The marker is a stanza "-> sbx-pad v1" with an empty body, added to
 *    the header the encryptor is started with (sbx_age_header_add_stanza,
 *    strongbox/sys/age.h). Its rule is registered (fileops/stanza_types.c),
 *    so every header read refuses a malformed or unknown-version marker.
 *    Readers open the header themselves (fileops/age_file.h: one read, one
 *    unwrap, one MAC check) and look the marker up in the opened header, so
 *    the flag is authenticated; the payload is then read with the
 *    *_opened constructors.
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
#include "strongbox/random.h"
#include "strongbox/sys/age.h"
#include "fileops/age_file.h"
#include "fileops/stanza_types.h"
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

static int
refuse_passphrase(sbx_recipient *const *recipients, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (recipients[i] != NULL && (recipients[i]->ops->flags & SBX_AGE_STANZA_ALONE))
            return sbx__error(SBX_EINVAL,
                              "padding cannot be used with a passphrase: age requires a "
                              "passphrase (scrypt) stanza to be the only stanza of a file; "
                              "encrypt to a key (age1...), or pad the plaintext first "
                              "(sbx pad)");
    }
    return 0;
}

/* An encryptor whose header holds the recipients' stanzas, then the marker. */
static int
marked_encryptor_new(sbx_sink **out, sbx_sink *dst, sbx_recipient *const *recipients, size_t count,
                     const sbx_age_encrypt_options *opts)
{
    static const char *const args[] = {SBX_PAD_STANZA_VERSION};
    uint8_t *key = sbx_secret_alloc(SBX_AGE_FILE_KEY_LEN);
    sbx_age_header *h = NULL;
    int err;
    if (key == NULL)
        return sbx__error_nomem();
    if ((err = sbx_random_bytes(key, SBX_AGE_FILE_KEY_LEN)) == 0 &&
        (err = sbx_age_header_new(&h)) == 0 &&
        (err = sbx_age_header_wrap(h, recipients, count, key)) == 0 &&
        (err = sbx_age_header_add_stanza(h, SBX_PAD_STANZA_TYPE, args, 1, NULL, 0)) == 0)
        err = sbx_age_encryptor_new_with_header(out, dst, h, key, opts);
    sbx_age_header_free(h);
    sbx_secret_free(key, SBX_AGE_FILE_KEY_LEN);
    return err;
}

/* see strongbox/pad.h */
int
sbx_pad_encryptor_new(sbx_sink **out, sbx_sink *dst, sbx_recipient *const *recipients, size_t count,
                      const sbx_age_encrypt_options *opts, const sbx_pad_options *pad)
{
    sbx_sink *enc = NULL, *ps = NULL;
    int err;
    *out = NULL;
    if ((err = sbx_fileops__stanza_types()) < 0 || (err = check_opts(pad)) < 0 ||
        (err = refuse_passphrase(recipients, count)) < 0)
        return err;
    if ((err = marked_encryptor_new(&enc, dst, recipients, count, opts)) < 0 ||
        (err = sbx_pad_sink_new(&ps, enc, pad)) < 0) {
        sbx_sink_free(enc);
        return err;
    }
    ((struct pad_sink *)ps)->owned = enc;
    *out = ps;
    return 0;
}

/*
 * The plaintext of an opened file, unpadded when padded; the returned
 * source owns the decryptor, the unpadder and f's armor filter.
 */
static int
plaintext_source(sbx_source **out, sbx_fileops__age_file *f, bool padded,
                 const sbx_age_decrypt_options *opts)
{
    sbx_source *dec = NULL, *un = NULL;
    int err;
    if ((err = sbx_age_decryptor_new_opened(&dec, f->header, f->in, opts)) < 0)
        return err;
    if (padded && (err = sbx_unpad_source_new(&un, dec)) < 0)
        goto fail;
    if (un == NULL && f->armor == NULL) {
        *out = dec;
        return 0;
    }
    sbx_source *under[] = {un != NULL ? dec : f->armor, un != NULL ? f->armor : NULL};
    if ((err = sbx_fileops__owning_source_new(out, un != NULL ? un : dec, under, 2)) < 0)
        goto fail;
    f->armor = NULL; // owned by *out now
    return 0;
fail:
    sbx_source_free(un);
    sbx_source_free(dec);
    return err;
}

/* see strongbox/pad.h */
int
sbx_pad_decryptor_new(sbx_source **out, sbx_source *src, sbx_identity *const *identities,
                      size_t count, const sbx_age_decrypt_options *opts, bool *padded)
{
    sbx_fileops__age_file f;
    bool is_padded;
    int err;
    *out = NULL;
    if (padded != NULL)
        *padded = false;
    if ((err = sbx_fileops__stanza_types()) < 0 ||
        (err = sbx_fileops__age_file_open(&f, src, opts ? opts->armor : SBX_ARMOR_AUTO, identities,
                                          count)) < 0)
        return err;
    is_padded = sbx_age_header_find(f.header, SBX_PAD_STANZA_TYPE) != NULL;
    if ((err = plaintext_source(out, &f, is_padded, opts)) == 0 && padded != NULL)
        *padded = is_padded;
    sbx_fileops__age_file_close(&f);
    return err;
}

/* The data size of a padded file of total plaintext bytes, from its trailer. */
static int
padded_size(uint64_t *len, sbx_age_reader *r, uint64_t total)
{
    uint8_t trailer[SBX_PAD_TRAILER_LEN];
    size_t got = 0;
    int err;
    if (total < SBX_PAD_TRAILER_LEN)
        return sbx__error(SBX_EFORMAT, "malformed padding: the plaintext is shorter than the "
                                       "8-byte length trailer");
    if ((err = sbx_age_reader_pread(r, trailer, sizeof(trailer), total - SBX_PAD_TRAILER_LEN,
                                    &got)) < 0)
        return err;
    *len = be64(trailer);
    if (got != sizeof(trailer) || *len > total - SBX_PAD_TRAILER_LEN)
        return sbx__error(SBX_EFORMAT,
                          "malformed padding: the length trailer (%llu) is "
                          "larger than the padded data",
                          (unsigned long long)*len);
    return 0;
}

/* see strongbox/pad.h */
int
sbx_pad_reader_open(sbx_age_reader **out, uint64_t *size, bool *padded, int fd,
                    sbx_identity *const *identities, size_t count)
{
    sbx_age_header *h = NULL;
    sbx_age_reader *r = NULL;
    bool is_padded = false;
    uint64_t total = 0, len;
    int err;
    *out = NULL;
    *size = 0;
    if (padded != NULL)
        *padded = false;
    if ((err = sbx_fileops__stanza_types()) < 0 || (err = sbx_age_header_read_fd(&h, fd)) < 0 ||
        (err = sbx_age_header_unwrap(h, identities, count)) < 0 ||
        (err = sbx_age_reader_open_opened(&r, fd, h)) < 0 ||
        (err = sbx_age_reader_size(r, &total)) < 0)
        goto out;
    is_padded = sbx_age_header_find(h, SBX_PAD_STANZA_TYPE) != NULL;
    len = total;
    if (is_padded && (err = padded_size(&len, r, total)) < 0)
        goto out;
    *size = len;
    if (padded != NULL)
        *padded = is_padded;
    *out = r;
    r = NULL;
out:
    sbx_age_reader_free(r);
    sbx_age_header_free(h);
    return err;
}
