/*
 * fuzz/inspect_fuzzer.c - sbx_inspect_mem (src/fileops/inspect.c) on
 * arbitrary bytes: format sniffing, the age header parser and stanza checks,
 * the armor decoder, the payload layout arithmetic, pyFileSec trailer
 * detection, and the JSON and text writers.
 *
 * Properties:
 *  - never crashes, leaks or reads out of bounds; always returns 0 (an
 *    unknown or invalid file is a result, not an error);
 *  - the format is one of enum sbx_inspect_format and has a name;
 *  - a valid age report is self-consistent: the header fits in the file,
 *    header + payload == the binary size (== the input for binary files),
 *    the payload is 16 + plaintext + 16 per chunk, and there is at least one
 *    chunk;
 *  - the JSON output is one line ending in "}\n" with balanced quotes, and
 *    contains no raw control characters.
 */
#include <stdint.h>
#include <string.h>

#include "strongbox/inspect.h"
#include "strongbox/common.h"
#include "fuzz_util.h"

static void
check_json(const sbx_buf *json)
{
    FUZZ_CHECK(json->len >= 3 && json->ptr[0] == '{' && json->ptr[json->len - 2] == '}' &&
                   json->ptr[json->len - 1] == '\n',
               "JSON is one object and a newline");
    bool in_str = false;
    for (size_t i = 0; i + 1 < json->len; i++) {
        uint8_t c = json->ptr[i];
        FUZZ_CHECK(c >= 0x20 && c != 0x7f, "no raw control characters in JSON");
        if (in_str && c == '\\') {
            i++;
            continue;
        }
        if (c == '"')
            in_str = !in_str;
    }
    FUZZ_CHECK(!in_str, "JSON strings are closed");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sbx_inspect_info info;
    sbx_buf json = SBX_BUF_INIT, text = SBX_BUF_INIT;
    FUZZ_CHECK(sbx_inspect_mem(&info, data, size) == 0, "inspect never fails on memory input");
    FUZZ_CHECK(info.format >= SBX_INSPECT_UNKNOWN && info.format <= SBX_INSPECT_PFS_PADDED &&
                   info.name != NULL,
               "known format");
    FUZZ_CHECK(info.file_size == size, "file size");
    if (info.valid) {
        FUZZ_CHECK(info.stanzas >= 1 && info.chunks >= 1, "valid: stanzas and chunks");
        FUZZ_CHECK(info.payload_size == 16 + info.plaintext_size + 16 * info.chunks,
                   "payload layout arithmetic");
        if (info.format == SBX_INSPECT_AGE)
            FUZZ_CHECK(info.header_size + info.payload_size == size, "header + payload == size");
    }
    FUZZ_CHECK(sbx_inspect_to_json(&info, "fuzz\"\n.age", &json) == 0, "JSON");
    check_json(&json);
    FUZZ_CHECK(sbx_inspect_to_text(&info, NULL, &text) == 0, "text");
    sbx_buf_dispose(&json);
    sbx_buf_dispose(&text);
    return 0;
}
