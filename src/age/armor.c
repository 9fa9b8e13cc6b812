/*
 * src/age/armor.c - ASCII armor (age.md §7): strict PEM-style base64 of the
 * whole age file between BEGIN/END lines.
 *
 * Implementation notes (decoder):
 *  - Up to 1,024 whitespace bytes before BEGIN, fewer than 1,024 after END.
 *  - Lines end in LF or CRLF (one CR before the LF is dropped).
 *  - Data lines are exactly 64 columns except the last (1-64 columns), which
 *    must be followed by the END line. Padding ('=') only in the last line;
 *    canonical base64 only; no empty lines, no spaces.
 *  - A problem found at the END line or after it is reported on the read
 *    after the last data was returned, as a streaming reader sees it.
 *  - Constant memory: a 16 KiB read buffer and one decoded line.
 */
#include "strongbox/age.h"
#include "strongbox/encoding.h"
#include "strongbox/memory.h"
#include "age/header.h"
#include "core/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARMOR_BEGIN    SBX_AGE_ARMOR_BEGIN
#define ARMOR_END      "-----END AGE ENCRYPTED FILE-----"
#define ARMOR_COLUMNS  64
#define ARMOR_BYTES    48 /* bytes per full line */
#define MAX_WHITESPACE 1024
#define READER_BUF     16384
#define ENC_LINES      64

/* ---- encoder ---- */

struct armor_encoder {
    sbx_sink base;
    sbx_sink *dst;
    bool begun;
    size_t fill;                         /* bytes waiting in in[] */
    uint8_t in[ARMOR_BYTES * ENC_LINES]; /* whole lines of input */
    char out[(ARMOR_COLUMNS + 1) * ENC_LINES + 8];
};

static int
enc_begin(struct armor_encoder *e)
{
    if (e->begun)
        return 0;
    e->begun = true;
    return sbx_sink_write(e->dst, (const uint8_t *)ARMOR_BEGIN "\n", sizeof(ARMOR_BEGIN));
}

/* Encode e->in[0..fill) as lines and write them. */
static int
enc_flush(struct armor_encoder *e)
{
    size_t o = 0;
    for (size_t off = 0; off < e->fill; off += ARMOR_BYTES) {
        size_t take = e->fill - off < ARMOR_BYTES ? e->fill - off : ARMOR_BYTES;
        long n = sbx_base64_encode(e->out + o, sizeof(e->out) - o, e->in + off, take, true);
        if (n < 0)
            return (int)n;
        o += (size_t)n;
        e->out[o++] = '\n';
    }
    e->fill = 0;
    return sbx_sink_write(e->dst, (const uint8_t *)e->out, o);
}

static int
enc_write(sbx_sink *self, const uint8_t *data, size_t len)
{
    struct armor_encoder *e = (struct armor_encoder *)self;
    int err;
    if ((err = enc_begin(e)) < 0)
        return err;
    while (len > 0) {
        if (e->fill == sizeof(e->in) && (err = enc_flush(e)) < 0)
            return err;
        size_t take = sizeof(e->in) - e->fill < len ? sizeof(e->in) - e->fill : len;
        memcpy(e->in + e->fill, data, take);
        e->fill += take;
        data += take;
        len -= take;
    }
    return 0;
}

static int
enc_finish(sbx_sink *self)
{
    struct armor_encoder *e = (struct armor_encoder *)self;
    int err;
    if ((err = enc_begin(e)) < 0 || (err = enc_flush(e)) < 0)
        return err;
    if ((err = sbx_sink_write(e->dst, (const uint8_t *)ARMOR_END "\n", sizeof(ARMOR_END))) < 0)
        return err;
    return sbx_sink_finish(e->dst);
}

static void
enc_free(sbx_sink *self)
{
    if (self != NULL) {
        SBX_WIPE_CTX((struct armor_encoder *)self);
        free(self);
    }
}

/* see strongbox/age.h */
int
sbx_armor_encoder_new(sbx_sink **out, sbx_sink *dst)
{
    struct armor_encoder *e = calloc(1, sizeof(*e));
    *out = NULL;
    if (e == NULL)
        return sbx__error_nomem();
    e->base.write = enc_write;
    e->base.finish = enc_finish;
    e->base.free = enc_free;
    e->dst = dst;
    *out = &e->base;
    return 0;
}

/* ---- decoder and detector ---- */

enum reader_state { R_PASSTHROUGH, R_BEGIN, R_DATA, R_DONE, R_FAILED };

