/*
 * server/api_json.c - the HTTP API's output buffer and request parsing
 * helpers (see api_json.h for the implementation notes).
 */
#include "api_json.h"
#include "keystore.h"
#include "util.h"

#include "strongbox/error.h"
#include "strongbox/encoding.h"
#include "strongbox/memory.h"

#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- output buffer ---- */

static bool
buf_reserve(kms_buf *b, size_t n)
{
    if (b->failed)
        return false;
    if (n <= b->cap - b->len && b->p != NULL)
        return true;
    if (n > SIZE_MAX / 4 - b->len) {
        b->failed = true;
        return false;
    }
    size_t cap = b->cap ? b->cap * 2 : 256;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *p = malloc(cap);
    if (p == NULL) {
        b->failed = true;
        return false;
    }
    if (b->p != NULL) {
        memcpy(p, b->p, b->len);
        sbx_wipe(b->p, b->cap);
        free(b->p);
    }
    b->p = p;
    b->cap = cap;
    b->p[b->len] = '\0';
    return true;
}

void
kms_buf_put(kms_buf *b, const void *s, size_t n)
{
    if (!buf_reserve(b, n + 1))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void
kms_buf_puts(kms_buf *b, const char *s)
{
    kms_buf_put(b, s, strlen(s));
}

void
kms_buf_printf(kms_buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp)) // only used for short, non-secret text
        b->failed = true;
    else
        kms_buf_put(b, tmp, (size_t)n);
    SBX_WIPE_BUF(tmp);
}

/* Length of the valid UTF-8 sequence at p (1-4), or 0 when it is not one. */
static size_t
utf8_len(const unsigned char *p)
{
    if (p[0] < 0x80)
        return 1;
    size_t n = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 ? 2 : 0;
    if (n == 0 || p[0] > 0xf4)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0) || // overlong, surrogate
        (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90))   // overlong, > U+10FFFF
        return 0;
    return n;
}

bool
kms_utf8_valid(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t n = utf8_len(p);
        if (n == 0)
            return false;
        p += n;
    }
    return true;
}

void
kms_buf_str(kms_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    kms_buf_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t run = 0, n;
        while ((n = utf8_len(p + run)) > 0 && p[run] >= 0x20 && p[run] != '"' && p[run] != '\\')
            run += n;
        if (run > 0) {
            kms_buf_put(b, p, run);
            p += run;
            continue;
        }
        char esc[7] = {'\\', (char)*p, 0};
        if (utf8_len(p) == 0) { // not UTF-8: the answer stays valid JSON
            memcpy(esc, "\\ufffd", 7);
        } else if (*p < 0x20) {
            esc[1] = 'u';
            memcpy(esc + 2, "00", 2);
            esc[4] = hex[*p >> 4];
            esc[5] = hex[*p & 15];
        }
        kms_buf_puts(b, esc);
        p++;
    }
    kms_buf_put(b, "\"", 1);
}

void
kms_buf_b64(kms_buf *b, const uint8_t *in, size_t n)
{
    size_t need = SBX_BASE64_PAD_LEN(n) + 3;
    if (!buf_reserve(b, need))
        return;
    b->p[b->len++] = '"';
    long got = sbx_base64_encode(b->p + b->len, b->cap - b->len, in, n, true);
    if (got < 0) {
        b->failed = true;
        return;
    }
    b->len += (size_t)got;
    b->p[b->len++] = '"';
    b->p[b->len] = '\0';
}

void
kms_buf_dispose(kms_buf *b)
{
    if (b->p != NULL) {
        sbx_wipe(b->p, b->cap);
        free(b->p);
    }
    memset(b, 0, sizeof(*b));
}

/* ---- jansson with wiping frees ---- */

static void
wiping_free(void *p)
{
    if (p != NULL) {
        sbx_wipe(p, malloc_usable_size(p));
        free(p);
    }
}

static void
install_alloc(void)
{
    json_set_alloc_funcs(malloc, wiping_free);
}

void
kms_json_install_wiping_alloc(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, install_alloc);
}

void
kms_json_wipe(json_t *v)
{
    if (json_is_string(v)) {
        sbx_wipe((char *)json_string_value(v), json_string_length(v));
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            kms_json_wipe(json_array_get(v, i));
    } else if (json_is_object(v)) {
        for (void *it = json_object_iter(v); it != NULL; it = json_object_iter_next(v, it))
            kms_json_wipe(json_object_iter_value(it));
    }
}

/* ---- parsing ---- */

/* Deepest nesting of arrays/objects in a JSON text (strings skipped). */
static size_t
json_depth(const uint8_t *p, size_t len)
{
    size_t depth = 0, max = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        if (in_str) {
            if (p[i] == '\\')
                i++;
            else if (p[i] == '"')
                in_str = false;
        } else if (p[i] == '"') {
            in_str = true;
        } else if (p[i] == '{' || p[i] == '[') {
            if (++depth > max)
                max = depth;
        } else if ((p[i] == '}' || p[i] == ']') && depth > 0) {
            depth--;
        }
    }
    return max;
}

