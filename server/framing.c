/*
 * server/framing.c - the request framing guard's parser (see framing.h).
 *
 * Implementation notes:
 *  - The head is checked line by line in one pass; the first problem found
 *    is the answer. Lines are delimited by LF, a CR is allowed only right
 *    before it, so the line boundaries are the ones evhttp's
 *    EVBUFFER_EOL_CRLF reading finds.
 *  - Every accepted head is one evhttp reads the same way: a single
 *    Content-Length of digits only (evhttp's strtoll agrees on those), no
 *    Transfer-Encoding (so evhttp never reads chunks), no folding (so no
 *    header changes meaning), header names without spaces (so evhttp's
 *    lookup by name finds what we counted), and no Content-Length on the
 *    methods evhttp reads no body for.
 *  - Content-Length is parsed saturating at UINT64_MAX, so any length of
 *    digits compares correctly with the body limit.
 */
#include "framing.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* see framing.h */
size_t
kms_framing_head_end(const uint8_t *p, size_t len, size_t *scan)
{
    size_t i = *scan;
    for (; i < len; i++) {
        if (p[i] != '\n')
            continue;
        if (i + 1 < len && p[i + 1] == '\n')
            return i + 2;
        if (i + 2 < len && p[i + 1] == '\r' && p[i + 2] == '\n')
            return i + 3;
        if (i + 2 >= len) // the bytes after this LF are not all here yet: look again
            break;
    }
    *scan = i;
    return 0;
}

static bool
is_tchar(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool
is_target_char(uint8_t c)
{
    return c > 0x20 && c < 0x7f;
}

/* The evhttp 2.1 methods but CONNECT (whose authority-form target evhttp parses on its own). */
static bool
method_known(const char *m)
{
    static const char *const known[] = {"GET",     "POST",  "HEAD",  "PUT", "DELETE",
                                        "OPTIONS", "TRACE", "PATCH", NULL};
    for (size_t i = 0; known[i] != NULL; i++)
        if (strcmp(known[i], m) == 0)
            return true;
    return false;
}

/* Length of the line at p (without CR LF); *next is where the next one starts. */
static size_t
line_len(const uint8_t *p, size_t len, size_t *next)
{
    const uint8_t *lf = memchr(p, '\n', len);
    size_t n = lf != NULL ? (size_t)(lf - p) : len;
    *next = lf != NULL ? n + 1 : len;
    return n > 0 && p[n - 1] == '\r' ? n - 1 : n;
}

static void
refuse(kms_framing *out, int status, const char *why)
{
    if (out->status == 0) {
        out->status = status;
        snprintf(out->why, sizeof out->why, "%s", why);
    }
}

/* see framing.h */
void
kms_framing_request_line(kms_framing *out, const uint8_t *p, size_t len)
{
    size_t next, n = line_len(p, len, &next), m = 0, t;
    out->method[0] = out->target[0] = '\0';
    while (m < n && is_tchar(p[m]))
        m++;
    if (m == 0 || m > KMS_FRAMING_METHOD_MAX || m >= n || p[m] != ' ')
        return;
    memcpy(out->method, p, m);
    out->method[m] = '\0';
    for (t = m + 1; t < n && is_target_char(p[t]); t++)
        ;
    size_t tl = t - (m + 1) > KMS_FRAMING_TARGET_MAX ? KMS_FRAMING_TARGET_MAX : t - (m + 1);
    memcpy(out->target, p + m + 1, tl);
    out->target[tl] = '\0';
}

/* METHOD SP TARGET SP HTTP/1.x, nothing else. */
static void
check_request_line(kms_framing *out, const uint8_t *p, size_t n)
{
    size_t m = strlen(out->method), t = m + 1;
    if (out->method[0] == '\0') {
        refuse(out, 400, "malformed request line (want METHOD SP TARGET SP HTTP/1.1)");
        return;
    }
    while (t < n && is_target_char(p[t]))
        t++;
    if (t == m + 1 || t + 9 != n || p[t] != ' ' ||
        (memcmp(p + t + 1, "HTTP/1.1", 8) != 0 && memcmp(p + t + 1, "HTTP/1.0", 8) != 0)) {
        refuse(out, 400, "malformed request line (want METHOD SP TARGET SP HTTP/1.1)");
        return;
    }
    if (!method_known(out->method))
        refuse(out, 501, "method not implemented");
}

typedef struct {
    int content_length; /* how many seen */
    int host;
    bool transfer_encoding;
    uint64_t length;
} seen;

static bool
name_is(const uint8_t *p, size_t n, const char *name)
{
    return strlen(name) == n && strncasecmp((const char *)p, name, n) == 0;
}

/* 1*DIGIT, saturating. */
static bool
parse_length(const uint8_t *v, size_t n, uint64_t *out)
{
    uint64_t x = 0;
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
        unsigned d = (unsigned)(v[i] - '0');
        x = x > (UINT64_MAX - d) / 10 ? UINT64_MAX : x * 10 + d;
    }
    *out = x;
    return true;
}