struct armor_reader {
    sbx_source base;
    sbx_source *src;
    enum reader_state state;
    int err;       /* error to report once the decoded data is consumed */
    char msg[160]; /* its message, kept across calls */
    bool eof;
    size_t pos, len;
    uint8_t buf[READER_BUF];
    uint8_t line[ARMOR_BYTES + 2];
    size_t line_pos, line_len;
};

static bool
is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Read more input into buf (compacting first). */
static int
fill(struct armor_reader *r)
{
    size_t got;
    int err;
    if (r->eof)
        return 0;
    if (r->pos > 0) {
        memmove(r->buf, r->buf + r->pos, r->len - r->pos);
        r->len -= r->pos;
        r->pos = 0;
    }
    if ((err = sbx_source_read(r->src, r->buf + r->len, sizeof(r->buf) - r->len, &got)) < 0)
        return err;
    r->len += got;
    r->eof = got == 0;
    return 0;
}

static int
armor_error(const char *what)
{
    return sbx__error(SBX_EARMOR, "invalid armor: %s", what);
}

/* Remember err (and the current message) to report it later. */
static int
keep_error(struct armor_reader *r, int err)
{
    r->err = err;
    snprintf(r->msg, sizeof(r->msg), "%s", sbx_error_last()->message);
    return err;
}

/* Report the kept error again. */
static int
kept_error(struct armor_reader *r)
{
    r->state = R_FAILED;
    return sbx__error(r->err, "%s", r->msg);
}

/*
 * Next line without its LF (and one CR before it). *line is NULL at end of
 * input. Lines longer than any valid armor line are refused.
 */
static int
get_line(struct armor_reader *r, const uint8_t **line, size_t *n)
{
    const size_t max = ARMOR_COLUMNS + 2; /* 64 columns + CR + LF */
    int err;
    *line = NULL;
    *n = 0;
    for (;;) {
        const uint8_t *nl = memchr(r->buf + r->pos, '\n', r->len - r->pos);
        if (nl != NULL || r->eof || r->len - r->pos > max) {
            size_t end = nl ? (size_t)(nl - r->buf) : r->len;
            size_t l = end - r->pos;
            if (l + (nl ? 1 : 0) > max)
                return armor_error("line too long");
            if (l == 0 && nl == NULL)
                return 0; /* end of input */
            *line = r->buf + r->pos;
            r->pos = nl ? end + 1 : end;
            if (l > 0 && (*line)[l - 1] == '\r')
                l--;
            *n = l;
            return 0;
        }
        if ((err = fill(r)) < 0)
            return err;
    }
}

static bool
line_is(const uint8_t *line, size_t n, const char *want)
{
    return line != NULL && n == strlen(want) && memcmp(line, want, n) == 0;
}

/* After the END line: only a little whitespace may follow. */
static int
check_trailing(struct armor_reader *r)
{
    size_t seen = 0;
    int err;
    for (;;) {
        for (; r->pos < r->len; r->pos++, seen++) {
            if (!is_space(r->buf[r->pos]))
                return armor_error("data after the END line");
            if (seen + 1 >= MAX_WHITESPACE)
                return armor_error("too much whitespace after the END line");
        }
        if (r->eof)
            return 0;
        if ((err = fill(r)) < 0)
            return err;
    }
}

/* Skip leading whitespace and check the BEGIN line. */
static int
read_begin(struct armor_reader *r)
{
    const uint8_t *line;
    size_t n, skipped = 0;
    int err;
    for (;;) {
        while (r->pos < r->len && is_space(r->buf[r->pos])) {
            r->pos++;
            if (++skipped > MAX_WHITESPACE)
                return armor_error("too much whitespace before the BEGIN line");
        }
        if (r->pos < r->len || r->eof)
            break;
        if ((err = fill(r)) < 0)
            return err;
    }
    if ((err = get_line(r, &line, &n)) < 0)
        return err;
    if (!line_is(line, n, ARMOR_BEGIN))
        return armor_error("the first line is not \"" ARMOR_BEGIN "\"");
    r->state = R_DATA;
    return 0;
}