static int
parse_error(const json_error_t *e)
{
    switch (json_error_code(e)) {
    case json_error_duplicate_key:
        return sbx_error_set(SBX_EFORMAT, "malformed JSON: duplicate key in an object");
    case json_error_invalid_utf8:
        return sbx_error_set(SBX_EFORMAT, "malformed JSON: invalid UTF-8");
    case json_error_null_character:
    case json_error_null_byte_in_key:
        return sbx_error_set(SBX_EFORMAT, "malformed JSON: NUL character in a string");
    case json_error_end_of_input_expected:
        return sbx_error_set(SBX_EFORMAT, "malformed JSON: data after the object");
    case json_error_numeric_overflow:
        return sbx_error_set(SBX_EFORMAT, "malformed JSON: number out of range");
    default: // jansson's text may quote the input, which may be secret: give the position only
        return sbx_error_set(SBX_EFORMAT, "malformed JSON at line %d, column %d", e->line,
                             e->column);
    }
}

int
kms_json_parse(json_t **out, const uint8_t *body, size_t len)
{
    json_error_t e;
    *out = NULL;
    if (len == 0) {
        *out = json_object();
        return *out ? 0 : sbx_error_set_nomem();
    }
    if (json_depth(body, len) > KMS_JSON_DEPTH_MAX)
        return sbx_error_set(SBX_EFORMAT, "JSON nested deeper than %d levels", KMS_JSON_DEPTH_MAX);
    json_t *v = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &e);
    if (v == NULL)
        return parse_error(&e);
    if (!json_is_object(v)) {
        kms_json_wipe(v);
        json_decref(v);
        return sbx_error_set(SBX_EFORMAT, "the request body must be a JSON object");
    }
    *out = v;
    return 0;
}

/* A field name fit to quote in a message: printable ASCII, at most 64 chars. */
static void
safe_name(char out[72], const char *name)
{
    size_t i = 0;
    for (; name[i] != '\0' && i < 64; i++)
        out[i] = (name[i] >= 0x20 && name[i] < 0x7f && name[i] != '"') ? name[i] : '?';
    if (name[i] != '\0')
        memcpy(out + i, "...", 4);
    else
        out[i] = '\0';
}

int
kms_json_only(const json_t *obj, const char *const *allowed)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v)
    {
        size_t i = 0;
        while (allowed[i] != NULL && strcmp(allowed[i], k) != 0)
            i++;
        if (allowed[i] == NULL) {
            char name[72];
            safe_name(name, k);
            return sbx_error_set(SBX_EFORMAT, "unknown field \"%s\"", name);
        }
    }
    return 0;
}

int
kms_json_int(const json_t *obj, const char *field, bool *present, int64_t *v)
{
    json_t *j = json_object_get(obj, field);
    *present = j != NULL;
    if (j == NULL)
        return 0;
    if (!json_is_integer(j))
        return sbx_error_set(SBX_EFORMAT, "%s must be an integer", field);
    *v = (int64_t)json_integer_value(j);
    return 0;
}

int
kms_json_bool(const json_t *obj, const char *field, bool *present, bool *v)
{
    json_t *j = json_object_get(obj, field);
    *present = j != NULL;
    if (j == NULL)
        return 0;
    if (!json_is_boolean(j))
        return sbx_error_set(SBX_EFORMAT, "%s must be true or false", field);
    *v = json_is_true(j);
    return 0;
}

int
kms_json_str(const json_t *obj, const char *field, bool *present, const char **v, size_t *len)
{
    json_t *j = json_object_get(obj, field);
    *present = j != NULL;
    if (j == NULL)
        return 0;
    if (!json_is_string(j))
        return sbx_error_set(SBX_EFORMAT, "%s must be a string", field);
    *v = json_string_value(j);
    *len = json_string_length(j);
    return 0;
}

int
kms_json_strs(const json_t *obj, const char *field, size_t max, size_t maxlen, const char ***v,
              size_t *n)
{
    json_t *j = json_object_get(obj, field);
    *v = NULL;
    *n = 0;
    if (j == NULL)
        return 0;
    if (!json_is_array(j))
        return sbx_error_set(SBX_EFORMAT, "%s must be an array of strings", field);
    if (json_array_size(j) > max)
        return sbx_error_set(SBX_EFORMAT, "%s has more than %zu entries", field, max);
    const char **arr = calloc(json_array_size(j) + 1, sizeof(*arr));
    if (arr == NULL)
        return sbx_error_set_nomem();
    for (size_t i = 0; i < json_array_size(j); i++) {
        json_t *s = json_array_get(j, i);
        if (!json_is_string(s) || json_string_length(s) == 0 || json_string_length(s) > maxlen) {
            free(arr);
            return sbx_error_set(SBX_EFORMAT, "%s[%zu] must be a string of 1 to %zu bytes", field,
                                 i, maxlen);
        }
        arr[i] = json_string_value(s);
    }
    *v = arr;
    *n = json_array_size(j);
    return 0;
}

