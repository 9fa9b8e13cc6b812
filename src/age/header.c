/*
 * src/age/header.c - age v1 header parsing and encoding.
 *
 * Implementation notes (age.md §3):
 *  - The header is: the version line; one or more stanzas, each an opening
 *    line "-> TYPE ARG..." and a body of base64 lines; the MAC line
 *    "--- " + 43 base64 characters. LF only; a CR anywhere is invalid.
 *  - Arguments are separated by exactly one space and consist of printable
 *    ASCII (0x21-0x7E). A body line of 64 characters means more follows; the
 *    first shorter line (possibly empty) ends the body.
 *  - All base64 is unpadded and canonical (sbx_base64_decode with pad=false).
 *  - The strict grammar gives one encoding per header, so encode(parse(x))
 *    reproduces x byte for byte; the fuzzer checks this.
 *  - Limits: SBX_AGE_MAX_STANZAS stanzas, SBX_AGE_MAX_ARGS arguments of at most
 *    SBX_AGE_MAX_ARG_LEN bytes each; the caller bounds the total size.
 */
#include "age/header.h"
#include "age/payload.h"
#include "strongbox/encoding.h"
#include "strongbox/memory.h"
#include "core/error.h"

#include <stdlib.h>
#include <string.h>

#define VERSION_LEN (sizeof(SBX_AGE_VERSION_LINE) - 1)

static void
stanza_clear(sbx_age_stanza *s)
{
    free((char *)s->type);
    for (size_t i = 0; i < s->nargs; i++)
        free((char *)s->args[i]);
    free((char **)s->args);
    sbx_wipe((uint8_t *)s->body, s->body_len);
    free((uint8_t *)s->body);
    memset(s, 0, sizeof(*s));
}

/* see strongbox/sys/age.h */
void
sbx_age_header_free(sbx_age_header *hdr)
{
    if (hdr == NULL)
        return;
    for (size_t i = 0; i < hdr->count; i++)
        stanza_clear(&hdr->stanzas[i]);
    free(hdr->stanzas);
    sbx_buf_dispose(&hdr->read);
    sbx_secret_free(hdr->file_key, SBX_AGE_FILE_KEY_LEN);
    free(hdr);
}

/* see strongbox/sys/age.h */
int
sbx_age_header_new(sbx_age_header **out)
{
    *out = calloc(1, sizeof(**out));
    return *out == NULL ? sbx__error_nomem() : 0;
}

static char *
dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* An argument the format can carry: 1..SBX_AGE_MAX_ARG_LEN printable ASCII bytes, no space. */
static bool
arg_ok(const char *a)
{
    size_t n = 0;
    for (; a[n] != '\0'; n++) {
        if ((unsigned char)a[n] < 0x21 || (unsigned char)a[n] > 0x7e || n == SBX_AGE_MAX_ARG_LEN)
            return false;
    }
    return n > 0;
}

static int
check_stanza_args(const char *type, const char *const *args, size_t nargs)
{
    if (type == NULL || !arg_ok(type))
        return sbx__error(SBX_EINVAL,
                          "a stanza type must be 1-%d printable ASCII characters "
                          "without spaces",
                          SBX_AGE_MAX_ARG_LEN);
    if (nargs > SBX_AGE_MAX_ARGS)
        return sbx__error(SBX_EINVAL, "a stanza has at most %d arguments", SBX_AGE_MAX_ARGS);
    for (size_t i = 0; i < nargs; i++) {
        if (args[i] == NULL || !arg_ok(args[i]))
            return sbx__error(SBX_EINVAL,
                              "stanza argument %zu must be 1-%d printable ASCII "
                              "characters without spaces",
                              i + 1, SBX_AGE_MAX_ARG_LEN);
    }
    return 0;
}

/* Append a stanza whose arguments are known to be valid. */
static int
add_stanza(sbx_age_header *hdr, const char *type, const char *const *args, size_t nargs,
           const uint8_t *body, size_t body_len)
{
    sbx_age_stanza *grown = realloc(hdr->stanzas, (hdr->count + 1) * sizeof(*grown));
    char *t, **a;
    uint8_t *b;
    if (grown == NULL)
        return sbx__error_nomem();
    hdr->stanzas = grown;
    sbx_age_stanza *s = &hdr->stanzas[hdr->count];
    memset(s, 0, sizeof(*s));
    s->type = t = strdup(type);
    s->args = (const char *const *)(a = calloc(nargs ? nargs : 1, sizeof(char *)));
    s->body = b = malloc(body_len ? body_len : 1);
    if (t == NULL || a == NULL || b == NULL)
        goto nomem;
    for (; s->nargs < nargs; s->nargs++) {
        if ((a[s->nargs] = strdup(args[s->nargs])) == NULL)
            goto nomem;
    }
    if (body_len > 0)
        memcpy(b, body, body_len);
    s->body_len = body_len;
    hdr->count++;
    return 0;
nomem:
    stanza_clear(s);
    return sbx__error_nomem();
}

