/*
 * cli/json_out.h - the one JSON writer behind every `sbx ... --json`.
 *
 * A cli_json streams one JSON value to a FILE. Objects and arrays nest; every
 * call takes the member name (key) when it is inside an object and NULL when
 * it is inside an array or at the top. Closing the top-level value writes a
 * newline.
 *
 *     cli_json j;
 *     cli_json_init(&j, stdout, CLI_JSON_COMPACT);
 *     cli_json_object_begin(&j, NULL);
 *     cli_json_string(&j, "file", path);
 *     cli_json_uint(&j, "size", size);
 *     cli_json_object_end(&j);          // {"file":"x","size":3}\n
 *
 * Two layouts, because scripts already read both and their outputs stay
 * byte for byte as they were: CLI_JSON_COMPACT ({"a":1,"b":2}) and
 * CLI_JSON_SPACED ({"a": 1, "b": 2}). cli_json_array_begin_lines() puts each
 * element of an array on its own line (destroy and seal reports).
 *
 * Strings, one policy for all: valid UTF-8 is written as it is, with '"' and
 * '\' escaped and control characters (and DEL) as \u00XX. A byte that is not
 * part of a valid UTF-8 sequence becomes U+FFFD, and an object member NAME
 * holding such a string gains a sibling member NAME_base64 right after it
 * with the exact bytes (standard base64, '=' padded), so that a file name in
 * another encoding can be found again. Array elements and member names get
 * the U+FFFD replacement only.
 */
#ifndef SBX_CLI_JSON_OUT_H
#define SBX_CLI_JSON_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/** Deepest nesting of objects and arrays (the reports use 4). */
#define CLI_JSON_MAX_DEPTH 8

enum cli_json_layout {
    CLI_JSON_COMPACT, /**< {"a":1,"b":[1,2]} */
    CLI_JSON_SPACED   /**< {"a": 1, "b": [1, 2]} */
};

typedef struct cli_json {
    FILE *f;
    bool spaced;
    unsigned depth; /**< open objects and arrays */
    struct {
        bool any;    /**< a member or element was written at this level */
        bool object; /**< an object (members have names), else an array or the top */
        bool lines;  /**< one element per line (an array) */
    } level[CLI_JSON_MAX_DEPTH + 1];
} cli_json;

/** Start writing one value to f. */
void cli_json_init(cli_json *j, FILE *f, enum cli_json_layout layout);

/** Open an object; key names it inside an object, NULL elsewhere. */
void cli_json_object_begin(cli_json *j, const char *key);
/** Close the innermost object (a newline follows the top-level one). */
void cli_json_object_end(cli_json *j);
/** Open an array. */
void cli_json_array_begin(cli_json *j, const char *key);
/** Open an array whose elements are each on their own line, indented by 4 spaces. */
void cli_json_array_begin_lines(cli_json *j, const char *key);
/** Close the innermost array. */
void cli_json_array_end(cli_json *j);

/** A string (NULL writes null), with the policy above for bytes that are not UTF-8. */
void cli_json_string(cli_json *j, const char *key, const char *s);
/** An unsigned integer. */
void cli_json_uint(cli_json *j, const char *key, uint64_t v);
/** A signed integer. */
void cli_json_int(cli_json *j, const char *key, int64_t v);
/** A number with a fixed count of decimals ("%.*f"); null when v is not finite. */
void cli_json_fixed(cli_json *j, const char *key, double v, int decimals);
/** true or false. */
void cli_json_bool(cli_json *j, const char *key, bool v);
/** null. */
void cli_json_null(cli_json *j, const char *key);
/** n bytes as a string of lowercase hex digits. */
void cli_json_hex(cli_json *j, const char *key, const uint8_t *p, size_t n);

#endif