static int
context_pairs(const json_t *ctx, const char **keys, const char **vals, size_t *n)
{
    const char *k;
    json_t *v;
    *n = 0;
    json_object_foreach((json_t *)ctx, k, v)
    {
        if (!json_is_string(v))
            return sbx_error_set(SBX_EFORMAT, "context must be an object of string values");
        size_t klen = strlen(k);
        if (klen == 0 || klen > KMS_CONTEXT_KEY_MAX)
            return sbx_error_set(SBX_EFORMAT, "context keys must be 1 to %d bytes",
                                 KMS_CONTEXT_KEY_MAX);
        if (json_string_length(v) > KMS_CONTEXT_VALUE_MAX)
            return sbx_error_set(SBX_EFORMAT, "context values must be at most %d bytes",
                                 KMS_CONTEXT_VALUE_MAX);
        keys[*n] = k;
        vals[*n] = json_string_value(v);
        (*n)++;
    }
    return 0;
}

int
kms_json_context(const json_t *obj, uint8_t **out, size_t *len)
{
    const char *keys[KMS_CONTEXT_PAIRS_MAX], *vals[KMS_CONTEXT_PAIRS_MAX];
    size_t n = 0;
    *out = NULL;
    *len = 0;
    json_t *ctx = json_object_get(obj, "context");
    if (ctx == NULL)
        return 0;
    if (!json_is_object(ctx))
        return sbx_error_set(SBX_EFORMAT, "context must be an object of string values");
    if (json_object_size(ctx) > KMS_CONTEXT_PAIRS_MAX)
        return sbx_error_set(SBX_EFORMAT, "context has more than %d entries",
                             KMS_CONTEXT_PAIRS_MAX);
    int err = context_pairs(ctx, keys, vals, &n);
    if (err == 0)
        err = kms_context_canonical(keys, vals, n, out, len);
    if (err < 0 && err != SBX_ENOMEM)
        err = sbx_error_set(SBX_EFORMAT, "%s", // the messages name the context already
                            sbx_error_last()->message);
    return err;
}

/* ---- query strings and numbers ---- */

/* see api_json.h */
int
kms_pct_decode(char *out, size_t cap, const char *s, size_t n, bool query)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '+' && query) {
            c = ' ';
        } else if (c == '%') {
            int hi = i + 2 < n ? kms_hex_digit(s[i + 1]) : -1;
            int lo = i + 2 < n ? kms_hex_digit(s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return sbx_error_set(SBX_EFORMAT, "bad percent-encoding in the %s",
                                     query ? "query string" : "path");
            c = hi * 16 + lo;
            i += 2;
        }
        if (o + 1 >= cap)
            return sbx_error_set(SBX_EFORMAT, "query parameter value too long");
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

int
kms_query_get(const char *query, const char *name, char *out, size_t cap, bool *present)
{
    size_t nlen = strlen(name);
    *present = false;
    out[0] = '\0';
    for (const char *p = query; p != NULL && *p != '\0';) {
        const char *end = strchr(p, '&');
        size_t plen = end ? (size_t)(end - p) : strlen(p);
        if (plen > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
            *present = true;
            return kms_pct_decode(out, cap, p + nlen + 1, plen - nlen - 1, true);
        }
        p = end ? end + 1 : NULL;
    }
    return 0;
}

int
kms_query_only(const char *query, const char *const *allowed)
{
    for (const char *p = query; p != NULL && *p != '\0';) {
        const char *end = strchr(p, '&');
        size_t plen = end ? (size_t)(end - p) : strlen(p);
        size_t klen = strcspn(p, "=&");
        size_t i = 0;
        while (allowed[i] != NULL &&
               !(strlen(allowed[i]) == klen && strncmp(allowed[i], p, klen) == 0))
            i++;
        if (plen > 0 && allowed[i] == NULL)
            return sbx_error_set(SBX_EFORMAT, "unknown query parameter (allowed: %s)",
                                 allowed[0] ? allowed[0] : "none");
        p = end ? end + 1 : NULL;
    }
    return 0;
}

int
kms_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (*s == '\0' || strlen(s) > 20)
        return SBX_EFORMAT;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return SBX_EFORMAT;
        if (v > (max - (uint64_t)(*s - '0')) / 10)
            return SBX_EFORMAT;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return 0;
}
