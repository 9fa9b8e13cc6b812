/*
 * fuzz/plugin_fuzzer.c - the age plugin client (src/age/plugin_conn.c,
 * src/age/plugin_client.c): the plugin's output is hostile input.
 *
 * Input: byte 0 picks the state machine (bit 0: identity-v1 or
 * recipient-v1), whether the UI answers (bit 1), and how the bytes arrive
 * (bits 2-7: the size of each read, 1-64 bytes, so stanzas split anywhere);
 * the rest is what the plugin writes. What the client writes is discarded.
 * Properties:
 *  - no crash, leak or out-of-bounds access, whatever the plugin writes;
 *  - identity-v1: a file key is reported only for a file we sent;
 *  - recipient-v1: success means every file got at least one stanza;
 *  - every stanza the connection returns re-encodes to a stanza that a
 *    fresh connection reads back identically.
 */
#include <stdint.h>
#include <string.h>

#include "strongbox/memory.h"
#include "age/header.h"
#include "age/plugin.h"
#include "fuzz_util.h"

struct mem {
    const uint8_t *data;
    size_t len, pos, step;
};

static int
mem_read(void *ctx, uint8_t *buf, size_t cap, size_t *got)
{
    struct mem *m = ctx;
    size_t n = m->len - m->pos;
    if (n > m->step)
        n = m->step;
    if (n > cap)
        n = cap;
    memcpy(buf, m->data + m->pos, n);
    m->pos += n;
    *got = n;
    return 0;
}

static int
mem_write(void *ctx, const uint8_t *buf, size_t len)
{
    (void)ctx;
    (void)buf;
    (void)len;
    return 0;
}

static int
ui_message(const char *plugin, const char *message, void *payload)
{
    (void)plugin;
    (void)payload;
    FUZZ_CHECK(strlen(message) <= 1024, "messages are cut");
    return 0;
}

static int
ui_confirm(const char *plugin, const char *message, const char *yes, const char *no,
           bool *chose_yes, void *payload)
{
    (void)plugin;
    (void)message;
    (void)yes;
    (void)no;
    (void)payload;
    *chose_yes = true;
    return 0;
}

static int
ui_request(sbx_buf *out, const char *plugin, const char *message, bool secret, void *payload)
{
    (void)plugin;
    (void)message;
    (void)secret;
    (void)payload;
    return sbx_buf_append(out, "1234", 4);
}

static const sbx_plugin_ui ui = {SBX_PLUGIN_UI_VERSION, ui_message, ui_confirm, ui_request, NULL};

/* Each stanza a connection reads, encoded again, reads back the same. */
static void
check_reencoding(const sbx_age_stanza *s)
{
    sbx_buf enc = SBX_BUF_INIT;
    sbx_plugin_conn *c = NULL;
    const sbx_age_stanza *again = NULL;
    FUZZ_CHECK(sbx_age__stanza_encode(&enc, s->type, s->args, s->nargs, s->body, s->body_len) == 0,
               "encode");
    struct mem m = {enc.ptr, enc.len, 0, enc.len};
    sbx__plugin_io io = {mem_read, mem_write, &m};
    FUZZ_CHECK(sbx__plugin_conn_new_io(&c, &io) == 0, "conn");
    FUZZ_CHECK(sbx_plugin_conn_read(c, &again) == 0, "re-read");
    FUZZ_CHECK(strcmp(again->type, s->type) == 0 && again->nargs == s->nargs &&
                   again->body_len == s->body_len &&
                   (s->body_len == 0 || memcmp(again->body, s->body, s->body_len) == 0),
               "same stanza");
    for (size_t i = 0; i < s->nargs; i++)
        FUZZ_CHECK(strcmp(again->args[i], s->args[i]) == 0, "same arguments");
    sbx_plugin_conn_free(c);
    sbx_buf_dispose(&enc);
}

static void
read_all(const uint8_t *data, size_t size, size_t step)
{
    struct mem m = {data, size, 0, step};
    sbx__plugin_io io = {mem_read, mem_write, &m};
    sbx_plugin_conn *c = NULL;
    const sbx_age_stanza *s;
    FUZZ_CHECK(sbx__plugin_conn_new_io(&c, &io) == 0, "conn");
    while (sbx_plugin_conn_read(c, &s) == 0)
        check_reencoding(s);
    sbx_plugin_conn_free(c);
}

static void
run_identity(sbx_plugin_conn *c, bool with_ui)
{
    sbx_age_header *h = NULL;
    const char *args[1] = {"YQ"};
    const uint8_t body[16] = {0};
    sbx__plugin_report rep;
    FUZZ_CHECK(sbx_age_header_new(&h) == 0, "header");
    FUZZ_CHECK(sbx_age_header_add_stanza(h, "sbxtest", args, 1, body, 16) == 0, "stanza");
    const sbx_age_stanza *s0 = sbx_age_header_stanza(h, 0);
    const sbx_age_stanza *one[1] = {s0};
    sbx__plugin_file files[2] = {{one, 1, false, {0}}, {one, 1, false, {0}}};
    const char *ids[1] = {"AGE-PLUGIN-FUZZ-1QQQQQQ"};
    int err = sbx__plugin_identity_v1(c, "fuzz", ids, 1, files, 2, with_ui ? &ui : NULL, &rep);
    if (err != 0)
        FUZZ_CHECK(err < 0, "failures are negative");
    sbx_age_header_free(h);
    SBX_WIPE_BUF(files[0].file_key);
    SBX_WIPE_BUF(files[1].file_key);
}

static void
run_recipient(sbx_plugin_conn *c, bool with_ui)
{
    sbx_age_header *out[2] = {NULL, NULL};
    const uint8_t keys[2][SBX_AGE_FILE_KEY_LEN] = {{1}, {2}};
    const char *rs[1] = {"age1fuzz1qqqqqq"};
    sbx__plugin_report rep;
    FUZZ_CHECK(sbx_age_header_new(&out[0]) == 0 && sbx_age_header_new(&out[1]) == 0, "headers");
    int err =
        sbx__plugin_recipient_v1(c, "fuzz", rs, NULL, 1, keys, out, 2, with_ui ? &ui : NULL, &rep);
    if (err == 0)
        FUZZ_CHECK(sbx_age_header_count(out[0]) > 0 && sbx_age_header_count(out[1]) > 0,
                   "every file got a stanza");
    sbx_age_header_free(out[0]);
    sbx_age_header_free(out[1]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 256 * 1024)
        return 0;
    uint8_t mode = data[0];
    size_t step = 1 + (size_t)(mode >> 2);
    struct mem m = {data + 1, size - 1, 0, step};
    sbx__plugin_io io = {mem_read, mem_write, &m};
    sbx_plugin_conn *c = NULL;
    FUZZ_CHECK(sbx__plugin_conn_new_io(&c, &io) == 0, "conn");
    if (mode & 1)
        run_identity(c, (mode & 2) != 0);
    else
        run_recipient(c, (mode & 2) != 0);
    sbx_plugin_conn_free(c);
    read_all(data + 1, size - 1, step);
    return 0;
}
