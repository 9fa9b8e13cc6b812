/*
 * fuzz/armor_fuzzer.c - the ASCII armor decoder and detector (src/age/armor.c).
 *
 * Input: arbitrary bytes, read as an armored age file. Properties:
 *  - sbx_armor_decoder_new over a memory source, read to the end with large
 *    reads and again with small uneven reads, never crashes and gives the
 *    same outcome (accepted or not, and the same bytes when accepted);
 *  - for inputs it accepts, armoring the decoded bytes with
 *    sbx_armor_encoder_new and decoding that again gives the same bytes;
 *  - when the input is already in the writer's form (BEGIN at byte 0, LF
 *    only, one LF after END), the encoder reproduces it byte for byte:
 *    strict armor has one encoding per file (age.md §7);
 *  - sbx_armor_detect_new passes non-armored input through unchanged and
 *    agrees with the decoder on armored input.
 */
#include <stdint.h>
#include <string.h>

#include "strongbox/age.h"
#include "strongbox/stream.h"
#include "fuzz_util.h"

#define BEGIN_LINE "-----BEGIN AGE ENCRYPTED FILE-----\n"
#define END_LINE   "-----END AGE ENCRYPTED FILE-----\n"

/* Reads src to the end in reads of step bytes; returns 0 or the error. */
static int
drain(sbx_source *src, sbx_buf *out, size_t step)
{
    uint8_t buf[4096];
    for (;;) {
        size_t got = 0;
        int err = sbx_source_read(src, buf, step < sizeof(buf) ? step : sizeof(buf), &got);
        if (err < 0)
            return err;
        if (got == 0)
            return 0;
        FUZZ_CHECK(got <= step, "a read returns at most what was asked");
        if (sbx_buf_append(out, buf, got) < 0)
            abort();
    }
}

/* Decodes armor from data; out receives what was read (complete if 0 is returned). */
static int
decode(sbx_buf *out, const uint8_t *data, size_t size, size_t step)
{
    sbx_source *mem = NULL, *dec = NULL;
    int err;
    if (sbx_source_mem_new(&mem, data, size) < 0 || sbx_armor_decoder_new(&dec, mem) < 0)
        abort();
    err = drain(dec, out, step);
    sbx_source_free(dec);
    sbx_source_free(mem);
    return err;
}

static void
encode(sbx_buf *out, const uint8_t *data, size_t size)
{
    sbx_sink *buf = NULL, *enc = NULL;
    FUZZ_CHECK(sbx_sink_buf_new(&buf, out) == 0 && sbx_armor_encoder_new(&enc, buf) == 0,
               "create encoder");
    /* Write in two pieces to exercise the encoder's line buffering. */
    size_t part = size / 3;
    if (size > 0) {
        FUZZ_CHECK(sbx_sink_write(enc, data, part) == 0, "encoder write");
        FUZZ_CHECK(sbx_sink_write(enc, data + part, size - part) == 0, "encoder write");
    }
    FUZZ_CHECK(sbx_sink_finish(enc) == 0, "encoder finish");
    sbx_sink_free(enc);
    sbx_sink_free(buf);
}

static bool
in_writer_form(const uint8_t *data, size_t size)
{
    const size_t b = sizeof(BEGIN_LINE) - 1, e = sizeof(END_LINE) - 1;
    return size >= b + e && memcmp(data, BEGIN_LINE, b) == 0 &&
           memcmp(data + size - e, END_LINE, e) == 0 && memchr(data, '\r', size) == NULL;
}

static void
check_round_trip(const sbx_buf *plain, const uint8_t *data, size_t size)
{
    sbx_buf armored = SBX_BUF_INIT, again = SBX_BUF_INIT;
    encode(&armored, plain->ptr, plain->len);
    FUZZ_CHECK(decode(&again, armored.ptr, armored.len, 4096) == 0, "encoder output decodes");
    FUZZ_CHECK(again.len == plain->len &&
                   (plain->len == 0 || memcmp(again.ptr, plain->ptr, plain->len) == 0),
               "decode(encode(decode(x))) == decode(x)");
    if (in_writer_form(data, size))
        FUZZ_CHECK(armored.len == size && memcmp(armored.ptr, data, size) == 0,
                   "encode(decode(x)) == x for input in the writer's form");
    sbx_buf_dispose(&armored);
    sbx_buf_dispose(&again);
}

static void
check_detect(const uint8_t *data, size_t size, int dec_err, const sbx_buf *plain)
{
    sbx_source *mem = NULL, *det = NULL;
    sbx_buf out = SBX_BUF_INIT;
    bool armored = false;
    if (sbx_source_mem_new(&mem, data, size) < 0)
        abort();
    FUZZ_CHECK(sbx_armor_detect_new(&det, &armored, mem) == 0, "detect over memory");
    int err = drain(det, &out, 1000);
    if (!armored) {
        FUZZ_CHECK(err == 0 && out.len == size && (size == 0 || memcmp(out.ptr, data, size) == 0),
                   "detect passes non-armored input through unchanged");
    } else {
        FUZZ_CHECK((err == 0) == (dec_err == 0), "detect and decoder agree on acceptance");
        if (err == 0)
            FUZZ_CHECK(out.len == plain->len &&
                           (out.len == 0 || memcmp(out.ptr, plain->ptr, out.len) == 0),
                       "detect and decoder give the same bytes");
    }
    sbx_buf_dispose(&out);
    sbx_source_free(det);
    sbx_source_free(mem);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sbx_buf plain = SBX_BUF_INIT, small = SBX_BUF_INIT;
    int err = decode(&plain, data, size, 4096);
    int err_small = decode(&small, data, size, 1 + size % 7);
    FUZZ_CHECK((err == 0) == (err_small == 0), "read size does not change acceptance");
    if (err == 0) {
        FUZZ_CHECK(small.len == plain.len &&
                       (plain.len == 0 || memcmp(small.ptr, plain.ptr, plain.len) == 0),
                   "read size does not change the bytes");
        check_round_trip(&plain, data, size);
    } else {
        FUZZ_CHECK(err == SBX_EARMOR, "armor errors are SBX_EARMOR");
    }
    check_detect(data, size, err, &plain);
    sbx_buf_dispose(&plain);
    sbx_buf_dispose(&small);
    return 0;
}