/* see strongbox/sys/age.h */
int
sbx_age_header_add_stanza(sbx_age_header *hdr, const char *type, const char *const *args,
                          size_t nargs, const uint8_t *body, size_t body_len)
{
    int err;
    if ((err = check_stanza_args(type, args, nargs)) < 0)
        return err;
    if (hdr->count == SBX_AGE_MAX_STANZAS)
        return sbx__error(SBX_ETOOBIG, "a header has at most %d stanzas", SBX_AGE_MAX_STANZAS);
    if (body_len > 0 && body == NULL)
        return sbx__error(SBX_EINVAL, "stanza body is NULL");
    return add_stanza(hdr, type, args, nargs, body, body_len);
}

/* see strongbox/sys/age.h */
int
sbx_age_header_copy_stanza(sbx_age_header *hdr, const sbx_age_stanza *s)
{
    return sbx_age_header_add_stanza(hdr, s->type, s->args, s->nargs, s->body, s->body_len);
}

/* see strongbox/sys/age.h */
size_t
sbx_age_header_count(const sbx_age_header *hdr)
{
    return hdr->count;
}

/* see strongbox/sys/age.h */
const sbx_age_stanza *
sbx_age_header_stanza(const sbx_age_header *hdr, size_t i)
{
    return i < hdr->count ? &hdr->stanzas[i] : NULL;
}

/* see strongbox/sys/age.h */
const sbx_age_stanza *
sbx_age_header_find(const sbx_age_header *hdr, const char *type)
{
    for (size_t i = 0; i < hdr->count; i++) {
        if (strcmp(hdr->stanzas[i].type, type) == 0)
            return &hdr->stanzas[i];
    }
    return NULL;
}

/* Find the end of the line starting at pos; returns the index of its LF or -1. */
static long
line_end(const uint8_t *data, size_t len, size_t pos)
{
    const uint8_t *nl = memchr(data + pos, '\n', len - pos);
    return nl == NULL ? -1 : (long)(nl - data);
}

/* Split "-> a b c" into arguments. */
static int
parse_stanza_line(sbx_age_header *hdr, const char *line, size_t n, size_t index)
{
    const char *argv[SBX_AGE_MAX_ARGS + 1];
    char *copies[SBX_AGE_MAX_ARGS + 1] = {0};
    size_t argc = 0, i = 2;
    int err = 0;
    if (n <= 2)
        return sbx__error(SBX_EHEADER, "stanza %zu has no type", index + 1);
    while (i < n) {
        if (line[i] != ' ') {
            err = sbx__error(SBX_EHEADER, "stanza %zu: malformed opening line", index + 1);
            goto out;
        }
        size_t start = ++i;
        while (i < n && line[i] != ' ') {
            if ((unsigned char)line[i] < 0x21 || (unsigned char)line[i] > 0x7e) {
                err = sbx__error(SBX_EHEADER, "stanza %zu: invalid character in arguments",
                                 index + 1);
                goto out;
            }
            i++;
        }
        if (i == start) {
            err = sbx__error(SBX_EHEADER, "stanza %zu: empty argument (double or trailing space)",
                             index + 1);
            goto out;
        }
        if (argc == SBX_AGE_MAX_ARGS + 1 || i - start > SBX_AGE_MAX_ARG_LEN) {
            err = sbx__error(SBX_EHEADER, "stanza %zu: too many or too long arguments", index + 1);
            goto out;
        }
        if ((copies[argc] = dup_n(line + start, i - start)) == NULL) {
            err = sbx__error_nomem();
            goto out;
        }
        argv[argc] = copies[argc];
        argc++;
    }
    err = add_stanza(hdr, argv[0], argv + 1, argc - 1, NULL, 0);
out:
    for (size_t k = 0; k < argc; k++)
        free(copies[k]);
    return err;
}