/* Decode the next data line into r->line; moves to R_DONE at the END line. */
static int
read_data_line(struct armor_reader *r)
{
    const uint8_t *line;
    size_t n, got;
    int err;
    if ((err = get_line(r, &line, &n)) < 0)
        return err;
    if (line == NULL)
        return armor_error("missing END line (truncated file?)");
    if (line_is(line, n, ARMOR_END)) {
        r->state = R_DONE;
        if ((err = check_trailing(r)) < 0)
            keep_error(r, err);
        return 0;
    }
    if (n == 0)
        return armor_error("empty line");
    if (n > ARMOR_COLUMNS)
        return armor_error("line longer than 64 columns");
    if (sbx_base64_decode(r->line, sizeof(r->line), &got, (const char *)line, n, true) < 0)
        return armor_error("bad base64 (invalid character, padding or whitespace)");
    r->line_pos = 0;
    r->line_len = got;
    if (n < ARMOR_COLUMNS || line[n - 1] == '=') {
        /* Last data line: END must follow. */
        if ((err = get_line(r, &line, &n)) < 0)
            return err;
        if (!line_is(line, n, ARMOR_END))
            return armor_error("a short or padded line must be followed by the END line");
        r->state = R_DONE;
        if ((err = check_trailing(r)) < 0)
            keep_error(r, err);
    }
    return 0;
}

static int
reader_read(sbx_source *self, uint8_t *out, size_t len, size_t *nread)
{
    struct armor_reader *r = (struct armor_reader *)self;
    int err;
    *nread = 0;
    if (r->state == R_PASSTHROUGH) {
        if (r->pos < r->len) {
            size_t n = r->len - r->pos < len ? r->len - r->pos : len;
            memcpy(out, r->buf + r->pos, n);
            r->pos += n;
            *nread = n;
            return 0;
        }
        return sbx_source_read(r->src, out, len, nread);
    }
    if (r->state == R_FAILED)
        return kept_error(r);
    if (r->state == R_BEGIN && (err = read_begin(r)) < 0) {
        keep_error(r, err);
        return kept_error(r);
    }
    while (*nread < len) {
        if (r->line_pos == r->line_len) {
            if (r->state == R_DONE)
                break;
            if ((err = read_data_line(r)) < 0) {
                keep_error(r, err);
                r->state = R_FAILED;
                return *nread > 0 ? 0 : kept_error(r); /* first return what we have */
            }
            continue;
        }
        size_t n =
            r->line_len - r->line_pos < len - *nread ? r->line_len - r->line_pos : len - *nread;
        memcpy(out + *nread, r->line + r->line_pos, n);
        r->line_pos += n;
        *nread += n;
    }
    if (*nread == 0 && r->state == R_DONE && r->err < 0)
        return kept_error(r);
    return 0;
}

static void
reader_free(sbx_source *self)
{
    if (self != NULL) {
        SBX_WIPE_CTX((struct armor_reader *)self);
        free(self);
    }
}

static int
reader_new(struct armor_reader **out, sbx_source *src, enum reader_state state)
{
    struct armor_reader *r = calloc(1, sizeof(*r));
    *out = NULL;
    if (r == NULL)
        return sbx__error_nomem();
    r->base.read = reader_read;
    r->base.free = reader_free;
    r->src = src;
    r->state = state;
    *out = r;
    return 0;
}

/* see strongbox/age.h */
int
sbx_armor_decoder_new(sbx_source **out, sbx_source *src)
{
    struct armor_reader *r;
    int err = reader_new(&r, src, R_BEGIN);
    *out = err == 0 ? &r->base : NULL;
    return err;
}

/* see strongbox/age.h */
int
sbx_armor_detect_new(sbx_source **out, bool *armored, sbx_source *src)
{
    struct armor_reader *r;
    size_t ws = 0;
    int err;
    *out = NULL;
    if (armored != NULL)
        *armored = false;
    if ((err = reader_new(&r, src, R_PASSTHROUGH)) < 0)
        return err;
    /* Peek: whitespace, then enough bytes to compare with the BEGIN line. */
    for (;;) {
        while (ws < r->len && is_space(r->buf[ws]) && ws <= MAX_WHITESPACE)
            ws++;
        if (r->eof || ws > MAX_WHITESPACE ||
            (ws < r->len && !is_space(r->buf[ws]) && r->len - ws >= sizeof(ARMOR_BEGIN) - 1))
            break;
        if ((err = fill(r)) < 0) {
            reader_free(&r->base);
            return err;
        }
    }
    if (r->len - ws >= sizeof(ARMOR_BEGIN) - 1 &&
        memcmp(r->buf + ws, ARMOR_BEGIN, sizeof(ARMOR_BEGIN) - 1) == 0) {
        r->state = R_BEGIN;
        if (armored != NULL)
            *armored = true;
    }
    *out = &r->base;
    return 0;
}
