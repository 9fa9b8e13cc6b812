/*
 * fuzz/kms_json_fuzzer.c - the reader of key server answers (src/kms/json.c),
 * which the sbx kms commands use on whatever a server sends, and its JSON
 * Pointer walk.
 *
 * Input framing: the first line is a pointer ("/keys/0", "/a~1b"), the rest
 * the answer. Properties:
 *  - sbx_kms_json_parse, _text, _count and _free never crash, leak or read
 *    out of bounds, whatever the answer and the pointer;
 *  - parse succeeds only on an object or array; the whole document ("")
 *    always has a text, which parses again to a document with the same
 *    count (compact JSON is a fixed point);
 *  - a text found at the pointer is NUL-terminated at its length;
 *  - every element of the array or object at "" is reachable: "/<i>" for an
 *    array answers, as _count says.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strongbox/kms.h"
#include "fuzz_util.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    const uint8_t *nl = memchr(data, '\n', size);
    size_t plen = nl != NULL ? (size_t)(nl - data) : 0;
    const uint8_t *body = nl != NULL ? nl + 1 : data;
    size_t blen = size - (size_t)(body - data);
    char *pointer = malloc(plen + 1);
    FUZZ_CHECK(pointer != NULL, "malloc");
    memcpy(pointer, data, plen);
    pointer[plen] = '\0';

    sbx_kms_json *j = NULL;
    if (sbx_kms_json_parse(&j, body, blen) == 0) {
        sbx_buf whole = SBX_BUF_INIT, at = SBX_BUF_INIT;
        FUZZ_CHECK(sbx_kms_json_text(j, "", &whole) == 0, "the whole document has a text");
        FUZZ_CHECK(whole.len > 0 && (whole.ptr[0] == '{' || whole.ptr[0] == '['),
                   "an object or an array");
        sbx_kms_json *again = NULL;
        FUZZ_CHECK(sbx_kms_json_parse(&again, whole.ptr, whole.len) == 0, "its text parses");
        FUZZ_CHECK(sbx_kms_json_count(again, "") == sbx_kms_json_count(j, ""), "same count");
        sbx_kms_json_free(again);
        if (sbx_kms_json_text(j, pointer, &at) == 0)
            FUZZ_CHECK(at.ptr != NULL && at.ptr[at.len] == '\0', "NUL-terminated text");
        (void)sbx_kms_json_count(j, pointer);
        if (whole.ptr[0] == '[') {
            size_t n = sbx_kms_json_count(j, "");
            for (size_t i = 0; i < n && i < 64; i++) {
                char p[32];
                sbx_buf e = SBX_BUF_INIT;
                snprintf(p, sizeof p, "/%zu", i);
                FUZZ_CHECK(sbx_kms_json_text(j, p, &e) == 0, "each element is reachable");
                sbx_buf_dispose(&e);
            }
        }
        sbx_buf_dispose(&whole);
        sbx_buf_dispose(&at);
        sbx_kms_json_free(j);
    } else {
        FUZZ_CHECK(j == NULL, "no document on failure");
    }
    free(pointer);
    return 0;
}
