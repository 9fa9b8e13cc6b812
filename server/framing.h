/*
 * server/framing.h - the request framing guard's parser (internal).
 *
 * libevent 2.1's evhttp parses request heads leniently: of two
 * Content-Length headers the first wins, "Content-Length: +2" and
 * "Content-Length : 2" pass (the latter as a header named "Content-Length "
 * that evhttp then ignores), a line starting with a space is glued to the
 * previous header (obs-fold), and chunk sizes accept signs and trailing
 * junk. A proxy in front that reads the same bytes another way sees other
 * requests than we do (request smuggling). So the transport (http.c) hands
 * evhttp only request heads this parser has accepted whole, and answers
 * everything else itself.
 *
 * What is accepted (RFC 9112, strictly): a request line METHOD SP TARGET SP
 * HTTP/1.0|HTTP/1.1 with a method evhttp knows, CONNECT excepted (else 501); header lines
 * NAME ":" OWS VALUE OWS with NAME a token and no byte before the colon;
 * lines end in CRLF or LF, a CR anywhere else, a NUL or another control byte
 * is refused. Refused with 400: obs-fold, a repeated or non-digit
 * Content-Length, Content-Length with Transfer-Encoding, a repeated Host, a
 * body on HEAD or TRACE (evhttp reads none: its bytes would be the next
 * request). Transfer-Encoding alone: 411 (bodies must have a
 * Content-Length; evhttp's chunked parser is lenient too). Expect other than
 * 100-continue: 417. A Content-Length over the body limit: 413 at once,
 * before any byte of the body is read.
 */
#ifndef SBX_SERVER_FRAMING_H
#define SBX_SERVER_FRAMING_H

#include <stddef.h>
#include <stdint.h>

#define KMS_FRAMING_METHOD_MAX 15
#define KMS_FRAMING_TARGET_MAX 512

typedef struct {
    int status;                              /* 0: accepted; else the HTTP status of the refusal */
    char why[128];                           /* the refusal's message ("" when accepted) */
    uint64_t body;                           /* accepted: the Content-Length (0 when absent) */
    char method[KMS_FRAMING_METHOD_MAX + 1]; /* "" when the request line is unreadable */
    char target[KMS_FRAMING_TARGET_MAX + 1]; /* the raw request target, cut; "" likewise */
} kms_framing;

/*
 * Finds the end of a request head in p[0..len): the length through the empty
 * line that closes it, or 0 when it is not complete yet. *scan is where the
 * previous call stopped looking (0 for a new head); it is updated so that a
 * head arriving in pieces is scanned once.
 */
size_t kms_framing_head_end(const uint8_t *p, size_t len, size_t *scan);

/*
 * Checks the complete head p[0..len) (as found by kms_framing_head_end) and
 * fills out: status 0 and body, or the refusal. method and target are filled
 * from the request line whenever it can be read, for the audit line.
 */
void kms_framing_check(kms_framing *out, const uint8_t *p, size_t len, uint64_t max_body);

/* Fills out->method and out->target from the first line of p[0..len), when it can be read. */
void kms_framing_request_line(kms_framing *out, const uint8_t *p, size_t len);

#endif
