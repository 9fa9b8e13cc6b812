/*
 * fuzz/framing_fuzzer.c - the key server's request framing guard
 * (server/framing.c), which reads request heads straight from the network,
 * before libevent's own parser.
 *
 * Input: arbitrary bytes, read as the start of a connection. Properties:
 *  - kms_framing_head_end and kms_framing_check never crash, leak or read out
 *    of bounds;
 *  - head_end finds the same end whether the bytes arrive at once or one by
 *    one (the resume point never skips a terminator), and that end is right
 *    after an empty line;
 *  - an accepted head has a known method, a target without spaces or
 *    control bytes, exactly one way to read its body: no Transfer-Encoding,
 *    at most one Content-Length made of digits, no obs-fold, no bare CR or
 *    NUL, and a body no longer than the limit;
 *  - a refusal has a status among 400, 411, 413, 417, 501 and a message.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "framing.h"
#include "fuzz_util.h"

#define MAX_BODY 4096u

/* What a strict reader must see in an accepted head (a second, simpler reading). */
static void
check_accepted(const uint8_t *p, size_t len, const kms_framing *v)
{
    int content_length = 0;
    FUZZ_CHECK(v->method[0] != '\0' && v->target[0] != '\0', "accepted: method and target");
    FUZZ_CHECK(v->body <= MAX_BODY, "accepted: body within the limit");
    FUZZ_CHECK(memchr(p, '\0', len) == NULL, "accepted: no NUL");
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '\r')
            FUZZ_CHECK(i + 1 < len && p[i + 1] == '\n', "accepted: CR only before LF");
        if (p[i] != '\n' || i + 1 >= len)
            continue;
        const uint8_t *l = p + i + 1;
        size_t rest = len - i - 1;
        FUZZ_CHECK(l[0] != ' ' && l[0] != '\t', "accepted: no obs-fold");
        if (rest >= 15 && strncasecmp((const char *)l, "Content-Length:", 15) == 0)
            content_length++;
        FUZZ_CHECK(!(rest >= 18 && strncasecmp((const char *)l, "Transfer-Encoding:", 18) == 0),
                   "accepted: no Transfer-Encoding");
    }
    FUZZ_CHECK(content_length <= 1, "accepted: at most one Content-Length");
    FUZZ_CHECK(content_length == 1 || v->body == 0, "accepted: a body only with Content-Length");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    size_t scan = 0, end = kms_framing_head_end(data, size, &scan);
    size_t scan2 = 0, end2 = 0;
    for (size_t n = 1; n <= size && end2 == 0; n++) // byte by byte, as a slow client sends
        end2 = kms_framing_head_end(data, n, &scan2);
    FUZZ_CHECK(end == end2, "the same end at once and byte by byte");
    if (end == 0)
        return 0;
    FUZZ_CHECK(
        end >= 2 && data[end - 1] == '\n' &&
            (data[end - 2] == '\n' || (end >= 3 && data[end - 2] == '\r' && data[end - 3] == '\n')),
        "the head ends with an empty line");
    kms_framing v;
    kms_framing_check(&v, data, end, MAX_BODY);
    if (v.status == 0) {
        check_accepted(data, end, &v);
    } else {
        FUZZ_CHECK(v.status == 400 || v.status == 411 || v.status == 413 || v.status == 417 ||
                       v.status == 501,
                   "a refusal status");
        FUZZ_CHECK(v.why[0] != '\0', "a refusal message");
    }
    return 0;
}
