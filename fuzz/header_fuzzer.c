/*
 * fuzz/header_fuzzer.c - the age header parser (src/age/header.c).
 *
 * Input: arbitrary bytes, read as the start of an age file. Properties:
 *  - sbx_age__header_parse never crashes, leaks or reads out of bounds;
 *  - when it accepts, the header has at least one stanza, the consumed length
 *    is within the input and agrees with hdr->len, and the MAC input ends
 *    with "---" (age.md §4);
 *  - encoding the parsed header (with the MAC line) reproduces exactly the
 *    consumed bytes, and without it exactly the MAC input: the grammar has one
 *    encoding per header (age.md §3.2), which the header MAC relies on;
 *  - the re-encoded header parses again to the same length.
 */
#include <stdint.h>
#include <string.h>

#include "strongbox/common.h"
#include "age/header.h"
#include "fuzz_util.h"

static void
check_encoding(const sbx_age_header *hdr, const uint8_t *data, size_t consumed)
{
    sbx_buf full = SBX_BUF_INIT, mac_input = SBX_BUF_INIT;
    FUZZ_CHECK(sbx_age__header_encode(&full, hdr, true) == 0, "encode with MAC");
    FUZZ_CHECK(full.len == consumed && memcmp(full.ptr, data, consumed) == 0,
               "encode(parse(x)) == x");
    FUZZ_CHECK(sbx_age__header_encode(&mac_input, hdr, false) == 0, "encode without MAC");
    FUZZ_CHECK(mac_input.len == hdr->mac_input_len &&
                   memcmp(mac_input.ptr, data, mac_input.len) == 0,
               "encode(parse(x), no MAC) == MAC input of x");

    sbx_age_header *again = NULL;
    size_t again_len = 0;
    FUZZ_CHECK(sbx_age__header_parse(&again, full.ptr, full.len, &again_len) == 0,
               "re-encoded header parses");
    FUZZ_CHECK(again_len == consumed && again->count == hdr->count, "re-parse agrees");
    sbx_age_header_free(again);
    sbx_buf_dispose(&full);
    sbx_buf_dispose(&mac_input);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sbx_age_header *hdr = NULL;
    size_t consumed = 0;
    if (sbx_age__header_parse(&hdr, data, size, &consumed) != 0) {
        FUZZ_CHECK(hdr == NULL, "no header on failure");
        return 0;
    }
    FUZZ_CHECK(hdr != NULL && hdr->count >= 1, "a header has at least one stanza");
    FUZZ_CHECK(consumed <= size && consumed == hdr->len, "consumed length");
    FUZZ_CHECK(hdr->mac_input_len >= 3 && hdr->mac_input_len < consumed &&
                   memcmp(data + hdr->mac_input_len - 3, "---", 3) == 0,
               "MAC input ends with ---");
    FUZZ_CHECK(data[consumed - 1] == '\n', "header ends with LF");
    check_encoding(hdr, data, consumed);
    sbx_age_header_free(hdr);
    return 0;
}