/* Decode the body lines of the last stanza, starting at *pos. */
static int
parse_body(sbx_age_header *hdr, const uint8_t *data, size_t len, size_t *pos)
{
    sbx_buf body = SBX_BUF_INIT;
    sbx_age_stanza *s = &hdr->stanzas[hdr->count - 1];
    int err = 0;
    for (;;) {
        long nl = line_end(data, len, *pos);
        if (nl < 0) {
            err = sbx__error(SBX_EHEADER, "header is truncated inside stanza %zu", hdr->count);
            goto out;
        }
        size_t n = (size_t)nl - *pos;
        uint8_t chunk[48 + 2];
        size_t got;
        if (n > 64) {
            err =
                sbx__error(SBX_EHEADER, "stanza %zu: body line longer than 64 columns", hdr->count);
            goto out;
        }
        if (sbx_base64_decode(chunk, sizeof(chunk), &got, (const char *)data + *pos, n, false) <
            0) {
            err = sbx__error(SBX_EHEADER,
                             "stanza %zu: body is not canonical unpadded base64 "
                             "(or its final short line is missing)",
                             hdr->count);
            goto out;
        }
        if ((err = sbx_buf_append(&body, chunk, got)) < 0)
            goto out;
        *pos = (size_t)nl + 1;
        if (n < 64)
            break;
    }
    if (body.len > 0) { /* an empty body keeps the 1-byte allocation: never NULL */
        free((uint8_t *)s->body);
        s->body = body.ptr;
        s->body_len = body.len;
        body.ptr = NULL;
    }
out:
    sbx_buf_dispose(&body);
    return err;
}

static int
parse_mac_line(sbx_age_header *hdr, const uint8_t *data, size_t start, size_t n)
{
    size_t got;
    if (n != 3 + 1 + 43 || data[start + 3] != ' ')
        return sbx__error(SBX_EHEADER, "malformed MAC line");
    if (sbx_base64_decode(hdr->mac, sizeof(hdr->mac), &got, (const char *)data + start + 4, 43,
                          false) < 0 ||
        got != 32)
        return sbx__error(SBX_EHEADER, "malformed MAC line: MAC is not canonical base64");
    return 0;
}

/* see age/header.h */
int
sbx_age__stanza_parse(sbx_age_header *hdr, const uint8_t *data, size_t len, size_t *pos)
{
    long nl = line_end(data, len, *pos);
    int err;
    if (nl < 0)
        return sbx__error(SBX_EHEADER, "stanza %zu is truncated", hdr->count + 1);
    size_t n = (size_t)nl - *pos;
    if (n < 2 || memcmp(data + *pos, "->", 2) != 0)
        return sbx__error(SBX_EHEADER, "stanza %zu does not start with \"->\"", hdr->count + 1);
    if ((err = parse_stanza_line(hdr, (const char *)data + *pos, n, hdr->count)) < 0)
        return err;
    size_t at = (size_t)nl + 1;
    if ((err = parse_body(hdr, data, len, &at)) < 0) {
        stanza_clear(&hdr->stanzas[--hdr->count]);
        return err;
    }
    *pos = at;
    return 0;
}

int
sbx_age__header_parse(sbx_age_header **out, const uint8_t *data, size_t len, size_t *header_len)
{
    sbx_age_header *hdr = NULL;
    size_t pos = VERSION_LEN;
    int err;
    *out = NULL;
    *header_len = 0;
    if (len == 0)
        return sbx__error(SBX_EHEADER, "the input is empty");
    if (len < VERSION_LEN || memcmp(data, SBX_AGE_VERSION_LINE, VERSION_LEN) != 0) {
        if (len >= 19 && memcmp(data, "age-encryption.org/", 19) == 0)
            return sbx__error(SBX_EHEADER, "unsupported age format version (only v1 is known)");
        return sbx__error(SBX_EHEADER, "not an age file (bad version line)");
    }
    if ((err = sbx_age_header_new(&hdr)) < 0)
        return err;
    for (;;) {
        long nl = line_end(data, len, pos);
        if (nl < 0) {
            err = sbx__error(SBX_EHEADER, "header is truncated (no MAC line)");
            goto fail;
        }
        size_t n = (size_t)nl - pos;
        if (n >= 3 && memcmp(data + pos, "---", 3) == 0) {
            if (hdr->count == 0) {
                err = sbx__error(SBX_EHEADER, "header has no recipient stanza");
                goto fail;
            }
            if ((err = parse_mac_line(hdr, data, pos, n)) < 0)
                goto fail;
            hdr->mac_input_len = pos + 3;
            hdr->len = (size_t)nl + 1;
            *header_len = hdr->len;
            *out = hdr;
            return 0;
        }
        if (n < 2 || memcmp(data + pos, "->", 2) != 0) {
            err = sbx__error(SBX_EHEADER, "line %zu of the header is neither a stanza nor the MAC",
                             hdr->count + 2);
            goto fail;
        }
        if (hdr->count == SBX_AGE_MAX_STANZAS) {
            err = sbx__error(SBX_EHEADER, "header has more than %d stanzas", SBX_AGE_MAX_STANZAS);
            goto fail;
        }
        if ((err = sbx_age__stanza_parse(hdr, data, len, &pos)) < 0)
            goto fail;
    }
fail:
    sbx_age_header_free(hdr);
    return err;
}

