/*
 * cli/json_out.c - the JSON writer of sbx (see cli/json_out.h).
 *
 * Implementation notes: the writer keeps, per open object or array, whether
 * something was written (for the separator) and whether elements go one per
 * line; nothing is buffered, so a report is written as it is walked. The
 * UTF-8 check follows RFC 3629 §4: overlong forms, surrogates and code
 * points above U+10FFFF are not UTF-8 and are replaced byte by byte.
 */
#include "json_out.h"

#include "strongbox/encoding.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

/* s as a JSON string literal (sbx_json_quote: the one rule). @return false if a byte was not UTF-8.
 */
static bool
put_quoted(FILE *f, const char *s)
{
    sbx_buf q = SBX_BUF_INIT;
    bool utf8 = true;
    if (sbx_json_quote(&q, s, &utf8) == 0)
        fwrite(q.ptr, 1, q.len, f);
    sbx_buf_dispose(&q);
    return utf8;
}

static void
put_key(cli_json *j, const char *key)
{
    put_quoted(j->f, key);
    fputs(j->spaced ? ": " : ":", j->f);
}

/* The separator before the next value at the current level. */
static void
separate(cli_json *j, const char *key)
{
    bool lines = j->level[j->depth].lines;
    (void)key; // only for the check below (compiled out with NDEBUG)
    assert((key != NULL) == j->level[j->depth].object); // misuse: a name outside an object
    if (j->level[j->depth].any)
        fputs(j->spaced && !lines ? ", " : ",", j->f);
    if (lines)
        fputs("\n    ", j->f);
    j->level[j->depth].any = true;
}

/* Separator and member name before the next value at the current level. */
static void
next(cli_json *j, const char *key)
{
    separate(j, key);
    if (key != NULL)
        put_key(j, key);
}

static void
open_level(cli_json *j, const char *key, char bracket, bool lines)
{
    next(j, key);
    fputc(bracket, j->f);
    assert(j->depth < CLI_JSON_MAX_DEPTH);
    if (j->depth < CLI_JSON_MAX_DEPTH)
        j->depth++;
    j->level[j->depth].any = false;
    j->level[j->depth].object = bracket == '{';
    j->level[j->depth].lines = lines;
}

static void
close_level(cli_json *j, char bracket)
{
    assert(j->depth > 0);
    if (j->level[j->depth].lines && j->level[j->depth].any)
        fputc('\n', j->f);
    fputc(bracket, j->f);
    if (j->depth > 0)
        j->depth--;
    if (j->depth == 0)
        fputc('\n', j->f);
}

void
cli_json_init(cli_json *j, FILE *f, enum cli_json_layout layout)
{
    memset(j, 0, sizeof(*j));
    j->f = f;
    j->spaced = layout == CLI_JSON_SPACED;
}

void
cli_json_object_begin(cli_json *j, const char *key)
{
    open_level(j, key, '{', false);
}

void
cli_json_object_end(cli_json *j)
{
    close_level(j, '}');
}

void
cli_json_array_begin(cli_json *j, const char *key)
{
    open_level(j, key, '[', false);
}

void
cli_json_array_begin_lines(cli_json *j, const char *key)
{
    open_level(j, key, '[', true);
}

void
cli_json_array_end(cli_json *j)
{
    close_level(j, ']');
}

void
cli_json_string(cli_json *j, const char *key, const char *s)
{
    if (s == NULL) {
        cli_json_null(j, key);
        return;
    }
    separate(j, key);
    if (key == NULL) {
        put_quoted(j->f, s);
        return;
    }
    sbx_buf m = SBX_BUF_INIT; // the member, with its NAME_base64 sibling when s is not UTF-8
    if (sbx_json_member(&m, key, s, j->spaced) == 0)
        fwrite(m.ptr, 1, m.len, j->f);
    sbx_buf_dispose(&m);
}

void
cli_json_uint(cli_json *j, const char *key, uint64_t v)
{
    next(j, key);
    fprintf(j->f, "%" PRIu64, v);
}

void
cli_json_int(cli_json *j, const char *key, int64_t v)
{
    next(j, key);
    fprintf(j->f, "%" PRId64, v);
}

void
cli_json_fixed(cli_json *j, const char *key, double v, int decimals)
{
    if (!isfinite(v)) {
        cli_json_null(j, key);
        return;
    }
    next(j, key);
    fprintf(j->f, "%.*f", decimals, v);
}

void
cli_json_bool(cli_json *j, const char *key, bool v)
{
    next(j, key);
    fputs(v ? "true" : "false", j->f);
}

void
cli_json_null(cli_json *j, const char *key)
{
    next(j, key);
    fputs("null", j->f);
}

void
cli_json_hex(cli_json *j, const char *key, const uint8_t *p, size_t n)
{
    next(j, key);
    fputc('"', j->f);
    for (size_t i = 0; i < n; i++)
        fprintf(j->f, "%02x", p[i]);
    fputc('"', j->f);
}
