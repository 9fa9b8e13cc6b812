/*
 * src/age/plugin_conn.c - age plugin protocol stanzas over a byte stream
 * (strongbox/sys/plugin.h).
 *
 * Implementation notes (C2SP age-plugin, "IPC protocol"):
 *  - A stanza is found whole before it is parsed: its opening line, then
 *    body lines until the first one that is not 64 columns long (the
 *    parser then says what is wrong with it). The parse is the header's
 *    own (sbx_age__stanza_parse), into a one-stanza header that holds the
 *    last stanza read.
 *  - The input is hostile: at most SBX_PLUGIN_MAX_STANZA bytes are held for
 *    one stanza, whatever the stream sends; the end of input inside a
 *    stanza is an error of its own.
 *  - Bytes read past a stanza stay for the next read; the buffer is wiped
 *    when compacted and freed (a body may carry a file key or a PIN).
 */
#include "age/plugin.h"
#include "age/header.h"
#include "strongbox/memory.h"
#include "core/error.h"
#include "core/io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_STEP 4096

struct sbx_plugin_conn {
    sbx__plugin_io io;
    sbx_buf in; /* unparsed bytes: in.ptr[start..len) */
    size_t start;
    sbx_age_header *last; /* holds the stanza returned by the last read */
    int in_fd, out_fd;    /* sbx_plugin_conn_new's fds */
};

static int
fd_read(void *ctx, uint8_t *buf, size_t cap, size_t *got)
{
    const sbx_plugin_conn *c = ctx;
    for (;;) {
        ssize_t n = read(c->in_fd, buf, cap);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return sbx__error_sys(SBX_EIO, "cannot read the plugin protocol input");
        *got = (size_t)n;
        return 0;
    }
}

static int
fd_write(void *ctx, const uint8_t *buf, size_t len)
{
    return sbx__write_all(((const sbx_plugin_conn *)ctx)->out_fd, buf, len);
}

/* see age/plugin.h */
int
sbx__plugin_conn_new_io(sbx_plugin_conn **out, const sbx__plugin_io *io)
{
    *out = calloc(1, sizeof(**out));
    if (*out == NULL)
        return sbx__error_nomem();
    (*out)->io = *io;
    (*out)->in_fd = (*out)->out_fd = -1;
    return 0;
}

/* see strongbox/sys/plugin.h */
int
sbx_plugin_conn_new(sbx_plugin_conn **out, int in_fd, int out_fd)
{
    sbx__plugin_io io = {fd_read, fd_write, NULL};
    int err = sbx__plugin_conn_new_io(out, &io);
    if (err == 0) {
        (*out)->io.ctx = *out;
        (*out)->in_fd = in_fd;
        (*out)->out_fd = out_fd;
    }
    return err;
}

/* see strongbox/sys/plugin.h */
void
sbx_plugin_conn_free(sbx_plugin_conn *c)
{
    if (c == NULL)
        return;
    sbx_buf_dispose(&c->in);
    sbx_age_header_free(c->last);
    free(c);
}

/* The end of the stanza at p[0..n) if it is all there, else 0. */
static size_t
stanza_end(const uint8_t *p, size_t n)
{
    const uint8_t *nl = memchr(p, '\n', n);
    if (nl == NULL)
        return 0;
    size_t pos = (size_t)(nl - p) + 1;
    for (;;) {
        nl = memchr(p + pos, '\n', n - pos);
        if (nl == NULL)
            return 0;
        size_t line = (size_t)(nl - p) - pos;
        pos += line + 1;
        if (line != 64)
            return pos;
    }
}

/* Drop the consumed bytes (wiped), keeping the rest at the start of the buffer. */
static void
compact(sbx_plugin_conn *c)
{
    size_t rest = c->in.len - c->start;
    if (c->start == 0)
        return;
    memmove(c->in.ptr, c->in.ptr + c->start, rest);
    sbx_wipe(c->in.ptr + rest, c->start);
    c->in.len = rest;
    c->start = 0;
}

/* Read more bytes: 0, or SBX_EIO / SBX_EFORMAT at the end of input. */
static int
fill(sbx_plugin_conn *c)
{
    size_t got = 0;
    int err;
    compact(c);
    if ((err = sbx_buf_reserve(&c->in, READ_STEP)) < 0)
        return err;
    if ((err = c->io.read(c->io.ctx, c->in.ptr + c->in.len, READ_STEP, &got)) < 0)
        return err;
    if (got == 0 && c->in.len == 0)
        return sbx__error(SBX_EIO, "the plugin's output ended before the protocol did");
    if (got == 0)
        return sbx__error(SBX_EFORMAT, "the plugin's output ended inside a stanza");
    c->in.len += got;
    return 0;
}

/* see strongbox/sys/plugin.h */
int
sbx_plugin_conn_read(sbx_plugin_conn *c, const sbx_age_stanza **s)
{
    size_t end;
    int err;
    *s = NULL;
    sbx_age_header_free(c->last);
    c->last = NULL;
    for (;;) {
        size_t avail = c->in.len - c->start;
        end = avail > 0 ? stanza_end(c->in.ptr + c->start, avail) : 0; // ptr is NULL at first
        if (end > SBX_PLUGIN_MAX_STANZA || (end == 0 && avail > SBX_PLUGIN_MAX_STANZA))
            return sbx__error(SBX_ETOOBIG, "the plugin sent a stanza larger than %d bytes",
                              SBX_PLUGIN_MAX_STANZA);
        if (end > 0)
            break;
        if ((err = fill(c)) < 0)
            return err;
    }
    size_t pos = 0;
    if ((err = sbx_age_header_new(&c->last)) < 0)
        return err;
    err = sbx_age__stanza_parse(c->last, c->in.ptr + c->start, end, &pos);
    c->start += end;
    if (err < 0) {
        char why[256];
        snprintf(why, sizeof(why), "%s", sbx_error_last()->message);
        sbx_age_header_free(c->last);
        c->last = NULL;
        return sbx__error(err == SBX_EHEADER ? SBX_EFORMAT : err,
                          "the plugin sent a malformed stanza (%s)", why);
    }
    *s = sbx_age_header_stanza(c->last, 0);
    return 0;
}

/* An argument the protocol can carry: printable ASCII, no space, not empty. */
static bool
word_ok(const char *a)
{
    if (a == NULL || a[0] == '\0')
        return false;
    for (; *a != '\0'; a++) {
        if ((unsigned char)*a < 0x21 || (unsigned char)*a > 0x7e)
            return false;
    }
    return true;
}

/* see strongbox/sys/plugin.h */
int
sbx_plugin_conn_write(sbx_plugin_conn *c, const char *type, const char *const *args, size_t nargs,
                      const uint8_t *body, size_t body_len)
{
    sbx_buf out = SBX_BUF_INIT;
    int err;
    if (!word_ok(type))
        return sbx__error(SBX_EINVAL, "a plugin command must be printable ASCII without spaces");
    for (size_t i = 0; i < nargs; i++) {
        if (!word_ok(args[i]))
            return sbx__error(SBX_EINVAL,
                              "argument %zu of plugin command %s must be printable "
                              "ASCII without spaces",
                              i + 1, type);
    }
    if (body_len > 0 && body == NULL)
        return sbx__error(SBX_EINVAL, "plugin command %s: body is NULL", type);
    if ((err = sbx_age__stanza_encode(&out, type, args, nargs, body, body_len)) == 0)
        err = c->io.write(c->io.ctx, out.ptr, out.len);
    sbx_buf_dispose(&out);
    return err;
}