static int
append_str(sbx_buf *out, const char *s)
{
    return sbx_buf_append(out, s, strlen(s));
}

static int
encode_body(sbx_buf *out, const uint8_t *body, size_t len)
{
    char line[64 + 4 + 1];
    int err;
    size_t off = 0;
    for (;;) {
        size_t take = len - off < 48 ? len - off : 48;
        // body may be NULL when len is 0 (a protocol command without data)
        long n = sbx_base64_encode(line, sizeof(line),
                                   take > 0 ? body + off : (const uint8_t *)line, take, false);
        if (n < 0)
            return (int)n;
        line[n++] = '\n';
        if ((err = sbx_buf_append(out, line, (size_t)n)) < 0)
            return err;
        off += take;
        if (take < 48)
            return 0;
    }
}

/* see age/header.h */
int
sbx_age__stanza_encode(sbx_buf *out, const char *type, const char *const *args, size_t nargs,
                       const uint8_t *body, size_t body_len)
{
    int err;
    if ((err = append_str(out, "-> ")) < 0 || (err = append_str(out, type)) < 0)
        return err;
    for (size_t a = 0; a < nargs; a++) {
        if ((err = append_str(out, " ")) < 0 || (err = append_str(out, args[a])) < 0)
            return err;
    }
    if ((err = append_str(out, "\n")) < 0)
        return err;
    return encode_body(out, body, body_len);
}

int
sbx_age__header_encode(sbx_buf *out, const sbx_age_header *hdr, bool with_mac)
{
    int err;
    if ((err = append_str(out, SBX_AGE_VERSION_LINE)) < 0)
        return err;
    for (size_t i = 0; i < hdr->count; i++) {
        const sbx_age_stanza *s = &hdr->stanzas[i];
        if ((err = sbx_age__stanza_encode(out, s->type, s->args, s->nargs, s->body, s->body_len)) <
            0)
            return err;
    }
    if ((err = append_str(out, "---")) < 0)
        return err;
    if (with_mac) {
        char mac[48];
        long n = sbx_base64_encode(mac, sizeof(mac), hdr->mac, 32, false);
        if (n < 0)
            return (int)n;
        if ((err = append_str(out, " ")) < 0 || (err = sbx_buf_append(out, mac, (size_t)n)) < 0 ||
            (err = append_str(out, "\n")) < 0)
            return err;
    }
    return 0;
}

/* see strongbox/sys/age.h */
int
sbx_age_header_encode(sbx_buf *out, const sbx_age_header *hdr,
                      const uint8_t file_key[SBX_AGE_FILE_KEY_LEN])
{
    sbx_buf bytes = SBX_BUF_INIT;
    uint8_t mac[32];
    char b64[48];
    int err;
    if (hdr->count == 0)
        return sbx__error(SBX_EINVAL, "the header has no stanza: give at least one recipient");
    if ((err = sbx_age__header_check(hdr)) < 0)
        return sbx__error_prefix(SBX_EINVAL, "cannot encode the header");
    if ((err = sbx_age__header_encode(&bytes, hdr, false)) < 0 ||
        (err = sbx_age__header_mac(mac, file_key, bytes.ptr, bytes.len)) < 0)
        goto out;
    long n = sbx_base64_encode(b64, sizeof(b64), mac, sizeof(mac), false);
    if ((err = n < 0 ? (int)n : 0) < 0 || (err = append_str(&bytes, " ")) < 0 ||
        (err = sbx_buf_append(&bytes, b64, (size_t)n)) < 0 || (err = append_str(&bytes, "\n")) < 0)
        goto out;
    err = sbx_buf_append(out, bytes.ptr, bytes.len);
out:
    sbx_buf_dispose(&bytes);
    return err;
}