static void
check_field(kms_framing *out, seen *s, const uint8_t *p, size_t n)
{
    if (p[0] == ' ' || p[0] == '\t') {
        refuse(out, 400, "a header line starts with a space or tab (obs-fold is not accepted)");
        return;
    }
    size_t c = 0;
    while (c < n && is_tchar(p[c]))
        c++;
    if (c == 0 || c == n || p[c] != ':') {
        refuse(out, 400, "malformed header line (want NAME: VALUE, no space before the colon)");
        return;
    }
    const uint8_t *v = p + c + 1, *end = p + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    for (const uint8_t *q = v; q < end; q++)
        if ((*q < 0x20 && *q != '\t') || *q == 0x7f) {
            refuse(out, 400, "a header value holds a control character");
            return;
        }
    size_t vn = (size_t)(end - v);
    if (name_is(p, c, "Content-Length")) {
        if (s->content_length++ > 0)
            refuse(out, 400, "repeated Content-Length header");
        else if (!parse_length(v, vn, &s->length))
            refuse(out, 400, "malformed Content-Length (want decimal digits only)");
    } else if (name_is(p, c, "Transfer-Encoding")) {
        s->transfer_encoding = true;
    } else if (name_is(p, c, "Host")) {
        if (s->host++ > 0)
            refuse(out, 400, "repeated Host header");
    } else if (name_is(p, c, "Expect")) {
        if (!(vn == 12 && strncasecmp((const char *)v, "100-continue", 12) == 0))
            refuse(out, 417, "the only Expect accepted is 100-continue");
    }
}

/* A CR that does not end a line, a NUL: refused before anything else. */
static bool
bare_cr_or_nul(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] == '\0' || (p[i] == '\r' && (i + 1 == len || p[i + 1] != '\n')))
            return true;
    return false;
}

static void
check_framing(kms_framing *out, const seen *s, uint64_t max_body)
{
    if (s->transfer_encoding && s->content_length > 0)
        refuse(out, 400, "Content-Length with Transfer-Encoding");
    else if (s->transfer_encoding)
        refuse(out, 411,
               "Transfer-Encoding is not accepted: send the request body with Content-Length");
    else if (s->length > 0 &&
             (strcmp(out->method, "HEAD") == 0 || strcmp(out->method, "TRACE") == 0))
        refuse(out, 400, "a HEAD or TRACE request cannot have a body");
    else if (s->length > max_body) {
        char why[96];
        snprintf(why, sizeof why, "request body over %llu bytes (--max-body)",
                 (unsigned long long)max_body);
        refuse(out, 413, why);
    }
    if (out->status == 0)
        out->body = s->length;
}

/* see framing.h */
void
kms_framing_check(kms_framing *out, const uint8_t *p, size_t len, uint64_t max_body)
{
    memset(out, 0, sizeof *out);
    kms_framing_request_line(out, p, len);
    if (bare_cr_or_nul(p, len)) {
        refuse(out, 400, "a CR or NUL byte inside the request head");
        return;
    }
    size_t next, n = line_len(p, len, &next);
    check_request_line(out, p, n);
    seen s = {0};
    for (size_t at = next; out->status == 0 && at < len; at += next) {
        n = line_len(p + at, len - at, &next);
        if (n == 0)
            break; // the empty line closing the head
        check_field(out, &s, p + at, n);
    }
    if (out->status == 0)
        check_framing(out, &s, max_body);
}
